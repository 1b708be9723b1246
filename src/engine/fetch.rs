//! Getting sources into the cache: URL mirrors (http, https, file), Debian packages
//! (by the URLs and sha256 the lock pins) and local paths; sources pinned by tree go
//! to the tree store ([`crate::engine::tree`]).
//!
//! Why it exists: every input of a build is named by its sha256, and this is the only
//! place that turns a recipe's source into a verified file on disk. A download is
//! streamed to a temporary file in the cache, hashed on the way, checked against the
//! expected sha256 and only then renamed into `blobs/`; a mirror that fails for any
//! reason (refused, 404, truncated, dropped, wrong bytes) hands over to the next one.
//! Reads: the recipe's sources and the lock (or a fresh resolution, [`super::lock`]).

use crate::config::lock::Lock;
use crate::config::recipe::Source;
use crate::engine::cache::Cache;
use crate::engine::tree::{self, TreeHash};
use crate::util::cmd::{Cmd, Log};
use crate::util::progress::{step, Task};
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Time allowed to open a connection to a mirror.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed between two reads from a mirror.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for the whole transfer from one mirror (`SANFORGE_FETCH_DEADLINE`).
pub const DEADLINE: Duration = Duration::from_secs(3600);
/// The slowest transfer accepted, in bytes per second averaged over [`STALL_WINDOW`]
/// (`SANFORGE_FETCH_MIN_RATE`): a mirror that trickles a byte now and then is given
/// up, not waited on for ever.
pub const MIN_RATE: u64 = 1024;
/// The window over which [`MIN_RATE`] is measured (`SANFORGE_FETCH_STALL`).
pub const STALL_WINDOW: Duration = Duration::from_secs(60);

/// How long one mirror may take: connect, between reads, in all, and how slow it may
/// be. A mirror that breaks a limit is given up and the next one is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub connect: Duration,
    pub read: Duration,
    pub deadline: Duration,
    /// Bytes per second, averaged over `stall`; 0 disables the check.
    pub min_rate: u64,
    pub stall: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect: CONNECT_TIMEOUT,
            read: READ_TIMEOUT,
            deadline: DEADLINE,
            min_rate: MIN_RATE,
            stall: STALL_WINDOW,
        }
    }
}

impl Limits {
    /// The defaults, overridden by `SANFORGE_FETCH_DEADLINE` and
    /// `SANFORGE_FETCH_STALL` (seconds) and `SANFORGE_FETCH_MIN_RATE` (bytes/s).
    pub fn from_env() -> Result<Limits> {
        let mut l = Limits::default();
        let var = |name: &str| -> Result<Option<u64>> {
            match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| anyhow!("{name}=`{v}`: expected a whole number")),
                _ => Ok(None),
            }
        };
        if let Some(s) = var("SANFORGE_FETCH_DEADLINE")? {
            if s == 0 {
                bail!("SANFORGE_FETCH_DEADLINE=0: expected at least 1 second");
            }
            l.deadline = Duration::from_secs(s);
        }
        if let Some(s) = var("SANFORGE_FETCH_STALL")? {
            if s == 0 {
                bail!("SANFORGE_FETCH_STALL=0: expected at least 1 second");
            }
            l.stall = Duration::from_secs(s);
        }
        if let Some(r) = var("SANFORGE_FETCH_MIN_RATE")? {
            l.min_rate = r;
        }
        Ok(l)
    }
}

/// A source made available on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The file (or directory, for a path source) to use. For a source pinned by
    /// tree, its read-only directory in the tree store: use [`tree::checkout`].
    pub path: PathBuf,
    /// The sha256 that pins it: the blob for a URL, the `.deb` for a Debian source,
    /// the file for a path source (`None` for a directory or a tree).
    pub sha256: Option<String>,
    /// The tree hash of a source pinned by its unpacked content.
    pub tree: Option<TreeHash>,
}

/// Returns the blob with `sha256`, downloading it from the first mirror that serves
/// the right bytes if it is not cached yet.
pub fn fetch_url(cache: &Cache, mirrors: &[String], sha256: &str) -> Result<PathBuf> {
    fetch_url_with(cache, mirrors, sha256, &Limits::from_env()?)
}

/// [`fetch_url`] with explicit time and rate limits for each mirror.
pub fn fetch_url_with(
    cache: &Cache,
    mirrors: &[String],
    sha256: &str,
    limits: &Limits,
) -> Result<PathBuf> {
    if !crate::util::hash::is_sha256(sha256) {
        bail!("`{sha256}` is not a sha256: expected 64 lowercase hex digits");
    }
    match cache.get_verified(sha256) {
        Ok(Some(p)) => return Ok(p),
        Ok(None) => {}
        Err(e) => step(&format!("warning: {e:#}")),
    }
    if mirrors.is_empty() {
        bail!("{sha256} is not in the cache and no mirror is given\nhint: seed the cache with: sanforge fetch --import FILE (FILE must have sha256 {sha256})");
    }
    match try_mirrors(cache, mirrors, sha256, limits) {
        Ok(p) => Ok(p),
        Err(failures) => bail!(
            "cannot fetch {sha256}: every mirror failed\n{}\nhint: seed the cache with: sanforge fetch --import FILE (FILE must have sha256 {sha256})",
            failures
                .iter()
                .map(|(u, r)| format!("  {u}: {r}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// Tries each mirror in turn; on failure, every (URL, reason).
fn try_mirrors(
    cache: &Cache,
    mirrors: &[String],
    sha256: &str,
    limits: &Limits,
) -> std::result::Result<PathBuf, Vec<(String, String)>> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(limits.connect)
        // Every read is bounded, so the deadline and the rate are checked at least
        // this often (ureq's own overall `timeout` would replace this bound by the
        // time left, leaving a silent mirror unnoticed until the deadline).
        .timeout_read(limits.read.min(limits.stall))
        .redirects(5)
        .user_agent(concat!("sanforge/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut failures = Vec::new();
    for url in mirrors {
        match download(cache, &agent, url, sha256, limits) {
            Ok(p) => return Ok(p),
            Err(reason) => {
                if mirrors.len() > 1 {
                    step(&format!("warning: {url}: {reason}"));
                }
                failures.push((url.clone(), reason));
            }
        }
    }
    Err(failures)
}

/// One attempt at one mirror. The error is a short reason (the caller adds the URL).
/// Nothing reaches the cache unless the hash matches; the temporary file is removed
/// on every failure (it is deleted when dropped).
fn download(
    cache: &Cache,
    agent: &ureq::Agent,
    url: &str,
    sha256: &str,
    limits: &Limits,
) -> std::result::Result<PathBuf, String> {
    let d = download_temp(cache, agent, url, limits)?;
    if d.sha256 != sha256 {
        // A chunked body cut short ends like a complete one (ureq 2 reads EOF inside a
        // chunk as the end), so without a length only the hash can tell.
        let hint = if d.len.is_none() {
            "; the server sent no length, so the transfer may have been cut short"
        } else {
            ""
        };
        return Err(format!(
            "sha256 mismatch: expected {sha256}, got {} ({} bytes{hint})",
            d.sha256, d.count
        ));
    }
    let p = cache.commit(d.tmp, sha256).map_err(|e| format!("{e:#}"))?;
    d.task
        .finish(&format!("{} bytes, sha256 {sha256}", d.count));
    Ok(p)
}

/// A file downloaded into the cache's temporary directory, not verified yet.
struct Downloaded {
    tmp: tempfile::NamedTempFile,
    count: u64,
    sha256: String,
    /// The length the server announced, if any.
    len: Option<u64>,
    task: Task,
}

/// Downloads `url` into a temporary file of the cache (deleted when dropped),
/// within `limits`; the error is a short reason.
fn download_temp(
    cache: &Cache,
    agent: &ureq::Agent,
    url: &str,
    limits: &Limits,
) -> std::result::Result<Downloaded, String> {
    let started = std::time::Instant::now();
    let name = url.rsplit('/').find(|s| !s.is_empty()).unwrap_or(url);
    let (reader, len): (Box<dyn Read>, Option<u64>) =
        if let Some(path) = url.strip_prefix("file://") {
            let path = Path::new(path);
            if !path.is_absolute() {
                return Err("a file:// URL needs an absolute path (file:///dir/file)".into());
            }
            match std::fs::metadata(path) {
                Ok(m) if !m.is_file() => {
                    return Err(format!(
                        "{} is not a regular file (a fifo or device would never end)",
                        path.display()
                    ))
                }
                _ => {}
            }
            let f = std::fs::File::open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        } else if url.starts_with("http://") || url.starts_with("https://") {
            let resp = match agent.get(url).call() {
                Ok(r) => r,
                Err(ureq::Error::Status(code, r)) => {
                    return Err(format!("HTTP {code} {}", r.status_text()))
                }
                Err(ureq::Error::Transport(t)) => return Err(transport_reason(&t)),
            };
            let len = resp
                .header("Content-Length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            (resp.into_reader(), len)
        } else {
            return Err("unsupported URL scheme: expected http://, https:// or file://".into());
        };
    let mut tmp = cache.temp_file().map_err(|e| format!("{e:#}"))?;
    let mut task = Task::start(&format!("fetch {name}"), len, "bytes");
    let pace = Pace::new(started, limits);
    let (count, actual) = copy_hashing(reader, len, &mut tmp, &mut task, pace)?;
    if let Some(len) = len {
        if count < len {
            return Err(format!("truncated: got {count} of {len} bytes"));
        }
    }
    Ok(Downloaded {
        tmp,
        count,
        sha256: actual,
        len,
        task,
    })
}

/// Returns tree `tree` from the cache's tree store, or downloads the first mirror
/// whose archive unpacks to that tree and stores it. A mirror whose tree differs is
/// reported with both hashes (and the first differing path when this cache knows the
/// expected tree); nothing of it is kept.
pub fn fetch_url_tree(
    cache: &Cache,
    mirrors: &[String],
    tree: &TreeHash,
    log: &Log,
) -> Result<PathBuf> {
    fetch_url_tree_with(cache, mirrors, tree, &Limits::from_env()?, log)
}

/// [`fetch_url_tree`] with explicit time and rate limits for each mirror.
pub fn fetch_url_tree_with(
    cache: &Cache,
    mirrors: &[String],
    tree: &TreeHash,
    limits: &Limits,
    log: &Log,
) -> Result<PathBuf> {
    if tree::has(cache, tree) {
        return Ok(tree::store_path(cache, tree));
    }
    let hint = format!("hint: seed the cache with: sanforge fetch --import FILE|DIR (an archive or a checkout whose tree is {tree})");
    if mirrors.is_empty() {
        bail!(
            "tree {tree} is not in the cache and no mirror is given
{hint}"
        );
    }
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(limits.connect)
        .timeout_read(limits.read.min(limits.stall))
        .redirects(5)
        .user_agent(concat!("sanforge/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut failures = Vec::new();
    for url in mirrors {
        let name = url.rsplit('/').find(|s| !s.is_empty()).unwrap_or(url);
        let reason = match download_temp(cache, &agent, url, limits) {
            Err(reason) => reason,
            Ok(d) => match tree::stage_archive(cache, d.tmp.path(), name, log) {
                Err(e) => format!("{e:#}"),
                Ok(staged) if staged.hash != *tree => {
                    let what = match &staged.top {
                        Some(t) => format!("its tree (top folder `{t}/`)"),
                        None => "its tree".to_string(),
                    };
                    tree::mismatch(cache, tree, &staged.manifest, &what)
                }
                Ok(staged) => {
                    let p = staged.commit(cache)?;
                    d.task.finish(&format!("{} bytes, {tree}", d.count));
                    return Ok(p);
                }
            },
        };
        if mirrors.len() > 1 {
            step(&format!("warning: {url}: {reason}"));
        }
        failures.push(format!("  {url}: {reason}"));
    }
    bail!(
        "cannot fetch tree {tree}: every mirror failed\n{}\n{hint}",
        failures.join("\n")
    )
}

/// Copies `reader` to `out`, returning the byte count and the sha256.
/// `len` is the advertised length, if any: an early end of the body is reported as
/// truncation.
fn copy_hashing(
    mut reader: impl Read,
    len: Option<u64>,
    out: &mut tempfile::NamedTempFile,
    task: &mut Task,
    mut pace: Pace,
) -> std::result::Result<(u64, String), String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut count = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // A read cut by the deadline or by silence says so, not "dropped".
                pace.check_deadline(count)?;
                return Err(match len {
                    Some(len) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        format!("truncated: got {count} of {len} bytes")
                    }
                    _ if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    ) =>
                    {
                        format!(
                            "stalled: no data for {}s after {count} bytes",
                            pace.silence().as_secs()
                        )
                    }
                    _ => format!("connection dropped after {count} bytes: {}", io_reason(&e)),
                });
            }
        };
        h.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", out.path().display()))?;
        count += n as u64;
        task.inc(n as u64);
        pace.check(count)?;
    }
    Ok((count, hex::encode(h.finalize())))
}

/// Watches one transfer against its [`Limits`]: the deadline of the whole transfer,
/// and the minimum rate over each window of `stall` seconds.
struct Pace {
    deadline: std::time::Instant,
    limits: Limits,
    window_start: std::time::Instant,
    window_bytes: u64,
    last_data: std::time::Instant,
    last_count: u64,
}

impl Pace {
    fn new(started: std::time::Instant, limits: &Limits) -> Pace {
        let now = std::time::Instant::now();
        Pace {
            deadline: started + limits.deadline,
            limits: *limits,
            window_start: now,
            window_bytes: 0,
            last_data: now,
            last_count: 0,
        }
    }

    /// How long since the last byte arrived.
    fn silence(&self) -> Duration {
        self.last_data.elapsed()
    }

    /// Err when the transfer's deadline has passed (`count`: bytes so far).
    fn check_deadline(&self, count: u64) -> std::result::Result<(), String> {
        if std::time::Instant::now() >= self.deadline {
            return Err(format!(
                "too slow: not complete within the deadline of {}s (got {count} bytes; SANFORGE_FETCH_DEADLINE)",
                self.limits.deadline.as_secs()
            ));
        }
        Ok(())
    }

    /// `count`: bytes received so far. Err: why this mirror is given up.
    fn check(&mut self, count: u64) -> std::result::Result<(), String> {
        let now = std::time::Instant::now();
        if count > self.last_count {
            self.last_data = now;
            self.last_count = count;
        }
        self.check_deadline(count)?;
        let window = now.duration_since(self.window_start);
        if window >= self.limits.stall {
            let got = count - self.window_bytes;
            let need = self.limits.min_rate.saturating_mul(window.as_secs().max(1));
            if self.limits.min_rate > 0 && got < need {
                return Err(format!(
                    "too slow: {got} bytes in the last {}s, below the minimum of {} bytes/s (got {count} bytes in all; SANFORGE_FETCH_MIN_RATE)",
                    window.as_secs(),
                    self.limits.min_rate
                ));
            }
            self.window_start = now;
            self.window_bytes = count;
        }
        Ok(())
    }
}

fn transport_reason(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    if let Some(src) = std::error::Error::source(t) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

fn io_reason(e: &std::io::Error) -> String {
    // ureq wraps its own errors (e.g. a broken chunked body) in io::Error.
    let s = e.to_string();
    if s.is_empty() {
        format!("{:?}", e.kind())
    } else {
        s
    }
}

/// Returns the `.deb` with `sha256` (`what` names it in messages: `package corosync
/// 3.1.7-1`), from the cache or else from the first of `urls` that serves those bytes.
/// `update` is the package name for the `sanforge lock --update` hint. A version the
/// archive no longer has and bytes that do not match the pin get their own message;
/// nothing is cached unless the hash matches.
pub fn fetch_deb(
    cache: &Cache,
    what: &str,
    sha256: &str,
    urls: &[String],
    update: &str,
) -> Result<PathBuf> {
    match cache.get_verified(sha256) {
        Ok(Some(p)) => return Ok(p),
        Ok(None) => {}
        Err(e) => step(&format!("warning: {e:#}")),
    }
    let import = format!("import the .deb with `sanforge fetch --import FILE` (FILE must have sha256 {sha256}; snapshot.debian.org keeps every version Debian released)");
    if urls.is_empty() {
        bail!("{what} is not in the cache and the lock names no URL for it\nhint: {import}, or re-pin it with `sanforge lock --update {update}`");
    }
    let failures = match try_mirrors(cache, urls, sha256, &Limits::from_env()?) {
        Ok(p) => return Ok(p),
        Err(f) => f,
    };
    let listed = failures
        .iter()
        .map(|(u, r)| format!("  {u}: {r}"))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some((url, actual)) = failures.iter().find_map(|(u, r)| {
        let got = r
            .strip_prefix("sha256 mismatch: expected ")?
            .split("got ")
            .nth(1)?;
        Some((
            u,
            got.split_whitespace()
                .next()?
                .trim_end_matches(',')
                .to_string(),
        ))
    }) {
        bail!("{what}: the archive's .deb does not match the lock: expected sha256 {sha256}, got {actual} ({url}); nothing was cached\n{listed}\nhint: a mirror that serves other bytes for a released version is broken or tampered with; if the archive really replaced it, re-pin it with `sanforge lock --update {update}`");
    }
    let gone = |r: &str| {
        r.starts_with("HTTP 404")
            || r.starts_with("HTTP 410")
            || (r.starts_with("cannot open ") && r.contains("No such file"))
    };
    if failures.iter().all(|(_, r)| gone(r)) {
        bail!("{what} is no longer in the archive (Debian removes superseded versions):\n{listed}\nhint: {import}, or move to the archive's current version with `sanforge lock --update {update}`");
    }
    bail!("cannot fetch {what}: every mirror failed\n{listed}\nhint: {import}")
}

/// The `.deb` of a package of the lock's closure (see [`fetch_deb`]).
pub fn fetch_package(cache: &Cache, p: &crate::config::lock::LockedPackage) -> Result<PathBuf> {
    fetch_deb(
        cache,
        &format!("package {} {}", p.name, p.version),
        &p.sha256,
        &p.urls(),
        &p.name,
    )
}

/// Extracts one file or directory (`member`, e.g. `usr/src/linux-source-6.1.tar.xz`)
/// of a `.deb` to `dest`.
pub fn extract_deb_member(deb: &Path, member: &str, dest: &Path, log: &Log) -> Result<()> {
    let member = member.trim_start_matches("./").trim_start_matches('/');
    if member.is_empty() || member.split('/').any(|c| c == "..") {
        bail!("invalid package member `{member}`: expected a relative path inside the package");
    }
    let parent = crate::util::fs::parent_dir(dest);
    crate::util::fs::create_dir_all(&parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                parent.display()
            )
        })?;
    Cmd::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(tmp.path())
        .run(log)?;
    let src = tmp.path().join(member);
    if std::fs::symlink_metadata(&src).is_err() {
        bail!("{} has no file `{member}`", deb.display());
    }
    if dest.is_dir() {
        crate::util::fs::remove_dir_all(dest)?;
    }
    crate::util::fs::rename(&src, dest)
}

/// Makes the source `name` available: downloads (URL), fetches through apt and
/// extracts the member (Debian), or checks a local path. With a lock, the pinned
/// sha256 is used and drift is an error.
pub fn fetch_source(
    cache: &Cache,
    name: &str,
    source: &Source,
    lock: Option<&Lock>,
    log: &Log,
) -> Result<Fetched> {
    let locked = lock.and_then(|l| l.get(name));
    match source {
        Source::Url { mirrors, sha256 } => {
            if let Some(l) = locked {
                if &l.sha256 != sha256 {
                    bail!("source `{name}`: the lock pins sha256 {} but the recipe says {sha256}; run `sanforge lock`", l.sha256);
                }
            }
            let path = fetch_url(cache, mirrors, sha256)
                .with_context(|| format!("cannot fetch source `{name}`"))?;
            Ok(Fetched {
                path,
                sha256: Some(sha256.clone()),
                tree: None,
            })
        }
        Source::UrlTree { mirrors, tree } => {
            if let Some(l) = locked {
                if l.tree.as_deref() != Some(tree.as_str()) {
                    bail!("source `{name}`: the lock pins {} but the recipe says {tree}; run `sanforge lock`", l.pin());
                }
            }
            let path = fetch_url_tree(cache, mirrors, tree, log)
                .with_context(|| format!("cannot fetch source `{name}`"))?;
            Ok(Fetched {
                path,
                sha256: None,
                tree: Some(tree.clone()),
            })
        }
        Source::Path {
            path,
            written,
            tree: Some(tree),
        } => {
            // The path is where the tree is found; once stored, the store's copy is
            // what every build uses.
            if !tree::has(cache, tree) {
                let what = written.display().to_string();
                let staged = tree::stage_path(cache, path, &what, log)
                    .with_context(|| format!("source `{name}`"))?;
                tree::commit_expected(cache, staged, tree, &what)
                    .with_context(|| format!("source `{name}`"))?;
            }
            Ok(Fetched {
                path: tree::store_path(cache, tree),
                sha256: None,
                tree: Some(tree.clone()),
            })
        }
        Source::Debian {
            package,
            version,
            member,
        } => {
            let Some(l) = locked else {
                bail!("internal error: debian source `{name}` ({package}={version}) is not pinned; resolve the recipe first");
            };
            let deb = fetch_deb(
                cache,
                &format!("debian package {package}={version} (source `{name}`)"),
                &l.sha256,
                &l.urls,
                package,
            )?;
            let sha = l.sha256.clone();
            let path = match member {
                None => deb,
                Some(m) => {
                    let key = crate::util::hash::KeyBuilder::new("deb-member")
                        .add_str("deb", &sha)
                        .add_str("member", m)
                        .finish();
                    let file = Path::new(m)
                        .file_name()
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from("member"));
                    let dir = cache.build_stage("deb-member", &key, |d| {
                        extract_deb_member(&deb, m, &d.join(&file), log)
                    })?;
                    dir.join(file)
                }
            };
            Ok(Fetched {
                path,
                sha256: Some(sha),
                tree: None,
            })
        }
        Source::Path { path, .. } => {
            let sha = path_sha256(path).with_context(|| format!("source `{name}`"))?;
            if let Some(l) = locked {
                if l.sha256 != sha {
                    bail!("source `{name}` ({}) changed since the lock was written: the lock pins {}, it now hashes to {sha}; run `sanforge lock`", path.display(), l.sha256);
                }
            }
            let file_sha = if path.is_file() { Some(sha) } else { None };
            Ok(Fetched {
                path: path.clone(),
                sha256: file_sha,
                tree: None,
            })
        }
    }
}

/// The sha256 of a local file, or the tree hash of a directory (every file's
/// relative path, executable bit (what git records) and content).
pub fn path_sha256(path: &Path) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    if meta.is_dir() {
        // Modes as git records them: a checkout under another umask is the same source.
        Ok(crate::util::hash::KeyBuilder::new("path-tree")
            .add_checkout_tree("file", path)?
            .finish())
    } else if meta.is_file() {
        crate::util::hash::sha256_file(path)
    } else {
        bail!(
            "{} is not a regular file or a directory (a fifo, socket or device cannot be a source)",
            path.display()
        )
    }
}

/// `sanforge fetch RECIPE`: every source of the recipe and every package of its
/// closure into the cache, by the lock's pins (or, without a usable lock, a fresh
/// resolution): the selected kernel's source, or with `all_kernels` the source of
/// every kernel of the matrix. Returns how many inputs are ready.
pub fn fetch_all(
    recipe: &crate::config::recipe::Recipe,
    cache: &Cache,
    all_kernels: bool,
) -> Result<usize> {
    let (lock, _) = super::lock::pins_for(recipe, cache, false)?;
    let log = Log::none();
    let mut n = 0;
    for k in &recipe.kernels {
        if all_kernels || k.lock_name == recipe.kernel().lock_name {
            fetch_source(cache, &k.lock_name, &k.source, Some(&lock), &log)?;
            n += 1;
        }
    }
    for (name, src) in &recipe.sources {
        fetch_source(cache, name, src, Some(&lock), &log)?;
        n += 1;
    }
    let requested: Vec<&str> = recipe
        .userland
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let roles = super::apt::roles(&lock.packages, &requested);
    for p in &lock.packages {
        if roles.get(&p.name) != Some(&super::apt::Role::LeftOut) {
            fetch_package(cache, p)?;
            n += 1;
        }
    }
    Ok(n)
}
