//! The host link inside the core: a queue of jobs (pending reversals and advices first, then
//! sign-on, then the transaction), one message in flight at a time, and the rules of DESIGN.md
//! R-REV / R-ADVICE / R-SIGNON / R-MAC / R-SETTLE for what a reply — or its absence — means.
//!
//! Order of a transaction: the record and its reversal (or the CUP advice) are journaled, then
//! the request leaves. A reply is checked (MTI + 10, STAN, TID, MID, amount, MAC) before it
//! counts; anything else after a byte left is an unknown outcome.

use std::collections::VecDeque;

use protocol::fixture::journal::TxnType;
use protocol::fixture::terminal::MacMode;
use protocol::iso8583::builder::{
    self, CardData, OriginalTxn as BOriginal, ReversalReason, TxnInput,
};
use protocol::iso8583::framing::LengthPrefixed;
use protocol::iso8583::keys::{DoubleKey, WorkingKeys};
use protocol::iso8583::subfield::{FeeInfo, SettlementTotals, Totals};
use protocol::iso8583::{DialectFamily, Message, MessageRef, Mti, mac};
use protocol::money::Money;
use protocol::riglink::Tone;
use protocol::time::Instant;

use super::flow::{Activity, FlowKind, Source, Step};
use super::receipt::{self, SettlementFigures};
use super::refusal::Refusal;
use super::{Output, Terminal, crypto};
use crate::journal::{
    Counters, JournalOp, Outcome, PendingKind, PendingRecord, Session, StoredRequest, TxnRecord,
};

/// Work for the host link, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Job {
    SignOn,
    /// Send the pending reversal or advice of this transaction. `immediate` tries are the
    /// ones right after an unknown outcome (iso87: up to N, with 04 FF 05 to the ECR).
    Pending {
        txn_id: u64,
        immediate: bool,
    },
    /// The current flow's own request.
    Txn,
    Settle,
    /// Batch upload of these transactions, then the upload end.
    Upload {
        remaining: Vec<u64>,
        count: u32,
    },
    UploadEnd {
        count: u32,
    },
}

struct InFlight {
    job: Job,
    request: Message,
    deadline: Instant,
    txn_id: Option<u64>,
}

pub(super) struct HostState {
    framing: LengthPrefixed,
    rx: Vec<u8>,
    jobs: VecDeque<Job>,
    inflight: Option<InFlight>,
    /// Immediate reversal tries left for the transaction just failed.
    immediate_left: u32,
    /// Settlement totals sent (to know what the reply compares).
    settle_balanced: Option<bool>,
}

impl HostState {
    pub(super) fn new(framing: LengthPrefixed) -> HostState {
        HostState {
            framing,
            rx: Vec::new(),
            jobs: VecDeque::new(),
            inflight: None,
            immediate_left: 0,
            settle_balanced: None,
        }
    }
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.inflight.as_ref().map(|i| i.deadline)
    }
    pub(super) fn is_idle(&self) -> bool {
        self.inflight.is_none() && self.jobs.is_empty()
    }
    /// A request is out and its outcome not known.
    pub(super) fn awaiting(&self) -> bool {
        self.inflight.is_some()
    }
}

/// Why an outcome is unknown; the CUP reversal reason of field 39.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unknown {
    Timeout,
    BadMac,
    BadReply,
    Broken,
}

impl Unknown {
    fn reason(self) -> ReversalReason {
        match self {
            Unknown::Timeout => ReversalReason::NoResponse,
            Unknown::BadMac => ReversalReason::BadMac,
            Unknown::BadReply | Unknown::Broken => ReversalReason::Other,
        }
    }
}

impl Terminal {
    fn family(&self) -> DialectFamily {
        self.cfg.dialect.family
    }

    /// At power-on: resolve what the journal left unknown, then sign on if the profile says so.
    pub(super) fn recover_and_sign_on(&mut self) {
        self.resolve_open_rows();
        for p in self.j.pending.clone() {
            self.host.jobs.push_back(Job::Pending {
                txn_id: p.txn_id,
                immediate: false,
            });
        }
        if self.sign_on_mode() == protocol::fixture::terminal::SignOnMode::Auto && !self.signed_on()
        {
            self.host.jobs.push_back(Job::SignOn);
        }
        self.pump_host();
    }

    /// Queues the work a flow's processing needs and starts it.
    pub(super) fn start_processing(&mut self) {
        let Some(kind) = self.flow().map(|f| f.kind) else {
            return;
        };
        // Pending reversals and advices go before every later online message.
        let pending: Vec<u64> = self.j.pending.iter().map(|p| p.txn_id).collect();
        let mut jobs: VecDeque<Job> = pending
            .into_iter()
            .map(|txn_id| Job::Pending {
                txn_id,
                immediate: false,
            })
            .collect();
        match kind {
            FlowKind::SignOn => jobs.push_back(Job::SignOn),
            FlowKind::Settle => jobs.push_back(Job::Settle),
            _ => {
                if !self.signed_on() {
                    jobs.push_back(Job::SignOn);
                }
                jobs.push_back(Job::Txn);
            }
        }
        self.host.jobs = jobs;
        self.ecr_intermediate(0x17);
        self.pump_host();
    }

    /// CANCEL while processing: stop waiting. If the request already left, its outcome is
    /// unknown and the reversal rules apply.
    pub(super) fn cancel_processing(&mut self) {
        if self
            .host
            .inflight
            .as_ref()
            .is_some_and(|i| i.job == Job::Txn)
        {
            self.unknown_outcome(Unknown::Timeout);
        } else if self.host.inflight.is_none() {
            self.host.jobs.clear();
            self.finish_refused(Refusal::Cancelled);
        }
    }

    fn next_counters(&mut self) -> (u64, u32, u32) {
        let c = self.j.counters.clone();
        let next = Counters {
            next_txn_id: c.next_txn_id + 1,
            next_stan: if c.next_stan >= 999_999 {
                1
            } else {
                c.next_stan + 1
            },
            batch: c.batch,
            next_receipt_no: if c.next_receipt_no >= 9999 {
                1
            } else {
                c.next_receipt_no + 1
            },
        };
        self.journal_op(JournalOp::SetCounters(next));
        (c.next_txn_id, c.next_stan, c.next_receipt_no)
    }

    fn next_stan(&mut self) -> u32 {
        let (_, stan, _) = {
            let c = self.j.counters.clone();
            let next = Counters {
                next_stan: if c.next_stan >= 999_999 {
                    1
                } else {
                    c.next_stan + 1
                },
                ..c.clone()
            };
            self.journal_op(JournalOp::SetCounters(next));
            (c.next_txn_id, c.next_stan, c.next_receipt_no)
        };
        stan
    }

    fn local_now(&self) -> chrono::NaiveDateTime {
        self.now.to_local(self.cfg.profile.time_zone).naive_local()
    }

    fn header(&self) -> Option<Vec<u8>> {
        let h = self.cfg.dialect.header.as_ref()?;
        let hex = format!(
            "{}{}",
            self.cfg.profile.host.tpdu, self.cfg.profile.host.header
        );
        let bytes = protocol::fixture::keys::decode_hex(&hex)?;
        (bytes.len() == h.length).then_some(bytes)
    }

    /// Starts the next job if nothing is in flight.
    pub(super) fn pump_host(&mut self) {
        while self.host.inflight.is_none() {
            let Some(job) = self.host.jobs.pop_front() else {
                return;
            };
            let built = match &job {
                Job::SignOn => self.build_sign_on(),
                Job::Pending { txn_id, .. } => self.build_pending(*txn_id),
                Job::Txn => {
                    if self.review_again_before_sending() {
                        // Refused, replayed, or asking "possible duplicate": nothing leaves.
                        self.host.jobs.clear();
                        return;
                    }
                    self.build_txn()
                }
                Job::Settle => self.build_settlement(),
                Job::Upload { remaining, count } => self.build_upload(remaining, *count),
                Job::UploadEnd { count } => self.build_upload_end(*count),
            };
            match built {
                Some((request, txn_id)) => self.send(job, request, txn_id),
                None => self.job_not_built(&job),
            }
        }
    }

    fn send(&mut self, job: Job, mut request: Message, txn_id: Option<u64>) {
        let mut frame = Vec::new();
        let encoded = match (self.cfg.profile.mac, &self.j.session.mac_key, &job) {
            (MacMode::X919, Some(k), j) if *j != Job::SignOn => {
                match <[u8; 16]>::try_from(k.as_slice()) {
                    Ok(k) => mac::sign(
                        &self.cfg.dialect,
                        &mut request,
                        &DoubleKey::new(k),
                        &mut frame,
                    )
                    .is_ok(),
                    Err(_) => false,
                }
            }
            _ => request.encode_into(&self.cfg.dialect, &mut frame).is_ok(),
        };
        if !encoded {
            // A request we cannot encode is a terminal fault: nothing leaves.
            self.job_failed_not_sent(&job, txn_id);
            return;
        }
        let mut wire = Vec::with_capacity(frame.len() + 4);
        if self.host.framing.encode(&frame, &mut wire).is_err() {
            self.job_failed_not_sent(&job, txn_id);
            return;
        }
        let deadline = self.now + self.cfg.profile.host_timeout();
        self.out.push_back(Output::HostBytes(wire));
        self.host.inflight = Some(InFlight {
            job,
            request,
            deadline,
            txn_id,
        });
        self.ecr_intermediate(0x04);
    }

    // ---- building requests ----

    fn build_sign_on(&mut self) -> Option<(Message, Option<u64>)> {
        let stan = self.next_stan();
        let i = builder::SignOnInput {
            tid: self.cfg.profile.terminal_id.clone(),
            mid: self.cfg.profile.merchant_id.clone(),
            stan,
            batch: self.j.counters.batch,
            local: self.local_now(),
            gmt: None,
            double_length_keys: true,
            operator: None,
            header: self.header(),
        };
        builder::sign_on(&self.cfg.dialect, &i)
            .ok()
            .map(|m| (m, None))
    }

    fn txn_input(&self, stan: u32, amount: Money, card: CardData) -> TxnInput {
        TxnInput {
            tid: self.cfg.profile.terminal_id.clone(),
            mid: self.cfg.profile.merchant_id.clone(),
            stan,
            batch: self.j.counters.batch,
            amount_minor: amount.minor(),
            currency: amount.currency().numeric(),
            local: self.local_now(),
            gmt: None,
            card,
            header: self.header(),
            operator: None,
            acquirer_id: None,
        }
    }

    /// The flow's request: creates the record and its reversal / advice first.
    fn build_txn(&mut self) -> Option<(Message, Option<u64>)> {
        let f = self.flow()?;
        let kind = f.kind.txn_type()?;
        let card = f.card.clone();
        let amount_base = f.amount?;
        let original_id = f.original_id;
        let orig_ref = f.orig.clone();
        let reference = f.ecr_reference.clone();
        // Informed once the ECR acknowledges the result's 04 0F (ecr.rs); nobody to inform
        // otherwise.
        let ecr_informed = f.source != Source::Ecr;
        let original = original_id.and_then(|id| self.j.txn(id)).cloned();
        let (pan_masked, pan_hash, entry, pan, expiry) = match (&card, &original) {
            (Some(c), _) => (
                c.pan.masked(),
                c.hash,
                c.entry,
                Some(c.pan.clone()),
                Some(c.expiry.clone()),
            ),
            (None, Some(o)) => (
                o.pan_masked.clone(),
                o.pan_hash,
                crate::journal::EntryMode::Preloaded,
                None,
                None,
            ),
            (None, None) => return None,
        };
        // Sale surcharge (terminal side, where the market allows it); the amount is inclusive.
        let (amount, surcharge) = match kind {
            TxnType::Sale => match self.surcharge_for(amount_base) {
                Some(s) => (amount_base.checked_add(s)?, Some(s)),
                None => (amount_base, None),
            },
            TxnType::Void => (
                original.as_ref().map(|o| o.amount).unwrap_or(amount_base),
                None,
            ),
            TxnType::Refund => (
                amount_base,
                original
                    .as_ref()
                    .and_then(|o| self.surcharge_returned(o, amount_base)),
            ),
        };
        let (id, stan, receipt_no) = self.next_counters();
        let cup = self.family() == DialectFamily::Cup;
        let card_data = CardData {
            pan: pan.clone(),
            expiry: expiry.clone(),
            track2: if kind == TxnType::Sale {
                card.as_ref().and_then(|c| c.track2.clone())
            } else {
                None
            },
            track3: None,
            entry_mode: format!("{}{}", entry.pan_entry_digits(), "2"),
            card_seq: None,
            pin_block: None,
            icc_data: if kind == TxnType::Sale {
                card.as_ref().and_then(|c| c.icc.clone())
            } else {
                None
            },
            read_capability: cup.then_some(6),
            ic_condition: cup.then_some(if entry == crate::journal::EntryMode::FallbackSwipe {
                2
            } else {
                0
            }),
        };
        let input = self.txn_input(stan, amount, card_data);
        let mmdd = original.as_ref().map(|o| {
            o.at.to_local(self.cfg.profile.time_zone)
                .format("%m%d")
                .to_string()
        });
        let borig = BOriginal {
            mti: None,
            processing_code: None,
            stan: original.as_ref().map(|o| o.stan).or(orig_ref.stan),
            batch: original.as_ref().map(|o| o.batch).or(orig_ref.batch),
            rrn: original
                .as_ref()
                .and_then(|o| o.rrn.clone())
                .or(orig_ref.rrn.clone()),
            auth_code: original
                .as_ref()
                .and_then(|o| o.auth_code.clone())
                .or(orig_ref.auth_code.clone()),
            date_mmdd: orig_ref
                .date
                .clone()
                .or(mmdd)
                .or_else(|| Some(self.local_now().format("%m%d").to_string())),
            transmission: None,
            acquirer_id: None,
            forwarding_id: None,
            amount_minor: original
                .as_ref()
                .map(|o| o.amount.minor())
                .unwrap_or(amount.minor()),
        };
        let built = match kind {
            TxnType::Sale => builder::sale(&self.cfg.dialect, &input),
            TxnType::Void => builder::void(&self.cfg.dialect, &input, &borig),
            TxnType::Refund => builder::refund(&self.cfg.dialect, &input, &borig),
        };
        let mut request = built.ok()?;
        if let (TxnType::Sale, Some(s), DialectFamily::Iso87) = (kind, surcharge, self.family()) {
            // ISO 8583 field 28, amount transaction fee: D = debit to the cardholder.
            request.set(28, format!("D{:08}", s.minor()));
        }
        let record = TxnRecord {
            id,
            kind,
            outcome: Outcome::Unknown,
            stan,
            batch: self.j.counters.batch,
            receipt_no,
            amount,
            surcharge,
            pan_masked,
            pan_hash,
            entry_mode: entry,
            at: self.now,
            rrn: None,
            auth_code: None,
            response_code: None,
            original_id,
            original_ref: Some(orig_ref),
            fee: None,
            net: None,
            ecr_reference: reference,
            settled: false,
            ecr_informed,
        };
        // CUP refunds are advices (queued, resent, never reversed); everything else gets its
        // reversal record before it leaves — in the same commit as the `Unknown` row.
        let pending_kind = if cup && kind == TxnType::Refund {
            PendingKind::Advice
        } else {
            PendingKind::Reversal
        };
        let pan_encrypted = pan
            .as_ref()
            .map(|p| crypto::encrypt_pan(&self.cfg.journal_key, p))
            .unwrap_or_default();
        self.journal_op(JournalOp::pending_with_txn(
            PendingRecord {
                txn_id: id,
                kind: pending_kind,
                reason: ReversalReason::Other.code().to_string(),
                tries: 0,
                pan_encrypted,
                request: store(&request),
            },
            record,
        ));
        if let Some(f) = self.flow_mut() {
            f.txn_id = Some(id);
        }
        Some((request, Some(id)))
    }

    /// A pending reversal (0400; iso87 0401 on repeats) or advice (0220, resent as is).
    fn build_pending(&mut self, txn_id: u64) -> Option<(Message, Option<u64>)> {
        let p = self.j.pending.iter().find(|p| p.txn_id == txn_id)?.clone();
        let mut original = restore(&p.request)?;
        if let Some(pan) = crypto::decrypt_pan(&self.cfg.journal_key, &p.pan_encrypted) {
            original.set(2, pan.expose());
        }
        let msg = match p.kind {
            PendingKind::Advice => {
                if p.tries > 0 {
                    builder::repeat(&self.cfg.dialect, &original).ok()?
                } else {
                    original
                }
            }
            PendingKind::Reversal => {
                let reason = match p.reason.as_str() {
                    "98" => ReversalReason::NoResponse,
                    "A0" => ReversalReason::BadMac,
                    "96" => ReversalReason::TerminalFault,
                    _ => ReversalReason::Other,
                };
                let auth = self.j.txn(txn_id).and_then(|t| t.auth_code.clone());
                let r = builder::reversal(&self.cfg.dialect, &original, reason, auth.as_deref())
                    .ok()?;
                if p.tries > 0 && self.family() == DialectFamily::Iso87 {
                    builder::repeat(&self.cfg.dialect, &r).ok()?
                } else {
                    r
                }
            }
        };
        let mut updated = p.clone();
        updated.tries += 1;
        self.journal_op(JournalOp::pending(updated));
        Some((msg, Some(txn_id)))
    }

    fn batch_totals(&self) -> (SettlementTotals, SettlementFigures) {
        let batch = self.j.counters.batch;
        let cur = self.cfg.profile.currency;
        let mut dom = Totals::default();
        let mut foreign = Totals::default();
        let mut fig = SettlementFigures {
            batch,
            ..Default::default()
        };
        let zero = Money::zero(cur);
        let (mut sales, mut refunds, mut fees, mut back) = (zero, zero, zero, zero);
        for t in self
            .j
            .txns
            .iter()
            .filter(|t| t.batch == batch && !t.settled && t.currency() == cur)
        {
            let domestic = t.pan_masked.starts_with("62");
            let g = if domestic { &mut dom } else { &mut foreign };
            match (t.kind, &t.outcome) {
                (TxnType::Sale, Outcome::Approved) => {
                    g.debit_amount += t.amount.minor();
                    g.debit_count += 1;
                    fig.sale_count += 1;
                    sales = sales.checked_add(t.amount).unwrap_or(sales);
                    if let Some(f) = t.fee {
                        fees = fees.checked_add(f).unwrap_or(fees);
                    }
                }
                (TxnType::Refund, Outcome::Approved) => {
                    g.credit_amount += t.amount.minor();
                    g.credit_count += 1;
                    fig.refund_count += 1;
                    refunds = refunds.checked_add(t.amount).unwrap_or(refunds);
                    if let Some(f) = t.fee {
                        back = back.checked_add(f).unwrap_or(back);
                    }
                }
                (TxnType::Void, Outcome::Approved) => fig.void_count += 1,
                _ => {}
            }
        }
        fig.sale_total = Some(sales);
        fig.refund_total = Some(refunds);
        fig.fees = Some(fees);
        fig.fees_returned = Some(back);
        fig.net = format!(
            "{}",
            sales.value() - refunds.value() - fees.value() + back.value()
        );
        (
            SettlementTotals {
                domestic: dom,
                foreign,
            },
            fig,
        )
    }

    fn build_settlement(&mut self) -> Option<(Message, Option<u64>)> {
        let stan = self.next_stan();
        let (totals, _) = self.batch_totals();
        let i = builder::SettlementInput {
            tid: self.cfg.profile.terminal_id.clone(),
            mid: self.cfg.profile.merchant_id.clone(),
            stan,
            batch: self.j.counters.batch,
            local: self.local_now(),
            gmt: None,
            currency: self.cfg.profile.currency.numeric(),
            totals,
            operator: None,
            header: self.header(),
        };
        builder::settlement(&self.cfg.dialect, &i)
            .ok()
            .map(|m| (m, None))
    }

    fn build_upload(&mut self, remaining: &[u64], count: u32) -> Option<(Message, Option<u64>)> {
        let (&first, rest) = remaining.split_first()?;
        let t = self.j.txn(first)?.clone();
        let local = t.at.to_local(self.cfg.profile.time_zone);
        let r = builder::UploadRecord {
            tid: self.cfg.profile.terminal_id.clone(),
            mid: self.cfg.profile.merchant_id.clone(),
            batch: t.batch,
            stan: t.stan,
            // The journal keeps no full PAN: records are identified by STAN.
            pan: None,
            processing_code: if t.kind == TxnType::Refund {
                "200000".into()
            } else {
                "000000".into()
            },
            amount_minor: t.amount.minor(),
            currency: t.currency().numeric(),
            date_mmdd: local.format("%m%d").to_string(),
            time_hhmmss: local.format("%H%M%S").to_string(),
            rrn: t.rrn.clone(),
            auth_code: t.auth_code.clone(),
            entry_mode: format!("{}2", t.entry_mode.pan_entry_digits()),
            type_code: if t.kind == TxnType::Refund { 25 } else { 22 },
            header: self.header(),
        };
        // Queue the rest after this one.
        self.host.jobs.push_front(if rest.is_empty() {
            Job::UploadEnd { count: count + 1 }
        } else {
            Job::Upload {
                remaining: rest.to_vec(),
                count: count + 1,
            }
        });
        builder::batch_upload(&self.cfg.dialect, &r)
            .ok()
            .map(|m| (m, None))
    }

    fn build_upload_end(&mut self, count: u32) -> Option<(Message, Option<u64>)> {
        let stan = self.next_stan();
        let e = builder::UploadEnd {
            tid: self.cfg.profile.terminal_id.clone(),
            mid: self.cfg.profile.merchant_id.clone(),
            stan,
            batch: self.j.counters.batch,
            count,
            header: self.header(),
        };
        builder::batch_upload_end(&self.cfg.dialect, &e)
            .ok()
            .map(|m| (m, None))
    }

    // ---- what comes back ----

    pub(super) fn on_host_bytes(&mut self, bytes: &[u8]) {
        self.host.rx.extend_from_slice(bytes);
        loop {
            match self.host.framing.decode(&mut self.host.rx) {
                Ok(Some(frame)) => self.on_host_frame(&frame),
                Ok(None) => break,
                Err(_) => {
                    // A stream we cannot frame: drop it; what was in flight is unknown.
                    self.host.rx.clear();
                    if self.host.inflight.is_some() {
                        self.unknown_outcome(Unknown::BadReply);
                    }
                    break;
                }
            }
        }
    }

    fn on_host_frame(&mut self, frame: &[u8]) {
        let Some(inflight) = self.host.inflight.as_ref() else {
            // A reply twice, or a late one: processed once, the rest ignored.
            return;
        };
        let Ok(reply) = MessageRef::decode(&self.cfg.dialect, frame) else {
            self.unknown_outcome(Unknown::BadReply);
            return;
        };
        if builder::match_response(&inflight.request, &reply).is_err() {
            self.unknown_outcome(Unknown::BadReply);
            return;
        }
        let code = reply
            .field_str(39)
            .map(|c| c.to_string())
            .unwrap_or_default();
        let is_sign_on = inflight.job == Job::SignOn;
        if self.cfg.profile.mac == MacMode::X919
            && self.cfg.profile.check_response_mac
            && !is_sign_on
            && code != "A0"
        {
            let ok = self
                .j
                .session
                .mac_key
                .as_ref()
                .and_then(|k| <[u8; 16]>::try_from(k.as_slice()).ok())
                .is_some_and(|k| {
                    mac::verify(&self.cfg.dialect, &reply, &DoubleKey::new(k)).is_ok()
                });
            if !ok {
                self.unknown_outcome(Unknown::BadMac);
                return;
            }
        }
        let Some(inflight) = self.host.inflight.take() else {
            return;
        };
        let fee = FeeInfo::from_message(&self.cfg.dialect, &reply).and_then(Result::ok);
        // A decline echoes the request's 37, which on a refund or void is the original's RRN:
        // kept as this record's RRN it would shadow the original when the refund is retried.
        let rrn = reply
            .field_str(37)
            .map(|s| s.to_string())
            .filter(|r| code == "00" || inflight.request.get_str(37) != Some(r.as_str()));
        let auth = reply
            .field_str(38)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let f62 = reply.field_bytes(62).map(<[u8]>::to_vec);
        let f48 = reply.field_str(48).map(|s| s.to_string());
        // A reply that only echoes the 37 we sent (a refund's original RRN) assigned none.
        let assigned = rrn
            .clone()
            .filter(|r| inflight.request.get_str(37) != Some(r.as_str()));
        match inflight.job {
            Job::SignOn => self.sign_on_reply(&code, f62),
            Job::Txn => self.txn_reply(inflight.txn_id, &code, rrn, assigned, auth, fee),
            Job::Pending { txn_id, .. } => self.pending_reply(txn_id, &code, rrn, auth, fee),
            Job::Settle => self.settle_reply(&code, f48),
            Job::Upload { .. } => {}
            Job::UploadEnd { .. } => self.close_batch(false, true),
        }
        self.pump_host();
    }

    fn sign_on_reply(&mut self, code: &str, f62: Option<Vec<u8>>) {
        let keys = f62.and_then(|k| WorkingKeys::from_field62(&self.cfg.tmk, &k).ok());
        if code == "00" && (keys.is_some() || self.cfg.profile.mac == MacMode::None) {
            let s = Session {
                signed_on: Some(self.today().to_string()),
                mac_key: keys.as_ref().map(|k| k.mac.expose().to_vec()),
                pin_key: keys.as_ref().map(|k| k.pin.expose().to_vec()),
                resign_required: false,
            };
            self.journal_op(JournalOp::SetSession(s));
            if self.flow().is_some_and(|f| f.kind == FlowKind::SignOn) {
                self.beep(Tone::Success);
                let slip = receipt::notice(&self.cfg.profile, "签到成功", "SIGNED ON", self.now);
                let source = self.flow().map(|f| f.source).unwrap_or(Source::Keypad);
                self.print_slip(&slip, source);
                self.activity = Activity::Result {
                    lines: vec![self.t("签到成功", "SIGNED ON")],
                };
                if source == Source::Ecr {
                    self.ecr_done();
                }
            }
        } else {
            self.sign_on_failed(code);
        }
    }

    fn sign_on_failed(&mut self, code: &str) {
        self.host.jobs.clear();
        if self.flow().is_some() {
            let r = if self.flow().is_some_and(|f| f.kind == FlowKind::SignOn) && !code.is_empty() {
                Refusal::Host(code.to_string())
            } else {
                Refusal::SignOn
            };
            self.finish_refused(r);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn txn_reply(
        &mut self,
        txn_id: Option<u64>,
        code: &str,
        rrn: Option<String>,
        assigned_rrn: Option<String>,
        auth: Option<String>,
        fee: Option<FeeInfo>,
    ) {
        let Some(id) = txn_id else { return };
        let Some(mut t) = self.j.txn(id).cloned() else {
            return;
        };
        t.response_code = Some(code.to_string());
        if code == "00" {
            self.approve(&mut t, rrn, auth, fee);
            self.journal_op(JournalOp::PutTxn(Box::new(t)));
            self.journal_op(JournalOp::DeletePending { txn_id: id });
            self.finish_approved(id);
        } else {
            t.outcome = Outcome::Declined(code.to_string());
            // Never the original's RRN echoed back: the declined refund would then be found
            // (and refused as R-NOTSALE) instead of its sale when the refund is tried again.
            t.rrn = assigned_rrn;
            self.journal_op(JournalOp::PutTxn(Box::new(t)));
            self.journal_op(JournalOp::DeletePending { txn_id: id });
            if code == "A0" || code == "99" {
                // The host rejected our MAC (or PIN format): sign on again first.
                let mut s = self.j.session.clone();
                s.resign_required = true;
                self.journal_op(JournalOp::SetSession(s));
            }
            self.finish_refused(Refusal::Host(code.to_string()));
        }
    }

    fn approve(
        &mut self,
        t: &mut TxnRecord,
        rrn: Option<String>,
        auth: Option<String>,
        fee: Option<FeeInfo>,
    ) {
        t.outcome = Outcome::Approved;
        t.rrn = rrn;
        t.auth_code = auth;
        if let Some(f) = fee {
            let cur = t.currency();
            let fee_minor = if t.kind == TxnType::Refund {
                f.returned_fee
            } else {
                f.fee
            };
            t.fee = Some(Money::from_minor(fee_minor, cur));
            t.net = Some(Money::from_minor(f.net, cur));
        }
        // A void takes its sale out of the batch.
        if t.kind == TxnType::Void
            && let Some(mut o) = t.original_id.and_then(|id| self.j.txn(id)).cloned()
        {
            o.outcome = Outcome::Voided;
            self.journal_op(JournalOp::PutTxn(Box::new(o)));
        }
    }

    fn pending_reply(
        &mut self,
        txn_id: u64,
        code: &str,
        rrn: Option<String>,
        auth: Option<String>,
        fee: Option<FeeInfo>,
    ) {
        let Some(p) = self.j.pending.iter().find(|p| p.txn_id == txn_id).cloned() else {
            return;
        };
        let Some(mut t) = self.j.txn(txn_id).cloned() else {
            self.journal_op(JournalOp::DeletePending { txn_id });
            return;
        };
        match p.kind {
            PendingKind::Advice => {
                // A 0230 with 00 — or 94 to a resent advice — means the refund is approved.
                if code == "00" || (code == "94" && p.tries > 1) {
                    self.approve(&mut t, rrn, auth, fee);
                } else {
                    t.outcome = Outcome::Declined(code.to_string());
                }
                t.response_code = Some(code.to_string());
                self.journal_op(JournalOp::PutTxn(Box::new(t)));
                self.journal_op(JournalOp::DeletePending { txn_id });
                self.pending_resolved(txn_id, true);
            }
            PendingKind::Reversal => {
                if code == "00" || code == "25" {
                    // 25: the host has nothing to reverse — the request never arrived.
                    if t.outcome == Outcome::Approved {
                        // An approved sale auto-reversed after the ECR refused its result.
                        if let Some(mut o) = t.original_id.and_then(|id| self.j.txn(id)).cloned()
                            && t.kind == TxnType::Void
                        {
                            o.outcome = Outcome::Approved;
                            self.journal_op(JournalOp::PutTxn(Box::new(o)));
                        }
                    }
                    t.outcome = Outcome::Reversed;
                    self.journal_op(JournalOp::PutTxn(Box::new(t)));
                    self.journal_op(JournalOp::DeletePending { txn_id });
                    self.pending_resolved(txn_id, true);
                } else {
                    self.pending_failed(txn_id);
                }
            }
        }
    }

    /// A pending record was resolved; if it was the one the current flow is waiting on (an
    /// immediate reversal after an unknown outcome), the flow ends.
    fn pending_resolved(&mut self, txn_id: u64, _ok: bool) {
        let own = self
            .flow()
            .is_some_and(|f| f.txn_id == Some(txn_id) && f.step == Step::Processing);
        if own {
            self.host
                .jobs
                .retain(|j| !matches!(j, Job::Pending { txn_id: t, .. } if *t == txn_id));
            match self.j.txn(txn_id).map(|t| t.outcome.clone()) {
                Some(Outcome::Approved) => self.finish_approved(txn_id),
                Some(Outcome::Declined(c)) => self.finish_refused(Refusal::Host(c)),
                _ => self.finish_refused(Refusal::NoReply),
            }
        }
    }

    fn pending_failed(&mut self, txn_id: u64) {
        let own = self
            .flow()
            .is_some_and(|f| f.txn_id == Some(txn_id) && f.step == Step::Processing);
        if own && self.host.immediate_left > 0 {
            self.host.immediate_left -= 1;
            self.host.jobs.push_front(Job::Pending {
                txn_id,
                immediate: true,
            });
            self.ecr_intermediate(0x05);
            return;
        }
        // The record stays: retried before every later online message. What was queued
        // behind it cannot go (R-REVPENDING).
        self.host.jobs.clear();
        if own {
            self.finish_refused(Refusal::NoReply);
        } else if self.flow().is_some_and(|f| f.step == Step::Processing) {
            self.finish_refused(Refusal::ReversalPending);
        }
    }

    fn settle_reply(&mut self, code: &str, f48: Option<String>) {
        if code != "00" {
            self.settlement_failed(Refusal::Host(code.to_string()));
            return;
        }
        let balanced = f48
            .and_then(|s| SettlementTotals::parse(&s).ok())
            .is_none_or(|t| t.is_balanced());
        if balanced {
            self.close_batch(true, false);
        } else {
            // Unbalanced: upload every approved transaction of the batch, then close it.
            let batch = self.j.counters.batch;
            let ids: Vec<u64> = self
                .j
                .txns
                .iter()
                .filter(|t| {
                    t.batch == batch
                        && !t.settled
                        && t.outcome == Outcome::Approved
                        && t.kind != TxnType::Void
                })
                .map(|t| t.id)
                .collect();
            self.host.settle_balanced = Some(false);
            if ids.is_empty() {
                self.host.jobs.push_front(Job::UploadEnd { count: 0 });
            } else {
                self.host.jobs.push_front(Job::Upload {
                    remaining: ids,
                    count: 0,
                });
            }
        }
    }

    fn close_batch(&mut self, balanced: bool, uploaded: bool) {
        let (_, mut fig) = self.batch_totals();
        fig.balanced = balanced;
        if uploaded {
            fig.uploaded = Some(fig.sale_count + fig.refund_count);
        }
        let batch = self.j.counters.batch;
        self.journal_op(JournalOp::CloseBatch { batch });
        let mut c = self.j.counters.clone();
        c.batch = if batch >= 999_999 { 1 } else { batch + 1 };
        self.journal_op(JournalOp::SetCounters(c));
        self.host.settle_balanced = None;
        let slip = receipt::settlement(&self.cfg.profile, &fig, self.now);
        let source = self.flow().map(|f| f.source).unwrap_or(Source::Keypad);
        self.print_slip(&slip, source);
        self.beep(Tone::Success);
        self.activity = Activity::Result {
            lines: vec![self.t("结算成功", "SETTLEMENT DONE")],
        };
        if source == Source::Ecr {
            self.ecr_done();
        }
    }

    fn settlement_failed(&mut self, r: Refusal) {
        self.host.jobs.clear();
        self.host.settle_balanced = None;
        self.finish_refused(r);
    }

    /// No valid answer to what is in flight.
    fn unknown_outcome(&mut self, why: Unknown) {
        let Some(inflight) = self.host.inflight.take() else {
            return;
        };
        match inflight.job {
            Job::SignOn => self.sign_on_failed(""),
            Job::Txn => {
                let Some(id) = inflight.txn_id else { return };
                let Some(p) = self.j.pending.iter().find(|p| p.txn_id == id).cloned() else {
                    return;
                };
                let mut p2 = p.clone();
                p2.reason = why.reason().code().to_string();
                p2.tries += 1; // the request itself was the first send of an advice
                let advice = p.kind == PendingKind::Advice;
                if advice {
                    self.journal_op(JournalOp::pending(p2));
                    self.host.jobs.clear();
                    self.finish_refused(Refusal::NoReply);
                } else {
                    p2.tries = 0;
                    self.journal_op(JournalOp::pending(p2));
                    // Immediate reversal tries, shown to the ECR as 04 FF 05.
                    self.host.immediate_left =
                        self.cfg.profile.host.reversal_retries.saturating_sub(1);
                    self.host.jobs.clear();
                    self.host.jobs.push_back(Job::Pending {
                        txn_id: id,
                        immediate: true,
                    });
                    self.ecr_intermediate(0x05);
                }
            }
            Job::Pending { txn_id, .. } => {
                if let Some(mut p) = self.j.pending.iter().find(|p| p.txn_id == txn_id).cloned()
                    && why == Unknown::Timeout
                    && p.kind == PendingKind::Reversal
                {
                    p.reason = "98".into();
                    self.journal_op(JournalOp::pending(p));
                }
                self.pending_failed(txn_id);
            }
            Job::Settle | Job::Upload { .. } | Job::UploadEnd { .. } => {
                self.settlement_failed(Refusal::NoReply)
            }
        }
        self.pump_host();
    }

    pub(super) fn on_host_timeout(&mut self) {
        self.unknown_outcome(Unknown::Timeout);
    }

    pub(super) fn on_host_closed(&mut self) {
        self.host.rx.clear();
        if self.host.inflight.is_some() {
            self.unknown_outcome(Unknown::Broken);
        }
    }

    /// Nothing left: the outcome is known — not sent.
    pub(super) fn on_host_send_failed(&mut self) {
        let Some(inflight) = self.host.inflight.take() else {
            return;
        };
        self.job_failed_not_sent(&inflight.job, inflight.txn_id);
        self.pump_host();
    }

    /// A request that could not even be built (a journal record that no longer restores, an
    /// amount the dialect cannot carry): nothing leaves, and whatever waited on it ends, so the
    /// terminal never sits on PROCESSING with nothing in flight.
    fn job_not_built(&mut self, job: &Job) {
        match job {
            Job::Pending { .. } => {
                // The record stays (it cannot be resolved by retrying); like an unanswered
                // reversal, it blocks what comes after it.
                self.host.jobs.clear();
                if self.flow().is_some_and(|f| f.step == Step::Processing) {
                    self.finish_refused(Refusal::ReversalPending);
                }
            }
            Job::Txn => {
                self.host.jobs.clear();
                if self.flow().is_some_and(|f| f.step == Step::Processing) {
                    self.finish_refused(Refusal::CommsFailed);
                }
            }
            _ => self.job_failed_not_sent(job, None),
        }
    }

    fn job_failed_not_sent(&mut self, job: &Job, txn_id: Option<u64>) {
        match job {
            Job::Txn => {
                if let Some(id) = txn_id {
                    // Not sent: the record says so, then the reversal record (or advice) goes
                    // — in that order, so a cut between never leaves an `Unknown` row alone.
                    if let Some(mut t) = self.j.txn(id).cloned() {
                        t.outcome = Outcome::NotSent;
                        self.journal_op(JournalOp::PutTxn(Box::new(t)));
                    }
                    self.journal_op(JournalOp::DeletePending { txn_id: id });
                }
                self.host.jobs.clear();
                let older_waits = !self.j.pending.is_empty();
                self.finish_refused(if older_waits {
                    Refusal::ReversalPending
                } else {
                    Refusal::CommsFailed
                });
            }
            Job::Pending { txn_id, .. } => {
                // The pending record was not sent this time: it stays; the tries count only sends.
                if let Some(mut p) = self.j.pending.iter().find(|p| p.txn_id == *txn_id).cloned() {
                    p.tries = p.tries.saturating_sub(1);
                    self.journal_op(JournalOp::pending(p));
                }
                self.host.jobs.clear();
                if self.flow().is_some_and(|f| f.step == Step::Processing) {
                    let own = self.flow().is_some_and(|f| f.txn_id == Some(*txn_id));
                    self.finish_refused(if own {
                        Refusal::NoReply
                    } else {
                        Refusal::ReversalPending
                    });
                }
            }
            Job::SignOn => {
                self.host.jobs.clear();
                if self.flow().is_some() {
                    let r = if self.flow().is_some_and(|f| f.kind == FlowKind::SignOn) {
                        Refusal::CommsFailed
                    } else {
                        Refusal::SignOn
                    };
                    self.finish_refused(r);
                }
            }
            Job::Settle | Job::Upload { .. } | Job::UploadEnd { .. } => {
                self.settlement_failed(Refusal::CommsFailed)
            }
        }
    }

    /// After the ECR refused (or never acknowledged) the result of an approved transaction:
    /// reverse it (iso87 and CUP sales/voids); a CUP refund stands, flagged "ECR not informed".
    pub(super) fn auto_reverse(&mut self, txn_id: u64) -> bool {
        let Some(mut t) = self.j.txn(txn_id).cloned() else {
            return false;
        };
        if t.outcome != Outcome::Approved {
            return false;
        }
        t.ecr_informed = false;
        if !self.reversible(&t) {
            self.journal_op(JournalOp::PutTxn(Box::new(t)));
            return false;
        }
        let Some(record) = self.reversal_record(&t, ReversalReason::TerminalFault) else {
            return false;
        };
        self.journal_op(JournalOp::pending_with_txn(record, t));
        self.host.jobs.push_back(Job::Pending {
            txn_id,
            immediate: true,
        });
        self.pump_host();
        true
    }

    /// Whether an approved transaction the ECR never acknowledged is reversed: not a CUP refund
    /// (an advice stands, flagged), not one of a settled batch (the host no longer reverses it).
    fn reversible(&self, t: &TxnRecord) -> bool {
        let cup_refund = self.family() == DialectFamily::Cup && t.kind == TxnType::Refund;
        !cup_refund && !t.settled
    }

    /// A reversal record for `t`, its request rebuilt from the journal (the reversal needs the
    /// original's fields; no PAN: a reversal is matched by terminal, STAN, batch and amount).
    fn reversal_record(&self, t: &TxnRecord, reason: ReversalReason) -> Option<PendingRecord> {
        let request = self.rebuild_request(t)?;
        Some(PendingRecord {
            txn_id: t.id,
            kind: PendingKind::Reversal,
            reason: reason.code().to_string(),
            tries: 0,
            pan_encrypted: Vec::new(),
            request: store(&request),
        })
    }

    /// At power-on, before the pending records are queued: what the journal left open without
    /// a record to resolve it gets one.
    /// - An `Unknown` row with no reversal record or advice (a journal written before the two
    ///   were one commit, killed between them): its request never left, since the record is
    ///   committed first. A reversal record makes sure (the host answers 25 if it never saw it)
    ///   — except for a CUP refund, whose advice cannot be rebuilt without the PAN and is never
    ///   reversed: it was not sent.
    /// - An approved row the ECR never acknowledged (the power went between the commit of the
    ///   approval and the ECR's ACK of the 04 0F): reversed as an unacknowledged result is.
    fn resolve_open_rows(&mut self) {
        let open: Vec<TxnRecord> = self
            .j
            .txns
            .iter()
            .filter(|t| !t.settled && !self.j.pending.iter().any(|p| p.txn_id == t.id))
            .filter(|t| {
                t.outcome == Outcome::Unknown || (t.outcome == Outcome::Approved && !t.ecr_informed)
            })
            .cloned()
            .collect();
        for mut t in open {
            if t.outcome == Outcome::Unknown {
                if self.family() == DialectFamily::Cup && t.kind == TxnType::Refund {
                    t.outcome = Outcome::NotSent;
                    self.journal_op(JournalOp::PutTxn(Box::new(t)));
                } else if let Some(r) = self.reversal_record(&t, ReversalReason::Other) {
                    self.journal_op(JournalOp::pending(r));
                }
            } else if self.reversible(&t)
                && let Some(r) = self.reversal_record(&t, ReversalReason::TerminalFault)
            {
                self.journal_op(JournalOp::pending(r));
            }
        }
    }

    /// The request of an approved transaction, from its record (no PAN: a reversal is matched
    /// by terminal, STAN, batch and amount).
    fn rebuild_request(&self, t: &TxnRecord) -> Option<Message> {
        let mut m = Message::new(Mti::new(
            if self.family() == DialectFamily::Iso87 && t.kind == TxnType::Void {
                420
            } else if self.family() == DialectFamily::Cup && t.kind == TxnType::Refund {
                220
            } else {
                200
            },
        )?);
        m.header = self.header();
        m.set(
            3,
            if t.kind == TxnType::Sale {
                "000000"
            } else {
                "200000"
            },
        );
        m.set_num(4, t.amount.minor(), 12);
        m.set_num(11, t.stan as u64, 6);
        m.set(22, format!("{}2", t.entry_mode.pan_entry_digits()));
        m.set(25, "00");
        m.set(41, &self.cfg.profile.terminal_id);
        m.set(42, &self.cfg.profile.merchant_id);
        m.set_num(49, t.currency().numeric() as u64, 3);
        match self.family() {
            DialectFamily::Cup => {
                let type_code = match t.kind {
                    TxnType::Sale => 22,
                    TxnType::Void => 23,
                    TxnType::Refund => 25,
                };
                let f60 = protocol::iso8583::subfield::Field60::new(type_code, t.batch, 0)
                    .to_digits()
                    .ok()?;
                m.set(60, f60);
            }
            DialectFamily::Iso87 => {
                let local = t.at.to_local(self.cfg.profile.time_zone);
                m.set(12, local.format("%H%M%S").to_string());
                m.set(13, local.format("%m%d").to_string());
                m.set_num(60, t.batch as u64, 6);
            }
        }
        Some(m)
    }
}

/// What the journal keeps of a request: never the PAN, track data, PIN block, ICC data or MAC.
fn store(m: &Message) -> StoredRequest {
    StoredRequest {
        mti: m.mti.value(),
        header: m.header.clone(),
        fields: m
            .fields()
            .filter(|(n, _)| ![2, 35, 36, 45, 52, 55, 64, 128].contains(n))
            .map(|(n, v)| (n, String::from_utf8_lossy(v).into_owned()))
            .collect(),
    }
}

fn restore(s: &StoredRequest) -> Option<Message> {
    let mut m = Message::new(Mti::new(s.mti)?);
    m.header = s.header.clone();
    for (n, v) in &s.fields {
        m.set(*n, v);
    }
    Some(m)
}
