//! What the acquirer remembers: every sale, void, refund and reversal per terminal and batch,
//! and the rules a real host applies to a void or refund of an earlier sale
//! (reference iso8583.md §7, DESIGN.md R-FEE and R-SETTLE).
//!
//! The ledger works on typed requests, so its rules are tested without any wire format; the
//! host layer (`host.rs`) turns ISO 8583 messages into these requests and decisions back into
//! replies.
//!
//! Response codes it decides (field 39):
//! | code | when |
//! |---|---|
//! | 00 | approved |
//! | 12 | the original was declined, is not a sale, or a void arrives on a later day; a refund naming no original for a merchant that refuses unreferenced refunds (host.rs) |
//! | 13 | the amount is zero |
//! | 14 | the card is not the original's card |
//! | 22 | the original was already voided or reversed |
//! | 25 | no such original (also a reversal of something unknown) |
//! | 58 | the original belongs to another terminal |
//! | 64 | a void's amount differs from the original, or refunds would exceed what is refundable |
//!
//! For cumulative refunds over the original, reference iso8583.md §7 leaves 13 or 64 open; we
//! answer **64** ("original amount incorrect"), as the issue asks, because the request relates
//! to the original's amount rather than being invalid on its own.

use protocol::card::{Pan, PanHash};
use protocol::fixture::journal::{OriginalTxn, TxnStatus, TxnType};
use protocol::money::Money;
use protocol::time::Instant;

use crate::fees::FeeSchedule;

/// State of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Approved,
    Declined(String),
    Voided,
    Reversed,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub id: u64,
    pub terminal_id: String,
    pub merchant_id: String,
    pub kind: TxnType,
    pub status: Status,
    pub batch: u32,
    pub stan: u32,
    /// Local date MMDD (field 13).
    pub local_date: String,
    pub at: Instant,
    pub rrn: String,
    pub auth_code: String,
    pub amount: Money,
    pub surcharge: Option<Money>,
    pub surcharge_refundable: bool,
    pub pan_masked: String,
    pub pan_hash: PanHash,
    /// For voids and refunds: the record they apply to.
    pub original: Option<u64>,
    /// On a sale: the fee charged. On a refund: the fee given back.
    pub fee: Money,
    /// On a sale: approved refunds so far, and the fee they gave back.
    pub refunded: Money,
    pub fee_returned: Money,
    pub settled: bool,
}

impl Record {
    /// A record of `req` with no fee, surcharge, original or refunds yet; callers set those.
    fn of_request(
        id: u64,
        kind: TxnType,
        status: Status,
        req: &Request,
        (rrn, auth_code): (String, String),
        pan_hash: PanHash,
    ) -> Record {
        let zero = Money::zero(req.amount.currency());
        Record {
            id,
            terminal_id: req.terminal_id.clone(),
            merchant_id: req.merchant_id.clone(),
            kind,
            status,
            batch: req.batch,
            stan: req.stan,
            local_date: req.local_date.clone(),
            at: req.at,
            rrn,
            auth_code,
            amount: req.amount,
            surcharge: None,
            surcharge_refundable: true,
            pan_masked: req.pan.as_ref().map(|p| p.masked()).unwrap_or_default(),
            pan_hash,
            original: None,
            fee: zero,
            refunded: zero,
            fee_returned: zero,
            settled: false,
        }
    }

    /// What can be refunded of a sale at most: its amount, less a non-refundable surcharge.
    pub fn refundable(&self) -> Money {
        match (self.surcharge, self.surcharge_refundable) {
            (Some(s), false) => self.amount.saturating_sub(s),
            _ => self.amount,
        }
    }
    /// Approved and not voided, reversed or declined since.
    pub fn is_live(&self) -> bool {
        self.status == Status::Approved
    }
}

/// How a request names its original; any key that is present must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginalKey {
    pub rrn: Option<String>,
    pub batch: Option<u32>,
    pub stan: Option<u32>,
    /// MMDD.
    pub date: Option<String>,
    pub auth_code: Option<String>,
}

impl OriginalKey {
    /// Names no original at all: an unreferenced refund.
    pub fn is_empty(&self) -> bool {
        self.rrn.is_none() && self.stan.is_none() && self.auth_code.is_none()
    }
}

/// Common fields of a financial request.
#[derive(Clone, Debug)]
pub struct Request {
    pub terminal_id: String,
    pub merchant_id: String,
    pub batch: u32,
    pub stan: u32,
    pub local_date: String,
    pub at: Instant,
    pub amount: Money,
    pub pan: Option<Pan>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Approved {
        record: u64,
        rrn: String,
        auth_code: String,
        /// Sale: fee charged; refund: fee given back; void: fee cancelled.
        fee: Money,
        /// Sale: amount − fee; refund: amount − fee given back (money leaving the merchant).
        net: Money,
    },
    Declined {
        code: &'static str,
        /// Why, for the log.
        reason: &'static str,
    },
}

impl Decision {
    pub fn code(&self) -> &'static str {
        match self {
            Decision::Approved { .. } => "00",
            Decision::Declined { code, .. } => code,
        }
    }
}

/// Totals of one batch, as field 48 carries them and as the settlement report prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchTotals {
    pub sale_count: u32,
    pub sale_total: Money,
    pub refund_count: u32,
    pub refund_total: Money,
    pub void_count: u32,
    pub fees: Money,
    pub fees_returned: Money,
}

impl BatchTotals {
    fn zero(c: protocol::money::Currency) -> Self {
        BatchTotals {
            sale_count: 0,
            sale_total: Money::zero(c),
            refund_count: 0,
            refund_total: Money::zero(c),
            void_count: 0,
            fees: Money::zero(c),
            fees_returned: Money::zero(c),
        }
    }
    /// sales − refunds − fees + returned fees; `None` when the merchant owes money (shown as
    /// a negative net by [`BatchTotals::net_string`]).
    pub fn net_string(&self) -> String {
        let plus = self.sale_total.value() + self.fees_returned.value();
        let minus = self.refund_total.value() + self.fees.value();
        format!("{}", plus - minus)
    }
}

/// The acquirer's records.
#[derive(Debug)]
pub struct Ledger {
    records: Vec<Record>,
    next_id: u64,
    next_rrn: u64,
    next_auth: u32,
    pan_key: Vec<u8>,
}

impl Ledger {
    pub fn new(pan_key: Vec<u8>) -> Self {
        Ledger {
            records: Vec::new(),
            next_id: 1,
            next_rrn: 1,
            next_auth: 1,
            pan_key,
        }
    }

    /// Numbers RRNs and approval codes from `seed` rather than 1. A real terminal keeps its
    /// journal from one scenario (and one run) to the next while each scenario gets a fresh
    /// simulator: numbering that restarted at 1 would hand it an RRN it already holds. Seeds
    /// that differ by one give disjoint blocks of 100 RRNs (repeating after 10⁹ seeds) and
    /// approval codes that repeat after 900 000 seeds.
    pub fn number_from(&mut self, seed: u64) {
        self.next_rrn = (seed % 1_000_000_000) * 100 + 1;
        self.next_auth = (seed % 900_000) as u32;
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn record(&self, id: u64) -> Option<&Record> {
        self.records.iter().find(|r| r.id == id)
    }

    fn record_mut(&mut self, id: u64) -> Option<&mut Record> {
        self.records.iter_mut().find(|r| r.id == id)
    }

    fn hash(&self, pan: &Pan) -> PanHash {
        pan.keyed_hash(&self.pan_key)
    }

    /// RRNs the host assigns: 12 digits, counting from 100000000001 so they never collide with
    /// the small numbers fixtures use.
    fn assign(&mut self) -> (u64, String, String) {
        let id = self.next_id;
        self.next_id += 1;
        let rrn = format!("{:012}", 100_000_000_000u64 + self.next_rrn);
        self.next_rrn += 1;
        let auth = format!("{:06}", 100_000 + self.next_auth % 900_000);
        self.next_auth += 1;
        (id, rrn, auth)
    }

    /// Imports originals from a journal fixture (the emulator imports the same file).
    pub fn import(
        &mut self,
        txns: &[OriginalTxn],
        merchant_of: impl Fn(&str) -> Option<String>,
        surcharge_refundable: impl Fn(&str) -> bool,
        fees: &FeeSchedule,
    ) {
        let mut ids: Vec<(String, u64)> = Vec::new();
        for t in txns {
            let id = self.next_id;
            self.next_id += 1;
            let status = match t.status {
                TxnStatus::Approved => Status::Approved,
                TxnStatus::Declined => Status::Declined("05".into()),
                TxnStatus::Voided => Status::Voided,
                TxnStatus::Reversed => Status::Reversed,
            };
            let original = t
                .original
                .as_ref()
                .and_then(|o| ids.iter().find(|(n, _)| n == o).map(|(_, id)| *id));
            let fee = match (t.kind, t.fee) {
                (_, Some(f)) => f,
                (TxnType::Sale, None) if status != Status::Declined("05".into()) => {
                    fees.fee_on_sale(t.amount)
                }
                _ => Money::zero(t.amount.currency()),
            };
            let local = t.at;
            let rec = Record {
                id,
                terminal_id: t.terminal_id.clone(),
                merchant_id: merchant_of(&t.terminal_id).unwrap_or_default(),
                kind: t.kind,
                status,
                batch: t.batch,
                stan: t.stan,
                local_date: String::new(),
                at: local,
                rrn: t.rrn.clone(),
                auth_code: t.auth_code.clone().unwrap_or_default(),
                amount: t.amount,
                surcharge: t.surcharge,
                surcharge_refundable: surcharge_refundable(&t.terminal_id),
                pan_masked: t.pan.masked(),
                pan_hash: self.hash(&t.pan),
                original,
                fee,
                refunded: Money::zero(t.amount.currency()),
                fee_returned: Money::zero(t.amount.currency()),
                settled: t.settled,
            };
            // A preloaded approved refund counts against its original.
            if rec.kind == TxnType::Refund
                && rec.status == Status::Approved
                && let Some(o) = original.and_then(|o| self.record_mut(o))
            {
                o.refunded = o.refunded.checked_add(rec.amount).unwrap_or(o.refunded);
                o.fee_returned = o
                    .fee_returned
                    .checked_add(rec.fee)
                    .unwrap_or(o.fee_returned);
            }
            ids.push((t.id.clone(), id));
            self.records.push(rec);
        }
    }

    /// Sets the local date (MMDD) of imported records from a time-zone-aware formatter.
    pub fn set_local_dates(&mut self, f: impl Fn(&Record) -> String) {
        for r in &mut self.records {
            if r.local_date.is_empty() {
                r.local_date = f(r);
            }
        }
    }

    /// A sale: recorded and approved (limits and issuer declines come from scripts).
    pub fn sale(
        &mut self,
        req: &Request,
        surcharge: Option<Money>,
        surcharge_refundable: bool,
        fees: &FeeSchedule,
    ) -> Decision {
        let Some(pan) = &req.pan else {
            return Decision::Declined {
                code: "30",
                reason: "sale without a card number",
            };
        };
        if req.amount.is_zero() {
            return Decision::Declined {
                code: "13",
                reason: "zero amount",
            };
        }
        let (id, rrn, auth) = self.assign();
        let fee = fees.fee_on_sale(req.amount);
        let rec = Record {
            surcharge,
            surcharge_refundable,
            pan_masked: pan.masked(),
            fee,
            ..Record::of_request(
                id,
                TxnType::Sale,
                Status::Approved,
                req,
                (rrn.clone(), auth.clone()),
                self.hash(pan),
            )
        };
        self.records.push(rec);
        Decision::Approved {
            record: id,
            rrn,
            auth_code: auth,
            fee,
            net: req.amount.saturating_sub(fee),
        }
    }

    /// Records a decline decided elsewhere (a script), so settlement and lookups see it.
    pub fn record_decline(
        &mut self,
        kind: TxnType,
        req: &Request,
        code: &str,
        original: Option<u64>,
    ) -> u64 {
        let (id, rrn, _) = self.assign();
        let pan_hash = req
            .pan
            .as_ref()
            .map(|p| self.hash(p))
            .unwrap_or(PanHash([0; 32]));
        self.records.push(Record {
            original,
            ..Record::of_request(
                id,
                kind,
                Status::Declined(code.to_string()),
                req,
                (rrn, String::new()),
                pan_hash,
            )
        });
        id
    }

    /// Finds the original a void or refund names. Every key present must match.
    pub fn find_original(&self, key: &OriginalKey) -> Option<&Record> {
        if key.is_empty() {
            return None;
        }
        // Any kind matches: a refund of a refund is found, then refused with 12.
        self.records.iter().rev().find(|r| {
            key.rrn.as_ref().is_none_or(|x| *x == r.rrn)
                && key.stan.is_none_or(|x| x == r.stan)
                && key.batch.is_none_or(|x| x == r.batch)
                && key
                    .date
                    .as_ref()
                    .is_none_or(|x| r.local_date.is_empty() || *x == r.local_date)
                && key.auth_code.as_ref().is_none_or(|x| *x == r.auth_code)
        })
    }

    /// Like [`Ledger::find_original`], but a record of `terminal_id` wins over an equal match of
    /// another terminal: STANs and batches are per terminal, so a key without an RRN could match
    /// both. A match of another terminal only (the request names someone else's sale) is still
    /// returned, so the caller can refuse it with 58.
    pub fn find_original_for(&self, terminal_id: &str, key: &OriginalKey) -> Option<&Record> {
        if key.is_empty() {
            return None;
        }
        let matches = |r: &&Record| {
            key.rrn.as_ref().is_none_or(|x| *x == r.rrn)
                && key.stan.is_none_or(|x| x == r.stan)
                && key.batch.is_none_or(|x| x == r.batch)
                && key
                    .date
                    .as_ref()
                    .is_none_or(|x| r.local_date.is_empty() || *x == r.local_date)
                && key.auth_code.as_ref().is_none_or(|x| *x == r.auth_code)
        };
        // Sales first: a refund or void shares no key with a sale of the same terminal except
        // by accident (a refund's own STAN), and the sale is what a request names.
        let own = |r: &&Record| r.terminal_id == terminal_id;
        let sale = |r: &&Record| r.kind == TxnType::Sale;
        self.records
            .iter()
            .rev()
            .filter(matches)
            .find(|r| own(r) && sale(r))
            .or_else(|| self.records.iter().rev().filter(matches).find(own))
            .or_else(|| self.records.iter().rev().find(matches))
    }

    /// Records an approval a script forced although the rules refused it (or that has no
    /// rule, such as a refund without a known original): the host's books then say what its
    /// reply said, so settlement counts it. No fee is charged or returned.
    pub fn record_forced_approval(
        &mut self,
        kind: TxnType,
        req: &Request,
        original: Option<u64>,
    ) -> (u64, String, String) {
        let (id, rrn, auth) = self.assign();
        let pan_hash = req
            .pan
            .as_ref()
            .map(|p| self.hash(p))
            .unwrap_or(PanHash([0; 32]));
        if kind == TxnType::Void
            && let Some(o) = original.and_then(|o| self.record_mut(o))
        {
            o.status = Status::Voided;
        }
        self.records.push(Record {
            original,
            ..Record::of_request(
                id,
                kind,
                Status::Approved,
                req,
                (rrn.clone(), auth.clone()),
                pan_hash,
            )
        });
        (id, rrn, auth)
    }

    /// Common checks of a void or refund against its original.
    fn check_related(
        &self,
        req: &Request,
        key: &OriginalKey,
    ) -> Result<u64, (&'static str, &'static str)> {
        let Some(orig) = self.find_original_for(&req.terminal_id, key) else {
            return Err(("25", "original not found"));
        };
        if orig.terminal_id != req.terminal_id {
            return Err(("58", "original belongs to another terminal"));
        }
        if orig.kind != TxnType::Sale || matches!(orig.status, Status::Declined(_)) {
            return Err(("12", "original is not an approved sale"));
        }
        if matches!(orig.status, Status::Voided | Status::Reversed) {
            return Err(("22", "original already voided or reversed"));
        }
        if let Some(pan) = &req.pan
            && self.hash(pan) != orig.pan_hash
        {
            return Err(("14", "card differs from the original's"));
        }
        if req.amount.is_zero() {
            return Err(("13", "zero amount"));
        }
        if req.amount.currency() != orig.amount.currency() {
            return Err(("64", "currency differs from the original's"));
        }
        Ok(orig.id)
    }

    /// A void (same batch and day, full amount).
    pub fn void(&mut self, req: &Request, key: &OriginalKey) -> Decision {
        let orig_id = match self.check_related(req, key) {
            Ok(id) => id,
            Err((code, reason)) => return Decision::Declined { code, reason },
        };
        let Some(orig) = self.record(orig_id).cloned() else {
            return Decision::Declined {
                code: "25",
                reason: "original not found",
            };
        };
        if orig.settled || (!orig.local_date.is_empty() && orig.local_date != req.local_date) {
            return Decision::Declined {
                code: "12",
                reason: "void on a later day or after settlement",
            };
        }
        if orig.amount != req.amount {
            return Decision::Declined {
                code: "64",
                reason: "void amount differs from the original",
            };
        }
        if !orig.refunded.is_zero() {
            return Decision::Declined {
                code: "12",
                reason: "original already partly refunded",
            };
        }
        let (id, rrn, auth) = self.assign();
        if let Some(o) = self.record_mut(orig_id) {
            o.status = Status::Voided;
        }
        self.records.push(Record {
            pan_masked: orig.pan_masked.clone(),
            original: Some(orig_id),
            fee: orig.fee,
            ..Record::of_request(
                id,
                TxnType::Void,
                Status::Approved,
                req,
                (rrn.clone(), auth.clone()),
                orig.pan_hash,
            )
        });
        Decision::Approved {
            record: id,
            rrn,
            auth_code: auth,
            fee: orig.fee,
            net: req.amount.saturating_sub(orig.fee),
        }
    }

    /// A refund, possibly partial, possibly after settlement.
    pub fn refund(&mut self, req: &Request, key: &OriginalKey, fees: &FeeSchedule) -> Decision {
        let orig_id = match self.check_related(req, key) {
            Ok(id) => id,
            Err((code, reason)) => return Decision::Declined { code, reason },
        };
        let Some(orig) = self.record(orig_id).cloned() else {
            return Decision::Declined {
                code: "25",
                reason: "original not found",
            };
        };
        let refundable = orig.refundable();
        let Some(after) = orig.refunded.checked_add(req.amount) else {
            return Decision::Declined {
                code: "64",
                reason: "currency differs from the original's",
            };
        };
        if after.value() > refundable.value() {
            return Decision::Declined {
                code: "64",
                reason: "refunds would exceed the refundable amount",
            };
        }
        let fee_back = fees.fee_on_refund(
            orig.fee,
            refundable,
            orig.refunded,
            req.amount,
            orig.fee_returned,
        );
        let (id, rrn, auth) = self.assign();
        if let Some(o) = self.record_mut(orig_id) {
            o.refunded = after;
            o.fee_returned = o
                .fee_returned
                .checked_add(fee_back)
                .unwrap_or(o.fee_returned);
        }
        self.records.push(Record {
            pan_masked: orig.pan_masked.clone(),
            original: Some(orig_id),
            fee: fee_back,
            ..Record::of_request(
                id,
                TxnType::Refund,
                Status::Approved,
                req,
                (rrn.clone(), auth.clone()),
                orig.pan_hash,
            )
        });
        Decision::Approved {
            record: id,
            rrn,
            auth_code: auth,
            fee: fee_back,
            net: req.amount.saturating_sub(fee_back),
        }
    }

    /// A refund that names no original, for a merchant allowed to make them: approved and booked
    /// as a credit of the batch. Without a sale behind it there is no refundable amount to
    /// check and no fee to give back; what is still checked is a card and an amount above zero.
    pub fn unreferenced_refund(&mut self, req: &Request) -> Decision {
        let Some(pan) = &req.pan else {
            return Decision::Declined {
                code: "30",
                reason: "unreferenced refund without a card number",
            };
        };
        if req.amount.is_zero() {
            return Decision::Declined {
                code: "13",
                reason: "zero amount",
            };
        }
        let (id, rrn, auth) = self.assign();
        let pan_hash = self.hash(pan);
        let zero = Money::zero(req.amount.currency());
        self.records.push(Record::of_request(
            id,
            TxnType::Refund,
            Status::Approved,
            req,
            (rrn.clone(), auth.clone()),
            pan_hash,
        ));
        Decision::Approved {
            record: id,
            rrn,
            auth_code: auth,
            fee: zero,
            net: req.amount,
        }
    }

    /// A reversal of the request (terminal, STAN, batch, amount) names. `Ok(true)` if it undid
    /// something, `Ok(false)` if that was already reversed (answered 00 again), `Err("25")` if
    /// nothing matches.
    pub fn reverse(
        &mut self,
        terminal_id: &str,
        stan: u32,
        batch: Option<u32>,
        amount: Money,
    ) -> Result<bool, &'static str> {
        let Some(idx) = self.records.iter().rposition(|r| {
            r.terminal_id == terminal_id
                && r.stan == stan
                && batch.is_none_or(|b| b == r.batch)
                && r.amount == amount
                && !r.settled
        }) else {
            return Err("25");
        };
        let rec = self.records[idx].clone();
        match rec.status {
            Status::Reversed => return Ok(false),
            Status::Declined(_) => {
                self.records[idx].status = Status::Reversed;
                return Ok(true);
            }
            _ => {}
        }
        self.records[idx].status = Status::Reversed;
        // Undo what the reversed message did to its original.
        if let Some(o) = rec.original.and_then(|o| self.record_mut(o)) {
            match rec.kind {
                TxnType::Void => o.status = Status::Approved,
                TxnType::Refund if rec.status == Status::Approved => {
                    o.refunded = o.refunded.saturating_sub(rec.amount);
                    o.fee_returned = o.fee_returned.saturating_sub(rec.fee);
                }
                _ => {}
            }
        }
        Ok(true)
    }

    /// Totals of the open batch `batch` of `terminal_id`, the way R-SETTLE counts them: sales
    /// as debits, refunds as credits, voided and reversed sales not at all.
    pub fn totals(
        &self,
        terminal_id: &str,
        batch: u32,
        currency: protocol::money::Currency,
    ) -> BatchTotals {
        let mut t = BatchTotals::zero(currency);
        for r in self
            .records
            .iter()
            .filter(|r| r.terminal_id == terminal_id && r.batch == batch && !r.settled)
        {
            match (r.kind, &r.status) {
                (TxnType::Sale, Status::Approved) => {
                    t.sale_count += 1;
                    t.sale_total = t.sale_total.checked_add(r.amount).unwrap_or(t.sale_total);
                    t.fees = t.fees.checked_add(r.fee).unwrap_or(t.fees);
                }
                (TxnType::Refund, Status::Approved) => {
                    t.refund_count += 1;
                    t.refund_total = t
                        .refund_total
                        .checked_add(r.amount)
                        .unwrap_or(t.refund_total);
                    t.fees_returned = t
                        .fees_returned
                        .checked_add(r.fee)
                        .unwrap_or(t.fees_returned);
                }
                (TxnType::Void, Status::Approved) => t.void_count += 1,
                _ => {}
            }
        }
        t
    }

    /// Closes a batch: its records no longer count in totals and can no longer be voided or
    /// reversed.
    pub fn close_batch(&mut self, terminal_id: &str, batch: u32) {
        for r in self
            .records
            .iter_mut()
            .filter(|r| r.terminal_id == terminal_id && r.batch == batch)
        {
            r.settled = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::money::Currency;

    fn cny(s: &str) -> Money {
        Money::parse(s, Currency::from_alpha("CNY").unwrap()).unwrap()
    }
    fn pan() -> Pan {
        Pan::new("6222021234567894").unwrap()
    }
    #[test]
    fn simulators_seeded_one_apart_never_share_an_rrn() {
        let rrns = |seed: u64| {
            let mut l = Ledger::new(vec![0; 16]);
            l.number_from(seed);
            (0..100).map(|_| l.assign().1).collect::<Vec<_>>()
        };
        let (a, b) = (rrns(17_650_000_000), rrns(17_650_000_001));
        assert!(
            a.iter().all(|r| r.len() == 12 && !b.contains(r)),
            "{a:?} {b:?}"
        );
        assert_ne!(Ledger::new(vec![]).assign().1, a[0]);
    }

    fn req(stan: u32, amount: &str) -> Request {
        Request {
            terminal_id: "20250001".into(),
            merchant_id: "898310048990001".into(),
            batch: 1,
            stan,
            local_date: "1126".into(),
            at: Instant::from_millis(0),
            amount: cny(amount),
            pan: Some(pan()),
        }
    }
    fn fees() -> FeeSchedule {
        FeeSchedule::from_yaml_str("name: f\nrate: \"0.006\"\n", "f.yaml").unwrap()
    }
    fn by_rrn(rrn: &str) -> OriginalKey {
        OriginalKey {
            rrn: Some(rrn.into()),
            ..Default::default()
        }
    }

    #[test]
    fn three_partials_return_exactly_the_fee_then_exceed() {
        let mut l = Ledger::new(b"k".to_vec());
        let Decision::Approved { rrn, fee, .. } = l.sale(&req(1, "100.00"), None, true, &fees())
        else {
            panic!()
        };
        assert_eq!(fee, cny("0.60"));
        let mut back = vec![];
        for (i, a) in ["33.33", "33.33", "33.34"].iter().enumerate() {
            match l.refund(&req(2 + i as u32, a), &by_rrn(&rrn), &fees()) {
                Decision::Approved { fee, .. } => back.push(fee.to_string()),
                d => panic!("{d:?}"),
            }
        }
        assert_eq!(back, ["0.20", "0.20", "0.20"]);
        assert_eq!(
            l.refund(&req(9, "0.01"), &by_rrn(&rrn), &fees()).code(),
            "64"
        );
        let t = l.totals("20250001", 1, Currency::from_alpha("CNY").unwrap());
        assert_eq!((t.sale_count, t.refund_count), (1, 3));
        assert_eq!(t.net_string(), "0.00");
    }

    #[test]
    fn refusal_codes() {
        let mut l = Ledger::new(b"k".to_vec());
        let Decision::Approved { rrn, .. } = l.sale(&req(1, "100.00"), None, true, &fees()) else {
            panic!()
        };
        assert_eq!(
            l.refund(&req(2, "1.00"), &by_rrn("999999999999"), &fees())
                .code(),
            "25"
        );
        let mut other = req(3, "1.00");
        other.pan = Some(Pan::new("4111111111111111").unwrap());
        assert_eq!(l.refund(&other, &by_rrn(&rrn), &fees()).code(), "14");
        let mut other_tid = req(4, "1.00");
        other_tid.terminal_id = "20250002".into();
        assert_eq!(l.refund(&other_tid, &by_rrn(&rrn), &fees()).code(), "58");
        assert_eq!(l.refund(&req(5, "0"), &by_rrn(&rrn), &fees()).code(), "13");
        assert_eq!(l.void(&req(6, "99.00"), &by_rrn(&rrn)).code(), "64");
        let mut next_day = req(7, "100.00");
        next_day.local_date = "1127".into();
        assert_eq!(l.void(&next_day, &by_rrn(&rrn)).code(), "12");
        assert_eq!(l.void(&req(8, "100.00"), &by_rrn(&rrn)).code(), "00");
        assert_eq!(l.void(&req(9, "100.00"), &by_rrn(&rrn)).code(), "22");
        assert_eq!(
            l.refund(&req(10, "1.00"), &by_rrn(&rrn), &fees()).code(),
            "22"
        );
    }

    #[test]
    fn reversal_undoes_and_repeats_answer_00() {
        let mut l = Ledger::new(b"k".to_vec());
        let Decision::Approved { rrn, .. } = l.sale(&req(1, "100.00"), None, true, &fees()) else {
            panic!()
        };
        assert_eq!(l.void(&req(2, "100.00"), &by_rrn(&rrn)).code(), "00");
        assert_eq!(l.reverse("20250001", 2, Some(1), cny("100.00")), Ok(true));
        assert_eq!(l.reverse("20250001", 2, Some(1), cny("100.00")), Ok(false));
        assert_eq!(l.reverse("20250001", 77, Some(1), cny("100.00")), Err("25"));
        // The void was reversed, so the sale is refundable again.
        assert_eq!(
            l.refund(&req(3, "10.00"), &by_rrn(&rrn), &fees()).code(),
            "00"
        );
    }
}
