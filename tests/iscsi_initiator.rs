//! The test initiator of tests/common/iscsi.rs: its PDU encoding, sense decoding and
//! block pattern; the failover writer against small in-process fake targets on
//! 127.0.0.1 (deterministic R2T, NOP-In, standby and dead-portal cases); and, for
//! real, login/read/write/ACL against the default recipe's LIO target booted in
//! QEMU (skipped when SANFORGE_SKIP_E2E is set).

mod common;

use common::iscsi::*;
use common::vm::{free_port, show, Vm};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGET: &str = "iqn.2026-11.org.example.sanforge:storage-node";
const INITIATOR: &str = "iqn.2026-11.org.example:initiator";

// ---------------------------------------------------------------------------
// encoding, sense, pattern
// ---------------------------------------------------------------------------

#[test]
fn pdu_encoding_fills_the_bhs_and_pads_the_data() {
    let mut p = Pdu::new(op::SCSI_CMD, true, 0xa1);
    p.set_lun(encode_lun(3));
    p.set_itt(0x0102_0304);
    p.set_field(24, 0xdead_beef);
    p.data = vec![1, 2, 3, 4, 5];
    let b = p.encode();
    assert_eq!(b.len(), 48 + 8, "5 data bytes pad to 8");
    assert_eq!(b[0], 0x41, "immediate bit + opcode");
    assert_eq!(b[1], 0xa1);
    assert_eq!(b[4], 0, "no AHS");
    assert_eq!(
        &b[5..8],
        &[0, 0, 5],
        "DataSegmentLength is the unpadded length"
    );
    assert_eq!(&b[8..16], &[0, 3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&b[16..20], &[1, 2, 3, 4]);
    assert_eq!(&b[24..28], &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(&b[48..], &[1, 2, 3, 4, 5, 0, 0, 0]);

    let back = Pdu::read_from(&mut &b[..]).unwrap();
    assert_eq!(back.encode(), b, "decode then encode gives the same bytes");
    assert_eq!(back.data, p.data);
    assert_eq!(back.data_len(), 5);
    assert_eq!(back.itt(), 0x0102_0304);
    assert!(back.immediate());
    assert_eq!(back.opcode(), op::SCSI_CMD);

    // an aligned data segment gets no padding
    let mut q = Pdu::new(op::NOP_OUT, false, 0x80);
    q.data = vec![9; 8];
    assert_eq!(q.encode().len(), 56);
    assert_eq!(padded(0), 0);
    assert_eq!(padded(1), 4);
    assert_eq!(padded(4), 4);
    assert_eq!(padded(8193), 8196);
}

#[test]
fn pdu_reader_skips_ahs_and_padding_and_keeps_the_stream_in_step() {
    let mut first = Pdu::new(op::DATA_IN, false, 0x81);
    first.data = vec![7; 3];
    let mut bytes = first.encode();
    bytes[4] = 1; // one 4-byte AHS word, inserted after the BHS
    bytes.splice(48..48, [0xaa; 4]);
    let mut second = Pdu::new(op::NOP_IN, false, 0x80);
    second.set_itt(RESERVED_TAG);
    bytes.extend(second.encode());
    let mut r = &bytes[..];
    let a = Pdu::read_from(&mut r).unwrap();
    assert_eq!(a.data, vec![7, 7, 7]);
    assert_eq!(a.ahs_len(), 4);
    let b = Pdu::read_from(&mut r).unwrap();
    assert_eq!(b.opcode(), op::NOP_IN);
    assert_eq!(b.itt(), RESERVED_TAG);
    assert!(r.is_empty());
    // a truncated PDU is an error, not a short read
    assert!(Pdu::read_from(&mut &bytes[..40]).is_err());
}

#[test]
fn text_keys_round_trip_and_bad_text_is_refused() {
    let t = encode_text(&[
        ("InitiatorName", "iqn.x:y".to_string()),
        ("MaxBurstLength", "262144".to_string()),
    ]);
    assert_eq!(
        t,
        b"InitiatorName=iqn.x:y\0MaxBurstLength=262144\0".to_vec()
    );
    let kv = decode_text(&t).unwrap();
    assert_eq!(kv[0], ("InitiatorName".into(), "iqn.x:y".into()));
    assert_eq!(kv[1], ("MaxBurstLength".into(), "262144".into()));
    // a value containing '=' keeps it; no trailing NUL is fine
    let kv = decode_text(b"TargetAlias=a=b").unwrap();
    assert_eq!(kv, vec![("TargetAlias".into(), "a=b".into())]);
    assert!(decode_text(b"garbage\0").is_err());
}

#[test]
fn luns_use_peripheral_then_flat_addressing() {
    assert_eq!(encode_lun(0), [0; 8]);
    assert_eq!(encode_lun(255)[..2], [0x00, 0xff]);
    assert_eq!(encode_lun(256)[..2], [0x41, 0x00]);
    assert_eq!(encode_lun(0x3fff)[..2], [0x7f, 0xff]);
}

#[test]
fn sense_is_decoded_in_both_formats_and_described() {
    let mut fixed = [0u8; 18];
    fixed[0] = 0x70;
    fixed[2] = 0x02;
    fixed[7] = 10;
    fixed[12] = 0x04;
    fixed[13] = 0x0b;
    let s = decode_sense(&fixed).unwrap();
    assert_eq!((s.key, s.asc, s.ascq), (2, 0x04, 0x0b));
    let desc = [0x72, 0x05, 0x25, 0x00, 0, 0, 0, 0];
    let s = decode_sense(&desc).unwrap();
    assert_eq!((s.key, s.asc, s.ascq), (5, 0x25, 0x00));
    assert_eq!(decode_sense(&[0x00, 1, 2]), None);
    assert_eq!(decode_sense(&[]), None);

    let e = ScsiError {
        op: "WRITE(10) lba 123".into(),
        status: 0x02,
        key: 2,
        asc: 4,
        ascq: 0x0b,
        response: 0,
    };
    assert_eq!(
        e.to_string(),
        "WRITE(10) lba 123: CHECK CONDITION, NOT READY, asc/ascq 04/0b (asymmetric access standby)"
    );
    let io = std::io::Error::other(e.clone());
    assert_eq!(scsi_error(&io), Some(&e));
    let busy = ScsiError {
        status: 0x08,
        key: 0,
        asc: 0,
        ascq: 0,
        ..e
    };
    assert_eq!(busy.to_string(), "WRITE(10) lba 123: BUSY");
}

#[test]
fn pattern_blocks_identify_their_generation_and_reveal_damage() {
    let b = pattern_block(42, 1042, 512);
    assert_eq!(b.len(), 512);
    assert_eq!(check_block(&b, 42), Ok(1042));
    assert_ne!(pattern_block(42, 1043, 512), b, "seq changes the block");
    assert_ne!(
        pattern_block(43, 1042, 512)[24..],
        b[24..],
        "lba changes the filler"
    );
    assert_eq!(pattern_block(42, 1042, 512), b, "deterministic");
    assert_eq!(check_block(&pattern_block(7, 1, 4096), 7), Ok(1));

    let mut torn = b.clone();
    torn[300..].copy_from_slice(&pattern_block(42, 530, 512)[300..]);
    let e = check_block(&torn, 42).unwrap_err();
    assert!(e.contains("torn"), "{e}");
    let mut flipped = b.clone();
    flipped[100] ^= 1;
    assert!(check_block(&flipped, 42).unwrap_err().contains("torn"));
    assert!(check_block(&b, 41).unwrap_err().contains("misplaced"));
    assert!(check_block(&[0u8; 512], 42)
        .unwrap_err()
        .contains("never written"));
    assert!(check_block(&[0x5a; 512], 42)
        .unwrap_err()
        .contains("not a pattern"));
}

#[test]
fn acked_rule_allows_only_the_last_ack_or_the_write_in_flight() {
    let bs = 512;
    let mut report = Report::default();
    report.acked.insert(0, 8);
    report.acked.insert(1, 9);
    report.acked.insert(2, 6);
    report.in_flight = Some((2, 10));
    let mut blocks = BTreeMap::new();
    blocks.insert(0, pattern_block(0, 8, bs));
    blocks.insert(1, pattern_block(1, 9, bs));
    blocks.insert(2, pattern_block(2, 6, bs));
    assert_eq!(check_acked(&report, &blocks), Ok(3));
    blocks.insert(2, pattern_block(2, 10, bs));
    assert_eq!(
        check_acked(&report, &blocks),
        Ok(3),
        "the in-flight write landed"
    );
    blocks.insert(1, pattern_block(1, 5, bs));
    let bad = check_acked(&report, &blocks).unwrap_err();
    assert_eq!(bad, vec!["lba 1: expected seq 9, found seq 5".to_string()]);
    blocks.insert(1, pattern_block(1, 13, bs));
    assert!(
        check_acked(&report, &blocks).is_err(),
        "a later unacked seq"
    );
    blocks.insert(1, vec![0; bs]);
    let bad = check_acked(&report, &blocks).unwrap_err();
    assert!(bad[0].contains("never written"), "{bad:?}");
}

// ---------------------------------------------------------------------------
// fake targets on 127.0.0.1
// ---------------------------------------------------------------------------

const FAKE_BS: usize = 512;
const FAKE_BLOCKS: usize = 256;
/// The fake declares small limits so writes need R2T and several Data-Outs.
const FAKE_MRDSL: usize = 1024;
const FAKE_FIRST_BURST: usize = 512;
const FAKE_MAX_BURST: usize = 2048;

/// A minimal iSCSI target: one LUN on a shared in-memory disk (two fakes sharing it
/// model a replicated LUN), answers in standby (NOT READY 04/0b) once `fail_after`
/// writes were accepted, sends a NOP-In ping before its first SCSI answer.
struct Fake {
    addr: SocketAddr,
    accepted_writes: Arc<AtomicU64>,
    nop_echoes: Arc<AtomicU64>,
}

#[derive(Clone)]
struct FakeCfg {
    disk: Arc<Mutex<Vec<u8>>>,
    fail_after: u64,
    allowed: &'static str,
}

fn send(s: &mut TcpStream, p: &Pdu) {
    s.write_all(&p.encode()).unwrap();
}

fn scsi_rsp(itt: u32, stat_sn: u32, status: u8, sense: &[u8]) -> Pdu {
    let mut r = Pdu::new(op::SCSI_RSP, false, 0x80);
    r.bhs[3] = status;
    r.set_itt(itt);
    r.set_field(24, stat_sn);
    r.set_field(28, 1);
    r.set_field(32, 1000);
    if !sense.is_empty() {
        r.data = (sense.len() as u16).to_be_bytes().to_vec();
        r.data.extend_from_slice(sense);
    }
    r
}

impl Fake {
    fn start(cfg: FakeCfg) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let accepted_writes = Arc::new(AtomicU64::new(0));
        let nop_echoes = Arc::new(AtomicU64::new(0));
        let (w, n) = (accepted_writes.clone(), nop_echoes.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { return };
                let (cfg, w, n) = (cfg.clone(), w.clone(), n.clone());
                std::thread::spawn(move || {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        serve(conn, &cfg, &w, &n)
                    }));
                });
            }
        });
        Fake {
            addr,
            accepted_writes,
            nop_echoes,
        }
    }
}

fn serve(mut s: TcpStream, cfg: &FakeCfg, writes: &AtomicU64, nops: &AtomicU64) {
    let mut stat_sn = 100u32;
    let mut pinged = false;
    loop {
        let Ok(p) = Pdu::read_from(&mut s) else {
            return;
        };
        match p.opcode() {
            op::LOGIN_REQ => {
                let keys = decode_text(&p.data).unwrap();
                let csg = (p.flags() >> 2) & 3;
                let nsg = p.flags() & 3;
                let mut r = Pdu::new(op::LOGIN_RSP, false, p.flags() & 0x8f);
                r.bhs[8..14].copy_from_slice(&p.bhs[8..14]);
                r.set_itt(p.itt());
                r.set_field(24, stat_sn);
                r.set_field(28, p.field(24));
                r.set_field(32, p.field(24) + 64);
                stat_sn += 1;
                let name = keys.iter().find(|(k, _)| k == "InitiatorName");
                if csg == 0 && name.is_none_or(|(_, v)| v != cfg.allowed) {
                    r.bhs[36] = 2;
                    r.bhs[37] = 2;
                    send(&mut s, &r);
                    return;
                }
                if csg == 0 {
                    r.data = encode_text(&[("AuthMethod", "None".into())]);
                } else {
                    r.bhs[14..16].copy_from_slice(&7u16.to_be_bytes());
                    r.data = encode_text(&[
                        ("HeaderDigest", "None".into()),
                        ("DataDigest", "None".into()),
                        ("MaxRecvDataSegmentLength", FAKE_MRDSL.to_string()),
                        ("FirstBurstLength", FAKE_FIRST_BURST.to_string()),
                        ("MaxBurstLength", FAKE_MAX_BURST.to_string()),
                        ("ImmediateData", "Yes".into()),
                        ("InitialR2T", "Yes".into()),
                    ]);
                }
                assert!(nsg == 1 || nsg == 3);
                send(&mut s, &r);
            }
            op::SCSI_CMD => {
                let itt = p.itt();
                if !pinged {
                    pinged = true;
                    let mut ping = Pdu::new(op::NOP_IN, false, 0x80);
                    ping.set_itt(RESERVED_TAG);
                    ping.set_field(20, 0x1234);
                    ping.set_field(24, stat_sn);
                    send(&mut s, &ping);
                    let echo = Pdu::read_from(&mut s).unwrap();
                    assert_eq!(echo.opcode(), op::NOP_OUT);
                    assert!(echo.immediate());
                    assert_eq!(echo.ttt(), 0x1234);
                    assert_eq!(echo.itt(), RESERVED_TAG);
                    nops.fetch_add(1, Ordering::SeqCst);
                }
                let cdb = &p.bhs[32..48];
                let lba = u32::from_be_bytes([cdb[2], cdb[3], cdb[4], cdb[5]]) as usize;
                let count = u16::from_be_bytes([cdb[7], cdb[8]]) as usize;
                let standby = writes.load(Ordering::SeqCst) >= cfg.fail_after;
                let mut sense = [0u8; 18];
                sense[0] = 0x70;
                sense[2] = 0x02;
                sense[7] = 10;
                sense[12] = 0x04;
                sense[13] = 0x0b;
                match cdb[0] {
                    0x2a => {
                        let len = p.field(20) as usize;
                        assert_eq!(len, count * FAKE_BS);
                        assert!(p.data.len() <= FAKE_FIRST_BURST.min(FAKE_MRDSL));
                        let mut buf = p.data.clone();
                        let mut r2t_sn = 0;
                        while buf.len() < len {
                            let want = (len - buf.len()).min(FAKE_MAX_BURST);
                            let mut r = Pdu::new(op::R2T, false, 0x80);
                            r.set_itt(itt);
                            r.set_field(20, 0x500 + r2t_sn);
                            r.set_field(24, stat_sn);
                            r.set_field(36, r2t_sn);
                            r.set_field(40, buf.len() as u32);
                            r.set_field(44, want as u32);
                            send(&mut s, &r);
                            let mut data_sn = 0;
                            let end = buf.len() + want;
                            while buf.len() < end {
                                let d = Pdu::read_from(&mut s).unwrap();
                                assert_eq!(d.opcode(), op::DATA_OUT);
                                assert_eq!(d.ttt(), 0x500 + r2t_sn);
                                assert_eq!(d.field(36), data_sn);
                                assert_eq!(d.field(40) as usize, buf.len());
                                assert!(d.data.len() <= FAKE_MRDSL);
                                buf.extend_from_slice(&d.data);
                                assert_eq!(d.final_bit(), buf.len() == end);
                                data_sn += 1;
                            }
                            r2t_sn += 1;
                        }
                        let r = if standby {
                            scsi_rsp(itt, stat_sn, 2, &sense)
                        } else {
                            let off = lba * FAKE_BS;
                            cfg.disk.lock().unwrap()[off..off + len].copy_from_slice(&buf);
                            writes.fetch_add(1, Ordering::SeqCst);
                            scsi_rsp(itt, stat_sn, 0, &[])
                        };
                        stat_sn += 1;
                        send(&mut s, &r);
                    }
                    0x28 if standby => {
                        send(&mut s, &scsi_rsp(itt, stat_sn, 2, &sense));
                        stat_sn += 1;
                    }
                    0x28 => {
                        let off = lba * FAKE_BS;
                        let data = cfg.disk.lock().unwrap()[off..off + count * FAKE_BS].to_vec();
                        let chunks: Vec<&[u8]> = data.chunks(700).collect();
                        for (k, c) in chunks.iter().enumerate() {
                            let last = k + 1 == chunks.len();
                            let mut d = Pdu::new(op::DATA_IN, false, if last { 0x81 } else { 0 });
                            d.set_itt(itt);
                            d.set_field(20, RESERVED_TAG);
                            if last {
                                d.set_field(24, stat_sn);
                            }
                            d.set_field(36, k as u32);
                            d.set_field(40, (k * 700) as u32);
                            d.data = c.to_vec();
                            send(&mut s, &d);
                        }
                        stat_sn += 1;
                    }
                    0x25 => {
                        let mut d = Pdu::new(op::DATA_IN, false, 0x81);
                        d.set_itt(itt);
                        d.set_field(24, stat_sn);
                        let mut cap = ((FAKE_BLOCKS - 1) as u32).to_be_bytes().to_vec();
                        cap.extend((FAKE_BS as u32).to_be_bytes());
                        d.data = cap;
                        send(&mut s, &d);
                        stat_sn += 1;
                    }
                    _ => {
                        send(&mut s, &scsi_rsp(itt, stat_sn, 0, &[]));
                        stat_sn += 1;
                    }
                }
            }
            op::NOP_OUT => {
                assert!(p.immediate());
                assert_eq!(p.ttt(), RESERVED_TAG);
                let mut r = Pdu::new(op::NOP_IN, false, 0x80);
                r.set_itt(p.itt());
                r.set_field(20, RESERVED_TAG);
                r.set_field(24, stat_sn);
                r.data = p.data.clone();
                stat_sn += 1;
                send(&mut s, &r);
            }
            op::LOGOUT_REQ => {
                let mut r = Pdu::new(op::LOGOUT_RSP, false, 0x80);
                r.set_itt(p.itt());
                r.set_field(24, stat_sn);
                send(&mut s, &r);
                return;
            }
            other => panic!("fake target: unexpected opcode {other:#04x}"),
        }
    }
}

fn fake_pair(fail_after_a: u64) -> (Fake, Fake, Arc<Mutex<Vec<u8>>>) {
    let disk = Arc::new(Mutex::new(vec![0u8; FAKE_BLOCKS * FAKE_BS]));
    let a = Fake::start(FakeCfg {
        disk: disk.clone(),
        fail_after: fail_after_a,
        allowed: INITIATOR,
    });
    let b = Fake::start(FakeCfg {
        disk: disk.clone(),
        fail_after: u64::MAX,
        allowed: INITIATOR,
    });
    (a, b, disk)
}

#[test]
fn session_writes_with_r2t_reads_back_and_answers_pings() {
    let (a, _b, disk) = fake_pair(u64::MAX);
    let mut s = Session::login(a.addr, TARGET, INITIATOR, Duration::from_secs(5)).unwrap();
    assert_eq!(s.params.target_max_recv as usize, FAKE_MRDSL);
    assert_eq!(s.params.first_burst as usize, FAKE_FIRST_BURST);
    assert_eq!(s.params.max_burst as usize, FAKE_MAX_BURST);
    assert_eq!(s.params.tsih, 7);
    s.test_unit_ready().unwrap();
    assert_eq!(s.nops_answered, 1);
    assert_eq!(a.nop_echoes.load(Ordering::SeqCst), 1);
    assert_eq!(
        s.read_capacity10().unwrap(),
        (FAKE_BLOCKS as u64, FAKE_BS as u32)
    );
    // 16 blocks: 512 immediate bytes, then R2Ts of 2048 bytes sent as 1024-byte Data-Outs
    let data: Vec<u8> = (10..26u64)
        .flat_map(|l| pattern_block(l, l + 1000, FAKE_BS))
        .collect();
    s.write10(10, &data, FAKE_BS).unwrap();
    assert_eq!(&disk.lock().unwrap()[10 * FAKE_BS..26 * FAKE_BS], &data[..]);
    let back = s.read10(10, 16, FAKE_BS).unwrap();
    assert_eq!(back, data);
    for (k, blk) in back.chunks(FAKE_BS).enumerate() {
        assert_eq!(check_block(blk, 10 + k as u64), Ok(1010 + k as u64));
    }
    s.synchronize_cache10().unwrap();
    s.nop(b"ping").unwrap();
    s.nop(&[]).unwrap();
    s.test_unit_ready().unwrap();
    s.logout().unwrap();
}

#[test]
fn login_refusal_and_silent_or_closing_targets_are_errors_not_hangs() {
    let (a, _b, _) = fake_pair(u64::MAX);
    let e = Session::login(
        a.addr,
        TARGET,
        "iqn.2026-11.org.example:stranger",
        Duration::from_secs(5),
    )
    .err()
    .expect("a stranger got in");
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("authorization failure"), "{e}");

    // accepts, never answers
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let e = Session::login(
        silent.local_addr().unwrap(),
        TARGET,
        INITIATOR,
        Duration::from_millis(300),
    )
    .err()
    .expect("login to a silent target succeeded");
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("no answer"), "{e}");

    // accepts, then closes
    let closing = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closing.local_addr().unwrap();
    std::thread::spawn(move || {
        let (c, _) = closing.accept().unwrap();
        drop(c);
    });
    let e = Session::login(addr, TARGET, INITIATOR, Duration::from_secs(5))
        .err()
        .expect("login to a closing target succeeded");
    assert!(
        matches!(
            e.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
        ),
        "{e}"
    );
}

/// A port nothing listens on (bound, then released).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn writer_fails_over_from_standby_portal_and_everything_acked_reads_back() {
    let (a, b, disk) = fake_pair(50);
    let portals = vec![Portal::new(a.addr, TARGET), Portal::new(b.addr, TARGET)];
    let mut w = Writer::new(portals.clone(), INITIATOR, 0, FAKE_BS, 64);
    w.max_writes = Some(130);
    let progress = w.progress();
    assert_eq!(progress.portal.load(Ordering::SeqCst), usize::MAX);
    let stop = AtomicBool::new(false);
    let report = w.run_until(&stop);
    assert_eq!(report.writes, 130);
    assert_eq!(progress.writes.load(Ordering::SeqCst), 130);
    assert_eq!(progress.gaps.load(Ordering::SeqCst), 1);
    assert_eq!(progress.portal.load(Ordering::SeqCst), 1);
    assert_eq!(a.accepted_writes.load(Ordering::SeqCst), 50);
    assert_eq!(b.accepted_writes.load(Ordering::SeqCst), 80);
    assert_eq!(report.acked.len(), 64);
    assert_eq!(report.acked[&0], 128);
    assert_eq!(report.acked[&63], 127);
    assert_eq!(report.in_flight, None);
    assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
    let g = &report.gaps[0];
    assert_eq!((g.from, g.to), (Some(0), Some(1)));
    assert_eq!(g.in_flight, (50, 50));
    assert!(g.duration().is_some());
    assert!(
        g.errors[0].contains("WRITE(10) lba 50: CHECK CONDITION, NOT READY, asc/ascq 04/0b"),
        "{:?}",
        g.errors
    );

    // the standby portal refuses the reads; verify moves on to the other one
    let n = verify(
        &portals,
        INITIATOR,
        0,
        FAKE_BS,
        &report,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(n, 64);

    // an acknowledged block that reverted to an older generation is caught
    disk.lock().unwrap()[5 * FAKE_BS..6 * FAKE_BS].copy_from_slice(&pattern_block(5, 5, FAKE_BS));
    let bad = verify(
        &portals,
        INITIATOR,
        0,
        FAKE_BS,
        &report,
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert_eq!(bad, vec!["lba 5: expected seq 69, found seq 5".to_string()]);
}

#[test]
fn writer_starts_past_a_dead_portal_and_stops_on_the_flag() {
    let (_a, b, _) = fake_pair(u64::MAX);
    let portals = vec![
        Portal::new(dead_addr(), TARGET),
        Portal::new(b.addr, TARGET),
    ];
    let mut w = Writer::new(portals.clone(), INITIATOR, 0, FAKE_BS, 16);
    w.max_writes = Some(20);
    let report = w.run_until(&AtomicBool::new(false));
    assert_eq!(report.writes, 20);
    assert_eq!(report.gaps.len(), 1);
    assert_eq!((report.gaps[0].from, report.gaps[0].to), (None, Some(1)));
    assert!(
        report.gaps[0].errors[0].contains("cannot connect"),
        "{:?}",
        report.gaps[0].errors
    );
    assert_eq!(
        verify(
            &portals,
            INITIATOR,
            0,
            FAKE_BS,
            &report,
            Duration::from_secs(5)
        ),
        Ok(16)
    );

    // only dead portals: the run ends when the flag is set, with one open gap
    let mut w = Writer::new(
        vec![Portal::new(dead_addr(), TARGET)],
        INITIATOR,
        0,
        FAKE_BS,
        16,
    );
    w.round_pause = Duration::from_millis(20);
    let progress = w.progress();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let t = std::thread::spawn(move || w.run_until(&flag));
    while progress.gaps.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::SeqCst);
    let report = t.join().unwrap();
    assert_eq!(report.writes, 0);
    assert_eq!(report.gaps.len(), 1);
    assert!(report.gaps[0].resumed_at.is_none());
    assert_eq!(report.in_flight, Some((0, 0)));
    assert!(report.gaps[0].errors[0].contains("cannot connect"));
    assert_eq!(report.gaps[0].attempts, report.gaps[0].errors.len() as u64);
}

// ---------------------------------------------------------------------------
// the real LIO target in QEMU
// ---------------------------------------------------------------------------

fn sanforge() -> Command {
    common::vm::sanforge_in_repo()
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64().max(1e-9)
}

#[test]
fn real_lio_target_login_read_write_verify_and_acl() {
    if common::skip_e2e("real_lio_target_login_read_write_verify_and_acl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("storage-node");
    let o = sanforge()
        .args(["build", "recipes/storage-node.toml", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed: {}", show(&o));

    let port = free_port();
    let _vm = Vm(out.clone());
    let o = sanforge()
        .arg("run")
        .arg(&out)
        .args([
            "--until-ready",
            "--quiet",
            "--accel",
            "tcg",
            "--timeout",
            "240",
        ])
        .args(["--iscsi-port", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the image did not reach ready: {}",
        show(&o)
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let timeout = Duration::from_secs(30);

    // an initiator outside the ACL is refused at login
    let e = Session::login(addr, TARGET, "iqn.2026-11.org.example:stranger", timeout)
        .err()
        .expect("an initiator without an ACL logged in");
    eprintln!("stranger: {e}");
    assert!(e.to_string().contains("refused: status 02/"), "{e}");

    let mut s = Session::login(addr, TARGET, INITIATOR, timeout).unwrap();
    eprintln!("negotiated: {:?}", s.params);
    s.clear_unit_attentions(3).unwrap();
    let inq = s.inquiry().unwrap();
    assert_eq!(inq[0] & 0x1f, 0, "direct-access device: {inq:02x?}");
    eprintln!(
        "inquiry: {:?}",
        String::from_utf8_lossy(&inq[8..inq.len().min(36)])
    );
    let (blocks, bs) = s.read_capacity10().unwrap();
    assert_eq!(blocks * bs as u64, 64 << 20, "the 64 MiB ramlun0");
    let bs = bs as usize;

    // 256 blocks in one WRITE(10): immediate data, then R2T/Data-Out
    let data: Vec<u8> = (0..256u64)
        .flat_map(|l| pattern_block(1000 + l, 7, bs))
        .collect();
    let t = Instant::now();
    s.write10(1000, &data, bs).unwrap();
    let wt = t.elapsed();
    s.synchronize_cache10().unwrap();
    let t = Instant::now();
    let mut back = s.read10(1000, 128, bs).unwrap();
    back.extend(s.read10(1128, 128, bs).unwrap());
    let rt = t.elapsed();
    for (k, blk) in back.chunks(bs).enumerate() {
        assert_eq!(check_block(blk, 1000 + k as u64), Ok(7), "lba {}", 1000 + k);
    }
    eprintln!(
        "{} KiB: write {:.2} MiB/s, read {:.2} MiB/s (QEMU TCG)",
        data.len() / 1024,
        mib_s(data.len(), wt),
        mib_s(back.len(), rt)
    );
    // 1 MiB in one WRITE(10): several R2Ts (MaxBurstLength) one after the other
    let big: Vec<u8> = (0..2048u64)
        .flat_map(|l| pattern_block(8192 + l, 9, bs))
        .collect();
    let t = Instant::now();
    s.write10(8192, &big, bs).unwrap();
    let wt = t.elapsed();
    let t = Instant::now();
    let mut back = Vec::new();
    for k in 0..8 {
        back.extend(s.read10(8192 + k * 256, 256, bs).unwrap());
    }
    let rt = t.elapsed();
    assert!(back == big, "the 1 MiB write did not read back identical");
    eprintln!(
        "1 MiB: write {:.2} MiB/s, read {:.2} MiB/s (QEMU TCG, 256 KiB READs)",
        mib_s(big.len(), wt),
        mib_s(back.len(), rt)
    );
    eprintln!("NOP-Ins answered so far: {}", s.nops_answered);
    s.nop(b"keepalive").unwrap();

    // a read past the end is a CHECK CONDITION with sense, not a transport error
    let e = s.read10(blocks as u32, 1, bs).unwrap_err();
    let se = scsi_error(&e).unwrap_or_else(|| panic!("not a SCSI error: {e}"));
    eprintln!("past the end: {se}");
    assert_eq!((se.status, se.key, se.asc), (0x02, 0x05, 0x21), "{se}");
    s.logout().unwrap();

    // the failover writer, starting on a dead portal, then 256 single-block writes
    let portals = vec![Portal::new(dead_addr(), TARGET), Portal::new(addr, TARGET)];
    let mut w = Writer::new(portals.clone(), INITIATOR, 0, bs, 64);
    w.first_lba = 4096;
    w.max_writes = Some(256);
    w.io_timeout = timeout;
    let t = Instant::now();
    let report = w.run_until(&AtomicBool::new(false));
    eprintln!(
        "writer: {} writes in {:.2?}, gaps {:?}",
        report.writes,
        t.elapsed(),
        report
            .gaps
            .iter()
            .map(|g| (g.from, g.to, g.duration()))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.writes, 256);
    assert_eq!(report.gaps.len(), 1);
    assert_eq!(report.gaps[0].to, Some(1));
    assert_eq!(report.acked[&4096], 192);
    assert_eq!(verify(&portals, INITIATOR, 0, bs, &report, timeout), Ok(64));

    // the VM dies under a running writer: the failure is noticed (a gap opens, with
    // the error) instead of hanging, and the run ends on the stop flag
    let mut w = Writer::new(vec![Portal::new(addr, TARGET)], INITIATOR, 0, bs, 64);
    w.io_timeout = Duration::from_secs(10);
    w.round_pause = Duration::from_millis(50);
    let progress = w.progress();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let t = std::thread::spawn(move || w.run_until(&flag));
    while progress.writes.load(Ordering::SeqCst) < 100 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = Instant::now();
    let o = sanforge()
        .arg("run")
        .arg(&out)
        .arg("--stop")
        .output()
        .unwrap();
    assert!(o.status.success(), "stop failed: {}", show(&o));
    while progress.gaps.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "failure noticed {:.2?} after the stop began",
        killed.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    let report = t.join().unwrap();
    assert!(report.writes >= 100);
    assert_eq!(report.gaps.len(), 1, "{:?}", report.gaps);
    let g = &report.gaps[0];
    eprintln!(
        "gap: {} failed attempts, first errors: {:?}",
        g.attempts,
        &g.errors[..g.errors.len().min(3)]
    );
    assert!(g.errors.len() <= Gap::MAX_ERRORS && g.attempts >= g.errors.len() as u64);
    assert_eq!(g.from, Some(0));
    assert!(g.resumed_at.is_none(), "resumed on a dead VM?");
    assert_eq!(report.in_flight, Some(g.in_flight));
    assert_eq!(g.in_flight.1, report.writes, "the write after the last ack");
}

#[test]
fn a_paced_writer_waits_its_interval_between_writes() {
    let (a, _b, _disk) = fake_pair(1000);
    let portals = vec![Portal::new(a.addr, TARGET)];
    let mut w = Writer::new(portals, INITIATOR, 0, FAKE_BS, 64);
    w.max_writes = Some(6);
    w.pace = Some(Duration::from_millis(40));
    let stop = AtomicBool::new(false);
    let report = w.run_until(&stop);
    assert_eq!(report.writes, 6);
    // six writes paced 40 ms apart: the last acknowledged at least 5 intervals after
    // the first
    let span = report.acked_at[5] - report.acked_at[0];
    assert!(span >= Duration::from_millis(200), "{span:?}");
}
