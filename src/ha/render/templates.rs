//! The tera templates of the rendered files (`src/ha/templates/*.tera`), embedded in
//! the binary, and the one function that fills them. A template holds a file's layout;
//! the renderers prepare its data in Rust. Autoescaping is off (none of these files is
//! HTML): values that go into XML attributes pass through the `xml` filter.
//!
//! Reads: nothing at run time (the templates are compiled in).

use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;
use tera::{Tera, Value};

/// Every template, by the name the renderers use.
const TEMPLATES: &[(&str, &str)] = &[
    ("MANIFEST", include_str!("../templates/MANIFEST.tera")),
    ("cib-macros", include_str!("../templates/cib-macros.tera")),
    ("cib.xml", include_str!("../templates/cib.xml.tera")),
    (
        "corosync.conf",
        include_str!("../templates/corosync.conf.tera"),
    ),
    (
        "drbd-secret.conf",
        include_str!("../templates/drbd-secret.conf.tera"),
    ),
    ("dlm.conf", include_str!("../templates/dlm.conf.tera")),
    ("drbd.conf", include_str!("../templates/drbd.conf.tera")),
    ("drbd84.res", include_str!("../templates/drbd84.res.tera")),
    ("drbd9.res", include_str!("../templates/drbd9.res.tera")),
    ("fence.pw", include_str!("../templates/fence.pw.tera")),
    ("node.toml", include_str!("../templates/node.toml.tera")),
    ("sbd", include_str!("../templates/sbd.tera")),
    ("scst.conf", include_str!("../templates/scst.conf.tera")),
    (
        "secrets.gitignore",
        include_str!("../templates/secrets.gitignore.tera"),
    ),
];

/// `&`, `<`, `>` and `"` as XML entities (for attribute values).
pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_filter(v: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    match v {
        Value::String(s) => Ok(Value::String(xml_escape(s))),
        other => Ok(other.clone()),
    }
}

/// The parsed templates, built once; a template that does not parse is an error of
/// this program (the unit test below catches it), reported with tera's reason.
fn engine() -> Result<&'static Tera> {
    static ENGINE: OnceLock<std::result::Result<Tera, String>> = OnceLock::new();
    let built = ENGINE.get_or_init(|| {
        let mut t = Tera::default();
        t.autoescape_on(Vec::new());
        t.register_filter("xml", xml_filter);
        t.add_raw_templates(TEMPLATES.iter().copied())
            .map_err(|e| format!("{:#}", anyhow::Error::from(e)))?;
        Ok(t)
    });
    built
        .as_ref()
        .map_err(|e| anyhow!("cannot parse the render templates: {e}"))
}

/// Fills template `name` (e.g. `corosync.conf`) with `data`.
pub(super) fn render(name: &str, data: &impl Serialize) -> Result<String> {
    let ctx = tera::Context::from_serialize(data)
        .with_context(|| format!("cannot prepare the data of template {name}.tera"))?;
    engine()?
        .render(name, &ctx)
        .with_context(|| format!("cannot render template {name}.tera"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let t = engine().unwrap();
        for (name, _) in TEMPLATES {
            assert!(t.get_template_names().any(|n| n == *name), "{name}");
        }
    }

    #[test]
    fn xml_filter_escapes_attribute_values() {
        assert_eq!(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c'");
    }
}
