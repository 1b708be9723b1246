//! The image contract: every path, file name, partition label, command-line key and
//! format that the builder writes and the init (or the OCF agent) reads. Both sides
//! import these names from here and nowhere else, so a rename cannot break one side
//! silently. Paths inside the image are absolute (`/etc/sanforge/node.toml`); the
//! builder writes them relative to the image root ([`in_image`]).
//!
//! * [`formats`] — what a kernel and an initramfs of an output directory look like.
//! * [`loader`] — systemd-boot loader entries of the A/B slots (written by the disk
//!   image writer, rewritten by `sanforge-init update` and the blessing step).
//! * [`partitions`] — GPT names and derived PARTUUIDs of the slots' root partitions.
//! * [`verity`] — the dm-verity hash tree and the command line that builds the root.
//! * [`signature`] — `SHA256SUMS` and `SHA256SUMS.sig` of an output directory (written
//!   by `sanforge sign`, checked by `sanforge verify-image` and `sanforge-init update`).
//! * [`timeline`] — the boot timeline the init records ([`TIMELINE`]).
//! * [`status`] — a node's status (`sanforge-init status --json`, read by `sanforge
//!   status HOST`) and the services' state file ([`SERVICES_STATE`]).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

pub mod formats;
pub mod loader;
pub mod partitions;
pub mod signature;
pub mod status;
pub mod timeline;
pub mod verity;

// ---- The node config and what comes with it ----------------------------------

/// The node config the image boots with.
pub const NODE_CONFIG: &str = "/etc/sanforge/node.toml";
/// `[node] configs`: one `NAME.toml` per node, picked by `sanforge.node=NAME` or MAC.
pub const NODE_CONFIG_DIR: &str = "/etc/sanforge/nodes";
/// Where a relative `[scst] conf` of the node config is resolved.
pub const CONF_DIR: &str = "/etc/sanforge";
/// A cluster node's own `scst.conf` (`sanforge cluster render`), as its node config
/// names it (`[scst] conf`): `NODE.scst.conf`, beside the node config at build time and
/// under [`CONF_DIR`] in the image. Per node, since each holds only that node's target
/// ports, and one image serves every node of the cluster.
pub fn node_scst_conf(node: &str) -> String {
    format!("{node}.scst.conf")
}
/// The DLM daemon's settings (`dlm_controld`, Debian's dlm-controld).
pub const DLM_CONF: &str = "/etc/dlm/dlm.conf";
/// The Pacemaker CIB rendered by `sanforge cluster render`, seeded at first start.
pub const CIB_SEED: &str = "/etc/sanforge/cib.xml";
/// Where secret files live in the image (delivered by the secrets initrd).
pub const SECRETS_DIR: &str = "/etc/sanforge/secrets";
/// The node's CHAP accounts (`[chap.NAME]` user, password), named by the node config
/// and scst.conf (delivered by the secrets initrd, never baked into an image).
pub const CHAP_SECRETS: &str = "/etc/sanforge/secrets/chap.toml";
/// The same accounts committed to the config partition (`sanforge-init secrets-set`),
/// read when the secrets initrd has none.
pub const SECRETS_OVERRIDE: &str = "secrets.toml";
/// Where corosync reads its key (delivered by the secrets initrd).
pub const AUTHKEY_PATH: &str = "/etc/corosync/authkey";
/// The public key `sanforge-init update` trusts when it is baked in.
pub const UPDATE_KEY: &str = "/etc/sanforge/update.pub";
/// PID 1: the init binary, also the OCF agent through a link.
pub const INIT: &str = "/init";

// ---- Run-time state of the init ------------------------------------------------

/// The config partition, mounted by the init.
pub const CONFIG_MOUNT: &str = "/run/sanforge/config";
/// Where `sanforge push` stages a new output directory on the node (RAM, gone at the
/// next boot) before `sanforge-init update` checks and installs it: an interrupted copy
/// never touches a slot, and the next push starts the directory afresh.
pub const PUSH_STAGING: &str = "/run/sanforge/push";
/// The EFI system partition, mounted by the init for updates and blessing.
pub const ESP_MOUNT: &str = "/run/sanforge/esp";
/// The node config override on the config partition (`sanforge-init config-set`).
pub const OVERRIDE: &str = "node.toml";
/// The record of the configuration SCST was last moved to (canonical `scst.conf`).
pub const SCST_APPLIED: &str = "/run/sanforge/scst.applied";
/// The lock every SCST writer holds.
pub const SCST_LOCK: &str = "/run/sanforge/scst.lock";
/// The hardware report of this boot (PCI devices and their drivers, firmware, NICs,
/// disks), JSON; the console shows the same as a table.
pub const HARDWARE_REPORT: &str = "/run/sanforge/hardware.json";
/// The node's `[modules] blacklist` and `params` as modprobe.d lines, written at boot
/// for what loads modules after the init: udev's kmod builtin (hotplug) and modprobe.
pub const MODPROBE_CONF: &str = "/etc/modprobe.d/sanforge.conf";

/// The boot timeline of this boot, JSON, rewritten after every boot step (so a node
/// stuck in a step shows which): `{"version": 1, "clock": "boottime", "steps": [{"name":
/// "kernel", "start": 0.0, "end": 1.234, "outcome": "ok", "message": null}, {"name":
/// "mounts", …}, …], "ready": 3.456, "state": "ready"}`. Times are seconds since the
/// kernel started (CLOCK_BOOTTIME); the first step, `kernel`, runs from 0 to the init's
/// first clock reading; the others are the init's boot steps by name; `outcome` is
/// `running`, `ok`, `warning` (a warn-policy step failed, `message` says why) or
/// `fatal` (the node went degraded there); `ready` (null until then) is when the final
/// state line was printed and `state` that line (`ready`, `state: degraded …`;
/// `booting` until then). Written by `Init::run_step` (see [`timeline`]).
pub const TIMELINE: &str = "/run/sanforge/timeline.json";
/// The supervised services, JSON, rewritten at every start and exit: `{"services":
/// [{"name": "syslogd", "pid": 123, "state": "running", "starts": 2, "restarts": 1,
/// "last_exit": "exit status 1"}]}` (`state`: `running`, `waiting` (a restart is
/// due), `stopped`; `pid` null unless running; `last_exit` null until one exited).
pub const SERVICES_STATE: &str = "/run/sanforge/services.json";
/// chronyd's configuration, generated from `[time] servers` at boot.
pub const CHRONY_CONF: &str = "/run/sanforge/chrony.conf";
/// chronyd and chronyc (Debian package `chrony`), needed when `[time] servers` is set.
pub const CHRONYD: &str = "/usr/sbin/chronyd";
pub const CHRONYC: &str = "/usr/bin/chronyc";
/// Where chronyd keeps its command socket and drift file.
pub const CHRONY_RUN_DIR: &str = "/run/chrony";
/// Root's public keys for SSH logins, written at boot from `[ssh] authorized-keys`.
pub const AUTHORIZED_KEYS: &str = "/root/.ssh/authorized_keys";
/// The SSH server and its key generator (Debian package `dropbear-bin`).
pub const DROPBEAR: &str = "/usr/sbin/dropbear";
pub const DROPBEARKEY: &str = "/usr/bin/dropbearkey";
/// The SSH host key's directory on the config partition (generated on first boot).
pub const SSH_KEY_DIR: &str = "ssh";
/// Where the host key lives on a node without a config partition (new every boot).
pub const SSH_RUN_KEY_DIR: &str = "/run/sanforge/ssh";
/// The host key's file name (dropbear's format).
pub const SSH_HOST_KEY: &str = "dropbear_ed25519_host_key";
// ---- Storage: md, LVM and the targets' persistent state ---------------------------

/// Debian's mdadm (package `mdadm`): the init assembles the `[storage]` arrays with it.
pub const MDADM: &str = "/sbin/mdadm";
/// Where the init writes `[storage] mdadm-conf` (mdadm's default config file).
pub const MDADM_CONF: &str = "/etc/mdadm/mdadm.conf";
/// Debian's LVM (package `lvm2`): `lvm vgchange -ay VG` at boot and in the OCF agent.
pub const LVM: &str = "/sbin/lvm";
/// The lvm.conf the init writes at boot (devices scanned in /dev, no udev).
pub const LVM_CONF: &str = "/etc/lvm/lvm.conf";
/// The GPT name (`PARTNAME`, `/dev/disk/by-partlabel/…`) of disk.img's state partition.
pub const STATE_NAME: &str = "SANFORGE-STATE";
/// The ext4 volume label of the state partition.
pub const STATE_LABEL: &str = "SANFORGE-STATE";
/// Where the init mounts the state device.
pub const STATE_MOUNT: &str = "/run/sanforge/state";
/// LIO's state directory (`db_root`) as the kernel reports it in configfs.
pub const LIO_DBROOT_ATTR: &str = "/sys/kernel/config/target/dbroot";
/// LIO's `db_root` when the kernel does not say: `/etc/target` when it exists (the
/// kernel prefers it at load), else `/var/target`.
pub const LIO_DBROOTS: [&str; 2] = ["/etc/target", "/var/target"];
/// The target state directories bound onto the state device: (directory of the
/// state device, directory the target uses; `{dbroot}` is LIO's db_root).
pub const LIO_STATE_DIRS: [(&str, &str); 2] = [("lio/pr", "pr"), ("lio/alua", "alua")];
pub const SCST_STATE_DIRS: [(&str, &str); 2] = [
    ("scst/pr", "/var/lib/scst/pr"),
    ("scst/vdev_mode_pages", "/var/lib/scst/vdev_mode_pages"),
];

/// The DHCP lease of each link (`address A/N`, `router R`), written by
/// `sanforge-init` as udhcpc's script and read back at the next event and at boot.
pub const DHCP_STATE_DIR: &str = "/run/sanforge/dhcp";

// ---- Debian's udev, when a recipe keeps it --------------------------------------

/// The udev daemon (package `udev`: a link to udevadm); the init supervises it.
pub const UDEVD: &str = "/lib/systemd/systemd-udevd";
/// udevadm: `trigger` replays the coldplug events, `settle` waits for them.
pub const UDEVADM: &str = "/bin/udevadm";
/// The control socket udevd creates once it listens for kernel events.
pub const UDEV_CONTROL: &str = "/run/udev/control";

/// Where the new root is assembled before the switch: a directory of the init-only
/// initramfs of a squashfs-root slot.
pub const NEW_ROOT: &str = "sysroot";

// ---- The kernel command line ---------------------------------------------------

/// `sanforge.node=NAME`: which of `[node] configs` this machine is.
pub const CMDLINE_NODE: &str = "sanforge.node=";
/// `sanforge.slot=a|b`: the disk slot the loader booted (written into loader entries).
pub const CMDLINE_SLOT: &str = "sanforge.slot=";
/// `sanforge.shell=1`: a root shell on the console (`init::shell`); never by default.
pub const CMDLINE_SHELL: &str = "sanforge.shell=";
/// `sanforge.bench=scst-apply`: after the boot the init measures its SCST apply
/// against busybox replaying the same writes (`init::bench`, benches/scst-apply.sh);
/// never by default.
pub const CMDLINE_BENCH: &str = "sanforge.bench=";
/// `sanforge.root=verity`: the init mounts the dm-verity root the kernel created.
pub const CMDLINE_VERITY_ROOT: &str = "sanforge.root=verity";
/// Name of the device-mapper device the kernel creates for a verity root.
pub const VERITY_DM_NAME: &str = "sanforge-root";

// ---- Output files of a build ---------------------------------------------------

pub const VMLINUZ: &str = "vmlinuz";
pub const INITRAMFS: &str = "initramfs.cpio.zst";
pub const BOOT_IPXE: &str = "boot.ipxe";
pub const MANIFEST: &str = "manifest.json";
pub const SBOM: &str = "sbom.cdx.json";
/// The raw disk image, written when the recipe has `[outputs] disk`.
pub const DISK_IMG: &str = "disk.img";
/// The squashfs root, its dm-verity hash tree, their description and the disk slots'
/// initramfs (recipes with `[outputs] root = "squashfs"`).
pub const ROOT_SQUASHFS: &str = "root.squashfs";
pub const ROOT_VERITY: &str = "root.verity";
pub const ROOT_JSON: &str = "root.json";
pub const INIT_CPIO: &str = "init.cpio.zst";
/// sha256 of every output; signed into [`SIG_FILE`](signature::SIG_FILE).
pub use signature::{SIG_FILE, SUMS_FILE};

// ---- The disk image ------------------------------------------------------------

/// FAT volume label of the EFI system partition.
pub const ESP_LABEL: &str = "SANFORGEESP";
/// FAT volume label of the config partition (found by the init without udev).
pub const CONFIG_LABEL: &str = "SANFORGECFG";
/// GPT partition names.
pub const ESP_NAME: &str = "SANFORGE-ESP";
pub const CONFIG_NAME: &str = "SANFORGE-CFG";
/// The A/B slots.
pub const SLOTS: [char; 2] = ['a', 'b'];

/// The `scst.conf` path in the image: absolute as is, else under [`CONF_DIR`].
pub fn conf_path(conf: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(conf);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::path::Path::new(CONF_DIR).join(p)
    }
}

/// An absolute image path as the builder writes it (relative to the image root).
pub fn in_image(path: &str) -> &str {
    path.trim_start_matches('/')
}
