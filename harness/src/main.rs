//! `posrig`: the command line. The logic lives in the library; this parses arguments and
//! sets exit codes: 0 all passed, 1 some failed, 2 bad input.

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
    /// List the serial ports of this host.
    Ports,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cli::run(args),
        Command::Check { paths, rig } => cli::check(&paths, rig.as_deref()),
        Command::Acquirer(a) => cli::acquirer(a),
        Command::Decode { what } => cli::decode(what),
        Command::Ports => cli::ports(),
    };
    ExitCode::from(code)
}
