//! A minimal iSCSI initiator (RFC 7143) over `std::net::TcpStream`, for tests that
//! must drive a real LIO target from the host without root or a kernel initiator:
//! login (AuthMethod=None, no digests), SCSI commands with CmdSN/ExpStatSN tracking,
//! immediate data plus R2T/Data-Out for writes, NOP-In answers, and a timeout on
//! every socket read so a dead target is an error, never a hang.
//!
//! On top of it: a verifiable block pattern (`pattern_block`/`check_block`), a
//! multi-portal `Writer` that fails over between portals and records every gap, and
//! `verify`, which reads back every acknowledged block.
//!
//! A failover test uses it like this:
//!
//! ```text
//! let mut w = Writer::new(portals.clone(), INITIATOR, 0, 512, 1024);
//! let progress = w.progress();
//! let stop = Arc::new(AtomicBool::new(false));
//! let t = { let stop = stop.clone(); std::thread::spawn(move || w.run_until(&stop)) };
//! // wait for progress.writes, kill/switch the primary, wait for progress.gaps == 1
//! // and progress.writes to grow again, then:
//! stop.store(true, Ordering::SeqCst);
//! let report = t.join().unwrap();      // report.gaps[0].duration() = the outage
//! verify(&portals, INITIATOR, 0, 512, &report, timeout).unwrap();
//! ```
//!
//! It reads nothing but the sockets it opens.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------
// PDUs
// ---------------------------------------------------------------------------

/// Opcodes (initiator → target).
pub mod op {
    pub const NOP_OUT: u8 = 0x00;
    pub const SCSI_CMD: u8 = 0x01;
    pub const LOGIN_REQ: u8 = 0x03;
    pub const DATA_OUT: u8 = 0x05;
    pub const LOGOUT_REQ: u8 = 0x06;
    // target → initiator
    pub const NOP_IN: u8 = 0x20;
    pub const SCSI_RSP: u8 = 0x21;
    pub const TMF_RSP: u8 = 0x22;
    pub const LOGIN_RSP: u8 = 0x23;
    pub const TEXT_RSP: u8 = 0x24;
    pub const DATA_IN: u8 = 0x25;
    pub const LOGOUT_RSP: u8 = 0x26;
    pub const R2T: u8 = 0x31;
    pub const ASYNC: u8 = 0x32;
    pub const REJECT: u8 = 0x3f;
}

/// The reserved tag value ("no task" / "no transfer").
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// One PDU: the 48-byte Basic Header Segment and its data segment (unpadded).
/// AHS are skipped on receive and never sent; digests are never negotiated.
#[derive(Clone, PartialEq, Eq)]
pub struct Pdu {
    pub bhs: [u8; 48],
    pub data: Vec<u8>,
}

impl fmt::Debug for Pdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Pdu {{ opcode: {:#04x}, flags: {:#04x}, itt: {:#x}, data: {} bytes }}",
            self.opcode(),
            self.flags(),
            self.itt(),
            self.data.len()
        )
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Rounds a data segment length up to the 4-byte boundary PDUs are padded to.
pub fn padded(len: usize) -> usize {
    (len + 3) & !3
}

impl Pdu {
    /// A PDU with `opcode` (plus the immediate bit) and flags, everything else zero.
    pub fn new(opcode: u8, immediate: bool, flags: u8) -> Pdu {
        let mut bhs = [0u8; 48];
        bhs[0] = (opcode & 0x3f) | if immediate { 0x40 } else { 0 };
        bhs[1] = flags;
        Pdu {
            bhs,
            data: Vec::new(),
        }
    }
    pub fn opcode(&self) -> u8 {
        self.bhs[0] & 0x3f
    }
    pub fn immediate(&self) -> bool {
        self.bhs[0] & 0x40 != 0
    }
    pub fn flags(&self) -> u8 {
        self.bhs[1]
    }
    pub fn final_bit(&self) -> bool {
        self.bhs[1] & 0x80 != 0
    }
    pub fn ahs_len(&self) -> usize {
        self.bhs[4] as usize * 4
    }
    /// DataSegmentLength as carried in bytes 5..8 of the BHS.
    pub fn data_len(&self) -> usize {
        ((self.bhs[5] as usize) << 16) | ((self.bhs[6] as usize) << 8) | self.bhs[7] as usize
    }
    pub fn lun(&self) -> [u8; 8] {
        let mut l = [0u8; 8];
        l.copy_from_slice(&self.bhs[8..16]);
        l
    }
    pub fn set_lun(&mut self, lun: [u8; 8]) {
        self.bhs[8..16].copy_from_slice(&lun);
    }
    pub fn itt(&self) -> u32 {
        be32(&self.bhs, 16)
    }
    pub fn set_itt(&mut self, v: u32) {
        put32(&mut self.bhs, 16, v)
    }
    /// The 32-bit field at byte `at` of the BHS.
    pub fn field(&self, at: usize) -> u32 {
        be32(&self.bhs, at)
    }
    pub fn set_field(&mut self, at: usize, v: u32) {
        put32(&mut self.bhs, at, v)
    }
    /// Target Transfer Tag (NOP-In, R2T, Data-In, Data-Out).
    pub fn ttt(&self) -> u32 {
        self.field(20)
    }
    /// StatSN of target PDUs.
    pub fn stat_sn(&self) -> u32 {
        self.field(24)
    }
    pub fn exp_cmd_sn(&self) -> u32 {
        self.field(28)
    }
    pub fn max_cmd_sn(&self) -> u32 {
        self.field(32)
    }

    /// Serializes the PDU: BHS with DataSegmentLength filled in, then the data
    /// zero-padded to a multiple of 4 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let len = self.data.len();
        let mut out = Vec::with_capacity(48 + padded(len));
        out.extend_from_slice(&self.bhs);
        out[4] = 0;
        out[5] = (len >> 16) as u8;
        out[6] = (len >> 8) as u8;
        out[7] = len as u8;
        out.extend_from_slice(&self.data);
        out.resize(48 + padded(len), 0);
        out
    }

    /// Reads one PDU (skipping any AHS and the data padding).
    pub fn read_from(r: &mut impl Read) -> io::Result<Pdu> {
        let mut bhs = [0u8; 48];
        r.read_exact(&mut bhs)?;
        let mut pdu = Pdu {
            bhs,
            data: Vec::new(),
        };
        let ahs = pdu.ahs_len();
        let len = pdu.data_len();
        if len > 16 << 20 {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!(
                    "pdu {:#04x} announces a {len}-byte data segment",
                    pdu.opcode()
                ),
            ));
        }
        if ahs > 0 {
            let mut skip = vec![0u8; ahs];
            r.read_exact(&mut skip)?;
        }
        let mut data = vec![0u8; padded(len)];
        r.read_exact(&mut data)?;
        data.truncate(len);
        pdu.data = data;
        Ok(pdu)
    }
}

/// Encodes text-mode key=value pairs: each `key=value` followed by a NUL.
pub fn encode_text(pairs: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Decodes text-mode data: NUL-separated `key=value` pairs (a missing trailing NUL
/// and empty strings are tolerated; a pair without `=` is an error).
pub fn decode_text(data: &[u8]) -> io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in data.split(|&b| b == 0) {
        if item.is_empty() {
            continue;
        }
        let s = String::from_utf8_lossy(item);
        match s.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => {
                return Err(io::Error::new(
                    ErrorKind::InvalidData,
                    format!("text key without value: {s:?}"),
                ))
            }
        }
    }
    Ok(out)
}

/// The 8-byte LUN field for a LUN number (peripheral addressing below 256, flat
/// addressing up to 16383).
pub fn encode_lun(lun: u16) -> [u8; 8] {
    let mut l = [0u8; 8];
    if lun < 256 {
        l[1] = lun as u8;
    } else {
        l[0] = 0x40 | ((lun >> 8) as u8 & 0x3f);
        l[1] = lun as u8;
    }
    l
}

// ---------------------------------------------------------------------------
// SCSI status and sense
// ---------------------------------------------------------------------------

/// Sense key, additional sense code and qualifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

/// Decodes fixed (0x70/0x71) and descriptor (0x72/0x73) format sense data.
pub fn decode_sense(s: &[u8]) -> Option<Sense> {
    match s.first()? & 0x7f {
        0x70 | 0x71 if s.len() >= 14 => Some(Sense {
            key: s[2] & 0x0f,
            asc: s[12],
            ascq: s[13],
        }),
        0x70 | 0x71 if s.len() >= 3 => Some(Sense {
            key: s[2] & 0x0f,
            asc: 0,
            ascq: 0,
        }),
        0x72 | 0x73 if s.len() >= 4 => Some(Sense {
            key: s[1] & 0x0f,
            asc: s[2],
            ascq: s[3],
        }),
        _ => None,
    }
}

pub mod sense_key {
    pub const NO_SENSE: u8 = 0x0;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const UNIT_ATTENTION: u8 = 0x6;
    pub const DATA_PROTECT: u8 = 0x7;
    pub const ABORTED_COMMAND: u8 = 0xb;
}

pub fn sense_key_name(key: u8) -> &'static str {
    match key {
        0x0 => "NO SENSE",
        0x1 => "RECOVERED ERROR",
        0x2 => "NOT READY",
        0x3 => "MEDIUM ERROR",
        0x4 => "HARDWARE ERROR",
        0x5 => "ILLEGAL REQUEST",
        0x6 => "UNIT ATTENTION",
        0x7 => "DATA PROTECT",
        0x8 => "BLANK CHECK",
        0x9 => "VENDOR SPECIFIC",
        0xa => "COPY ABORTED",
        0xb => "ABORTED COMMAND",
        0xd => "VOLUME OVERFLOW",
        0xe => "MISCOMPARE",
        _ => "RESERVED",
    }
}

/// A short description of common ASC/ASCQ pairs (None for the rest).
pub fn asc_name(asc: u8, ascq: u8) -> Option<&'static str> {
    Some(match (asc, ascq) {
        (0x04, 0x00) => "not ready, cause not reportable",
        (0x04, 0x01) => "becoming ready",
        (0x04, 0x03) => "manual intervention required",
        (0x04, 0x0a) => "asymmetric access state transition",
        (0x04, 0x0b) => "asymmetric access standby",
        (0x04, 0x0c) => "asymmetric access unavailable",
        (0x08, 0x00) => "logical unit communication failure",
        (0x0c, 0x00) => "write error",
        (0x11, 0x00) => "unrecovered read error",
        (0x1a, 0x00) => "parameter list length error",
        (0x20, 0x00) => "invalid command operation code",
        (0x21, 0x00) => "lba out of range",
        (0x24, 0x00) => "invalid field in cdb",
        (0x25, 0x00) => "logical unit not supported",
        (0x27, 0x00) => "write protected",
        (0x29, 0x00) => "power on, reset, or bus device reset occurred",
        (0x29, 0x01) => "power on occurred",
        (0x29, 0x07) => "i_t nexus loss occurred",
        (0x2a, 0x01) => "mode parameters changed",
        (0x2a, 0x06) => "asymmetric access state changed",
        (0x2a, 0x09) => "capacity data has changed",
        (0x3a, 0x00) => "medium not present",
        (0x3f, 0x0e) => "reported luns data has changed",
        (0x44, 0x00) => "internal target failure",
        (0x47, 0x00) => "scsi parity error",
        (0x4b, 0x00) => "data phase error",
        _ => return None,
    })
}

pub fn status_name(status: u8) -> &'static str {
    match status {
        0x00 => "GOOD",
        0x02 => "CHECK CONDITION",
        0x04 => "CONDITION MET",
        0x08 => "BUSY",
        0x18 => "RESERVATION CONFLICT",
        0x28 => "TASK SET FULL",
        0x30 => "ACA ACTIVE",
        0x40 => "TASK ABORTED",
        _ => "UNKNOWN STATUS",
    }
}

/// A SCSI command that completed with a status other than GOOD (or an iSCSI
/// response other than "command completed at target"). Travels inside an
/// `io::Error` of kind `Other`; get it back with [`scsi_error`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScsiError {
    /// The command, e.g. "WRITE(10) lba 123".
    pub op: String,
    /// SCSI status byte (0x02 CHECK CONDITION, 0x08 BUSY ...).
    pub status: u8,
    /// Sense key/ASC/ASCQ, all zero without sense data.
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
    /// The iSCSI Response byte (0 = completed at target).
    pub response: u8,
}

impl ScsiError {
    pub fn sense(&self) -> Sense {
        Sense {
            key: self.key,
            asc: self.asc,
            ascq: self.ascq,
        }
    }
    pub fn is_unit_attention(&self) -> bool {
        self.status == 0x02 && self.key == sense_key::UNIT_ATTENTION
    }
}

impl fmt::Display for ScsiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.response != 0 {
            return write!(
                f,
                "{}: iscsi response {:#04x} (target failure)",
                self.op, self.response
            );
        }
        write!(f, "{}: {}", self.op, status_name(self.status))?;
        if self.status == 0x02 {
            write!(
                f,
                ", {}, asc/ascq {:02x}/{:02x}",
                sense_key_name(self.key),
                self.asc,
                self.ascq
            )?;
            if let Some(d) = asc_name(self.asc, self.ascq) {
                write!(f, " ({d})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScsiError {}

/// The SCSI error inside an `io::Error`, if it is one.
pub fn scsi_error(e: &io::Error) -> Option<&ScsiError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ScsiError>())
}

// ---------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------

/// What login settled on (our proposal, limited by the target's answers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// The most data the target accepts in one PDU (its declaration; 8192 if silent).
    pub target_max_recv: u32,
    pub max_burst: u32,
    pub first_burst: u32,
    pub immediate_data: bool,
    pub initial_r2t: bool,
    pub tsih: u16,
    /// Every key the target answered, in order.
    pub answered: Vec<(String, String)>,
}

/// Our MaxRecvDataSegmentLength (what the target may send us in one PDU).
const OUR_MAX_RECV: u32 = 262_144;
const OUR_MAX_BURST: u32 = 262_144;
const OUR_FIRST_BURST: u32 = 65_536;

/// A logged-in iSCSI session with one connection, one command at a time.
pub struct Session {
    stream: TcpStream,
    pub addr: SocketAddr,
    pub target: String,
    pub params: Params,
    /// The LUN commands address (0 unless changed with [`Session::set_lun`]).
    lun: u16,
    cmd_sn: u32,
    exp_stat_sn: u32,
    max_cmd_sn: u32,
    next_itt: u32,
    /// Set after a transport error mid-exchange: the stream is out of sync.
    broken: Option<String>,
    /// Target-initiated NOP-Ins answered so far.
    pub nops_answered: u64,
    /// Async messages received (event code, in order).
    pub async_events: Vec<u8>,
}

fn err(kind: ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

/// A random-format ISID (type 0b10) from the clock and pid.
pub fn random_isid() -> [u8; 6] {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let x = splitmix(t ^ ((std::process::id() as u64) << 32));
    let b = x.to_be_bytes();
    [0x80, 0x00, b[0], b[1], b[2], b[3]]
}

fn login_status_text(class: u8, detail: u8) -> &'static str {
    match (class, detail) {
        (1, 1) => "target moved temporarily",
        (1, 2) => "target moved permanently",
        (2, 0) => "initiator error",
        (2, 1) => "authentication failure",
        (2, 2) => "authorization failure",
        (2, 3) => "target not found",
        (2, 4) => "target removed",
        (2, 5) => "unsupported version",
        (2, 6) => "too many connections",
        (2, 7) => "missing parameter",
        (2, 8) => "cannot include in session",
        (2, 9) => "session type not supported",
        (2, 10) => "session does not exist",
        (2, 11) => "invalid request during login",
        (3, 0) => "target error",
        (3, 1) => "service unavailable",
        (3, 2) => "out of resources",
        _ => "unknown login status",
    }
}

impl Session {
    /// Connects to `addr` and logs in to `target_iqn` as `initiator_iqn` with a fresh
    /// random ISID. `timeout` bounds the connect and every later socket read/write.
    pub fn login(
        addr: SocketAddr,
        target_iqn: &str,
        initiator_iqn: &str,
        timeout: Duration,
    ) -> io::Result<Session> {
        Session::login_isid(addr, target_iqn, initiator_iqn, random_isid(), timeout)
    }

    /// [`Session::login`] with a given ISID: logging in again with the same ISID and
    /// initiator name reinstates (replaces) an earlier session on that target.
    pub fn login_isid(
        addr: SocketAddr,
        target_iqn: &str,
        initiator_iqn: &str,
        isid: [u8; 6],
        timeout: Duration,
    ) -> io::Result<Session> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| err(e.kind(), format!("cannot connect to {addr}: {e}")))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut s = Session {
            stream,
            addr,
            target: target_iqn.to_string(),
            params: Params {
                target_max_recv: 8192,
                max_burst: OUR_MAX_BURST,
                first_burst: OUR_FIRST_BURST,
                immediate_data: true,
                initial_r2t: true,
                tsih: 0,
                answered: Vec::new(),
            },
            lun: 0,
            cmd_sn: 1,
            exp_stat_sn: 0,
            max_cmd_sn: 1,
            next_itt: 1,
            broken: None,
            nops_answered: 0,
            async_events: Vec::new(),
        };
        s.do_login(target_iqn, initiator_iqn, isid)
            .map_err(|e| err(e.kind(), format!("login to {target_iqn} at {addr}: {e}")))?;
        Ok(s)
    }

    fn do_login(&mut self, target: &str, initiator: &str, isid: [u8; 6]) -> io::Result<()> {
        let security = vec![
            ("InitiatorName", initiator.to_string()),
            ("SessionType", "Normal".to_string()),
            ("TargetName", target.to_string()),
            ("AuthMethod", "None".to_string()),
        ];
        let operational = vec![
            ("HeaderDigest", "None".to_string()),
            ("DataDigest", "None".to_string()),
            ("MaxConnections", "1".to_string()),
            ("InitialR2T", "Yes".to_string()),
            ("ImmediateData", "Yes".to_string()),
            ("MaxRecvDataSegmentLength", OUR_MAX_RECV.to_string()),
            ("MaxBurstLength", OUR_MAX_BURST.to_string()),
            ("FirstBurstLength", OUR_FIRST_BURST.to_string()),
            ("DefaultTime2Wait", "0".to_string()),
            ("DefaultTime2Retain", "0".to_string()),
            ("MaxOutstandingR2T", "1".to_string()),
            ("DataPDUInOrder", "Yes".to_string()),
            ("DataSequenceInOrder", "Yes".to_string()),
            ("ErrorRecoveryLevel", "0".to_string()),
        ];
        let itt = self.alloc_itt();
        let mut tsih = 0u16;
        // (current stage, keys to send in its first PDU)
        let mut csg = 0u8;
        let mut pending = encode_text(&security);
        let mut answered: Vec<(String, String)> = Vec::new();
        let mut sent_operational = false;
        for _round in 0..16 {
            let nsg = if csg == 0 { 1 } else { 3 };
            let mut req = Pdu::new(op::LOGIN_REQ, true, 0x80 | (csg << 2) | nsg);
            req.bhs[8..14].copy_from_slice(&isid);
            req.bhs[14..16].copy_from_slice(&tsih.to_be_bytes());
            req.set_itt(itt);
            // CID 0 (bytes 20..22), CmdSN, ExpStatSN
            req.set_field(24, self.cmd_sn);
            req.set_field(28, self.exp_stat_sn);
            req.data = std::mem::take(&mut pending);
            self.send(&req)?;
            let rsp = self.recv()?;
            if rsp.opcode() == op::REJECT {
                return Err(err(
                    ErrorKind::InvalidData,
                    format!("target rejected the login pdu (reason {:#04x})", rsp.bhs[2]),
                ));
            }
            if rsp.opcode() != op::LOGIN_RSP {
                return Err(err(
                    ErrorKind::InvalidData,
                    format!(
                        "expected a login response, got opcode {:#04x}",
                        rsp.opcode()
                    ),
                ));
            }
            let (class, detail) = (rsp.bhs[36], rsp.bhs[37]);
            if class != 0 {
                let kind = if class == 2 {
                    ErrorKind::PermissionDenied
                } else {
                    ErrorKind::ConnectionRefused
                };
                return Err(err(
                    kind,
                    format!(
                        "refused: status {class:02x}/{detail:02x} ({})",
                        login_status_text(class, detail)
                    ),
                ));
            }
            self.exp_stat_sn = rsp.stat_sn().wrapping_add(1);
            self.note_cmd_window(&rsp);
            tsih = u16::from_be_bytes([rsp.bhs[14], rsp.bhs[15]]);
            let keys = decode_text(&rsp.data)?;
            for (k, v) in &keys {
                if k == "AuthMethod" && v != "None" {
                    return Err(err(
                        ErrorKind::PermissionDenied,
                        format!("target wants authentication (AuthMethod={v})"),
                    ));
                }
                if k.ends_with("Digest") && v != "None" {
                    return Err(err(
                        ErrorKind::InvalidData,
                        format!("target insists on {k}={v}"),
                    ));
                }
            }
            answered.extend(keys);
            let transit = rsp.flags() & 0x80 != 0;
            let rsp_csg = (rsp.flags() >> 2) & 3;
            let rsp_nsg = rsp.flags() & 3;
            if transit && rsp_nsg == 3 {
                self.params.tsih = tsih;
                return self.apply(answered);
            }
            if transit && rsp_csg == 0 && rsp_nsg == 1 {
                csg = 1;
            }
            if csg == 1 && !sent_operational {
                pending = encode_text(&operational);
                sent_operational = true;
            }
        }
        Err(err(
            ErrorKind::InvalidData,
            "login did not reach full feature phase in 16 exchanges".to_string(),
        ))
    }

    fn apply(&mut self, answered: Vec<(String, String)>) -> io::Result<()> {
        let num = |k: &str, v: &str| -> io::Result<u32> {
            v.parse::<u32>().map_err(|_| {
                err(
                    ErrorKind::InvalidData,
                    format!("target answered {k}={v:?}, not a number"),
                )
            })
        };
        for (k, v) in &answered {
            if matches!(v.as_str(), "Reject" | "Irrelevant" | "NotUnderstood") {
                continue; // our proposal or the default stands
            }
            match k.as_str() {
                "MaxRecvDataSegmentLength" => self.params.target_max_recv = num(k, v)?.max(512),
                "MaxBurstLength" => {
                    self.params.max_burst = num(k, v)?.clamp(512, OUR_MAX_BURST);
                }
                "FirstBurstLength" => {
                    self.params.first_burst = num(k, v)?.clamp(512, OUR_FIRST_BURST);
                }
                "ImmediateData" => self.params.immediate_data = v == "Yes",
                "InitialR2T" => self.params.initial_r2t = v == "Yes",
                _ => {}
            }
        }
        self.params.first_burst = self.params.first_burst.min(self.params.max_burst);
        self.params.answered = answered;
        Ok(())
    }

    /// The LUN later commands address.
    pub fn set_lun(&mut self, lun: u16) {
        self.lun = lun;
    }

    pub fn lun(&self) -> u16 {
        self.lun
    }

    fn alloc_itt(&mut self) -> u32 {
        let itt = self.next_itt;
        self.next_itt = self.next_itt.wrapping_add(1);
        if self.next_itt == RESERVED_TAG {
            self.next_itt = 1;
        }
        itt
    }

    fn note_cmd_window(&mut self, p: &Pdu) {
        let max = p.max_cmd_sn();
        // serial-number arithmetic: only move forward
        if (max.wrapping_sub(self.max_cmd_sn) as i32) > 0 {
            self.max_cmd_sn = max;
        }
    }

    fn check_usable(&self) -> io::Result<()> {
        match &self.broken {
            Some(why) => Err(err(
                ErrorKind::NotConnected,
                format!("session to {} is unusable after: {why}", self.addr),
            )),
            None => Ok(()),
        }
    }

    fn poison(&mut self, e: io::Error) -> io::Error {
        let kind = match e.kind() {
            ErrorKind::WouldBlock => ErrorKind::TimedOut,
            k => k,
        };
        let msg = if kind == ErrorKind::TimedOut {
            format!("no answer from {} within the timeout", self.addr)
        } else if e.kind() == ErrorKind::UnexpectedEof {
            format!("{} closed the connection", self.addr)
        } else {
            format!("{}: {e}", self.addr)
        };
        if self.broken.is_none() {
            self.broken = Some(msg.clone());
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        err(kind, msg)
    }

    fn send(&mut self, p: &Pdu) -> io::Result<()> {
        self.check_usable()?;
        let bytes = p.encode();
        self.stream.write_all(&bytes).map_err(|e| self.poison(e))
    }

    fn recv(&mut self) -> io::Result<Pdu> {
        self.check_usable()?;
        Pdu::read_from(&mut self.stream).map_err(|e| self.poison(e))
    }

    /// Receives the next PDU that belongs to a task, answering target NOP-Ins and
    /// recording async messages on the way.
    fn recv_task(&mut self) -> io::Result<Pdu> {
        loop {
            let p = self.recv()?;
            match p.opcode() {
                op::NOP_IN => {
                    self.note_cmd_window(&p);
                    if p.itt() != RESERVED_TAG {
                        return Ok(p); // the answer to a ping of ours
                    }
                    if p.ttt() != RESERVED_TAG {
                        let mut out = Pdu::new(op::NOP_OUT, true, 0x80);
                        out.set_lun(p.lun());
                        out.set_itt(RESERVED_TAG);
                        out.set_field(20, p.ttt());
                        out.set_field(24, self.cmd_sn);
                        out.set_field(28, self.exp_stat_sn);
                        out.data = p.data.clone();
                        self.send(&out)?;
                        self.nops_answered += 1;
                    }
                }
                op::ASYNC => {
                    self.exp_stat_sn = p.stat_sn().wrapping_add(1);
                    self.note_cmd_window(&p);
                    self.async_events.push(p.bhs[36]);
                }
                op::REJECT => {
                    self.exp_stat_sn = p.stat_sn().wrapping_add(1);
                    let reason = p.bhs[2];
                    let e = err(
                        ErrorKind::InvalidData,
                        format!("target rejected a pdu (reason {reason:#04x})"),
                    );
                    return Err(self.poison(e));
                }
                _ => return Ok(p),
            }
        }
    }

    /// Runs one SCSI command: `cdb`, `data_out` for writes, `read_len` bytes
    /// expected back for reads. Returns the data read.
    pub fn command(
        &mut self,
        opname: &str,
        cdb: &[u8],
        data_out: &[u8],
        read_len: usize,
    ) -> io::Result<Vec<u8>> {
        self.check_usable()?;
        if cdb.len() > 16 {
            return Err(err(
                ErrorKind::InvalidInput,
                format!("{opname}: cdb longer than 16 bytes"),
            ));
        }
        let writing = !data_out.is_empty();
        let itt = self.alloc_itt();
        let lun = encode_lun(self.lun);
        let mut flags = 0x80 | 0x01; // F, ATTR = simple
        if writing {
            flags |= 0x20;
        }
        if read_len > 0 {
            flags |= 0x40;
        }
        let mut cmd = Pdu::new(op::SCSI_CMD, false, flags);
        cmd.set_lun(lun);
        cmd.set_itt(itt);
        cmd.set_field(
            20,
            if writing {
                data_out.len() as u32
            } else {
                read_len as u32
            },
        );
        cmd.set_field(24, self.cmd_sn);
        cmd.set_field(28, self.exp_stat_sn);
        cmd.bhs[32..32 + cdb.len()].copy_from_slice(cdb);
        if writing && self.params.immediate_data {
            let n = data_out
                .len()
                .min(self.params.first_burst as usize)
                .min(self.params.target_max_recv as usize);
            cmd.data = data_out[..n].to_vec();
        }
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        self.send(&cmd)?;

        let mut data_in = vec![0u8; read_len];
        let mut received = 0usize;
        loop {
            let p = self.recv_task()?;
            if p.itt() != itt {
                let e = err(
                    ErrorKind::InvalidData,
                    format!(
                        "{opname}: pdu {:#04x} for task {:#x} while waiting for {itt:#x}",
                        p.opcode(),
                        p.itt()
                    ),
                );
                return Err(self.poison(e));
            }
            self.note_cmd_window(&p);
            match p.opcode() {
                op::R2T => {
                    if !writing {
                        let e = err(
                            ErrorKind::InvalidData,
                            format!("{opname}: r2t for a command without data"),
                        );
                        return Err(self.poison(e));
                    }
                    let ttt = p.ttt();
                    let offset = p.field(40) as usize;
                    let want = p.field(44) as usize;
                    let end = offset.saturating_add(want);
                    if want == 0 || end > data_out.len() {
                        let e = err(
                            ErrorKind::InvalidData,
                            format!(
                                "{opname}: r2t for bytes {offset}..{end} of a {}-byte write",
                                data_out.len()
                            ),
                        );
                        return Err(self.poison(e));
                    }
                    let chunk = self.params.target_max_recv as usize;
                    let mut at = offset;
                    let mut data_sn = 0u32;
                    while at < end {
                        let n = chunk.min(end - at);
                        let last = at + n == end;
                        let mut d = Pdu::new(op::DATA_OUT, false, if last { 0x80 } else { 0 });
                        d.set_lun(lun);
                        d.set_itt(itt);
                        d.set_field(20, ttt);
                        d.set_field(28, self.exp_stat_sn);
                        d.set_field(36, data_sn);
                        d.set_field(40, at as u32);
                        d.data = data_out[at..at + n].to_vec();
                        self.send(&d)?;
                        data_sn += 1;
                        at += n;
                    }
                }
                op::DATA_IN => {
                    let offset = p.field(40) as usize;
                    let end = offset + p.data.len();
                    if end > data_in.len() {
                        let e = err(
                            ErrorKind::InvalidData,
                            format!(
                                "{opname}: data-in for bytes {offset}..{end} of a {read_len}-byte read"
                            ),
                        );
                        return Err(self.poison(e));
                    }
                    data_in[offset..end].copy_from_slice(&p.data);
                    received = received.max(end);
                    if p.flags() & 0x01 != 0 {
                        self.exp_stat_sn = p.stat_sn().wrapping_add(1);
                        let status = p.bhs[3];
                        if status != 0 {
                            return Err(self.scsi_failure(opname, 0, status, &[]));
                        }
                        data_in.truncate(self.residual_len(&p, read_len, received));
                        return Ok(data_in);
                    }
                }
                op::SCSI_RSP => {
                    self.exp_stat_sn = p.stat_sn().wrapping_add(1);
                    let (response, status) = (p.bhs[2], p.bhs[3]);
                    if response != 0 || status != 0 {
                        let sense = if p.data.len() >= 2 {
                            let n = u16::from_be_bytes([p.data[0], p.data[1]]) as usize;
                            p.data[2..(2 + n).min(p.data.len())].to_vec()
                        } else {
                            Vec::new()
                        };
                        return Err(self.scsi_failure(opname, response, status, &sense));
                    }
                    data_in.truncate(self.residual_len(&p, read_len, received));
                    return Ok(data_in);
                }
                op::LOGOUT_RSP | op::TMF_RSP | op::TEXT_RSP | op::LOGIN_RSP => {
                    let e = err(
                        ErrorKind::InvalidData,
                        format!("{opname}: unexpected pdu {:#04x}", p.opcode()),
                    );
                    return Err(self.poison(e));
                }
                other => {
                    let e = err(
                        ErrorKind::InvalidData,
                        format!("{opname}: unknown pdu opcode {other:#04x}"),
                    );
                    return Err(self.poison(e));
                }
            }
        }
    }

    fn residual_len(&self, p: &Pdu, read_len: usize, received: usize) -> usize {
        let flags = p.flags();
        if flags & 0x02 != 0 {
            // underflow: residual count = bytes not transferred
            read_len.saturating_sub(p.field(44) as usize)
        } else {
            let _ = received;
            read_len
        }
    }

    fn scsi_failure(&self, opname: &str, response: u8, status: u8, sense: &[u8]) -> io::Error {
        let s = decode_sense(sense).unwrap_or(Sense {
            key: 0,
            asc: 0,
            ascq: 0,
        });
        io::Error::other(ScsiError {
            op: opname.to_string(),
            status,
            key: s.key,
            asc: s.asc,
            ascq: s.ascq,
            response,
        })
    }

    /// Pings the target (NOP-Out, answered by a NOP-In echoing `payload`): a keepalive
    /// for an idle session. Target NOP-Ins are only answered while a call waits for
    /// the target, so call this (or any command) at least every ~10 s on a session
    /// that must stay logged in (LIO drops unanswered connections after its
    /// nopin timeouts, 15 s + 30 s by default).
    pub fn nop(&mut self, payload: &[u8]) -> io::Result<()> {
        self.check_usable()?;
        let itt = self.alloc_itt();
        let mut out = Pdu::new(op::NOP_OUT, true, 0x80);
        out.set_itt(itt);
        out.set_field(20, RESERVED_TAG);
        out.set_field(24, self.cmd_sn);
        out.set_field(28, self.exp_stat_sn);
        out.data = payload.to_vec();
        self.send(&out)?;
        let p = self.recv_task()?;
        if p.opcode() != op::NOP_IN || p.itt() != itt {
            let e = err(
                ErrorKind::InvalidData,
                format!(
                    "NOP-Out: got pdu {:#04x} for task {:#x}, wanted the NOP-In for {itt:#x}",
                    p.opcode(),
                    p.itt()
                ),
            );
            return Err(self.poison(e));
        }
        self.exp_stat_sn = p.stat_sn().wrapping_add(1);
        self.note_cmd_window(&p);
        if p.data != payload {
            return Err(err(
                ErrorKind::InvalidData,
                format!(
                    "NOP-In echoed {} bytes that differ from the {} sent",
                    p.data.len(),
                    payload.len()
                ),
            ));
        }
        Ok(())
    }

    pub fn test_unit_ready(&mut self) -> io::Result<()> {
        self.command("TEST UNIT READY", &[0u8; 6], &[], 0)
            .map(|_| ())
    }

    /// Standard INQUIRY data (up to 96 bytes).
    pub fn inquiry(&mut self) -> io::Result<Vec<u8>> {
        self.command("INQUIRY", &[0x12, 0, 0, 0, 96, 0], &[], 96)
    }

    /// (number of blocks, block size).
    pub fn read_capacity10(&mut self) -> io::Result<(u64, u32)> {
        let mut cdb = [0u8; 10];
        cdb[0] = 0x25;
        let d = self.command("READ CAPACITY(10)", &cdb, &[], 8)?;
        if d.len() < 8 {
            return Err(err(
                ErrorKind::InvalidData,
                format!("READ CAPACITY(10): {} bytes of data, wanted 8", d.len()),
            ));
        }
        Ok((be32(&d, 0) as u64 + 1, be32(&d, 4)))
    }

    pub fn read10(&mut self, lba: u32, blocks: u16, block_size: usize) -> io::Result<Vec<u8>> {
        let mut cdb = [0u8; 10];
        cdb[0] = 0x28;
        cdb[2..6].copy_from_slice(&lba.to_be_bytes());
        cdb[7..9].copy_from_slice(&blocks.to_be_bytes());
        let want = blocks as usize * block_size;
        let name = format!("READ(10) lba {lba}");
        let d = self.command(&name, &cdb, &[], want)?;
        if d.len() != want {
            return Err(err(
                ErrorKind::InvalidData,
                format!("{name}: {} bytes back, wanted {want}", d.len()),
            ));
        }
        Ok(d)
    }

    /// Writes `data` (a whole number of blocks of `block_size`) at `lba`.
    pub fn write10(&mut self, lba: u32, data: &[u8], block_size: usize) -> io::Result<()> {
        let name = format!("WRITE(10) lba {lba}");
        if data.is_empty()
            || !data.len().is_multiple_of(block_size)
            || data.len() / block_size > 0xffff
        {
            return Err(err(
                ErrorKind::InvalidInput,
                format!(
                    "{name}: {} bytes is not 1..65535 blocks of {block_size}",
                    data.len()
                ),
            ));
        }
        let blocks = (data.len() / block_size) as u16;
        let mut cdb = [0u8; 10];
        cdb[0] = 0x2a;
        cdb[2..6].copy_from_slice(&lba.to_be_bytes());
        cdb[7..9].copy_from_slice(&blocks.to_be_bytes());
        self.command(&name, &cdb, data, 0).map(|_| ())
    }

    pub fn synchronize_cache10(&mut self) -> io::Result<()> {
        let mut cdb = [0u8; 10];
        cdb[0] = 0x35;
        self.command("SYNCHRONIZE CACHE(10)", &cdb, &[], 0)
            .map(|_| ())
    }

    /// Closes the session (logout reason 0) and waits for the target's answer.
    pub fn logout(mut self) -> io::Result<()> {
        let itt = self.alloc_itt();
        let mut req = Pdu::new(op::LOGOUT_REQ, true, 0x80);
        req.set_itt(itt);
        req.set_field(24, self.cmd_sn);
        req.set_field(28, self.exp_stat_sn);
        self.send(&req)?;
        loop {
            let p = self.recv_task()?;
            if p.opcode() == op::LOGOUT_RSP {
                self.exp_stat_sn = p.stat_sn().wrapping_add(1);
                if p.bhs[2] != 0 {
                    return Err(io::Error::other(format!(
                        "logout from {}: response {:#04x}",
                        self.addr, p.bhs[2]
                    )));
                }
                let _ = self.stream.shutdown(std::net::Shutdown::Both);
                return Ok(());
            }
        }
    }

    /// Sends TEST UNIT READY until it is GOOD, swallowing up to `tries` unit
    /// attentions (a fresh nexus often starts with one).
    pub fn clear_unit_attentions(&mut self, tries: u32) -> io::Result<()> {
        let mut n = 0;
        loop {
            match self.test_unit_ready() {
                Err(e) if n < tries && scsi_error(&e).is_some_and(|s| s.is_unit_attention()) => {
                    n += 1
                }
                r => return r,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Block pattern
// ---------------------------------------------------------------------------

/// First 8 bytes of every pattern block.
pub const PATTERN_MAGIC: [u8; 8] = *b"SFPAT01\0";
const HEADER: usize = 24; // magic, lba, seq
const TRAILER: usize = 8; // checksum

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn filler(lba: u64, seq: u64, out: &mut [u8]) {
    let mut state = splitmix(lba.wrapping_mul(0x0100_0000_01b3) ^ seq.rotate_left(32));
    for chunk in out.chunks_mut(8) {
        state = splitmix(state);
        let b = state.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// One block of the verification pattern: magic, lba (LE u64), seq (LE u64),
/// filler derived from lba and seq, and an FNV-1a checksum of all that in the last
/// 8 bytes. `block_size` must be at least 64.
pub fn pattern_block(lba: u64, seq: u64, block_size: usize) -> Vec<u8> {
    assert!(block_size >= 64, "pattern blocks need at least 64 bytes");
    let mut b = vec![0u8; block_size];
    b[..8].copy_from_slice(&PATTERN_MAGIC);
    b[8..16].copy_from_slice(&lba.to_le_bytes());
    b[16..24].copy_from_slice(&seq.to_le_bytes());
    filler(lba, seq, &mut b[HEADER..block_size - TRAILER]);
    let sum = fnv1a(&b[..block_size - TRAILER]);
    b[block_size - TRAILER..].copy_from_slice(&sum.to_le_bytes());
    b
}

/// Checks that `buf` is an intact pattern block written for `lba`; returns its seq
/// (the write generation), or what is wrong: zeroed (never written), not a pattern
/// block, torn/corrupt (checksum or filler), or a block meant for another lba.
pub fn check_block(buf: &[u8], lba: u64) -> Result<u64, String> {
    if buf.len() < 64 {
        return Err(format!("{}-byte block is too short", buf.len()));
    }
    if buf.iter().all(|&b| b == 0) {
        return Err("zeroed (never written)".to_string());
    }
    if buf[..8] != PATTERN_MAGIC {
        return Err(format!("not a pattern block (starts {:02x?})", &buf[..8]));
    }
    let n = buf.len();
    let stored = u64::from_le_bytes(buf[n - TRAILER..].try_into().map_err(|_| "short")?);
    let seq = u64::from_le_bytes(buf[16..24].try_into().map_err(|_| "short")?);
    let found_lba = u64::from_le_bytes(buf[8..16].try_into().map_err(|_| "short")?);
    if fnv1a(&buf[..n - TRAILER]) != stored {
        return Err(format!(
            "torn or corrupt (checksum mismatch; header says lba {found_lba} seq {seq})"
        ));
    }
    let mut want = vec![0u8; n - HEADER - TRAILER];
    filler(found_lba, seq, &mut want);
    if want[..] != buf[HEADER..n - TRAILER] {
        return Err(format!(
            "filler does not match lba {found_lba} seq {seq} (checksum collision?)"
        ));
    }
    if found_lba != lba {
        return Err(format!(
            "misplaced: holds the block of lba {found_lba} (seq {seq})"
        ));
    }
    Ok(seq)
}

// ---------------------------------------------------------------------------
// Multi-portal writer
// ---------------------------------------------------------------------------

/// One way to reach the LUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Portal {
    pub addr: SocketAddr,
    pub target: String,
}

impl Portal {
    pub fn new(addr: SocketAddr, target: &str) -> Portal {
        Portal {
            addr,
            target: target.to_string(),
        }
    }
}

/// An interruption of the write stream.
#[derive(Clone, Debug)]
pub struct Gap {
    /// When the first failing operation failed.
    pub failed_at: Instant,
    /// When the next WRITE was acknowledged (None: never, the run stopped first).
    pub resumed_at: Option<Instant>,
    /// Portal index in use when it failed (None: no session yet, at start).
    pub from: Option<usize>,
    /// Portal index the writes resumed on.
    pub to: Option<usize>,
    /// The first error, then one line per failed attempt ("portal I (addr): error"),
    /// at most [`Gap::MAX_ERRORS`] of them.
    pub errors: Vec<String>,
    /// Failed attempts (logins and WRITEs) during the gap, all counted.
    pub attempts: u64,
    /// The write (lba, seq) that was in flight when it failed; it is retried.
    pub in_flight: (u64, u64),
}

impl Gap {
    /// How many error lines a gap keeps.
    pub const MAX_ERRORS: usize = 20;

    fn record(&mut self, portal: usize, addr: SocketAddr, e: &io::Error) {
        self.attempts += 1;
        if self.errors.len() < Gap::MAX_ERRORS {
            self.errors.push(format!("portal {portal} ({addr}): {e}"));
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        self.resumed_at.map(|r| r - self.failed_at)
    }
}

/// What a [`Writer`] run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The last acknowledged seq of every lba written.
    pub acked: BTreeMap<u64, u64>,
    /// The write attempted but not acknowledged when the run stopped (lba, seq),
    /// if any: the block may hold it or its previously acked seq.
    pub in_flight: Option<(u64, u64)>,
    pub gaps: Vec<Gap>,
    /// Acknowledged WRITEs.
    pub writes: u64,
    /// When each acknowledged WRITE completed, in order (a stall of the stream, e.g.
    /// a path failover under an open session, is the longest interval between two).
    pub acked_at: Vec<Instant>,
}

/// Writes pattern blocks (`lba = i % nblocks`, `seq = i`, one block per WRITE) to the
/// first portal that works, and on any failure re-logs in through the portals in turn
/// (the next one first, the failed one last) and retries the same write there.
pub struct Writer {
    pub portals: Vec<Portal>,
    pub initiator: String,
    pub lun: u16,
    pub block_size: usize,
    pub nblocks: u64,
    /// Connect / per-read timeout (default 5 s).
    pub io_timeout: Duration,
    /// Pause after a full round of portals failed (default 200 ms).
    pub round_pause: Duration,
    /// Stop after this many acknowledged writes (default: only the stop flag).
    pub max_writes: Option<u64>,
    /// First lba of the written range (default 0).
    pub first_lba: u64,
    /// At most one WRITE per this interval (default: none, as fast as acknowledged).
    pub pace: Option<Duration>,
    isid: [u8; 6],
    progress: Arc<Progress>,
}

/// Live counters of a running [`Writer`], readable from other threads (e.g. to kill
/// the primary after N writes, then wait until writes resume).
#[derive(Debug)]
pub struct Progress {
    /// Acknowledged WRITEs so far.
    pub writes: AtomicU64,
    /// Gaps opened so far (a gap opens at the first failure of an interruption).
    pub gaps: AtomicU64,
    /// Index of the portal of the current session; `usize::MAX` while there is none.
    pub portal: AtomicUsize,
}

fn is_unit_attention(e: &io::Error) -> bool {
    scsi_error(e).is_some_and(|s| s.is_unit_attention())
}

impl Writer {
    pub fn new(
        portals: Vec<Portal>,
        initiator_iqn: &str,
        lun: u16,
        block_size: usize,
        nblocks: u64,
    ) -> Writer {
        Writer {
            portals,
            initiator: initiator_iqn.to_string(),
            lun,
            block_size,
            nblocks: nblocks.max(1),
            io_timeout: Duration::from_secs(5),
            round_pause: Duration::from_millis(200),
            pace: None,
            max_writes: None,
            first_lba: 0,
            isid: random_isid(),
            progress: Arc::new(Progress {
                writes: AtomicU64::new(0),
                gaps: AtomicU64::new(0),
                portal: AtomicUsize::new(usize::MAX),
            }),
        }
    }

    /// A handle on the live counters; take it before moving the writer to a thread.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    fn connect(&self, i: usize) -> io::Result<Session> {
        let p = &self.portals[i];
        let mut s = Session::login_isid(
            p.addr,
            &p.target,
            &self.initiator,
            self.isid,
            self.io_timeout,
        )?;
        s.set_lun(self.lun);
        Ok(s)
    }

    /// One WRITE, retried on the same session through up to 3 unit attentions.
    fn write_one(&self, s: &mut Session, lba: u64, seq: u64) -> io::Result<()> {
        let block = pattern_block(lba, seq, self.block_size);
        let lba32 = u32::try_from(lba)
            .map_err(|_| err(ErrorKind::InvalidInput, format!("lba {lba} needs READ(16)")))?;
        let mut ua = 0;
        loop {
            match s.write10(lba32, &block, self.block_size) {
                Err(e) if ua < 3 && is_unit_attention(&e) => ua += 1,
                r => return r,
            }
        }
    }

    /// The open gap, or a new one (counted in the progress) failing now.
    fn open_gap<'g>(
        &self,
        gap: &'g mut Option<Gap>,
        from: Option<usize>,
        in_flight: (u64, u64),
    ) -> &'g mut Gap {
        gap.get_or_insert_with(|| {
            self.progress.gaps.fetch_add(1, Ordering::SeqCst);
            Gap {
                failed_at: Instant::now(),
                resumed_at: None,
                from,
                to: None,
                errors: Vec::new(),
                attempts: 0,
                in_flight,
            }
        })
    }

    /// Writes until `stop` is set (or `max_writes` is reached); see [`Report`].
    pub fn run_until(&mut self, stop: &AtomicBool) -> Report {
        let mut report = Report::default();
        let mut session: Option<(usize, Session)> = None;
        let mut gap: Option<Gap> = None;
        let mut i: u64 = 0;
        let n = self.portals.len();
        // the portal to try first when there is no session
        let mut next = 0usize;
        let mut next_write = Instant::now();
        'run: while !stop.load(Ordering::Relaxed)
            && self.max_writes.is_none_or(|m| report.writes < m)
        {
            let lba = self.first_lba + i % self.nblocks;
            let seq = i;
            if session.is_none() {
                // one round over the portals, starting at `next`
                for k in 0..n {
                    if stop.load(Ordering::Relaxed) {
                        break 'run;
                    }
                    let idx = (next + k) % n;
                    match self.connect(idx) {
                        Ok(s) => {
                            session = Some((idx, s));
                            self.progress.portal.store(idx, Ordering::SeqCst);
                            break;
                        }
                        Err(e) => {
                            let g = self.open_gap(&mut gap, None, (lba, seq));
                            g.record(idx, self.portals[idx].addr, &e);
                        }
                    }
                }
                if session.is_none() {
                    std::thread::sleep(self.round_pause);
                    continue;
                }
            }
            let Some((idx, s)) = session.as_mut() else {
                continue;
            };
            let idx = *idx;
            if let Some(p) = self.pace {
                let now = Instant::now();
                if next_write > now {
                    std::thread::sleep(next_write - now);
                }
                next_write = next_write.max(now) + p;
            }
            match self.write_one(s, lba, seq) {
                Ok(()) => {
                    report.acked.insert(lba, seq);
                    report.writes += 1;
                    report.acked_at.push(Instant::now());
                    self.progress.writes.store(report.writes, Ordering::SeqCst);
                    i += 1;
                    if let Some(mut g) = gap.take() {
                        g.resumed_at = Some(Instant::now());
                        g.to = Some(idx);
                        report.gaps.push(g);
                    }
                }
                Err(e) => {
                    let g = self.open_gap(&mut gap, Some(idx), (lba, seq));
                    g.record(idx, self.portals[idx].addr, &e);
                    session = None; // dropping it closes the connection
                    self.progress.portal.store(usize::MAX, Ordering::SeqCst);
                    next = (idx + 1) % n;
                    // A portal that logs in but cannot write (no LUN yet, standby) must
                    // not be hammered: its node is the one busy promoting.
                    std::thread::sleep(self.round_pause);
                }
            }
        }
        if let Some(g) = gap.take() {
            report.in_flight = Some(g.in_flight);
            report.gaps.push(g);
        }
        report
    }
}

/// Reads back every block the report says was acknowledged, through the first portal
/// that logs in and serves the reads, and checks it. Rule: the seq read back must be
/// the last acknowledged seq of that lba, or, for the lba of `report.in_flight` only,
/// the seq of that unacknowledged write (it may or may not have landed). Returns the
/// number of blocks checked, or one line per mismatch ("lba L: expected seq S, found
/// ...").
pub fn verify(
    portals: &[Portal],
    initiator_iqn: &str,
    lun: u16,
    block_size: usize,
    report: &Report,
    timeout: Duration,
) -> Result<usize, Vec<String>> {
    let mut failures = Vec::new();
    for (idx, p) in portals.iter().enumerate() {
        match read_acked(p, initiator_iqn, lun, block_size, report, timeout) {
            Ok(blocks) => return check_acked(report, &blocks),
            Err(e) => failures.push(format!("portal {idx} ({}): {e}", p.addr)),
        }
    }
    failures.insert(0, "no portal served the read-back".to_string());
    Err(failures)
}

fn read_acked(
    p: &Portal,
    initiator: &str,
    lun: u16,
    bs: usize,
    report: &Report,
    timeout: Duration,
) -> io::Result<BTreeMap<u64, Vec<u8>>> {
    let mut s = Session::login(p.addr, &p.target, initiator, timeout)?;
    s.set_lun(lun);
    s.clear_unit_attentions(3)?;
    let mut lbas: Vec<u64> = report.acked.keys().copied().collect();
    if let Some((l, _)) = report.in_flight {
        lbas.push(l);
    }
    lbas.sort_unstable();
    lbas.dedup();
    let mut out = BTreeMap::new();
    // contiguous runs, at most 128 blocks per READ
    let mut k = 0;
    while k < lbas.len() {
        let start = lbas[k];
        let mut end = k + 1;
        while end < lbas.len() && lbas[end] == lbas[end - 1] + 1 && end - k < 128 {
            end += 1;
        }
        let count = end - k;
        let start32 = u32::try_from(start).map_err(|_| {
            err(
                ErrorKind::InvalidInput,
                format!("lba {start} needs READ(16)"),
            )
        })?;
        let data = s.read10(start32, count as u16, bs)?;
        for (j, chunk) in data.chunks(bs).enumerate() {
            out.insert(start + j as u64, chunk.to_vec());
        }
        k = end;
    }
    let _ = s.logout();
    Ok(out)
}

/// Applies the rule of [`verify`] to blocks already read (lba → contents).
pub fn check_acked(report: &Report, blocks: &BTreeMap<u64, Vec<u8>>) -> Result<usize, Vec<String>> {
    let mut bad = Vec::new();
    let mut checked = 0;
    let mut lbas: Vec<u64> = report.acked.keys().copied().collect();
    if let Some((l, _)) = report.in_flight {
        if !report.acked.contains_key(&l) {
            lbas.push(l);
        }
    }
    for lba in lbas {
        let acked = report.acked.get(&lba).copied();
        let in_flight = report.in_flight.filter(|(l, _)| *l == lba).map(|(_, s)| s);
        let expected = match (acked, in_flight) {
            (Some(a), Some(f)) => format!("seq {a} (acked) or {f} (in flight)"),
            (Some(a), None) => format!("seq {a}"),
            (None, Some(f)) => format!("seq {f} (in flight) or never written"),
            (None, None) => continue,
        };
        let Some(buf) = blocks.get(&lba) else {
            bad.push(format!("lba {lba}: expected {expected}, not read"));
            continue;
        };
        checked += 1;
        match check_block(buf, lba) {
            Ok(seq) if Some(seq) == acked || Some(seq) == in_flight => {}
            Ok(seq) => bad.push(format!("lba {lba}: expected {expected}, found seq {seq}")),
            // an in-flight write to a never-written block may not have landed at all
            Err(_) if acked.is_none() => {}
            Err(why) => bad.push(format!("lba {lba}: expected {expected}, found {why}")),
        }
    }
    if bad.is_empty() {
        Ok(checked)
    } else {
        Err(bad)
    }
}
