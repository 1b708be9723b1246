//! What sanforge-init does if it panics anyway. The init's code denies `unwrap`,
//! `expect`, `panic!` and indexing, but a bug in a dependency or in std can still
//! panic; as PID 1 the process would then exit and the kernel would panic with a
//! message that says nothing about why. Instead the binary's panic hook (installed
//! only when it runs as PID 1) calls [`reboot_after_panic`]: the panic message and
//! its location go to the console and `/dev/kmsg`, the file systems are synced, and
//! the machine reboots on purpose into the same verified image.

use super::Logger;
use crate::sys::{RebootCmd, Sys};
use std::any::Any;
use std::panic::Location;

/// `panicked at FILE:LINE:COL: MESSAGE`, from a panic's payload and location (the
/// parts of `std::panic::PanicHookInfo`).
pub fn describe(payload: &(dyn Any + Send), location: Option<&Location<'_>>) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    match location {
        Some(l) => format!(
            "panicked at {}:{}:{}: {message}",
            l.file(),
            l.line(),
            l.column()
        ),
        None => format!("panicked at an unknown location: {message}"),
    }
}

/// Logs `what` (see [`describe`]) to the console and `/dev/kmsg`, syncs and reboots.
/// Returns only if `reboot(2)` did not happen (it failed, or `sys` is a fake); the
/// caller must then not return from the panic hook, or PID 1 exits.
pub fn reboot_after_panic(sys: &mut dyn Sys, log: &mut Logger, what: &str) {
    log.open_kmsg(sys);
    log.line(&format!("BUG: {what}"));
    log.line("syncing and rebooting");
    sys.sync();
    if let Err(e) = sys.reboot(RebootCmd::Reboot) {
        log.line(&format!("cannot reboot: {e}; halting"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{FakeSys, Op};

    #[test]
    fn describe_names_the_location_and_the_message() {
        let here = Location::caller();
        let d = describe(&"index out of bounds", Some(here));
        assert_eq!(
            d,
            format!(
                "panicked at {}:{}:{}: index out of bounds",
                here.file(),
                here.line(),
                here.column()
            )
        );
        let owned: Box<dyn Any + Send> = Box::new(String::from("formatted 42"));
        assert_eq!(
            describe(owned.as_ref(), None),
            "panicked at an unknown location: formatted 42"
        );
        assert_eq!(
            describe(&7u32, None),
            "panicked at an unknown location: (no message)"
        );
    }

    #[test]
    fn a_panic_is_logged_then_synced_then_rebooted() {
        let dir = tempfile::tempdir().unwrap();
        let mut sys = FakeSys::new(dir.path().to_path_buf());
        let mut log = Logger::capture();
        reboot_after_panic(&mut sys, &mut log, "panicked at src/x.rs:1:2: boom");
        assert_eq!(
            log.lines(),
            [
                "BUG: panicked at src/x.rs:1:2: boom",
                "syncing and rebooting"
            ]
        );
        assert_eq!(sys.ops, [Op::Sync, Op::Reboot(RebootCmd::Reboot)]);
    }
}
