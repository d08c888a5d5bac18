//! Runner features on the emulated rig, end to end on throwaway scenarios that use the repo's
//! fixtures: what the terminal sends at power-on meets the scenario's host directives, and a
//! paper roll can run out after N receipts.
use std::path::{Path, PathBuf};

use posrig::rig::LoadedRig;
use posrig::runner::{RunResult, SnapshotMode, Verdict, run_variant};
use posrig::scenario::load::load_file;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A suite in a temp folder whose `fixtures/` is a copy of the repo's.
fn suite() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&repo().join("fixtures"), &dir.path().join("fixtures"));
    std::fs::create_dir_all(dir.path().join("refund")).unwrap();
    dir
}

fn run(src: &str) -> RunResult {
    let d = suite();
    let p = d.path().join("refund/s.yaml");
    std::fs::write(&p, src).unwrap();
    let ls = load_file(&p).unwrap_or_else(|e| panic!("{}", e.excerpt));
    run_variant(
        &ls,
        &ls.variants[0],
        &LoadedRig::emulated(),
        SnapshotMode::Check,
        d.path(),
    )
}

fn assert_passed(r: &RunResult) {
    assert_eq!(
        r.verdict,
        Verdict::Passed,
        "{:?}\n{}",
        r.failures,
        r.transcript
    );
}

#[test]
fn a_host_step_answers_the_sign_on_sent_at_power_on() {
    let r = run(r#"id: refund/t/power-on
name: t
proves: the power-on 0800 meets the first host step
requires: [display, preload-journal]
terminal: fixtures/terminals/zvt-en-eur.yaml
signed_on: false
steps:
  - host:
      expect: {mti: "0800"}
      reply: {39: "96"}
  - expect:
      host: {count: 1}
"#);
    assert_passed(&r);
    // The directive applied: the 0810 carries the scripted decline, not the rules' approval.
    assert!(r.transcript.contains("39=96"), "{}", r.transcript);
}

#[test]
fn the_paper_runs_out_after_the_given_number_of_receipts() {
    let r = run(r#"id: refund/t/paper
name: t
proves: paper_out_after 1 holds the second receipt until paper_out is false
requires: [keypad, reader, display, printer, printer-faults, paper-roll, preload-journal]
terminal: fixtures/terminals/zvt-en-eur.yaml
fixtures:
  journal: fixtures/journals/eur-open-batch.yaml
signed_on: true
steps:
  - fault: {paper_out_after: 1}
  - keys: [MENU, "3", ENTER, "123456", ENTER]
  - card: {insert: visa_credit_01}
  - keys: ["000000000201", ENTER, "1126", ENTER, "1000", ENTER, ENTER]
  - expect:
      display: {contains: PAPER OUT}
      printer: {contains: MERCHANT COPY}
  - expect:
      printer: {not: {contains: CUSTOMER COPY}}
  - fault: {paper_out: false}
  - expect:
      printer: {contains: CUSTOMER COPY}
"#);
    assert_passed(&r);
    assert!(
        r.transcript.contains("the paper ran out"),
        "{}",
        r.transcript
    );
}

#[test]
fn a_check_marked_for_posrig_terminals_is_checked_on_the_emulator() {
    // The emulated rig is posrig's terminal: a wrong gated check fails there.
    let src = r#"id: refund/t/gated
name: t
proves: a gated check runs on the emulator
requires: [display]
terminal: fixtures/terminals/zvt-en-eur.yaml
steps:
  - expect:
      requires: [posrig-terminal]
      display: {contains: "NOT ON THE DISPLAY"}
"#;
    let r = run(src);
    assert!(matches!(r.verdict, Verdict::Failed), "{:?}", r.verdict);
    assert!(
        r.failures[0].message.contains("NOT ON THE DISPLAY"),
        "{:?}",
        r.failures
    );
}
