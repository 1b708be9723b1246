//! What each verb does: a thin call into the library ([`crate::commands`],
//! [`crate::stages`], [`crate::engine`]) and what it prints.

use super::{load_recipe, scrubber_for, ClusterCommand, NodeCommand, ScstCommand};
use crate::commands;
use crate::engine::{self, BuildOptions};
use crate::stages;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Builds twice and compares every output (`build --verify`).
pub(super) fn cmd_build_verify(
    recipe: PathBuf,
    locked: bool,
    jobs: Option<usize>,
    init: Option<PathBuf>,
    kernel: Option<String>,
) -> Result<ExitCode> {
    let report = commands::verify::verify_build(
        &recipe,
        &BuildOptions {
            out: None,
            locked,
            jobs,
            init,
            kernel,
            secrets: None,
            ..Default::default()
        },
    )?;
    print!("{}", report.table());
    println!(
        "outputs kept in {} and {}",
        report.first.display(),
        report.second.display()
    );
    if report.identical() {
        println!("reproducible: both builds are identical");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "NOT reproducible: {} of {} files differ",
        report.differences.len(),
        report.files.len()
    );
    Ok(ExitCode::FAILURE)
}

/// Builds the image (`build`), its secrets initrd when asked, and explains its size.
pub(super) fn cmd_build(
    recipe: PathBuf,
    opts: BuildOptions,
    explain_size: bool,
) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let ctx = stages::context(load_recipe(&recipe)?, &opts)
        .map_err(|e| scrubber_for(&recipe).scrub_error(e))?;
    let report = stages::build(&ctx)?;
    match stages::outputs::write_secrets_initrd(&ctx, &report.out)? {
        Some(p) => println!(
            "wrote {} (the node's secrets as a second initrd: keep it private, never serve it with the image)",
            p.display()
        ),
        None if !ctx.secret_refs.is_empty() => eprintln!(
            "note: the node configs name secrets ({}) that the image does not contain: build with --secrets FILE for {}/secrets/initrd.cpio, or commit them on the node with `sanforge-init secrets-set FILE`",
            ctx.secret_refs.join(", "),
            report.out.display()
        ),
        None => {}
    }
    println!(
        "built {} in {:.1}s (ran: {}; cached: {})",
        report.out.display(),
        started.elapsed().as_secs_f64(),
        if report.ran.is_empty() {
            "nothing".to_string()
        } else {
            report.ran.join(", ")
        },
        if report.skipped.is_empty() {
            "nothing".to_string()
        } else {
            report.skipped.join(", ")
        }
    );
    if !report.pulled.is_empty() {
        println!("pulled from the remote cache: {}", report.pulled.join(", "));
    }
    if let Some(r) = &ctx.remote {
        for (stage, bytes) in r.pushed() {
            println!("pushed {stage}: {bytes} bytes to {}", r.url);
        }
    }
    if explain_size {
        print!(
            "{}",
            stages::userland::explain_size(&report.built, &report.out)?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every stage with its key, cached or not and why, and the kernel matrix (`plan`).
pub(super) fn cmd_plan(
    recipe: PathBuf,
    json: bool,
    out: Option<PathBuf>,
    init: Option<PathBuf>,
    kernel: Option<String>,
) -> Result<ExitCode> {
    let r = load_recipe(&recipe)?;
    let opts = BuildOptions {
        out,
        init,
        kernel,
        ..Default::default()
    };
    let ctx =
        stages::context(r.clone(), &opts).map_err(|e| scrubber_for(&recipe).scrub_error(e))?;
    let plan = stages::plan(&ctx);
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        println!("{:<10} {:<14} {:<9} WHY", "STAGE", "KEY", "STATUS");
        for e in &plan {
            println!(
                "{:<10} {:<14} {:<9} {}",
                e.stage,
                engine::short(&e.key),
                if e.cached { "cached" } else { "will run" },
                e.reason
            );
        }
        if r.kernels.len() > 1 {
            println!(
                "\nkernel matrix (this plan: {}; others: `sanforge plan --kernel NAME`)",
                ctx.recipe.kernel().name
            );
            println!("{:<12} {:<14} {:<9} SOURCE", "KERNEL", "KEY", "STATUS");
            for k in commands::matrix::plan_kernels(&r, &opts) {
                let status = match (&k.error, k.cached) {
                    (Some(_), _) => "unknown",
                    (None, true) => "cached",
                    (None, false) => "will run",
                };
                println!(
                    "{:<12} {:<14} {:<9} {}{}",
                    k.name,
                    engine::short(&k.key),
                    status,
                    k.source,
                    k.error.map(|e| format!(" ({e})")).unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds and boots every kernel of the recipe (`matrix`).
pub(super) fn cmd_matrix(
    recipe: PathBuf,
    opts: commands::matrix::MatrixOptions,
    json: bool,
) -> Result<ExitCode> {
    let r = load_recipe(&recipe)?;
    let report = commands::matrix::run(&r, &opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Downloads or imports every input into the cache (`fetch`).
pub(super) fn cmd_fetch(recipe: PathBuf, import: Vec<PathBuf>) -> Result<ExitCode> {
    let cache = engine::cache::Cache::from_env()?;
    if !import.is_empty() {
        let log = crate::util::cmd::Log::none();
        for i in engine::tree::import_all(&cache, &import, &log)? {
            match i {
                engine::tree::Imported::Blob { path, sha256 } => {
                    println!("{sha256}  {}", path.display())
                }
                engine::tree::Imported::Tree { path, hash, top } => {
                    println!("{hash}  {}", path.display());
                    if let Some(t) = top {
                        crate::util::progress::step(&format!(
                            "{}: its top folder `{t}/` is the tree's root",
                            path.display()
                        ));
                    }
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let r = load_recipe(&recipe)?;
    let n = engine::fetch::fetch_all(&r, &cache, true)?;
    println!(
        "{n} inputs (sources and packages) in the cache ({})",
        cache.root().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the recipe's lock (`lock`) and prints what changed.
pub(super) fn cmd_lock(recipe: PathBuf, update: Option<Vec<String>>) -> Result<ExitCode> {
    let r = load_recipe(&recipe)?;
    let cache = engine::cache::Cache::from_env()?;
    let update = match update {
        None => engine::lock::Update::Nothing,
        Some(v) if v.is_empty() => engine::lock::Update::All,
        Some(v) => engine::lock::Update::Only(v),
    };
    let old = crate::config::lock::Lock::load(&r.lock_path()).ok();
    let lock = commands::lock::relock(&r, &cache, &update, &crate::util::cmd::Log::none())?;
    commands::lock::write(&r, &lock)?;
    println!(
        "wrote {}: {}",
        r.lock_path().display(),
        commands::lock::summary(&r, &lock)
    );
    let changes = commands::lock::changes(old.as_ref(), &lock);
    if !changes.is_empty() && old.is_some() {
        println!("changed:\n{}", changes.join("\n"));
    }
    Ok(ExitCode::SUCCESS)
}

/// `scst check`, `scst plan` and `scst generate`.
pub(super) fn cmd_scst(command: ScstCommand) -> Result<ExitCode> {
    match command {
        ScstCommand::Check { file } => {
            let (report, errors) = crate::scsi::scst::check_file(&file)?;
            print!("{report}");
            Ok(if errors {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        ScstCommand::Plan { file, show_secrets } => {
            print!(
                "{}",
                crate::scsi::scst::plan_file_with(&file, show_secrets)?
            );
            Ok(ExitCode::SUCCESS)
        }
        ScstCommand::Generate {
            devices,
            targets,
            groups,
            iscsi,
        } => {
            let conf = if iscsi {
                crate::scsi::scst::generate_iscsi(devices, targets, groups)
            } else {
                crate::scsi::scst::generate(devices, targets, groups)
            };
            print!("{}", crate::scsi::scst::print(&conf));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `node check`.
pub(super) fn cmd_node(command: NodeCommand) -> Result<ExitCode> {
    match command {
        NodeCommand::Check {
            file,
            secrets,
            show_secrets,
        } => {
            let report = commands::node::check(&file, secrets.as_deref());
            // Messages may quote a config line: its CHAP secrets are redacted.
            let report = if show_secrets {
                report
            } else {
                report.map_err(|e| commands::node::scrubber(&file).scrub_error(e))
            };
            print!("{}", report?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `sign`: signs the output directory.
pub(super) fn cmd_sign(out: &Path, key: &Path) -> Result<ExitCode> {
    let sig = crate::image::sign::sign_dir(out, &crate::image::sign::load_signing_key(key)?)?;
    println!("wrote {}", sig.display());
    Ok(ExitCode::SUCCESS)
}

/// `verify-image`: checks the signature and every file of an output directory.
pub(super) fn cmd_verify_image(out: &Path, pubkey: &Path) -> Result<ExitCode> {
    let key = crate::contract::signature::load_verifying_key(pubkey)?;
    let files = crate::contract::signature::verify_dir_files(out, &key)?;
    println!(
        "{}: signature OK (key {}), {} files match SHA256SUMS",
        out.display(),
        crate::contract::signature::fingerprint(&key),
        files.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `keygen --module-signing [PATH]`: writes a module-signing key + certificate.
pub(super) fn cmd_keygen_module_signing(path: Option<PathBuf>) -> Result<ExitCode> {
    let path = crate::image::module_key::path_or_default(path);
    let fp = crate::image::module_key::keygen(&path, "sanforge module-signing key")?;
    println!(
        "wrote {} (module-signing key and certificate, secret: keep it out of the repository and the image; certificate sha256 {fp})",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `keygen`: writes a signing key pair.
pub(super) fn cmd_keygen(out: Option<PathBuf>) -> Result<ExitCode> {
    let out = out.context("keygen needs --out PATH (or --module-signing [PATH])")?;
    let out = out.as_path();
    let key = crate::image::sign::keygen(out)?;
    println!(
        "wrote {} (secret, keep it private) and {} (key {})",
        out.display(),
        crate::image::sign::public_path(out).display(),
        crate::contract::signature::fingerprint(&key)
    );
    Ok(ExitCode::SUCCESS)
}

/// `run`: boots the image in QEMU, or stops it / talks to its monitor.
pub(super) fn cmd_run(
    opts: commands::run::RunOptions,
    stop: bool,
    monitor: Option<String>,
) -> Result<ExitCode> {
    if stop {
        let stopped = commands::run::stop(&opts.out)?;
        println!("{}", if stopped { "stopped" } else { "not running" });
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(cmd) = monitor {
        print!("{}", commands::run::monitor(&opts.out, &cmd)?);
        return Ok(ExitCode::SUCCESS);
    }
    commands::run::run(&opts)?;
    Ok(ExitCode::SUCCESS)
}

/// `serve`: serves the output directory over HTTP for PXE.
pub(super) fn cmd_serve(out: &Path, listen: &str) -> Result<ExitCode> {
    let srv = crate::commands::serve::Server::bind(out, listen)?;
    eprintln!(
        "serving {} on http://{}/ (iPXE: chain http://{}/boot.ipxe)",
        out.display(),
        srv.local_addr()?,
        srv.local_addr()?
    );
    srv.serve(None)?;
    Ok(ExitCode::SUCCESS)
}

/// `status`: a running node's state over SSH.
pub(super) fn cmd_status(o: &commands::status::StatusOptions, json: bool) -> Result<ExitCode> {
    commands::status::run(o, json)?;
    Ok(ExitCode::SUCCESS)
}

/// `doctor`: which host tools are missing.
pub(super) fn cmd_doctor() -> Result<ExitCode> {
    let (text, missing) = commands::doctor::report(&commands::doctor::check());
    print!("{text}");
    Ok(if missing {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `kconfig check`: the kernel config of the recipe's selected kernel.
pub(super) fn cmd_kconfig_check(recipe: &Path, kernel: Option<String>) -> Result<ExitCode> {
    let ctx = stages::context(
        load_recipe(recipe)?,
        &BuildOptions {
            kernel,
            ..Default::default()
        },
    )?;
    let n = stages::kernel::check_config(&ctx)?;
    println!("kernel config OK: {n} requested options verified");
    Ok(ExitCode::SUCCESS)
}

/// `cluster render`, `cluster check` and `cluster secrets`.
pub(super) fn cmd_cluster(command: ClusterCommand) -> Result<ExitCode> {
    match command {
        ClusterCommand::Render { file, out, secrets } => {
            commands::cluster::render(&file, &out, secrets)?
        }
        ClusterCommand::Check { file } => commands::cluster::check(&file)?,
        ClusterCommand::Secrets { out, cluster } => {
            commands::cluster::secrets(&out, cluster.as_deref())?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `push`: an image onto a running node, then its reboot into it.
pub(super) fn cmd_push(a: &commands::push::PushArgs) -> Result<ExitCode> {
    commands::push::run(a)?;
    Ok(ExitCode::SUCCESS)
}
