//! The terminal world: a terminal reached only from outside, the way a lab reaches one. It
//! knows nothing of the emulator. It plays the cash register on the ECR line the rig names (a
//! serial device with the rig's baud, parity and stop bits, or TCP), runs the acquirer
//! simulator on the rig's `acquirer.listen`, switches power with the rig's commands, and acts
//! through the rig controller (`signals:`) when there is one — otherwise it asks the operator on
//! the console.
//!
//! What differs between a real terminal and `posrig emulate` as a child process is only how
//! power and reachability work: that is a [`Device`]. `rig/process.rs` is this world plus a
//! device that spawns the emulator.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use acquirer::Host;
use protocol::fixture::cards::{CardFixture, CardSet};
use protocol::fixture::terminal::TerminalProfile;
use protocol::riglink::{
    CardAction, CardName, ClientEvent, ClientSession, GetWhat, KeyName, LedState, Report, Request,
};
use protocol::time::{Clock, Instant, WallClock};
use protocol::zvt::command::CommandKind;
use protocol::zvt::ecr::{Reply, Times};
use protocol::zvt::transport::Transport;
use serialport::SerialPort;

use super::ecr_side::{EcrSide, OnTheLine};
use super::emulated::{Setup, setup};
use crate::rig::LoadedRig;
use crate::rig::model::{EcrPort, FlowControl, LinkMode, Parity, Transport as RigTransport};
use crate::runner::{
    CardAct, Failure, Finished, LineFaults, Observed, Recorder, World, WorldFault,
};
use crate::scenario::load::{LoadedScenario, Variant};
use crate::scenario::model::Failpoint;
use crate::transcript::{Channel, Item};

/// Where a switched-on terminal can be reached.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// The ECR port over TCP (ZVT over TCP, or a serial line behind a TCP bridge).
    pub ecr_tcp: Option<String>,
    /// The rig controller (signals link), if the rig has one.
    pub signals: Option<String>,
}

/// How a terminal is switched and found: the part of a rig that is not a protocol.
pub trait Device: Send {
    /// Switches the terminal on (`first`: at the start of a scenario, when it may be on
    /// already) and returns once it can be reached; `acquirer` is where the host simulator
    /// listens for it.
    fn power_on(
        &mut self,
        first: bool,
        operator: &mut Operator,
        acquirer: &str,
    ) -> Result<Reach, String>;
    /// Cuts the power: a cut, not a shutdown.
    fn power_off(&mut self, operator: &mut Operator) -> Result<(), String>;
    /// What the device said on its own since the last call (an emulator's panic), for notes.
    fn notes(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// The ECR line, as the world was given it.
pub enum EcrAccess {
    /// A serial line, open for the whole run.
    Serial(Box<dyn SerialPort>),
    /// TCP: the ECR connects when it has something to send, to where [`Reach`] says.
    Tcp,
}

/// The person at the bench, asked on the console when the rig has no controller.
pub struct Operator {
    /// `None`: unattended — asking is an error, never a wait.
    timeout: Option<Duration>,
}

/// Lines typed on stdin, read by one thread for the whole process.
fn console() -> &'static Mutex<Receiver<String>> {
    static CONSOLE: OnceLock<Mutex<Receiver<String>>> = OnceLock::new();
    CONSOLE.get_or_init(|| {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Mutex::new(rx)
    })
}

impl Operator {
    pub fn attended(timeout: Duration) -> Operator {
        Operator {
            timeout: Some(timeout),
        }
    }
    pub fn unattended() -> Operator {
        Operator { timeout: None }
    }

    /// Asks for `what` and waits for ENTER; `pump` keeps the lines served while waiting.
    pub fn ask(&mut self, what: &str, pump: &mut dyn FnMut()) -> Result<(), String> {
        let Some(timeout) = self.timeout else {
            return Err(format!(
                "needs an operator to {what} (run without --unattended)"
            ));
        };
        eprintln!(
            "posrig: OPERATOR: {what}, then press ENTER here ({} s)",
            timeout.as_secs()
        );
        let rx = console().lock().map_err(|_| "console lock poisoned")?;
        // Lines typed before this question answer nothing.
        while rx.try_recv().is_ok() {}
        let until = std::time::Instant::now() + timeout;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(_) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "needs an operator to {what}, but the console is closed"
                    ));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if std::time::Instant::now() >= until {
                return Err(format!(
                    "the operator did not confirm within {} s: {what}",
                    timeout.as_secs()
                ));
            }
            pump();
        }
    }
}

/// A real terminal, switched by the rig's power commands (or the operator) and reached at the
/// addresses its rig file names.
pub struct RigTerminal {
    power: Option<crate::rig::model::PowerControl>,
    reach: Reach,
    boot: Duration,
}

impl RigTerminal {
    pub fn new(rig: &LoadedRig) -> RigTerminal {
        let f = &rig.file;
        RigTerminal {
            power: f.power.clone(),
            reach: Reach {
                ecr_tcp: f
                    .ecr
                    .as_ref()
                    .filter(|e| e.transport == RigTransport::Tcp)
                    .and_then(|e| e.address.clone()),
                signals: f.signals.as_ref().and_then(|s| s.address.clone()),
            },
            boot: Duration::from_secs(f.power.as_ref().map(|p| p.boot_timeout_s).unwrap_or(60)),
        }
    }

    fn shell(cmd: &str) -> Result<(), String> {
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("power command {cmd:?}: {e}"))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("power command {cmd:?} failed ({st})"))
        }
    }

    /// Waits until whatever the terminal serves over TCP accepts a connection.
    fn wait_reachable(&self, within: Duration) -> Result<(), String> {
        let target = self
            .reach
            .signals
            .as_deref()
            .or(self.reach.ecr_tcp.as_deref());
        let Some(addr) = target else {
            // A serial terminal without a controller: nothing to probe but time.
            std::thread::sleep(within.min(Duration::from_secs(5)));
            return Ok(());
        };
        let until = std::time::Instant::now() + within;
        loop {
            match probe(addr) {
                Ok(()) => return Ok(()),
                Err(e) if std::time::Instant::now() >= until => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Device for RigTerminal {
    fn power_on(
        &mut self,
        first: bool,
        operator: &mut Operator,
        _acquirer: &str,
    ) -> Result<Reach, String> {
        if !first {
            match &self.power {
                Some(p) => Self::shell(&p.on)?,
                None => operator.ask("switch the terminal ON", &mut || {})?,
            }
            self.wait_reachable(self.boot)?;
        }
        Ok(self.reach.clone())
    }

    fn power_off(&mut self, operator: &mut Operator) -> Result<(), String> {
        match &self.power {
            Some(p) => Self::shell(&p.off),
            None => operator.ask("switch the terminal OFF (pull the plug)", &mut || {}),
        }
    }
}

/// Connects once and lets go: is something listening at `addr`?
fn probe(addr: &str) -> Result<(), String> {
    let s = connect(addr, Duration::from_secs(3))?;
    let _ = s.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .collect();
    let mut last = format!("{addr}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("nothing answers at {addr}: {e}"),
        }
    }
    Err(last)
}

/// Opens a serial device with the rig's line settings.
pub fn open_serial(path: &str, e: &EcrPort) -> Result<Box<dyn SerialPort>, String> {
    let data_bits = match e.data_bits {
        5 => serialport::DataBits::Five,
        6 => serialport::DataBits::Six,
        7 => serialport::DataBits::Seven,
        _ => serialport::DataBits::Eight,
    };
    let parity = match e.parity {
        Parity::None => serialport::Parity::None,
        Parity::Even => serialport::Parity::Even,
        Parity::Odd => serialport::Parity::Odd,
    };
    let stop_bits = if e.stop_bits == 1 {
        serialport::StopBits::One
    } else {
        serialport::StopBits::Two
    };
    let flow = match e.flow_control {
        FlowControl::None => serialport::FlowControl::None,
        FlowControl::Hardware => serialport::FlowControl::Hardware,
        FlowControl::Software => serialport::FlowControl::Software,
    };
    serialport::new(path, e.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(flow)
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(|err| format!("cannot open the ECR line {path}: {err}"))
}

/// Checks before a suite starts that the rig's terminal is there: the ECR line opens or
/// answers, the rig controller answers, the acquirer's address can be bound. Never falls back
/// to anything else.
pub fn preflight(rig: &LoadedRig) -> Result<(), String> {
    let f = &rig.file;
    let ecr = f.ecr.as_ref().ok_or("the rig names no ECR port")?;
    match ecr.transport {
        RigTransport::Serial => {
            let path = ecr.device.as_deref().ok_or("ecr.device is missing")?;
            drop(open_serial(path, ecr)?);
        }
        RigTransport::Tcp => {
            let addr = ecr.address.as_deref().ok_or("ecr.address is missing")?;
            probe(addr).map_err(|e| format!("the terminal's ECR port: {e}"))?;
        }
    }
    if let Some(s) = f.signals.as_ref().and_then(|s| s.address.as_deref()) {
        probe(s).map_err(|e| format!("the rig controller: {e}"))?;
    }
    let listen = acquirer_listen(rig);
    std::net::TcpListener::bind(&listen)
        .map_err(|e| format!("the acquirer cannot listen on {listen}: {e}"))?;
    Ok(())
}

/// Where the acquirer simulator listens for a real terminal.
pub fn acquirer_listen(rig: &LoadedRig) -> String {
    let a = rig
        .file
        .acquirer
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:5000".into());
    a.strip_prefix("tcp://").map(str::to_string).unwrap_or(a)
}

/// Why a scenario cannot run on this real terminal although the rig has every capability it
/// requires: it was written for another terminal profile.
pub fn not_applicable(ls: &LoadedScenario, v: &Variant, rig: &LoadedRig) -> Option<String> {
    let mine = rig.file.profile.as_ref()?;
    let theirs = crate::runner::steps::subst(&ls.scenario.terminal.value, &v.vars).ok()?;
    let a = ls.resolve(&mine.value);
    let b = ls.resolve(&theirs);
    let same = match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    };
    (!same).then(|| {
        format!(
            "rig {} is a {} terminal; the scenario is written for {}",
            rig.name(),
            mine.value,
            theirs
        )
    })
}

/// Runs one scenario variant on a real terminal.
pub fn run(
    ls: &LoadedScenario,
    v: &Variant,
    rig: &LoadedRig,
) -> Result<(Vec<Failure>, Finished), String> {
    let clock = WallClock::new(rig.file.time_scale.unwrap_or(1.0));
    let mut s = setup(ls, v)?;
    // Deciseconds of the wall clock: RRNs unique across this terminal's scenarios and runs.
    s.host
        .number_from((clock.now().as_millis() / 100).unsigned_abs());
    if !s.journal_ops.is_empty() {
        return Err("a real terminal's journal cannot be preloaded".into());
    }
    let ecr = rig.file.ecr.as_ref().ok_or("the rig names no ECR port")?;
    let access = match ecr.transport {
        RigTransport::Serial => EcrAccess::Serial(open_serial(
            ecr.device.as_deref().ok_or("ecr.device is missing")?,
            ecr,
        )?),
        RigTransport::Tcp => EcrAccess::Tcp,
    };
    let operator = if rig.unattended {
        Operator::unattended()
    } else {
        Operator::attended(Duration::from_secs(rig.file.operator_timeout_s))
    };
    let parts = Parts {
        clock,
        listen: acquirer_listen(rig),
        access,
        link: ecr.link_mode(),
        device: Box::new(RigTerminal::new(rig)),
        operator,
        quiet: Duration::from_millis(rig.file.quiet_ms.unwrap_or(1000)),
    };
    let mut w = TerminalWorld::build(ls, s, parts)?;
    let failures = crate::runner::steps::execute(&mut w, ls, v, &|c| rig.provides(c));
    Ok((failures, w.finish()))
}

/// What differs between the rigs that use this world.
pub struct Parts {
    pub clock: WallClock,
    /// Where the acquirer listens (`127.0.0.1:0` picks a free port).
    pub listen: String,
    pub access: EcrAccess,
    pub link: LinkMode,
    pub device: Box<dyn Device>,
    pub operator: Operator,
    /// How long the terminal is quiet before a step is over (wall time).
    pub quiet: Duration,
}

/// What the reader threads report.
enum Ev {
    Ecr(Vec<u8>),
    EcrClosed,
    Signals(Vec<u8>),
    SignalsClosed,
}

/// A request as the rig link spells it (`CARD INSERT visa_credit_01`).
fn request_text(request: Request) -> String {
    let line = protocol::riglink::Line::Request { seq: None, request };
    protocol::riglink::encode_line(&line)
        .map(|l| l.trim_end().to_string())
        .unwrap_or_else(|_| format!("{line:?}"))
}

/// Forwards what arrives on a TCP connection as events, then one `closed` event.
fn read_into(
    s: &TcpStream,
    tx: &Sender<Ev>,
    data: fn(Vec<u8>) -> Ev,
    closed: Ev,
) -> Result<(), String> {
    let mut reader = s.try_clone().map_err(|e| e.to_string())?;
    let tx = tx.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(closed);
                    break;
                }
                Ok(n) => {
                    if tx.send(data(buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(())
}

enum EcrLine {
    Tcp(TcpStream),
    Serial(Box<dyn SerialPort>),
}

impl EcrLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            EcrLine::Tcp(s) => s.write_all(b),
            EcrLine::Serial(p) => p.write_all(b),
        }
    }
}

pub struct TerminalWorld {
    clock: WallClock,
    scale: f64,
    start: Instant,
    rt: tokio::runtime::Runtime,
    host: Arc<Mutex<Host>>,
    acquirer: Option<acquirer::tcp::ServeHandle>,
    acquirer_addr: String,
    host_seen: usize,
    device: Box<dyn Device>,
    operator: Operator,
    /// The device has been switched on at least once in this scenario.
    powered_once: bool,
    is_on: bool,
    reach: Reach,
    ev_tx: Sender<Ev>,
    ev_rx: Receiver<Ev>,
    ecr_line: Option<EcrLine>,
    /// A serial line stays ours for the whole run; TCP is reopened per connection.
    serial: bool,
    ecr: EcrSide,
    signals: Option<TcpStream>,
    rig: ClientSession,
    /// Why the controller refused (ERR) or never answered the request in flight.
    rig_refused: Option<String>,
    /// A host reply went to the terminal and it has not reacted yet (no controller event, no
    /// ECR bytes): until then, or this instant, a pause is the terminal at work (committing its
    /// journal to disk), not the end of a step.
    reaction_due: Option<std::time::Instant>,
    cards: Arc<CardSet>,
    profile: TerminalProfile,
    obs: Observed,
    rec: Recorder,
    printer: protocol::escpos::Parser,
    host_down: bool,
    /// Something happened since this wall instant (for `settle`).
    last_activity: std::time::Instant,
    quiet: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
    serial_reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TerminalWorld {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.ecr_line = None;
        if let Some(t) = self.serial_reader.take() {
            let _ = t.join();
        }
    }
}

impl TerminalWorld {
    pub fn build(ls: &LoadedScenario, s: Setup, parts: Parts) -> Result<TerminalWorld, String> {
        let Setup {
            profile,
            cards,
            host,
            ..
        } = s;
        let clock = parts.clock;
        let scale = clock.scale();
        let start = clock.now();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let host = Arc::new(Mutex::new(host));
        let clock_arc: Arc<dyn Clock> = Arc::new(clock.clone());
        let acq = rt
            .block_on(acquirer::tcp::serve(&parts.listen, host.clone(), clock_arc))
            .map_err(|e| format!("the acquirer cannot listen on {}: {e}", parts.listen))?;
        let acquirer_addr = acq.local_addr().to_string();
        let (ev_tx, ev_rx) = channel();
        let transport = if parts.link == LinkMode::ZvtSerial {
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
        let serial = matches!(parts.access, EcrAccess::Serial(_));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut ecr_line = None;
        let mut serial_reader = None;
        if let EcrAccess::Serial(port) = parts.access {
            let mut r = port.try_clone().map_err(|e| e.to_string())?;
            let tx = ev_tx.clone();
            let stop = stop.clone();
            // Reads with a short timeout so it notices the world is gone: the next scenario
            // opens the same device, which must not be held by this run any more.
            serial_reader = Some(std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
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
            }));
            ecr_line = Some(EcrLine::Serial(port));
        }
        let started = start.to_local(profile.time_zone).naive_local();
        Ok(TerminalWorld {
            clock,
            scale,
            start,
            rt,
            host,
            acquirer: Some(acq),
            acquirer_addr,
            host_seen: 0,
            device: parts.device,
            operator: parts.operator,
            powered_once: false,
            is_on: false,
            reach: Reach::default(),
            ev_tx,
            ev_rx,
            ecr_line,
            serial,
            ecr: EcrSide::new(transport),
            signals: None,
            rig: ClientSession::new(Duration::from_secs(5), 3),
            rig_refused: None,
            reaction_due: None,
            cards,
            profile,
            obs: Observed::default(),
            rec: Recorder::new(started, ls.scenario.link_events),
            printer: protocol::escpos::Parser::new(),
            host_down: false,
            last_activity: std::time::Instant::now(),
            quiet: parts.quiet,
            stop,
            serial_reader,
        })
    }

    /// Where the acquirer simulator listens (the terminal's host address).
    pub fn acquirer_addr(&self) -> &str {
        &self.acquirer_addr
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Terminal time → wall time.
    fn wall(&self, d: Duration) -> Duration {
        Duration::from_secs_f64(d.as_secs_f64() / self.scale)
    }

    /// Switches on and connects to what the terminal serves.
    fn switch_on(&mut self) -> Result<(), String> {
        let first = !self.powered_once;
        let reach = self
            .device
            .power_on(first, &mut self.operator, &self.acquirer_addr)?;
        self.powered_once = true;
        self.is_on = true;
        self.reach = reach;
        if let Some(addr) = self.reach.signals.clone() {
            let sig = connect(&addr, Duration::from_secs(5))
                .map_err(|e| format!("the rig controller: {e}"))?;
            read_into(&sig, &self.ev_tx, Ev::Signals, Ev::SignalsClosed)?;
            self.signals = Some(sig);
            self.rig = ClientSession::new(Duration::from_secs(5), 3);
            // A terminal outlives its scenarios: one that failed may have left its card in, and
            // every later insert would be refused. "No card inserted" is the usual answer.
            if first {
                let _ = self.rig_request(Request::Card(CardAction::Remove));
            }
            // What the terminal shows before anything happens.
            self.rig_request(Request::Get(GetWhat::Display))?;
            self.rig_request(Request::Get(GetWhat::Leds))?;
        }
        self.obs.powered = true;
        Ok(())
    }

    /// ZVT over TCP: the ECR opens the connection when it has something to send.
    fn ecr_connect(&mut self) -> Result<(), String> {
        if self.ecr_line.is_some() {
            return Ok(());
        }
        let addr = self
            .reach
            .ecr_tcp
            .clone()
            .ok_or("the terminal's ECR port is not reachable (is it on?)")?;
        let s = connect(&addr, Duration::from_secs(5))
            .map_err(|e| format!("the terminal's ECR port: {e}"))?;
        read_into(&s, &self.ev_tx, Ev::Ecr, Ev::EcrClosed)?;
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
        for n in self.device.notes() {
            self.rec.push(Channel::Note, n);
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
            && !self.serial
        {
            self.ecr_line = None;
        }
    }

    fn on_ev(&mut self, ev: Ev) {
        let now = self.now();
        match ev {
            Ev::Ecr(b) => {
                self.touch();
                self.reaction_due = None;
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
        }
    }

    fn on_rig_event(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Event { report, .. } => {
                self.touch();
                self.reaction_due = None;
                self.on_report(report);
            }
            ClientEvent::Reply {
                result: Ok(Some(report)),
                ..
            } => self.on_report(report),
            // A refused card or key did not happen: the step must fail here, not three steps
            // later with "no request arrived".
            ClientEvent::Reply {
                request,
                result: Err((code, text)),
                ..
            } => {
                self.rig_refused = Some(format!(
                    "the rig controller refused {}: {} {text}",
                    request_text(request),
                    code.as_str()
                ));
            }
            ClientEvent::Timeout { request, .. } => {
                self.rig_refused = Some(format!(
                    "the rig controller never answered {}",
                    request_text(request)
                ));
            }
            ClientEvent::Reply { .. }
            | ClientEvent::EventGap { .. }
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
        let new = log.get(seen..).unwrap_or_default();
        let replied = new
            .iter()
            .any(|e| e.direction == acquirer::log::Direction::Out && e.mti.is_some());
        self.rec.host_exchanges(new);
        drop(host);
        self.touch();
        if replied {
            // Long enough for a journal commit on a busy disk; a reply the terminal shows
            // nothing of (an advice's) costs no more than this.
            let window = Duration::from_millis(300).max(self.quiet);
            self.reaction_due = Some(std::time::Instant::now() + window);
        }
    }

    /// Sends a rig-link request and waits for its reply.
    fn rig_request(&mut self, r: Request) -> Result<(), String> {
        if self.signals.is_none() {
            return Err("this rig has no controller (`signals:`) to do that".into());
        }
        let now = self.now();
        self.rig_refused = None;
        let seq = self.rig.send(r, now).map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            self.flush();
            // Replies are consumed by flush(); a finished request leaves the session idle.
            if self.rig.is_idle() {
                return match self.rig_refused.take() {
                    Some(why) => Err(why),
                    None => Ok(()),
                };
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!("rig link: no reply to request {seq}"));
            }
            let t = std::time::Instant::now() + Duration::from_millis(5);
            self.pump_until(t);
        }
    }

    /// Asks the operator, serving the lines while they act.
    fn ask(&mut self, what: String) -> Result<(), String> {
        self.rec.push(Channel::Note, format!("operator: {what}"));
        let mut op = std::mem::replace(&mut self.operator, Operator::unattended());
        let r = op.ask(&what, &mut || {
            self.pump_until(std::time::Instant::now() + Duration::from_millis(30))
        });
        self.operator = op;
        r
    }

    /// Runs until the terminal has been quiet for the rig's quiet time.
    fn settle_quiet(&mut self) {
        let quiet = self.quiet;
        let cap = std::time::Instant::now() + Duration::from_secs(10);
        self.touch();
        loop {
            let now = std::time::Instant::now();
            let reacting = self.reaction_due.is_some_and(|due| now < due);
            if (self.ecr.owes_more() || reacting) && now < cap {
                // A stream of receipt lines is not over because the machine paused; nor is the
                // handling of a host reply before the terminal shows anything of it.
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

    /// Lets go of the connections to a terminal that went dark.
    fn disconnect(&mut self) {
        self.signals = None;
        if matches!(self.ecr_line, Some(EcrLine::Tcp(_))) {
            self.ecr_line = None;
        }
        self.is_on = false;
    }

    pub fn finish(mut self) -> Finished {
        self.settle_quiet();
        self.disconnect();
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

impl World for TerminalWorld {
    fn key(&mut self, k: KeyName) -> Result<(), String> {
        if self.signals.is_some() {
            return self.rig_request(Request::Key(k));
        }
        self.ask(format!("press {} on the terminal", k.as_str()))
    }

    fn card(&mut self, a: &CardAct) -> Result<(), String> {
        // The controller answers only while the terminal is on; a card taken out of a terminal
        // that is off leaves nothing to tell (the emulated rig records nothing either), and the
        // terminal boots with its reader empty.
        if !self.is_on && self.reach.signals.is_some() && matches!(a, CardAct::Remove) {
            return Ok(());
        }
        if self.signals.is_some() {
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
            return self.rig_request(Request::Card(act));
        }
        // The card by its fixture name and masked PAN: what is printed on the test card.
        let card = |n: &str| match self.cards.get(n) {
            Some(c) => format!("test card {n} ({})", c.pan()),
            None => format!("test card {n}"),
        };
        let what = match a {
            CardAct::Swipe(n) => format!("swipe {}", card(n)),
            CardAct::Insert(n) => format!("insert {}", card(n)),
            CardAct::Tap(n) => format!("tap {}", card(n)),
            CardAct::Remove => "remove the card".to_string(),
        };
        self.ask(what)
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
            if self.is_on {
                return Ok(());
            }
            if self.powered_once {
                self.rec.push(Channel::Note, "power restored".into());
            }
            self.switch_on()
        } else {
            let mut op = std::mem::replace(&mut self.operator, Operator::unattended());
            let r = self.device.power_off(&mut op);
            self.operator = op;
            r?;
            self.disconnect();
            self.obs.powered = false;
            self.obs.display.clear();
            // A terminal without power shows nothing and lights nothing.
            self.obs.leds = [LedState::Off; 4];
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
