//! The emulator as a child process (`posrig emulate`), reached over real lines: ZVT over TCP
//! on loopback, or ZVT serial framing over a pseudo-terminal pair the runner creates; the rig
//! link on TCP for keys, cards, faults and what the terminal shows; the acquirer simulator in
//! the runner behind its TCP adapter. The clock is the wall clock scaled by the rig's
//! `time_scale`, for the emulator and the runner alike, so a 60 s host timeout passes in 3 s at
//! scale 20. A power cut is a SIGKILL; power back is a restart on the same journal file.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command as Proc, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acquirer::Host;
use emulator::journal::{JournalStore, SqliteStore, sqlite::Durability};
use protocol::fixture::cards::{CardFixture, CardSet};
use protocol::fixture::terminal::TerminalProfile;
use protocol::riglink::{
    CardAction, CardName, ClientEvent, ClientSession, GetWhat, KeyName, LedState, Report, Request,
};
use protocol::time::{Clock, Instant, WallClock};
use protocol::zvt::command::CommandKind;
use protocol::zvt::ecr::{Reply, Times};
use protocol::zvt::transport::Transport;

use super::ecr_side::{EcrSide, OnTheLine};
use super::emulated::{Setup, setup};
use crate::rig::LoadedRig;
use crate::rig::model::{LinkMode, Transport as RigTransport};
use crate::runner::{
    CardAct, Failure, Finished, LineFaults, Observed, Recorder, World, WorldFault,
};
use crate::scenario::load::{LoadedScenario, Variant};
use crate::scenario::model::Failpoint;
use crate::transcript::{Channel, Item};

/// Runs one scenario variant on an emulator-process rig.
pub fn run(
    ls: &LoadedScenario,
    v: &Variant,
    rig: &LoadedRig,
) -> Result<(Vec<Failure>, Finished), String> {
    let mut w = ProcessWorld::build(ls, v, rig)?;
    let failures = crate::runner::steps::execute(&mut w, ls, v);
    Ok((failures, w.finish()))
}

/// What the reader threads report.
enum Ev {
    Ecr(Vec<u8>),
    EcrClosed,
    Signals(Vec<u8>),
    SignalsClosed,
    Stderr(String),
}

/// The binary that serves `posrig emulate`: this one, unless `POSRIG_BIN` says otherwise.
fn posrig_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("POSRIG_BIN") {
        return PathBuf::from(p);
    }
    match std::env::current_exe() {
        Ok(p)
            if p.file_stem()
                .is_some_and(|s| s.to_string_lossy().starts_with("posrig")) =>
        {
            p
        }
        _ => PathBuf::from("posrig"),
    }
}

enum EcrLine {
    Tcp(TcpStream),
    Pty(Box<dyn serialport::SerialPort>),
}

impl EcrLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            EcrLine::Tcp(s) => s.write_all(b),
            EcrLine::Pty(p) => p.write_all(b),
        }
    }
}

pub struct ProcessWorld {
    clock: WallClock,
    scale: f64,
    start: Instant,
    rt: tokio::runtime::Runtime,
    host: Arc<Mutex<Host>>,
    acquirer: Option<acquirer::tcp::ServeHandle>,
    acquirer_addr: String,
    host_seen: usize,
    _tmp: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
    ev_tx: Sender<Ev>,
    ev_rx: Receiver<Ev>,
    ecr_addr: Option<String>,
    /// The pseudo-terminal's slave path (serial rigs).
    pty_path: Option<String>,
    /// Our end of the pseudo-terminal, kept for the whole run.
    pty_master: Option<serialport::TTYPort>,
    /// Keeps the slave open so the master never reads EIO while the emulator restarts.
    _pty_slave: Option<serialport::TTYPort>,
    ecr_line: Option<EcrLine>,
    ecr: EcrSide,
    signals: Option<TcpStream>,
    signals_addr: Option<String>,
    rig: ClientSession,
    cards: Arc<CardSet>,
    profile: TerminalProfile,
    obs: Observed,
    rec: Recorder,
    printer: protocol::escpos::Parser,
    host_down: bool,
    powered_once: bool,
    /// Something happened since this wall instant (for `settle`).
    last_activity: std::time::Instant,
}

impl ProcessWorld {
    pub fn build(
        ls: &LoadedScenario,
        v: &Variant,
        rig: &LoadedRig,
    ) -> Result<ProcessWorld, String> {
        let Setup {
            profile,
            keys: _,
            cards,
            host,
            start,
            journal_ops,
        } = setup(ls, v)?;
        let scale = rig.file.time_scale.unwrap_or(1.0);
        let clock = WallClock::starting_at(start, scale);
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let journal = tmp.path().join("journal.db");
        {
            let mut store =
                SqliteStore::open(&journal, Durability::Full).map_err(|e| e.to_string())?;
            store.commit(&journal_ops).map_err(|e| e.to_string())?;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let host = Arc::new(Mutex::new(host));
        let clock_arc: Arc<dyn Clock> = Arc::new(clock.clone());
        let acq = rt
            .block_on(acquirer::tcp::serve("127.0.0.1:0", host.clone(), clock_arc))
            .map_err(|e| format!("acquirer: {e}"))?;
        let acquirer_addr = acq.local_addr().to_string();
        let link = rig
            .file
            .ecr
            .as_ref()
            .map(|e| e.link_mode())
            .unwrap_or(LinkMode::ZvtTcp);
        let serial = rig
            .file
            .ecr
            .as_ref()
            .is_some_and(|e| e.transport == RigTransport::Serial);
        let s = &ls.scenario;
        let sub = |x: &str| crate::runner::steps::subst(x, &v.vars);
        let profile_path = ls.resolve(&sub(&s.terminal.value)?);
        let keys_path = ls.resolve(
            &s.fixtures
                .keys
                .as_ref()
                .map(|k| sub(&k.value))
                .transpose()?
                .unwrap_or_else(|| "fixtures/keys/test-keys.yaml".into()),
        );
        let cards_dir = ls.resolve(
            &s.fixtures
                .cards
                .as_ref()
                .map(|k| sub(&k.value))
                .transpose()?
                .unwrap_or_else(|| "fixtures/cards".into()),
        );
        let (pty_master, pty_slave, pty_path) = if serial {
            let (m, sl) = pty_pair()?;
            let path = serialport::SerialPort::name(&sl).ok_or("pseudo-terminal without a name")?;
            (Some(m), Some(sl), Some(path))
        } else {
            (None, None, None)
        };
        let ecr_arg = match &pty_path {
            Some(p) => format!("serial://{p}?baud=9600"),
            None => "tcp://127.0.0.1:0".to_string(),
        };
        let start_rfc = start.to_local(profile.time_zone).to_rfc3339();
        let args = vec![
            "emulate".into(),
            "--profile".into(),
            profile_path.display().to_string(),
            "--cards".into(),
            cards_dir.display().to_string(),
            "--keys".into(),
            keys_path.display().to_string(),
            "--journal".into(),
            journal.display().to_string(),
            "--ecr".into(),
            ecr_arg,
            "--signals".into(),
            "tcp://127.0.0.1:0".into(),
            "--host".into(),
            format!("tcp://{acquirer_addr}"),
            "--time-scale".into(),
            scale.to_string(),
            "--clock".into(),
            start_rfc,
        ];
        let (ev_tx, ev_rx) = channel();
        let transport = if link == LinkMode::ZvtSerial {
            // T1 is a property of the line: 200 ms of wall time whatever the scale.
            Transport::serial(
                protocol::zvt::link::LinkConfig {
                    trace: ls.scenario.link_events,
                    ..Default::default()
                }
                .for_time_scale(scale),
            )
        } else {
            Transport::tcp()
        };
        let today = start.to_local(profile.time_zone).date_naive();
        let w = ProcessWorld {
            clock,
            scale,
            start,
            rt,
            host,
            acquirer: Some(acq),
            acquirer_addr,
            host_seen: 0,
            _tmp: tmp,
            args,
            child: None,
            ev_tx,
            ev_rx,
            ecr_addr: None,
            pty_path,
            pty_master,
            _pty_slave: pty_slave,
            ecr_line: None,
            ecr: EcrSide::new(transport),
            signals: None,
            signals_addr: None,
            rig: ClientSession::new(Duration::from_secs(5), 3),
            cards,
            profile,
            obs: Observed::default(),
            rec: Recorder::new(today, ls.scenario.link_events),
            printer: protocol::escpos::Parser::new(),
            host_down: false,
            powered_once: false,
            last_activity: std::time::Instant::now(),
        };
        // Powered on by the runner once the host directives are installed.
        Ok(w)
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Virtual duration → wall duration.
    fn wall(&self, d: Duration) -> Duration {
        Duration::from_secs_f64(d.as_secs_f64() / self.scale)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Proc::new(posrig_bin())
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", posrig_bin().display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        self.child = Some(child);
        let (lines_tx, lines_rx) = channel::<String>();
        let tx = self.ev_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line.clone());
                let _ = tx.send(Ev::Stderr(line));
            }
        });
        // Wait for the listeners.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut ecr = None;
        let mut signals = None;
        while (ecr.is_none() && self.pty_path.is_none()) || signals.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = lines_rx
                .recv_timeout(left)
                .map_err(|_| "posrig emulate did not report its listeners in time".to_string())?;
            if let Some(a) = line.strip_prefix("listening ecr ") {
                ecr = Some(a.trim().to_string());
            } else if let Some(a) = line.strip_prefix("listening signals ") {
                signals = Some(a.trim().to_string());
            } else if line.contains("error") {
                return Err(format!("posrig emulate: {line}"));
            }
        }
        self.ecr_addr = ecr;
        self.signals_addr = signals.clone();
        let sig = TcpStream::connect(signals.as_deref().unwrap_or_default())
            .map_err(|e| format!("signals: {e}"))?;
        let _ = sig.set_nodelay(true);
        let mut reader = sig.try_clone().map_err(|e| e.to_string())?;
        let tx = self.ev_tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Ev::SignalsClosed);
                        break;
                    }
                    Ok(n) => {
                        let _ = tx.send(Ev::Signals(buf[..n].to_vec()));
                    }
                }
            }
        });
        self.signals = Some(sig);
        self.rig = ClientSession::new(Duration::from_secs(5), 3);
        self.obs.powered = true;
        // What the terminal showed before we connected.
        self.rig_request(Request::Get(GetWhat::Display))?;
        self.rig_request(Request::Get(GetWhat::Leds))?;
        // Serial: the line is ours already; start reading it once.
        if self.pty_master.is_some() && self.ecr_line.is_none() {
            let master = self.pty_master.as_ref().ok_or("pty")?;
            let mut r = master.try_clone_native().map_err(|e| e.to_string())?;
            let w = master.try_clone_native().map_err(|e| e.to_string())?;
            let tx = self.ev_tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => std::thread::sleep(Duration::from_millis(5)),
                        Ok(n) => {
                            if tx.send(Ev::Ecr(buf[..n].to_vec())).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            self.ecr_line = Some(EcrLine::Pty(Box::new(w)));
        }
        Ok(())
    }

    /// ZVT over TCP: the ECR opens the connection when it has something to send.
    fn ecr_connect(&mut self) -> Result<(), String> {
        if self.ecr_line.is_some() {
            return Ok(());
        }
        let addr = self.ecr_addr.clone().ok_or("no ECR address")?;
        let s = TcpStream::connect(&addr).map_err(|e| format!("ECR connect {addr}: {e}"))?;
        let _ = s.set_nodelay(true);
        let mut reader = s.try_clone().map_err(|e| e.to_string())?;
        let tx = self.ev_tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Ev::EcrClosed);
                        break;
                    }
                    Ok(n) => {
                        let _ = tx.send(Ev::Ecr(buf[..n].to_vec()));
                    }
                }
            }
        });
        self.ecr_line = Some(EcrLine::Tcp(s));
        Ok(())
    }

    fn deadline_wall(&self) -> Option<std::time::Instant> {
        let d = [self.ecr.session.poll_timeout(), self.rig.poll_timeout()]
            .into_iter()
            .flatten()
            .min()?;
        Some(std::time::Instant::now() + self.clock.wall_until(d))
    }

    /// Processes events until `until` (wall).
    fn pump_until(&mut self, until: std::time::Instant) {
        loop {
            self.flush();
            let now_wall = std::time::Instant::now();
            if now_wall >= until {
                break;
            }
            let mut wait = until - now_wall;
            if let Some(d) = self.deadline_wall() {
                wait = wait.min(d.saturating_duration_since(now_wall));
            }
            match self.ev_rx.recv_timeout(wait.max(Duration::from_millis(1))) {
                Ok(ev) => self.on_ev(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = self.now();
            if self.ecr.session.poll_timeout().is_some_and(|d| d <= now) {
                self.ecr.session.handle_timeout(now);
            }
            if self.rig.poll_timeout().is_some_and(|d| d <= now) {
                self.rig.handle_timeout(now);
            }
        }
        self.flush();
    }

    /// Sends what the sessions want to send, handles what they learned, syncs the host log.
    fn flush(&mut self) {
        let now = self.now();
        while let Some(b) = self.ecr.session.poll_transmit(now) {
            self.ecr_write(b);
        }
        if self.ecr.observe(&mut self.obs, &mut self.rec) {
            self.touch();
        }
        while let Some(line) = self.rig.poll_transmit() {
            if let Some(s) = self.signals.as_mut() {
                let _ = s.write_all(line.as_bytes());
            }
        }
        while let Some(ev) = self.rig.poll_event() {
            self.on_rig_event(ev);
        }
        self.sync_host_log();
    }

    fn touch(&mut self) {
        self.last_activity = std::time::Instant::now();
    }

    fn ecr_write(&mut self, b: Vec<u8>) {
        let b = match self.ecr.on_the_line(b, &mut self.rec) {
            OnTheLine::Lost => return,
            OnTheLine::Now(b) => b,
            OnTheLine::After(d, b) => {
                std::thread::sleep(self.wall(d));
                b
            }
        };
        let t = self.now().as_millis() - self.start.as_millis();
        if b.len() > 1 {
            self.rec.raw("ecr-out-line", t, &crate::redact::zvt(&b));
        }
        if let Some(l) = self.ecr_line.as_mut()
            && l.write(&b).is_err()
        {
            self.ecr_line = None;
        }
    }

    fn on_ev(&mut self, ev: Ev) {
        let now = self.now();
        match ev {
            Ev::Ecr(b) => {
                self.touch();
                let t = now.as_millis() - self.start.as_millis();
                self.rec.raw("ecr-in", t, &b);
                self.ecr.session.handle_input(&b, now);
            }
            Ev::EcrClosed => {
                if matches!(self.ecr_line, Some(EcrLine::Tcp(_))) {
                    self.ecr_line = None;
                }
            }
            Ev::Signals(b) => {
                self.touch();
                self.rig.handle_input(&b, now);
            }
            Ev::SignalsClosed => {}
            Ev::Stderr(l) => {
                if l.contains("panicked") {
                    self.rec.push(Channel::Note, format!("emulator: {l}"));
                }
            }
        }
    }

    fn on_rig_event(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Event { report, .. } => {
                self.touch();
                self.on_report(report);
            }
            ClientEvent::Reply {
                result: Ok(Some(report)),
                ..
            } => self.on_report(report),
            ClientEvent::Reply { .. }
            | ClientEvent::EventGap { .. }
            | ClientEvent::Timeout { .. }
            | ClientEvent::LinkError { .. }
            | ClientEvent::Malformed(_) => {}
        }
    }

    fn on_report(&mut self, r: Report) {
        match r {
            Report::Display { lines } => {
                self.obs.display = lines.clone();
                self.rec
                    .push(Channel::Display, crate::transcript::display_text(&lines));
            }
            Report::Printer { bytes, .. } => {
                self.printer.feed(&bytes);
                while let Some(rc) = self.printer.poll_receipt() {
                    let text = protocol::escpos::render_text(&rc, self.profile.printer.width);
                    self.obs.printer_text.push_str(&text);
                    self.obs.receipts += 1;
                    let title = format!("receipt #{}", self.obs.receipts);
                    self.rec
                        .item(Channel::Printer, Item::Receipt { title, text });
                }
            }
            Report::Leds(l) if l != self.obs.leds => {
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
            Report::Beep { tone, .. } => {
                self.obs.beeps.push(tone);
                self.rec.push(Channel::Beeper, tone.as_str().to_lowercase());
            }
            Report::Power(on) => self.obs.powered = on,
            _ => {}
        }
    }

    fn sync_host_log(&mut self) {
        let Ok(host) = self.host.lock() else { return };
        let log = host.log();
        if self.host_seen >= log.len() {
            return;
        }
        let seen = std::mem::replace(&mut self.host_seen, log.len());
        self.rec.host_exchanges(log.get(seen..).unwrap_or_default());
        drop(host);
        self.touch();
    }

    /// Sends a rig-link request and waits for its reply.
    fn rig_request(&mut self, r: Request) -> Result<(), String> {
        let now = self.now();
        let seq = self.rig.send(r, now).map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            self.flush();
            // Replies are consumed by flush(); a finished request leaves the session idle.
            if self.rig.is_idle() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!("rig link: no reply to request {seq}"));
            }
            let t = std::time::Instant::now() + Duration::from_millis(5);
            self.pump_until(t);
        }
    }

    /// Runs until nothing has happened for one second of terminal time.
    fn settle_quiet(&mut self) {
        let quiet = self
            .wall(Duration::from_secs(1))
            .max(Duration::from_millis(40));
        let cap = std::time::Instant::now() + Duration::from_secs(10);
        self.touch();
        loop {
            let now = std::time::Instant::now();
            if self.ecr.owes_more() && now < cap {
                // A stream of receipt lines is not over because the machine paused.
                self.pump_until((now + quiet).min(cap));
                continue;
            }
            let until = (self.last_activity + quiet).min(cap);
            if now >= until {
                break;
            }
            self.pump_until(until);
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL on unix: a power cut, not a shutdown
            let _ = c.wait();
        }
        self.signals = None;
        if matches!(self.ecr_line, Some(EcrLine::Tcp(_))) {
            self.ecr_line = None;
        }
    }

    pub fn finish(mut self) -> Finished {
        self.settle_quiet();
        self.kill();
        if let Some(a) = self.acquirer.take() {
            self.rt.block_on(a.shutdown());
        }
        Finished {
            transcript: self.rec.transcript.render(),
            terminal_id: self.profile.terminal_id.clone(),
            dialect: self.profile.dialect.clone(),
            sw_version: self
                .obs
                .ecr
                .sw_version
                .clone()
                .or(Some(self.profile.software_version.clone())),
            raw: std::mem::take(&mut self.rec.raw),
        }
    }
}

impl Drop for ProcessWorld {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A pseudo-terminal pair; creation is serialised (serialport's `pair` is not thread-safe).
fn pty_pair() -> Result<(serialport::TTYPort, serialport::TTYPort), String> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().map_err(|_| "pty lock poisoned")?;
    serialport::TTYPort::pair().map_err(|e| format!("pseudo-terminal: {e}"))
}

impl World for ProcessWorld {
    fn key(&mut self, k: KeyName) -> Result<(), String> {
        self.rig_request(Request::Key(k))
    }

    fn card(&mut self, a: &CardAct) -> Result<(), String> {
        let name = |n: &str| {
            CardName::new(n)
                .ok_or_else(|| format!("{n:?} is not a card name the rig link can carry"))
        };
        let act = match a {
            CardAct::Swipe(n) => CardAction::Swipe(name(n)?),
            CardAct::Insert(n) => CardAction::Insert(name(n)?),
            CardAct::Tap(n) => CardAction::Tap(name(n)?),
            CardAct::Remove => CardAction::Remove,
        };
        self.rig_request(Request::Card(act))
    }

    fn fault(&mut self, f: WorldFault, on: bool) -> Result<(), String> {
        match f {
            WorldFault::Device(kind) => self.rig_request(Request::Fault { kind, on }),
            WorldFault::HostDown => {
                if on && !self.host_down {
                    if let Some(a) = self.acquirer.take() {
                        self.rt.block_on(a.shutdown());
                    }
                } else if !on && self.host_down {
                    let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
                    let a = self
                        .rt
                        .block_on(acquirer::tcp::serve(
                            &self.acquirer_addr,
                            self.host.clone(),
                            clock,
                        ))
                        .map_err(|e| e.to_string())?;
                    self.acquirer = Some(a);
                }
                self.host_down = on;
                Ok(())
            }
        }
    }

    fn power(&mut self, on: bool) -> Result<(), String> {
        if on {
            if self.child.is_some() {
                return Ok(());
            }
            if self.powered_once {
                self.rec.push(Channel::Note, "power restored".into());
            }
            self.powered_once = true;
            self.spawn()
        } else {
            self.kill();
            self.obs.powered = false;
            self.obs.display.clear();
            self.ecr.reset();
            self.printer = protocol::escpos::Parser::new();
            self.rec.push(Channel::Note, "power cut".into());
            Ok(())
        }
    }

    fn paper_out_after(&mut self, receipts: u32) -> Result<(), String> {
        if receipts == 0 {
            return self.rig_request(Request::Fault {
                kind: protocol::riglink::FaultKind::PaperOut,
                on: true,
            });
        }
        // Counting receipts from outside races the printer: only the in-process rig can.
        Err("running the paper out after N receipts needs the in-process rig".into())
    }

    fn arm_power_cut(&mut self, at: Failpoint) -> Result<(), String> {
        Err(format!(
            "a power cut at {} needs the in-process rig",
            at.name()
        ))
    }

    fn ecr_send(&mut self, apdu: Vec<u8>) -> Result<(), String> {
        self.ecr_connect()?;
        let now = self.now();
        let t = now.as_millis() - self.start.as_millis();
        self.ecr.send(apdu, now, t, &mut self.rec)?;
        self.flush();
        Ok(())
    }

    fn ecr_reply(&mut self, kind: CommandKind, reply: Reply, times: Times) {
        self.ecr.set_reply(kind, reply, times);
    }

    fn ecr_inject(&mut self, bytes: &[u8]) -> Result<(), String> {
        EcrSide::note_injected(bytes, &mut self.rec);
        self.ecr_connect()?;
        if let Some(l) = self.ecr_line.as_mut() {
            l.write(bytes).map_err(|e| e.to_string())?;
        }
        // A frame broken off is dropped when T1 passes on the line — 200 ms of wall time
        // whatever the time scale, longer than a scaled settle: let it pass here, so the
        // terminal's answer to the broken frame belongs to this step on every rig.
        let t1 = protocol::zvt::link::LinkConfig::default().t1;
        self.pump_until(std::time::Instant::now() + t1 + Duration::from_millis(50));
        Ok(())
    }

    fn ecr_line_faults(&mut self, f: LineFaults) {
        self.ecr.add_faults(f);
    }

    fn ecr_disconnect(&mut self) -> Result<(), String> {
        if let Some(EcrLine::Tcp(s)) = self.ecr_line.take() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        self.ecr.reset();
        self.rec
            .push(Channel::Note, "ECR connection dropped".into());
        Ok(())
    }

    fn with_host<R>(&mut self, f: impl FnOnce(&mut Host) -> R) -> R {
        let mut g = match self.host.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    fn advance(&mut self, d: Duration) {
        let until = std::time::Instant::now() + self.wall(d);
        self.pump_until(until);
    }

    fn wait_until(
        &mut self,
        timeout: Duration,
        cond: &mut dyn FnMut(&Observed, &Host) -> bool,
    ) -> bool {
        let until = std::time::Instant::now() + self.wall(timeout);
        loop {
            self.flush();
            let holds = match self.host.lock() {
                Ok(h) => cond(&self.obs, &h),
                Err(p) => cond(&self.obs, &p.into_inner()),
            };
            if holds {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            let slice = std::time::Instant::now() + Duration::from_millis(5);
            self.pump_until(slice.min(until));
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
        &self.profile
    }

    fn card_fixture(&self, name: &str) -> Option<CardFixture> {
        self.cards.get(name).cloned()
    }

    fn settle(&mut self) {
        self.settle_quiet();
    }
}
