//! A suite: the scenario files under some paths, filtered, partitioned, loaded and run.

use std::path::{Path, PathBuf};

use crate::rig::LoadedRig;
use crate::runner::{RunResult, SnapshotMode, run_scenario};
use crate::scenario::load::{LoadError, LoadedScenario, load_file};

/// Every `*.yaml` scenario under `paths` (files as given; folders recursively, skipping
/// `snapshots/` and hidden folders), sorted so runs are reproducible.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
        } else if p.is_dir() {
            walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        } else {
            return Err(format!("{}: no such file or folder", p.display()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "snapshots" || name == "target" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// `hash:K/N`: the scenarios whose id hashes to K (1-based) of N. Deterministic across
/// machines, so CI agents each run a share and their reports merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub k: u64,
    pub n: u64,
}

impl Partition {
    pub fn parse(s: &str) -> Result<Partition, String> {
        let rest = s
            .strip_prefix("hash:")
            .ok_or("partition must be hash:K/N")?;
        let (k, n) = rest.split_once('/').ok_or("partition must be hash:K/N")?;
        let k: u64 = k.parse().map_err(|_| "K must be a number")?;
        let n: u64 = n.parse().map_err(|_| "N must be a number")?;
        if n == 0 || k == 0 || k > n {
            return Err("partition hash:K/N needs 1 <= K <= N".into());
        }
        Ok(Partition { k, n })
    }
    pub fn includes(&self, id: &str) -> bool {
        // FNV-1a: stable everywhere, unlike std's randomised hasher.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in id.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h % self.n == self.k - 1
    }
}

/// Which scenarios to run.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Texts an id or name must contain, any of them (none: everything).
    pub filters: Vec<String>,
    pub tags: Vec<String>,
    pub partition: Option<Partition>,
}

impl Selection {
    pub fn includes(&self, s: &LoadedScenario) -> bool {
        let sc = &s.scenario;
        (self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|f| sc.id.value.contains(f.as_str()) || sc.name.contains(f.as_str())))
            && (self.tags.is_empty() || self.tags.iter().any(|t| sc.tags.contains(t)))
            && self.partition.is_none_or(|p| p.includes(&sc.id.value))
    }
}

/// Loads every file; bad files come back as errors, good ones as scenarios.
pub fn load_all(files: &[PathBuf]) -> (Vec<LoadedScenario>, Vec<LoadError>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in files {
        match load_file(f) {
            Ok(s) => ok.push(s),
            Err(e) => bad.push(e),
        }
    }
    // Two files with one id would share snapshots and reports: refuse the second.
    let mut seen: Vec<(String, PathBuf)> = Vec::new();
    ok.retain(|s| {
        if let Some((_, first)) = seen.iter().find(|(id, _)| *id == s.scenario.id.value) {
            bad.push(protocol::fixture::yaml::YamlError::at(
                &s.path.display().to_string(),
                s.scenario.id.referenced.line(),
                s.scenario.id.referenced.column(),
                format!(
                    "id {:?} is already used by {}",
                    s.scenario.id.value,
                    first.display()
                ),
            ));
            false
        } else {
            seen.push((s.scenario.id.value.clone(), s.path.clone()));
            true
        }
    });
    (ok, bad)
}

/// Runs scenarios on `jobs` workers (in-process emulators; one rig each otherwise).
pub fn run_all(
    scenarios: &[LoadedScenario],
    rig: &LoadedRig,
    mode: SnapshotMode,
    workspace: &Path,
    jobs: usize,
    on_done: &(dyn Fn(&RunResult) + Sync),
) -> Vec<RunResult> {
    let jobs = jobs.max(1).min(scenarios.len().max(1));
    if jobs == 1 {
        let mut out = Vec::new();
        for s in scenarios {
            for r in run_scenario(s, rig, mode, workspace) {
                on_done(&r);
                out.push(r);
            }
        }
        return out;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::<(usize, Vec<RunResult>)>::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(s) = scenarios.get(i) else { break };
                    let rs = run_scenario(s, rig, mode, workspace);
                    for r in &rs {
                        on_done(r);
                    }
                    if let Ok(mut g) = results.lock() {
                        g.push((i, rs));
                    }
                }
            });
        }
    });
    let mut all = results.into_inner().unwrap_or_default();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().flat_map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_everything_exactly_once() {
        let ids: Vec<String> = (0..200).map(|i| format!("refund/x/{i}")).collect();
        let parts: Vec<Partition> = (1..=3).map(|k| Partition { k, n: 3 }).collect();
        for id in &ids {
            assert_eq!(parts.iter().filter(|p| p.includes(id)).count(), 1);
        }
        assert!(Partition::parse("hash:0/3").is_err());
        assert!(Partition::parse("hash:4/3").is_err());
        assert_eq!(
            Partition::parse("hash:2/3").unwrap(),
            Partition { k: 2, n: 3 }
        );
    }
}
