//! What each transaction carries, per dialect family. This is code, not data: the dialect file
//! says how fields look on the wire; here we say which fields a sale, void, refund, reversal,
//! sign-on, settlement or batch upload carries and with what values.
//!
//! | transaction | `cup` | `iso87` |
//! |---|---|---|
//! | sign-on | 0800, 60 = 00 + batch + 001/003 (single/double-length keys), 63 operator | 0800, 70 = 001 |
//! | sale | 0200, 3 = 000000, 25 = 00, 60.1 = 22 | 0200, 3 = 000000, 7/12/13 |
//! | void | 0200, 3 = 200000, 60.1 = 23, 37/38 original, 61 = batch + trace | 0420 reversal advice, 39 = 17, 90 |
//! | refund | 0220 advice, 2 + 14 only (never 35/52/55), 3 = 200000, 60.1 = 25, 37, 61.1–61.3 | 0200, 3 = 200000, 37 original |
//! | reversal | 0400, original STAN and fields, 39 = reason, 60.1 = original's | 0400 (repeat 0401), 39 = reason, 90 |
//! | settlement | 0500, 48 totals, 60 = 00 + batch + 201 | 0500, 48 totals, 60 = batch |
//! | batch upload | 0320, 60.1 = original type, 60.3 = 201; end: 48 = count, 60.3 = 202 | 0320, 60 = batch; end: 48 = count, no 2/3/4 |
//! | advice repeat | the same 0220 again | 0221 (0421, 0401) |
//! | response | MTI + 10, echo, 37/38 assigned, 39; TPDU swapped | MTI + 10, echo, 37/38, 39 |
//!
//! CUP requests carry no 12/13 (the host returns them); iso87 requests carry 12/13 local time
//! and 7 in GMT when given. Batch-upload and iso87 settlement layouts are posrig's choices
//! (UNVERIFIED against any host).

use chrono::NaiveDateTime;

use super::dialect::{Dialect, DialectFamily};
use super::message::{FieldSource, Message, Mti};
use super::subfield::{FeeInfo, Field60, Field61, Field90, SettlementTotals, SubfieldError};
use crate::card::Pan;

/// Card data for a request. Debug never shows PAN, tracks or PIN block.
#[derive(Clone, Default)]
pub struct CardData {
    pub pan: Option<Pan>,
    /// `YYMM`.
    pub expiry: Option<String>,
    /// Digits and `=`.
    pub track2: Option<String>,
    pub track3: Option<String>,
    /// Field 22, e.g. `021` (swipe, PIN) or `051` (chip).
    pub entry_mode: String,
    /// Field 23 (IC card sequence number), 3 digits.
    pub card_seq: Option<String>,
    pub pin_block: Option<[u8; 8]>,
    /// Field 55 (EMV TLV).
    pub icc_data: Option<Vec<u8>>,
    /// CUP 60.4 (5 IC, 6 IC + contactless).
    pub read_capability: Option<u8>,
    /// CUP 60.5 (0/1/2; 2 = fallback swipe).
    pub ic_condition: Option<u8>,
}

impl std::fmt::Debug for CardData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardData")
            .field("pan", &self.pan)
            .field("expiry", &self.expiry.as_ref().map(|_| "****"))
            .field("track2", &self.track2.as_ref().map(|_| "<hidden>"))
            .field("track3", &self.track3.as_ref().map(|_| "<hidden>"))
            .field("entry_mode", &self.entry_mode)
            .field("card_seq", &self.card_seq)
            .field("pin_block", &self.pin_block.map(|_| "<hidden>"))
            .field("icc_data", &self.icc_data.as_ref().map(|v| v.len()))
            .finish()
    }
}

/// Inputs common to financial requests.
#[derive(Debug, Clone, Default)]
pub struct TxnInput {
    pub tid: String,
    pub mid: String,
    pub stan: u32,
    pub batch: u32,
    pub amount_minor: u64,
    /// ISO 4217 numeric (156 CNY).
    pub currency: u16,
    /// Terminal local time (fields 12/13 where the family sends them).
    pub local: NaiveDateTime,
    /// GMT transmission time (iso87 field 7), if the terminal sends it.
    pub gmt: Option<NaiveDateTime>,
    pub card: CardData,
    /// TPDU + header; `None` uses the dialect's default.
    pub header: Option<Vec<u8>>,
    /// CUP 63.1 operator code (3 characters).
    pub operator: Option<String>,
    /// iso87 field 32.
    pub acquirer_id: Option<String>,
}

/// What a void, refund or reversal says about the original transaction.
#[derive(Debug, Clone, Default)]
pub struct OriginalTxn {
    /// Default 0200.
    pub mti: Option<Mti>,
    /// Default 000000.
    pub processing_code: Option<String>,
    /// Original STAN (field 11); unknown after settlement when only RRN + date were typed.
    pub stan: Option<u32>,
    /// Original batch (CUP 60.2).
    pub batch: Option<u32>,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    /// Original local date `MMDD` (field 13).
    pub date_mmdd: Option<String>,
    /// Original field 7 `MMDDhhmmss` (iso87 90.3).
    pub transmission: Option<String>,
    pub acquirer_id: Option<String>,
    pub forwarding_id: Option<String>,
    pub amount_minor: u64,
}

#[derive(Debug, Clone)]
pub struct SignOnInput {
    pub tid: String,
    pub mid: String,
    pub stan: u32,
    pub batch: u32,
    pub local: NaiveDateTime,
    pub gmt: Option<NaiveDateTime>,
    /// CUP 60.3 = 003 (double-length keys) rather than 001.
    pub double_length_keys: bool,
    pub operator: Option<String>,
    pub header: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct SettlementInput {
    pub tid: String,
    pub mid: String,
    pub stan: u32,
    pub batch: u32,
    pub local: NaiveDateTime,
    pub gmt: Option<NaiveDateTime>,
    pub currency: u16,
    pub totals: SettlementTotals,
    pub operator: Option<String>,
    pub header: Option<Vec<u8>>,
}

/// One approved transaction of the batch, for a 0320 upload.
#[derive(Debug, Clone)]
pub struct UploadRecord {
    pub tid: String,
    pub mid: String,
    pub batch: u32,
    /// The transaction's own STAN (identifies the record).
    pub stan: u32,
    pub pan: Option<Pan>,
    pub processing_code: String,
    pub amount_minor: u64,
    pub currency: u16,
    pub date_mmdd: String,
    pub time_hhmmss: String,
    pub rrn: Option<String>,
    pub auth_code: Option<String>,
    pub entry_mode: String,
    /// CUP 60.1 of the transaction (22 sale, 25 refund…).
    pub type_code: u8,
    pub header: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct UploadEnd {
    pub tid: String,
    pub mid: String,
    pub stan: u32,
    pub batch: u32,
    /// Records uploaded (48, n4).
    pub count: u32,
    pub header: Option<Vec<u8>>,
}

/// How the acquirer answers.
#[derive(Debug, Clone, Default)]
pub struct ReplyInput {
    /// Field 39.
    pub code: String,
    /// Field 37 assigned by the host (otherwise the request's 37, if any, is echoed).
    pub rrn: Option<String>,
    /// Field 38.
    pub auth_code: Option<String>,
    /// Host local time for 12/13.
    pub local: Option<NaiveDateTime>,
    /// Field 15 `MMDD`.
    pub settlement_date: Option<String>,
    /// Field 32.
    pub acquirer_id: Option<String>,
    /// The fee field (R-FEE).
    pub fee: Option<FeeInfo>,
}

/// Why a CUP or iso87 terminal reverses (field 39 of the 0400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReversalReason {
    /// 98: no answer within the timeout.
    NoResponse,
    /// A0: the reply's MAC failed.
    BadMac,
    /// 96: approved, but the terminal could not finish.
    TerminalFault,
    /// 06: anything else (also the reason stored before sending).
    Other,
}

impl ReversalReason {
    pub fn code(self) -> &'static str {
        match self {
            ReversalReason::NoResponse => "98",
            ReversalReason::BadMac => "A0",
            ReversalReason::TerminalFault => "96",
            ReversalReason::Other => "06",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("{txn} needs {what}")]
    Missing {
        txn: &'static str,
        what: &'static str,
    },
    #[error(transparent)]
    Subfield(#[from] SubfieldError),
    #[error("{0} is not a request or advice")]
    NotARequest(Mti),
}

fn missing(txn: &'static str, what: &'static str) -> BuildError {
    BuildError::Missing { txn, what }
}

fn mti(v: u16) -> Mti {
    Mti::new_clamped(v)
}

fn new_msg(v: u16, header: &Option<Vec<u8>>) -> Message {
    let mut m = Message::new(mti(v));
    m.header = header.clone();
    m
}

fn terminal(m: &mut Message, tid: &str, mid: &str) {
    m.set(41, tid).set(42, mid);
}

fn local_fields(
    m: &mut Message,
    family: DialectFamily,
    local: NaiveDateTime,
    gmt: Option<NaiveDateTime>,
) {
    if family == DialectFamily::Iso87 {
        if let Some(g) = gmt {
            m.set(7, g.format("%m%d%H%M%S").to_string());
        }
        m.set(12, local.format("%H%M%S").to_string());
        m.set(13, local.format("%m%d").to_string());
    }
}

/// 2, 14, 22, 23, 26, 35, 36, 52, 53, 55 as available; `present_card` false keeps only 2/14/22.
fn card_fields(
    m: &mut Message,
    c: &CardData,
    txn: &'static str,
    present_card: bool,
) -> Result<(), BuildError> {
    if c.entry_mode.is_empty() {
        return Err(missing(txn, "an entry mode (field 22)"));
    }
    if let Some(p) = &c.pan {
        m.set(2, p.expose());
    }
    if let Some(e) = &c.expiry {
        m.set(14, e);
    }
    m.set(22, &c.entry_mode);
    if !present_card {
        return Ok(());
    }
    if let Some(s) = &c.card_seq {
        m.set(23, s);
    }
    if let Some(t) = &c.track2 {
        m.set(35, t);
    }
    if let Some(t) = &c.track3 {
        m.set(36, t);
    }
    if let Some(p) = &c.pin_block {
        m.set(26, "12").set(52, p).set(53, "2600000000000000");
    }
    if let Some(i) = &c.icc_data {
        m.set(55, i);
    }
    Ok(())
}

fn cup_60(
    type_code: u8,
    batch: u32,
    network_code: u16,
    c: Option<&CardData>,
) -> Result<String, SubfieldError> {
    let mut f = Field60::new(type_code, batch, network_code);
    if let Some(c) = c {
        f.read_capability = c.read_capability;
        f.ic_condition = c.ic_condition;
    }
    f.to_digits()
}

fn amount(m: &mut Message, minor: u64, currency: u16) {
    m.set_num(4, minor, 12).set_num(49, currency as u64, 3);
}

/// Sign-on 0800.
pub fn sign_on(d: &Dialect, i: &SignOnInput) -> Result<Message, BuildError> {
    let mut m = new_msg(800, &i.header);
    m.set_num(11, i.stan as u64, 6);
    terminal(&mut m, &i.tid, &i.mid);
    match d.family {
        DialectFamily::Cup => {
            let nc = if i.double_length_keys { 3 } else { 1 };
            m.set(60, cup_60(0, i.batch, nc, None)?);
            if let Some(op) = &i.operator {
                m.set(63, op);
            }
        }
        DialectFamily::Iso87 => {
            if let Some(g) = i.gmt {
                m.set(7, g.format("%m%d%H%M%S").to_string());
            }
            m.set(70, "001");
        }
    }
    Ok(m)
}

/// Purchase 0200.
pub fn sale(d: &Dialect, i: &TxnInput) -> Result<Message, BuildError> {
    let mut m = new_msg(200, &i.header);
    card_fields(&mut m, &i.card, "a sale", true)?;
    m.set(3, "000000");
    amount(&mut m, i.amount_minor, i.currency);
    m.set_num(11, i.stan as u64, 6).set(25, "00");
    terminal(&mut m, &i.tid, &i.mid);
    local_fields(&mut m, d.family, i.local, i.gmt);
    match d.family {
        DialectFamily::Cup => {
            m.set(60, cup_60(22, i.batch, 0, Some(&i.card))?);
            if let Some(op) = &i.operator {
                m.set(63, op);
            }
        }
        DialectFamily::Iso87 => {
            if let Some(a) = &i.acquirer_id {
                m.set(32, a);
            }
            m.set_num(60, i.batch as u64, 6);
        }
    }
    Ok(m)
}

/// Void of a sale in the open batch. `cup`: 0200 / 3 = 200000 / 60.1 = 23 with the original's
/// RRN, auth code, batch and trace. `iso87`: an 0420 reversal advice (39 = 17, customer
/// cancellation) with field 90. The amount is the original's.
pub fn void(d: &Dialect, i: &TxnInput, o: &OriginalTxn) -> Result<Message, BuildError> {
    match d.family {
        DialectFamily::Cup => {
            let mut m = new_msg(200, &i.header);
            card_fields(&mut m, &i.card, "a void", true)?;
            m.set(3, "200000");
            amount(&mut m, o.amount_minor, i.currency);
            m.set_num(11, i.stan as u64, 6).set(25, "00");
            m.set(
                37,
                o.rrn
                    .as_deref()
                    .ok_or(missing("a CUP void", "the original RRN"))?,
            );
            if let Some(a) = &o.auth_code {
                m.set(38, a);
            }
            terminal(&mut m, &i.tid, &i.mid);
            m.set(60, cup_60(23, i.batch, 0, Some(&i.card))?);
            let f61 = Field61 {
                orig_batch: o.batch.unwrap_or(i.batch),
                orig_stan: o.stan.ok_or(missing("a CUP void", "the original STAN"))?,
                ..Field61::default()
            };
            m.set(61, f61.to_digits()?);
            if let Some(op) = &i.operator {
                m.set(63, op);
            }
            Ok(m)
        }
        DialectFamily::Iso87 => {
            let mut m = new_msg(420, &i.header);
            card_fields(&mut m, &i.card, "a void", false)?;
            m.set(3, o.processing_code.as_deref().unwrap_or("000000"));
            amount(&mut m, o.amount_minor, i.currency);
            m.set_num(11, i.stan as u64, 6).set(25, "00");
            local_fields(&mut m, d.family, i.local, i.gmt);
            if let Some(r) = &o.rrn {
                m.set(37, r);
            }
            if let Some(a) = &o.auth_code {
                m.set(38, a);
            }
            m.set(39, "17");
            terminal(&mut m, &i.tid, &i.mid);
            m.set_num(60, i.batch as u64, 6);
            m.set(90, field90(o, "an iso87 void")?);
            Ok(m)
        }
    }
}

fn field90(o: &OriginalTxn, txn: &'static str) -> Result<String, BuildError> {
    Ok(Field90 {
        orig_mti: o.mti.unwrap_or(mti(200)),
        orig_stan: o.stan.ok_or(missing(txn, "the original STAN"))?,
        orig_transmission: o.transmission.clone().unwrap_or_else(|| "0".repeat(10)),
        acquirer_id: o.acquirer_id.clone().unwrap_or_default(),
        forwarding_id: o.forwarding_id.clone().unwrap_or_default(),
    }
    .to_digits()?)
}

/// Refund. `cup`: 0220 advice with 2 + 14 (never 35/52/55), 3 = 200000, 60.1 = 25, 37 and
/// 61.1–61.3 (unknown original batch/trace as zeros). `iso87`: online 0200 with 3 = 200000.
pub fn refund(d: &Dialect, i: &TxnInput, o: &OriginalTxn) -> Result<Message, BuildError> {
    match d.family {
        DialectFamily::Cup => {
            let mut m = new_msg(220, &i.header);
            if i.card.pan.is_none() {
                return Err(missing("a CUP refund advice", "the PAN (field 2)"));
            }
            card_fields(&mut m, &i.card, "a refund", false)?;
            m.set(3, "200000");
            amount(&mut m, i.amount_minor, i.currency);
            m.set_num(11, i.stan as u64, 6).set(25, "00");
            if let Some(r) = &o.rrn {
                m.set(37, r);
            }
            terminal(&mut m, &i.tid, &i.mid);
            m.set(60, cup_60(25, i.batch, 0, Some(&i.card))?);
            let f61 = Field61 {
                orig_batch: o.batch.unwrap_or(0),
                orig_stan: o.stan.unwrap_or(0),
                orig_date: Some(
                    o.date_mmdd
                        .clone()
                        .ok_or(missing("a CUP refund", "the original date"))?,
                ),
                ..Field61::default()
            };
            m.set(61, f61.to_digits()?);
            if let Some(op) = &i.operator {
                m.set(63, op);
            }
            Ok(m)
        }
        DialectFamily::Iso87 => {
            let mut m = new_msg(200, &i.header);
            card_fields(&mut m, &i.card, "a refund", true)?;
            m.set(3, "200000");
            amount(&mut m, i.amount_minor, i.currency);
            m.set_num(11, i.stan as u64, 6).set(25, "00");
            local_fields(&mut m, d.family, i.local, i.gmt);
            if let Some(a) = &i.acquirer_id {
                m.set(32, a);
            }
            if let Some(r) = &o.rrn {
                m.set(37, r);
            }
            terminal(&mut m, &i.tid, &i.mid);
            m.set_num(60, i.batch as u64, 6);
            Ok(m)
        }
    }
}

/// PAN and expiry from track 2 (`PAN=YYMM…`), for messages that must not carry the track.
fn pan_from_track(m: &mut Message) {
    let Some(t) = m.get_str(35).map(str::to_string) else {
        return;
    };
    if let Some((pan, rest)) = t.split_once('=') {
        if !m.has(2) {
            m.set(2, pan);
        }
        if !m.has(14)
            && let Some(exp) = rest.get(..4)
        {
            m.set(14, exp);
        }
    }
}

/// Reversal 0400 of a request that was sent. `cup`: the original's STAN, amount, 3, 25, 60
/// (so 60.1 is the original's), 61 and 55 if it had them; 38 if an auth code was received;
/// 39 = reason. `iso87`: the same plus field 90 built from the original's MTI, 11, 7, 32 and 33.
/// Track 2, PIN block and PIN data are never copied; PAN and expiry come from track 2 if the
/// original had no field 2.
pub fn reversal(
    d: &Dialect,
    original: &Message,
    reason: ReversalReason,
    auth_code: Option<&str>,
) -> Result<Message, BuildError> {
    let mut m = Message::new(mti(400));
    m.header = original.header.clone();
    let copy: &[u8] = match d.family {
        DialectFamily::Cup => &[2, 3, 4, 11, 14, 22, 23, 25, 41, 42, 49, 55, 60, 61, 63],
        DialectFamily::Iso87 => &[
            2, 3, 4, 7, 11, 12, 13, 14, 22, 23, 25, 32, 41, 42, 49, 55, 60,
        ],
    };
    for &n in copy {
        if let Some(v) = original.get(n) {
            m.set(n, v);
        }
    }
    if let Some(t) = original.get(35) {
        let mut tmp = Message::new(original.mti);
        tmp.set(35, t);
        if let Some(p) = original.get(2) {
            tmp.set(2, p);
        }
        if let Some(e) = original.get(14) {
            tmp.set(14, e);
        }
        pan_from_track(&mut tmp);
        for n in [2, 14] {
            if let Some(v) = tmp.get(n) {
                m.set(n, v);
            }
        }
    }
    if let Some(a) = auth_code {
        m.set(38, a);
    }
    m.set(39, reason.code());
    if d.family == DialectFamily::Iso87 {
        let stan = original
            .get_str(11)
            .and_then(|s| s.parse().ok())
            .ok_or(missing("a reversal", "the original's STAN"))?;
        let o = OriginalTxn {
            mti: Some(original.mti),
            stan: Some(stan),
            transmission: original.get_str(7).map(str::to_string),
            acquirer_id: original.get_str(32).map(str::to_string),
            forwarding_id: original.get_str(33).map(str::to_string),
            ..OriginalTxn::default()
        };
        m.set(90, field90(&o, "a reversal")?);
    }
    Ok(m)
}

/// The message to resend for an unanswered advice or reversal: `cup` resends the same message
/// (same STAN); `iso87` marks it a repeat (0400→0401, 0420→0421, 0220→0221).
pub fn repeat(d: &Dialect, m: &Message) -> Result<Message, BuildError> {
    if m.mti.is_response() {
        return Err(BuildError::NotARequest(m.mti));
    }
    let mut r = m.clone();
    if d.family == DialectFamily::Iso87 {
        r.mti = m.mti.repeat();
    }
    Ok(r)
}

/// Settlement 0500 with the totals in field 48.
pub fn settlement(d: &Dialect, i: &SettlementInput) -> Result<Message, BuildError> {
    let mut m = new_msg(500, &i.header);
    m.set_num(11, i.stan as u64, 6);
    terminal(&mut m, &i.tid, &i.mid);
    m.set(48, i.totals.to_digits()?);
    m.set_num(49, i.currency as u64, 3);
    match d.family {
        DialectFamily::Cup => {
            m.set(60, cup_60(0, i.batch, 201, None)?);
            if let Some(op) = &i.operator {
                m.set(63, op);
            }
        }
        DialectFamily::Iso87 => {
            local_fields(&mut m, d.family, i.local, i.gmt);
            m.set_num(60, i.batch as u64, 6);
        }
    }
    Ok(m)
}

/// One 0320 batch-upload record (after an unbalanced 0510).
pub fn batch_upload(d: &Dialect, r: &UploadRecord) -> Result<Message, BuildError> {
    let mut m = new_msg(320, &r.header);
    if let Some(p) = &r.pan {
        m.set(2, p.expose());
    }
    m.set(3, &r.processing_code);
    amount(&mut m, r.amount_minor, r.currency);
    m.set_num(11, r.stan as u64, 6)
        .set(12, &r.time_hhmmss)
        .set(13, &r.date_mmdd)
        .set(22, &r.entry_mode)
        .set(25, "00");
    if let Some(x) = &r.rrn {
        m.set(37, x);
    }
    if let Some(x) = &r.auth_code {
        m.set(38, x);
    }
    terminal(&mut m, &r.tid, &r.mid);
    match d.family {
        DialectFamily::Cup => {
            m.set(60, cup_60(r.type_code, r.batch, 201, None)?);
        }
        DialectFamily::Iso87 => {
            m.set_num(60, r.batch as u64, 6);
        }
    }
    Ok(m)
}

/// The 0320 that ends a batch upload: 48 = number of records (n4).
pub fn batch_upload_end(d: &Dialect, e: &UploadEnd) -> Result<Message, BuildError> {
    let mut m = new_msg(320, &e.header);
    m.set_num(11, e.stan as u64, 6);
    terminal(&mut m, &e.tid, &e.mid);
    m.set_num(48, e.count as u64, 4);
    match d.family {
        DialectFamily::Cup => {
            m.set(60, cup_60(0, e.batch, 202, None)?);
        }
        DialectFamily::Iso87 => {
            m.set_num(60, e.batch as u64, 6);
        }
    }
    Ok(m)
}

/// Request fields a host copies into its reply.
pub fn echoed_fields(family: DialectFamily, request: Mti) -> &'static [u8] {
    let settlement = request.value() / 100 == 5;
    match (family, settlement) {
        (DialectFamily::Cup, false) => {
            &[2, 3, 4, 11, 12, 13, 22, 25, 32, 37, 38, 41, 42, 49, 60, 61]
        }
        (DialectFamily::Cup, true) => &[11, 12, 13, 32, 41, 42, 48, 49, 60],
        (DialectFamily::Iso87, false) => &[
            2, 3, 4, 7, 11, 12, 13, 22, 25, 32, 33, 37, 38, 41, 42, 49, 60, 70, 90,
        ],
        (DialectFamily::Iso87, true) => &[7, 11, 12, 13, 32, 41, 42, 48, 49, 60],
    }
}

/// Swaps a TPDU's destination and source (`60 0003 0000` → `60 0000 0003`); other header
/// bytes stay.
pub fn swap_tpdu(header: &[u8]) -> Vec<u8> {
    let mut h = header.to_vec();
    if h.len() >= 5 {
        h[1..5].rotate_left(2);
    }
    h
}

/// A reply: MTI + 10, the family's echoed fields, then 37/38 (assigned), 39, 12/13, 15, 32 and
/// the fee field from `r`. The acquirer adds what else it needs (62 keys, 48 reconciliation,
/// 64 MAC).
pub fn response(
    d: &Dialect,
    req: &impl FieldSource,
    r: &ReplyInput,
) -> Result<Message, BuildError> {
    let mti = req
        .mti()
        .response()
        .ok_or(BuildError::NotARequest(req.mti()))?;
    let mut m = Message::new(mti);
    m.header = req.header().map(|h| match &d.header {
        Some(spec) if spec.tpdu => swap_tpdu(h),
        _ => h.to_vec(),
    });
    for &n in echoed_fields(d.family, req.mti()) {
        if let Some(v) = req.value(n) {
            m.set(n, v);
        }
    }
    if let Some(x) = &r.rrn {
        m.set(37, x);
    }
    if let Some(x) = &r.auth_code {
        m.set(38, x);
    }
    m.set(39, &r.code);
    if let Some(t) = r.local {
        m.set(12, t.format("%H%M%S").to_string());
        m.set(13, t.format("%m%d").to_string());
    }
    if let Some(x) = &r.settlement_date {
        m.set(15, x);
    }
    if let Some(x) = &r.acquirer_id {
        m.set(32, x);
    }
    if let Some(f) = &r.fee {
        m.set(d.fee_field, f.to_digits()?);
    }
    Ok(m)
}

/// What [`match_response`] compares (reference/iso8583.md §1.3 rule 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    Mti,
    Stan,
    Tid,
    Mid,
    ProcessingCode,
    Amount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub check: Check,
    pub expected: String,
    /// `None`: the reply lacks the field.
    pub got: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reply does not match the request: {}", .mismatches.iter().map(|m| format!("{:?} expected {} got {}", m.check, m.expected, m.got.as_deref().unwrap_or("nothing"))).collect::<Vec<_>>().join("; "))]
pub struct ResponseMismatch {
    pub mismatches: Vec<Mismatch>,
}

impl ResponseMismatch {
    pub fn failed(&self, c: Check) -> bool {
        self.mismatches.iter().any(|m| m.check == c)
    }
}

/// Does `resp` answer `req`? MTI must be the request's + 10; STAN, TID and MID must be echoed
/// equal; processing code and amount must be equal when the reply carries them, except the
/// amount of a partial approval (39 = 10). A reply that fails is an unknown outcome (R-REV).
pub fn match_response(
    req: &impl FieldSource,
    resp: &impl FieldSource,
) -> Result<(), ResponseMismatch> {
    let mut out = Vec::new();
    let expected_mti = req.mti().response();
    if expected_mti != Some(resp.mti()) {
        out.push(Mismatch {
            check: Check::Mti,
            expected: expected_mti.map_or_else(|| "a request".into(), |m| m.to_string()),
            got: Some(resp.mti().to_string()),
        });
    }
    let partial = resp.text(39).as_deref() == Some("10");
    for (n, check, required) in [
        (11, Check::Stan, true),
        (41, Check::Tid, true),
        (42, Check::Mid, true),
        (3, Check::ProcessingCode, false),
        (4, Check::Amount, false),
    ] {
        let Some(want) = req.text(n) else { continue };
        let got = resp.text(n);
        let bad = match &got {
            None => required,
            Some(g) => g != &want && !(check == Check::Amount && partial),
        };
        if bad {
            out.push(Mismatch {
                check,
                expected: want.into_owned(),
                got: got.map(|g| g.into_owned()),
            });
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(ResponseMismatch { mismatches: out })
    }
}
