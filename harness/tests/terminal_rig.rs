//! A `kind: terminal` rig drives the terminal it names and nothing else: here a `posrig emulate`
//! started on its own, as a lab would start a real terminal, reached over TCP and over a socat
//! null-modem; and rigs whose terminal is not there, which must stop the run with exit 2.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `posrig emulate` on its own, the way a lab's terminal runs: (child, ECR address if TCP,
/// signals address).
fn start_emulator(dir: &Path, ecr: &str, host_port: u16) -> (Child, Option<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_posrig"))
        .arg("emulate")
        .arg("--profile")
        .arg(root().join("fixtures/terminals/zvt-en-eur.yaml"))
        .arg("--cards")
        .arg(root().join("fixtures/cards"))
        .arg("--journal")
        .arg(dir.join("journal.db"))
        .args(["--ecr", ecr, "--signals", "tcp://127.0.0.1:0"])
        .arg("--host")
        .arg(format!("tcp://127.0.0.1:{host_port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut ecr_addr, mut signals) = (None, None);
    while signals.is_none() || (ecr.starts_with("tcp") && ecr_addr.is_none()) {
        let line = lines
            .next()
            .expect("emulate said where it listens")
            .unwrap();
        if let Some(a) = line.strip_prefix("listening ecr ") {
            ecr_addr = Some(a.trim().to_string());
        } else if let Some(a) = line.strip_prefix("listening signals ") {
            signals = Some(a.trim().to_string());
        }
    }
    // Keep draining stderr so the emulator never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, ecr_addr, signals.unwrap())
}

fn run_rig(rig: &Path, filter: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_posrig"))
        .current_dir(root())
        .args([
            "run",
            "scenarios",
            "--no-snapshots",
            "--unattended",
            "--filter",
            filter,
        ])
        .arg("--rig")
        .arg(rig)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every live scenario (sale, partial, over-refund, unreferenced) ran and passed.
fn assert_live_scenarios_passed(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PASS  refund/live/sale-then-refund-ecr"),
        "{stdout}"
    );
    assert!(stdout.contains("passed     3\n"), "{stdout}");
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn a_terminal_rig_runs_live_scenarios_on_a_terminal_reached_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let host = free_port();
    let (emu, ecr, signals) = start_emulator(dir.path(), "tcp://127.0.0.1:0", host);
    let rig = dir.path().join("bench.yaml");
    std::fs::write(
        &rig,
        format!(
            "name: bench-tcp\nkind: terminal\nprofile: fixtures/terminals/zvt-en-eur.yaml\n\
             ecr: {{transport: tcp, address: \"{}\"}}\n\
             signals: {{transport: tcp, address: \"{signals}\"}}\n\
             acquirer: {{listen: \"127.0.0.1:{host}\"}}\nquiet_ms: 150\n",
            ecr.unwrap()
        ),
    )
    .unwrap();
    let out = run_rig(&rig, "refund/live");
    // Scenarios that need the emulator's insides are not applicable, never faked.
    let all = run_rig(&rig, "refund/basics/full-refund-ecr");
    let s = String::from_utf8_lossy(&all.stdout);
    assert!(s.contains("N/A   refund/basics/full-refund-ecr"), "{s}");
    stop(emu);
    assert_live_scenarios_passed(&out);
}

#[test]
fn a_terminal_rig_runs_live_scenarios_across_a_socat_null_modem() {
    if Command::new("socat").arg("-V").output().is_err() {
        eprintln!(
            "SKIPPED a_terminal_rig_runs_live_scenarios_across_a_socat_null_modem: socat is not installed"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (terminal_end, ecr_end) = (dir.path().join("terminal"), dir.path().join("ecr"));
    let socat = Command::new("socat")
        .arg(format!("PTY,raw,echo=0,link={}", terminal_end.display()))
        .arg(format!("PTY,raw,echo=0,link={}", ecr_end.display()))
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while !(terminal_end.exists() && ecr_end.exists()) {
        assert!(Instant::now() < until, "socat made both ends");
        std::thread::sleep(Duration::from_millis(20));
    }
    let host = free_port();
    let (emu, _, signals) = start_emulator(
        dir.path(),
        &format!("serial://{}?baud=9600", terminal_end.display()),
        host,
    );
    let rig = dir.path().join("bench.yaml");
    std::fs::write(
        &rig,
        format!(
            "name: bench-serial\nkind: terminal\nprofile: fixtures/terminals/zvt-en-eur.yaml\n\
             ecr: {{transport: serial, device: \"{}\", baud: 9600, parity: none, stop_bits: 2}}\n\
             signals: {{transport: tcp, address: \"{signals}\"}}\n\
             acquirer: {{listen: \"127.0.0.1:{host}\"}}\nquiet_ms: 150\n",
            ecr_end.display()
        ),
    )
    .unwrap();
    let out = run_rig(&rig, "refund/live");
    stop(emu);
    stop(socat);
    assert_live_scenarios_passed(&out);
}

fn refused(rig_body: &str, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let rig = dir.path().join("absent.yaml");
    std::fs::write(
        &rig,
        format!(
            "name: absent\nkind: terminal\nprofile: fixtures/terminals/zvt-en-eur.yaml\n{}",
            rig_body.replace("DIR", &dir.path().display().to_string())
        ),
    )
    .unwrap();
    let out = run_rig(&rig, "refund");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(why), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("PASS"),
        "nothing runs"
    );
}

#[test]
fn a_port_where_nothing_answers_stops_the_run() {
    let port = free_port();
    refused(
        &format!("ecr: {{transport: tcp, address: \"127.0.0.1:{port}\"}}\n"),
        &format!("nothing answers at 127.0.0.1:{port}"),
    );
}

#[test]
fn a_missing_serial_device_stops_the_run() {
    refused(
        "ecr: {transport: serial, device: \"DIR/ttyUSB0\"}\n",
        "cannot open the ECR line",
    );
}

#[test]
fn a_busy_acquirer_address_stops_the_run() {
    let terminal = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    refused(
        &format!(
            "ecr: {{transport: tcp, address: \"{}\"}}\nacquirer: {{listen: \"{}\"}}\n",
            terminal.local_addr().unwrap(),
            busy.local_addr().unwrap()
        ),
        "the acquirer cannot listen on",
    );
}
