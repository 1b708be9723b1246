//! The SPC commands an initiator of an ALUA cluster uses, on top of the RFC 7143
//! initiator of `iscsi.rs` (issue 14, seeds 000 and 002): INQUIRY's Device
//! Identification page (VPD 0x83), REPORT TARGET PORT GROUPS (MAINTENANCE IN 0xA3,
//! service action 0x0A) and PERSISTENT RESERVE IN (0x5E: READ KEYS, READ RESERVATION)
//! / OUT (0x5F: REGISTER, RESERVE, RELEASE, CLEAR, REGISTER AND IGNORE EXISTING KEY).
//! The decoders are pure functions over the returned bytes (SPC-4 §6.37, §6.27, §6.15,
//! §7.8.6), unit-tested in tests/iscsi_initiator.rs.

use super::iscsi::Session;
use std::io::{self, ErrorKind};

fn invalid(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// An ALUA asymmetric access state (SPC-4 table 180).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluaState {
    ActiveOptimized,
    ActiveNonOptimized,
    Standby,
    Unavailable,
    LbaDependent,
    Offline,
    Transitioning,
    Other(u8),
}

impl AluaState {
    pub fn from_code(c: u8) -> AluaState {
        match c & 0x0f {
            0x0 => AluaState::ActiveOptimized,
            0x1 => AluaState::ActiveNonOptimized,
            0x2 => AluaState::Standby,
            0x3 => AluaState::Unavailable,
            0x4 => AluaState::LbaDependent,
            0xe => AluaState::Offline,
            0xf => AluaState::Transitioning,
            o => AluaState::Other(o),
        }
    }

    /// The state a cluster file names (`[alua]`: active, nonoptimized, standby,
    /// unavailable, offline, transitioning).
    pub fn from_name(s: &str) -> Option<AluaState> {
        Some(match s {
            "active" => AluaState::ActiveOptimized,
            "nonoptimized" => AluaState::ActiveNonOptimized,
            "standby" => AluaState::Standby,
            "unavailable" => AluaState::Unavailable,
            "offline" => AluaState::Offline,
            "transitioning" => AluaState::Transitioning,
            _ => return None,
        })
    }
}

/// One target port group descriptor of REPORT TARGET PORT GROUPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortGroup {
    pub id: u16,
    pub state: AluaState,
    pub preferred: bool,
    /// The relative target port identifiers in the group.
    pub ports: Vec<u16>,
}

/// Decodes REPORT TARGET PORT GROUPS parameter data (length format 0: a 4-byte
/// RETURN DATA LENGTH, then 8-byte descriptors each followed by 4 bytes per port).
pub fn decode_rtpg(d: &[u8]) -> io::Result<Vec<PortGroup>> {
    if d.len() < 4 {
        return Err(invalid(format!(
            "RTPG: {} bytes, wanted at least 4",
            d.len()
        )));
    }
    let end = (be32(d, 0) as usize + 4).min(d.len());
    let mut at = 4;
    let mut groups = Vec::new();
    while at + 8 <= end {
        let n = d[at + 7] as usize;
        if at + 8 + 4 * n > end {
            return Err(invalid(format!(
                "RTPG: descriptor at byte {at} names {n} ports past the data's end ({end})"
            )));
        }
        groups.push(PortGroup {
            id: be16(d, at + 2),
            state: AluaState::from_code(d[at]),
            preferred: d[at] & 0x80 != 0,
            ports: (0..n).map(|i| be16(d, at + 8 + 4 * i + 2)).collect(),
        });
        at += 8 + 4 * n;
    }
    Ok(groups)
}

/// One designation descriptor of the Device Identification VPD page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Designator {
    /// Association: 0 the logical unit, 1 the target port, 2 the target device.
    pub association: u8,
    /// Designator type (1 T10 vendor id, 2 EUI-64, 3 NAA, 4 relative target port,
    /// 5 target port group, 8 SCSI name string …).
    pub kind: u8,
    pub value: Vec<u8>,
}

/// Decodes the Device Identification VPD page (0x83).
pub fn decode_vpd83(d: &[u8]) -> io::Result<Vec<Designator>> {
    if d.len() < 4 || d[1] != 0x83 {
        return Err(invalid(format!(
            "VPD 0x83: {} bytes, page code {:#04x}",
            d.len(),
            d.get(1).copied().unwrap_or(0)
        )));
    }
    let end = (be16(d, 2) as usize + 4).min(d.len());
    let mut at = 4;
    let mut out = Vec::new();
    while at + 4 <= end {
        let len = d[at + 3] as usize;
        if at + 4 + len > end {
            return Err(invalid(format!(
                "VPD 0x83: designator at byte {at} ({len} bytes) past the page's end ({end})"
            )));
        }
        out.push(Designator {
            association: (d[at + 1] >> 4) & 0x3,
            kind: d[at + 1] & 0x0f,
            value: d[at + 4..at + 4 + len].to_vec(),
        });
        at += 4 + len;
    }
    Ok(out)
}

/// The logical unit's designators (association 0): what must be the same through
/// every port of the device.
pub fn lu_designators(ds: &[Designator]) -> Vec<Designator> {
    ds.iter().filter(|d| d.association == 0).cloned().collect()
}

/// The relative target port identifier (designator type 4, association 1).
pub fn relative_port(ds: &[Designator]) -> Option<u16> {
    ds.iter()
        .find(|d| d.association == 1 && d.kind == 4 && d.value.len() >= 4)
        .map(|d| be16(&d.value, 2))
}

/// The target port group (designator type 5, association 1).
pub fn port_group(ds: &[Designator]) -> Option<u16> {
    ds.iter()
        .find(|d| d.association == 1 && d.kind == 5 && d.value.len() >= 4)
        .map(|d| be16(&d.value, 2))
}

/// READ KEYS: (PRgeneration, the registered keys).
pub fn decode_read_keys(d: &[u8]) -> io::Result<(u32, Vec<u64>)> {
    if d.len() < 8 {
        return Err(invalid(format!(
            "READ KEYS: {} bytes, wanted at least 8",
            d.len()
        )));
    }
    let end = (be32(d, 4) as usize + 8).min(d.len());
    let keys = d[8..end]
        .chunks_exact(8)
        .map(|k| u64::from_be_bytes(k.try_into().unwrap()))
        .collect();
    Ok((be32(d, 0), keys))
}

/// A persistent reservation as READ RESERVATION reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub key: u64,
    /// 1 Write Exclusive, 3 Exclusive Access, 5/6 … Registrants Only, 7/8 … All Registrants.
    pub kind: u8,
}

/// READ RESERVATION: the reservation, if one is held.
pub fn decode_read_reservation(d: &[u8]) -> io::Result<Option<Reservation>> {
    if d.len() < 8 {
        return Err(invalid(format!(
            "READ RESERVATION: {} bytes, wanted at least 8",
            d.len()
        )));
    }
    if be32(d, 4) == 0 {
        return Ok(None);
    }
    if d.len() < 24 {
        return Err(invalid(format!(
            "READ RESERVATION: additional length {} but {} bytes",
            be32(d, 4),
            d.len()
        )));
    }
    Ok(Some(Reservation {
        key: u64::from_be_bytes(d[8..16].try_into().unwrap()),
        kind: d[21] & 0x0f,
    }))
}

/// PERSISTENT RESERVE OUT service actions.
pub mod pr_out {
    pub const REGISTER: u8 = 0x00;
    pub const RESERVE: u8 = 0x01;
    pub const RELEASE: u8 = 0x02;
    pub const CLEAR: u8 = 0x03;
    pub const REGISTER_AND_IGNORE: u8 = 0x06;
}

/// Reservation type Write Exclusive.
pub const WRITE_EXCLUSIVE: u8 = 1;

/// The CDB and 24-byte parameter list of a PERSISTENT RESERVE OUT (scope LU).
pub fn pr_out_cdb(action: u8, kind: u8, key: u64, sa_key: u64) -> ([u8; 10], [u8; 24]) {
    let mut cdb = [0u8; 10];
    cdb[0] = 0x5f;
    cdb[1] = action & 0x1f;
    cdb[2] = kind & 0x0f;
    cdb[5..9].copy_from_slice(&24u32.to_be_bytes());
    let mut p = [0u8; 24];
    p[0..8].copy_from_slice(&key.to_be_bytes());
    p[8..16].copy_from_slice(&sa_key.to_be_bytes());
    (cdb, p)
}

impl Session {
    /// INQUIRY with EVPD: vital product data page `page` (up to `len` bytes).
    pub fn inquiry_vpd(&mut self, page: u8, len: u16) -> io::Result<Vec<u8>> {
        let l = len.to_be_bytes();
        self.command(
            &format!("INQUIRY VPD {page:#04x}"),
            &[0x12, 0x01, page, l[0], l[1], 0],
            &[],
            len as usize,
        )
    }

    /// The Device Identification page's designators.
    pub fn device_identification(&mut self) -> io::Result<Vec<Designator>> {
        decode_vpd83(&self.inquiry_vpd(0x83, 1024)?)
    }

    /// REPORT TARGET PORT GROUPS.
    pub fn report_target_port_groups(&mut self) -> io::Result<Vec<PortGroup>> {
        let mut cdb = [0u8; 12];
        cdb[0] = 0xa3;
        cdb[1] = 0x0a;
        cdb[6..10].copy_from_slice(&1024u32.to_be_bytes());
        decode_rtpg(&self.command("REPORT TARGET PORT GROUPS", &cdb, &[], 1024)?)
    }

    fn pr_in(&mut self, name: &str, action: u8) -> io::Result<Vec<u8>> {
        let mut cdb = [0u8; 10];
        cdb[0] = 0x5e;
        cdb[1] = action;
        cdb[7..9].copy_from_slice(&1024u16.to_be_bytes());
        self.command(name, &cdb, &[], 1024)
    }

    /// PERSISTENT RESERVE IN, READ KEYS.
    pub fn read_keys(&mut self) -> io::Result<(u32, Vec<u64>)> {
        decode_read_keys(&self.pr_in("PERSISTENT RESERVE IN (READ KEYS)", 0)?)
    }

    /// PERSISTENT RESERVE IN, READ RESERVATION.
    pub fn read_reservation(&mut self) -> io::Result<Option<Reservation>> {
        decode_read_reservation(&self.pr_in("PERSISTENT RESERVE IN (READ RESERVATION)", 1)?)
    }

    /// PERSISTENT RESERVE OUT `action` (see [`pr_out`]) of reservation type `kind`.
    pub fn pr_out(&mut self, action: u8, kind: u8, key: u64, sa_key: u64) -> io::Result<()> {
        let (cdb, p) = pr_out_cdb(action, kind, key, sa_key);
        self.command(
            &format!("PERSISTENT RESERVE OUT (service action {action:#04x})"),
            &cdb,
            &p,
            0,
        )
        .map(|_| ())
    }
}
