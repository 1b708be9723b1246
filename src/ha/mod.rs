//! High availability: the cluster renderers and the OCF resource agent Pacemaker runs.

pub mod ocf;
