//! Kernel config assembly and verification.
//!
//! A kernel config is built as base (`make tinyconfig`, run elsewhere) + ordered
//! fragment files + the options the recipe asserts, then `make olddefconfig`. Kconfig
//! silently drops or changes any requested option whose dependencies are not met, so
//! this module checks the final `.config` against every request and, when the kernel
//! source tree is at hand, explains each failure from the `Kconfig*` files: which
//! `depends on` (including enclosing `if`, `menu` and the `if` around the `source` line
//! that pulls a file in) is unmet, whether something `select`s the option, whether it
//! has no prompt, or whether the option does not exist in this kernel at all.
//!
//! Reads: fragment files, the base and final `.config` texts, and (optionally) every
//! file named `Kconfig*` under the kernel source root. It never spawns a program.

use anyhow::{bail, Context, Result};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

// ---------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------

/// One option a fragment or the recipe asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The option name with its prefix, e.g. `CONFIG_SQUASHFS`.
    pub option: String,
    /// The value as written in a `.config`: `y`, `m`, `n`, `123`, `0x10`, `"str"`.
    pub value: String,
    /// Where it was requested: `kernel-configs/fs.config:3` or `recipe`.
    pub origin: String,
}

const FRAGMENT_EXPECTED: &str =
    "expected `CONFIG_NAME=value`, `# CONFIG_NAME is not set`, a comment or a blank line";

fn is_option_name(name: &str) -> bool {
    name.len() > 7
        && name.starts_with("CONFIG_")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses `# CONFIG_X is not set`, returning `CONFIG_X`.
fn parse_not_set(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name = rest.strip_suffix("is not set")?.trim_end();
    is_option_name(name).then_some(name)
}

/// Checks a value as it may appear after `CONFIG_X=` in a `.config`.
fn check_value(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err(
            "empty value (write `# CONFIG_NAME is not set` or a quoted \"\" string)".into(),
        );
    }
    if let Some(inner) = value.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Err(format!("unterminated string value `{value}`"));
        };
        let mut escaped = false;
        for c in inner.chars() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    return Err(format!("unescaped quote inside string value `{value}`"))
                }
                _ => {}
            }
        }
        if escaped {
            return Err(format!("string value `{value}` ends with a lone backslash"));
        }
        return Ok(());
    }
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+')
    {
        Ok(())
    } else {
        Err(format!(
            "value `{value}` is not y, m, n, a number or a double-quoted string"
        ))
    }
}

/// Reads a config fragment: `CONFIG_X=value` and `# CONFIG_X is not set` lines (the
/// latter request `n`); other comments and blank lines are ignored. Each request's
/// origin is `display_name:line`.
pub fn parse_fragment(path: &Path, display_name: &str) -> Result<Vec<Request>> {
    let text = crate::util::fs::read_to_string(path)?;
    parse_fragment_text(&text, display_name)
}

/// [`parse_fragment`] on text already read.
pub fn parse_fragment_text(text: &str, display_name: &str) -> Result<Vec<Request>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        let origin = format!("{display_name}:{lineno}");
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if let Some(name) = parse_not_set(line) {
                out.push(Request {
                    option: name.to_string(),
                    value: "n".into(),
                    origin,
                });
            }
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            bail!("{origin}: {FRAGMENT_EXPECTED}, found `{line}`");
        };
        let name = name.trim();
        if !is_option_name(name) {
            bail!("{origin}: option name `{name}`: expected a name like CONFIG_FOO (letters, digits, _)");
        }
        let value = value.trim();
        if let Err(why) = check_value(value) {
            bail!("{origin}: {name}: {why}");
        }
        out.push(Request {
            option: name.to_string(),
            value: value.to_string(),
            origin,
        });
    }
    Ok(out)
}

/// Whether `v` is a plain (decimal or `0x` hex) number, possibly negative.
fn is_number(v: &str) -> bool {
    parse_number(v).is_some()
}

fn parse_number(v: &str) -> Option<i128> {
    let v = v.trim();
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v),
    };
    let n = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if hex.is_empty() {
            return None;
        }
        i128::from_str_radix(hex, 16).ok()?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i128>().ok()?
    };
    Some(if neg { -n } else { n })
}

/// The recipe's `[kernel] options` as requests (origin `recipe`). Values `y`, `m`, `n`
/// and numbers are kept; a value already in double quotes is kept; any other value is
/// a string and gets quoted (`-san` becomes `"-san"`), as a `.config` writes it.
pub fn requests_from_recipe(options: &BTreeMap<String, String>) -> Vec<Request> {
    options
        .iter()
        .map(|(k, v)| {
            let v = v.trim();
            let value = if matches!(v, "y" | "m" | "n")
                || is_number(v)
                || (v.len() >= 2 && v.starts_with('"') && v.ends_with('"'))
            {
                v.to_string()
            } else {
                format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            };
            Request {
                option: normalize_option(k),
                value,
                origin: "recipe".into(),
            }
        })
        .collect()
}

/// The recipe's `forbid` list as `n` requests (origin `recipe (forbidden)`), so that
/// [`merge`] starts `olddefconfig` with them unset. [`verify`] still checks the list
/// itself.
pub fn requests_from_forbid(forbid: &[String]) -> Vec<Request> {
    forbid
        .iter()
        .map(|k| Request {
            option: normalize_option(k),
            value: "n".into(),
            origin: "recipe (forbidden)".into(),
        })
        .collect()
}

/// `FOO` → `CONFIG_FOO`; `CONFIG_FOO` unchanged.
fn normalize_option(name: &str) -> String {
    let name = name.trim();
    if name.starts_with("CONFIG_") {
        name.to_string()
    } else {
        format!("CONFIG_{name}")
    }
}

// ---------------------------------------------------------------------------------
// .config text
// ---------------------------------------------------------------------------------

/// The option a `.config` line sets, with its value (`n` for `# ... is not set`).
fn config_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.starts_with('#') {
        return parse_not_set(line).map(|n| (n, "n"));
    }
    let (name, value) = line.split_once('=')?;
    let name = name.trim();
    is_option_name(name).then_some((name, value.trim()))
}

fn render(option: &str, value: &str) -> String {
    if value == "n" {
        format!("# {option} is not set")
    } else {
        format!("{option}={value}")
    }
}

/// The text of a `.config`: `base` with each requested option's line replaced in place
/// (later requests win; further duplicate lines of a requested option are dropped), and
/// options absent from `base` appended in the order they were first requested. `n` is
/// written as `# CONFIG_X is not set`.
pub fn merge(base: &str, requests: &[Request]) -> String {
    let mut wanted: HashMap<&str, &str> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for r in requests {
        if wanted.insert(&r.option, &r.value).is_none() {
            order.push(&r.option);
        }
    }
    let mut written: HashSet<&str> = HashSet::new();
    let mut out = String::with_capacity(base.len() + requests.len() * 32);
    for line in base.lines() {
        if let Some((name, _)) = config_line(line) {
            if let Some((key, value)) = wanted.get_key_value(name) {
                if written.insert(key) {
                    out.push_str(&render(key, value));
                    out.push('\n');
                }
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    for name in order {
        if !written.contains(name) {
            out.push_str(&render(name, wanted[name]));
            out.push('\n');
        }
    }
    out
}

/// The values a `.config` sets: `CONFIG_X` → `y`/`m`/`123`/`"str"`; `# CONFIG_X is not
/// set` gives `n`; options not mentioned are absent.
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(config_line)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn is_unset(v: Option<&str>) -> bool {
    matches!(v, None | Some("n") | Some(""))
}

/// Whether a final value satisfies a requested one (`n` = unset; numbers compared by
/// value so that `0x10` matches `0x010`).
fn value_matches(want: &str, got: Option<&str>) -> bool {
    if want == "n" {
        return is_unset(got);
    }
    let Some(got) = got else { return false };
    if want == got {
        return true;
    }
    match (parse_number(want), parse_number(got)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------

/// Every way the final config differs from what was asked, one problem per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub problems: Vec<String>,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for VerifyError {}

/// Checks the final `.config` text: every request (the last one per option wins) must
/// hold, every forbidden option must be unset. When `kconfig_src` (the kernel source
/// root) is given, each problem says why Kconfig did what it did; an unreadable tree
/// only makes the explanations vaguer (a note says so).
pub fn verify(
    final_config: &str,
    requests: &[Request],
    forbid: &[String],
    kconfig_src: Option<&Path>,
) -> std::result::Result<(), VerifyError> {
    let cfg = parse_config(final_config);
    if first_problems(&cfg, requests, forbid).is_none() {
        return Ok(());
    }
    let (index, note) = match kconfig_src.map(KconfigIndex::build) {
        None => (None, None),
        Some(Ok(ix)) => (Some(ix), None),
        Some(Err(e)) => (None, Some(format!("note: no explanations: {e:#}"))),
    };
    let mut r = verify_with_index(final_config, requests, forbid, index.as_ref());
    if let (Err(err), Some(note)) = (&mut r, note) {
        err.problems.push(note);
    }
    r
}

/// Cheap pre-check: is there any problem at all (so the Kconfig index is built only
/// when something must be explained)?
fn first_problems(
    cfg: &BTreeMap<String, String>,
    requests: &[Request],
    forbid: &[String],
) -> Option<()> {
    let bad_req = effective(requests)
        .iter()
        .any(|r| !value_matches(&r.value, cfg.get(&r.option).map(String::as_str)));
    let bad_forbid = forbid
        .iter()
        .any(|f| !is_unset(cfg.get(&normalize_option(f)).map(String::as_str)));
    (bad_req || bad_forbid).then_some(())
}

/// The last request per option, in the order options were first requested.
fn effective(requests: &[Request]) -> Vec<&Request> {
    let mut pos: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<&Request> = Vec::new();
    for r in requests {
        match pos.get(r.option.as_str()) {
            Some(&i) => out[i] = r,
            None => {
                pos.insert(&r.option, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// [`verify`] with an index already built (or none).
pub fn verify_with_index(
    final_config: &str,
    requests: &[Request],
    forbid: &[String],
    index: Option<&KconfigIndex>,
) -> std::result::Result<(), VerifyError> {
    let cfg = parse_config(final_config);
    let mut problems = Vec::new();
    let reason = |option: &str, want: &str, got: Option<&str>| -> String {
        match index {
            Some(ix) => format!(": {}", ix.explain(option, want, got, &cfg)),
            None => String::new(),
        }
    };
    let forbidden: HashSet<String> = forbid.iter().map(|f| normalize_option(f)).collect();
    for r in effective(requests) {
        let got = cfg.get(&r.option).map(String::as_str);
        // A forbidden option asked unset is reported once, by the forbid check below.
        if value_matches(&r.value, got) || (r.value == "n" && forbidden.contains(&r.option)) {
            continue;
        }
        let head = format!("{}={} requested by {}", r.option, r.value, r.origin);
        let what = match got {
            _ if r.value == "n" => format!("is {}", got.unwrap_or("set")),
            g if is_unset(g) => "was dropped".to_string(),
            Some(g) => format!("became {g}"),
            None => "was dropped".to_string(),
        };
        problems.push(format!("{head} {what}{}", reason(&r.option, &r.value, got)));
    }
    for f in forbid {
        let option = normalize_option(f);
        let got = cfg.get(&option).map(String::as_str);
        if is_unset(got) {
            continue;
        }
        let conflict = effective(requests)
            .into_iter()
            .find(|r| r.option == option && r.value != "n")
            .map(|r| {
                format!(
                    " (it is also requested as {}={} by {})",
                    r.option, r.value, r.origin
                )
            })
            .unwrap_or_default();
        problems.push(format!(
            "{option} is forbidden by the recipe but is {}{}{conflict}",
            got.unwrap_or("set"),
            reason(&option, "n", got)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(VerifyError { problems })
    }
}

// ---------------------------------------------------------------------------------
// Kconfig expressions
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tri {
    N,
    M,
    Y,
}

impl Tri {
    fn name(self) -> &'static str {
        match self {
            Tri::N => "n",
            Tri::M => "m",
            Tri::Y => "y",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A Kconfig expression. Anything the parser does not understand (macros such as
/// `$(cc-option,...)`, odd syntax) becomes `Unknown`, which evaluates to "don't know".
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Sym(String),
    Str(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Unknown(String),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Sym(s) => f.write_str(s),
            Expr::Str(s) => write!(f, "\"{s}\""),
            Expr::Unknown(s) => f.write_str(s),
            Expr::Not(e) => match **e {
                Expr::Sym(_) | Expr::Str(_) | Expr::Not(_) | Expr::Unknown(_) => write!(f, "!{e}"),
                _ => write!(f, "!({e})"),
            },
            Expr::And(a, b) => {
                for (i, e) in [a, b].into_iter().enumerate() {
                    if i > 0 {
                        f.write_str(" && ")?;
                    }
                    match **e {
                        Expr::Or(..) => write!(f, "({e})")?,
                        _ => write!(f, "{e}")?,
                    }
                }
                Ok(())
            }
            Expr::Or(a, b) => write!(f, "{a} || {b}"),
            Expr::Cmp(op, a, b) => write!(f, "{a} {} {b}", op.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Macro(String),
    And,
    Or,
    Not,
    LParen,
    RParen,
    Cmp(CmpOp),
}

/// Splits the arguments of a Kconfig line into tokens; `None` on something it cannot
/// read (the caller then keeps the raw text as an unknown expression).
fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' | b'\'' => {
                let mut j = i + 1;
                let mut val = String::new();
                let mut closed = false;
                while j < b.len() {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        val.push(b[j + 1] as char);
                        j += 2;
                        continue;
                    }
                    if b[j] == c {
                        closed = true;
                        break;
                    }
                    let ch = s[j..].chars().next()?;
                    val.push(ch);
                    j += ch.len_utf8();
                }
                if !closed {
                    return None;
                }
                // A string holding a macro (`"$(ARCH)"`) is only known to Kconfig.
                if val.contains("$(") {
                    out.push(Tok::Macro(s[i..=j].to_string()));
                } else {
                    out.push(Tok::Str(val));
                }
                i = j + 1;
            }
            b'$' if b.get(i + 1) == Some(&b'(') => {
                let mut depth = 0usize;
                let mut j = i + 1;
                while j < b.len() {
                    match b[j] {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return None;
                }
                out.push(Tok::Macro(s[i..=j].to_string()));
                i = j + 1;
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                out.push(Tok::And);
                i += 2;
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                out.push(Tok::Or);
                i += 2;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Cmp(CmpOp::Ne));
                i += 2;
            }
            b'!' => {
                out.push(Tok::Not);
                i += 1;
            }
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b'=' => {
                out.push(Tok::Cmp(CmpOp::Eq));
                i += 1;
            }
            b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', false) => CmpOp::Lt,
                    (b'<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                };
                out.push(Tok::Cmp(op));
                i += if eq { 2 } else { 1 };
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' || c == b'+' => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'-' | b'.' | b'+'))
                {
                    i += 1;
                }
                out.push(Tok::Word(s[start..i].to_string()));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Renders tokens back to text (for unknown expressions).
fn untokenize(toks: &[Tok]) -> String {
    toks.iter()
        .map(|t| match t {
            Tok::Word(w) | Tok::Macro(w) => w.clone(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::And => "&&".into(),
            Tok::Or => "||".into(),
            Tok::Not => "!".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Cmp(op) => op.as_str().into(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Option<Expr> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Expr> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn unary(&mut self) -> Option<Expr> {
        match self.peek()? {
            Tok::Not => {
                self.pos += 1;
                Some(Expr::Not(Box::new(self.unary()?)))
            }
            Tok::LParen => {
                self.pos += 1;
                let e = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return None;
                }
                self.pos += 1;
                Some(e)
            }
            _ => {
                let left = self.atom()?;
                if let Some(Tok::Cmp(op)) = self.peek() {
                    let op = *op;
                    self.pos += 1;
                    let right = self.atom()?;
                    return Some(Expr::Cmp(op, Box::new(left), Box::new(right)));
                }
                Some(left)
            }
        }
    }

    fn atom(&mut self) -> Option<Expr> {
        let t = self.peek()?.clone();
        self.pos += 1;
        match t {
            Tok::Word(w) => Some(Expr::Sym(w)),
            Tok::Str(s) => Some(Expr::Str(s)),
            Tok::Macro(m) => Some(Expr::Unknown(m)),
            _ => None,
        }
    }
}

/// Parses a whole token list as one expression; never fails (unknown on error).
fn parse_expr(toks: &[Tok]) -> Expr {
    let mut p = Parser { toks, pos: 0 };
    match p.or() {
        Some(e) if p.pos == toks.len() => e,
        _ => Expr::Unknown(untokenize(toks)),
    }
}

/// The conjuncts of an expression (`a && (b || c)` → `a`, `b || c`).
fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::And(a, b) => {
            conjuncts(a, out);
            conjuncts(b, out);
        }
        other => out.push(other.clone()),
    }
}

/// Evaluates expressions against a final config.
#[derive(Clone, Copy)]
struct Env<'a> {
    cfg: &'a BTreeMap<String, String>,
    modules: bool,
}

impl<'a> Env<'a> {
    fn new(cfg: &'a BTreeMap<String, String>) -> Self {
        let modules = cfg.get("CONFIG_MODULES").map(String::as_str) == Some("y");
        Env { cfg, modules }
    }

    fn raw(&self, sym: &str) -> Option<&str> {
        self.cfg.get(&format!("CONFIG_{sym}")).map(String::as_str)
    }

    fn sym_tri(&self, sym: &str) -> Tri {
        let v = match sym {
            "y" | "m" | "n" => sym,
            _ => self.raw(sym).unwrap_or("n"),
        };
        match v {
            "y" => Tri::Y,
            "m" if self.modules => Tri::M,
            _ => Tri::N,
        }
    }

    fn string_of(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Str(s) => Some(s.clone()),
            Expr::Sym(s) if matches!(s.as_str(), "y" | "m" | "n") => Some(s.clone()),
            Expr::Sym(s) => Some(match self.raw(s) {
                Some(v) => v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
                    .to_string(),
                None if is_number(s) => s.clone(),
                None => "n".to_string(),
            }),
            _ => None,
        }
    }

    /// `None` when the value cannot be known (macros, unknown syntax).
    fn eval(&self, e: &Expr) -> Option<Tri> {
        match e {
            Expr::Sym(s) => Some(self.sym_tri(s)),
            Expr::Str(_) => Some(Tri::N),
            Expr::Unknown(_) => None,
            Expr::Not(x) => self.eval(x).map(|t| match t {
                Tri::Y => Tri::N,
                Tri::M => Tri::M,
                Tri::N => Tri::Y,
            }),
            Expr::And(a, b) => match (self.eval(a), self.eval(b)) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (Some(Tri::N), _) | (_, Some(Tri::N)) => Some(Tri::N),
                _ => None,
            },
            Expr::Or(a, b) => match (self.eval(a), self.eval(b)) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (Some(Tri::Y), _) | (_, Some(Tri::Y)) => Some(Tri::Y),
                _ => None,
            },
            Expr::Cmp(op, a, b) => {
                let (l, r) = (self.string_of(a)?, self.string_of(b)?);
                let ord = match (parse_number(&l), parse_number(&r)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => l.cmp(&r),
                };
                let ok = match op {
                    CmpOp::Eq => ord.is_eq(),
                    CmpOp::Ne => ord.is_ne(),
                    CmpOp::Lt => ord.is_lt(),
                    CmpOp::Le => ord.is_le(),
                    CmpOp::Gt => ord.is_gt(),
                    CmpOp::Ge => ord.is_ge(),
                };
                Some(if ok { Tri::Y } else { Tri::N })
            }
        }
    }

    fn describe_sym(&self, s: &str) -> String {
        match self.raw(s) {
            None | Some("n") => format!("{s} is not set"),
            Some(v) => format!("{s} is {v}"),
        }
    }

    /// The sub-terms that keep `e` at or below `limit` (the symbols not set, the
    /// comparisons that fail), as phrases like `MISC_FILESYSTEMS is not set`.
    fn blame(&self, e: &Expr, limit: Tri, out: &mut Vec<String>) {
        if self.eval(e).is_none_or(|t| t > limit) {
            return;
        }
        match e {
            Expr::Sym(s) if s == "n" => {
                out.push("it is disabled unconditionally (depends on n)".into())
            }
            Expr::Sym(s) if s == "m" => {
                out.push("modules are disabled (MODULES is not set)".into())
            }
            Expr::Sym(s) => out.push(self.describe_sym(s)),
            Expr::Not(x) => match &**x {
                Expr::Sym(s) => out.push(self.describe_sym(s)),
                other => out.push(format!("`{other}` holds")),
            },
            Expr::And(a, b) | Expr::Or(a, b) => {
                self.blame(a, limit, out);
                self.blame(b, limit, out);
            }
            Expr::Cmp(_, a, b) => {
                let mut what = format!("`{e}` does not hold");
                for side in [a, b] {
                    if let Expr::Sym(s) = &**side {
                        if !is_number(s) && !matches!(s.as_str(), "y" | "m" | "n") {
                            what.push_str(&format!(" ({})", self.describe_sym(s)));
                        }
                    }
                }
                out.push(what);
            }
            Expr::Str(s) => out.push(format!("\"{s}\" is not a symbol")),
            Expr::Unknown(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------
// Kconfig index
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SymType {
    Bool,
    Tristate,
    String,
    Int,
    Hex,
}

/// One `config`/`menuconfig` entry.
#[derive(Debug, Clone)]
struct SymDef {
    name: String,
    file: String,
    line: usize,
    ty: Option<SymType>,
    /// One per prompt, with its `if` condition.
    prompts: Vec<Option<Expr>>,
    depends: Vec<Expr>,
    /// Conditions of the enclosing `if`, `menu ... depends on` and `choice` blocks.
    context: Vec<Expr>,
    /// `visible if` of enclosing menus (hide the prompt, not the symbol).
    visible: Vec<Expr>,
    choice: Option<usize>,
    defaults: Vec<String>,
    ranges: Vec<String>,
}

#[derive(Debug, Clone)]
struct Select {
    by: String,
    cond: Option<Expr>,
    file: String,
    line: usize,
}

#[derive(Debug, Clone)]
struct SourceEdge {
    includer: String,
    conds: Vec<Expr>,
}

enum FrameKind {
    If,
    Menu,
    Choice(usize),
}

struct Frame {
    kind: FrameKind,
    conds: Vec<Expr>,
    visible: Vec<Expr>,
}

enum Current {
    None,
    Config(usize),
    Block,
}

/// Every `config` entry of a kernel tree, found by reading all `Kconfig*` files once.
#[derive(Debug, Default)]
pub struct KconfigIndex {
    defs: Vec<SymDef>,
    by_name: HashMap<String, Vec<usize>>,
    selects: HashMap<String, Vec<Select>>,
    choices: Vec<Vec<String>>,
    sources: HashMap<String, Vec<SourceEdge>>,
    arches: Vec<String>,
    files: usize,
}

/// The config symbol an `arch/<dir>` sets (`x86` → `X86`).
fn arch_symbol(dir: &str) -> String {
    match dir {
        "powerpc" => "PPC".into(),
        "um" => "UML".into(),
        "parisc" => "PARISC".into(),
        other => other.to_ascii_uppercase(),
    }
}

fn normalize_rel(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Strips a `#` comment that is outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') => escaped = true,
            (None, '#') => return &line[..i],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            _ => {}
        }
    }
    line
}

fn indent_of(line: &str) -> usize {
    let mut n = 0;
    for c in line.chars() {
        match c {
            ' ' => n += 1,
            '\t' => n = (n / 8 + 1) * 8,
            _ => break,
        }
    }
    n
}

/// Splits tokens at a top-level `if` word: (before, condition).
fn split_if(toks: &[Tok]) -> (&[Tok], Option<Expr>) {
    match toks.iter().position(|t| *t == Tok::Word("if".into())) {
        Some(i) => (&toks[..i], Some(parse_expr(&toks[i + 1..]))),
        None => (toks, None),
    }
}

impl KconfigIndex {
    /// Reads every file whose name starts with `Kconfig` under `root` (no symlinks
    /// followed, hidden directories skipped) and indexes its entries.
    pub fn build(root: &Path) -> Result<Self> {
        let mut ix = KconfigIndex::default();
        let mut stack = vec![root.to_path_buf()];
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        while let Some(dir) = stack.pop() {
            let rd = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?;
            for entry in rd {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() {
                    if !name.starts_with('.') {
                        stack.push(entry.path());
                    }
                } else if ft.is_file() && name.starts_with("Kconfig") {
                    files.push(entry.path());
                }
            }
        }
        files.sort();
        if let Ok(rd) = std::fs::read_dir(root.join("arch")) {
            let mut arches: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            arches.sort();
            ix.arches = arches;
        }
        for path in &files {
            let bytes = crate::util::fs::read(path)?;
            let text = String::from_utf8_lossy(&bytes);
            let rel = path
                .strip_prefix(root)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/");
            ix.add_file(&rel, &text);
        }
        Ok(ix)
    }

    /// Indexes files given as (path relative to the tree root, text).
    pub fn from_texts<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut ix = KconfigIndex::default();
        for (rel, text) in files {
            ix.add_file(rel, text);
        }
        ix
    }

    /// How many `Kconfig*` files were read.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// How many distinct symbols are defined.
    pub fn symbol_count(&self) -> usize {
        self.by_name.len()
    }

    /// Whether `sym` (without `CONFIG_`) has a `config` entry anywhere.
    pub fn defines(&self, sym: &str) -> bool {
        self.by_name
            .contains_key(sym.strip_prefix("CONFIG_").unwrap_or(sym))
    }

    fn add_file(&mut self, rel: &str, text: &str) {
        self.files += 1;
        // Join continuation lines, keeping the number of the first physical line.
        let mut lines: Vec<(usize, Cow<str>)> = Vec::new();
        let mut pending: Option<(usize, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let raw = raw.trim_end_matches('\r');
            match (pending.take(), raw.strip_suffix('\\')) {
                (None, None) => lines.push((i + 1, Cow::Borrowed(raw))),
                (None, Some(head)) => pending = Some((i + 1, format!("{head} "))),
                (Some((n, mut acc)), Some(head)) => {
                    acc.push_str(head);
                    acc.push(' ');
                    pending = Some((n, acc));
                }
                (Some((n, mut acc)), None) => {
                    acc.push_str(raw);
                    lines.push((n, Cow::Owned(acc)));
                }
            }
        }
        if let Some((n, acc)) = pending {
            lines.push((n, Cow::Owned(acc)));
        }

        let mut frames: Vec<Frame> = Vec::new();
        let mut current = Current::None;
        let mut help_indent: Option<Option<usize>> = None; // Some(None): in help, first line not seen
        for (lineno, line) in &lines {
            if let Some(first) = help_indent {
                if line.trim().is_empty() {
                    continue;
                }
                let ind = indent_of(line);
                match first {
                    None if ind > 0 => {
                        help_indent = Some(Some(ind));
                        continue;
                    }
                    Some(f) if ind >= f => continue,
                    _ => help_indent = None,
                }
            }
            let code = strip_comment(line).trim();
            if code.is_empty() {
                continue;
            }
            let (kw, rest) = match code.find([' ', '\t']) {
                Some(i) => (&code[..i], code[i..].trim()),
                None => (code, ""),
            };
            // Only lines whose arguments matter are tokenized (most lines are prompts,
            // defaults and help).
            let needs_tokens = matches!(
                kw,
                "if" | "source"
                    | "rsource"
                    | "osource"
                    | "orsource"
                    | "depends"
                    | "visible"
                    | "select"
                    | "bool"
                    | "boolean"
                    | "tristate"
                    | "string"
                    | "int"
                    | "hex"
                    | "prompt"
            );
            let toks = if needs_tokens { tokenize(rest) } else { None };
            let expr_of_rest = || match &toks {
                Some(t) => parse_expr(t),
                None => Expr::Unknown(rest.to_string()),
            };
            match kw {
                "config" | "menuconfig" => {
                    let name = rest.split_whitespace().next().unwrap_or("").to_string();
                    if name.is_empty() {
                        current = Current::None;
                        continue;
                    }
                    let context = frames
                        .iter()
                        .flat_map(|f| f.conds.iter().cloned())
                        .collect();
                    let visible = frames
                        .iter()
                        .flat_map(|f| f.visible.iter().cloned())
                        .collect();
                    let choice = frames.iter().rev().find_map(|f| match f.kind {
                        FrameKind::Choice(c) => Some(c),
                        _ => None,
                    });
                    if let Some(c) = choice {
                        if let Some(members) = self.choices.get_mut(c) {
                            members.push(name.clone());
                        }
                    }
                    let idx = self.defs.len();
                    self.defs.push(SymDef {
                        name: name.clone(),
                        file: rel.to_string(),
                        line: *lineno,
                        ty: None,
                        prompts: Vec::new(),
                        depends: Vec::new(),
                        context,
                        visible,
                        choice,
                        defaults: Vec::new(),
                        ranges: Vec::new(),
                    });
                    self.by_name.entry(name).or_default().push(idx);
                    current = Current::Config(idx);
                }
                "choice" => {
                    let c = self.choices.len();
                    self.choices.push(Vec::new());
                    frames.push(Frame {
                        kind: FrameKind::Choice(c),
                        conds: Vec::new(),
                        visible: Vec::new(),
                    });
                    current = Current::Block;
                }
                "menu" => {
                    frames.push(Frame {
                        kind: FrameKind::Menu,
                        conds: Vec::new(),
                        visible: Vec::new(),
                    });
                    current = Current::Block;
                }
                "if" => {
                    frames.push(Frame {
                        kind: FrameKind::If,
                        conds: vec![expr_of_rest()],
                        visible: Vec::new(),
                    });
                    current = Current::None;
                }
                "endif" | "endmenu" | "endchoice" => {
                    let matches = |k: &FrameKind| {
                        matches!(
                            (kw, k),
                            ("endif", FrameKind::If)
                                | ("endmenu", FrameKind::Menu)
                                | ("endchoice", FrameKind::Choice(_))
                        )
                    };
                    if let Some(pos) = frames.iter().rposition(|f| matches(&f.kind)) {
                        frames.truncate(pos);
                    }
                    current = Current::None;
                }
                "comment" | "mainmenu" => current = Current::None,
                "source" | "rsource" | "osource" | "orsource" => {
                    if let Some(Some(Tok::Str(target))) = toks.as_ref().map(|t| t.first().cloned())
                    {
                        if !target.contains('$') && !target.contains('*') {
                            let target = if kw.starts_with('r') || kw == "orsource" {
                                let dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                                normalize_rel(&format!("{dir}/{target}"))
                            } else {
                                normalize_rel(&target)
                            };
                            let conds = frames
                                .iter()
                                .flat_map(|f| f.conds.iter().cloned())
                                .collect();
                            self.sources.entry(target).or_default().push(SourceEdge {
                                includer: rel.to_string(),
                                conds,
                            });
                        }
                    }
                    current = Current::None;
                }
                "help" | "---help---" => help_indent = Some(None),
                "depends" => {
                    let Some(t) = &toks else { continue };
                    let body = match t.first() {
                        Some(Tok::Word(w)) if w == "on" => &t[1..],
                        _ => &t[..],
                    };
                    let e = parse_expr(body);
                    match current {
                        Current::Config(i) => self.defs[i].depends.push(e),
                        Current::Block => {
                            if let Some(f) = frames.last_mut() {
                                f.conds.push(e);
                            }
                        }
                        Current::None => {}
                    }
                }
                "visible" => {
                    if let (Current::Block, Some(t)) = (&current, &toks) {
                        let body = match t.first() {
                            Some(Tok::Word(w)) if w == "if" => &t[1..],
                            _ => &t[..],
                        };
                        if let Some(f) = frames.last_mut() {
                            f.visible.push(parse_expr(body));
                        }
                    }
                }
                "bool" | "boolean" | "tristate" | "string" | "int" | "hex" | "prompt"
                | "def_bool" | "def_tristate" => {
                    let Current::Config(i) = current else {
                        continue;
                    };
                    let (before, cond) = match &toks {
                        Some(t) => split_if(t),
                        None => (&[][..], None),
                    };
                    let def = &mut self.defs[i];
                    let ty = match kw {
                        "bool" | "boolean" | "def_bool" => Some(SymType::Bool),
                        "tristate" | "def_tristate" => Some(SymType::Tristate),
                        "string" => Some(SymType::String),
                        "int" => Some(SymType::Int),
                        "hex" => Some(SymType::Hex),
                        _ => None,
                    };
                    if ty.is_some() {
                        def.ty = ty;
                    }
                    if kw.starts_with("def_") {
                        def.defaults.push(rest.to_string());
                    } else if matches!(before.first(), Some(Tok::Str(_))) {
                        def.prompts.push(cond);
                    }
                }
                "default" => {
                    if let Current::Config(i) = current {
                        self.defs[i].defaults.push(rest.to_string());
                    }
                }
                "range" => {
                    if let Current::Config(i) = current {
                        self.defs[i].ranges.push(rest.to_string());
                    }
                }
                "select" => {
                    let (Current::Config(i), Some(t)) = (&current, &toks) else {
                        continue;
                    };
                    let (before, cond) = split_if(t);
                    if let Some(Tok::Word(target)) = before.first() {
                        let def = &self.defs[*i];
                        let sel = Select {
                            by: def.name.clone(),
                            cond,
                            file: def.file.clone(),
                            line: *lineno,
                        };
                        self.selects.entry(target.clone()).or_default().push(sel);
                    }
                }
                _ => {}
            }
        }
    }

    /// The conditions of the `if`/`menu` blocks around the `source` line(s) that pull
    /// `file` in, outermost first (follows the first includer of each file).
    fn source_conds(&self, file: &str) -> Vec<Expr> {
        let mut chain: Vec<Vec<Expr>> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut cur = file;
        while let Some(edge) = self.sources.get(cur).and_then(|v| v.first()) {
            if !seen.insert(cur) || seen.len() > 64 {
                break;
            }
            chain.push(edge.conds.clone());
            cur = &edge.includer;
        }
        chain.into_iter().rev().flatten().collect()
    }

    /// Every condition a definition needs, outermost first, without duplicates.
    fn full_deps(&self, def: &SymDef) -> Vec<Expr> {
        let mut all = Vec::new();
        for e in self
            .source_conds(&def.file)
            .iter()
            .chain(&def.context)
            .chain(&def.depends)
        {
            conjuncts(e, &mut all);
        }
        let mut seen = HashSet::new();
        all.retain(|e| seen.insert(e.to_string()));
        all
    }

    fn deps_text(deps: &[Expr]) -> String {
        deps.iter()
            .map(|e| match e {
                Expr::Or(..) => format!("({e})"),
                _ => e.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" && ")
    }

    fn eval_all(env: &Env, deps: &[Expr]) -> Option<Tri> {
        let mut acc = Some(Tri::Y);
        for e in deps {
            acc = match (acc, env.eval(e)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (_, Some(Tri::N)) | (Some(Tri::N), _) => Some(Tri::N),
                _ => None,
            };
        }
        acc
    }

    /// The relevant definitions: those in `arch/<dir>` only when that architecture's
    /// symbol is set (if the config names no architecture, all of them).
    fn relevant<'s>(&'s self, defs: &[usize], env: &Env) -> Vec<&'s SymDef> {
        let current: Vec<&String> = self
            .arches
            .iter()
            .filter(|a| env.sym_tri(&arch_symbol(a)) == Tri::Y)
            .collect();
        defs.iter()
            .filter_map(|&i| self.defs.get(i))
            .filter(|d| {
                if current.is_empty() {
                    return true;
                }
                match d
                    .file
                    .strip_prefix("arch/")
                    .and_then(|r| r.split('/').next())
                {
                    Some(dir) if self.arches.iter().any(|a| a == dir) => {
                        current.iter().any(|a| *a == dir)
                    }
                    _ => true,
                }
            })
            .collect()
    }

    fn active_selectors(&self, sym: &str, env: &Env, min: Tri) -> Vec<String> {
        let Some(sels) = self.selects.get(sym) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in sels {
            let by = env.sym_tri(&s.by);
            let cond = s.cond.as_ref().map_or(Some(Tri::Y), |c| env.eval(c));
            let level = match cond {
                Some(c) => by.min(c),
                None => by,
            };
            if level >= min && level > Tri::N {
                let entry = format!("{}={} ({}:{})", s.by, level.name(), s.file, s.line);
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
        out
    }

    fn list_selectors(&self, sym: &str) -> String {
        let Some(sels) = self.selects.get(sym) else {
            return String::new();
        };
        let mut names: Vec<&str> = sels.iter().map(|s| s.by.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let shown: Vec<&str> = names.iter().take(6).copied().collect();
        let more = names.len().saturating_sub(shown.len());
        let mut s = shown.join(", ");
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        s
    }

    /// The visibility of every prompt of `defs` (`visible if` of the enclosing menus and
    /// the prompt's own `if`); empty when no definition has a prompt.
    fn prompt_values(defs: &[&SymDef], env: &Env) -> Vec<Option<Tri>> {
        let mut out = Vec::new();
        for d in defs {
            let vis = Self::eval_all(env, &d.visible);
            for p in &d.prompts {
                let pv = p.as_ref().map_or(Some(Tri::Y), |c| env.eval(c));
                out.push(match (vis, pv) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (Some(Tri::N), _) | (_, Some(Tri::N)) => Some(Tri::N),
                    _ => None,
                });
            }
        }
        out
    }

    /// Why `option` (with or without `CONFIG_`) ended up `got` when `want` was asked,
    /// judged against the final config `cfg`. Always returns a phrase; when the reason
    /// cannot be found it says so.
    pub fn explain(
        &self,
        option: &str,
        want: &str,
        got: Option<&str>,
        cfg: &BTreeMap<String, String>,
    ) -> String {
        let sym = option.strip_prefix("CONFIG_").unwrap_or(option);
        let env = Env::new(cfg);
        let Some(all) = self.by_name.get(sym) else {
            return "no such option in this kernel (no `config` entry in any Kconfig file)".into();
        };
        let defs = self.relevant(all, &env);
        let Some(first) = defs.first() else {
            let d = all.first().and_then(|&i| self.defs.get(i));
            return match d {
                Some(d) => format!(
                    "defined only for another architecture ({}:{})",
                    d.file, d.line
                ),
                None => "no such option in this kernel".into(),
            };
        };
        let at = format!("{}:{}", first.file, first.line);
        let deps: Vec<Vec<Expr>> = defs.iter().map(|d| self.full_deps(d)).collect();
        // Several definitions: the symbol is visible if any of them is.
        let mut dep_val = Some(Tri::N);
        for d in &deps {
            dep_val = match (dep_val, Self::eval_all(&env, d)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (Some(Tri::Y), _) | (_, Some(Tri::Y)) => Some(Tri::Y),
                _ => None,
            };
        }
        let ty = defs.iter().find_map(|d| d.ty);
        let unmet = |limit: Tri| -> String {
            let (d, dep) = defs
                .iter()
                .zip(&deps)
                .find(|(_, dep)| Self::eval_all(&env, dep).is_some_and(|v| v <= limit))
                .map(|(d, dep)| (*d, dep.as_slice()))
                .unwrap_or((first, deps[0].as_slice()));
            let mut blamed = Vec::new();
            for e in dep {
                env.blame(e, limit, &mut blamed);
            }
            blamed.dedup();
            let mut s = format!("depends on {}", Self::deps_text(dep));
            if !blamed.is_empty() {
                s.push_str(&format!(", and {}", blamed.join(", ")));
            }
            s.push_str(&format!(" ({}:{})", d.file, d.line));
            s
        };
        let want_unset = want == "n";
        let got_unset = is_unset(got);

        // Asked off, but on.
        if want_unset {
            let sels = self.active_selectors(sym, &env, Tri::M);
            if !sels.is_empty() {
                return format!("selected by {}", sels.join(", "));
            }
            let prompts = Self::prompt_values(&defs, &env);
            if prompts.iter().all(|v| *v == Some(Tri::N)) {
                let dflt = first
                    .defaults
                    .first()
                    .map(|d| format!(" (default {d})"))
                    .unwrap_or_default();
                return format!("it has no visible prompt, so it cannot be turned off; its default applies{dflt} ({at})");
            }
            return format!(
                "Kconfig kept it on (its default, or a request for it elsewhere; {at})"
            );
        }

        // Asked on, but off.
        if got_unset {
            if dep_val == Some(Tri::N) {
                return unmet(Tri::N);
            }
            if want == "m" && !env.modules {
                return "modules are disabled (MODULES is not set)".into();
            }
            let prompt_vals = Self::prompt_values(&defs, &env);
            if prompt_vals.is_empty() {
                let sel = self.list_selectors(sym);
                let sel = if sel.is_empty() {
                    String::new()
                } else {
                    format!("; selected by {sel}, none of which selects it here")
                };
                return format!(
                    "it has no prompt, so only a default or a select can set it{sel} ({at})"
                );
            }
            if prompt_vals.iter().all(|v| *v == Some(Tri::N)) {
                let mut blamed = Vec::new();
                let conds: Vec<&Expr> = defs
                    .iter()
                    .flat_map(|d| d.visible.iter().chain(d.prompts.iter().flatten()))
                    .collect();
                for c in &conds {
                    env.blame(c, Tri::N, &mut blamed);
                }
                blamed.dedup();
                let text = conds
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" && ");
                return format!(
                    "its prompt is hidden: visible if {text}, and {} ({at})",
                    blamed.join(", ")
                );
            }
            if let Some(c) = first.choice {
                let chosen: Vec<&String> = self
                    .choices
                    .get(c)
                    .map(|m| {
                        m.iter()
                            .filter(|s| s.as_str() != sym && env.sym_tri(s) == Tri::Y)
                            .collect()
                    })
                    .unwrap_or_default();
                if !chosen.is_empty() {
                    let names: Vec<&str> = chosen.iter().map(|s| s.as_str()).collect();
                    return format!(
                        "it is part of a choice and {} was chosen instead ({at})",
                        names.join(", ")
                    );
                }
                return format!("it is part of a choice ({at})");
            }
            if dep_val.is_none() {
                return format!(
                    "depends on {} (could not evaluate it fully) ({at})",
                    Self::deps_text(&deps[0])
                );
            }
            return format!(
                "its dependencies are met, so Kconfig would keep it; was the request merged before olddefconfig? ({at})"
            );
        }

        // Both set, different values.
        match (want, got) {
            ("y", Some("m")) => {
                if dep_val == Some(Tri::M) {
                    return format!("limited to m: {}", unmet(Tri::M));
                }
                format!("Kconfig limited it to m ({at})")
            }
            ("m", Some("y")) => {
                if ty == Some(SymType::Bool) {
                    return format!("it is a bool option, so m is not possible ({at})");
                }
                if !env.modules {
                    return "modules are disabled (MODULES is not set)".into();
                }
                let sels = self.active_selectors(sym, &env, Tri::Y);
                if !sels.is_empty() {
                    return format!("selected by {}", sels.join(", "));
                }
                format!("Kconfig raised it to y ({at})")
            }
            _ => {
                let ty = match ty {
                    Some(SymType::Int) => "int",
                    Some(SymType::Hex) => "hex",
                    Some(SymType::String) => "string",
                    Some(SymType::Bool) => "bool",
                    Some(SymType::Tristate) => "tristate",
                    None => "untyped",
                };
                let ranges: Vec<String> = defs
                    .iter()
                    .flat_map(|d| d.ranges.iter().map(|r| format!("range {r}")))
                    .collect();
                if ranges.is_empty() {
                    format!("Kconfig did not accept the value for this {ty} option ({at})")
                } else {
                    format!(
                        "Kconfig did not accept the value for this {ty} option: {} ({at})",
                        ranges.join("; ")
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(files: &[(&str, &str)]) -> KconfigIndex {
        KconfigIndex::from_texts(files.iter().copied())
    }

    #[test]
    fn expressions_parse_and_print() {
        let toks = tokenize("X && (Y || !Z) && FOO = \"bar\"").unwrap_or_default();
        let e = parse_expr(&toks);
        assert_eq!(e.to_string(), "X && (Y || !Z) && FOO = \"bar\"");
        let e = parse_expr(&tokenize("$(cc-option,-fx) && A").unwrap_or_default());
        assert!(matches!(e, Expr::And(..)));
        let e = parse_expr(&tokenize("A && (B").unwrap_or_default());
        assert!(matches!(e, Expr::Unknown(_)));
    }

    #[test]
    fn evaluation_is_tristate() {
        let cfg = parse_config(
            "CONFIG_MODULES=y\nCONFIG_A=m\nCONFIG_B=y\nCONFIG_N=64\nCONFIG_S=\"x86\"\n",
        );
        let env = Env::new(&cfg);
        let ev = |s: &str| env.eval(&parse_expr(&tokenize(s).unwrap_or_default()));
        assert_eq!(ev("A && B"), Some(Tri::M));
        assert_eq!(ev("A || B"), Some(Tri::Y));
        assert_eq!(ev("!A"), Some(Tri::M));
        assert_eq!(ev("!C"), Some(Tri::Y));
        assert_eq!(ev("N >= 32"), Some(Tri::Y));
        assert_eq!(ev("S = \"x86\""), Some(Tri::Y));
        assert_eq!(ev("S != \"x86\" || C"), Some(Tri::N));
        assert_eq!(ev("$(foo) && C"), Some(Tri::N));
        assert_eq!(ev("$(foo) || C"), None);
    }

    #[test]
    fn help_text_is_skipped() {
        let k = ix(&[(
            "Kconfig",
            "config A\n\tbool \"a\"\n\thelp\n\t  if you say yes\n\t  config FAKE here\n\n\t  more\nconfig B\n\tbool\n",
        )]);
        assert!(k.defines("A"));
        assert!(k.defines("B"));
        assert!(!k.defines("FAKE"));
    }

    #[test]
    fn merge_replaces_in_place_and_appends() {
        let base = "# head\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_A=m\n";
        let reqs = vec![
            Request {
                option: "CONFIG_B".into(),
                value: "y".into(),
                origin: "f:1".into(),
            },
            Request {
                option: "CONFIG_A".into(),
                value: "n".into(),
                origin: "f:2".into(),
            },
            Request {
                option: "CONFIG_D".into(),
                value: "\"x\"".into(),
                origin: "f:3".into(),
            },
            Request {
                option: "CONFIG_B".into(),
                value: "m".into(),
                origin: "recipe".into(),
            },
        ];
        assert_eq!(
            merge(base, &reqs),
            "# head\n# CONFIG_A is not set\nCONFIG_B=m\nCONFIG_C=y\nCONFIG_D=\"x\"\n"
        );
    }

    #[test]
    fn recipe_values_are_quoted_when_strings() {
        let mut m = BTreeMap::new();
        m.insert("CONFIG_LOCALVERSION".to_string(), "-san".to_string());
        m.insert("CONFIG_NR_CPUS".to_string(), "64".to_string());
        m.insert(
            "CONFIG_CMDLINE".to_string(),
            "\"console=ttyS0\"".to_string(),
        );
        m.insert("CONFIG_X".to_string(), "m".to_string());
        let r = requests_from_recipe(&m);
        let vals: Vec<&str> = r.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(vals, ["\"console=ttyS0\"", "\"-san\"", "64", "m"]);
        assert!(r.iter().all(|r| r.origin == "recipe"));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(value_matches("0x10", Some("0x0010")));
        assert!(value_matches("n", None));
        assert!(!value_matches("y", Some("m")));
    }
}
