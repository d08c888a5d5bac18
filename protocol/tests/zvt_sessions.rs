//! The ECR and PT sequencers talking to each other through both transports, with splits,
//! joins and line noise, on virtual time. Neither side needs a private ZVT peer.

use std::time::Duration;

use protocol::time::Instant;
use protocol::zvt::bmp::{Bcd, CardNumber, Password};
use protocol::zvt::command::{
    Abort, Authorization, Command, CommandKind, Completion, EnquiryCompletion, IntermediateStatus,
    OriginalRef, PrintLine, PrintTextBlock, Refund, Registration, StatusEnquiry, StatusInformation,
    TlvOnly,
};
use protocol::zvt::ecr::{EcrConfig, EcrEvent, EcrSession, EcrState, Reply, Times};
use protocol::zvt::link::{self, LinkConfig};
use protocol::zvt::pt::{PtConfig, PtEvent, PtSession, PtState};
use protocol::zvt::transport::Transport;

#[derive(Clone, Copy, Debug)]
enum Line {
    /// TCP, each write delivered as one read.
    TcpWhole,
    /// TCP, writes joined and re-split at random.
    TcpSplit,
    /// Serial, joined and re-split at random, noise between writes.
    SerialNoisy,
}

const LINES: [Line; 3] = [Line::TcpWhole, Line::TcpSplit, Line::SerialNoisy];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct Pair {
    ecr: EcrSession,
    pt: PtSession,
    now: Instant,
    line: Line,
    rng: Rng,
    ecr_events: Vec<EcrEvent>,
    pt_events: Vec<PtEvent>,
}

fn transport(line: Line) -> Transport {
    match line {
        Line::TcpWhole | Line::TcpSplit => Transport::tcp(),
        Line::SerialNoisy => Transport::serial(LinkConfig::default()),
    }
}

fn start() -> Instant {
    Instant::parse_rfc3339("2026-11-26T10:00:00+08:00").unwrap()
}

impl Pair {
    fn new(line: Line) -> Pair {
        Pair {
            ecr: EcrSession::new(transport(line), EcrConfig::default()),
            pt: PtSession::new(transport(line), PtConfig::default()),
            now: start(),
            line,
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            ecr_events: Vec::new(),
            pt_events: Vec::new(),
        }
    }

    /// Splits (and for serial, salts with noise) what one side wrote.
    fn carry(&mut self, writes: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        match self.line {
            Line::TcpWhole => writes,
            Line::TcpSplit | Line::SerialNoisy => {
                let mut joined = Vec::new();
                for w in writes {
                    if matches!(self.line, Line::SerialNoisy) && self.rng.below(2) == 0 {
                        // Noise never contains the link's control bytes.
                        let n = self.rng.below(4) + 1;
                        joined.extend((0..n).map(|i| 0x41 + i as u8));
                    }
                    joined.extend(w);
                }
                let mut out = Vec::new();
                let mut rest = &joined[..];
                while !rest.is_empty() {
                    let n = (self.rng.below(7) + 1).min(rest.len());
                    out.push(rest[..n].to_vec());
                    rest = &rest[n..];
                }
                out
            }
        }
    }

    /// Moves bytes both ways until both sides are quiet; collects events.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let now = self.now;
            let from_ecr: Vec<_> = std::iter::from_fn(|| self.ecr.poll_transmit(now)).collect();
            let from_pt: Vec<_> = std::iter::from_fn(|| self.pt.poll_transmit(now)).collect();
            if from_ecr.is_empty() && from_pt.is_empty() {
                break;
            }
            for chunk in self.carry(from_ecr) {
                self.pt.handle_input(&chunk, now);
            }
            for chunk in self.carry(from_pt) {
                self.ecr.handle_input(&chunk, now);
            }
            self.collect();
        }
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(e) = self.ecr.poll_event() {
            if !matches!(e, EcrEvent::Noise { .. }) {
                self.ecr_events.push(e);
            }
        }
        while let Some(e) = self.pt.poll_event() {
            if !matches!(e, PtEvent::Noise { .. }) {
                self.pt_events.push(e);
            }
        }
    }

    /// Jumps virtual time to the next deadline of either side and fires it.
    fn next_timeout(&mut self) -> Instant {
        let t = [self.ecr.poll_timeout(), self.pt.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("a deadline");
        self.now = t;
        self.ecr.handle_timeout(t);
        self.pt.handle_timeout(t);
        self.settle();
        t
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(t) = [self.ecr.poll_timeout(), self.pt.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .filter(|t| *t <= until)
        {
            self.now = t;
            self.ecr.handle_timeout(t);
            self.pt.handle_timeout(t);
            self.settle();
        }
        self.now = until;
    }

    fn take_ecr(&mut self) -> Vec<EcrEvent> {
        std::mem::take(&mut self.ecr_events)
    }
    fn take_pt(&mut self) -> Vec<PtEvent> {
        std::mem::take(&mut self.pt_events)
    }

    /// ECR sends `c`; returns the decoded command the PT app sees.
    fn ecr_sends(&mut self, c: &Command) -> Command {
        self.ecr.start(c, self.now).unwrap();
        self.settle();
        match self.take_pt().as_slice() {
            [PtEvent::Command { command, .. }] => command.clone().unwrap(),
            other => panic!("PT events {other:?}"),
        }
    }

    fn pt_accepts(&mut self) {
        self.pt.accept(self.now).unwrap();
        self.settle();
    }

    fn pt_sends(&mut self, cs: &[Command]) {
        for c in cs {
            self.pt.send(c, self.now).unwrap();
        }
        self.settle();
    }

    fn register(&mut self) {
        let reg = Command::Registration(Registration {
            password: pw(),
            config: 0xBE,
            currency: Some(978),
            tlv: Some(vec![]),
            ..Default::default()
        });
        assert_eq!(self.ecr_sends(&reg), reg);
        self.pt_accepts();
        // Registration's 06 0F goes straight after 80 00 00.
        self.pt_sends(&[Command::Completion(Completion {
            status_byte: Some(0x00),
            tid: Some(Bcd([0x52, 0x52, 0x35, 0x35])),
            currency: Some(978),
            ..Default::default()
        })]);
        let ev = self.take_ecr();
        assert!(matches!(
            ev.as_slice(),
            [
                EcrEvent::Accepted {
                    kind: CommandKind::Registration,
                    implicit: false
                },
                EcrEvent::Completed {
                    replied: Reply::Ack,
                    ..
                }
            ]
        ));
        assert_eq!(
            self.take_pt(),
            vec![
                PtEvent::EcrAcked {
                    kind: CommandKind::Completion
                },
                PtEvent::MasterReturned
            ]
        );
        assert!(self.pt.tlv_allowed() && self.pt.wants_intermediate_status());
    }
}

fn pw() -> Password {
    Password::from_digits("123456").unwrap()
}

fn refund_request() -> Command {
    // reference/zvt.md §2.3: 06 31 pw, 19.95 EUR, EUR, payment type 40; plus posrig's
    // private TLV naming the original and an ECR reference (1F1F).
    let mut r = Refund {
        password: pw(),
        amount_minor: Some(1995),
        currency: Some(978),
        payment_type: Some(0x40),
        ..Default::default()
    };
    r.set_original_ref(&OriginalRef::TraceBatch {
        trace: 975,
        batch: 1,
    })
    .unwrap();
    r.set_ecr_reference(b"R-0001").unwrap();
    Command::Refund(r)
}

fn status_info() -> Command {
    Command::from(StatusInformation {
        result: Some(0x00),
        amount_minor: Some(1995),
        currency: Some(978),
        trace: Bcd::from_u64(976),
        time: Some(Bcd([0x10, 0x00, 0x05])),
        date: Some(Bcd([0x11, 0x26])),
        receipt: Bcd::from_u64(232),
        payment_type: Some(0x60),
        tid: Some(Bcd([0x52, 0x52, 0x35, 0x35])),
        pan: CardNumber::from_digits("622202******7894"),
        card_type: Some(0x06),
        card_name: Some(b"MasterCard\0".to_vec()),
        ..Default::default()
    })
}

fn receipt() -> Command {
    Command::PrintTextBlock(PrintTextBlock::from_lines(
        2,
        &[b"REFUND", b"EUR 19.95", b"CUSTOMER COPY"],
    ))
}

#[test]
fn refund_flow_end_to_end_on_every_line() {
    for line in LINES {
        let mut p = Pair::new(line);
        p.register();
        let req = refund_request();
        let got = p.ecr_sends(&req);
        assert_eq!(got, req, "{line:?}");
        let Command::Refund(r) = &got else { panic!() };
        assert_eq!(
            r.original_ref().unwrap(),
            Some(OriginalRef::TraceBatch {
                trace: 975,
                batch: 1
            })
        );
        assert_eq!(r.ecr_reference().unwrap(), Some(&b"R-0001"[..]));
        p.pt_accepts();
        assert!(p.pt.is_master());
        assert_eq!(p.ecr.state(), EcrState::PtMaster(CommandKind::Refund));
        p.pt_sends(&[
            Command::IntermediateStatus(IntermediateStatus {
                status: 0x0A,
                timeout: Some(0x01),
                ..Default::default()
            }),
            Command::IntermediateStatus(IntermediateStatus::new(0x17)),
            status_info(),
            receipt(),
            Command::Completion(Completion::default()),
        ]);
        let ev = p.take_ecr();
        assert_eq!(ev.len(), 6, "{line:?}: {ev:?}");
        assert!(matches!(
            ev[0],
            EcrEvent::Accepted {
                kind: CommandKind::Refund,
                implicit: false
            }
        ));
        assert!(
            matches!(&ev[1], EcrEvent::Intermediate { status, replied: Reply::Ack } if status.status == 0x0A)
        );
        assert!(matches!(&ev[2], EcrEvent::Intermediate { status, .. } if status.status == 0x17));
        let EcrEvent::StatusInfo { info, replied } = &ev[3] else {
            panic!("{ev:?}")
        };
        assert_eq!(*replied, Reply::Ack);
        assert_eq!(Command::from((**info).clone()), status_info());
        let EcrEvent::PrintBlock { block, .. } = &ev[4] else {
            panic!()
        };
        assert_eq!(block.text_lines().unwrap()[1], b"EUR 19.95");
        assert!(matches!(ev[5], EcrEvent::Completed { .. }));
        assert!(p.ecr.is_idle());
        let pt = p.take_pt();
        assert_eq!(pt.len(), 6, "{pt:?}");
        assert_eq!(pt[5], PtEvent::MasterReturned);
        assert_eq!(p.pt.state(), PtState::Idle);
        assert_eq!(p.pt.announced_t4(), Duration::from_secs(60));
        if let Transport::Serial(l) = p.ecr.transport() {
            let s = l.stats();
            assert_eq!((s.frames_received, s.naks_sent), (8, 0));
        }
    }
}

#[test]
fn ecr_answers_04_0f_with_84_9c_and_the_pt_repeats_after_2_s() {
    for line in LINES {
        let mut p = Pair::new(line);
        p.ecr_sends(&refund_request());
        p.pt_accepts();
        p.ecr.set_reply(
            CommandKind::StatusInformation,
            Reply::Nack(0x9C),
            Times::Once,
        );
        p.pt_sends(&[status_info(), Command::Completion(Completion::default())]);
        let t0 = p.now;
        assert_eq!(p.take_pt(), vec![PtEvent::EcrBusy { attempt: 1 }]);
        let ev = p.take_ecr();
        assert!(matches!(
            &ev[1],
            EcrEvent::StatusInfo {
                replied: Reply::Nack(0x9C),
                ..
            }
        ));
        // Nothing happens until the repeat delay has passed.
        assert_eq!(p.next_timeout(), t0 + Duration::from_secs(2), "{line:?}");
        let ev = p.take_ecr();
        assert!(
            matches!(
                &ev[0],
                EcrEvent::StatusInfo {
                    replied: Reply::Ack,
                    ..
                }
            ),
            "{ev:?}"
        );
        assert!(matches!(&ev[1], EcrEvent::Completed { .. }));
        assert_eq!(
            p.take_pt(),
            vec![
                PtEvent::EcrAcked {
                    kind: CommandKind::StatusInformation
                },
                PtEvent::EcrAcked {
                    kind: CommandKind::Completion
                },
                PtEvent::MasterReturned
            ]
        );
    }
}

#[test]
fn repeated_84_9c_beyond_bmp_02_is_a_refusal() {
    let mut p = Pair::new(Line::TcpSplit);
    let auth = Command::Authorization(Authorization {
        amount_minor: Some(100),
        max_status_infos: Some(1),
        ..Default::default()
    });
    p.ecr_sends(&auth);
    p.pt_accepts();
    p.ecr.set_reply(
        CommandKind::StatusInformation,
        Reply::Nack(0x9C),
        Times::Always,
    );
    p.pt_sends(&[status_info(), Command::Completion(Completion::default())]);
    p.next_timeout();
    assert_eq!(
        p.take_pt(),
        vec![
            PtEvent::EcrBusy { attempt: 1 },
            PtEvent::EcrRefused {
                kind: CommandKind::StatusInformation,
                code: 0x9C,
                data: vec![],
                dropped: 1
            }
        ]
    );
    assert!(p.pt.is_master());
}

#[test]
fn unacknowledged_04_0f_times_out_and_the_pt_auto_reverses() {
    for line in LINES {
        let mut p = Pair::new(line);
        p.ecr_sends(&refund_request());
        p.pt_accepts();
        p.ecr
            .set_reply(CommandKind::StatusInformation, Reply::Silent, Times::Once);
        p.pt_sends(&[
            status_info(),
            receipt(),
            Command::Completion(Completion::default()),
        ]);
        p.take_ecr();
        assert_eq!(p.take_pt(), vec![]);
        let t0 = p.now;
        assert_eq!(p.next_timeout(), t0 + Duration::from_secs(5), "{line:?}");
        assert_eq!(
            p.take_pt(),
            vec![PtEvent::EcrTimeout {
                kind: CommandKind::StatusInformation,
                dropped: 2
            }]
        );
        // The emulator's reaction (DESIGN.md R-REV): 04 FF 05, then 06 1E.
        p.pt_sends(&[
            Command::IntermediateStatus(IntermediateStatus::new(0x05)),
            Command::Abort(Abort::new(0x6C)),
        ]);
        let ev = p.take_ecr();
        assert!(matches!(&ev[0], EcrEvent::Intermediate { status, .. } if status.status == 0x05));
        assert!(matches!(&ev[1], EcrEvent::Aborted { abort, .. } if abort.result == 0x6C));
        assert!(p.ecr.is_idle() && !p.pt.is_master());
    }
}

#[test]
fn ecr_refusals_of_status_info_and_print_line() {
    let mut p = Pair::new(Line::SerialNoisy);
    p.ecr_sends(&refund_request());
    p.pt_accepts();
    p.ecr
        .set_reply(CommandKind::PrintLine, Reply::Nack(0xCC), Times::Once);
    let line = Command::PrintLine(PrintLine {
        attribute: 0,
        text: b"REFUND".to_vec(),
    });
    p.pt_sends(&[line.clone(), line.clone()]);
    assert_eq!(
        p.take_pt(),
        vec![PtEvent::PrinterNotReady {
            kind: CommandKind::PrintLine,
            dropped: 1
        }]
    );
    p.ecr.set_reply(
        CommandKind::StatusInformation,
        Reply::Nack(0x6C),
        Times::Once,
    );
    p.pt_sends(&[status_info()]);
    assert_eq!(
        p.take_pt(),
        vec![PtEvent::EcrRefused {
            kind: CommandKind::StatusInformation,
            code: 0x6C,
            data: vec![],
            dropped: 0
        }]
    );
}

#[test]
fn t3_expires_when_the_pt_never_answers() {
    for line in LINES {
        let mut p = Pair::new(line);
        p.ecr.start(&refund_request(), p.now).unwrap();
        p.settle();
        let t0 = p.now;
        assert_eq!(p.next_timeout(), t0 + Duration::from_secs(5));
        assert_eq!(
            p.take_ecr(),
            vec![EcrEvent::NoAnswer {
                kind: CommandKind::Refund
            }]
        );
        assert!(p.ecr.is_idle());
    }
}

#[test]
fn t4_expires_and_the_ecr_aborts_with_06_b0() {
    let mut p = Pair::new(Line::TcpSplit);
    p.ecr_sends(&refund_request());
    p.pt_accepts();
    let t0 = p.now;
    assert_eq!(p.ecr.t4_deadline(), Some(t0 + Duration::from_secs(180)));
    // An 04 FF with a 1-minute timeout at +100 s sets T4 to 60 s from then.
    p.advance(Duration::from_secs(100));
    p.pt_sends(&[Command::IntermediateStatus(IntermediateStatus {
        status: 0x01,
        timeout: Some(0x01),
        ..Default::default()
    })]);
    p.take_ecr();
    p.take_pt();
    assert_eq!(p.next_timeout(), t0 + Duration::from_secs(160));
    assert_eq!(p.take_ecr(), vec![EcrEvent::T4Expired]);
    p.ecr.abort(p.now).unwrap();
    p.settle();
    assert!(matches!(
        p.take_pt().as_slice(),
        [PtEvent::AbortRequested { .. }]
    ));
    p.pt.answer_abort(true, p.now).unwrap();
    p.settle();
    assert_eq!(p.take_ecr(), vec![EcrEvent::AbortAnswered { code: None }]);
    p.pt_sends(&[Command::Abort(Abort::new(0x6C))]);
    assert!(matches!(
        p.take_ecr().as_slice(),
        [EcrEvent::Aborted { .. }]
    ));
    assert!(p.ecr.is_idle());
}

#[test]
fn command_while_pt_is_master_draws_84_83() {
    let mut p = Pair::new(Line::TcpWhole);
    p.ecr_sends(&refund_request());
    p.pt_accepts();
    // The ECR session refuses to send it; inject the bytes on the PT's input directly.
    assert!(p.ecr.start(&refund_request(), p.now).is_err());
    let now = p.now;
    p.pt.handle_input(&refund_request().to_bytes().unwrap(), now);
    assert_eq!(p.pt.poll_transmit(now), Some(vec![0x84, 0x83, 0x00]));
    assert!(matches!(
        p.pt.poll_event(),
        Some(PtEvent::UnexpectedCommand { .. })
    ));
    assert!(p.pt.is_master());
}

#[test]
fn refusal_log_off_and_status_enquiry() {
    for line in LINES {
        let mut p = Pair::new(line);
        p.register();
        // Refused command: ECR master again.
        p.ecr_sends(&refund_request());
        p.pt.refuse(0x83, p.now).unwrap();
        p.settle();
        assert_eq!(
            p.take_ecr(),
            vec![EcrEvent::Refused {
                kind: CommandKind::Refund,
                code: 0x83,
                data: vec![]
            }]
        );
        // Status enquiry: 06 0F decoded in context.
        let se = Command::StatusEnquiry(StatusEnquiry {
            password: Some(pw()),
            ..Default::default()
        });
        p.ecr_sends(&se);
        p.pt_accepts();
        let done = EnquiryCompletion {
            sw_version: Some(b"posrig 0.1".to_vec()),
            terminal_status: Some(0x00),
            ..Default::default()
        };
        p.pt_sends(&[Command::EnquiryCompletion(done.clone())]);
        let ev = p.take_ecr();
        assert_eq!(
            ev[1],
            EcrEvent::EnquiryCompleted {
                completion: done,
                replied: Reply::Ack
            }
        );
        p.take_pt();
        // Log-Off: answered 80 00 00 alone, TLV no longer permitted.
        p.ecr_sends(&Command::LogOff(TlvOnly::default()));
        p.pt_accepts();
        assert!(!p.pt.is_master() && p.ecr.is_idle());
        assert!(!p.pt.tlv_allowed());
        assert_eq!(p.pt.registration().unwrap().config, 0x86);
    }
}

#[test]
fn serial_frame_corruption_is_repaired_by_repeats() {
    let mut p = Pair::new(Line::SerialNoisy);
    p.ecr_sends(&refund_request());
    p.pt_accepts();
    p.pt.send(&status_info(), p.now).unwrap();
    // Corrupt the PT's first frame on the wire: the ECR NAKs, the PT repeats.
    let now = p.now;
    let mut frame = p.pt.poll_transmit(now).unwrap();
    let i = frame.len() / 2;
    frame[i] ^= 0x01;
    p.ecr.handle_input(&frame, now);
    p.settle();
    let ev = p.take_ecr();
    assert!(
        ev.iter().any(|e| matches!(e, EcrEvent::StatusInfo { .. })),
        "{ev:?}"
    );
    let Transport::Serial(l) = p.pt.transport() else {
        panic!()
    };
    assert_eq!(l.stats().naks_received, 1);
    assert_eq!(l.stats().repeats, 1);
    assert_eq!(
        p.take_pt(),
        vec![PtEvent::EcrAcked {
            kind: CommandKind::StatusInformation
        }]
    );
}

#[test]
fn serial_link_failure_reaches_the_pt_app() {
    let mut p = Pair::new(Line::SerialNoisy);
    p.ecr_sends(&refund_request());
    p.pt_accepts();
    p.pt.send(&status_info(), p.now).unwrap();
    // The line goes dead: the PT's frames never arrive.
    for _ in 0..3 {
        let now = p.now;
        while p.pt.poll_transmit(now).is_some() {}
        let t = p.pt.poll_timeout().unwrap();
        p.now = t;
        p.pt.handle_timeout(t);
    }
    p.collect();
    let ev = p.take_pt();
    assert!(
        ev.contains(&PtEvent::LinkFailed {
            kind: CommandKind::StatusInformation,
            dropped: 0
        }),
        "{ev:?}"
    );
    let _ = link::encode_frame(&[0x80, 0x00, 0x00]);
}
