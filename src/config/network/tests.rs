use crate::config::node::NodeConfig;
use std::path::Path;

/// The bond + VLAN + MTU 9000 example of the README.
const GOOD: &str = r#"hostname = "san1"

[[network.interfaces]]
mac = "52:54:00:12:34:01"
name = "stor0"
[[network.interfaces]]
mac = "52:54:00:12:34:02"
name = "stor1"
[[network.interfaces]]
name = "eth0"
dhcp = true

[[network.bonds]]
name = "bond0"
slaves = ["stor0", "52:54:00:12:34:02"]
mode = "active-backup"
primary = "stor0"
miimon = 100
mtu = 9000
addresses = ["192.0.2.15/24", "2001:db8::15/64"]

[[network.vlans]]
link = "bond0"
id = 100
addresses = ["192.0.2.130/26", "2001:db8:100::15/64"]

[[network.routes]]
to = "2001:db8:1::/48"
via = "2001:db8::1"
[[network.routes]]
to = "198.51.100.0/24"
via = "192.0.2.129"
dev = "bond0.100"
[[network.routes]]
to = "default"
via = "fe80::1"
dev = "bond0"
"#;

fn errors(text: &str) -> Vec<(usize, usize, String)> {
    match NodeConfig::parse(Path::new("n.toml"), text) {
        Ok(_) => Vec::new(),
        Err(e) => std::iter::once(&e)
            .chain(e.more.iter())
            .map(|e| (e.line, e.column, e.message.clone()))
            .collect(),
    }
}

/// The one error of `text`, which must be at `line` and say `what`.
fn one_error(text: &str, line: usize, what: &str) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].0, line, "{e:#?}");
    assert!(e[0].2.contains(what), "`{what}` not in {e:#?}");
}

/// `text` has an error at `line` that says `what` (and maybe others that follow
/// from it).
fn has_error(text: &str, line: usize, what: &str) {
    let e = errors(text);
    assert!(
        e.iter().any(|x| x.0 == line && x.2.contains(what)),
        "no `{what}` at line {line} in {e:#?}"
    );
}

#[test]
fn bond_vlan_ipv6_and_dhcp_config_is_valid() {
    let n = NodeConfig::parse(Path::new("n.toml"), GOOD).unwrap();
    assert_eq!(n.network.vlan_name(0).as_deref(), Some("bond0.100"));
    let bond = super::LinkId::Bond(0);
    assert_eq!(n.network.effective_mtu(bond), 9000);
    // The VLAN and the slaves follow the bond's MTU.
    assert_eq!(n.network.effective_mtu(super::LinkId::Vlan(0)), 9000);
    assert_eq!(n.network.effective_mtu(super::LinkId::Interface(1)), 9000);
    assert_eq!(n.network.dhcp_link(), Some(super::LinkId::Interface(2)));
}

#[test]
fn a_bond_without_slaves_is_an_error_at_its_slaves() {
    let t = GOOD.replace("slaves = [\"stor0\", \"52:54:00:12:34:02\"]", "slaves = []");
    let e = errors(&t);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].0, e[0].1), (15, 10), "{e:#?}");
    assert!(e[0].2.contains("bond bond0 has no slaves"), "{e:#?}");
}

#[test]
fn a_slave_in_two_bonds_is_an_error_at_the_second() {
    let t =
        format!("{GOOD}[[network.bonds]]\nname = \"bond1\"\nslaves = [\"52:54:00:12:34:01\"]\n");
    one_error(
        &t,
        40,
        "slave `52:54:00:12:34:01` of bond1 is a slave of bond0 already",
    );
}

#[test]
fn a_slave_with_addresses_or_another_mtu_is_an_error_at_the_interface() {
    let t = GOOD.replace(
        "name = \"stor1\"\n",
        "name = \"stor1\"\naddresses = [\"192.0.2.16/24\"]\nmtu = 1500\n",
    );
    let e = errors(&t);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(
        e[0].2,
        "interface stor1 is a slave of bond0: its addresses belong on bond0"
    );
    assert_eq!(e[0].0, 9);
    assert!(
        e[1].2
            .starts_with("mtu 1500 on stor1 differs from the mtu of its bond bond0 (9000)"),
        "{e:#?}"
    );
}

#[test]
fn vlan_id_out_of_range_and_mtu_above_the_link() {
    has_error(
        &GOOD.replace("id = 100", "id = 4095"),
        24,
        "vlan id 4095 on bond0: expected 1 to 4094",
    );
    has_error(
        &GOOD.replace("id = 100", "id = 0"),
        24,
        "expected 1 to 4094",
    );
    let t = GOOD
        .replace("mtu = 9000\n", "")
        .replace("id = 100\n", "id = 100\nmtu = 9000\n");
    one_error(
        &t,
        24,
        "mtu 9000 on bond0.100 is above the mtu of its link bond0 (1500): the link cannot carry it",
    );
}

#[test]
fn unknown_vlan_link_and_vlan_on_a_slave() {
    let e = errors(&GOOD.replace("link = \"bond0\"", "link = \"bond9\""));
    assert!(
        e.iter().any(|(l, c, m)| (*l, *c) == (23, 8)
            && m == "vlan link `bond9`: no interface or bond of that name or MAC in the config"),
        "{e:#?}"
    );
    let e = errors(&GOOD.replace("link = \"bond0\"", "link = \"stor1\""));
    assert!(
        e.iter()
            .any(|(_, _, m)| m == "vlan link `stor1` is a slave of bond0: put the VLAN on bond0"),
        "{e:#?}"
    );
}

#[test]
fn mtu_out_of_range() {
    one_error(
        &GOOD.replace("mtu = 9000", "mtu = 70000"),
        19,
        "mtu 70000 on bond0 is out of range: expected 68 to 65535",
    );
    // IPv6 needs 1280.
    one_error(
        &GOOD.replace("mtu = 9000", "mtu = 1000"),
        19,
        "mtu 1000 on bond0: IPv6 needs at least 1280",
    );
}

#[test]
fn duplicate_addresses_are_errors_at_the_second() {
    has_error(
        &GOOD.replace("192.0.2.130/26", "192.0.2.15/26"),
        25,
        "address 192.0.2.15 on bond0.100 is already on bond0",
    );
    let e = errors(&GOOD.replace("2001:db8::15/64\"]", "2001:db8::zz/64\"]"));
    assert_eq!(
        e[0].2,
        "address `2001:db8::zz/64` on bond0: expected IPv6/prefix like 2001:db8::15/64"
    );
}

#[test]
fn mode_and_option_combinations() {
    let lacp = GOOD.replace("mode = \"active-backup\"", "mode = \"802.3ad\"");
    one_error(
        &lacp,
        17,
        "primary: only for mode active-backup (bond0 is 802.3ad)",
    );
    let ok = lacp.replace(
        "primary = \"stor0\"",
        "lacp-rate = \"fast\"\nxmit-hash-policy = \"layer3+4\"",
    );
    assert!(errors(&ok).is_empty(), "{:#?}", errors(&ok));
    let ab = GOOD.replace(
        "primary = \"stor0\"",
        "primary = \"eth0\"\nlacp-rate = \"slow\"\nxmit-hash-policy = \"layer2\"",
    );
    let e = errors(&ab);
    let msgs: Vec<&str> = e.iter().map(|x| x.2.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "primary `eth0` of bond0 is not one of its slaves",
            "lacp-rate: only for mode 802.3ad (bond0 is active-backup)",
            "xmit-hash-policy: only for modes 802.3ad and balance-xor (bond0 is active-backup)",
        ]
    );
    one_error(
        &GOOD.replace("miimon = 100", "miimon = 0"),
        18,
        "miimon 0 on bond0",
    );
    // An unknown mode is serde's error, at the value.
    let e = errors(&GOOD.replace("\"active-backup\"", "\"balance-rr\""));
    assert_eq!((e[0].0, e[0].1), (16, 8), "{e:#?}");
    assert!(e[0].2.contains("802.3ad"), "{e:#?}");
}

#[test]
fn slaves_that_are_no_interfaces() {
    let t = GOOD.replace(
        "slaves = [\"stor0\", \"52:54:00:12:34:02\"]",
        "slaves = [\"stor0\", \"bond0.100\", \"stor0\", \"x/y\"]",
    );
    let msgs: Vec<String> = errors(&t).into_iter().map(|x| x.2).collect();
    assert_eq!(
        msgs,
        [
            "slave `bond0.100` of bond0 is a VLAN: expected an interface",
            "slave `stor0` is listed twice in bond0",
            "slave `x/y` of bond0: expected an interface name or a MAC like 52:54:00:12:34:56",
        ]
    );
}

#[test]
fn dhcp_on_two_links_and_with_a_static_default_route() {
    let t = GOOD.replace(
        "addresses = [\"192.0.2.130/26\", \"2001:db8:100::15/64\"]",
        "dhcp = true",
    );
    has_error(
        &t,
        25,
        "dhcp is already on eth0: at most one link runs DHCP",
    );
    let t = format!("{GOOD}[[network.routes]]\nto = \"default\"\nvia = \"192.0.2.1\"\n");
    one_error(
        &t,
        39,
        "route to default: eth0 gets its IPv4 default route from DHCP",
    );
}

#[test]
fn routes_need_a_gateway_on_a_connected_network() {
    let t = GOOD.replace("via = \"192.0.2.129\"", "via = \"192.0.2.1\"");
    one_error(
        &t,
        32,
        "route via 192.0.2.1: no address of bond0.100 is in a network that holds it",
    );
    let t = GOOD.replace("via = \"2001:db8::1\"", "via = \"192.0.2.1\"");
    one_error(
        &t,
        29,
        "route via 192.0.2.1 is IPv4 but its `to` (2001:db8:1::/48) is IPv6",
    );
    let t = GOOD.replace("via = \"fe80::1\"\ndev = \"bond0\"", "via = \"fe80::1\"");
    one_error(
        &t,
        36,
        "route via fe80::1 is link-local: name its link in `dev`",
    );
    let t = GOOD.replace("dev = \"bond0.100\"", "dev = \"stor0\"");
    let e = errors(&t);
    assert!(
        e.iter()
            .any(|x| x.2 == "route dev `stor0` is a slave of bond0: use bond0"),
        "{e:#?}"
    );
}

#[test]
fn interfaces_need_a_name_or_a_mac_and_good_ones() {
    let t = "hostname = \"n\"\n[[network.interfaces]]\nmtu = 1500\n[[network.interfaces]]\nmac = \"52:54:00:zz:00:01\"\n[[network.interfaces]]\nname = \"eth0:1\"\n";
    let msgs: Vec<String> = errors(t).into_iter().map(|x| x.2).collect();
    assert_eq!(
        msgs,
        [
            "interface: expected a `name`, a `mac` or both",
            "mac `52:54:00:zz:00:01` on 52:54:00:zz:00:01: expected six hex bytes like 52:54:00:12:34:56",
            "interface name `eth0:1`: expected 1 to 15 characters without `/`, `:` or spaces",
        ]
    );
}

#[test]
fn a_long_default_vlan_name_asks_for_a_name() {
    let t = "hostname = \"n\"\n[[network.interfaces]]\nname = \"enp129s0f1np1\"\n[[network.vlans]]\nlink = \"enp129s0f1np1\"\nid = 100\n";
    one_error(t, 5, "vlan name `enp129s0f1np1.100`: expected 1 to 15 characters without `/`, `:` or spaces; give the VLAN a shorter `name`");
    let t = t.replace("id = 100\n", "id = 100\nname = \"stor.100\"\n");
    assert!(errors(&t).is_empty());
}
