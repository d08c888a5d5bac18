//! What the host knows before the first byte arrives: its dialect, the terminals and merchants
//! it serves (from the same profiles the emulator runs), the key table and the fee schedule.
//!
//! ```no_run
//! use std::path::Path;
//! use acquirer::HostConfig;
//! // `fixtures/` holds `terminals/*.yaml` and `keys/test-keys.yaml`.
//! let cfg = HostConfig::from_fixtures(Path::new("fixtures"), "cup",
//!                                     Some(Path::new("fixtures/fees/cny-0.6pct.yaml")))?;
//! assert!(cfg.terminal("20250001").is_some());
//! # Ok::<(), acquirer::ConfigError>(())
//! ```

use std::path::{Path, PathBuf};

use protocol::fixture::keys::TestKeys;
use protocol::fixture::terminal::{MacMode, TerminalProfile, UnreferencedRefunds};
use protocol::fixture::yaml::YamlError;
use protocol::iso8583::{Dialect, DialectError};
use protocol::money::Currency;
use protocol::time::Tz;

use crate::fees::FeeSchedule;

/// A terminal the acquirer has on file: its TID, the merchant it belongs to, and what the host
/// needs to answer it (MAC mode, time zone for fields 12/13, currency, surcharge policy).
#[derive(Clone, Debug, PartialEq)]
pub struct KnownTerminal {
    /// Field 41.
    pub terminal_id: String,
    /// Field 42: a request with another MID is answered 03.
    pub merchant_id: String,
    pub merchant_name: String,
    /// `x9.19`: requests other than 0800 must carry a valid MAC; replies are signed.
    pub mac: MacMode,
    /// Local date and time of replies (12/13) and of the ledger's records.
    pub time_zone: Tz,
    /// Used when a request carries no field 49.
    pub currency: Currency,
    /// Whether a surcharge (iso87 field 28) may be refunded; when not, it is excluded from the
    /// refundable amount (R-FEE worked example 2).
    pub surcharge_refundable: bool,
    /// The dialect the profile names (informational: the host speaks one dialect).
    pub dialect: String,
    /// A refund naming no original: approved for this merchant, or declined (the profile's
    /// `acquirer.unreferenced_refunds`, refused by default).
    pub unreferenced_refunds: UnreferencedRefunds,
}

impl KnownTerminal {
    pub fn from_profile(p: &TerminalProfile) -> KnownTerminal {
        KnownTerminal {
            terminal_id: p.terminal_id.clone(),
            merchant_id: p.merchant_id.clone(),
            merchant_name: p.merchant_name.clone(),
            mac: p.mac,
            time_zone: p.time_zone,
            currency: p.currency,
            surcharge_refundable: p.surcharge.as_ref().is_none_or(|s| s.refundable),
            dialect: p.dialect.clone(),
            unreferenced_refunds: p.acquirer.unreferenced_refunds,
        }
    }
}

impl From<&TerminalProfile> for KnownTerminal {
    fn from(p: &TerminalProfile) -> KnownTerminal {
        KnownTerminal::from_profile(p)
    }
}

/// Everything [`crate::Host::new`] needs.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub dialect: Dialect,
    pub terminals: Vec<KnownTerminal>,
    /// Terminal master keys (the key table) and the PAN hash key.
    pub keys: TestKeys,
    /// The merchant-fee schedule; [`FeeSchedule::default`] charges nothing.
    pub fees: FeeSchedule,
}

/// A fixture that could not be loaded; YAML problems carry `file:line:column`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error(transparent)]
    Dialect(#[from] DialectError),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{dir}: no terminal profiles (expected `terminals/*.yaml` under the fixtures folder)")]
    NoTerminals { dir: String },
    #[error("{file}: terminal {terminal_id} is already defined by {other}")]
    DuplicateTerminal {
        file: String,
        terminal_id: String,
        other: String,
    },
}

impl HostConfig {
    /// Loads `terminals/*.yaml` and `keys/test-keys.yaml` under `root` (the fixtures folder, or a
    /// folder that holds `fixtures/`), the dialect (`cup`, `iso87-ascii`, or a path to a dialect
    /// file) and the fee schedule (none: no fee).
    pub fn from_fixtures(
        root: &Path,
        dialect: &str,
        fees: Option<&Path>,
    ) -> Result<HostConfig, ConfigError> {
        let root = fixtures_root(root);
        let dialect = if Dialect::builtin_names().contains(&dialect) {
            Dialect::builtin(dialect)?
        } else {
            Dialect::from_path(Path::new(dialect))?
        };
        let terminals = load_terminals(&root.join("terminals"))?;
        let keys = TestKeys::from_path(&root.join("keys").join("test-keys.yaml"))?;
        let fees = match fees {
            Some(p) => FeeSchedule::from_path(p)?,
            None => FeeSchedule::default(),
        };
        Ok(HostConfig {
            dialect,
            terminals,
            keys,
            fees,
        })
    }

    pub fn terminal(&self, terminal_id: &str) -> Option<&KnownTerminal> {
        self.terminals.iter().find(|t| t.terminal_id == terminal_id)
    }
}

/// `root` itself when it has `terminals/`, else `root/fixtures` when that has it.
pub fn fixtures_root(root: &Path) -> PathBuf {
    if !root.join("terminals").is_dir() && root.join("fixtures").join("terminals").is_dir() {
        root.join("fixtures")
    } else {
        root.to_path_buf()
    }
}

/// Every `*.yaml` profile of `dir`, sorted by file name.
pub fn load_terminals(dir: &Path) -> Result<Vec<KnownTerminal>, ConfigError> {
    let shown = dir.display().to_string();
    let rd = std::fs::read_dir(dir).map_err(|e| ConfigError::Io {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e == "yaml" || e == "yml")
        })
        .collect();
    paths.sort();
    let mut out: Vec<(KnownTerminal, String)> = Vec::new();
    for p in &paths {
        let profile = TerminalProfile::from_path(p)?;
        let file = p.display().to_string();
        if let Some((_, other)) = out
            .iter()
            .find(|(t, _)| t.terminal_id == profile.terminal_id)
        {
            return Err(ConfigError::DuplicateTerminal {
                file,
                terminal_id: profile.terminal_id,
                other: other.clone(),
            });
        }
        out.push((KnownTerminal::from_profile(&profile), file));
    }
    if out.is_empty() {
        return Err(ConfigError::NoTerminals { dir: shown });
    }
    Ok(out.into_iter().map(|(t, _)| t).collect())
}
