//! The Prometheus exporter: `sanforge-init metrics-serve ADDR:PORT [TOKEN_FILE]`, a
//! supervised child of PID 1 (the same binary; started by the boot step `metrics` when
//! the node config has `[metrics]`), so a network peer never talks to PID 1 and a
//! failure (port in use) only restarts the exporter with backoff while the node keeps
//! serving. Each scrape gathers the node's status ([`super::status::gather`]: boot
//! timeline, services, targets and sessions, HA) plus LIO's per-LUN statistics from
//! configfs and the node's memory, load and file systems from /proc, and renders them
//! in the Prometheus text format: `sanforge_` prefix, base units (seconds, bytes),
//! `_total` counters. The HTTP side is the least a scraper needs (one `GET /metrics`
//! per connection, optional `Authorization: Bearer`), written here to keep an HTTP stack
//! out of the init's binary.

use super::status::gather;
use crate::contract::status::Status;
use crate::scsi::lio::CONFIGFS_TARGET;
use crate::sys::Sys;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The argument of the init that runs the exporter.
pub const SUBCOMMAND: &str = "metrics-serve";
/// The supervised service's name.
pub const SERVICE: &str = "metrics";
/// A request larger than this, or slower than [`READ_TIMEOUT`], is answered 400.
const MAX_REQUEST: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One metric family being written: HELP and TYPE once, then its samples.
struct Out {
    text: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let l = if l.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", l.join(","))
        };
        let _ = writeln!(self.text, "{name}{l} {value}");
    }
    /// A family with its samples, skipped when it has none.
    fn gauge_family(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        rows: &[(Vec<(&str, &str)>, f64)],
    ) {
        if rows.is_empty() {
            return;
        }
        self.family(name, kind, help);
        for (labels, v) in rows {
            self.sample(name, labels, *v);
        }
    }
}

/// LIO's statistics of one LUN of a TPG (`statistics/scsi_tgt_port/`: commands, and
/// read and written data in whole MiB as the kernel counts it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LunStats {
    pub target: String,
    pub tpg: u32,
    pub lun: u32,
    pub commands: Option<u64>,
    pub read_bytes: Option<u64>,
    pub written_bytes: Option<u64>,
}

fn read_u64(sys: &mut dyn Sys, p: &Path) -> Option<u64> {
    sys.read_to_string(p).ok()?.trim().parse().ok()
}

/// Every LUN of every LIO TPG with its counters.
pub fn lio_lun_stats(sys: &mut dyn Sys, st: &Status) -> Vec<LunStats> {
    let mut out = Vec::new();
    for t in st.targets.iter().filter(|t| t.stack == "lio") {
        let Some(tpg) = t.tpg else { continue };
        for l in &t.luns {
            let dir = PathBuf::from(CONFIGFS_TARGET)
                .join(&t.fabric)
                .join(&t.name)
                .join(format!("tpgt_{tpg}"))
                .join("lun")
                .join(format!("lun_{}", l.lun))
                .join("statistics/scsi_tgt_port");
            out.push(LunStats {
                target: t.name.clone(),
                tpg,
                lun: l.lun,
                commands: read_u64(sys, &dir.join("in_cmds")),
                read_bytes: read_u64(sys, &dir.join("read_mbytes")).map(|m| m << 20),
                written_bytes: read_u64(sys, &dir.join("write_mbytes")).map(|m| m << 20),
            });
        }
    }
    out
}

/// `MemTotal` and `MemAvailable` of /proc/meminfo, in bytes.
fn meminfo(text: &str) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for (key, name) in [("MemTotal:", "total"), ("MemAvailable:", "available")] {
        if let Some(kib) = text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((name, kib * 1024));
        }
    }
    out
}

/// The renders of a scrape: everything in the text format.
pub fn render(sys: &mut dyn Sys) -> String {
    let st = gather(sys);
    let mut o = Out {
        text: String::new(),
    };
    o.family("sanforge_up", "gauge", "1: the exporter answered");
    o.sample("sanforge_up", &[], 1.0);
    let version = st.image.version.clone().unwrap_or_default();
    let id = st.image.id.clone().unwrap_or_default();
    let kernel = st.image.kernel.clone().unwrap_or_default();
    let slot = st.boot.slot.clone().unwrap_or_default();
    o.family(
        "sanforge_image_info",
        "gauge",
        "The image the node booted (recipe, root file system key, kernel, slot)",
    );
    o.sample(
        "sanforge_image_info",
        &[
            ("image", &id),
            ("version", &version),
            ("kernel", &kernel),
            ("slot", &slot),
        ],
        1.0,
    );
    boot_metrics(&mut o, &st);
    service_metrics(&mut o, &st);
    target_metrics(&mut o, &st);
    lun_metrics(&mut o, sys, &st);
    ha_metrics(&mut o, &st);
    node_metrics(&mut o, sys, &st);
    o.text
}

/// The boot: how long each step took, whether and when it ended ready.
fn boot_metrics(o: &mut Out, st: &Status) {
    if let Some(t) = &st.timeline {
        let rows: Vec<(Vec<(&str, &str)>, f64)> = t
            .steps
            .iter()
            .filter_map(|s| Some((vec![("step", s.name.as_str())], s.seconds()?)))
            .collect();
        o.gauge_family(
            "sanforge_boot_step_duration_seconds",
            "gauge",
            "How long each boot step took (kernel: the kernel's own boot)",
            &rows,
        );
        if let Some(r) = t.ready {
            o.family(
                "sanforge_boot_ready_seconds",
                "gauge",
                "Seconds from the kernel's start to the final state line",
            );
            o.sample("sanforge_boot_ready_seconds", &[], r);
        }
        o.family(
            "sanforge_boot_ready",
            "gauge",
            "1 when the boot ended in ready (not degraded, not waiting for quorum)",
        );
        o.sample(
            "sanforge_boot_ready",
            &[],
            if t.state == "ready" { 1.0 } else { 0.0 },
        );
        o.family(
            "sanforge_boot_step_failures",
            "gauge",
            "Boot steps that failed in this boot",
        );
        o.sample(
            "sanforge_boot_step_failures",
            &[],
            t.errors().count() as f64,
        );
    }
}

/// The supervised services: up, restarts.
fn service_metrics(o: &mut Out, st: &Status) {
    let svc_up: Vec<(Vec<(&str, &str)>, f64)> = st
        .services
        .iter()
        .map(|s| {
            (
                vec![("service", s.name.as_str())],
                if s.state == "running" { 1.0 } else { 0.0 },
            )
        })
        .collect();
    o.gauge_family(
        "sanforge_service_up",
        "gauge",
        "1 while the supervised service runs",
        &svc_up,
    );
    let svc_restarts: Vec<(Vec<(&str, &str)>, f64)> = st
        .services
        .iter()
        .map(|s| (vec![("service", s.name.as_str())], f64::from(s.restarts)))
        .collect();
    o.gauge_family(
        "sanforge_service_restarts_total",
        "counter",
        "Restarts of the supervised service since boot",
        &svc_restarts,
    );
}

/// The SCSI targets: enabled, sessions, LUNs.
fn target_metrics(o: &mut Out, st: &Status) {
    let enabled: Vec<(Vec<(&str, &str)>, f64)> = st
        .targets
        .iter()
        .map(|t| {
            (
                vec![
                    ("stack", t.stack.as_str()),
                    ("fabric", t.fabric.as_str()),
                    ("target", t.name.as_str()),
                ],
                if t.enabled { 1.0 } else { 0.0 },
            )
        })
        .collect();
    o.gauge_family(
        "sanforge_target_enabled",
        "gauge",
        "1 when the target port is enabled",
        &enabled,
    );
    let sessions: Vec<(Vec<(&str, &str)>, f64)> = st
        .targets
        .iter()
        .map(|t| {
            (
                vec![
                    ("stack", t.stack.as_str()),
                    ("fabric", t.fabric.as_str()),
                    ("target", t.name.as_str()),
                ],
                t.sessions.len() as f64,
            )
        })
        .collect();
    o.gauge_family(
        "sanforge_target_sessions",
        "gauge",
        "Initiator sessions logged in to the target",
        &sessions,
    );
    let luns: Vec<(Vec<(&str, &str)>, f64)> = st
        .targets
        .iter()
        .map(|t| {
            (
                vec![("stack", t.stack.as_str()), ("target", t.name.as_str())],
                t.luns.len() as f64,
            )
        })
        .collect();
    o.gauge_family(
        "sanforge_target_luns",
        "gauge",
        "LUNs the target exports",
        &luns,
    );
}

/// LIO's per-LUN counters: commands, bytes read and written.
fn lun_metrics(o: &mut Out, sys: &mut dyn Sys, st: &Status) {
    let stats = lio_lun_stats(sys, st);
    let tpgs: Vec<String> = stats.iter().map(|s| s.tpg.to_string()).collect();
    let lun_ids: Vec<String> = stats.iter().map(|s| s.lun.to_string()).collect();
    type Pick = fn(&LunStats) -> Option<u64>;
    let families: [(&str, &str, Pick); 3] = [
        (
            "sanforge_lun_commands_total",
            "SCSI commands the LUN received (LIO scsi_tgt_port in_cmds)",
            |s: &LunStats| s.commands,
        ),
        (
            "sanforge_lun_read_bytes_total",
            "Data read from the LUN (LIO counts whole MiB)",
            |s: &LunStats| s.read_bytes,
        ),
        (
            "sanforge_lun_written_bytes_total",
            "Data written to the LUN (LIO counts whole MiB)",
            |s: &LunStats| s.written_bytes,
        ),
    ];
    for (name, help, pick) in families {
        let rows: Vec<(Vec<(&str, &str)>, f64)> = stats
            .iter()
            .zip(tpgs.iter().zip(&lun_ids))
            .filter_map(|(s, (tpg, lun))| {
                Some((
                    vec![
                        ("target", s.target.as_str()),
                        ("tpg", tpg.as_str()),
                        ("lun", lun.as_str()),
                    ],
                    pick(s)? as f64,
                ))
            })
            .collect();
        o.gauge_family(name, "counter", help, &rows);
    }
}

/// HA: DRBD roles, states and resync backlog, Pacemaker's bans and failed actions,
/// Corosync quorum.
fn ha_metrics(o: &mut Out, st: &Status) {
    if let Some(h) = &st.ha {
        let minors: Vec<String> = h.drbd.iter().map(|d| d.minor.to_string()).collect();
        let role: Vec<(Vec<(&str, &str)>, f64)> = h
            .drbd
            .iter()
            .zip(&minors)
            .map(|(d, m)| {
                (
                    vec![
                        ("minor", m.as_str()),
                        ("role", d.role.as_str()),
                        ("peer_role", d.peer_role.as_str()),
                    ],
                    1.0,
                )
            })
            .collect();
        o.gauge_family(
            "sanforge_drbd_role_info",
            "gauge",
            "DRBD role of this node and of its peer (/proc/drbd ro:)",
            &role,
        );
        let state: Vec<(Vec<(&str, &str)>, f64)> = h
            .drbd
            .iter()
            .zip(&minors)
            .map(|(d, m)| {
                (
                    vec![
                        ("minor", m.as_str()),
                        ("connection", d.connection.as_str()),
                        ("disk", d.disk.as_str()),
                        ("peer_disk", d.peer_disk.as_str()),
                    ],
                    1.0,
                )
            })
            .collect();
        o.gauge_family(
            "sanforge_drbd_state_info",
            "gauge",
            "DRBD connection and disk states (/proc/drbd cs:, ds:)",
            &state,
        );
        let oos: Vec<(Vec<(&str, &str)>, f64)> = h
            .drbd
            .iter()
            .zip(&minors)
            .filter_map(|(d, m)| Some((vec![("minor", m.as_str())], d.out_of_sync_bytes? as f64)))
            .collect();
        o.gauge_family(
            "sanforge_drbd_out_of_sync_bytes",
            "gauge",
            "Data DRBD still has to resynchronise",
            &oos,
        );
        let bans: Vec<(Vec<(&str, &str)>, f64)> = h
            .bans
            .iter()
            .map(|b| {
                (
                    vec![
                        ("id", b.id.as_str()),
                        ("resource", b.resource.as_str()),
                        ("node", b.node.as_str()),
                        ("role", if b.promoted_only { "Promoted" } else { "any" }),
                        ("origin", b.origin_kind()),
                    ],
                    1.0,
                )
            })
            .collect();
        o.gauge_family(
            "sanforge_ha_ban_info",
            "gauge",
            "A negative location constraint (crm_mon -L); origin move: left behind by a move or ban, it keeps the resource off the node even in a failover",
            &bans,
        );
        if !h.resources.is_empty() {
            o.family(
                "sanforge_ha_failed_actions",
                "gauge",
                "Failed resource actions Pacemaker reports (crm_mon)",
            );
            o.sample("sanforge_ha_failed_actions", &[], h.failures.len() as f64);
        }
        if let Some(q) = h.quorate {
            o.family(
                "sanforge_ha_quorate",
                "gauge",
                "1 when Corosync says the partition is quorate",
            );
            o.sample("sanforge_ha_quorate", &[], if q { 1.0 } else { 0.0 });
        }
    }
}

/// The node: clock offset, memory, load, file systems.
fn node_metrics(o: &mut Out, sys: &mut dyn Sys, st: &Status) {
    if let Some(offset) = st.time.as_ref().and_then(|t| t.offset_seconds) {
        o.family(
            "sanforge_time_offset_seconds",
            "gauge",
            "How far the system clock is ahead of NTP time (chronyc tracking)",
        );
        o.sample("sanforge_time_offset_seconds", &[], offset);
    }
    let mem = meminfo(
        &sys.read_to_string(Path::new("/proc/meminfo"))
            .unwrap_or_default(),
    );
    let mem_rows: Vec<(Vec<(&str, &str)>, f64)> = mem
        .iter()
        .map(|(k, v)| (vec![("kind", *k)], *v as f64))
        .collect();
    o.gauge_family(
        "sanforge_node_memory_bytes",
        "gauge",
        "Node memory (/proc/meminfo MemTotal, MemAvailable)",
        &mem_rows,
    );
    let load = sys
        .read_to_string(Path::new("/proc/loadavg"))
        .unwrap_or_default();
    let load_rows: Vec<(Vec<(&str, &str)>, f64)> = ["1m", "5m", "15m"]
        .iter()
        .zip(load.split_whitespace())
        .filter_map(|(k, v)| Some((vec![("window", *k)], v.parse::<f64>().ok()?)))
        .collect();
    o.gauge_family(
        "sanforge_node_load",
        "gauge",
        "Load average (/proc/loadavg)",
        &load_rows,
    );
    let fs = filesystems(sys);
    let size_rows: Vec<(Vec<(&str, &str)>, f64)> = fs
        .iter()
        .map(|f| {
            (
                vec![("mountpoint", f.0.as_str()), ("fstype", f.1.as_str())],
                f.2 as f64,
            )
        })
        .collect();
    o.gauge_family(
        "sanforge_node_filesystem_size_bytes",
        "gauge",
        "Size of each mounted file system",
        &size_rows,
    );
    let avail_rows: Vec<(Vec<(&str, &str)>, f64)> = fs
        .iter()
        .map(|f| {
            (
                vec![("mountpoint", f.0.as_str()), ("fstype", f.1.as_str())],
                f.3 as f64,
            )
        })
        .collect();
    o.gauge_family(
        "sanforge_node_filesystem_available_bytes",
        "gauge",
        "Space available to unprivileged users",
        &avail_rows,
    );
}

/// `(mount point, type, size, available)` of the real file systems in /proc/mounts.
fn filesystems(sys: &mut dyn Sys) -> Vec<(String, String, u64, u64)> {
    const SKIP: [&str; 9] = [
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "configfs",
        "cgroup",
        "cgroup2",
        "debugfs",
        "securityfs",
    ];
    let mounts = sys
        .read_to_string(Path::new("/proc/mounts"))
        .unwrap_or_default();
    let mut out: Vec<(String, String, u64, u64)> = Vec::new();
    for l in mounts.lines() {
        let mut w = l.split_whitespace();
        let (Some(_dev), Some(mp), Some(fstype)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        if SKIP.contains(&fstype) || out.iter().any(|(m, ..)| m == mp) {
            continue;
        }
        if let Ok((size, avail)) = sys.statfs(Path::new(mp)) {
            out.push((mp.to_string(), fstype.to_string(), size, avail));
        }
    }
    out
}

/// What a request asks: the verdict and the response.
fn respond(request: &str, token: Option<&str>, body: impl FnOnce() -> String) -> (u16, String) {
    let mut lines = request.lines();
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return (405, "only GET\n".into());
    }
    if path != "/metrics" && !path.starts_with("/metrics?") {
        return (404, "see /metrics\n".into());
    }
    if let Some(t) = token {
        let ok = lines.any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("authorization") && v.trim() == format!("Bearer {t}")
            })
        });
        if !ok {
            return (401, "bearer token required\n".into());
        }
    }
    (200, body())
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

fn handle(mut conn: TcpStream, sys: &mut dyn Sys, token: Option<&str>) {
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    let _ = conn.set_write_timeout(Some(READ_TIMEOUT));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let complete = loop {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break false,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if buf.len() > MAX_REQUEST {
            break false;
        }
    };
    let (code, body) = if complete {
        respond(&String::from_utf8_lossy(&buf), token, || render(sys))
    } else {
        (400, "incomplete request\n".into())
    };
    let ctype = if code == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(code),
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
}

/// `metrics-serve ADDR [TOKEN_FILE]`: binds (the error names the address, so a port in
/// use is said on the console) and answers scrapes one at a time, forever.
pub fn serve(sys: &mut dyn Sys, listen: &str, token_file: Option<&Path>) -> anyhow::Result<()> {
    let token = match token_file {
        Some(f) => {
            let t = sys.read_to_string(f)?.trim().to_string();
            if t.is_empty() {
                anyhow::bail!("{}: the metrics bearer token is empty", f.display());
            }
            Some(t)
        }
        None => None,
    };
    let l = TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("metrics: cannot listen on {listen}: {e}"))?;
    super::child_line(&format!(
        "metrics on http://{listen}/metrics{}",
        if token.is_some() {
            " (bearer token)"
        } else {
            ""
        }
    ));
    for conn in l.incoming().flatten() {
        handle(conn, sys, token.as_deref());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn requests_are_answered_by_path_method_and_token() {
        let body = || "x 1\n".to_string();
        assert_eq!(respond("GET /metrics HTTP/1.1\r\n\r\n", None, body).0, 200);
        assert_eq!(respond("POST /metrics HTTP/1.1\r\n\r\n", None, body).0, 405);
        assert_eq!(respond("GET / HTTP/1.1\r\n\r\n", None, body).0, 404);
        assert_eq!(
            respond("GET /metrics HTTP/1.1\r\n\r\n", Some("s3"), body).0,
            401
        );
        assert_eq!(
            respond(
                "GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3\r\n\r\n",
                Some("s3"),
                body
            ),
            (200, "x 1\n".to_string())
        );
        assert_eq!(
            respond(
                "GET /metrics HTTP/1.1\r\nauthorization: Bearer no\r\n\r\n",
                Some("s3"),
                body
            )
            .0,
            401
        );
    }

    #[test]
    fn lun_counters_come_from_configfs_in_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let lun =
            d.join("sys/kernel/config/target/iscsi/iqn.2026-11.org.example:t/tpgt_1/lun/lun_0");
        std::fs::create_dir_all(lun.join("statistics/scsi_tgt_port")).unwrap();
        std::fs::create_dir_all(d.join("sys/kernel/config/target/core/rd_mcp_0/mem")).unwrap();
        std::os::unix::fs::symlink(
            d.join("sys/kernel/config/target/core/rd_mcp_0/mem"),
            lun.join("mem"),
        )
        .unwrap();
        for (f, v) in [
            ("in_cmds", "42"),
            ("read_mbytes", "3"),
            ("write_mbytes", "2"),
        ] {
            std::fs::write(
                lun.join("statistics/scsi_tgt_port").join(f),
                format!("{v}\n"),
            )
            .unwrap();
        }
        std::fs::write(
            d.join("sys/kernel/config/target/iscsi/iqn.2026-11.org.example:t/tpgt_1/enable"),
            "1\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("proc")).unwrap();
        std::fs::write(
            d.join("proc/meminfo"),
            "MemTotal:  1000 kB\nMemFree: 1 kB\nMemAvailable:  500 kB\n",
        )
        .unwrap();
        std::fs::write(d.join("proc/loadavg"), "0.50 0.25 0.10 1/50 99\n").unwrap();
        let mut sys = FakeSys::new(d);
        let text = render(&mut sys);
        let t = "target=\"iqn.2026-11.org.example:t\",tpg=\"1\",lun=\"0\"";
        for want in [
            format!("sanforge_lun_commands_total{{{t}}} 42"),
            format!("sanforge_lun_read_bytes_total{{{t}}} 3145728"),
            format!("sanforge_lun_written_bytes_total{{{t}}} 2097152"),
            "sanforge_target_enabled{stack=\"lio\",fabric=\"iscsi\",target=\"iqn.2026-11.org.example:t\"} 1".to_string(),
            "sanforge_node_memory_bytes{kind=\"total\"} 1024000".to_string(),
            "sanforge_node_memory_bytes{kind=\"available\"} 512000".to_string(),
            "sanforge_node_load{window=\"5m\"} 0.25".to_string(),
            "# TYPE sanforge_lun_written_bytes_total counter".to_string(),
        ] {
            assert!(text.lines().any(|l| l == want), "no `{want}` in:\n{text}");
        }
        // Every family has HELP and TYPE once.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!(types, helps);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
