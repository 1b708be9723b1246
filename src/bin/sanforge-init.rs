//! sanforge-init: PID 1 of a sanforge storage node (`/init` in the initramfs), or,
//! with `--root DIR STEP`, one boot step run against a fake tree with every syscall
//! recorded and printed (for tests and development); `apply-scst FILE [--prune]` moves
//! the running SCST to another scst.conf on a live node; `--netns NAME network FILE`
//! applies a node's network for real inside a network namespace; as udhcpc's script
//! (`/init EVENT`, the lease in the environment) it applies a DHCP lease. Thin: the
//! work is in `sanforge::init`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

use sanforge::agent;
use sanforge::init::{self, network, Init, Logger};
use sanforge::sys::{enter_netns, FakeSys, RealSys, RebootCmd, Sys, SysRoot};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: sanforge-init                       run as PID 1 (the image's /init)
       sanforge-init --root DIR [--show-secrets] STEP [ARGS]
                                           run one step against the tree DIR, syscalls faked and printed
                                           (CHAP secrets as <redacted> unless --show-secrets)
       sanforge-init apply-scst [FILE] [--prune]
                                           move the running SCST to FILE (default: the node's scst.conf),
                                           writing only what differs; --prune also removes what FILE lacks

       sanforge-init config-set FILE         validate FILE and commit it to the config partition (next boot uses it)
       sanforge-init factory-reset           remove the config partition's override (next boot uses the baked config)
       sanforge-init secrets-set FILE        validate the secrets file FILE (mode 0600) and commit it to the config partition
       sanforge-init update DIR [--no-reboot]
                                           verify the output directory DIR and install it into the inactive boot slot, then reboot
       sanforge-init --netns NAME network NODE_TOML
                                           apply NODE_TOML's [network] for real inside the network namespace
                                           NAME (/run/netns/NAME, from `ip netns add`), over netlink
       sanforge-init dhcp-event EVENT        apply a DHCP lease (udhcpc's script; `/init EVENT` works too)
       sanforge-init metrics-serve ADDR:PORT [TOKEN_FILE]
                                           the Prometheus exporter (GET /metrics), as the init starts it
       sanforge-init log-forward ADDR:PORT [KMSG]
                                           send the kernel log (default /dev/kmsg) to a syslog server, RFC 5424
                                           over TCP, as the init starts it for [logs] remote
       sanforge-init logs [--follow] [--service NAME] [KMSG]
                                           the node's log ring (default /dev/kmsg): the kernel's, the init's
                                           and the services' lines (`[SECONDS] APP: TEXT`), or one service's
       sanforge-init status [--json]         what this node is and does: image, boot slot, boot timeline, hardware,
                                           targets with LUNs, backing devices and sessions, services, HA, errors
       sanforge-init switchover RESOURCE [--to NODE] [--keep] [--timeout SECONDS]
                                           planned switchover of a DRBD resource and its target to the other
                                           node: checks the peer is UpToDate, moves, waits, removes the move
                                           constraint (`sanforge-init switchover --help`)
       sanforge-init drbd-fence-peer [--resource RES] [--timeout S] [--dc-timeout S]
                                           DRBD 8.4's fence-peer handler (drbdadm runs it): keeps the
                                           lost peer from being promoted, as crm-fence-peer.sh does

steps: mounts, load-modules, hardware (coldplug, udev, report), storage [NODE_TOML] (md, LVM, target state,
       report), network, network-plan [NODE_TOML] (the netlink
       calls of the network step, every link of the config assumed present), dhcp-event EVENT,
       apply-targets [NODE_TOML], apply-scst [FILE] [--prune],
       boot, shutdown, status [--json], metrics (a scrape's text), config-set FILE, factory-reset, secrets-set FILE, update DIR (DIR inside the tree),
       ocf-alua ACTION (the OCF agent, OCF_RESKEY_* from the environment),
       ocf-drbd ACTION (the DRBD agent: DIR/proc/drbd, tools answering from DIR/fake-run)";

/// The [`Sys`] the OCF agent runs over: the kernel, or, when `sysfs_root` names another
/// directory than `/sys` (tests, ocf-tester, development), the recording fake playing
/// sysfs and configfs in that tree. Paths stay as given, so messages name them.
fn agent_sys(env: &agent::Env) -> Box<dyn Sys> {
    match env.param("sysfs_root").map(Path::new) {
        Some(tree) if tree != Path::new(agent::SYSFS) => {
            Box::new(FakeSys::new("/").with_kernel_tree(tree))
        }
        _ => Box::new(RealSys::new(SysRoot::new("/"))),
    }
}

fn main() -> ExitCode {
    install_panic_hook(std::process::id() == 1);
    // Also the Pacemaker agents ocf:sanforge:alua (argv[0] `alua`, or `ocf-alua ACTION`)
    // and ocf:sanforge:drbd (`drbd`, or `ocf-drbd ACTION`).
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = agent::dispatch(&argv, agent_sys) {
        return ExitCode::from(code);
    }
    // As PID 1 the kernel may pass leftover command-line words as arguments: ignore them.
    if std::process::id() == 1 {
        let mut sys = RealSys::new(SysRoot::new("/"));
        init::run_pid1(&mut sys);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            eprintln!(
                "sanforge-init: this is pid {}, not 1: refusing to take over the machine\n\
                 sanforge-init runs as /init of a sanforge image; to try a step on this machine use\n  \
                 sanforge-init --root DIR STEP   (e.g. sanforge-init --root /tmp/tree boot)\n\n{USAGE}",
                std::process::id()
            );
            ExitCode::from(2)
        }
        [h] if h == "-h" || h == "--help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        [cmd, rest @ ..] if cmd == "apply-scst" => {
            let mut sys = RealSys::new(SysRoot::new("/"));
            match apply_scst(&mut sys, rest) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        [flag, dir, show, step, rest @ ..] if flag == "--root" && show == "--show-secrets" => {
            run_step(PathBuf::from(dir), step, rest, true)
        }
        [flag, dir, step, rest @ ..] if flag == "--root" => {
            run_step(PathBuf::from(dir), step, rest, false)
        }
        [flag, name, step, file] if flag == "--netns" && step == "network" => {
            run_in_netns(name, file)
        }
        [cmd, rest @ ..] if cmd == "status" => status(&mut RealSys::new(SysRoot::new("/")), rest),
        [cmd, rest @ ..] if cmd == "switchover" => {
            switchover(&mut RealSys::new(SysRoot::new("/")), rest)
        }
        [cmd, rest @ ..] if cmd == agent::drbd::fence_peer::SUBCOMMAND => {
            fence_peer(&mut RealSys::new(SysRoot::new("/")), rest)
        }
        [cmd, tag] if cmd == init::logs::RELAY => {
            let mut kmsg = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/kmsg")
                .ok();
            init::logs::relay(
                tag,
                std::io::stdin().lock(),
                kmsg.as_mut().map(|k| k as &mut dyn Write),
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        [cmd, rest @ ..] if cmd == init::logs::LOGS => logs(rest),
        [cmd, listen, token @ ..] if cmd == init::metrics::SUBCOMMAND && token.len() <= 1 => {
            let mut sys = RealSys::new(SysRoot::new("/"));
            let token = token.first().map(Path::new);
            match init::metrics::serve(&mut sys, listen, token) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    init::child_line(&format!("error: {e:#}"));
                    ExitCode::FAILURE
                }
            }
        }
        [cmd, server, kmsg @ ..] if cmd == init::logs::SUBCOMMAND && kmsg.len() <= 1 => {
            let kmsg = kmsg.first().map_or(Path::new("/dev/kmsg"), Path::new);
            match init::logs::forward(server, kmsg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    init::child_line(&format!("error: {e:#}"));
                    ExitCode::FAILURE
                }
            }
        }
        [cmd, event] if cmd == "dhcp-event" => {
            dhcp_event(&mut RealSys::new(SysRoot::new("/")), event)
        }
        // udhcpc runs its script as `SCRIPT EVENT` with the lease in the environment.
        [event]
            if network::DHCP_EVENTS.contains(&event.as_str())
                && std::env::var_os("interface").is_some() =>
        {
            dhcp_event(&mut RealSys::new(SysRoot::new("/")), event)
        }
        [cmd, rest @ ..] if is_persist_command(cmd) => {
            let mut sys = RealSys::new(SysRoot::new("/"));
            match persist_command(&mut sys, cmd, rest, true) {
                Some(Ok(())) => ExitCode::SUCCESS,
                Some(Err(e)) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
                None => {
                    eprintln!("error: unexpected arguments\n\n{USAGE}");
                    ExitCode::from(2)
                }
            }
        }
        _ => {
            eprintln!("error: unexpected arguments\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Prints the recorded ops: CHAP secrets redacted unless `show`.
fn print_ops(ops: &[sanforge::sys::Op], show: bool) {
    let mut out = std::io::stdout().lock();
    for op in ops {
        let line = if show { op.to_string() } else { op.redacted() };
        let _ = writeln!(out, "{line}");
    }
}

/// As PID 1 a panic must not end the process (the kernel would panic, saying nothing
/// useful): the hook logs the message and its location to the console and /dev/kmsg,
/// syncs and reboots, and never returns. Anywhere else (a step run by hand, the OCF
/// agent) it prints the usual report and exits with status 101.
fn install_panic_hook(pid1: bool) {
    if pid1 {
        std::panic::set_hook(Box::new(|info| {
            let what = init::panic::describe(info.payload(), info.location());
            let mut sys = RealSys::new(SysRoot::new("/"));
            init::panic::reboot_after_panic(&mut sys, &mut Logger::console(), &what);
            loop {
                sys.sleep(std::time::Duration::from_secs(3600));
            }
        }));
    } else {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            std::process::exit(101);
        }));
    }
}

fn run_step(dir: PathBuf, step: &str, rest: &[String], show: bool) -> ExitCode {
    if !dir.is_dir() {
        eprintln!("error: --root {}: not a directory", dir.display());
        return ExitCode::from(2);
    }
    if step == agent::SUBCOMMAND {
        return run_agent_step(dir, rest);
    }
    if step == agent::drbd::SUBCOMMAND {
        return run_drbd_agent_step(dir, rest);
    }
    if step == "network-plan" {
        return network_plan(dir, rest);
    }
    if step == "metrics" && rest.is_empty() {
        // What a scrape of this tree would return.
        print!("{}", init::metrics::render(&mut FakeSys::new(dir)));
        return ExitCode::SUCCESS;
    }
    if step == "status" {
        // Reads only: no recorded calls to print.
        return status(&mut FakeSys::new(dir), rest);
    }
    let mut sys = FakeSys::new(dir);
    if step == "dhcp-event" {
        let code = match rest {
            [event] => dhcp_event(&mut sys, event),
            _ => {
                eprintln!("error: usage: dhcp-event EVENT\n\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        print_ops(&sys.ops, false);
        return code;
    }
    if step == "apply-scst" {
        let code = match apply_scst(&mut sys, rest) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
        print_ops(&sys.ops, show);
        return code;
    }
    if is_persist_command(step) {
        let r = persist_command(&mut sys, step, rest, true);
        print_ops(&sys.ops, show);
        return match r {
            Some(Ok(())) => ExitCode::SUCCESS,
            Some(Err(e)) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
            None => {
                eprintln!("error: unexpected arguments for `{step}`\n\n{USAGE}");
                ExitCode::from(2)
            }
        };
    }
    let mut init = Init::new(&mut sys, Logger::console());
    let steps: Vec<fn(&mut Init) -> anyhow::Result<()>> = match (step, rest) {
        ("mounts", []) => vec![init::mount_filesystems],
        ("load-modules", []) => vec![init::load_config, init::load_modules],
        ("hardware", []) => vec![
            init::load_config,
            init::hardware::hardware,
            init::udev::settle,
            init::hardware::print_report,
        ],
        ("network", []) => vec![
            init::load_config,
            network::configure_network,
            network::wait_pending_carrier,
        ],
        ("storage", [] | [_]) => {
            init.config_file = rest.first().map(PathBuf::from);
            vec![
                init::load_config,
                init::storage::assemble,
                init::storage::target_state,
                init::hardware::print_report,
            ]
        }
        ("apply-targets", [] | [_]) => {
            init.config_file = rest.first().map(PathBuf::from);
            vec![init::load_config, init::apply_targets, init::enable_ports]
        }
        ("shutdown", []) => vec![init::load_config, shutdown],
        ("boot", []) => vec![],
        _ => {
            eprintln!(
                "error: unknown step or arguments `{step} {}`\n\n{USAGE}",
                rest.join(" ")
            );
            return ExitCode::from(2);
        }
    };
    let mut code = ExitCode::SUCCESS;
    if step == "boot" {
        // Degraded or not, a boot "succeeds": the node stays up and says why.
        init.boot();
    } else {
        for f in steps {
            if let Err(e) = f(&mut init) {
                eprintln!("error: {e:#}");
                code = ExitCode::FAILURE;
                // The storage steps are warnings at boot: the report still follows.
                if step != "storage" || init.node.is_none() {
                    break;
                }
            }
        }
    }
    drop(init);
    print_ops(&sys.ops, show);
    code
}

/// `--root DIR ocf-alua ACTION`: the agent over the fake, sysfs and configfs played
/// under `DIR/sys` (or the `sysfs_root` given, inside DIR); the recorded calls follow
/// on stdout.
fn run_agent_step(dir: PathBuf, rest: &[String]) -> ExitCode {
    let env = agent::Env::from_process();
    let tree = PathBuf::from(env.param("sysfs_root").unwrap_or(agent::SYSFS));
    let mut sys = FakeSys::new(dir).with_kernel_tree(tree);
    let rc = match rest {
        [] => agent::run(None, &env, &mut sys),
        [action] => agent::run(Some(action), &env, &mut sys),
        _ => {
            eprintln!("error: unexpected arguments for `ocf-alua`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    for op in &sys.ops {
        let _ = writeln!(out, "{op}");
    }
    ExitCode::from(rc.code())
}

/// `--root DIR ocf-drbd ACTION`: the DRBD agent over the fake rooted at DIR
/// (`DIR/proc/drbd`, the tools answering from `DIR/fake-run`); the recorded calls
/// follow on stdout.
fn run_drbd_agent_step(dir: PathBuf, rest: &[String]) -> ExitCode {
    let env = agent::Env::from_process();
    let mut sys = FakeSys::new(dir);
    let rc = match rest {
        [] => agent::drbd::run(None, &env, &mut sys),
        [action] => agent::drbd::run(Some(action), &env, &mut sys),
        _ => {
            eprintln!("error: unexpected arguments for `ocf-drbd`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    for op in &sys.ops {
        let _ = writeln!(out, "{op}");
    }
    ExitCode::from(rc.code())
}

/// `--root DIR network-plan [NODE_TOML]`: the network step against links made up from
/// the config (each interface it names, down, MTU 1500), its netlink calls printed.
fn network_plan(dir: PathBuf, rest: &[String]) -> ExitCode {
    let node = {
        let mut sys = FakeSys::new(&dir);
        let mut init = Init::new(&mut sys, Logger::console());
        init.config_file = match rest {
            [] => None,
            [f] => Some(PathBuf::from(f)),
            _ => {
                eprintln!("error: usage: network-plan [NODE_TOML]\n\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = init::load_config(&mut init) {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
        init.node.clone()
    };
    let Some(node) = node else {
        return ExitCode::FAILURE;
    };
    let mut sys = FakeSys::new(&dir).with_links(network::assumed_links(&node.network));
    let mut init = Init::new(&mut sys, Logger::console());
    init.node = Some(node);
    let r = network::configure_network(&mut init)
        .and_then(|()| network::wait_pending_carrier(&mut init));
    drop(init);
    print_ops(&sys.ops, false);
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--netns NAME network NODE_TOML`: the network step for real, in a namespace.
fn run_in_netns(name: &str, file: &str) -> ExitCode {
    let path = if name.contains('/') {
        PathBuf::from(name)
    } else {
        Path::new("/run/netns").join(name)
    };
    if let Err(e) = enter_netns(&path) {
        eprintln!("error: {e} (make it with `ip netns add {name}`; this needs root)");
        return ExitCode::FAILURE;
    }
    let mut sys = RealSys::new(SysRoot::new("/"));
    let mut init = Init::new(&mut sys, Logger::console());
    init.config_file = Some(PathBuf::from(file));
    match init::load_config(&mut init)
        .and_then(|()| network::configure_network(&mut init))
        .and_then(|()| network::wait_pending_carrier(&mut init))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `status [--json]`: gathered through `sys`, printed as text or JSON.
fn status(sys: &mut dyn Sys, args: &[String]) -> ExitCode {
    let json = match args {
        [] => false,
        [j] if j == "--json" => true,
        _ => {
            eprintln!("error: usage: status [--json]\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let st = init::status::gather(sys);
    let mut out = std::io::stdout().lock();
    let _ = if json {
        out.write_all(sanforge::contract::status::to_json(&st).as_bytes())
    } else {
        sanforge::contract::status::render(&st)
            .iter()
            .try_for_each(|l| writeln!(out, "{l}"))
    };
    ExitCode::SUCCESS
}

/// `switchover ARGS` (see [`init::switchover`]): 0 done, 1 refused or failed, 2 usage.
fn switchover(sys: &mut dyn Sys, args: &[String]) -> ExitCode {
    use init::switchover::{run, Request, USAGE};
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let req = match Request::parse(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: switchover: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(sys, &req, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: switchover {}: {e}", req.resource);
            ExitCode::FAILURE
        }
    }
}

/// DRBD 8.4's fence-peer handler: its answer is the exit code (4, 5, 7; 1 nothing done).
fn fence_peer(sys: &mut dyn Sys, args: &[String]) -> ExitCode {
    use agent::drbd::fence_peer::{run, Request, USAGE};
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match Request::parse(args, |k| std::env::var(k).ok()) {
        Ok(req) => ExitCode::from(run(sys, &req, &mut std::io::stderr().lock()) as u8),
        Err(e) => {
            eprintln!("error: drbd-fence-peer: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// A DHCP event with the lease from this process's environment (udhcpc's variables).
fn dhcp_event(sys: &mut dyn Sys, event: &str) -> ExitCode {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let mut log = Logger::console();
    match network::dhcp_event(sys, &mut log, event, &env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log.line(&format!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// `logs [--follow] [--service NAME] [KMSG]`.
fn logs(args: &[String]) -> ExitCode {
    let (mut follow, mut service, mut kmsg) = (false, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--follow" | "-f" => follow = true,
            "--service" => match it.next() {
                Some(n) => service = Some(n.as_str()),
                None => {
                    eprintln!("error: --service needs a service name\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            p if kmsg.is_none() && !p.starts_with('-') => kmsg = Some(Path::new(p)),
            _ => {
                eprintln!("error: unexpected argument `{a}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let kmsg = kmsg.unwrap_or(Path::new("/dev/kmsg"));
    match init::logs::print_ring(kmsg, follow, service) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_persist_command(cmd: &str) -> bool {
    matches!(
        cmd,
        "config-set" | "factory-reset" | "secrets-set" | "update"
    )
}

/// The config partition and update commands; None on wrong arguments.
fn persist_command(
    sys: &mut dyn Sys,
    cmd: &str,
    rest: &[String],
    reboot: bool,
) -> Option<anyhow::Result<()>> {
    use sanforge::init::persist;
    Some(match (cmd, rest) {
        ("config-set", [file]) => persist::config_set(sys, std::path::Path::new(file)).map(|()| {
            println!(
                "config committed to {}/{}; it applies at the next boot",
                sanforge::contract::CONFIG_MOUNT,
                sanforge::contract::OVERRIDE
            )
        }),
        ("secrets-set", [file]) => {
            sanforge::init::secrets::secrets_set(sys, std::path::Path::new(file)).map(|()| {
                println!(
                    "secrets committed to {}/{}; the next boot uses them",
                    sanforge::contract::CONFIG_MOUNT,
                    sanforge::contract::SECRETS_OVERRIDE
                )
            })
        }
        ("factory-reset", []) => persist::factory_reset(sys)
            .map(|()| println!("config override removed; the next boot uses the baked config")),
        ("update", [dir]) => persist::update(sys, std::path::Path::new(dir), reboot)
            .map(|slot| println!("slot {slot} updated (one try); rebooting into it")),
        // `sanforge push` reboots on its own (`kill -USR1 1`) once it has the answer.
        ("update", [dir, flag]) if flag == "--no-reboot" => {
            persist::update(sys, std::path::Path::new(dir), false)
                .map(|slot| println!("slot {slot} updated (one try); it boots at the next reboot"))
        }
        _ => return None,
    })
}

fn shutdown(init: &mut Init) -> anyhow::Result<()> {
    if let Some(n) = init.node.clone() {
        if let Some(l) = &n.lio {
            init.lio = Some(sanforge::scsi::lio::plan(l));
        }
    }
    init.shutdown(RebootCmd::PowerOff);
    Ok(())
}

/// `apply-scst [FILE] [--prune]`: FILE is read from this machine; without it, the
/// node config's scst.conf inside the root.
fn apply_scst(sys: &mut dyn sanforge::sys::Sys, args: &[String]) -> anyhow::Result<()> {
    let prune = args.iter().any(|a| a == "--prune");
    let files: Vec<&String> = args.iter().filter(|a| *a != "--prune").collect();
    let (file, text) = match files.as_slice() {
        [f] if !f.starts_with('-') => {
            let p = PathBuf::from(f);
            let text = std::fs::read_to_string(&p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
            (p, text)
        }
        [] => {
            let mut init = Init::new(sys, Logger::console());
            init::load_config(&mut init)?;
            let node = init
                .node
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no node config loaded"))?;
            let Some(s) = &node.scst else {
                anyhow::bail!("the node config has no [scst] and no FILE was given");
            };
            let p = sanforge::contract::conf_path(&s.conf);
            let text = init.sys.read_to_string(&p)?;
            (p, text)
        }
        _ => anyhow::bail!("usage: apply-scst [FILE] [--prune]"),
    };
    let mut log = Logger::console();
    init::scst::apply_file(sys, &mut log, &file, &text, prune)?;
    Ok(())
}
