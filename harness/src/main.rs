//! `posrig`: the command line. The logic lives in the library; this only parses arguments.
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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
    Run {
        /// Scenario files or folders.
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { paths } => {
            for p in &paths {
                if !p.exists() {
                    eprintln!("posrig: {}: no such file or folder", p.display());
                    return ExitCode::from(2);
                }
            }
            println!("posrig: the runner is not built yet; nothing was run");
            ExitCode::SUCCESS
        }
    }
}
