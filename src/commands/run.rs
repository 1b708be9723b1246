//! `sanforge run`: boots an output directory in QEMU — serial console to the terminal,
//! user networking restricted to the guest (nothing outside is reachable) with the
//! iSCSI port forwarded to 127.0.0.1.
//!
//! Reads `vmlinuz`, `initramfs.cpio.zst` and `manifest.json` (for the kernel command
//! line) from the output directory; keeps its state (console log, pid file, monitor
//! socket) in `<OUT>.run/`.

use crate::contract::DISK_IMG;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the console prints when the node is up.
pub const READY: &str = "sanforge-init: ready";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// KVM when /dev/kvm works, else TCG (software emulation).
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BootMode {
    /// QEMU loads vmlinuz and the initramfs directly (fastest).
    Direct,
    /// The firmware's iPXE fetches boot.ipxe, then the kernel and initramfs, over TFTP
    /// from the output directory (QEMU's built-in server): the PXE path, for real.
    Pxe,
    /// OVMF (UEFI) boots a throw-away copy (snapshot) of `disk.img` through
    /// systemd-boot: the USB stick / SATA DOM path.
    Uefi,
}

/// OVMF's code (read-only) and the template of its variable store (copied per run).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The address in the guest's network whose TCP ports `--guestfwd` leads to the host
/// (not QEMU's own 192.0.2.2, which user networking keeps for itself).
pub const GUESTFWD_ADDR: &str = "192.0.2.100";

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub boot: BootMode,
    pub out: PathBuf,
    pub iscsi_port: u16,
    pub memory_mib: u32,
    pub accel: Accel,
    pub until_ready: bool,
    pub timeout: Duration,
    pub extra_cmdline: Vec<String>,
    /// More TCP ports forwarded from 127.0.0.1 to the guest, `(host, guest)` (SSH,
    /// metrics).
    pub forwards: Vec<(u16, u16)>,
    /// TCP ports of [`GUESTFWD_ADDR`] led to 127.0.0.1, `(guest side, host)` (a
    /// syslog listener of a test). QEMU connects to each host port once, at start.
    pub guest_forwards: Vec<(u16, u16)>,
    /// Print the console while waiting (off in tests that only want the result).
    pub echo: bool,
}

/// `<OUT>.run/`: console log, pid file and monitor socket of a running VM.
pub fn state_dir(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".run");
    ufs::parent_dir(out).join(name)
}

fn cmdline(out: &Path, extra: &[String]) -> Result<String> {
    let m: serde_json::Value = serde_json::from_str(&ufs::read_to_string(
        &out.join("manifest.json"),
    )?)
    .with_context(|| format!("{} is not valid JSON", out.join("manifest.json").display()))?;
    let mut c = m["kernel"]["cmdline"]
        .as_str()
        .unwrap_or("console=ttyS0 panic=-1")
        .to_string();
    for e in extra {
        c.push(' ');
        c.push_str(e);
    }
    Ok(c)
}

/// The initrd QEMU loads: `initramfs.cpio.zst`, or, when `sanforge build --secrets`
/// wrote `OUT/secrets/initrd.cpio`, both concatenated (padded to 4 bytes, as a boot
/// loader does with two initrds) into a private file of the run's state directory.
fn initrd_with_secrets(out: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let public = out.join("initramfs.cpio.zst");
    let secrets = out
        .join(crate::stages::outputs::SECRETS_DIR)
        .join(crate::stages::outputs::SECRETS_INITRD);
    if !secrets.is_file() {
        return Ok(public);
    }
    let state = state_dir(out);
    ufs::create_dir_all(&state)?;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot chmod {}", state.display()))?;
    let mut data = ufs::read(&public)?;
    data.resize(data.len().div_ceil(4) * 4, 0);
    data.extend(ufs::read(&secrets)?);
    let p = state.join("initrd-with-secrets");
    ufs::write_atomic(&p, &data)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod {}", p.display()))?;
    Ok(p)
}

/// The files the boot needs are there (checked before anything is written beside
/// the output directory).
fn check_out(opts: &RunOptions) -> Result<()> {
    let needed: &[&str] = match opts.boot {
        BootMode::Uefi => &["manifest.json"],
        _ => &["vmlinuz", "initramfs.cpio.zst", "manifest.json"],
    };
    for f in needed {
        if !opts.out.join(f).is_file() {
            bail!("{} has no {f}: is it a sanforge output directory? (build one with `sanforge build`)", opts.out.display());
        }
    }
    Ok(())
}

fn qemu(opts: &RunOptions, accel: Accel) -> Result<Cmd> {
    check_out(opts)?;
    let mut net = format!(
        "user,id=n0,restrict=on,net=192.0.2.0/24,host=192.0.2.2,hostfwd=tcp:127.0.0.1:{}-:3260",
        opts.iscsi_port
    );
    for (host, guest) in &opts.forwards {
        net.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    for (guest, host) in &opts.guest_forwards {
        net.push_str(&format!(
            ",guestfwd=tcp:{GUESTFWD_ADDR}:{guest}-tcp:127.0.0.1:{host}"
        ));
    }
    let mut c = Cmd::new("qemu-system-x86_64")
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args(["-m", &opts.memory_mib.to_string()]);
    match opts.boot {
        BootMode::Direct => {
            c = c
                .arg("-kernel")
                .arg(opts.out.join("vmlinuz"))
                .arg("-initrd")
                .arg(initrd_with_secrets(&opts.out)?)
                .args(["-append", &cmdline(&opts.out, &opts.extra_cmdline)?]);
        }
        BootMode::Pxe => {
            if !opts.extra_cmdline.is_empty() {
                bail!(
                    "--append does not apply to --boot pxe: the command line comes from boot.ipxe"
                );
            }
            let dir = opts
                .out
                .to_str()
                .filter(|d| !d.contains(','))
                .with_context(|| {
                    format!(
                        "{} cannot be a TFTP root (not UTF-8 or has a comma)",
                        opts.out.display()
                    )
                })?;
            net.push_str(&format!(",tftp={dir},bootfile=boot.ipxe"));
            c = c.args(["-boot", "n"]);
        }
        BootMode::Uefi => {
            if !opts.extra_cmdline.is_empty() {
                bail!("--append does not apply to --boot uefi: the command line comes from the disk's boot loader entries");
            }
            let disk = opts.out.join(DISK_IMG);
            if !disk.is_file() {
                bail!("{} has no {}: add `disk = {{ size = \"256MiB\" }}` to the recipe's [outputs] and rebuild", opts.out.display(), DISK_IMG);
            }
            for f in [OVMF_CODE, OVMF_VARS] {
                if !Path::new(f).is_file() {
                    bail!("{f} not found: UEFI boot needs OVMF (Debian package `ovmf`)");
                }
            }
            let state = state_dir(&opts.out);
            ufs::create_dir_all(&state)?;
            let vars = state.join("OVMF_VARS.fd");
            ufs::copy(Path::new(OVMF_VARS), &vars)?;
            c = c
                .args(["-machine", "q35"])
                .arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
                ))
                .arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,unit=1,file={}",
                    vars.display()
                ))
                .arg("-drive")
                .arg(format!(
                    "file={},if=virtio,format=raw,snapshot=on",
                    disk.display()
                ));
        }
    }
    c = c
        .args([
            "-netdev",
            &net,
            "-device",
            "virtio-net-pci,netdev=n0,mac=52:54:00:00:02:0f",
        ])
        .args(["-device", "virtio-rng-pci"]);
    c = match accel {
        Accel::Kvm => c.args(["-accel", "kvm"]),
        _ => c.args(["-accel", "tcg"]),
    };
    Ok(c)
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Boots in the foreground (console on this terminal, Ctrl-A X quits) or, with
/// `until_ready`, in the background until the console says ready.
pub fn run(opts: &RunOptions) -> Result<()> {
    // QEMU -daemonize changes to /: every path it gets must be absolute.
    let mut opts = opts.clone();
    opts.out = std::path::absolute(&opts.out)
        .with_context(|| format!("cannot resolve {}", opts.out.display()))?;
    let opts = &opts;
    check_out(opts)?;
    if !opts.until_ready {
        let accel = if opts.accel == Accel::Auto && kvm_usable() {
            Accel::Kvm
        } else if opts.accel == Accel::Auto {
            Accel::Tcg
        } else {
            opts.accel
        };
        return qemu(opts, accel)?
            .args(["-serial", "mon:stdio"])
            .run_interactive();
    }
    let first = match opts.accel {
        Accel::Auto if kvm_usable() => Accel::Kvm,
        Accel::Auto => Accel::Tcg,
        a => a,
    };
    match boot_background(opts, first) {
        Err(e) if opts.accel == Accel::Auto && first == Accel::Kvm => {
            eprintln!("sanforge run: KVM did not boot ({e:#}); falling back to TCG");
            boot_background(opts, Accel::Tcg)
        }
        r => r,
    }
}

fn boot_background(opts: &RunOptions, accel: Accel) -> Result<()> {
    let state = state_dir(&opts.out);
    stop(&opts.out).ok();
    ufs::create_dir_all(&state)?;
    let console = state.join("console.log");
    let pidfile = state.join("qemu.pid");
    ufs::write(&console, "")?;
    let started = Instant::now();
    qemu(opts, accel)?
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-monitor")
        .arg(format!(
            "unix:{},server=on,wait=off",
            state.join("monitor.sock").display()
        ))
        .arg("-pidfile")
        .arg(&pidfile)
        .arg("-daemonize")
        .run(&Log::open(&state.join("qemu.log"))?)?;
    let mut f = std::fs::File::open(&console)
        .with_context(|| format!("cannot open {}", console.display()))?;
    let mut seen = String::new();
    let mut pos = 0u64;
    // With KVM, a kernel that has printed nothing after a few seconds is stuck.
    let kvm_deadline = Duration::from_secs(8);
    loop {
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(pos))
            .with_context(|| format!("cannot read {}", console.display()))?;
        f.read_to_end(&mut buf)
            .with_context(|| format!("cannot read {}", console.display()))?;
        pos += buf.len() as u64;
        let text = String::from_utf8_lossy(&buf);
        if opts.echo && !text.is_empty() {
            let mut so = std::io::stdout();
            let _ = so.write_all(text.as_bytes());
            let _ = so.flush();
        }
        seen.push_str(&text);
        if seen.contains(READY) {
            eprintln!(
                "sanforge run: ready after {:.1}s ({}); iSCSI on 127.0.0.1:{}; console {}; stop with `sanforge run --stop {}`",
                started.elapsed().as_secs_f64(),
                if accel == Accel::Kvm { "KVM" } else { "TCG" },
                opts.iscsi_port,
                console.display(),
                opts.out.display()
            );
            return Ok(());
        }
        if accel == Accel::Kvm
            && started.elapsed() > kvm_deadline
            && !seen.contains("Linux version")
            // Under UEFI, the firmware's boot manager speaks first.
            && !(opts.boot == BootMode::Uefi && seen.contains("BdsDxe"))
        {
            stop(&opts.out).ok();
            bail!(
                "no kernel output after {}s under KVM",
                kvm_deadline.as_secs()
            );
        }
        if started.elapsed() > opts.timeout {
            stop(&opts.out).ok();
            let tail: Vec<&str> = seen
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!(
                "`{READY}` did not appear within {}s; last console lines:\n  {}",
                opts.timeout.as_secs(),
                tail.join("\n  ")
            );
        }
        if !alive(&pidfile) && started.elapsed() > Duration::from_secs(1) {
            let tail: Vec<&str> = seen
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!(
                "QEMU exited before `{READY}`; last console lines:\n  {}",
                tail.join("\n  ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_pid(pidfile: &Path) -> Option<i32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

fn alive(pidfile: &Path) -> bool {
    read_pid(pidfile).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Stops the VM started by `run --until-ready` for this output directory.
pub fn stop(out: &Path) -> Result<bool> {
    let pidfile = state_dir(out).join("qemu.pid");
    let Some(pid) = read_pid(&pidfile) else {
        return Ok(false);
    };
    let proc_cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&proc_cmd).contains("qemu") {
        let _ = std::fs::remove_file(&pidfile);
        return Ok(false);
    }
    crate::sys::kill_pid(pid, libc::SIGTERM);
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        crate::sys::kill_pid(pid, libc::SIGKILL);
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(true)
}

/// `HOST:GUEST` of `--forward`.
pub fn parse_forward(s: &str) -> std::result::Result<(u16, u16), String> {
    let (h, g) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected HOST_PORT:GUEST_PORT like 2222:22"))?;
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{s}`: `{p}` is not a port (1 to 65535)"))
    };
    Ok((port(h)?, port(g)?))
}
