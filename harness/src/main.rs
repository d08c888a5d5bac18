//! `posrig`: the command line. The logic lives in the library; this parses arguments and
//! sets exit codes: 0 all passed, 1 some failed, 2 bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use posrig::cli;

#[derive(Parser)]
#[command(
    name = "posrig",
    version,
    about = "POS refund test harness and terminal emulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios (the refund suite) on a rig.
    Run(cli::RunArgs),
    /// Validate scenario (and rig) files without running them.
    Check {
        /// Scenario files or folders.
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// Also validate this rig file.
        #[arg(long)]
        rig: Option<PathBuf>,
    },
    /// Run the acquirer host simulator on TCP.
    Acquirer(cli::AcquirerCliArgs),
    /// Decode a hex dump (ZVT, ISO 8583, ESC/POS) into named fields, PANs masked.
    Decode {
        #[command(subcommand)]
        what: cli::DecodeWhat,
    },
    /// List the scenarios: id, rules and what each proves (`--markdown`: the README table).
    List {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        #[arg(long)]
        markdown: bool,
    },
    /// List the serial ports of this host.
    Ports,
    /// Generate N refund scenarios, run them on the emulated rig, print scenarios/s and memory.
    Bench {
        /// Scenarios to generate.
        #[arg(long, default_value_t = 1000)]
        n: usize,
        /// Workers.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// The fixtures folder the scenarios use.
        #[arg(long, default_value = "fixtures")]
        fixtures: PathBuf,
    },
    /// Run the emulated terminal as a process, on real ports.
    Emulate(emulator::cli::EmulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cli::run(args),
        Command::Check { paths, rig } => cli::check(&paths, rig.as_deref()),
        Command::Acquirer(a) => cli::acquirer(a),
        Command::Decode { what } => cli::decode(what),
        Command::Ports => cli::ports(),
        Command::List { paths, markdown } => cli::list(&paths, markdown),
        Command::Bench { n, jobs, fixtures } => match posrig::bench::run(&fixtures, n, jobs) {
            Ok(f) => {
                // A closed stdout (`| head`) is not an error worth a panic.
                let _ = writeln!(
                    std::io::stdout(),
                    "{} scenarios, {} workers: loaded in {:.2} s, ran in {:.2} s = {:.0} scenarios/s ({} passed); peak RSS {} MiB",
                    f.n,
                    f.jobs,
                    f.load_s,
                    f.run_s,
                    f.n as f64 / f.run_s.max(1e-9),
                    f.passed,
                    f.peak_rss_kib
                        .map(|k| (k / 1024).to_string())
                        .unwrap_or_else(|| "?".into())
                );
                if f.passed == f.n { 0 } else { 1 }
            }
            Err(e) => {
                eprintln!("posrig bench: {e}");
                2
            }
        },
        Command::Emulate(args) => match emulator::cli::run(args) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("posrig emulate: {e}");
                e.exit_code()
            }
        },
    };
    ExitCode::from(code)
}
