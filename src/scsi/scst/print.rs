//! The canonical `scst.conf` printer: tab indentation, one entry per line, `}` on its own
//! line, values quoted when they contain blanks and `\`/`#` escaped (as scstadmin's
//! `-write_config` does). Printing a parsed file and parsing it again gives the same model.

use super::{Attr, Lun, ScstConf};

/// Quotes and escapes one word so that [`super::parse`] reads it back unchanged.
pub fn word(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        if c == '\\' || c == '#' {
            s.push('\\');
        }
        s.push(c);
    }
    if v.is_empty() || v.chars().any(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push('\t');
    }
}

fn attrs(out: &mut String, list: &[Attr], depth: usize) {
    for a in list {
        indent(out, depth);
        out.push_str(&format!("{} {}\n", word(&a.name), word(&a.value)));
    }
}

/// `HEAD {` … `}` when there is a body, else just `HEAD`.
fn block(out: &mut String, depth: usize, head: &str, body: String) {
    indent(out, depth);
    out.push_str(head);
    if body.is_empty() {
        out.push('\n');
    } else {
        out.push_str(" {\n");
        out.push_str(&body);
        indent(out, depth);
        out.push_str("}\n");
    }
}

fn luns(out: &mut String, list: &[Lun], depth: usize) {
    for l in list {
        let mut body = String::new();
        attrs(&mut body, &l.attrs, depth + 1);
        block(
            out,
            depth,
            &format!("LUN {} {}", l.number, word(&l.device)),
            body,
        );
    }
}

fn enabled(out: &mut String, e: Option<bool>, depth: usize) {
    if let Some(e) = e {
        indent(out, depth);
        out.push_str(if e { "enabled 1\n" } else { "enabled 0\n" });
    }
}

/// Prints a model as `scst.conf` text.
pub fn print(conf: &ScstConf) -> String {
    let mut sections: Vec<String> = Vec::new();
    if !conf.globals.is_empty() {
        let mut s = String::new();
        attrs(&mut s, &conf.globals, 0);
        sections.push(s);
    }
    for h in &conf.handlers {
        let mut body = String::new();
        attrs(&mut body, &h.attrs, 1);
        for d in &h.devices {
            let mut db = String::new();
            attrs(&mut db, &d.attrs, 2);
            block(&mut body, 1, &format!("DEVICE {}", word(&d.name)), db);
        }
        let mut s = String::new();
        block(&mut s, 0, &format!("HANDLER {}", word(&h.name)), body);
        sections.push(s);
    }
    for d in &conf.drivers {
        let mut body = String::new();
        enabled(&mut body, d.enabled, 1);
        attrs(&mut body, &d.attrs, 1);
        for t in &d.targets {
            let mut tb = String::new();
            if t.hw_target {
                tb.push_str("\t\tHW_TARGET\n");
            }
            enabled(&mut tb, t.enabled, 2);
            attrs(&mut tb, &t.attrs, 2);
            luns(&mut tb, &t.luns, 2);
            for g in &t.groups {
                let mut gb = String::new();
                attrs(&mut gb, &g.attrs, 3);
                luns(&mut gb, &g.luns, 3);
                for i in &g.initiators {
                    gb.push_str(&format!("\t\t\tINITIATOR {}\n", word(&i.name)));
                }
                block(&mut tb, 2, &format!("GROUP {}", word(&g.name)), gb);
            }
            block(&mut body, 1, &format!("TARGET {}", word(&t.name)), tb);
        }
        let mut s = String::new();
        block(&mut s, 0, &format!("TARGET_DRIVER {}", word(&d.name)), body);
        sections.push(s);
    }
    if !conf.alua.is_empty() {
        let mut body = String::new();
        attrs(&mut body, &conf.alua, 1);
        let mut s = String::new();
        block(&mut s, 0, "ALUA", body);
        sections.push(s);
    }
    for dg in &conf.device_groups {
        let mut body = String::new();
        attrs(&mut body, &dg.attrs, 1);
        for d in &dg.devices {
            body.push_str(&format!("\tDEVICE {}\n", word(&d.name)));
        }
        for tg in &dg.target_groups {
            let mut tb = String::new();
            attrs(&mut tb, &tg.attrs, 2);
            for t in &tg.targets {
                let mut b = String::new();
                attrs(&mut b, &t.attrs, 3);
                block(&mut tb, 2, &format!("TARGET {}", word(&t.name)), b);
            }
            block(
                &mut body,
                1,
                &format!("TARGET_GROUP {}", word(&tg.name)),
                tb,
            );
        }
        let mut s = String::new();
        block(&mut s, 0, &format!("DEVICE_GROUP {}", word(&dg.name)), body);
        sections.push(s);
    }
    sections.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for v in ["plain", "joe secret", "a#b", "back\\slash", "", "t\tab"] {
            let line = format!("x {}\n", word(v));
            let c = super::super::parse(&line).unwrap();
            assert_eq!(c.globals[0].value, v, "{line}");
        }
    }

    #[test]
    fn empty_blocks_print_without_braces() {
        let c = super::super::parse("HANDLER vdisk_nullio {\n DEVICE n\n}\n").unwrap();
        assert_eq!(print(&c), "HANDLER vdisk_nullio {\n\tDEVICE n\n}\n");
    }
}
