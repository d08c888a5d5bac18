//! The acquirer host simulator: a stateful, scriptable ISO 8583 host. Its core ([`Host`]) is
//! sans-IO — connection events, bytes and `now` in; bytes, closes and deadlines out — so the
//! harness steps it on a virtual clock; [`tcp::serve`] puts it behind real sockets and
//! [`cli::run`] is `posrig acquirer`.
//!
//! - [`config`]: terminals, merchants, keys and fees, from the fixtures.
//! - [`host`]: framing, validation, sign-on and MAC, the rules, replies, delays and faults.
//! - [`ledger`]: what the host remembers and the refusal codes of void/refund/reversal.
//! - [`fees`]: the merchant-fee schedule (R-FEE).
//! - [`settlement`]: 0500/0320 and the [`SettlementReport`].
//! - [`script`]: [`Directive`]s — how the next matching request is answered, and faults.
//! - [`log`]: every exchange, decoded and PAN-masked.
//!
//! # Example: a signed-on CUP terminal buys for CNY 100.00
//! ```
//! use std::path::Path;
//! use acquirer::{Host, HostConfig, HostOutput};
//! use protocol::card::Pan;
//! use protocol::iso8583::builder::{self, CardData, TxnInput};
//! use protocol::iso8583::{mac, MessageRef};
//! use protocol::time::{Instant, Tz};
//!
//! let cfg = HostConfig::from_fixtures(
//!     Path::new("../fixtures"), "cup", Some(Path::new("../fixtures/fees/cny-0.6pct.yaml")),
//! ).unwrap();
//! let cup = cfg.dialect.clone();
//! let mut host = Host::new(cfg);
//! let now = Instant::parse_rfc3339("2026-11-26T10:00:00+08:00").unwrap();
//! let conn = host.connect(now);
//!
//! // The harness primes a signed-on terminal with the host's session keys
//! // (a terminal that sends 0800 gets the same kind of keys in field 62 of the 0810).
//! let keys = host.working_keys("20250001").unwrap();
//!
//! let tz: Tz = "Asia/Shanghai".parse().unwrap();
//! let sale = TxnInput {
//!     tid: "20250001".into(), mid: "898310048990001".into(), stan: 1, batch: 1,
//!     amount_minor: 10000, currency: 156, local: now.to_local(tz).naive_local(),
//!     card: CardData { pan: Some(Pan::new("6222021234567894").unwrap()),
//!                      entry_mode: "021".into(), ..CardData::default() },
//!     ..TxnInput::default()
//! };
//! let mut msg = builder::sale(&cup, &sale).unwrap();
//! let mut frame = Vec::new();
//! mac::sign(&cup, &mut msg, &keys.mac, &mut frame).unwrap();
//! let mut wire = Vec::new();
//! cup.length_prefix.encode(&frame, &mut wire).unwrap();
//!
//! // Any split of the bytes works.
//! host.handle_bytes(conn, &wire[..7], now);
//! host.handle_bytes(conn, &wire[7..], now);
//!
//! let Some(HostOutput::Send { bytes, .. }) = host.poll_output() else { panic!("no reply") };
//! let mut buf = bytes;
//! let reply = cup.length_prefix.decode(&mut buf).unwrap().unwrap();
//! let r = MessageRef::decode(&cup, &reply).unwrap();
//! assert_eq!(r.mti.to_string(), "0210");
//! assert_eq!(r.field_str(39).as_deref(), Some("00"));
//! mac::verify(&cup, &r, &keys.mac).unwrap();
//! // Field 57: fee 0.60 | net 99.40 | returned fee 0 (minor units).
//! assert_eq!(r.field_str(57).as_deref(), Some("000000000060000000009940000000000000"));
//!
//! // The log: connected, the 0200, the 0210 — PAN masked.
//! let log = host.log();
//! assert_eq!(log.len(), 3);
//! assert_eq!(log[1].field("2"), Some("622202******7894"));
//! assert_eq!(log[2].field("60.1"), Some("22"));
//! assert_eq!(host.ledger().records().len(), 1);
//! ```
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod fees;
pub mod host;
pub mod ledger;
pub mod log;
pub mod script;
pub mod settlement;
pub mod tcp;

pub use config::{ConfigError, HostConfig, KnownTerminal};
pub use fees::FeeSchedule;
pub use host::{ConnId, Host, HostOutput};
pub use ledger::Ledger;
pub use log::{Direction, Exchange};
pub use script::{Directive, DirectiveId, DirectiveState, Fault, RequestView, Respond, Times};
pub use settlement::SettlementReport;
