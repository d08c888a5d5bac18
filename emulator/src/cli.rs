//! `posrig emulate`: the emulator as a process. The harness owns the command line
//! (`Emulate(EmulateArgs)`) and calls [`run`].
//!
//! ```text
//! posrig emulate --profile fixtures/terminals/zvt-en-eur.yaml --cards fixtures/cards \
//!     --journal /tmp/eur.db --ecr tcp://127.0.0.1:0 --signals tcp://127.0.0.1:0 \
//!     --host tcp://127.0.0.1:5000 --time-scale 20 --clock 2026-11-26T10:00:00+01:00
//! listening ecr 127.0.0.1:43121
//! listening signals 127.0.0.1:40211
//! ```
//! The `listening <port> <addr>` lines go to stderr once the listeners are bound, so a harness
//! can give port 0 and read the ports back. Logs go to stderr through `tracing` (`RUST_LOG`,
//! default `info`); a PAN never appears in them.

use std::path::{Path, PathBuf};

use protocol::fixture::cards::CardFixture;
use protocol::fixture::keys::TestKeys;
use protocol::fixture::terminal::TerminalProfile;
use protocol::time::{Instant, WallClock};

use crate::core::{EcrLink, TerminalConfig};
use crate::journal::sqlite::Durability;
use crate::ports::runtime::{Emulator, EmulatorConfig, RunError};
use crate::ports::{DEFAULT_ECR, DEFAULT_SIGNALS, Endpoint, PortError, SerialSpec, failpoints};

/// Run the emulated terminal as a process, on real ports.
#[derive(clap::Args, Clone, Debug)]
pub struct EmulateArgs {
    /// Terminal profile (fixtures/terminals/*.yaml).
    #[arg(long)]
    pub profile: PathBuf,
    /// Folder of card fixtures the rig link can present by name.
    #[arg(long)]
    pub cards: PathBuf,
    /// The journal: an SQLite file, created if missing.
    #[arg(long)]
    pub journal: PathBuf,
    /// Test keys [default: keys/test-keys.yaml in the fixtures folder that holds the profile].
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// ECR port: tcp://HOST:PORT or serial:///dev/ttyUSB0?baud=9600 (default 9600 8N2; also
    /// data_bits, parity, stop_bits, flow).
    #[arg(long, default_value = DEFAULT_ECR)]
    pub ecr: String,
    /// Rig link (signals): tcp://HOST:PORT or serial:///dev/… (default 115200 8N1).
    #[arg(long, default_value = DEFAULT_SIGNALS)]
    pub signals: String,
    /// The acquirer [default: the profile's host.address].
    #[arg(long)]
    pub host: Option<String>,
    /// Run the terminal's clock (and so its timers) this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Start the terminal's clock at this RFC 3339 instant [default: now].
    #[arg(long)]
    pub clock: Option<String>,
    /// Allow listening on addresses other than loopback.
    #[arg(long)]
    pub listen_any: bool,
}

/// Why `posrig emulate` ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input (a file, an argument): exit code 2.
    #[error("{0}")]
    Input(String),
    /// The emulator failed while running (a port, the journal): exit code 1.
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

impl CliError {
    /// 2 for bad input, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Run(RunError::Port(
                PortError::NotLoopback { .. } | PortError::Resolve { .. },
            )) => 2,
            _ => 1,
        }
    }
}

/// `fixtures/terminals/x.yaml` → `fixtures/keys/test-keys.yaml`.
fn default_keys(profile: &Path) -> Option<PathBuf> {
    let fixtures = profile.parent()?.parent()?;
    let p = fixtures.join("keys").join("test-keys.yaml");
    p.is_file().then_some(p)
}

/// Loads and checks everything; nothing is opened yet.
pub fn config(args: &EmulateArgs) -> Result<EmulatorConfig, CliError> {
    let input = |e: &dyn std::fmt::Display| CliError::Input(e.to_string());
    let profile = TerminalProfile::from_path(&args.profile).map_err(|e| input(&e))?;
    let keys_path = match &args.keys {
        Some(k) => k.clone(),
        None => default_keys(&args.profile).ok_or_else(|| {
            CliError::Input(format!(
                "no --keys given and no keys/test-keys.yaml next to {}'s folder",
                args.profile.display()
            ))
        })?,
    };
    let keys = TestKeys::from_path(&keys_path).map_err(|e| input(&e))?;
    let cards = CardFixture::load_dir(&args.cards).map_err(|e| input(&e))?;
    let ecr = Endpoint::parse(&args.ecr, SerialSpec::zvt).map_err(|e| input(&e))?;
    let signals = Endpoint::parse(&args.signals, SerialSpec::riglink).map_err(|e| input(&e))?;
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| profile.host.address.clone());
    if !host.starts_with("tcp://") && host.contains("://") {
        return Err(CliError::Input(format!(
            "--host {host}: the host link is TCP (tcp://HOST:PORT)"
        )));
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        return Err(CliError::Input(format!(
            "--time-scale {}: must be a positive number",
            args.time_scale
        )));
    }
    let clock = match &args.clock {
        Some(c) => {
            let at = Instant::parse_rfc3339(c)
                .map_err(|e| CliError::Input(format!("--clock {c}: {e}")))?;
            WallClock::starting_at(at, args.time_scale)
        }
        None => WallClock::new(args.time_scale),
    };
    // A dialect given as a path is looked for next to the profile, then from here.
    let profile_dir = args.profile.parent().map(Path::to_path_buf);
    let base = profile_dir
        .as_deref()
        .filter(|d| d.join(&profile.dialect).is_file());
    let terminal = TerminalConfig::new(profile, &keys, base, EcrLink::Tcp)
        .map_err(|e| CliError::Input(format!("{}: {e}", args.profile.display())))?;
    Ok(EmulatorConfig {
        terminal,
        cards,
        journal: args.journal.clone(),
        durability: Durability::Full,
        ecr,
        signals,
        host,
        clock,
        listen_any: args.listen_any,
    })
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs `posrig emulate` until Ctrl-C or SIGTERM.
pub fn run(args: EmulateArgs) -> Result<(), CliError> {
    init_logging();
    failpoints::setup_from_env().map_err(CliError::Input)?;
    let cfg = config(&args)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    rt.block_on(async move {
        // The handlers exist before the listeners are announced, so a Ctrl-C right after
        // `listening …` stops cleanly instead of killing the process.
        let stop = ShutdownSignal::register();
        let emu = Emulator::bind(cfg).await?;
        if let Some(a) = emu.ecr_addr() {
            eprintln!("listening ecr {a}");
        }
        if let Some(a) = emu.signals_addr() {
            eprintln!("listening signals {a}");
        }
        emu.run_until(stop.wait()).await?;
        Ok(())
    })
}

/// Ctrl-C or SIGTERM, registered when made (tokio installs a handler when the stream is
/// created, not when it is first polled).
struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    fn register() -> ShutdownSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            ShutdownSignal {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            ShutdownSignal {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let (mut i, mut t) = (self.interrupt, self.terminate);
            let int = async {
                match i.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let term = async {
                match t.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = int => {}
                _ = term => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("stop requested");
    }
}
