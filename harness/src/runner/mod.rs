//! Runs a scenario on a world: the steps in order, expectations checked, everything recorded
//! into a transcript, which is then compared with the reviewed snapshot.
//!
//! The runner is generic over [`World`]: the emulated rig (in-process, virtual time), the
//! emulator as a process and a real terminal implement the same operations, so the same
//! scenario file runs unchanged on each.

pub mod observed;
pub mod steps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use acquirer::Host;
use protocol::riglink::{FaultKind, KeyName};
use protocol::zvt::command::CommandKind;
use protocol::zvt::ecr::{Reply, Times};

pub use observed::Observed;

use crate::rig::LoadedRig;
use crate::scenario::load::{LoadedScenario, Variant};
use crate::snapshot;
use crate::transcript::{Channel, Item, Transcript};

/// A card action by fixture name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardAct {
    Swipe(String),
    Insert(String),
    Tap(String),
    Remove,
}

/// Faults a world can switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorldFault {
    Device(FaultKind),
    /// The acquirer is unreachable: connections are refused.
    HostDown,
}

/// Line faults on the ECR side.
#[derive(Clone, Debug, Default)]
pub struct LineFaults {
    pub drop_acks: u32,
    pub corrupt_frames: u32,
    pub delay_ack: Option<Duration>,
}

/// Everything a rig offers the runner.
pub trait World {
    /// Presses a key.
    fn key(&mut self, k: KeyName) -> Result<(), String>;
    fn card(&mut self, a: &CardAct) -> Result<(), String>;
    fn fault(&mut self, f: WorldFault, on: bool) -> Result<(), String>;
    /// The printer's paper runs out after `receipts` more receipts.
    fn paper_out_after(&mut self, receipts: u32) -> Result<(), String>;
    fn power(&mut self, on: bool) -> Result<(), String>;
    /// Cuts power when the terminal reaches `at` (the next time it does).
    fn arm_power_cut(&mut self, at: crate::scenario::model::Failpoint) -> Result<(), String>;
    /// Sends a ZVT APDU as the ECR (a new command, or 06 B0 while one runs).
    fn ecr_send(&mut self, apdu: Vec<u8>) -> Result<(), String>;
    fn ecr_reply(&mut self, kind: CommandKind, reply: Reply, times: Times);
    fn ecr_inject(&mut self, bytes: &[u8]) -> Result<(), String>;
    fn ecr_line_faults(&mut self, f: LineFaults);
    fn ecr_disconnect(&mut self) -> Result<(), String>;
    /// The acquirer simulator.
    fn with_host<R>(&mut self, f: impl FnOnce(&mut Host) -> R) -> R;
    /// Lets `d` pass (virtual on emulated rigs), processing everything that happens.
    fn advance(&mut self, d: Duration);
    /// Runs until `cond` holds or `timeout` passes; true if it held.
    fn wait_until(
        &mut self,
        timeout: Duration,
        cond: &mut dyn FnMut(&Observed, &Host) -> bool,
    ) -> bool;
    fn observed(&self) -> &Observed;
    fn observed_mut(&mut self) -> &mut Observed;
    fn recorder(&mut self) -> &mut Recorder;
    /// The profile of the terminal under test.
    fn profile(&self) -> &protocol::fixture::terminal::TerminalProfile;
    /// A card fixture by name.
    fn card_fixture(&self, name: &str) -> Option<protocol::fixture::cards::CardFixture>;
    /// Settles after an action (processes what is due now).
    fn settle(&mut self);
}

/// The transcript being written (normalised when rendered, so it is rig-independent).
pub struct Recorder {
    pub transcript: Transcript,
    pub link_events: bool,
    /// Raw bytes per channel with timestamps (ms since the run started), PAN-redacted.
    pub raw: BTreeMap<&'static str, Vec<(i64, Vec<u8>)>>,
    /// The terminal's local date and time when the scenario started.
    pub started: chrono::NaiveDateTime,
}

impl Recorder {
    pub fn new(started: chrono::NaiveDateTime, link_events: bool) -> Recorder {
        Recorder {
            transcript: Transcript::new(started.date()),
            started,
            link_events,
            raw: BTreeMap::new(),
        }
    }
    pub fn push(&mut self, ch: Channel, text: String) {
        self.item(ch, Item::Text(text));
    }
    pub fn item(&mut self, ch: Channel, item: Item) {
        if ch == Channel::Link && !self.link_events {
            return;
        }
        self.transcript.push(ch, item);
    }
    /// What the acquirer received and sent (its log, PANs already masked), as transcript
    /// entries. Connection events are not behaviour of the terminal: only messages and
    /// problems are kept.
    pub fn host_exchanges(&mut self, log: &[acquirer::log::Exchange]) {
        for x in log {
            let ch = match x.direction {
                acquirer::log::Direction::In => Channel::HostIn,
                acquirer::log::Direction::Out => Channel::HostOut,
            };
            let item = match (&x.mti, &x.note) {
                (Some(m), note) => Item::Iso {
                    mti: m.clone(),
                    fields: x.fields.clone(),
                    note: note.clone(),
                },
                (None, Some(n))
                    if n.contains("connected") || n.contains("closed by the terminal") =>
                {
                    continue;
                }
                (None, Some(n)) => Item::Text(format!("[{n}]")),
                (None, None) => continue,
            };
            self.item(ch, item);
        }
    }
    pub fn raw(&mut self, channel: &'static str, t: i64, bytes: &[u8]) {
        self.raw
            .entry(channel)
            .or_default()
            .push((t, bytes.to_vec()));
    }
}

/// A check that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// 1-based step number and its line in the scenario file.
    pub step: usize,
    pub line: u64,
    /// What was checked: `host 0220 field 4`, `display`, `ecr result`.
    pub what: String,
    pub message: String,
    /// A timeout is kept apart from a mismatch.
    pub kind: FailureKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    Mismatch,
    Timeout,
    /// A message that came but matched nothing, or could not be parsed.
    Unmatched,
    Error,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            FailureKind::Mismatch => "mismatch",
            FailureKind::Timeout => "timeout",
            FailureKind::Unmatched => "unmatched",
            FailureKind::Error => "error",
        };
        write!(
            f,
            "step {} (line {}): {} — {kind}: {}",
            self.step, self.line, self.what, self.message
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// The rig lacks a capability the scenario requires.
    NotApplicable(String),
    /// A file or fixture could not be used.
    Error(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotOutcome {
    Matches,
    /// Written as `.snap` (accepted) or `.snap.new` (pending review); `written` is `None`
    /// when nothing was written (`--check-snapshots`).
    New {
        written: Option<PathBuf>,
        accepted: bool,
    },
    Differs {
        diff: String,
        written: Option<PathBuf>,
        accepted: bool,
    },
    /// Not compared (the run failed before the end, or not applicable).
    Skipped,
    /// Not compared because the run was asked to judge by expectations only.
    NotCompared,
}

/// One scenario (one matrix entry) on one rig.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub id: String,
    pub name: String,
    pub proves: String,
    pub file: PathBuf,
    pub variant: Option<String>,
    pub covers: Vec<String>,
    pub verdict: Verdict,
    pub failures: Vec<Failure>,
    pub snapshot: SnapshotOutcome,
    pub snapshot_path: PathBuf,
    pub transcript: String,
    pub terminal_id: Option<String>,
    pub dialect: Option<String>,
    pub sw_version: Option<String>,
    pub scenario_hash: String,
    pub snapshot_hash: Option<String>,
    /// Wall time the run took.
    pub elapsed: Duration,
    pub raw: BTreeMap<&'static str, Vec<(i64, Vec<u8>)>>,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Passed
            && matches!(
                self.snapshot,
                SnapshotOutcome::Matches
                    | SnapshotOutcome::NotCompared
                    | SnapshotOutcome::New { accepted: true, .. }
                    | SnapshotOutcome::Differs { accepted: true, .. }
            )
    }
    pub fn display_name(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}@{v}", self.id),
            None => self.id.clone(),
        }
    }
}

/// How a run treats snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    /// Compare; write `.snap.new` for new or different ones.
    Compare,
    /// Compare and accept: write `.snap` directly.
    Accept,
    /// Compare only, write nothing (CI).
    Check,
    /// Judge by the scenario's expectations alone: a terminal whose transcripts nobody has
    /// reviewed yet (its first run on a lab bench).
    Ignore,
}

/// SHA-256 of bytes, hex (scenario and snapshot hashes for reports).
pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Runs every variant of a scenario on `rig`.
pub fn run_scenario(
    ls: &LoadedScenario,
    rig: &LoadedRig,
    mode: SnapshotMode,
    workspace: &Path,
) -> Vec<RunResult> {
    ls.variants
        .iter()
        .map(|v| run_variant(ls, v, rig, mode, workspace))
        .collect()
}

/// Runs one variant and compares its transcript with its snapshot.
pub fn run_variant(
    ls: &LoadedScenario,
    v: &Variant,
    rig: &LoadedRig,
    mode: SnapshotMode,
    workspace: &Path,
) -> RunResult {
    let started = std::time::Instant::now();
    let s = &ls.scenario;
    let snapshot_path = snapshot::snapshot_path(
        &ls.path,
        v.name.as_deref(),
        rig.snapshot_suffix().as_deref(),
    );
    let mut result = RunResult {
        id: s.id.value.clone(),
        name: s.name.clone(),
        proves: s.proves.clone(),
        file: ls.path.clone(),
        variant: v.name.clone(),
        covers: s.covers.iter().map(|c| c.value.clone()).collect(),
        verdict: Verdict::Passed,
        failures: Vec::new(),
        snapshot: SnapshotOutcome::Skipped,
        snapshot_path: snapshot_path.clone(),
        transcript: String::new(),
        terminal_id: None,
        dialect: None,
        sw_version: None,
        scenario_hash: sha256_hex(ls.source.as_bytes()),
        snapshot_hash: None,
        elapsed: Duration::ZERO,
        raw: BTreeMap::new(),
    };
    let missing: Vec<&str> = s
        .requires
        .iter()
        .map(|r| r.value.as_str())
        .filter(|c| !rig.provides(c))
        .collect();
    let not_applicable = if !missing.is_empty() {
        Some(format!("rig {} lacks {}", rig.name(), missing.join(", ")))
    } else if rig.file.kind == crate::rig::RigKind::Terminal {
        crate::rig::terminal::not_applicable(ls, v, rig)
    } else {
        None
    };
    if let Some(why) = not_applicable {
        result.verdict = Verdict::NotApplicable(why);
        result.elapsed = started.elapsed();
        return result;
    }
    let outcome = match rig.file.kind {
        crate::rig::RigKind::Emulated => {
            crate::rig::emulated::EmulatedWorld::build(ls, v).map(|mut w| {
                let r = steps::execute(&mut w, ls, v, &|c| rig.provides(c));
                (r, w.finish())
            })
        }
        crate::rig::RigKind::EmulatorProcess => crate::rig::process::run(ls, v, rig),
        crate::rig::RigKind::Terminal => crate::rig::terminal::run(ls, v, rig),
    };
    match outcome {
        Err(e) => {
            result.verdict = Verdict::Error(e);
        }
        Ok((failures, fin)) => {
            result.transcript = fin.transcript;
            result.terminal_id = Some(fin.terminal_id);
            result.dialect = Some(fin.dialect);
            result.sw_version = fin.sw_version;
            result.raw = fin.raw;
            if !failures.is_empty() {
                result.verdict = Verdict::Failed;
                result.failures = failures;
            } else if mode == SnapshotMode::Ignore {
                result.snapshot = SnapshotOutcome::NotCompared;
            } else {
                result.snapshot =
                    compare_snapshot(ls, v, &snapshot_path, &result.transcript, mode, workspace);
                result.snapshot_hash = std::fs::read(&snapshot_path).ok().map(|b| sha256_hex(&b));
            }
        }
    }
    result.elapsed = started.elapsed();
    result
}

/// What a finished world hands back.
pub struct Finished {
    pub transcript: String,
    pub terminal_id: String,
    pub dialect: String,
    pub sw_version: Option<String>,
    pub raw: BTreeMap<&'static str, Vec<(i64, Vec<u8>)>>,
}

fn compare_snapshot(
    ls: &LoadedScenario,
    v: &Variant,
    path: &Path,
    body: &str,
    mode: SnapshotMode,
    workspace: &Path,
) -> SnapshotOutcome {
    let source = ls
        .path
        .strip_prefix(workspace)
        .unwrap_or(&ls.path)
        .display()
        .to_string();
    let description = match &v.name {
        Some(p) => format!("{}@{p}: {}", ls.scenario.id.value, ls.scenario.proves),
        None => format!("{}: {}", ls.scenario.id.value, ls.scenario.proves),
    };
    let header = snapshot::Header {
        source: &source,
        description: &description,
    };
    let cmp = match snapshot::compare(path, body) {
        Ok(c) => c,
        Err(e) => {
            return SnapshotOutcome::Differs {
                diff: format!("cannot read {}: {e}", path.display()),
                written: None,
                accepted: false,
            };
        }
    };
    let accept = mode == SnapshotMode::Accept;
    /// Writes the new version unless only checking; a failed write is reported, not hidden.
    fn write(
        mode: SnapshotMode,
        path: &Path,
        header: &snapshot::Header,
        body: &str,
    ) -> Result<Option<PathBuf>, String> {
        if matches!(mode, SnapshotMode::Check | SnapshotMode::Ignore) {
            return Ok(None);
        }
        snapshot::write(path, header, body, mode == SnapshotMode::Accept)
            .map(Some)
            .map_err(|e| format!("\ncannot write the new version of {}: {e}", path.display()))
    }
    match cmp {
        snapshot::Comparison::Matches => {
            let _ = std::fs::remove_file(snapshot::pending_path(path));
            SnapshotOutcome::Matches
        }
        snapshot::Comparison::New => match write(mode, path, &header, body) {
            Ok(written) => SnapshotOutcome::New {
                accepted: accept && written.is_some(),
                written,
            },
            Err(e) => SnapshotOutcome::Differs {
                diff: e,
                written: None,
                accepted: false,
            },
        },
        snapshot::Comparison::Differs { old } => {
            let mut diff = snapshot::diff(&old, body, false);
            let written = write(mode, path, &header, body).unwrap_or_else(|e| {
                diff.push_str(&e);
                None
            });
            SnapshotOutcome::Differs {
                diff,
                accepted: accept && written.is_some(),
                written,
            }
        }
    }
}
