//! Every delivery fault, checked against the exact bytes of the reply the host sends without
//! it. Two hosts built from the same fixtures answer the same request byte for byte (keys, RRNs
//! and auth codes are deterministic), so one gives the reference and the other the fault.

mod common;

use std::time::Duration;

use acquirer::{Directive, Fault, HostOutput, Times};
use common::*;
use protocol::iso8583::{MessageRef, Mti, mac};

/// The reference reply to a CUP sale of 100.00, and a second terminal with `d` installed that
/// has just sent the same sale.
fn reference_and_faulty(d: Directive) -> (Vec<u8>, Term) {
    let mut a = Term::cup();
    let mut s = a.sale(10000);
    a.send(&mut s);
    let reference = a.reply_bytes();
    let mut b = Term::cup();
    b.host.script(d);
    let mut s = b.sale(10000);
    b.send(&mut s);
    (reference, b)
}

fn sends(outs: &[HostOutput]) -> Vec<Vec<u8>> {
    outs.iter()
        .filter_map(|o| match o {
            HostOutput::Send { bytes, .. } => Some(bytes.clone()),
            HostOutput::Close { .. } => None,
        })
        .collect()
}

fn closes(outs: &[HostOutput]) -> usize {
    outs.iter()
        .filter(|o| matches!(o, HostOutput::Close { .. }))
        .count()
}

#[test]
fn reference_reply_is_a_swapped_signed_0210() {
    let (reference, mut t) = reference_and_faulty(Directive::new().mti("0800"));
    // 2-byte length, then TPDU 60 0000 0003 (swapped from 60 0003 0000), header, MTI 02 10.
    let len = u16::from_be_bytes([reference[0], reference[1]]) as usize;
    assert_eq!(len, reference.len() - 2);
    assert_eq!(hex(&reference[2..15]), "60000000036031000000000210");
    assert_eq!(hex(&t.reply_bytes()), hex(&reference));
}

#[test]
fn truncated_sends_half_a_frame_then_closes() {
    let (reference, mut t) =
        reference_and_faulty(Directive::new().mti("0200").fault(Fault::Truncated));
    let outs = t.outputs();
    let payload = reference.len() - 2;
    let sent = sends(&outs);
    assert_eq!(sent.len(), 1);
    // The prefix of the whole reply, then the first half of the payload.
    assert_eq!(hex(&sent[0]), hex(&reference[..2 + payload / 2]));
    assert!(matches!(outs.last(), Some(HostOutput::Close { .. })));
    // The terminal's decoder waits for the rest.
    let mut buf = sent[0].clone();
    assert_eq!(t.d.length_prefix.decode(&mut buf).unwrap(), None);
    // Processed all the same.
    assert_eq!(t.host.ledger().records().len(), 1);
}

#[test]
fn wrong_length_announces_one_byte_less() {
    let (reference, mut t) =
        reference_and_faulty(Directive::new().mti("0200").fault(Fault::WrongLength));
    let sent = sends(&t.outputs());
    let b = &sent[0];
    assert_eq!(b.len(), reference.len());
    let announced = u16::from_be_bytes([b[0], b[1]]) as usize;
    assert_eq!(announced, reference.len() - 3);
    assert_eq!(hex(&b[2..]), hex(&reference[2..]));
    // The terminal gets a frame one byte short, which does not decode, and a stray byte.
    let mut buf = b.clone();
    let frame = t.d.length_prefix.decode(&mut buf).unwrap().unwrap();
    assert!(MessageRef::decode(&t.d, &frame).is_err());
    assert_eq!(buf.len(), 1);
}

#[test]
fn garbled_keeps_the_prefix_and_scrambles_the_payload() {
    let (reference, mut t) =
        reference_and_faulty(Directive::new().mti("0200").fault(Fault::Garbled));
    let sent = sends(&t.outputs());
    let b = &sent[0];
    assert_eq!(b.len(), reference.len());
    assert_eq!(b[..2], reference[..2]);
    assert!(
        b[2..]
            .iter()
            .zip(&reference[2..])
            .all(|(x, y)| *x == y ^ 0x5A)
    );
    let mut buf = b.clone();
    let frame = t.d.length_prefix.decode(&mut buf).unwrap().unwrap();
    assert!(MessageRef::decode(&t.d, &frame).is_err());
}

#[test]
fn wrong_stan_is_a_well_signed_reply_for_another_request() {
    let (reference, mut t) =
        reference_and_faulty(Directive::new().mti("0200").fault(Fault::WrongStan));
    let b = t.reply_bytes();
    assert_eq!(b.len(), reference.len());
    let r = t.decode(&b); // MAC verifies
    assert_eq!(r.get_str(11), Some("000002"));
    let want = t.decode(&reference);
    let mut fixed = r.clone();
    fixed.set(11, "000001").set(64, want.get(64).unwrap());
    assert_eq!(fixed, want);
    assert_eq!(t.host.log().last().unwrap().field("11"), Some("000002"));
    assert_eq!(
        t.host.log().last().unwrap().note.as_deref(),
        Some("fault wrong_stan")
    );
}

#[test]
fn wrong_mti_answers_with_the_response_plus_20() {
    let (reference, mut t) =
        reference_and_faulty(Directive::new().mti("0200").fault(Fault::WrongMti));
    let b = t.reply_bytes();
    // MTI 02 30 at offset 2 + 11 (after the length, TPDU and header).
    assert_eq!(hex(&b[13..15]), "0230");
    assert_eq!(hex(&reference[13..15]), "0210");
    let r = t.decode(&b);
    assert_eq!(r.mti, Mti::new(230).unwrap());
    assert_eq!(r.get_str(39), Some("00"));
}

#[test]
fn wrong_mac_inverts_the_mac_bytes() {
    let (reference, mut t) =
        reference_and_faulty(Directive::new().mti("0200").fault(Fault::WrongMac));
    let b = t.reply_bytes();
    let n = b.len();
    assert_eq!(n, reference.len());
    assert_eq!(hex(&b[..n - 8]), hex(&reference[..n - 8]));
    assert!(
        b[n - 8..]
            .iter()
            .zip(&reference[n - 8..])
            .all(|(x, y)| *x == !y)
    );
    let r = MessageRef::decode(&t.d, &b[2..]).unwrap();
    assert!(mac::verify(&t.d, &r, &t.keys.as_ref().unwrap().mac).is_err());

    // A terminal without MAC gets a field 64 of FF bytes it never asked for.
    let mut u = Term::iso87("30250001", None);
    u.host.script(Directive::new().fault(Fault::WrongMac));
    let mut s = u.sale(100);
    let r = u.ask(&mut s);
    assert_eq!(r.get(64), Some(&[0xFF; 8][..]));
}

#[test]
fn no_tpdu_swap_returns_the_request_tpdu() {
    let (reference, mut t) =
        reference_and_faulty(Directive::new().mti("0200").fault(Fault::NoTpduSwap));
    let b = t.reply_bytes();
    assert_eq!(hex(&b[2..7]), "6000030000");
    assert_eq!(hex(&reference[2..7]), "6000000003");
    // The MAC covers MTI onwards, so everything else is the same.
    assert_eq!(hex(&b[7..]), hex(&reference[7..]));
}

#[test]
fn reply_twice_sends_the_same_frame_twice() {
    let (reference, mut t) =
        reference_and_faulty(Directive::new().mti("0200").fault(Fault::ReplyTwice));
    let sent = sends(&t.outputs());
    assert_eq!(sent.len(), 2);
    assert_eq!(hex(&sent[0]), hex(&reference));
    assert_eq!(hex(&sent[1]), hex(&reference));
    let log = t.host.log();
    assert_eq!(
        log.iter()
            .filter(|e| e.direction == acquirer::Direction::Out)
            .count(),
        2
    );
}

#[test]
fn delay_waits_on_virtual_time() {
    let mut a = Term::cup();
    let mut s = a.sale(10000);
    a.send(&mut s);
    let reference = a.reply_bytes();

    let mut t = Term::cup();
    let id = t.host.script(Directive::new().mti("0200").delay_ms(2000));
    let mut s = t.sale(10000);
    t.send(&mut s);
    assert!(t.outputs().is_empty());
    let due = t.now + Duration::from_millis(2000);
    assert_eq!(t.host.poll_timeout(), Some(due));
    // The request was processed already.
    assert_eq!(t.host.ledger().records().len(), 1);
    assert!(
        t.host.directive(id).unwrap().applications[0]
            .replies
            .is_empty()
    );
    t.host.handle_timeout(due - Duration::from_millis(1));
    assert!(t.outputs().is_empty());
    t.host.handle_timeout(due);
    let sent = sends(&t.outputs());
    // The reply was built when the request came: the same bytes as an undelayed one.
    assert_eq!(hex(&sent[0]), hex(&reference));
    assert_eq!(t.host.poll_timeout(), None);
    let st = t.host.directive(id).unwrap();
    let out = t.host.exchange(st.applications[0].replies[0]).unwrap();
    assert_eq!(out.at, due);
    assert_eq!(out.mti.as_deref(), Some("0210"));

    // Delayed replies go out in deadline order, whatever order they were queued in.
    let mut t = Term::cup();
    t.host
        .script(Directive::new().field("4", "000000000100").delay_ms(500));
    t.host
        .script(Directive::new().field("4", "000000000200").delay_ms(100));
    let mut s1 = t.sale(100);
    let mut s2 = t.sale(200);
    t.send(&mut s1);
    t.send(&mut s2);
    t.host.handle_timeout(t.now + Duration::from_secs(1));
    let amounts: Vec<String> = sends(&t.outputs())
        .iter()
        .map(|b| t.decode(b).get_str(4).unwrap().to_string())
        .collect();
    assert_eq!(amounts, ["000000000200", "000000000100"]);

    // A reply due after the terminal hung up is dropped and logged as not sent.
    let mut t = Term::cup();
    t.host.script(Directive::new().delay_ms(100));
    let mut s = t.sale(100);
    t.send(&mut s);
    t.host.handle_close(t.conn, t.now);
    t.host.handle_timeout(t.now + Duration::from_millis(100));
    assert!(t.outputs().is_empty());
    assert!(
        t.host
            .log()
            .last()
            .unwrap()
            .note
            .as_deref()
            .unwrap()
            .contains("not sent")
    );
}

#[test]
fn close_and_no_reply_send_nothing() {
    let (_, mut t) = reference_and_faulty(Directive::new().mti("0200").fault(Fault::Close));
    let outs = t.outputs();
    assert_eq!((sends(&outs).len(), closes(&outs)), (0, 1));
    // Bytes after the close are ignored.
    let mut s = t.sale(100);
    t.send(&mut s);
    assert!(t.outputs().is_empty());
    assert_eq!(t.host.ledger().records().len(), 1);

    let (_, mut t) = reference_and_faulty(Directive::new().mti("0200").fault(Fault::NoReply));
    assert!(t.outputs().is_empty());
    assert_eq!(t.host.ledger().records().len(), 1);
    // The connection stays open: the next request is answered.
    let mut s = t.sale(100);
    assert_eq!(t.code(&mut s), "00");

    // A delayed close.
    let mut t = Term::cup();
    t.host
        .script(Directive::new().fault(Fault::Close).delay_ms(300));
    let mut s = t.sale(100);
    t.send(&mut s);
    assert!(t.outputs().is_empty());
    t.host.handle_timeout(t.now + Duration::from_millis(300));
    assert_eq!(closes(&t.outputs()), 1);
}

#[test]
fn set_remove_times_order_and_predicates() {
    let mut t = Term::cup();
    // Earliest installed wins; the second applies once the first is used up.
    let first = t
        .host
        .script(Directive::new().mti("0200").set("38", "ABC123").remove(57));
    let second = t.host.script(
        Directive::new()
            .mti("0200")
            .times(Times::N(2))
            .set("60.3", "001"),
    );
    let mut s = t.sale(100);
    let r = t.ask(&mut s);
    assert_eq!(r.get_str(38), Some("ABC123"));
    assert!(!r.has(57));
    for _ in 0..3 {
        let mut s = t.sale(100);
        let r = t.ask(&mut s);
        assert_ne!(r.get_str(38), Some("ABC123"));
    }
    let st1 = t.host.directive(first).unwrap();
    let st2 = t.host.directive(second).unwrap();
    assert_eq!((st1.used, st2.used), (1, 2));
    assert!(st2.is_exhausted());
    // The reply log entry shows the edited subfield.
    let replies: Vec<_> = st2
        .applications
        .iter()
        .map(|a| {
            t.host
                .exchange(a.replies[0])
                .unwrap()
                .field("60.3")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(replies, ["001", "001"]);

    // A predicate, always; a subfield condition; a masked PAN condition.
    let mut t = Term::cup();
    let big = t.host.script(
        Directive::new()
            .field("60.1", "22")
            .field("2", "622202******7894")
            .when(|r| {
                r.value("4")
                    .is_some_and(|a| a.parse::<u64>().unwrap() > 50_000)
            })
            .decline("61")
            .times(Times::Always),
    );
    let mut s = t.sale(60_000);
    assert_eq!(t.code(&mut s), "61");
    let mut s = t.sale(100);
    assert_eq!(t.code(&mut s), "00");
    let mut s = t.sale(70_000);
    assert_eq!(t.code(&mut s), "61");
    assert_eq!(t.host.directive(big).unwrap().used, 2);
    // Cancelled: no longer applies.
    t.host.cancel(big);
    let mut s = t.sale(70_000);
    assert_eq!(t.code(&mut s), "00");

    // Setting 39 directly changes the wire only (no ledger meaning), and 64 replaces the MAC.
    let mut t = Term::cup();
    t.host.script(
        Directive::new()
            .set("39", "96")
            .set("64", "0102030405060708"),
    );
    let mut s = t.sale(100);
    t.send(&mut s);
    let b = t.reply_bytes();
    let r = MessageRef::decode(&t.d, &b[2..]).unwrap();
    assert_eq!(r.field_str(39).as_deref(), Some("96"));
    assert_eq!(r.field_bytes(64), Some(&[1, 2, 3, 4, 5, 6, 7, 8][..]));
    assert_eq!(
        t.host.ledger().records()[0].status,
        acquirer::ledger::Status::Approved
    );
}
