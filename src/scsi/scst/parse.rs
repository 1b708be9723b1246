//! The `scst.conf` reader. It follows scstadmin's `readConfigFile`/`parseStanza`/
//! `parseLine` (reference §B9) and turns the quirks that silently lose configuration
//! into errors instead (reference §C):
//!
//! * a line starting with `#` is a comment; any other `#` not preceded by `\` starts a
//!   comment too, and scstadmin also deletes the character just before it, so a `#`
//!   glued to a word (`a#b`) is rejected here;
//! * `\x` becomes `x` before tokenising (so `\{` is still a brace);
//! * `{` ends the header line of a block and must not be on a line of its own; `}` ends
//!   the block, and text before it on the same line (which scstadmin drops) is an error;
//! * a token is `"…"` or a run of non-blanks; at most three tokens per line (scstadmin
//!   ignores the rest, which is an error here);
//! * a missing or stray `}` is an error (scstadmin tolerates the first and stops reading
//!   the file at the second);
//! * the legacy procfs format (`[HANDLER …]`) is refused.

use super::{
    Attr, Device, DeviceGroup, DgDevice, Handler, IniGroup, Initiator, Lun, ScstConf, Target,
    TargetDriver, TargetGroup, TgTarget,
};

/// A syntax error, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// One entry of the generic block tree: its words and, for `… {`, its children.
#[derive(Debug)]
struct Node {
    words: Vec<String>,
    line: usize,
    children: Option<Vec<Node>>,
}

impl Node {
    /// The first word: a keyword or an attribute name. The scanner makes no node
    /// without words; an empty string stands in if one ever had none.
    fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }
}

const KEYWORDS: &[&str] = &[
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
];

/// Parses the text of an `scst.conf`.
pub fn parse(text: &str) -> Result<ScstConf, ParseError> {
    let top = stanza(text)?;
    top_level(top)
}

/// Comment stripping and unescaping of one physical line (steps 1–4 of §B9).
fn preprocess(raw: &str, line: usize) -> Result<String, ParseError> {
    if raw.starts_with('#') {
        return Ok(String::new());
    }
    let chars: Vec<char> = raw.chars().collect();
    let mut end = chars.len();
    // `prev` is chars[i], the `#` chars[i + 1]: scstadmin drops both.
    for (i, pair) in chars.windows(2).enumerate() {
        if let [prev, '#'] = *pair {
            if prev == '\\' {
                continue;
            }
            if !prev.is_whitespace() {
                return err(
                    line,
                    format!(
                        "'#' right after '{prev}' starts a comment and scstadmin would also drop the '{prev}'; put a blank before '#' or write '\\#'",
                    ),
                );
            }
            end = i;
            break;
        }
    }
    let kept: String = chars.iter().take(end).collect();
    let trimmed = kept.trim_start();
    if let Some(rest) = trimmed.strip_prefix('[') {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_uppercase())
            .collect();
        if ["HANDLER", "GROUP", "ASSIGNMENT"].contains(&word.as_str()) {
            return err(
                line,
                "this is the old procfs scst.conf format ([HANDLER …]); convert it with scstadmin to the sysfs format",
            );
        }
    }
    let mut out = String::with_capacity(kept.len());
    let mut it = kept.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Splits a line into at most three tokens (`"…"` or runs of non-blanks).
fn tokens(s: &str, line: usize) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    let mut it = s.trim().chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
            continue;
        }
        let mut tok = String::new();
        if c == '"' {
            it.next();
            let mut closed = false;
            for c in it.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                tok.push(c);
            }
            if !closed {
                return err(
                    line,
                    "unterminated quote: a quoted value must end on the same line (values cannot contain a newline)",
                );
            }
        } else {
            while let Some(&c) = it.peek() {
                if c.is_whitespace() {
                    break;
                }
                tok.push(c);
                it.next();
            }
        }
        out.push(tok);
    }
    if out.len() > 3 {
        return err(
            line,
            format!(
                "too many words ('{}' …): scstadmin reads only the first three; quote a value that contains blanks",
                shown_line(&out.iter().take(3).map(String::as_str).collect::<Vec<_>>().join(" "))
            ),
        );
    }
    Ok(out)
}

/// A line (or value) as an error message may quote it: the secret word of a CHAP
/// account (`IncomingUser joe s3cret`) redacted.
fn shown_line(text: &str) -> String {
    let mut words = text.split_whitespace();
    match words.next() {
        Some(first) if crate::util::redact::is_scst_secret_attr(first) => {
            let rest: Vec<&str> = words.collect();
            match rest.as_slice() {
                [] => first.to_string(),
                [user, ..] => format!("{first} {user} {}", crate::util::redact::REDACTED),
            }
        }
        _ => text.to_string(),
    }
}

/// The character-level block scanner (`parseStanza`), giving the generic tree.
fn stanza(text: &str) -> Result<Vec<Node>, ParseError> {
    // Each open block: its header words, line, and children so far.
    let mut stack: Vec<(Vec<String>, usize, Vec<Node>)> = vec![(Vec::new(), 0, Vec::new())];
    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let processed = preprocess(raw, line)?;
        let mut cur = String::new();
        for c in processed.chars() {
            match c {
                '{' => {
                    let words = tokens(&cur, line)?;
                    if words.is_empty() {
                        return err(
                            line,
                            "'{' must be on the same line as its block header (scstadmin discards a block whose brace stands alone)",
                        );
                    }
                    stack.push((words, line, Vec::new()));
                    cur.clear();
                }
                '}' => {
                    if !cur.trim().is_empty() {
                        return err(
                            line,
                            format!(
                                "text '{}' before '}}' would be dropped by scstadmin; put '}}' on its own line",
                                shown_line(cur.trim())
                            ),
                        );
                    }
                    if stack.len() == 1 {
                        return err(
                            line,
                            "unmatched '}' (scstadmin would silently ignore the rest of the file)",
                        );
                    }
                    if let Some((words, open, children)) = stack.pop() {
                        if let Some(parent) = stack.last_mut() {
                            parent.2.push(Node {
                                words,
                                line: open,
                                children: Some(children),
                            });
                        }
                    }
                    cur.clear();
                }
                _ => cur.push(c),
            }
        }
        if !cur.trim().is_empty() {
            let words = tokens(&cur, line)?;
            if let Some(parent) = stack.last_mut() {
                parent.2.push(Node {
                    words,
                    line,
                    children: None,
                });
            }
        }
    }
    // The innermost block still open, if any besides the top level.
    if let Some((words, open, _)) = stack.get(1..).and_then(<[_]>::last) {
        return err(
            *open,
            format!(
                "missing '}}' for block '{}' opened on line {open}",
                words.join(" ")
            ),
        );
    }
    Ok(stack.pop().map(|s| s.2).unwrap_or_default())
}

/// What a block kind accepts, for error messages.
fn expected(ctx: &str) -> &'static str {
    match ctx {
        "top level" => "HANDLER, TARGET_DRIVER, DEVICE_GROUP, ALUA or a global attribute",
        "HANDLER" => "DEVICE or a handler attribute",
        "TARGET_DRIVER" => "TARGET, enabled or a driver attribute",
        "TARGET" => "HW_TARGET, enabled, LUN, GROUP or a target attribute",
        "GROUP" => "LUN, INITIATOR or a group attribute",
        "DEVICE_GROUP" => "DEVICE, TARGET_GROUP or a device-group attribute",
        "TARGET_GROUP" => "TARGET or a target-group attribute (group_id, preferred, state)",
        _ => "attributes ('name value' lines)",
    }
}

fn unknown(n: &Node, ctx: &str) -> ParseError {
    let what = if KEYWORDS.contains(&n.keyword()) {
        format!("'{}' is not allowed inside {ctx}", n.keyword())
    } else {
        format!("unknown block '{}' in {ctx}", n.words.join(" "))
    };
    ParseError {
        line: n.line,
        message: format!("{what}; expected {}", expected(ctx)),
    }
}

/// A `name value` line (no block).
fn attribute(n: &Node, ctx: &str) -> Result<Attr, ParseError> {
    if n.children.is_some() || KEYWORDS.contains(&n.keyword()) {
        return Err(unknown(n, ctx));
    }
    match n.words.as_slice() {
        [name, value] => Ok(Attr {
            name: name.clone(),
            value: value.clone(),
            line: n.line,
        }),
        [name] => err(n.line, format!("attribute '{name}' has no value")),
        [name, a, b, ..] => err(
            n.line,
            format!(
                "attribute '{name}' has an invalid value '{a} {}': quote a value that contains blanks",
                if crate::util::redact::is_scst_secret_attr(name) {
                    crate::util::redact::REDACTED
                } else {
                    b.as_str()
                }
            ),
        ),
        [] => err(n.line, "expected 'name value'"),
    }
}

fn attrs_only(children: Vec<Node>, ctx: &str) -> Result<Vec<Attr>, ParseError> {
    children.iter().map(|c| attribute(c, ctx)).collect()
}

/// Checks the header shape `KEYWORD` (nothing after the keyword).
fn bare(n: &Node, shape: &str) -> Result<(), ParseError> {
    if n.words.len() != 1 {
        return err(n.line, format!("expected '{shape}'"));
    }
    Ok(())
}

/// Checks the header shape `KEYWORD NAME` and returns NAME.
fn named(n: &Node, shape: &str) -> Result<String, ParseError> {
    match n.words.as_slice() {
        [_, name] => Ok(name.clone()),
        _ => err(n.line, format!("expected '{shape}'")),
    }
}

fn no_block(n: &Node, shape: &str) -> Result<(), ParseError> {
    if n.children.is_some() {
        return err(n.line, format!("'{shape}' takes no block"));
    }
    Ok(())
}

fn flag(n: &Node) -> Result<bool, ParseError> {
    no_block(n, "enabled 0|1")?;
    match n.words.get(1).map(String::as_str) {
        Some("1") if n.words.len() == 2 => Ok(true),
        Some("0") if n.words.len() == 2 => Ok(false),
        _ => err(n.line, "expected 'enabled 0' or 'enabled 1'"),
    }
}

fn top_level(nodes: Vec<Node>) -> Result<ScstConf, ParseError> {
    let mut conf = ScstConf::default();
    for n in nodes {
        match n.keyword() {
            "HANDLER" => {
                let mut h = Handler {
                    name: named(&n, "HANDLER name {")?,
                    line: n.line,
                    ..Default::default()
                };
                for c in n.children.unwrap_or_default() {
                    if c.keyword() == "DEVICE" {
                        h.devices.push(Device {
                            name: named(&c, "DEVICE name")?,
                            line: c.line,
                            attrs: attrs_only(c.children.unwrap_or_default(), "DEVICE")?,
                        });
                    } else {
                        h.attrs.push(attribute(&c, "HANDLER")?);
                    }
                }
                conf.handlers.push(h);
            }
            "TARGET_DRIVER" => {
                let mut d = TargetDriver {
                    name: named(&n, "TARGET_DRIVER name {")?,
                    line: n.line,
                    ..Default::default()
                };
                for c in n.children.unwrap_or_default() {
                    match c.keyword() {
                        "TARGET" => d.targets.push(target(c)?),
                        "enabled" => d.enabled = Some(flag(&c)?),
                        _ => d.attrs.push(attribute(&c, "TARGET_DRIVER")?),
                    }
                }
                conf.drivers.push(d);
            }
            "DEVICE_GROUP" => {
                let name = named(&n, "DEVICE_GROUP name {")?;
                conf.device_groups.push(device_group(name, n)?);
            }
            "ALUA" => {
                bare(&n, "ALUA {")?;
                conf.alua
                    .extend(attrs_only(n.children.unwrap_or_default(), "ALUA")?);
            }
            _ => conf.globals.push(attribute(&n, "top level")?),
        }
    }
    Ok(conf)
}

fn lun(n: Node) -> Result<Lun, ParseError> {
    let [_, word, device] = n.words.as_slice() else {
        return err(n.line, "expected 'LUN number device'");
    };
    let number = word.parse::<u32>().map_err(|_| ParseError {
        line: n.line,
        message: if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
            format!(
                "LUN number {word} is out of range: expected 0 to {}",
                super::catalog::MAX_LUN
            )
        } else {
            format!("LUN number '{word}' is not a number")
        },
    })?;
    Ok(Lun {
        number,
        device: device.clone(),
        line: n.line,
        attrs: attrs_only(n.children.unwrap_or_default(), "LUN")?,
    })
}

fn target(n: Node) -> Result<Target, ParseError> {
    let mut t = Target {
        name: named(&n, "TARGET name")?,
        line: n.line,
        ..Default::default()
    };
    for c in n.children.unwrap_or_default() {
        match c.keyword() {
            "HW_TARGET" => {
                bare(&c, "HW_TARGET")?;
                no_block(&c, "HW_TARGET")?;
                t.hw_target = true;
            }
            "enabled" => t.enabled = Some(flag(&c)?),
            "LUN" => t.luns.push(lun(c)?),
            "GROUP" => {
                let mut g = IniGroup {
                    name: named(&c, "GROUP name")?,
                    line: c.line,
                    ..Default::default()
                };
                for gc in c.children.unwrap_or_default() {
                    match gc.keyword() {
                        "LUN" => g.luns.push(lun(gc)?),
                        "INITIATOR" => {
                            let name = named(&gc, "INITIATOR name")?;
                            no_block(&gc, "INITIATOR")?;
                            g.initiators.push(Initiator {
                                name,
                                line: gc.line,
                            });
                        }
                        _ => g.attrs.push(attribute(&gc, "GROUP")?),
                    }
                }
                t.groups.push(g);
            }
            _ => t.attrs.push(attribute(&c, "TARGET")?),
        }
    }
    Ok(t)
}

fn device_group(name: String, n: Node) -> Result<DeviceGroup, ParseError> {
    let mut dg = DeviceGroup {
        name,
        line: n.line,
        ..Default::default()
    };
    for c in n.children.unwrap_or_default() {
        match c.keyword() {
            "DEVICE" => {
                let name = named(&c, "DEVICE name")?;
                no_block(&c, "DEVICE name")?;
                dg.devices.push(DgDevice { name, line: c.line });
            }
            "TARGET_GROUP" => {
                let mut tg = TargetGroup {
                    name: named(&c, "TARGET_GROUP name {")?,
                    line: c.line,
                    ..Default::default()
                };
                for tc in c.children.unwrap_or_default() {
                    if tc.keyword() == "TARGET" {
                        tg.targets.push(TgTarget {
                            name: named(&tc, "TARGET name")?,
                            line: tc.line,
                            attrs: attrs_only(tc.children.unwrap_or_default(), "TARGET")?,
                        });
                    } else {
                        tg.attrs.push(attribute(&tc, "TARGET_GROUP")?);
                    }
                }
                dg.target_groups.push(tg);
            }
            _ => dg.attrs.push(attribute(&c, "DEVICE_GROUP")?),
        }
    }
    Ok(dg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_rules() {
        assert_eq!(preprocess("# x", 1).unwrap(), "");
        assert_eq!(preprocess("a b #c", 1).unwrap(), "a b");
        assert_eq!(preprocess("a \\#b", 1).unwrap(), "a #b");
        assert_eq!(preprocess("a\\\\b", 1).unwrap(), "a\\b");
        let e = preprocess("filename /dev/sda#1", 7).unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.message.contains("'a'"), "{}", e.message);
    }

    #[test]
    fn quoted_tokens_and_limits() {
        assert_eq!(
            tokens("IncomingUser \"joe secret\"", 1).unwrap(),
            vec!["IncomingUser", "joe secret"]
        );
        assert!(tokens("a b c d", 3)
            .unwrap_err()
            .message
            .contains("too many"));
        assert_eq!(tokens("a \"b", 4).unwrap_err().line, 4);
    }

    #[test]
    fn legacy_format_refused() {
        let e = parse("[HANDLER vdisk]\nDEVICE x,/a\n").unwrap_err();
        assert!(e.message.contains("procfs"));
    }

    #[test]
    fn lun_attrs_and_globals() {
        let c = parse("setup_id 0x5\nTARGET_DRIVER iscsi {\n enabled 1\n TARGET iqn.2024-01.x:y {\n  LUN 0 d {\n   read_only 1\n  }\n }\n}\n").unwrap();
        assert_eq!(c.globals[0].name, "setup_id");
        assert_eq!(c.drivers[0].enabled, Some(true));
        let l = &c.drivers[0].targets[0].luns[0];
        assert_eq!((l.number, l.device.as_str(), l.line), (0, "d", 5));
        assert_eq!(l.attrs[0].value, "1");
    }
}
