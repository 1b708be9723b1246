//! The index of a kernel tree's Kconfig files: every `config` entry with its type,
//! prompts, `depends on`, the conditions of the blocks around it (`if`, `menu`,
//! `choice`, and the `if` around the `source` line that pulls its file in), defaults,
//! ranges, and who `select`s it — what [`super::explain`] needs to say why Kconfig
//! dropped an option. It is a line reader, not a full Kconfig parser: anything it does
//! not understand becomes an unknown expression.
//!
//! Reads: every file named `Kconfig*` under the kernel source root (no symlinks
//! followed, hidden directories skipped), and the directory names under `arch/`.

use super::expr::{conjuncts, parse_expr, tokenize, Expr, Tok};
use anyhow::{Context, Result};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The type of a `config` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SymType {
    Bool,
    Tristate,
    String,
    Int,
    Hex,
}

/// One `config`/`menuconfig` entry.
#[derive(Debug, Clone)]
pub(super) struct SymDef {
    pub(super) name: String,
    pub(super) file: String,
    pub(super) line: usize,
    pub(super) ty: Option<SymType>,
    /// One per prompt, with its `if` condition.
    pub(super) prompts: Vec<Option<Expr>>,
    pub(super) depends: Vec<Expr>,
    /// Conditions of the enclosing `if`, `menu ... depends on` and `choice` blocks.
    pub(super) context: Vec<Expr>,
    /// `visible if` of enclosing menus (hide the prompt, not the symbol).
    pub(super) visible: Vec<Expr>,
    pub(super) choice: Option<usize>,
    pub(super) defaults: Vec<String>,
    pub(super) ranges: Vec<String>,
}

/// A `select` of some symbol by entry `by` (under `cond`), at `file:line`.
#[derive(Debug, Clone)]
pub(super) struct Select {
    pub(super) by: String,
    pub(super) cond: Option<Expr>,
    pub(super) file: String,
    pub(super) line: usize,
}

/// A `source` line: the including file and the conditions of the blocks around it.
#[derive(Debug, Clone)]
struct SourceEdge {
    includer: String,
    conds: Vec<Expr>,
}

/// An open block while a file is read.
enum FrameKind {
    If,
    Menu,
    Choice(usize),
}

/// An open block and the conditions it puts on the entries inside.
struct Frame {
    kind: FrameKind,
    conds: Vec<Expr>,
    visible: Vec<Expr>,
}

/// What the attribute lines (`depends on`, `select`…) currently apply to.
enum Current {
    None,
    Config(usize),
    Block,
}

/// Every `config` entry of a kernel tree, found by reading all `Kconfig*` files once.
#[derive(Debug, Default)]
pub struct KconfigIndex {
    pub(super) defs: Vec<SymDef>,
    pub(super) by_name: HashMap<String, Vec<usize>>,
    /// Selecting entries per selected symbol.
    pub(super) selects: HashMap<String, Vec<Select>>,
    /// The member symbols of each `choice` block.
    pub(super) choices: Vec<Vec<String>>,
    /// The `source` lines that pull each file in.
    sources: HashMap<String, Vec<SourceEdge>>,
    /// The directories under `arch/`.
    pub(super) arches: Vec<String>,
    files: usize,
}

/// The config symbol an `arch/<dir>` sets (`x86` → `X86`).
pub(super) fn arch_symbol(dir: &str) -> String {
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
        let mut files: Vec<PathBuf> = Vec::new();
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
        let mut reader = FileReader {
            ix: self,
            rel,
            frames: Vec::new(),
            current: Current::None,
            help: None,
        };
        for (lineno, line) in &join_continuations(text) {
            reader.line(*lineno, line);
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
    pub(super) fn full_deps(&self, def: &SymDef) -> Vec<Expr> {
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
}

/// The logical lines of a file: continuation lines (ending in `\`) joined, each with
/// the number of its first physical line.
fn join_continuations(text: &str) -> Vec<(usize, Cow<'_, str>)> {
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
    lines
}

/// Whether a keyword's arguments are worth tokenizing (most lines are prompts,
/// defaults and help, whose arguments only matter as text).
fn needs_tokens(kw: &str) -> bool {
    matches!(
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
    )
}

/// Reads one file into the index, a logical line at a time: the open blocks, the entry
/// the attribute lines belong to, and whether a help text is being skipped.
struct FileReader<'a> {
    ix: &'a mut KconfigIndex,
    rel: &'a str,
    frames: Vec<Frame>,
    current: Current,
    /// In a help text: `Some(None)` until its first line sets the indentation.
    help: Option<Option<usize>>,
}

impl FileReader<'_> {
    fn line(&mut self, lineno: usize, line: &str) {
        if self.in_help(line) {
            return;
        }
        let code = strip_comment(line).trim();
        if code.is_empty() {
            return;
        }
        let (kw, rest) = match code.find([' ', '\t']) {
            Some(i) => (&code[..i], code[i..].trim()),
            None => (code, ""),
        };
        let toks = if needs_tokens(kw) {
            tokenize(rest)
        } else {
            None
        };
        match kw {
            "config" | "menuconfig" => self.config(rest, lineno),
            "choice" => {
                let c = self.ix.choices.len();
                self.ix.choices.push(Vec::new());
                self.open_block(FrameKind::Choice(c));
            }
            "menu" => self.open_block(FrameKind::Menu),
            "if" => {
                let cond = match &toks {
                    Some(t) => parse_expr(t),
                    None => Expr::Unknown(rest.to_string()),
                };
                self.frames.push(Frame {
                    kind: FrameKind::If,
                    conds: vec![cond],
                    visible: Vec::new(),
                });
                self.current = Current::None;
            }
            "endif" | "endmenu" | "endchoice" => self.close_block(kw),
            "comment" | "mainmenu" => self.current = Current::None,
            "source" | "rsource" | "osource" | "orsource" => self.source(kw, toks.as_deref()),
            "help" | "---help---" => self.help = Some(None),
            "depends" => self.depends(toks.as_deref()),
            "visible" => self.visible(toks.as_deref()),
            "bool" | "boolean" | "tristate" | "string" | "int" | "hex" | "prompt" | "def_bool"
            | "def_tristate" => self.type_or_prompt(kw, rest, toks.as_deref()),
            "default" => {
                if let Current::Config(i) = self.current {
                    self.ix.defs[i].defaults.push(rest.to_string());
                }
            }
            "range" => {
                if let Current::Config(i) = self.current {
                    self.ix.defs[i].ranges.push(rest.to_string());
                }
            }
            "select" => self.select(lineno, toks.as_deref()),
            _ => {}
        }
    }

    /// Whether `line` belongs to the help text being skipped (blank lines do; the
    /// first line less indented than the text's first line ends it).
    fn in_help(&mut self, line: &str) -> bool {
        let Some(first) = self.help else {
            return false;
        };
        if line.trim().is_empty() {
            return true;
        }
        let ind = indent_of(line);
        match first {
            None if ind > 0 => {
                self.help = Some(Some(ind));
                true
            }
            Some(f) if ind >= f => true,
            _ => {
                self.help = None;
                false
            }
        }
    }

    /// The conditions of every open block, outermost first.
    fn block_conds(&self) -> Vec<Expr> {
        self.frames
            .iter()
            .flat_map(|f| f.conds.iter().cloned())
            .collect()
    }

    /// `config NAME` / `menuconfig NAME`: a new definition inside the open blocks.
    fn config(&mut self, rest: &str, lineno: usize) {
        let name = rest.split_whitespace().next().unwrap_or("").to_string();
        if name.is_empty() {
            self.current = Current::None;
            return;
        }
        let visible = self
            .frames
            .iter()
            .flat_map(|f| f.visible.iter().cloned())
            .collect();
        let choice = self.frames.iter().rev().find_map(|f| match f.kind {
            FrameKind::Choice(c) => Some(c),
            _ => None,
        });
        if let Some(c) = choice {
            if let Some(members) = self.ix.choices.get_mut(c) {
                members.push(name.clone());
            }
        }
        let idx = self.ix.defs.len();
        self.ix.defs.push(SymDef {
            name: name.clone(),
            file: self.rel.to_string(),
            line: lineno,
            ty: None,
            prompts: Vec::new(),
            depends: Vec::new(),
            context: self.block_conds(),
            visible,
            choice,
            defaults: Vec::new(),
            ranges: Vec::new(),
        });
        self.ix.by_name.entry(name).or_default().push(idx);
        self.current = Current::Config(idx);
    }

    /// `menu` or `choice`: a block whose own `depends on`/`visible if` follow.
    fn open_block(&mut self, kind: FrameKind) {
        self.frames.push(Frame {
            kind,
            conds: Vec::new(),
            visible: Vec::new(),
        });
        self.current = Current::Block;
    }

    /// `endif`/`endmenu`/`endchoice`: closes the innermost block of that kind (and any
    /// unclosed block inside it).
    fn close_block(&mut self, kw: &str) {
        let matches = |k: &FrameKind| {
            matches!(
                (kw, k),
                ("endif", FrameKind::If)
                    | ("endmenu", FrameKind::Menu)
                    | ("endchoice", FrameKind::Choice(_))
            )
        };
        if let Some(pos) = self.frames.iter().rposition(|f| matches(&f.kind)) {
            self.frames.truncate(pos);
        }
        self.current = Current::None;
    }

    /// `source "path"` and its relative/optional forms: records which file pulls which
    /// in, under which block conditions (paths with macros or globs are skipped).
    fn source(&mut self, kw: &str, toks: Option<&[Tok]>) {
        self.current = Current::None;
        let Some(Some(Tok::Str(target))) = toks.map(|t| t.first()) else {
            return;
        };
        if target.contains('$') || target.contains('*') {
            return;
        }
        let target = if kw.starts_with('r') || kw == "orsource" {
            let dir = self.rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            normalize_rel(&format!("{dir}/{target}"))
        } else {
            normalize_rel(target)
        };
        let conds = self.block_conds();
        self.ix.sources.entry(target).or_default().push(SourceEdge {
            includer: self.rel.to_string(),
            conds,
        });
    }

    /// `depends on EXPR`: of the current entry, or of the block just opened.
    fn depends(&mut self, toks: Option<&[Tok]>) {
        let Some(t) = toks else { return };
        let body = match t.first() {
            Some(Tok::Word(w)) if w == "on" => &t[1..],
            _ => t,
        };
        let e = parse_expr(body);
        match self.current {
            Current::Config(i) => self.ix.defs[i].depends.push(e),
            Current::Block => {
                if let Some(f) = self.frames.last_mut() {
                    f.conds.push(e);
                }
            }
            Current::None => {}
        }
    }

    /// `visible if EXPR` of the menu just opened.
    fn visible(&mut self, toks: Option<&[Tok]>) {
        let (Current::Block, Some(t)) = (&self.current, toks) else {
            return;
        };
        let body = match t.first() {
            Some(Tok::Word(w)) if w == "if" => &t[1..],
            _ => t,
        };
        if let Some(f) = self.frames.last_mut() {
            f.visible.push(parse_expr(body));
        }
    }

    /// A type line (with an optional prompt), `prompt`, or `def_bool`/`def_tristate`
    /// (a type and a default).
    fn type_or_prompt(&mut self, kw: &str, rest: &str, toks: Option<&[Tok]>) {
        let Current::Config(i) = self.current else {
            return;
        };
        let (before, cond) = match toks {
            Some(t) => split_if(t),
            None => (&[][..], None),
        };
        let def = &mut self.ix.defs[i];
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

    /// `select SYM [if EXPR]` of the current entry.
    fn select(&mut self, lineno: usize, toks: Option<&[Tok]>) {
        let (Current::Config(i), Some(t)) = (&self.current, toks) else {
            return;
        };
        let (before, cond) = split_if(t);
        if let Some(Tok::Word(target)) = before.first() {
            let def = &self.ix.defs[*i];
            let sel = Select {
                by: def.name.clone(),
                cond,
                file: def.file.clone(),
                line: lineno,
            };
            self.ix.selects.entry(target.clone()).or_default().push(sel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_text_is_skipped() {
        let k = KconfigIndex::from_texts([(
            "Kconfig",
            "config A\n\tbool \"a\"\n\thelp\n\t  if you say yes\n\t  config FAKE here\n\n\t  more\nconfig B\n\tbool\n",
        )]);
        assert!(k.defines("A"));
        assert!(k.defines("B"));
        assert!(!k.defines("FAKE"));
    }
}
