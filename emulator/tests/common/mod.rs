//! A process-rig world in one test process: the acquirer simulator behind `acquirer::tcp`, the
//! emulator's runtime on real ports (127.0.0.1, port 0, or a pseudo-terminal), a ZVT ECR
//! (`protocol::zvt::ecr::EcrSession`) and a rig-link client (`protocol::riglink::ClientSession`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acquirer::tcp::ServeHandle;
use acquirer::{Directive, Host, HostConfig};
use emulator::core::{EcrLink, TerminalConfig};
use emulator::journal::sqlite::Durability;
use emulator::journal::{JournalOp, JournalState, JournalStore, Session, SqliteStore};
use emulator::ports::Endpoint;
use emulator::ports::runtime::{Emulator, EmulatorConfig, RunError};
use protocol::fixture::cards::{CardFixture, CardSet};
use protocol::fixture::journal::{JournalFixture, ResolveContext};
use protocol::fixture::keys::TestKeys;
use protocol::fixture::terminal::TerminalProfile;
use protocol::riglink::{ClientEvent, ClientSession, ErrCode, Report, Request};
use protocol::time::{Clock, Instant, WallClock};
use protocol::zvt::command::Command;
use protocol::zvt::ecr::{EcrConfig, EcrEvent, EcrSession};
use protocol::zvt::transport::Transport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The longest any single wait in these tests may take before it counts as a hang.
pub const LIMIT: Duration = Duration::from_secs(30);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixtures() -> PathBuf {
    root().join("fixtures")
}

pub fn cards() -> CardSet {
    CardFixture::load_dir(&fixtures().join("cards")).unwrap()
}

pub fn keys() -> TestKeys {
    TestKeys::from_path(&fixtures().join("keys/test-keys.yaml")).unwrap()
}

pub fn profile(name: &str) -> TerminalProfile {
    TerminalProfile::from_path(&fixtures().join("terminals").join(name)).unwrap()
}

/// The scenario clock: 10:00 local on 2026-11-26 in the profile's zone.
pub fn start_for(p: &TerminalProfile) -> Instant {
    let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    use chrono::TimeZone;
    let t = p.time_zone.from_local_datetime(&local).single().unwrap();
    Instant::from_millis(t.timestamp_millis())
}

/// How a world is built.
pub struct Spec {
    pub profile: &'static str,
    pub journal: Option<&'static str>,
    pub fees: Option<&'static str>,
    /// Preload a signed-on session with the acquirer's working keys.
    pub signed_on: bool,
    /// `None`: ECR on TCP, 127.0.0.1:0.
    pub ecr: Option<Endpoint>,
    /// `None`: the rig link on TCP, 127.0.0.1:0.
    pub signals: Option<Endpoint>,
    /// Point the terminal at this host instead of the simulator.
    pub host_override: Option<String>,
    pub scale: f64,
}

impl Spec {
    pub fn new(profile: &'static str) -> Spec {
        Spec {
            profile,
            journal: None,
            fees: None,
            signed_on: false,
            ecr: None,
            signals: None,
            host_override: None,
            scale: 1.0,
        }
    }
}

/// The acquirer and the SQLite journal, preloaded alike; no emulator yet.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub journal_path: PathBuf,
    pub profile: TerminalProfile,
    pub start: Instant,
    pub host: Arc<Mutex<Host>>,
    pub server: ServeHandle,
}

pub async fn setup(spec: &Spec) -> Setup {
    let profile = profile(spec.profile);
    let start = start_for(&profile);
    let fees = spec.fees.map(|f| fixtures().join("fees").join(f));
    let hc = HostConfig::from_fixtures(&fixtures(), &profile.dialect, fees.as_deref()).unwrap();
    let mut host = Host::new(hc);
    let keys = keys();
    let dir = tempfile::tempdir().unwrap();
    let journal_path = dir.path().join("journal.db");
    let mut ops = Vec::new();
    if let Some(j) = spec.journal {
        let fx = JournalFixture::from_path(&fixtures().join("journals").join(j)).unwrap();
        let set = cards();
        let lookup = |n: &str| set.get(n).map(|c| c.pan().clone());
        let txns = fx
            .resolve(&ResolveContext {
                now: start,
                time_zone: profile.time_zone,
                terminal_id: &profile.terminal_id,
                currency: profile.currency,
                card_pan: &lookup,
            })
            .unwrap();
        host.import(&txns);
        ops.extend(emulator::import::import_ops(
            &txns,
            &keys.pan_hash_key,
            &JournalState::default(),
        ));
    }
    if spec.signed_on {
        let wk = host.working_keys(&profile.terminal_id).unwrap();
        ops.push(JournalOp::SetSession(Session {
            signed_on: Some(start.to_local(profile.time_zone).date_naive().to_string()),
            mac_key: Some(wk.mac.expose().to_vec()),
            pin_key: Some(wk.pin.expose().to_vec()),
            resign_required: false,
        }));
    }
    let mut store = SqliteStore::open(&journal_path, Durability::Full).unwrap();
    store.commit(&ops).unwrap();
    drop(store);
    let host = Arc::new(Mutex::new(host));
    let server = acquirer::tcp::serve(
        "tcp://127.0.0.1:0",
        host.clone(),
        Arc::new(WallClock::starting_at(start, spec.scale)),
    )
    .await
    .unwrap();
    Setup {
        dir,
        journal_path,
        profile,
        start,
        host,
        server,
    }
}

impl Setup {
    /// Scripts the acquirer's answer to its next matching request.
    pub fn script(&self, d: Directive) {
        self.host.lock().unwrap().script(d);
    }

    /// Every message the acquirer logged, in order: `"in 0200 4=000000001000 39=-"`.
    pub fn host_messages(&self) -> Vec<String> {
        self.host
            .lock()
            .unwrap()
            .log()
            .iter()
            .filter(|e| e.is_message())
            .map(|e| {
                format!(
                    "{} {} 4={} 39={}",
                    match e.direction {
                        acquirer::Direction::In => "in",
                        acquirer::Direction::Out => "out",
                    },
                    e.mti.as_deref().unwrap_or("?"),
                    e.field("4").unwrap_or("-"),
                    e.field("39").unwrap_or("-"),
                )
            })
            .collect()
    }

    /// The journal as committed on disk.
    pub fn journal(&self) -> JournalState {
        SqliteStore::open(&self.journal_path, Durability::Normal)
            .unwrap()
            .load()
            .unwrap()
    }
}

/// A running emulator.
pub struct Running {
    pub ecr_addr: Option<SocketAddr>,
    pub signals_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
}

impl Running {
    /// Stops it (as Ctrl-C would) and checks it ended cleanly.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(LIMIT, t)
                .await
                .expect("the emulator did not stop")
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

pub async fn start(setup: &Setup, spec: &Spec) -> Running {
    let cfg = TerminalConfig::new(setup.profile.clone(), &keys(), None, EcrLink::Tcp).unwrap();
    let host = spec
        .host_override
        .clone()
        .unwrap_or_else(|| format!("tcp://{}", setup.server.local_addr()));
    let emu = Emulator::bind(EmulatorConfig {
        terminal: cfg,
        cards: cards(),
        journal: setup.journal_path.clone(),
        durability: Durability::Full,
        ecr: spec
            .ecr
            .clone()
            .unwrap_or_else(|| Endpoint::Tcp("127.0.0.1:0".into())),
        signals: spec
            .signals
            .clone()
            .unwrap_or_else(|| Endpoint::Tcp("127.0.0.1:0".into())),
        host,
        clock: WallClock::starting_at(setup.start, spec.scale),
        listen_any: false,
    })
    .await
    .unwrap();
    let ecr_addr = emu.ecr_addr();
    let signals_addr = emu.signals_addr();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(emu.run_until(async move {
        let _ = rx.await;
    }));
    Running {
        ecr_addr,
        signals_addr,
        stop: Some(tx),
        task: Some(task),
    }
}

// ---- the ECR ----

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The cash register: `EcrSession` over a real stream.
pub struct Ecr {
    io: Box<dyn Io>,
    pub s: EcrSession,
    clock: WallClock,
    buf: Vec<u8>,
    /// Every event seen, in order.
    pub seen: Vec<EcrEvent>,
}

impl Ecr {
    pub async fn tcp(addr: SocketAddr) -> Ecr {
        let sock = TcpStream::connect(addr).await.unwrap();
        sock.set_nodelay(true).unwrap();
        Ecr::over(Box::new(sock), Transport::tcp())
    }

    pub fn over(io: Box<dyn Io>, transport: Transport) -> Ecr {
        Ecr {
            io,
            s: EcrSession::new(transport, EcrConfig::default()),
            clock: WallClock::new(1.0),
            buf: vec![0; 4096],
            seen: Vec::new(),
        }
    }

    pub async fn start(&mut self, c: &Command) {
        self.s.start(c, self.clock.now()).unwrap();
        self.flush().await;
    }

    /// 06 B0 while the PT is master; its answer comes as [`EcrEvent::AbortAnswered`].
    pub async fn abort(&mut self) {
        self.s.abort(self.clock.now()).unwrap();
        self.flush().await;
    }

    pub async fn write_raw(&mut self, b: &[u8]) {
        self.io.write_all(b).await.unwrap();
    }

    async fn flush(&mut self) {
        while let Some(b) = self.s.poll_transmit(self.clock.now()) {
            self.io.write_all(&b).await.unwrap();
        }
    }

    /// The next event; `None` if the line closed. Panics after [`LIMIT`].
    pub async fn next(&mut self) -> Option<EcrEvent> {
        let give_up = tokio::time::Instant::now() + LIMIT;
        loop {
            self.flush().await;
            if let Some(e) = self.s.poll_event() {
                self.seen.push(e.clone());
                return Some(e);
            }
            let t = self.s.poll_timeout().map(|d| {
                tokio::time::Instant::now() + self.clock.wall_until(d) + Duration::from_millis(1)
            });
            tokio::select! {
                r = self.io.read(&mut self.buf) => match r {
                    Ok(n) if n > 0 => {
                        let now = self.clock.now();
                        self.s.handle_input(&self.buf[..n], now);
                    }
                    _ => return None,
                },
                _ = sleep_until(t) => self.s.handle_timeout(self.clock.now()),
                _ = tokio::time::sleep_until(give_up) => panic!("ECR: no event within {LIMIT:?}; seen {:?}", self.seen),
            }
        }
    }

    /// Events until one matches `done` (included).
    pub async fn until(&mut self, done: impl Fn(&EcrEvent) -> bool) -> Vec<EcrEvent> {
        let mut out = Vec::new();
        loop {
            let e = self
                .next()
                .await
                .unwrap_or_else(|| panic!("ECR line closed; seen {:?}", self.seen));
            let stop = done(&e);
            out.push(e);
            if stop {
                return out;
            }
        }
    }

    /// Raw bytes within `wait`, for malformed-input tests.
    pub async fn read_raw(&mut self, wait: Duration) -> Vec<u8> {
        match tokio::time::timeout(wait, self.io.read(&mut self.buf)).await {
            Ok(Ok(n)) => self.buf[..n].to_vec(),
            _ => Vec::new(),
        }
    }
}

/// The end of a ZVT command: 06 0F, 06 1E, 84 xx or no answer.
pub fn is_end(e: &EcrEvent) -> bool {
    matches!(
        e,
        EcrEvent::Completed { .. }
            | EcrEvent::Aborted { .. }
            | EcrEvent::Refused { .. }
            | EcrEvent::NoAnswer { .. }
            | EcrEvent::EnquiryCompleted { .. }
    )
}

/// The result code (BMP 27) of the last 04 0F among `events`.
pub fn status_result(events: &[EcrEvent]) -> Option<u8> {
    events.iter().rev().find_map(|e| match e {
        EcrEvent::StatusInfo { info, .. } => info.result,
        _ => None,
    })
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

// ---- the rig link ----

/// A rig-link reply: the report of an ACK, or the code and text of an ERR.
pub type Answer = Result<Option<Report>, (ErrCode, String)>;

/// A rig-link client over TCP.
pub struct Rig {
    sock: Box<dyn Io>,
    pub c: ClientSession,
    clock: WallClock,
    buf: Vec<u8>,
    /// The display as the last DISPLAY event showed it.
    pub display: Vec<String>,
    /// Every event report, in order.
    pub events: Vec<Report>,
    pub malformed: usize,
}

impl Rig {
    /// Connects and says HELLO.
    pub async fn connect(addr: SocketAddr) -> Rig {
        let sock = TcpStream::connect(addr).await.unwrap();
        sock.set_nodelay(true).unwrap();
        Rig::over(Box::new(sock)).await
    }

    /// Says HELLO over any line (a pseudo-terminal).
    pub async fn over(sock: Box<dyn Io>) -> Rig {
        let mut r = Rig {
            sock,
            c: ClientSession::new(Duration::from_secs(5), 3),
            clock: WallClock::new(1.0),
            buf: vec![0; 8192],
            display: Vec::new(),
            events: Vec::new(),
            malformed: 0,
        };
        let hello = r
            .req(Request::Hello {
                version: 1,
                client: "posrig-test".into(),
            })
            .await
            .unwrap();
        assert!(matches!(hello, Some(Report::Hello { .. })), "{hello:?}");
        // Events reach connected clients only: read what the screen shows now.
        if let Ok(Some(Report::Display { lines })) = r
            .req(Request::Get(protocol::riglink::GetWhat::Display))
            .await
        {
            r.display = lines;
        }
        r
    }

    fn take(&mut self, e: ClientEvent) -> Option<(u16, Answer)> {
        match e {
            ClientEvent::Reply { seq, result, .. } => return Some((seq, result)),
            ClientEvent::Event { report, .. } => {
                if let Report::Display { lines } = &report {
                    self.display = lines.clone();
                }
                self.events.push(report);
            }
            ClientEvent::Timeout { seq, request } => {
                panic!("rig link: request {seq} {request:?} timed out")
            }
            ClientEvent::Malformed(_) => self.malformed += 1,
            ClientEvent::EventGap { .. } | ClientEvent::LinkError { .. } => {}
        }
        None
    }

    async fn pump_once(&mut self, give_up: tokio::time::Instant) {
        while let Some(l) = self.c.poll_transmit() {
            self.sock.write_all(l.as_bytes()).await.unwrap();
        }
        let t = self.c.poll_timeout().map(|d| {
            tokio::time::Instant::now() + self.clock.wall_until(d) + Duration::from_millis(1)
        });
        tokio::select! {
            r = self.sock.read(&mut self.buf) => match r {
                Ok(n) if n > 0 => {
                    let now = self.clock.now();
                    self.c.handle_input(&self.buf[..n], now);
                }
                _ => panic!("rig link closed"),
            },
            _ = sleep_until(t) => self.c.handle_timeout(self.clock.now()),
            _ = tokio::time::sleep_until(give_up) => panic!("rig link: nothing within {LIMIT:?}; display {:?}", self.display),
        }
    }

    /// One request and its answer; events that come meanwhile are collected.
    pub async fn req(&mut self, r: Request) -> Answer {
        let seq = self.c.send(r, self.clock.now()).unwrap();
        let give_up = tokio::time::Instant::now() + LIMIT;
        loop {
            while let Some(e) = self.c.poll_event() {
                if let Some((s, result)) = self.take(e)
                    && s == seq
                {
                    return result;
                }
            }
            self.pump_once(give_up).await;
        }
    }

    /// Reads events until the display shows `text` (in any line).
    pub async fn wait_display(&mut self, text: &str) {
        let give_up = tokio::time::Instant::now() + LIMIT;
        loop {
            while let Some(e) = self.c.poll_event() {
                self.take(e);
            }
            if self.display.iter().any(|l| l.contains(text)) {
                return;
            }
            self.pump_once(give_up).await;
        }
    }

    pub async fn ok(&mut self, line: &str) -> Option<Report> {
        let r = parse_request(line);
        self.req(r)
            .await
            .unwrap_or_else(|e| panic!("{line}: {e:?}"))
    }
}

/// `"KEYS 0 MENU 3 ENTER"` → the request, through the codec (human form).
pub fn parse_request(line: &str) -> Request {
    match protocol::riglink::decode_line(line.as_bytes()).unwrap() {
        Some(protocol::riglink::Line::Request { request, .. }) => request,
        other => panic!("{line}: not a request: {other:?}"),
    }
}

/// Polls `f` until it is true (state reached by another task), or panics after [`LIMIT`].
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + LIMIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "not reached within {LIMIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
