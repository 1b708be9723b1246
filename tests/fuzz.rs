//! Structure-aware fuzzing of the three loaders that read files a user writes: the
//! scst.conf parser (and what the init does with a parsed config: validate, print,
//! plan), the node.toml loader (`NodeConfig::parse`, then the LIO plan the init
//! computes from it) and the cluster.toml loader (`Cluster::parse`). Each must return
//! `Ok` or `Err`, never panic: sanforge-init reads the first two as PID 1.
//!
//! Inputs are the real files (tests/fixtures, recipes/nodes) and a few seeds below,
//! mutated by a small deterministic generator: character edits, line and block
//! duplication or removal, splices between seeds, tokens of the format (keywords,
//! braces, quotes, keys found in the seeds), typed TOML values swapped in (edge
//! numbers, malformed addresses, durations and sizes), and, for scst.conf, random block
//! trees from its grammar. The same seed gives the same inputs.
//!
//! `cargo test` runs a few thousand inputs per target; `benches/fuzz.sh` runs the
//! ignored `*_benchmark` tests with `SANFORGE_FUZZ_INPUTS` (default 1,000,000 per
//! target) and prints a table. A panicking input is written to
//! `target/fuzz-panics/TARGET-N.txt` and fails the test with its message.

use sanforge::config::node::NodeConfig;
use sanforge::ha::cluster::Cluster;
use sanforge::scsi::{lio, scst};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Instant;

/// Inputs per target in a plain `cargo test`.
const QUICK: u64 = 3_000;

// ---- The targets -------------------------------------------------------------------

// Each returns whether the input loaded (the share of inputs that get past the parser
// says how deep the generator reaches).

fn scst_target(text: &str) -> bool {
    let Ok(conf) = scst::parse(text) else {
        return false;
    };
    let _ = scst::validate(&conf);
    let printed = scst::print(&conf);
    let _ = scst::plan(&conf);
    // What the init does on `apply-scst`: the move from the applied config to this.
    if let Ok(again) = scst::parse(&printed) {
        let _ = scst::diff_plan(&again, &conf, true);
    }
    true
}

fn node_target(text: &str) -> bool {
    let Ok(node) = NodeConfig::parse(Path::new("node.toml"), text) else {
        return false;
    };
    if let Some(l) = &node.lio {
        let _ = lio::plan(l);
    }
    true
}

fn cluster_target(text: &str) -> bool {
    Cluster::parse(Path::new("cluster.toml"), text).is_ok()
}

// ---- Seeds -------------------------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (relative to the project) whose name ends with `ext`.
fn files(dir: &str, ext: &str) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    names.sort();
    let out: Vec<String> = names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    assert!(!out.is_empty(), "no {ext} seed in {dir}");
    out
}

fn scst_seeds() -> Vec<String> {
    let mut s = files("tests/fixtures/scst", ".conf");
    s.extend(files("recipes/nodes", ".conf"));
    s.push(scst::print(&scst::generate(6, 3, 4)));
    s.push(
        "# globals, escapes and quoting\nsetup_id 0x1234\n\
         HANDLER vdisk_fileio {\n\tDEVICE d\\#1 {\n\t\tfilename \"/a b/c\"\n\t\tnv_cache 1 # comment\n\t}\n}\n\
         TARGET_DRIVER copy_manager {\n\tTARGET copy_manager_tgt {\n\t\tLUN 0 d#1\n\t}\n}\n"
            .into(),
    );
    s
}

const NODE_SEED: &str = r#"hostname = "n1"

[sysctl]
"vm.swappiness" = "0"

[modules]
load = ["scst", "scst_vdisk", "iscsi_scst"]
params = { scst = "scst_threads=4" }
blacklist = ["qla2xxx"]

[[network.interfaces]]
name = "eth0"
mac = "52:54:00:12:34:56"
addresses = ["10.0.0.1/24", "fd00::1/64"]
mtu = 9000

[[network.routes]]
to = "10.1.0.0/16"
via = "10.0.0.254"

[[lio.backstores]]
name = "b0"
kind = "block"
path = "/dev/drbd0"
write-back = true

[[lio.backstores]]
name = "r0"
kind = "ramdisk"
size = "1GiB"

[[lio.iscsi]]
iqn = "iqn.2024-01.org.example:t0"
tpg = 2
portals = ["0.0.0.0:3260", "[::]:3260"]
luns = [{ lun = 0, backstore = "b0" }, { lun = 1, backstore = "r0" }]

[[lio.iscsi.acls]]
initiator = "iqn.2024-01.org.example:i0"
mapped-luns = [{ mapped = 0, lun = 0, write-protect = true }, { mapped = 1, lun = 1 }]
chap = { userid = "u", password = "secret12345678" }

[ha]
enabled = true
settle-timeout = "90s"
drain-timeout = "500ms"
stop-timeout = "2m"
cluster-mode = false
watchdog = { device = "/dev/watchdog0", interval = "5s", mode = "sbd" }

[[services]]
name = "sbd"
argv = ["/usr/sbin/sbd", "-F", "watch"]
restart = "on-failure"
env = { SBD_WATCHDOG_TIMEOUT = "10" }

[scst]
conf = "/etc/sanforge/scst.conf"
iscsi-daemon = ["/usr/sbin/iscsi-scstd", "-f"]
"#;

fn node_seeds() -> Vec<String> {
    let mut s = files("recipes/nodes", ".toml");
    s.push(NODE_SEED.into());
    s
}

fn cluster_seeds() -> Vec<String> {
    files("tests/fixtures/cluster", ".toml")
}

// ---- The generator -----------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const ODD_CHARS: &[char] = &[
    '\0',
    '\t',
    '\r',
    '\n',
    ' ',
    '"',
    '\'',
    '\\',
    '#',
    '{',
    '}',
    '[',
    ']',
    '=',
    ',',
    '.',
    ':',
    '/',
    '-',
    '_',
    '*',
    '?',
    '!',
    '0',
    '9',
    'é',
    'ß',
    '\u{feff}',
    '\u{200b}',
    '😀',
    '\u{10ffff}',
];

const SCST_TOKENS: &[&str] = &[
    "{",
    "}",
    "\n",
    " ",
    "\t",
    "#",
    "\\",
    "\\#",
    "\"",
    "\"\"",
    "HANDLER",
    "DEVICE",
    "TARGET_DRIVER",
    "TARGET",
    "LUN",
    "GROUP",
    "INITIATOR",
    "DEVICE_GROUP",
    "TARGET_GROUP",
    "ALUA",
    "HW_TARGET",
    "enabled",
    "0",
    "1",
    "-1",
    "4294967296",
    "[HANDLER",
    "[GROUP",
    "vdisk_fileio",
    "vdisk_blockio",
    "iscsi",
    "qla2x00t",
    "copy_manager",
    "filename",
    "rel_tgt_id",
    "group_id",
    "state",
    "active",
    "standby",
    "transitioning",
    "*",
    "!",
    "iqn.2024-01.org.example:t",
    "21:00:00:24:ff:54:09:32",
    "é",
];

const TOML_TOKENS: &[&str] = &[
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "#",
    "\n",
    " ",
    ".",
    "\\",
    "\\u",
    "\\U0010FFFF",
    "\\uD800",
    "true",
    "false",
    "nan",
    "inf",
    "-0",
    "1e400",
    "0x10",
    "1_000",
    "1979-05-27T07:32:00Z",
    "é",
];

/// Whole TOML values of every type, and strings the validators parse.
const TOML_VALUES: &[&str] = &[
    "\"\"",
    "\"x\"",
    "0",
    "-1",
    "1",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "1.5",
    "-0.0",
    "nan",
    "true",
    "[]",
    "[\"\"]",
    "[1, 2]",
    "{}",
    "{ a = 1 }",
    "[{}]",
    "\"0.0.0.0/0\"",
    "\"10.0.0.1/33\"",
    "\"10.0.0.256/24\"",
    "\"::1/129\"",
    "\"fe80::1%eth0/64\"",
    "\"default\"",
    "\"1.2.3.4\"",
    "\"0.0.0.0:99999\"",
    "\"[::]:3260\"",
    "\"64MiB\"",
    "\"0B\"",
    "\"18446744073709551615GiB\"",
    "\"99999999999TiB\"",
    "\"-1M\"",
    "\"0s\"",
    "\"1h\"",
    "\"500ms\"",
    "\"18446744073709551615h\"",
    "\"9999999999999999999999s\"",
    "\"1.5s\"",
    "\"s\"",
    "\"iqn.2024-01.a:b\"",
    "\"iqn.\"",
    "\"iqn.2024-1\"",
    "\"eui.0123456789abcdef\"",
    "\"naa.\"",
    "\"52:54:00:12:34:56\"",
    "\"52:54:00:12:34\"",
    "\"/dev/watchdog\"",
    "\"/\"",
    "\"..\"",
    "\"../../etc/passwd\"",
    "\"a\\u0000b\"",
    "\"é\"",
    "\"-\"",
    "\"a b\"",
    "\"sbd\"",
    "\"init\"",
    "\"always\"",
    "\"never\"",
    "\"on-failure\"",
    "\"fileio\"",
    "\"block\"",
    "\"ramdisk\"",
    "\"scst\"",
    "\"lio\"",
    "\"knet\"",
    "\"udpu\"",
    "\"agent\"",
    "\"sbd\"",
    "\"none\"",
    "\"21:00:00:24:ff:54:09:32\"",
    "\"21:00\"",
];

/// Words of the seeds (keys, keywords, names), to insert where they do not belong.
fn words(seeds: &[String]) -> Vec<String> {
    let mut w: Vec<String> = seeds
        .iter()
        .flat_map(|s| {
            s.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
                .filter(|w| !w.is_empty() && w.len() < 40)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    w.sort();
    w.dedup();
    w
}

/// Char-boundary byte offsets of `s`, end included.
fn boundaries(s: &str) -> Vec<usize> {
    s.char_indices().map(|(i, _)| i).chain([s.len()]).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Scst,
    Toml,
}

struct Gen {
    format: Format,
    seeds: Vec<String>,
    words: Vec<String>,
}

impl Gen {
    fn new(format: Format, seeds: Vec<String>) -> Gen {
        let words = words(&seeds);
        Gen {
            format,
            seeds,
            words,
        }
    }

    fn token(&self, rng: &mut Rng) -> String {
        match rng.below(4) {
            0 => rng.pick(&self.words).clone(),
            1 => rng.pick(ODD_CHARS).to_string(),
            _ => match self.format {
                Format::Scst => rng.pick(SCST_TOKENS).to_string(),
                Format::Toml => rng.pick(TOML_TOKENS).to_string(),
            },
        }
    }

    /// One input: a seed (or, for scst.conf, a generated tree), mutated.
    fn input(&self, rng: &mut Rng) -> String {
        let mut s = if self.format == Format::Scst && rng.chance(25) {
            scst_tree(rng, &self.words)
        } else {
            rng.pick(&self.seeds).clone()
        };
        // 1 to 8 mutations, fewer more often (half the inputs get one).
        for _ in 0..1 + (rng.next().trailing_zeros() as usize).min(7) {
            self.mutate(rng, &mut s);
        }
        s
    }

    fn mutate(&self, rng: &mut Rng, s: &mut String) {
        let b = boundaries(s);
        let at = *rng.pick(&b);
        let span = |rng: &mut Rng| {
            let i = rng.below(b.len());
            let j = (i + 1 + rng.below(16)).min(b.len() - 1);
            (b[i], b[j.max(i)])
        };
        match rng.below(12) {
            // Insert a token.
            0 | 1 => {
                let t = self.token(rng);
                s.insert_str(at, &t);
            }
            // Replace a short span by a token.
            2 => {
                let (x, y) = span(rng);
                let t = self.token(rng);
                s.replace_range(x..y, &t);
            }
            // Delete a short span.
            3 => {
                let (x, y) = span(rng);
                s.replace_range(x..y, "");
            }
            // Duplicate a short span.
            4 => {
                let (x, y) = span(rng);
                let d = s[x..y].to_string();
                s.insert_str(y, &d);
            }
            // Truncate.
            5 => s.truncate(at),
            // Remove, duplicate or swap whole lines (blocks, tables, closing braces).
            6 | 7 => {
                let mut lines: Vec<String> = s.split('\n').map(String::from).collect();
                let i = rng.below(lines.len());
                let n = 1 + rng.below(6).min(lines.len() - i - 1);
                match rng.below(3) {
                    0 => {
                        lines.drain(i..i + n);
                    }
                    1 => {
                        let block: Vec<String> = lines[i..i + n].to_vec();
                        let to = rng.below(lines.len() + 1);
                        lines.splice(to..to, block);
                    }
                    _ => {
                        let j = rng.below(lines.len());
                        lines.swap(i, j);
                    }
                }
                *s = lines.join("\n");
            }
            // Splice the tail of another seed.
            8 => {
                let other = rng.pick(&self.seeds);
                let ob = boundaries(other);
                let from = *rng.pick(&ob);
                s.truncate(at);
                s.push_str(&other[from..]);
            }
            // A number made extreme.
            9 => {
                if let Some((x, y)) = number_at(s, rng) {
                    let v = *rng.pick(&[
                        "0",
                        "-1",
                        "255",
                        "256",
                        "65536",
                        "4294967296",
                        "18446744073709551616",
                        "99999999999999999999999999",
                    ]);
                    s.replace_range(x..y, v);
                }
            }
            // TOML: a value of another type; scst.conf: a value with blanks or quotes.
            _ => match self.format {
                Format::Toml => {
                    let lines: Vec<&str> = s.split('\n').collect();
                    let i = rng.below(lines.len());
                    if let Some((key, _)) = lines[i].split_once('=') {
                        let line = format!("{key}= {}", rng.pick(TOML_VALUES));
                        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                        out[i] = line;
                        *s = out.join("\n");
                    }
                }
                Format::Scst => {
                    let v = *rng.pick(&["\"a b\"", "\"\"", "\"x", "a b c d", "\"}\"", "\\{"]);
                    s.insert_str(at, v);
                }
            },
        }
    }
}

/// The byte range of a run of digits somewhere in `s`, if any.
fn number_at(s: &str, rng: &mut Rng) -> Option<(usize, usize)> {
    let starts: Vec<usize> = s
        .char_indices()
        .filter(|(i, c)| c.is_ascii_digit() && (*i == 0 || !s.as_bytes()[i - 1].is_ascii_digit()))
        .map(|(i, _)| i)
        .collect();
    if starts.is_empty() {
        return None;
    }
    let x = *rng.pick(&starts);
    let len = s[x..].bytes().take_while(u8::is_ascii_digit).count();
    Some((x, x + len))
}

/// A random scst.conf block tree from the grammar's keywords and the seeds' words.
fn scst_tree(rng: &mut Rng, words: &[String]) -> String {
    fn block(rng: &mut Rng, words: &[String], depth: usize, out: &mut String) {
        for _ in 0..rng.below(5) {
            let indent = "\t".repeat(depth);
            let kw = *rng.pick(&[
                "HANDLER",
                "DEVICE",
                "TARGET_DRIVER",
                "TARGET",
                "LUN",
                "GROUP",
                "INITIATOR",
                "DEVICE_GROUP",
                "TARGET_GROUP",
                "ALUA",
                "HW_TARGET",
                "enabled",
                "attr",
            ]);
            let name = rng.pick(words).clone();
            let head = match kw {
                "LUN" => format!("LUN {} {name}", rng.below(300)),
                "ALUA" | "HW_TARGET" => kw.to_string(),
                "enabled" => format!("enabled {}", rng.below(3)),
                "attr" => format!("{name} {}", rng.pick(words)),
                _ => format!("{kw} {name}"),
            };
            if depth < 4 && rng.chance(50) {
                out.push_str(&format!("{indent}{head} {{\n"));
                block(rng, words, depth + 1, out);
                out.push_str(&format!("{indent}}}\n"));
            } else {
                out.push_str(&format!("{indent}{head}\n"));
            }
        }
    }
    let mut out = String::new();
    block(rng, words, 0, &mut out);
    out
}

// ---- The runner --------------------------------------------------------------------

thread_local! {
    /// Whether this thread is inside a target (its panics are caught and counted).
    static IN_TARGET: Cell<bool> = const { Cell::new(false) };
    /// The message and location of the last panic of a target on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A target's panics are recorded instead of printed (there may be many); any other
/// panic (a failing test) goes to the usual hook.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let usual = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_TARGET.with(Cell::get) {
                return usual(info);
            }
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{at}: {msg}")));
        }));
    });
}

struct Outcome {
    inputs: u64,
    loaded: u64,
    panics: u64,
    seconds: f64,
    first: Option<String>,
}

fn run(
    name: &str,
    format: Format,
    seeds: Vec<String>,
    target: fn(&str) -> bool,
    n: u64,
) -> Outcome {
    quiet_panics();
    let seed: u64 = std::env::var("SANFORGE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5a4f_0001);
    let gen = Gen::new(format, seeds);
    let mut rng = Rng(seed
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)));
    let started = Instant::now();
    let mut panics = 0;
    let mut loaded = 0;
    let mut first = None;
    // The seeds as they are, then generated inputs.
    let inputs = gen
        .seeds
        .clone()
        .into_iter()
        .chain(std::iter::repeat_with(|| gen.input(&mut rng)).take(n as usize));
    let mut count = 0;
    for input in inputs {
        count += 1;
        IN_TARGET.with(|t| t.set(true));
        let r = panic::catch_unwind(AssertUnwindSafe(|| target(&input)));
        IN_TARGET.with(|t| t.set(false));
        if matches!(r, Ok(true)) {
            loaded += 1;
        }
        if r.is_err() {
            panics += 1;
            let why = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default();
            let dir = root().join("target/fuzz-panics");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-{panics}.txt"));
            let _ = std::fs::write(&file, &input);
            if first.is_none() {
                first = Some(format!(
                    "{why}\ninput #{count} (seed {seed}), saved to {}:\n{input:?}",
                    file.display()
                ));
            }
        }
    }
    Outcome {
        inputs: count,
        loaded,
        panics,
        seconds: started.elapsed().as_secs_f64(),
        first,
    }
}

fn check(name: &str, format: Format, seeds: Vec<String>, target: fn(&str) -> bool, n: u64) {
    let o = run(name, format, seeds, target, n);
    // One line per target; benches/fuzz.sh turns these into its table.
    println!(
        "fuzz-result {name} {} {} {} {:.2}",
        o.inputs, o.loaded, o.panics, o.seconds
    );
    if let Some(first) = o.first {
        panic!(
            "{name}: {} of {} inputs panicked; the first: {first}",
            o.panics, o.inputs
        );
    }
}

/// Inputs per target of the benchmark (`SANFORGE_FUZZ_INPUTS`, default 1,000,000).
fn bench_inputs() -> u64 {
    std::env::var("SANFORGE_FUZZ_INPUTS")
        .ok()
        .map(|s| {
            s.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("SANFORGE_FUZZ_INPUTS={s}: expected a number"))
        })
        .unwrap_or(1_000_000)
}

#[test]
fn scst_conf_parser_never_panics() {
    check("scst.conf", Format::Scst, scst_seeds(), scst_target, QUICK);
}

#[test]
fn node_toml_loader_never_panics() {
    check("node.toml", Format::Toml, node_seeds(), node_target, QUICK);
}

#[test]
fn cluster_toml_loader_never_panics() {
    check(
        "cluster.toml",
        Format::Toml,
        cluster_seeds(),
        cluster_target,
        QUICK,
    );
}

#[test]
#[ignore = "benchmark: run by benches/fuzz.sh"]
fn scst_conf_parser_benchmark() {
    check(
        "scst.conf",
        Format::Scst,
        scst_seeds(),
        scst_target,
        bench_inputs(),
    );
}

#[test]
#[ignore = "benchmark: run by benches/fuzz.sh"]
fn node_toml_loader_benchmark() {
    check(
        "node.toml",
        Format::Toml,
        node_seeds(),
        node_target,
        bench_inputs(),
    );
}

#[test]
#[ignore = "benchmark: run by benches/fuzz.sh"]
fn cluster_toml_loader_benchmark() {
    check(
        "cluster.toml",
        Format::Toml,
        cluster_seeds(),
        cluster_target,
        bench_inputs(),
    );
}

/// The generator itself: deterministic, and it does reach past the parsers' first
/// error (some inputs of each kind still load).
#[test]
fn generator_is_deterministic_and_keeps_some_inputs_valid() {
    let gen = Gen::new(Format::Toml, node_seeds());
    let a: Vec<String> = {
        let mut r = Rng(7);
        (0..50).map(|_| gen.input(&mut r)).collect()
    };
    let b: Vec<String> = {
        let mut r = Rng(7);
        (0..50).map(|_| gen.input(&mut r)).collect()
    };
    assert_eq!(a, b);
    let mut r = Rng(1);
    let ok = (0..500)
        .filter(|_| NodeConfig::parse(Path::new("n.toml"), &gen.input(&mut r)).is_ok())
        .count();
    assert!(ok > 10, "only {ok} of 500 mutated node configs load");
    let sg = Gen::new(Format::Scst, scst_seeds());
    let ok = (0..500)
        .filter(|_| scst::parse(&sg.input(&mut r)).is_ok())
        .count();
    assert!(ok > 10, "only {ok} of 500 mutated scst.conf files parse");
}
