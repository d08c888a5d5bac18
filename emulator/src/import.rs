//! Preloading originals from a journal fixture (`fixtures/journals/*.yaml`), the same file the
//! acquirer imports, as journal ops: the emulator's journal then knows the sales a scenario
//! refunds. PANs become a keyed hash and the masked form, as for any transaction.

use protocol::fixture::journal::{OriginalTxn, TxnStatus};

use crate::journal::{
    Counters, EntryMode, JournalOp, JournalState, OriginalRef, Outcome, TxnRecord,
};

/// Ops that add `txns` to a journal in `state` (ids continue after the last one; counters move
/// past the imported STANs and batches so new transactions never reuse them).
pub fn import_ops(
    txns: &[OriginalTxn],
    pan_hash_key: &[u8],
    state: &JournalState,
) -> Vec<JournalOp> {
    let mut ops = Vec::new();
    let mut counters = state.counters.clone();
    let mut ids: Vec<(String, u64)> = Vec::new();
    for t in txns {
        let id = counters.next_txn_id;
        counters.next_txn_id += 1;
        let outcome = match t.status {
            TxnStatus::Approved => Outcome::Approved,
            TxnStatus::Declined => Outcome::Declined("05".into()),
            TxnStatus::Voided => Outcome::Voided,
            TxnStatus::Reversed => Outcome::Reversed,
        };
        let original_id = t
            .original
            .as_ref()
            .and_then(|o| ids.iter().find(|(n, _)| n == o).map(|(_, i)| *i));
        let rec = TxnRecord {
            id,
            kind: t.kind,
            outcome,
            stan: t.stan,
            batch: t.batch,
            receipt_no: (t.stan % 10_000).max(1),
            amount: t.amount,
            surcharge: t.surcharge,
            pan_masked: t.pan.masked(),
            pan_hash: t.pan.keyed_hash(pan_hash_key),
            entry_mode: EntryMode::Preloaded,
            at: t.at,
            rrn: Some(t.rrn.clone()),
            auth_code: t.auth_code.clone(),
            response_code: Some("00".into()),
            original_id,
            original_ref: original_id.map(|_| OriginalRef::default()),
            fee: t.fee,
            net: None,
            ecr_reference: None,
            settled: t.settled,
            ecr_informed: true,
        };
        ids.push((t.id.clone(), id));
        if !t.settled {
            counters.batch = counters.batch.max(t.batch);
        } else {
            counters.batch = counters.batch.max(t.batch + 1);
        }
        counters.next_stan = counters.next_stan.max(t.stan + 1);
        counters.next_receipt_no = counters.next_receipt_no.max(rec.receipt_no + 1);
        ops.push(JournalOp::PutTxn(Box::new(rec)));
    }
    ops.push(JournalOp::SetCounters(Counters { ..counters }));
    ops
}
