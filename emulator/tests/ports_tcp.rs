//! The emulator's ports over real TCP on 127.0.0.1 (port 0): the ECR port driven by the shared
//! ZVT ECR sequencer, the rig link by the shared rig-link client or raw lines, the host link
//! against the acquirer simulator behind `acquirer::tcp`.

mod common;

use acquirer::Directive;
use acquirer::script::Fault;
use common::*;
use emulator::journal::{Outcome, PendingKind};
use emulator::ports::runtime::{Emulator, EmulatorConfig};
use emulator::ports::{Endpoint, PortError};
use protocol::fixture::journal::TxnType;
use protocol::riglink::{ErrCode, LedState, Report};
use protocol::zvt::bmp::Bcd;
use protocol::zvt::command::{Command, OriginalRef, Refund, StatusEnquiry};
use protocol::zvt::ecr::EcrEvent;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn eur_refund(minor: u64) -> Command {
    let mut z = Refund {
        password: Bcd::from_digits("123456").unwrap(),
        amount_minor: Some(minor),
        currency: Some(978),
        payment_type: Some(0x40),
        ..Default::default()
    };
    z.set_original_ref(&OriginalRef::RrnDate {
        rrn: "000000000201".into(),
        month: 11,
        day: 26,
    })
    .unwrap();
    Command::Refund(z)
}

fn refunds(j: &emulator::journal::JournalState) -> Vec<&emulator::journal::TxnRecord> {
    j.txns
        .iter()
        .filter(|t| t.kind == TxnType::Refund)
        .collect()
}

/// The whole refund from the cash register: ZVT 06 31 over TCP, the card at the reader over the
/// rig link, an ISO 8583 0200/0210 with the acquirer (after the automatic sign-on), the result
/// back to the ECR, the receipts on the terminal's printer and the journal on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_refund_over_tcp_end_to_end() {
    let mut spec = Spec::new("zvt-en-eur.yaml");
    spec.journal = Some("eur-open-batch.yaml");
    let w = setup(&spec).await;
    let emu = start(&w, &spec).await;
    let mut rig = Rig::connect(emu.signals_addr.unwrap()).await;
    // Auto sign-on at power-on: 0800/0810 before anything else.
    eventually("the automatic sign-on", || {
        w.host_messages().iter().any(|m| m.starts_with("out 0810"))
    })
    .await;
    rig.wait_display("WELCOME").await;

    let mut ecr = Ecr::tcp(emu.ecr_addr.unwrap()).await;
    ecr.start(&eur_refund(1000)).await;
    let driver = tokio::spawn(async move {
        let evs = ecr.until(is_end).await;
        (ecr, evs)
    });
    rig.wait_display("SWIPE/INSERT/TAP").await;
    assert_eq!(
        rig.ok("GET LEDS").await,
        Some(Report::Leds([
            LedState::On,
            LedState::Off,
            LedState::Off,
            LedState::Off
        ])),
        "ready to read: LED 1 steady"
    );
    rig.ok("CARD INSERT visa_credit_01").await;
    let (_ecr, evs) = driver.await.unwrap();
    assert!(
        matches!(evs.first(), Some(EcrEvent::Accepted { .. })),
        "{evs:?}"
    );
    assert!(
        matches!(evs.last(), Some(EcrEvent::Completed { .. })),
        "{evs:?}"
    );
    assert_eq!(status_result(&evs), Some(0x00), "{evs:?}");
    rig.wait_display("REFUND APPROVED").await;

    // The acquirer saw one refund request and approved it.
    let msgs = w.host_messages();
    let refund_reqs: Vec<_> = msgs.iter().filter(|m| m.starts_with("in 0200")).collect();
    assert_eq!(refund_reqs.len(), 1, "{msgs:?}");
    assert!(refund_reqs[0].contains("4=000000001000"), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("out 0210") && m.ends_with("39=00"))
    );

    // Receipts came out of the terminal's printer; GET PRINTER pages through them.
    let Some(Report::State(st)) = rig.ok("GET STATE").await else {
        panic!()
    };
    assert!(st.power);
    assert_eq!(st.card.as_ref().map(|c| c.as_str()), Some("visa_credit_01"));
    assert!(st.printed > 0);
    let mut printed = Vec::new();
    while (printed.len() as u32) < st.printed {
        let Some(Report::Printer { offset, bytes }) =
            rig.ok(&format!("GET PRINTER {}", printed.len())).await
        else {
            panic!()
        };
        assert_eq!(offset as usize, printed.len());
        assert!(!bytes.is_empty());
        printed.extend(bytes);
    }
    let text = String::from_utf8_lossy(&printed);
    assert!(text.contains("REFUND"), "{text}");
    assert!(text.contains("10.00"), "{text}");
    assert!(
        !text.contains("4111111111111111"),
        "no full PAN on a receipt"
    );
    // The PRINTER events carried the same bytes.
    let from_events: Vec<u8> = rig
        .events
        .iter()
        .filter_map(|r| match r {
            Report::Printer { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(from_events, printed);
    rig.ok("CARD REMOVE").await;

    emu.stop().await;
    // The journal on disk: the refund approved, nothing pending.
    let j = w.journal();
    let r = refunds(&j);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, Outcome::Approved);
    assert!(j.pending.is_empty());
    let ledger = w.host.lock().unwrap().ledger().records().len();
    assert_eq!(ledger, 2, "the preloaded sale and the refund");
}

/// A CUP keypad refund driven only through the rig link: sign-on from the menu, supervisor
/// password, a swipe, the original's RRN and date, the amount — then the display, the printer
/// (GB18030 Chinese), the LEDs and the beeper read back, and the advice acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypad_refund_over_the_rig_link() {
    let mut spec = Spec::new("cup-zh-cny.yaml");
    spec.journal = Some("cup-open-batch.yaml");
    spec.fees = Some("cny-0.6pct.yaml");
    let w = setup(&spec).await;
    let emu = start(&w, &spec).await;
    let mut rig = Rig::connect(emu.signals_addr.unwrap()).await;
    assert!(
        matches!(rig.ok("GET DISPLAY").await, Some(Report::Display { lines }) if lines.iter().any(|l| l.contains("欢迎光临")))
    );
    assert_eq!(
        rig.ok("GET LEDS").await,
        Some(Report::Leds([
            LedState::Blink,
            LedState::Off,
            LedState::Off,
            LedState::Off
        ])),
        "idle: LED 1 blinking"
    );
    // Manual sign-on (MENU 5).
    rig.ok("KEYS 20 MENU 5 ENTER").await;
    rig.wait_display("签到成功").await;
    rig.ok("KEY ENTER").await;
    // Refund (MENU 3), supervisor password, card, original, amount 33.33.
    rig.ok("KEYS 0 MENU 3 ENTER 1 2 3 4 5 6 ENTER").await;
    rig.wait_display("请刷卡").await;
    assert_eq!(
        rig.req(parse_request("CARD SWIPE no_such_card")).await,
        Err((ErrCode::NoCard, "no card fixture no_such_card".into()))
    );
    assert!(matches!(
        rig.req(parse_request("CARD REMOVE")).await,
        Err((ErrCode::State, _))
    ));
    rig.ok("CARD SWIPE unionpay_magstripe_01").await;
    rig.wait_display("原参考号").await;
    rig.ok("KEYS 0 0 0 0 0 0 0 0 0 0 1 0 1 ENTER 1 1 2 6 ENTER 3 3 3 3 ENTER")
        .await;
    rig.wait_display("33.33").await;
    rig.ok("KEY ENTER").await;
    rig.wait_display("退货成功").await;

    // The advice (0220) went and was answered 00.
    let msgs = w.host_messages();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("in 0220") && m.contains("4=000000003333")),
        "{msgs:?}"
    );
    // Printer: both copies, in GB18030 (退货 = CD CB BB F5).
    let Some(Report::State(st)) = rig.ok("GET STATE").await else {
        panic!()
    };
    let mut printed = Vec::new();
    while (printed.len() as u32) < st.printed {
        let Some(Report::Printer { bytes, .. }) =
            rig.ok(&format!("GET PRINTER {}", printed.len())).await
        else {
            panic!()
        };
        printed.extend(bytes);
    }
    assert!(
        printed.windows(4).any(|w| w == [0xCD, 0xCB, 0xBB, 0xF5]),
        "退货 in GB18030"
    );
    let beeps = rig
        .events
        .iter()
        .filter(|r| matches!(r, Report::Beep { .. }))
        .count() as u32;
    assert!(beeps > 0);
    assert_eq!(
        rig.ok("GET BEEPER").await,
        Some(Report::Beeper {
            last: rig.events.iter().rev().find_map(|r| match r {
                Report::Beep { tone, .. } => Some(*tone),
                _ => None,
            }),
            count: beeps
        })
    );
    emu.stop().await;
    let j = w.journal();
    let r = refunds(&j);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, Outcome::Approved);
    assert!(j.pending.is_empty());
}

async fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    tokio::time::timeout(LIMIT, r.read_line(&mut s))
        .await
        .expect("no line")
        .unwrap();
    s
}

/// Garbage on the rig link gets one error line per bad line, and the next good line works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_rig_link_lines_get_error_lines() {
    let spec = Spec::new("zvt-en-eur.yaml");
    let w = setup(&spec).await;
    let emu = start(&w, &spec).await;
    let mut s = BufReader::new(TcpStream::connect(emu.signals_addr.unwrap()).await.unwrap());
    assert!(
        read_line(&mut s)
            .await
            .starts_with("!0 BOOT 1 posrig-emulator/")
    );
    let cases: [(&[u8], &str); 6] = [
        (b"@2 KEY 5 *00\n", "ERR - CHECKSUM "),
        (b"key 5\n", "ERR - NOTFRAMED "),
        (b"@3 KEY\xff 5 *00\n", "ERR - BADLINE "),
        (b"@\n", "ERR - BADLINE "),
        (b"ACK 1 *58\n", "ERR - BADLINE "),
        // A valid frame with an unknown verb: the number is trusted.
        (b"@20 KEY 55 *89\n", "ERR 20 BADARG "),
    ];
    for (line, want) in cases {
        s.get_mut().write_all(line).await.unwrap();
        let got = read_line(&mut s).await;
        assert!(
            got.starts_with(want),
            "{:?} → {got:?}",
            String::from_utf8_lossy(line)
        );
    }
    // 3000 bytes without a newline: one TOOLONG, then the line after the next LF is read.
    s.get_mut().write_all(&[b'x'; 3000]).await.unwrap();
    s.get_mut().write_all(b"\n@2 PING *C9\n").await.unwrap();
    assert!(read_line(&mut s).await.starts_with("ERR - TOOLONG "));
    assert_eq!(read_line(&mut s).await, "ACK 2 *51\n");
    // Human mode for a person with nc.
    s.get_mut().write_all(b"mode human\n").await.unwrap();
    assert_eq!(read_line(&mut s).await, "ACK - *0C\n");
    s.get_mut().write_all(b"get power\n").await.unwrap();
    assert!(read_line(&mut s).await.starts_with("ACK - POWER ON "));
    emu.stop().await;
}

/// Malformed ZVT on the ECR port: answered `84 xx` (never a panic, never a hang), and the port
/// still serves the next command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_zvt_frames_get_84_and_the_port_keeps_working() {
    let mut spec = Spec::new("zvt-en-eur.yaml");
    spec.signed_on = true;
    let w = setup(&spec).await;
    let emu = start(&w, &spec).await;
    let mut ecr = Ecr::tcp(emu.ecr_addr.unwrap()).await;
    // An unknown command: 84 83 00.
    ecr.write_raw(&[0x0F, 0xEE, 0x00]).await;
    assert_eq!(ecr.read_raw(LIMIT).await, [0x84, 0x83, 0x00]);
    // A refund whose amount BMP is cut short: refused with an 84 code.
    ecr.write_raw(&[0x06, 0x31, 0x05, 0x12, 0x34, 0x56, 0x04, 0x00])
        .await;
    let got = ecr.read_raw(LIMIT).await;
    assert_eq!(got.first(), Some(&0x84), "{got:02X?}");
    // A wrong password: 84 37.
    let mut bad = eur_refund(100);
    if let Command::Refund(r) = &mut bad {
        r.password = Bcd::from_digits("000000").unwrap();
    }
    ecr.start(&bad).await;
    let evs = ecr.until(is_end).await;
    assert!(
        matches!(evs.last(), Some(EcrEvent::Refused { code: 0x37, .. })),
        "{evs:?}"
    );
    // A header announcing more than any APDU may hold: the stream cannot be trusted; the
    // terminal drops what it had and stays up. A new connection works.
    ecr.write_raw(&[0x06, 0x31, 0xFF, 0xFF, 0xFF]).await;
    drop(ecr);
    let mut ecr = Ecr::tcp(emu.ecr_addr.unwrap()).await;
    ecr.start(&Command::StatusEnquiry(StatusEnquiry {
        password: Bcd::from_digits("123456"),
        ..Default::default()
    }))
    .await;
    let evs = ecr.until(is_end).await;
    assert!(
        matches!(evs.last(), Some(EcrEvent::EnquiryCompleted { .. })),
        "{evs:?}"
    );
    emu.stop().await;
    assert!(refunds(&w.journal()).is_empty());
}

/// Garbage from the acquirer after the request left: the outcome is unknown, so the refund is
/// reversed (0400) and the ECR hears a failure — no panic, no hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_garbage_is_an_unknown_outcome() {
    let mut spec = Spec::new("zvt-en-eur.yaml");
    spec.journal = Some("eur-open-batch.yaml");
    spec.signed_on = true;
    let w = setup(&spec).await;
    w.script(Directive::new().mti("0200").fault(Fault::Garbled));
    let emu = start(&w, &spec).await;
    let mut rig = Rig::connect(emu.signals_addr.unwrap()).await;
    let mut ecr = Ecr::tcp(emu.ecr_addr.unwrap()).await;
    ecr.start(&eur_refund(2500)).await;
    let driver = tokio::spawn(async move { ecr.until(is_end).await });
    rig.wait_display("SWIPE/INSERT/TAP").await;
    rig.ok("CARD INSERT visa_credit_01").await;
    let evs = driver.await.unwrap();
    // 06 1E with A1 "remote station does not respond": the outcome was unknown.
    assert!(
        matches!(evs.last(), Some(EcrEvent::Aborted { abort, .. }) if abort.result == 0xA1),
        "{evs:?}"
    );
    assert_eq!(status_result(&evs), Some(0xA1), "{evs:?}");
    // The reversal reached the acquirer and was answered; nothing stays pending.
    eventually("the reversal", || {
        w.host_messages()
            .iter()
            .any(|m| m.starts_with("out 0410") && m.ends_with("39=00"))
    })
    .await;
    eventually("the pending record is gone", || {
        w.journal().pending.is_empty()
    })
    .await;
    emu.stop().await;
    let j = w.journal();
    let r = refunds(&j);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, Outcome::Reversed);
    let msgs = w.host_messages();
    let firsts: Vec<_> = msgs.iter().filter(|m| m.starts_with("in ")).collect();
    assert!(firsts[0].starts_with("in 0200"), "{msgs:?}");
    assert!(firsts[1].starts_with("in 0400"), "{msgs:?}");
}

/// The acquirer is not there (connection refused): nothing left, so the refund is "not sent",
/// its reversal record is deleted and the terminal shows COMMS FAILED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_not_sent() {
    let mut spec = Spec::new("zvt-en-eur.yaml");
    spec.journal = Some("eur-open-batch.yaml");
    spec.signed_on = true;
    // A port that was just free: nobody listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    spec.host_override = Some(format!("tcp://{}", closed.local_addr().unwrap()));
    drop(closed);
    let w = setup(&spec).await;
    let emu = start(&w, &spec).await;
    let mut rig = Rig::connect(emu.signals_addr.unwrap()).await;
    let mut ecr = Ecr::tcp(emu.ecr_addr.unwrap()).await;
    ecr.start(&eur_refund(1000)).await;
    let driver = tokio::spawn(async move { ecr.until(is_end).await });
    rig.wait_display("SWIPE/INSERT/TAP").await;
    rig.ok("CARD INSERT visa_credit_01").await;
    let evs = driver.await.unwrap();
    ended_not_sent(&evs, &mut rig, emu, &w).await;
}

/// The refund ended "not sent": 06 1E A3 (no connection) to the ECR, COMMS FAILED on the
/// display, the record NotSent and no reversal record left.
async fn ended_not_sent(evs: &[EcrEvent], rig: &mut Rig, emu: Running, w: &Setup) {
    assert!(
        matches!(evs.last(), Some(EcrEvent::Aborted { abort, .. }) if abort.result == 0xA3),
        "{evs:?}"
    );
    rig.wait_display("COMMS FAILED").await;
    emu.stop().await;
    let j = w.journal();
    assert_eq!(refunds(&j)[0].outcome, Outcome::NotSent);
    assert!(j.pending.is_empty(), "not sent: the reversal record goes");
}

/// A loopback address where a connect hangs: a listener with a backlog of 1 that never
/// accepts. Once its accept queue is full, Linux drops further SYNs (the client retries until
/// its own timeout). The queue is filled until a probe connect does not complete, so the
/// returned address is known to hang; the listener and the held connections must stay alive.
async fn unanswered_listener() -> (
    tokio::net::TcpListener,
    Vec<TcpStream>,
    std::net::SocketAddr,
) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        // A loopback connect to a listener with room completes at once; one still pending
        // after half a second had its SYN dropped.
        match tokio::time::timeout(
            std::time::Duration::from_millis(500),
            TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("connect {addr}: {e}"),
            Err(_) => return (listener, held, addr),
        }
    }
    panic!("the accept queue of {addr} never filled");
}

fn display_of(r: Option<Report>) -> Vec<String> {
    match r {
        Some(Report::Display { lines }) => lines,
        other => panic!("not a display: {other:?}"),
    }
}

/// The acquirer's address takes no connection (SYNs dropped): while the terminal's connect
/// hangs, the terminal is live — the rig link answers, the ECR's 06 B0 is answered (refused:
/// the host is being contacted) — and the refund is still PROCESSING after all of it. When the
/// connect gives up at the host timeout nothing has left: "not sent", as with a refused
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_connect_keeps_the_terminal_live_and_ends_not_sent() {
    let mut spec = Spec::new("zvt-en-eur.yaml");
    spec.journal = Some("eur-open-batch.yaml");
    spec.signed_on = true;
    // The 60 s host timeout in 6 s of wall time: ample for what is checked meanwhile.
    spec.scale = 10.0;
    let (_listener, _held, addr) = unanswered_listener().await;
    spec.host_override = Some(format!("tcp://{addr}"));
    let w = setup(&spec).await;
    let emu = start(&w, &spec).await;
    let mut rig = Rig::connect(emu.signals_addr.unwrap()).await;
    let mut ecr = Ecr::tcp(emu.ecr_addr.unwrap()).await;
    ecr.start(&eur_refund(1000)).await;
    let evs = ecr.until(|e| matches!(e, EcrEvent::Accepted { .. })).await;
    assert!(
        matches!(evs.last(), Some(EcrEvent::Accepted { .. })),
        "{evs:?}"
    );
    rig.wait_display("SWIPE/INSERT/TAP").await;
    // The request is framed and the connect starts: the terminal shows PROCESSING.
    rig.ok("CARD INSERT visa_credit_01").await;
    let shown = display_of(rig.ok("GET DISPLAY").await);
    assert!(shown.iter().any(|l| l.contains("PROCESSING")), "{shown:?}");

    // The ECR port is served: 06 B0 answered 84 83 (the host is being contacted).
    ecr.abort().await;
    let evs = ecr
        .until(|e| {
            matches!(e, EcrEvent::AbortAnswered { .. } | EcrEvent::AbortNoAnswer) || is_end(e)
        })
        .await;
    assert_eq!(
        evs.last(),
        Some(&EcrEvent::AbortAnswered { code: Some(0x83) }),
        "{evs:?}"
    );
    // The rig link too: keys are taken (and ignored while processing), the LEDs read back.
    rig.ok("KEY 5").await;
    assert!(matches!(rig.ok("GET LEDS").await, Some(Report::Leds(_))));
    // All of that while the connect still hangs: the refund has not ended.
    let shown = display_of(rig.ok("GET DISPLAY").await);
    assert!(
        shown.iter().any(|l| l.contains("PROCESSING")),
        "the refund ended while the ECR and the rig link were being served: {shown:?}"
    );

    // The connect gives up at the host timeout: nothing left.
    let evs = ecr.until(is_end).await;
    ended_not_sent(&evs, &mut rig, emu, &w).await;
}

/// POWER OFF while the request is out (the acquirer holds its reply): the core and its RAM go,
/// the journal stays; POWER ON sends the reversal before anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_over_the_rig_link_recovers_from_the_journal() {
    let mut spec = Spec::new("zvt-en-eur.yaml");
    spec.journal = Some("eur-open-batch.yaml");
    spec.signed_on = true;
    let w = setup(&spec).await;
    w.script(Directive::new().mti("0200").fault(Fault::NoReply));
    let emu = start(&w, &spec).await;
    let mut rig = Rig::connect(emu.signals_addr.unwrap()).await;
    let mut ecr = Ecr::tcp(emu.ecr_addr.unwrap()).await;
    ecr.start(&eur_refund(1000)).await;
    let driver = tokio::spawn(async move {
        // The power cut takes the ECR's connection with it.
        while ecr.next().await.is_some() {}
    });
    rig.wait_display("SWIPE/INSERT/TAP").await;
    rig.ok("CARD INSERT visa_credit_01").await;
    eventually("the refund request at the acquirer", || {
        w.host_messages().iter().any(|m| m.starts_with("in 0200"))
    })
    .await;
    rig.ok("POWER OFF").await;
    driver.await.unwrap();
    assert!(matches!(
        rig.req(parse_request("KEY 1")).await,
        Err((ErrCode::State, _))
    ));
    assert_eq!(rig.ok("GET POWER").await, Some(Report::Power(false)));
    let j = w.journal();
    assert_eq!(j.pending.len(), 1, "the reversal record survived the cut");
    assert_eq!(j.pending[0].kind, PendingKind::Reversal);
    rig.ok("POWER ON").await;
    eventually("the reversal answered", || {
        w.host_messages().iter().any(|m| m.starts_with("out 0410"))
    })
    .await;
    eventually("nothing pending", || w.journal().pending.is_empty()).await;
    let msgs = w.host_messages();
    let ins: Vec<_> = msgs.iter().filter(|m| m.starts_with("in ")).collect();
    assert_eq!(ins.len(), 2, "{msgs:?}");
    assert!(ins[1].starts_with("in 0400"), "{msgs:?}");
    assert_eq!(refunds(&w.journal())[0].outcome, Outcome::Reversed);
    emu.stop().await;
}

/// Listeners stay on loopback unless `--listen-any` says otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_listeners_need_listen_any() {
    let spec = Spec::new("zvt-en-eur.yaml");
    let w = setup(&spec).await;
    let cfg = emulator::core::TerminalConfig::new(
        w.profile.clone(),
        &keys(),
        None,
        emulator::core::EcrLink::Tcp,
    )
    .unwrap();
    let r = Emulator::bind(EmulatorConfig {
        terminal: cfg,
        cards: cards(),
        journal: w.journal_path.clone(),
        durability: emulator::journal::sqlite::Durability::Full,
        ecr: Endpoint::Tcp("0.0.0.0:0".into()),
        signals: Endpoint::Tcp("127.0.0.1:0".into()),
        host: "tcp://127.0.0.1:9".into(),
        clock: protocol::time::WallClock::new(1.0),
        listen_any: false,
    })
    .await;
    assert!(
        matches!(
            r,
            Err(emulator::ports::runtime::RunError::Port(
                PortError::NotLoopback { .. }
            ))
        ),
        "{:?}",
        r.err()
    );
}

/// The core's deadlines run on the scaled clock: with `--time-scale 200` the 60 s host timeout
/// passes in a fraction of a second, the outcome is unknown and the reversal goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_timeout_runs_on_the_scaled_clock() {
    let mut spec = Spec::new("zvt-en-eur.yaml");
    spec.journal = Some("eur-open-batch.yaml");
    spec.signed_on = true;
    spec.scale = 200.0;
    let w = setup(&spec).await;
    w.script(Directive::new().mti("0200").fault(Fault::NoReply));
    let emu = start(&w, &spec).await;
    let mut rig = Rig::connect(emu.signals_addr.unwrap()).await;
    let mut ecr = Ecr::tcp(emu.ecr_addr.unwrap()).await;
    ecr.start(&eur_refund(1000)).await;
    let driver = tokio::spawn(async move { ecr.until(is_end).await });
    rig.wait_display("SWIPE/INSERT/TAP").await;
    rig.ok("CARD INSERT visa_credit_01").await;
    let evs = driver.await.unwrap();
    assert_eq!(status_result(&evs), Some(0xA1), "{evs:?}");
    eventually("the reversal answered", || {
        w.host_messages()
            .iter()
            .any(|m| m.starts_with("out 0410") && m.ends_with("39=00"))
    })
    .await;
    eventually("nothing pending", || w.journal().pending.is_empty()).await;
    emu.stop().await;
    assert_eq!(refunds(&w.journal())[0].outcome, Outcome::Reversed);
}
