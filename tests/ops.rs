//! Operating a node (issue 15): the boot timeline, `sanforge-init status`, SSH by key
//! only, the Prometheus exporter, remote syslog.
//!
//! Cheap tests run the built `sanforge-init --root DIR …` against fake trees. One
//! QEMU test (`one_boot_checks_timeline_status_ssh_and_metrics`) builds the default
//! recipe with a test node config (a key generated for the test, `[metrics]`), boots it
//! once under TCG and checks everything through `hostfwd` ports: the timeline on the
//! console, `sanforge status` over SSH against the node config, a wrong key and a
//! password refused, `promtool check metrics` on a scrape and a LUN's write counter
//! rising after the host writes through libiscsi.

mod common;

use common::initroot::{run, write};
use common::vm::{free_port, show, Vm};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const NODE: &str = r#"hostname = "san1"
[lio]
backstores = [{ name = "disk0", kind = "fileio", path = "/run/disk0.img", size = "64MiB" }]
[[lio.iscsi]]
iqn = "iqn.2026-11.org.example:san1"
portals = ["0.0.0.0:3260"]
luns = [{ lun = 0, backstore = "disk0" }]
acls = [{ initiator = "iqn.2026-11.org.example:host1" }]
[[services]]
name = "logger"
argv = ["/bin/logger-daemon"]
"#;

fn node_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "etc/sanforge/node.toml", NODE);
    write(
        t.path(),
        "etc/os-release",
        "NAME=sanforge\nIMAGE_ID=storage-node\nIMAGE_VERSION=1a2b3c4d5e6f\n",
    );
    t
}

/// `promtool check metrics` on `text`; the failure names the package.
fn promtool_check(text: &str) -> (bool, String) {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is not installed: it comes with the Debian package `prometheus` (.ci/setup installs it)");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn boot_prints_and_writes_the_timeline_and_status_reads_the_tree_back() {
    let t = node_tree();
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.log.last().map(String::as_str),
        Some("ready"),
        "{:?}",
        r.log
    );
    // The table comes just before the state line, every boot step in it.
    let head = r
        .log
        .iter()
        .position(|l| l == "boot timeline (seconds since the kernel started):")
        .unwrap_or_else(|| panic!("no timeline in {:?}", r.log));
    let table = &r.log[head + 1..r.log.len() - 1];
    let names: Vec<&str> = table
        .iter()
        .map(|l| l.trim_start().split("  ").next().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"kernel"), "{table:?}");
    for step in [
        "mounts",
        "config",
        "modules",
        "network",
        "targets",
        "services",
        "ssh",
        "enable ports",
        "ready",
    ] {
        assert!(names.contains(&step), "no `{step}` in {table:?}");
    }
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path().join("run/sanforge/timeline.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file["state"], "ready");
    let steps = file["steps"].as_array().unwrap();
    let mut last_end = 0.0;
    for s in steps {
        let (start, end) = (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap());
        assert!(
            start >= last_end && end >= start,
            "steps out of order: {steps:?}"
        );
        last_end = end;
    }
    assert!(file["ready"].as_f64().unwrap() >= last_end);

    let r = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .arg("--root")
        .arg(t.path())
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", show(&r));
    let st: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(st["image"]["version"], "1a2b3c4d5e6f");
    assert_eq!(st["targets"][0]["name"], "iqn.2026-11.org.example:san1");
    assert_eq!(st["targets"][0]["enabled"], true);
    assert_eq!(st["targets"][0]["luns"][0]["lun"], 0);
    assert_eq!(st["targets"][0]["luns"][0]["device"], "fileio_0/disk0");
    assert_eq!(st["targets"][0]["luns"][0]["backing"], "/run/disk0.img");
    assert_eq!(st["services"][0]["name"], "logger");
    assert_eq!(st["services"][0]["starts"], 1);
    assert_eq!(st["timeline"]["state"], "ready");
    let text = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .arg("--root")
        .arg(t.path())
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("image     storage-node version 1a2b3c4d5e6f")
            && text.contains("lun 0 fileio_0/disk0 (/run/disk0.img)"),
        "{text}"
    );
}

/// `sanforge-init --root TREE metrics`: its text, once `promtool check metrics`
/// accepted it.
fn scrape_checked(tree: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .arg("--root")
        .arg(tree)
        .arg("metrics")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let (ok, out) = promtool_check(&text);
    assert!(ok, "promtool check metrics: {out}\n{text}");
    text
}

#[test]
fn a_scrape_of_a_booted_tree_passes_promtool() {
    let t = node_tree();
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // What LIO's configfs shows once an initiator wrote 3 MiB in 40 commands.
    let stats = t.path().join(
        "sys/kernel/config/target/iscsi/iqn.2026-11.org.example:san1/tpgt_1/lun/lun_0/statistics/scsi_tgt_port",
    );
    std::fs::create_dir_all(&stats).unwrap();
    for (f, v) in [
        ("in_cmds", "40"),
        ("read_mbytes", "0"),
        ("write_mbytes", "3"),
    ] {
        std::fs::write(stats.join(f), format!("{v}\n")).unwrap();
    }
    let text = scrape_checked(t.path());
    assert!(
        text.contains("sanforge_lun_written_bytes_total{target=\"iqn.2026-11.org.example:san1\",tpg=\"1\",lun=\"0\"} 3145728"),
        "{text}"
    );
    assert!(
        text.contains("sanforge_boot_step_duration_seconds{step=\"kernel\"} 1.5"),
        "{text}"
    );
    assert!(
        text.contains("sanforge_service_restarts_total{service=\"logger\"} 0"),
        "{text}"
    );
}

/// HA metrics of a node whose `crm_mon` answers with the bans recorded from Pacemaker
/// 2.1.5 (a `crm_resource --ban` and DRBD's fence-peer constraint): promtool accepts
/// the scrape, and each ban is a sample labelled with where it comes from.
#[test]
fn a_scrape_names_the_clusters_bans_and_passes_promtool() {
    let t = node_tree();
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    write(
        t.path(),
        "proc/drbd",
        "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n",
    );
    write(t.path(), "usr/sbin/crm_mon", "");
    write(
        t.path(),
        "fake-run/crm_mon",
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pacemaker/crm_mon-bans.xml"),
        )
        .unwrap(),
    );
    let text = scrape_checked(t.path());
    for want in [
        "sanforge_ha_ban_info{id=\"cli-ban-drbd-r0-clone-on-beta\",resource=\"drbd-r0-clone\",node=\"beta\",role=\"any\",origin=\"move\"} 1",
        "sanforge_ha_ban_info{id=\"drbd-fence-by-handler-r0-rule-drbd-r0-clone\",resource=\"drbd-r0-clone\",node=\"beta\",role=\"Promoted\",origin=\"drbd-fence\"} 1",
        "sanforge_ha_failed_actions 0",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
}

#[test]
fn the_exporter_says_when_its_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .args(["metrics-serve", &addr])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "metrics: cannot listen on {addr}: Address already in use"
        )),
        "{err}"
    );
}

#[test]
fn the_exporter_answers_scrapes_and_wants_its_token() {
    let t = node_tree();
    write(t.path(), "secrets/metrics.token", "s3cret\n");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let token = t.path().join("secrets/metrics.token");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .args(["metrics-serve", &addr])
        .arg(&token)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let get = |auth: Option<&str>| -> String {
        for _ in 0..100 {
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                let h = auth
                    .map(|a| format!("Authorization: Bearer {a}\r\n"))
                    .unwrap_or_default();
                s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{h}\r\n").as_bytes())
                    .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the exporter never listened on {addr}");
    };
    let denied = get(None);
    let wrong = get(Some("nope"));
    let ok = get(Some("s3cret"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(denied.starts_with("HTTP/1.1 401 "), "{denied}");
    assert!(wrong.starts_with("HTTP/1.1 401 "), "{wrong}");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains("text/plain; version=0.0.4") && ok.contains("\nsanforge_up 1\n"),
        "{ok}"
    );
}

#[test]
fn ssh_at_boot_names_a_malformed_key_and_says_when_there_is_no_server() {
    let t = node_tree();
    let r = run(t.path(), &["boot"]);
    assert!(
        r.log
            .iter()
            .any(|l| l == "ssh: no authorized keys configured: no SSH server"),
        "{:?}",
        r.log
    );
    assert!(!r.ops.iter().any(|o| o.contains("dropbear")), "{:?}", r.ops);

    let t = node_tree();
    let good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEWRqQT80fd2SLuoi31ct69bCYsjAtOEgl5OZ6zHrl7 op@laptop";
    write(
        t.path(),
        "etc/sanforge/node.toml",
        &format!("{NODE}[ssh]\nauthorized-keys = [\"ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKEWRqQT80fd2SLuoi31ct69bCYsjAtOEgl5OZ6zHrl7 typo@desk\", \"{good}\"]\n"),
    );
    write(t.path(), "usr/sbin/dropbear", "");
    // The host key of an earlier boot (the fake's dropbearkey writes none).
    write(
        t.path(),
        "run/sanforge/ssh/dropbear_ed25519_host_key",
        "key",
    );
    let r = run(t.path(), &["boot"]);
    assert_eq!(
        r.log.last().map(String::as_str),
        Some("ready"),
        "{:?}",
        r.log
    );
    assert!(
        r.log.iter().any(|l| l == "warning: ssh: authorized-keys[0] (typo@desk) left out: key data is a `ssh-ed25519` key, the line says `ssh-rsa`"),
        "{:?}",
        r.log
    );
    assert!(
        r.ops.iter().any(|o| o.starts_with("spawn /usr/sbin/dropbear -F -E -s -g -j -k -p 0.0.0.0:22 -r /run/sanforge/ssh/dropbear_ed25519_host_key")),
        "{:?}",
        r.ops
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("root/.ssh/authorized_keys")).unwrap(),
        format!("{good}\n")
    );
}

#[test]
fn the_kernel_log_reaches_a_syslog_listener_as_rfc5424_over_tcp() {
    let t = tempfile::tempdir().unwrap();
    let kmsg = t.path().join("kmsg");
    std::fs::write(
        &kmsg,
        "6,1,1000000,-;Linux version 6.1.0-sanforge\n SUBSYSTEM=cpu\n4,2,2500000,-;sanforge-init: ready\n",
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .args(["log-forward", &addr])
        .arg(&kmsg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    // Octet-counted frames: `LEN <PRI>1 TIMESTAMP HOST APP - - - MSG`.
    let mut frames = Vec::new();
    let mut rest = got.as_str();
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(' ').unwrap();
        let len: usize = len.parse().unwrap();
        frames.push(&tail[..len]);
        rest = &tail[len..];
    }
    assert_eq!(frames.len(), 2, "{got:?}");
    assert!(
        frames[0].starts_with("<6>1 ")
            && frames[0].ends_with(" kernel - - - Linux version 6.1.0-sanforge"),
        "{frames:?}"
    );
    assert!(
        frames[1].starts_with("<12>1 ") && frames[1].ends_with(" sanforge-init - - - ready"),
        "{frames:?}"
    );
    let ts = frames[0].split(' ').nth(1).unwrap();
    assert!(
        ts.len() == 27 && ts.ends_with('Z') && ts.contains('T'),
        "{ts}"
    );
}

#[test]
fn an_unreachable_syslog_server_is_said_and_does_not_hang() {
    let t = tempfile::tempdir().unwrap();
    let kmsg = t.path().join("kmsg");
    std::fs::write(&kmsg, "6,1,1000000,-;hello\n").unwrap();
    let port = free_port(); // nothing listens there
    let started = std::time::Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .args(["log-forward", &format!("127.0.0.1:{port}")])
        .arg(&kmsg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("logs: 127.0.0.1:{port} unreachable"))
            && err.contains("1 records wait"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn status_of_an_unreachable_node_names_it_and_never_prompts() {
    let t = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens there
    let o = Command::new(env!("CARGO_BIN_EXE_sanforge"))
        .args([
            "status",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--known-hosts",
        ])
        .arg(t.path().join("known_hosts"))
        .stdin(Stdio::null())
        .output()
        .expect("sanforge");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot get the status of 127.0.0.1 over ssh")
            && err.contains("Connection refused"),
        "{err}"
    );
}

// ---- one QEMU boot -------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sanforge(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(dir);
    c.env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"));
    c.env("SANFORGE_PROGRESS", "plain");
    c
}

fn keygen(path: &Path) -> String {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen is not installed: it comes with the Debian package `openssh-client`");
    assert!(o.status.success(), "{}", show(&o));
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// The body of `GET /metrics` on 127.0.0.1:port.
fn scrape(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: node\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    body.to_string()
}

fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"))
}

#[test]
fn one_boot_checks_timeline_status_ssh_and_metrics() {
    if common::skip_e2e("one_boot_checks_timeline_status_ssh_and_metrics") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let r = repo();
    for x in ["kernel-configs", "overlays"] {
        std::os::unix::fs::symlink(r.join(x), d.join(x)).unwrap();
    }
    std::fs::create_dir_all(d.join("recipes")).unwrap();
    let key = d.join("id_ops");
    let public = keygen(&key);
    let stranger = d.join("id_stranger");
    keygen(&stranger);
    // The default node with the test's key, a malformed one, and the exporter.
    let node = std::fs::read_to_string(r.join("recipes/nodes/storage-node.toml")).unwrap();
    std::fs::write(
        d.join("node.toml"),
        format!("{node}\n[ssh]\nauthorized-keys = [\"ssh-ed25519 AAAA broken@key\", \"{public}\"]\n\n[metrics]\nlisten = \"0.0.0.0:9100\"\n"),
    )
    .unwrap();
    let recipe = std::fs::read_to_string(r.join("recipes/storage-node.toml"))
        .unwrap()
        .replace(
            "config = \"recipes/nodes/storage-node.toml\"",
            "config = \"node.toml\"",
        );
    std::fs::write(
        d.join("recipes/ops.toml"),
        format!("allow-outside-project = [\"{}\"]\n{recipe}", r.display()),
    )
    .unwrap();
    std::fs::copy(
        r.join("recipes/storage-node.lock"),
        d.join("recipes/ops.lock"),
    )
    .unwrap();
    let out = d.join("out/ops");
    let o = sanforge(d)
        .args(["build", "recipes/ops.toml", "--locked", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed: {}", show(&o));

    let (iscsi, ssh, metrics) = (free_port(), free_port(), free_port());
    let _vm = Vm(out.clone());
    let o = sanforge(d)
        .arg("run")
        .arg(&out)
        .args(["--until-ready", "--quiet", "--timeout", "300"])
        .args(["--iscsi-port", &iscsi.to_string()])
        .args(["--forward", &format!("{ssh}:22")])
        .args(["--forward", &format!("{metrics}:9100")])
        .output()
        .unwrap();
    let console = std::fs::read_to_string(d.join("out/ops.run/console.log")).unwrap_or_default();
    assert!(o.status.success(), "not ready: {}\n{console}", show(&o));

    // The timeline, printed just before ready.
    let lines: Vec<&str> = console
        .lines()
        .filter_map(|l| {
            l.trim_end_matches('\r')
                .split_once("sanforge-init: ")
                .map(|x| x.1)
        })
        .collect();
    let head = lines
        .iter()
        .position(|l| l.ends_with("boot timeline (seconds since the kernel started):"))
        .unwrap_or_else(|| panic!("no timeline on the console:\n{console}"));
    let ready = lines.iter().position(|l| *l == "ready").unwrap();
    assert!(head < ready);
    eprintln!("{}", lines[head..=ready].join("\n"));
    assert!(
        console.contains("ssh: authorized-keys[0] (broken@key) left out"),
        "{console}"
    );

    // Status over SSH with the configured key, checked against the node config.
    let known = d.join("known_hosts");
    let status = |identity: &Path| {
        sanforge(d)
            .args([
                "status",
                "127.0.0.1",
                "--json",
                "--port",
                &ssh.to_string(),
                "-i",
            ])
            .arg(identity)
            .arg("--known-hosts")
            .arg(&known)
            .output()
            .unwrap()
    };
    // dropbear may still be starting when the console says ready: a reset
    // connection is retried for a while.
    let mut o = status(&key);
    for _ in 0..15 {
        if o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("Connection reset") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
        o = status(&key);
    }
    assert!(
        o.status.success(),
        "sanforge status: {}\n{console}",
        show(&o)
    );
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cfg: toml::Value = toml::from_str(&node).unwrap();
    let want = &cfg["lio"]["iscsi"][0];
    let target = &st["targets"][0];
    assert_eq!(target["name"].as_str(), want["iqn"].as_str(), "{st:#}");
    assert_eq!(target["enabled"], true);
    let backstore = want["luns"][0]["backstore"].as_str().unwrap();
    assert_eq!(
        target["luns"][0]["lun"].as_i64(),
        want["luns"][0]["lun"].as_integer()
    );
    assert!(
        target["luns"][0]["device"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{backstore}")),
        "{st:#}"
    );
    assert_eq!(
        target["luns"][0]["backing"].as_str(),
        cfg["lio"]["backstores"][0]["path"].as_str()
    );
    assert_eq!(st["timeline"]["state"], "ready");
    let services: Vec<&str> = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        services.contains(&"sshd") && services.contains(&"metrics"),
        "{services:?}"
    );

    // A key the node does not know, and a password, are refused.
    let o = status(&stranger);
    assert!(!o.status.success(), "a stranger's key got in: {}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied (publickey)"),
        "{}",
        show(&o)
    );
    let o = Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no"])
        .args([
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-p", &ssh.to_string(), "root@127.0.0.1", "true"])
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a login without key worked: {}",
        show(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied (publickey)"),
        "{}",
        show(&o)
    );

    // Metrics: promtool accepts a scrape; the LUN's counters rise after a write.
    let before = scrape(metrics);
    let (ok, out) = promtool_check(&before);
    assert!(ok, "promtool check metrics: {out}\n{before}");
    let lun = format!(
        "{{target=\"{}\",tpg=\"1\",lun=\"0\"}}",
        want["iqn"].as_str().unwrap()
    );
    let written = format!("sanforge_lun_written_bytes_total{lun}");
    let commands = format!("sanforge_lun_commands_total{lun}");
    let (w0, c0) = (sample(&before, &written), sample(&before, &commands));
    let url = format!(
        "iscsi://127.0.0.1:{iscsi}/{}/0",
        want["iqn"].as_str().unwrap()
    );
    let o = Command::new("iscsi-test-cu")
        .args([
            "--initiator-name",
            "iqn.2026-11.org.example:initiator",
            "--test=SCSI.Write10.Simple",
            &url,
        ])
        .output()
        .expect("iscsi-test-cu (libiscsi-bin) is not installed");
    assert!(o.status.success(), "{}", show(&o));
    let after = scrape(metrics);
    let (w1, c1) = (sample(&after, &written), sample(&after, &commands));
    eprintln!("LUN 0: written {w0} -> {w1} bytes, commands {c0} -> {c1}");
    // LIO counts the LUN's commands one by one but its data in whole MiB: the few
    // blocks SCSI.Write10.Simple writes move the command counter, not (yet) the bytes.
    assert!(
        c1 > c0,
        "the LUN's command counter did not rise: {c0} -> {c1}"
    );
    assert!(w1 >= w0, "written bytes went down: {w0} -> {w1}");
}

#[test]
fn logs_prints_the_ring_and_one_service_by_its_app_name() {
    let t = tempfile::tempdir().unwrap();
    let kmsg = t.path().join("kmsg");
    // What /dev/kmsg holds: a kernel line, the init's, two services' (as the relay
    // writes them: facility daemon, `NAME: line`).
    std::fs::write(
        &kmsg,
        "6,1,1000000,-;Linux version 6.1.0-sanforge\n SUBSYSTEM=cpu\n12,2,2500000,-;sanforge-init: ready\n30,3,3000000,-;sshd: [120] Child connection from 192.0.2.2:40000\n30,4,4250000,-;syslogd: started\n",
    )
    .unwrap();
    let logs = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
            .arg("logs")
            .args(args)
            .arg(&kmsg)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", show(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(
        logs(&[]),
        "[    1.000000] kernel: Linux version 6.1.0-sanforge\n\
         [    2.500000] sanforge-init: ready\n\
         [    3.000000] sshd: [120] Child connection from 192.0.2.2:40000\n\
         [    4.250000] syslogd: started\n"
    );
    assert_eq!(
        logs(&["--service", "sshd"]),
        "[    3.000000] sshd: [120] Child connection from 192.0.2.2:40000\n"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .args(["logs", "--service"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn boot_turns_the_kernel_rate_limit_of_its_log_lines_off() {
    let t = node_tree();
    // The kernel's default; it takes `on` followed by exactly one newline.
    write(t.path(), "proc/sys/kernel/printk_devkmsg", "ratelimit\n");
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(t.path().join("proc/sys/kernel/printk_devkmsg")).unwrap(),
        "on\n"
    );
}
