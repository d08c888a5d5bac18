//! EMV card and terminal data objects on top of [`crate::tlv`]: a tag-name table, a typed view
//! ([`EmvData`]), a builder ([`EmvBuilder`]) and a transcript rendering that never shows a PAN
//! in full nor track-equivalent data at all.
//!
//! Names and formats follow EMV 4.3 Book 3 Annex A (Data Elements Dictionary) as widely
//! reproduced; 56, 9F6B, 9F66 and 9F6C come from the contactless kernel books (Book C-2/C-3).
//! Formats: `n` BCD right-justified with leading zeros, `cn` BCD left-justified padded with
//! `F`, `an`/`ans` ASCII, `b` binary.
//!
//! ```
//! use protocol::card::emv::{EmvBuilder, EmvData, tags};
//! use protocol::card::Pan;
//! // 5A 08 62 22 02 12 34 56 78 94 = PAN, 9F02 06 00 00 00 00 33 33 = amount 33.33
//! let bytes = EmvBuilder::new()
//!     .pan(&Pan::new("6222021234567894").unwrap())
//!     .amount(3333)
//!     .build();
//! assert_eq!(&bytes[..3], &[0x5A, 0x08, 0x62]);
//! let d = EmvData::parse(&bytes).unwrap();
//! assert_eq!(d.amount_minor().unwrap(), Some(3333));
//! assert_eq!(d.render(), "5A Application PAN: 622202******7894\n9F02 Amount, Authorised: 000000003333\n");
//! ```

use std::fmt;

use chrono::NaiveDate;

use super::fields::{Expiry, format_yymmdd, parse_yymmdd};
use super::pan::{Pan, mask_digits};
use super::track::{Track2, TrackKind};
use crate::money::{Currency, Money};
use crate::tlv::{self, Tag, Tlv, TlvBuilder, TlvError};

/// How a data element's value is coded.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Format {
    /// Binary, rendered as hex.
    B,
    /// BCD, right-justified, leading zeros.
    N,
    /// Compressed numeric: BCD left-justified, `F`-padded.
    Cn,
    /// Alphanumeric / alphanumeric special: ASCII.
    An,
    /// A constructed template holding further objects.
    Template,
}

/// What a transcript may show of a value.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Secrecy {
    Public,
    /// A PAN: first 6 / last 4 only.
    MaskPan,
    /// Track data, PIN data: only the length.
    Redact,
}

/// One row of the tag-name table.
#[derive(Copy, Clone, Debug)]
pub struct TagInfo {
    pub tag: u32,
    pub name: &'static str,
    pub format: Format,
    pub secrecy: Secrecy,
}

/// Well-known tags by name.
pub mod tags {
    use crate::tlv::Tag;
    pub const AID: Tag = Tag(0x4F);
    pub const LABEL: Tag = Tag(0x50);
    pub const TRACK1: Tag = Tag(0x56);
    pub const TRACK2_EQUIVALENT: Tag = Tag(0x57);
    pub const PAN: Tag = Tag(0x5A);
    pub const CARDHOLDER_NAME: Tag = Tag(0x5F20);
    pub const EXPIRY: Tag = Tag(0x5F24);
    pub const EFFECTIVE: Tag = Tag(0x5F25);
    pub const ISSUER_COUNTRY: Tag = Tag(0x5F28);
    pub const TXN_CURRENCY: Tag = Tag(0x5F2A);
    pub const LANGUAGE: Tag = Tag(0x5F2D);
    pub const SERVICE_CODE: Tag = Tag(0x5F30);
    pub const PSN: Tag = Tag(0x5F34);
    pub const TXN_CURRENCY_EXPONENT: Tag = Tag(0x5F36);
    pub const APP_TEMPLATE: Tag = Tag(0x61);
    pub const FCI: Tag = Tag(0x6F);
    pub const RECORD: Tag = Tag(0x70);
    pub const RESPONSE_FORMAT2: Tag = Tag(0x77);
    pub const RESPONSE_FORMAT1: Tag = Tag(0x80);
    pub const AIP: Tag = Tag(0x82);
    pub const DF_NAME: Tag = Tag(0x84);
    pub const PRIORITY: Tag = Tag(0x87);
    pub const ARC: Tag = Tag(0x8A);
    pub const CDOL1: Tag = Tag(0x8C);
    pub const CDOL2: Tag = Tag(0x8D);
    pub const CVM_LIST: Tag = Tag(0x8E);
    pub const AFL: Tag = Tag(0x94);
    pub const TVR: Tag = Tag(0x95);
    pub const PIN_DATA: Tag = Tag(0x99);
    pub const TXN_DATE: Tag = Tag(0x9A);
    pub const TSI: Tag = Tag(0x9B);
    pub const TXN_TYPE: Tag = Tag(0x9C);
    pub const AMOUNT: Tag = Tag(0x9F02);
    pub const AMOUNT_OTHER: Tag = Tag(0x9F03);
    pub const TERMINAL_AID: Tag = Tag(0x9F06);
    pub const AUC: Tag = Tag(0x9F07);
    pub const APP_VERSION: Tag = Tag(0x9F08);
    pub const TERMINAL_APP_VERSION: Tag = Tag(0x9F09);
    pub const IAD: Tag = Tag(0x9F10);
    pub const PREFERRED_NAME: Tag = Tag(0x9F12);
    pub const TERMINAL_COUNTRY: Tag = Tag(0x9F1A);
    pub const TERMINAL_ID: Tag = Tag(0x9F1C);
    pub const IFD_SERIAL: Tag = Tag(0x9F1E);
    pub const TXN_TIME: Tag = Tag(0x9F21);
    pub const AC: Tag = Tag(0x9F26);
    pub const CID: Tag = Tag(0x9F27);
    pub const TERMINAL_CAPABILITIES: Tag = Tag(0x9F33);
    pub const CVM_RESULTS: Tag = Tag(0x9F34);
    pub const TERMINAL_TYPE: Tag = Tag(0x9F35);
    pub const ATC: Tag = Tag(0x9F36);
    pub const UN: Tag = Tag(0x9F37);
    pub const PDOL: Tag = Tag(0x9F38);
    pub const POS_ENTRY_MODE: Tag = Tag(0x9F39);
    pub const TSC: Tag = Tag(0x9F41);
    pub const APP_CURRENCY: Tag = Tag(0x9F42);
    pub const APP_CURRENCY_EXPONENT: Tag = Tag(0x9F44);
    pub const TTQ: Tag = Tag(0x9F66);
    pub const TRACK2_DATA: Tag = Tag(0x9F6B);
    pub const CTQ: Tag = Tag(0x9F6C);
    pub const FCI_PROPRIETARY: Tag = Tag(0xA5);
    pub const FCI_ISSUER_DISCRETIONARY: Tag = Tag(0xBF0C);
}

macro_rules! t {
    ($tag:expr, $name:expr, $f:ident) => {
        t!($tag, $name, $f, Public)
    };
    ($tag:expr, $name:expr, $f:ident, $s:ident) => {
        TagInfo {
            tag: $tag,
            name: $name,
            format: Format::$f,
            secrecy: Secrecy::$s,
        }
    };
}

/// The tag-name table, sorted by tag.
pub static TAGS: &[TagInfo] = &[
    t!(0x4F, "Application Identifier (ADF Name)", B),
    t!(0x50, "Application Label", An),
    t!(0x56, "Track 1 Data", An, Redact),
    t!(0x57, "Track 2 Equivalent Data", B, Redact),
    t!(0x5A, "Application PAN", Cn, MaskPan),
    t!(0x61, "Application Template", Template),
    t!(0x6F, "FCI Template", Template),
    t!(0x70, "READ RECORD Response Template", Template),
    t!(0x77, "Response Message Template Format 2", Template),
    t!(0x80, "Response Message Template Format 1", B),
    t!(0x82, "Application Interchange Profile", B),
    t!(0x84, "Dedicated File (DF) Name", B),
    t!(0x87, "Application Priority Indicator", B),
    t!(0x88, "Short File Identifier (SFI)", B),
    t!(0x8A, "Authorisation Response Code", An),
    t!(0x8C, "CDOL1", B),
    t!(0x8D, "CDOL2", B),
    t!(0x8E, "CVM List", B),
    t!(0x8F, "CA Public Key Index", B),
    t!(0x90, "Issuer Public Key Certificate", B),
    t!(0x91, "Issuer Authentication Data", B),
    t!(0x94, "Application File Locator (AFL)", B),
    t!(0x95, "Terminal Verification Results", B),
    t!(0x99, "Transaction PIN Data", B, Redact),
    t!(0x9A, "Transaction Date", N),
    t!(0x9B, "Transaction Status Information", B),
    t!(0x9C, "Transaction Type", N),
    t!(0xA5, "FCI Proprietary Template", Template),
    t!(0x5F20, "Cardholder Name", An),
    t!(0x5F24, "Application Expiration Date", N),
    t!(0x5F25, "Application Effective Date", N),
    t!(0x5F28, "Issuer Country Code", N),
    t!(0x5F2A, "Transaction Currency Code", N),
    t!(0x5F2D, "Language Preference", An),
    t!(0x5F30, "Service Code", N),
    t!(0x5F34, "Application PAN Sequence Number", N),
    t!(0x5F36, "Transaction Currency Exponent", N),
    t!(0x9F01, "Acquirer Identifier", N),
    t!(0x9F02, "Amount, Authorised", N),
    t!(0x9F03, "Amount, Other", N),
    t!(0x9F06, "Application Identifier (AID) - terminal", B),
    t!(0x9F07, "Application Usage Control", B),
    t!(0x9F08, "Application Version Number (card)", B),
    t!(0x9F09, "Application Version Number (terminal)", B),
    t!(0x9F0D, "Issuer Action Code - Default", B),
    t!(0x9F0E, "Issuer Action Code - Denial", B),
    t!(0x9F0F, "Issuer Action Code - Online", B),
    t!(0x9F10, "Issuer Application Data", B),
    t!(0x9F11, "Issuer Code Table Index", N),
    t!(0x9F12, "Application Preferred Name", An),
    t!(0x9F15, "Merchant Category Code", N),
    t!(0x9F16, "Merchant Identifier", An),
    t!(0x9F1A, "Terminal Country Code", N),
    t!(0x9F1C, "Terminal Identification", An),
    t!(0x9F1E, "IFD Serial Number", An),
    t!(0x9F1F, "Track 1 Discretionary Data", An, Redact),
    t!(0x9F20, "Track 2 Discretionary Data", Cn, Redact),
    t!(0x9F21, "Transaction Time", N),
    t!(0x9F26, "Application Cryptogram", B),
    t!(0x9F27, "Cryptogram Information Data", B),
    t!(0x9F33, "Terminal Capabilities", B),
    t!(0x9F34, "CVM Results", B),
    t!(0x9F35, "Terminal Type", N),
    t!(0x9F36, "Application Transaction Counter", B),
    t!(0x9F37, "Unpredictable Number", B),
    t!(0x9F38, "PDOL", B),
    t!(0x9F39, "POS Entry Mode", N),
    t!(0x9F40, "Additional Terminal Capabilities", B),
    t!(0x9F41, "Transaction Sequence Counter", N),
    t!(0x9F42, "Application Currency Code", N),
    t!(0x9F44, "Application Currency Exponent", N),
    t!(0x9F4D, "Log Entry", B),
    t!(0x9F4E, "Merchant Name and Location", An),
    t!(0x9F66, "Terminal Transaction Qualifiers", B),
    t!(0x9F6B, "Track 2 Data", B, Redact),
    t!(0x9F6C, "Card Transaction Qualifiers", B),
    t!(0xBF0C, "FCI Issuer Discretionary Data", Template),
];

/// The table row of a tag.
pub fn tag_info(tag: Tag) -> Option<&'static TagInfo> {
    TAGS.iter().find(|t| t.tag == tag.0)
}

/// The EMV name of a tag (`9F02` → "Amount, Authorised").
pub fn tag_name(tag: Tag) -> Option<&'static str> {
    tag_info(tag).map(|t| t.name)
}

/// An EMV error: the TLV structure or one element's value is wrong, with its byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmvError {
    #[error(transparent)]
    Tlv(#[from] TlvError),
    #[error("tag {tag} at byte {offset}: {reason}")]
    BadValue {
        tag: Tag,
        offset: usize,
        reason: String,
    },
}

impl EmvError {
    pub fn offset(&self) -> usize {
        match self {
            EmvError::Tlv(e) => e.offset(),
            EmvError::BadValue { offset, .. } => *offset,
        }
    }
}

fn bad(t: &Tlv<'_>, reason: impl Into<String>) -> EmvError {
    EmvError::BadValue {
        tag: t.tag,
        offset: t.offset,
        reason: reason.into(),
    }
}

/// Most template levels the parser descends.
pub const MAX_DEPTH: usize = 8;

/// One parsed object and, for a template, its children.
#[derive(Clone, PartialEq, Eq)]
pub struct Node<'a> {
    pub tlv: Tlv<'a>,
    pub children: Vec<Node<'a>>,
}

/// Parsed EMV data: a tree of objects borrowing from the input.
///
/// Debug prints the masked rendering, never raw values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EmvData<'a> {
    nodes: Vec<Node<'a>>,
}

/// Parses one level, skipping `00` and `FF` padding bytes between objects (EMV Book 3
/// Annex B allows `00`; ISO/IEC 7816-4 also `FF`, UNVERIFIED).
fn parse_level(buf: &[u8], base: usize, depth: usize) -> Result<Vec<Node<'_>>, EmvError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(rest) = buf.get(i..) {
        let Some(&first) = rest.first() else { break };
        if first == 0x00 || first == 0xFF {
            i += 1;
            continue;
        }
        let (t, n) = tlv::parse_one(rest, base + i)?;
        let children = if t.tag.is_constructed() {
            if depth >= MAX_DEPTH {
                return Err(TlvError::TooDeep(MAX_DEPTH).into());
            }
            let hdr = n - t.value.len();
            parse_level(t.value, base + i + hdr, depth + 1)?
        } else {
            Vec::new()
        };
        out.push(Node { tlv: t, children });
        i += n;
    }
    Ok(out)
}

impl<'a> EmvData<'a> {
    /// Parses a sequence of objects, descending into templates (constructed tags).
    pub fn parse(bytes: &'a [u8]) -> Result<EmvData<'a>, EmvError> {
        Ok(EmvData {
            nodes: parse_level(bytes, 0, 0)?,
        })
    }

    pub fn nodes(&self) -> &[Node<'a>] {
        &self.nodes
    }

    /// Every primitive object, depth first.
    pub fn primitives(&self) -> Vec<Tlv<'a>> {
        fn walk<'a>(ns: &[Node<'a>], out: &mut Vec<Tlv<'a>>) {
            for n in ns {
                if n.tlv.tag.is_constructed() {
                    walk(&n.children, out);
                } else {
                    out.push(n.tlv);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut out);
        out
    }

    /// The first object with `tag`, depth first.
    pub fn get(&self, tag: Tag) -> Option<Tlv<'a>> {
        fn walk<'a>(ns: &[Node<'a>], tag: Tag) -> Option<Tlv<'a>> {
            ns.iter().find_map(|n| {
                if n.tlv.tag == tag {
                    Some(n.tlv)
                } else {
                    walk(&n.children, tag)
                }
            })
        }
        walk(&self.nodes, tag)
    }

    /// The raw value of `tag`.
    pub fn value(&self, tag: Tag) -> Option<&'a [u8]> {
        self.get(tag).map(|t| t.value)
    }

    fn n(&self, tag: Tag, max_len: usize) -> Result<Option<(Tlv<'a>, String)>, EmvError> {
        let Some(t) = self.get(tag) else {
            return Ok(None);
        };
        if t.value.is_empty() || t.value.len() > max_len {
            return Err(bad(
                &t,
                format!("length {} is not 1..={max_len}", t.value.len()),
            ));
        }
        let d = bcd_n(t.value).map_err(|i| bad(&t, format!("byte {i} is not BCD")))?;
        Ok(Some((t, d)))
    }

    fn date(&self, tag: Tag) -> Result<Option<NaiveDate>, EmvError> {
        match self.n(tag, 3)? {
            None => Ok(None),
            Some((t, d)) => parse_yymmdd(&d)
                .map(Some)
                .map_err(|e| bad(&t, e.to_string())),
        }
    }

    fn text(&self, tag: Tag) -> Option<String> {
        self.value(tag)
            .map(|v| v.iter().map(|&b| b as char).collect())
    }

    /// 5A, BCD with `F` padding.
    pub fn pan(&self) -> Result<Option<Pan>, EmvError> {
        let Some(t) = self.get(tags::PAN) else {
            return Ok(None);
        };
        let d = bcd_cn(t.value).map_err(|i| bad(&t, format!("nibble {i} is not a PAN digit")))?;
        Pan::new(&d).map(Some).map_err(|e| bad(&t, e.to_string()))
    }
    /// 5F24 as a date (`YYMMDD`, conventionally the last day of the month).
    pub fn expiry_date(&self) -> Result<Option<NaiveDate>, EmvError> {
        self.date(tags::EXPIRY)
    }
    /// 5F24 as the card's expiry month.
    pub fn expiry(&self) -> Result<Option<Expiry>, EmvError> {
        Ok(self.expiry_date()?.and_then(Expiry::from_date))
    }
    /// 5F25.
    pub fn effective_date(&self) -> Result<Option<NaiveDate>, EmvError> {
        self.date(tags::EFFECTIVE)
    }
    /// 9A.
    pub fn txn_date(&self) -> Result<Option<NaiveDate>, EmvError> {
        self.date(tags::TXN_DATE)
    }
    /// 9F02 n12 in minor units.
    pub fn amount_minor(&self) -> Result<Option<u64>, EmvError> {
        self.minor(tags::AMOUNT)
    }
    /// 9F03 n12 in minor units.
    pub fn amount_other_minor(&self) -> Result<Option<u64>, EmvError> {
        self.minor(tags::AMOUNT_OTHER)
    }
    fn minor(&self, tag: Tag) -> Result<Option<u64>, EmvError> {
        Ok(self.n(tag, 6)?.map(|(_, d)| d.parse::<u64>().unwrap_or(0)))
    }
    /// 9F02 with the currency of 5F2A; `None` when either is absent.
    pub fn amount(&self) -> Result<Option<Money>, EmvError> {
        match (self.amount_minor()?, self.txn_currency()?) {
            (Some(m), Some(c)) => Ok(Some(Money::from_minor(m, c))),
            _ => Ok(None),
        }
    }
    fn currency(&self, tag: Tag) -> Result<Option<Currency>, EmvError> {
        match self.n(tag, 2)? {
            None => Ok(None),
            Some((t, d)) => {
                let n: u16 = d.parse().unwrap_or(0);
                Currency::from_numeric(n)
                    .map(Some)
                    .ok_or_else(|| bad(&t, format!("unknown currency {n:03}")))
            }
        }
    }
    /// 5F2A.
    pub fn txn_currency(&self) -> Result<Option<Currency>, EmvError> {
        self.currency(tags::TXN_CURRENCY)
    }
    /// 9F42.
    pub fn app_currency(&self) -> Result<Option<Currency>, EmvError> {
        self.currency(tags::APP_CURRENCY)
    }
    /// 5F28 (ISO 3166 numeric).
    pub fn issuer_country(&self) -> Result<Option<u16>, EmvError> {
        Ok(self
            .n(tags::ISSUER_COUNTRY, 2)?
            .map(|(_, d)| d.parse().unwrap_or(0)))
    }
    /// 5F34 n2.
    pub fn psn(&self) -> Result<Option<u8>, EmvError> {
        Ok(self.n(tags::PSN, 1)?.map(|(_, d)| d.parse().unwrap_or(0)))
    }
    /// 9C n2.
    pub fn txn_type(&self) -> Result<Option<u8>, EmvError> {
        Ok(self
            .n(tags::TXN_TYPE, 1)?
            .map(|(_, d)| d.parse().unwrap_or(0)))
    }
    /// 4F, else 84.
    pub fn aid(&self) -> Option<&'a [u8]> {
        self.value(tags::AID).or_else(|| self.value(tags::DF_NAME))
    }
    /// 50.
    pub fn label(&self) -> Option<String> {
        self.text(tags::LABEL)
    }
    /// 5F20.
    pub fn cardholder_name(&self) -> Option<String> {
        self.text(tags::CARDHOLDER_NAME)
    }
    /// 9F36, two bytes.
    pub fn atc(&self) -> Result<Option<u16>, EmvError> {
        let Some(t) = self.get(tags::ATC) else {
            return Ok(None);
        };
        match t.value {
            [a, b] => Ok(Some(u16::from_be_bytes([*a, *b]))),
            v => Err(bad(&t, format!("length {} is not 2", v.len()))),
        }
    }
    /// 9F27.
    pub fn cid(&self) -> Option<u8> {
        match self.value(tags::CID) {
            Some([c]) => Some(*c),
            _ => None,
        }
    }
    /// 95, five bytes.
    pub fn tvr(&self) -> Option<[u8; 5]> {
        self.value(tags::TVR).and_then(|v| v.try_into().ok())
    }
    /// 57, decoded as track 2.
    pub fn track2_equivalent(&self) -> Result<Option<Track2>, EmvError> {
        let Some(t) = self.get(tags::TRACK2_EQUIVALENT) else {
            return Ok(None);
        };
        decode_track2_equivalent(t.value)
            .map(Some)
            .map_err(|e| bad(&t, e))
    }

    /// One line per object, templates indented; 5A masked, 57 and other track or PIN data
    /// shown only by length. For transcripts.
    pub fn render(&self) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, 0, &mut out);
        out
    }
}

impl fmt::Debug for EmvData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmvData {{\n{}}}", self.render())
    }
}
impl fmt::Display for EmvData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Renders whatever parses of `bytes` and then the error, if any. Never fails, never
/// shows a PAN in full or track data.
pub fn render_lossy(bytes: &[u8]) -> String {
    match EmvData::parse(bytes) {
        Ok(d) => d.render(),
        Err(e) => {
            // Render the objects before the error at top level; their inner structure may be
            // the broken part, so they are shown by secrecy rules only.
            let mut out = String::new();
            let mut i = 0;
            while let Some(rest) = bytes.get(i..) {
                let Some(&first) = rest.first() else { break };
                if first == 0x00 || first == 0xFF {
                    i += 1;
                    continue;
                }
                match tlv::parse_one(rest, i) {
                    Ok((t, n)) => {
                        match parse_level(t.value, 0, 1) {
                            Ok(children) if t.tag.is_constructed() => {
                                render_nodes(&[Node { tlv: t, children }], 0, &mut out)
                            }
                            _ => render_nodes(
                                &[Node {
                                    tlv: t,
                                    children: Vec::new(),
                                }],
                                0,
                                &mut out,
                            ),
                        }
                        i += n;
                    }
                    Err(_) => break,
                }
            }
            out.push_str(&format!("! malformed: {e}\n"));
            out
        }
    }
}

fn render_nodes(ns: &[Node<'_>], depth: usize, out: &mut String) {
    for n in ns {
        let info = tag_info(n.tlv.tag);
        let name = info.map(|i| i.name).unwrap_or("?");
        for _ in 0..depth {
            out.push_str("  ");
        }
        if n.tlv.tag.is_constructed() {
            out.push_str(&format!("{} {name}\n", n.tlv.tag));
            render_nodes(&n.children, depth + 1, out);
            continue;
        }
        let v = render_value(info, n.tlv.value);
        out.push_str(&format!("{} {name}: {v}\n", n.tlv.tag));
    }
}

fn render_value(info: Option<&TagInfo>, v: &[u8]) -> String {
    let (format, secrecy) = info
        .map(|i| (i.format, i.secrecy))
        .unwrap_or((Format::B, Secrecy::Public));
    match secrecy {
        Secrecy::Redact => return format!("[redacted, {} bytes]", v.len()),
        Secrecy::MaskPan => {
            return match bcd_cn(v) {
                Ok(d) => mask_digits(&d),
                Err(_) => format!("[unreadable PAN, {} bytes]", v.len()),
            };
        }
        Secrecy::Public => {}
    }
    match format {
        Format::N => bcd_n(v).unwrap_or_else(|_| format!("hex:{}", hex(v))),
        Format::Cn => bcd_cn(v).unwrap_or_else(|_| format!("hex:{}", hex(v))),
        Format::An => quote(v),
        Format::B | Format::Template => hex(v),
    }
}

/// Uppercase hex without separators.
pub fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02X}")).collect()
}

fn quote(v: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in v {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7E => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02X}")),
        }
    }
    s.push('"');
    s
}

/// `n` format: every nibble a digit. Err carries the byte index.
fn bcd_n(v: &[u8]) -> Result<String, usize> {
    let mut s = String::with_capacity(v.len() * 2);
    for (i, &b) in v.iter().enumerate() {
        let (h, l) = (b >> 4, b & 0x0F);
        if h > 9 || l > 9 {
            return Err(i);
        }
        s.push((b'0' + h) as char);
        s.push((b'0' + l) as char);
    }
    Ok(s)
}

/// `cn` format: digits, then only `F` padding. Err carries the nibble index.
fn bcd_cn(v: &[u8]) -> Result<String, usize> {
    let mut s = String::with_capacity(v.len() * 2);
    let mut padding = false;
    for (i, n) in v.iter().flat_map(|&b| [b >> 4, b & 0x0F]).enumerate() {
        match n {
            0..=9 if !padding => s.push((b'0' + n) as char),
            0x0F => padding = true,
            _ => return Err(i),
        }
    }
    Ok(s)
}

/// BCD right-justified in `len` bytes (`n` format); `None` if it does not fit.
pub fn encode_n(value: u64, len: usize) -> Option<Vec<u8>> {
    let digits = format!("{value:0width$}", width = len * 2);
    if digits.len() > len * 2 {
        return None;
    }
    Some(
        digits
            .as_bytes()
            .chunks(2)
            .map(|p| ((p[0] - b'0') << 4) | (p[1] - b'0'))
            .collect(),
    )
}

/// Digits left-justified, `F`-padded (`cn` format). Non-digits are refused.
pub fn encode_cn(digits: &str) -> Option<Vec<u8>> {
    nibbles_to_bytes(
        digits
            .bytes()
            .map(|b| b.is_ascii_digit().then(|| b - b'0'))
            .collect::<Option<Vec<u8>>>()?,
    )
    .into()
}

fn nibbles_to_bytes(mut n: Vec<u8>) -> Vec<u8> {
    if n.len() % 2 == 1 {
        n.push(0x0F);
    }
    n.chunks(2).map(|p| (p[0] << 4) | (p[1] & 0x0F)).collect()
}

/// Tag 57: track 2 characters as nibbles (`=` → `D`), no sentinels or LRC, `F`-padded.
pub fn encode_track2_equivalent(t: &Track2) -> Vec<u8> {
    let raw = t.encode();
    let text = raw.expose();
    let inner = text
        .get(1..text.len().saturating_sub(2))
        .unwrap_or("")
        .bytes()
        .filter_map(|b| TrackKind::Two.value(b))
        .collect();
    nibbles_to_bytes(inner)
}

/// Tag 57 back to a track: PAN `D` YYMM SVC discretionary, trailing `F` padding only.
pub fn decode_track2_equivalent(v: &[u8]) -> Result<Track2, String> {
    let nibbles: Vec<u8> = v.iter().flat_map(|&b| [b >> 4, b & 0x0F]).collect();
    let mut body = String::from(";");
    let mut end = nibbles.len();
    if nibbles.last() == Some(&0x0F) {
        end -= 1;
    }
    for (i, &n) in nibbles.iter().take(end).enumerate() {
        match n {
            0x0B | 0x0F => return Err(format!("nibble {i} is {n:X}, not allowed inside tag 57")),
            _ => body.push((0x30 + n) as char),
        }
    }
    body.push('?');
    let (t, _) = Track2::parse_lenient(&body).map_err(|e| {
        // Offsets in `body` are one past the nibble index because of the sentinel.
        format!("nibble {}: {}", e.offset.saturating_sub(1), e.kind)
    })?;
    Ok(t)
}

/// Builds EMV data with typed setters over [`TlvBuilder`].
///
/// ```
/// use protocol::card::emv::EmvBuilder;
/// use protocol::money::Currency;
/// let b = EmvBuilder::new().currency(Currency::from_alpha("CNY").unwrap()).psn(1).build();
/// assert_eq!(b, [0x5F, 0x2A, 0x02, 0x01, 0x56, 0x5F, 0x34, 0x01, 0x01]);
/// ```
#[derive(Default, Clone)]
pub struct EmvBuilder {
    inner: TlvBuilder,
}

impl fmt::Debug for EmvBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmvBuilder(..)")
    }
}

impl EmvBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(mut self, tag: Tag, value: &[u8]) -> Self {
        self.inner = self.inner.put(tag.0, value);
        self
    }
    /// A template holding another builder's objects.
    pub fn nest(mut self, tag: Tag, inner: EmvBuilder) -> Self {
        self.inner = self.inner.nest(tag.0, inner.inner);
        self
    }
    fn put_n(self, tag: Tag, value: u64, len: usize) -> Self {
        // Values are bounded by the setters' types, so they always fit.
        let v = encode_n(value, len).unwrap_or_default();
        self.put(tag, &v)
    }
    pub fn aid(self, aid: &[u8]) -> Self {
        self.put(tags::AID, aid)
    }
    pub fn label(self, label: &str) -> Self {
        self.put(tags::LABEL, label.as_bytes())
    }
    pub fn pan(self, pan: &Pan) -> Self {
        let v = encode_cn(pan.expose()).unwrap_or_default();
        self.put(tags::PAN, &v)
    }
    pub fn track2_equivalent(self, t: &Track2) -> Self {
        self.put(tags::TRACK2_EQUIVALENT, &encode_track2_equivalent(t))
    }
    pub fn cardholder_name(self, name: &str) -> Self {
        self.put(tags::CARDHOLDER_NAME, name.as_bytes())
    }
    pub fn expiry_date(self, d: NaiveDate) -> Self {
        self.date(tags::EXPIRY, d)
    }
    pub fn effective_date(self, d: NaiveDate) -> Self {
        self.date(tags::EFFECTIVE, d)
    }
    pub fn txn_date(self, d: NaiveDate) -> Self {
        self.date(tags::TXN_DATE, d)
    }
    fn date(self, tag: Tag, d: NaiveDate) -> Self {
        let v = format_yymmdd(d).parse::<u64>().unwrap_or(0);
        self.put_n(tag, v, 3)
    }
    /// 9F02 in minor units (at most 12 digits).
    pub fn amount(self, minor: u64) -> Self {
        self.put_n(tags::AMOUNT, minor.min(999_999_999_999), 6)
    }
    pub fn amount_other(self, minor: u64) -> Self {
        self.put_n(tags::AMOUNT_OTHER, minor.min(999_999_999_999), 6)
    }
    /// 5F2A.
    pub fn currency(self, c: Currency) -> Self {
        self.put_n(tags::TXN_CURRENCY, c.numeric() as u64, 2)
    }
    /// 9F42.
    pub fn app_currency(self, c: Currency) -> Self {
        self.put_n(tags::APP_CURRENCY, c.numeric() as u64, 2)
    }
    /// 5F28, ISO 3166 numeric (156 China).
    pub fn issuer_country(self, n: u16) -> Self {
        self.put_n(tags::ISSUER_COUNTRY, (n % 1000) as u64, 2)
    }
    /// 9F1A.
    pub fn terminal_country(self, n: u16) -> Self {
        self.put_n(tags::TERMINAL_COUNTRY, (n % 1000) as u64, 2)
    }
    /// 5F34, 0..=99.
    pub fn psn(self, psn: u8) -> Self {
        self.put_n(tags::PSN, (psn % 100) as u64, 1)
    }
    /// 9C, 0..=99 (00 goods and services, 20 refund).
    pub fn txn_type(self, t: u8) -> Self {
        self.put_n(tags::TXN_TYPE, (t % 100) as u64, 1)
    }
    pub fn atc(self, atc: u16) -> Self {
        self.put(tags::ATC, &atc.to_be_bytes())
    }
    pub fn un(self, un: [u8; 4]) -> Self {
        self.put(tags::UN, &un)
    }
    pub fn build(self) -> Vec<u8> {
        self.inner.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{ServiceCode, Track2};
    use proptest::prelude::*;

    fn cny() -> Currency {
        Currency::from_alpha("CNY").unwrap()
    }

    #[test]
    fn table_is_sorted_unique_and_named() {
        for w in TAGS.windows(2) {
            let key = |t: &TagInfo| (Tag(t.tag).to_bytes().len(), t.tag);
            assert!(
                key(&w[0]) < key(&w[1]),
                "{:X} before {:X}",
                w[0].tag,
                w[1].tag
            );
        }
        assert_eq!(tag_name(tags::AMOUNT), Some("Amount, Authorised"));
        assert_eq!(tag_name(Tag(0x9F37)), Some("Unpredictable Number"));
        assert_eq!(tag_name(Tag(0xDF01)), None);
        for t in [0x57, 0x56, 0x99, 0x9F6B, 0x9F1F, 0x9F20] {
            assert_eq!(tag_info(Tag(t)).unwrap().secrecy, Secrecy::Redact);
        }
        for info in TAGS {
            assert_eq!(
                Tag(info.tag).is_constructed(),
                info.format == Format::Template,
                "{:X}",
                info.tag
            );
        }
    }

    #[test]
    fn known_bytes_decode() {
        // Hand-built from the Book 3 formats: 5F24 n6 301231, 9F02 n12 000000003333,
        // 5F2A n3 0156 (CNY), 5A cn 6222021234567894, 5F34 n2 01, 9F36 b2 0x0102.
        let bytes = [
            0x70, 0x24, // template
            0x5A, 0x08, 0x62, 0x22, 0x02, 0x12, 0x34, 0x56, 0x78, 0x94, //
            0x5F, 0x24, 0x03, 0x30, 0x12, 0x31, //
            0x5F, 0x34, 0x01, 0x01, //
            0x9F, 0x36, 0x02, 0x01, 0x02, //
            0x00, 0x00, // padding inside the template
            0x9F, 0x02, 0x06, 0x00, 0x00, 0x00, 0x00, 0x33, 0x33, //
            0x5F, 0x2A, 0x02, 0x01, 0x56,
        ];
        let d = EmvData::parse(&bytes).unwrap();
        assert_eq!(d.pan().unwrap().unwrap().expose(), "6222021234567894");
        assert_eq!(
            d.expiry_date().unwrap(),
            NaiveDate::from_ymd_opt(2030, 12, 31)
        );
        assert_eq!(d.expiry().unwrap().unwrap().to_yymm(), "3012");
        assert_eq!(d.psn().unwrap(), Some(1));
        assert_eq!(d.atc().unwrap(), Some(0x0102));
        assert_eq!(d.amount_minor().unwrap(), Some(3333));
        assert_eq!(d.txn_currency().unwrap(), Some(cny()));
        assert_eq!(d.amount().unwrap().unwrap().to_string(), "33.33");
        assert_eq!(
            d.render(),
            "70 READ RECORD Response Template\n\
             \x20 5A Application PAN: 622202******7894\n\
             \x20 5F24 Application Expiration Date: 301231\n\
             \x20 5F34 Application PAN Sequence Number: 01\n\
             \x20 9F36 Application Transaction Counter: 0102\n\
             \x20 9F02 Amount, Authorised: 000000003333\n\
             5F2A Transaction Currency Code: 0156\n"
        );
    }

    #[test]
    fn odd_length_pan_is_f_padded() {
        let pan = Pan::new("6250941006528599123").unwrap();
        let b = EmvBuilder::new().pan(&pan).build();
        assert_eq!(b.len(), 2 + 10);
        assert_eq!(b[11], 0x3F);
        assert_eq!(EmvData::parse(&b).unwrap().pan().unwrap(), Some(pan));
        // A digit after the padding is refused, at the tag's offset.
        let e = EmvData::parse(&[0x5A, 0x02, 0x12, 0xF3])
            .unwrap()
            .pan()
            .unwrap_err();
        assert!(matches!(e, EmvError::BadValue { offset: 0, .. }), "{e}");
    }

    #[test]
    fn track2_equivalent_round_trip_and_never_rendered() {
        let t = Track2::new(
            Pan::new("6222021234567894").unwrap(),
            Expiry::parse_yymm("3012").unwrap(),
            ServiceCode::parse("220").unwrap(),
            "12345",
        )
        .unwrap();
        let v = encode_track2_equivalent(&t);
        // 6222021234567894 D 3012 220 12345, padded with F to whole bytes.
        assert_eq!(hex(&v), "6222021234567894D301222012345F");
        let bytes = EmvBuilder::new().track2_equivalent(&t).build();
        let d = EmvData::parse(&bytes).unwrap();
        assert_eq!(d.track2_equivalent().unwrap(), Some(t));
        let r = d.render();
        assert_eq!(r, "57 Track 2 Equivalent Data: [redacted, 15 bytes]\n");
        assert!(decode_track2_equivalent(&[0x12, 0xB4]).is_err());
    }

    #[test]
    fn bad_values_name_tag_and_offset() {
        let b = [0x9F, 0x02, 0x02, 0x1A, 0x00];
        let e = EmvData::parse(&b).unwrap().amount_minor().unwrap_err();
        assert_eq!(
            e,
            EmvError::BadValue {
                tag: Tag(0x9F02),
                offset: 0,
                reason: "byte 0 is not BCD".into()
            }
        );
        let b = [0x50, 0x01, b'A', 0x5F, 0x24, 0x03, 0x30, 0x02, 0x30];
        let e = EmvData::parse(&b).unwrap().expiry_date().unwrap_err();
        assert_eq!(e.offset(), 3);
        let e = EmvData::parse(&[0x70, 0x03, 0x5A, 0x05, 0x00]).unwrap_err();
        assert_eq!(e.offset(), 2);
        assert!(
            EmvData::parse(&[0x5F, 0x2A, 0x02, 0x09, 0x99])
                .unwrap()
                .txn_currency()
                .is_err()
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut b = EmvBuilder::new().psn(1);
        for _ in 0..12 {
            b = EmvBuilder::new().nest(tags::RECORD, b);
        }
        let bytes = b.build();
        assert!(matches!(
            EmvData::parse(&bytes),
            Err(EmvError::Tlv(TlvError::TooDeep(_)))
        ));
    }

    #[test]
    fn render_lossy_masks_and_reports() {
        let mut bytes = EmvBuilder::new()
            .pan(&Pan::new("4761739001010010").unwrap())
            .label("VISA CREDIT")
            .build();
        bytes.extend_from_slice(&[0x9F, 0x02, 0x06, 0x00]);
        let r = render_lossy(&bytes);
        assert!(r.contains("476173******0010"), "{r}");
        assert!(!r.contains("7390010"), "{r}");
        assert!(r.contains("50 Application Label: \"VISA CREDIT\""), "{r}");
        assert!(r.contains("! malformed"), "{r}");
        let dbg = format!("{:?}", EmvData::parse(&bytes[..bytes.len() - 4]).unwrap());
        assert!(!dbg.contains("7390010"), "{dbg}");
    }

    proptest! {
        #[test]
        fn builder_round_trip(
            digits in "[0-9]{12,19}",
            minor in 0u64..=999_999_999_999,
            psn in 0u8..100,
            atc in any::<u16>(),
            yy in 0i32..100, mm in 1u32..=12, dd in 1u32..=28,
            label in "[ -~]{0,16}",
        ) {
            let pan = Pan::new(&digits).unwrap();
            let date = NaiveDate::from_ymd_opt(2000 + yy, mm, dd).unwrap();
            let inner = EmvBuilder::new().pan(&pan).expiry_date(date).psn(psn).label(&label);
            let bytes = EmvBuilder::new()
                .nest(tags::RECORD, inner)
                .amount(minor)
                .currency(cny())
                .atc(atc)
                .build();
            let d = EmvData::parse(&bytes).unwrap();
            prop_assert_eq!(d.pan().unwrap(), Some(pan));
            prop_assert_eq!(d.expiry_date().unwrap(), Some(date));
            prop_assert_eq!(d.psn().unwrap(), Some(psn));
            prop_assert_eq!(d.amount_minor().unwrap(), Some(minor));
            prop_assert_eq!(d.atc().unwrap(), Some(atc));
            prop_assert_eq!(d.label(), Some(label));
            let pan_line = format!("  5A Application PAN: {}\n", mask_digits(&digits));
            prop_assert!(d.render().contains(&pan_line));
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = render_lossy(&bytes);
            if let Ok(d) = EmvData::parse(&bytes) {
                let _ = d.pan();
                let _ = d.expiry();
                let _ = d.amount();
                let _ = d.track2_equivalent();
                let _ = d.render();
            }
            let _ = decode_track2_equivalent(&bytes);
        }
    }
}
