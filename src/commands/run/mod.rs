//! `sanforge run`: boots an output directory in QEMU — serial console to the terminal,
//! user networking restricted to the guest (nothing outside is reachable) with the
//! iSCSI port forwarded to 127.0.0.1.
//!
//! Reads `vmlinuz`, `initramfs.cpio.zst` and `manifest.json` (for the kernel command
//! line) from the output directory; keeps its state (console log, pid file, monitor
//! socket) in `<OUT>.run/`.
//!
//! Server hardware ([`Hardware`]): the machine type, NICs of the models servers carry
//! (each on the user network or on a point-to-point socket link to another VM; NICs
//! on one network share a QEMU hub, which is how two NICs become one bond's slaves)
//! and disks behind the controllers servers carry (virtio, AHCI, NVMe, MegaRAID SAS,
//! LSI SAS), with serial numbers that make their `/dev/disk/by-id` names predictable.
//! [`monitor`] sends one command to a running VM's monitor (`set_link nic0 off`).
//!
//! Files: this one (options, start, stop, monitor), `hardware.rs` (the emulated
//! machine, NICs, disks and forwards, parsed from the command line), `qemu.rs` (the
//! QEMU command line of `run` and `matrix`).

use crate::util::cmd::Log;
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod hardware;
mod qemu;
pub use hardware::OVMF_VARS;
pub use hardware::{
    default_mac, disk_serial, Accel, BootMode, DiskBus, DiskSpec, Forward, Hardware, Machine,
    NicModel, NicNet, NicSpec, OVMF_CODE,
};
use qemu::{check_hardware, check_out, kvm_usable};
pub use qemu::{disk_args, nic_args, qemu_command};

/// What the console prints when the node is up.
pub const READY: &str = "sanforge-init: ready";

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
    /// Print the console while waiting (off in tests that only want the result).
    pub echo: bool,
    /// Machine type, NICs, disks and more forwards.
    pub hw: Hardware,
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

/// Boots in the foreground (console on this terminal, Ctrl-A X quits) or, with
/// `until_ready`, in the background until the console says ready.
pub fn run(opts: &RunOptions) -> Result<()> {
    // QEMU -daemonize changes to /: every path it gets must be absolute.
    let mut opts = opts.clone();
    opts.out = std::path::absolute(&opts.out)
        .with_context(|| format!("cannot resolve {}", opts.out.display()))?;
    for d in &mut opts.hw.disks {
        d.file = std::path::absolute(&d.file)
            .with_context(|| format!("cannot resolve {}", d.file.display()))?;
    }
    let opts = &opts;
    check_out(opts)?;
    check_hardware(opts)?;
    if !opts.until_ready {
        let accel = if opts.accel == Accel::Auto && kvm_usable() {
            Accel::Kvm
        } else if opts.accel == Accel::Auto {
            Accel::Tcg
        } else {
            opts.accel
        };
        return qemu_command(opts, accel)?
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
    qemu_command(opts, accel)?
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

/// Sends one command to the monitor of the VM `run --until-ready` started for `out`
/// (QEMU's human monitor, e.g. `set_link nic0 off`, `info network`) and returns its
/// answer. A command QEMU does not know, or one it answers with `Error: …`, is an
/// error carrying the answer.
pub fn monitor(out: &Path, command: &str) -> Result<String> {
    use std::os::unix::net::UnixStream;
    if command.contains('\n') || command.trim().is_empty() {
        bail!("--monitor takes one command on one line, e.g. 'set_link nic0 off'");
    }
    let sock = state_dir(out).join("monitor.sock");
    if !alive(&state_dir(out).join("qemu.pid")) {
        bail!(
            "no VM is running for {} (start one with `sanforge run {} --until-ready`)",
            out.display(),
            out.display()
        );
    }
    let mut s = UnixStream::connect(&sock)
        .with_context(|| format!("cannot connect to the monitor {}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .with_context(|| format!("cannot set a timeout on {}", sock.display()))?;
    const PROMPT: &str = "(qemu) ";
    let read_prompt = |s: &mut UnixStream| -> Result<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.ends_with(PROMPT.as_bytes()) {
            let n = s
                .read(&mut chunk)
                .with_context(|| format!("no answer from the monitor {}", sock.display()))?;
            if n == 0 {
                bail!("the monitor {} closed the connection", sock.display());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    read_prompt(&mut s)?; // the banner
    s.write_all(format!("{command}\n").as_bytes())
        .with_context(|| format!("cannot write to the monitor {}", sock.display()))?;
    let answer = monitor_answer(&read_prompt(&mut s)?);
    if answer.starts_with("unknown command") || answer.starts_with("Error:") {
        bail!("QEMU's monitor refused `{command}`: {}", answer.trim_end());
    }
    Ok(answer)
}

/// The monitor's answer without its echo of the typed line (which ends at the first
/// CRLF), the closing prompt and the carriage returns.
fn monitor_answer(raw: &str) -> String {
    let body = raw.strip_suffix("(qemu) ").unwrap_or(raw);
    let body = body.split_once("\r\n").map(|(_, rest)| rest).unwrap_or("");
    body.replace("\r\n", "\n")
}

#[cfg(test)]
mod tests;
