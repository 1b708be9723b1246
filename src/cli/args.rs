//! The verbs of `sanforge` and their options, with their help texts (clap derive).

use crate::commands::run::{Accel, BootMode, DiskSpec, Forward, Machine, NicSpec};
use clap::Subcommand;
use std::path::PathBuf;

use super::DEFAULT_RECIPE;

#[derive(Subcommand)]
pub enum Command {
    /// Build an image from a recipe (only the stages whose inputs changed)
    #[command(
        long_about = "Build an image from a recipe. Each stage (fetch, kernel, userland, rootfs, outputs) \
is keyed by the hash of everything it reads; a stage whose key is in the cache is skipped, so changing the node \
config rebuilds the initramfs but not the kernel. Outputs are written to a staging directory and swapped in at \
the end: an interrupted build never leaves half an output. Logs: OUT/logs/STAGE.log."
    )]
    Build {
        /// Recipe file
        #[arg(default_value = DEFAULT_RECIPE)]
        recipe: PathBuf,
        /// Output directory [default: out/<recipe name>, or out/<recipe name>@<kernel> with --kernel naming a [kernel.matrix] entry]
        #[arg(long)]
        out: Option<PathBuf>,
        /// Build this kernel of the recipe ([kernel] name or a [kernel.matrix] entry) [default: [kernel]]
        #[arg(long, value_name = "NAME")]
        kernel: Option<String>,
        /// Fail unless recipes/<name>.lock exists and matches the recipe
        #[arg(long)]
        locked: bool,
        /// Parallel jobs for the kernel build [default: number of CPUs]
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// The sanforge-init binary to install as /init [default: beside this program]
        #[arg(long)]
        init: Option<PathBuf>,
        /// Build twice (other paths, umask, TZ, locale, fresh stage caches) and compare every output byte for byte
        #[arg(long, conflicts_with_all = ["out", "secrets"])]
        verify: bool,
        /// The node's secrets (`[chap.NAME]` user, password; mode 0600): checked against what the node configs name, written to OUT/secrets/initrd.cpio (a second initrd), never into the image
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// After the build, print why the image is the size it is: the largest files, their package, why each is kept, and what was dropped
        #[arg(long)]
        explain_size: bool,
        /// Share stage entries through an OCI registry: oci://HOST[:PORT]/REPOSITORY, or `off` [default: $SANFORGE_REMOTE_CACHE, else the recipe's [cache] remote]
        #[arg(long, value_name = "URL")]
        remote_cache: Option<String>,
        /// Secret key (`sanforge keygen`) that signs the entries this build pushes [default: $SANFORGE_REMOTE_CACHE_KEY; none: pull only]
        #[arg(long, value_name = "KEY")]
        remote_cache_key: Option<PathBuf>,
    },
    /// Sign an output directory: writes OUT/SHA256SUMS.sig (Ed25519 over SHA256SUMS)
    Sign {
        out: PathBuf,
        /// Secret key written by `sanforge keygen`
        #[arg(long)]
        key: PathBuf,
    },
    /// Check an output directory's signature and re-hash every file SHA256SUMS lists
    VerifyImage {
        out: PathBuf,
        /// Trusted public key (KEY.pub written by `sanforge keygen`)
        #[arg(long)]
        pubkey: PathBuf,
    },
    /// Create a signing key pair: KEY (secret, mode 0600) and KEY.pub; or, with
    /// --module-signing, the RSA key + certificate PEM that [kernel.module-signing] names
    Keygen {
        #[arg(long, required_unless_present = "module_signing")]
        out: Option<PathBuf>,
        /// Write a module-signing key (RSA 4096 + self-signed X.509 certificate, one PEM
        /// file, mode 0600) to PATH (default keys/module-signing.pem)
        #[arg(long, value_name = "PATH", num_args = 0..=1, conflicts_with = "out")]
        module_signing: Option<Option<PathBuf>>,
    },
    /// Show every stage with its cache key and whether it will run (offline)
    Plan {
        #[arg(default_value = DEFAULT_RECIPE)]
        recipe: PathBuf,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        init: Option<PathBuf>,
        /// Plan this kernel of the recipe's matrix [default: [kernel]]
        #[arg(long, value_name = "NAME")]
        kernel: Option<String>,
    },
    /// Build every kernel of a recipe's matrix, boot each, print a table
    #[command(
        long_about = "Build the image once per kernel the recipe names ([kernel] and each [kernel.matrix] \
entry), boot each built image in QEMU until `sanforge-init: ready` (unless --no-boot) and print one row per \
kernel: version, stages passed, image size (vmlinuz + initramfs), build time, boot-to-ready time. Each kernel \
has its own cache keys and output directory (out/<recipe> for [kernel], out/<recipe>@<kernel> for the others), \
so changing one kernel never rebuilds another. A failing kernel does not stop the others; the exit status is \
non-zero if any kernel failed to build or boot."
    )]
    Matrix {
        #[arg(default_value = DEFAULT_RECIPE)]
        recipe: PathBuf,
        /// Only build; do not boot the images
        #[arg(long)]
        no_boot: bool,
        /// Parent output directory: each kernel goes to OUT/<kernel> [default: the `build --kernel` directories]
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Accel::Auto)]
        accel: Accel,
        /// Seconds to wait for each image to be ready
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Guest memory in MiB
        #[arg(long, default_value_t = 512)]
        memory: u32,
        /// Fail unless recipes/<name>.lock exists and matches the recipe
        #[arg(long)]
        locked: bool,
        /// Parallel jobs for the kernel builds [default: number of CPUs]
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        #[arg(long)]
        init: Option<PathBuf>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Download a recipe's sources into the cache, or import files into it
    #[command(
        long_about = "Download every source a recipe names into the cache, verifying each sha256. \
With --import, put local files into the cache by their sha256 instead (for machines that cannot reach \
upstream: copy the file over, import it, and the recipe finds it without network). A directory (a checkout) \
is imported by its tree hash, and a tar archive (.tar.gz, .tar.bz2, .tar.xz, .tar.zst, .tar) by its sha256 \
and by the tree hash of its content (its single top folder, if any, is the root), for sources pinned by \
`tree = \"tree-v1:…\"`. Every kernel of the recipe's [kernel.matrix] is fetched too."
    )]
    Fetch {
        #[arg(default_value = DEFAULT_RECIPE)]
        recipe: PathBuf,
        /// Files to put into the cache by their sha256, directories (and the content of
        /// tar archives) by their tree hash; no download: every one or none
        #[arg(long, value_name = "FILE|DIR", num_args = 1..)]
        import: Vec<PathBuf>,
    },
    /// Pin every input of a recipe by sha256 in recipes/<name>.lock (apt resolves the package closure)
    #[command(
        long_about = "Resolve and pin every input of a recipe in recipes/<name>.lock: sources by sha256, and the \
package closure apt resolves for [userland] packages (every package with its exact version and the .deb's \
sha256), in a private apt state under the cache. Versions the current lock pins are kept: only what the \
recipe added or changed is resolved. `--update` moves every package to the archive's current version, \
`--update PKG…` only those. The file is written atomically."
    )]
    Lock {
        #[arg(default_value = DEFAULT_RECIPE)]
        recipe: PathBuf,
        /// Re-resolve these packages (all of them when none is named) instead of keeping their locked versions
        #[arg(long, value_name = "PKG", num_args = 0..)]
        update: Option<Vec<String>>,
    },
    /// Boot an output directory in QEMU (serial console here, iSCSI forwarded to 127.0.0.1)
    #[command(
        long_about = "Boot an output directory in QEMU. The guest gets user networking restricted to \
itself (192.0.2.15, nothing outside reachable) with its iSCSI port forwarded to 127.0.0.1:--iscsi-port. \
Without --until-ready the console is this terminal (Ctrl-A X quits). With --until-ready QEMU runs in the \
background and this command exits 0 once the console prints `sanforge-init: ready` (non-zero on timeout); \
stop it with --stop.\n\n\
Server hardware: --machine q35, NICs with --nic (virtio, e1000e, vmxnet3), disks with --disk behind the \
controllers servers carry (virtio, ahci, nvme, megasas-gen2, mptsas1068). NICs on the same network share one \
QEMU hub, so two NICs on the user network are one bond's two slaves (the node config bonds them by MAC); \
--monitor 'set_link nic0 off' then pulls the first one's cable. Two VMs are linked by a socket on 127.0.0.1: \
net=listen:PORT on the first VM's NICs, net=connect:PORT on the second's.\n\n\
Examples:\n  \
# a server: two bonded e1000e NICs, a MegaRAID HBA with two disks, an NVMe drive\n  \
sanforge run --until-ready --machine q35 --nic e1000e --nic e1000e \\\n    \
--disk a.img,megasas-gen2 --disk b.img,megasas-gen2 --disk c.img,nvme --append sanforge.node=server\n  \
# pull the active NIC's cable, put it back\n  \
sanforge run --monitor 'set_link nic0 off'\n  \
sanforge run --monitor 'set_link nic0 on'\n  \
# two VMs (two output directories) linked by a bond of two NICs each\n  \
sanforge run out/a --until-ready --iscsi-port 3261 --nic virtio \\\n    \
--nic e1000e,net=listen:4000 --nic e1000e,net=listen:4000\n  \
sanforge run out/b --until-ready --iscsi-port 3262 --nic virtio,mac=52:54:00:00:0b:0f \\\n    \
--nic e1000e,net=connect:4000,mac=52:54:00:00:0b:10 --nic e1000e,net=connect:4000,mac=52:54:00:00:0b:11"
    )]
    Run {
        /// Output directory [default: out/storage-node]
        #[arg(default_value = "out/storage-node")]
        out: PathBuf,
        /// Host port (on 127.0.0.1) forwarded to the guest's iSCSI port 3260
        #[arg(long, default_value_t = 3260)]
        iscsi_port: u16,
        /// Return once the node is ready, leaving it running in the background
        #[arg(long)]
        until_ready: bool,
        /// Seconds to wait for ready
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Guest memory in MiB
        #[arg(long, default_value_t = 512)]
        memory: u32,
        #[arg(long, value_enum, default_value_t = Accel::Auto)]
        accel: Accel,
        /// How the guest boots: direct kernel load, or PXE through iPXE and TFTP
        #[arg(long, value_enum, default_value_t = BootMode::Direct)]
        boot: BootMode,
        /// Extra kernel command-line arguments (repeatable), e.g. sanforge.node=san2
        #[arg(long = "append", value_name = "ARG")]
        append: Vec<String>,
        /// Stop the VM that `run --until-ready` started for this output directory
        #[arg(long)]
        stop: bool,
        /// Do not copy the console to this terminal while waiting
        #[arg(long)]
        quiet: bool,
        /// QEMU machine type [default: pc; q35 with --boot uefi]
        #[arg(long, value_enum)]
        machine: Option<Machine>,
        /// A NIC, repeatable, in PCI order: device nic0, nic1, … [default: one virtio NIC on the user network]
        #[arg(
            long = "nic",
            value_name = "MODEL[,net=NET][,mac=MAC]",
            long_help = "A NIC, repeatable; the Nth (from 0) is QEMU device nicN, the name --monitor \
'set_link nicN off' takes. MODEL: virtio, e1000e (Intel 82574L) or vmxnet3. NET: user (default: QEMU's user \
network, restricted to the guest, where --iscsi-port and --forward arrive), listen:PORT (a link to another VM, \
which connects to 127.0.0.1:PORT) or connect:PORT (the other end; start the listening VM first). NICs on the \
same network share a hub: two NICs on `user` are the slaves of an active-backup bond with the node's address \
on it. MAC default: 52:54:00:00:02:0f for nic0, then :10, :11, … (give two linked VMs different ones). \
Without --nic: one virtio NIC on the user network."
        )]
        nics: Vec<NicSpec>,
        /// A disk image behind a controller, repeatable: serial sanforge-dN for the Nth (from 0)
        #[arg(
            long = "disk",
            value_name = "FILE[,CONTROLLER]",
            long_help = "A disk image (raw, or qcow2 by its header) behind a controller, repeatable, e.g. \
--disk a.img,megasas-gen2. CONTROLLER: \
virtio (default; one virtio-blk device each), ahci (one ICH9 AHCI controller, 6 ports), nvme (one NVMe \
controller each), megasas-gen2 (one LSI MegaRAID SAS 2108 for all of them) or mptsas1068 (one LSI SAS 1068 for \
all of them). The Nth disk (from 0) has serial sanforge-dN, so the guest's udev names it predictably: \
/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_sanforge-dN (megasas-gen2, mptsas1068), ata-QEMU_HARDDISK_sanforge-dN, \
nvme-QEMU_NVMe_Ctrl_sanforge-dN, virtio-sanforge-dN. Writes go to the file (make one with \
`truncate -s 1G a.img`)."
        )]
        disks: Vec<DiskSpec>,
        /// Also forward TCP 127.0.0.1:HOST to the guest's port GUEST (user network), repeatable
        #[arg(long = "forward", value_name = "HOST:GUEST")]
        forwards: Vec<Forward>,
        /// A guest reboot resets the machine (A/B updates, `sanforge push`) instead of ending QEMU
        #[arg(long)]
        reboot: bool,
        /// Send one command to the monitor of the VM `run --until-ready` started, e.g. 'set_link nic0 off', and print its answer
        #[arg(long, value_name = "COMMAND", conflicts_with = "stop")]
        monitor: Option<String>,
    },
    /// Serve an output directory over HTTP for iPXE (`chain http://ADDR/boot.ipxe`)
    Serve {
        #[arg(default_value = "out/storage-node")]
        out: PathBuf,
        /// Address to listen on: loopback for tests, a LAN address for PXE clients
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// A node's status over SSH: image, boot slot, boot timeline, hardware, targets, services, HA
    Status {
        /// The node's address or name
        host: String,
        /// SSH port
        #[arg(long, default_value_t = 22)]
        port: u16,
        /// Private key (ssh -i); ssh's defaults without it
        #[arg(short = 'i', long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// known_hosts file for the node's host key [default: ssh's]
        #[arg(long, value_name = "FILE")]
        known_hosts: Option<PathBuf>,
        /// Print the node's JSON as it came
        #[arg(long)]
        json: bool,
    },
    /// Update a node over SSH: check OUT's signature here, copy it, `sanforge-init update`, reboot, wait for ready
    Push(crate::commands::push::PushArgs),
    /// List the host tools sanforge needs, which are missing, and their Debian packages
    Doctor,
    /// Kernel configuration tools
    Kconfig {
        #[command(subcommand)]
        command: KconfigCommand,
    },
    /// SCST tools: check an scst.conf, print the sysfs writes it makes
    Scst {
        #[command(subcommand)]
        command: ScstCommand,
    },
    /// Node config tools
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// HA cluster: check cluster.toml, render per-node Corosync/Pacemaker/DRBD/SCST files, make secrets
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Render OUT/NODE/{node.toml,corosync.conf,cib.xml,drbd/,scst.conf,secrets/} for every node
    Render {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Secrets file [default: CLUSTER.secrets.toml beside the cluster file]
        #[arg(long)]
        secrets: Option<PathBuf>,
    },
    /// Validate a cluster.toml; exit 1 on errors, warnings are printed
    Check { file: PathBuf },
    /// Write a new secrets file (mode 0600) with random keys; never overwrites
    Secrets {
        #[arg(long)]
        out: PathBuf,
        /// Also make CHAP secrets for this cluster's `chap = true` initiators
        #[arg(long)]
        cluster: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum KconfigCommand {
    /// Build the recipe's kernel config and verify every requested option survived
    Check {
        #[arg(default_value = DEFAULT_RECIPE)]
        recipe: PathBuf,
        /// Check this kernel of the recipe's matrix [default: [kernel]]
        #[arg(long, value_name = "NAME")]
        kernel: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ScstCommand {
    /// Validate an scst.conf (scstadmin's grammar); exit 1 on errors, warnings are printed
    Check { file: PathBuf },
    /// Print the ordered sysfs writes (path <- command) that applying FILE makes (CHAP secrets as <redacted>)
    Plan {
        file: PathBuf,
        /// Print CHAP secrets instead of <redacted>
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print a synthetic valid scst.conf of the given size (for benches/scst.sh)
    #[command(hide = true)]
    Generate {
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        #[arg(long, default_value_t = 64)]
        targets: usize,
        #[arg(long, default_value_t = 64)]
        groups: usize,
        /// The iSCSI layout a QEMU guest can apply for real (benches/scst-apply.sh):
        /// vdisk_nullio devices, iSCSI targets, no ALUA group
        #[arg(long)]
        iscsi: bool,
    },
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Validate a node config (the same check the init makes at boot); messages redact CHAP secrets
    Check {
        file: PathBuf,
        /// Also check that this secrets file (mode 0600) has every account the node config and its scst.conf name
        #[arg(long, value_name = "FILE")]
        secrets: Option<PathBuf>,
        /// Print CHAP secrets in messages instead of <redacted>
        #[arg(long)]
        show_secrets: bool,
    },
}
