//! Everything a terminal is configured with: its profile, its dialect and its keys.

use protocol::fixture::keys::TestKeys;
use protocol::fixture::terminal::TerminalProfile;
use protocol::iso8583::Dialect;
use protocol::iso8583::keys::DoubleKey;

/// How the terminal's ECR port frames ZVT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcrLink {
    /// Raw APDUs (ZVT over TCP).
    Tcp,
    /// DLE STX … CRC with ACK/NAK.
    Serial,
}

#[derive(Clone, Debug)]
pub struct TerminalConfig {
    pub profile: TerminalProfile,
    pub dialect: Dialect,
    /// The terminal master key (from the test keys, by terminal ID).
    pub tmk: DoubleKey,
    /// Key of the PAN hash kept in the journal.
    pub pan_hash_key: Vec<u8>,
    /// Encrypts a full PAN while a reversal or advice needs it.
    pub journal_key: DoubleKey,
    pub ecr_link: EcrLink,
    /// How many times faster the terminal's clock runs than the wall (`--time-scale`): the
    /// serial link's inter-byte gap is wall time on the line and is stretched by it.
    pub line_time_scale: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no terminal master key for terminal {0} in the test keys")]
    NoMasterKey(String),
    #[error("dialect {name:?}: {message}")]
    Dialect { name: String, message: String },
}

impl TerminalConfig {
    /// Builds a configuration; the dialect is a built-in name or a path relative to `base`.
    pub fn new(
        profile: TerminalProfile,
        keys: &TestKeys,
        base: Option<&std::path::Path>,
        ecr_link: EcrLink,
    ) -> Result<TerminalConfig, ConfigError> {
        let dialect = match Dialect::builtin(&profile.dialect) {
            Ok(d) => d,
            Err(builtin_err) => {
                let path = base
                    .map(|b| b.join(&profile.dialect))
                    .unwrap_or_else(|| profile.dialect.clone().into());
                if path.is_file() {
                    Dialect::from_path(&path).map_err(|e| ConfigError::Dialect {
                        name: profile.dialect.clone(),
                        message: e.to_string(),
                    })?
                } else {
                    return Err(ConfigError::Dialect {
                        name: profile.dialect.clone(),
                        message: builtin_err.to_string(),
                    });
                }
            }
        };
        let tmk = keys
            .master_key(&profile.terminal_id)
            .map(|k| DoubleKey::new(*k))
            .ok_or_else(|| ConfigError::NoMasterKey(profile.terminal_id.clone()))?;
        Ok(TerminalConfig {
            profile,
            dialect,
            tmk,
            pan_hash_key: keys.pan_hash_key.clone(),
            journal_key: DoubleKey::new(keys.journal_key),
            ecr_link,
            line_time_scale: 1.0,
        })
    }
}
