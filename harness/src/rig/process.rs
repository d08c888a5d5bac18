//! The emulator as a child process (`posrig emulate`), driven as a real terminal would be: the
//! [terminal world](super::terminal) plus a [`Device`] that spawns the emulator. The ECR line
//! is ZVT over TCP on loopback or ZVT serial framing over a pseudo-terminal pair made here; the
//! rig link is TCP; the acquirer simulator listens on a free loopback port. The clock is the
//! wall clock scaled by the rig's `time_scale`, for the emulator and the runner alike, so a
//! 60 s host timeout passes in 3 s at scale 20. A power cut is a SIGKILL; power back is a
//! restart on the same journal file.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command as Proc, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use emulator::journal::{JournalStore, SqliteStore, sqlite::Durability};
use protocol::time::WallClock;

use super::emulated::setup;
use super::terminal::{Device, EcrAccess, Operator, Parts, Reach, TerminalWorld};
use crate::rig::LoadedRig;
use crate::rig::model::{LinkMode, Transport as RigTransport};
use crate::runner::{Failure, Finished};
use crate::scenario::load::{LoadedScenario, Variant};

/// Runs one scenario variant on an emulator-process rig.
pub fn run(
    ls: &LoadedScenario,
    v: &Variant,
    rig: &LoadedRig,
) -> Result<(Vec<Failure>, Finished), String> {
    let s = setup(ls, v)?;
    let scale = rig.file.time_scale.unwrap_or(1.0);
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let journal = tmp.path().join("journal.db");
    {
        let mut store = SqliteStore::open(&journal, Durability::Full).map_err(|e| e.to_string())?;
        store.commit(&s.journal_ops).map_err(|e| e.to_string())?;
    }
    let ecr = rig.file.ecr.as_ref();
    let link = ecr.map(|e| e.link_mode()).unwrap_or(LinkMode::ZvtTcp);
    let serial = ecr.is_some_and(|e| e.transport == RigTransport::Serial);
    let (access, slave, pty_path) = if serial {
        let (mut master, slave) = pty_pair()?;
        let path = serialport::SerialPort::name(&slave).ok_or("pseudo-terminal without a name")?;
        serialport::SerialPort::set_timeout(&mut master, Duration::from_millis(50))
            .map_err(|e| e.to_string())?;
        (EcrAccess::Serial(Box::new(master)), Some(slave), Some(path))
    } else {
        (EcrAccess::Tcp, None, None)
    };
    let sub = |x: &str| crate::runner::steps::subst(x, &v.vars);
    let sc = &ls.scenario;
    let resolve_or = |f: &Option<serde_saphyr::Spanned<String>>, default: &str| {
        f.as_ref()
            .map(|k| sub(&k.value))
            .transpose()
            .map(|p| ls.resolve(&p.unwrap_or_else(|| default.into())))
    };
    let profile_path = ls.resolve(&sub(&sc.terminal.value)?);
    let keys_path = resolve_or(&sc.fixtures.keys, "fixtures/keys/test-keys.yaml")?;
    let cards_dir = resolve_or(&sc.fixtures.cards, "fixtures/cards")?;
    let ecr_arg = match &pty_path {
        Some(p) => format!("serial://{p}?baud=9600"),
        None => "tcp://127.0.0.1:0".to_string(),
    };
    let start_rfc = s.start.to_local(s.profile.time_zone).to_rfc3339();
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
        "--time-scale".into(),
        scale.to_string(),
        "--clock".into(),
        start_rfc,
    ];
    let device = EmulatorProcess {
        args,
        serial: pty_path.is_some(),
        _pty_slave: slave,
        child: None,
        notes: None,
        _tmp: tmp,
    };
    let parts = Parts {
        clock: WallClock::starting_at(s.start, scale),
        listen: "127.0.0.1:0".into(),
        access,
        link,
        device: Box::new(device),
        operator: Operator::unattended(),
        // One second of the terminal's time, but never below what a loaded machine needs.
        quiet: rig
            .file
            .quiet_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| Duration::from_secs_f64(1.0 / scale).max(Duration::from_millis(40))),
    };
    let mut w = TerminalWorld::build(ls, s, parts)?;
    let failures = crate::runner::steps::execute(&mut w, ls, v, &|c| rig.provides(c));
    Ok((failures, w.finish()))
}

/// `posrig emulate` as the terminal: switched on by spawning it, off by SIGKILL.
struct EmulatorProcess {
    /// `posrig emulate` arguments, but for the host (known once the acquirer listens).
    args: Vec<String>,
    /// The ECR port is the pseudo-terminal (no ECR address to wait for).
    serial: bool,
    /// Keeps the slave open so the master never reads EIO while the emulator restarts.
    _pty_slave: Option<serialport::TTYPort>,
    child: Option<Child>,
    /// Lines of the emulator's stderr worth a note (a panic).
    notes: Option<Receiver<String>>,
    /// The journal file lives here for the whole run, across power cycles.
    _tmp: tempfile::TempDir,
}

impl Device for EmulatorProcess {
    fn power_on(
        &mut self,
        _first: bool,
        _operator: &mut Operator,
        acquirer: &str,
    ) -> Result<Reach, String> {
        let mut child = Proc::new(posrig_bin())
            .args(&self.args)
            .arg("--host")
            .arg(format!("tcp://{acquirer}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", posrig_bin().display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        self.child = Some(child);
        let (lines_tx, lines_rx) = channel::<String>();
        let (notes_tx, notes_rx) = channel::<String>();
        self.notes = Some(notes_rx);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("panicked") {
                    let _ = notes_tx.send(format!("emulator: {line}"));
                }
                let _ = lines_tx.send(line);
            }
        });
        // The emulator says where it listens once it does.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut reach = Reach::default();
        while (reach.ecr_tcp.is_none() && !self.serial) || reach.signals.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = lines_rx
                .recv_timeout(left)
                .map_err(|_| "posrig emulate did not report its listeners in time".to_string())?;
            if let Some(a) = line.strip_prefix("listening ecr ") {
                reach.ecr_tcp = Some(a.trim().to_string());
            } else if let Some(a) = line.strip_prefix("listening signals ") {
                reach.signals = Some(a.trim().to_string());
            } else if line.contains("error") {
                return Err(format!("posrig emulate: {line}"));
            }
        }
        Ok(reach)
    }

    fn power_off(&mut self, _operator: &mut Operator) -> Result<(), String> {
        self.kill();
        Ok(())
    }

    fn notes(&mut self) -> Vec<String> {
        self.notes
            .as_ref()
            .map(|rx| rx.try_iter().collect())
            .unwrap_or_default()
    }
}

impl EmulatorProcess {
    /// SIGKILL on unix: a power cut, not a shutdown.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
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

/// A pseudo-terminal pair; creation is serialised (serialport's `pair` is not thread-safe).
fn pty_pair() -> Result<(serialport::TTYPort, serialport::TTYPort), String> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().map_err(|_| "pty lock poisoned")?;
    serialport::TTYPort::pair().map_err(|e| format!("pseudo-terminal: {e}"))
}
