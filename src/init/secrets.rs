//! The node's secrets at boot: the CHAP accounts its node config
//! (`chap = { secret = "NAME" }`) and scst.conf (`IncomingUser secret:NAME`) name.
//! They are never in the image; they come from the secrets initrd
//! ([`CHAP_SECRETS`], written by `sanforge build --secrets` or `sanforge cluster
//! render`) or, on a disk-image node, from the config partition
//! ([`SECRETS_OVERRIDE`], committed by `sanforge-init secrets-set FILE`), in that order.
//! A name that neither has fails the targets step: the ports stay disabled rather than
//! open without authentication.
//!
//! Reads the two files above through [`Sys`].

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::config::node::Lio;
use crate::config::secrets::NodeSecrets;
use crate::contract::{CHAP_SECRETS, CONFIG_MOUNT, SECRETS_OVERRIDE};
use crate::scsi::scst::ScstConf;
use crate::sys::Sys;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where the init looks, in order.
pub fn places() -> [PathBuf; 2] {
    [
        PathBuf::from(CHAP_SECRETS),
        Path::new(CONFIG_MOUNT).join(SECRETS_OVERRIDE),
    ]
}

/// The first secrets file there is, parsed; None when there is none.
pub fn load(sys: &mut dyn Sys) -> Result<Option<(PathBuf, NodeSecrets)>> {
    for p in places() {
        if !sys.exists(&p) {
            continue;
        }
        let text = sys.read_to_string(&p)?;
        let s = NodeSecrets::parse(&p, &text)?;
        return Ok(Some((p, s)));
    }
    Ok(None)
}

/// The error for a secret that cannot be found, saying where the init looked and how
/// the secrets reach a node.
fn missing(what: &str, found: Option<&Path>) -> anyhow::Error {
    let looked = match found {
        Some(p) => format!("{} does not have it", p.display()),
        None => {
            let [a, b] = places();
            format!("neither {} nor {} exists", a.display(), b.display())
        }
    };
    anyhow::anyhow!(
        "{what}; {looked}: boot with the secrets initrd (`sanforge build --secrets FILE` writes OUT/secrets/initrd.cpio) or run `sanforge-init secrets-set FILE`"
    )
}

/// `lio` with its CHAP references filled in (unchanged when it has none).
pub fn resolve_lio(sys: &mut dyn Sys, lio: &Lio) -> Result<Lio> {
    let refers = lio
        .iscsi
        .iter()
        .flat_map(|t| &t.acls)
        .any(|a| a.chap.as_ref().is_some_and(|c| c.secret.is_some()));
    if !refers {
        return Ok(lio.clone());
    }
    let loaded = load(sys)?;
    let empty = NodeSecrets::default();
    let secrets = loaded.as_ref().map(|(_, s)| s).unwrap_or(&empty);
    secrets
        .resolve_lio(lio)
        .map_err(|e| missing(&e, loaded.as_ref().map(|(p, _)| p.as_path())))
}

/// `conf` with its `secret:NAME` accounts filled in (unchanged when it has none).
pub fn resolve_scst(sys: &mut dyn Sys, file: &Path, conf: &ScstConf) -> Result<ScstConf> {
    if crate::scsi::scst::secret_refs(conf).is_empty() {
        return Ok(conf.clone());
    }
    let loaded = load(sys)?;
    let empty = NodeSecrets::default();
    let secrets = loaded.as_ref().map(|(_, s)| s).unwrap_or(&empty);
    crate::scsi::scst::resolve_secrets(conf, secrets).map_err(|e| {
        missing(
            &format!("{}: {e}", file.display()),
            loaded.as_ref().map(|(p, _)| p.as_path()),
        )
    })
}

/// `sanforge-init secrets-set FILE`: validates FILE (private, a valid secrets file) and
/// commits it to the config partition (atomically); the next boot reads it.
pub fn secrets_set(sys: &mut dyn Sys, file: &Path) -> Result<()> {
    crate::config::secrets::check_private(file, "secrets file")?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    NodeSecrets::parse(file, &text)?;
    if !sys.exists(Path::new(CONFIG_MOUNT)) {
        bail!("{CONFIG_MOUNT} does not exist: the config partition is not mounted (was this node booted from a sanforge disk image? a PXE node gets its secrets from the secrets initrd)");
    }
    super::persist::write_atomic(
        sys,
        &Path::new(CONFIG_MOUNT).join(SECRETS_OVERRIDE),
        text.as_bytes(),
    )
    .context("cannot commit the secrets to the config partition")
}
