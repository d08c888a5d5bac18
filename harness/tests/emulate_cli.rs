//! `posrig emulate` as a command: bad input is refused with a located error and exit code 2;
//! Ctrl-C stops it cleanly with exit code 0.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn emulate(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_posrig"));
    c.arg("emulate")
        .arg("--cards")
        .arg(root().join("fixtures/cards"))
        .arg("--keys")
        .arg(root().join("fixtures/keys/test-keys.yaml"))
        .arg("--journal")
        .arg(dir.join("journal.db"))
        .env_remove("FAILPOINTS")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

#[test]
fn a_bad_profile_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("fixtures/terminals/zvt-en-eur.yaml")).unwrap();
    let bad = good.replace("currency: EUR", "currency: EURO");
    assert_ne!(good, bad);
    let profile = dir.path().join("bad.yaml");
    std::fs::write(&profile, bad).unwrap();
    let out = emulate(dir.path())
        .arg("--profile")
        .arg(&profile)
        .args([
            "--ecr",
            "tcp://127.0.0.1:0",
            "--signals",
            "tcp://127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = good
        .lines()
        .position(|l| l.starts_with("currency:"))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("bad.yaml:{line}:")), "{err}");
}

#[test]
fn bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = root().join("fixtures/terminals/zvt-en-eur.yaml");
    for (args, want) in [
        (vec!["--ecr", "serial:///dev/null?baud=fast"], "baud=fast"),
        (vec!["--time-scale", "0"], "--time-scale"),
        (vec!["--clock", "yesterday"], "--clock"),
        (vec!["--ecr", "tcp://0.0.0.0:0"], "--listen-any"),
    ] {
        let out = emulate(dir.path())
            .arg("--profile")
            .arg(&profile)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn ctrl_c_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = emulate(dir.path())
        .arg("--profile")
        .arg(root().join("fixtures/terminals/cup-zh-cny.yaml"))
        .args([
            "--ecr",
            "tcp://127.0.0.1:0",
            "--signals",
            "tcp://127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.starts_with("listening signals "))
    {
        let mut l = String::new();
        assert!(err.read_line(&mut l).unwrap() > 0, "{seen:?}");
        seen.push(l);
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let give_up = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < give_up, "no exit after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    // The journal was created and opens.
    assert!(dir.path().join("journal.db").is_file());
}
