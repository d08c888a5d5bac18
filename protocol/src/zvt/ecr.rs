//! The ECR (cash register) side of ZVT, sans-IO — what posrig's harness drives a terminal
//! with (SPEC-T 5.1, 4; reference/zvt.md §1.3, §2.2–2.3).
//!
//! ```text
//! start(06 31 …)  ──▶ PT             T3 (5 s) for the answer
//!   ◀── 80 00 00     EcrEvent::Accepted          PT is master; T4 (180 s) runs
//!   ◀── 84 xx 00     EcrEvent::Refused           ECR master again
//!   (nothing)        EcrEvent::NoAnswer
//!   ◀── 04 FF …      EcrEvent::Intermediate      answered per reply rules; restarts T4
//!   ◀── 04 0F …      EcrEvent::StatusInfo        (04 FF's timeout byte sets it)
//!   ◀── 06 D1 / D3   EcrEvent::PrintLine / PrintBlock
//!   ◀── 06 0F / 1E   EcrEvent::Completed / EnquiryCompleted / Aborted   ECR master again
//!   T4 passes        EcrEvent::T4Expired         (the harness may abort() with 06 B0)
//! ```
//!
//! T3 starts when the command is handed to TCP, or when a serial link confirms delivery
//! (ACK) — the link's own T2 and repeats come first, and a dead line is reported as
//! [`EcrEvent::LinkFailed`].
//!
//! Every PT message is answered by the **reply rules** — default `80 00 00` — which a test
//! harness overrides per message kind to inject faults:
//! ```
//! use protocol::zvt::command::CommandKind;
//! use protocol::zvt::ecr::{EcrSession, EcrConfig, Reply, Times};
//! use protocol::zvt::transport::Transport;
//! let mut ecr = EcrSession::new(Transport::tcp(), EcrConfig::default());
//! ecr.set_reply(CommandKind::StatusInformation, Reply::Nack(0x9C), Times::Once); // "please wait"
//! ecr.set_reply(CommandKind::PrintLine, Reply::Nack(0xCC), Times::Always);       // printer not ready
//! ecr.set_reply(CommandKind::Completion, Reply::Silent, Times::Once);            // never answer
//! ```
//! A PT message that arrives while the ECR still waits for its command's answer is taken as
//! an implicit acceptance (`Accepted { implicit: true }`), so a terminal that skips `80 00`
//! is both reported and followed. Messages after the end (or after T3/T4) are still answered
//! by the rules and reported.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Instant;
use crate::zvt::command::{
    Abort, Command, CommandError, CommandKind, Completion, Context, EncodeError, EnquiryCompletion,
    IntermediateStatus, PrintLine, PrintTextBlock, SetDateTime, StatusInformation,
};
use crate::zvt::link::LinkTrace;
use crate::zvt::tcp::TcpError;
use crate::zvt::transport::{Transport, TransportEvent};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcrConfig {
    /// Wait for `80 00` / `84 xx` after a command (SPEC-T: 5 s).
    pub t3: Duration,
    /// Wait for 06 0F / 06 1E once the PT is master, restarted by 04 FF / 04 0F (180 s).
    pub t4: Duration,
}

impl Default for EcrConfig {
    fn default() -> Self {
        EcrConfig {
            t3: Duration::from_secs(5),
            t4: Duration::from_secs(180),
        }
    }
}

/// How the ECR answers a PT message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `80 00 00`.
    Ack,
    /// `84 code 00`.
    Nack(u8),
    /// No answer at all.
    Silent,
    /// Any APDU (e.g. `84 9D 07 04 <amount>`).
    Raw(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Times {
    /// The next message of the kind only (before any `Always` rule).
    Once,
    /// Every message of the kind from now on (the latest `Always` rule wins).
    Always,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EcrEvent {
    /// The PT took the command (`80 00` / `84 00`, or implicitly by sending a message).
    Accepted {
        kind: CommandKind,
        implicit: bool,
    },
    /// `84 code …` to the command; the ECR is master again.
    Refused {
        kind: CommandKind,
        code: u8,
        data: Vec<u8>,
    },
    /// No answer within T3; the ECR is master again (on TCP, close the socket).
    NoAnswer {
        kind: CommandKind,
    },
    Intermediate {
        status: IntermediateStatus,
        replied: Reply,
    },
    StatusInfo {
        info: Box<StatusInformation>,
        replied: Reply,
    },
    PrintLine {
        line: PrintLine,
        replied: Reply,
    },
    PrintBlock {
        block: PrintTextBlock,
        replied: Reply,
    },
    SetDateTime {
        value: SetDateTime,
        replied: Reply,
    },
    Completed {
        completion: Completion,
        replied: Reply,
    },
    /// 06 0F answering a Status-Enquiry.
    EnquiryCompleted {
        completion: EnquiryCompletion,
        replied: Reply,
    },
    Aborted {
        abort: Abort,
        replied: Reply,
    },
    /// Any other PT message (answered by the rules).
    OtherMessage {
        command: Command,
        replied: Reply,
    },
    /// A PT message that does not decode (answered by the rules of its CLASS/INSTR).
    Undecodable {
        apdu: Vec<u8>,
        error: CommandError,
        replied: Reply,
    },
    /// The PT's answer to our 06 B0: `None` = `80 00`, `Some(code)` = `84 code`.
    AbortAnswered {
        code: Option<u8>,
    },
    AbortNoAnswer,
    /// T4 ran out while the PT was master. The session stays waiting; the harness may
    /// [`EcrSession::abort`] or [`EcrSession::reset`].
    T4Expired,
    /// `80 00` / `84 xx` when no command of ours waited for one.
    UnexpectedAnswer {
        apdu: Vec<u8>,
    },
    /// Serial: an APDU could not be delivered.
    LinkFailed {
        apdu: Vec<u8>,
    },
    Noise {
        bytes: Vec<u8>,
    },
    Link(LinkTrace),
    TransportBroken(TcpError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcrError {
    #[error("a command is running; only 06 B0 may be sent while the PT is master")]
    Busy,
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcrState {
    /// The ECR is master.
    Idle,
    /// Our command waits for `80 00` / `84 xx`.
    AwaitingAnswer(CommandKind),
    /// The PT is master, running our command of this kind.
    PtMaster(CommandKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Command,
    Abort,
    Reply,
}

/// The ECR end of one ZVT connection.
#[derive(Clone, Debug)]
pub struct EcrSession {
    transport: Transport,
    cfg: EcrConfig,
    state: EcrState,
    t3_deadline: Option<Instant>,
    t4_deadline: Option<Instant>,
    t4: Duration,
    abort_pending: bool,
    abort_deadline: Option<Instant>,
    rules: Vec<(CommandKind, Reply, Times)>,
    in_link: VecDeque<Sent>,
    events: VecDeque<EcrEvent>,
}

impl EcrSession {
    pub fn new(transport: Transport, cfg: EcrConfig) -> Self {
        let t4 = cfg.t4;
        EcrSession {
            transport,
            cfg,
            state: EcrState::Idle,
            t3_deadline: None,
            t4_deadline: None,
            t4,
            abort_pending: false,
            abort_deadline: None,
            rules: Vec::new(),
            in_link: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> EcrState {
        self.state
    }
    pub fn is_idle(&self) -> bool {
        self.state == EcrState::Idle
    }
    pub fn config(&self) -> &EcrConfig {
        &self.cfg
    }
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }
    /// When T4 runs out, while it runs.
    pub fn t4_deadline(&self) -> Option<Instant> {
        self.t4_deadline
    }

    /// How to answer PT messages of `kind` (see the module docs).
    pub fn set_reply(&mut self, kind: CommandKind, reply: Reply, times: Times) {
        self.rules.push((kind, reply, times));
    }
    /// Back to answering everything `80 00 00`.
    pub fn clear_replies(&mut self) {
        self.rules.clear();
    }

    fn reply_for(&mut self, kind: CommandKind) -> Reply {
        if let Some(i) = self
            .rules
            .iter()
            .position(|(k, _, t)| *k == kind && *t == Times::Once)
        {
            return self.rules.remove(i).1;
        }
        self.rules
            .iter()
            .rev()
            .find(|(k, _, _)| *k == kind)
            .map_or(Reply::Ack, |(_, r, _)| r.clone())
    }

    /// Forget the exchange in progress (new connection); reply rules stay.
    pub fn reset(&mut self) {
        self.transport.reset();
        self.state = EcrState::Idle;
        self.t3_deadline = None;
        self.t4_deadline = None;
        self.abort_pending = false;
        self.abort_deadline = None;
        self.in_link.clear();
    }

    // ---- commands ----

    /// Sends a command. While the PT is master only 06 B0 is allowed (see [`Self::abort`]).
    pub fn start(&mut self, c: &Command, now: Instant) -> Result<(), EcrError> {
        let b = c.to_bytes()?;
        self.start_apdu(b, now)
    }

    /// Sends any APDU as a command (malformed ones included, for fault injection).
    pub fn start_apdu(&mut self, apdu: Vec<u8>, now: Instant) -> Result<(), EcrError> {
        let kind = CommandKind::of_apdu(&apdu);
        match self.state {
            EcrState::Idle => {
                self.state = EcrState::AwaitingAnswer(kind);
                self.t3_deadline = self.t3_from(now);
                self.push(apdu, Sent::Command);
                Ok(())
            }
            EcrState::PtMaster(_) if kind == CommandKind::AbortFromEcr => {
                self.abort_pending = true;
                self.abort_deadline = self.t3_from(now);
                self.push(apdu, Sent::Abort);
                Ok(())
            }
            _ => Err(EcrError::Busy),
        }
    }

    /// 06 B0 while the PT is master (e.g. after T4, as CC-PRAEZ recommends).
    pub fn abort(&mut self, now: Instant) -> Result<(), EcrError> {
        if !matches!(self.state, EcrState::PtMaster(_)) {
            return Err(EcrError::Busy);
        }
        self.start(&Command::AbortFromEcr(Default::default()), now)
    }

    /// T3 for something handed to the transport now; on a serial line it starts at the
    /// link's ACK instead.
    fn t3_from(&self, now: Instant) -> Option<Instant> {
        (!self.transport.is_serial()).then(|| now + self.cfg.t3)
    }

    fn push(&mut self, apdu: Vec<u8>, what: Sent) {
        if self.transport.is_serial() {
            self.in_link.push_back(what);
        }
        self.transport.send_apdu(apdu);
    }

    // ---- I/O ----

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.transport.handle_input(bytes, now);
        self.drain(now);
    }

    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.transport.poll_transmit(now)
    }

    pub fn poll_event(&mut self) -> Option<EcrEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.t3_deadline,
            self.t4_deadline,
            self.abort_deadline,
            self.transport.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.transport.handle_timeout(now);
        self.drain(now);
        if let Some(d) = self.t3_deadline
            && now >= d
        {
            self.t3_deadline = None;
            if let EcrState::AwaitingAnswer(kind) = self.state {
                self.state = EcrState::Idle;
                self.events.push_back(EcrEvent::NoAnswer { kind });
            }
        }
        if let Some(d) = self.abort_deadline
            && now >= d
        {
            self.abort_deadline = None;
            self.abort_pending = false;
            self.events.push_back(EcrEvent::AbortNoAnswer);
        }
        if let Some(d) = self.t4_deadline
            && now >= d
        {
            self.t4_deadline = None;
            self.events.push_back(EcrEvent::T4Expired);
        }
    }

    fn drain(&mut self, now: Instant) {
        while let Some(e) = self.transport.poll_event() {
            match e {
                TransportEvent::Apdu(a) => self.on_apdu(a, now),
                TransportEvent::Delivered => match self.in_link.pop_front() {
                    Some(Sent::Command) if matches!(self.state, EcrState::AwaitingAnswer(_)) => {
                        self.t3_deadline = Some(now + self.cfg.t3);
                    }
                    Some(Sent::Abort) if self.abort_pending => {
                        self.abort_deadline = Some(now + self.cfg.t3);
                    }
                    _ => {}
                },
                TransportEvent::SendFailed { apdu } => {
                    match self.in_link.pop_front() {
                        Some(Sent::Command)
                            if matches!(self.state, EcrState::AwaitingAnswer(_)) =>
                        {
                            self.t3_deadline = None;
                            self.state = EcrState::Idle;
                        }
                        Some(Sent::Abort) => {
                            self.abort_pending = false;
                            self.abort_deadline = None;
                        }
                        _ => {}
                    }
                    self.events.push_back(EcrEvent::LinkFailed { apdu });
                }
                TransportEvent::Noise { bytes } => self.events.push_back(EcrEvent::Noise { bytes }),
                TransportEvent::Trace(t) => self.events.push_back(EcrEvent::Link(t)),
                TransportEvent::Broken(e) => self.events.push_back(EcrEvent::TransportBroken(e)),
            }
        }
    }

    fn on_apdu(&mut self, apdu: Vec<u8>, now: Instant) {
        let kind = CommandKind::of_apdu(&apdu);
        if kind.is_answer() {
            self.on_answer(apdu, now);
            return;
        }
        if let EcrState::AwaitingAnswer(k) = self.state {
            self.accepted(k, true, now);
        }
        let started = match self.state {
            EcrState::PtMaster(k) | EcrState::AwaitingAnswer(k) => Some(k),
            EcrState::Idle => None,
        };
        let ctx = started.map_or(Context::None, Context::Answering);
        let replied = self.reply_for(kind);
        match &replied {
            Reply::Ack => self.reply(Command::Ack),
            Reply::Nack(code) => self.reply(Command::nack(*code)),
            Reply::Silent => {}
            Reply::Raw(b) => self.push(b.clone(), Sent::Reply),
        }
        let command = match Command::decode(&apdu, ctx) {
            Ok(c) => c,
            Err(error) => {
                self.events.push_back(EcrEvent::Undecodable {
                    apdu,
                    error,
                    replied,
                });
                if kind.ends_transaction() {
                    self.finish();
                }
                return;
            }
        };
        let ev = match command {
            Command::IntermediateStatus(status) => {
                self.restart_t4(status.t4(), now);
                EcrEvent::Intermediate { status, replied }
            }
            Command::StatusInformation(info) => {
                self.restart_t4(None, now);
                EcrEvent::StatusInfo { info, replied }
            }
            Command::PrintLine(line) => EcrEvent::PrintLine { line, replied },
            Command::PrintTextBlock(block) => EcrEvent::PrintBlock { block, replied },
            Command::SetDateTime(value) => EcrEvent::SetDateTime { value, replied },
            Command::Completion(completion) => {
                self.finish();
                EcrEvent::Completed {
                    completion,
                    replied,
                }
            }
            Command::EnquiryCompletion(completion) => {
                self.finish();
                EcrEvent::EnquiryCompleted {
                    completion,
                    replied,
                }
            }
            Command::Abort(abort) => {
                self.finish();
                EcrEvent::Aborted { abort, replied }
            }
            command => EcrEvent::OtherMessage { command, replied },
        };
        self.events.push_back(ev);
    }

    fn reply(&mut self, c: Command) {
        // Ack/Nack without data always encode.
        if let Ok(b) = c.to_bytes() {
            self.push(b, Sent::Reply);
        }
    }

    fn restart_t4(&mut self, announced: Option<Duration>, now: Instant) {
        if let Some(t) = announced {
            self.t4 = t;
        }
        if matches!(self.state, EcrState::PtMaster(_)) {
            self.t4_deadline = Some(now + self.t4);
        }
    }

    fn accepted(&mut self, kind: CommandKind, implicit: bool, now: Instant) {
        self.t3_deadline = None;
        self.t4 = self.cfg.t4;
        if kind.awaits_completion() || implicit {
            self.state = EcrState::PtMaster(kind);
            self.t4_deadline = Some(now + self.t4);
        } else {
            self.state = EcrState::Idle;
        }
        self.events.push_back(EcrEvent::Accepted { kind, implicit });
    }

    fn finish(&mut self) {
        self.state = EcrState::Idle;
        self.t3_deadline = None;
        self.t4_deadline = None;
        self.abort_deadline = None;
        self.abort_pending = false;
    }

    fn on_answer(&mut self, apdu: Vec<u8>, now: Instant) {
        let positive = apdu.first() == Some(&0x80) || apdu.get(1) == Some(&0x00);
        let code = apdu.get(1).copied().unwrap_or(0);
        match self.state {
            EcrState::AwaitingAnswer(kind) => {
                if positive {
                    self.accepted(kind, false, now);
                } else {
                    self.t3_deadline = None;
                    self.state = EcrState::Idle;
                    let data = crate::zvt::Apdu::decode_exact(&apdu)
                        .map(|a| a.data.to_vec())
                        .unwrap_or_default();
                    self.events
                        .push_back(EcrEvent::Refused { kind, code, data });
                }
            }
            EcrState::PtMaster(_) if self.abort_pending => {
                self.abort_pending = false;
                self.abort_deadline = None;
                self.events.push_back(EcrEvent::AbortAnswered {
                    code: (!positive).then_some(code),
                });
            }
            _ => self.events.push_back(EcrEvent::UnexpectedAnswer { apdu }),
        }
    }
}
