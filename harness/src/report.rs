//! Reports for labs and CI: JUnit XML (quick-junit) and JSON, each with the evidence a
//! certification lab files — rig, terminal ID and software version, dialect, posrig version
//! and git revision, scenario and snapshot hashes — and a coverage matrix rule → scenarios →
//! result. Plus the per-run artefacts (transcript, raw bytes per channel) of `--out`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::rig::LoadedRig;
use crate::runner::{RunResult, SnapshotOutcome, Verdict};

/// Facts about the run as a whole.
#[derive(Clone, Debug, Serialize)]
pub struct RunMeta {
    pub rig: String,
    pub rig_kind: String,
    pub posrig_version: String,
    pub git_revision: String,
    pub elapsed_ms: u128,
}

impl RunMeta {
    pub fn new(rig: &LoadedRig, elapsed: Duration) -> RunMeta {
        RunMeta {
            rig: rig.name().to_string(),
            rig_kind: format!("{:?}", rig.file.kind),
            posrig_version: env!("CARGO_PKG_VERSION").to_string(),
            git_revision: git_revision(),
            elapsed_ms: elapsed.as_millis(),
        }
    }
}

fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn status_word(r: &RunResult) -> &'static str {
    match (&r.verdict, &r.snapshot) {
        (Verdict::NotApplicable(_), _) => "not_applicable",
        (Verdict::Error(_), _) => "error",
        (Verdict::Failed, _) => "failed",
        _ if r.passed() => "passed",
        (_, SnapshotOutcome::New { .. }) => "snapshot_new",
        _ => "snapshot_differs",
    }
}

/// rule → [(scenario, result)]
pub fn coverage(results: &[RunResult]) -> BTreeMap<String, Vec<(String, &'static str)>> {
    let mut m: BTreeMap<String, Vec<(String, &'static str)>> = BTreeMap::new();
    for (rule, _) in crate::rules::RULES {
        m.entry(rule.to_string()).or_default();
    }
    for r in results {
        for c in &r.covers {
            m.entry(c.clone())
                .or_default()
                .push((r.display_name(), status_word(r)));
        }
    }
    m
}

pub fn write_junit(path: &Path, results: &[RunResult], meta: &RunMeta) -> std::io::Result<()> {
    let mut report = Report::new("posrig");
    let mut suite = TestSuite::new(format!("refund suite on {}", meta.rig));
    for (k, v) in [
        ("rig", meta.rig.as_str()),
        ("rig_kind", meta.rig_kind.as_str()),
        ("posrig_version", meta.posrig_version.as_str()),
        ("git_revision", meta.git_revision.as_str()),
    ] {
        suite.add_property(Property::new(k, v));
    }
    for r in results {
        let status = match (&r.verdict, &r.snapshot) {
            (Verdict::NotApplicable(why), _) => {
                let mut s = TestCaseStatus::skipped();
                if let TestCaseStatus::Skipped { message, .. } = &mut s {
                    *message = Some(why.clone().into());
                }
                s
            }
            (Verdict::Error(e), _) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(e.clone());
                s
            }
            (Verdict::Failed, _) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(
                    r.failures
                        .iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                s
            }
            _ if r.passed() => TestCaseStatus::success(),
            (_, SnapshotOutcome::Differs { diff, .. }) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message("snapshot differs");
                s.set_description(diff.clone());
                s
            }
            _ => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message("no accepted snapshot");
                s
            }
        };
        let mut tc = TestCase::new(r.display_name(), status);
        tc.set_classname(
            r.id.rsplit_once('/')
                .map(|(f, _)| f.to_string())
                .unwrap_or_default(),
        );
        tc.set_time(r.elapsed);
        for (k, v) in [
            ("file", r.file.display().to_string()),
            ("proves", r.proves.clone()),
            ("covers", r.covers.join(",")),
            ("terminal_id", r.terminal_id.clone().unwrap_or_default()),
            (
                "terminal_sw_version",
                r.sw_version.clone().unwrap_or_default(),
            ),
            ("dialect", r.dialect.clone().unwrap_or_default()),
            ("scenario_sha256", r.scenario_hash.clone()),
            (
                "snapshot_sha256",
                r.snapshot_hash.clone().unwrap_or_default(),
            ),
        ] {
            tc.add_property(Property::new(k, v));
        }
        suite.add_test_case(tc);
    }
    report.add_test_suite(suite);
    let xml = report.to_string().map_err(std::io::Error::other)?;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, xml)
}

#[derive(Serialize)]
struct JsonResult<'a> {
    id: &'a str,
    variant: Option<&'a str>,
    name: &'a str,
    proves: &'a str,
    file: String,
    status: &'static str,
    reason: Option<String>,
    failures: Vec<String>,
    covers: &'a [String],
    terminal_id: Option<&'a str>,
    terminal_sw_version: Option<&'a str>,
    dialect: Option<&'a str>,
    scenario_sha256: &'a str,
    snapshot: String,
    snapshot_sha256: Option<&'a str>,
    elapsed_ms: u128,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    meta: &'a RunMeta,
    results: Vec<JsonResult<'a>>,
    coverage: BTreeMap<String, Vec<(String, &'static str)>>,
}

pub fn write_json(path: &Path, results: &[RunResult], meta: &RunMeta) -> std::io::Result<()> {
    let rs = results
        .iter()
        .map(|r| JsonResult {
            id: &r.id,
            variant: r.variant.as_deref(),
            name: &r.name,
            proves: &r.proves,
            file: r.file.display().to_string(),
            status: status_word(r),
            reason: match &r.verdict {
                Verdict::NotApplicable(w) | Verdict::Error(w) => Some(w.clone()),
                _ => None,
            },
            failures: r.failures.iter().map(|f| f.to_string()).collect(),
            covers: &r.covers,
            terminal_id: r.terminal_id.as_deref(),
            terminal_sw_version: r.sw_version.as_deref(),
            dialect: r.dialect.as_deref(),
            scenario_sha256: &r.scenario_hash,
            snapshot: r.snapshot_path.display().to_string(),
            snapshot_sha256: r.snapshot_hash.as_deref(),
            elapsed_ms: r.elapsed.as_millis(),
        })
        .collect();
    let doc = JsonReport {
        meta,
        results: rs,
        coverage: coverage(results),
    };
    let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, text)
}

/// `--out DIR`: per run, the transcript and the raw bytes of every channel with timestamps
/// (milliseconds from the start of the run), card data already redacted.
pub fn write_artifacts(dir: &Path, results: &[RunResult]) -> std::io::Result<()> {
    for r in results {
        let name = r.display_name().replace('/', "__");
        let d = dir.join(name);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join("transcript.txt"), &r.transcript)?;
        for (ch, entries) in &r.raw {
            let mut text = String::new();
            for (t, bytes) in entries {
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                text.push_str(&format!("{t:>10} {}\n", hex.join(" ")));
            }
            std::fs::write(d.join(format!("raw-{ch}.log")), text)?;
        }
    }
    Ok(())
}
