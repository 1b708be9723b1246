//! SCSI target models: the LIO configfs plan (and, from other stages, SCST's
//! scst.conf model); each turns a validated config into an ordered list of kernel
//! writes that sanforge-init executes.

pub mod lio;
