//! Path confinement: the one place that decides whether a path named in a recipe, a
//! node config or an image description may be used.
//!
//! Why it exists: builds often run as root, and a recipe is data that may come from
//! anybody. Two kinds of paths appear in what sanforge reads:
//!
//! * **host paths** (overlays, `path` sources, kernel base/fragments/patches, node
//!   configs): resolved against a base directory (the project root) by [`confine`],
//!   which follows the symlinks of every existing component and refuses a result
//!   outside the base, unless it lies under a directory the file explicitly allows
//!   (a recipe's `allow-outside-project`);
//! * **in-image paths** (`[userland] links` and `keep`): checked by [`image_path`] and
//!   [`link_target`] so that they never climb above the image root, and resolved on
//!   the host by [`resolve_in_root`], which follows symlinks of the tree being built
//!   the way the booted node would (an absolute link target restarts at the image
//!   root, `..` stops at it), so a hostile package or link never leads the builder out
//!   of its own directory.
//!
//! Errors are plain messages naming the value, the base and what was expected; the
//! caller prefixes the field (and its file:line:column).
//! Reads: the file system (`symlink_metadata`, `read_link`) along the paths it checks.

use std::path::{Component, Path, PathBuf};

/// How many symlinks [`resolve`] follows before giving up (as the kernel's ELOOP).
const MAX_LINKS: usize = 40;

/// Resolves `value` (absolute, or relative to `base`) and checks that the result,
/// after following every symlink of its existing components, lies inside `base` or
/// inside one of `allowed` (directories the caller has already resolved with
/// [`resolve`]). Returns the path to use: `base.join(value)` (not the resolved one,
/// so that what is recorded stays relative to the project).
///
/// The error names the value, the base, where the path leads when a symlink took it
/// out, and what is expected.
pub fn confine(value: &Path, base: &Path, allowed: &[PathBuf]) -> Result<PathBuf, String> {
    confine_to(
        value,
        base,
        allowed,
        "the project directory",
        " (or list the directory holding it in the recipe's top-level `allow-outside-project`)",
    )
}

/// [`confine`] with the words for the base (`the project directory`) and the hint
/// that ends the error (how to opt in, if there is a way).
pub fn confine_to(
    value: &Path,
    base: &Path,
    allowed: &[PathBuf],
    base_name: &str,
    hint: &str,
) -> Result<PathBuf, String> {
    if value.as_os_str().is_empty() {
        return Err(format!("an empty path: expected a path inside {base_name}"));
    }
    let joined = base.join(value);
    let real_base = resolve(base).map_err(|e| format!("cannot resolve {}: {e}", base.display()))?;
    let real =
        resolve(&joined).map_err(|e| format!("`{}`: cannot resolve it: {e}", value.display()))?;
    if real.starts_with(&real_base) || allowed.iter().any(|a| real.starts_with(a)) {
        return Ok(joined);
    }
    let base_shown = real_base.display();
    let how = if value.is_absolute() {
        format!("is an absolute path outside {base_name} {base_shown}")
    } else if lexically_inside(value) {
        format!(
            "leads outside {base_name} {base_shown} through a symlink (to {})",
            real.display()
        )
    } else {
        format!("climbs out of {base_name} {base_shown} with `..`")
    };
    Err(format!(
        "`{}` {how}: expected a path inside it{hint}",
        value.display()
    ))
}

/// True when relative `p` stays inside its base without following symlinks.
fn lexically_inside(p: &Path) -> bool {
    let mut depth: i64 = 0;
    for c in p.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// The absolute path `p` leads to: every existing component's symlinks followed (as
/// `realpath` does), the components that do not exist yet appended as written (a
/// `..` among them removes the previous one). Never fails on a missing file; fails on
/// a symlink loop or an unreadable link.
pub fn resolve(p: &Path) -> Result<PathBuf, String> {
    let abs = std::path::absolute(p).map_err(|e| e.to_string())?;
    let mut pending: Vec<std::ffi::OsString> = abs
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut out = PathBuf::from("/");
    let mut links = 0;
    let mut exists = true;
    while let Some(c) = pending.pop() {
        if c == ".." {
            out.pop();
            continue;
        }
        if c == "." {
            continue;
        }
        let next = out.join(&c);
        if !exists {
            out = next;
            continue;
        }
        match std::fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!(
                        "{}: too many levels of symbolic links",
                        next.display()
                    ));
                }
                let target = std::fs::read_link(&next)
                    .map_err(|e| format!("cannot read link {}: {e}", next.display()))?;
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                push_components(&mut pending, &target);
            }
            Ok(_) => out = next,
            Err(_) => {
                exists = false;
                out = next;
            }
        }
    }
    Ok(out)
}

/// Pushes the components of `target` onto the stack `pending` (popped from the end),
/// so that they are processed next, in order.
fn push_components(pending: &mut Vec<std::ffi::OsString>, target: &Path) {
    let comps: Vec<std::ffi::OsString> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    pending.extend(comps.into_iter().rev());
}

/// Checks an in-image path (a `[userland] links` name, a `keep` entry): not empty,
/// not the root itself, no `..` component (which could only climb). Returns it
/// relative to the image root (`/bin/sh` → `bin/sh`).
pub fn image_path(value: &str) -> Result<String, String> {
    let rel = value.trim_start_matches('/');
    if rel.is_empty() {
        return Err(format!(
            "`{value}`: expected a path inside the image, e.g. \"/bin/sh\""
        ));
    }
    if rel.split('/').any(|c| c == "..") {
        return Err(format!(
            "`{value}` climbs out of the image root with `..`: expected a path inside the image, e.g. \"/bin/sh\""
        ));
    }
    if value.contains('\0') {
        return Err(format!("`{value}` contains a NUL byte"));
    }
    Ok(rel.to_string())
}

/// Checks the target of a symlink at in-image path `link` (relative to the image
/// root): an absolute target is resolved in the image and always stays inside; a
/// relative one must not climb above the image root from the link's directory.
pub fn link_target(link: &str, target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err(format!(
            "`{link}` has an empty target: expected a path such as \"busybox\""
        ));
    }
    if target.contains('\0') {
        return Err(format!("the target of `{link}` contains a NUL byte"));
    }
    if target.starts_with('/') {
        return Ok(());
    }
    let mut depth = link
        .trim_matches('/')
        .split('/')
        .filter(|c| !c.is_empty())
        .count() as i64
        - 1;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!(
                        "the target `{target}` of `{link}` climbs out of the image root with `..`: expected a target inside the image"
                    ));
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// The host path of in-image path `rel` in the tree at `root`, with the symlinks of
/// its existing directories followed inside the tree (an absolute link target
/// restarts at `root`, `..` stops at it): what the booted node would see. The last
/// component is not followed (the caller replaces or creates it). Never leaves
/// `root`.
pub fn resolve_in_root(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let mut parts: Vec<String> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect();
    let Some(last) = parts.pop() else {
        return Err(format!("`{rel}`: expected a path inside the image"));
    };
    if last == ".." {
        return Err(format!("`{rel}` ends in `..`"));
    }
    let mut pending: Vec<String> = parts.into_iter().rev().collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(c);
        let host = root.join(resolved.join("/"));
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!(
                        "`{rel}`: too many levels of symbolic links in the image"
                    ));
                }
                let target = std::fs::read_link(&host)
                    .map_err(|e| format!("cannot read link {}: {e}", host.display()))?;
                let target = target.to_string_lossy().into_owned();
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(target.split('/').rev().map(String::from));
            }
            _ => {}
        }
    }
    resolved.push(last);
    Ok(root.join(resolved.join("/")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn confine_accepts_inside_and_refuses_escapes() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("proj");
        std::fs::create_dir_all(base.join("overlays/base")).unwrap();
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        assert_eq!(
            confine(Path::new("overlays/base"), &base, &[]).unwrap(),
            base.join("overlays/base")
        );
        // Not existing yet is fine (sources are checked when used).
        assert!(confine(Path::new("nope/x"), &base, &[]).is_ok());
        assert!(confine(Path::new("overlays/../overlays/base"), &base, &[]).is_ok());
        let e = confine(Path::new("../outside"), &base, &[]).unwrap_err();
        assert!(
            e.contains("climbs out") && e.contains("`../outside`"),
            "{e}"
        );
        let e = confine(Path::new("/etc"), &base, &[]).unwrap_err();
        assert!(e.contains("absolute path outside"), "{e}");
        // An absolute path inside the project is the same path.
        assert!(confine(&base.join("overlays"), &base, &[]).is_ok());
        // A symlink inside the project that points out.
        symlink(t.path().join("outside"), base.join("link")).unwrap();
        let e = confine(Path::new("link/x"), &base, &[]).unwrap_err();
        assert!(e.contains("through a symlink"), "{e}");
        symlink("../../outside", base.join("overlays/rel")).unwrap();
        assert!(confine(Path::new("overlays/rel"), &base, &[]).is_err());
        // Opted in.
        let allowed = [resolve(&t.path().join("outside")).unwrap()];
        assert!(confine(Path::new("../outside"), &base, &allowed).is_ok());
        assert!(confine(Path::new("link/x"), &base, &allowed).is_ok());
        assert!(confine(Path::new("/etc"), &base, &allowed).is_err());
        assert!(confine(Path::new(""), &base, &[]).is_err());
    }

    #[test]
    fn resolve_follows_links_and_loops_fail() {
        let t = tempfile::tempdir().unwrap();
        let r = resolve(t.path()).unwrap();
        std::fs::create_dir(r.join("d")).unwrap();
        symlink("d", r.join("l")).unwrap();
        assert_eq!(resolve(&r.join("l/x/../y")).unwrap(), r.join("d/y"));
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve(&r.join("loop/x")).unwrap_err().contains("too many"));
    }

    #[test]
    fn image_paths_and_link_targets() {
        assert_eq!(image_path("/bin/sh").unwrap(), "bin/sh");
        assert!(image_path("/").is_err());
        assert!(image_path("").is_err());
        assert!(image_path("/../../etc/passwd")
            .unwrap_err()
            .contains("climbs"));
        assert!(image_path("bin/../../x").is_err());
        assert!(link_target("/bin/sh", "busybox").is_ok());
        assert!(link_target("/bin/sh", "/bin/busybox").is_ok());
        assert!(link_target("/usr/bin/sh", "../../bin/busybox").is_ok());
        assert!(link_target("/bin/sh", "../../etc/passwd").is_err());
        assert!(link_target("/bin/sh", "").is_err());
    }

    #[test]
    fn resolve_in_root_never_leaves_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("/etc", root.join("evil")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        assert_eq!(
            resolve_in_root(&root, "bin/sh").unwrap(),
            root.join("usr/bin/sh")
        );
        assert_eq!(
            resolve_in_root(&root, "evil/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(&root, "up/x").unwrap(), root.join("x"));
        // The last component is not followed.
        assert_eq!(resolve_in_root(&root, "evil").unwrap(), root.join("evil"));
    }
}
