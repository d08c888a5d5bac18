//! `posrig acquirer`: the logic behind the subcommand (the harness owns the argument parsing and
//! calls [`run`]). Loads the fixtures, an optional original journal and an optional directives
//! script (format: [`crate::script`]), serves on TCP until Ctrl-C and traces every exchange,
//! PAN-masked.
//!
//! Journal entries without a `terminal_id` belong to the first terminal profile (by file name)
//! whose dialect is the host's; `card:` names resolve against `<fixtures>/cards/`.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use protocol::card::Pan;
use protocol::fixture::cards::CardFixture;
use protocol::fixture::journal::{JournalFixture, ResolveContext};
use protocol::fixture::yaml::YamlError;
use protocol::time::{Clock, Instant, WallClock};

use crate::config::{ConfigError, HostConfig, fixtures_root};
use crate::host::Host;
use crate::script::load_script;

/// What `posrig acquirer` takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcquirerArgs {
    /// `tcp://127.0.0.1:5000`; any address is allowed (a non-loopback one is warned about).
    pub listen: String,
    /// `cup`, `iso87-ascii`, or a dialect file.
    pub dialect: String,
    /// The fixtures folder (`terminals/`, `keys/`, `cards/`), or a folder holding `fixtures/`.
    pub fixtures: PathBuf,
    /// A fee schedule; none charges no fee.
    pub fees: Option<PathBuf>,
    /// A directives script.
    pub script: Option<PathBuf>,
    /// An original journal to preload.
    pub journal: Option<PathBuf>,
}

impl Default for AcquirerArgs {
    fn default() -> Self {
        AcquirerArgs {
            listen: "tcp://127.0.0.1:5000".into(),
            dialect: "cup".into(),
            fixtures: PathBuf::from("fixtures"),
            fees: None,
            script: None,
            journal: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The script or the journal; located.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{0}")]
    Cards(String),
    #[error("{0}: no terminal profile to own the journal's entries")]
    NoTerminal(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("waiting for Ctrl-C failed: {0}")]
    Signal(std::io::Error),
}

/// Builds the host `run` would serve: fixtures, journal (resolved against `now`), script.
pub fn load(args: &AcquirerArgs, now: Instant) -> Result<Host, Error> {
    let cfg = HostConfig::from_fixtures(&args.fixtures, &args.dialect, args.fees.as_deref())?;
    let dialect = cfg.dialect.clone();
    let owner = cfg
        .terminals
        .iter()
        .find(|t| t.dialect == args.dialect || t.dialect == dialect.name)
        .or(cfg.terminals.first())
        .cloned();
    let mut host = Host::new(cfg);
    if let Some(j) = &args.journal {
        let owner = owner.ok_or_else(|| Error::NoTerminal(j.display().to_string()))?;
        let fixture = JournalFixture::from_path(j)?;
        let cards_dir = fixtures_root(&args.fixtures).join("cards");
        let cards = if cards_dir.is_dir() {
            Some(CardFixture::load_dir(&cards_dir).map_err(|e| Error::Cards(e.to_string()))?)
        } else {
            None
        };
        let card_pan =
            |name: &str| -> Option<Pan> { cards.as_ref()?.get(name).map(|c| c.pan().clone()) };
        let txns = fixture.resolve(&ResolveContext {
            now,
            time_zone: owner.time_zone,
            terminal_id: &owner.terminal_id,
            currency: owner.currency,
            card_pan: &card_pan,
        })?;
        host.import(&txns);
    }
    if let Some(s) = &args.script {
        for d in load_script(s, &dialect)? {
            host.script(d);
        }
    }
    Ok(host)
}

/// Serves until Ctrl-C.
pub async fn run(args: AcquirerArgs) -> Result<(), Error> {
    let (tx, rx) = tokio::sync::oneshot::channel::<std::io::Error>();
    let stop = async move {
        if let Err(e) = tokio::signal::ctrl_c().await {
            let _ = tx.send(e);
        }
    };
    run_until(args, Arc::new(WallClock::new(1.0)), stop).await?;
    match rx.await {
        Ok(e) => Err(Error::Signal(e)),
        Err(_) => Ok(()),
    }
}

/// Serves until `stop` completes, on `clock`.
pub async fn run_until(
    args: AcquirerArgs,
    clock: Arc<dyn Clock>,
    stop: impl Future<Output = ()>,
) -> Result<(), Error> {
    let host = load(&args, clock.now())?;
    let server = crate::tcp::serve(&args.listen, Arc::new(Mutex::new(host)), clock)
        .await
        .map_err(|source| Error::Listen {
            addr: args.listen.clone(),
            source,
        })?;
    tracing::info!(
        target: "acquirer",
        "acquirer ({}) listening on {}",
        args.dialect,
        server.local_addr()
    );
    stop.await;
    server.shutdown().await;
    tracing::info!(target: "acquirer", "acquirer stopped");
    Ok(())
}
