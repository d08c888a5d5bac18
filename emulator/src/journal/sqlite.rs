//! The journal in SQLite (bundled), for the process emulator.
//!
//! Durability: `synchronous=FULL` with WAL makes each [`JournalStore::commit`] reach the disk
//! before it returns. A SIGKILL test against this store proves *crash consistency* — the process
//! dies, the OS keeps its page cache, and on restart every committed op is there and nothing
//! half-written is. It does not prove power-loss durability (that needs the disk to honour
//! fsync, which no test here can cut).
//!
//! Each table keeps the fields people query as columns (`sqlite3 journal.db "select stan,
//! outcome, amount_minor from txns"`) and the whole record as JSON, which is what `load` reads.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    JournalError, JournalOp, JournalState, JournalStore, Outcome, PendingRecord, PendingWrite,
    TxnRecord,
};

/// How hard a commit waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: the process emulator.
    Full,
    /// WAL with `synchronous=NORMAL`: fast, for in-process runs that never crash for real.
    Normal,
}

pub struct SqliteStore {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS txns (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    stan INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    receipt_no INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    pan_masked TEXT NOT NULL,
    pan_hash TEXT NOT NULL,
    rrn TEXT,
    auth_code TEXT,
    at_ms INTEGER NOT NULL,
    settled INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS txns_by_rrn ON txns (rrn);
CREATE INDEX IF NOT EXISTS txns_by_stan ON txns (batch, stan);
CREATE TABLE IF NOT EXISTS pending (
    txn_id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

impl SqliteStore {
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, JournalError> {
        let conn = Connection::open(path)?;
        Self::init(conn, durability)
    }

    pub fn in_memory() -> Result<SqliteStore, JournalError> {
        Self::init(Connection::open_in_memory()?, Durability::Normal)
    }

    fn init(conn: Connection, durability: Durability) -> Result<SqliteStore, JournalError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
            },
        )?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore { conn })
    }

    /// Read access for journal queries and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, JournalError> {
    serde_json::to_string(v).map_err(|e| JournalError::Corrupt {
        what: "encode".into(),
        detail: e.to_string(),
    })
}

fn outcome_label(o: &Outcome) -> String {
    match o {
        Outcome::Unknown => "unknown".into(),
        Outcome::Approved => "approved".into(),
        Outcome::Declined(c) => format!("declined {c}"),
        Outcome::Refused(r) => format!("refused {r}"),
        Outcome::NotSent => "not sent".into(),
        Outcome::Voided => "voided".into(),
        Outcome::Reversed => "reversed".into(),
    }
}

fn put_txn(tx: &rusqlite::Transaction<'_>, t: &TxnRecord) -> Result<(), JournalError> {
    tx.execute(
        "INSERT OR REPLACE INTO txns (id, kind, outcome, stan, batch, receipt_no, amount_minor, currency,
             pan_masked, pan_hash, rrn, auth_code, at_ms, settled, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            t.id as i64,
            json(&t.kind)?.trim_matches('"'),
            outcome_label(&t.outcome),
            t.stan,
            t.batch,
            t.receipt_no,
            t.amount.minor() as i64,
            t.amount.currency().alpha(),
            t.pan_masked,
            t.pan_hash.to_hex(),
            t.rrn,
            t.auth_code,
            t.at.as_millis(),
            t.settled,
            json(t)?,
        ],
    )?;
    Ok(())
}

impl JournalStore for SqliteStore {
    fn commit(&mut self, ops: &[JournalOp]) -> Result<(), JournalError> {
        if ops.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        for op in ops {
            match op {
                JournalOp::PutTxn(t) => put_txn(&tx, t)?,
                JournalOp::PutPending(PendingWrite { record: p, txn }) => {
                    if let Some(t) = txn {
                        put_txn(&tx, t)?;
                    }
                    tx.execute(
                        "INSERT OR REPLACE INTO pending (txn_id, kind, record) VALUES (?1, ?2, ?3)",
                        params![p.txn_id as i64, json(&p.kind)?.trim_matches('"'), json(p)?],
                    )?;
                }
                JournalOp::DeletePending { txn_id } => {
                    tx.execute(
                        "DELETE FROM pending WHERE txn_id = ?1",
                        params![*txn_id as i64],
                    )?;
                }
                JournalOp::SetCounters(c) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('counters', ?1)",
                        params![json(c)?],
                    )?;
                }
                JournalOp::SetSession(s) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('session', ?1)",
                        params![json(s)?],
                    )?;
                }
                JournalOp::CloseBatch { batch } => {
                    // The JSON record is the source of truth: rewrite each affected record.
                    let mut stmt =
                        tx.prepare("SELECT record FROM txns WHERE batch = ?1 AND settled = 0")?;
                    let recs: Vec<String> = stmt
                        .query_map(params![batch], |r| r.get::<_, String>(0))?
                        .collect::<Result<_, _>>()?;
                    drop(stmt);
                    for r in recs {
                        let mut t: TxnRecord =
                            serde_json::from_str(&r).map_err(|e| JournalError::Corrupt {
                                what: "txn".into(),
                                detail: e.to_string(),
                            })?;
                        t.settled = true;
                        put_txn(&tx, &t)?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self) -> Result<JournalState, JournalError> {
        let corrupt = |what: &str, e: serde_json::Error| JournalError::Corrupt {
            what: what.into(),
            detail: e.to_string(),
        };
        let mut state = JournalState::default();
        let mut stmt = self.conn.prepare("SELECT record FROM txns ORDER BY id")?;
        for r in stmt.query_map([], |r| r.get::<_, String>(0))? {
            state
                .txns
                .push(serde_json::from_str(&r?).map_err(|e| corrupt("txn", e))?);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT record FROM pending ORDER BY txn_id")?;
        for r in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let p: PendingRecord = serde_json::from_str(&r?).map_err(|e| corrupt("pending", e))?;
            state.pending.push(p);
        }
        let meta = |key: &str| -> Result<Option<Vec<u8>>, JournalError> {
            Ok(self
                .conn
                .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    let v: rusqlite::types::Value = r.get(0)?;
                    Ok(match v {
                        rusqlite::types::Value::Text(s) => s.into_bytes(),
                        rusqlite::types::Value::Blob(b) => b,
                        _ => Vec::new(),
                    })
                })
                .optional()?)
        };
        if let Some(c) = meta("counters")? {
            state.counters = serde_json::from_slice(&c).map_err(|e| corrupt("counters", e))?;
        }
        if let Some(s) = meta("session")? {
            state.session = serde_json::from_slice(&s).map_err(|e| corrupt("session", e))?;
        }
        Ok(state)
    }
}
