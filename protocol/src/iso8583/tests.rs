//! Cross-module tests: byte-exact vectors and round trips.

use super::dialect::hex_decode;
use super::*;

/// The CUP 0220 refund advice of shared/reference/vectors.md ("CUP ISO 8583 refund advice
/// (0220), 130 bytes with the 2-byte length"), laid out there by an independent encoder from
/// the field table of reference/iso8583.md §2–3.
pub(crate) const CUP_0220_HEX: &str = "\
0080600003000060310000000002207020048028c080191962220212345678901230200000000000001000000124\
021000316222021234567890123d30121011234031323334353637383930313231323334353637383132333435\
363738393031323334353135360011250000010000001600000100012311260000000000000000";

pub(crate) fn cup_0220_wire() -> Vec<u8> {
    hex_decode(CUP_0220_HEX).unwrap()
}

#[test]
fn cup_0220_vector_decodes_field_by_field_and_reencodes_byte_exact() {
    let cup = Dialect::builtin("cup").unwrap();
    let wire = cup_0220_wire();
    assert_eq!(wire.len(), 130);
    let mut buf = wire.clone();
    let frame = cup.length_prefix.decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_eq!(frame.len(), 0x80);

    let m = MessageRef::decode(&cup, &frame).unwrap();
    assert_eq!(
        m.header,
        Some(&hex_decode("6000030000603100000000").unwrap()[..])
    );
    assert_eq!(m.mti, Mti::new(220).unwrap());
    let present: Vec<u8> = m.fields().map(|(n, _)| n).collect();
    assert_eq!(
        present,
        [2, 3, 4, 11, 22, 25, 35, 37, 41, 42, 49, 60, 61, 64]
    );
    let s = |n| m.field_str(n).unwrap().into_owned();
    assert_eq!(s(2), "6222021234567890123");
    assert_eq!(m.field(2).unwrap().len(), 19);
    assert_eq!(s(3), "200000");
    assert_eq!(s(4), "000000001000");
    assert_eq!(s(11), "000124");
    assert_eq!(s(22), "021");
    assert_eq!(m.field_bytes(22), Some(&[0x02, 0x10][..]));
    assert_eq!(s(25), "00");
    assert_eq!(s(35), "6222021234567890123=30121011234");
    assert_eq!(m.field(35).unwrap().len(), 31);
    assert_eq!(s(37), "123456789012");
    assert_eq!(s(41), "12345678");
    assert_eq!(s(42), "123456789012345");
    assert_eq!(s(49), "156");
    assert_eq!(s(60), "25000001000");
    assert_eq!(s(61), "0000010001231126");
    assert_eq!(m.field_bytes(64), Some(&[0u8; 8][..]));
    // Field offsets count from the TPDU: 11 header + 2 MTI + 8 bitmap = 21 for field 2.
    assert_eq!(m.field(2).unwrap().offset(), 21);
    assert_eq!(m.field(64).unwrap().offset(), 0x80 - 8);

    // Owned copy and re-encode: the same bytes.
    let owned = m.to_owned();
    assert_eq!(owned.get_str(35), Some("6222021234567890123=30121011234"));
    let mut out = Vec::new();
    owned.encode_into(&cup, &mut out).unwrap();
    assert_eq!(out, frame);
    let mut framed = Vec::new();
    cup.length_prefix.encode(&out, &mut framed).unwrap();
    assert_eq!(framed, wire);
}

mod builders {
    use super::*;
    use crate::card::Pan;
    use crate::iso8583::builder::*;
    use crate::iso8583::subfield::{FeeInfo, Field60, Field61, Field90, SettlementTotals, Totals};
    use chrono::NaiveDate;

    fn dialects() -> [Dialect; 2] {
        [
            Dialect::builtin("cup").unwrap(),
            Dialect::builtin("iso87-ascii").unwrap(),
        ]
    }

    fn local() -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap()
    }

    fn swipe() -> CardData {
        CardData {
            track2: Some("6222021234567890123=30121011234".into()),
            entry_mode: "021".into(),
            pin_block: Some([0x11; 8]),
            ..CardData::default()
        }
    }

    fn input(card: CardData) -> TxnInput {
        TxnInput {
            tid: "12345678".into(),
            mid: "123456789012345".into(),
            stan: 124,
            batch: 1,
            amount_minor: 1000,
            currency: 156,
            local: local(),
            gmt: Some(local() - chrono::Duration::hours(8)),
            card,
            ..TxnInput::default()
        }
    }

    fn original() -> OriginalTxn {
        OriginalTxn {
            stan: Some(123),
            batch: Some(1),
            rrn: Some("123456789012".into()),
            auth_code: Some("A1B2C3".into()),
            date_mmdd: Some("1126".into()),
            transmission: Some("1126020000".into()),
            amount_minor: 10000,
            ..OriginalTxn::default()
        }
    }

    fn roundtrip(d: &Dialect, m: &Message) -> Message {
        let wire = m
            .encode(d)
            .unwrap_or_else(|e| panic!("{} {:?}: {e}", d.name, m.mti));
        MessageRef::decode(d, &wire).unwrap().to_owned()
    }

    /// The refund builder against the independent vector: the vectors.md 0220 with its
    /// codec-only track 2 replaced by field 14, as a real refund advice carries (R-ADVICE).
    #[test]
    fn cup_refund_matches_the_vector_layout() {
        let cup = Dialect::builtin("cup").unwrap();
        let card = CardData {
            pan: Some(Pan::new("6222021234567890123").unwrap()),
            expiry: Some("3012".into()),
            entry_mode: "021".into(),
            // Present-card data that a refund advice must drop:
            track2: Some("6222021234567890123=30121011234".into()),
            pin_block: Some([1; 8]),
            icc_data: Some(vec![0x9F, 0x26, 0x00]),
            ..CardData::default()
        };
        let built = refund(
            &cup,
            &input(card),
            &OriginalTxn {
                stan: Some(123),
                batch: Some(1),
                rrn: Some("123456789012".into()),
                date_mmdd: Some("1126".into()),
                ..OriginalTxn::default()
            },
        )
        .unwrap();
        let wire = cup_0220_wire();
        let mut expect = MessageRef::decode(&cup, &wire[2..]).unwrap().to_owned();
        expect.remove(35).remove(64).set(14, "3012");
        let mut built_h = built.clone();
        built_h.header = expect.header.clone();
        assert_eq!(built_h, expect);
        for n in [35, 52, 55, 26, 53] {
            assert!(!built.has(n), "refund advice carries field {n}");
        }
    }

    #[test]
    fn every_builder_encodes_in_both_dialects() {
        for d in dialects() {
            let s = sign_on(
                &d,
                &SignOnInput {
                    tid: "12345678".into(),
                    mid: "123456789012345".into(),
                    stan: 1,
                    batch: 1,
                    local: local(),
                    gmt: None,
                    double_length_keys: true,
                    operator: Some("001".into()),
                    header: None,
                },
            )
            .unwrap();
            let s = roundtrip(&d, &s);
            assert_eq!(s.mti.to_string(), "0800");
            match d.family {
                DialectFamily::Cup => assert_eq!(s.get_str(60), Some("00000001003")),
                DialectFamily::Iso87 => assert_eq!(s.get_str(70), Some("001")),
            }

            let sale_m = roundtrip(&d, &sale(&d, &input(swipe())).unwrap());
            assert_eq!(sale_m.get_str(3), Some("000000"));
            assert_eq!(sale_m.get_str(4), Some("000000001000"));
            assert_eq!(sale_m.get_str(49), Some("156"));
            assert_eq!(sale_m.get(52), Some(&[0x11; 8][..]));
            match d.family {
                DialectFamily::Cup => {
                    assert_eq!(
                        Field60::parse(sale_m.get_str(60).unwrap()).unwrap(),
                        Field60::new(22, 1, 0)
                    );
                    assert!(!sale_m.has(12));
                }
                DialectFamily::Iso87 => {
                    assert_eq!(sale_m.get_str(12), Some("100000"));
                    assert_eq!(sale_m.get_str(13), Some("1126"));
                    assert_eq!(sale_m.get_str(7), Some("1126020000"));
                }
            }

            let v = roundtrip(&d, &void(&d, &input(swipe()), &original()).unwrap());
            assert_eq!(
                v.get_str(4),
                Some("000000010000"),
                "void takes the original amount"
            );
            match d.family {
                DialectFamily::Cup => {
                    assert_eq!(v.mti.to_string(), "0200");
                    assert_eq!(v.get_str(3), Some("200000"));
                    assert_eq!(v.get_str(37), Some("123456789012"));
                    assert_eq!(v.get_str(38), Some("A1B2C3"));
                    assert_eq!(
                        Field60::parse(v.get_str(60).unwrap()).unwrap().type_code,
                        23
                    );
                    assert_eq!(v.get_str(61), Some("000001000123"));
                }
                DialectFamily::Iso87 => {
                    assert_eq!(v.mti.to_string(), "0420");
                    assert_eq!(v.get_str(39), Some("17"));
                    let f90 = Field90::parse(v.get_str(90).unwrap()).unwrap();
                    assert_eq!(
                        (f90.orig_mti.to_string().as_str(), f90.orig_stan),
                        ("0200", 123)
                    );
                    assert_eq!(f90.orig_transmission, "1126020000");
                }
            }

            let mut rin = input(swipe());
            rin.card.pan = Some(Pan::new("6222021234567890123").unwrap());
            let r = roundtrip(&d, &refund(&d, &rin, &original()).unwrap());
            assert_eq!(r.get_str(3), Some("200000"));
            match d.family {
                DialectFamily::Cup => {
                    assert_eq!(r.mti.to_string(), "0220");
                    assert_eq!(
                        Field61::parse(r.get_str(61).unwrap())
                            .unwrap()
                            .orig_date
                            .as_deref(),
                        Some("1126")
                    );
                    assert!(!r.has(35) && !r.has(52));
                }
                DialectFamily::Iso87 => {
                    assert_eq!(r.mti.to_string(), "0200");
                    assert!(r.has(35));
                }
            }

            let totals = SettlementTotals {
                domestic: Totals {
                    debit_amount: 10000,
                    debit_count: 1,
                    credit_amount: 3333,
                    credit_count: 1,
                    reconciliation: 0,
                },
                foreign: Totals::default(),
            };
            let st = roundtrip(
                &d,
                &settlement(
                    &d,
                    &SettlementInput {
                        tid: "12345678".into(),
                        mid: "123456789012345".into(),
                        stan: 9,
                        batch: 1,
                        local: local(),
                        gmt: None,
                        currency: 156,
                        totals,
                        operator: None,
                        header: None,
                    },
                )
                .unwrap(),
            );
            assert_eq!(st.mti.to_string(), "0500");
            assert_eq!(
                SettlementTotals::parse(st.get_str(48).unwrap()).unwrap(),
                totals
            );
            if d.family == DialectFamily::Cup {
                assert_eq!(
                    Field60::parse(st.get_str(60).unwrap())
                        .unwrap()
                        .network_code,
                    Some(201)
                );
            }

            let up = roundtrip(
                &d,
                &batch_upload(
                    &d,
                    &UploadRecord {
                        tid: "12345678".into(),
                        mid: "123456789012345".into(),
                        batch: 1,
                        stan: 123,
                        pan: Some(Pan::new("6222021234567890123").unwrap()),
                        processing_code: "000000".into(),
                        amount_minor: 10000,
                        currency: 156,
                        date_mmdd: "1126".into(),
                        time_hhmmss: "100000".into(),
                        rrn: Some("123456789012".into()),
                        auth_code: Some("A1B2C3".into()),
                        entry_mode: "021".into(),
                        type_code: 22,
                        header: None,
                    },
                )
                .unwrap(),
            );
            assert_eq!(up.mti.to_string(), "0320");
            let end = roundtrip(
                &d,
                &batch_upload_end(
                    &d,
                    &UploadEnd {
                        tid: "12345678".into(),
                        mid: "123456789012345".into(),
                        stan: 10,
                        batch: 1,
                        count: 3,
                        header: None,
                    },
                )
                .unwrap(),
            );
            assert_eq!(end.get_str(48), Some("0003"));
            if d.family == DialectFamily::Cup {
                assert_eq!(end.get_str(60), Some("00000001202"));
            }
        }
    }

    #[test]
    fn reversals_and_repeats() {
        let [cup, iso] = dialects();
        let s = sale(&cup, &input(swipe())).unwrap();
        let r = reversal(&cup, &s, ReversalReason::NoResponse, Some("A1B2C3")).unwrap();
        assert_eq!(r.mti.to_string(), "0400");
        assert_eq!(
            r.get_str(11),
            Some("000124"),
            "CUP reverses with the original STAN"
        );
        assert_eq!(r.get_str(39), Some("98"));
        assert_eq!(r.get_str(38), Some("A1B2C3"));
        assert_eq!(r.get_str(60), s.get_str(60));
        assert_eq!(
            r.get_str(2),
            Some("6222021234567890123"),
            "PAN from track 2"
        );
        assert_eq!(r.get_str(14), Some("3012"));
        for n in [35, 52, 53, 26] {
            assert!(!r.has(n), "reversal carries {n}");
        }
        assert!(!r.has(90));
        roundtrip(&cup, &r);
        assert_eq!(repeat(&cup, &r).unwrap(), r, "CUP resends the same 0400");
        let adv = refund(
            &cup,
            &{
                let mut i = input(CardData {
                    entry_mode: "012".into(),
                    ..CardData::default()
                });
                i.card.pan = Some(Pan::new("6222021234567890123").unwrap());
                i
            },
            &original(),
        )
        .unwrap();
        assert_eq!(
            repeat(&cup, &adv).unwrap(),
            adv,
            "CUP resends the same 0220"
        );

        let s = sale(&iso, &input(swipe())).unwrap();
        let r = reversal(&iso, &s, ReversalReason::BadMac, None).unwrap();
        assert_eq!(r.get_str(39), Some("A0"));
        let f90 = Field90::parse(r.get_str(90).unwrap()).unwrap();
        assert_eq!(f90.orig_mti, Mti::new(200).unwrap());
        assert_eq!(f90.orig_stan, 124);
        assert_eq!(f90.orig_transmission, "1126020000");
        let rep = repeat(&iso, &r).unwrap();
        assert_eq!(rep.mti.to_string(), "0401");
        roundtrip(&iso, &rep);
        let v = void(&iso, &input(swipe()), &original()).unwrap();
        assert_eq!(repeat(&iso, &v).unwrap().mti.to_string(), "0421");
        let resp = Message::new(Mti::new(210).unwrap());
        assert!(repeat(&iso, &resp).is_err());
    }

    #[test]
    fn responses_echo_swap_and_match() {
        let [cup, iso] = dialects();
        let req = sale(&cup, &input(swipe())).unwrap();
        let wire = req.encode(&cup).unwrap();
        let req_ref = MessageRef::decode(&cup, &wire).unwrap();
        let fee = FeeInfo {
            fee: 6,
            net: 994,
            returned_fee: 0,
        };
        let resp = response(
            &cup,
            &req_ref,
            &ReplyInput {
                code: "00".into(),
                rrn: Some("000000000001".into()),
                auth_code: Some("123456".into()),
                local: Some(local()),
                fee: Some(fee),
                ..ReplyInput::default()
            },
        )
        .unwrap();
        assert_eq!(resp.mti.to_string(), "0210");
        assert_eq!(
            resp.header.as_deref(),
            Some(&hex_decode("6000000003603100000000").unwrap()[..])
        );
        assert_eq!(resp.get_str(39), Some("00"));
        assert_eq!(resp.get_str(37), Some("000000000001"));
        assert_eq!(resp.get_str(13), Some("1126"));
        assert_eq!(FeeInfo::from_message(&cup, &resp), Some(Ok(fee)));
        assert_eq!(
            resp.get_str(57),
            Some("000000000006000000000994000000000000")
        );
        for n in [35, 52, 53, 26, 64] {
            assert!(!resp.has(n), "reply echoes {n}");
        }
        let resp_wire = resp.encode(&cup).unwrap();
        let resp_ref = MessageRef::decode(&cup, &resp_wire).unwrap();
        match_response(&req, &resp_ref).unwrap();
        match_response(&req_ref, &resp).unwrap();

        // Each tampered field is named.
        for (n, v, check) in [
            (11u8, "000125", Check::Stan),
            (41, "87654321", Check::Tid),
            (42, "000000000000000", Check::Mid),
            (4, "000000001001", Check::Amount),
            (3, "200000", Check::ProcessingCode),
        ] {
            let mut bad = resp.clone();
            bad.set(n, v);
            let e = match_response(&req, &bad).unwrap_err();
            assert_eq!(e.mismatches.len(), 1, "{e}");
            assert!(e.failed(check), "{e}");
        }
        let mut bad = resp.clone();
        bad.mti = Mti::new(230).unwrap();
        bad.remove(11);
        let e = match_response(&req, &bad).unwrap_err();
        assert!(e.failed(Check::Mti) && e.failed(Check::Stan), "{e}");
        assert!(e.to_string().contains("Mti expected 0210 got 0230"), "{e}");
        // A partial approval may change the amount; a decline may omit it.
        let mut partial = resp.clone();
        partial.set(39, "10").set(4, "000000000500");
        match_response(&req, &partial).unwrap();
        let mut decline = resp.clone();
        decline.set(39, "51").remove(4);
        match_response(&req, &decline).unwrap();

        // iso87: no header, 0420 → 0430.
        let v = void(&iso, &input(swipe()), &original()).unwrap();
        let r = response(
            &iso,
            &v,
            &ReplyInput {
                code: "00".into(),
                ..ReplyInput::default()
            },
        )
        .unwrap();
        assert_eq!(r.mti.to_string(), "0430");
        assert!(r.header.is_none());
        assert_eq!(r.get(90), v.get(90));
        match_response(&v, &r).unwrap();
        roundtrip(&iso, &r);
        // 0401 is answered by 0410.
        assert_eq!(Mti::new(401).unwrap().response(), Mti::new(410));
        assert_eq!(Mti::new(221).unwrap().response(), Mti::new(230));
    }

    #[test]
    fn debug_output_never_shows_a_full_pan() {
        let cup = Dialect::builtin("cup").unwrap();
        let mut i = input(swipe());
        i.card.pan = Some(Pan::new("6222021234567890123").unwrap());
        let m = sale(&cup, &i).unwrap();
        let wire = m.encode(&cup).unwrap();
        let r = MessageRef::decode(&cup, &wire).unwrap();
        for s in [
            format!("{m:?}"),
            format!("{i:?}"),
            format!("{r:?}"),
            format!("{:?}", r.field(2)),
        ] {
            assert!(!s.contains("6222021234567890123"), "{s}");
            assert!(!s.contains("30121011234"), "{s}");
        }
        assert!(format!("{m:?}").contains("622202*********0123"));
    }

    #[test]
    fn builders_report_missing_inputs() {
        let [cup, _] = dialects();
        let e = refund(&cup, &input(swipe()), &original()).unwrap_err();
        assert!(e.to_string().contains("PAN"), "{e}");
        let e = void(&cup, &input(swipe()), &OriginalTxn::default()).unwrap_err();
        assert!(e.to_string().contains("RRN"), "{e}");
        let mut i = input(swipe());
        i.card.entry_mode.clear();
        assert!(sale(&cup, &i).is_err());
        // Out-of-range numbers surface as a field error at encode, not a panic.
        let mut i = input(swipe());
        i.stan = 1_000_000;
        let e = sale(&cup, &i).unwrap().encode(&cup).unwrap_err();
        assert_eq!(e.field, Some(11));
        let mut i = input(swipe());
        i.batch = 1_000_000;
        assert!(matches!(sale(&cup, &i), Err(BuildError::Subfield(_))));
    }
}

mod codec_errors {
    use super::*;
    use crate::iso8583::message::{DecodeErrorKind, EncodeErrorKind};

    fn cup() -> Dialect {
        Dialect::builtin("cup").unwrap()
    }

    #[test]
    fn decode_errors_name_field_and_offset() {
        let d = cup();
        let wire = cup_0220_wire();
        let frame = &wire[2..];
        // Cut inside field 35 (starts at 21 + 11 + 3 + 6 + 3 + 2 + 1 = 47).
        let e = MessageRef::decode(&d, &frame[..50]).unwrap_err();
        assert_eq!(e.field, Some(35));
        assert_eq!(e.offset, 48);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 16,
                available: 2
            }
        ));
        assert_eq!(
            e.to_string(),
            "field 35 at byte 48: needs 16 bytes, 2 remain"
        );
        // A non-digit nibble in field 4 (amount, at byte 35).
        let mut bad = frame.to_vec();
        bad[37] = 0x1A;
        let e = MessageRef::decode(&d, &bad).unwrap_err();
        assert_eq!((e.field, e.offset), (Some(4), 37));
        assert_eq!(e.kind, DecodeErrorKind::BadDigit { byte: 0x1A });
        // A field the dialect lacks (bit 5).
        let mut bad = frame.to_vec();
        bad[13] |= 0x08;
        let e = MessageRef::decode(&d, &bad).unwrap_err();
        assert_eq!(e.field, Some(5));
        assert_eq!(e.kind, DecodeErrorKind::UnknownField);
        // Secondary bitmap flag in CUP.
        let mut bad = frame.to_vec();
        bad[13] |= 0x80;
        assert_eq!(
            MessageRef::decode(&d, &bad).unwrap_err().kind,
            DecodeErrorKind::SecondaryNotAllowed
        );
        // Trailing garbage.
        let mut bad = frame.to_vec();
        bad.push(0);
        assert_eq!(
            MessageRef::decode(&d, &bad).unwrap_err(),
            DecodeError {
                field: None,
                offset: 128,
                kind: DecodeErrorKind::TrailingBytes { count: 1 }
            }
        );
        // LLVAR above the maximum: PAN length 0x20 = 20 digits > 19.
        let mut bad = frame.to_vec();
        bad[21] = 0x20;
        let e = MessageRef::decode(&d, &bad).unwrap_err();
        assert_eq!((e.field, e.offset), (Some(2), 21));
        assert!(matches!(
            e.kind,
            DecodeErrorKind::TooLong { len: 20, max: 19 }
        ));
        // Bad MTI.
        let mut bad = frame.to_vec();
        bad[11] = 0xA2;
        assert_eq!(
            MessageRef::decode(&d, &bad).unwrap_err().kind,
            DecodeErrorKind::BadMti
        );
        assert!(MessageRef::decode(&d, &[]).is_err());
    }

    #[test]
    fn encode_validates() {
        let d = cup();
        let mut m = Message::new(Mti::new(200).unwrap());
        m.set(3, "00000");
        let e = m.encode(&d).unwrap_err();
        assert_eq!(
            e,
            EncodeError {
                field: Some(3),
                kind: EncodeErrorKind::WrongLength {
                    len: 5,
                    expected: 6
                }
            }
        );
        m.set(3, "00000x");
        assert!(matches!(
            m.encode(&d).unwrap_err().kind,
            EncodeErrorKind::BadChar { pos: 5, byte: b'x' }
        ));
        m.set(3, "000000").set(2, "12345678901234567890");
        assert!(matches!(
            m.encode(&d).unwrap_err().kind,
            EncodeErrorKind::TooLong { len: 20, max: 19 }
        ));
        m.remove(2).set(5, "1");
        assert_eq!(
            m.encode(&d).unwrap_err().kind,
            EncodeErrorKind::NotInDialect
        );
        m.remove(5).set(90, "0");
        assert_eq!(
            m.encode(&d).unwrap_err().kind,
            EncodeErrorKind::SecondaryNotAllowed
        );
        m.remove(90).set(200, "0");
        assert_eq!(
            m.encode(&d).unwrap_err(),
            EncodeError {
                field: Some(200),
                kind: EncodeErrorKind::NoSuchField
            }
        );
        m.remove(200).set(37, "12345678901-");
        assert!(matches!(
            m.encode(&d).unwrap_err().kind,
            EncodeErrorKind::BadChar { pos: 11, .. }
        ));
        m.remove(37);
        m.header = Some(vec![0; 3]);
        assert!(matches!(
            m.encode(&d).unwrap_err().kind,
            EncodeErrorKind::HeaderLength {
                len: 3,
                expected: 11
            }
        ));
        // A failed encode leaves the buffer as it was.
        let mut out = vec![9, 9];
        assert!(m.encode_into(&d, &mut out).is_err());
        assert_eq!(out, [9, 9]);
    }

    #[test]
    fn bcd_alignment() {
        let d = cup();
        let mut m = Message::new(Mti::new(200).unwrap());
        m.set(22, "051").set(23, "001").set(2, "12345678901234567");
        let w = m.encode(&d).unwrap();
        // header 11, MTI 2, bitmap 8 | 2: LL 17, 9 bytes BCD-L | 22: 05 10 | 23: 00 01
        assert_eq!(
            &w[21..],
            &hex_decode("17 123456789012345670 0510 0001").unwrap()[..]
        );
        let r = MessageRef::decode(&d, &w).unwrap();
        assert_eq!(r.field_str(23).as_deref(), Some("001"));
        assert_eq!(r.field_str(22).as_deref(), Some("051"));
        // F padding is accepted on decode.
        let mut f = w.clone();
        f[30] = 0x7F;
        assert_eq!(
            MessageRef::decode(&d, &f).unwrap().field_str(2).as_deref(),
            Some("12345678901234567")
        );
    }

    #[test]
    fn hex_bitmap_and_other_prefixes() {
        let src = crate::iso8583::dialect::ISO87_ASCII_YAML
            .replace("bitmap: binary", "bitmap: hex")
            .replace("length_encoding: ascii", "length_encoding: binary");
        let d = Dialect::from_yaml_str(&src, "hex.yaml").unwrap();
        let mut m = Message::new(Mti::new(800).unwrap());
        m.set(2, "4111111111111111").set(70, "001");
        let w = m.encode(&d).unwrap();
        assert_eq!(&w[..4 + 32], b"0800C0000000000000000400000000000000");
        assert_eq!(w[36], 16, "binary LL");
        assert_eq!(MessageRef::decode(&d, &w).unwrap().to_owned(), m);
        let mut bad = w.clone();
        bad[5] = b'G';
        assert_eq!(
            MessageRef::decode(&d, &bad).unwrap_err().kind,
            DecodeErrorKind::BadBitmap
        );
    }
}

mod roundtrip {
    use super::*;
    use crate::iso8583::dialect::{Charset, FieldSpec, LengthType, LengthUnit};
    use proptest::prelude::*;

    fn char_strategy(c: Charset) -> BoxedStrategy<u8> {
        match c {
            Charset::N => (b'0'..=b'9').boxed(),
            Charset::Z => prop_oneof![9 => b'0'..=b'9', 1 => Just(b'=')].boxed(),
            Charset::An => proptest::sample::select(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ".to_vec(),
            )
            .boxed(),
            Charset::Ans => (0x20u8..=0xFF).prop_filter("DEL", |b| *b != 0x7F).boxed(),
            Charset::B => any::<u8>().boxed(),
        }
    }

    fn value_strategy(spec: &FieldSpec) -> BoxedStrategy<Option<(u8, Vec<u8>)>> {
        let n = spec.number;
        let max = spec.max as usize;
        let lens = match spec.length {
            LengthType::Fixed => max..=max,
            _ => 0..=max,
        };
        let even = spec.data.is_packed() && spec.unit == LengthUnit::Bytes;
        let chars = char_strategy(spec.charset);
        proptest::option::weighted(
            0.4,
            proptest::collection::vec(chars, lens).prop_map(move |mut v| {
                if even && v.len() % 2 == 1 {
                    v.pop();
                }
                (n, v)
            }),
        )
        .boxed()
    }

    fn message_strategy(d: &Dialect) -> impl Strategy<Value = Message> {
        let fields: Vec<_> = d.fields().map(value_strategy).collect();
        (0u16..=9999, fields).prop_map(|(mti, fs)| {
            let mut m = Message::new(Mti::new(mti).unwrap());
            for (n, v) in fs.into_iter().flatten() {
                m.set(n, v);
            }
            m
        })
    }

    fn check(d: &Dialect, mut m: Message) -> Result<(), TestCaseError> {
        let mut buf = Vec::new();
        m.encode_into(d, &mut buf)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let r = MessageRef::decode(d, &buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Some(h) = &d.header {
            m.header = Some(h.default.clone());
        }
        prop_assert_eq!(&r.to_owned(), &m);
        // Borrowed accessors agree with the owned copy.
        for (n, f) in r.fields() {
            prop_assert_eq!(&f.value()[..], m.get(n).unwrap());
        }
        // Re-encoding the decoded message gives the same bytes.
        prop_assert_eq!(r.to_owned().encode(d).unwrap(), buf);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn cup_messages_round_trip(m in message_strategy(&Dialect::builtin("cup").unwrap())) {
            check(&Dialect::builtin("cup").unwrap(), m)?;
        }

        #[test]
        fn iso87_messages_round_trip(m in message_strategy(&Dialect::builtin("iso87-ascii").unwrap())) {
            check(&Dialect::builtin("iso87-ascii").unwrap(), m)?;
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            for d in [Dialect::builtin("cup").unwrap(), Dialect::builtin("iso87-ascii").unwrap()] {
                if let Ok(r) = MessageRef::decode(&d, &bytes) {
                    r.to_owned().encode(&d).unwrap();
                }
            }
        }
    }
}
