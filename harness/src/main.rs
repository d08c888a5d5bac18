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
    /// Run the emulated terminal as a process, on real ports.
    Emulate(emulator::cli::EmulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => cli::run(args),
        Command::Check { paths, rig } => cli::check(&paths, rig.as_deref()),
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
