//! The `sanforge` command line: verbs, their options and help texts, each a thin call
//! into the library. `main` only parses, runs and prints the error chain.
//!
//! - `args.rs`: the verbs and their options ([`Command`]);
//! - `verbs.rs`: what each verb calls and prints.

mod args;
mod verbs;

pub use args::{ClusterCommand, Command, KconfigCommand, NodeCommand, ScstCommand};

use crate::commands;
use crate::config::recipe::Recipe;
use crate::engine::BuildOptions;
use anyhow::{Context, Result};
use clap::Parser;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "sanforge",
    version,
    about = "Build bootable, minimal, immutable OS images for SAN storage nodes",
    long_about = "sanforge turns a recipe (recipes/NAME.toml) into a bootable storage-node image: a \
kernel built from pinned sources with a verified config, a Debian userland pruned to what the node \
runs, and sanforge-init as PID 1, which loads the modules, configures the SCSI target (LIO or SCST) \
and starts the services.\n\nTypical session:\n  sanforge doctor            # which host tools are missing\n  \
sanforge plan              # what will be built, what is cached\n  sanforge build             # build out/storage-node/\n  \
sanforge run --until-ready # boot it in QEMU, iSCSI on 127.0.0.1:3260\n\nThe cache lives in $SANFORGE_CACHE \
(default ~/.cache/sanforge); stages whose inputs did not change are not rebuilt."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const DEFAULT_RECIPE: &str = "recipes/storage-node.toml";

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn load_recipe(path: &Path) -> Result<Recipe> {
    Recipe::load(path).with_context(|| format!("cannot load recipe {}", path.display()))
}

/// The secret words of a recipe's node config and scst.conf, to keep them out of an
/// error message that quotes a config line.
fn scrubber_for(recipe: &Path) -> crate::util::redact::Scrubber {
    match Recipe::load(recipe) {
        Ok(r) => commands::node::scrubber(&r.node_config),
        Err(_) => crate::util::redact::Scrubber::new(),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build {
            recipe,
            verify: true,
            locked,
            jobs,
            init,
            kernel,
            ..
        } => verbs::cmd_build_verify(recipe, locked, jobs, init, kernel),
        Command::Sign { out, key } => verbs::cmd_sign(&out, &key),
        Command::VerifyImage { out, pubkey } => verbs::cmd_verify_image(&out, &pubkey),
        Command::Keygen {
            module_signing: Some(path),
            ..
        } => verbs::cmd_keygen_module_signing(path),
        Command::Keygen { out, .. } => verbs::cmd_keygen(out),
        Command::Build {
            recipe,
            out,
            locked,
            jobs,
            init,
            kernel,
            verify: false,
            secrets,
            explain_size,
            remote_cache,
            remote_cache_key,
        } => verbs::cmd_build(
            recipe,
            BuildOptions {
                out,
                locked,
                jobs,
                init,
                kernel,
                secrets,
                remote_cache,
                remote_cache_key,
            },
            explain_size,
        ),
        Command::Plan {
            recipe,
            json,
            out,
            init,
            kernel,
        } => verbs::cmd_plan(recipe, json, out, init, kernel),
        Command::Matrix {
            recipe,
            no_boot,
            out,
            accel,
            timeout,
            memory,
            locked,
            jobs,
            init,
            json,
        } => verbs::cmd_matrix(
            recipe,
            commands::matrix::MatrixOptions {
                build: BuildOptions {
                    out,
                    locked,
                    jobs,
                    init,
                    kernel: None,
                    secrets: None,
                    ..Default::default()
                },
                boot: !no_boot,
                accel,
                memory_mib: memory,
                timeout: Duration::from_secs(timeout),
            },
            json,
        ),
        Command::Fetch { recipe, import } => verbs::cmd_fetch(recipe, import),
        Command::Lock { recipe, update } => verbs::cmd_lock(recipe, update),
        Command::Run {
            out,
            iscsi_port,
            until_ready,
            timeout,
            memory,
            accel,
            boot,
            append,
            stop,
            quiet,
            machine,
            nics,
            disks,
            forwards,
            reboot,
            monitor,
        } => verbs::cmd_run(
            commands::run::RunOptions {
                boot,
                out,
                iscsi_port,
                memory_mib: memory,
                accel,
                until_ready,
                timeout: Duration::from_secs(timeout),
                extra_cmdline: append,
                echo: !quiet,
                hw: commands::run::Hardware {
                    machine,
                    nics,
                    disks,
                    forwards,
                    reboot,
                },
            },
            stop,
            monitor,
        ),
        Command::Serve { out, listen } => verbs::cmd_serve(&out, &listen),
        Command::Status {
            host,
            port,
            identity,
            known_hosts,
            json,
        } => verbs::cmd_status(
            &commands::status::StatusOptions {
                host,
                port,
                identity,
                known_hosts,
                connect_timeout_secs: 10,
            },
            json,
        ),
        Command::Push(a) => verbs::cmd_push(&a),
        Command::Doctor => verbs::cmd_doctor(),
        Command::Kconfig {
            command: KconfigCommand::Check { recipe, kernel },
        } => verbs::cmd_kconfig_check(&recipe, kernel),
        Command::Scst { command } => verbs::cmd_scst(command),
        Command::Cluster { command } => verbs::cmd_cluster(command),
        Command::Node { command } => verbs::cmd_node(command),
    }
}
