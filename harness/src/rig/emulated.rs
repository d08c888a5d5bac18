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
use protocol::zvt::command::{Command, CommandKind};
use protocol::zvt::ecr::{EcrConfig, EcrEvent, EcrSession, Reply, Times};
use protocol::zvt::transport::Transport;

use super::cache;
use crate::render;
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
    ecr: EcrSession,
    line: LineFaults,
    /// ACKs held back by `delay_ack`, with when they go.
    delayed: VecDeque<(Instant, Vec<u8>)>,
    cards: std::sync::Arc<CardSet>,
    obs: Observed,
    rec: Recorder,
    printer: protocol::escpos::Parser,
    host_seen: usize,
    answering_enquiry: bool,
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
        let today = start.to_local(profile.time_zone).date_naive();
        let w = EmulatedWorld {
            clock: VirtualClock::new(start),
            start,
            term: None,
            cfg,
            store,
            host,
            conn: None,
            host_down: false,
            ecr: EcrSession::new(transport, EcrConfig::default()),
            line: LineFaults::default(),
            delayed: VecDeque::new(),
            cards,
            obs: Observed::default(),
            rec: Recorder::new(today, ls.scenario.link_events),
            printer: protocol::escpos::Parser::new(),
            host_seen: 0,
            answering_enquiry: false,
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
            while let Some(b) = self.ecr.poll_transmit(now) {
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
            while let Some(ev) = self.ecr.poll_event() {
                progressed = true;
                self.on_ecr_event(ev);
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

    fn ecr_to_terminal(&mut self, mut b: Vec<u8>) {
        let now = self.now();
        let is_ack = b == [0x06];
        if is_ack && self.line.drop_acks > 0 {
            self.line.drop_acks -= 1;
            self.rec.push(Channel::Link, "ECR ACK dropped".into());
            return;
        }
        if b.starts_with(&[0x10, 0x02]) && self.line.corrupt_frames > 0 && b.len() > 4 {
            self.line.corrupt_frames -= 1;
            let mid = b.len() / 2;
            b[mid] ^= 0x01;
            self.rec
                .push(Channel::Link, "ECR frame corrupted on the line".into());
        }
        if is_ack && let Some(d) = self.line.delay_ack.take() {
            self.delayed.push_back((now + d, b));
            return;
        }
        self.deliver(Event::EcrBytes(b));
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
                self.ecr.handle_input(&b, now);
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
        let new: Vec<acquirer::log::Exchange> = log[self.host_seen..].to_vec();
        self.host_seen = log.len();
        for x in new {
            let ch = match x.direction {
                acquirer::log::Direction::In => Channel::HostIn,
                acquirer::log::Direction::Out => Channel::HostOut,
            };
            let item = match &x.mti {
                Some(m) => Item::Iso {
                    mti: m.clone(),
                    fields: x.fields.clone(),
                    note: x.note.clone(),
                },
                None => match &x.note {
                    // Connection events are not behaviour of the terminal; keep the transcript
                    // to messages and problems.
                    Some(n) if n.contains("connected") || n.contains("closed by the terminal") => {
                        continue;
                    }
                    Some(n) => Item::Text(format!("[{n}]")),
                    None => continue,
                },
            };
            self.rec.item(ch, item);
        }
    }

    fn on_ecr_event(&mut self, ev: EcrEvent) {
        observe_ecr_event(
            ev,
            &mut self.obs,
            &mut self.rec,
            self.answering_enquiry,
            &mut self.ecr,
        );
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
            self.ecr.poll_timeout(),
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
        if self.ecr.poll_timeout().is_some_and(|d| d <= now) {
            self.ecr.handle_timeout(now);
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

/// Link traces worth a transcript line: repeats, NAKs, duplicates, broken frames — not the
/// ACK and first send of every frame.
pub fn notable_link_event(s: &str) -> bool {
    !(s == "AckSent" || s == "AckReceived" || s == "FrameSent { attempt: 1 }")
}

fn describe_enquiry(c: &Command) -> String {
    match c {
        Command::EnquiryCompletion(e) => format!(
            "sw={:?} status={}",
            e.sw_version
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default(),
            e.terminal_status
                .map(|s| format!("{s:02X}"))
                .unwrap_or_default()
        ),
        _ => String::new(),
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
        let now = self.now();
        self.answering_enquiry = apdu.starts_with(&[0x05, 0x01]);
        let t = self.elapsed_ms();
        self.rec.raw("ecr-out", t, &crate::redact::zvt(&apdu));
        self.rec.item(
            Channel::EcrOut,
            Item::Zvt {
                apdu: apdu.clone(),
                enquiry: false,
                suffix: String::new(),
            },
        );
        let r = if apdu.starts_with(&[0x06, 0xB0]) {
            self.ecr.abort(now)
        } else {
            self.ecr.start_apdu(apdu, now)
        };
        r.map_err(|e| e.to_string())?;
        self.pump();
        Ok(())
    }

    fn ecr_reply(&mut self, kind: CommandKind, reply: Reply, times: Times) {
        self.ecr.set_reply(kind, reply, times);
    }

    fn ecr_inject(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.rec.push(
            Channel::Link,
            format!("{} bytes of noise on the ECR line", bytes.len()),
        );
        self.deliver(Event::EcrBytes(bytes.to_vec()));
        self.pump();
        Ok(())
    }

    fn ecr_line_faults(&mut self, f: LineFaults) {
        self.line.drop_acks += f.drop_acks;
        self.line.corrupt_frames += f.corrupt_frames;
        if f.delay_ack.is_some() {
            self.line.delay_ack = f.delay_ack;
        }
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

/// What the ECR saw, into the observations and the transcript (every rig does the same).
pub fn observe_ecr_event(
    ev: EcrEvent,
    obs: &mut Observed,
    rec: &mut Recorder,
    answering_enquiry: bool,
    ecr: &mut EcrSession,
) {
    let render_cmd = |obs: &mut Observed, rec: &mut Recorder, c: &Command, replied: &Reply| {
        obs.ecr.messages += 1;
        let bytes = c.to_bytes().unwrap_or_default();
        let name = render::zvt_name(
            bytes.first().copied().unwrap_or(0),
            bytes.get(1).copied().unwrap_or(0),
        );
        let enquiry = answering_enquiry && matches!(c, Command::EnquiryCompletion(_));
        rec.item(
            Channel::EcrIn,
            Item::Zvt {
                apdu: bytes,
                enquiry,
                suffix: String::new(),
            },
        );
        match replied {
            Reply::Ack => {}
            Reply::Nack(code) => {
                rec.push(Channel::EcrOut, format!("84 {code:02X} nack (to {name})"))
            }
            Reply::Silent => rec.push(Channel::EcrOut, format!("(no answer to {name})")),
            Reply::Raw(r) => rec.item(
                Channel::EcrOut,
                Item::Zvt {
                    apdu: r.clone(),
                    enquiry: false,
                    suffix: format!(" (to {name})"),
                },
            ),
        }
    };
    match ev {
        EcrEvent::Accepted { implicit, .. } => {
            obs.ecr.accepted = Some(true);
            if !implicit {
                rec.push(Channel::EcrIn, "80 00 ack".into());
            }
        }
        EcrEvent::Refused { code, .. } => {
            obs.ecr.accepted = Some(false);
            obs.ecr.refused = Some(code);
            rec.push(Channel::EcrIn, format!("84 {code:02X} nack"));
        }
        EcrEvent::NoAnswer { .. } => {
            obs.ecr.no_answer = true;
            rec.push(Channel::Note, "ECR: no answer within T3".into());
        }
        EcrEvent::Intermediate { status, replied } => {
            obs.ecr.intermediate = Some(status.status);
            render_cmd(obs, rec, &Command::IntermediateStatus(status), &replied);
        }
        EcrEvent::StatusInfo { info, replied } => {
            let ext = |tag| {
                info.tlv
                    .as_deref()
                    .and_then(|t| {
                        protocol::tlv::find(t, protocol::tlv::Tag(tag))
                            .ok()
                            .flatten()
                    })
                    .map(|t| t.value.to_vec())
            };
            obs.ecr.extended_code = ext(0x1F16).map(|v| String::from_utf8_lossy(&v).into_owned());
            obs.ecr.extended_text = ext(0x1F17).map(|v| String::from_utf8_lossy(&v).into_owned());
            let c = Command::StatusInformation(info.clone());
            obs.ecr.last_status = Some(info);
            render_cmd(obs, rec, &c, &replied);
        }
        EcrEvent::PrintLine { line, replied } => {
            obs.ecr.text.push_str(&String::from_utf8_lossy(&line.text));
            obs.ecr.text.push('\n');
            if line.attribute & 0x80 != 0 {
                obs.ecr.receipts += 1;
            }
            render_cmd(obs, rec, &Command::PrintLine(line), &replied);
        }
        EcrEvent::PrintBlock { block, replied } => {
            for l in render::print_block_lines(&block.tlv) {
                obs.ecr.text.push_str(&l);
                obs.ecr.text.push('\n');
            }
            let text = render::print_block_lines(&block.tlv).join("\n");
            obs.ecr.messages += 1;
            obs.ecr.receipts += 1;
            rec.item(
                Channel::EcrIn,
                Item::Receipt {
                    title: "06 D3 print-text-block".into(),
                    text,
                },
            );
            if replied != Reply::Ack {
                rec.push(
                    Channel::EcrOut,
                    format!("{replied:?} (to print-text-block)"),
                );
            }
        }
        EcrEvent::SetDateTime { value, replied } => {
            render_cmd(obs, rec, &Command::SetDateTime(value), &replied)
        }
        EcrEvent::Completed {
            completion,
            replied,
        } => {
            obs.ecr.completed = true;
            render_cmd(obs, rec, &Command::Completion(completion), &replied);
        }
        EcrEvent::EnquiryCompleted {
            completion,
            replied,
        } => {
            obs.ecr.completed = true;
            obs.ecr.sw_version = completion
                .sw_version
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned());
            let c = Command::EnquiryCompletion(completion);
            rec.push(
                Channel::EcrIn,
                format!("06 0F completion (status enquiry) {}", describe_enquiry(&c)),
            );
            obs.ecr.messages += 1;
            if replied != Reply::Ack {
                rec.push(Channel::EcrOut, format!("{replied:?}"));
            }
        }
        EcrEvent::Aborted { abort, replied } => {
            obs.ecr.aborted = Some(abort.result);
            if let Ok(Some(c)) = abort.extended_error_code() {
                obs.ecr.extended_code = Some(String::from_utf8_lossy(c).into_owned());
            }
            if let Ok(Some(t)) = abort.extended_error_text() {
                obs.ecr.extended_text = Some(String::from_utf8_lossy(t).into_owned());
            }
            render_cmd(obs, rec, &Command::Abort(abort), &replied);
        }
        EcrEvent::OtherMessage { command, replied } => render_cmd(obs, rec, &command, &replied),
        EcrEvent::Undecodable { apdu, .. } => {
            rec.push(Channel::EcrIn, format!("undecodable {}", apdu.len()))
        }
        EcrEvent::AbortAnswered { code } => {
            let t = match code {
                None => "80 00 ack (abort)".to_string(),
                Some(c) => format!("84 {c:02X} nack (abort)"),
            };
            rec.push(Channel::EcrIn, t);
        }
        EcrEvent::AbortNoAnswer => rec.push(Channel::Note, "ECR: no answer to 06 B0".into()),
        EcrEvent::T4Expired => rec.push(Channel::Note, "ECR: T4 expired".into()),
        EcrEvent::UnexpectedAnswer { .. } => rec.push(Channel::Link, "unexpected answer".into()),
        EcrEvent::LinkFailed { .. } => rec.push(
            Channel::Note,
            "ECR: link failed (no ACK after repeats)".into(),
        ),
        EcrEvent::Noise { bytes } => {
            rec.push(Channel::Link, format!("noise {} bytes", bytes.len()))
        }
        EcrEvent::Link(trace) => {
            let s = format!("{trace:?}");
            if notable_link_event(&s) {
                rec.push(Channel::Link, format!("ECR {s}"));
            }
        }
        EcrEvent::TransportBroken(e) => {
            rec.push(Channel::Note, format!("ECR stream broken: {e}"));
            ecr.reset();
        }
    }
}
