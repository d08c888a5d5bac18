use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::time::Instant;

fn dec(s: &str) -> Result<Option<Line>, DecodeError> {
    decode_line(s.trim_end_matches('\n').as_bytes())
}

fn card(n: &str) -> CardName {
    CardName::new(n).unwrap()
}

#[test]
fn crc8_check_value_and_worked_examples() {
    // CRC-8/SMBUS catalogue check value (reveng CRC catalogue: poly 0x07, init 0, check 0xF4).
    assert_eq!(crc8(b"123456789"), 0xF4);
    // Worked examples of hil-rigs/PROTOCOL.md, cross-checked with an independent Python
    // implementation of the same polynomial.
    assert_eq!(crc8(b"@1 HELLO 1 posrig/0.1"), 0xF8);
    assert_eq!(crc8(b"@2 KEY 5"), 0xB5);
    assert_eq!(crc8(b"@3 CARD SWIPE unionpay_debit_01"), 0xBB);
    assert_eq!(crc8(b"ACK 2"), 0x51);
    assert_eq!(crc8(b"ERR - CHECKSUM \"expected 5C\""), 0xEC);
}

#[test]
fn chinese_display_line_is_percent_escaped() {
    let l = Line::Event {
        seq: 7,
        report: Report::Display {
            lines: vec!["退货".into(), "REFUND".into()],
        },
    };
    let s = encode_line(&l).unwrap();
    assert_eq!(s, "!7 DISPLAY 2 \"%E9%80%80%E8%B4%A7\" \"REFUND\" *BB\n");
    assert!(s.is_ascii());
    assert_eq!(dec(&s).unwrap(), Some(l));
    // Lower-case hex is accepted too.
    let lower = "!7 DISPLAY 1 \"%e9%80%80\"";
    let framed = format!("{lower} *{:02X}", crc8(lower.as_bytes()));
    assert_eq!(
        dec(&framed).unwrap(),
        Some(Line::Event {
            seq: 7,
            report: Report::Display {
                lines: vec!["退".into()]
            }
        })
    );
    // Invalid escapes and non-UTF-8 are refused at the escape's column.
    let bad = "!7 DISPLAY 1 \"ab%G1\"";
    let e = dec(&format!("{bad} *{:02X}", crc8(bad.as_bytes()))).unwrap_err();
    assert_eq!(e.column, 17);
    assert_eq!(e.kind.code(), ErrCode::BadLine);
    let bad = "!7 DISPLAY 1 \"%FF\"";
    assert!(dec(&format!("{bad} *{:02X}", crc8(bad.as_bytes()))).is_err());
}

#[test]
fn exact_lines() {
    let cases = [
        (
            Line::Request {
                seq: Some(1),
                request: Request::Hello {
                    version: 1,
                    client: "posrig/0.1".into(),
                },
            },
            "@1 HELLO 1 posrig/0.1 *F8\n",
        ),
        (
            Line::Request {
                seq: Some(3),
                request: Request::Card(CardAction::Swipe(card("unionpay_debit_01"))),
            },
            "@3 CARD SWIPE unionpay_debit_01 *BB\n",
        ),
        (
            Line::Ack {
                seq: Some(2),
                report: None,
            },
            "ACK 2 *51\n",
        ),
        (
            Line::Err {
                seq: None,
                code: ErrCode::Checksum,
                text: "expected 5C".into(),
            },
            "ERR - CHECKSUM \"expected 5C\" *EC\n",
        ),
        (
            Line::Request {
                seq: None,
                request: Request::Key(KeyName::Enter),
            },
            "KEY ENTER\n",
        ),
    ];
    for (line, text) in cases {
        assert_eq!(encode_line(&line).unwrap(), text);
        assert_eq!(dec(text).unwrap(), Some(line));
    }
}

#[test]
fn located_errors() {
    // Checksum wrong: column of the hex digits, no trusted seq.
    let e = dec("@2 KEY 5 *B6").unwrap_err();
    assert_eq!(e.column, 11);
    assert_eq!(e.seq, None);
    assert_eq!(
        e.kind,
        DecodeErrorKind::BadChecksum {
            expected: 0xB5,
            found: 0xB6
        }
    );
    assert_eq!(e.kind.code(), ErrCode::Checksum);
    // Missing checksum.
    let e = dec("@2 KEY 5").unwrap_err();
    assert_eq!(
        (e.column, e.kind.clone()),
        (9, DecodeErrorKind::MissingChecksum)
    );
    // Checksum fine, argument wrong: the seq is known, so the rig answers ERR 12 BADARG.
    let body = "@12 KEY 55";
    let e = dec(&format!("{body} *{:02X}", crc8(body.as_bytes()))).unwrap_err();
    assert_eq!((e.column, e.seq), (9, Some(12)));
    assert_eq!(e.kind.code(), ErrCode::BadArg);
    // Unknown verb.
    let e = dec("jump 3").unwrap_err();
    assert_eq!((e.column, e.kind.code()), (1, ErrCode::Unknown));
    // Non-ASCII and control bytes.
    let e = decode_line("key é".as_bytes()).unwrap_err();
    assert_eq!((e.column, e.kind), (5, DecodeErrorKind::NotAscii(0xC3)));
    let e = decode_line(b"key\t1").unwrap_err();
    assert_eq!(e.column, 4);
    // Extra argument, quote problems.
    assert_eq!(dec("power on now").unwrap_err().column, 10);
    assert_eq!(dec("key \"1").unwrap_err().column, 5);
    assert_eq!(dec("key 1\"").unwrap_err().column, 6);
    // Seq out of range.
    let body = "@70000 PING";
    let e = dec(&format!("{body} *{:02X}", crc8(body.as_bytes()))).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::BadSeq);
    // Blank lines are nothing.
    assert_eq!(dec("   \r").unwrap(), None);
}

#[test]
fn human_lines_are_case_insensitive_and_tolerate_spaces() {
    assert_eq!(
        dec("  keys  100 3 3 enter \r").unwrap(),
        Some(Line::Request {
            seq: None,
            request: Request::Keys {
                gap_ms: 100,
                keys: vec![KeyName::Digit(3), KeyName::Digit(3), KeyName::Enter]
            }
        })
    );
    assert_eq!(
        dec("card insert visa_credit_01").unwrap(),
        Some(Line::Request {
            seq: None,
            request: Request::Card(CardAction::Insert(card("visa_credit_01")))
        })
    );
    assert_eq!(
        dec("get printer").unwrap(),
        Some(Line::Request {
            seq: None,
            request: Request::Get(GetWhat::Printer { from: 0 })
        })
    );
    assert!(dec("keys 100").is_err());
    assert!(dec("keys 10001 1").is_err());
    let many = format!("keys 0{}", " 1".repeat(MAX_KEYS + 1));
    assert!(dec(&many).is_err());
}

#[test]
fn decoder_resynchronises_after_noise() {
    let mut d = LineDecoder::new();
    d.feed(b"\x00\x13garbage*\xfe\n@2 KEY 5 *B5\n");
    d.feed(b"@2 KEY 5 *00\n!1 POWER ON *");
    d.feed(format!("{:02X}\n", crc8(b"!1 POWER ON")).as_bytes());
    let e = d.poll().unwrap().unwrap_err();
    assert_eq!((e.offset, e.column), (0, 1));
    assert_eq!(e.kind.code(), ErrCode::BadLine);
    assert!(d.poll().unwrap().is_ok());
    let e = d.poll().unwrap().unwrap_err();
    assert_eq!(e.offset, 25);
    assert_eq!(e.kind.code(), ErrCode::Checksum);
    assert_eq!(
        d.poll().unwrap().unwrap(),
        Line::Event {
            seq: 1,
            report: Report::Power(true)
        }
    );
    assert!(d.poll().is_none());
}

#[test]
fn over_long_lines_are_dropped_with_one_error_and_bounded_memory() {
    let mut d = LineDecoder::new();
    let junk = vec![b'x'; 10_000];
    for chunk in junk.chunks(333) {
        d.feed(chunk);
        assert!(d.pending_len() <= MAX_LINE + 2);
    }
    d.feed(b"\nping\n");
    let e = d.poll().unwrap().unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::TooLong);
    assert_eq!(e.kind.code(), ErrCode::TooLong);
    assert_eq!(
        d.poll().unwrap().unwrap(),
        Line::Request {
            seq: None,
            request: Request::Ping
        }
    );
    assert!(d.poll().is_none());
    // Exactly MAX_LINE bytes (+ CR) is still a line.
    let mut d = LineDecoder::new();
    let mut l = b"ping".to_vec();
    l.resize(MAX_LINE, b' ');
    l.extend_from_slice(b"\r\n");
    d.feed(&l);
    assert!(d.poll().unwrap().is_ok());
}

#[test]
fn encoder_refuses_what_would_not_decode() {
    let long = Line::Event {
        seq: 1,
        report: Report::Display {
            lines: vec!["退货成功".repeat(30); 16],
        },
    };
    assert!(matches!(encode_line(&long), Err(EncodeError::TooLong(_))));
    let many = Line::Event {
        seq: 1,
        report: Report::Display {
            lines: vec![String::new(); MAX_DISPLAY_LINES + 1],
        },
    };
    assert!(matches!(
        encode_line(&many),
        Err(EncodeError::TooMany { .. })
    ));
    let bad_name = Line::Request {
        seq: Some(1),
        request: Request::Hello {
            version: 1,
            client: "two words".into(),
        },
    };
    assert!(matches!(
        encode_line(&bad_name),
        Err(EncodeError::BadWord { .. })
    ));
}

fn server() -> ServerSession {
    let mut s = ServerSession::new("emu", &Capability::ALL);
    assert!(s.poll_transmit().unwrap().starts_with("!0 BOOT 1 emu "));
    s
}

fn drain(s: &mut ServerSession) -> Vec<String> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

#[test]
fn human_mode_session() {
    let mut s = server();
    s.handle_input(b"key 1\n");
    assert!(s.poll_request().is_none());
    let out = drain(&mut s);
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("ERR - NOTFRAMED "), "{}", out[0]);

    s.handle_input(b"mode human\r\nkey 1\n");
    let req = s.poll_request().unwrap();
    assert_eq!(
        req,
        Incoming {
            seq: None,
            request: Request::Key(KeyName::Digit(1))
        }
    );
    assert_eq!(s.mode(), Mode::Human);
    s.reply(Outcome::Done);
    let out = drain(&mut s);
    let ack = encode_line(&Line::Ack {
        seq: None,
        report: None,
    })
    .unwrap();
    assert_eq!(out, [ack.clone(), ack]);
    assert_eq!(out[0], format!("ACK - *{:02X}\n", crc8(b"ACK -")));

    // Framed requests still work in HUMAN mode; MODE MACHINE switches back.
    s.handle_input(b"mode machine\nkey 2\n");
    assert!(s.poll_request().is_none());
    let out = drain(&mut s);
    assert!(out[0].starts_with("ACK - "));
    assert!(out[1].starts_with("ERR - NOTFRAMED"));
}

#[test]
fn server_answers_hello_ping_and_replays_duplicates() {
    let mut s = server();
    s.handle_input(b"@1 HELLO 1 posrig/0.1 *F8\n@2 PING *");
    s.handle_input(format!("{:02X}\n", crc8(b"@2 PING")).as_bytes());
    assert!(s.poll_request().is_none());
    let out = drain(&mut s);
    assert_eq!(
        dec(&out[0]).unwrap(),
        Some(Line::Ack {
            seq: Some(1),
            report: Some(Report::Hello {
                version: 1,
                name: "emu".into(),
                caps: Capability::ALL.to_vec()
            })
        })
    );
    assert_eq!(out[1], "ACK 2 *51\n");

    // The client retransmits KEY 5 because it missed our ACK: pressed once, acknowledged twice.
    s.handle_input(b"@3 KEY 5 *");
    s.handle_input(format!("{:02X}\n", crc8(b"@3 KEY 5")).as_bytes());
    let r = s.poll_request().unwrap();
    assert_eq!(r.seq, Some(3));
    s.handle_input(format!("@3 KEY 5 *{:02X}\n", crc8(b"@3 KEY 5")).as_bytes());
    assert!(s.poll_request().is_none(), "one at a time");
    s.reply(Outcome::Done);
    assert!(
        s.poll_request().is_none(),
        "the duplicate is not handed out"
    );
    let out = drain(&mut s);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], out[1]);

    // Same seq, different request: a new request (the client restarted without HELLO).
    s.handle_input(format!("@3 KEY 6 *{:02X}\n", crc8(b"@3 KEY 6")).as_bytes());
    assert_eq!(
        s.poll_request().unwrap().request,
        Request::Key(KeyName::Digit(6))
    );
    s.reply(Outcome::Failed(ErrCode::State, "power is off".into()));
    assert_eq!(
        dec(&drain(&mut s)[0]).unwrap(),
        Some(Line::Err {
            seq: Some(3),
            code: ErrCode::State,
            text: "power is off".into()
        })
    );
}

#[test]
fn server_reports_bad_lines_in_order_and_checks_capabilities() {
    let mut s = ServerSession::new("keypad-only", &[Capability::Keys]);
    drain(&mut s);
    let body = "@5 KEY 55";
    s.handle_input(
        format!(
            "{body} *{:02X}\n@6 GET DISPLAY *00\n",
            crc8(body.as_bytes())
        )
        .as_bytes(),
    );
    let body = "@7 GET DISPLAY";
    s.handle_input(format!("{body} *{:02X}\n@9 HELLO 2 x *", crc8(body.as_bytes())).as_bytes());
    s.handle_input(format!("{:02X}\n", crc8(b"@9 HELLO 2 x")).as_bytes());
    assert!(s.poll_request().is_none());
    let out: Vec<_> = drain(&mut s)
        .iter()
        .map(|l| dec(l).unwrap().unwrap())
        .collect();
    assert!(matches!(
        &out[0],
        Line::Err {
            seq: Some(5),
            code: ErrCode::BadArg,
            ..
        }
    ));
    assert!(matches!(
        &out[1],
        Line::Err {
            seq: None,
            code: ErrCode::Checksum,
            ..
        }
    ));
    assert!(matches!(
        &out[2],
        Line::Err {
            seq: Some(7),
            code: ErrCode::Unsupported,
            ..
        }
    ));
    assert!(matches!(
        &out[3],
        Line::Err {
            seq: Some(9),
            code: ErrCode::Version,
            ..
        }
    ));
}

#[test]
fn server_events_are_numbered_and_state_carries_the_last() {
    let mut s = server();
    assert_eq!(s.push_event(Report::Power(true)).unwrap(), 1);
    assert_eq!(
        s.push_event(Report::Leds([
            LedState::Blink,
            LedState::Off,
            LedState::Off,
            LedState::Off
        ]))
        .unwrap(),
        2
    );
    s.handle_input(format!("@4 GET STATE *{:02X}\n", crc8(b"@4 GET STATE")).as_bytes());
    let r = s.poll_request().unwrap();
    assert_eq!(r.request, Request::Get(GetWhat::State));
    s.reply(Outcome::Data(Report::State(RigState {
        power: true,
        ..Default::default()
    })));
    let out = drain(&mut s);
    assert!(out[0].starts_with("!1 POWER ON "));
    assert!(out[1].starts_with("!2 LEDS BLINK OFF OFF OFF "));
    assert!(
        out[2].starts_with("ACK 4 STATE EVENT=2 POWER=ON CARD=- FAULTS=- PRINTED=0 BEEPS=0 "),
        "{}",
        out[2]
    );
}

fn t(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn client_retransmits_then_times_out() {
    let mut c = ClientSession::new(Duration::from_millis(500), 3);
    let s1 = c.send(Request::Key(KeyName::Enter), t(0)).unwrap();
    let s2 = c.send(Request::Ping, t(0)).unwrap();
    assert_eq!((s1, s2), (1, 2));
    let first = c.poll_transmit().unwrap();
    assert!(c.poll_transmit().is_none(), "stop-and-wait");
    assert_eq!(c.poll_timeout(), Some(t(500)));
    c.handle_timeout(t(499));
    assert!(c.poll_transmit().is_none());
    c.handle_timeout(t(500));
    assert_eq!(c.poll_transmit().unwrap(), first);
    c.handle_timeout(t(1000));
    assert_eq!(c.poll_transmit().unwrap(), first);
    c.handle_timeout(t(1500));
    assert_eq!(
        c.poll_event(),
        Some(ClientEvent::Timeout {
            seq: 1,
            request: Request::Key(KeyName::Enter)
        })
    );
    // The next request goes out.
    assert!(c.poll_transmit().unwrap().starts_with("@2 PING "));
    c.handle_input(b"ACK 1 *58\n", t(1600)); // late: ignored
    assert!(c.poll_event().is_none());
    c.handle_input(b"ACK 2 *51\n", t(1600));
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::Reply {
            seq: 2,
            result: Ok(None),
            ..
        })
    ));
    assert!(c.is_idle());
}

#[test]
fn client_resends_on_err_dash_and_reports_event_gaps() {
    let mut c = ClientSession::new(Duration::from_secs(1), 3);
    c.send(Request::Get(GetWhat::Display), t(0)).unwrap();
    let line = c.poll_transmit().unwrap();
    c.handle_input(b"ERR - CHECKSUM \"expected 5C\" *EC\n", t(10));
    assert!(matches!(
        c.poll_event(),
        Some(ClientEvent::LinkError {
            code: ErrCode::Checksum,
            ..
        })
    ));
    assert_eq!(c.poll_transmit().unwrap(), line);

    let ev = |seq: u16, r: Report| encode_line(&Line::Event { seq, report: r }).unwrap();
    let input = [
        ev(3, Report::Power(true)),
        ev(4, Report::Power(false)),
        ev(7, Report::Power(true)),
        ev(
            0,
            Report::Boot {
                version: 1,
                name: "emu".into(),
            },
        ),
        ev(1, Report::Power(true)),
    ]
    .concat();
    c.handle_input(input.as_bytes(), t(20));
    let evs: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(evs.len(), 6);
    assert_eq!(
        evs[2],
        ClientEvent::EventGap {
            expected: 5,
            got: 7
        }
    );
    assert!(
        matches!(evs[4], ClientEvent::Event { seq: 0, .. }),
        "BOOT restarts numbering"
    );
    assert!(matches!(evs[5], ClientEvent::Event { seq: 1, .. }));
}

#[test]
fn keys_timeout_grows_with_the_keys() {
    let mut c = ClientSession::new(Duration::from_secs(1), 1);
    c.send(
        Request::Keys {
            gap_ms: 200,
            keys: vec![KeyName::Digit(1); 4],
        },
        t(0),
    )
    .unwrap();
    assert_eq!(c.poll_timeout(), Some(t(1000 + 4 * 500)));
}

// ---- property tests ----

fn key() -> impl Strategy<Value = KeyName> {
    proptest::sample::select(KeyName::ALL.to_vec())
}
fn card_name() -> impl Strategy<Value = CardName> {
    "[A-Za-z0-9_.-]{1,64}".prop_map(|s| CardName::new(&s).unwrap())
}
fn word() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_./+:-]{1,64}"
}
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        "\\PC{0,12}",
        Just("退货成功".to_string()),
        Just(String::new())
    ]
}
fn fault() -> impl Strategy<Value = FaultKind> {
    proptest::sample::select(FaultKind::ALL.to_vec())
}
fn led() -> impl Strategy<Value = LedState> {
    prop_oneof![
        Just(LedState::Off),
        Just(LedState::On),
        Just(LedState::Blink)
    ]
}
fn tone() -> impl Strategy<Value = Tone> {
    prop_oneof![Just(Tone::Success), Just(Tone::Alert), Just(Tone::Click)]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u16>(), word()).prop_map(|(version, client)| Request::Hello { version, client }),
        Just(Request::Ping),
        prop_oneof![Just(Mode::Human), Just(Mode::Machine)].prop_map(Request::Mode),
        key().prop_map(Request::Key),
        (
            0..=MAX_GAP_MS,
            proptest::collection::vec(key(), 1..=MAX_KEYS)
        )
            .prop_map(|(gap_ms, keys)| Request::Keys { gap_ms, keys }),
        card_name().prop_map(|n| Request::Card(CardAction::Swipe(n))),
        card_name().prop_map(|n| Request::Card(CardAction::Insert(n))),
        card_name().prop_map(|n| Request::Card(CardAction::Tap(n))),
        Just(Request::Card(CardAction::Remove)),
        (fault(), any::<bool>()).prop_map(|(kind, on)| Request::Fault { kind, on }),
        any::<bool>().prop_map(Request::Power),
        prop_oneof![
            Just(GetWhat::Display),
            any::<u32>().prop_map(|from| GetWhat::Printer { from }),
            Just(GetWhat::Leds),
            Just(GetWhat::Beeper),
            Just(GetWhat::Power),
            Just(GetWhat::State),
        ]
        .prop_map(Request::Get),
    ]
}

fn report() -> impl Strategy<Value = Report> {
    prop_oneof![
        (
            any::<u16>(),
            word(),
            proptest::sample::subsequence(Capability::ALL.to_vec(), 0..=8)
        )
            .prop_map(|(version, name, caps)| Report::Hello {
                version,
                name,
                caps
            }),
        (any::<u16>(), word()).prop_map(|(version, name)| Report::Boot { version, name }),
        proptest::collection::vec(text(), 0..=8).prop_map(|lines| Report::Display { lines }),
        (
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..=MAX_PRINTER_CHUNK)
        )
            .prop_map(|(offset, bytes)| Report::Printer { offset, bytes }),
        [led(), led(), led(), led()].prop_map(Report::Leds),
        (tone(), any::<u32>()).prop_map(|(tone, count)| Report::Beep { tone, count }),
        (proptest::option::of(tone()), any::<u32>())
            .prop_map(|(last, count)| Report::Beeper { last, count }),
        any::<bool>().prop_map(Report::Power),
        (
            any::<u16>(),
            any::<bool>(),
            proptest::option::of(card_name()),
            proptest::sample::subsequence(FaultKind::ALL.to_vec(), 0..=4),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(event_seq, power, card, faults, printed, beeps)| {
                Report::State(RigState {
                    event_seq,
                    power,
                    card,
                    faults,
                    printed,
                    beeps,
                })
            }),
    ]
}

fn err_code() -> impl Strategy<Value = ErrCode> {
    prop_oneof![
        Just(ErrCode::BadLine),
        Just(ErrCode::Checksum),
        Just(ErrCode::TooLong),
        Just(ErrCode::NotFramed),
        Just(ErrCode::Unknown),
        Just(ErrCode::BadArg),
        Just(ErrCode::NoCard),
        Just(ErrCode::State),
        Just(ErrCode::Unsupported),
        Just(ErrCode::Gone),
        Just(ErrCode::Version),
        Just(ErrCode::Busy),
        Just(ErrCode::Internal),
        "[A-Z_]{1,12}".prop_map(|s| ErrCode::parse(&s)),
    ]
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        (proptest::option::of(any::<u16>()), request())
            .prop_map(|(seq, request)| Line::Request { seq, request }),
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(report())
        )
            .prop_map(|(seq, report)| Line::Ack { seq, report }),
        (proptest::option::of(any::<u16>()), err_code(), text())
            .prop_map(|(seq, code, text)| Line::Err { seq, code, text }),
        (any::<u16>(), report()).prop_map(|(seq, report)| Line::Event { seq, report }),
    ]
}

proptest! {
    #[test]
    fn every_line_round_trips(l in line()) {
        let s = encode_line(&l).unwrap();
        prop_assert!(s.is_ascii() && s.ends_with('\n'));
        prop_assert!(s.len() <= MAX_LINE + 1);
        prop_assert_eq!(dec(&s).unwrap(), Some(l));
    }

    #[test]
    fn any_split_of_a_stream_decodes_the_same(
        lines in proptest::collection::vec(line(), 1..8),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        crlf in any::<bool>(),
    ) {
        let mut stream: Vec<u8> = Vec::new();
        for l in &lines {
            let mut s = encode_line(l).unwrap();
            if crlf {
                s.insert(s.len() - 1, '\r');
            }
            stream.extend_from_slice(s.as_bytes());
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len())).collect();
        points.sort();
        let mut d = LineDecoder::new();
        let mut last = 0;
        for p in points.into_iter().chain([stream.len()]) {
            d.feed(&stream[last..p]);
            last = p;
        }
        let got: Vec<Line> = std::iter::from_fn(|| d.poll()).map(|r| r.unwrap()).collect();
        prop_assert_eq!(got, lines);
    }

    #[test]
    fn garbage_then_a_line_recovers(noise in proptest::collection::vec(any::<u8>(), 0..300), l in line()) {
        let mut d = LineDecoder::new();
        d.feed(&noise);
        d.feed(b"\n");
        d.feed(encode_line(&l).unwrap().as_bytes());
        let all: Vec<_> = std::iter::from_fn(|| d.poll()).collect();
        prop_assert_eq!(all.last().cloned(), Some(Ok(l)));
    }

    #[test]
    fn single_bit_errors_in_framed_lines_are_caught(l in line(), pos in any::<prop::sample::Index>(), bit in 0u8..7) {
        let s = encode_line(&l).unwrap();
        prop_assume!(!matches!(l, Line::Request { seq: None, .. }));
        let mut b = s.into_bytes();
        let n = b.len() - 1; // keep the newline
        let i = pos.index(n);
        b[i] ^= 1 << bit;
        prop_assume!(b[i] != b'\n');
        // A flipped bit never decodes to a different valid line.
        if let Ok(Some(other)) = decode_line(&b[..n]) {
            prop_assert_eq!(other, l);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..6)) {
        let mut d = LineDecoder::new();
        let mut s = ServerSession::new("emu", &Capability::ALL);
        let mut c = ClientSession::new(Duration::from_secs(1), 2);
        for ch in &chunks {
            d.feed(ch);
            s.handle_input(ch);
            c.handle_input(ch, Instant::from_millis(0));
            prop_assert!(d.pending_len() <= MAX_LINE + 2);
        }
        while d.poll().is_some() {}
        while let Some(_r) = s.poll_request() { s.reply(Outcome::Done); }
        while s.poll_transmit().is_some() {}
        while c.poll_event().is_some() {}
    }
}

#[test]
fn protocol_md_examples_decode() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hil-rigs/PROTOCOL.md"),
    )
    .unwrap();
    let mut n = 0;
    for (i, l) in doc.lines().enumerate() {
        let Some(text) = l.strip_prefix("C: ").or_else(|| l.strip_prefix("R: ")) else {
            continue;
        };
        n += 1;
        let line = decode_line(text.as_bytes())
            .unwrap_or_else(|e| panic!("PROTOCOL.md:{}: {e}", i + 1))
            .unwrap_or_else(|| panic!("PROTOCOL.md:{}: blank", i + 1));
        let canonical = matches!(text.as_bytes().first(), Some(b'@' | b'!' | b'A' | b'E'));
        if canonical {
            assert_eq!(
                encode_line(&line).unwrap(),
                format!("{text}\n"),
                "PROTOCOL.md:{} is not in canonical form",
                i + 1
            );
        }
        assert_eq!(
            l.starts_with("C: "),
            matches!(line, Line::Request { .. }),
            "PROTOCOL.md:{}",
            i + 1
        );
    }
    assert!(n > 50, "only {n} example lines found");
}

#[test]
fn protocol_md_error_examples_are_what_the_rig_sends() {
    let mut s = server();
    s.handle_input(b"@2 KEY 5 *00\n@20 KEY 55 *89\n");
    assert!(s.poll_request().is_none());
    assert_eq!(
        drain(&mut s),
        [
            "ERR - CHECKSUM \"column 11: checksum is 00, expected B5\" *5E\n",
            "ERR 20 BADARG \"column 9: unknown key `55`\" *1D\n",
        ]
    );
}
