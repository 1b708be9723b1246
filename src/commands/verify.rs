//! `sanforge build --verify`: reproducibility as a user verb.
//!
//! Why it exists: "bit-for-bit reproducible" is only true if someone checks it. This
//! builds the recipe twice, each time from its own copy of the project, with its own
//! stage cache, output directory, umask, time zone and locale, then compares every
//! output byte for byte ([`compare_dirs`]). A difference names the file and the first
//! thing that differs inside it: the cpio member of an initramfs, the key path of a
//! JSON document, or else the byte offset.
//!
//! Reads: the recipe and its project directory (copied, without `out/`, `.git/`,
//! `target/` and the cache), the cache's verified blobs (hard-linked into the scratch
//! caches, so nothing is downloaded twice), and the two output directories. Writes:
//! a scratch directory under the cache's `tmp/` (removed at the end) and the two
//! outputs, kept for inspection in `out/<recipe>.verify/{first,second-build}`.

use crate::config::recipe::Recipe;
use crate::engine::cache::Cache;
use crate::engine::BuildOptions;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::progress;
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Top-level entries of an output directory that are not outputs.
const NOT_OUTPUTS: &[&str] = &["logs"];

/// How one file differs between two output directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffKind {
    OnlyInFirst,
    OnlyInSecond,
    /// Both exist; the text says where they first differ.
    Content(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Path relative to the output directory.
    pub file: String,
    pub kind: DiffKind,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DiffKind::OnlyInFirst => write!(f, "{}: only in the first build", self.file),
            DiffKind::OnlyInSecond => write!(f, "{}: only in the second build", self.file),
            DiffKind::Content(d) => write!(f, "{}: {d}", self.file),
        }
    }
}

/// Every output file under `dir` (relative paths, sorted), build logs excluded.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    let outputs = ufs::walk(dir)
        .prune(|e| e.depth() == 1 && NOT_OUTPUTS.contains(&e.rel().to_string_lossy().as_ref()));
    let mut out = Vec::new();
    for e in outputs {
        let e = e?;
        if !e.is_dir() {
            out.push(e.rel().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Compares two output directories file by file; empty when they are identical.
pub fn compare_dirs(a: &Path, b: &Path) -> Result<Vec<Difference>> {
    let fa: BTreeSet<String> = list_files(a)?.into_iter().collect();
    let fb: BTreeSet<String> = list_files(b)?.into_iter().collect();
    let mut diffs = Vec::new();
    for file in fa.union(&fb) {
        let kind = match (fa.contains(file), fb.contains(file)) {
            (true, false) => Some(DiffKind::OnlyInFirst),
            (false, true) => Some(DiffKind::OnlyInSecond),
            _ => compare_files(file, &a.join(file), &b.join(file))?.map(DiffKind::Content),
        };
        if let Some(kind) = kind {
            diffs.push(Difference {
                file: file.clone(),
                kind,
            });
        }
    }
    Ok(diffs)
}

/// `None` if the files are identical, else where they first differ.
pub fn compare_files(name: &str, a: &Path, b: &Path) -> Result<Option<String>> {
    let (la, lb) = (link_target(a)?, link_target(b)?);
    if la.is_some() || lb.is_some() {
        return Ok((la != lb).then(|| {
            format!(
                "symlink targets differ ({} vs {})",
                show_link(&la),
                show_link(&lb)
            )
        }));
    }
    if files_equal(a, b)? {
        return Ok(None);
    }
    let detail = if name.ends_with(".cpio.zst") {
        let da = zstd_decode(a)?;
        let db = zstd_decode(b)?;
        match cpio_difference(&da, &db) {
            Some(d) => d,
            None => format!(
                "the compressed streams differ at byte {} but the archives inside are identical",
                byte_difference(&ufs::read(a)?, &ufs::read(b)?).0
            ),
        }
    } else if name.ends_with(".cpio") {
        let (da, db) = (ufs::read(a)?, ufs::read(b)?);
        cpio_difference(&da, &db).unwrap_or_else(|| byte_summary(&da, &db))
    } else if name.ends_with(".json") {
        let (da, db) = (ufs::read(a)?, ufs::read(b)?);
        match (
            serde_json::from_slice::<Value>(&da),
            serde_json::from_slice::<Value>(&db),
        ) {
            (Ok(va), Ok(vb)) => json_difference(&va, &vb).unwrap_or_else(|| {
                format!(
                    "same JSON value, different formatting: {}",
                    byte_summary(&da, &db)
                )
            }),
            _ => byte_summary(&da, &db),
        }
    } else {
        let (off, sa, sb) = stream_difference(a, b)?;
        let mut s = format!("first difference at byte {off}");
        if sa != sb {
            s.push_str(&format!(" (sizes {sa} and {sb})"));
        }
        s
    };
    Ok(Some(detail))
}

fn link_target(p: &Path) -> Result<Option<PathBuf>> {
    let meta =
        std::fs::symlink_metadata(p).with_context(|| format!("cannot stat {}", p.display()))?;
    if meta.file_type().is_symlink() {
        Ok(Some(std::fs::read_link(p).with_context(|| {
            format!("cannot read link {}", p.display())
        })?))
    } else {
        Ok(None)
    }
}

fn show_link(l: &Option<PathBuf>) -> String {
    l.as_ref()
        .map(|p| format!("-> {}", p.display()))
        .unwrap_or_else(|| "not a symlink".to_string())
}

fn files_equal(a: &Path, b: &Path) -> Result<bool> {
    let (off, sa, sb) = stream_difference(a, b)?;
    Ok(sa == sb && off == sa)
}

/// Reads as much as fits in `buf` (short only at end of file).
fn fill(r: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(n)
}

/// Streams both files: (offset of the first differing byte, or the common length if
/// one is a prefix of the other; size of a; size of b).
fn stream_difference(a: &Path, b: &Path) -> Result<(u64, u64, u64)> {
    let open =
        |p: &Path| std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut off = 0u64;
    let mut first: Option<u64> = None;
    let (mut size_a, mut size_b) = (0u64, 0u64);
    loop {
        let na = fill(&mut fa, &mut ba, a)?;
        let nb = fill(&mut fb, &mut bb, b)?;
        size_a += na as u64;
        size_b += nb as u64;
        if first.is_none() {
            let common = na.min(nb);
            if let Some(i) = (0..common).find(|&i| ba[i] != bb[i]) {
                first = Some(off + i as u64);
            } else if na != nb {
                first = Some(off + common as u64);
            }
        }
        off += na.max(nb) as u64;
        if na == 0 && nb == 0 {
            break;
        }
    }
    Ok((first.unwrap_or(size_a), size_a, size_b))
}

/// (first differing offset, or the shorter length) of two byte strings.
fn byte_difference(a: &[u8], b: &[u8]) -> (usize, usize, usize) {
    let off = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    (off, a.len(), b.len())
}

fn byte_summary(a: &[u8], b: &[u8]) -> String {
    let (off, la, lb) = byte_difference(a, b);
    let line = a[..off].iter().filter(|c| **c == b'\n').count() + 1;
    let mut s = format!("first difference at byte {off}");
    if !a[..off.min(a.len())].contains(&0) {
        s.push_str(&format!(" (line {line})"));
    }
    if la != lb {
        s.push_str(&format!(" (sizes {la} and {lb})"));
    }
    s
}

fn zstd_decode(p: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    zstd::stream::decode_all(f).with_context(|| format!("cannot decompress {} (zstd)", p.display()))
}

/// The newc header fields, in order.
const CPIO_FIELDS: [&str; 13] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];

/// One member of a newc archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioMember<'a> {
    pub name: String,
    pub fields: [u32; 13],
    pub data: &'a [u8],
}

/// The members of a newc archive up to the trailer (`None` if it is not one).
pub fn parse_newc(buf: &[u8]) -> Option<Vec<CpioMember<'_>>> {
    let pad = |n: usize| (4 - n % 4) % 4;
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        let head = buf.get(pos..pos + 110)?;
        if &head[..6] != b"070701" && &head[..6] != b"070702" {
            return None;
        }
        let mut fields = [0u32; 13];
        for (i, f) in fields.iter_mut().enumerate() {
            let s = std::str::from_utf8(&head[6 + i * 8..14 + i * 8]).ok()?;
            *f = u32::from_str_radix(s, 16).ok()?;
        }
        let namesize = fields[11] as usize;
        let name_bytes = buf.get(pos + 110..pos + 110 + namesize)?;
        let name = String::from_utf8_lossy(name_bytes.strip_suffix(&[0]).unwrap_or(name_bytes))
            .into_owned();
        let data_start = pos + 110 + namesize + pad(110 + namesize);
        let size = fields[6] as usize;
        let data = buf.get(data_start..data_start + size)?;
        if name == "TRAILER!!!" {
            return Some(out);
        }
        out.push(CpioMember { name, fields, data });
        pos = data_start + size + pad(size);
    }
}

/// The first member whose header or content differs, in words; `None` if every member
/// and the trailer are equal.
pub fn cpio_difference(a: &[u8], b: &[u8]) -> Option<String> {
    let (Some(ma), Some(mb)) = (parse_newc(a), parse_newc(b)) else {
        return (a != b).then(|| format!("not both cpio newc archives; {}", byte_summary(a, b)));
    };
    for i in 0..ma.len().max(mb.len()) {
        let (x, y) = match (ma.get(i), mb.get(i)) {
            (Some(x), Some(y)) => (x, y),
            (Some(x), None) => {
                return Some(format!(
                    "member {} (#{}) is only in the first archive",
                    x.name,
                    i + 1
                ))
            }
            (None, Some(y)) => {
                return Some(format!(
                    "member {} (#{}) is only in the second archive",
                    y.name,
                    i + 1
                ))
            }
            (None, None) => break,
        };
        if x.name != y.name {
            return Some(format!(
                "member #{} is {} in the first archive and {} in the second",
                i + 1,
                x.name,
                y.name
            ));
        }
        for (f, field) in CPIO_FIELDS.iter().enumerate() {
            if matches!(*field, "filesize" | "namesize") || x.fields[f] == y.fields[f] {
                continue;
            }
            let show = |v: u32| {
                if *field == "mode" {
                    format!("{:o} ({})", v, crate::image::cpio::mode_string(v))
                } else {
                    v.to_string()
                }
            };
            return Some(format!(
                "member {}: header field {field} differs ({} vs {})",
                x.name,
                show(x.fields[f]),
                show(y.fields[f])
            ));
        }
        if x.data != y.data {
            let (off, la, lb) = byte_difference(x.data, y.data);
            let sizes = if la != lb {
                format!(" (sizes {la} and {lb})")
            } else {
                String::new()
            };
            return Some(format!(
                "member {}: content differs at byte {off}{sizes}",
                x.name
            ));
        }
    }
    (a != b).then(|| {
        format!(
            "every member is equal; the archives differ after them: {}",
            byte_summary(a, b)
        )
    })
}

/// The first key path at which two JSON values differ (`kernel.config-sha256`,
/// `outputs[1].sha256`), with both values.
pub fn json_difference(a: &Value, b: &Value) -> Option<String> {
    fn show(v: &Value) -> String {
        let s = v.to_string();
        if s.chars().count() > 80 {
            format!("{}…", s.chars().take(80).collect::<String>())
        } else {
            s
        }
    }
    fn key(path: &str, k: &str) -> String {
        if !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        } else {
            format!("{path}[{}]", Value::String(k.to_string()))
        }
    }
    fn walk(a: &Value, b: &Value, path: &str) -> Option<String> {
        let here = if path.is_empty() { "(top level)" } else { path };
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = key(path, k);
                    match (x.get(k), y.get(k)) {
                        (Some(va), Some(vb)) => {
                            if let Some(d) = walk(va, vb, &p) {
                                return Some(d);
                            }
                        }
                        (Some(_), None) => return Some(format!("key {p} is only in the first")),
                        (None, Some(_)) => return Some(format!("key {p} is only in the second")),
                        (None, None) => {}
                    }
                }
                None
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                    if let Some(d) = walk(va, vb, &format!("{path}[{i}]")) {
                        return Some(d);
                    }
                }
                (x.len() != y.len()).then(|| {
                    format!(
                        "key {here} has {} elements in the first and {} in the second",
                        x.len(),
                        y.len()
                    )
                })
            }
            _ => (a != b).then(|| format!("key {here} differs ({} vs {})", show(a), show(b))),
        }
    }
    walk(a, b, "")
}

/// A table of every file with `identical` or `DIFFERENT: <where>`.
pub fn table(files: &[String], diffs: &[Difference]) -> String {
    let width = files.iter().map(|f| f.len()).max().unwrap_or(4).max(4);
    let mut s = format!("{:<width$}  RESULT\n", "FILE");
    for f in files {
        match diffs.iter().find(|d| &d.file == f) {
            None => s.push_str(&format!("{f:<width$}  identical\n")),
            Some(d) => {
                let why = match &d.kind {
                    DiffKind::OnlyInFirst => "only in the first build".to_string(),
                    DiffKind::OnlyInSecond => "only in the second build".to_string(),
                    DiffKind::Content(c) => c.clone(),
                };
                s.push_str(&format!("{f:<width$}  DIFFERENT: {why}\n"));
            }
        }
    }
    s
}

/// The outcome of `build --verify`.
pub struct VerifyReport {
    pub first: PathBuf,
    pub second: PathBuf,
    /// Every output file of either build.
    pub files: Vec<String>,
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }
    pub fn table(&self) -> String {
        table(&self.files, &self.differences)
    }
}

/// One of the two builds: where it happens and how its environment differs.
struct Run {
    label: &'static str,
    project: PathBuf,
    cache: PathBuf,
    out: PathBuf,
    umask: &'static str,
    /// The umask the project copy is made with, as `git clone` would under it: a
    /// second engineer's checkout (Ubuntu's default is 002) must build the same image.
    checkout_umask: u32,
    tz: &'static str,
    lc_all: &'static str,
}

/// Builds `recipe_file` twice in separate scratch copies and compares the outputs.
/// `opts.out` is not used (the outputs go to `out/<recipe>.verify/`).
pub fn verify_build(recipe_file: &Path, opts: &BuildOptions) -> Result<VerifyReport> {
    let recipe = Recipe::load(recipe_file)
        .with_context(|| format!("cannot load recipe {}", recipe_file.display()))?;
    let init = match &opts.init {
        Some(p) => {
            std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))?
        }
        None => crate::engine::ctx::find_init()?,
    };
    let exe = std::env::current_exe().context("cannot find the path of this program")?;
    let cache = Cache::from_env()?;
    progress::step("verify: fetching the recipe's sources once for both builds");
    let recipe = match &opts.kernel {
        Some(k) => recipe.select_kernel(k)?,
        None => recipe,
    };
    crate::engine::fetch::fetch_all(&recipe, &cache, false)?;

    // out/<recipe>.verify, or out/<recipe>@<kernel>.verify for a matrix kernel.
    let results = {
        let mut o = crate::engine::ctx::default_out(&recipe).into_os_string();
        o.push(".verify");
        PathBuf::from(o)
    };
    ufs::remove_dir_all(&results)?;
    ufs::create_dir_all(&results)?;
    let scratch = cache.temp_dir()?;
    let s = scratch.path();
    // Different path lengths as well as different names, different umasks, zones, locales.
    let runs = [
        Run {
            label: "first",
            project: s.join("1/p"),
            cache: s.join("1/cache"),
            out: results.join("first"),
            umask: "022",
            checkout_umask: 0o022,
            tz: "UTC0",
            lc_all: "C",
        },
        Run {
            label: "second-build",
            project: s.join("second-build/project-copy"),
            cache: s.join("second-build/c"),
            out: results.join("second-build"),
            umask: "077",
            checkout_umask: 0o002,
            tz: "NZST-12NZDT",
            lc_all: "C.UTF-8",
        },
    ];
    let rel_recipe = recipe
        .file
        .strip_prefix(&recipe.root)
        .unwrap_or(&recipe.file)
        .to_path_buf();
    let skip = [
        recipe.root.join("out"),
        recipe.root.join(".git"),
        recipe.root.join("target"),
        cache.root().to_path_buf(),
    ];
    let outcome = (|| -> Result<()> {
        for run in &runs {
            progress::step(&format!(
                "verify: {} build in {} (umask {}, TZ={}, LC_ALL={})",
                run.label,
                run.project.display(),
                run.umask,
                run.tz,
                run.lc_all
            ));
            copy_project(&recipe.root, &run.project, &skip, run.checkout_umask)?;
            seed_cache(&cache, &run.cache)?;
            let log = Log::open(&results.join(format!("{}.log", run.label)))?;
            let mut cmd = Cmd::new("sh")
                .arg("-c")
                .arg(format!("umask {} && exec \"$0\" \"$@\"", run.umask))
                .arg(&exe)
                .arg("build")
                .arg(run.project.join(&rel_recipe))
                .arg("--out")
                .arg(&run.out)
                .arg("--init")
                .arg(&init)
                // Both builds run every stage: nothing comes from a shared cache.
                .arg("--remote-cache")
                .arg(crate::engine::remote::OFF)
                .dir(&run.project)
                .env("SANFORGE_CACHE", &run.cache)
                .env("SANFORGE_INIT", &init)
                .env("TZ", run.tz)
                .env("LC_ALL", run.lc_all);
            if let Some(m) = &recipe.module_signing {
                // A secret stays where its owner keeps it: both builds read the key from
                // there (the project copies need not hold it, and a key path relative
                // to the project or outside it means the same file for both).
                let key = std::path::absolute(&m.key).unwrap_or_else(|_| m.key.clone());
                cmd = cmd.env(crate::config::module_signing::KEY_ENV, key);
            }
            if opts.locked {
                cmd = cmd.arg("--locked");
            }
            if let Some(k) = &opts.kernel {
                cmd = cmd.arg("--kernel").arg(k);
            }
            if let Some(j) = opts.jobs {
                cmd = cmd.arg("--jobs").arg(j.to_string());
            }
            let label = run.label;
            cmd.run_lines(&log, |l| eprintln!("  [{label}] {l}"))
                .with_context(|| format!("the {label} build failed"))?;
        }
        Ok(())
    })();
    // The project copies and scratch caches (kernel trees) are large: always remove them.
    let _ = make_dirs_writable(s);
    drop(scratch);
    outcome?;

    let (first, second) = (runs[0].out.clone(), runs[1].out.clone());
    let mut files: BTreeSet<String> = list_files(&first)?.into_iter().collect();
    files.extend(list_files(&second)?);
    let differences = compare_dirs(&first, &second)?;
    Ok(VerifyReport {
        first,
        second,
        files: files.into_iter().collect(),
        differences,
    })
}

/// Copies the project tree, keeping modes and symlinks, leaving out `skip` (compared
/// after resolving symlinks) and anything that is not a file, directory or symlink.
/// Copies the project as a checkout made under `umask` would have it: files 0666 or
/// 0777 (when executable) and directories 0777, less the umask: the modes git does
/// not record are the cloner's, and must not reach the image.
pub fn copy_project(from: &Path, to: &Path, skip: &[PathBuf], umask: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let skip: Vec<PathBuf> = skip.iter().map(|p| canon(p)).collect();
    ufs::create_dir_all(to)?;
    let mut dirs = Vec::new();
    for e in ufs::walk(&canon(from)).prune(|e| skip.iter().any(|s| s == e.path())) {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.rel()));
        if e.is_symlink() {
            let target = std::fs::read_link(src)
                .with_context(|| format!("cannot read link {}", src.display()))?;
            std::os::unix::fs::symlink(&target, &dst)
                .with_context(|| format!("cannot create symlink {}", dst.display()))?;
        } else if e.is_dir() {
            ufs::create_dir_all(&dst)?;
            dirs.push((dst, std::fs::Permissions::from_mode(0o777 & !umask)));
        } else if e.metadata().is_file() {
            ufs::copy(src, &dst)?;
            let exec = e.metadata().permissions().mode() & 0o100 != 0;
            let mode = if exec { 0o777 } else { 0o666 } & !umask;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot set mode of {}", dst.display()))?;
        }
    }
    ufs::set_dir_modes(dirs)
}

/// A fresh cache at `root` holding the verified blobs and stored trees of `cache`
/// (hard links, or copies across file systems), so the build fetches nothing but
/// rebuilds every stage.
fn seed_cache(cache: &Cache, root: &Path) -> Result<()> {
    let src = cache.root().join("blobs/sha256");
    let dst = root.join("blobs/sha256");
    ufs::create_dir_all(&dst)?;
    let rd = match std::fs::read_dir(&src) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", src.display())),
    };
    for e in rd {
        let e = e.with_context(|| format!("cannot list {}", src.display()))?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if std::fs::hard_link(&from, &to).is_err() {
            ufs::copy(&from, &to)?;
        }
    }
    // Sources pinned by tree: the stored trees, linked the same way.
    crate::engine::tree::seed_store(cache, root)
}

/// Gives the owner rwx on every directory under `p` (stages may leave read-only
/// directories). Files are not touched: blobs are hard links shared with the cache.
fn make_dirs_writable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let add_rwx = |d: &Path, meta: &std::fs::Metadata| {
        let mode = meta.permissions().mode();
        if mode & 0o700 == 0o700 {
            return Ok(());
        }
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o700))
            .with_context(|| format!("cannot set mode of {}", d.display()))
    };
    let meta =
        std::fs::symlink_metadata(p).with_context(|| format!("cannot stat {}", p.display()))?;
    if !meta.is_dir() {
        return Ok(());
    }
    add_rwx(p, &meta)?;
    // The walk lists a directory only after giving it: it is writable (and readable)
    // by then.
    for e in ufs::walk(p) {
        let e = e?;
        if e.is_dir() {
            add_rwx(e.path(), e.metadata())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_paths() {
        let a = json!({ "kernel": { "release": "6.1", "config-sha256": "aa" }, "outputs": [ { "sha256": "1" }, { "sha256": "2" } ] });
        let mut b = a.clone();
        b["outputs"][1]["sha256"] = json!("3");
        assert_eq!(
            json_difference(&a, &b).unwrap(),
            "key outputs[1].sha256 differs (\"2\" vs \"3\")"
        );
        b = a.clone();
        b["kernel"]["config-sha256"] = json!("bb");
        b["outputs"][0]["sha256"] = json!("x");
        assert!(json_difference(&a, &b)
            .unwrap()
            .starts_with("key kernel.config-sha256 differs"));
        b = a.clone();
        b["kernel"].as_object_mut().unwrap().remove("release");
        assert_eq!(
            json_difference(&a, &b).unwrap(),
            "key kernel.release is only in the first"
        );
        assert_eq!(json_difference(&a, &a), None);
        b = a.clone();
        b["a.b"] = json!(1);
        assert_eq!(
            json_difference(&a, &b).unwrap(),
            "key [\"a.b\"] is only in the second"
        );
    }

    #[test]
    fn cpio_members_and_header_fields() {
        use crate::image::cpio::{Archive, Entry};
        let write = |mode: u32, data: &str| {
            let mut ar = Archive::new();
            ar.add(Entry::data("etc/a", "same", 0o644));
            ar.add(Entry::data("etc/b", data, mode));
            let mut buf = Vec::new();
            ar.write(&mut buf, 100).unwrap();
            buf
        };
        let base = write(0o644, "hello");
        let members = parse_newc(&base).unwrap();
        assert_eq!(
            members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["etc", "etc/a", "etc/b"]
        );
        assert_eq!(cpio_difference(&base, &base), None);
        assert_eq!(
            cpio_difference(&base, &write(0o644, "help!")).unwrap(),
            "member etc/b: content differs at byte 3"
        );
        let d = cpio_difference(&base, &write(0o600, "hello")).unwrap();
        assert!(
            d.starts_with("member etc/b: header field mode differs (100644"),
            "{d}"
        );
    }

    #[test]
    fn plain_files_name_the_byte_offset() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, vec![1u8; 100_000]).unwrap();
        let mut v = vec![1u8; 100_001];
        v[70_000] = 2;
        std::fs::write(&b, &v).unwrap();
        assert_eq!(
            compare_files("vmlinuz", &a, &b).unwrap().unwrap(),
            "first difference at byte 70000 (sizes 100000 and 100001)"
        );
        std::fs::write(&b, vec![1u8; 100_000]).unwrap();
        assert_eq!(compare_files("vmlinuz", &a, &b).unwrap(), None);
    }
}
