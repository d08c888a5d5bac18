//! Scenario files with mistakes end in located errors, never a panic.
use std::path::{Path, PathBuf};

use posrig::scenario::load::load_file;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A throwaway suite: `fixtures/` copied from the repo's terminal profiles.
fn suite() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("fixtures/terminals");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::copy(
        repo().join("fixtures/terminals/cup-zh-cny.yaml"),
        t.join("cup-zh-cny.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("refund")).unwrap();
    dir
}

const GOOD: &str = r#"id: refund/basics/example
name: example
proves: a good file loads
covers: [R-RECEIPT]
requires: [keypad, display, printer]
terminal: fixtures/terminals/cup-zh-cny.yaml
vars:
  amount: "33.33"
steps:
  - keys: [MENU, "3", ENTER]
  - host:
      expect: {mti: "0220", 4: "000000003333", 60.1: "25"}
      reply: {39: "00"}
      capture: {rrn: reply.37}
  - expect:
      display: {contains: "${rrn}"}
"#;

fn write(dir: &Path, src: &str) -> PathBuf {
    let p = dir.join("refund/s.yaml");
    std::fs::write(&p, src).unwrap();
    p
}

fn err(src: &str) -> posrig::scenario::LoadError {
    let d = suite();
    load_file(&write(d.path(), src)).unwrap_err()
}

#[test]
fn a_good_file_loads() {
    let d = suite();
    let s = load_file(&write(d.path(), GOOD)).unwrap_or_else(|e| panic!("{}", e.excerpt));
    assert_eq!(s.scenario.steps.len(), 3);
    assert_eq!(s.variants.len(), 1);
}

#[test]
fn unknown_step_is_located() {
    let e = err(&GOOD.replace("  - keys: [MENU", "  - kyes: [MENU"));
    assert_eq!(e.line, 10, "{}", e.excerpt);
    assert!(e.message.contains("kyes"), "{e}");
}

#[test]
fn unknown_key_is_located() {
    let e = err(&GOOD.replace("name: example", "name: example\nnmae: typo"));
    assert_eq!((e.line, e.column), (3, 1), "{}", e.excerpt);
}

#[test]
fn unknown_rule_id_is_located() {
    let e = err(&GOOD.replace("[R-RECEIPT]", "[R-RECEIPT, R-NOPE]"));
    assert_eq!((e.line, e.column), (4, 21), "{}", e.excerpt);
    assert!(e.message.contains("R-NOPE"));
    assert!(e.excerpt.contains('^'), "{}", e.excerpt);
}

#[test]
fn bad_field_number_is_located() {
    let e = err(&GOOD.replace("60.1: \"25\"", "6O: \"25\""));
    assert_eq!(e.line, 12, "{}", e.excerpt);
    assert!(e.message.contains("6O"), "{e}");
}

#[test]
fn undefined_variable_is_located() {
    let e = err(&GOOD.replace("${rrn}", "${rnr}"));
    assert_eq!(e.line, 16, "{}", e.excerpt);
    assert!(e.message.contains("rnr"), "{e}");
}

#[test]
fn a_variable_used_before_its_capture_is_undefined() {
    let src = GOOD.replace("  - keys: [MENU, \"3\", ENTER]", "  - keys: [\"${rrn}\"]");
    let e = err(&src);
    assert_eq!(e.line, 10, "{}", e.excerpt);
}

#[test]
fn missing_fixture_is_located() {
    let e = err(&GOOD.replace("cup-zh-cny.yaml", "nope.yaml"));
    assert_eq!(e.line, 6, "{}", e.excerpt);
}

#[test]
fn float_amounts_are_refused() {
    let src = GOOD.replace(
        "  - keys: [MENU, \"3\", ENTER]",
        "  - ecr: {refund: {amount: 33.33}}",
    );
    let e = err(&src);
    assert_eq!(e.line, 10, "{}", e.excerpt);
}

#[test]
fn huge_scalar_and_alias_bomb_fail_fast() {
    let big = format!("{GOOD}# {}\n", "x".repeat(8 * 1024 * 1024));
    let e = err(&big);
    assert_eq!((e.line, e.column), (1, 1));
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..10 {
        let p = if i == 1 {
            "a".to_string()
        } else {
            format!("a{}", i - 1)
        };
        bomb.push_str(&format!(
            "a{i}: &a{i} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        ));
    }
    let e = err(&bomb);
    assert!(e.line >= 1, "{e}");
}

#[test]
fn capabilities_the_steps_use_must_be_declared() {
    let e = err(&GOOD.replace(
        "requires: [keypad, display, printer]",
        "requires: [keypad, printer]",
    ));
    assert_eq!((e.line, e.column), (5, 1), "{}", e.excerpt);
    assert!(e.message.contains("display"), "{e}");
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Random bytes: an error with a place, never a panic.
        #[test]
        fn arbitrary_text(src in "\\PC{0,400}") {
            let d = suite();
            let p = write(d.path(), &src);
            let _ = load_file(&p);
        }

        /// A good file with a random slice cut out or a random line duplicated.
        #[test]
        fn mutated_good_file(cut_at in 0usize..GOOD.len(), cut_len in 0usize..40, dup in 0usize..20) {
            let d = suite();
            let mut src = GOOD.to_string();
            let end = (cut_at + cut_len).min(src.len());
            if src.is_char_boundary(cut_at) && src.is_char_boundary(end) {
                src.replace_range(cut_at..end, "");
            }
            let lines: Vec<&str> = src.lines().collect();
            if let Some(l) = lines.get(dup % lines.len().max(1)) {
                src = format!("{src}\n{l}\n");
            }
            let p = write(d.path(), &src);
            if let Err(e) = load_file(&p) {
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}

#[test]
fn all_of_and_ecr_refused_load() {
    let src = r#"id: refund/review/example
name: example
proves: all_of and ecr.refused are part of the format
requires: [ecr, printer]
terminal: fixtures/terminals/cup-zh-cny.yaml
steps:
  - ecr: {raw: "06 31 02 04 FF"}
  - expect:
      ecr: {refused: "9A"}
      printer: {all_of: [{contains: 退货}, {regex: "R-ZERO"}, {not: {contains: "??"}}]}
"#;
    let d = suite();
    let s = load_file(&write(d.path(), src)).unwrap_or_else(|e| panic!("{}", e.excerpt));
    let posrig::scenario::Step::Expect(e) = &s.scenario.steps[1].value else {
        panic!("not an expect step");
    };
    assert!(matches!(
        e.printer,
        Some(posrig::scenario::MatcherValue::AllOf(ref v)) if v.len() == 3
    ));
    let bad = src.replace("{regex: \"R-ZERO\"}", "{regex: \"(\"}");
    let e = err(&bad);
    assert!(e.message.contains("bad regex"), "{}", e.message);
}

#[test]
fn host_expectations_on_the_reply_load() {
    let src = r#"id: refund/fees/example
name: example
proves: reply.<field> asserts on the host's reply
requires: [keypad]
terminal: fixtures/terminals/cup-zh-cny.yaml
steps:
  - host:
      expect: {mti: "0220", 4: "000000003333", reply.39: "00", reply.57.3: "000000000020"}
"#;
    let d = suite();
    let s = load_file(&write(d.path(), src)).unwrap_or_else(|e| panic!("{}", e.excerpt));
    let posrig::scenario::Step::Host(h) = &s.scenario.steps[0].value else {
        panic!("not a host step");
    };
    assert!(h.expect.get("reply.57.3").is_some());
    let e = err(&src.replace("reply.57.3", "reply.x"));
    assert!(e.message.contains("bad field \"reply.x\""), "{}", e.message);
}

#[test]
fn a_check_for_some_rigs_only_asks_nothing_of_the_others_and_cannot_capture() {
    // Its display check needs no `display` in the scenario's requires.
    let d = suite();
    let gated = GOOD.replace(
        "  - expect:\n      display: {contains: \"${rrn}\"}\n",
        "  - expect:\n      requires: [posrig-terminal]\n      display: {contains: \"${rrn}\"}\n",
    );
    assert_ne!(gated, GOOD);
    let only = gated.replace(
        "requires: [keypad, display, printer]",
        "requires: [keypad, printer]",
    );
    load_file(&write(d.path(), &only)).unwrap_or_else(|e| panic!("{}", e.excerpt));
    let e = err(&gated.replace("[posrig-terminal]", "[posrig-termnial]"));
    assert_eq!(e.line, 16, "{}", e.excerpt);
    assert!(e.message.contains("unknown capability"), "{e}");
    let e = err(&gated.replace(
        "      display: {contains: \"${rrn}\"}\n",
        "      display: {contains: \"${rrn}\"}\n      capture: {shown: display}\n",
    ));
    assert_eq!(e.line, 15, "{}", e.excerpt);
    assert!(e.message.contains("cannot `capture:`"), "{e}");
}

#[test]
fn an_amount_may_hold_a_variable_but_not_junk() {
    let with = |amount: &str| {
        GOOD.replace(
            "  - keys: [MENU, \"3\", ENTER]\n",
            &format!("  - ecr:\n      refund: {{amount: {amount}}}\n"),
        )
        .replace("requires: [keypad,", "requires: [ecr, keypad,")
    };
    let d = suite();
    load_file(&write(d.path(), &with("{minor: \"1${today_mmdd}\"}")))
        .unwrap_or_else(|e| panic!("{}", e.excerpt));
    load_file(&write(d.path(), &with("\"${amount}\""))).unwrap_or_else(|e| panic!("{}", e.excerpt));
    let e = err(&with("{minor: \"12a\"}"));
    assert!(
        e.message.contains("not a whole number of minor units"),
        "{e}"
    );
    let e = err(&with("{minor: \"1${nowhere}\"}"));
    assert!(e.message.contains("undefined variable `nowhere`"), "{e}");
}
