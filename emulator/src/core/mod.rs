//! The terminal itself: a sans-IO state machine.
//!
//! [`Terminal`] is fed [`Event`]s (a key, a card, ECR bytes, host bytes, a fault) with `now`,
//! and hands back [`Output`]s in order: display frames, receipts (ESC/POS), LEDs and beeps,
//! ECR bytes, host bytes, and [`JournalOp`]s. Whoever drives it must apply each
//! `Output::Journal` to durable storage *before* acting on the outputs that follow it: that
//! is how "the reversal record is committed before the request leaves" holds on every rig.
//! Deadlines come from [`Terminal::poll_timeout`]; [`Terminal::handle_timeout`] fires them.
//!
//! The shape follows quinn-proto's `Connection`. Nothing here reads a clock, opens a socket or
//! sleeps: the harness steps it on virtual time, the ports in [`crate::ports`] on the wall
//! clock.

pub mod config;
pub mod crypto;
mod ecr;
pub mod entry;
mod flow;
mod host;
pub mod receipt;
pub mod refusal;
pub mod review;

use std::collections::{BTreeSet, VecDeque};

use protocol::fixture::cards::CardFixture;
use protocol::fixture::terminal::{Language, MacMode, SignOnMode};
use protocol::riglink::{FaultKind, KeyName, LedState, Tone};
use protocol::time::Instant;
use protocol::zvt::pt::{PtConfig, PtSession};
use protocol::zvt::transport::Transport;

pub use config::{EcrLink, TerminalConfig};
pub use refusal::Refusal;

use crate::journal::{JournalOp, JournalState};
use flow::Activity;
use host::HostState;

/// Something that happened to the terminal.
#[derive(Clone, Debug)]
pub enum Event {
    Key(KeyName),
    Card(CardEvent),
    Fault {
        kind: FaultKind,
        on: bool,
    },
    /// Bytes from the ECR line (raw TCP stream or serial line).
    EcrBytes(Vec<u8>),
    /// The ECR closed its TCP connection (or the line dropped).
    EcrDisconnected,
    /// Bytes from the acquirer.
    HostBytes(Vec<u8>),
    /// The last `Output::HostBytes` could not be sent at all (connection refused): no byte left.
    HostSendFailed,
    /// The host connection closed.
    HostClosed,
}

/// A card at the reader. The card's data comes from its fixture, as a reader would read it.
#[derive(Clone, Debug)]
pub enum CardEvent {
    Swipe(Box<CardFixture>),
    Insert(Box<CardFixture>),
    Tap(Box<CardFixture>),
    Remove,
}

/// What the terminal does, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The whole display, one string per line.
    Display(Vec<String>),
    /// ESC/POS bytes for the printer.
    Print(Vec<u8>),
    Leds([LedState; 4]),
    Beep(Tone),
    /// Bytes for the ECR line.
    EcrBytes(Vec<u8>),
    /// A framed message for the acquirer (connect first if needed).
    HostBytes(Vec<u8>),
    /// Commit this before acting on any later output.
    Journal(JournalOp),
    /// A ZVT link-layer event (ACK, NAK, repeat), for transcripts that ask for them.
    Link(String),
}

/// The emulated terminal.
pub struct Terminal {
    cfg: TerminalConfig,
    j: JournalState,
    now: Instant,
    out: VecDeque<Output>,
    // Devices.
    display: Vec<String>,
    leds: [LedState; 4],
    /// After a contactless read all four LEDs stay on until then.
    leds_success_until: Option<Instant>,
    faults: BTreeSet<FaultKind>,
    /// The card in the chip slot.
    inserted: Option<Box<CardFixture>>,
    /// Receipts waiting for paper or a closed cover.
    print_queue: VecDeque<Vec<u8>>,
    // ECR.
    pt: PtSession,
    ecr: ecr::EcrState,
    // Host.
    host: HostState,
    // What the terminal is doing.
    activity: Activity,
}

impl Terminal {
    /// Powers the terminal on with the journal as committed. Recovery comes first: a pending
    /// reversal or advice is sent before anything else, then an automatic sign-on.
    pub fn power_on(cfg: TerminalConfig, journal: JournalState, now: Instant) -> Terminal {
        let transport = match cfg.ecr_link {
            EcrLink::Tcp => Transport::tcp(),
            // Link traces (repeats, NAKs, duplicates) go out as `Output::Link`; a transcript
            // shows them only when it asks for link events.
            EcrLink::Serial => Transport::serial(
                protocol::zvt::link::LinkConfig {
                    trace: true,
                    ..Default::default()
                }
                .for_time_scale(cfg.line_time_scale),
            ),
        };
        let framing = cfg.dialect.length_prefix;
        let mut t = Terminal {
            pt: PtSession::new(transport, PtConfig::default()),
            host: HostState::new(framing),
            cfg,
            j: journal,
            now,
            out: VecDeque::new(),
            display: Vec::new(),
            leds: [LedState::Off; 4],
            leds_success_until: None,
            faults: BTreeSet::new(),
            inserted: None,
            print_queue: VecDeque::new(),
            ecr: ecr::EcrState::default(),
            activity: Activity::Idle,
        };
        t.recover_and_sign_on();
        t.refresh();
        t
    }

    pub fn config(&self) -> &TerminalConfig {
        &self.cfg
    }

    /// The journal as the terminal sees it (everything it emitted, applied).
    pub fn journal(&self) -> &JournalState {
        &self.j
    }

    pub fn display(&self) -> &[String] {
        &self.display
    }

    pub fn leds(&self) -> [LedState; 4] {
        self.leds
    }

    /// Nothing left to do until the next event or deadline.
    pub fn is_idle(&self) -> bool {
        matches!(self.activity, Activity::Idle) && self.host.is_idle() && !self.pt.is_master()
    }

    pub fn handle(&mut self, event: Event, now: Instant) {
        self.now = now.max(self.now);
        match event {
            Event::Key(k) => self.on_key(k),
            Event::Card(c) => self.on_card(c),
            Event::Fault { kind, on } => self.on_fault(kind, on),
            Event::EcrBytes(b) => {
                self.pt.handle_input(&b, self.now);
                self.pump_ecr();
            }
            Event::EcrDisconnected => {
                // The ECR reconnects for its next command; a transaction under way completes or
                // reverses by the rules, and its result stays recoverable (Repeat Receipt).
                self.pt.reset();
                self.ecr_disconnected();
            }
            Event::HostBytes(b) => self.on_host_bytes(&b),
            Event::HostSendFailed => self.on_host_send_failed(),
            Event::HostClosed => self.on_host_closed(),
        }
        self.arm_prompt_timer();
        self.refresh();
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        let bytes = self.pt.poll_transmit(self.now)?;
        Some(Output::EcrBytes(bytes))
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.pt.poll_timeout(),
            self.host.deadline(),
            self.leds_success_until,
            self.ecr_deadline(),
            self.prompt_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the host request in flight times out, if one is. A driver whose connect is still
    /// under way at this instant knows the request never left.
    pub fn host_deadline(&self) -> Option<Instant> {
        self.host.deadline()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now.max(self.now);
        self.pt.handle_timeout(self.now);
        self.pump_ecr();
        if self.host.deadline().is_some_and(|d| d <= self.now) {
            self.on_host_timeout();
        }
        if self.leds_success_until.is_some_and(|d| d <= self.now) {
            self.leds_success_until = None;
        }
        self.ecr_timeouts();
        self.prompt_timeouts();
        self.arm_prompt_timer();
        self.refresh();
    }

    // ---- internals shared by the flows ----

    fn lang(&self) -> Language {
        self.cfg.profile.language
    }

    /// Picks the text for the profile's language.
    fn t(&self, zh: &str, en: &str) -> String {
        match self.lang() {
            Language::Zh => zh.to_string(),
            Language::En => en.to_string(),
        }
    }

    fn journal_op(&mut self, op: JournalOp) {
        self.j.apply(&op);
        self.out.push_back(Output::Journal(op));
    }

    fn beep(&mut self, tone: Tone) {
        self.out.push_back(Output::Beep(tone));
    }

    /// Prints now, or queues until the paper is back and the cover closed.
    fn print(&mut self, bytes: Vec<u8>) {
        if self.printer_ready() && self.print_queue.is_empty() {
            self.out.push_back(Output::Print(bytes));
        } else {
            if self.print_queue.is_empty() {
                self.beep(Tone::Alert);
            }
            self.print_queue.push_back(bytes);
        }
    }

    fn printer_ready(&self) -> bool {
        !self.faults.contains(&FaultKind::PaperOut) && !self.faults.contains(&FaultKind::CoverOpen)
    }

    fn on_fault(&mut self, kind: FaultKind, on: bool) {
        if on {
            self.faults.insert(kind);
        } else {
            self.faults.remove(&kind);
        }
        // Paper gone (or the cover opened) with receipts not yet handed to the printer — the
        // customer copy right after the merchant copy: they wait in the queue, in order.
        if !self.printer_ready() && self.out.iter().any(|o| matches!(o, Output::Print(_))) {
            let mut held = Vec::new();
            self.out.retain(|o| match o {
                Output::Print(b) => {
                    held.push(b.clone());
                    false
                }
                _ => true,
            });
            if self.print_queue.is_empty() {
                self.beep(Tone::Alert);
            }
            for b in held.into_iter().rev() {
                self.print_queue.push_front(b);
            }
        }
        // Paper back: the queued receipts come out, so a completed refund is never lost.
        if self.printer_ready() {
            while let Some(b) = self.print_queue.pop_front() {
                self.out.push_back(Output::Print(b));
            }
        }
    }

    fn today(&self) -> chrono::NaiveDate {
        self.now.to_local(self.cfg.profile.time_zone).date_naive()
    }

    fn signed_on(&self) -> bool {
        self.signed_on_today() && !self.j.session.resign_required
    }

    /// Signed on today with keys, even if the host has since asked for a new sign-on (A0/99).
    /// A manual terminal refuses transactions (R-SIGNON) only when this is false; a sign-on
    /// the host asked for is made automatically before the next transaction.
    fn signed_on_today(&self) -> bool {
        let s = &self.j.session;
        let keys_ok = self.cfg.profile.mac == MacMode::None || s.mac_key.is_some();
        s.signed_on.as_deref() == Some(self.today().to_string().as_str()) && keys_ok
    }

    fn sign_on_mode(&self) -> SignOnMode {
        self.cfg.profile.sign_on
    }

    /// Recomputes the display and LEDs from the state; every change is an output.
    fn refresh(&mut self) {
        let lines = self.screen();
        let cols = self.cfg.profile.display.columns;
        let rows = self.cfg.profile.display.lines;
        let mut frame: Vec<String> = lines
            .into_iter()
            .take(rows)
            .map(|l| fit(&l, cols))
            .collect();
        while frame.len() < rows {
            frame.push(String::new());
        }
        if frame != self.display {
            self.display = frame.clone();
            self.out.push_back(Output::Display(frame));
        }
        let leds = self.led_state();
        if leds != self.leds {
            self.leds = leds;
            self.out.push_back(Output::Leds(leds));
        }
    }

    fn led_state(&self) -> [LedState; 4] {
        use LedState::*;
        if self.leds_success_until.is_some() {
            return [On, On, On, On];
        }
        if self.waiting_for_card() {
            [On, Off, Off, Off]
        } else {
            [Blink, Off, Off, Off]
        }
    }

    fn screen(&self) -> Vec<String> {
        if !self.print_queue.is_empty() {
            return if self.faults.contains(&FaultKind::CoverOpen) {
                vec![
                    self.t("打印机盖未关", "PRINTER COVER OPEN"),
                    self.t("请关闭机盖", "CLOSE THE COVER"),
                ]
            } else {
                vec![
                    self.t("打印机缺纸", "PAPER OUT"),
                    self.t("请装纸", "LOAD PAPER"),
                ]
            };
        }
        self.activity_screen()
    }

    fn ecr_deadline(&self) -> Option<Instant> {
        self.ecr.deadline
    }
}

/// Cuts `s` to `cols` display columns (a CJK character takes two).
pub fn fit(s: &str, cols: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = protocol::escpos::char_columns(c);
        if used + w > cols {
            break;
        }
        used += w;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
