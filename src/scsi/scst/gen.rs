//! A synthetic, valid `scst.conf` of any size, for benchmarks and scale tests: vdisk
//! devices, FC hardware targets with `rel_tgt_id`, initiator groups that share the
//! devices out as LUNs, and one ALUA device group.

use super::{
    Attr, Device, DeviceGroup, DgDevice, Handler, IniGroup, Initiator, Lun, ScstConf, Target,
    TargetDriver, TargetGroup, TgTarget,
};

fn wwpn(prefix: u8, n: usize) -> String {
    format!(
        "{prefix:02x}:00:00:24:ff:{:02x}:{:02x}:{:02x}",
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// `devices` vdisk_blockio devices, `targets` qla2x00t ports and `groups` initiator
/// groups spread over the ports; group `g` maps every device `i` with `i % groups == g`
/// as LUNs 0, 1, ….
pub fn generate(devices: usize, targets: usize, groups: usize) -> ScstConf {
    let dev_name = |i: usize| format!("disk{i:05}");
    let handler = Handler {
        name: "vdisk_blockio".into(),
        devices: (0..devices)
            .map(|i| Device {
                name: dev_name(i),
                attrs: vec![
                    Attr::new("filename", format!("/dev/mapper/lun{i:05}")),
                    Attr::new("t10_dev_id", format!("sf-{i:05}")),
                    Attr::new("rotational", "0"),
                ],
                line: 0,
            })
            .collect(),
        ..Default::default()
    };
    let mut tgts: Vec<Target> = (0..targets)
        .map(|t| Target {
            name: wwpn(0x21, t),
            hw_target: true,
            enabled: Some(true),
            attrs: vec![Attr::new("rel_tgt_id", (t + 1).to_string())],
            ..Default::default()
        })
        .collect();
    if !tgts.is_empty() {
        for g in 0..groups {
            let luns = (g..devices)
                .step_by(groups.max(1))
                .enumerate()
                .map(|(n, i)| Lun {
                    number: n as u32,
                    device: dev_name(i),
                    ..Default::default()
                })
                .collect();
            let n = tgts.len();
            let Some(t) = tgts.get_mut(g % n) else {
                continue;
            };
            t.groups.push(IniGroup {
                name: format!("host{g:03}"),
                luns,
                initiators: vec![Initiator {
                    name: wwpn(0x10, g),
                    line: 0,
                }],
                ..Default::default()
            });
        }
    }
    let dg = DeviceGroup {
        name: "dg0".into(),
        devices: (0..devices)
            .map(|i| DgDevice {
                name: dev_name(i),
                line: 0,
            })
            .collect(),
        target_groups: vec![TargetGroup {
            name: "local".into(),
            attrs: vec![Attr::new("group_id", "1"), Attr::new("state", "active")],
            targets: tgts
                .iter()
                .map(|t| TgTarget {
                    name: t.name.clone(),
                    ..Default::default()
                })
                .collect(),
            line: 0,
        }],
        ..Default::default()
    };
    ScstConf {
        globals: vec![Attr::new("setup_id", "0x5f")],
        handlers: vec![handler],
        drivers: vec![TargetDriver {
            name: "qla2x00t".into(),
            targets: tgts,
            ..Default::default()
        }],
        device_groups: vec![dg],
        ..Default::default()
    }
}
