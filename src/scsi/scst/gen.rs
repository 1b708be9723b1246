//! A synthetic, valid `scst.conf` of any size, for benchmarks and scale tests: vdisk
//! devices, FC hardware targets with `rel_tgt_id`, initiator groups that share the
//! devices out as LUNs, and one ALUA device group ([`generate`]); or the iSCSI layout a
//! QEMU guest can apply for real ([`generate_iscsi`]: vdisk_nullio devices, iSCSI
//! targets, one initiator group per target).

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

/// `devices` vdisk_nullio devices (no backing storage: any guest can create them),
/// `targets` iSCSI targets, enabled, and `groups` initiator groups spread over the
/// targets as in [`generate`] (group `g` on target `g % targets`, mapping every device
/// `i` with `i % groups == g` as LUNs 0, 1, …). With 1,000 devices, 8 targets and 8
/// groups: 125 LUNs per target, 2,033 sysfs writes.
pub fn generate_iscsi(devices: usize, targets: usize, groups: usize) -> ScstConf {
    let dev_name = |i: usize| format!("null{i:05}");
    let handler = Handler {
        name: "vdisk_nullio".into(),
        devices: (0..devices)
            .map(|i| Device {
                name: dev_name(i),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut tgts: Vec<Target> = (0..targets)
        .map(|t| Target {
            name: format!("iqn.2026-11.org.example.sanforge:bench-t{t:03}"),
            enabled: Some(true),
            ..Default::default()
        })
        .collect();
    let n = tgts.len();
    for g in 0..groups {
        let Some(t) = tgts.get_mut(g % n.max(1)) else {
            continue;
        };
        t.groups.push(IniGroup {
            name: format!("host{g:03}"),
            luns: (g..devices)
                .step_by(groups.max(1))
                .enumerate()
                .map(|(n, i)| Lun {
                    number: n as u32,
                    device: dev_name(i),
                    ..Default::default()
                })
                .collect(),
            initiators: vec![Initiator {
                name: format!("iqn.2026-11.org.example:host{g:03}"),
                line: 0,
            }],
            ..Default::default()
        });
    }
    ScstConf {
        handlers: vec![handler],
        drivers: vec![TargetDriver {
            name: "iscsi".into(),
            enabled: Some(true),
            targets: tgts,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_iscsi_layout_is_valid_and_has_the_writes_the_bench_counts() {
        let conf = generate_iscsi(1000, 8, 8);
        let text = crate::scsi::scst::print(&conf);
        let (parsed, _warnings) =
            crate::scsi::scst::load_conf(std::path::Path::new("gen.conf"), &text).unwrap();
        assert_eq!(parsed.handlers[0].devices.len(), 1000);
        let t = &parsed.drivers[0].targets;
        assert_eq!(t.len(), 8);
        assert!(t
            .iter()
            .all(|t| t.groups.len() == 1 && t.groups[0].luns.len() == 125));
        // 1,000 devices + 1,000 LUNs + 8 × (target, group, initiator, enable) + the
        // driver's enable.
        assert_eq!(crate::scsi::scst::plan(&parsed).len(), 2033);
    }
}
