//! Why Kconfig did what it did to one requested option: which `depends on` is unmet
//! (and which symbol in it is not set), whether something `select`s it, whether it has
//! no prompt or a hidden one, whether another member of its `choice` was chosen, or
//! whether the option does not exist in this kernel at all. The answer is one phrase
//! that [`super::verify`] appends to the problem line.
//!
//! Reads: the [`KconfigIndex`] and the final `.config` values.

use super::expr::{Env, Expr, Tri};
use super::index::{arch_symbol, KconfigIndex, SymDef, SymType};
use super::verify::is_unset;
use std::collections::BTreeMap;

impl KconfigIndex {
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
        let Some(&first) = defs.first() else {
            let d = all.first().and_then(|&i| self.defs.get(i));
            return match d {
                Some(d) => format!(
                    "defined only for another architecture ({}:{})",
                    d.file, d.line
                ),
                None => "no such option in this kernel".into(),
            };
        };
        let case = Case::new(self, sym, env, defs, first);
        if want == "n" {
            case.kept_on()
        } else if is_unset(got) {
            case.dropped(want)
        } else {
            case.changed(want, got)
        }
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
}

/// One option being explained: its definitions for this architecture, their
/// dependencies, and how those evaluate in the final config.
struct Case<'a> {
    ix: &'a KconfigIndex,
    sym: &'a str,
    env: Env<'a>,
    defs: Vec<&'a SymDef>,
    /// The first relevant definition, the one `at` points to.
    first: &'a SymDef,
    /// Every condition of each definition (same order as `defs`).
    deps: Vec<Vec<Expr>>,
    /// The dependencies' value: the symbol is visible if any definition is; `None`
    /// when it cannot be known.
    dep_val: Option<Tri>,
    /// `file:line` of the first definition.
    at: String,
}

impl<'a> Case<'a> {
    fn new(
        ix: &'a KconfigIndex,
        sym: &'a str,
        env: Env<'a>,
        defs: Vec<&'a SymDef>,
        first: &'a SymDef,
    ) -> Self {
        let deps: Vec<Vec<Expr>> = defs.iter().map(|d| ix.full_deps(d)).collect();
        // Several definitions: the symbol is visible if any of them is.
        let mut dep_val = Some(Tri::N);
        for d in &deps {
            dep_val = match (dep_val, KconfigIndex::eval_all(&env, d)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (Some(Tri::Y), _) | (_, Some(Tri::Y)) => Some(Tri::Y),
                _ => None,
            };
        }
        let at = format!("{}:{}", first.file, first.line);
        Case {
            ix,
            sym,
            env,
            defs,
            first,
            deps,
            dep_val,
            at,
        }
    }

    /// The first definition whose dependencies are at or below `limit`, the terms to
    /// blame in them, and where it is.
    fn unmet(&self, limit: Tri) -> String {
        let (d, dep) = self
            .defs
            .iter()
            .zip(&self.deps)
            .find(|(_, dep)| KconfigIndex::eval_all(&self.env, dep).is_some_and(|v| v <= limit))
            .map(|(d, dep)| (*d, dep.as_slice()))
            .unwrap_or((self.first, self.deps[0].as_slice()));
        let mut blamed = Vec::new();
        for e in dep {
            self.env.blame(e, limit, &mut blamed);
        }
        blamed.dedup();
        let mut s = format!("depends on {}", KconfigIndex::deps_text(dep));
        if !blamed.is_empty() {
            s.push_str(&format!(", and {}", blamed.join(", ")));
        }
        s.push_str(&format!(" ({}:{})", d.file, d.line));
        s
    }

    /// Asked off, but on.
    fn kept_on(&self) -> String {
        let at = &self.at;
        let sels = self.ix.active_selectors(self.sym, &self.env, Tri::M);
        if !sels.is_empty() {
            return format!("selected by {}", sels.join(", "));
        }
        let prompts = KconfigIndex::prompt_values(&self.defs, &self.env);
        if prompts.iter().all(|v| *v == Some(Tri::N)) {
            let dflt = self
                .first
                .defaults
                .first()
                .map(|d| format!(" (default {d})"))
                .unwrap_or_default();
            return format!("it has no visible prompt, so it cannot be turned off; its default applies{dflt} ({at})");
        }
        format!("Kconfig kept it on (its default, or a request for it elsewhere; {at})")
    }

    /// Asked on (`want`), but off.
    fn dropped(&self, want: &str) -> String {
        let at = &self.at;
        if self.dep_val == Some(Tri::N) {
            return self.unmet(Tri::N);
        }
        if want == "m" && !self.env.modules {
            return "modules are disabled (MODULES is not set)".into();
        }
        let prompt_vals = KconfigIndex::prompt_values(&self.defs, &self.env);
        if prompt_vals.is_empty() {
            return self.no_prompt();
        }
        if prompt_vals.iter().all(|v| *v == Some(Tri::N)) {
            return self.hidden_prompt();
        }
        if let Some(c) = self.first.choice {
            return self.choice(c);
        }
        if self.dep_val.is_none() {
            return format!(
                "depends on {} (could not evaluate it fully) ({at})",
                KconfigIndex::deps_text(&self.deps[0])
            );
        }
        format!(
            "its dependencies are met, so Kconfig would keep it; was the request merged before olddefconfig? ({at})"
        )
    }

    /// Dropped, and no definition has a prompt: only a default or a select sets it.
    fn no_prompt(&self) -> String {
        let sel = self.ix.list_selectors(self.sym);
        let sel = if sel.is_empty() {
            String::new()
        } else {
            format!("; selected by {sel}, none of which selects it here")
        };
        let at = &self.at;
        format!("it has no prompt, so only a default or a select can set it{sel} ({at})")
    }

    /// Dropped, and every prompt is hidden (`visible if` or the prompt's `if`).
    fn hidden_prompt(&self) -> String {
        let mut blamed = Vec::new();
        let conds: Vec<&Expr> = self
            .defs
            .iter()
            .flat_map(|d| d.visible.iter().chain(d.prompts.iter().flatten()))
            .collect();
        for c in &conds {
            self.env.blame(c, Tri::N, &mut blamed);
        }
        blamed.dedup();
        let text = conds
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" && ");
        let at = &self.at;
        format!(
            "its prompt is hidden: visible if {text}, and {} ({at})",
            blamed.join(", ")
        )
    }

    /// Dropped, and a member of choice `c`: which member was chosen instead.
    fn choice(&self, c: usize) -> String {
        let at = &self.at;
        let chosen: Vec<&String> = self
            .ix
            .choices
            .get(c)
            .map(|m| {
                m.iter()
                    .filter(|s| s.as_str() != self.sym && self.env.sym_tri(s) == Tri::Y)
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
        format!("it is part of a choice ({at})")
    }

    /// Set, but to another value than `want`.
    fn changed(&self, want: &str, got: Option<&str>) -> String {
        let at = &self.at;
        let ty = self.defs.iter().find_map(|d| d.ty);
        match (want, got) {
            ("y", Some("m")) => {
                if self.dep_val == Some(Tri::M) {
                    return format!("limited to m: {}", self.unmet(Tri::M));
                }
                format!("Kconfig limited it to m ({at})")
            }
            ("m", Some("y")) => {
                if ty == Some(SymType::Bool) {
                    return format!("it is a bool option, so m is not possible ({at})");
                }
                if !self.env.modules {
                    return "modules are disabled (MODULES is not set)".into();
                }
                let sels = self.ix.active_selectors(self.sym, &self.env, Tri::Y);
                if !sels.is_empty() {
                    return format!("selected by {}", sels.join(", "));
                }
                format!("Kconfig raised it to y ({at})")
            }
            _ => self.value_rejected(ty),
        }
    }

    /// An int, hex or string value Kconfig did not keep (out of range, or not a value
    /// of that type).
    fn value_rejected(&self, ty: Option<SymType>) -> String {
        let ty = match ty {
            Some(SymType::Int) => "int",
            Some(SymType::Hex) => "hex",
            Some(SymType::String) => "string",
            Some(SymType::Bool) => "bool",
            Some(SymType::Tristate) => "tristate",
            None => "untyped",
        };
        let ranges: Vec<String> = self
            .defs
            .iter()
            .flat_map(|d| d.ranges.iter().map(|r| format!("range {r}")))
            .collect();
        let at = &self.at;
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
