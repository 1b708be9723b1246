//! The emulated server hardware of `sanforge run`: machine type, NICs and their
//! networks, disks behind their controllers, port forwards; each parsed from its
//! command-line form.

use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// KVM when /dev/kvm works, else TCG (software emulation).
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BootMode {
    /// QEMU loads vmlinuz and the initramfs directly (fastest).
    Direct,
    /// The firmware's iPXE fetches boot.ipxe, then the kernel and initramfs, over TFTP
    /// from the output directory (QEMU's built-in server): the PXE path, for real.
    Pxe,
    /// OVMF (UEFI) boots a throw-away copy (snapshot) of `disk.img` through
    /// systemd-boot: the USB stick / SATA DOM path.
    Uefi,
}

/// OVMF's code (read-only) and the template of its variable store (copied per run).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// QEMU's machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    /// i440FX + PIIX (QEMU's default): PCI only.
    Pc,
    /// Q35 + ICH9: PCI Express, as on current servers (the default of --boot uefi).
    Q35,
}

impl Machine {
    pub(super) fn name(self) -> &'static str {
        match self {
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
        }
    }
}

/// A NIC model `--nic` takes, and the QEMU device that emulates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicModel {
    /// virtio-net (the default; built into the kernel).
    Virtio,
    /// Intel 82574L (e1000e), the common server GbE NIC.
    E1000e,
    /// VMware's paravirtual NIC (vmxnet3).
    Vmxnet3,
}

impl NicModel {
    const ALL: [(&'static str, NicModel); 3] = [
        ("virtio", NicModel::Virtio),
        ("e1000e", NicModel::E1000e),
        ("vmxnet3", NicModel::Vmxnet3),
    ];

    pub(super) fn device(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio-net-pci",
            NicModel::E1000e => "e1000e",
            NicModel::Vmxnet3 => "vmxnet3",
        }
    }
}

/// The network a NIC is plugged into. NICs that name the same network share a QEMU
/// hub (an unmanaged switch: every frame reaches every NIC on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NicNet {
    /// QEMU's user network, restricted to the guest, where the host's forwards arrive
    /// (`--iscsi-port`, `--forward`).
    User,
    /// A link to another VM: this VM listens on 127.0.0.1:PORT (QEMU `-netdev socket`).
    Listen(u16),
    /// A link to another VM that listens on 127.0.0.1:PORT (start that one first).
    Connect(u16),
}

impl std::fmt::Display for NicNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NicNet::User => write!(f, "user"),
            NicNet::Listen(p) => write!(f, "listen:{p}"),
            NicNet::Connect(p) => write!(f, "connect:{p}"),
        }
    }
}

/// One `--nic MODEL[,net=NET][,mac=MAC]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    pub model: NicModel,
    pub net: NicNet,
    /// Default: [`default_mac`] of the NIC's position.
    pub mac: Option<String>,
}

/// The MAC of the `i`-th NIC (from 0) when `--nic` gives none: 52:54:00:00:02:0f,
/// then :10, :11, … (the first is the one the single default NIC always had).
pub fn default_mac(i: usize) -> String {
    format!("52:54:00:00:02:{:02x}", 0x0f + i)
}

pub(super) fn parse_port(what: &str, v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{what} `{v}`: expected a TCP port from 1 to 65535")),
    }
}

pub(super) fn valid_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        // unicast: the group bit of the first octet is clear
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

impl std::str::FromStr for NicSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<NicSpec, String> {
        let mut parts = s.split(',');
        let model_name = parts.next().unwrap_or_default();
        let models = || {
            NicModel::ALL
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let model = NicModel::ALL
            .iter()
            .find(|(n, _)| *n == model_name)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("NIC model `{model_name}`: expected one of {}", models()))?;
        let mut spec = NicSpec {
            model,
            net: NicNet::User,
            mac: None,
        };
        for opt in parts {
            match opt.split_once('=') {
                Some(("net", "user")) => spec.net = NicNet::User,
                Some(("net", v)) => {
                    spec.net = match v.split_once(':') {
                        Some(("listen", p)) => NicNet::Listen(parse_port("net=listen", p)?),
                        Some(("connect", p)) => NicNet::Connect(parse_port("net=connect", p)?),
                        _ => {
                            return Err(format!(
                                "net=`{v}`: expected user, listen:PORT or connect:PORT"
                            ))
                        }
                    }
                }
                Some(("mac", v)) => {
                    if !valid_mac(v) {
                        return Err(format!(
                            "mac=`{v}`: expected a unicast MAC address like 52:54:00:12:34:56"
                        ));
                    }
                    spec.mac = Some(v.to_ascii_lowercase());
                }
                _ => {
                    return Err(format!(
                        "`{opt}`: expected net=user|listen:PORT|connect:PORT or mac=MAC after the model"
                    ))
                }
            }
        }
        Ok(spec)
    }
}

/// The controller a disk hangs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBus {
    /// virtio-blk, one PCI device per disk (`/dev/vdX`).
    Virtio,
    /// One ICH9 AHCI controller, six SATA ports (`/dev/sdX`, `ata-…` names).
    Ahci,
    /// One NVMe controller per disk (`/dev/nvmeXn1`).
    Nvme,
    /// One LSI MegaRAID SAS 2108 (megaraid_sas) for all such disks.
    MegasasGen2,
    /// One LSI SAS 1068 (mptsas) for all such disks.
    Mptsas1068,
}

impl DiskBus {
    const ALL: [(&'static str, DiskBus); 5] = [
        ("virtio", DiskBus::Virtio),
        ("ahci", DiskBus::Ahci),
        ("nvme", DiskBus::Nvme),
        ("megasas-gen2", DiskBus::MegasasGen2),
        ("mptsas1068", DiskBus::Mptsas1068),
    ];
}

/// One `--disk FILE[,CONTROLLER]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    pub bus: DiskBus,
    pub file: PathBuf,
}

/// The serial number of the `i`-th disk (from 0): `sanforge-dI`. The guest's udev
/// makes its by-id names from it, e.g. `scsi-0QEMU_QEMU_HARDDISK_sanforge-d0`,
/// `nvme-QEMU_NVMe_Ctrl_sanforge-d2`, `ata-QEMU_HARDDISK_sanforge-d1`, `virtio-sanforge-d3`.
pub fn disk_serial(i: usize) -> String {
    format!("sanforge-d{i}")
}

impl DiskBus {
    /// The accepted controller names, for messages.
    fn names() -> String {
        DiskBus::ALL
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::str::FromStr for DiskSpec {
    type Err = String;

    /// `FILE` (virtio) or `FILE,CONTROLLER`: the controller is what follows the last
    /// comma, so a file whose name has a comma is written with its controller
    /// (`a,b.img,virtio`).
    fn from_str(s: &str) -> Result<DiskSpec, String> {
        let (file, bus) = match s.rsplit_once(',') {
            None => (s, DiskBus::Virtio),
            Some((f, c)) => match DiskBus::ALL.iter().find(|(n, _)| *n == c) {
                Some((_, bus)) => (f, *bus),
                None => {
                    return Err(format!(
                        "controller `{c}` (after the last comma): expected one of {} \
                         (a file name with a comma: add its controller, e.g. `{s},virtio`)",
                        DiskBus::names()
                    ))
                }
            },
        };
        if file.is_empty() {
            return Err(format!(
                "`{s}`: expected FILE[,CONTROLLER], a disk image file before the controller"
            ));
        }
        Ok(DiskSpec {
            bus,
            file: PathBuf::from(file),
        })
    }
}

/// One `--forward HOST:GUEST`: TCP 127.0.0.1:HOST to the guest's port GUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub host: u16,
    pub guest: u16,
}

impl std::str::FromStr for Forward {
    type Err = String;

    fn from_str(s: &str) -> Result<Forward, String> {
        let (h, g) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected HOST_PORT:GUEST_PORT, e.g. 2222:22"))?;
        Ok(Forward {
            host: parse_port("host port", h)?,
            guest: parse_port("guest port", g)?,
        })
    }
}

/// The emulated hardware beyond the defaults (machine, NICs, disks, forwards).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hardware {
    /// Default: `pc`, or `q35` for `--boot uefi`.
    pub machine: Option<Machine>,
    /// Default: one virtio NIC on the user network.
    pub nics: Vec<NicSpec>,
    pub disks: Vec<DiskSpec>,
    pub forwards: Vec<Forward>,
    /// A guest reboot resets the machine, as a server does (A/B updates, `sanforge
    /// push`), instead of ending QEMU (`-no-reboot`, the default: a panic ends the run).
    pub reboot: bool,
}
