//! `posrig bench`: generates N refund scenarios, runs them on the emulated rig and prints
//! scenarios per second and peak memory. Figures, not assertions: speed goals live here, never
//! in tests.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::rig::LoadedRig;
use crate::runner::SnapshotMode;

/// Writes `n` scenario files into `dir/scenarios/bench/` (a suite root with its own fixtures
/// link): keypad and ECR refunds of varied amounts against the CUP and ZVT profiles.
pub fn generate(dir: &Path, fixtures: &Path, n: usize) -> std::io::Result<Vec<PathBuf>> {
    let root = dir.join("suite");
    let sdir = root.join("refund/bench");
    std::fs::create_dir_all(&sdir)?;
    copy_dir(fixtures, &root.join("fixtures"))?;
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        // Minor units, under the originals (CNY 200.00, EUR 100.00).
        let amount = if i % 2 == 0 {
            100 + (i * 37) % 19_900
        } else {
            100 + (i * 37) % 9_900
        };
        let (major, minor) = (amount / 100, amount % 100);
        let text = if i % 2 == 0 {
            format!(
                "id: refund/bench/keypad-{i}\nname: bench keypad {i}\nproves: a keypad refund of {major}.{minor:02} is approved\n\
                 covers: [R-ADVICE]\nrequires: [keypad, reader, display, preload-journal, set-clock]\n\
                 terminal: fixtures/terminals/cup-zh-cny.yaml\nfixtures:\n  journal: fixtures/journals/cup-open-batch.yaml\n\
                 clock: 2026-11-26T10:00:00+08:00\nsigned_on: true\nsteps:\n\
                 \x20 - keys: [MENU, \"3\", ENTER, \"123456\", ENTER]\n\
                 \x20 - card: {{swipe: unionpay_magstripe_01}}\n\
                 \x20 - keys: [\"000000000101\", ENTER, \"1126\", ENTER, \"{amount}\", ENTER, ENTER]\n\
                 \x20 - host:\n      expect: {{mti: \"0220\", 4: \"{amount:012}\"}}\n      reply: {{39: \"00\"}}\n\
                 \x20 - expect:\n      display: {{contains: 退货成功}}\n"
            )
        } else {
            format!(
                "id: refund/bench/ecr-{i}\nname: bench ecr {i}\nproves: an ECR refund of {major}.{minor:02} is approved\n\
                 covers: [R-REV]\nrequires: [ecr, reader, display, preload-journal, set-clock]\n\
                 terminal: fixtures/terminals/zvt-en-eur.yaml\nfixtures:\n  journal: fixtures/journals/eur-open-batch.yaml\n\
                 clock: 2026-11-26T10:00:00+01:00\nsigned_on: true\nsteps:\n\
                 \x20 - ecr: {{refund: {{amount: {{minor: {amount}}}, original: {{rrn: \"000000000201\", date: \"1126\"}}}}}}\n\
                 \x20 - card: {{insert: visa_credit_01}}\n\
                 \x20 - host:\n      expect: {{mti: \"0200\", 4: \"{amount:012}\"}}\n      reply: {{39: \"00\"}}\n\
                 \x20 - expect:\n      ecr: {{result: \"00\"}}\n      display: {{contains: APPROVED}}\n"
            )
        };
        let p = sdir.join(format!("s{i:06}.yaml"));
        std::fs::write(&p, text)?;
        files.push(p);
    }
    Ok(files)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()))?;
        } else {
            std::fs::copy(&p, to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// Peak resident set size of this process in KiB (Linux), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub struct Figures {
    pub n: usize,
    pub jobs: usize,
    pub load_s: f64,
    pub run_s: f64,
    pub passed: usize,
    pub peak_rss_kib: Option<u64>,
}

/// Generates, loads and runs `n` scenarios with `jobs` workers.
pub fn run(fixtures: &Path, n: usize, jobs: usize) -> Result<Figures, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let files = generate(tmp.path(), fixtures, n).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let (loaded, bad) = crate::suite::load_all(&files);
    if let Some(e) = bad.first() {
        return Err(e.excerpt.clone());
    }
    let load_s = t0.elapsed().as_secs_f64();
    let rig = LoadedRig::emulated();
    let t1 = Instant::now();
    let results = crate::suite::run_all(
        &loaded,
        &rig,
        SnapshotMode::Check,
        tmp.path(),
        jobs,
        &|_| {},
    );
    let run_s = t1.elapsed().as_secs_f64();
    let passed = results
        .iter()
        .filter(|r| r.verdict == crate::runner::Verdict::Passed)
        .count();
    Ok(Figures {
        n,
        jobs,
        load_s,
        run_s,
        passed,
        peak_rss_kib: peak_rss_kib(),
    })
}
