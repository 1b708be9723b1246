//! Boot step `ssh`: root's login by public key, nothing else. With `[ssh]
//! authorized-keys` in the node config (baked, or committed to the config partition by
//! `config-set`), the init checks each key (a malformed one is named and left out),
//! writes the good ones to root's `authorized_keys`, makes sure an ed25519 host key
//! exists (generated with `dropbearkey` on first boot and kept on the config
//! partition, so it survives reboots and updates; in `/run` with a warning when the
//! node has no config partition), mounts devpts for terminals and supervises Debian's
//! dropbear (package `dropbear-bin`) with password logins disabled (`-s`, and `-g` for
//! root). No usable key means no SSH server, and the console says so.

use super::supervisor::{Supervised, BACKOFF_MIN};
use super::Init;
use crate::config::node::{Restart, Service};
use crate::config::ops::parse_authorized_key;
use crate::contract::{
    AUTHORIZED_KEYS, CONFIG_MOUNT, DROPBEAR, DROPBEARKEY, SSH_HOST_KEY, SSH_KEY_DIR,
    SSH_RUN_KEY_DIR,
};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long `dropbearkey` may take (an ed25519 key: milliseconds, TCG included).
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(60);

/// The supervised service's name.
pub const SERVICE: &str = "sshd";

/// The boot step.
pub fn start(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let Some(ssh) = node.ssh.clone().filter(|s| !s.authorized_keys.is_empty()) else {
        init.log
            .line("ssh: no authorized keys configured: no SSH server");
        return Ok(());
    };
    let mut lines = Vec::new();
    let mut bad = 0;
    for (i, k) in ssh.authorized_keys.iter().enumerate() {
        match parse_authorized_key(k) {
            Ok(key) => lines.push(key.line()),
            Err(e) => {
                bad += 1;
                let comment = k.split_whitespace().nth(2).unwrap_or("no comment");
                init.warn(format!(
                    "ssh: authorized-keys[{i}] ({comment}) left out: {e}"
                ));
            }
        }
    }
    if lines.is_empty() {
        init.log.line(&format!(
            "ssh: none of the {bad} authorized keys is usable: no SSH server"
        ));
        bail!("no usable authorized key");
    }
    if !init.sys.exists(Path::new(DROPBEAR)) {
        bail!("{DROPBEAR} is not in the image: add the Debian package dropbear-bin to the recipe's [userland] packages; no SSH server");
    }
    let keys = Path::new(AUTHORIZED_KEYS);
    if let Some(dir) = keys.parent() {
        init.sys.mkdir(dir)?;
    }
    init.sys
        .write_durable(keys, format!("{}\n", lines.join("\n")).as_bytes())?;
    let host_key = host_key(init)?;
    mount_devpts(init);
    let argv: Vec<String> = [
        DROPBEAR, "-F", // foreground: supervised by the init
        "-E", // log to stderr (the console)
        "-s", // no password logins at all
        "-g", // nor for root
        "-j", "-k", // no port forwarding
        "-p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        ssh.listen.clone(),
        "-r".into(),
        host_key.display().to_string(),
    ])
    .collect();
    let now = Instant::now();
    init.supervisor.services.push(Supervised {
        svc: Service {
            name: SERVICE.into(),
            argv,
            restart: Restart::Always,
            env: Default::default(),
        },
        pid: None,
        started: None,
        backoff: BACKOFF_MIN,
        next_start: Some(now),
        starts: 0,
        last_exit: None,
    });
    init.supervisor.start_due(init.sys, &mut init.log, now);
    init.supervisor.write_state(init.sys, &mut init.log);
    init.log.line(&format!(
        "ssh: dropbear on {}, {} authorized key{}, passwords refused, host key {}",
        ssh.listen,
        lines.len(),
        if lines.len() == 1 { "" } else { "s" },
        host_key.display()
    ));
    if bad > 0 {
        bail!("{bad} authorized keys left out (see above)");
    }
    Ok(())
}

/// The host key: on the config partition when it is mounted (generated there on first
/// boot, atomically), else in `/run` (a new one every boot, said as a warning).
fn host_key(init: &mut Init) -> Result<PathBuf> {
    let persistent = init.sys.exists(Path::new(CONFIG_MOUNT));
    let dir = if persistent {
        Path::new(CONFIG_MOUNT).join(SSH_KEY_DIR)
    } else {
        init.warn(format!(
            "ssh: no config partition at {CONFIG_MOUNT}: the host key lives in {SSH_RUN_KEY_DIR} and changes at every boot"
        ));
        PathBuf::from(SSH_RUN_KEY_DIR)
    };
    let key = dir.join(SSH_HOST_KEY);
    if init.sys.exists(&key) {
        return Ok(key);
    }
    init.sys.mkdir(&dir)?;
    let tmp = dir.join(format!("{SSH_HOST_KEY}.new"));
    if init.sys.exists(&tmp) {
        init.sys.remove_file(&tmp)?;
    }
    let argv: Vec<String> = [DROPBEARKEY, "-t", "ed25519", "-f"]
        .iter()
        .map(|s| s.to_string())
        .chain([tmp.display().to_string()])
        .collect();
    let (status, _) = init
        .sys
        .run_capture(&argv, KEYGEN_TIMEOUT)
        .context("ssh: cannot generate the host key")?;
    if !status.success() {
        bail!("ssh: `{}` failed: {status}", argv.join(" "));
    }
    if !init.sys.exists(&tmp) {
        bail!("ssh: `{}` succeeded but wrote no key", argv.join(" "));
    }
    init.sys.rename(&tmp, &key)?;
    init.sys.fsync_dir(&dir)?;
    init.log
        .line(&format!("ssh: new host key {}", key.display()));
    Ok(key)
}

/// Terminals for interactive logins; commands run without one if this fails.
fn mount_devpts(init: &mut Init) {
    let pts = Path::new("/dev/pts");
    if init.sys.exists(&pts.join("ptmx")) {
        return;
    }
    let r = init.sys.mkdir(pts).and_then(|()| {
        init.sys.mount(
            "devpts",
            pts,
            "devpts",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            "mode=620,ptmxmode=666",
        )
    });
    if let Err(e) = r {
        init.warn(format!("ssh: no terminals for logins: {e}"));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::node::NodeConfig;
    use crate::init::Logger;
    use crate::sys::FakeSys;

    const GOOD: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEWRqQT80fd2SLuoi31ct69bCYsjAtOEgl5OZ6zHrl7 op@laptop";

    fn node(extra: &str) -> crate::config::node::ValidNode {
        NodeConfig::parse(
            Path::new("node.toml"),
            &format!("hostname = \"n\"\n{extra}"),
        )
        .unwrap()
    }

    /// A host key from an earlier boot, under `dir` (the config partition's or /run's).
    fn old_key(t: &tempfile::TempDir, dir: &str) {
        let d = t.path().join(dir.trim_start_matches('/'));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(SSH_HOST_KEY), "key").unwrap();
    }

    fn tree(with_dropbear: bool, config_partition: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if with_dropbear {
            std::fs::create_dir_all(dir.path().join("usr/sbin")).unwrap();
            std::fs::write(dir.path().join("usr/sbin/dropbear"), "").unwrap();
            // FakeSys::run_capture answers from /fake-run/<program>.
            std::fs::create_dir_all(dir.path().join("fake-run")).unwrap();
            std::fs::write(dir.path().join("fake-run/dropbearkey"), "").unwrap();
        }
        if config_partition {
            std::fs::create_dir_all(dir.path().join("run/sanforge/config")).unwrap();
        }
        dir
    }

    #[test]
    fn no_key_no_server_said_at_boot() {
        let dir = tree(true, true);
        let mut sys = FakeSys::new(dir.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        init.node = Some(node(""));
        start(&mut init).unwrap();
        assert_eq!(
            init.log.lines(),
            ["ssh: no authorized keys configured: no SSH server"]
        );
        assert!(init.supervisor.services.is_empty());
    }

    #[test]
    fn a_malformed_key_is_named_and_the_others_work() {
        let dir = tree(true, true);
        old_key(&dir, "/run/sanforge/config/ssh");
        let mut sys = FakeSys::new(dir.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        init.node = Some(node(&format!(
            "[ssh]\nauthorized-keys = [\"ssh-ed25519 AAAA broken@desk\", \"{GOOD}\"]\nlisten = \"0.0.0.0:2222\"\n"
        )));
        let e = start(&mut init).unwrap_err().to_string();
        assert_eq!(e, "1 authorized keys left out (see above)");
        let log = init.log.lines().join("\n");
        assert!(
            log.contains("ssh: authorized-keys[0] (broken@desk) left out: key data too short"),
            "{log}"
        );
        let svc = &init.supervisor.services[0];
        assert_eq!(
            svc.svc.argv.join(" "),
            "/usr/sbin/dropbear -F -E -s -g -j -k -p 0.0.0.0:2222 -r /run/sanforge/config/ssh/dropbear_ed25519_host_key"
        );
        assert!(svc.pid.is_some());
        drop(init);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("root/.ssh/authorized_keys")).unwrap(),
            format!("{GOOD}\n")
        );
    }

    #[test]
    fn the_host_key_is_generated_on_the_config_partition_and_checked() {
        let dir = tree(true, true);
        let mut sys = FakeSys::new(dir.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        init.node = Some(node(&format!("[ssh]\nauthorized-keys = [\"{GOOD}\"]\n")));
        // The fake dropbearkey exits 0 without writing: named, no server.
        let e = start(&mut init).unwrap_err().to_string();
        assert_eq!(e, "ssh: `/usr/bin/dropbearkey -t ed25519 -f /run/sanforge/config/ssh/dropbear_ed25519_host_key.new` succeeded but wrote no key");
        assert!(init.supervisor.services.is_empty());
        drop(init);
        let ops: Vec<String> = sys.ops.iter().map(ToString::to_string).collect();
        assert!(
            ops.contains(&"mkdir /run/sanforge/config/ssh".to_string()),
            "{ops:?}"
        );
        assert!(!ops.iter().any(|o| o.starts_with("rename")), "{ops:?}");
    }

    #[test]
    fn an_existing_host_key_is_kept() {
        let dir = tree(true, true);
        std::fs::create_dir_all(dir.path().join("run/sanforge/config/ssh")).unwrap();
        std::fs::write(
            dir.path()
                .join("run/sanforge/config/ssh/dropbear_ed25519_host_key"),
            "key",
        )
        .unwrap();
        let mut sys = FakeSys::new(dir.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        init.node = Some(node(&format!("[ssh]\nauthorized-keys = [\"{GOOD}\"]\n")));
        start(&mut init).unwrap();
        drop(init);
        assert!(!sys
            .ops
            .iter()
            .any(|o| o.to_string().contains("dropbearkey")));
    }

    #[test]
    fn without_config_partition_the_key_is_in_run_and_said() {
        let dir = tree(true, false);
        old_key(&dir, "/run/sanforge/ssh");
        let mut sys = FakeSys::new(dir.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        init.node = Some(node(&format!("[ssh]\nauthorized-keys = [\"{GOOD}\"]\n")));
        start(&mut init).unwrap();
        let log = init.log.lines().join("\n");
        assert!(log.contains("changes at every boot"), "{log}");
        assert!(
            log.contains("host key /run/sanforge/ssh/dropbear_ed25519_host_key"),
            "{log}"
        );
    }

    #[test]
    fn keys_but_no_dropbear_in_the_image_is_named() {
        let dir = tree(false, true);
        let mut sys = FakeSys::new(dir.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        init.node = Some(node(&format!("[ssh]\nauthorized-keys = [\"{GOOD}\"]\n")));
        let e = start(&mut init).unwrap_err().to_string();
        assert!(e.contains("dropbear-bin"), "{e}");
    }

    #[test]
    fn a_bad_listen_address_fails_validation() {
        let e = NodeConfig::parse(
            Path::new("node.toml"),
            "hostname = \"n\"\n[ssh]\nlisten = \"22\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("node.toml:3:") && e.contains("ssh listen `22`"),
            "{e}"
        );
    }
}
