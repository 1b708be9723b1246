//! High availability: a two-node cluster description (`cluster.toml`) rendered into the per-node files of Corosync, Pacemaker, DRBD and SCST (ALUA), and the OCF agent that switches ALUA states.
pub mod cluster;
pub mod ocf;
pub mod render;
