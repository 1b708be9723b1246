//! The bad-input corpus (issue #10): every verb fed hostile or malformed recipes,
//! node configs, cluster files, output directories and mirrors, each run with a
//! timeout and classified as a clear error, an expected success, a wrong answer, a
//! panic or a hang. Run it with `benches/badinputs.sh` (or `cargo test --test
//! badinputs -- --ignored --nocapture`); it prints one row per case and the table
//!
//! ```text
//! cases  clear errors  ok  wrong  panics  hangs
//! ```
//!
//! and fails unless wrong, panics and hangs are all 0. `SANFORGE_BADINPUTS_BIN=PATH`
//! runs the corpus against another `sanforge` binary (e.g. one built from main) and
//! only reports; `SANFORGE_BADINPUTS_ONLY=SUBSTRING` runs the matching cases.
//!
//! Every case runs in a fresh fake project (`tests/common/project.rs`) beside a
//! directory `outside/` (`../outside` from the project root) that holds the files a
//! hostile input aims at: `victim` (a file), `victim-dir/` and `node.toml` (a valid
//! node config). Whatever the case, nothing under `outside/` may change. A *refused*
//! case must also leave the project, its cache blobs and its outputs as they were.
//!
//! Adding a case is one line in [`cases`]: an id, a setup (edits to the project, with
//! `{outside}`, `{root}`, `{url}` and `{sha}` expanded), the arguments, and the
//! expected outcome (`refused(&[words])`, `fails(&[words])`, `ok(&[words])`), each
//! word to be found in the output.

mod common;

use common::httpd::{Route, Server};
use common::safety::{diff, snapshot, World};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// --- the corpus --------------------------------------------------------------------

/// The recipe's default path source line, the kernel table's last line and the
/// userland table's line, where setups insert keys.
const SRC: &str = "source = { path = \"fake-linux\" }";
const KLAST: &str = "localversion = \"-t\"";
const ULINE: &str = "packages = {}";
const NODECFG: &str = "config = \"recipes/nodes/node.toml\"";
const OVERLAYS: &str = "overlays = [\"overlays/base\"]";
const R: &str = "recipes/test.toml";

/// A node whose LIO ACL names the CHAP account `h`, and a secrets file with it.
const CHAP_NODE: &str = "hostname = \"n\"\n[modules]\nload = [\"target_core_mod\"]\n[lio]\nbackstores = [{ name = \"rd\", kind = \"ramdisk\", size = \"1MiB\" }]\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\nportals = [\"0.0.0.0:3260\"]\nluns = [{ lun = 0, backstore = \"rd\" }]\n[[lio.iscsi.acls]]\ninitiator = \"iqn.2026-11.org.example:h\"\nchap = { secret = \"h\" }\n";
const CHAP_SECRETS: &str = "[chap.h]\nuser = \"h\"\npassword = \"0123456789abcd\"\n";

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        // ---- class 1: paths stay where they belong --------------------------------
        c("name-dotdot", |e| e.sub("name = \"test\"", "name = \"..\""), &["build", R], refused(&["name", "`..`"])),
        c("name-dot", |e| e.sub("name = \"test\"", "name = \".\""), &["build", R], refused(&["name"])),
        c("name-slash", |e| e.sub("name = \"test\"", "name = \"a/../../x\""), &["build", R], refused(&["name"])),
        c("name-hidden", |e| e.sub("name = \"test\"", "name = \".git\""), &["plan", R], refused(&["name", ".git"])),
        c("overlay-dotdot", |e| e.sub(OVERLAYS, "overlays = [\"../outside/victim-dir\"]"), &["build", R], refused(&["overlay", "../outside/victim-dir"])),
        c("overlay-absolute", |e| e.sub(OVERLAYS, "overlays = [\"{outside}/victim-dir\"]"), &["build", R], refused(&["overlay", "{outside}/victim-dir"])),
        c("overlay-symlink-out", |e| { e.link("overlays/evil", "{outside}/victim-dir"); e.sub(OVERLAYS, "overlays = [\"overlays/evil\"]") }, &["build", R], refused(&["overlay", "overlays/evil"])),
        c("overlay-opt-in", |e| { e.top("allow-outside-project = [\"../outside\"]"); e.sub(OVERLAYS, "overlays = [\"overlays/base\", \"../outside/victim-dir\"]") }, &["plan", R], ok(&["rootfs"])),
        c("overlay-tera-symlink", |e| e.link("overlays/base/etc/stolen.tera", "{outside}/victim"), &["build", R], fails(&["stolen.tera"])),
        c("overlay-fifo", |e| e.fifo("overlays/base/etc/pipe"), &["build", R], fails(&["pipe"])),
        c("kernel-path-dotdot", |e| e.sub(SRC, "source = { path = \"../outside/victim-dir\" }"), &["plan", R], refused(&["source", "../outside/victim-dir"])),
        c("kernel-path-absolute", |e| e.sub(SRC, "source = { path = \"/etc\" }"), &["plan", R], refused(&["source", "/etc"])),
        c("kernel-path-symlink", |e| { e.link("linux-link", "{outside}/victim-dir"); e.sub(SRC, "source = { path = \"linux-link\" }") }, &["plan", R], refused(&["source", "linux-link"])),
        c("kernel-path-fifo", |e| { e.fifo("fifo-src"); e.sub(SRC, "source = { path = \"fifo-src\" }") }, &["plan", R], refused(&["fifo-src"])),
        c("kernel-path-missing", |e| e.sub(SRC, "source = { path = \"nope\" }"), &["plan", R], refused(&["nope"])),
        c("kernel-path-opt-in", |e| { e.top("allow-outside-project = [\"../outside\"]"); e.copy_dir("fake-linux", "{outside}/linux"); e.sub(SRC, "source = { path = \"../outside/linux\" }") }, &["plan", R], ok(&["kernel"])),
        c("source-path-dotdot", |e| e.append("\n[sources.fw]\npath = \"../outside/victim\"\n"), &["plan", R], refused(&["fw", "../outside/victim"])),
        c("source-path-absolute", |e| e.append("\n[sources.fw]\npath = \"/etc/passwd\"\n"), &["plan", R], refused(&["fw", "/etc/passwd"])),
        c("source-path-opt-in", |e| { e.top("allow-outside-project = [\"{outside}\"]"); e.append("\n[sources.fw]\npath = \"../outside/victim\"\n") }, &["plan", R], ok(&["kernel"])),
        c("allow-outside-missing", |e| e.top("allow-outside-project = [\"../nope\"]"), &["plan", R], refused(&["allow-outside-project", "../nope"])),
        c("base-dotdot", |e| e.sub("base = \"tinyconfig\"", "base = \"../outside/victim\""), &["plan", R], refused(&["base", "../outside/victim"])),
        c("base-absolute", |e| e.sub("base = \"tinyconfig\"", "base = \"/etc/passwd\""), &["plan", R], refused(&["base", "/etc/passwd"])),
        c("fragment-dotdot", |e| e.sub("fragments = [\"base.config\"]", "fragments = [\"../outside/victim\"]"), &["plan", R], refused(&["fragment", "../outside/victim"])),
        c("fragment-absolute", |e| e.sub("fragments = [\"base.config\"]", "fragments = [\"/etc/passwd\"]"), &["plan", R], refused(&["fragment", "/etc/passwd"])),
        c("fragment-symlink", |e| { e.link("kernel-configs/evil.config", "{outside}/victim"); e.sub("fragments = [\"base.config\"]", "fragments = [\"evil.config\"]") }, &["kconfig", "check", R], refused(&["fragment", "evil.config"])),
        c("patch-dotdot", |e| e.kernel("patches = [\"../outside/victim\"]"), &["plan", R], refused(&["patch", "../outside/victim"])),
        c("patch-absolute", |e| e.kernel("patches = [\"/etc/passwd\"]"), &["plan", R], refused(&["patch", "/etc/passwd"])),
        c("node-config-dotdot", |e| e.sub(NODECFG, "config = \"../outside/node.toml\""), &["plan", R], refused(&["node config", "../outside/node.toml"])),
        c("node-config-absolute", |e| e.sub(NODECFG, "config = \"{outside}/node.toml\""), &["build", R], refused(&["node config", "{outside}/node.toml"])),
        c("node-config-symlink", |e| { e.link("recipes/nodes/evil.toml", "{outside}/node.toml"); e.sub(NODECFG, "config = \"recipes/nodes/evil.toml\"") }, &["build", R], refused(&["node config", "evil.toml"])),
        c("node-configs-dotdot", |e| e.sub(NODECFG, "config = \"recipes/nodes/node.toml\"\nconfigs = [\"../outside\"]"), &["plan", R], refused(&["configs", "../outside"])),
        c("node-configs-entry-symlink", |e| { e.link("cluster/gamma.toml", "{outside}/node.toml"); e.sub(NODECFG, "config = \"recipes/nodes/node.toml\"\nconfigs = [\"cluster\"]") }, &["build", R], refused(&["gamma.toml"])),
        c("scst-conf-absolute", |e| e.node_append("\n[scst]\nconf = \"{outside}/victim\"\n"), &["plan", R], refused(&["conf", "{outside}/victim"])),
        c("scst-conf-symlink", |e| { e.link("recipes/nodes/scst.conf", "{outside}/victim"); e.node_append("\n[scst]\nconf = \"scst.conf\"\n") }, &["node", "check", "recipes/nodes/node.toml"], refused(&["conf", "scst.conf"])),
        c("scst-conf-dotdot", |e| e.node_append("\n[scst]\nconf = \"../../../outside/victim\"\n"), &["node", "check", "recipes/nodes/node.toml"], refused(&["conf", ".."])),
        c("links-name-dotdot", |e| e.userland("links = { \"../../../../../../outside/victim\" = \"busybox\" }"), &["build", R], refused(&["links", "../../../../../../outside/victim"])),
        c("links-name-rooted-dotdot", |e| e.userland("links = { \"/../../../../../../outside/victim\" = \"busybox\" }"), &["build", R], refused(&["links", "/../../../../../../outside/victim"])),
        c("links-target-dotdot", |e| e.userland("links = { \"/bin/sh\" = \"../../../../../../outside/victim\" }"), &["build", R], refused(&["links", "../../../../../../outside/victim"])),
        c("links-name-root", |e| e.userland("links = { \"/\" = \"busybox\" }"), &["build", R], refused(&["links"])),
        c("links-ok", |e| e.userland("links = { \"/bin/sh\" = \"busybox\", \"/usr/bin/vi\" = \"../../bin/busybox\" }"), &["build", R], ok(&["built"])),
        c("keep-dotdot", |e| e.userland("keep = [\"/../../../../../etc/passwd\"]"), &["build", R], refused(&["keep", "/../../../../../etc/passwd"])),
        c("matrix-fragment-dotdot", |e| e.append("\n[kernel.matrix]\n\"6.12\" = { source = { path = \"fake-linux\" }, fragments = [\"../outside/victim\"] }\n"), &["plan", R], refused(&["6.12", "fragment", "../outside/victim"])),
        c("matrix-source-absolute", |e| e.append("\n[kernel.matrix]\n\"6.12\" = { source = { path = \"/usr\" } }\n"), &["plan", R], refused(&["6.12", "/usr"])),
        c("matrix-base-symlink", |e| { e.link("evil-base", "{outside}/victim"); e.append("\n[kernel.matrix]\n\"6.12\" = { source = { path = \"fake-linux\" }, base = \"evil-base\" }\n") }, &["plan", R], refused(&["6.12", "base", "evil-base"])),
        c("matrix-patch-dotdot", |e| e.append("\n[kernel.matrix]\n\"6.12\" = { source = { path = \"fake-linux\" }, patches = [\"../outside/victim\"] }\n"), &["plan", R], refused(&["6.12", "patch", "../outside/victim"])),
        c("scst-source-dotdot", |e| e.append("\n[scst]\nsource = { path = \"../outside/victim-dir\" }\nwaive-firmware = [\"ql2400_fw.bin\"]\n"), &["plan", R], refused(&["scst source", "../outside/victim-dir"])),
        c("firmware-path-absolute", |e| e.append("\n[scst]\nsource = { path = \"fake-linux\" }\nfirmware = [{ name = \"ql2500_fw.bin\", path = \"{outside}/victim\" }]\n"), &["plan", R], refused(&["firmware", "{outside}/victim"])),
        c("firmware-name-dotdot", |e| e.append("\n[scst]\nsource = { path = \"fake-linux\" }\nfirmware = [{ name = \"../../x.bin\", path = \"fake-linux/Makefile\" }]\n"), &["plan", R], refused(&["firmware name", "../../x.bin"])),
        c("kernel-name-dotdot", |e| e.kernel("name = \"..\""), &["build", R], refused(&["kernel name"])),
        c("matrix-name-slash", |e| e.append("\n[kernel.matrix]\n\"../x\" = { source = { path = \"fake-linux\" } }\n"), &["build", R, "--kernel", "../x"], refused(&["../x"])),
        // ---- class 2: --out only replaces sanforge output -------------------------
        c("out-foreign-dir", |_| {}, &["build", R, "--out", "{outside}/victim-dir"], refused(&["victim-dir"])),
        c("out-project-root", |_| {}, &["build", R, "--out", "."], refused(&["output"])),
        c("out-parent", |_| {}, &["build", R, "--out", ".."], refused(&["output"])),
        c("out-is-file", |_| {}, &["build", R, "--out", "{outside}/victim"], refused(&["victim"])),
        c("out-partial-foreign", |e| e.write("{outside}/o.partial/precious", "keep me"), &["build", R, "--out", "{outside}/o"], refused(&["o.partial"])),
        c("out-old-foreign", |e| e.write("{outside}/o.old/precious", "keep me"), &["build", R, "--out", "{outside}/o"], refused(&["o.old"])),
        c("out-empty-dir", |e| e.mkdir("out/empty"), &["build", R, "--out", "out/empty"], ok(&["built"])),
        c("out-previous-build", |e| e.sf(&["build", R, "--out", "out/x"]), &["build", R, "--out", "out/x"], ok(&["up to date"])),
        c("out-rebuild-after-change", |e| { e.sf(&["build", R]); e.write("recipes/nodes/node.toml", &common::project::NODE.replace("test-node", "other")) }, &["build", R], ok(&["ran: rootfs, outputs"])),
        c("render-out-foreign", |e| e.cluster(), &["cluster", "render", "cluster.toml", "--out", "{outside}/victim-dir"], refused(&["victim-dir"])),
        c("render-out-file", |e| e.cluster(), &["cluster", "render", "cluster.toml", "--out", "{outside}/victim"], refused(&["victim"])),
        c("render-out-project", |e| e.cluster(), &["cluster", "render", "cluster.toml", "--out", "."], refused(&["--out"])),
        c("render-again", |e| { e.cluster(); e.sf(&["cluster", "render", "cluster.toml", "--out", "rendered"]) }, &["cluster", "render", "cluster.toml", "--out", "rendered"], ok(&["rendered 2 nodes"])),
        // ---- class 3: inputs are what they claim ----------------------------------
        c("locked-path-edited", |e| { e.sf(&["lock", R]); e.sf(&["build", R]); e.write("fake-linux/README", "edited") }, &["build", R, "--locked"], refused(&["kernel", "sanforge lock"])),
        c("unlocked-path-edited", |e| { e.sf(&["lock", R]); e.sf(&["build", R]); e.write("fake-linux/README", "edited") }, &["build", R], ok(&["ran: kernel"])).check(manifest_records_the_tree),
        c("import-three", |e| { e.write("a", "A"); e.write("b", "B"); e.write("c", "C") }, &["fetch", "--import", "a", "b", "c"], ok(&[])).check(|e| e.blobs(3)),
        c("import-two", |e| { e.write("a", "A"); e.write("b", "B") }, &["fetch", "--import", "a", "b"], ok(&[])).check(|e| e.blobs(2)),
        c("import-one-missing", |e| { e.write("a", "A"); e.write("c", "C") }, &["fetch", "--import", "a", "nope", "c"], refused(&["nope"])),
        c("import-dir", |e| e.mkdir("empty"), &["fetch", "--import", "empty"], refused(&["empty", "holds no file"])),
        c("import-tree", |e| e.write("tree/a", "A"), &["fetch", "--import", "tree"], ok(&["tree-v1:"])),
        c("import-dir-fifo", |e| { e.write("tree/a", "A"); e.fifo("tree/pipe") }, &["fetch", "--import", "tree"], refused(&["tree/pipe"])),
        c("import-not-an-archive", |e| e.write("x.tar.gz", "not gzip"), &["fetch", "--import", "x.tar.gz"], ok(&[])).check(|e| e.blobs(1)),
        c("import-fifo", |e| e.fifo("pipe"), &["fetch", "--import", "pipe"], refused(&["pipe"])),
        c("import-dev-zero", |_| {}, &["fetch", "--import", "/dev/zero"], refused(&["/dev/zero"])),
        c("fetch-trickling-mirror", |e| e.url_source(&["{url}/trickle"]), &["fetch", R], fails(&["/trickle"])).env(&[("SANFORGE_FETCH_STALL", "2"), ("SANFORGE_FETCH_MIN_RATE", "100")]),
        c("fetch-silent-mirror", |e| e.url_source(&["{url}/silent"]), &["fetch", R], fails(&["/silent"])).env(&[("SANFORGE_FETCH_STALL", "2")]).timeout(45),
        c("fetch-deadline", |e| e.url_source(&["{url}/long"]), &["fetch", R], fails(&["/long"])).env(&[("SANFORGE_FETCH_DEADLINE", "3"), ("SANFORGE_FETCH_MIN_RATE", "10")]),
        c("fetch-slow-then-good", |e| e.url_source(&["{url}/trickle", "{url}/good"]), &["fetch", R], ok(&["1 sources"])).env(&[("SANFORGE_FETCH_STALL", "2"), ("SANFORGE_FETCH_MIN_RATE", "100")]).check(|e| e.blobs(1)),
        c("fetch-404-then-good", |e| e.url_source(&["{url}/missing", "{url}/good"]), &["fetch", R], ok(&["1 sources"])),
        c("fetch-file-url-fifo", |e| { e.fifo("pipe"); e.url_source(&["file://{root}/pipe"]) }, &["fetch", R], fails(&["pipe"])),
        c("fetch-wrong-sha", |e| { e.url_source(&["{url}/good"]); e.sub("{sha}", &"0".repeat(64)) }, &["fetch", R], refused(&["mismatch"])),
        // ---- class 6: all or nothing -----------------------------------------------
        c("render-removes-gone-node", |e| { e.cluster(); e.sf(&["cluster", "render", "cluster.toml", "--out", "rendered"]); e.sub_file("cluster.toml", "alpha", "gamma") }, &["cluster", "render", "cluster.toml", "--out", "rendered"], ok(&["rendered 2 nodes"])).check(|e| e.absent("rendered/alpha").and(e.present("rendered/gamma/node.toml"))),
        c("render-bad-cluster-keeps-old", |e| { e.cluster(); e.sf(&["cluster", "render", "cluster.toml", "--out", "rendered"]); e.sub_file("cluster.toml", "name = \"alpha\"", "name = \"al/pha\"") }, &["cluster", "render", "cluster.toml", "--out", "rendered"], refused(&["al/pha"])),
        c("render-missing-secrets", |e| { e.cluster(); e.remove("cluster.secrets.toml") }, &["cluster", "render", "cluster.toml", "--out", "rendered"], refused(&["cluster.secrets.toml"])),
        c("lock-recipe-named-lock", |e| e.copy("recipes/test.toml", "recipes/x.lock"), &["lock", "recipes/x.lock"], refused(&["x.lock"])),
        c("lock-failure-keeps-old", |e| { e.sf(&["lock", R]); e.sub(SRC, "source = { path = \"nope\" }") }, &["lock", R], refused(&["nope"])),
        c("keygen-pub-exists", |e| e.write("k.pub", "x"), &["keygen", "--out", "k"], refused(&["k.pub", "already exists"])),
        c("keygen-out-dir", |_| {}, &["keygen", "--out", "recipes"], refused(&["recipes", "already exists"])),
        c("keygen-missing-dir", |_| {}, &["keygen", "--out", "nodir/k"], refused(&["nodir"])),
        c("keygen-ok", |_| {}, &["keygen", "--out", "k"], ok(&["k.pub"])).check(|e| e.present("k").and(e.present("k.pub"))),
        c("secrets-exists", |e| e.write("s.toml", "x"), &["cluster", "secrets", "--out", "s.toml"], refused(&["already exists"])),
        // ---- class 4: what the build can know fails the build, not the boot --------
        c("node-module-not-in-image", |e| e.write("recipes/nodes/node.toml", "hostname = \"n\"\n[modules]\nload = [\"target_core_mdo\"]\n"), &["build", R], fails(&["node.toml:3:", "target_core_mdo", "did you mean `target_core_mod`"])),
        c("node-params-not-in-image", |e| e.write("recipes/nodes/node.toml", "hostname = \"n\"\n[modules]\nparams = { nope = \"x=1\" }\n"), &["build", R], fails(&["node.toml:3:", "`nope`"])),
        c("sde-beyond-32-bits", |e| e.sub("source-date-epoch = 1767225600", "source-date-epoch = 4294967296"), &["build", R], refused(&["test.toml:5:", "out of range", "4294967295"])),
        c("node-two-backstores-one-file", |e| e.write("recipes/nodes/node.toml", "hostname = \"n\"\n[lio]\nbackstores = [{ name = \"a\", kind = \"block\", path = \"/dev/sdb\" }, { name = \"b\", kind = \"block\", path = \"/dev/sdb\" }]\n"), &["build", R], refused(&["node.toml:3:", "already uses"])),
        c("node-address-twice", |e| e.write("recipes/nodes/node.toml", "hostname = \"n\"\n[[network.interfaces]]\nname = \"a\"\naddresses = [\"10.0.0.1/24\"]\n[[network.interfaces]]\nname = \"b\"\naddresses = [\"10.0.0.1/24\"]\n"), &["build", R], refused(&["node.toml:7:", "already on a"])),
        c("node-portal-twice", |e| e.write("recipes/nodes/node.toml", "hostname = \"n\"\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\nportals = [\"0.0.0.0:3260\", \"0.0.0.0:3260\"]\n"), &["build", R], refused(&["node.toml:4:", "listed twice"])),
        c("scst-unknown-device-attr", |e| { e.node_append("\n[scst]\nconf = \"scst.conf\"\n"); e.write("recipes/nodes/scst.conf", "HANDLER vdisk_nullio {\n\tDEVICE d0 {\n\t\tt10_dev_idd x\n\t}\n}\n") }, &["plan", R], refused(&["scst.conf:3", "t10_dev_idd", "t10_dev_id"])),
        c("scst-setup-id-zzz", |e| e.write("s.conf", "setup_id zzz\n"), &["scst", "check", "s.conf"], refused(&["s.conf:1", "setup_id", "not a number"])),
        c("scst-chap-one-char", |e| e.write("s.conf", "TARGET_DRIVER iscsi {\n\tIncomingUser \"joe x\"\n}\n"), &["scst", "check", "s.conf"], refused(&["s.conf:2", "1 character, out of range"])),
        c("scst-lun-beyond-max", |e| e.write("s.conf", "HANDLER vdisk_nullio {\n\tDEVICE d\n}\nTARGET_DRIVER scst_local {\n\tTARGET scst_local_tgt {\n\t\tLUN 20000 d\n\t}\n}\n"), &["scst", "check", "s.conf"], refused(&["s.conf:6", "out of range", "16383"])),
        c("scst-read-only-attr", |e| e.write("s.conf", "last_sysfs_mgmt_res 0\n"), &["scst", "check", "s.conf"], refused(&["s.conf:1", "read-only"])),
        // ---- class 5: no secret in a public output ----------------------------------
        c("node-inline-chap", |e| e.write("recipes/nodes/node.toml", "hostname = \"n\"\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\nportals = [\"0.0.0.0:3260\"]\n[[lio.iscsi.acls]]\ninitiator = \"iqn.2026-11.org.example:h\"\nchap = { userid = \"h\", password = \"0123456789abcd\" }\n"), &["build", R], refused(&["node.toml:7:", "chap = { secret = \"NAME\" }", "--secrets"])),
        c("scst-inline-incominguser", |e| { e.node_append("\n[scst]\nconf = \"scst.conf\"\n"); e.write("recipes/nodes/scst.conf", "TARGET_DRIVER iscsi {\n\tIncomingUser \"joe 0123456789abcd\"\n}\n") }, &["build", R], refused(&["scst.conf:2", "joe <redacted>", "IncomingUser secret:NAME"])),
        c("secrets-readable", |e| { e.write("recipes/nodes/node.toml", CHAP_NODE); e.write("s.toml", CHAP_SECRETS); e.chmod("s.toml", 0o644) }, &["build", R, "--secrets", "s.toml"], refused(&["s.toml", "open to its group and others", "chmod 600"])),
        c("secrets-missing-name", |e| { e.write("recipes/nodes/node.toml", &CHAP_NODE.replace("\"h\" }", "\"other\" }")); e.write("s.toml", CHAP_SECRETS); e.chmod("s.toml", 0o600) }, &["build", R, "--secrets", "s.toml"], refused(&["[chap.other]"])),
        c("secrets-initrd", |e| { e.write("recipes/nodes/node.toml", CHAP_NODE); e.write("s.toml", CHAP_SECRETS); e.chmod("s.toml", 0o600) }, &["build", R, "--secrets", "s.toml"], ok(&["secrets/initrd.cpio"])).check(|e| e.present("out/test/secrets/initrd.cpio")),
        c("scst-plan-redacts", |e| e.write("s.conf", "TARGET_DRIVER iscsi {\n\tIncomingUser \"joe 0123456789abcd\"\n}\n"), &["scst", "plan", "s.conf"], ok(&["IncomingUser joe <redacted>"])),
        c("render-secrets-readable", |e| { e.cluster(); e.chmod("cluster.secrets.toml", 0o640) }, &["cluster", "render", "cluster.toml", "--out", "rendered"], refused(&["open to its group"])),
        // ---- class 7: messages say the truth -----------------------------------------
        c("node-tpg-out-of-range", |e| e.write("n.toml", "hostname = \"n\"\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\ntpg = 70000\nportals = [\"0.0.0.0:3260\"]\n"), &["node", "check", "n.toml"], refused(&["n.toml:4:7", "tpg 70000 is out of range: expected 0 to 65535"])),
        c("node-mtu-out-of-range", |e| e.write("n.toml", "hostname = \"n\"\n[[network.interfaces]]\nname = \"a\"\n[[network.interfaces]]\nname = \"b\"\nmtu = 9\n"), &["node", "check", "n.toml"], refused(&["n.toml:6:7", "mtu 9 on b is out of range"])),
        c("scst-lun-not-a-u32", |e| e.write("s.conf", "TARGET_DRIVER scst_local {\n\tTARGET scst_local_tgt {\n\t\tLUN 99999999999 d\n\t}\n}\n"), &["scst", "check", "s.conf"], refused(&["s.conf:3", "out of range"])),
        // ---- malformed inputs of every verb ---------------------------------------
        c("build-missing-recipe", |_| {}, &["build", "recipes/nope.toml"], refused(&["nope.toml"])),
        c("build-recipe-is-dir", |_| {}, &["build", "recipes"], refused(&["recipes"])),
        c("build-recipe-binary", |e| e.write(R, "\u{0}\u{1}\u{2}garbage"), &["build", R], refused(&["test.toml"])),
        c("build-recipe-empty", |e| e.write(R, ""), &["build", R], refused(&["missing field"])),
        c("build-unknown-key", |e| e.top("frobnicate = 1"), &["build", R], refused(&["frobnicate"])),
        c("build-unknown-kernel", |_| {}, &["build", R, "--kernel", "nope"], refused(&["nope"])),
        c("build-negative-sde", |e| e.sub("source-date-epoch = 1767225600", "source-date-epoch = -1"), &["build", R], refused(&["test.toml:5:"])),
        c("build-zstd-level", |e| e.sub("zstd-level = 3", "zstd-level = 99"), &["build", R], refused(&["zstd-level"])),
        c("build-bad-option", |e| e.kernel("options = { PRINTK = \"y\" }"), &["build", R], refused(&["PRINTK"])),
        c("build-two-sources", |e| e.sub(SRC, "source = { path = \"fake-linux\", debian = \"linux\" }"), &["build", R], refused(&["exactly one"])),
        c("build-bad-url", |e| e.sub(SRC, "source = { url = \"ftp://x/y\", sha256 = \"{sha}\" }"), &["build", R], refused(&["ftp://x/y"])),
        c("build-bad-node", |e| e.write("recipes/nodes/node.toml", "hostname = 3\n"), &["build", R], refused(&["node.toml:1"])),
        c("build-init-not-elf", |e| e.write("init", "#!/bin/sh\n"), &["build", R, "--init", "init"], refused(&["not an ELF"])),
        c("build-init-missing", |_| {}, &["build", R, "--init", "nope"], refused(&["nope"])),
        c("build-stale-lock", |e| { e.sf(&["lock", R]); e.sub(SRC, "source = { path = \"fake-linux/\" }") }, &["build", R, "--locked"], refused(&["stale entry `kernel`"])),
        c("build-bad-lock", |e| e.write("recipes/test.lock", "version = 7\n"), &["build", R], refused(&["lock version 7"])),
        c("plan-missing-recipe", |_| {}, &["plan", "nope.toml"], refused(&["nope.toml"])),
        c("kconfig-missing-fragment", |e| e.sub("fragments = [\"base.config\"]", "fragments = [\"nope.config\"]"), &["kconfig", "check", R], refused(&["nope.config", "not found"])),
        c("node-check-missing", |_| {}, &["node", "check", "nope.toml"], refused(&["nope.toml"])),
        c("node-check-unknown-key", |e| e.write("n.toml", "hostname = \"x\"\nfrobnicate = 1\n"), &["node", "check", "n.toml"], refused(&["frobnicate"])),
        c("node-check-dir", |_| {}, &["node", "check", "recipes"], refused(&["recipes"])),
        c("scst-check-missing", |_| {}, &["scst", "check", "nope.conf"], refused(&["nope.conf"])),
        c("scst-check-garbage", |e| e.write("s.conf", "HANDLER {{{\n"), &["scst", "check", "s.conf"], refused(&["s.conf"])),
        c("scst-plan-garbage", |e| e.write("s.conf", "TARGET_DRIVER iscsi {\n"), &["scst", "plan", "s.conf"], refused(&["s.conf"])),
        c("cluster-check-missing", |_| {}, &["cluster", "check", "nope.toml"], refused(&["nope.toml"])),
        c("cluster-check-garbage", |e| e.write("c.toml", "name = [\n"), &["cluster", "check", "c.toml"], refused(&["c.toml"])),
        c("cluster-check-ok", |e| e.cluster(), &["cluster", "check", "cluster.toml"], ok(&["OK"])),
        c("sign-missing-dir", |e| e.sf(&["keygen", "--out", "k"]), &["sign", "nope", "--key", "k"], refused(&["nope"])),
        c("sign-readable-key", |e| { e.sf(&["keygen", "--out", "k"]); e.chmod("k", 0o644) }, &["sign", "out", "--key", "k"], refused(&["readable by others"])),
        c("sign-public-as-secret", |e| { e.sf(&["build", R]); e.sf(&["keygen", "--out", "k"]); e.chmod("k.pub", 0o600) }, &["sign", "out/test", "--key", "k.pub"], refused(&["k.pub"])),
        c("verify-image-missing-key", |e| e.sf(&["build", R]), &["verify-image", "out/test", "--pubkey", "nope.pub"], refused(&["nope.pub"])),
        c("verify-image-tampered", |e| { e.sf(&["build", R]); e.sf(&["keygen", "--out", "k"]); e.sf(&["sign", "out/test", "--key", "k"]); e.write("out/test/boot.ipxe", "#!ipxe\nchain http://evil/\n") }, &["verify-image", "out/test", "--pubkey", "k.pub"], refused(&["boot.ipxe"])),
        c("run-missing-out", |_| {}, &["run", "nope"], refused(&["has no vmlinuz"])),
        c("run-foreign-out", |_| {}, &["run", "{outside}/victim-dir", "--until-ready"], refused(&["has no vmlinuz"])),
        c("run-stop-nothing", |_| {}, &["run", "nope", "--stop"], ok(&["not running"])),
        c("serve-missing-out", |_| {}, &["serve", "nope"], refused(&["boot.ipxe"])),
        c("serve-bad-listen", |e| e.write("bundle/boot.ipxe", "#!ipxe\n"), &["serve", "bundle", "--listen", "nonsense"], refused(&["nonsense"])),
        c("unknown-verb", |_| {}, &["frobnicate"], refused(&["frobnicate"])),
        c("import-no-file", |_| {}, &["fetch", "--import"], refused(&["--import"])),
        c("jobs-not-a-number", |_| {}, &["build", R, "-j", "many"], refused(&["many"])),
        c("help-build", |_| {}, &["build", "--help"], ok(&["Usage"])),
        c("help-plan", |_| {}, &["plan", "--help"], ok(&["Usage"])),
        c("help-fetch", |_| {}, &["fetch", "--help"], ok(&["--import"])),
        c("help-lock", |_| {}, &["lock", "--help"], ok(&["Usage"])),
        c("help-run", |_| {}, &["run", "--help"], ok(&["--until-ready"])),
        c("help-serve", |_| {}, &["serve", "--help"], ok(&["--listen"])),
        c("help-matrix", |_| {}, &["matrix", "--help"], ok(&["Usage"])),
        c("help-kconfig", |_| {}, &["kconfig", "check", "--help"], ok(&["Usage"])),
        c("help-node", |_| {}, &["node", "check", "--help"], ok(&["Usage"])),
        c("help-scst", |_| {}, &["scst", "plan", "--help"], ok(&["Usage"])),
        c("help-cluster", |_| {}, &["cluster", "render", "--help"], ok(&["--secrets"])),
        c("help-keygen", |_| {}, &["keygen", "--help"], ok(&["Usage"])),
        c("help-sign", |_| {}, &["sign", "--help"], ok(&["Usage"])),
        c("help-verify-image", |_| {}, &["verify-image", "--help"], ok(&["Usage"])),
    ]
}

/// After a build of an edited `path` kernel tree: the manifest records the tree's
/// new hash (not the lock's), and the lock still holds the old one.
fn manifest_records_the_tree(e: &Env) -> Result<(), String> {
    let m: serde_json::Value =
        serde_json::from_str(&e.read("out/test/manifest.json")?).map_err(|err| err.to_string())?;
    let lock = e.read("recipes/test.lock")?;
    let built = m["kernel"]["source-sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if built.is_empty() || lock.contains(&built) {
        return Err(format!(
            "the manifest records the lock's kernel hash {built}, not the edited tree's"
        ));
    }
    Ok(())
}

// --- case description ----------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// A clear error before anything is written: the project, its cache blobs and
    /// outputs stay as they were.
    Refused,
    /// A clear error (stages may have run and been cached).
    Fails,
    /// Success.
    Ok,
}

/// A check after a successful run.
type Check = fn(&Env) -> Result<(), String>;

struct Case {
    id: &'static str,
    setup: fn(&Env),
    args: &'static [&'static str],
    want: Want,
    words: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    check: Option<Check>,
    timeout: u64,
}

fn c(
    id: &'static str,
    setup: fn(&Env),
    args: &'static [&'static str],
    (want, words): (Want, &'static [&'static str]),
) -> Case {
    Case {
        id,
        setup,
        args,
        want,
        words,
        env: &[],
        check: None,
        timeout: 30,
    }
}

impl Case {
    fn env(mut self, env: &'static [(&'static str, &'static str)]) -> Case {
        self.env = env;
        self
    }
    fn check(mut self, f: Check) -> Case {
        self.check = Some(f);
        self
    }
    fn timeout(mut self, secs: u64) -> Case {
        self.timeout = secs;
        self
    }
}

fn refused(words: &'static [&'static str]) -> (Want, &'static [&'static str]) {
    (Want::Refused, words)
}
fn fails(words: &'static [&'static str]) -> (Want, &'static [&'static str]) {
    (Want::Fails, words)
}
fn ok(words: &'static [&'static str]) -> (Want, &'static [&'static str]) {
    (Want::Ok, words)
}

// --- the environment of one case ---------------------------------------------------

/// One case's world: `parent/project-*` (the fake project) and `parent/outside`.
struct Env {
    world: World,
    outside: PathBuf,
    url: String,
    sha: String,
    bin: PathBuf,
}

impl Env {
    fn new(url: &str, sha: &str, bin: &Path) -> Env {
        let world = World::new();
        Env {
            outside: world.outside.clone(),
            world,
            url: url.to_string(),
            sha: sha.to_string(),
            bin: bin.to_path_buf(),
        }
    }

    fn root(&self) -> &Path {
        self.world.root()
    }

    /// `{outside}`, `{root}`, `{url}`, `{sha}` expanded.
    fn x(&self, s: &str) -> String {
        s.replace("{outside}", &self.outside.display().to_string())
            .replace("{root}", &self.root().display().to_string())
            .replace("{url}", &self.url)
            .replace("{sha}", &self.sha)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(self.x(rel))
    }

    fn recipe_text(&self) -> String {
        std::fs::read_to_string(self.world.project.recipe()).expect("recipe")
    }

    fn set_recipe(&self, t: &str) {
        std::fs::write(self.world.project.recipe(), t).expect("write recipe");
    }

    /// Replaces `old` (which must be there) in the recipe.
    fn sub(&self, old: &str, new: &str) {
        let (old, new) = (self.x(old), self.x(new));
        let t = self.recipe_text();
        assert!(t.contains(&old), "setup: `{old}` not in the recipe:\n{t}");
        self.set_recipe(&t.replacen(&old, &new, 1));
    }

    /// Replaces every `old` in a project file.
    fn sub_file(&self, rel: &str, old: &str, new: &str) {
        let p = self.path(rel);
        let t = std::fs::read_to_string(&p).expect("read");
        assert!(t.contains(old), "setup: `{old}` not in {rel}");
        std::fs::write(&p, t.replace(old, new)).expect("write");
    }

    /// A top-level line (before any table).
    fn top(&self, line: &str) {
        self.set_recipe(&format!("{}\n{}", self.x(line), self.recipe_text()));
    }

    /// A line in [kernel].
    fn kernel(&self, line: &str) {
        self.sub(KLAST, &format!("{KLAST}\n{line}"));
    }

    /// A line in [userland].
    fn userland(&self, line: &str) {
        self.sub(ULINE, &format!("{ULINE}\n{line}"));
    }

    /// Text at the end of the recipe (new tables).
    fn append(&self, text: &str) {
        self.set_recipe(&format!("{}{}", self.recipe_text(), self.x(text)));
    }

    /// The kernel source as a URL source with these mirrors and `{sha}`.
    fn url_source(&self, mirrors: &[&str]) {
        let list: Vec<String> = mirrors
            .iter()
            .map(|m| format!("\"{}\"", self.x(m)))
            .collect();
        self.sub(
            SRC,
            &format!(
                "source = {{ url = [{}], sha256 = \"{{sha}}\" }}",
                list.join(", ")
            ),
        );
    }

    fn node_append(&self, text: &str) {
        let p = self.path("recipes/nodes/node.toml");
        let t = std::fs::read_to_string(&p).expect("node");
        std::fs::write(&p, format!("{t}{}", self.x(text))).expect("node");
    }

    fn write(&self, rel: &str, data: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, data).expect("write");
    }

    fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.path(rel)).expect("mkdir");
    }

    fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path(rel)).expect("remove");
    }

    fn copy(&self, from: &str, to: &str) {
        std::fs::copy(self.path(from), self.path(to)).expect("copy");
    }

    fn copy_dir(&self, from: &str, to: &str) {
        let st = Command::new("cp")
            .arg("-a")
            .arg(self.path(from))
            .arg(self.path(to))
            .status()
            .expect("cp");
        assert!(st.success());
    }

    fn chmod(&self, rel: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }

    fn link(&self, rel: &str, target: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(self.x(target), &p).expect("symlink");
    }

    fn fifo(&self, rel: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        let st = Command::new("mkfifo").arg(&p).status().expect("mkfifo");
        assert!(st.success());
    }

    /// A two-node cluster file and its secrets in the project root.
    fn cluster(&self) {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/cluster-lio.toml");
        std::fs::copy(fixture, self.path("cluster.toml")).expect("cluster fixture");
        self.sf(&[
            "cluster",
            "secrets",
            "--cluster",
            "cluster.toml",
            "--out",
            "cluster.secrets.toml",
        ]);
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.current_dir(self.root());
        c.env("SANFORGE_CACHE", &self.world.project.cache);
        c.env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"));
        c.env("SANFORGE_PROGRESS", "plain");
        for v in [
            "SANFORGE_FETCH_DEADLINE",
            "SANFORGE_FETCH_STALL",
            "SANFORGE_FETCH_MIN_RATE",
            "FAKE_KERNEL_SLEEP",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// Runs sanforge as part of a setup; it must succeed.
    fn sf(&self, args: &[&str]) {
        let args: Vec<String> = args.iter().map(|a| self.x(a)).collect();
        let o = self.command().args(&args).output().expect("run sanforge");
        assert!(
            o.status.success(),
            "setup `sanforge {}` failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn read(&self, rel: &str) -> Result<String, String> {
        std::fs::read_to_string(self.path(rel)).map_err(|e| format!("cannot read {rel}: {e}"))
    }

    fn present(&self, rel: &str) -> Result<(), String> {
        match std::fs::symlink_metadata(self.path(rel)) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("{rel} is missing")),
        }
    }

    fn absent(&self, rel: &str) -> Result<(), String> {
        match std::fs::symlink_metadata(self.path(rel)) {
            Ok(_) => Err(format!("{rel} is still there")),
            Err(_) => Ok(()),
        }
    }

    fn blobs(&self, n: usize) -> Result<(), String> {
        let got = std::fs::read_dir(self.world.project.cache.join("blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0);
        if got == n {
            Ok(())
        } else {
            Err(format!("{got} blobs in the cache, expected {n}"))
        }
    }
}

// --- running and classifying -----------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    ClearError,
    Ok,
    Wrong,
    Panic,
    Hang,
}

/// What the project may change when nothing may be written: the cache's stage
/// entries and temporary files are the cache's business.
const PROJECT_SKIP: &[&str] = &["cache/stages", "cache/tmp"];

struct Row {
    id: &'static str,
    verb: String,
    want: Want,
    outcome: Outcome,
    detail: String,
    secs: f64,
}

fn run_case(case: &Case, url: &str, sha: &str, bin: &Path) -> Row {
    let env = Env::new(url, sha, bin);
    (case.setup)(&env);
    let outside_before = snapshot(&env.outside, &[]);
    let project_before = snapshot(env.root(), PROJECT_SKIP);
    let args: Vec<String> = case.args.iter().map(|a| env.x(a)).collect();
    let dir = env.root().to_path_buf();
    let stdout_path = env.world.parent.path().join("stdout");
    let stderr_path = env.world.parent.path().join("stderr");
    let mut cmd = env.command();
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .current_dir(&dir)
        .process_group(0);
    for (k, v) in case.env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn sanforge");
    let deadline = started + Duration::from_secs(case.timeout);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            // The whole process group the child leads (make, tar, …).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let secs = started.elapsed().as_secs_f64();
    let mut out = String::new();
    let mut err = String::new();
    let _ = std::fs::File::open(&stdout_path).and_then(|mut f| f.read_to_string(&mut out));
    let _ = std::fs::File::open(&stderr_path).and_then(|mut f| f.read_to_string(&mut err));
    let all = format!("{out}{err}");
    let verb = case
        .args
        .iter()
        .take(2)
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    // The error and its innermost cause, on one line.
    let first_error = {
        let head = err
            .lines()
            .find(|l| l.starts_with("error"))
            .or_else(|| all.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("");
        let cause = err
            .lines()
            .rfind(|l| l.trim_start().starts_with("caused by:"));
        let line = match cause {
            Some(c) => format!("{head} / {}", c.trim_start()),
            None => head.to_string(),
        };
        line.chars().take(220).collect::<String>()
    };
    let row = |outcome, detail: String| Row {
        id: case.id,
        verb: verb.clone(),
        want: case.want,
        outcome,
        detail,
        secs,
    };
    let Some(status) = status else {
        return row(Outcome::Hang, format!("no answer after {}s", case.timeout));
    };
    use std::os::unix::process::ExitStatusExt;
    if all.contains("panicked at") || status.code() == Some(101) || status.signal().is_some() {
        let line = all
            .lines()
            .find(|l| l.contains("panicked"))
            .unwrap_or("killed by a signal")
            .to_string();
        return row(Outcome::Panic, line);
    }
    // Nothing outside the project may ever change.
    let outside = diff(&outside_before, &snapshot(&env.outside, &[]));
    if !outside.is_empty() {
        return row(
            Outcome::Wrong,
            format!("wrote outside the project: {}", outside.join(", ")),
        );
    }
    let missing: Vec<&str> = case
        .words
        .iter()
        .copied()
        .filter(|w| !all.contains(&env.x(w)))
        .collect();
    match (case.want, status.success()) {
        (Want::Ok, true) => {
            if !missing.is_empty() {
                return row(
                    Outcome::Wrong,
                    format!("succeeded, but without {missing:?}"),
                );
            }
            if let Some(check) = case.check {
                if let Err(e) = check(&env) {
                    return row(Outcome::Wrong, format!("succeeded, but {e}"));
                }
            }
            row(Outcome::Ok, first_line(&out))
        }
        (Want::Ok, false) => row(Outcome::Wrong, format!("failed: {first_error}")),
        (_, true) => row(
            Outcome::Wrong,
            format!(
                "succeeded (expected an error naming {:?}): {}",
                case.words,
                first_line(&out)
            ),
        ),
        (want, false) => {
            if !missing.is_empty() {
                return row(
                    Outcome::Wrong,
                    format!("error does not name {missing:?}: {first_error}"),
                );
            }
            if want == Want::Refused {
                let changed = diff(&project_before, &snapshot(env.root(), PROJECT_SKIP));
                if !changed.is_empty() {
                    return row(
                        Outcome::Wrong,
                        format!("refused, but changed the project: {}", changed.join(", ")),
                    );
                }
            }
            row(Outcome::ClearError, first_error)
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(120)
        .collect()
}

#[test]
#[ignore = "the whole bad-input corpus takes a few minutes: benches/badinputs.sh runs it"]
fn bad_input_corpus() {
    let body: Vec<u8> = (0..4096u32).map(|i| (i * 13 % 251) as u8).collect();
    let sha = sanforge::util::hash::sha256_bytes(&body);
    let srv = Server::start_threaded(vec![
        ("/good", Route::Ok(body.clone())),
        (
            "/trickle",
            Route::Trickle {
                body: body.clone(),
                chunk: 1,
                every: Duration::from_millis(1000),
            },
        ),
        (
            "/long",
            Route::Trickle {
                body: (0..200_000u32).map(|i| i as u8).collect(),
                chunk: 100,
                every: Duration::from_millis(100),
            },
        ),
        (
            "/silent",
            Route::Silent {
                len: body.len(),
                for_: Duration::from_secs(120),
            },
        ),
    ]);
    let url = srv.url("");
    let url = url.trim_end_matches('/').to_string();
    let own = env!("CARGO_BIN_EXE_sanforge");
    let bin = std::env::var_os("SANFORGE_BADINPUTS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(own));
    let only = std::env::var("SANFORGE_BADINPUTS_ONLY").ok();
    let all = cases();
    let mut ids = std::collections::BTreeSet::new();
    for c in &all {
        assert!(ids.insert(c.id), "case id {} is used twice", c.id);
    }
    let mut rows = Vec::new();
    println!(
        "bad-input corpus: {} cases, binary {}",
        all.len(),
        bin.display()
    );
    for case in all
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.id.contains(o)))
    {
        let r = run_case(case, &url, &sha, &bin);
        println!(
            "{:<28} {:<16} {:<8} {:<11} {:>5.1}s  {}",
            r.id,
            r.verb,
            format!("{:?}", r.want).to_lowercase(),
            format!("{:?}", r.outcome).to_lowercase(),
            r.secs,
            r.detail
        );
        rows.push(r);
    }
    let count = |o: Outcome| rows.iter().filter(|r| r.outcome == o).count();
    println!();
    println!(
        "{:<6} {:<13} {:<4} {:<6} {:<7} {:<6}",
        "cases", "clear errors", "ok", "wrong", "panics", "hangs"
    );
    println!(
        "{:<6} {:<13} {:<4} {:<6} {:<7} {:<6}",
        rows.len(),
        count(Outcome::ClearError),
        count(Outcome::Ok),
        count(Outcome::Wrong),
        count(Outcome::Panic),
        count(Outcome::Hang)
    );
    let bad: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Wrong | Outcome::Panic | Outcome::Hang))
        .collect();
    if !bad.is_empty() {
        println!("\nnot right:");
        for r in &bad {
            println!("  {} ({:?}): {}", r.id, r.outcome, r.detail);
        }
    }
    if bin == Path::new(own) {
        assert!(
            bad.is_empty(),
            "{} cases are wrong, panic or hang",
            bad.len()
        );
    }
}
