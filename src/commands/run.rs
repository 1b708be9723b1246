//! `sanforge run`: boots an output directory in QEMU — serial console to the terminal,
//! user networking restricted to the guest (nothing outside is reachable) with the
//! iSCSI port forwarded to 127.0.0.1.
//!
//! Reads `vmlinuz`, `initramfs.cpio.zst` and `manifest.json` (for the kernel command
//! line) from the output directory; keeps its state (console log, pid file, monitor
//! socket) in `<OUT>.run/`.
//!
//! Server hardware ([`Hardware`]): the machine type, NICs of the models servers carry
//! (each on the user network or on a point-to-point socket link to another VM; NICs
//! on one network share a QEMU hub, which is how two NICs become one bond's slaves)
//! and disks behind the controllers servers carry (virtio, AHCI, NVMe, MegaRAID SAS,
//! LSI SAS), with serial numbers that make their `/dev/disk/by-id` names predictable.
//! [`monitor`] sends one command to a running VM's monitor (`set_link nic0 off`).

use crate::contract::DISK_IMG;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the console prints when the node is up.
pub const READY: &str = "sanforge-init: ready";

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
    fn name(self) -> &'static str {
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

    fn device(self) -> &'static str {
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

fn parse_port(what: &str, v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("{what} `{v}`: expected a TCP port from 1 to 65535")),
    }
}

fn valid_mac(m: &str) -> bool {
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

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub boot: BootMode,
    pub out: PathBuf,
    pub iscsi_port: u16,
    pub memory_mib: u32,
    pub accel: Accel,
    pub until_ready: bool,
    pub timeout: Duration,
    pub extra_cmdline: Vec<String>,
    /// Print the console while waiting (off in tests that only want the result).
    pub echo: bool,
    /// Machine type, NICs, disks and more forwards.
    pub hw: Hardware,
}

/// `<OUT>.run/`: console log, pid file and monitor socket of a running VM.
pub fn state_dir(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".run");
    ufs::parent_dir(out).join(name)
}

fn cmdline(out: &Path, extra: &[String]) -> Result<String> {
    let m: serde_json::Value = serde_json::from_str(&ufs::read_to_string(
        &out.join("manifest.json"),
    )?)
    .with_context(|| format!("{} is not valid JSON", out.join("manifest.json").display()))?;
    let mut c = m["kernel"]["cmdline"]
        .as_str()
        .unwrap_or("console=ttyS0 panic=-1")
        .to_string();
    for e in extra {
        c.push(' ');
        c.push_str(e);
    }
    Ok(c)
}

/// The initrd QEMU loads: `initramfs.cpio.zst`, or, when `sanforge build --secrets`
/// wrote `OUT/secrets/initrd.cpio`, both concatenated (padded to 4 bytes, as a boot
/// loader does with two initrds) into a private file of the run's state directory.
fn initrd_with_secrets(out: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let public = out.join("initramfs.cpio.zst");
    let secrets = out
        .join(crate::stages::outputs::SECRETS_DIR)
        .join(crate::stages::outputs::SECRETS_INITRD);
    if !secrets.is_file() {
        return Ok(public);
    }
    let state = state_dir(out);
    ufs::create_dir_all(&state)?;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot chmod {}", state.display()))?;
    let mut data = ufs::read(&public)?;
    data.resize(data.len().div_ceil(4) * 4, 0);
    data.extend(ufs::read(&secrets)?);
    let p = state.join("initrd-with-secrets");
    ufs::write_atomic(&p, &data)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod {}", p.display()))?;
    Ok(p)
}

/// The files the boot needs are there (checked before anything is written beside
/// the output directory).
fn check_out(opts: &RunOptions) -> Result<()> {
    let needed: &[&str] = match opts.boot {
        BootMode::Uefi => &["manifest.json"],
        _ => &["vmlinuz", "initramfs.cpio.zst", "manifest.json"],
    };
    for f in needed {
        if !opts.out.join(f).is_file() {
            bail!("{} has no {f}: is it a sanforge output directory? (build one with `sanforge build`)", opts.out.display());
        }
    }
    Ok(())
}

/// QEMU's option syntax: a comma inside a value is written twice.
fn qemu_escape(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("{} is not UTF-8: QEMU cannot be given it", p.display()))?;
    Ok(s.replace(',', ",,"))
}

/// The NICs of `--nic` (one virtio NIC on the user network when none), each as
/// device `nicI` (the name `--monitor 'set_link nicI off'` takes). `user` is the user
/// network's `-netdev` value, attached only when a NIC is on it. NICs on one network
/// share a hub: a hub port per NIC and one for the backend.
pub fn nic_args(hw: &Hardware, user: &str) -> Result<Vec<String>> {
    let default = [NicSpec {
        model: NicModel::Virtio,
        net: NicNet::User,
        mac: None,
    }];
    let nics: &[NicSpec] = if hw.nics.is_empty() {
        &default
    } else {
        &hw.nics
    };
    let macs: Vec<String> = nics
        .iter()
        .enumerate()
        .map(|(i, n)| n.mac.clone().unwrap_or_else(|| default_mac(i)))
        .collect();
    for (i, m) in macs.iter().enumerate() {
        if let Some(j) = macs[..i].iter().position(|o| o == m) {
            bail!("--nic: nic{j} and nic{i} both have MAC {m}: give one of them another with mac=");
        }
    }
    // Networks in the order the NICs first name them.
    let mut nets: Vec<NicNet> = Vec::new();
    for n in nics {
        if !nets.contains(&n.net) {
            nets.push(n.net);
        }
    }
    let mut a = Vec::new();
    let mut push = |k: &str, v: String| {
        a.push(k.to_string());
        a.push(v);
    };
    if !hw.forwards.is_empty() && !nets.contains(&NicNet::User) {
        bail!("--forward needs a NIC on the user network (a --nic without net= or with net=user)");
    }
    for (k, net) in nets.iter().enumerate() {
        let backend = match net {
            NicNet::User => "n0".to_string(),
            _ => format!("l{k}"),
        };
        push(
            "-netdev",
            match net {
                NicNet::User => user.to_string(),
                NicNet::Listen(p) => format!("socket,id={backend},listen=127.0.0.1:{p}"),
                NicNet::Connect(p) => format!("socket,id={backend},connect=127.0.0.1:{p}"),
            },
        );
        let members: Vec<usize> = (0..nics.len()).filter(|&i| nics[i].net == *net).collect();
        let shared = members.len() > 1;
        if shared {
            push(
                "-netdev",
                format!("hubport,id=hub{k}up,hubid={k},netdev={backend}"),
            );
        }
        for i in members {
            let netdev = if shared {
                push("-netdev", format!("hubport,id=hub{k}p{i},hubid={k}"));
                format!("hub{k}p{i}")
            } else {
                backend.clone()
            };
            push(
                "-device",
                format!(
                    "{},netdev={netdev},id=nic{i},mac={}",
                    nics[i].model.device(),
                    macs[i]
                ),
            );
        }
    }
    Ok(a)
}

/// Whether a disk image is qcow2 (by its magic), else raw.
fn disk_format(file: &Path) -> Result<&'static str> {
    let mut f = std::fs::File::open(file)
        .with_context(|| format!("--disk: cannot open {}", file.display()))?;
    if !f
        .metadata()
        .with_context(|| format!("--disk: cannot stat {}", file.display()))?
        .is_file()
    {
        bail!(
            "--disk: {} is not a regular file (an image file: `truncate -s 1G disk.img` makes one)",
            file.display()
        );
    }
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).unwrap_or(0);
    Ok(if n == 4 && magic == *b"QFI\xfb" {
        "qcow2"
    } else {
        "raw"
    })
}

/// The disks of `--disk`, drive `diskI` with serial [`disk_serial`]`(I)`; one
/// controller per kind for AHCI (`sata0`), MegaRAID (`megasas0`) and LSI SAS
/// (`mptsas0`), one device per disk for virtio-blk and NVMe. Files must be absolute
/// paths (QEMU may run from /).
pub fn disk_args(hw: &Hardware) -> Result<Vec<String>> {
    let mut a: Vec<String> = Vec::new();
    let mut controllers: Vec<DiskBus> = Vec::new();
    let mut sata_ports = 0;
    let mut files: Vec<&Path> = Vec::new();
    for (i, d) in hw.disks.iter().enumerate() {
        if files.contains(&d.file.as_path()) {
            bail!(
                "--disk: {} is given twice (QEMU would open it twice)",
                d.file.display()
            );
        }
        files.push(&d.file);
        let format = disk_format(&d.file)?;
        if !controllers.contains(&d.bus) {
            controllers.push(d.bus);
            let ctl = match d.bus {
                DiskBus::Ahci => Some("ich9-ahci,id=sata0"),
                DiskBus::MegasasGen2 => Some("megasas-gen2,id=megasas0"),
                DiskBus::Mptsas1068 => Some("mptsas1068,id=mptsas0"),
                DiskBus::Virtio | DiskBus::Nvme => None,
            };
            if let Some(c) = ctl {
                a.extend(["-device".to_string(), c.to_string()]);
            }
        }
        a.push("-drive".into());
        a.push(format!(
            "file={},if=none,id=disk{i},format={format}",
            qemu_escape(&d.file)?
        ));
        let serial = disk_serial(i);
        let dev = match d.bus {
            DiskBus::Virtio => format!("virtio-blk-pci,drive=disk{i},serial={serial}"),
            DiskBus::Nvme => format!("nvme,drive=disk{i},serial={serial}"),
            DiskBus::MegasasGen2 => format!("scsi-hd,drive=disk{i},bus=megasas0.0,serial={serial}"),
            DiskBus::Mptsas1068 => format!("scsi-hd,drive=disk{i},bus=mptsas0.0,serial={serial}"),
            DiskBus::Ahci => {
                if sata_ports == 6 {
                    bail!(
                        "--disk: an AHCI controller has 6 ports; {} is the 7th ahci disk",
                        d.file.display()
                    );
                }
                sata_ports += 1;
                format!(
                    "ide-hd,drive=disk{i},bus=sata0.{},serial={serial}",
                    sata_ports - 1
                )
            }
        };
        a.extend(["-device".to_string(), dev]);
    }
    Ok(a)
}

/// The `-netdev` of QEMU's user network: restricted, 192.0.2.0/24, the iSCSI port
/// and `--forward`s on 127.0.0.1.
fn user_netdev(opts: &RunOptions) -> Result<String> {
    let mut net = format!(
        "user,id=n0,restrict=on,net=192.0.2.0/24,host=192.0.2.2,hostfwd=tcp:127.0.0.1:{}-:3260",
        opts.iscsi_port
    );
    for f in &opts.hw.forwards {
        if f.host == opts.iscsi_port
            || opts.hw.forwards.iter().filter(|o| o.host == f.host).count() > 1
        {
            bail!(
                "--forward: host port {} is forwarded twice (--iscsi-port is {})",
                f.host,
                opts.iscsi_port
            );
        }
        net.push_str(&format!(",hostfwd=tcp:127.0.0.1:{}-:{}", f.host, f.guest));
    }
    Ok(net)
}

/// The hardware options are consistent and the disk files usable: checked before
/// anything is written or started.
fn check_hardware(opts: &RunOptions) -> Result<()> {
    nic_args(&opts.hw, &user_netdev(opts)?)?;
    disk_args(&opts.hw)?;
    Ok(())
}

/// The QEMU command of a boot: the one place its command line is built (`run`, the
/// background boot of `--until-ready`, `matrix` and the tests through `sanforge run`
/// all come here). The console and monitor options are the caller's.
pub fn qemu_command(opts: &RunOptions, accel: Accel) -> Result<Cmd> {
    check_out(opts)?;
    let mut net = user_netdev(opts)?;
    let mut c = Cmd::new("qemu-system-x86_64")
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-m", &opts.memory_mib.to_string()]);
    if !opts.hw.reboot {
        c = c.arg("-no-reboot");
    }
    match opts.boot {
        BootMode::Direct => {
            c = c
                .arg("-kernel")
                .arg(opts.out.join("vmlinuz"))
                .arg("-initrd")
                .arg(initrd_with_secrets(&opts.out)?)
                .args(["-append", &cmdline(&opts.out, &opts.extra_cmdline)?]);
        }
        BootMode::Pxe => {
            if !opts.extra_cmdline.is_empty() {
                bail!(
                    "--append does not apply to --boot pxe: the command line comes from boot.ipxe"
                );
            }
            let dir = opts
                .out
                .to_str()
                .filter(|d| !d.contains(','))
                .with_context(|| {
                    format!(
                        "{} cannot be a TFTP root (not UTF-8 or has a comma)",
                        opts.out.display()
                    )
                })?;
            if !opts.hw.nics.is_empty() && opts.hw.nics.iter().all(|n| n.net != NicNet::User) {
                bail!("--boot pxe needs a NIC on the user network (it serves the TFTP files)");
            }
            net.push_str(&format!(",tftp={dir},bootfile=boot.ipxe"));
            c = c.args(["-boot", "n"]);
        }
        BootMode::Uefi => {
            if !opts.extra_cmdline.is_empty() {
                bail!("--append does not apply to --boot uefi: the command line comes from the disk's boot loader entries");
            }
            let disk = opts.out.join(DISK_IMG);
            if !disk.is_file() {
                bail!("{} has no {}: add `disk = {{ size = \"256MiB\" }}` to the recipe's [outputs] and rebuild", opts.out.display(), DISK_IMG);
            }
            for f in [OVMF_CODE, OVMF_VARS] {
                if !Path::new(f).is_file() {
                    bail!("{f} not found: UEFI boot needs OVMF (Debian package `ovmf`)");
                }
            }
            let state = state_dir(&opts.out);
            ufs::create_dir_all(&state)?;
            let vars = state.join("OVMF_VARS.fd");
            ufs::copy(Path::new(OVMF_VARS), &vars)?;
            c = c
                .args(["-machine", opts.hw.machine.unwrap_or(Machine::Q35).name()])
                .arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"
                ))
                .arg("-drive")
                .arg(format!(
                    "if=pflash,format=raw,unit=1,file={}",
                    vars.display()
                ))
                .arg("-drive")
                .arg(format!(
                    "file={},if=virtio,format=raw,snapshot=on",
                    disk.display()
                ));
        }
    }
    if opts.boot != BootMode::Uefi {
        if let Some(m) = opts.hw.machine {
            c = c.args(["-machine", m.name()]);
        }
    }
    c = c
        .args(nic_args(&opts.hw, &net)?)
        .args(disk_args(&opts.hw)?)
        .args(["-device", "virtio-rng-pci"]);
    c = match accel {
        Accel::Kvm => c.args(["-accel", "kvm"]),
        _ => c.args(["-accel", "tcg"]),
    };
    Ok(c)
}

fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Boots in the foreground (console on this terminal, Ctrl-A X quits) or, with
/// `until_ready`, in the background until the console says ready.
pub fn run(opts: &RunOptions) -> Result<()> {
    // QEMU -daemonize changes to /: every path it gets must be absolute.
    let mut opts = opts.clone();
    opts.out = std::path::absolute(&opts.out)
        .with_context(|| format!("cannot resolve {}", opts.out.display()))?;
    for d in &mut opts.hw.disks {
        d.file = std::path::absolute(&d.file)
            .with_context(|| format!("cannot resolve {}", d.file.display()))?;
    }
    let opts = &opts;
    check_out(opts)?;
    check_hardware(opts)?;
    if !opts.until_ready {
        let accel = if opts.accel == Accel::Auto && kvm_usable() {
            Accel::Kvm
        } else if opts.accel == Accel::Auto {
            Accel::Tcg
        } else {
            opts.accel
        };
        return qemu_command(opts, accel)?
            .args(["-serial", "mon:stdio"])
            .run_interactive();
    }
    let first = match opts.accel {
        Accel::Auto if kvm_usable() => Accel::Kvm,
        Accel::Auto => Accel::Tcg,
        a => a,
    };
    match boot_background(opts, first) {
        Err(e) if opts.accel == Accel::Auto && first == Accel::Kvm => {
            eprintln!("sanforge run: KVM did not boot ({e:#}); falling back to TCG");
            boot_background(opts, Accel::Tcg)
        }
        r => r,
    }
}

fn boot_background(opts: &RunOptions, accel: Accel) -> Result<()> {
    let state = state_dir(&opts.out);
    stop(&opts.out).ok();
    ufs::create_dir_all(&state)?;
    let console = state.join("console.log");
    let pidfile = state.join("qemu.pid");
    ufs::write(&console, "")?;
    let started = Instant::now();
    qemu_command(opts, accel)?
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-monitor")
        .arg(format!(
            "unix:{},server=on,wait=off",
            state.join("monitor.sock").display()
        ))
        .arg("-pidfile")
        .arg(&pidfile)
        .arg("-daemonize")
        .run(&Log::open(&state.join("qemu.log"))?)?;
    let mut f = std::fs::File::open(&console)
        .with_context(|| format!("cannot open {}", console.display()))?;
    let mut seen = String::new();
    let mut pos = 0u64;
    // With KVM, a kernel that has printed nothing after a few seconds is stuck.
    let kvm_deadline = Duration::from_secs(8);
    loop {
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(pos))
            .with_context(|| format!("cannot read {}", console.display()))?;
        f.read_to_end(&mut buf)
            .with_context(|| format!("cannot read {}", console.display()))?;
        pos += buf.len() as u64;
        let text = String::from_utf8_lossy(&buf);
        if opts.echo && !text.is_empty() {
            let mut so = std::io::stdout();
            let _ = so.write_all(text.as_bytes());
            let _ = so.flush();
        }
        seen.push_str(&text);
        if seen.contains(READY) {
            eprintln!(
                "sanforge run: ready after {:.1}s ({}); iSCSI on 127.0.0.1:{}; console {}; stop with `sanforge run --stop {}`",
                started.elapsed().as_secs_f64(),
                if accel == Accel::Kvm { "KVM" } else { "TCG" },
                opts.iscsi_port,
                console.display(),
                opts.out.display()
            );
            return Ok(());
        }
        if accel == Accel::Kvm
            && started.elapsed() > kvm_deadline
            && !seen.contains("Linux version")
            // Under UEFI, the firmware's boot manager speaks first.
            && !(opts.boot == BootMode::Uefi && seen.contains("BdsDxe"))
        {
            stop(&opts.out).ok();
            bail!(
                "no kernel output after {}s under KVM",
                kvm_deadline.as_secs()
            );
        }
        if started.elapsed() > opts.timeout {
            stop(&opts.out).ok();
            let tail: Vec<&str> = seen
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!(
                "`{READY}` did not appear within {}s; last console lines:\n  {}",
                opts.timeout.as_secs(),
                tail.join("\n  ")
            );
        }
        if !alive(&pidfile) && started.elapsed() > Duration::from_secs(1) {
            let tail: Vec<&str> = seen
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            bail!(
                "QEMU exited before `{READY}`; last console lines:\n  {}",
                tail.join("\n  ")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_pid(pidfile: &Path) -> Option<i32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

fn alive(pidfile: &Path) -> bool {
    read_pid(pidfile).is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Stops the VM started by `run --until-ready` for this output directory.
pub fn stop(out: &Path) -> Result<bool> {
    let pidfile = state_dir(out).join("qemu.pid");
    let Some(pid) = read_pid(&pidfile) else {
        return Ok(false);
    };
    let proc_cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&proc_cmd).contains("qemu") {
        let _ = std::fs::remove_file(&pidfile);
        return Ok(false);
    }
    crate::sys::kill_pid(pid, libc::SIGTERM);
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        crate::sys::kill_pid(pid, libc::SIGKILL);
    }
    let _ = std::fs::remove_file(&pidfile);
    Ok(true)
}

/// Sends one command to the monitor of the VM `run --until-ready` started for `out`
/// (QEMU's human monitor, e.g. `set_link nic0 off`, `info network`) and returns its
/// answer. A command QEMU does not know, or one it answers with `Error: …`, is an
/// error carrying the answer.
pub fn monitor(out: &Path, command: &str) -> Result<String> {
    use std::os::unix::net::UnixStream;
    if command.contains('\n') || command.trim().is_empty() {
        bail!("--monitor takes one command on one line, e.g. 'set_link nic0 off'");
    }
    let sock = state_dir(out).join("monitor.sock");
    if !alive(&state_dir(out).join("qemu.pid")) {
        bail!(
            "no VM is running for {} (start one with `sanforge run {} --until-ready`)",
            out.display(),
            out.display()
        );
    }
    let mut s = UnixStream::connect(&sock)
        .with_context(|| format!("cannot connect to the monitor {}", sock.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .with_context(|| format!("cannot set a timeout on {}", sock.display()))?;
    const PROMPT: &str = "(qemu) ";
    let read_prompt = |s: &mut UnixStream| -> Result<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.ends_with(PROMPT.as_bytes()) {
            let n = s
                .read(&mut chunk)
                .with_context(|| format!("no answer from the monitor {}", sock.display()))?;
            if n == 0 {
                bail!("the monitor {} closed the connection", sock.display());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    read_prompt(&mut s)?; // the banner
    s.write_all(format!("{command}\n").as_bytes())
        .with_context(|| format!("cannot write to the monitor {}", sock.display()))?;
    let answer = monitor_answer(&read_prompt(&mut s)?);
    if answer.starts_with("unknown command") || answer.starts_with("Error:") {
        bail!("QEMU's monitor refused `{command}`: {}", answer.trim_end());
    }
    Ok(answer)
}

/// The monitor's answer without its echo of the typed line (which ends at the first
/// CRLF), the closing prompt and the carriage returns.
fn monitor_answer(raw: &str) -> String {
    let body = raw.strip_suffix("(qemu) ").unwrap_or(raw);
    let body = body.split_once("\r\n").map(|(_, rest)| rest).unwrap_or("");
    body.replace("\r\n", "\n")
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
