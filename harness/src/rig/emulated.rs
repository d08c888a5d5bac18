//! The emulated rig: the emulator core, the acquirer core and the ECR-role ZVT session stepped
//! directly, in one thread, on a virtual clock the runner owns. No sockets, no threads, no
//! tokio timers: a 60 s host timeout costs microseconds, and a run is deterministic.
//!
//! The ECR line is an in-memory pipe carrying the same bytes a cable would: raw APDUs, or DLE
//! STX framing with ACK/NAK when the scenario requires `ecr-serial` (so line faults are real).

use std::collections::VecDeque;
use std::time::Duration;

use acquirer::Host;
use acquirer::config::HostConfig;
use acquirer::host::{ConnId, HostOutput};
use emulator::core::{CardEvent, EcrLink, Event, Output, Terminal, TerminalConfig};
use emulator::journal::{JournalOp, JournalStore, MemoryStore, Session};
use protocol::fixture::cards::{CardFixture, CardSet};
use protocol::fixture::journal::{JournalFixture, ResolveContext};
use protocol::fixture::keys::TestKeys;
use protocol::fixture::terminal::TerminalProfile;
use protocol::riglink::{KeyName, LedState};
use protocol::time::{Clock, Instant, VirtualClock};
use protocol::zvt::command::CommandKind;
use protocol::zvt::ecr::{Reply, Times};
use protocol::zvt::transport::Transport;

use super::cache;
use super::ecr_side::{EcrSide, OnTheLine};
use crate::runner::steps::subst;
use crate::runner::{CardAct, Finished, LineFaults, Observed, Recorder, World, WorldFault};
use crate::scenario::load::{LoadedScenario, Variant};
use crate::transcript::{Channel, Item};

pub struct EmulatedWorld {
    clock: VirtualClock,
    start: Instant,
    cfg: TerminalConfig,
    term: Option<Terminal>,
    store: MemoryStore,
    host: Host,
    conn: Option<ConnId>,
    host_down: bool,
    ecr: EcrSide,
    /// ACKs held back by `delay_ack`, with when they go.
    delayed: VecDeque<(Instant, Vec<u8>)>,
    cards: std::sync::Arc<CardSet>,
    obs: Observed,
    rec: Recorder,
    printer: protocol::escpos::Parser,
    host_seen: usize,
    /// A power cut armed at a failpoint.
    cut_at: Option<crate::scenario::model::Failpoint>,
    /// Receipts left on the paper roll, when a scenario made it finite.
    paper_left: Option<u32>,
}

/// The clock a scenario starts at: its `clock:`, or 2026-11-26 10:00 in the terminal's zone.
pub fn scenario_start(ls: &LoadedScenario, profile: &TerminalProfile) -> Result<Instant, String> {
    match &ls.scenario.clock {
        Some(c) => Instant::parse_rfc3339(&c.value).map_err(|e| format!("clock: {e}")),
        None => {
            use chrono::TimeZone as _;
            let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
                .and_then(|d| d.and_hms_opt(10, 0, 0))
                .ok_or("default clock")?;
            let dt = profile
                .time_zone
                .from_local_datetime(&local)
                .earliest()
                .ok_or("default clock")?;
            Ok(Instant::from_millis(dt.timestamp_millis()))
        }
    }
}

/// What every rig kind needs before the terminal starts: profile, keys, cards, host, journal.
pub struct Setup {
    pub profile: TerminalProfile,
    pub keys: TestKeys,
    pub cards: std::sync::Arc<CardSet>,
    pub host: Host,
    pub start: Instant,
    /// Journal ops to preload into the terminal (originals, a signed-on session).
    pub journal_ops: Vec<JournalOp>,
}

pub fn setup(ls: &LoadedScenario, v: &Variant) -> Result<Setup, String> {
    let s = &ls.scenario;
    let sub = |x: &str| subst(x, &v.vars);
    let profile_path = ls.resolve(&sub(&s.terminal.value)?);
    let profile = cache::get("profile", &profile_path, "", || {
        TerminalProfile::from_path(&profile_path).map_err(|e| e.to_string())
    })?;
    let profile = (*profile).clone();
    let keys_path = ls.resolve(
        &s.fixtures
            .keys
            .as_ref()
            .map(|k| sub(&k.value))
            .transpose()?
            .unwrap_or_else(|| "fixtures/keys/test-keys.yaml".into()),
    );
    let keys = cache::get("keys", &keys_path, "", || {
        TestKeys::from_path(&keys_path).map_err(|e| e.to_string())
    })?;
    let keys = (*keys).clone();
    let cards_dir = ls.resolve(
        &s.fixtures
            .cards
            .as_ref()
            .map(|k| sub(&k.value))
            .transpose()?
            .unwrap_or_else(|| "fixtures/cards".into()),
    );
    let cards = cache::get("cards", &cards_dir, "", || {
        CardFixture::load_dir(&cards_dir).map_err(|e| e.to_string())
    })?;
    let start = scenario_start(ls, &profile)?;
    let fees = s
        .acquirer
        .fees
        .as_ref()
        .map(|f| sub(&f.value).map(|p: String| ls.resolve(&p)))
        .transpose()?;
    let fees_key = fees
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    let hc = cache::get(
        "host",
        &ls.root.join("fixtures/terminals"),
        &format!("{}|{fees_key}", profile.dialect),
        || {
            HostConfig::from_fixtures(&ls.root, &profile.dialect, fees.as_deref())
                .map_err(|e| e.to_string())
        },
    )?;
    let mut host = Host::new((*hc).clone());
    let mut journal_ops = Vec::new();
    if let Some(j) = &s.fixtures.journal {
        let fx =
            JournalFixture::from_path(&ls.resolve(&sub(&j.value)?)).map_err(|e| e.to_string())?;
        let lookup = |n: &str| cards.get(n).map(|c| c.pan().clone());
        let txns = fx
            .resolve(&ResolveContext {
                now: start,
                time_zone: profile.time_zone,
                terminal_id: &profile.terminal_id,
                currency: profile.currency,
                card_pan: &lookup,
            })
            .map_err(|e| e.to_string())?;
        host.import(&txns);
        journal_ops.extend(emulator::import::import_ops(
            &txns,
            &keys.pan_hash_key,
            &Default::default(),
        ));
    }
    if s.signed_on == Some(true) {
        let wk = host
            .working_keys(&profile.terminal_id)
            .ok_or("the acquirer does not know this terminal")?;
        journal_ops.push(JournalOp::SetSession(Session {
            signed_on: Some(start.to_local(profile.time_zone).date_naive().to_string()),
            mac_key: Some(wk.mac.expose().to_vec()),
            pin_key: Some(wk.pin.expose().to_vec()),
            resign_required: false,
        }));
    }
    Ok(Setup {
        profile,
        keys,
        cards,
        host,
        start,
        journal_ops,
    })
}

impl EmulatedWorld {
    pub fn build(ls: &LoadedScenario, v: &Variant) -> Result<EmulatedWorld, String> {
        let Setup {
            profile,
            keys,
            cards,
            host,
            start,
            journal_ops,
        } = setup(ls, v)?;
        let serial = ls.scenario.requires.iter().any(|r| r.value == "ecr-serial");
        let link = if serial {
            EcrLink::Serial
        } else {
            EcrLink::Tcp
        };
        let cfg = TerminalConfig::new(profile.clone(), &keys, Some(&ls.root), link)
            .map_err(|e| e.to_string())?;
        let mut store = MemoryStore::new();
        store.commit(&journal_ops).map_err(|e| e.to_string())?;
        let transport = if serial {
            Transport::serial(protocol::zvt::link::LinkConfig {
                trace: ls.scenario.link_events,
                ..Default::default()
            })
        } else {
            Transport::tcp()
        };
        let started = start.to_local(profile.time_zone).naive_local();
        let w = EmulatedWorld {
            clock: VirtualClock::new(start),
            start,
            term: None,
            cfg,
            store,
            host,
            conn: None,
            host_down: false,
            ecr: EcrSide::new(transport),
            delayed: VecDeque::new(),
            cards,
            obs: Observed::default(),
            rec: Recorder::new(started, ls.scenario.link_events),
            printer: protocol::escpos::Parser::new(),
            host_seen: 0,
            cut_at: None,
            paper_left: None,
        };
        // Powered on by the runner once the host directives are installed, so a scenario can
        // answer what the terminal sends at power-on (sign-on, recovery).
        Ok(w)
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn elapsed_ms(&self) -> i64 {
        self.now().as_millis() - self.start.as_millis()
    }

    fn deliver(&mut self, e: Event) {
        let now = self.now();
        if let Some(t) = self.term.as_mut() {
            t.handle(e, now);
        }
    }

    /// Runs everything due at the current time.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            let now = self.now();
            while let Some(o) = self.term.as_mut().and_then(Terminal::poll_output) {
                progressed = true;
                self.on_output(o);
            }
            while let Some(b) = self.ecr.session.poll_transmit(now) {
                progressed = true;
                self.ecr_to_terminal(b);
            }
            while let Some((at, _)) = self.delayed.front() {
                if *at > now {
                    break;
                }
                let Some((_, b)) = self.delayed.pop_front() else {
                    break;
                };
                progressed = true;
                self.deliver(Event::EcrBytes(b));
            }
            if self.ecr.observe(&mut self.obs, &mut self.rec) {
                progressed = true;
            }
            while let Some(o) = self.host.poll_output() {
                progressed = true;
                match o {
                    HostOutput::Send { conn, bytes } => {
                        if Some(conn) == self.conn {
                            let t = self.elapsed_ms();
                            if self.cut_at
                                == Some(crate::scenario::model::Failpoint::AfterReplyReceived)
                            {
                                // The reply reaches the terminal; power goes before anything
                                // it decided is committed.
                                self.deliver(Event::HostBytes(bytes));
                                self.cut_power("after-reply-received");
                                continue;
                            }
                            let red =
                                crate::redact::iso(&self.cfg.dialect, &bytes).unwrap_or_default();
                            self.rec.raw("host-out", t, &red);
                            self.deliver(Event::HostBytes(bytes));
                        }
                    }
                    HostOutput::Close { conn } => {
                        if Some(conn) == self.conn {
                            self.conn = None;
                            self.deliver(Event::HostClosed);
                        }
                    }
                }
            }
            self.sync_host_log();
            if !progressed {
                return;
            }
        }
    }

    fn ecr_to_terminal(&mut self, b: Vec<u8>) {
        let now = self.now();
        match self.ecr.on_the_line(b, &mut self.rec) {
            OnTheLine::Lost => {}
            OnTheLine::After(d, b) => self.delayed.push_back((now + d, b)),
            OnTheLine::Now(b) => self.deliver(Event::EcrBytes(b)),
        }
    }

    fn on_output(&mut self, o: Output) {
        let t = self.elapsed_ms();
        match o {
            Output::Display(lines) => {
                self.obs.display = lines.clone();
                self.rec
                    .push(Channel::Display, crate::transcript::display_text(&lines));
            }
            Output::Print(bytes) => {
                self.printer.feed(&bytes);
                while let Some(r) = self.printer.poll_receipt() {
                    let width = self.cfg.profile.printer.width;
                    let text = protocol::escpos::render_text(&r, width);
                    self.obs.printer_text.push_str(&text);
                    self.obs.receipts += 1;
                    let title = format!("receipt #{}", self.obs.receipts);
                    self.rec
                        .item(Channel::Printer, Item::Receipt { title, text });
                    if let Some(left) = self.paper_left.as_mut() {
                        *left = left.saturating_sub(1);
                        if *left == 0 {
                            self.paper_left = None;
                            self.rec.push(Channel::Note, "the paper ran out".into());
                            let kind = protocol::riglink::FaultKind::PaperOut;
                            self.deliver(Event::Fault { kind, on: true });
                        }
                    }
                }
            }
            Output::Leds(l) => {
                self.obs.leds = l;
                let s: Vec<&str> = l
                    .iter()
                    .map(|x| match x {
                        LedState::On => "on",
                        LedState::Off => "off",
                        LedState::Blink => "blink",
                    })
                    .collect();
                self.rec.push(Channel::Leds, s.join(" "));
            }
            Output::Beep(tone) => {
                self.obs.beeps.push(tone);
                self.rec.push(Channel::Beeper, tone.as_str().to_lowercase());
            }
            Output::EcrBytes(b) => {
                self.rec.raw("ecr-in", t, &b);
                let now = self.now();
                self.ecr.session.handle_input(&b, now);
            }
            Output::HostBytes(bytes) => {
                let red = crate::redact::iso(&self.cfg.dialect, &bytes).unwrap_or_default();
                self.rec.raw("host-in", t, &red);
                if self.host_down {
                    // No note: a real rig only sees the terminal's reaction, and the
                    // transcript must read the same on every rig.
                    self.deliver(Event::HostSendFailed);
                    return;
                }
                let now = self.now();
                let conn = match self.conn {
                    Some(c) => c,
                    None => {
                        let c = self.host.connect(now);
                        self.conn = Some(c);
                        c
                    }
                };
                self.host.handle_bytes(conn, &bytes, now);
                if self.cut_at == Some(crate::scenario::model::Failpoint::AfterRequestSent) {
                    self.cut_power("after-request-sent");
                }
            }
            Output::Journal(op) => {
                // Committed before anything that follows it is acted on.
                let _ = self.store.commit(std::slice::from_ref(&op));
                if matches!(op, JournalOp::PutPending(_))
                    && self.cut_at == Some(crate::scenario::model::Failpoint::AfterReversalRecord)
                {
                    self.cut_power("after-reversal-record");
                }
            }
            // The terminal's own link trace stays out of the transcript: a real terminal
            // does not report it, and the ECR side shows every NAK and repeat that matters.
            Output::Link(_) => {}
        }
    }

    fn sync_host_log(&mut self) {
        let log = self.host.log();
        if self.host_seen >= log.len() {
            return;
        }
        let seen = std::mem::replace(&mut self.host_seen, log.len());
        self.rec.host_exchanges(log.get(seen..).unwrap_or_default());
    }

    /// A power cut now: the core and its RAM state are gone, the journal stays as committed.
    fn cut_power(&mut self, at: &str) {
        self.cut_at = None;
        self.term = None;
        self.obs.powered = false;
        self.obs.display.clear();
        let now = self.now();
        if let Some(c) = self.conn.take() {
            self.host.handle_close(c, now);
        }
        self.ecr.reset();
        self.printer = protocol::escpos::Parser::new();
        self.rec.push(Channel::Note, format!("power cut at {at}"));
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.term.as_ref().and_then(Terminal::poll_timeout),
            self.host.poll_timeout(),
            self.ecr.session.poll_timeout(),
            self.delayed.front().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn fire_due(&mut self) {
        let now = self.now();
        if let Some(t) = self.term.as_mut()
            && t.poll_timeout().is_some_and(|d| d <= now)
        {
            t.handle_timeout(now);
        }
        if self.host.poll_timeout().is_some_and(|d| d <= now) {
            self.host.handle_timeout(now);
        }
        if self.ecr.session.poll_timeout().is_some_and(|d| d <= now) {
            self.ecr.session.handle_timeout(now);
        }
        self.pump();
    }

    pub fn finish(mut self) -> Finished {
        self.pump();
        Finished {
            transcript: self.rec.transcript.render(),
            terminal_id: self.cfg.profile.terminal_id.clone(),
            dialect: self.cfg.profile.dialect.clone(),
            sw_version: self
                .obs
                .ecr
                .sw_version
                .clone()
                .or(Some(self.cfg.profile.software_version.clone())),
            raw: std::mem::take(&mut self.rec.raw),
        }
    }
}

impl World for EmulatedWorld {
    fn key(&mut self, k: KeyName) -> Result<(), String> {
        self.deliver(Event::Key(k));
        self.pump();
        Ok(())
    }

    fn card(&mut self, a: &CardAct) -> Result<(), String> {
        let get = |n: &str| {
            self.cards
                .get(n)
                .cloned()
                .map(Box::new)
                .ok_or_else(|| format!("unknown card {n:?}"))
        };
        let ev = match a {
            CardAct::Swipe(n) => CardEvent::Swipe(get(n)?),
            CardAct::Insert(n) => CardEvent::Insert(get(n)?),
            CardAct::Tap(n) => CardEvent::Tap(get(n)?),
            CardAct::Remove => CardEvent::Remove,
        };
        self.deliver(Event::Card(ev));
        self.pump();
        Ok(())
    }

    fn fault(&mut self, f: WorldFault, on: bool) -> Result<(), String> {
        match f {
            WorldFault::Device(kind) => self.deliver(Event::Fault { kind, on }),
            WorldFault::HostDown => {
                self.host_down = on;
                if on && let Some(c) = self.conn.take() {
                    let now = self.now();
                    self.host.handle_close(c, now);
                    self.deliver(Event::HostClosed);
                }
            }
        }
        self.pump();
        Ok(())
    }

    fn paper_out_after(&mut self, receipts: u32) -> Result<(), String> {
        if receipts == 0 {
            let kind = protocol::riglink::FaultKind::PaperOut;
            self.deliver(Event::Fault { kind, on: true });
        } else {
            self.paper_left = Some(receipts);
        }
        self.pump();
        Ok(())
    }

    fn power(&mut self, on: bool) -> Result<(), String> {
        let now = self.now();
        if on {
            if self.term.is_some() {
                return Ok(());
            }
            let journal = self.store.load().map_err(|e| e.to_string())?;
            self.term = Some(Terminal::power_on(self.cfg.clone(), journal, now));
            self.obs.powered = true;
            if self.rec.transcript.steps.is_empty() && self.rec.transcript.setup.entries.is_empty()
            {
                // first power-on: nothing to note
            } else {
                self.rec.push(Channel::Note, "power restored".into());
            }
        } else {
            // Power cut: the core and its RAM are gone; the journal stays as committed.
            self.term = None;
            self.obs.powered = false;
            self.obs.display.clear();
            if let Some(c) = self.conn.take() {
                self.host.handle_close(c, now);
            }
            self.ecr.reset();
            self.printer = protocol::escpos::Parser::new();
            self.rec.push(Channel::Note, "power cut".into());
        }
        self.pump();
        Ok(())
    }

    fn arm_power_cut(&mut self, at: crate::scenario::model::Failpoint) -> Result<(), String> {
        self.cut_at = Some(at);
        Ok(())
    }

    fn ecr_send(&mut self, apdu: Vec<u8>) -> Result<(), String> {
        let (now, t) = (self.now(), self.elapsed_ms());
        self.ecr.send(apdu, now, t, &mut self.rec)?;
        self.pump();
        Ok(())
    }

    fn ecr_reply(&mut self, kind: CommandKind, reply: Reply, times: Times) {
        self.ecr.set_reply(kind, reply, times);
    }

    fn ecr_inject(&mut self, bytes: &[u8]) -> Result<(), String> {
        EcrSide::note_injected(bytes, &mut self.rec);
        self.deliver(Event::EcrBytes(bytes.to_vec()));
        self.pump();
        Ok(())
    }

    fn ecr_line_faults(&mut self, f: LineFaults) {
        self.ecr.add_faults(f);
    }

    fn ecr_disconnect(&mut self) -> Result<(), String> {
        self.ecr.reset();
        self.deliver(Event::EcrDisconnected);
        self.rec
            .push(Channel::Note, "ECR connection dropped".into());
        self.pump();
        Ok(())
    }

    fn with_host<R>(&mut self, f: impl FnOnce(&mut Host) -> R) -> R {
        f(&mut self.host)
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now() + d;
        while let Some(dl) = self.next_deadline() {
            if dl > until {
                break;
            }
            self.clock.advance_to(dl);
            self.fire_due();
        }
        self.clock.advance_to(until);
        self.fire_due();
    }

    fn wait_until(
        &mut self,
        timeout: Duration,
        cond: &mut dyn FnMut(&Observed, &Host) -> bool,
    ) -> bool {
        self.pump();
        let until = self.now() + timeout;
        loop {
            if cond(&self.obs, &self.host) {
                return true;
            }
            match self.next_deadline() {
                Some(dl) if dl <= until => {
                    self.clock.advance_to(dl);
                    self.fire_due();
                }
                _ => {
                    self.clock.advance_to(until);
                    self.fire_due();
                    return cond(&self.obs, &self.host);
                }
            }
        }
    }

    fn observed(&self) -> &Observed {
        &self.obs
    }

    fn observed_mut(&mut self) -> &mut Observed {
        &mut self.obs
    }

    fn recorder(&mut self) -> &mut Recorder {
        &mut self.rec
    }

    fn profile(&self) -> &TerminalProfile {
        &self.cfg.profile
    }

    fn card_fixture(&self, name: &str) -> Option<CardFixture> {
        self.cards.get(name).cloned()
    }

    /// Runs until nothing has happened for one second of terminal time — the same rule the
    /// wall-clock rigs follow, so what an action causes lands in that action's step on every rig.
    fn settle(&mut self) {
        self.pump();
        let quiet = Duration::from_secs(1);
        let mut last = self.now();
        loop {
            match self.next_deadline() {
                Some(d) if d <= last + quiet => {
                    self.clock.advance_to(d);
                    let before = self.rec.transcript.len_entries();
                    self.fire_due();
                    if self.rec.transcript.len_entries() != before {
                        last = self.now();
                    }
                }
                _ => break,
            }
        }
    }
}
