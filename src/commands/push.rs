//! `sanforge push OUT HOST`: updates a running node over SSH, in phases that each
//! print a progress line and name themselves in an error:
//!
//! 1. **check** (nothing leaves this machine): every file `OUT/SHA256SUMS` lists
//!    matches, and `SHA256SUMS.sig` is signed by the key the node trusts (its
//!    `/etc/sanforge/update.pub`, which `sanforge-init status` reports) and by
//!    `--pubkey` when given. An unsigned or foreign-signed or corrupted output is
//!    refused before anything is copied.
//! 2. **connect**: the node's status over SSH (`sanforge status`'s command): its boot
//!    slot, image, boot id and update key. A node booted from the network has no slot
//!    to write: push says so and stops (it boots the new output once its boot server
//!    has it and it reboots).
//! 3. **copy**: the files a slot needs (kernel, initramfs or squashfs root, manifest,
//!    sums and signature; not disk.img) into [`PUSH_STAGING`] on the node (RAM), one
//!    `ssh … 'cat > FILE'` each, after emptying it. An interrupted copy leaves only that
//!    directory: the slots are untouched, the node keeps running, a new push starts over.
//! 4. **update**: `sanforge-init update DIR --no-reboot` on the node checks the hashes
//!    and the signature again and writes the inactive slot with one try.
//! 5. **reboot** (`kill -USR1 1`: the init's orderly reboot) and **wait**: the status
//!    is polled until a new boot (boot id) reports its final state. Success is the new
//!    slot ready on the new image version; otherwise the reason: the slot used up its
//!    try and systemd-boot went back to the old one (the loader entries say so), or it
//!    booted degraded (its errors), or nothing answered in time.
//!
//! The host side is Debian's OpenSSH client (BatchMode: never a prompt), the node side
//! dropbear and busybox's shell; no scp or sftp server is needed on the node.

use super::status::{ssh_command, StatusOptions};
use crate::contract::signature::{self, fingerprint};
use crate::contract::status::Status;
use crate::contract::{
    INIT, INITRAMFS, INIT_CPIO, MANIFEST, PUSH_STAGING, ROOT_SQUASHFS, ROOT_VERITY, SIG_FILE,
    SUMS_FILE, VMLINUZ,
};
use crate::util::cmd::Log;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The command line of `sanforge push`.
#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// Output directory to install (built and signed: `sanforge sign OUT --key KEY`)
    pub out: PathBuf,
    /// The node's address or name
    pub host: String,
    /// SSH port
    #[arg(long, default_value_t = 22)]
    pub port: u16,
    /// Private key (ssh -i); ssh's defaults without it
    #[arg(short = 'i', long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// known_hosts file for the node's host key [default: ssh's]
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Also require OUT to be signed by this key (KEY.pub from `sanforge keygen`); needed
    /// when the node's image trusts no update key
    #[arg(long, value_name = "KEY.pub")]
    pub pubkey: Option<PathBuf>,
    /// Seconds to wait for the node to come back ready after the reboot
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// The image an output directory holds, from its (verified) manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutImage {
    /// The recipe's name (`IMAGE_ID` on the node).
    pub id: String,
    /// The short rootfs key (`IMAGE_VERSION` on the node).
    pub version: String,
    /// What a slot needs, in copy order (sums and signature last).
    pub files: Vec<String>,
}

/// How a push ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The node is ready on `slot` with the new image.
    Ready { slot: String },
    /// The node boots from the network: nothing was copied.
    Network,
    /// The node already runs this image.
    Current { slot: String },
}

/// What a status seen after the reboot says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Still the old boot (going down), or a new boot not finished yet.
    Waiting(String),
    /// New boot, new slot, new image, ready.
    Ready,
    /// Anything else after a new boot's final state: why the update did not take.
    Failed(String),
}

/// Prints one progress line: seconds since the push began, the phase, the text.
struct Progress {
    started: Instant,
    host: String,
}

impl Progress {
    fn line(&self, phase: &str, text: &str) {
        println!(
            "[{:6.1}s] {} {phase:<7} {text}",
            self.started.elapsed().as_secs_f64(),
            self.host
        );
    }
}

/// Names the host and the phase around an error.
fn phase<T>(r: Result<T>, host: &str, phase: &str) -> Result<T> {
    r.with_context(|| format!("push to {host} failed in phase `{phase}`"))
}

/// Phase `check`: the whole directory matches its sums (and `--pubkey` signed it).
pub fn check_out(out: &Path, pubkey: Option<&Path>) -> Result<OutImage> {
    if let Some(p) = pubkey {
        let key = signature::load_verifying_key(p)?;
        signature::verify_signature(out, &key).with_context(|| {
            format!(
                "{} is not signed by --pubkey {}",
                out.display(),
                p.display()
            )
        })?;
    }
    let listed = signature::check_sums(out).with_context(|| {
        format!(
            "{} is not the output directory its SHA256SUMS describes (corrupted or changed): refusing it",
            out.display()
        )
    })?;
    let manifest = out.join(MANIFEST);
    let m: serde_json::Value = serde_json::from_str(&crate::util::fs::read_to_string(&manifest)?)
        .with_context(|| format!("cannot parse {}", manifest.display()))?;
    let field = |ptr: &str| {
        m.pointer(ptr)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .with_context(|| format!("{}: no `{ptr}`", manifest.display()))
    };
    let id = field("/recipe/name")?;
    let rootfs = field("/keys/rootfs")?;
    let version = rootfs.get(..12).unwrap_or(&rootfs).to_string();
    Ok(OutImage {
        id,
        version,
        files: slot_files(&listed).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?,
    })
}

/// The files of an output directory a slot needs (`sanforge-init update` reads them).
pub fn slot_files(listed: &[String]) -> Result<Vec<String>, String> {
    let has = |f: &str| listed.iter().any(|l| l == f);
    let mut files: Vec<&str> = if has(ROOT_SQUASHFS) {
        vec![VMLINUZ, INIT_CPIO, ROOT_SQUASHFS, ROOT_VERITY, MANIFEST]
    } else {
        vec![VMLINUZ, INITRAMFS, MANIFEST]
    };
    if let Some(f) = files.iter().find(|f| !has(f)) {
        return Err(format!(
            "SHA256SUMS does not list {f}: not a bootable output"
        ));
    }
    files.extend([SUMS_FILE, SIG_FILE]);
    Ok(files.into_iter().map(str::to_string).collect())
}

/// Phase `check` against the node: OUT is signed by the key the node trusts.
pub fn check_signer(out: &Path, st: &Status, pubkey_given: bool) -> Result<String> {
    match &st.image.update_key {
        Some(hex) => {
            let key = signature::verifying_key_from_hex(hex, "the node's update key")?;
            signature::verify_signature(out, &key).with_context(|| {
                format!(
                    "the node trusts update key {}: refusing {} before copying anything",
                    fingerprint(&key),
                    out.display()
                )
            })?;
            Ok(format!("signed by key {}, the one the node trusts", fingerprint(&key)))
        }
        None if pubkey_given => Ok(
            "signed by --pubkey; the node's image has no update key (it checks hashes only)"
                .into(),
        ),
        None => bail!(
            "the node's image trusts no update key ({} is absent) and no --pubkey was given: cannot check the signature of {}; refusing",
            crate::contract::UPDATE_KEY,
            out.display()
        ),
    }
}

/// After the reboot: what `st` says, given the boot before it (`old`), the slot the
/// update wrote and the image version pushed.
pub fn classify(old: &Status, st: &Status, target: &str, version: &str) -> Seen {
    let new_boot = match (&old.boot.id, &st.boot.id) {
        (Some(a), Some(b)) => a != b,
        _ => match (old.boot.uptime_seconds, st.boot.uptime_seconds) {
            (Some(a), Some(b)) => b < a,
            _ => false,
        },
    };
    if !new_boot {
        return Seen::Waiting("the old boot is still up (shutting down)".into());
    }
    let state = st
        .timeline
        .as_ref()
        .map(|t| t.state.clone())
        .unwrap_or_else(|| "booting".into());
    if state == "booting" {
        return Seen::Waiting("up again, booting".into());
    }
    let slot = st.boot.slot.clone().unwrap_or_default();
    let running = st.image.version.clone().unwrap_or_default();
    if slot != target {
        let gone = st
            .boot
            .entries
            .iter()
            .find(|e| {
                e.strip_prefix(&format!("sanforge-{target}"))
                    .is_some_and(|rest| rest.starts_with(['+', '.']))
            })
            .map(|e| format!("its entry is now {e}"))
            .unwrap_or_else(|| "its entry is gone".into());
        return Seen::Failed(format!(
            "fell back to slot {slot} (version {running}, {state}): slot {target} did not reach ready within its boot try ({gone}), so the boot loader went back to the old slot"
        ));
    }
    if running != version {
        return Seen::Failed(format!(
            "slot {target} runs version {running}, not the pushed {version}"
        ));
    }
    if state != "ready" {
        let errors = if st.errors.is_empty() {
            String::new()
        } else {
            format!(": {}", st.errors.join("; "))
        };
        return Seen::Failed(format!(
            "slot {target} booted version {version} but is not ready ({state}){errors}; it stays unblessed and the next reboot goes back to the old slot"
        ));
    }
    Seen::Ready
}

/// The ssh options of a push (a short connect timeout: an unreachable host fails fast).
pub fn ssh_options(a: &PushArgs) -> StatusOptions {
    StatusOptions {
        host: a.host.clone(),
        port: a.port,
        identity: a.identity.clone(),
        known_hosts: a.known_hosts.clone(),
        connect_timeout_secs: 5,
    }
}

fn status(o: &StatusOptions) -> Result<Status> {
    super::status::fetch(o).map(|(_, st)| st)
}

/// Runs a shell command on the node; returns its stdout.
fn remote(o: &StatusOptions, script: &str, stdin: Option<&Path>) -> Result<String> {
    let mut c = ssh_command(o, &[script]);
    if let Some(f) = stdin {
        c = c.stdin_file(f);
    }
    c.output(&Log::none())
}

pub fn run(a: &PushArgs) -> Result<Pushed> {
    let p = Progress {
        started: Instant::now(),
        host: a.host.clone(),
    };
    let host = a.host.as_str();
    let o = ssh_options(a);
    let img = phase(check_out(&a.out, a.pubkey.as_deref()), host, "check")?;
    p.line(
        "check",
        &format!(
            "{}: image {} version {}, every file matches SHA256SUMS",
            a.out.display(),
            img.id,
            img.version
        ),
    );
    let old = phase(
        status(&o).context("no SSH answer from the node (is it up, and does its node config have [ssh] authorized-keys?)"),
        host,
        "connect",
    )?;
    let slot = old.boot.slot.clone();
    p.line(
        "connect",
        &format!(
            "{} runs {} version {} on slot {}",
            old.hostname.as_deref().unwrap_or("?"),
            old.image.id.as_deref().unwrap_or("?"),
            old.image.version.as_deref().unwrap_or("?"),
            slot.as_deref().unwrap_or("none (network boot)")
        ),
    );
    let Some(slot) = slot else {
        p.line("done", &format!("{host} boots from the network: it has no boot slot to write. Put {} on its boot server (`sanforge serve`, or your PXE server's directory) and reboot the node", a.out.display()));
        return Ok(Pushed::Network);
    };
    let signed = phase(
        check_signer(&a.out, &old, a.pubkey.is_some()),
        host,
        "check",
    )?;
    p.line("check", &signed);
    if old.image.version.as_deref() == Some(img.version.as_str()) {
        p.line(
            "done",
            &format!(
                "already runs version {} on slot {slot}: nothing to do",
                img.version
            ),
        );
        return Ok(Pushed::Current { slot });
    }

    phase(copy(a, &o, &img, &p), host, "copy")?;
    let answer = phase(
        remote(
            &o,
            &format!("{INIT} update {PUSH_STAGING} --no-reboot"),
            None,
        )
        .context(
            "the node refused the update (the copy stays staged in RAM; the slots are unchanged)",
        ),
        host,
        "update",
    )?;
    let target = answer
        .split_whitespace()
        .skip_while(|w| *w != "slot")
        .nth(1)
        .map(str::to_string)
        .with_context(|| format!("unexpected answer of `{INIT} update`: {answer:?}"));
    let target = phase(target, host, "update")?;
    p.line("update", answer.trim());
    // The connection may drop while the node goes down: the wait below judges.
    let _ = remote(&o, &format!("rm -rf {PUSH_STAGING}; kill -USR1 1"), None);
    p.line("reboot", &format!("rebooting into slot {target}"));
    phase(wait(a, &o, &old, &target, &img.version, &p), host, "wait")?;
    p.line(
        "ready",
        &format!(
            "{host} is ready on slot {target} with {} version {} ({:.1} s since the push began)",
            img.id,
            img.version,
            p.started.elapsed().as_secs_f64()
        ),
    );
    Ok(Pushed::Ready { slot: target })
}

/// Phase `copy`: a fresh staging directory, then each file.
fn copy(a: &PushArgs, o: &StatusOptions, img: &OutImage, p: &Progress) -> Result<()> {
    remote(
        o,
        &format!("rm -rf {PUSH_STAGING} && mkdir -p {PUSH_STAGING}"),
        None,
    )
    .with_context(|| format!("cannot make {PUSH_STAGING} on the node"))?;
    for f in &img.files {
        let local = a.out.join(f);
        let t = Instant::now();
        remote(o, &format!("cat > {PUSH_STAGING}/{f}"), Some(&local)).with_context(|| {
            format!(
                "copying {} to {PUSH_STAGING}/{f} was cut off (the node keeps its slots; push again)",
                local.display()
            )
        })?;
        let size = std::fs::metadata(&local).map(|m| m.len()).unwrap_or(0);
        let size = if size < 1 << 20 {
            format!("{:.1} KiB", size as f64 / 1024.0)
        } else {
            format!("{:.1} MiB", size as f64 / 1048576.0)
        };
        p.line(
            "copy",
            &format!("{f} ({size}) in {:.1} s", t.elapsed().as_secs_f64()),
        );
    }
    Ok(())
}

/// Phases `reboot` and `wait`: polls the status until a new boot says how it ended.
fn wait(
    a: &PushArgs,
    o: &StatusOptions,
    old: &Status,
    target: &str,
    version: &str,
    p: &Progress,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(a.timeout);
    let mut last = String::new();
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let now = match status(o) {
            Ok(st) => match classify(old, &st, target, version) {
                Seen::Ready => return Ok(()),
                Seen::Failed(why) => bail!("{why}"),
                Seen::Waiting(w) => w,
            },
            Err(_) => "down (rebooting), or SSH not up yet".to_string(),
        };
        if now != last {
            p.line("wait", &now);
            last = now;
        }
        if Instant::now() > deadline {
            bail!(
                "the node did not report a finished boot within {} s (last seen: {last})",
                a.timeout
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::status::{Boot, Image};
    use crate::contract::timeline::Timeline;

    fn st(id: &str, slot: &str, version: &str, state: &str, entries: &[&str]) -> Status {
        let mut t = Timeline::new(Duration::from_secs(1));
        t.state = state.into();
        Status {
            image: Image {
                version: Some(version.into()),
                ..Image::default()
            },
            boot: Boot {
                slot: Some(slot.into()),
                id: Some(id.into()),
                entries: entries.iter().map(|e| e.to_string()).collect(),
                ..Boot::default()
            },
            timeline: Some(t),
            ..Status::default()
        }
    }

    #[test]
    fn a_new_boot_on_the_new_slot_and_image_is_ready() {
        let old = st("boot1", "a", "111111111111", "ready", &["sanforge-a.conf"]);
        let same = st("boot1", "a", "111111111111", "ready", &[]);
        assert!(matches!(
            classify(&old, &same, "b", "222222222222"),
            Seen::Waiting(_)
        ));
        let booting = st("boot2", "b", "222222222222", "booting", &[]);
        assert_eq!(
            classify(&old, &booting, "b", "222222222222"),
            Seen::Waiting("up again, booting".into())
        );
        let ready = st("boot2", "b", "222222222222", "ready", &[]);
        assert_eq!(classify(&old, &ready, "b", "222222222222"), Seen::Ready);
    }

    #[test]
    fn a_fallback_and_a_degraded_slot_say_why() {
        let old = st("boot1", "a", "111111111111", "ready", &["sanforge-a.conf"]);
        let back = st(
            "boot3",
            "a",
            "111111111111",
            "ready",
            &["sanforge-a.conf", "sanforge-b+0-1.conf"],
        );
        match classify(&old, &back, "b", "222222222222") {
            Seen::Failed(why) => assert!(
                why.starts_with(
                    "fell back to slot a (version 111111111111, ready): slot b did not reach ready"
                ) && why.contains("its entry is now sanforge-b+0-1.conf"),
                "{why}"
            ),
            s => panic!("{s:?}"),
        }
        let mut degraded = st("boot2", "b", "222222222222", "state: degraded", &[]);
        degraded.errors = vec!["config (degraded): no [lio]".into()];
        match classify(&old, &degraded, "b", "222222222222") {
            Seen::Failed(why) => assert!(
                why.contains("is not ready (state: degraded): config (degraded): no [lio]"),
                "{why}"
            ),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn a_slot_gets_kernel_initramfs_manifest_then_sums_and_signature() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            slot_files(&l(&[
                "boot.ipxe",
                "disk.img",
                "initramfs.cpio.zst",
                "manifest.json",
                "vmlinuz"
            ]))
            .unwrap(),
            l(&[
                "vmlinuz",
                "initramfs.cpio.zst",
                "manifest.json",
                "SHA256SUMS",
                "SHA256SUMS.sig"
            ])
        );
        assert_eq!(
            slot_files(&l(&[
                "init.cpio.zst",
                "initramfs.cpio.zst",
                "manifest.json",
                "root.squashfs",
                "root.verity",
                "vmlinuz"
            ]))
            .unwrap(),
            l(&[
                "vmlinuz",
                "init.cpio.zst",
                "root.squashfs",
                "root.verity",
                "manifest.json",
                "SHA256SUMS",
                "SHA256SUMS.sig"
            ])
        );
        assert_eq!(
            slot_files(&l(&["boot.ipxe", "manifest.json", "vmlinuz"])).unwrap_err(),
            "SHA256SUMS does not list initramfs.cpio.zst: not a bootable output"
        );
    }
}
