//! Failpoints of the process emulator (the `fail` crate), for the SIGKILL tests.
//!
//! | name | where |
//! |---|---|
//! | `after-reversal-record` | right after a `PutPending` op (a reversal record, or a CUP advice) is committed |
//! | `after-request-sent` | right after a `HostBytes` output was written to the host connection |
//! | `after-reply-received` | after bytes from the host were handed to the core, before the journal ops that result are committed |
//!
//! They are compiled in with the crate feature `failpoints` and stay inert unless the
//! `FAILPOINTS` environment variable names them (`FAILPOINTS=after-request-sent=sleep(60000)`;
//! the actions are the `fail` crate's). Before a configured failpoint is evaluated the process
//! writes `failpoint <name>` to stderr and flushes it, so a test knows the process got there
//! and can kill it.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::OnceLock;

pub const AFTER_REVERSAL_RECORD: &str = "after-reversal-record";
pub const AFTER_REQUEST_SENT: &str = "after-request-sent";
pub const AFTER_REPLY_RECEIVED: &str = "after-reply-received";
/// Every failpoint of the emulator.
pub const ALL: [&str; 3] = [
    AFTER_REVERSAL_RECORD,
    AFTER_REQUEST_SENT,
    AFTER_REPLY_RECEIVED,
];

static CONFIGURED: OnceLock<BTreeSet<String>> = OnceLock::new();

/// Configures the failpoints named in `FAILPOINTS` (`name=actions;name=actions`). Call once,
/// at process start. An entry that does not parse is an error (the `fail` crate would panic).
pub fn setup_from_env() -> Result<(), String> {
    let Ok(spec) = std::env::var("FAILPOINTS") else {
        return Ok(());
    };
    let mut names = BTreeSet::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, actions)) = entry.split_once('=') else {
            return Err(format!("FAILPOINTS: {entry:?} is not name=actions"));
        };
        let name = name.trim();
        if !ALL.contains(&name) {
            return Err(format!(
                "FAILPOINTS: unknown failpoint {name:?} (known: {})",
                ALL.join(", ")
            ));
        }
        fail::cfg(name, actions.trim()).map_err(|e| format!("FAILPOINTS: {name}: {e}"))?;
        names.insert(name.to_string());
    }
    if !names.is_empty() && !fail::has_failpoints() {
        tracing::warn!(
            "FAILPOINTS is set but this build has no failpoints (build with the emulator's `failpoints` feature)"
        );
    }
    let _ = CONFIGURED.set(names);
    Ok(())
}

/// Evaluates failpoint `name`, announcing it on stderr first if it is configured.
pub(crate) fn hit(name: &'static str) {
    if CONFIGURED.get().is_some_and(|c| c.contains(name)) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "failpoint {name}");
        let _ = err.flush();
    }
    fail::fail_point!(name);
}
