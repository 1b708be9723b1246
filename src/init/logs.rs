//! Remote syslog: `sanforge-init log-forward HOST:PORT [KMSG]`, a supervised child of
//! PID 1 (started by the boot step `logs` when the node config has `[logs] remote`).
//! It reads the kernel log (`/dev/kmsg`: the kernel's lines and the init's own, which
//! the init writes there too) from the start of the ring buffer and sends each record
//! as RFC 5424 over TCP with octet-counting framing (RFC 6587), hostname included.
//! An unreachable server never delays anything: records wait in a bounded queue (the
//! oldest are dropped, and the next record says how many) while the forwarder retries
//! with backoff.
//!
//! Services' output joins the same ring: the supervisor starts each service with its
//! stdout and stderr on a pipe read by `sanforge-init log-relay NAME`
//! ([`Sys::spawn_logged`](crate::sys::Sys::spawn_logged)), which copies every line to
//! the console as before and to `/dev/kmsg` as `NAME: line` at facility daemon, so the
//! forwarder sends it with APP-NAME `NAME`. `sanforge-init logs [--follow] [--service
//! NAME]` prints the ring on the node, the kernel's, the init's and the services' lines.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// The argument of the init that runs the forwarder.
pub const SUBCOMMAND: &str = "log-forward";
/// The supervised service's name.
pub const SERVICE: &str = "log-forward";
/// Records kept while the server is unreachable.
pub const QUEUE: usize = 10_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The init's argument for the relay of a service's output.
pub use crate::sys::LOG_RELAY as RELAY;
/// The argument of `sanforge-init logs`.
pub const LOGS: &str = "logs";
/// A service's lines in the ring: facility daemon (3), severity info (6).
pub const SERVICE_PRI: u32 = 3 * 8 + 6;
/// The longest line a relay writes as one record (the kernel keeps about 1 KiB).
const MAX_RECORD: usize = 900;

/// One `/dev/kmsg` record, parsed: who wrote it (APP-NAME) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// `facility * 8 + severity` as RFC 5424 wants it.
    pub pri: u32,
    /// Microseconds since boot.
    pub usec: u64,
    /// `kernel`, `sanforge-init`, a service's name, or `-` (another userspace writer).
    pub app: &'a str,
    pub text: &'a str,
}

/// A tag as syslog writes it before `: `: a service name (RFC 5424 APP-NAME: printable
/// ASCII, at most 48).
fn tag_of(msg: &str) -> Option<(&str, &str)> {
    let (tag, rest) = msg.split_once(": ")?;
    let ok = !tag.is_empty()
        && tag.len() <= 48
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    ok.then_some((tag, rest))
}

/// Parses `PRIO,SEQ,USEC,FLAGS;MESSAGE`.
pub fn parse(record: &str) -> Option<Record<'_>> {
    let (head, msg) = record.split_once(';')?;
    let mut f = head.split(',');
    let prio: u32 = f.next()?.trim().parse().ok()?;
    let _seq = f.next()?;
    let usec: u64 = f.next()?.trim().parse().ok()?;
    let msg = msg.trim_end_matches(['\n', '\r']);
    let (app, text) = match msg.strip_prefix("sanforge-init: ") {
        Some(rest) => ("sanforge-init", rest),
        // The kernel's facility is 0 (kern); records userspace wrote carry theirs.
        None if prio < 8 => ("kernel", msg),
        None => tag_of(msg).unwrap_or(("-", msg)),
    };
    // The init writes its lines at the default priority: facility user.
    let pri = if app == "sanforge-init" && prio < 8 {
        8 + prio
    } else {
        prio
    };
    Some(Record {
        pri,
        usec,
        app,
        text,
    })
}

/// One `/dev/kmsg` record (`PRIO,SEQ,USEC,FLAGS;MESSAGE`) as an RFC 5424 message.
/// `now` and `uptime` place the record's boot-relative time on the wall clock.
pub fn rfc5424(record: &str, hostname: &str, now: SystemTime, uptime: Duration) -> Option<String> {
    let r = parse(record)?;
    let at = Duration::from_micros(r.usec);
    let when = now.checked_sub(uptime.saturating_sub(at)).unwrap_or(now);
    let ts = rfc3339(when);
    let host = if hostname.is_empty() { "-" } else { hostname };
    Some(format!(
        "<{}>1 {ts} {host} {} - - - {}",
        r.pri, r.app, r.text
    ))
}

/// A record as `sanforge-init logs` prints it: `[SECONDS] APP: TEXT`.
pub fn render(r: &Record) -> String {
    format!(
        "[{:5}.{:06}] {}: {}",
        r.usec / 1_000_000,
        r.usec % 1_000_000,
        r.app,
        r.text
    )
}

/// The relay of one service's output (`sanforge-init log-relay NAME`): each line of
/// `input` goes to `console` as it came and to `kmsg` as one record `NAME: line` (a
/// line of the init's own children, `sanforge-init: …`, as it is; long lines cut at
/// [`MAX_RECORD`] bytes). Ends with its input (the service exited).
pub fn relay(
    tag: &str,
    input: impl std::io::BufRead,
    kmsg: Option<&mut dyn Write>,
    console: &mut dyn Write,
) {
    let mut kmsg = kmsg;
    for line in input.split(b'\n') {
        let Ok(line) = line else { return };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\r');
        let mut out = text.to_string();
        out.push('\n');
        let _ = console.write_all(out.as_bytes());
        let _ = console.flush();
        let mut end = text.len().min(MAX_RECORD);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let body = text.get(..end).unwrap_or_default();
        // The init's own children (exporter, forwarder) already name themselves.
        let tag = if body.starts_with("sanforge-init: ") {
            String::new()
        } else {
            format!("{tag}: ")
        };
        if let Some(k) = kmsg.as_deref_mut() {
            let _ = k.write_all(format!("<{SERVICE_PRI}>{tag}{body}\n").as_bytes());
        }
    }
}

/// `sanforge-init logs [--follow] [--service NAME] [KMSG]`: prints the ring (the
/// device: what it holds now, or on and on with `follow`; a plain file: to its end),
/// only `service`'s lines when given.
pub fn print_ring(kmsg: &Path, follow: bool, service: Option<&str>) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let src = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(if follow { 0 } else { libc::O_NONBLOCK })
        .open(kmsg)
        .map_err(|e| anyhow::anyhow!("logs: cannot read {}: {e}", kmsg.display()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let path = kmsg.to_path_buf();
    std::thread::spawn(move || read_records(src, &path, tx));
    let mut out = std::io::stdout().lock();
    for rec in rx {
        let Some(r) = parse(&rec) else { continue };
        if service.is_some_and(|s| s != r.app) {
            continue;
        }
        if writeln!(out, "{}", render(&r)).is_err() {
            break;
        }
    }
    Ok(())
}

/// RFC 6587 octet counting: `LEN SP MSG`.
pub fn frame(msg: &str) -> String {
    format!("{} {msg}", msg.len())
}

/// `2026-12-05T08:12:34.567890Z`.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// The queue of framed messages waiting for the server.
#[derive(Debug, Default)]
pub struct Queue {
    items: VecDeque<String>,
    pub dropped: u64,
}

impl Queue {
    pub fn push(&mut self, msg: String) {
        if self.items.len() >= QUEUE {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(msg);
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Sends what waits; keeps what could not be sent.
    fn flush(&mut self, conn: &mut TcpStream) -> std::io::Result<()> {
        while let Some(m) = self.items.front() {
            conn.write_all(frame(m).as_bytes())?;
            self.items.pop_front();
        }
        conn.flush()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn uptime() -> Duration {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or_default()
}

/// Reads `kmsg` into records (one line each; continuation lines dropped) and hands
/// them over; ends at the end of a plain file, or on a read error (said).
fn read_records(mut src: std::fs::File, path: &Path, tx: std::sync::mpsc::Sender<String>) {
    let mut buf = vec![0u8; 8192];
    let mut partial = String::new();
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            // The end of what the ring holds now (`logs` without --follow).
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            // A record overwritten while we read: go on with the next.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                super::child_line(&format!("logs: reading {}: {e}", path.display()));
                return;
            }
        };
        partial.push_str(&String::from_utf8_lossy(buf.get(..n).unwrap_or_default()));
        while let Some(i) = partial.find('\n') {
            let rec: String = partial.drain(..=i).collect();
            // Continuation lines (` KEY=value`) carry device metadata: not forwarded.
            if !rec.starts_with(' ') && tx.send(rec).is_err() {
                return;
            }
        }
    }
}

/// Forwards `kmsg` (a character device: one record per read, blocking; a plain file
/// in tests: lines, until its end) to `server`, forever for the device. A reader
/// thread feeds the records; this loop sends them and retries the server on a timer,
/// so a quiet node still reconnects.
pub fn forward(server: &str, kmsg: &Path) -> anyhow::Result<()> {
    let addr = server
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("logs: remote `{server}`: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("logs: remote `{server}` has no address"))?;
    let src = std::fs::File::open(kmsg)
        .map_err(|e| anyhow::anyhow!("logs: cannot read {}: {e}", kmsg.display()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let path = kmsg.to_path_buf();
    std::thread::spawn(move || read_records(src, &path, tx));
    let host = hostname();
    let mut queue = Queue::default();
    let mut conn: Option<TcpStream> = None;
    let mut retry = RETRY_MIN;
    let mut next_try = Instant::now();
    let mut reported = 0u64;
    let mut ended = false;
    loop {
        match rx.recv_timeout(RETRY_MIN) {
            Ok(rec) => {
                let (now, up) = (SystemTime::now(), uptime());
                if let Some(m) = rfc5424(&rec, &host, now, up) {
                    queue.push(m);
                }
                // Take what else is there before sending.
                while let Ok(rec) = rx.try_recv() {
                    if let Some(m) = rfc5424(&rec, &host, now, up) {
                        queue.push(m);
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => ended = true,
        }
        if queue.dropped > reported {
            let m = format!(
                "<12>1 {} {} sanforge-init - - - log-forward: {} records dropped while {server} was unreachable",
                rfc3339(SystemTime::now()),
                if host.is_empty() { "-" } else { &host },
                queue.dropped - reported
            );
            reported = queue.dropped;
            queue.push(m);
        }
        if conn.is_none() && !queue.is_empty() && Instant::now() >= next_try {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(c) => {
                    super::child_line(&format!("logs: sending to {server} (RFC 5424 over TCP)"));
                    conn = Some(c);
                    retry = RETRY_MIN;
                }
                Err(e) => {
                    super::child_line(&format!(
                        "logs: {server} unreachable ({e}); {} records wait, retry in {} s",
                        queue.len(),
                        retry.as_secs()
                    ));
                    next_try = Instant::now() + retry;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            if let Err(e) = queue.flush(c) {
                super::child_line(&format!("logs: {server}: {e}; reconnecting"));
                conn = None;
                next_try = Instant::now() + retry;
            }
        }
        // Only a plain file ends: stop once it is sent, or after one more try.
        if ended && (queue.is_empty() || conn.is_none()) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kmsg_records_become_rfc5424() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 100);
        let up = Duration::from_secs(10);
        assert_eq!(
            rfc5424(
                "6,1,4000000,-;virtio_net virtio0 eth0: renamed\n",
                "san1",
                now,
                up
            )
            .unwrap(),
            "<6>1 2026-01-01T00:01:34.000000Z san1 kernel - - - virtio_net virtio0 eth0: renamed"
        );
        assert_eq!(
            rfc5424("4,9,9500000,-;sanforge-init: ready\n", "san1", now, up).unwrap(),
            "<12>1 2026-01-01T00:01:39.500000Z san1 sanforge-init - - - ready"
        );
        assert_eq!(rfc5424("garbage", "h", now, up), None);
        assert_eq!(frame("<6>1 x"), "6 <6>1 x");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn a_service_line_is_sent_with_its_name_as_app_name() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 100);
        let up = Duration::from_secs(10);
        assert_eq!(
            rfc5424(
                "30,12,5000000,-;sshd: [120] Dec 05 10:00:01 Child connection from 192.0.2.2:40000\n",
                "san1",
                now,
                up
            )
            .unwrap(),
            "<30>1 2026-01-01T00:01:35.000000Z san1 sshd - - - [120] Dec 05 10:00:01 Child connection from 192.0.2.2:40000"
        );
        // The kernel's own lines keep their text, colon or not.
        let r = parse("6,2,1000,-;eth0: link up\n").unwrap();
        assert_eq!((r.app, r.text), ("kernel", "eth0: link up"));
        // Another writer without a tag.
        let r = parse("14,3,1000,-;no tag here\n").unwrap();
        assert_eq!((r.app, r.text, r.pri), ("-", "no tag here", 14));
        assert_eq!(
            render(&parse("30,4,12345678,-;corosync: [QUORUM] Members[1]: 1\n").unwrap()),
            "[   12.345678] corosync: [QUORUM] Members[1]: 1"
        );
    }

    #[test]
    fn the_relay_copies_each_line_to_the_console_and_tags_it_in_the_ring() {
        let long = "x".repeat(2000);
        let input =
            format!("starting\r\nsanforge-init: metrics: listening\n{long}\nlast without newline");
        let (mut kmsg, mut console) = (Vec::new(), Vec::new());
        relay(
            "chronyd",
            std::io::Cursor::new(input.clone()),
            Some(&mut kmsg),
            &mut console,
        );
        let console = String::from_utf8(console).unwrap();
        assert_eq!(
            console,
            format!("starting\nsanforge-init: metrics: listening\n{long}\nlast without newline\n")
        );
        let kmsg = String::from_utf8(kmsg).unwrap();
        let lines: Vec<&str> = kmsg.lines().collect();
        assert_eq!(lines.len(), 4, "{kmsg}");
        assert_eq!(lines[0], "<30>chronyd: starting");
        assert_eq!(lines[1], "<30>sanforge-init: metrics: listening");
        assert_eq!(lines[2].len(), "<30>chronyd: ".len() + MAX_RECORD);
        assert_eq!(lines[3], "<30>chronyd: last without newline");
    }

    #[test]
    fn the_queue_keeps_the_newest_and_counts_the_dropped() {
        let mut q = Queue::default();
        for i in 0..QUEUE + 5 {
            q.push(i.to_string());
        }
        assert_eq!(q.len(), QUEUE);
        assert_eq!(q.dropped, 5);
        assert_eq!(q.items.front().map(String::as_str), Some("5"));
    }
}
