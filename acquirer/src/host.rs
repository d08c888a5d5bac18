//! The sans-IO host: connection events and bytes in, bytes and deadlines out, in the shape of
//! quinn-proto's `Connection` (see the crate docs for a complete example).
//!
//! Per connection the host reassembles frames with the dialect's length prefix, decodes each,
//! lets the earliest matching [`Directive`] take part, validates, applies the rules of the
//! [`Ledger`], builds the reply (CUP: TPDU swapped), signs it when the terminal uses MACs, and
//! queues it — at once, or at a deadline ([`Host::poll_timeout`]) when a directive delays it.
//!
//! # Validation, in this order (reference iso8583.md §7)
//! | check | code |
//! |---|---|
//! | a response MTI (odd function digit) | no reply, logged |
//! | MTI/processing code this host does not handle | 30 (unknown MTI) / 40 (known MTI, unsupported type) |
//! | 41 or 42 missing | 30 |
//! | TID not on file | 97 (`cup`) / 58 (`iso87`) |
//! | TID on file, another MID | 03 |
//! | a mandatory field missing or malformed | 30 |
//! | `mac: x9.19` and never signed on | **A0** (chosen over 99: the host cannot check the MAC) |
//! | `mac: x9.19` and the MAC (64/128) missing or wrong (every request but 0800) | A0 |
//! | PAN not 12–19 digits or failing Luhn | 14 |
//! | a known terminal whose master key is not in the key table, at sign-on | A7 |
//!
//! # Repeats and duplicates (key: TID, batch, STAN of a 0200/0220/0221/0420/0421)
//! - the same advice again (0220 resent, iso87 0221, 0421) → the same reply again, no new effect;
//! - the same 0200 again → 94 (a terminal reverses a 0200, it never resends it);
//! - the same key with different content (MTI class, 2, 3, 4, 28, 37, 38, 49, 60.1, 61, 90) → 94.
//!
//! A refund naming no original (no 37 on iso87; no 37, 38 or 61 trace on CUP) is an unreferenced
//! refund: approved and booked when the terminal's merchant allows it
//! (`acquirer.unreferenced_refunds: allow` in the profile), declined with 12 otherwise.
//!
//! Reversals (0400/0401) match (TID, original STAN, batch, amount): 00 when that undid something
//! or had already been undone, 25 when nothing matches.
//!
//! # Replies
//! Echoed fields per [`builder::echoed_fields`]; 37 = the host's RRN and 38 = its auth code on
//! approvals; 12/13 = the host's local time in the terminal's zone when the request has none; the
//! fee field (`cup` 57, `iso87` 63) on every approved sale, void and refund and on the 0510:
//!
//! | reply | fee | net | returned fee |
//! |---|---|---|---|
//! | sale | fee on the amount | amount − fee | 0 |
//! | refund | 0 | refund − returned fee | fee returned (cumulative method, R-FEE) |
//! | void | 0 | amount − original fee | original fee |
//! | 0510 | fees of the batch | net of the batch (0 if negative) | fees returned |
//!
//! Replies are signed (X9.19, the session MAC key) for `mac: x9.19` terminals, except the 0810
//! (it carries the new keys; requests 08xx are not MACed either) and replies with 39 = A0.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use protocol::card::Pan;
use protocol::fixture::journal::{OriginalTxn, TxnType};
use protocol::fixture::terminal::{MacMode, UnreferencedRefunds};
use protocol::iso8583::builder::{self, ReplyInput};
use protocol::iso8583::dialect::MtiEncoding;
use protocol::iso8583::framing::Fault as FrameFault;
use protocol::iso8583::keys::{DoubleKey, WorkingKeys, tdes_ecb_encrypt};
use protocol::iso8583::mac;
use protocol::iso8583::subfield::{
    FeeInfo, Field60, Field61, Field90, SettlementTotals, reconciliation,
};
use protocol::iso8583::{Dialect, DialectFamily, Message, MessageRef, Mti};
use protocol::money::{Currency, Money};
use protocol::time::{Instant, Tz};
use sha2::{Digest, Sha256};

use crate::config::{HostConfig, KnownTerminal};
use crate::ledger::{Decision, Ledger, OriginalKey, Request};
use crate::log::{Direction, Exchange, render_message};
use crate::script::{
    Application, Directive, DirectiveId, DirectiveState, Fault, RequestView, Respond,
    set_reply_field,
};
use crate::settlement::{SettlementReport, Upload, answer_totals};

/// One terminal connection, numbered by [`Host::connect`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// What the host wants done.
#[derive(Clone, PartialEq, Eq)]
pub enum HostOutput {
    /// Write these bytes (length prefix included) to the connection.
    Send { conn: ConnId, bytes: Vec<u8> },
    /// Close the connection; the host forgets it.
    Close { conn: ConnId },
}

impl fmt::Debug for HostOutput {
    // The bytes hold the PAN: show only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostOutput::Send { conn, bytes } => write!(f, "Send({conn}, {} bytes)", bytes.len()),
            HostOutput::Close { conn } => write!(f, "Close({conn})"),
        }
    }
}

struct Conn {
    buf: Vec<u8>,
}

#[derive(Default)]
struct Session {
    /// Sign-ons so far; part of the key derivation, so keys change at every sign-on.
    counter: u32,
    keys: Option<WorkingKeys>,
}

/// An answered financial request, for repeats.
struct Cached {
    fingerprint: Vec<(u8, String)>,
    /// The reply without field 2 (the PAN is not kept); restored from the repeat.
    reply: Message,
    had_pan: bool,
}

enum Action {
    Send(Vec<u8>),
    Close,
}

struct Pending {
    at: Instant,
    order: u64,
    conn: ConnId,
    action: Action,
    mti: Option<String>,
    fields: Vec<(String, String)>,
    note: Option<String>,
    /// (directive index, application index)
    app: Option<(usize, usize)>,
}

/// What a request is, by MTI, processing code and (CUP) 60.1.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    SignOn { single: bool },
    SignOff,
    EchoTest,
    Sale,
    Void,
    Refund,
    Reversal,
    Settlement,
    Upload,
}

type Refusal = (&'static str, String);

/// The acquirer host simulator's core. See the crate docs.
pub struct Host {
    dialect: Arc<Dialect>,
    config: HostConfig,
    ledger: Ledger,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    outputs: VecDeque<HostOutput>,
    pending: Vec<Pending>,
    next_order: u64,
    directives: Vec<(Directive, DirectiveState)>,
    log: Vec<Exchange>,
    sessions: BTreeMap<String, Session>,
    cache: HashMap<(String, u32, u32), Cached>,
    uploads: BTreeMap<String, Upload>,
    reports: Vec<SettlementReport>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("dialect", &self.dialect.name)
            .field("terminals", &self.config.terminals.len())
            .field("connections", &self.conns.len())
            .field("log", &self.log.len())
            .finish()
    }
}

impl Host {
    pub fn new(config: HostConfig) -> Host {
        Host {
            dialect: Arc::new(config.dialect.clone()),
            ledger: Ledger::new(config.keys.pan_hash_key.clone()),
            config,
            conns: BTreeMap::new(),
            next_conn: 1,
            outputs: VecDeque::new(),
            pending: Vec::new(),
            next_order: 0,
            directives: Vec::new(),
            log: Vec::new(),
            sessions: BTreeMap::new(),
            cache: HashMap::new(),
            uploads: BTreeMap::new(),
            reports: Vec::new(),
        }
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }
    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }
    pub fn known_terminal(&self, terminal_id: &str) -> Option<&KnownTerminal> {
        self.config.terminal(terminal_id)
    }

    /// Preloads a journal's originals (the emulator imports the same file). Their local dates
    /// are taken in each terminal's zone.
    pub fn import(&mut self, originals: &[OriginalTxn]) {
        let terminals = &self.config.terminals;
        let find = |tid: &str| terminals.iter().find(|t| t.terminal_id == tid);
        self.ledger.import(
            originals,
            |tid| find(tid).map(|t| t.merchant_id.clone()),
            |tid| find(tid).is_none_or(|t| t.surcharge_refundable),
            &self.config.fees,
        );
        self.ledger.set_local_dates(|r| {
            let tz = find(&r.terminal_id).map_or(Tz::UTC, |t| t.time_zone);
            r.at.to_local(tz).format("%m%d").to_string()
        });
    }

    /// A terminal connected.
    pub fn connect(&mut self, now: Instant) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(id, Conn { buf: Vec::new() });
        self.push_log(
            id,
            now,
            Direction::In,
            None,
            Vec::new(),
            0,
            Some("connected".into()),
            None,
        );
        id
    }

    /// Bytes from a connection, split or joined any way. Bytes for a closed or unknown
    /// connection are ignored.
    pub fn handle_bytes(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.buf.extend_from_slice(bytes);
        let prefix = self.dialect.length_prefix;
        while let Some(c) = self.conns.get_mut(&conn) {
            match prefix.decode(&mut c.buf) {
                Ok(None) => break,
                Ok(Some(frame)) if frame.is_empty() => continue, // keep-alive
                Ok(Some(frame)) => self.on_frame(conn, &frame, now),
                Err(e) => {
                    let held = c.buf.len();
                    c.buf.clear();
                    self.push_log(
                        conn,
                        now,
                        Direction::In,
                        None,
                        Vec::new(),
                        held,
                        Some(format!("framing error: {e}; the stream is out of step")),
                        None,
                    );
                    self.close_now(conn, now, None);
                    break;
                }
            }
        }
    }

    /// The terminal closed the connection. Replies still queued for it are dropped.
    pub fn handle_close(&mut self, conn: ConnId, now: Instant) {
        if let Some(c) = self.conns.remove(&conn) {
            let note = if c.buf.is_empty() {
                "closed by the terminal".to_string()
            } else {
                format!(
                    "closed by the terminal, {} bytes of an unfinished frame dropped",
                    c.buf.len()
                )
            };
            self.push_log(
                conn,
                now,
                Direction::In,
                None,
                Vec::new(),
                0,
                Some(note),
                None,
            );
        }
    }

    pub fn poll_output(&mut self) -> Option<HostOutput> {
        self.outputs.pop_front()
    }

    /// When the next delayed reply (or scripted close) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.at).min()
    }

    /// Sends what is due at `now`, in deadline order.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(i) = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, p)| p.at <= now)
            .min_by_key(|(_, p)| (p.at, p.order))
            .map(|(i, _)| i)
        {
            let p = self.pending.remove(i);
            self.emit(p, now);
        }
    }

    /// Installs a directive; earlier ones win when several match.
    pub fn script(&mut self, d: Directive) -> DirectiveId {
        let id = DirectiveId(self.directives.len() as u64 + 1);
        let st = DirectiveState::new(id, &d);
        self.directives.push((d, st));
        id
    }

    /// Stops a directive from applying again.
    pub fn cancel(&mut self, id: DirectiveId) {
        if let Some((_, st)) = self.directives.iter_mut().find(|(_, s)| s.id == id) {
            st.cancelled = true;
        }
    }

    pub fn directive(&self, id: DirectiveId) -> Option<&DirectiveState> {
        self.directives.iter().map(|(_, s)| s).find(|s| s.id == id)
    }

    /// Everything received and sent, in order.
    pub fn log(&self) -> &[Exchange] {
        &self.log
    }

    /// A log entry by its `seq`.
    pub fn exchange(&self, seq: u64) -> Option<&Exchange> {
        self.log.get((seq as usize).checked_sub(1)?)
    }

    /// See [`Ledger::number_from`].
    pub fn number_from(&mut self, seed: u64) {
        self.ledger.number_from(seed);
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn settlement_reports(&self) -> &[SettlementReport] {
        &self.reports
    }

    /// The session keys of a terminal, issued now (as a sign-on would) if it has none. The
    /// harness primes a "signed-on" terminal with them. `None` for a TID not on file.
    pub fn working_keys(&mut self, terminal_id: &str) -> Option<WorkingKeys> {
        self.config.terminal(terminal_id)?;
        if let Some(k) = self.sessions.get(terminal_id).and_then(|s| s.keys.clone()) {
            return Some(k);
        }
        Some(self.issue_keys(terminal_id, false))
    }

    /// The current session keys, without issuing any.
    pub fn session_keys(&self, terminal_id: &str) -> Option<&WorkingKeys> {
        self.sessions.get(terminal_id)?.keys.as_ref()
    }

    fn issue_keys(&mut self, tid: &str, single: bool) -> WorkingKeys {
        let s = self.sessions.entry(tid.to_string()).or_default();
        s.counter = s.counter.wrapping_add(1);
        let k = derive_working_keys(tid, s.counter, single);
        s.keys = Some(k.clone());
        k
    }

    // ---- log ----

    #[allow(clippy::too_many_arguments)]
    fn push_log(
        &mut self,
        conn: ConnId,
        at: Instant,
        direction: Direction,
        mti: Option<String>,
        fields: Vec<(String, String)>,
        raw_len: usize,
        note: Option<String>,
        directive: Option<DirectiveId>,
    ) -> u64 {
        let seq = self.log.len() as u64 + 1;
        self.log.push(Exchange {
            seq,
            conn,
            at,
            direction,
            mti,
            fields,
            raw_len,
            note,
            directive,
        });
        seq
    }

    fn add_note(&mut self, seq: u64, note: &str) {
        if let Some(e) = self.log.get_mut((seq as usize).wrapping_sub(1)) {
            match &mut e.note {
                Some(n) => {
                    n.push_str("; ");
                    n.push_str(note);
                }
                None => e.note = Some(note.to_string()),
            }
        }
    }

    fn close_now(&mut self, conn: ConnId, now: Instant, note: Option<String>) {
        if self.conns.remove(&conn).is_some() {
            self.outputs.push_back(HostOutput::Close { conn });
            let n = match note {
                Some(n) => format!("closed by the host ({n})"),
                None => "closed by the host".into(),
            };
            self.push_log(
                conn,
                now,
                Direction::Out,
                None,
                Vec::new(),
                0,
                Some(n),
                None,
            );
        }
    }

    // ---- one frame ----

    fn on_frame(&mut self, conn: ConnId, frame: &[u8], now: Instant) {
        let d = Arc::clone(&self.dialect);
        let raw_len = d.length_prefix.kind.width() + frame.len();
        let m = match MessageRef::decode(&d, frame) {
            Ok(m) => m,
            Err(e) => {
                let mti = peek_mti(&d, frame);
                let seq = self.push_log(
                    conn,
                    now,
                    Direction::In,
                    mti.map(|m| m.to_string()),
                    Vec::new(),
                    raw_len,
                    Some(format!("decode error: {e}")),
                    None,
                );
                match mti.and_then(Mti::response) {
                    Some(resp) => {
                        // Answer 30 with what we know: the MTI and the header.
                        let mut r = Message::new(resp);
                        r.header = request_header(&d, frame).map(|h| reply_header(&d, h));
                        r.set(39, "30");
                        let header = request_header(&d, frame).map(<[u8]>::to_vec);
                        self.deliver(conn, seq, header, None, r, None, now);
                    }
                    None => {
                        self.add_note(seq, "no MTI to answer");
                        self.close_now(conn, now, Some("undecodable frame".into()));
                    }
                }
                return;
            }
        };
        let seq = self.push_log(
            conn,
            now,
            Direction::In,
            Some(m.mti.to_string()),
            render_message(&d, &m),
            raw_len,
            None,
            None,
        );
        if m.mti.response().is_none() {
            self.add_note(seq, "not a request: ignored");
            return;
        }
        let view = RequestView {
            conn,
            at: now,
            msg: &m,
            dialect: &d,
        };
        let di = self
            .directives
            .iter()
            .position(|(dir, st)| !st.is_exhausted() && dir.matches(&view));
        let mut app = None;
        let mut respond = Respond::Rules;
        if let Some(i) = di
            && let Some((dir, st)) = self.directives.get_mut(i)
        {
            st.used += 1;
            st.applications.push(Application {
                request: seq,
                replies: Vec::new(),
                closed: false,
            });
            app = Some((i, st.applications.len() - 1));
            respond = dir.respond.clone();
            let id = st.id;
            if let Some(e) = self.log.get_mut(seq as usize - 1) {
                e.directive = Some(id);
            }
        }
        let (reply, note) = self.decide(&m, now, &respond);
        if let Some(n) = note {
            self.add_note(seq, &n);
        }
        let tid = m.field_str(41).map(|s| s.into_owned());
        let header = m.header.map(<[u8]>::to_vec);
        self.deliver(conn, seq, header, tid, reply, app, now);
    }

    // ---- decisions ----

    /// The reply to a decoded request and a note for the log.
    fn decide(
        &mut self,
        m: &MessageRef<'_>,
        now: Instant,
        respond: &Respond,
    ) -> (Message, Option<String>) {
        let d = Arc::clone(&self.dialect);
        let kind = match classify(&d, m) {
            Ok(k) => k,
            Err(r) => return self.refuse(m, None, r, respond, now),
        };
        let Some(tid) = m.field_str(41).map(|s| s.into_owned()) else {
            return self.refuse(
                m,
                None,
                ("30", "terminal ID (41) missing".into()),
                respond,
                now,
            );
        };
        let Some(t) = self.config.terminal(&tid).cloned() else {
            let code = match d.family {
                DialectFamily::Cup => "97",
                DialectFamily::Iso87 => "58",
            };
            return self.refuse(
                m,
                None,
                (code, format!("terminal {tid} is not on file")),
                respond,
                now,
            );
        };
        match m.field_str(42) {
            None => {
                return self.refuse(
                    m,
                    Some(&t),
                    ("30", "merchant ID (42) missing".into()),
                    respond,
                    now,
                );
            }
            Some(mid) if mid != t.merchant_id => {
                return self.refuse(
                    m,
                    Some(&t),
                    (
                        "03",
                        format!("merchant {mid} is not the merchant of terminal {tid}"),
                    ),
                    respond,
                    now,
                );
            }
            Some(_) => {}
        }
        if let Some(n) = required(kind, d.family).iter().find(|&&n| !m.has(n)) {
            return self.refuse(
                m,
                Some(&t),
                ("30", format!("field {n} missing")),
                respond,
                now,
            );
        }
        let network = matches!(kind, Kind::SignOn { .. } | Kind::SignOff | Kind::EchoTest);
        if t.mac == MacMode::X919 && !network {
            let check = match self.session_keys(&tid) {
                None => Err("not signed on: no MAC key".to_string()),
                Some(k) => mac::verify(&d, m, &k.mac).map_err(|e| e.to_string()),
            };
            if let Err(e) = check {
                return self.refuse(m, Some(&t), ("A0", e), respond, now);
            }
        }
        match kind {
            Kind::SignOn { single } => self.sign_on(m, &t, single, respond, now),
            Kind::SignOff => {
                if let Some(s) = self.sessions.get_mut(&tid) {
                    s.keys = None;
                }
                self.finish(m, &t, ("00", "signed off".into()), respond, now)
            }
            Kind::EchoTest => self.finish(m, &t, ("00", String::new()), respond, now),
            Kind::Sale | Kind::Void | Kind::Refund => self.financial(kind, m, &t, respond, now),
            Kind::Reversal => self.reversal(m, &t, respond, now),
            Kind::Settlement => self.settlement(m, &t, respond, now),
            Kind::Upload => self.upload(m, &t, respond, now),
        }
    }

    /// A reply with `code` (or the directive's) and no effect on the books.
    fn refuse(
        &mut self,
        m: &MessageRef<'_>,
        t: Option<&KnownTerminal>,
        (code, why): Refusal,
        respond: &Respond,
        now: Instant,
    ) -> (Message, Option<String>) {
        let (code, note) = forced(code, why, respond);
        (self.reply(m, t, &code, now, |_| {}), note)
    }

    /// Like [`Host::refuse`]: outcomes with no ledger record (sign-off, echo, reversal codes).
    fn finish(
        &mut self,
        m: &MessageRef<'_>,
        t: &KnownTerminal,
        r: Refusal,
        respond: &Respond,
        now: Instant,
    ) -> (Message, Option<String>) {
        self.refuse(m, Some(t), r, respond, now)
    }

    fn reply(
        &self,
        m: &MessageRef<'_>,
        t: Option<&KnownTerminal>,
        code: &str,
        now: Instant,
        extra: impl FnOnce(&mut ReplyInput),
    ) -> Message {
        let tz = t.map_or(Tz::UTC, |t| t.time_zone);
        let mut r = ReplyInput {
            code: code.to_string(),
            local: (!m.has(12) || !m.has(13)).then(|| now.to_local(tz).naive_local()),
            ..ReplyInput::default()
        };
        extra(&mut r);
        match builder::response(&self.dialect, m, &r) {
            Ok(msg) => msg,
            Err(_) => {
                // Only a fee that does not fit n12 gets here: answer without it.
                r.fee = None;
                builder::response(&self.dialect, m, &r).unwrap_or_else(|_| {
                    let mut x = Message::new(m.mti.response().unwrap_or(m.mti));
                    x.set(39, code);
                    x
                })
            }
        }
    }

    fn sign_on(
        &mut self,
        m: &MessageRef<'_>,
        t: &KnownTerminal,
        single: bool,
        respond: &Respond,
        now: Instant,
    ) -> (Message, Option<String>) {
        if let Respond::Decline(c) = respond {
            return (
                self.reply(m, Some(t), c, now, |_| {}),
                Some(format!("declined {c} by directive; no keys issued")),
            );
        }
        let Some(tmk) = self
            .config
            .keys
            .master_key(&t.terminal_id)
            .map(|k| DoubleKey::new(*k))
        else {
            return self.refuse(
                m,
                Some(t),
                (
                    "A7",
                    format!("no master key for {} in the key table", t.terminal_id),
                ),
                respond,
                now,
            );
        };
        let keys = self.issue_keys(&t.terminal_id, single);
        let f62 = if single {
            field62_single(&tmk, &keys)
        } else {
            keys.to_field62(&tmk)
        };
        let mut r = self.reply(m, Some(t), "00", now, |_| {});
        r.set(62, f62);
        let counter = self.sessions.get(&t.terminal_id).map_or(0, |s| s.counter);
        let note = format!(
            "signed on: session {counter}, {} keys",
            if single {
                "single-length"
            } else {
                "double-length"
            }
        );
        (r, Some(note))
    }

    /// The ledger's view of a financial request.
    fn request(
        &self,
        m: &MessageRef<'_>,
        t: &KnownTerminal,
        now: Instant,
        need_pan: bool,
    ) -> Result<Request, Refusal> {
        let stan = digits_u32(m, 11).ok_or(("30", "STAN (11) is not 6 digits".to_string()))?;
        let batch = self
            .batch(m)
            .ok_or(("30", "batch number (60) missing or malformed".to_string()))?;
        let amount = self.amount(m, t)?;
        let pan = match card_number(m) {
            Some(digits) => {
                let p = Pan::new(&digits).map_err(|e| ("14", format!("card number: {e}")))?;
                if !p.luhn_ok() {
                    return Err(("14", "card number fails the Luhn check".into()));
                }
                Some(p)
            }
            None if need_pan => return Err(("30", "no card number (2 or 35)".into())),
            None => None,
        };
        let local_date = match m.field_str(13) {
            Some(d) if d.len() == 4 => d.into_owned(),
            _ => now.to_local(t.time_zone).format("%m%d").to_string(),
        };
        Ok(Request {
            terminal_id: t.terminal_id.clone(),
            merchant_id: t.merchant_id.clone(),
            batch,
            stan,
            local_date,
            at: now,
            amount,
            pan,
        })
    }

    fn batch(&self, m: &MessageRef<'_>) -> Option<u32> {
        let s = m.field_str(60)?;
        match self.dialect.family {
            DialectFamily::Cup => (s.len() >= 8)
                .then(|| Field60::parse(&s).ok().map(|f| f.batch))
                .flatten(),
            DialectFamily::Iso87 => {
                (!s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| s.parse().ok())
                    .flatten()
            }
        }
    }

    fn amount(&self, m: &MessageRef<'_>, t: &KnownTerminal) -> Result<Money, Refusal> {
        let currency = match m.field_str(49) {
            None => t.currency,
            Some(c) => c
                .parse::<u16>()
                .ok()
                .and_then(Currency::from_numeric)
                .ok_or(("30", format!("currency 49={c} is not known")))?,
        };
        let s = m
            .field_str(4)
            .ok_or(("30", "amount (4) missing".to_string()))?;
        let minor: u64 = s
            .parse()
            .map_err(|_| ("30", format!("amount 4={s} is not digits")))?;
        Ok(Money::from_minor(minor, currency))
    }

    fn original_key(&self, kind: Kind, m: &MessageRef<'_>) -> Result<OriginalKey, Refusal> {
        let text = |n: u8| m.field_str(n).map(|s| s.into_owned());
        let mut key = OriginalKey {
            rrn: text(37),
            auth_code: text(38),
            ..OriginalKey::default()
        };
        match (self.dialect.family, kind) {
            (DialectFamily::Cup, _) => {
                if let Some(s) = m.field_str(61) {
                    let f = Field61::parse(&s).map_err(|e| ("30", e.to_string()))?;
                    key.batch = (f.orig_batch != 0).then_some(f.orig_batch);
                    key.stan = (f.orig_stan != 0).then_some(f.orig_stan);
                    key.date = f.orig_date.filter(|d| d != "0000");
                }
            }
            (DialectFamily::Iso87, Kind::Void) => {
                let s = m
                    .field_str(90)
                    .ok_or(("30", "field 90 missing".to_string()))?;
                let f = Field90::parse(&s).map_err(|e| ("30", e.to_string()))?;
                key.stan = Some(f.orig_stan);
                key.batch = self.batch(m);
            }
            (DialectFamily::Iso87, _) => {}
        }
        Ok(key)
    }

    /// Sale, void, refund: duplicates first, then the ledger.
    fn financial(
        &mut self,
        kind: Kind,
        m: &MessageRef<'_>,
        t: &KnownTerminal,
        respond: &Respond,
        now: Instant,
    ) -> (Message, Option<String>) {
        let req = match self.request(m, t, now, kind != Kind::Void) {
            Ok(r) => r,
            Err(r) => return self.refuse(m, Some(t), r, respond, now),
        };
        let fp = self.fingerprint(m, req.pan.as_ref());
        let key = (t.terminal_id.clone(), req.batch, req.stan);
        if let Some(c) = self.cache.get(&key) {
            let advice = matches!(m.mti.function(), 2);
            if c.fingerprint == fp && advice {
                let mut reply = c.reply.clone();
                if c.had_pan
                    && let Some(p) = m.field_str(2)
                {
                    reply.set(2, p.as_bytes());
                }
                let mut note = "repeat of an answered advice: the same reply again".to_string();
                match respond {
                    Respond::Rules => {}
                    Respond::Approve => {
                        reply.set(39, "00");
                        note.push_str("; 39 forced to 00 by directive, ledger unchanged");
                    }
                    Respond::Decline(c) => {
                        reply.set(39, c);
                        note.push_str(&format!(
                            "; 39 forced to {c} by directive, ledger unchanged"
                        ));
                    }
                }
                return (reply, Some(note));
            }
            let why = if c.fingerprint == fp {
                "duplicate transmission: this request was already answered"
            } else {
                "duplicate transmission: terminal, batch and STAN already used by another request"
            };
            return self.refuse(m, Some(t), ("94", why.into()), respond, now);
        }
        let orig_key = match kind {
            Kind::Sale => None,
            _ => match self.original_key(kind, m) {
                Ok(k) => Some(k),
                Err(r) => return self.refuse(m, Some(t), r, respond, now),
            },
        };
        let surcharge = if kind == Kind::Sale {
            match surcharge(m, req.amount) {
                Ok(s) => s,
                Err(r) => return self.refuse(m, Some(t), r, respond, now),
            }
        } else {
            None
        };
        let txn_type = match kind {
            Kind::Sale => TxnType::Sale,
            Kind::Void => TxnType::Void,
            _ => TxnType::Refund,
        };
        let original = |l: &Ledger| {
            orig_key
                .as_ref()
                .and_then(|k| l.find_original_for(&t.terminal_id, k))
                .map(|r| r.id)
        };
        let (reply, note) = match respond {
            Respond::Decline(code) => {
                let o = original(&self.ledger);
                self.ledger.record_decline(txn_type, &req, code, o);
                (
                    self.reply(m, Some(t), code, now, |_| {}),
                    Some(format!(
                        "declined {code} by directive; recorded as declined"
                    )),
                )
            }
            _ => {
                let decision = match (kind, &orig_key) {
                    (Kind::Sale, _) => {
                        self.ledger
                            .sale(&req, surcharge, t.surcharge_refundable, &self.config.fees)
                    }
                    (Kind::Void, Some(k)) => self.ledger.void(&req, k),
                    (_, Some(k)) if k.is_empty() => match t.unreferenced_refunds {
                        UnreferencedRefunds::Allow => self.ledger.unreferenced_refund(&req),
                        // UNVERIFIED: 12 (invalid transaction) for a transaction the merchant
                        // may not make; hosts also use 57 or 58 for it. Not 30: the request is
                        // well formed.
                        UnreferencedRefunds::Refuse => Decision::Declined {
                            code: "12",
                            reason: "unreferenced refund: not allowed for this merchant",
                        },
                    },
                    (_, Some(k)) => self.ledger.refund(&req, k, &self.config.fees),
                    (_, None) => Decision::Declined {
                        code: "25",
                        reason: "no original",
                    },
                };
                match decision {
                    Decision::Approved {
                        rrn,
                        auth_code,
                        fee,
                        net,
                        ..
                    } => {
                        let info = match kind {
                            Kind::Sale => FeeInfo {
                                fee: fee.minor(),
                                net: net.minor(),
                                returned_fee: 0,
                            },
                            _ => FeeInfo {
                                fee: 0,
                                net: net.minor(),
                                returned_fee: fee.minor(),
                            },
                        };
                        let r = self.reply(m, Some(t), "00", now, |r| {
                            r.rrn = Some(rrn);
                            r.auth_code = Some(auth_code);
                            r.fee = Some(info);
                        });
                        (r, None)
                    }
                    Decision::Declined { code, reason } => {
                        if *respond == Respond::Approve {
                            let o = original(&self.ledger);
                            let (_, rrn, auth) =
                                self.ledger.record_forced_approval(txn_type, &req, o);
                            let amount = req.amount.minor();
                            let r = self.reply(m, Some(t), "00", now, |r| {
                                r.rrn = Some(rrn);
                                r.auth_code = Some(auth);
                                r.fee = Some(FeeInfo {
                                    fee: 0,
                                    net: amount,
                                    returned_fee: 0,
                                });
                            });
                            (
                                r,
                                Some(format!(
                                    "approved by directive although the rules said {code} ({reason}); recorded as approved, no fee"
                                )),
                            )
                        } else {
                            (
                                self.reply(m, Some(t), code, now, |_| {}),
                                Some(reason.to_string()),
                            )
                        }
                    }
                }
            }
        };
        let had_pan = reply.has(2);
        let mut cached = reply.clone();
        cached.remove(2);
        self.cache.insert(
            key,
            Cached {
                fingerprint: fp,
                reply: cached,
                had_pan,
            },
        );
        (reply, note)
    }

    fn fingerprint(&self, m: &MessageRef<'_>, pan: Option<&Pan>) -> Vec<(u8, String)> {
        let mut v = vec![(0u8, (m.mti.value() / 10 * 10).to_string())];
        if let Some(p) = pan {
            v.push((2, p.keyed_hash(&self.config.keys.pan_hash_key).to_hex()));
        }
        for n in [3u8, 4, 28, 37, 38, 49, 61, 90] {
            if let Some(s) = m.field_str(n) {
                v.push((n, s.into_owned()));
            }
        }
        if self.dialect.family == DialectFamily::Cup
            && let Some(f) = m.field_str(60).and_then(|s| Field60::parse(&s).ok())
        {
            v.push((60, f.type_code.to_string()));
        }
        v
    }

    fn reversal(
        &mut self,
        m: &MessageRef<'_>,
        t: &KnownTerminal,
        respond: &Respond,
        now: Instant,
    ) -> (Message, Option<String>) {
        let stan = match self.dialect.family {
            DialectFamily::Cup => digits_u32(m, 11),
            DialectFamily::Iso87 => m
                .field_str(90)
                .and_then(|s| Field90::parse(&s).ok())
                .map(|f| f.orig_stan),
        };
        let Some(stan) = stan else {
            return self.refuse(
                m,
                Some(t),
                ("30", "original STAN missing or malformed".into()),
                respond,
                now,
            );
        };
        let Some(batch) = self.batch(m) else {
            return self.refuse(
                m,
                Some(t),
                ("30", "batch number (60) missing or malformed".into()),
                respond,
                now,
            );
        };
        let amount = match self.amount(m, t) {
            Ok(a) => a,
            Err(r) => return self.refuse(m, Some(t), r, respond, now),
        };
        if let Respond::Decline(c) = respond {
            let note = format!("declined {c} by directive; nothing reversed");
            return (self.reply(m, Some(t), c, now, |_| {}), Some(note));
        }
        let r = match self
            .ledger
            .reverse(&t.terminal_id, stan, Some(batch), amount)
        {
            Ok(true) => ("00", format!("reversed STAN {stan:06} of batch {batch:06}")),
            Ok(false) => ("00", format!("STAN {stan:06} already reversed: 00 again")),
            Err(code) => (
                code,
                format!("nothing to reverse for STAN {stan:06}, batch {batch:06}, {amount:?}"),
            ),
        };
        self.finish(m, t, r, respond, now)
    }

    fn settlement(
        &mut self,
        m: &MessageRef<'_>,
        t: &KnownTerminal,
        respond: &Respond,
        now: Instant,
    ) -> (Message, Option<String>) {
        let terminal = match m.field_str(48).map(|s| SettlementTotals::parse(&s)) {
            Some(Ok(x)) => x,
            Some(Err(e)) => return self.refuse(m, Some(t), ("30", e.to_string()), respond, now),
            None => {
                return self.refuse(m, Some(t), ("30", "field 48 missing".into()), respond, now);
            }
        };
        let Some(batch) = self.batch(m) else {
            return self.refuse(
                m,
                Some(t),
                ("30", "batch number (60) missing or malformed".into()),
                respond,
                now,
            );
        };
        let currency = match self.amount_currency(m, t) {
            Ok(c) => c,
            Err(r) => return self.refuse(m, Some(t), r, respond, now),
        };
        if let Respond::Decline(c) = respond {
            let note = format!("declined {c} by directive; batch stays open");
            return (self.reply(m, Some(t), c, now, |_| {}), Some(note));
        }
        let host = self.ledger.totals(&t.terminal_id, batch, currency);
        let report = SettlementReport::new(
            &t.terminal_id,
            &t.merchant_id,
            batch,
            now,
            currency,
            &host,
            terminal,
        );
        let balanced = report.balanced;
        let code = if balanced {
            reconciliation::BALANCED
        } else {
            reconciliation::NOT_BALANCED
        };
        let fee = FeeInfo {
            fee: host.fees.minor(),
            net: Money::new(report.net.max(rust_decimal::Decimal::ZERO), currency)
                .map(Money::minor)
                .unwrap_or(0),
            returned_fee: host.fees_returned.minor(),
        };
        let mut reply = self.reply(m, Some(t), "00", now, |r| r.fee = Some(fee));
        if let Ok(s) = answer_totals(&terminal, code).to_digits() {
            reply.set(48, s);
        }
        let note = if balanced {
            self.ledger.close_batch(&t.terminal_id, batch);
            self.uploads.remove(&t.terminal_id);
            format!("balanced: batch {batch:06} closed")
        } else {
            self.uploads.insert(t.terminal_id.clone(), Upload { batch });
            format!(
                "not balanced: host has {} sales {} / {} refunds {}; awaiting the batch upload",
                host.sale_count, host.sale_total, host.refund_count, host.refund_total
            )
        };
        self.reports.push(report);
        (reply, Some(note))
    }

    fn amount_currency(&self, m: &MessageRef<'_>, t: &KnownTerminal) -> Result<Currency, Refusal> {
        match m.field_str(49) {
            None => Ok(t.currency),
            Some(c) => c
                .parse::<u16>()
                .ok()
                .and_then(Currency::from_numeric)
                .ok_or(("30", format!("currency 49={c} is not known"))),
        }
    }

    fn upload(
        &mut self,
        m: &MessageRef<'_>,
        t: &KnownTerminal,
        respond: &Respond,
        now: Instant,
    ) -> (Message, Option<String>) {
        let Some(batch) = self.batch(m) else {
            return self.refuse(
                m,
                Some(t),
                ("30", "batch number (60) missing or malformed".into()),
                respond,
                now,
            );
        };
        let end = match self.dialect.family {
            DialectFamily::Cup => {
                m.field_str(60)
                    .and_then(|s| Field60::parse(&s).ok())
                    .and_then(|f| f.network_code)
                    == Some(202)
            }
            DialectFamily::Iso87 => !m.has(4),
        };
        if let Respond::Decline(c) = respond {
            let note = format!("declined {c} by directive");
            return (self.reply(m, Some(t), c, now, |_| {}), Some(note));
        }
        let tid = t.terminal_id.clone();
        let stan = digits_u32(m, 11).unwrap_or(0);
        let amount = self.amount(m, t).ok();
        let known = self.ledger.records().iter().any(|r| {
            r.terminal_id == tid
                && r.batch == batch
                && r.stan == stan
                && amount.is_none_or(|a| a == r.amount)
        });
        let report = self
            .reports
            .iter_mut()
            .rev()
            .find(|r| r.terminal_id == tid && r.batch == batch && !r.closed);
        let note = if end {
            self.ledger.close_batch(&tid, batch);
            self.uploads.remove(&tid);
            let said = m.field_str(48).map(|s| s.into_owned()).unwrap_or_default();
            match report {
                Some(r) => {
                    r.closed = true;
                    format!(
                        "upload end ({said} announced, {} received): batch {batch:06} closed",
                        r.uploaded
                    )
                }
                None => {
                    format!("upload end without an unbalanced settlement: batch {batch:06} closed")
                }
            }
        } else {
            if let Some(r) = report {
                r.uploaded += 1;
                if !known {
                    r.upload_unknown.push(stan);
                }
            }
            if known {
                format!("upload record STAN {stan:06}")
            } else {
                format!("upload record STAN {stan:06}: the host has no such transaction")
            }
        };
        let (reply, _) = self.finish(m, t, ("00", String::new()), respond, now);
        (reply, Some(note))
    }

    // ---- delivery ----

    /// Applies the directive's reply edits and fault, signs, frames and queues the reply.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        conn: ConnId,
        request_seq: u64,
        request_header: Option<Vec<u8>>,
        tid: Option<String>,
        mut reply: Message,
        app: Option<(usize, usize)>,
        now: Instant,
    ) {
        let d = Arc::clone(&self.dialect);
        let (set, remove, delay, fault) = match app.and_then(|(i, _)| self.directives.get(i)) {
            Some((x, _)) => (x.set.clone(), x.remove.clone(), x.delay_ms, x.fault),
            None => (Vec::new(), Vec::new(), 0, None),
        };
        let mut notes: Vec<String> = Vec::new();
        for (k, v) in &set {
            if let Err(e) = set_reply_field(&d, &mut reply, k, v) {
                notes.push(format!("set {k}: {e}"));
            }
        }
        for n in &remove {
            reply.remove(*n);
        }
        match fault {
            Some(Fault::NoTpduSwap) => {
                if request_header.is_some() {
                    reply.header = request_header.clone();
                } else {
                    notes.push("no TPDU in this dialect".into());
                }
            }
            Some(Fault::WrongStan) => {
                if let Some(s) = reply.get_str(11).and_then(|s| s.parse::<u64>().ok()) {
                    reply.set_num(11, (s + 1) % 1_000_000, 6);
                }
            }
            Some(Fault::WrongMti) => {
                reply.mti = Mti::new_clamped(reply.mti.value().saturating_add(20))
            }
            _ => {}
        }
        // Unsigned: network management (the 0810 brings the keys) and A0 (the host does not
        // trust the session); and a reply whose MAC field the directive set or removed.
        let custom_mac = set.iter().any(|(k, _)| k == "64" || k == "128")
            || remove.contains(&64)
            || remove.contains(&128)
            || reply.mti.value() / 100 == 8
            || reply.get_str(39) == Some("A0");
        let key = tid
            .as_deref()
            .filter(|tid| {
                !custom_mac
                    && self
                        .config
                        .terminal(tid)
                        .is_some_and(|t| t.mac == MacMode::X919)
            })
            .and_then(|tid| self.session_keys(tid))
            .map(|k| k.mac.clone());
        let mut payload = Vec::new();
        let encoded = match &key {
            Some(k) => mac::sign(&d, &mut reply, k, &mut payload)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => reply
                .encode_into(&d, &mut payload)
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = encoded {
            self.add_note(
                request_seq,
                &format!("reply could not be encoded: {e}; nothing sent"),
            );
            return;
        }
        if fault == Some(Fault::WrongMac) {
            let f = mac::mac_field(&reply);
            if key.is_some() && payload.len() >= 8 {
                let n = payload.len();
                for b in &mut payload[n - 8..] {
                    *b ^= 0xFF;
                }
                let flipped = payload[n - 8..].to_vec();
                reply.set(f, flipped);
            } else {
                reply.set(f, [0xFF; 8]);
                payload.clear();
                if let Err(e) = reply.encode_into(&d, &mut payload) {
                    self.add_note(
                        request_seq,
                        &format!("reply could not be encoded: {e}; nothing sent"),
                    );
                    return;
                }
            }
        }
        let lp = d.length_prefix;
        let mut framed = Vec::with_capacity(payload.len() + 4);
        let framing = match fault {
            Some(Fault::Garbled) => {
                let g: Vec<u8> = payload.iter().map(|b| b ^ 0x5A).collect();
                lp.encode(&g, &mut framed)
            }
            Some(Fault::Truncated) => {
                lp.encode_fault(
                    &payload,
                    FrameFault::Truncate {
                        keep: payload.len() / 2,
                    },
                    &mut framed,
                );
                Ok(())
            }
            Some(Fault::WrongLength) => {
                lp.encode_fault(&payload, FrameFault::LengthDelta(-1), &mut framed);
                Ok(())
            }
            _ => lp.encode(&payload, &mut framed),
        };
        if let Err(e) = framing {
            self.add_note(
                request_seq,
                &format!("reply could not be framed: {e}; nothing sent"),
            );
            return;
        }
        if let Some(f) = fault {
            notes.insert(0, format!("fault {f}"));
        }
        if delay > 0 {
            notes.push(format!("delayed {delay} ms"));
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        let at = now + Duration::from_millis(delay);
        let mti = Some(reply.mti.to_string());
        let fields = render_message(&d, &reply);
        let send = |bytes: Vec<u8>| Pending {
            at,
            order: 0,
            conn,
            action: Action::Send(bytes),
            mti: mti.clone(),
            fields: fields.clone(),
            note: note.clone(),
            app,
        };
        let close = Pending {
            at,
            order: 0,
            conn,
            action: Action::Close,
            mti: None,
            fields: Vec::new(),
            note: fault.map(|f| format!("fault {f}")),
            app,
        };
        match fault {
            Some(Fault::NoReply) => {
                self.add_note(request_seq, "fault no_reply: processed, reply withheld");
            }
            Some(Fault::Close) => self.schedule(close, now),
            Some(Fault::ReplyTwice) => {
                self.schedule(send(framed.clone()), now);
                self.schedule(send(framed), now);
            }
            Some(Fault::Truncated) => {
                self.schedule(send(framed), now);
                self.schedule(close, now);
            }
            _ => self.schedule(send(framed), now),
        }
    }

    fn schedule(&mut self, mut p: Pending, now: Instant) {
        p.order = self.next_order;
        self.next_order += 1;
        if p.at <= now {
            self.emit(p, now);
        } else {
            self.pending.push(p);
        }
    }

    fn emit(&mut self, p: Pending, now: Instant) {
        let directive = p
            .app
            .and_then(|(i, _)| self.directives.get(i))
            .map(|(_, s)| s.id);
        match p.action {
            Action::Send(bytes) => {
                if self.conns.contains_key(&p.conn) {
                    let len = bytes.len();
                    self.outputs.push_back(HostOutput::Send {
                        conn: p.conn,
                        bytes,
                    });
                    let seq = self.push_log(
                        p.conn,
                        now,
                        Direction::Out,
                        p.mti,
                        p.fields,
                        len,
                        p.note,
                        directive,
                    );
                    if let Some((i, a)) = p.app
                        && let Some(app) = self
                            .directives
                            .get_mut(i)
                            .and_then(|(_, s)| s.applications.get_mut(a))
                    {
                        app.replies.push(seq);
                    }
                } else {
                    let note = match p.note {
                        Some(n) => format!("{n}; not sent: the connection is closed"),
                        None => "not sent: the connection is closed".into(),
                    };
                    self.push_log(
                        p.conn,
                        now,
                        Direction::Out,
                        p.mti,
                        p.fields,
                        0,
                        Some(note),
                        directive,
                    );
                }
            }
            Action::Close => {
                if self.conns.contains_key(&p.conn) {
                    self.close_now(p.conn, now, p.note);
                    if let Some(e) = self.log.last_mut() {
                        e.directive = directive;
                    }
                    if let Some((i, a)) = p.app
                        && let Some(app) = self
                            .directives
                            .get_mut(i)
                            .and_then(|(_, s)| s.applications.get_mut(a))
                    {
                        app.closed = true;
                    }
                }
            }
        }
    }
}

/// 39 and a note, after a directive's say.
fn forced(code: &str, why: String, respond: &Respond) -> (String, Option<String>) {
    let why = (!why.is_empty()).then_some(why);
    match respond {
        Respond::Rules => (code.to_string(), why),
        Respond::Approve if code == "00" => ("00".into(), why),
        Respond::Approve => (
            "00".into(),
            Some(format!(
                "approved by directive although the rules said {code}{}",
                why.map(|w| format!(" ({w})")).unwrap_or_default()
            )),
        ),
        Respond::Decline(c) => (
            c.clone(),
            Some(format!(
                "declined {c} by directive{}",
                why.map(|w| format!("; rules: {code} ({w})"))
                    .unwrap_or_default()
            )),
        ),
    }
}

fn classify(d: &Dialect, m: &MessageRef<'_>) -> Result<Kind, Refusal> {
    let cup = d.family == DialectFamily::Cup;
    let proc2 = m
        .field_str(3)
        .map(|s| s.get(..2).unwrap_or_default().to_string());
    let f60 = if cup {
        m.field_str(60).and_then(|s| Field60::parse(&s).ok())
    } else {
        None
    };
    let type_code = f60.map(|f| f.type_code);
    let unsupported = |what: String| Err(("40", format!("{what} is not supported")));
    match m.mti.value() {
        800 => {
            if cup {
                Ok(Kind::SignOn {
                    single: f60.and_then(|f| f.network_code) == Some(1),
                })
            } else {
                match m.field_str(70).as_deref() {
                    None | Some("001") => Ok(Kind::SignOn { single: false }),
                    Some("002") => Ok(Kind::SignOff),
                    Some("301") => Ok(Kind::EchoTest),
                    Some(x) => unsupported(format!("network management code 70={x}")),
                }
            }
        }
        200 => match proc2.as_deref() {
            None => Err(("30", "processing code (3) missing".into())),
            Some("00") => match type_code {
                None | Some(22) => Ok(Kind::Sale),
                Some(x) => unsupported(format!("0200 with 60.1={x:02}")),
            },
            Some("20") if cup => match type_code {
                Some(23) => Ok(Kind::Void),
                x => unsupported(format!(
                    "0200 with 3=20xxxx and 60.1={}",
                    x.map_or("--".into(), |x| format!("{x:02}"))
                )),
            },
            Some("20") => Ok(Kind::Refund),
            Some(p) => unsupported(format!("0200 with processing code {p}xxxx")),
        },
        220 | 221 => match proc2.as_deref() {
            None => Err(("30", "processing code (3) missing".into())),
            Some("20") if type_code.is_none_or(|t| t == 25) => Ok(Kind::Refund),
            Some(p) => unsupported(format!("{} with processing code {p}xxxx", m.mti)),
        },
        420 | 421 if !cup => Ok(Kind::Void),
        400 | 401 => Ok(Kind::Reversal),
        500 => Ok(Kind::Settlement),
        320 => Ok(Kind::Upload),
        _ => Err((
            "30",
            format!("MTI {} is not a request this host handles", m.mti),
        )),
    }
}

/// Fields a request must carry (beyond 41/42), per kind and family.
fn required(kind: Kind, family: DialectFamily) -> &'static [u8] {
    let cup = family == DialectFamily::Cup;
    match kind {
        Kind::SignOn { .. } | Kind::SignOff | Kind::EchoTest => &[11],
        Kind::Sale => &[3, 4, 11, 60],
        Kind::Void if cup => &[3, 4, 11, 37, 60, 61],
        Kind::Void => &[3, 4, 11, 60, 90],
        Kind::Refund if cup => &[3, 4, 11, 60, 61],
        // No 37: a refund may name no original (an unreferenced refund, decided per merchant).
        Kind::Refund => &[3, 4, 11, 60],
        Kind::Reversal if cup => &[4, 11, 60],
        Kind::Reversal => &[4, 11, 60, 90],
        Kind::Settlement => &[11, 48, 60],
        Kind::Upload => &[11, 60],
    }
}

fn digits_u32(m: &MessageRef<'_>, n: u8) -> Option<u32> {
    let s = m.field_str(n)?;
    (s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Field 2, or the PAN part of track 2.
fn card_number(m: &MessageRef<'_>) -> Option<String> {
    if let Some(p) = m.field_str(2) {
        return Some(p.into_owned());
    }
    let t = m.field_str(35)?;
    let pan = t.split(['=', 'D', 'd']).next()?;
    Some(pan.to_string())
}

/// iso87 field 28: `D` + 8 digits, the cardholder surcharge included in field 4.
fn surcharge(m: &MessageRef<'_>, amount: Money) -> Result<Option<Money>, Refusal> {
    let Some(s) = m.field_str(28) else {
        return Ok(None);
    };
    let digits = s
        .strip_prefix('D')
        .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(("30", format!("field 28 {s:?} is not D + 8 digits")))?;
    let minor: u64 = digits
        .parse()
        .map_err(|_| ("30", "field 28 is not digits".to_string()))?;
    let fee = Money::from_minor(minor, amount.currency());
    if fee.value() > amount.value() {
        return Err(("13", format!("surcharge {fee} exceeds the amount {amount}")));
    }
    Ok((!fee.is_zero()).then_some(fee))
}

fn request_header<'f>(d: &Dialect, frame: &'f [u8]) -> Option<&'f [u8]> {
    let h = d.header.as_ref()?;
    frame.get(..h.length)
}

fn reply_header(d: &Dialect, h: &[u8]) -> Vec<u8> {
    match &d.header {
        Some(spec) if spec.tpdu => builder::swap_tpdu(h),
        _ => h.to_vec(),
    }
}

/// The MTI of a frame that failed to decode further, if it has one.
fn peek_mti(d: &Dialect, frame: &[u8]) -> Option<Mti> {
    let at = d.header_len();
    match d.mti {
        MtiEncoding::Bcd => {
            let b = frame.get(at..at + 2)?;
            let mut v = 0u16;
            for &x in b {
                let (hi, lo) = (x >> 4, x & 0x0F);
                if hi > 9 || lo > 9 {
                    return None;
                }
                v = v * 100 + (hi * 10 + lo) as u16;
            }
            Mti::new(v)
        }
        MtiEncoding::Ascii => std::str::from_utf8(frame.get(at..at + 4)?)
            .ok()
            .and_then(Mti::parse),
    }
}

/// Deterministic session keys, so transcripts are reproducible: SHA-256 over a label, the TID
/// and the sign-on counter; bytes 0–15 the PIN key, 16–31 the MAC key, each with odd DES parity.
/// Single-length keys (CUP 60.3 = 001) use the first 8 bytes of each as `K‖K`.
pub fn derive_working_keys(terminal_id: &str, counter: u32, single: bool) -> WorkingKeys {
    let mut h = Sha256::new();
    h.update(b"posrig acquirer working keys\0");
    h.update(terminal_id.as_bytes());
    h.update(counter.to_be_bytes());
    let out = h.finalize();
    let mut pin = [0u8; 16];
    let mut mac = [0u8; 16];
    pin.copy_from_slice(&out[..16]);
    mac.copy_from_slice(&out[16..32]);
    for b in pin.iter_mut().chain(mac.iter_mut()) {
        *b = odd_parity(*b);
    }
    let make = |k: [u8; 16]| {
        if single {
            let mut s = [0u8; 8];
            s.copy_from_slice(&k[..8]);
            DoubleKey::from_single(s)
        } else {
            DoubleKey::new(k)
        }
    };
    WorkingKeys {
        pin: make(pin),
        mac: make(mac),
    }
}

fn odd_parity(b: u8) -> u8 {
    if (b >> 1).count_ones().is_multiple_of(2) {
        (b & 0xFE) | 1
    } else {
        b & 0xFE
    }
}

/// Field 62 for single-length keys: 8 encrypted bytes + check value, per key (24 bytes).
fn field62_single(tmk: &DoubleKey, keys: &WorkingKeys) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    for k in [&keys.pin, &keys.mac] {
        let mut e = k.left();
        let _ = tdes_ecb_encrypt(tmk, &mut e);
        out.extend_from_slice(&e);
        out.extend_from_slice(&k.check_value());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_keys_are_deterministic_with_odd_parity() {
        let a = derive_working_keys("20250001", 1, false);
        assert_eq!(a, derive_working_keys("20250001", 1, false));
        assert_ne!(a, derive_working_keys("20250001", 2, false));
        assert_ne!(a, derive_working_keys("20250002", 1, false));
        for b in a.pin.expose().iter().chain(a.mac.expose()) {
            assert_eq!(b.count_ones() % 2, 1, "{b:02X}");
        }
        let s = derive_working_keys("20250001", 1, true);
        assert_eq!(s.mac.left(), s.mac.right());
        let tmk = DoubleKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let f = field62_single(&tmk, &s);
        assert_eq!(f.len(), 24);
        assert_eq!(WorkingKeys::from_field62(&tmk, &f).unwrap(), s);
    }
}
