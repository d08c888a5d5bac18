//! The subcommands behind `posrig`, kept in the library so tests can call them.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use crate::rig::{LoadedRig, load_rig};
use crate::runner::{RunResult, SnapshotMode, SnapshotOutcome, Verdict};
use crate::suite::{self, Partition, Selection};

/// Set once stdout is gone (`posrig run | head`): printing stops, the run and its reports do not.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to stdout; a closed pipe silences further output instead of panicking as `print!`
/// would.
fn stdout_write(args: std::fmt::Arguments<'_>) {
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args)
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

macro_rules! out {
    ($($t:tt)*) => { stdout_write(format_args!($($t)*)) };
}
macro_rules! outln {
    () => { stdout_write(format_args!("\n")) };
    ($($t:tt)*) => { stdout_write(format_args!("{}\n", format_args!($($t)*))) };
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Scenario files or folders.
    #[arg(default_value = "scenarios")]
    pub paths: Vec<PathBuf>,
    /// The rig (default: the emulated rig, in-process on virtual time).
    #[arg(long)]
    pub rig: Option<PathBuf>,
    /// Only scenarios whose id or name contains this text (repeatable: any of them).
    #[arg(long = "filter")]
    pub filters: Vec<String>,
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
    /// Judge by expectations only, comparing no snapshot (a terminal's first run on the bench,
    /// before its transcripts are reviewed and accepted).
    #[arg(long, conflicts_with_all = ["accept", "check_snapshots"])]
    pub no_snapshots: bool,
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
    outln!(
        "{} scenario files, {} runs, {} with errors",
        files.len(),
        variants,
        errors.len()
    );
    if bad > 0 { 2 } else { 0 }
}

pub fn run(args: RunArgs) -> u8 {
    let mut rig = match &args.rig {
        Some(p) => match load_rig(p) {
            Ok(r) => r,
            Err(e) => {
                print_load_error(&e);
                return 2;
            }
        },
        None => LoadedRig::emulated(),
    };
    if args.unattended {
        rig = rig.unattended();
    }
    let mut jobs = args.jobs;
    if rig.file.kind == crate::rig::RigKind::Terminal {
        // One terminal on the bench: one scenario at a time, and it must be there.
        jobs = 1;
        let listen = crate::rig::terminal::acquirer_listen(&rig);
        if listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| !a.ip().is_loopback())
        {
            eprintln!(
                "posrig: warning: the acquirer listens on {listen}, not loopback: anyone on that network can reach this test host"
            );
        }
        if let Err(e) = crate::rig::terminal::preflight(&rig) {
            eprintln!("posrig: rig {}: {e}", rig.name());
            return 2;
        }
    }
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
        filters: args.filters.clone(),
        tags: args.tags.clone(),
        partition,
    };
    let chosen: Vec<_> = loaded.into_iter().filter(|s| sel.includes(s)).collect();
    let mode = if args.no_snapshots {
        SnapshotMode::Ignore
    } else if args.accept {
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
            None => outln!("{line}"),
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
        suite::run_all(&chosen, &rig, mode, &workspace, jobs, &report_line)
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
        let new = match written {
            Some(p) => format!("new version: {}", p.display()),
            None => "new version not written".to_string(),
        };
        let _ = writeln!(
            out,
            "  snapshot {} differs ({new}):",
            r.snapshot_path.display(),
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
        let _ = match written {
            Some(p) => writeln!(
                out,
                "  new snapshot written to {}; review and accept it",
                p.display()
            ),
            None => writeln!(
                out,
                "  no snapshot yet at {}; run without --check-snapshots to write one",
                r.snapshot_path.display()
            ),
        };
    }
}

fn print_summary(results: &[RunResult], elapsed: std::time::Duration, rig: &LoadedRig) {
    let count = |f: &dyn Fn(&RunResult) -> bool| results.iter().filter(|r| f(r)).count();
    let passed = count(&|r| r.passed());
    let na = count(&|r| matches!(r.verdict, Verdict::NotApplicable(_)));
    let failed = count(&|r| matches!(r.verdict, Verdict::Failed));
    let errors = count(&|r| matches!(r.verdict, Verdict::Error(_)));
    let snap = count(&|r| r.verdict == Verdict::Passed && !r.passed());
    let accepted = count(&|r| {
        matches!(
            r.snapshot,
            SnapshotOutcome::New { accepted: true, .. }
                | SnapshotOutcome::Differs { accepted: true, .. }
        )
    });
    outln!();
    outln!("rig        {}", rig.name());
    outln!("passed     {passed}");
    outln!("failed     {failed}");
    if accepted > 0 {
        outln!("snapshots  {snap} new or changed, {accepted} accepted");
    } else {
        outln!("snapshots  {snap} new or changed");
    }
    outln!("errors     {errors}");
    outln!("n/a        {na}");
    outln!(
        "total      {} in {:.2} s",
        results.len(),
        elapsed.as_secs_f64()
    );
}

/// `posrig acquirer`: the host simulator on TCP for a lab's real terminals.
#[derive(Args, Debug, Clone)]
pub struct AcquirerCliArgs {
    /// Where to listen; loopback unless a real terminal must reach it (then posrig warns).
    #[arg(long, default_value = "tcp://127.0.0.1:5000")]
    pub listen: String,
    /// `cup`, `iso87-ascii`, or a dialect file.
    #[arg(long, default_value = "cup")]
    pub dialect: String,
    /// The fixtures folder (terminals, keys), or a folder holding `fixtures/`.
    #[arg(long, default_value = "fixtures")]
    pub fixtures: PathBuf,
    /// A fee schedule (`fixtures/fees/*.yaml`).
    #[arg(long)]
    pub fees: Option<PathBuf>,
    /// A directives script: how to answer which requests.
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Originals to preload (`fixtures/journals/*.yaml`).
    #[arg(long)]
    pub journal: Option<PathBuf>,
}

pub fn acquirer(a: AcquirerCliArgs) -> u8 {
    init_tracing();
    let args = acquirer::cli::AcquirerArgs {
        listen: a.listen,
        dialect: a.dialect,
        fixtures: a.fixtures,
        fees: a.fees,
        script: a.script,
        journal: a.journal,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("posrig acquirer: {e}");
            return 2;
        }
    };
    match rt.block_on(acquirer::cli::run(args)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("posrig acquirer: {e}");
            2
        }
    }
}

/// Logs to stderr, filtered by RUST_LOG (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// What `posrig decode` reads.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum DecodeWhat {
    /// A ZVT APDU (or serial frame `10 02 … 10 03 CRC`).
    Zvt {
        /// Hex (spaces allowed) or a file (binary, or hex text).
        input: String,
        /// The command this answers, for 06 0F after a Status Enquiry: `05 01`.
        #[arg(long)]
        after: Option<String>,
    },
    /// An ISO 8583 message (with or without its length prefix).
    Iso8583 {
        input: String,
        /// `cup`, `iso87-ascii`, or a dialect file.
        #[arg(long, default_value = "cup")]
        dialect: String,
    },
    /// ESC/POS printer bytes, rendered as text.
    Escpos {
        input: String,
        /// Paper width in columns.
        #[arg(long, default_value_t = 32)]
        width: usize,
    },
}

/// Hex text or a file (binary, or a hex dump).
fn read_input(input: &str) -> Result<Vec<u8>, String> {
    let p = Path::new(input);
    let text = if p.is_file() {
        let bytes = std::fs::read(p).map_err(|e| format!("{input}: {e}"))?;
        match std::str::from_utf8(&bytes) {
            Ok(t)
                if t.chars()
                    .all(|c| c.is_ascii_hexdigit() || c.is_whitespace()) =>
            {
                t.to_string()
            }
            _ => return Ok(bytes),
        }
    } else {
        input.to_string()
    };
    crate::scenario::load::parse_hex(&text)
        .ok_or_else(|| format!("{input:?} is neither a file nor hex"))
}

pub fn decode(what: DecodeWhat) -> u8 {
    let mut n = crate::transcript::Normaliser::passthrough();
    let result: Result<String, String> = (|| match what {
        DecodeWhat::Zvt { input, after } => {
            let bytes = read_input(&input)?;
            let enquiry = after
                .as_deref()
                .map(|a| a.replace(' ', "").eq_ignore_ascii_case("0501"))
                .unwrap_or(false);
            // A serial frame: take the APDU out of it (CRC checked).
            if bytes.starts_with(&[0x10, 0x02]) {
                let mut link = protocol::zvt::link::SerialLink::new(Default::default());
                link.handle_input(&bytes, protocol::time::Instant::from_millis(0));
                let mut out = Vec::new();
                while let Some(ev) = link.poll_event() {
                    if let protocol::zvt::link::LinkEvent::Received(apdu) = ev {
                        out.push(crate::render::zvt(&apdu, enquiry, &mut n));
                    }
                }
                if out.is_empty() {
                    return Err("no valid frame (bad CRC or incomplete)".into());
                }
                return Ok(out.join("\n"));
            }
            Ok(crate::render::zvt(&bytes, enquiry, &mut n))
        }
        DecodeWhat::Iso8583 { input, dialect } => {
            let bytes = read_input(&input)?;
            let d = protocol::iso8583::Dialect::builtin(&dialect)
                .or_else(|_| protocol::iso8583::Dialect::from_path(Path::new(&dialect)))
                .map_err(|e| e.to_string())?;
            // With or without the length prefix.
            let p = d.length_prefix.kind.width();
            let candidates: [&[u8]; 2] = [bytes.get(p..).unwrap_or(&[]), &bytes];
            let mut last_err = String::new();
            for frame in candidates {
                match protocol::iso8583::MessageRef::decode(&d, frame) {
                    Ok(m) => {
                        // The acquirer's renderer: by subfield, PAN masked, keys never shown.
                        let fields = acquirer::log::render_message(&d, &m);
                        return Ok(crate::render::iso(
                            Some(&m.mti.to_string()),
                            &fields,
                            &mut n,
                        ));
                    }
                    Err(e) => last_err = e.to_string(),
                }
            }
            Err(last_err)
        }
        DecodeWhat::Escpos { input, width } => {
            let bytes = read_input(&input)?;
            Ok(protocol::escpos::render_text(
                &protocol::escpos::Parser::parse(&bytes),
                width,
            ))
        }
    })();
    match result {
        Ok(s) => {
            outln!("{}", s.trim_end());
            0
        }
        Err(e) => {
            eprintln!("posrig decode: {e}");
            2
        }
    }
}

/// `posrig ports`: serial ports on this host.
pub fn ports() -> u8 {
    match serialport::available_ports() {
        Ok(list) if list.is_empty() => {
            outln!("no serial ports found");
            0
        }
        Ok(list) => {
            for p in list {
                let kind = match p.port_type {
                    serialport::SerialPortType::UsbPort(u) => format!(
                        "usb {:04x}:{:04x} {} {}",
                        u.vid,
                        u.pid,
                        u.manufacturer.unwrap_or_default(),
                        u.product.unwrap_or_default()
                    ),
                    serialport::SerialPortType::PciPort => "pci".into(),
                    serialport::SerialPortType::BluetoothPort => "bluetooth".into(),
                    serialport::SerialPortType::Unknown => "unknown".into(),
                };
                outln!("{}\t{}", p.port_name, kind.trim());
            }
            0
        }
        Err(e) => {
            eprintln!("posrig ports: {e}");
            2
        }
    }
}

/// The suite's table: every scenario with what it proves, its rules and its capabilities, by
/// family, in markdown (the table in `scenarios/README.md` is exactly this output).
pub fn list_markdown(paths: &[PathBuf]) -> Result<String, String> {
    let files = suite::discover(paths)?;
    let (ok, bad) = suite::load_all(&files);
    if let Some(e) = bad.first() {
        return Err(e.to_string());
    }
    let mut families: std::collections::BTreeMap<
        String,
        Vec<&crate::scenario::load::LoadedScenario>,
    > = Default::default();
    for s in &ok {
        let id = &s.scenario.id.value;
        let family = id.split('/').nth(1).unwrap_or("other").to_string();
        families.entry(family).or_default().push(s);
    }
    // The families in the order a reader meets them.
    let order = [
        "basics",
        "review",
        "host",
        "fees",
        "duplicates",
        "faults",
        "sign-on",
        "receipts",
    ];
    let mut names: Vec<&String> = families.keys().collect();
    names.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(order.len()));
    let mut out = String::new();
    for fam in names {
        let list = &families[fam];
        out.push_str(&format!("### {fam} ({})\n\n| id | what passing it proves | rules | capabilities |\n|---|---|---|---|\n", list.len()));
        let mut list = list.clone();
        list.sort_by(|a, b| a.scenario.id.value.cmp(&b.scenario.id.value));
        for s in list {
            let sc = &s.scenario;
            let abs = std::fs::canonicalize(&s.path).unwrap_or_else(|_| s.path.clone());
            let rel = abs
                .strip_prefix(s.root.join("scenarios"))
                .unwrap_or(&abs)
                .display()
                .to_string();
            let matrix = if sc.matrix.is_empty() {
                String::new()
            } else {
                format!(
                    " *(matrix: {})*",
                    sc.matrix
                        .iter()
                        .map(|(k, _)| k)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let rules: Vec<&str> = sc.covers.iter().map(|c| c.value.as_str()).collect();
            let caps: Vec<&str> = sc.requires.iter().map(|c| c.value.as_str()).collect();
            out.push_str(&format!(
                "| [`{}`]({}) | {}{} | {} | {} |\n",
                sc.id.value,
                rel,
                sc.proves.replace('|', "\\|"),
                matrix,
                rules.join(", "),
                caps.join(", ")
            ));
        }
        out.push('\n');
    }
    Ok(out)
}

pub fn list(paths: &[PathBuf], markdown: bool) -> u8 {
    if markdown {
        return match list_markdown(paths) {
            Ok(s) => {
                out!("{s}");
                0
            }
            Err(e) => {
                eprintln!("posrig list: {e}");
                2
            }
        };
    }
    let files = match suite::discover(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("posrig list: {e}");
            return 2;
        }
    };
    let (ok, bad) = suite::load_all(&files);
    for s in &ok {
        let sc = &s.scenario;
        let rules: Vec<&str> = sc.covers.iter().map(|c| c.value.as_str()).collect();
        outln!("{}\t{}\t{}", sc.id.value, rules.join(","), sc.proves);
    }
    for e in &bad {
        print_load_error(e);
    }
    if bad.is_empty() { 0 } else { 2 }
}
