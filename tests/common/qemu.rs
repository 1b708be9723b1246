//! A VM started with plain QEMU arguments (TCG) from a build's output directory, for
//! tests that need what `sanforge run` does not attach: the kernel and initramfs with
//! an extra command line, virtio disks with serials (the guest's udev names them
//! `/dev/disk/by-id/virtio-SERIAL`), QEMU user networking with `restrict=on` and the
//! guest's address 192.0.2.15 (as `sanforge run`), guest ports forwarded to loopback
//! ports, the serial console in a file. `-no-reboot`: a guest that reboots or powers
//! off ends the QEMU process. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A raw disk image attached as a virtio disk with a serial.
pub struct Disk {
    pub file: PathBuf,
    pub serial: String,
}

impl Disk {
    pub fn new(file: &Path, serial: &str) -> Disk {
        Disk {
            file: file.to_path_buf(),
            serial: serial.to_string(),
        }
    }
}

/// An empty (sparse) raw disk image of `mib` MiB.
pub fn blank_disk(file: &Path, mib: u64) {
    let f = std::fs::File::create(file).unwrap();
    f.set_len(mib << 20).unwrap();
}

pub struct Guest {
    child: Child,
    pub console: PathBuf,
    pub started: Instant,
}

impl Guest {
    /// Boots `out/vmlinuz` + `out/initramfs.cpio.zst` with `append` after the console
    /// arguments, `disks` in order (vda, vdb, …), and each (host, guest) TCP port of
    /// `forwards` forwarded from 127.0.0.1. The console goes to `console`.
    pub fn start(
        out: &Path,
        console: &Path,
        append: &str,
        disks: &[Disk],
        forwards: &[(u16, u16)],
    ) -> Guest {
        let mut net = "user,id=n0,restrict=on,net=192.0.2.0/24,host=192.0.2.2".to_string();
        for (host, guest) in forwards {
            net.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
        }
        let mut c = Command::new("qemu-system-x86_64");
        c.args([
            "-accel", "tcg", "-m", "512", "-smp", "1", "-display", "none",
        ])
        .args(["-nodefaults", "-no-user-config", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-kernel")
        .arg(out.join("vmlinuz"))
        .arg("-initrd")
        .arg(out.join("initramfs.cpio.zst"))
        .arg("-append")
        .arg(format!("console=ttyS0 panic=-1 {append}"))
        .args(["-netdev", &net])
        .args(["-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:02:0f"]);
        for (i, d) in disks.iter().enumerate() {
            c.arg("-drive")
                .arg(format!(
                    "file={},format=raw,if=none,id=d{i},cache=unsafe",
                    d.file.display()
                ))
                .arg("-device")
                .arg(format!("virtio-blk-pci,drive=d{i},serial={}", d.serial));
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = c
            .spawn()
            .expect("qemu-system-x86_64 (Debian package qemu-system-x86)");
        Guest {
            child,
            console: console.to_path_buf(),
            started: Instant::now(),
        }
    }

    /// The console so far.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.console).unwrap_or_default()).into_owned()
    }

    /// Waits until the console shows `needle`: the time since the start, or the
    /// console when it did not within `timeout` (or QEMU ended first).
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<Duration, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.console().contains(needle) {
                return Ok(self.started.elapsed());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!(
                    "QEMU ended ({st}) before `{needle}`; console:\n{}",
                    self.console()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no `{needle}` within {timeout:?}; console:\n{}",
                    self.console()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for QEMU to end (the guest rebooted or powered off): whether it did
    /// within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
