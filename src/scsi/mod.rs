//! SCSI target models: LIO configfs plans and SCST scst.conf.
pub mod lio;
pub mod scst;
