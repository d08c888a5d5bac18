//! The `posrig` command line run as a process: exit codes, located errors, reports, and the
//! same scenario with identical snapshots on the emulated, emulator-tcp and emulator-serial
//! rigs (real TCP on 127.0.0.1, a real pseudo-terminal).

use std::path::{Path, PathBuf};
use std::process::Command;

fn posrig() -> Command {
    Command::new(env!("CARGO_BIN_EXE_posrig"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A private suite: the repo's fixtures and rigs, and the two basic scenarios with their
/// accepted snapshots.
fn suite() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("fixtures"), &d.path().join("fixtures"));
    copy_dir(&repo().join("hil-rigs"), &d.path().join("hil-rigs"));
    let basics = d.path().join("scenarios/refund/basics");
    std::fs::create_dir_all(basics.join("snapshots")).unwrap();
    for stem in ["full-refund-keypad", "full-refund-ecr"] {
        std::fs::copy(
            repo().join(format!("scenarios/refund/basics/{stem}.yaml")),
            basics.join(format!("{stem}.yaml")),
        )
        .unwrap();
        std::fs::copy(
            repo().join(format!("scenarios/refund/basics/snapshots/{stem}.snap")),
            basics.join(format!("snapshots/{stem}.snap")),
        )
        .unwrap();
    }
    d
}

#[test]
fn the_same_scenarios_pass_with_the_same_snapshots_on_all_three_rigs() {
    let d = suite();
    for rig in [
        None,
        Some("hil-rigs/emulator-tcp.yaml"),
        Some("hil-rigs/emulator-serial.yaml"),
    ] {
        let mut c = posrig();
        c.current_dir(d.path())
            .args(["run", "scenarios", "--check-snapshots"]);
        if let Some(r) = rig {
            c.args(["--rig", r]);
        }
        let out = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "rig {rig:?}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("passed     2"), "rig {rig:?}:\n{stdout}");
    }
}

#[test]
fn a_changed_snapshot_fails_with_a_diff_and_exit_1() {
    let d = suite();
    let snap = d
        .path()
        .join("scenarios/refund/basics/snapshots/full-refund-keypad.snap");
    let text = std::fs::read_to_string(&snap)
        .unwrap()
        .replace("退货成功", "退货失败");
    std::fs::write(&snap, text).unwrap();
    // --check-snapshots (CI) reports the diff and writes nothing.
    let out = posrig()
        .current_dir(d.path())
        .args(["run", "scenarios", "--check-snapshots"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("new version not written"), "{stdout}");
    assert!(!snap.with_extension("snap.new").exists());
    let out = posrig()
        .current_dir(d.path())
        .args(["run", "scenarios"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("new version: "), "{stdout}");
    assert!(
        stdout.contains("-display |退货失败|") && stdout.contains("+display |退货成功|"),
        "{stdout}"
    );
    assert!(
        snap.with_extension("snap.new").exists(),
        "a pending .snap.new is written"
    );
    // --accept takes it.
    let out = posrig()
        .current_dir(d.path())
        .args(["run", "scenarios", "--accept"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 accepted"));
    assert!(std::fs::read_to_string(&snap).unwrap().contains("退货成功"));
}

#[test]
fn bad_files_end_in_located_errors_and_exit_2_but_the_rest_runs() {
    let d = suite();
    let bad = d.path().join("scenarios/refund/basics/bad.yaml");
    std::fs::write(&bad, "id: refund/basics/bad\nname: x\nproves: y\ncovers: [R-NOPE]\nterminal: fixtures/terminals/cup-zh-cny.yaml\nsteps: [{keys: [MENU]}]\n").unwrap();
    let out = posrig()
        .current_dir(d.path())
        .args(["run", "scenarios"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:4:10") && stderr.contains("R-NOPE") && stderr.contains('^'),
        "{stderr}"
    );
    assert!(
        stdout.contains("passed     2"),
        "the good files still ran:\n{stdout}"
    );
    // --fail-fast stops at the bad file.
    let out = posrig()
        .current_dir(d.path())
        .args(["run", "scenarios", "--fail-fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PASS"));
    // check validates without running.
    let out = posrig()
        .current_dir(d.path())
        .args(["check", "scenarios"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let bad_rig = d.path().join("hil-rigs/bad.yaml");
    std::fs::write(&bad_rig, "name: x\nkind: robot\n").unwrap();
    let out = posrig()
        .current_dir(d.path())
        .args(["run", "scenarios", "--rig", "hil-rigs/bad.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.yaml:2:7"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn junit_and_json_reports_carry_the_evidence() {
    let d = suite();
    let out = posrig()
        .current_dir(d.path())
        .args([
            "run",
            "scenarios",
            "--junit",
            "out/junit.xml",
            "--json",
            "out/report.json",
            "--out",
            "out/runs",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let xml = std::fs::read_to_string(d.path().join("out/junit.xml")).unwrap();
    for needle in [
        "refund/basics/full-refund-keypad",
        "terminal_id",
        "20250001",
        "scenario_sha256",
        "posrig_version",
        "dialect",
    ] {
        assert!(xml.contains(needle), "junit lacks {needle}:\n{xml}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("out/report.json")).unwrap())
            .unwrap();
    assert_eq!(json["results"].as_array().unwrap().len(), 2);
    let cov = &json["coverage"]["R-RECEIPT"];
    assert!(
        cov.as_array()
            .unwrap()
            .iter()
            .any(|e| e[0] == "refund/basics/full-refund-keypad" && e[1] == "passed"),
        "{cov}"
    );
    // Raw captures are kept beside the run, with card data redacted.
    let raw = std::fs::read_to_string(
        d.path()
            .join("out/runs/refund__basics__full-refund-keypad/raw-host-in.log"),
    )
    .unwrap();
    assert!(!raw.replace(' ', "").contains("6222021234567811"), "{raw}");
    assert!(!raw.is_empty());
}

#[test]
fn partitions_split_the_suite() {
    let d = suite();
    let mut total = 0;
    for k in 1..=2 {
        let out = posrig()
            .current_dir(d.path())
            .args(["run", "scenarios", "--partition", &format!("hash:{k}/2")])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let n: usize = stdout
            .lines()
            .find_map(|l| l.strip_prefix("total"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        total += n;
    }
    assert_eq!(total, 2);
}

#[test]
fn filters_repeat_and_any_of_them_selects() {
    let d = suite();
    let run = |filters: &[&str]| {
        let mut c = posrig();
        c.current_dir(d.path()).args(["run", "scenarios"]);
        for f in filters {
            c.args(["--filter", f]);
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    };
    let one = run(&["keypad"]);
    assert!(one.contains("passed     1\n"), "{one}");
    let both = run(&["keypad", "full-refund-ecr"]);
    assert!(both.contains("passed     2\n"), "{both}");
    let none = run(&["nothing-is-called-this"]);
    assert!(!none.contains("PASS"), "{none}");
}

#[test]
fn decode_masks_pans() {
    let out = posrig()
        .args(["decode", "zvt", "06 31 1B 12 34 56 04 00 00 00 00 19 95 49 09 78 0E 28 12 22 F0 F8 62 22 02 12 34 56 78 94"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("22=622202******7894") && !s.contains("6222021234567894"),
        "{s}"
    );
    let out = posrig()
        .args(["decode", "escpos", "1b401c26cdcbbbf5b3c9b9a61c2e0a"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("退货成功"));
    let out = posrig().args(["decode", "iso8583", "zz"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `posrig run --junit r.xml | head`: once the reader is gone, printing stops quietly; the run
/// still ends with its own exit code and its report. (The pipe's read end is closed before the
/// run starts, so every write meets a broken pipe.)
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let d = suite();
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let junit = d.path().join("r.xml");
    let out = posrig()
        .current_dir(d.path())
        .args(["run", "scenarios", "--junit"])
        .arg(&junit)
        .stdout(std::process::Stdio::from(writer))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("testsuite")
    );
}
