//! What the terminal is doing: the idle screen, the CUP standalone menu, and the transaction
//! flows (sale, void, refund, sign-on, settlement, reprint) from the keypad or the ECR.
//!
//! A refund walks DESIGN.md §2's four steps: request (supervisor password at the keypad, the
//! ZVT password at the ECR), acceptance (card, then the original by RRN + date, by trace +
//! batch (F1) or by auth code (F2)), review (every refusal before anything is sent), and
//! processing (the host, then the journal, then the receipts).

use protocol::card::track::Track2;
use protocol::card::{Pan, PanHash};
use protocol::fixture::cards::CardFixture;
use protocol::fixture::journal::TxnType;
use protocol::money::{FeeRefundPolicy, Money};
use protocol::riglink::{KeyName, Tone};
use protocol::time::resolve_mmdd;

use super::entry::{AmountField, DigitField};
use super::receipt::{self, Copy};
use super::refusal::{CardProblem, Prompt, Refusal};
use super::review::{self, Found};
use super::{CardEvent, Terminal};
use crate::journal::{EntryMode, OriginalRef, TxnRecord};

/// Where a flow came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Keypad,
    Ecr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FlowKind {
    Sale,
    Void,
    Refund,
    SignOn,
    Settle,
}

impl FlowKind {
    pub(super) fn txn_type(self) -> Option<TxnType> {
        match self {
            FlowKind::Sale => Some(TxnType::Sale),
            FlowKind::Void => Some(TxnType::Void),
            FlowKind::Refund => Some(TxnType::Refund),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    Supervisor,
    Amount,
    Card,
    OrigKey,
    OrigDate,
    DupPrompt,
    Confirm,
    /// Host work under way (pending records, sign-on, the request itself).
    Processing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OrigMode {
    Rrn,
    Trace,
    Auth,
}

/// What was read from the card. Track data is used to build the request and never stored.
#[derive(Clone, Debug)]
pub(super) struct CardRead {
    pub pan: Pan,
    pub hash: PanHash,
    pub expiry: String,
    pub entry: EntryMode,
    /// Track 2 equivalent (digits and `=`), for a sale's field 35 only.
    pub track2: Option<String>,
    /// EMV data for field 55 (never tag 57).
    pub icc: Option<Vec<u8>>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("kind", &self.kind)
            .field("step", &self.step)
            .finish()
    }
}

pub(super) struct Flow {
    pub kind: FlowKind,
    pub source: Source,
    pub step: Step,
    pub sup_tries: u8,
    pub input: DigitField,
    pub amount_field: AmountField,
    pub amount: Option<Money>,
    pub card: Option<CardRead>,
    pub chip_failed: bool,
    /// A read problem to show on the card screen (bad swipe, use chip…).
    pub card_hint: Option<Refusal>,
    pub orig: OriginalRef,
    pub orig_mode: OrigMode,
    pub orig_resolved: bool,
    pub original_id: Option<u64>,
    pub ecr_reference: Option<String>,
    pub dup_confirmed: bool,
    /// The record created when the request was built.
    pub txn_id: Option<u64>,
    /// A wrong supervisor password was just typed.
    pub sup_wrong: bool,
    /// An invalid original date was just typed.
    pub date_wrong: bool,
    /// The prompt on screen that gives up if nobody answers, and when (see
    /// [`Terminal::arm_prompt_timer`]).
    pub prompt_deadline: Option<(Step, protocol::time::Instant)>,
}

impl Flow {
    pub(super) fn new(kind: FlowKind, source: Source, t: &Terminal) -> Flow {
        Flow {
            kind,
            source,
            step: Step::Processing,
            sup_tries: 0,
            input: DigitField::new(12),
            amount_field: AmountField::new(t.cfg.profile.currency),
            amount: None,
            card: None,
            chip_failed: false,
            card_hint: None,
            orig: OriginalRef::default(),
            orig_mode: OrigMode::Rrn,
            orig_resolved: false,
            original_id: None,
            ecr_reference: None,
            dup_confirmed: false,
            txn_id: None,
            sup_wrong: false,
            date_wrong: false,
            prompt_deadline: None,
        }
    }
}

/// The terminal's current activity.
pub(super) enum Activity {
    Idle,
    Menu {
        choice: Option<u8>,
    },
    Flow(Box<Flow>),
    /// A result or message, shown until a key (or the next command).
    Result {
        lines: Vec<String>,
    },
}

/// Two entries per row, each label short enough that a row with the `>` mark fits 20 columns.
const MENU: &[(u8, &str, &str)] = &[
    (1, "消费", "SALE"),
    (2, "撤销", "VOID"),
    (3, "退货", "REFUND"),
    (4, "结算", "SETTLE"),
    (5, "签到", "SIGN ON"),
    (6, "重打印", "REPRINT"),
];

impl Terminal {
    pub(super) fn flow(&self) -> Option<&Flow> {
        match &self.activity {
            Activity::Flow(f) => Some(f),
            _ => None,
        }
    }

    pub(super) fn flow_mut(&mut self) -> Option<&mut Flow> {
        match &mut self.activity {
            Activity::Flow(f) => Some(f),
            _ => None,
        }
    }

    pub(super) fn waiting_for_card(&self) -> bool {
        self.flow().is_some_and(|f| f.step == Step::Card)
    }

    /// The display for the current activity.
    pub(super) fn activity_screen(&self) -> Vec<String> {
        match &self.activity {
            Activity::Idle => vec![
                self.cfg.profile.merchant_name.clone(),
                self.t("欢迎光临", "WELCOME"),
                self.t("请按菜单键", "PRESS MENU"),
            ],
            Activity::Menu { choice } => {
                let mut v: Vec<String> = MENU
                    .chunks(2)
                    .map(|pair| {
                        pair.iter()
                            .map(|(n, zh, en)| {
                                let mark = if *choice == Some(*n) { ">" } else { "" };
                                format!("{mark}{n}.{}", self.t(zh, en))
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                v.truncate(self.cfg.profile.display.lines);
                v
            }
            Activity::Result { lines } => lines.clone(),
            Activity::Flow(f) => self.flow_screen(f),
        }
    }

    fn title(&self, f: &Flow) -> String {
        match f.kind {
            FlowKind::Sale => self.t("消费", "SALE"),
            FlowKind::Void => self.t("撤销", "VOID"),
            FlowKind::Refund => self.t("退货", "REFUND"),
            FlowKind::SignOn => self.t("签到", "SIGN ON"),
            FlowKind::Settle => self.t("结算", "SETTLEMENT"),
        }
    }

    fn flow_screen(&self, f: &Flow) -> Vec<String> {
        let title = self.title(f);
        match f.step {
            Step::Supervisor => {
                let mut v = vec![
                    title,
                    self.t("请输入主管密码", "SUPERVISOR PIN"),
                    f.input.masked(),
                ];
                if f.sup_wrong {
                    v.push(self.t("密码错误 请重输", "WRONG PIN - RETRY"));
                }
                v
            }
            Step::Amount => vec![
                title,
                self.t("请输入金额", "ENTER AMOUNT"),
                f.amount_field.value().to_string(),
            ],
            Step::Card => {
                let prompt = match &f.card_hint {
                    Some(h) => h.text(self.lang()),
                    None if f.chip_failed => self.t("芯片失败 请刷卡", "CHIP ERROR - SWIPE"),
                    None => self.t("请刷卡/插卡/挥卡", "SWIPE/INSERT/TAP"),
                };
                let mut v = vec![title, prompt];
                if let Some(a) = f.amount {
                    v.push(format!("{} {}", a.currency().alpha(), a));
                }
                v
            }
            Step::OrigKey => {
                let label = match f.orig_mode {
                    OrigMode::Rrn => self.t("原参考号:", "ORIG REF NO:"),
                    OrigMode::Trace => self.t("原凭证号:", "ORIG VOUCHER NO:"),
                    OrigMode::Auth => self.t("原授权码:", "ORIG AUTH CODE:"),
                };
                vec![
                    title,
                    label,
                    f.input.as_str().to_string(),
                    self.t("F1凭证号 F2授权码", "F1 TRACE F2 AUTH"),
                ]
            }
            Step::OrigDate => {
                let mut v = vec![
                    title,
                    self.t("原交易日期(MMDD):", "ORIG DATE (MMDD):"),
                    f.input.as_str().to_string(),
                ];
                if f.date_wrong {
                    v.push(self.t("日期无效", "INVALID DATE"));
                }
                v
            }
            Step::DupPrompt => vec![
                title,
                self.t("可能重复，继续？", "POSSIBLE DUPLICATE"),
                self.t("确认键继续", "CONTINUE? ENTER"),
            ],
            Step::Confirm => {
                // A sale's surcharge is shown before the cardholder agrees: the total they pay
                // and the part of it that is surcharge.
                let surcharge = (f.kind == FlowKind::Sale)
                    .then(|| f.amount.and_then(|a| self.surcharge_for(a)))
                    .flatten();
                let total = match (f.amount, surcharge) {
                    (Some(a), Some(s)) => a.checked_add(s),
                    (a, _) => a,
                };
                let amount = total
                    .map(|a| format!("{} {}", a.currency().alpha(), a))
                    .unwrap_or_default();
                let third = match surcharge {
                    Some(s) => format!("{} {s}", self.t("含附加费", "SURCHARGE")),
                    None => f.card.as_ref().map(|c| c.pan.masked()).unwrap_or_default(),
                };
                vec![
                    title,
                    amount,
                    third,
                    self.t("确认请按确认键", "ENTER TO CONFIRM"),
                ]
            }
            Step::Processing => match f.kind {
                FlowKind::SignOn => vec![title, self.t("签到中...", "SIGNING ON...")],
                FlowKind::Settle => vec![title, self.t("结算中...", "SETTLING...")],
                _ => vec![
                    title,
                    self.t("处理中", "PROCESSING"),
                    self.t("请稍候", "PLEASE WAIT"),
                ],
            },
        }
    }

    // ---- keys ----

    pub(super) fn on_key(&mut self, k: KeyName) {
        match &mut self.activity {
            Activity::Idle => {
                if k == KeyName::Menu {
                    self.activity = Activity::Menu { choice: None };
                }
            }
            Activity::Result { .. } => {
                if matches!(k, KeyName::Enter | KeyName::Cancel | KeyName::Clear)
                    && !self.pt.is_master()
                {
                    self.activity = Activity::Idle;
                }
            }
            Activity::Menu { choice } => match k {
                KeyName::Digit(d) if MENU.iter().any(|(n, _, _)| *n == d) => *choice = Some(d),
                KeyName::Enter => {
                    if let Some(c) = *choice {
                        self.menu_choice(c);
                    }
                }
                KeyName::Cancel | KeyName::Menu => self.activity = Activity::Idle,
                _ => {}
            },
            Activity::Flow(_) => self.flow_key(k),
        }
    }

    fn menu_choice(&mut self, c: u8) {
        let kind = match c {
            1 => FlowKind::Sale,
            2 => FlowKind::Void,
            3 => FlowKind::Refund,
            4 => FlowKind::Settle,
            5 => FlowKind::SignOn,
            6 => {
                self.reprint_last(false);
                return;
            }
            _ => return,
        };
        self.start_flow(kind, Source::Keypad, |_| {});
    }

    /// Starts a flow. Returns false if it was refused at once (shown as a result).
    pub(super) fn start_flow(
        &mut self,
        kind: FlowKind,
        source: Source,
        init: impl FnOnce(&mut Flow),
    ) -> bool {
        let mut f = Box::new(Flow::new(kind, source, self));
        init(&mut f);
        let needs_sign_on = matches!(
            kind,
            FlowKind::Sale | FlowKind::Void | FlowKind::Refund | FlowKind::Settle
        );
        // Manual sign-on opens the day; re-keying after A0/99 is not the cashier's job: a
        // terminal signed on today signs on again by itself before the transaction.
        if needs_sign_on
            && !self.signed_on_today()
            && self.sign_on_mode() == protocol::fixture::terminal::SignOnMode::Manual
        {
            self.activity = Activity::Flow(f);
            self.finish_refused(Refusal::SignOn);
            return false;
        }
        self.activity = Activity::Flow(f);
        self.advance();
        true
    }

    fn flow_key(&mut self, k: KeyName) {
        let Some(f) = self.flow() else { return };
        let step = f.step;
        let source = f.source;
        if k == KeyName::Cancel {
            match step {
                Step::Processing => self.cancel_processing(),
                Step::DupPrompt => self.finish_refused(Refusal::Duplicate),
                _ => self.finish_refused(Refusal::Cancelled),
            }
            return;
        }
        let lang_cur = self.cfg.profile.currency;
        let sup = self.cfg.profile.supervisor_password.clone();
        let Some(f) = self.flow_mut() else { return };
        let digits = match k {
            KeyName::Digit(d) => Some(((b'0' + d) as char).to_string()),
            KeyName::DoubleZero => Some("00".to_string()),
            _ => None,
        };
        match step {
            Step::Supervisor => match (k, digits) {
                (_, Some(d)) => {
                    f.input.push(&d);
                    f.sup_wrong = false;
                }
                (KeyName::Backspace, _) => f.input.backspace(),
                (KeyName::Clear, _) => f.input.clear(),
                (KeyName::Enter, _) => {
                    if f.input.as_str() == sup {
                        f.input = DigitField::new(12);
                        f.step = Step::Card; // advance() decides the real next step
                        f.sup_tries = u8::MAX; // marks "authorised"
                        self.advance();
                    } else {
                        f.sup_tries += 1;
                        f.input.clear();
                        f.sup_wrong = true;
                        if f.sup_tries >= 3 {
                            self.finish_refused(Refusal::Supervisor);
                        } else {
                            self.beep(Tone::Alert);
                        }
                    }
                }
                _ => {}
            },
            Step::Amount => match (k, digits) {
                (_, Some(d)) => {
                    f.amount_field.push(&d);
                }
                (KeyName::Backspace, _) => f.amount_field.backspace(),
                (KeyName::Clear, _) => f.amount_field.clear(),
                (KeyName::Enter, _) => {
                    let a = f.amount_field.value();
                    if a.is_zero() {
                        self.finish_refused(Refusal::Zero);
                    } else {
                        f.amount = Some(a);
                        self.advance();
                    }
                }
                _ => {}
            },
            Step::OrigKey => match (k, digits) {
                (_, Some(d)) => {
                    f.input.push(&d);
                }
                (KeyName::Backspace, _) => f.input.backspace(),
                (KeyName::Clear, _) => f.input.clear(),
                (KeyName::F1, _) => {
                    f.orig_mode = OrigMode::Trace;
                    f.input = DigitField::new(6);
                }
                (KeyName::F2, _) => {
                    f.orig_mode = OrigMode::Auth;
                    f.input = DigitField::new(6);
                }
                (KeyName::Enter, _) => {
                    let v = f.input.as_str().to_string();
                    match f.orig_mode {
                        OrigMode::Rrn if v.len() == 12 => {
                            f.orig.rrn = Some(v);
                            f.input = DigitField::new(4);
                            f.step = Step::OrigDate;
                        }
                        OrigMode::Trace if !v.is_empty() => {
                            f.orig.stan = v.parse().ok();
                            self.resolve_original();
                        }
                        OrigMode::Auth if v.len() == 6 => {
                            f.orig.auth_code = Some(v);
                            self.resolve_original();
                        }
                        _ => self.beep(Tone::Alert),
                    }
                }
                _ => {}
            },
            Step::OrigDate => match (k, digits) {
                (_, Some(d)) => {
                    f.input.push(&d);
                    f.date_wrong = false;
                }
                (KeyName::Backspace, _) => f.input.backspace(),
                (KeyName::Enter, _) => {
                    let v = f.input.as_str().to_string();
                    let ok = v.len() == 4
                        && resolve_mmdd(
                            v[..2].parse().unwrap_or(0),
                            v[2..].parse().unwrap_or(0),
                            self_today(&self.now, &self.cfg),
                        )
                        .is_some();
                    let Some(f) = self.flow_mut() else { return };
                    if ok {
                        f.orig.date = Some(v);
                        self.resolve_original();
                    } else {
                        f.input.clear();
                        f.date_wrong = true;
                        self.beep(Tone::Alert);
                    }
                }
                _ => {}
            },
            Step::DupPrompt => {
                if k == KeyName::Enter {
                    f.dup_confirmed = true;
                    self.advance();
                }
            }
            Step::Confirm => {
                if k == KeyName::Enter {
                    // The second ENTER on this screen finds the flow processing and is ignored.
                    f.step = Step::Processing;
                    self.start_processing();
                }
            }
            Step::Card | Step::Processing => {}
        }
        let _ = (lang_cur, source);
    }

    // ---- cards ----

    pub(super) fn on_card(&mut self, c: CardEvent) {
        match c {
            CardEvent::Remove => {
                let was = self.inserted.take();
                // The prompt to take the card goes with the card.
                let prompt = self.t("请取走卡片", "REMOVE CARD");
                if let Activity::Result { lines } = &mut self.activity {
                    lines.retain(|l| *l != prompt);
                }
                let early = self.flow().is_some_and(|f| {
                    f.card.as_ref().is_some_and(|c| c.entry == EntryMode::Chip)
                        && f.step != Step::Processing
                });
                if was.is_some() && early {
                    // Card pulled before the transaction went online.
                    self.finish_refused(Refusal::CardError(CardProblem::Unreadable));
                }
            }
            CardEvent::Insert(card) => {
                self.inserted = Some(card.clone());
                if self.waiting_for_card() {
                    self.read_chip(&card);
                }
            }
            CardEvent::Swipe(card) => {
                if self.waiting_for_card() {
                    self.read_swipe(&card);
                }
            }
            CardEvent::Tap(card) => {
                if self.waiting_for_card() {
                    self.read_contactless(&card);
                }
            }
        }
    }

    fn card_hint(&mut self, hint: Refusal) {
        self.beep(Tone::Alert);
        if let Some(f) = self.flow_mut() {
            f.card_hint = Some(hint);
        }
    }

    fn read_swipe(&mut self, card: &CardFixture) {
        use protocol::riglink::FaultKind;
        let raw = card.track2().map(|t| t.expose().to_string());
        let parsed = raw.as_deref().and_then(|r| Track2::parse(r).ok());
        let (Some(t2), false) = (parsed, self.faults.contains(&FaultKind::BadSwipe)) else {
            self.card_hint(Refusal::CardError(CardProblem::Unreadable));
            return;
        };
        let chip_failed = self.flow().is_some_and(|f| f.chip_failed);
        if t2.service_code().is_chip() && !chip_failed {
            // R-CARD-READ: a chip card is read by its chip unless the chip failed first.
            self.card_hint(Refusal::CardError(CardProblem::UseChip));
            return;
        }
        let entry = if chip_failed {
            EntryMode::FallbackSwipe
        } else {
            EntryMode::Swipe
        };
        let track2 = t2
            .encode()
            .expose()
            .trim_start_matches(';')
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let read = CardRead {
            hash: t2.pan().keyed_hash(&self.cfg.pan_hash_key),
            pan: t2.pan().clone(),
            expiry: t2.expiry().to_yymm(),
            entry,
            track2: Some(track2),
            icc: None,
        };
        self.card_read(read, card);
    }

    fn read_chip(&mut self, card: &CardFixture) {
        use protocol::riglink::FaultKind;
        if !card.has_chip() {
            self.card_hint(Refusal::CardError(CardProblem::Unreadable));
            return;
        }
        if card.chip_mute || self.faults.contains(&FaultKind::ChipMute) {
            self.beep(Tone::Alert);
            if let Some(f) = self.flow_mut() {
                f.chip_failed = true;
                f.card_hint = None;
            }
            return;
        }
        let read = CardRead {
            hash: card.pan().keyed_hash(&self.cfg.pan_hash_key),
            pan: card.pan().clone(),
            expiry: card.expiry.to_yymm(),
            entry: EntryMode::Chip,
            track2: None,
            icc: card.emv_tlv(),
        };
        self.card_read(read, card);
    }

    fn read_contactless(&mut self, card: &CardFixture) {
        use protocol::riglink::LedState::{Off, On};
        if !card.contactless {
            self.card_hint(Refusal::CardError(CardProblem::UseChip));
            return;
        }
        // EMV Contactless Book A: reading — LED 2, then LED 3; success — all four, and the tone.
        self.out.push_back(super::Output::Leds([On, On, Off, Off]));
        self.out.push_back(super::Output::Leds([On, On, On, Off]));
        self.leds = [On, On, On, Off];
        self.leds_success_until = Some(self.now + std::time::Duration::from_millis(750));
        self.beep(Tone::Success);
        let read = CardRead {
            hash: card.pan().keyed_hash(&self.cfg.pan_hash_key),
            pan: card.pan().clone(),
            expiry: card.expiry.to_yymm(),
            entry: EntryMode::Contactless,
            track2: None,
            icc: card.emv_tlv(),
        };
        self.card_read(read, card);
    }

    fn card_read(&mut self, read: CardRead, card: &CardFixture) {
        if card.is_expired_on(self.today()) {
            self.finish_refused(Refusal::CardError(CardProblem::Expired));
            return;
        }
        if let Some(f) = self.flow_mut() {
            f.card = Some(read);
            f.card_hint = None;
        }
        self.advance();
    }

    /// Manual card entry from the ECR (BMP 22 + 0E).
    pub(super) fn manual_card(&mut self, pan: Pan, expiry: String) -> CardRead {
        CardRead {
            hash: pan.keyed_hash(&self.cfg.pan_hash_key),
            pan,
            expiry,
            entry: EntryMode::Manual,
            track2: None,
            icc: None,
        }
    }

    // ---- acceptance and review ----

    fn resolve_original(&mut self) {
        let Some(f) = self.flow() else { return };
        let key = f.orig.clone();
        match review::find_original(&self.j, &key) {
            Err(r) => self.finish_refused(r),
            Ok(found) => {
                let id = match found {
                    // RRN + date: the date must be the original's too.
                    Found::Local(t) if key.date.as_ref().is_none_or(|d| *d == self.mmdd_of(t)) => {
                        Some(t.id)
                    }
                    _ => None,
                };
                if let Some(f) = self.flow_mut() {
                    f.original_id = id;
                    f.orig_resolved = true;
                }
                self.advance();
            }
        }
    }

    fn mmdd_of(&self, t: &TxnRecord) -> String {
        t.at.to_local(self.cfg.profile.time_zone)
            .format("%m%d")
            .to_string()
    }

    /// Moves the flow to its next missing piece, or to review and processing.
    pub(super) fn advance(&mut self) {
        let require_original = self.cfg.profile.refund.require_original;
        let Some(f) = self.flow_mut() else { return };
        match f.kind {
            FlowKind::SignOn | FlowKind::Settle => {
                f.step = Step::Processing;
                self.start_processing();
            }
            FlowKind::Refund => {
                if f.source == Source::Keypad && f.sup_tries != u8::MAX {
                    f.step = Step::Supervisor;
                    return;
                }
                // R-DUP: the same ECR reference again is answered with the first result before
                // anything else — no card to read, nothing to review, nothing sent.
                if f.card.is_none() && self.same_reference_replayed() {
                    return;
                }
                let Some(f) = self.flow_mut() else { return };
                if f.card.is_none() {
                    f.step = Step::Card;
                    self.ecr_card_prompt();
                    return;
                }
                if !f.orig_resolved {
                    let named =
                        f.orig.rrn.is_some() || f.orig.stan.is_some() || f.orig.auth_code.is_some();
                    if named && f.source == Source::Ecr {
                        self.resolve_original();
                        return;
                    }
                    if f.source == Source::Keypad || require_original {
                        f.step = Step::OrigKey;
                        return;
                    }
                    f.orig_resolved = true; // an unreferenced refund: the host decides
                }
                if f.amount.is_none() {
                    f.step = Step::Amount;
                    return;
                }
                if let Err(r) = self.review_refund() {
                    self.finish_refused(r);
                    return;
                }
                if self.duplicate_check() {
                    return;
                }
                self.confirm_or_process();
            }
            FlowKind::Sale => {
                if f.amount.is_none() {
                    f.step = Step::Amount;
                    return;
                }
                if f.card.is_none() {
                    f.step = Step::Card;
                    self.ecr_card_prompt();
                    return;
                }
                self.confirm_or_process();
            }
            FlowKind::Void => {
                if f.source == Source::Keypad && f.sup_tries != u8::MAX {
                    f.step = Step::Supervisor;
                    return;
                }
                if !f.orig_resolved {
                    if f.source == Source::Keypad && f.orig.stan.is_none() {
                        f.orig_mode = OrigMode::Trace;
                        f.input = DigitField::new(6);
                        f.step = Step::OrigKey;
                        return;
                    }
                    self.resolve_original();
                    return;
                }
                if let Err(r) = self.review_void() {
                    self.finish_refused(r);
                    return;
                }
                // A void undoes the whole sale: its amount is the original's (the keypad never
                // asks for one; without it nothing could be sent).
                let whole = self
                    .flow()
                    .and_then(|f| f.original_id)
                    .and_then(|id| self.j.txn(id))
                    .map(|o| o.amount);
                if let Some(f) = self.flow_mut()
                    && f.amount.is_none()
                {
                    f.amount = whole;
                }
                if f_needs_card(self) {
                    return;
                }
                self.confirm_or_process();
            }
        }
    }

    fn confirm_or_process(&mut self) {
        let Some(f) = self.flow_mut() else { return };
        if f.source == Source::Keypad {
            f.step = Step::Confirm;
        } else {
            f.step = Step::Processing;
            self.start_processing();
        }
    }

    fn surcharge_refundable(&self) -> bool {
        self.cfg
            .profile
            .surcharge
            .as_ref()
            .is_none_or(|s| s.refundable)
    }

    fn review_refund(&self) -> Result<(), Refusal> {
        let Some(f) = self.flow() else { return Ok(()) };
        let (Some(amount), Some(card)) = (f.amount, f.card.as_ref()) else {
            return Ok(());
        };
        if amount.currency() != self.cfg.profile.currency {
            return Err(Refusal::Currency);
        }
        match f.original_id.and_then(|id| self.j.txn(id)) {
            Some(orig) => review::review(
                &self.j,
                orig,
                amount,
                &card.hash,
                self.now,
                self.cfg.profile.time_zone,
                self.cfg.profile.refund.window_days,
                self.surcharge_refundable(),
            ),
            None if amount.is_zero() => Err(Refusal::Zero),
            None => Ok(()),
        }
    }

    fn review_void(&self) -> Result<(), Refusal> {
        let Some(f) = self.flow() else { return Ok(()) };
        let Some(orig) = f.original_id.and_then(|id| self.j.txn(id)) else {
            return Err(Refusal::NotFound);
        };
        if orig.kind != TxnType::Sale {
            return Err(Refusal::NotSale);
        }
        match orig.outcome {
            crate::journal::Outcome::Approved => {}
            crate::journal::Outcome::Voided | crate::journal::Outcome::Reversed => {
                return Err(Refusal::Voided);
            }
            _ => return Err(Refusal::NotSale),
        }
        if orig.settled || orig.batch != self.j.counters.batch {
            // A void stays inside the open batch; later it must be a refund.
            return Err(Refusal::NotSale);
        }
        Ok(())
    }

    /// R-DUP by ECR reference. True when the flow ended here: the same request again is
    /// answered with the first result; a different request under a reference already used
    /// (a till that reuses its numbers after a decline) is refused as a conflict — replaying
    /// the first result would report another refund's outcome for this one. Nothing is sent
    /// either way.
    fn same_reference_replayed(&mut self) -> bool {
        let window = self.cfg.profile.duplicate_window();
        let Some(f) = self.flow() else { return false };
        let Some(reference) = f.ecr_reference.clone() else {
            return false;
        };
        if let (Some(kind), Some(first)) = (
            f.kind.txn_type(),
            review::reference_use(&self.j, &reference, self.now, window),
        ) && !review::same_request(
            first,
            kind,
            f.amount,
            &f.orig,
            f.card.as_ref().map(|c| &c.hash),
        ) {
            self.finish_refused(Refusal::ReferenceConflict);
            return true;
        }
        match review::same_reference(&self.j, &reference, self.now, window).cloned() {
            Some(first) => {
                self.replay_result(first);
                true
            }
            None => false,
        }
    }

    /// Review and R-DUP once more, right before a refund's own request is built. The pending
    /// advices and reversals go first (R-ADVICE), and what they resolve changes the answers: a
    /// CUP refund advice queued after a timeout may just have been approved, and the refund
    /// about to leave may be that same refund typed again — sent, the acquirer would book it
    /// twice. Returns true when the flow stopped here (refused, replayed or asking).
    pub(super) fn review_again_before_sending(&mut self) -> bool {
        if !self
            .flow()
            .is_some_and(|f| f.kind == FlowKind::Refund && f.txn_id.is_none())
        {
            return false;
        }
        if let Err(r) = self.review_refund() {
            self.finish_refused(r);
            return true;
        }
        self.duplicate_check()
    }

    /// R-DUP before anything is sent. Returns true when the flow stopped here.
    fn duplicate_check(&mut self) -> bool {
        let window = self.cfg.profile.duplicate_window();
        let Some(f) = self.flow() else { return false };
        if f.ecr_reference.is_some() {
            // Now with the card known: the same request again replays, another conflicts.
            return self.same_reference_replayed();
        }
        if f.dup_confirmed {
            return false;
        }
        let (Some(amount), Some(card)) = (f.amount, f.card.as_ref()) else {
            return false;
        };
        if review::possible_duplicate(&self.j, f.original_id, &card.hash, amount, self.now, window)
            .is_some()
        {
            if f.source == Source::Keypad {
                if let Some(f) = self.flow_mut() {
                    f.step = Step::DupPrompt;
                }
            } else {
                // An ECR request without a reference cannot answer the prompt on the keypad
                // of an unattended till: the cashier answers it at the terminal.
                if let Some(f) = self.flow_mut() {
                    f.step = Step::DupPrompt;
                }
            }
            return true;
        }
        false
    }

    // ---- prompts that time out ----

    /// Starts a prompt's clock when it appears and drops it when the prompt goes, so the
    /// card and possible-duplicate prompts give up after the profile's `prompts` timeouts.
    /// Called after every event, wherever the flow's step was changed.
    pub(super) fn arm_prompt_timer(&mut self) {
        let now = self.now;
        let card = self.cfg.profile.card_timeout();
        let confirm = self.cfg.profile.confirm_timeout();
        let Some(f) = self.flow_mut() else { return };
        let limit = match f.step {
            Step::Card => card,
            Step::DupPrompt => confirm,
            _ => {
                f.prompt_deadline = None;
                return;
            }
        };
        if f.prompt_deadline.is_none_or(|(step, _)| step != f.step) {
            f.prompt_deadline = Some((f.step, now + limit));
        }
    }

    /// When the prompt on screen gives up, if one is up.
    pub(super) fn prompt_deadline(&self) -> Option<protocol::time::Instant> {
        self.flow()
            .and_then(|f| f.prompt_deadline)
            .map(|(_, at)| at)
    }

    /// Nobody answered: the transaction is abandoned (06 1E 6C to the ECR) and the display
    /// says which prompt went unanswered.
    pub(super) fn prompt_timeouts(&mut self) {
        let Some((step, at)) = self.flow().and_then(|f| f.prompt_deadline) else {
            return;
        };
        if at > self.now {
            return;
        }
        let prompt = match step {
            Step::Card => Prompt::Card,
            _ => Prompt::Confirm,
        };
        self.finish_refused(Refusal::PromptTimeout(prompt));
    }

    // ---- results ----

    /// Ends the current flow with a refusal: display, alert, refusal slip, ECR result.
    pub(super) fn finish_refused(&mut self, r: Refusal) {
        let (kind, pan, amount, source) = match self.flow() {
            Some(f) => (
                f.kind,
                f.card.as_ref().map(|c| c.pan.masked()),
                f.amount,
                f.source,
            ),
            None => (FlowKind::Refund, None, None, Source::Keypad),
        };
        let mut lines = vec![r.text(self.lang())];
        if let Some(a) = amount {
            lines.push(format!("{} {}", a.currency().alpha(), a));
        }
        if r != Refusal::Cancelled {
            self.beep(Tone::Alert);
        }
        if source == Source::Ecr {
            self.ecr_refused(&r, None);
        }
        if let Some(tt) = kind.txn_type()
            && !r.is_abandoned()
        {
            let slip =
                receipt::refusal(&self.cfg.profile, tt, &r, pan.as_deref(), amount, self.now);
            self.print_slip(&slip, source);
        }
        if source == Source::Ecr {
            self.ecr_finish(Some(&r));
        }
        self.activity = Activity::Result { lines };
    }

    /// Ends a flow whose transaction was approved.
    pub(super) fn finish_approved(&mut self, txn_id: u64) {
        let Some(t) = self.j.txn(txn_id).cloned() else {
            return;
        };
        let source = self.flow().map(|f| f.source).unwrap_or(Source::Keypad);
        let orig = t.original_id.and_then(|id| self.j.txn(id)).cloned();
        self.beep(Tone::Success);
        let done = match t.kind {
            TxnType::Sale => self.t("消费成功", "SALE APPROVED"),
            TxnType::Void => self.t("撤销成功", "VOID APPROVED"),
            TxnType::Refund => self.t("退货成功", "REFUND APPROVED"),
        };
        let mut lines = vec![
            done,
            format!("{} {}", t.amount.currency().alpha(), t.amount),
        ];
        if self.inserted.is_some() {
            lines.push(self.t("请取走卡片", "REMOVE CARD"));
        }
        if source == Source::Ecr {
            self.ecr_approved(&t);
        }
        for copy in [Copy::Merchant, Copy::Customer] {
            let slip = receipt::transaction(&self.cfg.profile, &t, orig.as_ref(), copy, false);
            self.print_slip(&slip, source);
        }
        if source == Source::Ecr {
            self.ecr_finish(None);
        }
        self.activity = Activity::Result { lines };
        if source == Source::Ecr {
            self.ecr_result_undelivered();
        }
    }

    /// R-DUP by ECR reference: show and reprint the first result, answer the ECR with it.
    fn replay_result(&mut self, first: TxnRecord) {
        let source = self.flow().map(|f| f.source).unwrap_or(Source::Ecr);
        let orig = first.original_id.and_then(|id| self.j.txn(id)).cloned();
        let mut lines = vec![
            self.t("重复交易", "DUPLICATE"),
            self.t("返回原结果", "FIRST RESULT SHOWN"),
        ];
        match &first.outcome {
            crate::journal::Outcome::Approved => {
                if source == Source::Ecr {
                    self.ecr_approved(&first);
                }
                let slip = receipt::transaction(
                    &self.cfg.profile,
                    &first,
                    orig.as_ref(),
                    Copy::Customer,
                    true,
                );
                self.print_slip(&slip, source);
                if source == Source::Ecr {
                    self.ecr_finish(None);
                }
                lines.push(format!(
                    "{} {}",
                    first.amount.currency().alpha(),
                    first.amount
                ));
                self.activity = Activity::Result { lines };
            }
            other => {
                let r = match other {
                    crate::journal::Outcome::Declined(c) => Refusal::Host(c.clone()),
                    _ => Refusal::NoReply,
                };
                if source == Source::Ecr {
                    self.ecr_refused(&r, Some(&first));
                    self.ecr_finish(Some(&r));
                }
                self.activity = Activity::Result { lines };
            }
        }
    }

    /// Prints a slip on the terminal; an ECR that prints also gets the English copy.
    pub(super) fn print_slip(&mut self, slip: &receipt::Slip, source: Source) {
        let ecr_prints = source == Source::Ecr && self.ecr_prints_receipts();
        let zh = self.lang() == protocol::fixture::terminal::Language::Zh;
        if !ecr_prints || zh {
            // A zh terminal prints its Chinese receipt and sends the ECR an English copy.
            let bytes = slip.to_escpos(&self.cfg.profile);
            self.print(bytes);
        }
        if ecr_prints {
            self.ecr_print(slip);
        }
    }

    /// MENU 6: the last approved transaction's merchant copy, marked REPRINT.
    pub(super) fn reprint_last(&mut self, ecr: bool) -> bool {
        let Some(t) = self
            .j
            .txns
            .iter()
            .rev()
            .find(|t| receipt::printable(&t.outcome))
            .cloned()
        else {
            self.activity = Activity::Result {
                lines: vec![self.t("无交易", "NO TRANSACTION")],
            };
            return false;
        };
        let orig = t.original_id.and_then(|id| self.j.txn(id)).cloned();
        let slip = receipt::transaction(&self.cfg.profile, &t, orig.as_ref(), Copy::Merchant, true);
        self.print_slip(&slip, if ecr { Source::Ecr } else { Source::Keypad });
        self.activity = Activity::Result {
            lines: vec![self.t("重打印完成", "REPRINT DONE")],
        };
        true
    }

    /// Surcharge on a sale where the profile's market allows it.
    pub(super) fn surcharge_for(&self, base: Money) -> Option<Money> {
        self.cfg
            .profile
            .surcharge
            .as_ref()
            .map(|s| s.charge().on(base))
    }

    /// The surcharge a refund gives back, pro rata by the cumulative method.
    pub(super) fn surcharge_returned(&self, original: &TxnRecord, refund: Money) -> Option<Money> {
        let s = original.surcharge?;
        if !self.surcharge_refundable() {
            return None;
        }
        let before: Vec<&TxnRecord> = self
            .j
            .txns
            .iter()
            .filter(|t| {
                t.kind == TxnType::Refund && t.original_id == Some(original.id) && t.is_approved()
            })
            .collect();
        let zero = Money::zero(refund.currency());
        let refunded = before
            .iter()
            .fold(zero, |a, t| a.checked_add(t.amount).unwrap_or(a));
        let returned = before
            .iter()
            .filter_map(|t| t.surcharge)
            .fold(zero, |a, m| a.checked_add(m).unwrap_or(a));
        Some(FeeRefundPolicy::Proportional.fee_to_return(
            s,
            original.amount,
            refunded,
            refund,
            returned,
            protocol::money::Rounding::HalfUp,
        ))
    }
}

fn self_today(now: &protocol::time::Instant, cfg: &super::TerminalConfig) -> chrono::NaiveDate {
    now.to_local(cfg.profile.time_zone).date_naive()
}

/// A keypad void asks for the card (CUP practice) once the original is known.
fn f_needs_card(t: &mut Terminal) -> bool {
    let Some(f) = t.flow_mut() else { return false };
    if f.source == Source::Keypad && f.card.is_none() {
        f.step = Step::Card;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::MENU;

    /// A row of the menu, marked as chosen, fits a 20-column display in both languages, so no
    /// label is ever cut ("4.SETTLEMEN").
    #[test]
    fn every_menu_row_fits_twenty_columns() {
        for pair in MENU.chunks(2) {
            for (zh, chosen) in [(true, 0), (true, 1), (false, 0), (false, 1)] {
                let row = pair
                    .iter()
                    .enumerate()
                    .map(|(i, (n, z, e))| {
                        let mark = if i == chosen { ">" } else { "" };
                        format!("{mark}{n}.{}", if zh { z } else { e })
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                assert!(protocol::escpos::text_columns(&row) <= 20, "{row}");
            }
        }
    }
}
