//! Bad input never panics or hangs the host: it logs, and closes or answers 30.

mod common;

use acquirer::{Host, HostOutput};
use common::*;
use proptest::prelude::*;
use protocol::iso8583::{Message, MessageRef, Mti};

fn only_close(outs: &[HostOutput]) -> bool {
    matches!(outs, [HostOutput::Close { .. }])
}

#[test]
fn garbage_and_a_huge_length_prefix_close_the_connection() {
    let mut t = Term::cup();
    // FF FF announces 65535 bytes, above the dialect's 4096.
    t.send_bytes(&[0xFF, 0xFF, 1, 2, 3]);
    assert!(only_close(&t.outputs()));
    let e = t.host.log().iter().rev().nth(1).unwrap();
    assert!(e.note.as_deref().unwrap().contains("framing error"), "{e}");
    assert_eq!(e.raw_len, 5);
    // Further bytes on that connection are ignored.
    t.send_bytes(&[0, 1, 0]);
    assert!(t.outputs().is_empty());
}

#[test]
fn a_short_frame_without_an_mti_is_logged_and_closed() {
    let mut t = Term::cup();
    t.send_bytes(&[0, 5, 0x60, 0, 3, 0, 0]);
    assert!(only_close(&t.outputs()));
    let e = &t.host.log()[1];
    assert!(
        e.note.as_deref().unwrap().starts_with("decode error"),
        "{e}"
    );
    assert_eq!(e.mti, None);
}

#[test]
fn a_truncated_message_is_answered_30() {
    let mut t = Term::cup();
    let mut s = t.sale(100);
    let w = t.wire(&mut s);
    // Drop the MAC's last 4 bytes and fix the length prefix: the frame is whole, the message not.
    let mut cut = w[..w.len() - 4].to_vec();
    let len = (cut.len() - 2) as u16;
    cut[..2].copy_from_slice(&len.to_be_bytes());
    t.send_bytes(&cut);
    let b = t.reply_bytes();
    // Header swapped, MTI 0210, only field 39 = 30.
    assert_eq!(hex(&b[2..15]), "60000000036031000000000210");
    let r = MessageRef::decode(&t.d, &b[2..]).unwrap();
    assert_eq!(r.field_str(39).as_deref(), Some("30"));
    let e = &t.host.log()[1];
    assert_eq!(e.mti.as_deref(), Some("0200"));
    let note = e.note.as_deref().unwrap();
    assert!(note.contains("field 64") && note.contains("byte"), "{note}");
    assert!(t.host.ledger().records().is_empty());
}

#[test]
fn unknown_mti_is_30_and_a_response_mti_is_ignored() {
    let mut t = Term::iso87("30250001", None);
    let mut m = t.sale(100);
    m.mti = Mti::new(100).unwrap();
    let r = t.ask(&mut m);
    assert_eq!((r.mti.value(), r.get_str(39)), (110, Some("30")));
    let mut m = t.sale(100);
    m.mti = Mti::new(210).unwrap();
    t.send(&mut m);
    assert!(t.outputs().is_empty());
    assert!(
        t.host
            .log()
            .last()
            .unwrap()
            .note
            .as_deref()
            .unwrap()
            .contains("not a request")
    );
    // A known MTI with an unsupported processing code: 40.
    let mut m = t.sale(100);
    m.set(3, "310000");
    assert_eq!(t.code(&mut m), "40");
    // Missing mandatory fields: 30.
    let mut m = t.sale(100);
    m.remove(4);
    assert_eq!(t.code(&mut m), "30");
    let mut m = t.sale(100);
    m.remove(42);
    assert_eq!(t.code(&mut m), "30");
    assert!(t.host.ledger().records().is_empty());
}

#[test]
fn the_log_never_holds_a_full_pan_or_track() {
    let mut t = Term::cup();
    let mut s = t.sale(100);
    s.set(35, format!("{PAN}=30122201010000"));
    t.ask(&mut s);
    let mut bad = t.sale(100);
    let w = t.wire(&mut bad);
    t.send_bytes(&w[..w.len() - 1]);
    t.host.handle_close(t.conn, t.now);
    let all: String = t.host.log().iter().map(|e| format!("{e} {e:?}")).collect();
    assert!(!all.contains(PAN), "{all}");
    assert!(!all.contains("30122201010000"));
    assert!(all.contains("622202******7894"));
}

fn valid_frames(t: &mut Term) -> Vec<Vec<u8>> {
    let mut s = t.sale(10000);
    let sale = t.wire(&mut s);
    let mut reply = Message::new(Mti::new(210).unwrap());
    reply.set(37, "100000000001").set(13, "1126");
    let mut r = t.refund(100, PAN, &s, &reply);
    let refund = t.wire(&mut r);
    let mut rv = t.reversal(&s);
    let rev = t.wire(&mut rv);
    vec![sale, refund, rev]
}

fn run_bytes(dialect: &str, tid: &str, data: &[u8], cuts: &[usize]) -> (usize, usize) {
    let mut t = if dialect == "cup" {
        Term::cup()
    } else {
        Term::with(Host::new(config(dialect, Some("usd-1pct.yaml"))), tid)
    };
    let max = t.d.length_prefix.max_frame + 4;
    let mut pos = 0usize;
    let mut outs = Vec::new();
    for &c in cuts.iter().chain(std::iter::once(&usize::MAX)) {
        let end = pos.saturating_add(c.max(1)).min(data.len());
        t.send_bytes(&data[pos..end]);
        outs.extend(t.outputs());
        pos = end;
        if pos >= data.len() {
            break;
        }
    }
    t.host
        .handle_timeout(t.now + std::time::Duration::from_secs(3600));
    outs.extend(t.outputs());
    let sends = outs
        .iter()
        .filter(|o| matches!(o, HostOutput::Send { bytes, .. } if bytes.len() <= max))
        .count();
    (outs.len(), sends)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random bytes, split anywhere: no panic; at most one reply (or close) per frame the bytes
    /// could hold, each reply within the dialect's frame limit.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600),
                                cuts in proptest::collection::vec(0usize..80, 0..20),
                                iso in any::<bool>()) {
        let (d, tid) = if iso { ("iso87-ascii", "30250001") } else { ("cup", CUP_TID) };
        let (n, sends) = run_bytes(d, tid, &data, &cuts);
        prop_assert!(n <= data.len() / 2 + 1, "{n} outputs for {} bytes", data.len());
        prop_assert!(sends <= n);
    }

    /// Valid requests with bytes flipped, split anywhere: no panic, bounded output.
    #[test]
    fn mutated_requests_never_panic(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..6),
                                    cuts in proptest::collection::vec(0usize..60, 0..12),
                                    iso in any::<bool>()) {
        let mut t = if iso { Term::iso87("60250001", None) } else { Term::cup() };
        let frames = valid_frames(&mut t);
        let mut data: Vec<u8> = frames.concat();
        for (at, x) in flips {
            let i = at % data.len();
            data[i] ^= x | 1;
        }
        let (d, tid) = if iso { ("iso87-ascii", "60250001") } else { ("cup", CUP_TID) };
        let (n, sends) = run_bytes(d, tid, &data, &cuts);
        // A flipped length prefix can cut the stream into more frames, never into more than
        // one per three bytes (two of prefix, at least one of payload).
        prop_assert!(n <= data.len() / 3 + 1, "{n} outputs for {} bytes", data.len());
        prop_assert!(sends <= n);
    }
}
