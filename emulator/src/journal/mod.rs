//! The terminal's journal: every transaction, the pending reversal or advices, counters and the
//! sign-on session.
//!
//! The core owns a [`JournalState`] in memory and changes it only through [`JournalOp`]s, which
//! it hands out *before* the message that depends on them (a reversal record before the request
//! it would reverse). Whoever drives the core applies those ops to a [`JournalStore`] in order:
//! [`sqlite::SqliteStore`] in the process emulator (synchronous=FULL), [`memory::MemoryStore`]
//! on the in-process emulated rig. After a power cut the core is rebuilt from
//! `store.load()`, so what survives is exactly what was committed.
//!
//! Secrets: a record keeps the masked PAN and a keyed hash. The full PAN is kept only inside a
//! [`PendingRecord`], encrypted under the journal key, and is deleted with the record. Track
//! data, PIN blocks and EMV tag 57 are never stored.

pub mod memory;
pub mod sqlite;

use protocol::card::PanHash;
use protocol::fixture::journal::{TxnStatus, TxnType};
use protocol::money::{Currency, Money};
use protocol::time::Instant;
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

/// What the terminal knows about a transaction's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The request may have left; no valid reply yet (a reversal or advice is pending).
    Unknown,
    Approved,
    /// Declined by the host with field 39.
    Declined(String),
    /// Refused by the terminal before anything was sent (rule ID, e.g. `R-EXCEEDS`).
    Refused(String),
    /// Could not be sent at all (connection refused).
    NotSent,
    Voided,
    Reversed,
}

/// How the card was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryMode {
    Swipe,
    /// Magstripe after a failed chip read (CUP 60.5 = 2, entry mode 80x).
    FallbackSwipe,
    Chip,
    Contactless,
    Manual,
    /// Imported from a journal fixture; the entry mode is not known.
    Preloaded,
}

impl EntryMode {
    /// ISO 8583 field 22, first two digits (PAN entry mode).
    pub fn pan_entry_digits(self) -> &'static str {
        match self {
            EntryMode::Swipe | EntryMode::Preloaded => "02",
            EntryMode::FallbackSwipe => "80",
            EntryMode::Chip => "05",
            EntryMode::Contactless => "07",
            EntryMode::Manual => "01",
        }
    }
    pub fn label_en(self) -> &'static str {
        match self {
            EntryMode::Swipe | EntryMode::Preloaded => "SWIPE",
            EntryMode::FallbackSwipe => "FALLBACK SWIPE",
            EntryMode::Chip => "CHIP",
            EntryMode::Contactless => "CONTACTLESS",
            EntryMode::Manual => "MANUAL",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            EntryMode::Swipe | EntryMode::Preloaded => "刷卡",
            EntryMode::FallbackSwipe => "降级刷卡",
            EntryMode::Chip => "插卡",
            EntryMode::Contactless => "挥卡",
            EntryMode::Manual => "手输",
        }
    }
}

/// The reference to an original that a refund or void carried.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OriginalRef {
    pub stan: Option<u32>,
    pub batch: Option<u32>,
    pub rrn: Option<String>,
    /// MMDD.
    pub date: Option<String>,
    pub auth_code: Option<String>,
}

/// One transaction of the terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    /// Local sequence number, unique in this journal.
    pub id: u64,
    pub kind: TxnType,
    pub outcome: Outcome,
    pub stan: u32,
    pub batch: u32,
    /// ZVT receipt number (BMP 87), 1..=9999.
    pub receipt_no: u32,
    #[serde(with = "money_serde")]
    pub amount: Money,
    #[serde(default, with = "money_opt_serde")]
    pub surcharge: Option<Money>,
    pub pan_masked: String,
    #[serde(with = "hash_serde")]
    pub pan_hash: PanHash,
    pub entry_mode: EntryMode,
    pub at: Instant,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    /// Field 39 of the reply, when one came.
    pub response_code: Option<String>,
    /// Local id of the original (voids and refunds).
    pub original_id: Option<u64>,
    pub original_ref: Option<OriginalRef>,
    /// The acquirer's fee on a sale, or the fee it returned with a refund.
    #[serde(default, with = "money_opt_serde")]
    pub fee: Option<Money>,
    #[serde(default, with = "money_opt_serde")]
    pub net: Option<Money>,
    /// The ECR's reference (ZVT 1F1F or the posrig TLV) for duplicate detection.
    pub ecr_reference: Option<String>,
    /// The batch this transaction belongs to has been settled.
    pub settled: bool,
    /// Whether the ZVT ECR acknowledged this transaction's result (its 04 0F); true from the
    /// start for one the ECR did not start. Approved and still false at power-on means the
    /// power went before the ECR's ACK: it is reversed as an unacknowledged result is (a CUP
    /// refund stands, recoverable by Repeat Receipt).
    pub ecr_informed: bool,
}

impl TxnRecord {
    pub fn currency(&self) -> Currency {
        self.amount.currency()
    }
    pub fn is_approved(&self) -> bool {
        self.outcome == Outcome::Approved
    }
    /// The status a journal fixture would give this record.
    pub fn fixture_status(&self) -> Option<TxnStatus> {
        Some(match self.outcome {
            Outcome::Approved => TxnStatus::Approved,
            Outcome::Declined(_) => TxnStatus::Declined,
            Outcome::Voided => TxnStatus::Voided,
            Outcome::Reversed => TxnStatus::Reversed,
            _ => return None,
        })
    }
}

/// What a pending record will send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingKind {
    /// 0400 (iso87: 0401 on repeats), committed before the request it may reverse.
    Reversal,
    /// CUP 0220 refund advice, resent until a 0230 arrives.
    Advice,
}

/// A reversal or advice that must reach the host before anything else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecord {
    /// The transaction it belongs to.
    pub txn_id: u64,
    pub kind: PendingKind,
    /// CUP reversal reason for field 39 (98 no answer, A0 bad MAC, 96 fault, 06 other).
    pub reason: String,
    /// Sends so far.
    pub tries: u32,
    /// The full PAN, encrypted under the journal key; deleted with the record.
    pub pan_encrypted: Vec<u8>,
    /// The request it reverses or resends, without the PAN (fields 2, 35, 36, 52, 55 and the
    /// MAC are never stored): MTI, TPDU + header, and the remaining fields as text.
    pub request: StoredRequest,
}

/// A request as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredRequest {
    pub mti: u16,
    pub header: Option<Vec<u8>>,
    pub fields: Vec<(u8, String)>,
}

/// Counters that must never repeat across power cycles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub next_txn_id: u64,
    /// Next STAN (field 11), 1..=999999.
    pub next_stan: u32,
    /// The open batch (field 60.2).
    pub batch: u32,
    pub next_receipt_no: u32,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            next_txn_id: 1,
            next_stan: 1,
            batch: 1,
            next_receipt_no: 1,
        }
    }
}

/// The sign-on session: when, and the working keys it brought.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Session {
    /// Local date (YYYY-MM-DD) of the last successful sign-on.
    pub signed_on: Option<String>,
    pub mac_key: Option<Vec<u8>>,
    pub pin_key: Option<Vec<u8>>,
    /// The host asked for a new sign-on (A0 / 99).
    pub resign_required: bool,
}

/// A reversal record or advice to write, and the transaction row it guards when that changes
/// with it (a new `Unknown` row, an approved one about to be auto-reversed): one commit, so no
/// power cut leaves the row without the record that resolves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    pub record: PendingRecord,
    pub txn: Option<Box<TxnRecord>>,
}

/// One change to the journal; each is committed atomically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalOp {
    PutTxn(Box<TxnRecord>),
    PutPending(PendingWrite),
    DeletePending {
        txn_id: u64,
    },
    SetCounters(Counters),
    SetSession(Session),
    /// Marks every transaction of `batch` settled.
    CloseBatch {
        batch: u32,
    },
}

impl JournalOp {
    /// Writes (or updates) a pending record alone.
    pub fn pending(record: PendingRecord) -> JournalOp {
        JournalOp::PutPending(PendingWrite { record, txn: None })
    }

    /// Writes a pending record and the row it guards in one commit.
    pub fn pending_with_txn(record: PendingRecord, txn: TxnRecord) -> JournalOp {
        JournalOp::PutPending(PendingWrite {
            record,
            txn: Some(Box::new(txn)),
        })
    }
}

/// The whole journal in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalState {
    pub txns: Vec<TxnRecord>,
    pub pending: Vec<PendingRecord>,
    pub counters: Counters,
    pub session: Session,
}

impl JournalState {
    /// Applies one op; the stores use this too, so memory and SQLite agree by construction.
    pub fn apply(&mut self, op: &JournalOp) {
        match op {
            JournalOp::PutTxn(t) => self.put_txn(t),
            JournalOp::PutPending(PendingWrite { record: p, txn }) => {
                if let Some(t) = txn {
                    self.put_txn(t);
                }
                match self.pending.iter_mut().find(|x| x.txn_id == p.txn_id) {
                    Some(x) => *x = p.clone(),
                    None => self.pending.push(p.clone()),
                }
            }
            JournalOp::DeletePending { txn_id } => self.pending.retain(|p| p.txn_id != *txn_id),
            JournalOp::SetCounters(c) => self.counters = c.clone(),
            JournalOp::SetSession(s) => self.session = s.clone(),
            JournalOp::CloseBatch { batch } => {
                for t in self.txns.iter_mut().filter(|t| t.batch == *batch) {
                    t.settled = true;
                }
            }
        }
    }

    fn put_txn(&mut self, t: &TxnRecord) {
        match self.txns.iter_mut().find(|x| x.id == t.id) {
            Some(x) => *x = t.clone(),
            None => self.txns.push(t.clone()),
        }
    }

    pub fn txn(&self, id: u64) -> Option<&TxnRecord> {
        self.txns.iter().find(|t| t.id == id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("journal record {what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
}

/// Durable storage of the journal.
pub trait JournalStore: Send {
    /// Commits `ops` atomically, in order. Returns only once they are durable per the store's
    /// settings.
    fn commit(&mut self, ops: &[JournalOp]) -> Result<(), JournalError>;
    /// The state as last committed.
    fn load(&self) -> Result<JournalState, JournalError>;
}

mod money_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Repr {
        minor: u64,
        currency: Currency,
    }

    pub fn serialize<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
        Repr {
            minor: m.minor(),
            currency: m.currency(),
        }
        .serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Money, D::Error> {
        let r = Repr::deserialize(d)?;
        Ok(Money::from_minor(r.minor, r.currency))
    }
}

mod money_opt_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Repr {
        minor: u64,
        currency: Currency,
    }

    pub fn serialize<S: Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
        m.map(|m| Repr {
            minor: m.minor(),
            currency: m.currency(),
        })
        .serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
        Ok(Option::<Repr>::deserialize(d)?.map(|r| Money::from_minor(r.minor, r.currency)))
    }
}

mod hash_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &PanHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PanHash, D::Error> {
        let s = String::deserialize(d)?;
        PanHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("bad PAN hash"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::card::Pan;

    fn record(id: u64, batch: u32) -> TxnRecord {
        let pan = Pan::new("6222021234567894").unwrap();
        TxnRecord {
            id,
            kind: TxnType::Refund,
            outcome: Outcome::Unknown,
            stan: id as u32,
            batch,
            receipt_no: id as u32,
            amount: Money::parse("33.33", Currency::from_alpha("CNY").unwrap()).unwrap(),
            surcharge: None,
            pan_masked: pan.masked(),
            pan_hash: pan.keyed_hash(b"k"),
            entry_mode: EntryMode::Swipe,
            at: Instant::from_millis(1_700_000_000_000),
            rrn: None,
            auth_code: None,
            response_code: None,
            original_id: Some(1),
            original_ref: Some(OriginalRef {
                rrn: Some("000000000001".into()),
                date: Some("1126".into()),
                ..Default::default()
            }),
            fee: None,
            net: None,
            ecr_reference: Some("REF-1".into()),
            settled: false,
            ecr_informed: true,
        }
    }

    fn ops() -> Vec<JournalOp> {
        let mut approved = record(2, 1);
        approved.outcome = Outcome::Approved;
        approved.rrn = Some("100000000001".into());
        vec![
            JournalOp::PutTxn(Box::new(record(1, 1))),
            JournalOp::pending(PendingRecord {
                txn_id: 1,
                kind: PendingKind::Advice,
                reason: "06".into(),
                tries: 0,
                pan_encrypted: vec![1, 2, 3],
                request: StoredRequest {
                    mti: 220,
                    header: None,
                    fields: vec![(4, "000000003333".into()), (14, "2812".into())],
                },
            }),
            JournalOp::PutTxn(Box::new(approved)),
            JournalOp::SetCounters(Counters {
                next_txn_id: 3,
                next_stan: 3,
                batch: 1,
                next_receipt_no: 3,
            }),
            JournalOp::SetSession(Session {
                signed_on: Some("2026-11-26".into()),
                mac_key: Some(vec![9; 16]),
                pin_key: None,
                resign_required: false,
            }),
            JournalOp::DeletePending { txn_id: 1 },
            JournalOp::CloseBatch { batch: 1 },
        ]
    }

    #[test]
    fn sqlite_and_memory_agree_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let mut mem = MemoryStore::new();
        {
            let mut db = SqliteStore::open(&path, sqlite::Durability::Full).unwrap();
            for op in ops() {
                db.commit(std::slice::from_ref(&op)).unwrap();
                mem.commit(std::slice::from_ref(&op)).unwrap();
            }
        }
        let db = SqliteStore::open(&path, sqlite::Durability::Full).unwrap();
        let loaded = db.load().unwrap();
        assert_eq!(loaded, mem.load().unwrap());
        assert!(loaded.pending.is_empty());
        assert!(loaded.txns.iter().all(|t| t.settled));
        assert_eq!(loaded.counters.next_stan, 3);
        // Columns are queryable and never hold a full PAN.
        let masked: String = db
            .connection()
            .query_row("SELECT pan_masked FROM txns WHERE id = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(masked, "622202******7894");
        let dump: Vec<String> = db
            .connection()
            .prepare("SELECT record FROM txns")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(dump.iter().all(|r| !r.contains("6222021234567894")));
    }

    #[test]
    fn a_failed_commit_leaves_nothing_half_written() {
        let mut db = SqliteStore::in_memory().unwrap();
        db.commit(&ops()[..1]).unwrap();
        // Break the schema so the second op of a batch fails: the first must roll back too.
        db.connection()
            .execute_batch("DROP TABLE pending;")
            .unwrap();
        let mut t = record(5, 1);
        t.outcome = Outcome::Approved;
        let err = db.commit(&[JournalOp::PutTxn(Box::new(t)), ops()[1].clone()]);
        assert!(err.is_err());
        let state = db.load();
        // pending table is gone, so load fails; inspect txns directly.
        assert!(state.is_err());
        let n: i64 = db
            .connection()
            .query_row("SELECT count(*) FROM txns", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
}
