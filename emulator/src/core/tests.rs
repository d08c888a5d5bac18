//! The core on virtual time, rule by rule. The host side is played with the shared ISO 8583
//! builders (`builder::response`, `mac::sign`) and the ECR side with the shared ZVT ECR
//! sequencer, so no test carries a private protocol peer.

use std::path::PathBuf;
use std::time::Duration;

use protocol::fixture::cards::{CardFixture, CardSet};
use protocol::fixture::journal::{JournalFixture, ResolveContext, TxnType};
use protocol::fixture::keys::TestKeys;
use protocol::fixture::terminal::TerminalProfile;
use protocol::iso8583::builder::{self, ReplyInput};
use protocol::iso8583::keys::{DoubleKey, WorkingKeys};
use protocol::iso8583::subfield::FeeInfo;
use protocol::iso8583::{Message, MessageRef, mac};
use protocol::riglink::{FaultKind, KeyName};
use protocol::time::Instant;

use super::*;
use crate::journal::{EntryMode, JournalStore, MemoryStore, Outcome, PendingKind, TxnRecord};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cards() -> CardSet {
    CardFixture::load_dir(&root().join("fixtures/cards")).unwrap()
}

fn keys() -> TestKeys {
    TestKeys::from_path(&root().join("fixtures/keys/test-keys.yaml")).unwrap()
}

fn start() -> Instant {
    Instant::parse_rfc3339("2026-11-26T10:00:00+08:00").unwrap()
}

/// A terminal on a bench: outputs collected, journal applied to a memory store, host
/// requests decoded for the test to answer.
struct Bench {
    t: Terminal,
    now: Instant,
    store: MemoryStore,
    displays: Vec<Vec<String>>,
    printed: Vec<Vec<u8>>,
    requests: Vec<Message>,
    ecr_out: Vec<Vec<u8>>,
    host_rx: Vec<u8>,
    working: WorkingKeys,
    cfg: TerminalConfig,
    /// Commits after which a transaction stood `Unknown` with no reversal record or advice:
    /// a power cut there would leave an outcome nothing resolves.
    orphan_commits: usize,
}

impl Bench {
    fn new(profile: &str, journal: Option<&str>, link: EcrLink) -> Bench {
        let profile =
            TerminalProfile::from_path(&root().join("fixtures/terminals").join(profile)).unwrap();
        let cfg = TerminalConfig::new(profile, &keys(), None, link).unwrap();
        let mut store = MemoryStore::new();
        if let Some(j) = journal {
            let fx = JournalFixture::from_path(&root().join("fixtures/journals").join(j)).unwrap();
            let set = cards();
            let lookup = |n: &str| set.get(n).map(|c| c.pan().clone());
            let txns = fx
                .resolve(&ResolveContext {
                    now: start(),
                    time_zone: cfg.profile.time_zone,
                    terminal_id: &cfg.profile.terminal_id,
                    currency: cfg.profile.currency,
                    card_pan: &lookup,
                })
                .unwrap();
            store
                .commit(&crate::import::import_ops(
                    &txns,
                    &cfg.pan_hash_key,
                    &store.load().unwrap(),
                ))
                .unwrap();
        }
        let working = WorkingKeys {
            pin: DoubleKey::new([0x11; 16]),
            mac: DoubleKey::new([0x22; 16]),
        };
        let t = Terminal::power_on(cfg.clone(), store.load().unwrap(), start());
        let mut b = Bench {
            t,
            now: start(),
            store,
            displays: vec![],
            printed: vec![],
            requests: vec![],
            ecr_out: vec![],
            host_rx: vec![],
            working,
            cfg,
            orphan_commits: 0,
        };
        b.run();
        b
    }

    fn run(&mut self) {
        while let Some(o) = self.t.poll_output() {
            match o {
                Output::Display(d) => self.displays.push(d),
                Output::Print(p) => self.printed.push(p),
                Output::Journal(op) => {
                    self.store.commit(&[op]).unwrap();
                    let j = self.store.state();
                    if j.txns.iter().any(|t| {
                        t.outcome == Outcome::Unknown && !j.pending.iter().any(|p| p.txn_id == t.id)
                    }) {
                        self.orphan_commits += 1;
                    }
                }
                Output::HostBytes(b) => {
                    self.host_rx.extend_from_slice(&b);
                    while let Ok(Some(frame)) =
                        self.cfg.dialect.length_prefix.decode(&mut self.host_rx)
                    {
                        let m = MessageRef::decode(&self.cfg.dialect, &frame)
                            .unwrap()
                            .to_owned();
                        self.requests.push(m);
                    }
                }
                Output::EcrBytes(b) => self.ecr_out.push(b),
                _ => {}
            }
        }
    }

    fn ev(&mut self, e: Event) {
        self.t.handle(e, self.now);
        self.run();
    }

    fn keys(&mut self, spec: &str) {
        for k in spec.split_whitespace() {
            let names: Vec<KeyName> = match k {
                "MENU" => vec![KeyName::Menu],
                "ENTER" => vec![KeyName::Enter],
                "CANCEL" => vec![KeyName::Cancel],
                "F1" => vec![KeyName::F1],
                "F2" => vec![KeyName::F2],
                digits => digits.bytes().map(|b| KeyName::Digit(b - b'0')).collect(),
            };
            for n in names {
                self.ev(Event::Key(n));
            }
        }
    }

    fn card(&mut self, how: &str, name: &str) {
        let c = Box::new(cards().get(name).unwrap().clone());
        self.ev(Event::Card(match how {
            "swipe" => CardEvent::Swipe(c),
            "insert" => CardEvent::Insert(c),
            _ => CardEvent::Tap(c),
        }));
    }

    fn display(&self) -> String {
        self.t.display().join("|")
    }

    /// Answers the last request as the host would, with `code`, signed when the profile MACs.
    fn answer(&mut self, code: &str, fee: Option<FeeInfo>) {
        let req = self.requests.last().unwrap().clone();
        let mut reply = builder::response(
            &self.cfg.dialect,
            &req,
            &ReplyInput {
                code: code.into(),
                rrn: Some("100000000042".into()),
                auth_code: (code == "00").then(|| "654321".into()),
                fee,
                ..Default::default()
            },
        )
        .unwrap();
        if req.mti.value() == 800 {
            reply.set(62, self.working.to_field62(&self.cfg.tmk));
        }
        let mut frame = Vec::new();
        if self.cfg.profile.mac == protocol::fixture::terminal::MacMode::X919
            && req.mti.value() != 800
        {
            mac::sign(&self.cfg.dialect, &mut reply, &self.working.mac, &mut frame).unwrap();
        } else {
            reply.encode_into(&self.cfg.dialect, &mut frame).unwrap();
        }
        let mut wire = Vec::new();
        self.cfg
            .dialect
            .length_prefix
            .encode(&frame, &mut wire)
            .unwrap();
        self.ev(Event::HostBytes(wire));
    }

    /// A decline as a host sends it: 37 echoed from the request.
    fn answer_echoing_37(&mut self, code: &str) {
        let req = self.requests.last().unwrap().clone();
        let mut reply = builder::response(
            &self.cfg.dialect,
            &req,
            &ReplyInput {
                code: code.into(),
                rrn: req.get_str(37).map(str::to_string),
                ..Default::default()
            },
        )
        .unwrap();
        let mut frame = Vec::new();
        mac::sign(&self.cfg.dialect, &mut reply, &self.working.mac, &mut frame).unwrap();
        let mut wire = Vec::new();
        self.cfg
            .dialect
            .length_prefix
            .encode(&frame, &mut wire)
            .unwrap();
        self.ev(Event::HostBytes(wire));
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(dl) = self.t.poll_timeout() {
            if dl > until {
                break;
            }
            self.now = dl.max(self.now);
            self.t.handle_timeout(self.now);
            self.run();
        }
        self.now = until;
    }

    fn last_txn(&self) -> TxnRecord {
        self.t.journal().txns.last().unwrap().clone()
    }
}

fn sign_on_cup(b: &mut Bench) {
    b.keys("MENU 5 ENTER");
    assert_eq!(b.requests.last().unwrap().mti.value(), 800);
    b.answer("00", None);
    assert!(b.display().contains("签到成功"), "{}", b.display());
    b.keys("ENTER");
}

#[test]
fn cup_keypad_refund_end_to_end() {
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    assert!(b.display().contains("欢迎光临"), "{}", b.display());
    sign_on_cup(&mut b);
    let printed = b.printed.len();
    b.keys("MENU 3 ENTER");
    assert!(b.display().contains("主管密码"), "{}", b.display());
    b.keys("123456 ENTER");
    assert!(b.display().contains("请刷卡"), "{}", b.display());
    b.card("swipe", "unionpay_magstripe_01");
    assert!(b.display().contains("原参考号"), "{}", b.display());
    b.keys("000000000101 ENTER 1126 ENTER 3333 ENTER");
    assert!(b.display().contains("33.33"), "{}", b.display());
    let sent = b.requests.len();
    b.keys("ENTER ENTER");
    assert_eq!(b.requests.len(), sent + 1, "one advice for two ENTERs");
    let req = b.requests.last().unwrap().clone();
    assert_eq!(req.mti.value(), 220);
    assert_eq!(req.get_str(3), Some("200000"));
    assert_eq!(req.get_str(4), Some("000000003333"));
    assert_eq!(req.get_str(37), Some("000000000101"));
    assert!(req.has(2) && req.has(14) && !req.has(35) && !req.has(52) && !req.has(55));
    assert!(req.has(64), "x9.19 MAC");
    // The advice is journaled before it leaves.
    assert_eq!(b.store.state().pending.len(), 1);
    assert_eq!(b.store.state().pending[0].kind, PendingKind::Advice);
    b.answer(
        "00",
        Some(FeeInfo {
            fee: 0,
            net: 3313,
            returned_fee: 20,
        }),
    );
    assert!(b.display().contains("退货成功"), "{}", b.display());
    let t = b.last_txn();
    assert_eq!(t.outcome, Outcome::Approved);
    assert_eq!(t.fee.unwrap().to_string(), "0.20");
    assert!(b.store.state().pending.is_empty());
    assert_eq!(b.printed.len(), printed + 2, "merchant and customer copies");
    let merchant = protocol::escpos::Parser::parse(&b.printed[printed]);
    for needle in [
        "退货",
        "898310048990001",
        "20250001",
        "622202",
        "凭证号",
        "参考号",
        "授权码",
        "商户存根",
        "持卡人签名",
        "手续费",
        "原参考号",
    ] {
        assert!(
            merchant.contains(needle),
            "merchant copy lacks {needle}:\n{}",
            merchant.text()
        );
    }
    let customer = protocol::escpos::Parser::parse(&b.printed[printed + 1]);
    assert!(customer.contains("持卡人存根") && !customer.contains("手续费"));
}

#[test]
fn refusals_before_anything_is_sent() {
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    let sent = b.requests.len();
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 20001 ENTER");
    assert!(b.display().contains("超过可退金额"), "{}", b.display());
    assert_eq!(b.requests.len(), sent, "no host message");
    let slip = protocol::escpos::Parser::parse(b.printed.last().unwrap());
    assert!(slip.contains("超过可退金额"), "{}", slip.text());
    b.keys("ENTER");
    // R-SUP: three wrong supervisor passwords.
    b.keys("MENU 3 ENTER 111111 ENTER 222222 ENTER");
    assert!(b.display().contains("密码错误"), "{}", b.display());
    b.keys("333333 ENTER");
    assert!(b.display().contains("主管密码错误"), "{}", b.display());
    b.keys("ENTER");
    // R-CARD: another card than the original's.
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("insert", "unionpay_debit_02");
    b.keys("000000000101 ENTER 1126 ENTER 100 ENTER");
    assert!(b.display().contains("卡号不符"), "{}", b.display());
    assert_eq!(b.requests.len(), sent);
}

#[test]
fn manual_sign_on_is_required() {
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    b.keys("MENU 3 ENTER");
    assert!(b.display().contains("请先签到"), "{}", b.display());
    assert!(b.requests.is_empty());
}

#[test]
fn a0_on_a_manual_terminal_signs_on_again_before_the_next_refund() {
    // R-SIGNON: "A host 39 = A0 or 99 → sign on again before the next transaction", also on
    // a manual sign-on profile: the terminal does it, the cashier is not refused.
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 1000 ENTER ENTER");
    b.answer("A0", None);
    assert!(b.display().contains("交易失败 A0"), "{}", b.display());
    b.keys("ENTER MENU 3 ENTER 123456 ENTER");
    assert!(!b.display().contains("请先签到"), "{}", b.display());
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 1000 ENTER ENTER");
    assert_eq!(b.requests.last().unwrap().mti.value(), 800, "0800 first");
    b.answer("00", None);
    let advice = b.requests.last().unwrap().clone();
    assert_eq!(advice.mti.value(), 220);
    assert!(advice.has(64));
}

#[test]
fn a_declined_refund_does_not_shadow_its_original() {
    // Acceptance by RRN: the decline echoes 37 (the original's RRN); a retry must still find
    // the sale, not the declined refund (which would be R-NOTSALE).
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 1000 ENTER ENTER");
    b.answer_echoing_37("05");
    assert!(b.display().contains("交易失败 05"), "{}", b.display());
    assert_eq!(b.last_txn().rrn, None);
    let sent = b.requests.len();
    b.keys("ENTER MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 1000 ENTER ENTER");
    assert_eq!(b.requests.len(), sent + 1, "{}", b.display());
}

/// ZVT Registration (config BA: the ECR prints, wants 04 FF), its 06 0F acknowledged.
fn ecr_register(b: &mut Bench) {
    use protocol::zvt::command::{Command, Registration as ZReg};
    let reg = Command::Registration(ZReg {
        password: protocol::zvt::bmp::Bcd::from_digits("123456").unwrap(),
        config: 0xBA,
        currency: Some(978),
        ..Default::default()
    });
    b.ev(Event::EcrBytes(reg.to_bytes().unwrap()));
    b.ev(Event::EcrBytes(vec![0x80, 0x00, 0x00]));
}

/// ZVT 06 31 for the EUR journal's sale, with an optional ECR reference (TLV 1F1F).
fn ecr_refund(b: &mut Bench, minor: u64, reference: Option<&str>) {
    use protocol::zvt::command::{Command, OriginalRef, Refund as ZRefund, tlv_tag};
    let mut r = ZRefund {
        password: protocol::zvt::bmp::Bcd::from_digits("123456").unwrap(),
        amount_minor: Some(minor),
        currency: Some(978),
        ..Default::default()
    };
    if let Some(reference) = reference {
        let mut t = Vec::new();
        protocol::tlv::write(
            &mut t,
            protocol::tlv::Tag(tlv_tag::TRANSACTION_ID),
            reference.as_bytes(),
        );
        r.tlv = Some(t);
    }
    r.set_original_ref(&OriginalRef::RrnDate {
        rrn: "000000000201".into(),
        month: 11,
        day: 26,
    })
    .unwrap();
    b.ev(Event::EcrBytes(Command::Refund(r).to_bytes().unwrap()));
}

#[test]
fn the_same_ecr_reference_is_answered_before_a_card_is_asked_for() {
    // R-DUP: the first result again, no card read, nothing sent.
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    b.answer("00", None);
    ecr_register(&mut b);
    ecr_refund(&mut b, 1000, Some("REF-1"));
    b.card("insert", "visa_credit_01");
    b.answer("00", None);
    assert!(b.display().contains("REFUND APPROVED"), "{}", b.display());
    b.ev(Event::Card(CardEvent::Remove));
    b.advance(Duration::from_secs(30));
    let sent = b.requests.len();
    ecr_refund(&mut b, 1000, Some("REF-1"));
    assert!(b.display().contains("DUPLICATE"), "{}", b.display());
    assert_eq!(b.requests.len(), sent);
}

#[test]
fn a_result_with_no_ecr_connection_to_go_to_is_never_acknowledged() {
    // R-REV (ZVT): the ECR's connection dropped while the refund was at the host; its 04 0F
    // cannot be delivered, so iso87 reverses the approved refund.
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    b.answer("00", None);
    ecr_register(&mut b);
    ecr_refund(&mut b, 1000, None);
    b.ev(Event::EcrBytes(vec![0x80, 0x00, 0x00])); // to the 04 FF
    b.card("insert", "visa_credit_01");
    assert_eq!(b.requests.last().unwrap().mti.value(), 200);
    b.ev(Event::EcrDisconnected);
    b.answer("00", None);
    assert_eq!(b.requests.last().unwrap().mti.value(), 400, "auto-reversal");
    assert!(b.display().contains("ECR NOT INFORMED"), "{}", b.display());
}

#[test]
fn a_result_dropped_behind_an_unanswered_04ff_is_auto_reversed() {
    // R-REV (ZVT): the ECR never answers the 04 FF, so the 04 0F queued behind it is dropped
    // unsent; the ECR never acknowledged the result: the PT reverses (iso87), never 06 0F.
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    b.answer("00", None); // the power-on sign-on
    ecr_register(&mut b);
    ecr_refund(&mut b, 1000, None);
    // No answer to the 04 FF "insert card"; the card and the host are quick.
    b.card("insert", "visa_credit_01");
    assert_eq!(b.requests.last().unwrap().mti.value(), 200);
    b.answer("00", None);
    let before = b.ecr_out.len();
    b.advance(Duration::from_secs(6));
    let reversal = b.requests.last().unwrap().clone();
    assert_eq!(reversal.mti.value(), 400, "auto-reversal");
    assert!(b.display().contains("REVERSED"), "{}", b.display());
    let sent: Vec<u8> = b.ecr_out[before..].concat();
    assert!(
        !sent.windows(2).any(|w| w == [0x06, 0x0F]),
        "no 06 0F after a lost result: {sent:02X?}"
    );
}

#[test]
fn a_keypad_void_is_for_the_sales_amount() {
    // A keypad void names the sale by its voucher no.; its 0200 carries the sale's amount
    // (it used to stop in "processing" with no amount and send nothing).
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    b.keys("MENU 2 ENTER 123456 ENTER 000102 ENTER");
    b.card("insert", "unionpay_debit_01");
    assert!(b.display().contains("100.00"), "{}", b.display());
    let sent = b.requests.len();
    b.keys("ENTER");
    assert_eq!(b.requests.len(), sent + 1);
    let req = b.requests.last().unwrap();
    assert_eq!(req.mti.value(), 200);
    assert_eq!(req.get_str(4), Some("000000010000"));
}

#[test]
fn paper_running_out_between_the_copies_holds_the_customer_copy() {
    // The paper ends after the merchant copy: the customer copy, not yet at the printer,
    // waits for paper and comes out when it is back.
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 1000 ENTER ENTER");
    let printed = b.printed.len();
    // Answer, then take the outputs one by one as a rig does, cutting the paper after the
    // first receipt.
    let req = b.requests.last().unwrap().clone();
    let mut reply = builder::response(
        &b.cfg.dialect,
        &req,
        &ReplyInput {
            code: "00".into(),
            rrn: Some("100000000042".into()),
            auth_code: Some("654321".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut frame = Vec::new();
    mac::sign(&b.cfg.dialect, &mut reply, &b.working.mac, &mut frame).unwrap();
    let mut wire = Vec::new();
    b.cfg
        .dialect
        .length_prefix
        .encode(&frame, &mut wire)
        .unwrap();
    b.t.handle(Event::HostBytes(wire), b.now);
    let mut receipts = 0;
    while let Some(o) = b.t.poll_output() {
        if let Output::Print(p) = o {
            b.printed.push(p);
            receipts += 1;
            if receipts == 1 {
                b.t.handle(
                    Event::Fault {
                        kind: FaultKind::PaperOut,
                        on: true,
                    },
                    b.now,
                );
            }
        }
    }
    assert_eq!(b.printed.len(), printed + 1, "the merchant copy only");
    assert!(b.display().contains("打印机缺纸"), "{}", b.display());
    b.ev(Event::Fault {
        kind: FaultKind::PaperOut,
        on: false,
    });
    assert_eq!(b.printed.len(), printed + 2);
    let customer = protocol::escpos::Parser::parse(b.printed.last().unwrap());
    assert!(customer.contains("持卡人存根"), "{}", customer.text());
}

#[test]
fn cup_advice_unanswered_stays_queued_and_goes_first() {
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 1000 ENTER ENTER");
    assert_eq!(b.requests.last().unwrap().mti.value(), 220);
    b.advance(Duration::from_secs(61));
    assert_eq!(b.store.state().pending.len(), 1, "the advice stays queued");
    assert_eq!(b.last_txn().outcome, Outcome::Unknown);
    b.keys("ENTER");
    // The next refund: the queued advice goes first; it counts against the remainder.
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 19001 ENTER");
    assert!(
        b.display().contains("超过可退金额"),
        "pending advice counts: {}",
        b.display()
    );
    b.keys("ENTER MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 500 ENTER ENTER");
    let resent = b.requests.last().unwrap().clone();
    assert_eq!(resent.mti.value(), 220);
    assert_eq!(
        resent.get_str(4),
        Some("000000001000"),
        "the queued advice first, same amount"
    );
    b.answer("94", None);
    // 94 to a resent advice means approved; then the new refund leaves.
    let first =
        b.t.journal()
            .txns
            .iter()
            .find(|t| t.amount.minor() == 1000 && t.kind == TxnType::Refund)
            .unwrap();
    assert_eq!(first.outcome, Outcome::Approved);
    assert_eq!(b.requests.last().unwrap().get_str(4), Some("000000000500"));
    b.answer("00", None);
    assert!(b.display().contains("退货成功"));
}

#[test]
fn iso87_timeout_reverses_and_blocks_until_it_goes() {
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    // Auto sign-on at power-on.
    assert_eq!(b.requests.last().unwrap().mti.value(), 800);
    b.answer("00", None);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("insert", "visa_credit_01");
    b.keys("000000000201 ENTER 1126 ENTER 1000 ENTER ENTER");
    let req = b.requests.last().unwrap().clone();
    assert_eq!((req.mti.value(), req.get_str(3)), (200, Some("200000")));
    assert_eq!(
        b.store.state().pending[0].kind,
        PendingKind::Reversal,
        "reversal record before the request"
    );
    b.advance(Duration::from_secs(61));
    let rev = b.requests.last().unwrap().clone();
    assert_eq!(rev.mti.value(), 400);
    assert_eq!(rev.get_str(39), Some("98"));
    assert!(rev.has(90));
    b.advance(Duration::from_secs(61));
    assert_eq!(
        b.requests.last().unwrap().mti.value(),
        401,
        "repeats are 0401"
    );
    b.advance(Duration::from_secs(61));
    b.advance(Duration::from_secs(61));
    assert_eq!(
        b.store.state().pending.len(),
        1,
        "all tries failed: the record stays"
    );
    assert!(b.display().contains("NO REPLY"), "{}", b.display());
    b.keys("ENTER");
    // A new transaction: the reversal goes first; unanswered again, the refund is refused.
    let before = b.requests.len();
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("insert", "visa_credit_01");
    b.keys("000000000201 ENTER 1126 ENTER 500 ENTER ENTER");
    assert_eq!(b.requests.last().unwrap().mti.value(), 401);
    b.advance(Duration::from_secs(61));
    assert!(b.display().contains("REVERSAL PENDING"), "{}", b.display());
    assert_eq!(b.requests.len(), before + 1, "the refund itself never left");
}

#[test]
fn power_cut_after_the_reversal_record_recovers_first() {
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    b.answer("00", None);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("insert", "visa_credit_01");
    b.keys("000000000201 ENTER 1126 ENTER 1000 ENTER ENTER");
    // Power cut: rebuild from what was committed.
    let journal = b.store.load().unwrap();
    assert_eq!(journal.pending.len(), 1);
    let t = Terminal::power_on(b.cfg.clone(), journal, b.now + Duration::from_secs(5));
    b.t = t;
    b.run();
    let first = b.requests.last().unwrap().clone();
    assert_eq!(
        first.mti.value(),
        400,
        "the reversal goes before anything else"
    );
    b.answer("00", None);
    let refund =
        b.t.journal()
            .txns
            .iter()
            .find(|t| t.kind == TxnType::Refund)
            .unwrap();
    assert_eq!(refund.outcome, Outcome::Reversed);
    assert!(b.t.journal().pending.is_empty());
}

#[test]
fn paper_out_keeps_the_receipts_until_paper_is_back() {
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    let printed = b.printed.len();
    b.ev(Event::Fault {
        kind: FaultKind::PaperOut,
        on: true,
    });
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 1000 ENTER ENTER");
    b.answer("00", None);
    assert_eq!(b.printed.len(), printed);
    assert!(b.display().contains("打印机缺纸"), "{}", b.display());
    assert_eq!(
        b.last_txn().outcome,
        Outcome::Approved,
        "the refund is complete anyway"
    );
    b.ev(Event::Fault {
        kind: FaultKind::PaperOut,
        on: false,
    });
    assert_eq!(b.printed.len(), printed + 2);
}

#[test]
fn chip_swipe_is_refused_then_fallback_is_flagged() {
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    b.answer("00", None);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "visa_credit_01");
    assert!(
        b.display().contains("PLEASE INSERT CARD"),
        "{}",
        b.display()
    );
    b.ev(Event::Fault {
        kind: FaultKind::ChipMute,
        on: true,
    });
    b.card("insert", "visa_credit_01");
    assert!(b.display().contains("CHIP ERROR"), "{}", b.display());
    b.card("swipe", "visa_credit_01");
    assert!(b.display().contains("ORIG REF NO"), "{}", b.display());
    b.keys("000000000201 ENTER 1126 ENTER 100 ENTER ENTER");
    let req = b.requests.last().unwrap();
    assert_eq!(req.get_str(22), Some("802"), "fallback entry mode");
    assert_eq!(b.last_txn().entry_mode, EntryMode::FallbackSwipe);
}

#[test]
fn keypad_void_takes_the_whole_amount_of_its_sale() {
    // A keypad void asks for the trace and the card, never an amount: it voids the whole sale.
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    b.keys("MENU 2 ENTER 123456 ENTER 101 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    assert!(b.display().contains("CNY 200.00"), "{}", b.display());
    let sent = b.requests.len();
    b.keys("ENTER");
    assert_eq!(b.requests.len(), sent + 1, "the void left");
    let req = b.requests.last().unwrap().clone();
    assert_eq!(req.mti.value(), 200);
    assert_eq!(req.get_str(4), Some("000000020000"));
    b.answer("00", None);
    assert!(b.display().contains("撤销成功"), "{}", b.display());
}

#[test]
fn a_declined_refund_never_takes_the_original_rrn_it_echoed() {
    // The host's decline echoes field 37 — the original's RRN. Were it kept as the declined
    // refund's RRN, retrying the refund by that RRN would find the refund, not the sale
    // (R-NOTSALE), and the sale could never be refunded again.
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 5000 ENTER ENTER");
    let req = b.requests.last().unwrap().clone();
    let reply = builder::response(
        &b.cfg.dialect,
        &req,
        &ReplyInput {
            code: "05".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        reply.get_str(37),
        Some("000000000101"),
        "the decline echoes 37"
    );
    let mut frame = Vec::new();
    mac::sign(
        &b.cfg.dialect,
        &mut reply.clone(),
        &b.working.mac,
        &mut frame,
    )
    .unwrap();
    let mut wire = Vec::new();
    b.cfg
        .dialect
        .length_prefix
        .encode(&frame, &mut wire)
        .unwrap();
    b.ev(Event::HostBytes(wire));
    assert!(b.display().contains("交易失败 05"), "{}", b.display());
    assert_eq!(b.last_txn().rrn, None);
    b.keys("ENTER MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER");
    assert!(b.display().contains("请输入金额"), "{}", b.display());
}

#[test]
fn after_a0_a_manual_terminal_signs_on_again_by_itself() {
    // DESIGN R-SIGNON: a host 39 = A0 → sign on again before the next transaction. Manual
    // sign-on opens the day; it does not make the cashier re-key after A0.
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 5000 ENTER ENTER");
    b.answer("A0", None);
    assert!(b.display().contains("交易失败 A0"), "{}", b.display());
    b.keys("ENTER MENU 3 ENTER 123456 ENTER");
    b.card("swipe", "unionpay_magstripe_01");
    b.keys("000000000101 ENTER 1126 ENTER 5000 ENTER ENTER");
    let sent: Vec<u16> = b.requests.iter().map(|m| m.mti.value()).collect();
    assert_eq!(sent, [800, 220, 800], "the sign-on goes before the refund");
    b.answer("00", None);
    assert_eq!(b.requests.last().unwrap().mti.value(), 220);
}

/// A reversal record that no longer restores (a journal written by something else, damaged) is
/// never skipped: nothing can be sent for it, so it blocks the next refund with REVERSAL
/// PENDING — and the terminal does not hang on PROCESSING with nothing in flight.
#[test]
fn a_reversal_record_that_cannot_be_rebuilt_blocks_instead_of_hanging() {
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    b.answer("00", None);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("insert", "visa_credit_01");
    b.keys("000000000201 ENTER 1126 ENTER 1000 ENTER ENTER");
    // Power cut with the 0200 out; the stored request is damaged (an MTI no message has).
    let mut p = b.store.state().pending[0].clone();
    p.request.mti = 12345;
    b.store.commit(&[JournalOp::pending(p)]).unwrap();
    let sent = b.requests.len();
    b.t = Terminal::power_on(b.cfg.clone(), b.store.load().unwrap(), b.now);
    b.run();
    assert_eq!(b.requests.len(), sent, "nothing could be built at power-on");
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("insert", "visa_credit_01");
    b.keys("000000000201 ENTER 1126 ENTER 500 ENTER ENTER");
    assert_eq!(
        b.requests.len(),
        sent,
        "the refund did not overtake the record"
    );
    assert!(b.display().contains("REVERSAL PENDING"), "{}", b.display());
    assert_eq!(b.store.state().pending.len(), 1, "the record stays");
    b.keys("ENTER");
    assert!(!b.display().contains("PROCESSING"), "{}", b.display());
}

/// An ECR refund on the EUR terminal, approved by the host; the ECR acknowledges every message
/// up to the 04 0F of the result, which it leaves unanswered.
fn ecr_refund_approved_04_0f_unacknowledged(b: &mut Bench) {
    b.answer("00", None); // the power-on sign-on
    ecr_register(b);
    ecr_refund(b, 1000, None);
    b.ev(Event::EcrBytes(vec![0x80, 0x00, 0x00])); // to the 04 FF
    b.card("insert", "visa_credit_01");
    assert_eq!(b.requests.last().unwrap().mti.value(), 200);
    b.answer("00", None);
    for _ in 0..10 {
        if b.ecr_out
            .last()
            .is_some_and(|m| m.starts_with(&[0x04, 0x0F]))
        {
            break;
        }
        b.ev(Event::EcrBytes(vec![0x80, 0x00, 0x00]));
    }
    assert!(
        b.ecr_out
            .last()
            .is_some_and(|m| m.starts_with(&[0x04, 0x0F])),
        "the result went out"
    );
    assert_eq!(
        b.store.state().txns.last().unwrap().outcome,
        Outcome::Approved,
        "the approval is committed"
    );
}

/// R-REV (ZVT): the approval is committed and the 04 0F sent, then the power goes before the
/// ECR acknowledged it. The ECR was never informed, so at power-on the terminal does what it
/// does for an unacknowledged result: it reverses the refund (iso87), before anything else.
#[test]
fn power_cut_before_the_ecr_acknowledged_the_result_reverses_at_power_on() {
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    ecr_refund_approved_04_0f_unacknowledged(&mut b);
    let refund = b.store.state().txns.last().unwrap().clone();
    assert!(!refund.ecr_informed, "not informed before the ECR's ACK");
    let sent = b.requests.len();
    b.t = Terminal::power_on(
        b.cfg.clone(),
        b.store.load().unwrap(),
        b.now + Duration::from_secs(5),
    );
    b.run();
    assert_eq!(b.requests.len(), sent + 1, "one message at power-on");
    let rev = b.requests.last().unwrap().clone();
    assert_eq!(rev.mti.value(), 400, "the approved refund is reversed");
    assert_eq!(rev.get_str(4), Some("000000001000"));
    b.answer("00", None);
    let t = b.store.state().txn(refund.id).unwrap().clone();
    assert_eq!(t.outcome, Outcome::Reversed);
    assert!(b.store.state().pending.is_empty());
}

/// The same power cut once the ECR acknowledged the 04 0F: the refund stands.
#[test]
fn power_cut_after_the_ecr_acknowledged_the_result_leaves_the_refund_approved() {
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    ecr_refund_approved_04_0f_unacknowledged(&mut b);
    b.ev(Event::EcrBytes(vec![0x80, 0x00, 0x00])); // the ACK of the 04 0F
    let refund = b.store.state().txns.last().unwrap().clone();
    assert!(refund.ecr_informed, "informed once the ECR acknowledged");
    let sent = b.requests.len();
    b.t = Terminal::power_on(
        b.cfg.clone(),
        b.store.load().unwrap(),
        b.now + Duration::from_secs(5),
    );
    b.run();
    assert_eq!(b.requests.len(), sent, "nothing to resolve at power-on");
    assert_eq!(
        b.store.state().txn(refund.id).unwrap().outcome,
        Outcome::Approved
    );
}

/// R-REV: the `Unknown` row and its reversal record (or CUP advice) are one commit, so no
/// power cut can leave the row without the record that resolves it.
#[test]
fn an_unknown_row_is_never_committed_without_its_reversal_record() {
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    b.answer("00", None);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("insert", "visa_credit_01");
    b.keys("000000000201 ENTER 1126 ENTER 1000 ENTER ENTER");
    assert_eq!(b.requests.last().unwrap().mti.value(), 200);
    b.advance(Duration::from_secs(61)); // no answer: unknown, reversal tries
    assert_eq!(b.requests.last().unwrap().mti.value(), 400);
    b.answer("00", None);
    assert_eq!(
        b.orphan_commits, 0,
        "iso87: a commit left an orphan unknown row"
    );

    let mut c = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut c);
    c.keys("MENU 3 ENTER 123456 ENTER");
    c.card("swipe", "unionpay_magstripe_01");
    c.keys("000000000101 ENTER 1126 ENTER 1000 ENTER ENTER");
    assert_eq!(c.requests.last().unwrap().mti.value(), 220);
    c.answer("00", None);
    assert_eq!(
        c.orphan_commits, 0,
        "cup: a commit left an orphan unknown row"
    );
}

/// A journal written before that commit was atomic may hold an `Unknown` row with no
/// reversal record. At power-on it gets one and the reversal goes first, so end of day never
/// counts (and closes) it as if nothing were open.
#[test]
fn an_orphan_unknown_row_from_an_older_journal_is_reversed_at_power_on() {
    let mut b = Bench::new("zvt-en-eur.yaml", Some("eur-open-batch.yaml"), EcrLink::Tcp);
    b.answer("00", None);
    b.keys("MENU 3 ENTER 123456 ENTER");
    b.card("insert", "visa_credit_01");
    b.keys("000000000201 ENTER 1126 ENTER 1000 ENTER ENTER");
    let id = b.store.state().txns.last().unwrap().id;
    // What the old two-commit write left after a kill between the commits.
    b.store
        .commit(&[JournalOp::DeletePending { txn_id: id }])
        .unwrap();
    assert_eq!(b.store.state().txn(id).unwrap().outcome, Outcome::Unknown);
    let sent = b.requests.len();
    b.t = Terminal::power_on(b.cfg.clone(), b.store.load().unwrap(), b.now);
    b.run();
    assert_eq!(b.requests.len(), sent + 1, "one message at power-on");
    let rev = b.requests.last().unwrap().clone();
    assert_eq!(rev.mti.value(), 400, "the orphan is reversed first");
    assert_eq!(rev.get_str(4), Some("000000001000"));
    b.answer("25", None); // the host never saw it
    assert_eq!(b.store.state().txn(id).unwrap().outcome, Outcome::Reversed);
    assert!(b.store.state().pending.is_empty());
}

/// The card prompt's deadline is one of the core's deadlines (a driver that sleeps until
/// `poll_timeout` — `posrig emulate` does — wakes for it), starts when the prompt appears and
/// ends the flow when it passes.
#[test]
fn the_card_prompt_gives_up_at_the_profiles_card_timeout() {
    let mut b = Bench::new("cup-zh-cny.yaml", Some("cup-open-batch.yaml"), EcrLink::Tcp);
    sign_on_cup(&mut b);
    assert_eq!(b.t.poll_timeout(), None, "idle: nothing to wait for");
    b.keys("MENU 3 ENTER 123456 ENTER");
    assert!(b.display().contains("请刷卡"), "{}", b.display());
    let card = b.t.config().profile.card_timeout();
    assert_eq!(b.t.poll_timeout(), Some(b.now + card));
    b.advance(card - Duration::from_millis(1));
    assert!(b.display().contains("请刷卡"), "{}", b.display());
    b.advance(Duration::from_millis(1));
    assert!(b.display().contains("等待刷卡超时"), "{}", b.display());
    assert_eq!(b.t.poll_timeout(), None, "the prompt's clock went with it");
    b.keys("ENTER");
    assert!(b.display().contains("欢迎光临"), "{}", b.display());
}
