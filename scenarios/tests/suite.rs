//! `cargo test` runs the whole refund suite on the emulated rig, through insta, against the
//! same `.snap` files `posrig run` uses: review changes with `cargo insta review`.

use std::path::{Path, PathBuf};

use posrig::rig::LoadedRig;
use posrig::runner::{SnapshotMode, Verdict, run_variant};
use posrig::scenario::load::LoadedScenario;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("refund")
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load() -> Vec<LoadedScenario> {
    let files = posrig::suite::discover(&[suite_dir()]).expect("the suite folder exists");
    let (ok, bad) = posrig::suite::load_all(&files);
    let errors: Vec<String> = bad.iter().map(|e| e.excerpt.clone()).collect();
    assert!(
        errors.is_empty(),
        "scenario files with errors:\n{}",
        errors.join("\n")
    );
    ok
}

fn snapshot_name(file: &Path, variant: Option<&str>) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match variant {
        Some(v) => format!("{stem}@{v}"),
        None => stem,
    }
}

#[test]
fn every_scenario_passes_on_the_emulated_rig_with_its_snapshot() {
    let rig = LoadedRig::emulated();
    let scenarios = load();
    assert!(!scenarios.is_empty());
    let mut failures = Vec::new();
    for s in &scenarios {
        for v in &s.variants {
            // Check mode: the runner compares nothing and writes nothing; insta does both.
            let r = run_variant(s, v, &rig, SnapshotMode::Check, &workspace());
            match &r.verdict {
                Verdict::Passed => {}
                Verdict::NotApplicable(why) => {
                    failures.push(format!(
                        "{}: not applicable on the emulated rig: {why}",
                        r.display_name()
                    ));
                    continue;
                }
                Verdict::Failed => {
                    let f: Vec<String> = r.failures.iter().map(|f| format!("  {f}")).collect();
                    failures.push(format!("{} failed:\n{}", r.display_name(), f.join("\n")));
                    continue;
                }
                Verdict::Error(e) => {
                    failures.push(format!("{}: {e}", r.display_name()));
                    continue;
                }
            }
            let dir = s.path.parent().unwrap_or(Path::new(".")).join("snapshots");
            let name = snapshot_name(&s.path, v.name.as_deref());
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path(dir);
            settings.set_prepend_module_to_snapshot(false);
            settings.set_omit_expression(true);
            settings.set_input_file(&s.path);
            settings.set_description(format!("{}: {}", r.display_name(), r.proves));
            let transcript = r.transcript.clone();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                settings.bind(|| insta::assert_snapshot!(name.as_str(), transcript));
            }));
            if outcome.is_err() {
                failures.push(format!(
                    "{}: snapshot differs (cargo insta review)",
                    r.display_name()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the suite failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_readme_lists_every_scenario_as_it_is() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let a = readme
        .find("<!-- BEGIN scenario table")
        .expect("the README has the table markers");
    let a = a + readme[a..].find('\n').unwrap() + 1;
    let b = readme.find("<!-- END scenario table -->").unwrap();
    let table = readme[a..b].trim();
    let generated = posrig::cli::list_markdown(&[suite_dir()]).unwrap();
    assert_eq!(
        table,
        generated.trim(),
        "scenarios/README.md is stale: paste `posrig list --markdown scenarios` between the markers"
    );
}
