#![allow(clippy::unwrap_used)]
use super::*;
use crate::config::node::NodeConfig;
use crate::init::Logger;
use crate::sys::{FakeSys, Sys};
use std::path::Path;

/// A tree whose /sys/class/net has these (name, MAC) links.
fn tree(links: &[(&str, &str)]) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for (name, mac) in links {
        let d = t.path().join("sys/class/net").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("address"), format!("{mac}\n")).unwrap();
    }
    t
}

/// Runs the network step of `node` against `sys`: (ok, log lines, ops).
fn run(sys: &mut FakeSys, node: &str) -> (bool, Vec<String>, Vec<String>) {
    let node = NodeConfig::parse(Path::new("n.toml"), node).unwrap();
    let mut init = Init::new(sys, Logger::capture());
    init.node = Some(node);
    let ok = configure_network(&mut init).is_ok() & wait_pending_carrier(&mut init).is_ok();
    let log = init.log.lines().to_vec();
    drop(init);
    (ok, log, sys.ops.iter().map(ToString::to_string).collect())
}

const BOND_VLAN: &str = r#"hostname = "san1"
[[network.interfaces]]
mac = "52:54:00:00:00:01"
name = "stor0"
[[network.interfaces]]
mac = "52:54:00:00:00:02"
name = "stor1"
[[network.bonds]]
name = "bond0"
slaves = ["stor0", "stor1"]
primary = "stor0"
mtu = 9000
addresses = ["192.0.2.15/24", "2001:db8::15/64"]
[[network.vlans]]
link = "bond0"
id = 100
addresses = ["192.0.2.130/26", "192.0.2.131/26"]
[[network.routes]]
to = "default"
via = "192.0.2.1"
[[network.routes]]
to = "2001:db8:1::/48"
via = "2001:db8::1"
[[network.routes]]
to = "198.51.100.0/24"
dev = "bond0.100"
"#;

#[test]
fn bond_and_vlan_in_the_kernels_order() {
    let t = tree(&[("ens1", "52:54:00:00:00:01"), ("ens2", "52:54:00:00:00:02")]);
    let mut sys = FakeSys::new(t.path());
    let (ok, log, ops) = run(&mut sys, BOND_VLAN);
    assert!(ok, "{log:?}");
    assert_eq!(
        ops,
        [
            "addr lo 127.0.0.1/8",
            "link_up lo",
            // Found by MAC, renamed.
            "rename ens1 stor0",
            "rename ens2 stor1",
            // Slaves' MTU before the bond's.
            "mtu stor0 9000",
            "mtu stor1 9000",
            "link_add bond0 bond mode=active-backup miimon=100 primary=stor0 mtu=9000",
            "link_down stor0",
            "master stor0 bond0",
            "link_down stor1",
            "master stor1 bond0",
            "link_add bond0.100 vlan link=bond0 id=100",
            "addr bond0 192.0.2.15/24",
            "addr bond0 2001:db8::15/64 nodad",
            "addr bond0.100 192.0.2.130/26",
            "addr bond0.100:1 192.0.2.131/26",
            "link_up stor0",
            "link_up stor1",
            "link_up bond0",
            "link_up bond0.100",
            "route 0.0.0.0/0 via 192.0.2.1",
            "route 2001:db8:1::/48 via 2001:db8::1",
            "route 198.51.100.0/24 dev bond0.100",
        ]
    );
    assert!(
        log.contains(&"bond bond0 configured".to_string()),
        "{log:?}"
    );
    let links = sys.links().unwrap();
    let vlan = links.iter().find(|l| l.name == "bond0.100").unwrap();
    assert_eq!(vlan.mtu, 9000, "a VLAN takes its link's MTU");
    let bond = links.iter().find(|l| l.name == "bond0").unwrap();
    assert!(links
        .iter()
        .filter(|l| l.name.starts_with("stor"))
        .all(|l| l.master == Some(bond.index)));
}

#[test]
fn two_links_swapping_names_go_through_temporary_ones() {
    let t = tree(&[("eth0", "52:54:00:00:00:02"), ("eth1", "52:54:00:00:00:01")]);
    std::fs::write(t.path().join("sys/class/net/eth0/operstate"), "up\n").unwrap();
    let mut sys = FakeSys::new(t.path());
    let node = "hostname = \"n\"\n[[network.interfaces]]\nmac = \"52:54:00:00:00:01\"\nname = \"eth0\"\n[[network.interfaces]]\nmac = \"52:54:00:00:00:02\"\nname = \"eth1\"\n";
    let (ok, log, ops) = run(&mut sys, node);
    assert!(ok, "{log:?}");
    assert_eq!(
        &ops[2..],
        [
            "rename eth1 sfrename0",
            "link_down eth0",
            "rename eth0 sfrename1",
            "rename sfrename0 eth0",
            "rename sfrename1 eth1",
            "link_up eth0",
            "link_up eth1",
        ]
    );
    let links = sys.links().unwrap();
    let mac_of = |n: &str| links.iter().find(|l| l.name == n).unwrap().mac.clone();
    assert_eq!(mac_of("eth0").as_deref(), Some("52:54:00:00:00:01"));
}

#[test]
fn a_missing_slave_leaves_a_bond_with_the_other() {
    let t = tree(&[("ens1", "52:54:00:00:00:01")]);
    let mut sys = FakeSys::new(t.path());
    let (ok, log, ops) = run(&mut sys, BOND_VLAN);
    assert!(!ok);
    assert!(
        log.iter()
            .any(|l| l == "warning: interface stor1 did not appear within 2 s"),
        "{log:?}"
    );
    assert!(ops.contains(&"master stor0 bond0".to_string()), "{ops:?}");
    assert!(!ops.iter().any(|o| o.contains("stor1")), "{ops:?}");
    assert!(ops.contains(&"link_up bond0.100".to_string()), "{ops:?}");
}

#[test]
fn no_bonding_driver_names_the_kernel_option_and_skips_what_depends_on_it() {
    let t = tree(&[("ens1", "52:54:00:00:00:01"), ("ens2", "52:54:00:00:00:02")]);
    let mut sys = FakeSys::new(t.path());
    sys.fail.push(("link_add bond0 ".into(), libc::EOPNOTSUPP));
    let (ok, log, ops) = run(&mut sys, BOND_VLAN);
    assert!(!ok);
    let w: Vec<&String> = log.iter().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(w.len(), 1, "{log:?}");
    assert!(w[0].contains("cannot create link bond0") && w[0].contains("CONFIG_BONDING"));
    assert!(
        !ops.iter()
            .any(|o| o.contains("bond0.100") || o.starts_with("master")),
        "{ops:?}"
    );
    // The slaves still come up; the routes that do not need the bond go in.
    assert!(ops.contains(&"link_up stor0".to_string()));
    assert!(ops.contains(&"route 0.0.0.0/0 via 192.0.2.1".to_string()));
}

#[test]
fn a_link_without_carrier_is_a_warning_after_the_wait() {
    let t = tree(&[("eth0", "52:54:00:00:00:01")]);
    std::fs::write(t.path().join("sys/class/net/eth0/carrier"), "0\n").unwrap();
    let mut sys = FakeSys::new(t.path());
    let node = "hostname = \"n\"\n[[network.interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.15/24\"]\n";
    let (ok, log, _) = run(&mut sys, node);
    assert!(!ok);
    assert!(
        log.iter()
            .any(|l| l == "warning: eth0: no carrier after 5 s (cable, switch port or peer down?)"),
        "{log:?}"
    );
}

#[test]
fn an_mtu_the_device_cannot_take_says_its_maximum() {
    let t = tree(&[("eth0", "52:54:00:00:00:01")]);
    std::fs::write(t.path().join("sys/class/net/eth0/max_mtu"), "1500\n").unwrap();
    let mut sys = FakeSys::new(t.path());
    let node = "hostname = \"n\"\n[[network.interfaces]]\nname = \"eth0\"\nmtu = 9000\n";
    let (ok, log, _) = run(&mut sys, node);
    assert!(!ok);
    assert!(
        log.iter()
            .any(|l| l.contains("cannot set mtu of eth0 to 9000")
                && l.ends_with("eth0 takes an mtu of at most 1500")),
        "{log:?}"
    );
}

#[test]
fn dhcp_runs_udhcpc_supervised_with_the_init_as_its_script() {
    let t = tree(&[("eth0", "52:54:00:00:00:01")]);
    let mut sys = FakeSys::new(t.path());
    let node = "hostname = \"lab1\"\n[[network.interfaces]]\nname = \"eth0\"\ndhcp = true\n";
    let (ok, log, ops) = run(&mut sys, node);
    // No lease in the fake: the boot goes on after DHCP_WAIT, with a warning.
    assert!(!ok);
    assert!(
        log.iter()
            .any(|l| l == "warning: dhcp: no lease on eth0 within 10 s; the client keeps asking"),
        "{log:?}"
    );
    assert_eq!(
        ops.last().unwrap(),
        "spawn /bin/busybox udhcpc -f -R -i eth0 -s /init -t 3 -T 2 -A 5 -x hostname:lab1"
    );
}

#[test]
fn dhcp_events_apply_replace_and_remove_the_lease() {
    let t = tree(&[("eth0", "52:54:00:00:00:01")]);
    let mut sys = FakeSys::new(t.path());
    let mut log = Logger::capture();
    let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let bound = env(&[
        ("interface", "eth0"),
        ("ip", "192.0.2.50"),
        ("subnet", "255.255.255.0"),
        ("router", "192.0.2.1 192.0.2.2"),
        ("lease", "600"),
    ]);
    dhcp_event(
        &mut sys,
        &mut log,
        "deconfig",
        &env(&[("interface", "eth0")]),
    )
    .unwrap();
    dhcp_event(&mut sys, &mut log, "bound", &bound).unwrap();
    // Same lease renewed: nothing removed.
    dhcp_event(&mut sys, &mut log, "renew", &bound).unwrap();
    let moved = env(&[
        ("interface", "eth0"),
        ("ip", "192.0.2.60"),
        ("mask", "25"),
        ("router", "192.0.2.1"),
    ]);
    dhcp_event(&mut sys, &mut log, "renew", &moved).unwrap();
    dhcp_event(
        &mut sys,
        &mut log,
        "deconfig",
        &env(&[("interface", "eth0")]),
    )
    .unwrap();
    let ops: Vec<String> = sys.ops.iter().map(ToString::to_string).collect();
    let state = "/run/sanforge/dhcp/eth0";
    assert_eq!(
        ops,
        [
            "link_up eth0".to_string(),
            "addr eth0 192.0.2.50/24".into(),
            "route 0.0.0.0/0 via 192.0.2.1 dev eth0 proto dhcp".into(),
            "mkdir /run/sanforge/dhcp".into(),
            format!("write_durable {state} (39 bytes)"),
            "addr eth0 192.0.2.50/24".into(),
            "route 0.0.0.0/0 via 192.0.2.1 dev eth0 proto dhcp".into(),
            "mkdir /run/sanforge/dhcp".into(),
            format!("write_durable {state} (39 bytes)"),
            "addr_del eth0 192.0.2.50/24".into(),
            "addr eth0 192.0.2.60/25".into(),
            "route 0.0.0.0/0 via 192.0.2.1 dev eth0 proto dhcp".into(),
            "mkdir /run/sanforge/dhcp".into(),
            format!("write_durable {state} (39 bytes)"),
            "route_del 0.0.0.0/0 via 192.0.2.1 dev eth0 proto dhcp".into(),
            "addr_del eth0 192.0.2.60/25".into(),
            format!("remove {state}"),
            "link_up eth0".into(),
        ]
    );
    assert_eq!(
        log.lines()[1],
        "dhcp: eth0 bound 192.0.2.50/24, router 192.0.2.1, lease 600 s"
    );
    assert!(dhcp_event(&mut sys, &mut log, "bound", &env(&[("interface", "../x")])).is_err());
}

#[test]
fn assumed_links_cover_interfaces_and_unlisted_slaves() {
    let node = NodeConfig::parse(
        Path::new("n.toml"),
        "hostname = \"n\"\n[[network.interfaces]]\nmac = \"52:54:00:00:00:09\"\n[[network.bonds]]\nname = \"bond0\"\nslaves = [\"eth1\", \"52:54:00:00:00:09\"]\n",
    )
    .unwrap();
    let names: Vec<String> = assumed_links(&node.network)
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["lo", "52:54:00:00:00:09", "eth1"]);
}
