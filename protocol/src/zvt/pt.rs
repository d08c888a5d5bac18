//! The PT (payment terminal) side of ZVT's master/slave exchange, sans-IO — what posrig's
//! emulator speaks to an ECR (SPEC-T 5.1, SPEC-C 2.x; reference/zvt.md §2.2–2.3).
//!
//! ```text
//! ECR → PT   06 31 …            PtEvent::Command      app: accept() → 80 00 00, PT is master
//!                                                      or refuse(code) → 84 code 00
//! PT  → ECR  04 FF / 04 0F / 06 D1 / 06 D3 / 04 01     app: send(); one at a time, each
//!            ← 80 00 00          PtEvent::EcrAcked     after the ECR's answer to the last
//!            ← 84 xx 00          PtEvent::EcrRefused / PrinterNotReady (queue dropped)
//!            (nothing, T3)       PtEvent::EcrTimeout                (queue dropped)
//! PT  → ECR  06 0F | 06 1E      ← 80 00 00           PtEvent::MasterReturned
//! ```
//!
//! Rules this session applies (each a choice where the spec leaves room):
//! - The app answers every ECR command ([`PtSession::accept`] / [`PtSession::refuse`]);
//!   the session never answers a command on its own, except one that arrives while the PT
//!   is master: SPEC-T forbids it, and the session answers it `84 83 00` ("function not
//!   possible") at once and reports [`PtEvent::UnexpectedCommand`], rather than ignoring it
//!   and leaving the ECR to its T3. The exception is **06 B0** (abort), which goes to the
//!   app as [`PtEvent::AbortRequested`]; the app answers with
//!   [`PtSession::answer_abort`] (`80 00 00`, then its own 06 1E, or `84 83 00` when it is
//!   too late, CC-PRAEZ).
//! - A second command while the app is still deciding on the first replaces it (an ECR
//!   whose T3 ran out sends anew); the answer goes to the latest.
//! - Each PT message waits for the ECR's answer for `answer_timeout` (T3, 5 s); on a
//!   serial line the wait starts when the link confirms delivery (ACK), so the link's own
//!   T2 and repeats run first and a dead line is reported as [`PtEvent::LinkFailed`]. A refusal or a timeout drops the messages the app
//!   queued behind it and reports how many: the app decides what follows (auto-reversal,
//!   then 06 1E — DESIGN.md R-REV).
//! - `84 9C` to a 04 0F: the session repeats the same 04 0F after `status_repeat_delay`
//!   (2 s), as often as BMP 02 of the command allowed, or `default_max_status_infos` (3,
//!   UNVERIFIED) when it had none; one more `84 9C` counts as a refusal.
//! - `84 00` counts as positive (SPEC-T 5.2.3).
//! - Registration state (config byte, currency, TLV permitted, permitted commands of TLV
//!   26) lives here: the session records it when the app accepts a 06 00 and resets it on
//!   an accepted 06 02 (config byte 0x86, no TLV). The app reads it with
//!   [`PtSession::registration`], [`PtSession::tlv_allowed`] etc.; the session does not
//!   stop the app sending what the ECR did not ask for (a test may want exactly that).
//! - T4 is the ECR's timer; the session tracks the value the PT announced in its last
//!   04 FF timeout byte ([`PtSession::announced_t4`]).

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Instant;
use crate::zvt::command::{Command, CommandError, CommandKind, Context, EncodeError, config};
use crate::zvt::link::LinkTrace;
use crate::zvt::tcp::TcpError;
use crate::zvt::transport::{Transport, TransportEvent};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtConfig {
    /// How long the PT waits for the ECR's `80 00` / `84 xx` to each of its messages.
    pub answer_timeout: Duration,
    /// Wait before repeating a 04 0F the ECR answered with `84 9C` (SPEC-C: 2 s).
    pub status_repeat_delay: Duration,
    /// `84 9C` answers allowed when the command carried no BMP 02 (UNVERIFIED default 3).
    pub default_max_status_infos: u8,
    /// The ECR's T4 unless an 04 FF announces another (SPEC-T: 180 s).
    pub default_t4: Duration,
}

impl Default for PtConfig {
    fn default() -> Self {
        PtConfig {
            answer_timeout: Duration::from_secs(5),
            status_repeat_delay: Duration::from_secs(2),
            default_max_status_infos: 3,
            default_t4: Duration::from_secs(180),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PtEvent {
    /// An ECR command; answer with [`PtSession::accept`] or [`PtSession::refuse`]
    /// (for a decode error, [`CommandError::refusal_code`] suggests the code).
    Command {
        apdu: Vec<u8>,
        command: Result<Command, CommandError>,
    },
    /// 06 B0 while the PT is master; answer with [`PtSession::answer_abort`].
    AbortRequested {
        apdu: Vec<u8>,
        command: Result<Command, CommandError>,
    },
    /// The ECR answered the message of this kind positively.
    EcrAcked {
        kind: CommandKind,
    },
    /// The ECR answered `84 code …`; `dropped` queued messages were discarded.
    EcrRefused {
        kind: CommandKind,
        code: u8,
        data: Vec<u8>,
        dropped: usize,
    },
    /// `84 CC` to 06 D1 / 06 D3.
    PrinterNotReady {
        kind: CommandKind,
        dropped: usize,
    },
    /// `84 9C` to 04 0F: it goes again after the repeat delay (`attempt` = repeats so far).
    EcrBusy {
        attempt: u8,
    },
    /// The ECR never answered the message of this kind.
    EcrTimeout {
        kind: CommandKind,
        dropped: usize,
    },
    /// Serial: a message could not be delivered at all.
    LinkFailed {
        kind: CommandKind,
        dropped: usize,
    },
    /// The 06 0F / 06 1E went out and is answered (or never will be): the ECR is master.
    MasterReturned,
    /// A command while the PT was master; answered `84 83 00`.
    UnexpectedCommand {
        apdu: Vec<u8>,
    },
    /// `80 00` / `84 xx` when nothing waited for one.
    UnexpectedAnswer {
        apdu: Vec<u8>,
    },
    Noise {
        bytes: Vec<u8>,
    },
    Link(LinkTrace),
    /// TCP stream corrupt: close the connection, then [`PtSession::reset`].
    TransportBroken(TcpError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PtError {
    #[error("no ECR command is waiting for an answer")]
    NotDeciding,
    #[error("the PT is not master")]
    NotMaster,
    #[error("no 06 B0 is waiting for an answer")]
    NoAbortPending,
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// What the ECR said at Registration (06 00), until Log-Off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationState {
    pub config: u8,
    pub currency: Option<u16>,
    /// The ECR sent BMP 06: the PT may send TLV until Log-Off.
    pub tlv_permitted: bool,
    /// TLV 26: commands the PT may send (e.g. `[0x06, 0xD3]`).
    pub permitted_commands: Vec<[u8; 2]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtState {
    /// The ECR is master; no command pending.
    Idle,
    /// A command waits for the app's answer.
    Deciding(CommandKind),
    /// The PT is master.
    Master,
}

#[derive(Clone, Debug)]
struct Pending {
    kind: CommandKind,
    command: Option<Command>,
}

#[derive(Clone, Debug)]
struct Outstanding {
    kind: CommandKind,
    apdu: Vec<u8>,
    deadline: Option<Instant>,
    repeat_at: Option<Instant>,
    busy_answers: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Message,
    Response,
}

/// The PT end of one ZVT connection.
#[derive(Clone, Debug)]
pub struct PtSession {
    transport: Transport,
    cfg: PtConfig,
    state: PtState,
    pending: Option<Pending>,
    outbox: VecDeque<(CommandKind, Vec<u8>)>,
    outstanding: Option<Outstanding>,
    /// Serial: what each frame handed to the link was, for matching Delivered/SendFailed.
    in_link: VecDeque<Sent>,
    events: VecDeque<PtEvent>,
    registration: Option<RegistrationState>,
    request_tlv: bool,
    max_status_infos: u8,
    announced_t4: Duration,
    abort_pending: bool,
}

impl PtSession {
    pub fn new(transport: Transport, cfg: PtConfig) -> Self {
        let t4 = cfg.default_t4;
        let msi = cfg.default_max_status_infos;
        PtSession {
            transport,
            cfg,
            state: PtState::Idle,
            pending: None,
            outbox: VecDeque::new(),
            outstanding: None,
            in_link: VecDeque::new(),
            events: VecDeque::new(),
            registration: None,
            request_tlv: false,
            max_status_infos: msi,
            announced_t4: t4,
            abort_pending: false,
        }
    }

    pub fn state(&self) -> PtState {
        self.state
    }
    pub fn is_master(&self) -> bool {
        self.state == PtState::Master
    }
    pub fn config(&self) -> &PtConfig {
        &self.cfg
    }
    pub fn transport(&self) -> &Transport {
        &self.transport
    }
    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.transport
    }
    pub fn registration(&self) -> Option<&RegistrationState> {
        self.registration.as_ref()
    }
    /// The PT may send TLV: the ECR sent BMP 06 at Registration (until Log-Off) or in the
    /// running command.
    pub fn tlv_allowed(&self) -> bool {
        self.request_tlv || self.registration.as_ref().is_some_and(|r| r.tlv_permitted)
    }
    /// Config bit 0x08: the ECR wants 04 FF.
    pub fn wants_intermediate_status(&self) -> bool {
        self.registration
            .as_ref()
            .is_some_and(|r| r.config & config::INTERMEDIATE_STATUS != 0)
    }
    /// The ECR listed `class instr` in TLV 26 (e.g. 06 D3 block printing).
    pub fn command_permitted(&self, code: [u8; 2]) -> bool {
        self.registration
            .as_ref()
            .is_some_and(|r| r.permitted_commands.contains(&code))
    }
    /// T4 as the PT last announced it (04 FF timeout byte), else the default.
    pub fn announced_t4(&self) -> Duration {
        self.announced_t4
    }
    /// Messages queued behind the one in flight.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// Forget the exchange in progress (new connection). Registration state is kept: it
    /// holds until Log-Off, not per connection.
    pub fn reset(&mut self) {
        self.transport.reset();
        self.state = PtState::Idle;
        self.pending = None;
        self.outbox.clear();
        self.outstanding = None;
        self.in_link.clear();
        self.abort_pending = false;
        self.request_tlv = false;
    }

    // ---- input ----

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.transport.handle_input(bytes, now);
        self.drain(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.transport.handle_timeout(now);
        self.drain(now);
        let deadline = self.answer_deadline(now);
        let Some(o) = &mut self.outstanding else {
            return;
        };
        if let Some(at) = o.repeat_at
            && now >= at
        {
            o.repeat_at = None;
            o.deadline = deadline;
            let apdu = o.apdu.clone();
            self.push_to_transport(apdu, Sent::Message);
        } else if let Some(d) = o.deadline
            && now >= d
        {
            let kind = o.kind;
            let dropped = self.fail_outstanding();
            self.events.push_back(PtEvent::EcrTimeout { kind, dropped });
            self.after_final(kind);
            self.pump(now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = self
            .outstanding
            .as_ref()
            .and_then(|o| o.repeat_at.or(o.deadline));
        match (own, self.transport.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.transport.poll_transmit(now)
    }

    pub fn poll_event(&mut self) -> Option<PtEvent> {
        self.events.pop_front()
    }

    fn drain(&mut self, now: Instant) {
        while let Some(e) = self.transport.poll_event() {
            match e {
                TransportEvent::Apdu(a) => self.on_apdu(a, now),
                TransportEvent::Delivered => {
                    if self.in_link.pop_front() == Some(Sent::Message)
                        && let Some(o) = &mut self.outstanding
                        && o.repeat_at.is_none()
                    {
                        o.deadline = Some(now + self.cfg.answer_timeout);
                    }
                }
                TransportEvent::SendFailed { apdu } => {
                    let was = self.in_link.pop_front();
                    let kind = CommandKind::of_apdu(&apdu);
                    if was == Some(Sent::Message) && self.outstanding.is_some() {
                        let dropped = self.fail_outstanding();
                        self.events.push_back(PtEvent::LinkFailed { kind, dropped });
                        self.after_final(kind);
                    } else {
                        self.events
                            .push_back(PtEvent::LinkFailed { kind, dropped: 0 });
                    }
                }
                TransportEvent::Noise { bytes } => self.events.push_back(PtEvent::Noise { bytes }),
                TransportEvent::Trace(t) => self.events.push_back(PtEvent::Link(t)),
                TransportEvent::Broken(e) => self.events.push_back(PtEvent::TransportBroken(e)),
            }
        }
        self.pump(now);
    }

    fn on_apdu(&mut self, apdu: Vec<u8>, now: Instant) {
        let kind = CommandKind::of_apdu(&apdu);
        if kind.is_answer() {
            match &self.outstanding {
                Some(o) if o.repeat_at.is_none() => self.on_answer(apdu, now),
                _ => self.events.push_back(PtEvent::UnexpectedAnswer { apdu }),
            }
            return;
        }
        let command = Command::decode(&apdu, Context::None);
        match self.state {
            PtState::Idle | PtState::Deciding(_) => {
                self.state = PtState::Deciding(kind);
                self.pending = Some(Pending {
                    kind,
                    command: command.as_ref().ok().cloned(),
                });
                self.events.push_back(PtEvent::Command { apdu, command });
            }
            PtState::Master if kind == CommandKind::AbortFromEcr => {
                self.abort_pending = true;
                self.events
                    .push_back(PtEvent::AbortRequested { apdu, command });
            }
            PtState::Master => {
                self.respond(Command::nack(0x83));
                self.events.push_back(PtEvent::UnexpectedCommand { apdu });
            }
        }
    }

    fn on_answer(&mut self, apdu: Vec<u8>, now: Instant) {
        let Some(o) = &mut self.outstanding else {
            return;
        };
        let kind = o.kind;
        let positive = apdu.first() == Some(&0x80) || apdu.get(1) == Some(&0x00);
        if positive {
            self.outstanding = None;
            self.events.push_back(PtEvent::EcrAcked { kind });
            self.after_final(kind);
            self.pump(now);
            return;
        }
        let code = apdu.get(1).copied().unwrap_or(0);
        if code == 0x9C
            && kind == CommandKind::StatusInformation
            && o.busy_answers < self.max_status_infos
        {
            o.busy_answers += 1;
            o.deadline = None;
            o.repeat_at = Some(now + self.cfg.status_repeat_delay);
            let attempt = o.busy_answers;
            self.events.push_back(PtEvent::EcrBusy { attempt });
            return;
        }
        let data = match crate::zvt::Apdu::decode_exact(&apdu) {
            Ok(a) => a.data.to_vec(),
            Err(_) => apdu.get(3..).unwrap_or(&[]).to_vec(),
        };
        let dropped = self.fail_outstanding();
        let printing = matches!(kind, CommandKind::PrintLine | CommandKind::PrintTextBlock);
        self.events.push_back(if code == 0xCC && printing {
            PtEvent::PrinterNotReady { kind, dropped }
        } else {
            PtEvent::EcrRefused {
                kind,
                code,
                data,
                dropped,
            }
        });
        self.after_final(kind);
    }

    /// Clears the message in flight and the queue; returns how many queued were dropped.
    fn fail_outstanding(&mut self) -> usize {
        self.outstanding = None;
        let n = self.outbox.len();
        self.outbox.clear();
        n
    }

    fn after_final(&mut self, kind: CommandKind) {
        if kind.ends_transaction() && self.state == PtState::Master {
            self.state = PtState::Idle;
            self.outbox.clear();
            self.request_tlv = false;
            self.abort_pending = false;
            self.events.push_back(PtEvent::MasterReturned);
        }
    }

    /// T3 for a message handed to the transport now. On a serial line it starts only when
    /// the link confirms delivery (the link's own T2/repeats come first).
    fn answer_deadline(&self, now: Instant) -> Option<Instant> {
        (!self.transport.is_serial()).then(|| now + self.cfg.answer_timeout)
    }

    fn push_to_transport(&mut self, apdu: Vec<u8>, what: Sent) {
        if self.transport.is_serial() {
            self.in_link.push_back(what);
        }
        self.transport.send_apdu(apdu);
    }

    fn respond(&mut self, c: Command) {
        // Ack/Nack without data always encode.
        if let Ok(b) = c.to_bytes() {
            self.push_to_transport(b, Sent::Response);
        }
    }

    fn pump(&mut self, now: Instant) {
        if self.outstanding.is_some() || self.state != PtState::Master {
            return;
        }
        let Some((kind, apdu)) = self.outbox.pop_front() else {
            return;
        };
        if kind == CommandKind::IntermediateStatus
            && let Ok(Command::IntermediateStatus(s)) = Command::decode(&apdu, Context::None)
            && let Some(t4) = s.t4()
        {
            self.announced_t4 = t4;
        }
        self.outstanding = Some(Outstanding {
            kind,
            apdu: apdu.clone(),
            deadline: self.answer_deadline(now),
            repeat_at: None,
            busy_answers: 0,
        });
        self.push_to_transport(apdu, Sent::Message);
    }

    // ---- the application's answers and messages ----

    /// Accepts the pending command with `80 00 00`. The PT becomes master when the command
    /// hands over master rights ([`CommandKind::awaits_completion`]).
    pub fn accept(&mut self, now: Instant) -> Result<(), PtError> {
        let master = match &self.pending {
            Some(p) => p.kind.awaits_completion(),
            None => return Err(PtError::NotDeciding),
        };
        self.accept_with(master, now)
    }

    /// Accepts with `80 00 00`, saying whether the PT takes master rights.
    pub fn accept_with(&mut self, master: bool, now: Instant) -> Result<(), PtError> {
        let p = self.pending.take().ok_or(PtError::NotDeciding)?;
        self.respond(Command::Ack);
        match &p.command {
            Some(Command::Registration(r)) => {
                self.registration = Some(RegistrationState {
                    config: r.config,
                    currency: r.currency,
                    tlv_permitted: r.tlv.is_some(),
                    permitted_commands: r.permitted_commands().unwrap_or_default(),
                });
            }
            Some(Command::LogOff(_)) => {
                if let Some(r) = &mut self.registration {
                    r.config = config::AFTER_LOG_OFF;
                    r.tlv_permitted = false;
                }
            }
            _ => {}
        }
        self.request_tlv = p.command.as_ref().is_some_and(|c| c.tlv().is_some());
        self.max_status_infos = p
            .command
            .as_ref()
            .and_then(|c| c.max_status_infos())
            .unwrap_or(self.cfg.default_max_status_infos);
        self.announced_t4 = self.cfg.default_t4;
        self.state = if master {
            PtState::Master
        } else {
            PtState::Idle
        };
        self.pump(now);
        Ok(())
    }

    /// Refuses the pending command with `84 code 00`; the ECR stays master.
    pub fn refuse(&mut self, code: u8, _now: Instant) -> Result<(), PtError> {
        self.pending.take().ok_or(PtError::NotDeciding)?;
        self.respond(Command::nack(code));
        self.state = PtState::Idle;
        Ok(())
    }

    /// Answers a pending 06 B0: `80 00 00` (the app then ends with 06 1E) or `84 83 00`.
    pub fn answer_abort(&mut self, accept: bool, _now: Instant) -> Result<(), PtError> {
        if !std::mem::take(&mut self.abort_pending) {
            return Err(PtError::NoAbortPending);
        }
        self.respond(if accept {
            Command::Ack
        } else {
            Command::nack(0x83)
        });
        Ok(())
    }

    /// Queues a PT message (04 FF, 04 0F, 06 D1, 06 D3, 04 01, and last 06 0F or 06 1E).
    pub fn send(&mut self, c: &Command, now: Instant) -> Result<(), PtError> {
        let b = c.to_bytes()?;
        self.send_apdu(b, now)
    }

    /// Queues a raw APDU as a PT message (for deliberately malformed ones).
    pub fn send_apdu(&mut self, apdu: Vec<u8>, now: Instant) -> Result<(), PtError> {
        if self.state != PtState::Master {
            return Err(PtError::NotMaster);
        }
        self.outbox.push_back((CommandKind::of_apdu(&apdu), apdu));
        self.pump(now);
        Ok(())
    }
}
