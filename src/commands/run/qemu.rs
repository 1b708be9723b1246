//! The QEMU command line of `run` and `matrix`: kernel, initrds and command line, the
//! NICs and disks of [`Hardware`](super::Hardware), user networking restricted to the
//! guest.

use super::hardware::OVMF_VARS;
use super::{
    default_mac, disk_serial, state_dir, Accel, BootMode, DiskBus, Hardware, Machine, NicModel,
    NicNet, NicSpec, RunOptions, OVMF_CODE,
};
use crate::contract::DISK_IMG;
use crate::util::cmd::Cmd;
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

pub(super) fn cmdline(out: &Path, extra: &[String]) -> Result<String> {
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
pub(super) fn initrd_with_secrets(out: &Path) -> Result<PathBuf> {
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
pub(super) fn check_out(opts: &RunOptions) -> Result<()> {
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
pub(super) fn qemu_escape(p: &Path) -> Result<String> {
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

/// `romfile=` on every `-device` of `args`: with `-kernel` nothing boots from the
/// network, yet SeaBIOS would run each NIC's iPXE option ROM before loading the
/// kernel (about half a second per NIC under TCG). PXE and UEFI boots keep them.
pub fn without_option_roms(args: &mut [String]) {
    let mut device = false;
    for a in args.iter_mut() {
        if device {
            a.push_str(",romfile=");
        }
        device = a == "-device";
    }
}

/// Whether a disk image is qcow2 (by its magic), else raw.
pub(super) fn disk_format(file: &Path) -> Result<&'static str> {
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
pub(super) fn user_netdev(opts: &RunOptions) -> Result<String> {
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
pub(super) fn check_hardware(opts: &RunOptions) -> Result<()> {
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
    let mut nics = nic_args(&opts.hw, &net)?;
    if opts.boot == BootMode::Direct {
        without_option_roms(&mut nics);
    }
    c = c
        .args(nics)
        .args(disk_args(&opts.hw)?)
        .args(["-device", "virtio-rng-pci"]);
    c = match accel {
        Accel::Kvm => c.args(["-accel", "kvm"]),
        _ => c.args(["-accel", "tcg"]),
    };
    Ok(c)
}

pub(super) fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}
