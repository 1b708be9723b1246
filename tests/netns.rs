//! The netlink layer against a real kernel: each test makes a network namespace,
//! puts veth pairs in it, applies a node config there with
//! `sanforge-init --netns NAME network FILE` (RealSys, rtnetlink) and reads the result
//! back with `ip -d -j link`, `ip -j addr` and `ip -j route`. Only documentation
//! addresses (192.0.2.0/24, 2001:db8::/32) are used, and no packet leaves the
//! namespace, which is deleted at the end.
//!
//! Needs root (network namespaces): as another user the tests fail and say so.

use serde_json::Value;
use std::process::Command;

/// A network namespace that is deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let uid = Command::new("id").arg("-u").output().unwrap();
        let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
        assert_eq!(
            uid, "0",
            "these tests need root to make network namespaces (`ip netns add`); run them as root"
        );
        let name = format!("sf-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("cannot run `ip` (iproute2): install it");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns(name)
    }

    /// Runs `ip -n NAME ARGS…`; panics with its stderr when it fails.
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip -n {} {}: {}",
            self.0,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let text = self.ip(args);
        match serde_json::from_str::<Value>(&text).unwrap() {
            Value::Array(a) => a,
            v => panic!("not a JSON array: {v}"),
        }
    }

    /// A veth pair, the peer up (so that `name` gets carrier once up).
    fn veth(&self, name: &str, mac: &str, peer: &str) {
        self.ip(&[
            "link", "add", name, "address", mac, "type", "veth", "peer", "name", peer,
        ]);
        self.ip(&["link", "set", peer, "mtu", "9000", "up"]);
    }

    /// Whether the namespace's kernel can make a link of this kind.
    fn can_make(&self, kind: &str) -> bool {
        let probe = format!("sfprobe{}", kind.len());
        let ok = Command::new("ip")
            .args(["-n", &self.0, "link", "add", &probe, "type", kind])
            .output()
            .unwrap()
            .status
            .success();
        let _ = Command::new("ip")
            .args(["-n", &self.0, "link", "del", &probe])
            .output();
        ok
    }

    /// `sanforge-init --netns NAME network FILE` with `node` as FILE.
    fn apply(&self, node: &str) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("node.toml");
        std::fs::write(&f, node).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
            .args(["--netns", &self.0, "network"])
            .arg(&f)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn link(&self, name: &str) -> Value {
        self.json(&["-d", "-j", "link", "show", "dev", name])
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no link {name}"))
    }

    /// `ADDR/LEN` of each global address of `dev`, with its flags.
    fn addrs(&self, dev: &str) -> Vec<(String, Value)> {
        let info = self
            .json(&["-j", "addr", "show", "dev", dev])
            .into_iter()
            .next()
            .unwrap();
        info["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["scope"] == "global")
            .map(|a| {
                (
                    format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]),
                    a.clone(),
                )
            })
            .collect()
    }

    /// `DST via GW dev DEV proto P` of each route of a family, kernel routes left out.
    fn routes(&self, family: &str) -> Vec<String> {
        self.json(&[family, "-j", "route", "show"])
            .into_iter()
            .filter(|r| r["protocol"] != "kernel")
            .map(|r| {
                let mut s = r["dst"].as_str().unwrap().to_string();
                if let Some(g) = r["gateway"].as_str() {
                    s.push_str(&format!(" via {g}"));
                }
                s.push_str(&format!(
                    " dev {} proto {}",
                    r["dev"].as_str().unwrap(),
                    r["protocol"].as_str().unwrap()
                ));
                s
            })
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn links_found_by_mac_renamed_with_mtu_9000_ipv4_ipv6_and_routes() {
    let ns = Netns::new("veth");
    ns.veth("sfa0", "02:00:00:00:0a:01", "sfp0");
    ns.veth("sfa1", "02:00:00:00:0a:02", "sfp1");
    let node = r#"hostname = "nl1"
[[network.interfaces]]
mac = "02:00:00:00:0a:01"
name = "stor0"
mtu = 9000
addresses = ["192.0.2.10/24", "192.0.2.11/24", "2001:db8:10::10/64"]
[[network.interfaces]]
mac = "02:00:00:00:0a:02"
addresses = ["2001:db8:20::10/64"]
[[network.routes]]
to = "192.0.2.192/26"
via = "192.0.2.1"
[[network.routes]]
to = "default"
via = "2001:db8:10::1"
[[network.routes]]
to = "2001:db8:99::/48"
dev = "02:00:00:00:0a:02"
"#;
    let (ok, out) = ns.apply(node);
    assert!(ok, "{out}");
    assert!(out.contains("interface stor0 configured"), "{out}");

    let stor0 = ns.link("stor0");
    assert_eq!(stor0["address"], "02:00:00:00:0a:01");
    assert_eq!(stor0["mtu"], 9000);
    assert!(stor0["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "LOWER_UP"));
    // The MAC-only interface keeps the kernel's name.
    assert_eq!(ns.link("sfa1")["operstate"], "UP");

    let a = ns.addrs("stor0");
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["192.0.2.10/24", "192.0.2.11/24", "2001:db8:10::10/64"]
    );
    // The secondary IPv4 address is labelled; the IPv6 one skipped DAD (usable now).
    assert_eq!(a[1].1["label"], "stor0:1");
    assert_eq!(a[2].1["nodad"], true, "{}", a[2].1);
    assert!(a[2].1.get("tentative").is_none(), "{}", a[2].1);

    assert_eq!(
        ns.routes("-4"),
        ["192.0.2.192/26 via 192.0.2.1 dev stor0 proto static"]
    );
    assert_eq!(
        ns.routes("-6"),
        [
            "2001:db8:99::/48 dev sfa1 proto static",
            "default via 2001:db8:10::1 dev stor0 proto static"
        ]
    );

    // Applying again changes nothing and fails nothing (addresses and routes exist).
    let (ok, out) = ns.apply(node);
    assert!(ok, "{out}");
}

#[test]
fn the_largest_mtu_applies_and_a_missing_interface_is_named() {
    let ns = Netns::new("mtu");
    ns.veth("sfa0", "02:00:00:00:0b:01", "sfp0");
    let (ok, out) = ns.apply(
        "hostname = \"nl2\"\n[[network.interfaces]]\nname = \"sfa0\"\nmtu = 65535\n[[network.interfaces]]\nname = \"sfmissing\"\n",
    );
    assert!(!ok, "{out}");
    // veth takes 65535; the missing interface is named after the bounded wait.
    assert_eq!(ns.link("sfa0")["mtu"], 65535);
    assert!(
        out.contains("interface sfmissing did not appear within 2 s"),
        "{out}"
    );
}

/// Bonds and VLANs need CONFIG_BONDING and CONFIG_VLAN_8021Q, which the kernel these
/// tests run on in CI lacks (it reports "Unknown device type"); on such a kernel this
/// test fails and names what is missing, so it is run on purpose:
/// `cargo test --test netns -- --ignored`.
#[test]
#[ignore = "needs a kernel with CONFIG_BONDING and CONFIG_VLAN_8021Q (run with --ignored)"]
fn bond_active_backup_and_vlan_with_mtu_9000_read_back() {
    let ns = Netns::new("bond");
    for kind in ["bond", "vlan"] {
        if kind == "vlan" {
            // A VLAN needs a link to be probed on.
            ns.veth("sfq0", "02:00:00:00:0c:09", "sfq1");
            let ok = Command::new("ip")
                .args([
                    "-n", &ns.0, "link", "add", "link", "sfq0", "name", "sfq0.9", "type", "vlan",
                    "id", "9",
                ])
                .output()
                .unwrap()
                .status
                .success();
            assert!(
                ok,
                "this kernel cannot make VLANs: it needs CONFIG_VLAN_8021Q"
            );
            ns.ip(&["link", "del", "sfq0"]);
        } else {
            assert!(
                ns.can_make(kind),
                "this kernel cannot make bonds: it needs CONFIG_BONDING"
            );
        }
    }
    ns.veth("sfa0", "02:00:00:00:0c:01", "sfp0");
    ns.veth("sfa1", "02:00:00:00:0c:02", "sfp1");
    let node = r#"hostname = "nl3"
[[network.interfaces]]
mac = "02:00:00:00:0c:01"
name = "stor0"
[[network.bonds]]
name = "bond0"
slaves = ["stor0", "02:00:00:00:0c:02"]
mode = "active-backup"
primary = "stor0"
miimon = 100
mtu = 9000
addresses = ["192.0.2.20/24", "2001:db8:30::20/64"]
[[network.vlans]]
link = "bond0"
id = 100
addresses = ["192.0.2.140/28", "2001:db8:100::20/64"]
[[network.routes]]
to = "192.0.2.192/26"
via = "192.0.2.129"
dev = "bond0.100"
[[network.routes]]
to = "default"
via = "2001:db8:30::1"
"#;
    let (ok, out) = ns.apply(node);
    assert!(ok, "{out}");

    let bond = ns.link("bond0");
    assert_eq!(bond["mtu"], 9000);
    let info = &bond["linkinfo"];
    assert_eq!(info["info_kind"], "bond", "{bond}");
    assert_eq!(info["info_data"]["mode"], "active-backup", "{bond}");
    assert_eq!(info["info_data"]["miimon"], 100, "{bond}");
    assert_eq!(info["info_data"]["primary"], "stor0", "{bond}");
    for slave in ["stor0", "sfa1"] {
        let l = ns.link(slave);
        assert_eq!(l["master"], "bond0", "{l}");
        assert_eq!(l["mtu"], 9000, "{l}");
        assert_eq!(l["linkinfo"]["info_slave_kind"], "bond", "{l}");
    }
    let vlan = ns.link("bond0.100");
    assert_eq!(vlan["linkinfo"]["info_kind"], "vlan", "{vlan}");
    assert_eq!(vlan["linkinfo"]["info_data"]["id"], 100, "{vlan}");
    assert_eq!(vlan["link"], "bond0", "{vlan}");
    assert_eq!(vlan["mtu"], 9000, "{vlan}");

    let names = |dev| -> Vec<String> { ns.addrs(dev).into_iter().map(|(n, _)| n).collect() };
    assert_eq!(names("bond0"), ["192.0.2.20/24", "2001:db8:30::20/64"]);
    assert_eq!(
        names("bond0.100"),
        ["192.0.2.140/28", "2001:db8:100::20/64"]
    );
    assert_eq!(
        ns.routes("-4"),
        ["192.0.2.192/26 via 192.0.2.129 dev bond0.100 proto static"]
    );
    assert_eq!(
        ns.routes("-6"),
        ["default via 2001:db8:30::1 dev bond0 proto static"]
    );
}
