//! The host's rules one by one, on virtual time (reference iso8583.md §7, DESIGN.md §2).

mod common;

use std::time::Duration;

use acquirer::ledger::Status;
use acquirer::{Directive, Host, KnownTerminal};
use common::*;
use protocol::fixture::journal::{OriginalTxn, TxnStatus, TxnType};
use protocol::iso8583::builder::{self, SignOnInput};
use protocol::iso8583::keys::{DoubleKey, WorkingKeys};
use protocol::iso8583::subfield::{SettlementTotals, Totals, reconciliation};
use protocol::iso8583::{Message, Mti};
use protocol::money::{Currency, Money};

fn sign_on(t: &mut Term, double: bool) -> Message {
    let i = SignOnInput {
        tid: t.tid.clone(),
        mid: t.mid.clone(),
        stan: t.next_stan(),
        batch: t.batch,
        local: t.now.to_local(t.tz).naive_local(),
        gmt: None,
        double_length_keys: double,
        operator: Some("001".into()),
        header: None,
    };
    let mut m = builder::sign_on(&t.d, &i).unwrap();
    let keys = t.keys.take();
    let r = t.ask(&mut m);
    t.keys = keys;
    r
}

fn tmk() -> DoubleKey {
    DoubleKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap()
}

#[test]
fn sign_on_delivers_deterministic_keys_under_the_tmk() {
    let mut t = Term::with(Host::new(config("cup", None)), CUP_TID);
    let r = sign_on(&mut t, true);
    assert_eq!(r.mti, Mti::new(810).unwrap());
    assert_eq!(r.get_str(39), Some("00"));
    // The 0810 brings the keys; it carries no MAC.
    assert!(!r.has(64));
    let f62 = r.get(62).unwrap();
    assert_eq!(f62.len(), 40);
    let keys = WorkingKeys::from_field62(&tmk(), f62).unwrap();
    assert_eq!(Some(&keys), t.host.session_keys(CUP_TID));
    // Reproducible: another host issues the same first session.
    let mut t2 = Term::with(Host::new(config("cup", None)), CUP_TID);
    assert_eq!(sign_on(&mut t2, true).get(62), Some(f62));
    // The log never shows the keys.
    assert_eq!(t.host.log().last().unwrap().field("62"), Some("[KEYS]"));
    // 60.3 = 001: single-length keys, 24 bytes.
    let r = sign_on(&mut t, false);
    let single = WorkingKeys::from_field62(&tmk(), r.get(62).unwrap()).unwrap();
    assert_eq!(r.get(62).unwrap().len(), 24);
    assert_eq!(single.mac.left(), single.mac.right());
    assert_ne!(single, keys);
}

#[test]
fn mac_good_bad_and_unsigned() {
    // Good MAC.
    let mut t = Term::cup();
    let mut s = t.sale(10000);
    assert_eq!(t.code(&mut s), "00");
    // Bad MAC: sign with another key.
    let good = t.keys.clone();
    t.keys = Some(WorkingKeys {
        pin: tmk(),
        mac: tmk(),
    });
    let mut s = t.sale(10000);
    let w = t.wire(&mut s);
    t.keys = good;
    t.send_bytes(&w);
    let r = t.reply();
    assert_eq!(r.get_str(39), Some("A0"));
    assert!(!r.has(64), "an A0 reply is not signed");
    let note = t.host.log()[t.host.log().len() - 2].note.clone().unwrap();
    assert!(note.contains("MAC mismatch"), "{note}");
    // No MAC at all.
    let s = t.sale(10000);
    let mut frame = Vec::new();
    s.encode_into(&t.d, &mut frame).unwrap();
    let mut w = Vec::new();
    t.d.length_prefix.encode(&frame, &mut w).unwrap();
    t.send_bytes(&w);
    assert_eq!(t.reply().get_str(39), Some("A0"));
    // Only the good sale is on the books.
    assert_eq!(t.host.ledger().records().len(), 1);

    // A terminal that never signed on: A0 (no MAC key on the host), reply unsigned.
    let mut u = Term::with(Host::new(config("cup", None)), CUP_TID);
    u.keys = Some(WorkingKeys {
        pin: tmk(),
        mac: tmk(),
    });
    let mut s = u.sale(100);
    u.send(&mut s);
    let b = u.reply_bytes();
    u.keys = None;
    let r = u.decode(&b);
    assert_eq!(r.get_str(39), Some("A0"));
    assert!(!r.has(64));
    assert!(
        u.host.log()[1]
            .note
            .as_deref()
            .unwrap()
            .contains("not signed on")
    );

    // After a new sign-on the old key no longer works.
    let mut t = Term::cup();
    let old = t.keys.clone();
    let r = sign_on(&mut t, true);
    let new = WorkingKeys::from_field62(&tmk(), r.get(62).unwrap()).unwrap();
    assert_ne!(Some(&new), old.as_ref());
    let mut s = t.sale(100);
    let w = t.wire(&mut s);
    t.keys = Some(new);
    t.send_bytes(&w);
    assert_eq!(t.reply().get_str(39), Some("A0"));
}

#[test]
fn unknown_terminal_and_wrong_merchant() {
    let mut t = Term::with(Host::new(config("cup", None)), "99999999");
    let mut s = t.sale(100);
    assert_eq!(t.code(&mut s), "97");
    let mut t = Term::iso87("99999999", None);
    let mut s = t.sale(100);
    assert_eq!(t.code(&mut s), "58");
    let mut t = Term::iso87("30250001", None);
    t.mid = "DE0000000000002".into();
    let mut s = t.sale(100);
    assert_eq!(t.code(&mut s), "03");
    assert!(t.host.ledger().records().is_empty());
}

#[test]
fn three_partial_refunds_return_the_fee_exactly() {
    // DESIGN.md R-FEE worked example 1.
    let mut t = Term::cup();
    let mut sale = t.sale(10000);
    let sr = t.ask(&mut sale);
    assert_eq!(sr.get_str(39), Some("00"));
    // Fee field 57: fee 0.60 | net 99.40 | returned 0.
    assert_eq!(
        fee_field(&t.d, &sr).unwrap(),
        "000000000060000000009940000000000000"
    );
    assert_eq!(sr.get_str(37).unwrap().len(), 12);
    assert_eq!(sr.get_str(38).unwrap().len(), 6);
    let mut returned = Vec::new();
    for minor in [3333, 3333, 3334] {
        let mut r = t.refund(minor, PAN, &sale, &sr);
        assert_eq!(r.mti, Mti::new(220).unwrap());
        let rr = t.ask(&mut r);
        assert_eq!(rr.mti, Mti::new(230).unwrap());
        assert_eq!(rr.get_str(39), Some("00"));
        let f = fee_field(&t.d, &rr).unwrap();
        assert_eq!(&f[..12], "000000000000");
        assert_eq!(f[12..24].parse::<u64>().unwrap(), minor - 20);
        returned.push(f[24..].to_string());
    }
    assert_eq!(returned, ["000000000020"; 3]);
    // Nothing left: 64.
    let mut r = t.refund(1, PAN, &sale, &sr);
    assert_eq!(t.code(&mut r), "64");
    // Settlement: sales 1 × 100.00, refunds 3 × 100.00: balanced, net 0.00.
    let totals = SettlementTotals {
        domestic: Totals {
            debit_amount: 10000,
            debit_count: 1,
            credit_amount: 10000,
            credit_count: 3,
            reconciliation: 0,
        },
        foreign: Totals::default(),
    };
    let mut st = t.settlement(totals);
    let rep = t.ask(&mut st);
    assert_eq!(rep.mti, Mti::new(510).unwrap());
    let answer = SettlementTotals::parse(rep.get_str(48).unwrap()).unwrap();
    assert_eq!(answer.domestic.reconciliation, reconciliation::BALANCED);
    assert!(answer.is_balanced());
    // 0510 fee field: fees 0.60, net 0, returned 0.60.
    assert_eq!(
        fee_field(&t.d, &rep).unwrap(),
        "000000000060000000000000000000000060"
    );
    let report = &t.host.settlement_reports()[0];
    assert!(report.balanced && report.closed);
    assert_eq!(
        (report.sales.count, report.sales.total.to_string()),
        (1, "100.00".into())
    );
    assert_eq!(
        (report.refunds.count, report.refunds.total.to_string()),
        (3, "100.00".into())
    );
    assert_eq!(report.fees.to_string(), "0.60");
    assert_eq!(report.fees_returned.to_string(), "0.60");
    assert_eq!(report.net.to_string(), "0.00");
    // The batch is closed: its sale can no longer be reversed.
    let mut rev = t.reversal(&sale);
    assert_eq!(t.code(&mut rev), "25");
}

#[test]
fn refusals_25_14_22_and_void_rules() {
    let mut t = Term::cup();
    let mut sale = t.sale(10000);
    let sr = t.ask(&mut sale);
    // Not found: a made-up RRN and trace.
    let mut fake = sr.clone();
    fake.set(37, "999999999999");
    let mut other = sale.clone();
    other.set(11, "000099");
    let mut r = t.refund(100, PAN, &other, &fake);
    assert_eq!(t.code(&mut r), "25");
    // Another card.
    let mut r = t.refund(100, OTHER_PAN, &sale, &sr);
    assert_eq!(t.code(&mut r), "14");
    // A malformed or Luhn-failing card number.
    let mut r = t.refund(100, "6222021234567895", &sale, &sr);
    assert_eq!(t.code(&mut r), "14");
    // A void for another amount: 64.
    let mut v = t.void(&sale, &sr);
    v.set(4, "000000009999");
    assert_eq!(t.code(&mut v), "64");
    // Void → 00; again → 22; a refund of the voided sale → 22.
    let mut v = t.void(&sale, &sr);
    let vr = t.ask(&mut v);
    assert_eq!(vr.get_str(39), Some("00"));
    // Void's fee field: fee 0 | net 99.40 | returned 0.60.
    assert_eq!(
        fee_field(&t.d, &vr).unwrap(),
        "000000000000000000009940000000000060"
    );
    assert_eq!(t.host.ledger().records()[0].status, Status::Voided);
    let mut v = t.void(&sale, &sr);
    assert_eq!(t.code(&mut v), "22");
    let mut r = t.refund(100, PAN, &sale, &sr);
    assert_eq!(t.code(&mut r), "22");
    // Reversing the void revives the sale.
    let mut rev = t.reversal(&v);
    let mut first_void = t.void(&sale, &sr);
    first_void.set(11, vr.get_str(11).unwrap());
    let mut rev_first = t.reversal(&first_void);
    assert_eq!(t.code(&mut rev_first), "00");
    assert_eq!(t.host.ledger().records()[0].status, Status::Approved);
    // (the refused second void was never on the books: 25)
    assert_eq!(t.code(&mut rev), "25");
}

#[test]
fn cross_day_void_is_12_and_a_refund_is_fine() {
    let mut t = Term::cup();
    let mut sale = t.sale(5000);
    let sr = t.ask(&mut sale);
    t.advance(Duration::from_secs(24 * 3600));
    let mut v = t.void(&sale, &sr);
    assert_eq!(t.code(&mut v), "12");
    let mut r = t.refund(5000, PAN, &sale, &sr);
    assert_eq!(t.code(&mut r), "00");
}

#[test]
fn original_of_another_terminal_is_58() {
    let mut t = Term::iso87("30250001", None);
    let mut sale = t.sale(10000);
    let sr = t.ask(&mut sale);
    assert_eq!(sr.get_str(39), Some("00"));
    // Same host, another terminal of another merchant refunds it by RRN.
    let host = std::mem::replace(&mut t.host, Host::new(config("iso87-ascii", None)));
    let mut u = Term::with(host, "40250001");
    u.currency = t.currency;
    let mut r = u.refund(100, PAN, &sale, &sr);
    assert_eq!(u.code(&mut r), "58");

    // CUP: a second terminal on file (same merchant) voids the first one's sale.
    let mut cfg = config("cup", None);
    let mut second: KnownTerminal = cfg.terminal(CUP_TID).unwrap().clone();
    second.terminal_id = "20250002".into();
    second.mac = protocol::fixture::terminal::MacMode::None;
    cfg.terminals.push(second);
    let mut a = Term::with(Host::new(cfg), CUP_TID);
    a.keys = a.host.working_keys(CUP_TID);
    let mut sale = a.sale(10000);
    let sr = a.ask(&mut sale);
    let mut b = Term::with(
        std::mem::replace(&mut a.host, Host::new(config("cup", None))),
        "20250002",
    );
    let mut v = b.void(&sale, &sr);
    assert_eq!(b.code(&mut v), "58");
}

#[test]
fn duplicates_are_94_and_resent_advices_get_the_same_reply() {
    let mut t = Term::cup();
    let mut sale = t.sale(10000);
    let sr = t.ask(&mut sale);
    // The same STAN again, other amount: 94; the same 0200 again: 94 too.
    let mut dup = sale.clone();
    dup.set(4, "000000000001");
    assert_eq!(t.code(&mut dup), "94");
    let mut same = sale.clone();
    assert_eq!(t.code(&mut same), "94");
    assert_eq!(t.host.ledger().records().len(), 1);

    // A refund advice, resent unchanged: the same 0230, byte for byte; one refund on the books.
    let mut adv = t.refund(3333, PAN, &sale, &sr);
    let w = t.wire(&mut adv);
    t.send_bytes(&w);
    let first = t.reply_bytes();
    t.advance(Duration::from_secs(90));
    t.send_bytes(&w);
    let again = t.reply_bytes();
    assert_eq!(hex(&first), hex(&again));
    let refunds = |h: &Host| {
        h.ledger()
            .records()
            .iter()
            .filter(|r| r.kind == TxnType::Refund)
            .count()
    };
    assert_eq!(refunds(&t.host), 1);
    assert!(
        t.host.log()[t.host.log().len() - 2]
            .note
            .as_deref()
            .unwrap()
            .contains("same reply")
    );
    // The same STAN with another amount: 94.
    let mut changed = adv.clone();
    changed.set(4, "000000000100");
    assert_eq!(t.code(&mut changed), "94");
    assert_eq!(refunds(&t.host), 1);
}

#[test]
fn iso87_refund_repeat_0221_and_void_0420() {
    let mut t = Term::iso87("30250001", None);
    let mut sale = t.sale(2000);
    let sr = t.ask(&mut sale);
    assert_eq!(sr.get_str(39), Some("00"));
    // Local time in the reply is the request's (iso87 sends 12/13).
    assert_eq!(sr.get_str(13), sale.get_str(13));
    // An online refund (0200, 3 = 20) by RRN.
    let mut r = t.refund(500, PAN, &sale, &sr);
    assert_eq!((r.mti.value(), r.get_str(3)), (200, Some("200000")));
    assert_eq!(t.code(&mut r), "00");
    // An offline refund advice 0220 and its repeat 0221: the same reply.
    let mut adv = t.refund(500, PAN, &sale, &sr);
    adv.mti = Mti::new(220).unwrap();
    let a1 = t.ask(&mut adv);
    let mut rep = builder::repeat(&t.d, &adv).unwrap();
    assert_eq!(rep.mti, Mti::new(221).unwrap());
    let a2 = t.ask(&mut rep);
    assert_eq!(a1, a2);
    assert_eq!(a2.mti, Mti::new(230).unwrap());
    let refunds = t
        .host
        .ledger()
        .records()
        .iter()
        .filter(|r| r.kind == TxnType::Refund)
        .count();
    assert_eq!(refunds, 2);
    // A void of a fresh sale (0420 with 90) marks it voided.
    let mut sale2 = t.sale(700);
    let sr2 = t.ask(&mut sale2);
    let mut v = t.void(&sale2, &sr2);
    assert_eq!(v.mti, Mti::new(420).unwrap());
    let vr = t.ask(&mut v);
    assert_eq!((vr.mti.value(), vr.get_str(39)), (430, Some("00")));
    let rec = t
        .host
        .ledger()
        .records()
        .iter()
        .find(|r| r.rrn == sr2.get_str(37).unwrap())
        .unwrap();
    assert_eq!(rec.status, Status::Voided);
}

#[test]
fn reversal_repeat_and_unknown() {
    let mut t = Term::cup();
    let mut sale = t.sale(10000);
    t.ask(&mut sale);
    let mut rev = t.reversal(&sale);
    assert_eq!(rev.get_str(11), sale.get_str(11));
    let rr = t.ask(&mut rev);
    assert_eq!((rr.mti.value(), rr.get_str(39)), (410, Some("00")));
    assert_eq!(t.host.ledger().records()[0].status, Status::Reversed);
    let mut again = t.reversal(&sale);
    assert_eq!(t.code(&mut again), "00");
    assert!(
        t.host.log()[t.host.log().len() - 2]
            .note
            .as_deref()
            .unwrap()
            .contains("already reversed")
    );
    let mut unknown = sale.clone();
    unknown.set(11, "000777");
    let mut rev = t.reversal(&unknown);
    assert_eq!(t.code(&mut rev), "25");
    // A reversed sale cannot be refunded.
    // iso87: 0400 then 0401.
    let mut t = Term::iso87("30250001", None);
    let mut sale = t.sale(10000);
    t.ask(&mut sale);
    let mut rev = t.reversal(&sale);
    assert!(rev.has(90));
    assert_eq!(t.code(&mut rev), "00");
    let mut rep = builder::repeat(&t.d, &rev).unwrap();
    assert_eq!(rep.mti, Mti::new(401).unwrap());
    let rr = t.ask(&mut rep);
    assert_eq!((rr.mti.value(), rr.get_str(39)), (410, Some("00")));
    assert_eq!(t.host.ledger().records()[0].status, Status::Reversed);
}

#[test]
fn lost_reply_is_still_on_the_books() {
    // The host processed the sale; the reply was lost; the terminal's reversal finds it.
    let mut t = Term::cup();
    t.host
        .script(Directive::new().mti("0200").fault(acquirer::Fault::NoReply));
    let mut sale = t.sale(10000);
    t.send(&mut sale);
    assert!(t.outputs().is_empty());
    assert_eq!(t.host.ledger().records()[0].status, Status::Approved);
    let mut rev = t.reversal(&sale);
    assert_eq!(t.code(&mut rev), "00");
    assert_eq!(t.host.ledger().records()[0].status, Status::Reversed);

    // A refund advice whose reply was lost: the resend gets the 0230 the host would have sent.
    let mut t = Term::cup();
    let mut sale = t.sale(10000);
    let sr = t.ask(&mut sale);
    t.host
        .script(Directive::new().mti("0220").fault(acquirer::Fault::Close));
    let mut adv = t.refund(1000, PAN, &sale, &sr);
    let w = t.wire(&mut adv);
    t.send_bytes(&w);
    assert!(matches!(
        t.outputs().as_slice(),
        [acquirer::HostOutput::Close { .. }]
    ));
    t.conn = t.host.connect(t.now);
    t.send_bytes(&w);
    let r = t.reply();
    assert_eq!(r.get_str(39), Some("00"));
    assert_eq!(
        t.host
            .ledger()
            .records()
            .iter()
            .filter(|r| r.kind == TxnType::Refund)
            .count(),
        1
    );
}

#[test]
fn settlement_unbalanced_then_upload_closes_the_batch() {
    let mut t = Term::cup();
    let mut sale = t.sale(10000);
    let sr = t.ask(&mut sale);
    let mut r = t.refund(2500, PAN, &sale, &sr);
    t.ask(&mut r);
    // The terminal thinks it made two sales.
    let totals = SettlementTotals {
        domestic: Totals {
            debit_amount: 20000,
            debit_count: 2,
            credit_amount: 2500,
            credit_count: 1,
            reconciliation: 0,
        },
        foreign: Totals::default(),
    };
    let mut st = t.settlement(totals);
    let rep = t.ask(&mut st);
    assert_eq!(rep.get_str(39), Some("00"));
    let answer = SettlementTotals::parse(rep.get_str(48).unwrap()).unwrap();
    assert_eq!(answer.domestic.reconciliation, reconciliation::NOT_BALANCED);
    assert_eq!(answer.domestic.debit_amount, 20000);
    let report = t.host.settlement_reports()[0].clone();
    assert!(!report.balanced && !report.closed);
    // Upload: the sale, the refund, then the end.
    for (m, rr, code) in [(&sale, &sr, 22u8), (&r, &sr, 25)] {
        let rec = builder::UploadRecord {
            tid: t.tid.clone(),
            mid: t.mid.clone(),
            batch: 1,
            stan: m.get_str(11).unwrap().parse().unwrap(),
            pan: Some(protocol::card::Pan::new(PAN).unwrap()),
            processing_code: m.get_str(3).unwrap().into(),
            amount_minor: m.get_str(4).unwrap().parse().unwrap(),
            currency: 156,
            date_mmdd: "1126".into(),
            time_hhmmss: "100000".into(),
            rrn: rr.get_str(37).map(str::to_string),
            auth_code: None,
            entry_mode: "021".into(),
            type_code: code,
            header: None,
        };
        let mut up = builder::batch_upload(&t.d, &rec).unwrap();
        let ur = t.ask(&mut up);
        assert_eq!((ur.mti.value(), ur.get_str(39)), (330, Some("00")));
    }
    let stan = t.next_stan();
    let mut end = builder::batch_upload_end(
        &t.d,
        &builder::UploadEnd {
            tid: t.tid.clone(),
            mid: t.mid.clone(),
            stan,
            batch: 1,
            count: 2,
            header: None,
        },
    )
    .unwrap();
    assert_eq!(t.code(&mut end), "00");
    let report = &t.host.settlement_reports()[0];
    assert!(report.closed && !report.balanced);
    assert_eq!(report.uploaded, 2);
    assert!(report.upload_unknown.is_empty());
    assert_eq!((report.sales.count, report.refunds.count), (1, 1));
    // net = 100.00 − 25.00 − 0.60 + 0.15
    assert_eq!(report.net.to_string(), "74.55");
    assert!(t.host.ledger().records().iter().all(|r| r.settled));
}

#[test]
fn surcharge_in_field_28_and_the_refundable_amount() {
    // DESIGN.md R-FEE worked example 2: USD 101.00 incl. a non-refundable surcharge of 1.00,
    // fee 1 % = 1.01; a refund of 100.00 returns 1.01; a further 1.00 exceeds: 64.
    let mut t = Term::iso87("60250002", Some("usd-1pct.yaml"));
    let mut sale = t.sale(10100);
    sale.set(28, "D00000100");
    let sr = t.ask(&mut sale);
    assert_eq!(sr.get_str(39), Some("00"));
    assert_eq!(
        fee_field(&t.d, &sr).unwrap(),
        "000000000101000000009999000000000000"
    );
    let mut r = t.refund(10000, PAN, &sale, &sr);
    let rr = t.ask(&mut r);
    assert_eq!(rr.get_str(39), Some("00"));
    assert_eq!(
        fee_field(&t.d, &rr).unwrap(),
        "000000000000000000009899000000000101"
    );
    let mut r = t.refund(100, PAN, &sale, &sr);
    assert_eq!(t.code(&mut r), "64");
    // A refundable surcharge can be refunded in full.
    let mut t = Term::iso87("60250001", Some("usd-1pct.yaml"));
    let mut sale = t.sale(10300);
    sale.set(28, "D00000300");
    let sr = t.ask(&mut sale);
    let mut r = t.refund(10300, PAN, &sale, &sr);
    assert_eq!(t.code(&mut r), "00");
    // A malformed 28 is a format error; a surcharge above the amount is 13.
    let mut s = t.sale(100);
    s.set(28, "X00000001");
    assert_eq!(t.code(&mut s), "30");
    let mut s = t.sale(100);
    s.set(28, "D00000200");
    assert_eq!(t.code(&mut s), "13");
}

#[test]
fn forced_decline_does_not_count_and_forced_approval_is_booked() {
    let mut t = Term::cup();
    let mut sale = t.sale(10000);
    let sr = t.ask(&mut sale);
    let id = t
        .host
        .script(Directive::new().mti("0220").reply("39", "05"));
    let mut r = t.refund(5000, PAN, &sale, &sr);
    assert_eq!(t.code(&mut r), "05");
    let st = t.host.directive(id).unwrap();
    assert!(st.consumed() && st.is_exhausted());
    let rec = t.host.ledger().records().last().unwrap();
    assert_eq!(rec.status, Status::Declined("05".into()));
    assert_eq!(rec.original, Some(t.host.ledger().records()[0].id));
    // The full amount is still refundable.
    let mut r = t.refund(10000, PAN, &sale, &sr);
    assert_eq!(t.code(&mut r), "00");
    // Approve what the rules refuse (over-refund): 00, booked without fee.
    t.host.script(Directive::new().mti("0220").approve());
    let mut r = t.refund(100, PAN, &sale, &sr);
    let rr = t.ask(&mut r);
    assert_eq!(rr.get_str(39), Some("00"));
    assert!(
        t.host.log()[t.host.log().len() - 2]
            .note
            .as_deref()
            .unwrap()
            .contains("rules said 64")
    );
    let rec = t.host.ledger().records().last().unwrap();
    assert_eq!(
        (rec.status.clone(), rec.fee.is_zero()),
        (Status::Approved, true)
    );
    // A declined sale is on the books, so its reversal answers 00.
    t.host.script(Directive::new().mti("0200").decline("51"));
    let mut s = t.sale(300);
    assert_eq!(t.code(&mut s), "51");
    let mut rev = t.reversal(&s);
    assert_eq!(t.code(&mut rev), "00");
}

#[test]
fn reply_local_time_is_in_the_terminal_zone() {
    let mut t = Term::cup();
    // 02:30 UTC is 10:30 in Shanghai.
    t.now = protocol::time::Instant::parse_rfc3339("2026-11-26T02:30:00Z").unwrap();
    let mut s = t.sale(100);
    let r = t.ask(&mut s);
    assert_eq!(
        (r.get_str(12), r.get_str(13)),
        (Some("103000"), Some("1126"))
    );
    // 23:30 UTC on the 25th is already the 26th in Shanghai.
    t.now = protocol::time::Instant::parse_rfc3339("2026-11-25T23:30:00Z").unwrap();
    let mut s = t.sale(100);
    let r = t.ask(&mut s);
    assert_eq!(
        (r.get_str(12), r.get_str(13)),
        (Some("073000"), Some("1126"))
    );
}

#[test]
fn imported_originals_are_refundable_with_their_fee() {
    let mut t = Term::cup();
    let cny = Currency::from_alpha("CNY").unwrap();
    t.host.import(&[OriginalTxn {
        id: "sale1".into(),
        kind: TxnType::Sale,
        status: TxnStatus::Approved,
        terminal_id: CUP_TID.into(),
        pan: protocol::card::Pan::new(PAN).unwrap(),
        amount: Money::parse("100.00", cny).unwrap(),
        surcharge: None,
        stan: 1,
        batch: 1,
        rrn: "000000000001".into(),
        auth_code: Some("A00001".into()),
        at: protocol::time::Instant::parse_rfc3339("2026-11-25T09:00:00+08:00").unwrap(),
        settled: true,
        fee: None,
        original: None,
    }]);
    assert_eq!(t.host.ledger().records()[0].local_date, "1125");
    t.stan = 10;
    let mut fake_sale = t.sale(10000);
    fake_sale.set(11, "000001");
    let mut fake_reply = Message::new(Mti::new(210).unwrap());
    fake_reply.set(37, "000000000001").set(13, "1125");
    for _ in 0..3 {
        let mut r = t.refund(3333, PAN, &fake_sale, &fake_reply);
        let rr = t.ask(&mut r);
        assert_eq!(rr.get_str(39), Some("00"));
        assert_eq!(&fee_field(&t.d, &rr).unwrap()[24..], "000000000020");
    }
    // The wrong original date: 25.
    fake_reply.set(13, "1124");
    let mut r = t.refund(1, PAN, &fake_sale, &fake_reply);
    assert_eq!(t.code(&mut r), "25");
}

/// A refund that names no original (no 37) is answered by the merchant's
/// `acquirer.unreferenced_refunds` setting: the zvt-en-eur merchant allows it, so it is
/// approved and booked as a credit; the jpy-en merchant keeps the default (refuse), so it is
/// declined — with 12, not the 30 (format error) a missing field would get.
#[test]
fn unreferenced_refund_follows_the_merchants_setting() {
    let mut t = Term::iso87("30250001", None);
    let i = t.input(2500, PAN);
    let mut r = builder::refund(
        &t.d,
        &i,
        &builder::OriginalTxn {
            amount_minor: 2500,
            ..builder::OriginalTxn::default()
        },
    )
    .unwrap();
    assert!(!r.has(37), "the request names no original");
    let reply = t.ask(&mut r);
    assert_eq!(reply.get_str(39), Some("00"));
    assert!(
        reply.has(37) && reply.has(38),
        "an RRN and auth code of its own"
    );
    let eur = Currency::from_alpha("EUR").unwrap();
    let totals = t.host.ledger().totals("30250001", 1, eur);
    assert_eq!((totals.refund_count, totals.sale_count), (1, 0));
    assert_eq!(totals.refund_total, Money::parse("25.00", eur).unwrap());
    let rec = t.host.ledger().records().last().unwrap().clone();
    assert_eq!((rec.kind, rec.original), (TxnType::Refund, None));
    assert!(rec.fee.is_zero(), "no sale, so no fee to give back");
    // Reversible like any refund: the reversal takes it out of the totals.
    let mut rev = t.reversal(&r);
    assert_eq!(t.code(&mut rev), "00");
    assert_eq!(t.host.ledger().totals("30250001", 1, eur).refund_count, 0);
    // A zero amount is still refused.
    let i = t.input(0, PAN);
    let mut zero = builder::refund(&t.d, &i, &builder::OriginalTxn::default()).unwrap();
    assert_eq!(t.code(&mut zero), "13");

    let mut u = Term::iso87("40250001", None);
    let i = u.input(2500, PAN);
    let mut r = builder::refund(&u.d, &i, &builder::OriginalTxn::default()).unwrap();
    assert_eq!(u.code(&mut r), "12");
    assert!(
        u.host.ledger().records().is_empty()
            || u.host
                .ledger()
                .records()
                .iter()
                .all(|r| r.status != Status::Approved),
        "nothing approved is booked"
    );
}
