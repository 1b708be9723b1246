//! High availability: a two-node cluster description (`cluster.toml`) and its renderers
//! into the per-node files of Corosync, Pacemaker, DRBD and SCST (ALUA), each laid out
//! by a tera template in `src/ha/templates/`. The OCF agent that switches ALUA states at
//! run time is [`crate::agent`].
pub mod cluster;
pub mod render;
