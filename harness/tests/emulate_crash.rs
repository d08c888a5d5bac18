//! Crash consistency of `posrig emulate`: a real process is killed with SIGKILL at each
//! failpoint of a refund, restarted on the same journal file, and the journal and what the
//! acquirer received are checked — no refund approved twice, none lost, every unknown outcome
//! resolved first (the reversal or the advice is the first thing the restarted terminal sends).
//!
//! The refund is driven as a till would: ZVT 06 31 on the ECR port (the shared ECR sequencer),
//! the card at the reader over the rig link (the shared rig-link client); the acquirer is the
//! simulator behind `acquirer::tcp`, on 127.0.0.1.
//!
//! What this proves and what it does not: SIGKILL ends the process but the OS keeps its page
//! cache, so this is crash consistency, not power-loss durability (see the emulator crate docs).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use acquirer::ledger::Status;
use acquirer::{Direction, Host, HostConfig};
use emulator::journal::sqlite::Durability;
use emulator::journal::{
    JournalOp, JournalState, JournalStore, Outcome, PendingKind, Session, SqliteStore,
};
use emulator::ports::failpoints::{
    AFTER_REPLY_RECEIVED, AFTER_REQUEST_SENT, AFTER_REVERSAL_RECORD,
};
use protocol::fixture::cards::CardFixture;
use protocol::fixture::journal::{JournalFixture, ResolveContext, TxnType};
use protocol::fixture::terminal::TerminalProfile;
use protocol::riglink::{ClientEvent, ClientSession, Report, Request};
use protocol::time::{Clock, Instant, WallClock};
use protocol::zvt::bmp::Bcd;
use protocol::zvt::command::{Command, OriginalRef, Refund};
use protocol::zvt::ecr::{EcrConfig, EcrEvent, EcrSession};
use protocol::zvt::transport::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any wait may take before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The two refund paths of DESIGN.md R-REV / R-ADVICE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// iso87-ascii, EUR: an online 0200; an unknown outcome is reversed (0400).
    Reversal,
    /// cup, CNY: a 0220 advice, resent until a 0230 comes; never reversed.
    Advice,
}

impl Path {
    fn profile(self) -> &'static str {
        match self {
            Path::Reversal => "zvt-en-eur.yaml",
            Path::Advice => "cup-zh-cny.yaml",
        }
    }
    fn journal(self) -> &'static str {
        match self {
            Path::Reversal => "eur-open-batch.yaml",
            Path::Advice => "cup-open-batch.yaml",
        }
    }
    fn start(self) -> &'static str {
        match self {
            Path::Reversal => "2026-11-26T10:00:00+01:00",
            Path::Advice => "2026-11-26T10:00:00+08:00",
        }
    }
    fn request_mti(self) -> &'static str {
        match self {
            Path::Reversal => "0200",
            Path::Advice => "0220",
        }
    }
    fn reply_mti(self) -> &'static str {
        match self {
            Path::Reversal => "0210",
            Path::Advice => "0230",
        }
    }
    /// What the restarted terminal must send first.
    fn recovery_mti(self) -> &'static str {
        match self {
            Path::Reversal => "0400",
            Path::Advice => "0220",
        }
    }
    fn amount_minor(self) -> u64 {
        match self {
            Path::Reversal => 1000,
            Path::Advice => 3333,
        }
    }
    fn refund(self) -> Command {
        let (currency, rrn) = match self {
            Path::Reversal => (978, "000000000201"),
            Path::Advice => (156, "000000000101"),
        };
        let mut z = Refund {
            password: Bcd::from_digits("123456").unwrap(),
            amount_minor: Some(self.amount_minor()),
            currency: Some(currency),
            payment_type: Some(0x40),
            ..Default::default()
        };
        z.set_original_ref(&OriginalRef::RrnDate {
            rrn: rrn.into(),
            month: 11,
            day: 26,
        })
        .unwrap();
        Command::Refund(z)
    }
    fn card_request(self) -> &'static str {
        match self {
            Path::Reversal => "CARD INSERT visa_credit_01",
            Path::Advice => "CARD SWIPE unionpay_magstripe_01",
        }
    }
    fn card_prompt(self) -> &'static str {
        match self {
            Path::Reversal => "SWIPE/INSERT/TAP",
            Path::Advice => "请刷卡",
        }
    }
}

// ---- the world: acquirer in this process, journal file preloaded ----

struct World {
    _dir: tempfile::TempDir,
    journal: PathBuf,
    host: Arc<Mutex<Host>>,
    server: acquirer::tcp::ServeHandle,
    start: Instant,
}

async fn world(path: Path) -> World {
    let profile =
        TerminalProfile::from_path(&root().join("fixtures/terminals").join(path.profile()))
            .unwrap();
    let keys =
        protocol::fixture::keys::TestKeys::from_path(&root().join("fixtures/keys/test-keys.yaml"))
            .unwrap();
    let cards = CardFixture::load_dir(&root().join("fixtures/cards")).unwrap();
    let start = Instant::parse_rfc3339(path.start()).unwrap();
    let fees = (path == Path::Advice).then(|| root().join("fixtures/fees/cny-0.6pct.yaml"));
    let mut host = Host::new(
        HostConfig::from_fixtures(&root().join("fixtures"), &profile.dialect, fees.as_deref())
            .unwrap(),
    );
    let fx =
        JournalFixture::from_path(&root().join("fixtures/journals").join(path.journal())).unwrap();
    let lookup = |n: &str| cards.get(n).map(|c| c.pan().clone());
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
    let mut ops = emulator::import::import_ops(&txns, &keys.pan_hash_key, &JournalState::default());
    // Signed on today with the acquirer's working keys, so the refund is the first exchange.
    let wk = host.working_keys(&profile.terminal_id).unwrap();
    ops.push(JournalOp::SetSession(Session {
        signed_on: Some(start.to_local(profile.time_zone).date_naive().to_string()),
        mac_key: Some(wk.mac.expose().to_vec()),
        pin_key: Some(wk.pin.expose().to_vec()),
        resign_required: false,
    }));
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    SqliteStore::open(&journal, Durability::Full)
        .unwrap()
        .commit(&ops)
        .unwrap();
    let host = Arc::new(Mutex::new(host));
    let server = acquirer::tcp::serve(
        "tcp://127.0.0.1:0",
        host.clone(),
        Arc::new(WallClock::starting_at(start, 1.0)),
    )
    .await
    .unwrap();
    World {
        _dir: dir,
        journal,
        host,
        server,
        start,
    }
}

impl World {
    fn load(&self) -> JournalState {
        SqliteStore::open(&self.journal, Durability::Normal)
            .unwrap()
            .load()
            .unwrap()
    }
    /// (index, direction, MTI, field 11, field 39) of every logged message.
    fn messages(&self) -> Vec<(usize, Direction, String, String, String)> {
        self.host
            .lock()
            .unwrap()
            .log()
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                Some((
                    i,
                    e.direction,
                    e.mti.clone()?,
                    e.field("11").unwrap_or("-").to_string(),
                    e.field("39").unwrap_or("-").to_string(),
                ))
            })
            .collect()
    }
    fn log_len(&self) -> usize {
        self.host.lock().unwrap().log().len()
    }
    fn closed_by_terminal(&self, from: usize) -> bool {
        self.host.lock().unwrap().log()[from..].iter().any(|e| {
            e.note
                .as_deref()
                .is_some_and(|n| n.contains("closed by the terminal"))
        })
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + LIMIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "not reached within {LIMIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- the process ----

struct Emu {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    ecr: SocketAddr,
    signals: SocketAddr,
}

impl Emu {
    fn spawn(path: Path, w: &World, clock: Instant, failpoint: Option<&str>) -> Emu {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_posrig"));
        cmd.arg("emulate")
            .arg("--profile")
            .arg(root().join("fixtures/terminals").join(path.profile()))
            .arg("--cards")
            .arg(root().join("fixtures/cards"))
            .arg("--journal")
            .arg(&w.journal)
            .args([
                "--ecr",
                "tcp://127.0.0.1:0",
                "--signals",
                "tcp://127.0.0.1:0",
            ])
            .arg("--host")
            .arg(format!("tcp://{}", w.server.local_addr()))
            .arg("--clock")
            .arg(clock.to_utc().to_rfc3339())
            .env("RUST_LOG", "info")
            .env_remove("FAILPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(f) = failpoint {
            cmd.env("FAILPOINTS", format!("{f}=sleep(60000)"));
        }
        let mut child = cmd.spawn().expect("posrig emulate starts");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let keep = stderr.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                keep.lock().unwrap().push(l.clone());
                let _ = tx.send(l);
            }
        });
        let mut e = Emu {
            child,
            lines,
            stderr,
            ecr: "0.0.0.0:0".parse().unwrap(),
            signals: "0.0.0.0:0".parse().unwrap(),
        };
        e.ecr = e.wait_line("listening ecr ").parse().unwrap();
        e.signals = e.wait_line("listening signals ").parse().unwrap();
        e
    }

    /// The rest of the first stderr line starting with `prefix`.
    fn wait_line(&mut self, prefix: &str) -> String {
        let give_up = std::time::Instant::now() + LIMIT;
        loop {
            let left = give_up.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix(prefix) {
                        return rest.trim().to_string();
                    }
                }
                Err(_) => panic!(
                    "no stderr line {prefix:?} within {LIMIT:?}; stderr so far:\n{}",
                    self.stderr.lock().unwrap().join("\n")
                ),
            }
        }
    }

    fn sigkill(mut self) {
        // Child::kill is SIGKILL on unix: no destructor, no flush, no SQLite close.
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success());
    }

    /// Ctrl-C's twin: SIGTERM, and a clean exit.
    fn sigterm(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let give_up = std::time::Instant::now() + LIMIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(std::time::Instant::now() < give_up, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "{status}; stderr:\n{}",
            self.stderr.lock().unwrap().join("\n")
        );
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- a till and a rig controller ----

/// Runs one ZVT command until its end or until the line closes (the process died).
async fn ecr_run(addr: SocketAddr, c: Command) -> Vec<EcrEvent> {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let clock = WallClock::new(1.0);
    let mut s = EcrSession::new(Transport::tcp(), EcrConfig::default());
    s.start(&c, clock.now()).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    loop {
        while let Some(b) = s.poll_transmit(clock.now()) {
            if sock.write_all(&b).await.is_err() {
                return seen;
            }
        }
        while let Some(e) = s.poll_event() {
            let end = matches!(
                e,
                EcrEvent::Completed { .. } | EcrEvent::Aborted { .. } | EcrEvent::Refused { .. }
            );
            seen.push(e);
            if end {
                return seen;
            }
        }
        match tokio::time::timeout(Duration::from_secs(1), sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => s.handle_input(&buf[..n], clock.now()),
            Ok(_) => return seen,
            Err(_) => s.handle_timeout(clock.now()),
        }
    }
}

/// A rig-link client that can send without waiting for the answer (the process may freeze
/// at a failpoint inside the request).
struct Rig {
    sock: TcpStream,
    c: ClientSession,
    clock: WallClock,
    display: Vec<String>,
}

impl Rig {
    async fn connect(addr: SocketAddr) -> Rig {
        let sock = TcpStream::connect(addr).await.unwrap();
        let mut r = Rig {
            sock,
            c: ClientSession::new(Duration::from_secs(10), 3),
            clock: WallClock::new(1.0),
            display: Vec::new(),
        };
        r.send("HELLO 1 crash-test").await;
        r.pump_until(|r| r.c.is_idle(), "the HELLO reply").await;
        r.send("GET DISPLAY").await;
        r.pump_until(|r| r.c.is_idle(), "the GET DISPLAY reply")
            .await;
        r
    }

    /// Sends at once, without waiting for the answer: nothing else may be outstanding.
    async fn send(&mut self, line: &str) {
        assert!(self.c.is_idle(), "{line}: a request is still outstanding");
        let request: Request = match protocol::riglink::decode_line(line.as_bytes()).unwrap() {
            Some(protocol::riglink::Line::Request { request, .. }) => request,
            other => panic!("{other:?}"),
        };
        self.c.send(request, self.clock.now()).unwrap();
        while let Some(l) = self.c.poll_transmit() {
            self.sock.write_all(l.as_bytes()).await.unwrap();
        }
    }

    async fn wait_display(&mut self, text: &str) {
        self.pump_until(
            |r| r.display.iter().any(|l| l.contains(text)),
            &format!("the display showing {text:?}"),
        )
        .await;
    }

    async fn pump_until(&mut self, done: impl Fn(&Rig) -> bool, what: &str) {
        let give_up = tokio::time::Instant::now() + LIMIT;
        let mut buf = vec![0u8; 8192];
        loop {
            while let Some(e) = self.c.poll_event() {
                match e {
                    ClientEvent::Event {
                        report: Report::Display { lines },
                        ..
                    }
                    | ClientEvent::Reply {
                        result: Ok(Some(Report::Display { lines })),
                        ..
                    } => self.display = lines,
                    _ => {}
                }
            }
            if done(self) {
                return;
            }
            let n = tokio::time::timeout_at(give_up, self.sock.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!("no {what} within {LIMIT:?}; display {:?}", self.display)
                })
                .unwrap();
            assert!(n > 0, "rig link closed");
            self.c.handle_input(&buf[..n], self.clock.now());
            while let Some(l) = self.c.poll_transmit() {
                self.sock.write_all(l.as_bytes()).await.unwrap();
            }
        }
    }
}

// ---- the test ----

async fn crash_and_recover(path: Path, failpoint: &'static str) {
    let w = world(path).await;
    let t0 = std::time::Instant::now();
    let mut emu = Emu::spawn(path, &w, w.start, Some(failpoint));

    // The refund, from the till, with the card at the reader.
    let ecr = tokio::spawn(ecr_run(emu.ecr, path.refund()));
    let mut rig = Rig::connect(emu.signals).await;
    rig.wait_display(path.card_prompt()).await;
    rig.send(path.card_request()).await;

    // The process reaches the failpoint and freezes there.
    emu.wait_line(&format!("failpoint {failpoint}"));
    let req = path.request_mti();
    match failpoint {
        AFTER_REVERSAL_RECORD => {
            assert!(
                !w.messages().iter().any(|m| m.2 == req),
                "the record is committed before the request leaves"
            );
        }
        _ => {
            // The request left; the acquirer answered it (the terminal may not have read it).
            eventually("the acquirer's reply", || {
                w.messages()
                    .iter()
                    .any(|m| m.1 == Direction::Out && m.2 == path.reply_mti() && m.4 == "00")
            })
            .await;
        }
    }
    let before = w.log_len();
    emu.sigkill();
    let _ = ecr.await;
    drop(rig);

    // What survived the kill: the refund with an unknown outcome and its pending record —
    // even after the reply arrived, since its ops were not committed.
    let j = w.load();
    let refunds: Vec<_> = j
        .txns
        .iter()
        .filter(|t| t.kind == TxnType::Refund)
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let refund = refunds[0].clone();
    assert_eq!(refund.outcome, Outcome::Unknown);
    assert_eq!(j.pending.len(), 1);
    assert_eq!(
        j.pending[0].kind,
        match path {
            Path::Reversal => PendingKind::Reversal,
            Path::Advice => PendingKind::Advice,
        }
    );
    if failpoint != AFTER_REVERSAL_RECORD {
        eventually("the acquirer hears the connection drop", || {
            w.closed_by_terminal(before)
        })
        .await;
    }
    let cut = w.log_len();

    // Restart on the same journal, without failpoints, the clock where it would be.
    let later = w.start + t0.elapsed();
    let emu = Emu::spawn(path, &w, later, None);
    eventually("nothing pending", || w.load().pending.is_empty()).await;

    // The first thing the restarted terminal sent is the recovery of that refund.
    let after: Vec<_> = w.messages().into_iter().filter(|m| m.0 >= cut).collect();
    let first_in = after
        .iter()
        .find(|m| m.1 == Direction::In)
        .unwrap_or_else(|| panic!("nothing sent after the restart: {after:?}"));
    assert_eq!(first_in.2, path.recovery_mti(), "{after:?}");
    assert_eq!(
        first_in.3,
        format!("{:06}", refund.stan),
        "the same STAN as the refund"
    );

    // The journal and the acquirer agree; no refund approved twice, none lost.
    let j = w.load();
    let refunds: Vec<_> = j
        .txns
        .iter()
        .filter(|t| t.kind == TxnType::Refund)
        .collect();
    assert_eq!(refunds.len(), 1);
    check_ledger(&w, path, failpoint, &refunds[0].outcome);
    emu.sigterm();
    w.server.shutdown().await;
}

/// The acquirer's side agrees with the terminal's final `outcome`.
fn check_ledger(w: &World, path: Path, failpoint: &str, outcome: &Outcome) {
    let host = w.host.lock().unwrap();
    let ledger: Vec<_> = host
        .ledger()
        .records()
        .iter()
        .filter(|r| r.kind == TxnType::Refund)
        .collect();
    let live: Vec<_> = ledger.iter().filter(|r| r.is_live()).collect();
    match path {
        Path::Reversal => {
            // Unknown → reversed on both sides; no money moved.
            assert_eq!(*outcome, Outcome::Reversed);
            assert!(live.is_empty(), "{ledger:?}");
            if failpoint != AFTER_REVERSAL_RECORD {
                assert_eq!(ledger.len(), 1, "{ledger:?}");
                assert_eq!(ledger[0].status, Status::Reversed);
            } else {
                assert!(ledger.is_empty(), "the request never arrived: {ledger:?}");
            }
        }
        Path::Advice => {
            // An advice is never reversed: resent until the host has it, exactly once.
            assert_eq!(*outcome, Outcome::Approved);
            assert_eq!(live.len(), 1, "{ledger:?}");
            assert_eq!(ledger.len(), 1, "no second refund: {ledger:?}");
            assert_eq!(live[0].amount.minor(), path.amount_minor());
            let sale = host
                .ledger()
                .records()
                .iter()
                .find(|r| Some(r.id) == live[0].original)
                .unwrap();
            assert_eq!(sale.refunded.minor(), path.amount_minor());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversal_path_killed_after_the_reversal_record() {
    crash_and_recover(Path::Reversal, AFTER_REVERSAL_RECORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversal_path_killed_after_the_request_was_sent() {
    crash_and_recover(Path::Reversal, AFTER_REQUEST_SENT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversal_path_killed_after_the_reply_was_received() {
    crash_and_recover(Path::Reversal, AFTER_REPLY_RECEIVED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_path_killed_after_the_advice_record() {
    crash_and_recover(Path::Advice, AFTER_REVERSAL_RECORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_path_killed_after_the_advice_was_sent() {
    crash_and_recover(Path::Advice, AFTER_REQUEST_SENT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advice_path_killed_after_the_reply_was_received() {
    crash_and_recover(Path::Advice, AFTER_REPLY_RECEIVED).await;
}
