//! The subcommands behind `posrig`, kept in the library so tests can call them.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::rig::{LoadedRig, load_rig};
use crate::runner::{RunResult, SnapshotMode, SnapshotOutcome, Verdict};
use crate::suite::{self, Partition, Selection};

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Scenario files or folders.
    #[arg(default_value = "scenarios")]
    pub paths: Vec<PathBuf>,
    /// The rig (default: the emulated rig, in-process on virtual time).
    #[arg(long)]
    pub rig: Option<PathBuf>,
    /// Only scenarios whose id or name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Only scenarios with this tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Workers: in-process emulators, or rigs of a pool.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run share K of N (`hash:K/N`), deterministic across machines.
    #[arg(long)]
    pub partition: Option<String>,
    /// Write a JUnit XML report.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a JSON report.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep raw bytes per channel and transcripts here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Accept new and changed snapshots.
    #[arg(long)]
    pub accept: bool,
    /// Compare only; write no `.snap.new` (CI).
    #[arg(long)]
    pub check_snapshots: bool,
    /// Stop at the first failing scenario or bad file.
    #[arg(long)]
    pub fail_fast: bool,
    /// Never ask the operator: scenarios that would need a hand are not applicable.
    #[arg(long)]
    pub unattended: bool,
}

fn workspace_of(paths: &[PathBuf]) -> PathBuf {
    let first = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    crate::scenario::load::find_root(&first)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

fn print_load_error(e: &protocol::fixture::yaml::YamlError) {
    eprintln!("{}", e.excerpt.trim_end());
    if !e
        .excerpt
        .contains(&format!("{}:{}:{}", e.file, e.line, e.column))
    {
        eprintln!(" --> {}:{}:{}", e.file, e.line, e.column);
    }
}

pub fn check(paths: &[PathBuf], rig: Option<&Path>) -> u8 {
    let mut bad = 0;
    if let Some(r) = rig
        && let Err(e) = load_rig(r)
    {
        print_load_error(&e);
        bad += 1;
    }
    let files = match suite::discover(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("posrig: {e}");
            return 2;
        }
    };
    let (ok, errors) = suite::load_all(&files);
    for e in &errors {
        print_load_error(e);
    }
    bad += errors.len();
    let variants: usize = ok.iter().map(|s| s.variants.len()).sum();
    println!(
        "{} scenario files, {} runs, {} with errors",
        files.len(),
        variants,
        errors.len()
    );
    if bad > 0 { 2 } else { 0 }
}

pub fn run(args: RunArgs) -> u8 {
    let rig = match &args.rig {
        Some(p) => match load_rig(p) {
            Ok(r) => r,
            Err(e) => {
                print_load_error(&e);
                return 2;
            }
        },
        None => LoadedRig::emulated(),
    };
    let partition = match args.partition.as_deref().map(Partition::parse).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("posrig: --partition: {e}");
            return 2;
        }
    };
    let files = match suite::discover(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("posrig: {e}");
            return 2;
        }
    };
    let (loaded, errors) = suite::load_all(&files);
    for e in &errors {
        print_load_error(e);
    }
    if !errors.is_empty() && args.fail_fast {
        return 2;
    }
    let sel = Selection {
        filter: args.filter.clone(),
        tags: args.tags.clone(),
        partition,
    };
    let chosen: Vec<_> = loaded.into_iter().filter(|s| sel.includes(s)).collect();
    let mode = if args.accept {
        SnapshotMode::Accept
    } else if args.check_snapshots {
        SnapshotMode::Check
    } else {
        SnapshotMode::Compare
    };
    let workspace = workspace_of(&args.paths);
    let tty = std::io::stderr().is_terminal();
    let total: usize = chosen.iter().map(|s| s.variants.len()).sum();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(total as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let started = std::time::Instant::now();
    let report_line = |r: &RunResult| {
        let line = result_line(r, tty);
        match &bar {
            Some(b) => {
                b.inc(1);
                if !r.passed() {
                    b.println(line);
                }
                b.set_message(r.display_name());
            }
            None => println!("{line}"),
        }
    };
    let results = if args.fail_fast {
        let mut out = Vec::new();
        for s in &chosen {
            let rs = crate::runner::run_scenario(s, &rig, mode, &workspace);
            let stop = rs
                .iter()
                .any(|r| !r.passed() && !matches!(r.verdict, Verdict::NotApplicable(_)));
            for r in &rs {
                report_line(r);
            }
            out.extend(rs);
            if stop {
                break;
            }
        }
        out
    } else {
        suite::run_all(&chosen, &rig, mode, &workspace, args.jobs, &report_line)
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed();
    for r in results
        .iter()
        .filter(|r| !r.passed() && !matches!(r.verdict, Verdict::NotApplicable(_)))
    {
        print_details(r, tty);
    }
    print_summary(&results, elapsed, &rig);
    if let Some(out) = &args.out
        && let Err(e) = crate::report::write_artifacts(out, &results)
    {
        eprintln!("posrig: --out {}: {e}", out.display());
    }
    let meta = crate::report::RunMeta::new(&rig, elapsed);
    if let Some(p) = &args.junit
        && let Err(e) = crate::report::write_junit(p, &results, &meta)
    {
        eprintln!("posrig: --junit {}: {e}", p.display());
        return 2;
    }
    if let Some(p) = &args.json
        && let Err(e) = crate::report::write_json(p, &results, &meta)
    {
        eprintln!("posrig: --json {}: {e}", p.display());
        return 2;
    }
    if !errors.is_empty() {
        return 2;
    }
    if results
        .iter()
        .any(|r| !r.passed() && !matches!(r.verdict, Verdict::NotApplicable(_)))
    {
        1
    } else {
        0
    }
}

fn result_line(r: &RunResult, color: bool) -> String {
    let (tag, c) = match (&r.verdict, &r.snapshot) {
        (Verdict::NotApplicable(why), _) => {
            (format!("N/A   {} — {why}", r.display_name()), "\x1b[33m")
        }
        (Verdict::Error(e), _) => (format!("ERROR {} — {e}", r.display_name()), "\x1b[31m"),
        (Verdict::Failed, _) => (format!("FAIL  {}", r.display_name()), "\x1b[31m"),
        (
            Verdict::Passed,
            SnapshotOutcome::New {
                accepted: false, ..
            },
        ) => (
            format!("NEW   {} (snapshot pending review)", r.display_name()),
            "\x1b[33m",
        ),
        (
            Verdict::Passed,
            SnapshotOutcome::Differs {
                accepted: false, ..
            },
        ) => (
            format!("DIFF  {} (snapshot differs)", r.display_name()),
            "\x1b[31m",
        ),
        (
            Verdict::Passed,
            SnapshotOutcome::New { accepted: true, .. }
            | SnapshotOutcome::Differs { accepted: true, .. },
        ) => (format!("ACCEPTED {}", r.display_name()), "\x1b[32m"),
        (Verdict::Passed, _) => (format!("PASS  {}", r.display_name()), "\x1b[32m"),
    };
    let line = format!("{tag} ({} ms)", r.elapsed.as_millis());
    if color {
        format!("{c}{line}\x1b[0m")
    } else {
        line
    }
}

fn print_details(r: &RunResult, color: bool) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n--- {} ({})", r.display_name(), r.file.display());
    for f in &r.failures {
        let _ = writeln!(out, "  {f}");
    }
    if let SnapshotOutcome::Differs { diff, written, .. } = &r.snapshot {
        let _ = writeln!(
            out,
            "  snapshot {} differs (new version: {}):",
            r.snapshot_path.display(),
            written.display()
        );
        let d = if color {
            crate::snapshot::diff(
                &crate::snapshot::read_body(&r.snapshot_path)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                &r.transcript,
                true,
            )
        } else {
            diff.clone()
        };
        for l in d.lines() {
            let _ = writeln!(out, "    {l}");
        }
        let _ = writeln!(
            out,
            "  accept with `posrig run --accept` or `cargo insta review`"
        );
    }
    if let SnapshotOutcome::New {
        written,
        accepted: false,
    } = &r.snapshot
    {
        let _ = writeln!(
            out,
            "  new snapshot written to {}; review and accept it",
            written.display()
        );
    }
}

fn print_summary(results: &[RunResult], elapsed: std::time::Duration, rig: &LoadedRig) {
    let count = |f: &dyn Fn(&RunResult) -> bool| results.iter().filter(|r| f(r)).count();
    let passed = count(&|r| r.passed());
    let na = count(&|r| matches!(r.verdict, Verdict::NotApplicable(_)));
    let failed = count(&|r| matches!(r.verdict, Verdict::Failed));
    let errors = count(&|r| matches!(r.verdict, Verdict::Error(_)));
    let snap = count(&|r| r.verdict == Verdict::Passed && !r.passed());
    println!();
    println!("rig        {}", rig.name());
    println!("passed     {passed}");
    println!("failed     {failed}");
    println!("snapshots  {snap} new or changed");
    println!("errors     {errors}");
    println!("n/a        {na}");
    println!(
        "total      {} in {:.2} s",
        results.len(),
        elapsed.as_secs_f64()
    );
}
