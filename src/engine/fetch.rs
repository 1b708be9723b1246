//! Getting sources into the cache: URL mirrors (http, https, file), Debian packages
//! (through apt) and local paths; sources pinned by tree go to the tree store
//! ([`crate::engine::tree`]).
//!
//! Why it exists: every input of a build is named by its sha256, and this is the only
//! place that turns a recipe's source into a verified file on disk. A download is
//! streamed to a temporary file in the cache, hashed on the way, checked against the
//! expected sha256 and only then renamed into `blobs/`; a mirror that fails for any
//! reason (refused, 404, truncated, dropped, wrong bytes) hands over to the next one.
//! Reads: the recipe's sources, the lock, apt's package metadata (`apt-cache show`).

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
                failures.push(format!("  {url}: {reason}"));
            }
        }
    }
    bail!(
        "cannot fetch {sha256}: every mirror failed\n{}\nhint: seed the cache with: sanforge fetch --import FILE (FILE must have sha256 {sha256})",
        failures.join("\n")
    )
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

/// What apt knows about one version of a Debian binary package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebInfo {
    pub sha256: String,
    /// Path in the archive, e.g. `pool/main/b/busybox/busybox_1.35.0-4+b3_amd64.deb`.
    pub filename: String,
    pub size: u64,
}

/// Reads the sha256, archive path and size of `package` `version` from apt's
/// metadata (`apt-cache show PACKAGE=VERSION`); nothing is downloaded.
pub fn debian_info(package: &str, version: &str) -> Result<DebInfo> {
    let (sha, filename, size) = apt_show(package, version, &Log::none())?;
    match sha {
        Some(sha256) => Ok(DebInfo {
            sha256,
            filename,
            size,
        }),
        None => bail!(
            "apt has no SHA256 for debian package {package}={version} (its repository lists none)"
        ),
    }
}

/// The sha256 apt lists for a package version (`None` if its repository lists none).
pub(crate) fn apt_sha256(package: &str, version: &str, log: &Log) -> Result<Option<String>> {
    Ok(apt_show(package, version, log)?.0)
}

/// `(sha256 if apt lists one, filename, size)` of a package version.
fn apt_show(package: &str, version: &str, log: &Log) -> Result<(Option<String>, String, u64)> {
    let spec = format!("{package}={version}");
    let out = Cmd::new("apt-cache").arg("show").arg(&spec).output(log);
    let found = out
        .as_ref()
        .ok()
        .and_then(|text| parse_apt_show(text, package, version));
    match found {
        Some(f) => Ok(f),
        None => {
            let versions = Cmd::new("apt-cache")
                .arg("madison")
                .arg(package)
                .output(log)
                .map(|t| parse_madison(&t, package))
                .unwrap_or_default();
            let known = if versions.is_empty() {
                "apt knows no version of it".to_string()
            } else {
                format!("apt knows {}", versions.join(", "))
            };
            let msg = format!("debian package {spec} is not known to apt ({known}); run `apt-get update` or pin a known version");
            match out {
                Err(e) => Err(e.context(msg)),
                Ok(_) => Err(anyhow!(msg)),
            }
        }
    }
}

/// Finds the stanza for `package` `version` in `apt-cache show` output.
pub fn parse_apt_show(
    text: &str,
    package: &str,
    version: &str,
) -> Option<(Option<String>, String, u64)> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k == name).then(|| v.trim().to_string())
            })
        };
        if field("Package").as_deref() != Some(package)
            || field("Version").as_deref() != Some(version)
        {
            continue;
        }
        let filename = field("Filename")?;
        let size = field("Size").and_then(|s| s.parse().ok())?;
        let sha = field("SHA256").filter(|s| crate::util::hash::is_sha256(s));
        return Some((sha, filename, size));
    }
    None
}

/// Versions listed by `apt-cache madison PACKAGE` (`pkg | version | repo`).
pub fn parse_madison(text: &str, package: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('|').map(str::trim);
            (parts.next()? == package).then_some(())?;
            parts.next().map(String::from)
        })
        .collect();
    v.dedup();
    v
}

/// Returns the `.deb` of `package` `version` from the cache, or downloads it with
/// `apt-get download` and checks it against `expected_sha` (from the lock) or, if
/// none is given, against the sha256 apt lists. Returns the path and the sha256.
pub fn fetch_debian(
    cache: &Cache,
    package: &str,
    version: &str,
    expected_sha: Option<&str>,
    log: &Log,
) -> Result<(PathBuf, String)> {
    let expected = match expected_sha {
        Some(s) => Some(s.to_string()),
        None => apt_show(package, version, log)?.0,
    };
    if let Some(sha) = &expected {
        match cache.get_verified(sha) {
            Ok(Some(p)) => return Ok((p, sha.clone())),
            Ok(None) => {}
            Err(e) => step(&format!("warning: {e:#}")),
        }
    }
    let spec = format!("{package}={version}");
    let dir = cache.temp_dir()?;
    step(&format!("apt-get download {spec}"));
    Cmd::new("apt-get")
        .arg("download")
        .arg(&spec)
        .dir(dir.path())
        .run(log)
        .with_context(|| format!("cannot download debian package {spec} (is it in apt's lists? try `apt-get update`)"))?;
    let debs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .with_context(|| format!("cannot list {}", dir.path().display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    let [deb] = debs.as_slice() else {
        bail!(
            "`apt-get download {spec}` left {} .deb files in {}: expected one",
            debs.len(),
            dir.path().display()
        );
    };
    let sha = match expected {
        Some(s) => s,
        // apt listed no sha256 (it still verified the archive signature): pin what we got.
        None => crate::util::hash::sha256_file(deb)?,
    };
    let p = cache
        .insert_verified(deb, &sha)
        .with_context(|| format!("debian package {spec} does not match its pinned sha256"))?;
    Ok((p, sha))
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
            let (deb, sha) = fetch_debian(
                cache,
                package,
                version,
                locked.map(|l| l.sha256.as_str()),
                log,
            )
            .with_context(|| format!("cannot fetch source `{name}`"))?;
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
/// relative path, mode and content).
pub fn path_sha256(path: &Path) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    if meta.is_dir() {
        Ok(crate::util::hash::KeyBuilder::new("path-tree")
            .add_tree("file", path)?
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

/// `sanforge fetch RECIPE`: every source of the recipe into the cache (the lock's
/// pins when there is a lock): the selected kernel's source, or with `all_kernels`
/// the source of every kernel of the matrix. Returns how many sources are ready.
pub fn fetch_all(
    recipe: &crate::config::recipe::Recipe,
    cache: &Cache,
    all_kernels: bool,
) -> Result<usize> {
    let lock = super::lock::load_for(recipe, false)?;
    let log = Log::none();
    let mut n = 0;
    for k in &recipe.kernels {
        if all_kernels || k.lock_name == recipe.kernel().lock_name {
            fetch_source(cache, &k.lock_name, &k.source, lock.as_ref(), &log)?;
            n += 1;
        }
    }
    for (name, src) in &recipe.sources {
        fetch_source(cache, name, src, lock.as_ref(), &log)?;
        n += 1;
    }
    for (name, version) in &recipe.userland.packages {
        let pinned = lock
            .as_ref()
            .and_then(|l| l.get(&format!("package:{name}")))
            .map(|l| l.sha256.clone());
        fetch_debian(cache, name, version, pinned.as_deref(), &log)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = "Package: busybox\nVersion: 1:1.35.0-4+b3\nSize: 400000\nFilename: pool/main/b/busybox/busybox_1.35.0-4+b3_amd64.deb\nSHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nDescription: x\n multi-line: text\n\nPackage: busybox\nVersion: 1:1.36.1-1\nSize: 1\nFilename: other.deb\nSHA256: ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n";

    #[test]
    fn apt_show_picks_the_matching_stanza() {
        let (sha, file, size) = parse_apt_show(SHOW, "busybox", "1:1.36.1-1").unwrap();
        assert_eq!(sha.as_deref(), Some("f".repeat(64).as_str()));
        assert_eq!(file, "other.deb");
        assert_eq!(size, 1);
        let (sha, file, size) = parse_apt_show(SHOW, "busybox", "1:1.35.0-4+b3").unwrap();
        assert!(sha.unwrap().starts_with("0123"));
        assert!(file.ends_with("amd64.deb"));
        assert_eq!(size, 400000);
        assert!(parse_apt_show(SHOW, "busybox", "9").is_none());
        assert!(parse_apt_show(SHOW, "bash", "1:1.36.1-1").is_none());
    }

    #[test]
    fn madison_lists_versions() {
        let t = "   busybox | 1:1.35.0-4+b3 | http://deb.debian.org/debian bookworm/main amd64 Packages\n   busybox | 1:1.30.1-6 | http://x bullseye/main amd64 Packages\n";
        assert_eq!(
            parse_madison(t, "busybox"),
            vec!["1:1.35.0-4+b3", "1:1.30.1-6"]
        );
        assert!(parse_madison(t, "bash").is_empty());
    }
}
