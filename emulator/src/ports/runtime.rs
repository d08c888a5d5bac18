//! The process driver: the terminal core on the wall clock, behind real ports.
//!
//! One task, one loop. Each turn it first acts on every output the core has queued, strictly
//! in order — a `Journal` op is committed to SQLite (and `commit` returns) before the next
//! output is looked at, so "the reversal record before the request" holds on the wire — then
//! answers what the rig link asked, then waits for whichever comes first: ECR bytes, a rig-link
//! line, host bytes or the end of a connect to the acquirer, the core's next deadline (its
//! instant turned into wall time with [`WallClock::wall_until`]) or the next key of a `KEYS`.
//! A connect never blocks the loop: the request waits in the host link while the ECR, the rig
//! link and the timers are served; it is written once the connection is there, and if the
//! request's host timeout comes first it was not sent. Stopping (Ctrl-C, SIGTERM, the
//! `stop` future) is only looked at between turns, so the journal is never left between an op
//! and the output that depends on it.
//!
//! A power cut (`POWER OFF` on the rig link) drops the core and its RAM state; the journal
//! stays as committed; `POWER ON` rebuilds the core from `store.load()`, which sends a pending
//! reversal or advice before anything else.
//!
//! SQLite commits block the task (an fsync per commit with `Durability::Full`): that is the
//! point — nothing else may happen until the op is durable.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use protocol::fixture::cards::CardSet;
use protocol::riglink::{
    CardAction, ErrCode, GetWhat, KeyName, LedState, Outcome, Report, Request,
};
use protocol::time::{Clock, WallClock};

use super::ecr::{EcrIn, EcrPort};
use super::failpoints::{self, AFTER_REPLY_RECEIVED, AFTER_REQUEST_SENT, AFTER_REVERSAL_RECORD};
use super::host::{HostIn, HostLink, SendOutcome};
use super::signals::{RigView, SigIn, SignalsPort};
use super::{Endpoint, PortError};
use crate::core::{CardEvent, EcrLink, Event, Output, Terminal, TerminalConfig};
use crate::journal::sqlite::Durability;
use crate::journal::{JournalError, JournalOp, JournalStore, SqliteStore};

/// Everything `posrig emulate` is started with.
pub struct EmulatorConfig {
    /// The terminal; its `ecr_link` is set from [`EmulatorConfig::ecr`].
    pub terminal: TerminalConfig,
    /// Cards the rig link can present by name.
    pub cards: CardSet,
    /// The SQLite journal file (created if missing).
    pub journal: PathBuf,
    pub durability: Durability,
    pub ecr: Endpoint,
    pub signals: Endpoint,
    /// The acquirer: `tcp://host:port`.
    pub host: String,
    pub clock: WallClock,
    /// Allow listeners on non-loopback addresses.
    pub listen_any: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("journal {path}: {source}")]
    Journal { path: PathBuf, source: JournalError },
}

/// A `KEYS` request under way: the next key is pressed at `next_at`.
struct KeysJob {
    remaining: VecDeque<KeyName>,
    gap: Duration,
    next_at: tokio::time::Instant,
}

enum Wake {
    Stop,
    Ecr(EcrIn),
    Signals(SigIn),
    Host(HostIn),
    CoreTimer,
    NextKey,
}

/// The emulator with its ports open; [`Emulator::run_until`] powers it on and serves.
pub struct Emulator {
    cfg: TerminalConfig,
    cards: CardSet,
    journal_path: PathBuf,
    store: SqliteStore,
    clock: WallClock,
    term: Option<Terminal>,
    ecr: EcrPort,
    signals: SignalsPort,
    host: HostLink,
    rig: RigView,
    keys: Option<KeysJob>,
}

impl Emulator {
    /// Opens the journal and the ports (listeners bound, serial lines open). The terminal is
    /// still off.
    pub async fn bind(c: EmulatorConfig) -> Result<Emulator, RunError> {
        let mut cfg = c.terminal;
        cfg.ecr_link = match c.ecr {
            Endpoint::Tcp(_) => EcrLink::Tcp,
            Endpoint::Serial(_) => EcrLink::Serial,
        };
        cfg.line_time_scale = c.clock.scale();
        let store =
            SqliteStore::open(&c.journal, c.durability).map_err(|source| RunError::Journal {
                path: c.journal.clone(),
                source,
            })?;
        let ecr = EcrPort::open(&c.ecr, c.listen_any).await?;
        let signals = SignalsPort::open(&c.signals, c.listen_any).await?;
        Ok(Emulator {
            cfg,
            cards: c.cards,
            journal_path: c.journal,
            store,
            clock: c.clock,
            term: None,
            ecr,
            signals,
            host: HostLink::new(&c.host),
            rig: RigView::default(),
            keys: None,
        })
    }

    /// The ECR port's TCP address (when it is on TCP).
    pub fn ecr_addr(&self) -> Option<SocketAddr> {
        self.ecr.local_addr()
    }

    /// The rig link's TCP address (when it is on TCP).
    pub fn signals_addr(&self) -> Option<SocketAddr> {
        self.signals.local_addr()
    }

    /// Powers the terminal on and serves until `stop` completes or the journal fails.
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> Result<(), RunError> {
        tokio::pin!(stop);
        tracing::info!(
            "terminal {} ({}) powering on; journal {}, host {}",
            self.cfg.profile.terminal_id,
            self.cfg.profile.name,
            self.journal_path.display(),
            self.host.address()
        );
        self.power_on()?;
        loop {
            self.drain().await?;
            self.serve_signals().await?;
            self.signals.flush().await;
            let core_at = self
                .term
                .as_ref()
                .and_then(Terminal::poll_timeout)
                .map(|d| {
                    // A millisecond past the deadline, so the scaled clock is there on waking.
                    tokio::time::Instant::now()
                        + self.clock.wall_until(d)
                        + Duration::from_millis(1)
                });
            let key_at = self.keys.as_ref().map(|k| k.next_at);
            let wake = tokio::select! {
                biased;
                _ = &mut stop => Wake::Stop,
                h = self.host.next() => Wake::Host(h),
                e = self.ecr.next() => Wake::Ecr(e),
                s = self.signals.next() => Wake::Signals(s),
                _ = sleep_until(core_at) => Wake::CoreTimer,
                _ = sleep_until(key_at) => Wake::NextKey,
            };
            match wake {
                Wake::Stop => break,
                Wake::Host(HostIn::Bytes(b)) => {
                    tracing::debug!("host link: {} bytes in", b.len());
                    self.deliver(Event::HostBytes(b));
                    // The reply is with the core; what it decided is not committed yet.
                    failpoints::hit(AFTER_REPLY_RECEIVED);
                }
                Wake::Host(HostIn::Closed(why)) => {
                    tracing::info!("host link closed: {why}");
                    self.deliver(Event::HostClosed);
                }
                Wake::Host(HostIn::Connected(queued)) => {
                    for b in queued {
                        self.host_send(b).await;
                    }
                }
                Wake::Host(HostIn::ConnectFailed { why, queued }) => {
                    tracing::warn!("host link: nothing sent: {why}");
                    for _ in 0..queued {
                        self.deliver(Event::HostSendFailed);
                    }
                }
                Wake::Ecr(e) => self.on_ecr(e),
                Wake::Signals(SigIn::Connected { peer, replaced }) => {
                    self.keys = None;
                    tracing::info!(
                        "signals: client {peer} connected{}",
                        if replaced {
                            " (replacing the previous one)"
                        } else {
                            ""
                        }
                    );
                }
                Wake::Signals(SigIn::Closed(why)) => {
                    self.keys = None;
                    tracing::info!("signals: {why}");
                }
                Wake::Signals(SigIn::Input | SigIn::Nothing) => {}
                Wake::CoreTimer => {
                    let now = self.clock.now();
                    // The request's host timeout came before its connection: no byte of it
                    // left, so it is "not sent" (not an unknown outcome).
                    if self.host.is_connecting()
                        && self
                            .term
                            .as_ref()
                            .and_then(Terminal::host_deadline)
                            .is_some_and(|d| d <= now)
                    {
                        let n = self.host.abandon_connect("the host timeout came first");
                        tracing::warn!(
                            "host link: nothing sent: no connection to {} before the host timeout",
                            self.host.address()
                        );
                        for _ in 0..n {
                            self.deliver(Event::HostSendFailed);
                        }
                    }
                    if let Some(t) = self.term.as_mut() {
                        t.handle_timeout(now);
                    }
                }
                Wake::NextKey => self.next_key().await?,
            }
        }
        tracing::info!(
            "stopping; the journal is consistent (every output acted on was committed first)"
        );
        self.signals.flush().await;
        Ok(())
    }

    fn on_ecr(&mut self, e: EcrIn) {
        match e {
            EcrIn::Connected { peer, replaced } => {
                if !self.rig.power {
                    // A terminal without power answers nobody.
                    self.ecr.disconnect();
                    return;
                }
                tracing::info!(
                    "ecr: {peer} connected{}",
                    if replaced {
                        " (the previous connection was dropped)"
                    } else {
                        ""
                    }
                );
                if replaced {
                    self.deliver(Event::EcrDisconnected);
                }
            }
            EcrIn::Bytes(b) => {
                if !b.is_empty() {
                    self.deliver(Event::EcrBytes(b));
                }
            }
            EcrIn::Closed(why) => {
                tracing::info!("ecr: {why}");
                self.deliver(Event::EcrDisconnected);
            }
            EcrIn::Nothing => {}
        }
    }

    fn deliver(&mut self, e: Event) {
        let now = self.clock.now();
        if let Some(t) = self.term.as_mut() {
            t.handle(e, now);
        }
    }

    /// Acts on every queued output, in order.
    async fn drain(&mut self) -> Result<(), RunError> {
        while let Some(out) = self.term.as_mut().and_then(Terminal::poll_output) {
            self.act(out).await?;
        }
        Ok(())
    }

    async fn act(&mut self, out: Output) -> Result<(), RunError> {
        match out {
            Output::Journal(op) => {
                self.store
                    .commit(std::slice::from_ref(&op))
                    .map_err(|source| RunError::Journal {
                        path: self.journal_path.clone(),
                        source,
                    })?;
                if matches!(op, JournalOp::PutPending(_)) {
                    failpoints::hit(AFTER_REVERSAL_RECORD);
                }
            }
            Output::HostBytes(b) => self.host_send(b).await,
            Output::EcrBytes(b) => {
                if let Err(why) = self.ecr.write(&b).await {
                    tracing::info!("ecr: connection lost while writing: {why}");
                    self.deliver(Event::EcrDisconnected);
                }
            }
            Output::Display(lines) => {
                self.rig.display = lines.clone();
                self.signals.event(Report::Display { lines });
            }
            Output::Print(bytes) => {
                for r in self.rig.print(&bytes) {
                    self.signals.event(r);
                }
            }
            Output::Leds(l) => {
                self.rig.leds = l;
                self.signals.event(Report::Leds(l));
            }
            Output::Beep(tone) => {
                let r = self.rig.beep(tone);
                self.signals.event(r);
            }
            Output::Link(trace) => tracing::debug!(target: "zvt_link", "{trace}"),
        }
        Ok(())
    }

    /// Hands one framed message to the host link and tells the core what became of it; while
    /// a connect is under way the message waits for it (see `Wake::Host`).
    async fn host_send(&mut self, b: Vec<u8>) {
        let timeout = self
            .clock
            .wall_until(self.clock.now() + self.cfg.profile.host_timeout())
            .max(Duration::from_millis(100));
        match self.host.send(&b, timeout).await {
            SendOutcome::Sent => {
                tracing::debug!("host link: {} bytes out", b.len());
                failpoints::hit(AFTER_REQUEST_SENT);
            }
            SendOutcome::Connecting => {
                tracing::debug!(
                    "host link: connecting to {}; {} bytes wait",
                    self.host.address(),
                    b.len()
                );
            }
            SendOutcome::NotSent(why) => {
                tracing::warn!("host link: nothing sent: {why}");
                self.deliver(Event::HostSendFailed);
            }
            SendOutcome::Broken(why) => {
                tracing::warn!("host link broke while sending: {why}");
                self.deliver(Event::HostClosed);
            }
        }
    }

    fn power_on(&mut self) -> Result<(), RunError> {
        let journal = self.store.load().map_err(|source| RunError::Journal {
            path: self.journal_path.clone(),
            source,
        })?;
        if !journal.pending.is_empty() {
            tracing::info!(
                "{} pending reversal/advice record(s) in the journal: they go first",
                journal.pending.len()
            );
        }
        self.rig.powered_on();
        self.term = Some(Terminal::power_on(
            self.cfg.clone(),
            journal,
            self.clock.now(),
        ));
        self.signals.event(Report::Power(true));
        // Faults switched on while the power was off are there when it comes on.
        for kind in self.rig.faults.clone() {
            self.deliver(Event::Fault { kind, on: true });
        }
        Ok(())
    }

    fn power_off(&mut self) {
        // The core and everything it held in RAM are gone; the journal is as committed.
        self.term = None;
        self.keys = None;
        self.ecr.disconnect();
        self.host.disconnect();
        self.rig.powered_off();
        self.signals.event(Report::Display { lines: Vec::new() });
        self.signals.event(Report::Leds([LedState::Off; 4]));
        self.signals.event(Report::Power(false));
        tracing::info!("power off");
    }

    /// Carries out the rig-link requests that are waiting, one at a time.
    async fn serve_signals(&mut self) -> Result<(), RunError> {
        while self.keys.is_none() {
            let Some(inc) = self.signals.poll_request() else {
                break;
            };
            if let Some(outcome) = self.execute(inc.request).await? {
                self.signals.reply(outcome);
            }
        }
        Ok(())
    }

    /// One request; `None` when the answer comes later (a `KEYS` under way).
    async fn execute(&mut self, r: Request) -> Result<Option<Outcome>, RunError> {
        let off = || Outcome::Failed(ErrCode::State, "the power is off".into());
        Ok(Some(match r {
            Request::Key(k) => {
                if !self.rig.power {
                    off()
                } else {
                    self.deliver(Event::Key(k));
                    self.drain().await?;
                    Outcome::Done
                }
            }
            Request::Keys { gap_ms, keys } => {
                if !self.rig.power {
                    off()
                } else {
                    let gap = Duration::from_millis(u64::from(gap_ms)).div_f64(self.clock.scale());
                    self.keys = Some(KeysJob {
                        remaining: keys.into(),
                        gap,
                        next_at: tokio::time::Instant::now(),
                    });
                    self.next_key().await?;
                    return Ok(None);
                }
            }
            Request::Card(action) => {
                if !self.rig.power {
                    off()
                } else {
                    self.card(action).await?
                }
            }
            Request::Fault { kind, on } => {
                if on {
                    self.rig.faults.insert(kind);
                } else {
                    self.rig.faults.remove(&kind);
                }
                self.deliver(Event::Fault { kind, on });
                self.drain().await?;
                Outcome::Done
            }
            Request::Power(on) => {
                if on && !self.rig.power {
                    self.power_on()?;
                    self.drain().await?;
                } else if !on && self.rig.power {
                    self.power_off();
                }
                Outcome::Done
            }
            Request::Get(what) => match what {
                GetWhat::Display => Outcome::Data(Report::Display {
                    lines: self.rig.display.clone(),
                }),
                GetWhat::Printer { from } => self.rig.printer_from(from),
                GetWhat::Leds => Outcome::Data(Report::Leds(self.rig.leds)),
                GetWhat::Beeper => Outcome::Data(Report::Beeper {
                    last: self.rig.last_tone,
                    count: self.rig.beeps,
                }),
                GetWhat::Power => Outcome::Data(Report::Power(self.rig.power)),
                GetWhat::State => Outcome::Data(Report::State(self.rig.state())),
            },
            // The session answers these itself; should one come through, it is done.
            Request::Hello { .. } | Request::Ping | Request::Mode(_) => Outcome::Done,
        }))
    }

    async fn card(&mut self, action: CardAction) -> Result<Outcome, RunError> {
        let fixture = |name: &protocol::riglink::CardName| {
            self.cards
                .get(name.as_str())
                .map(|c| Box::new(c.clone()))
                .ok_or_else(|| Outcome::Failed(ErrCode::NoCard, format!("no card fixture {name}")))
        };
        let event = match &action {
            CardAction::Swipe(n) => match fixture(n) {
                Ok(c) => CardEvent::Swipe(c),
                Err(o) => return Ok(o),
            },
            CardAction::Tap(n) => match fixture(n) {
                Ok(c) => CardEvent::Tap(c),
                Err(o) => return Ok(o),
            },
            CardAction::Insert(n) => {
                if self.rig.card.is_some() {
                    return Ok(Outcome::Failed(
                        ErrCode::State,
                        "a card is already inserted".into(),
                    ));
                }
                match fixture(n) {
                    Ok(c) => CardEvent::Insert(c),
                    Err(o) => return Ok(o),
                }
            }
            CardAction::Remove => {
                if self.rig.card.is_none() {
                    return Ok(Outcome::Failed(ErrCode::State, "no card inserted".into()));
                }
                CardEvent::Remove
            }
        };
        // Fixture names only: a PAN never reaches the log.
        tracing::debug!("reader: {action:?}");
        self.rig.card = match action {
            CardAction::Insert(n) => Some(n),
            CardAction::Remove => None,
            _ => self.rig.card.take(),
        };
        self.deliver(Event::Card(event));
        self.drain().await?;
        Ok(Outcome::Done)
    }

    /// Presses the next key of a `KEYS`; answers it after the last.
    async fn next_key(&mut self) -> Result<(), RunError> {
        let Some(job) = self.keys.as_mut() else {
            return Ok(());
        };
        let Some(k) = job.remaining.pop_front() else {
            self.keys = None;
            self.signals.reply(Outcome::Done);
            return Ok(());
        };
        job.next_at = tokio::time::Instant::now() + job.gap;
        let last = job.remaining.is_empty();
        self.deliver(Event::Key(k));
        self.drain().await?;
        if last && self.keys.is_some() {
            self.keys = None;
            self.signals.reply(Outcome::Done);
        }
        Ok(())
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
