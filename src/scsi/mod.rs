//! SCSI target models: LIO configfs plans and SCST scst.conf.
pub mod scst;
