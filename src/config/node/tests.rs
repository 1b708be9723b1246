use super::*;
use crate::config::values::{self, is_iscsi_name, parse_size};

#[test]
fn sizes() {
    // Backstore sizes: a bare number is bytes.
    let parse_size = |s| parse_size(s, values::BYTE).ok();
    assert_eq!(parse_size("64MiB"), Some(64 << 20));
    assert_eq!(parse_size("4096"), Some(4096));
    assert_eq!(parse_size("1.5G"), None);
    assert_eq!(parse_size("12XB"), None);
}

#[test]
fn iscsi_names() {
    assert!(is_iscsi_name("iqn.2026-11.org.example:node1"));
    assert!(is_iscsi_name("eui.0123456789abcdef"));
    assert!(!is_iscsi_name("iqn.26-11.org"));
    assert!(!is_iscsi_name("iqn.2026-11.org.Example"));
    assert!(!is_iscsi_name("foo"));
}

#[test]
fn cidr() {
    let c = Cidr::parse("192.0.2.15/24").unwrap();
    assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
    assert_eq!(c.network(), Ipv4Addr::new(192, 0, 2, 0));
    assert!(Cidr::parse("192.0.2.15/33").is_none());
}

#[test]
fn undefined_backstore_is_located() {
    let t = "hostname = \"n\"\n[lio]\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\nportals = [\"0.0.0.0:3260\"]\nluns = [{ lun = 0, backstore = \"nope\" }]\n";
    let e = NodeConfig::parse(Path::new("n.toml"), t).unwrap_err();
    assert!(e.message.contains("`nope`"), "{e}");
    assert_eq!(e.line, 6);
}

#[test]
fn an_error_in_the_second_of_two_tables_points_at_the_second() {
    let t = "hostname = \"n\"\n[[network.interfaces]]\nname = \"eth0\"\nmtu = 1500\n[[network.interfaces]]\nname = \"eth1\"\nmtu = 9\n";
    let e = NodeConfig::parse(Path::new("n.toml"), t).unwrap_err();
    assert!(e.message.contains("mtu 9 on eth1"), "{e}");
    assert_eq!((e.line, e.column, e.count()), (7, 7, 1), "{e}");

    let t = "hostname = \"n\"\n[lio]\n[[lio.backstores]]\nname = \"a\"\nkind = \"ramdisk\"\nsize = \"1MiB\"\n[[lio.backstores]]\nname = \"b\"\nkind = \"ramdisk\"\nsize = \"1ZiB\"\n";
    let e = NodeConfig::parse(Path::new("n.toml"), t).unwrap_err();
    assert!(e.message.contains("ramdisk backstore `b`"), "{e}");
    assert_eq!((e.line, e.column), (10, 8), "{e}");
    // A missing field: the entry that lacks it.
    let t = t.replace("size = \"1ZiB\"\n", "");
    let e = NodeConfig::parse(Path::new("n.toml"), &t).unwrap_err();
    assert_eq!((e.line, e.column), (7, 1), "{e}");
    // The second of two equal names is the duplicate.
    let t = t.replace("name = \"b\"", "name = \"a\"");
    let e = NodeConfig::parse(Path::new("n.toml"), &t).unwrap_err();
    assert!(
        e.to_string()
            .contains("n.toml:8:8: backstore `a` is defined twice"),
        "{e}"
    );
}

#[test]
fn backstore_attributes_are_checked_where_they_are_written() {
    let t = "hostname = \"n\"\n[lio]\n[[lio.backstores]]\nname = \"a\"\nkind = \"fileio\"\npath = \"/run/a\"\nsize = \"1MiB\"\nwrite-back = true\nattributes = { emulate_tpu = true, block_size = 520, emulate_write_cache = 0 }\n[[lio.backstores]]\nname = \"r\"\nkind = \"ramdisk\"\nsize = \"1MiB\"\nattributes = { emulate_tpws = 1, bogus = 1 }\n";
    let e = NodeConfig::parse(Path::new("n.toml"), t).unwrap_err();
    let text = e.to_string();
    assert_eq!(e.count(), 4, "{text}");
    for want in [
        "n.toml:9:49: backstore `a`: attribute `block_size` = 520: expected one of 512, 1024, 2048, 4096",
        "n.toml:9:76: backstore `a`: emulate_write_cache = 0 with write-back = true",
        "n.toml:14:34: backstore `r`: unknown LIO backstore attribute `bogus`: expected one of block_size,",
        "n.toml:14:31: backstore `r`: attribute `emulate_tpws` needs UNMAP, which ramdisk backstores do not have",
    ] {
        assert!(text.contains(want), "{want}\n{text}");
    }
    let ok = t
        .replace(
            "block_size = 520, emulate_write_cache = 0",
            "block_size = 4096",
        )
        .replace("emulate_tpws = 1, bogus = 1", "emulate_caw = false");
    let n = NodeConfig::parse(Path::new("n.toml"), &ok).unwrap();
    let b = &n.lio.as_ref().unwrap().backstores[0];
    assert_eq!(b.attributes["emulate_tpu"], AttrValue::Bool(true));
    assert_eq!(b.attributes["block_size"], AttrValue::Int(4096));
}

#[test]
fn every_error_of_the_file_is_reported_in_file_order() {
    let t = "hostname = \"-n\"\n[[network.interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.1/24\", \"192.0.2.300/24\"]\n[[network.routes]]\nto = \"default\"\nvia = \"gateway\"\n";
    let e = NodeConfig::parse(Path::new("n.toml"), t).unwrap_err();
    assert_eq!(e.count(), 3, "{e}");
    assert_eq!(
        e.to_string(),
        "n.toml:1:12: hostname `-n`: expected 1 to 64 letters, digits, `-` or `.`\n\
         n.toml:4:30: address `192.0.2.300/24` on eth0: expected IPv4/prefix like 192.0.2.15/24\n\
         n.toml:7:7: route via `gateway`: expected an IPv4 address"
    );
}

#[test]
fn unknown_key_has_line_and_column() {
    let e = NodeConfig::parse(Path::new("n.toml"), "hostname = \"n\"\nbogus = 1\n").unwrap_err();
    assert_eq!((e.line, e.column), (2, 1));
    assert!(e.message.contains("bogus"), "{e}");
}
