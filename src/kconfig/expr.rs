//! Kconfig expressions: the tokens and grammar of `depends on`, `if`, `visible if` and
//! `select ... if` arguments, and their tristate evaluation against a final `.config`
//! (with the sub-terms to blame when an expression is too low). Anything the parser
//! does not understand (macros such as `$(cc-option,...)`) evaluates to "don't know".
//!
//! Reads: only its arguments.

use super::dotconfig::{is_number, parse_number};
use std::collections::BTreeMap;
use std::fmt;

/// A tristate value, ordered n < m < y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Tri {
    N,
    M,
    Y,
}

impl Tri {
    pub(super) fn name(self) -> &'static str {
        match self {
            Tri::N => "n",
            Tri::M => "m",
            Tri::Y => "y",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
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
pub(super) enum Expr {
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
pub(super) enum Tok {
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
pub(super) fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' | b'\'' => {
                let (tok, next) = lex_quoted(s, i)?;
                out.push(tok);
                i = next;
            }
            b'$' if b.get(i + 1) == Some(&b'(') => {
                let (tok, next) = lex_macro(s, i)?;
                out.push(tok);
                i = next;
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

/// The quoted string whose opening quote is at `i`, and the index after its closing
/// quote; `None` when it is not closed.
fn lex_quoted(s: &str, i: usize) -> Option<(Tok, usize)> {
    let b = s.as_bytes();
    let c = b[i];
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
    let tok = if val.contains("$(") {
        Tok::Macro(s[i..=j].to_string())
    } else {
        Tok::Str(val)
    };
    Some((tok, j + 1))
}

/// The `$(...)` macro starting at `i` (nested parentheses included), and the index
/// after it; `None` when it is not closed.
fn lex_macro(s: &str, i: usize) -> Option<(Tok, usize)> {
    let b = s.as_bytes();
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
    Some((Tok::Macro(s[i..=j].to_string()), j + 1))
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
pub(super) fn parse_expr(toks: &[Tok]) -> Expr {
    let mut p = Parser { toks, pos: 0 };
    match p.or() {
        Some(e) if p.pos == toks.len() => e,
        _ => Expr::Unknown(untokenize(toks)),
    }
}

/// The conjuncts of an expression (`a && (b || c)` → `a`, `b || c`).
pub(super) fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
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
pub(super) struct Env<'a> {
    cfg: &'a BTreeMap<String, String>,
    /// Whether `MODULES` is set (else `m` counts as `n`).
    pub(super) modules: bool,
}

impl<'a> Env<'a> {
    pub(super) fn new(cfg: &'a BTreeMap<String, String>) -> Self {
        let modules = cfg.get("CONFIG_MODULES").map(String::as_str) == Some("y");
        Env { cfg, modules }
    }

    fn raw(&self, sym: &str) -> Option<&str> {
        self.cfg.get(&format!("CONFIG_{sym}")).map(String::as_str)
    }

    pub(super) fn sym_tri(&self, sym: &str) -> Tri {
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
    pub(super) fn eval(&self, e: &Expr) -> Option<Tri> {
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
    pub(super) fn blame(&self, e: &Expr, limit: Tri, out: &mut Vec<String>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kconfig::parse_config;

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
}
