//! A test terminal for the host: builds requests with `protocol::iso8583::builder`, signs them,
//! frames them and reads the host's replies, on a virtual clock.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use acquirer::{ConnId, Host, HostConfig, HostOutput, KnownTerminal};
use protocol::card::Pan;
use protocol::iso8583::builder::{
    self, CardData, OriginalTxn, ReversalReason, SettlementInput, TxnInput,
};
use protocol::iso8583::keys::WorkingKeys;
use protocol::iso8583::subfield::SettlementTotals;
use protocol::iso8583::{Dialect, Message, MessageRef, mac};
use protocol::time::{Instant, Tz};

pub const CUP_TID: &str = "20250001";
pub const CUP_MID: &str = "898310048990001";
pub const PAN: &str = "6222021234567894";
pub const OTHER_PAN: &str = "6222021234567829";

pub fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"))
}

pub fn config(dialect: &str, fees: Option<&str>) -> HostConfig {
    let fees = fees.map(|f| fixtures().join("fees").join(f));
    HostConfig::from_fixtures(fixtures(), dialect, fees.as_deref()).unwrap()
}

/// 2026-11-26 10:00 in Shanghai.
pub fn t0() -> Instant {
    Instant::parse_rfc3339("2026-11-26T10:00:00+08:00").unwrap()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// One terminal talking to one host over one connection.
pub struct Term {
    pub host: Host,
    pub d: Dialect,
    pub now: Instant,
    pub conn: ConnId,
    pub tid: String,
    pub mid: String,
    pub currency: u16,
    pub tz: Tz,
    pub keys: Option<WorkingKeys>,
    pub batch: u32,
    pub stan: u32,
}

impl Term {
    /// The CUP terminal of `fixtures/terminals/cup-zh-cny.yaml`, signed on (keys primed), with
    /// the 0.6 % fee schedule.
    pub fn cup() -> Term {
        let mut t = Term::with(Host::new(config("cup", Some("cny-0.6pct.yaml"))), CUP_TID);
        t.keys = t.host.working_keys(CUP_TID);
        t
    }

    pub fn iso87(tid: &str, fees: Option<&str>) -> Term {
        Term::with(Host::new(config("iso87-ascii", fees)), tid)
    }

    pub fn with(mut host: Host, tid: &str) -> Term {
        let now = t0();
        let conn = host.connect(now);
        let t: KnownTerminal = host
            .known_terminal(tid)
            .cloned()
            .unwrap_or_else(|| KnownTerminal {
                terminal_id: tid.into(),
                merchant_id: "XX0000000000001".into(),
                merchant_name: "nobody".into(),
                mac: protocol::fixture::terminal::MacMode::None,
                time_zone: "Asia/Shanghai".parse().unwrap(),
                currency: protocol::money::Currency::from_alpha("CNY").unwrap(),
                surcharge_refundable: true,
                dialect: "cup".into(),
                unreferenced_refunds: Default::default(),
            });
        Term {
            d: host.dialect().clone(),
            host,
            now,
            conn,
            tid: tid.into(),
            mid: t.merchant_id,
            currency: t.currency.numeric(),
            tz: t.time_zone,
            keys: None,
            batch: 1,
            stan: 0,
        }
    }

    pub fn next_stan(&mut self) -> u32 {
        self.stan += 1;
        self.stan
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    pub fn input(&mut self, minor: u64, pan: &str) -> TxnInput {
        TxnInput {
            tid: self.tid.clone(),
            mid: self.mid.clone(),
            stan: self.next_stan(),
            batch: self.batch,
            amount_minor: minor,
            currency: self.currency,
            local: self.now.to_local(self.tz).naive_local(),
            card: CardData {
                pan: Some(Pan::new(pan).unwrap()),
                expiry: Some("3012".into()),
                entry_mode: "021".into(),
                ..CardData::default()
            },
            ..TxnInput::default()
        }
    }

    pub fn sale(&mut self, minor: u64) -> Message {
        let i = self.input(minor, PAN);
        builder::sale(&self.d, &i).unwrap()
    }

    /// A refund of the sale `orig` answered with `reply` (its RRN, batch, STAN, date).
    pub fn refund(&mut self, minor: u64, pan: &str, orig: &Message, reply: &Message) -> Message {
        let i = self.input(minor, pan);
        builder::refund(&self.d, &i, &original(orig, reply)).unwrap()
    }

    pub fn void(&mut self, orig: &Message, reply: &Message) -> Message {
        let i = self.input(0, PAN);
        builder::void(&self.d, &i, &original(orig, reply)).unwrap()
    }

    pub fn reversal(&self, orig: &Message) -> Message {
        let mut o = orig.clone();
        o.remove(64);
        builder::reversal(&self.d, &o, ReversalReason::NoResponse, None).unwrap()
    }

    pub fn settlement(&mut self, totals: SettlementTotals) -> Message {
        let i = SettlementInput {
            tid: self.tid.clone(),
            mid: self.mid.clone(),
            stan: self.next_stan(),
            batch: self.batch,
            local: self.now.to_local(self.tz).naive_local(),
            gmt: None,
            currency: self.currency,
            totals,
            operator: None,
            header: None,
        };
        builder::settlement(&self.d, &i).unwrap()
    }

    /// The framed bytes of `m`, signed when this terminal has keys.
    pub fn wire(&self, m: &mut Message) -> Vec<u8> {
        let mut frame = Vec::new();
        match &self.keys {
            Some(k) => {
                mac::sign(&self.d, m, &k.mac, &mut frame).unwrap();
            }
            None => m.encode_into(&self.d, &mut frame).unwrap(),
        }
        let mut wire = Vec::new();
        self.d.length_prefix.encode(&frame, &mut wire).unwrap();
        wire
    }

    pub fn send_bytes(&mut self, b: &[u8]) {
        self.host.handle_bytes(self.conn, b, self.now);
    }

    pub fn send(&mut self, m: &mut Message) -> Vec<u8> {
        let w = self.wire(m);
        self.send_bytes(&w);
        w
    }

    pub fn outputs(&mut self) -> Vec<HostOutput> {
        std::iter::from_fn(|| self.host.poll_output()).collect()
    }

    /// The one reply now due, as raw bytes.
    pub fn reply_bytes(&mut self) -> Vec<u8> {
        let outs = self.outputs();
        match outs.as_slice() {
            [HostOutput::Send { bytes, .. }] => bytes.clone(),
            other => panic!("expected one reply, got {other:?}"),
        }
    }

    pub fn decode(&self, bytes: &[u8]) -> Message {
        let mut buf = bytes.to_vec();
        let frame = self.d.length_prefix.decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "bytes after the frame");
        let r = MessageRef::decode(&self.d, &frame).unwrap();
        if let Some(k) = &self.keys
            && r.has(64)
        {
            mac::verify(&self.d, &r, &k.mac).unwrap();
        }
        r.to_owned()
    }

    /// The one reply now due, decoded (MAC checked when keys are set).
    pub fn reply(&mut self) -> Message {
        let b = self.reply_bytes();
        self.decode(&b)
    }

    /// Sends `m` and returns the decoded reply (MAC checked when keys are set).
    pub fn ask(&mut self, m: &mut Message) -> Message {
        self.send(m);
        let b = self.reply_bytes();
        self.decode(&b)
    }

    /// Sends `m` and returns field 39 of the reply.
    pub fn code(&mut self, m: &mut Message) -> String {
        let r = self.ask(m);
        r.get_str(39).unwrap().to_string()
    }
}

/// What a void or refund names: the sale's batch, STAN, date and the host's RRN.
pub fn original(orig: &Message, reply: &Message) -> OriginalTxn {
    let f60 = orig.get_str(60).unwrap_or("000000");
    let batch = if f60.len() >= 8 {
        f60[2..8].parse().unwrap()
    } else {
        f60.parse().unwrap()
    };
    OriginalTxn {
        stan: orig.get_str(11).map(|s| s.parse().unwrap()),
        batch: Some(batch),
        rrn: reply.get_str(37).map(str::to_string),
        auth_code: reply.get_str(38).map(str::to_string),
        date_mmdd: reply.get_str(13).map(str::to_string),
        amount_minor: orig.get_str(4).unwrap().parse().unwrap(),
        ..OriginalTxn::default()
    }
}

pub fn fee_field(d: &Dialect, r: &Message) -> Option<String> {
    r.get_str(d.fee_field).map(str::to_string)
}
