//! The ECR port's application side: what the terminal does with each ZVT command (as the PT),
//! and how results, receipts and the end of a transaction go back to the cash register.
//!
//! Rules applied (reference/zvt.md §2):
//! - a wrong password is refused with `84 37 00` when the profile checks it;
//! - a malformed command with `84 9A 00`, an unknown command or BMP with `84 83 00`;
//! - Registration is answered by 06 0F straight after `80 00 00`;
//! - a result goes as 04 0F, then the receipts (06 D1 / 06 D3 when the ECR prints), then
//!   06 0F or 06 1E; if the ECR refuses or never acknowledges the 04 0F the PT reverses
//!   (a CUP refund stands, flagged "ECR not informed", recoverable by Repeat Receipt);
//! - 06 B0 is honoured until the host is contacted, then answered `84 83 00`;
//! - the original of a refund comes in posrig's private TLV (`DF60`…`DF64`), the ECR's
//!   reference in TLV 1F1F; text to the ECR is English (CP437), whatever the terminal prints.

use protocol::fixture::journal::TxnType;
use protocol::money::{Currency, Money};
use protocol::time::Instant;
use protocol::tlv::{self, Tag};
use protocol::zvt::bmp::{Bcd, CardNumber};
use protocol::zvt::command::{
    Abort, Command, CommandKind, Completion, EnquiryCompletion, IntermediateStatus,
    OriginalRef as ZOriginal, PrintLine, PrintTextBlock, StatusInformation, config, tlv_tag,
};
use protocol::zvt::pt::PtEvent;

use super::flow::{Activity, FlowKind, Source};
use super::receipt::Slip;
use super::refusal::Refusal;
use super::{Output, Terminal};
use crate::journal::{OriginalRef, Outcome, TxnRecord};

#[derive(Default)]
pub(super) struct EcrState {
    /// The transaction whose 04 0F was sent and must be acknowledged.
    status_for: Option<u64>,
    /// The final message (06 0F / 06 1E) of the running command, resent if a refusal dropped it.
    final_msg: Option<Command>,
    /// The ECR sent BMP 49 in its command: the PT echoes it.
    echo_currency: Option<u16>,
    /// The ECR's printer said "not ready" (84 CC): receipts go to the terminal's printer.
    printer_failed: bool,
    /// An approved result that found no ECR connection to go to.
    undelivered: Option<u64>,
    pub deadline: Option<Instant>,
}

impl Terminal {
    pub(super) fn pump_ecr(&mut self) {
        while let Some(ev) = self.pt.poll_event() {
            match ev {
                PtEvent::Command { command, .. } => match command {
                    Ok(c) => self.on_ecr_command(c),
                    Err(e) => {
                        let _ = self.pt.refuse(e.refusal_code(), self.now);
                    }
                },
                PtEvent::AbortRequested { .. } => self.on_ecr_abort(),
                PtEvent::EcrAcked { kind } => {
                    if kind == CommandKind::StatusInformation
                        && let Some(id) = self.ecr.status_for.take()
                    {
                        self.ecr_informed(id);
                    }
                }
                PtEvent::EcrRefused { kind, dropped, .. }
                | PtEvent::EcrTimeout { kind, dropped }
                | PtEvent::LinkFailed { kind, dropped } => {
                    self.ecr_answer_failed(kind, dropped);
                }
                PtEvent::PrinterNotReady { dropped, .. } => {
                    self.ecr.printer_failed = true;
                    if dropped > 0 {
                        self.resend_final();
                    }
                }
                PtEvent::EcrBusy { .. } => {}
                PtEvent::MasterReturned => {
                    self.ecr.final_msg = None;
                    self.ecr.echo_currency = None;
                }
                PtEvent::UnexpectedCommand { .. } | PtEvent::UnexpectedAnswer { .. } => {}
                PtEvent::Noise { bytes } => self
                    .out
                    .push_back(Output::Link(format!("noise {} bytes", bytes.len()))),
                PtEvent::Link(trace) => self.out.push_back(Output::Link(format!("{trace:?}"))),
                PtEvent::TransportBroken(_) => self.pt.reset(),
            }
        }
    }

    /// The ECR acknowledged the result of `id`: from now on it stands whatever happens to the
    /// terminal (before this, a power cut leaves it to be reversed at power-on).
    fn ecr_informed(&mut self, id: u64) {
        if let Some(t) = self.j.txn(id).filter(|t| !t.ecr_informed) {
            let mut t = t.clone();
            t.ecr_informed = true;
            self.journal_op(crate::journal::JournalOp::PutTxn(Box::new(t)));
        }
    }

    pub(super) fn ecr_disconnected(&mut self) {
        // Queued messages went with the connection; a result not yet acknowledged is handled by
        // the same rule as an unacknowledged 04 0F.
        if let Some(id) = self.ecr.status_for.take() {
            self.auto_reverse(id);
        }
        self.ecr.final_msg = None;
    }

    pub(super) fn ecr_timeouts(&mut self) {}

    fn password_ok(&self, pw: &Bcd<3>) -> bool {
        !self.cfg.profile.zvt.check_password || pw.digits() == self.cfg.profile.zvt.password
    }

    fn busy(&self) -> bool {
        !matches!(
            self.activity,
            Activity::Idle | Activity::Result { .. } | Activity::Menu { .. }
        )
    }

    fn on_ecr_command(&mut self, c: Command) {
        let now = self.now;
        match c {
            Command::Registration(r) => {
                if !self.password_ok(&r.password) {
                    let _ = self.pt.refuse(0x37, now);
                    return;
                }
                if r.currency
                    .is_some_and(|cc| cc != self.cfg.profile.currency.numeric())
                {
                    let _ = self.pt.accept(now);
                    let mut a = Abort::new(0x6F);
                    a.currency = Some(self.cfg.profile.currency.numeric());
                    let _ = self.pt.send(&Command::Abort(a), now);
                    return;
                }
                let _ = self.pt.accept(now);
                let mut status = 0u8;
                if !self.signed_on() {
                    status |= 0x01; // initialisation (sign-on) needed
                }
                let completion = Completion {
                    status_byte: Some(status),
                    tid: Bcd::from_digits(&self.cfg.profile.terminal_id),
                    currency: Some(self.cfg.profile.currency.numeric()),
                    ..Default::default()
                };
                let _ = self.pt.send(&Command::Completion(completion), now);
            }
            Command::StatusEnquiry(_) => {
                let _ = self.pt.accept(now);
                let status = if self.signed_on() { 0x00 } else { 0x51 };
                let c = EnquiryCompletion {
                    sw_version: Some(self.cfg.profile.software_version.as_bytes().to_vec()),
                    terminal_status: Some(status),
                    ..Default::default()
                };
                let _ = self.pt.send(&Command::EnquiryCompletion(c), now);
            }
            Command::LogOff(_) => {
                let _ = self.pt.accept_with(false, now);
            }
            Command::Diagnosis(_) => {
                let _ = self.pt.accept(now);
                let _ = self
                    .pt
                    .send(&Command::Completion(Completion::default()), now);
            }
            Command::AbortFromEcr(_) => {
                // Nothing is running: nothing to abort.
                let _ = self.pt.accept_with(false, now);
            }
            Command::Initialisation(p) => {
                if !self.password_ok(&p.password) {
                    let _ = self.pt.refuse(0x37, now);
                    return;
                }
                if self.busy() {
                    let _ = self.pt.refuse(0x83, now);
                    return;
                }
                let _ = self.pt.accept(now);
                self.start_flow(FlowKind::SignOn, Source::Ecr, |_| {});
            }
            Command::EndOfDay(p) => {
                if !self.password_ok(&p.password) {
                    let _ = self.pt.refuse(0x37, now);
                    return;
                }
                if self.busy() {
                    let _ = self.pt.refuse(0x83, now);
                    return;
                }
                let _ = self.pt.accept(now);
                self.start_flow(FlowKind::Settle, Source::Ecr, |_| {});
            }
            Command::RepeatReceipt(p) => {
                if !self.password_ok(&p.password) {
                    let _ = self.pt.refuse(0x37, now);
                    return;
                }
                let _ = self.pt.accept(now);
                // The last transaction's result again, then its receipt: what an ECR that lost
                // the result needs to recover it.
                if let Some(t) = self
                    .j
                    .txns
                    .iter()
                    .rev()
                    .find(|t| t.outcome != Outcome::Unknown)
                    .cloned()
                {
                    self.ecr_status(&t, t.outcome.clone());
                    if t.outcome == Outcome::Approved && !t.ecr_informed {
                        let mut t2 = t.clone();
                        t2.ecr_informed = true;
                        self.journal_op(crate::journal::JournalOp::PutTxn(Box::new(t2)));
                    }
                }
                self.reprint_last(true);
                self.ecr_finish(None);
            }
            Command::Refund(r) => {
                if !self.password_ok(&r.password) {
                    let _ = self.pt.refuse(0x37, now);
                    return;
                }
                if self.busy() {
                    let _ = self.pt.refuse(0x83, now);
                    return;
                }
                let Some(minor) = r.amount_minor else {
                    let _ = self.pt.refuse(0x9A, now);
                    return;
                };
                let manual = r
                    .card
                    .pan
                    .as_ref()
                    .and_then(CardNumber::to_pan)
                    .zip(r.card.expiry.as_ref().map(|e| e.digits()));
                if manual.is_some() && !self.cfg.profile.refund.allow_manual_entry {
                    let _ = self.pt.refuse(0x83, now);
                    return;
                }
                let Ok(orig) = r.original_ref() else {
                    let _ = self.pt.refuse(0x9A, now);
                    return;
                };
                let reference = r
                    .ecr_reference()
                    .ok()
                    .flatten()
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                let currency = match r.currency {
                    Some(cc) => Currency::from_numeric(cc),
                    None => Some(self.cfg.profile.currency),
                };
                let _ = self.pt.accept(now);
                self.ecr = EcrState {
                    echo_currency: r.currency,
                    ..EcrState::default()
                };
                let Some(cur) = currency else {
                    self.start_flow(FlowKind::Refund, Source::Ecr, |_| {});
                    self.finish_refused(Refusal::Currency);
                    return;
                };
                let amount = Money::from_minor(minor, cur);
                let card = manual.map(|(pan, exp)| self.manual_card(pan, exp));
                self.start_flow(FlowKind::Refund, Source::Ecr, move |f| {
                    f.amount = Some(amount);
                    f.card = card;
                    f.ecr_reference = reference;
                    if let Some(o) = orig {
                        f.orig = to_journal_ref(&o);
                    }
                });
            }
            Command::Authorization(a) => {
                if self.busy() {
                    let _ = self.pt.refuse(0x83, now);
                    return;
                }
                let Some(minor) = a.amount_minor else {
                    let _ = self.pt.refuse(0x9A, now);
                    return;
                };
                let cur = a
                    .currency
                    .and_then(Currency::from_numeric)
                    .unwrap_or(self.cfg.profile.currency);
                let _ = self.pt.accept(now);
                self.ecr = EcrState {
                    echo_currency: a.currency,
                    ..EcrState::default()
                };
                if cur != self.cfg.profile.currency {
                    self.start_flow(FlowKind::Sale, Source::Ecr, |_| {});
                    self.finish_refused(Refusal::Currency);
                    return;
                }
                let amount = Money::from_minor(minor, cur);
                let reference = a
                    .tlv
                    .as_deref()
                    .and_then(|t| tlv::find(t, Tag(tlv_tag::TRANSACTION_ID)).ok().flatten())
                    .map(|t| String::from_utf8_lossy(t.value).into_owned());
                self.start_flow(FlowKind::Sale, Source::Ecr, move |f| {
                    f.amount = Some(amount);
                    f.ecr_reference = reference;
                });
            }
            Command::Reversal(r) => {
                if !self.password_ok(&r.password) {
                    let _ = self.pt.refuse(0x37, now);
                    return;
                }
                if self.busy() {
                    let _ = self.pt.refuse(0x83, now);
                    return;
                }
                let receipt = r.receipt.as_ref().and_then(|b| b.to_u64());
                let _ = self.pt.accept(now);
                self.ecr = EcrState::default();
                let found = receipt
                    .and_then(|n| {
                        self.j
                            .txns
                            .iter()
                            .rev()
                            .find(|t| t.receipt_no as u64 == n && t.kind == TxnType::Sale)
                    })
                    .cloned();
                match found {
                    None => self.ecr_abort_now(0xB5),
                    Some(t) if matches!(t.outcome, Outcome::Voided | Outcome::Reversed) => {
                        self.ecr_abort_now(0xB4)
                    }
                    Some(t)
                        if t.outcome != Outcome::Approved
                            || t.settled
                            || r.amount_minor.is_some_and(|a| a != t.amount.minor()) =>
                    {
                        self.ecr_abort_now(0xB5)
                    }
                    Some(t) => {
                        let amount = t.amount;
                        self.start_flow(FlowKind::Void, Source::Ecr, move |f| {
                            f.amount = Some(amount);
                            f.original_id = Some(t.id);
                            f.orig_resolved = true;
                            f.orig.stan = Some(t.stan);
                            f.orig.batch = Some(t.batch);
                        });
                    }
                }
            }
            Command::Raw(_) => {
                let _ = self.pt.refuse(0x83, now);
            }
            _ => {
                let _ = self.pt.refuse(0x83, now);
            }
        }
    }

    fn ecr_abort_now(&mut self, code: u8) {
        let _ = self.pt.send(&Command::Abort(Abort::new(code)), self.now);
    }

    /// 06 B0: honoured until the host is contacted.
    fn on_ecr_abort(&mut self) {
        let in_ecr_flow = self.flow().is_some_and(|f| f.source == Source::Ecr);
        let online = self.host.awaiting() || self.flow().is_some_and(|f| f.txn_id.is_some());
        if in_ecr_flow && !online {
            let _ = self.pt.answer_abort(true, self.now);
            self.host_jobs_clear();
            self.finish_refused(Refusal::Cancelled);
        } else {
            let _ = self.pt.answer_abort(false, self.now);
        }
    }

    fn host_jobs_clear(&mut self) {
        if !self.host.awaiting() {
            self.host = super::host::HostState::new(self.cfg.dialect.length_prefix);
        }
    }

    /// The ECR wants receipts as print commands.
    pub(super) fn ecr_prints_receipts(&self) -> bool {
        let cfg = self.pt.registration().map(|r| r.config).unwrap_or(0);
        !self.ecr.printer_failed
            && cfg & config::ECR_PRINT_TYPE != 0
            && cfg & config::ECR_PRINTS_PAYMENT_RECEIPT != 0
    }

    pub(super) fn ecr_print(&mut self, slip: &Slip) {
        if !self.pt.is_master() {
            return;
        }
        let lines = slip.to_ecr_lines(self.cfg.profile.printer.width.min(40));
        if self.pt.command_permitted([0x06, 0xD3]) {
            let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            let block = PrintTextBlock::from_lines(1, &refs);
            let _ = self.pt.send(&Command::PrintTextBlock(block), self.now);
        } else {
            let n = lines.len();
            for (i, l) in lines.into_iter().enumerate() {
                // Attribute 0x80 on the last line: end of receipt (SPEC-C 3.6).
                let attribute = if i + 1 == n { 0x80 } else { 0x00 };
                let _ = self.pt.send(
                    &Command::PrintLine(PrintLine {
                        attribute,
                        text: l.into_bytes(),
                    }),
                    self.now,
                );
            }
        }
    }

    /// 04 FF, only when the ECR asked for intermediate status at Registration.
    pub(super) fn ecr_intermediate(&mut self, status: u8) {
        let ecr_flow = self.flow().is_some_and(|f| f.source == Source::Ecr);
        if ecr_flow && self.pt.is_master() && self.pt.wants_intermediate_status() {
            let _ = self.pt.send(
                &Command::IntermediateStatus(IntermediateStatus::new(status)),
                self.now,
            );
        }
    }

    pub(super) fn ecr_card_prompt(&mut self) {
        self.ecr_intermediate(0x0A);
    }

    /// The 04 0F of a transaction (result, amount, trace, receipt, masked PAN…).
    fn ecr_status(&mut self, t: &TxnRecord, outcome: Outcome) {
        if !self.pt.is_master() {
            return;
        }
        let local = t.at.to_local(self.cfg.profile.time_zone);
        let (result, refusal) = match &outcome {
            Outcome::Approved => (0u8, None),
            Outcome::Declined(c) => (
                Refusal::Host(c.clone()).zvt_code(),
                Some(Refusal::Host(c.clone())),
            ),
            _ => (Refusal::NoReply.zvt_code(), Some(Refusal::NoReply)),
        };
        let mut vu = [b' '; 15];
        for (i, b) in self.cfg.profile.merchant_id.bytes().take(15).enumerate() {
            vu[i] = b;
        }
        let aid = t.auth_code.as_ref().map(|a| {
            let mut x = [0u8; 8];
            for (i, b) in a.bytes().take(8).enumerate() {
                x[i] = b;
            }
            x
        });
        let mut tlv_bytes = Vec::new();
        if self.pt.tlv_allowed() {
            tlv::write(
                &mut tlv_bytes,
                Tag(tlv_tag::TRANSACTION_ID),
                format!("{:04}", t.receipt_no).as_bytes(),
            );
            if let Some((code, text)) = refusal.as_ref().and_then(|r| r.extended_error()) {
                tlv::write(&mut tlv_bytes, Tag(tlv_tag::EXTENDED_ERROR_CODE), &code);
                tlv::write(
                    &mut tlv_bytes,
                    Tag(tlv_tag::EXTENDED_ERROR_TEXT),
                    text.as_bytes(),
                );
            }
        }
        let si = StatusInformation {
            result: Some(result),
            amount_minor: Some(t.amount.minor()),
            currency: self.ecr.echo_currency,
            trace: Bcd::from_u64(t.stan as u64),
            time: Bcd::from_digits(&local.format("%H%M%S").to_string()),
            date: Bcd::from_digits(&local.format("%m%d").to_string()),
            receipt: Bcd::from_u64(t.receipt_no as u64),
            pan: CardNumber::from_digits(&t.pan_masked),
            tid: Bcd::from_digits(&self.cfg.profile.terminal_id),
            vu: Some(vu),
            aid: if result == 0 { aid } else { None },
            payment_type: Some(0x60),
            tlv: (!tlv_bytes.is_empty()).then_some(tlv_bytes),
            ..Default::default()
        };
        self.ecr.status_for = (result == 0).then_some(t.id);
        let _ = self
            .pt
            .send(&Command::StatusInformation(Box::new(si)), self.now);
    }

    /// An approved transaction: its 04 0F (receipts follow from the caller, then the end).
    /// With the ECR connection gone the result cannot be delivered; see
    /// [`Terminal::ecr_result_undelivered`].
    pub(super) fn ecr_approved(&mut self, t: &TxnRecord) {
        if !self.pt.is_master() {
            self.ecr.undelivered = Some(t.id);
            return;
        }
        self.ecr_status(t, Outcome::Approved);
    }

    /// Once the result screen is up: a result that could not be delivered (the connection
    /// dropped during the transaction) is one the ECR never acknowledged (R-REV) — iso87
    /// reverses, a CUP refund stands flagged "ECR not informed" for Repeat Receipt.
    pub(super) fn ecr_result_undelivered(&mut self) {
        if let Some(id) = self.ecr.undelivered.take() {
            self.ecr.status_for = Some(id);
            self.ecr_answer_failed(CommandKind::StatusInformation, 0);
        }
    }

    /// A refused or declined one: 04 0F with the code (for transactions), then 06 1E.
    pub(super) fn ecr_refused(&mut self, r: &Refusal, record: Option<&TxnRecord>) {
        if !self.pt.is_master() {
            return;
        }
        let txn_flow = self.flow().is_some_and(|f| f.kind.txn_type().is_some());
        if !r.is_abandoned() && txn_flow {
            let code = r.zvt_code();
            let mut tlv_bytes = Vec::new();
            if let (true, Some((c, text))) = (self.pt.tlv_allowed(), r.extended_error()) {
                tlv::write(&mut tlv_bytes, Tag(tlv_tag::EXTENDED_ERROR_CODE), &c);
                tlv::write(
                    &mut tlv_bytes,
                    Tag(tlv_tag::EXTENDED_ERROR_TEXT),
                    text.as_bytes(),
                );
            }
            let amount = record
                .map(|t| t.amount)
                .or_else(|| self.flow().and_then(|f| f.amount));
            let si = StatusInformation {
                result: Some(code),
                amount_minor: amount.map(|a| a.minor()),
                currency: self.ecr.echo_currency,
                tid: Bcd::from_digits(&self.cfg.profile.terminal_id),
                tlv: (!tlv_bytes.is_empty()).then_some(tlv_bytes),
                ..Default::default()
            };
            let _ = self
                .pt
                .send(&Command::StatusInformation(Box::new(si)), self.now);
        }
    }

    /// The end of the ECR's command: 06 0F on success, 06 1E with the code otherwise.
    pub(super) fn ecr_finish(&mut self, refusal: Option<&Refusal>) {
        if !self.pt.is_master() {
            return;
        }
        let msg = match refusal {
            None => Command::Completion(Completion::default()),
            Some(r) => {
                let code = r.zvt_code();
                let mut a = match r.extended_error() {
                    Some((c, text)) if self.pt.tlv_allowed() => {
                        Abort::with_extended_error(code, &c, text.as_bytes())
                    }
                    _ => Abort::new(code),
                };
                if code == 0x6F {
                    a.currency = Some(self.cfg.profile.currency.numeric());
                }
                Command::Abort(a)
            }
        };
        self.ecr.final_msg = Some(msg.clone());
        let _ = self.pt.send(&msg, self.now);
    }

    /// Sign-on and settlement from the ECR ended well.
    pub(super) fn ecr_done(&mut self) {
        self.ecr_finish(None);
    }

    fn resend_final(&mut self) {
        if let Some(m) = self.ecr.final_msg.clone() {
            let _ = self.pt.send(&m, self.now);
        }
    }

    /// The ECR refused or never acknowledged one of our messages.
    fn ecr_answer_failed(&mut self, kind: CommandKind, dropped: usize) {
        // The 04 0F failed, or an earlier message (04 FF) failed and the queued 04 0F went
        // with it unsent: either way the ECR never acknowledged the result (R-REV).
        let status_lost = kind == CommandKind::StatusInformation || dropped > 0;
        if status_lost && let Some(id) = self.ecr.status_for.take() {
            // SPEC-C 2.2.6–2.2.9: the PT reverses; the ECR is told the transaction failed.
            let reversed = self.auto_reverse(id);
            let reversed_text = self.t("交易已冲正", "REVERSED");
            self.ecr.final_msg = Some(Command::Abort(Abort::new(0x6C)));
            if self.pt.is_master() {
                let _ = self.pt.send(&Command::Abort(Abort::new(0x6C)), self.now);
            }
            if let Activity::Result { lines } = &mut self.activity {
                // The cashier must not read "approved" for a refund the terminal undid.
                if reversed && let Some(first) = lines.first_mut() {
                    *first = reversed_text;
                }
                lines.push(match self.cfg.profile.language {
                    protocol::fixture::terminal::Language::Zh => "收银机未确认".into(),
                    protocol::fixture::terminal::Language::En => "ECR NOT INFORMED".into(),
                });
            }
            return;
        }
        if dropped > 0 {
            self.resend_final();
        }
    }
}

fn to_journal_ref(o: &ZOriginal) -> OriginalRef {
    match o {
        ZOriginal::TraceBatch { trace, batch } => OriginalRef {
            stan: Some(*trace),
            batch: Some(*batch),
            ..Default::default()
        },
        ZOriginal::RrnDate { rrn, month, day } => OriginalRef {
            rrn: Some(rrn.clone()),
            date: Some(format!("{month:02}{day:02}")),
            ..Default::default()
        },
        ZOriginal::AuthCode(a) => OriginalRef {
            auth_code: Some(a.clone()),
            ..Default::default()
        },
    }
}
