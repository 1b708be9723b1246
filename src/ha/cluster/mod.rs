//! `cluster.toml`: one description of a two-node (or quorum-device) storage cluster —
//! nodes and their links, Corosync, quorum, fencing, DRBD resources, virtual IPs,
//! exported devices, target ports, initiator ACLs and ALUA states — parsed with
//! `deny_unknown_fields` and validated once into a [`Cluster`], so the renderer never
//! re-checks. Secrets (Corosync authkey, DRBD shared secret, CHAP) live in a separate
//! file ([`Secrets`]) that is never part of the rendered public files.
//!
//! Reads: the cluster file and the secrets file given by the caller; `/dev/urandom`
//! when generating secrets.
//!
//! The parts: `model` (the file's types and the validated [`Cluster`]), `validate`
//! (one validator per concern), `secrets` (the secrets file).

mod model;
mod secrets;
mod validate;

pub use model::{
    AluaConf, Cluster, CorosyncConf, DrbdAgent, DrbdConf, DrbdNodeConf, DrbdVersion, ExportConf,
    FencePeer, Fencing, FencingConf, FencingMode, InitiatorConf, InterfaceConf, Node, NodeConf,
    QdeviceConf, Quorum, QuorumConf, RawCluster, TargetStack, VipConf, DEFAULT_PORTAL,
};
pub use secrets::{generate_secrets, write_secrets, ChapSecret, Secrets};
pub use validate::check_alua;
