//! Scripting the host: a [`Directive`] says how the next matching request(s) are answered —
//! approve, decline with a code, change reply fields, delay, or break the delivery on purpose
//! ([`Fault`]). Tests and the scenario runner install directives with
//! [`crate::Host::script`]; the CLI reads them from a YAML file ([`parse_script`]).
//!
//! Matching: a directive matches a request when every `(key, value)` of [`Directive::fields`]
//! is equal (`"mti"`, a field number `"4"`, or a subfield the dialect declares, `"60.1"`), and
//! the optional predicate says yes. The earliest-installed directive that matches and is not
//! used up wins; it applies [`Times::Once`], `N` times or [`Times::Always`].
//!
//! Ledger effect: delivery faults (`no_reply`, `close`, `delay_ms`, broken frames) do not
//! change what the host *did*: the request was processed and recorded, only the reply was lost
//! or mangled, so the terminal's later reversal or advice resend finds it. A forced decline is
//! recorded as a declined request (a declined refund does not count against its original); a
//! forced approval that the rules would have refused is recorded as approved, without fee.
//!
//! # Script file format (`posrig acquirer --script FILE`)
//! A YAML list; each entry is one directive:
//! ```yaml
//! - name: second partial refund is declined   # optional, shown in the log
//!   match: {mti: "0220", 4: "000000003333", "60.1": "25"}   # all must be equal; {} = any request
//!   reply: {39: "05", 38: "ABC123", "60.3": "001"}          # 39 "00" approves, anything else
//!                                                            # declines (recorded as declined);
//!                                                            # other keys set reply fields
//!   remove: [38]            # reply fields to drop
//!   fault: close            # no_reply | close | reply_twice | wrong_stan | wrong_mti |
//!                           # wrong_mac | garbled | truncated | wrong_length | no_tpdu_swap
//!   delay_ms: 2000          # answer this much later (the fault, if any, happens then)
//!   times: 1                # a count, or "always"; default 1
//! ```
//! Field values are strings exactly as the canonical value: digits for numeric fields (`"05"`,
//! not `05`), hex for binary fields (`64: "0102030405060708"`). Errors name `file:line:column`.
//!
//! # What each fault sends (exact bytes)
//! | fault | bytes on the wire |
//! |---|---|
//! | `no_reply` | nothing (the request was processed) |
//! | `close` | nothing; the connection is closed |
//! | `reply_twice` | the framed reply, twice (two writes) |
//! | `wrong_stan` | a correct reply whose field 11 is the request's STAN + 1 (999999 → 000000) |
//! | `wrong_mti` | a correct reply whose MTI is the right response + 20 (0210 → 0230, 0810 → 0830) |
//! | `wrong_mac` | a correct reply whose 8 MAC bytes are inverted (`^ 0xFF`); a terminal without MAC gets field 64 = `FF×8` |
//! | `garbled` | the correct length prefix, then every payload byte `^ 0x5A` (the MTI no longer decodes) |
//! | `truncated` | the prefix of the whole reply, the first half of the payload, then the connection is closed |
//! | `wrong_length` | the prefix announces one byte less than follows (the last byte starts a bogus next frame) |
//! | `no_tpdu_swap` | a correct reply with the request's TPDU as it came (CUP); no effect without a header |

use std::fmt;

use protocol::fixture::yaml::{self, YamlError};
use protocol::iso8583::dialect::Charset;
use protocol::iso8583::{Dialect, Message, MessageRef, Mti};
use protocol::time::Instant;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::host::ConnId;
use crate::log::render_message;

/// Names a directive installed with [`crate::Host::script`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DirectiveId(pub u64);

impl fmt::Display for DirectiveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "directive#{}", self.0)
    }
}

/// How often a directive applies.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Times {
    #[default]
    Once,
    N(u32),
    Always,
}

impl Times {
    fn limit(self) -> Option<u32> {
        match self {
            Times::Once => Some(1),
            Times::N(n) => Some(n),
            Times::Always => None,
        }
    }
}

/// Who decides field 39.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Respond {
    /// The host's rules (validation, ledger).
    #[default]
    Rules,
    /// 39 = 00, whatever the rules say.
    Approve,
    /// 39 = this code; the request is recorded as declined.
    Decline(String),
}

/// A delivery fault: what goes wrong with the reply. The exact bytes are in the module docs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    NoReply,
    Close,
    ReplyTwice,
    WrongStan,
    WrongMti,
    WrongMac,
    Garbled,
    Truncated,
    WrongLength,
    NoTpduSwap,
}

impl Fault {
    pub const ALL: [Fault; 10] = [
        Fault::NoReply,
        Fault::Close,
        Fault::ReplyTwice,
        Fault::WrongStan,
        Fault::WrongMti,
        Fault::WrongMac,
        Fault::Garbled,
        Fault::Truncated,
        Fault::WrongLength,
        Fault::NoTpduSwap,
    ];
    /// The script-file name (`no_reply`, …), as the harness's `fault:` key uses it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::NoReply => "no_reply",
            Fault::Close => "close",
            Fault::ReplyTwice => "reply_twice",
            Fault::WrongStan => "wrong_stan",
            Fault::WrongMti => "wrong_mti",
            Fault::WrongMac => "wrong_mac",
            Fault::Garbled => "garbled",
            Fault::Truncated => "truncated",
            Fault::WrongLength => "wrong_length",
            Fault::NoTpduSwap => "no_tpdu_swap",
        }
    }
    pub fn parse(s: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == s)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A caller's own matcher, run after the field comparisons.
pub type Predicate = Box<dyn Fn(&RequestView<'_>) -> bool + Send>;

/// How the next matching request(s) are answered.
///
/// ```
/// use acquirer::script::{Directive, Fault, Times};
/// // Decline the next refund advice of 33.33 with 05, two seconds late.
/// let d = Directive::new()
///     .mti("0220")
///     .field("4", "000000003333")
///     .reply("39", "05")
///     .delay_ms(2000);
/// // Swallow every reversal (the host still records it).
/// let lost = Directive::new().mti("0400").fault(Fault::NoReply).times(Times::Always);
/// # let _ = (d, lost);
/// ```
#[derive(Default)]
pub struct Directive {
    /// Shown in the log.
    pub label: Option<String>,
    /// `("mti", "0220")`, `("4", "000000003333")`, `("60.1", "25")`: all must be equal. Field 2
    /// may be given in full or masked (`622202******7894`).
    pub fields: Vec<(String, String)>,
    pub predicate: Option<Predicate>,
    pub times: Times,
    pub respond: Respond,
    /// Reply fields to set, after the host built its reply: `("38", "ABC123")`, a subfield
    /// `("60.3", "001")`, binary fields in hex. Setting 64/128 replaces the MAC as given.
    pub set: Vec<(String, String)>,
    /// Reply fields to drop (64: send unsigned).
    pub remove: Vec<u8>,
    pub delay_ms: u64,
    pub fault: Option<Fault>,
}

impl fmt::Debug for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Directive")
            .field("label", &self.label)
            .field("fields", &self.fields)
            .field("predicate", &self.predicate.as_ref().map(|_| "<fn>"))
            .field("times", &self.times)
            .field("respond", &self.respond)
            .field("set", &self.set)
            .field("remove", &self.remove)
            .field("delay_ms", &self.delay_ms)
            .field("fault", &self.fault)
            .finish()
    }
}

impl Directive {
    /// Matches any request, once, and changes nothing.
    pub fn new() -> Directive {
        Directive::default()
    }
    pub fn label(mut self, l: impl Into<String>) -> Directive {
        self.label = Some(l.into());
        self
    }
    pub fn mti(self, mti: &str) -> Directive {
        self.field("mti", mti)
    }
    /// Adds an equality condition (`"4"`, `"60.1"`, `"mti"`).
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Directive {
        self.fields.push((key.into(), value.into()));
        self
    }
    pub fn when(mut self, p: impl Fn(&RequestView<'_>) -> bool + Send + 'static) -> Directive {
        self.predicate = Some(Box::new(p));
        self
    }
    pub fn times(mut self, t: Times) -> Directive {
        self.times = t;
        self
    }
    pub fn approve(mut self) -> Directive {
        self.respond = Respond::Approve;
        self
    }
    pub fn decline(mut self, code: impl Into<String>) -> Directive {
        self.respond = Respond::Decline(code.into());
        self
    }
    /// A scenario's `reply:` entry: `39` approves (`00`) or declines (anything else) through
    /// the ledger; any other key sets that reply field.
    pub fn reply(self, key: &str, value: impl Into<String>) -> Directive {
        let v = value.into();
        if key == "39" {
            if v == "00" {
                self.approve()
            } else {
                self.decline(v)
            }
        } else {
            self.set(key, v)
        }
    }
    /// Sets a reply field as given, without any ledger meaning (even for 39).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Directive {
        self.set.push((key.into(), value.into()));
        self
    }
    pub fn remove(mut self, field: u8) -> Directive {
        self.remove.push(field);
        self
    }
    pub fn delay_ms(mut self, ms: u64) -> Directive {
        self.delay_ms = ms;
        self
    }
    pub fn fault(mut self, f: Fault) -> Directive {
        self.fault = Some(f);
        self
    }

    /// Does this directive select `req`?
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.fields.iter().all(|(k, want)| match req.value(k) {
            Some(got) => {
                got == *want
                    || (k == "2"
                        && want.contains('*')
                        && protocol::card::pan::mask_digits(&got) == *want)
            }
            None => false,
        }) && self.predicate.as_ref().is_none_or(|p| p(req))
    }
}

/// What happened to a directive so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectiveState {
    pub id: DirectiveId,
    pub label: Option<String>,
    pub times: Times,
    /// Requests it applied to.
    pub used: u32,
    pub applications: Vec<Application>,
    /// Removed with [`crate::Host::cancel`].
    pub cancelled: bool,
}

impl DirectiveState {
    pub(crate) fn new(id: DirectiveId, d: &Directive) -> DirectiveState {
        DirectiveState {
            id,
            label: d.label.clone(),
            times: d.times,
            used: 0,
            applications: Vec::new(),
            cancelled: false,
        }
    }
    /// Applied at least once.
    pub fn consumed(&self) -> bool {
        self.used > 0
    }
    /// Will not apply again.
    pub fn is_exhausted(&self) -> bool {
        self.cancelled || self.times.limit().is_some_and(|n| self.used >= n)
    }
}

/// One request a directive applied to, by [`crate::Exchange::seq`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    /// The request's log entry.
    pub request: u64,
    /// Log entries of what was sent for it (none yet while delayed; two for `reply_twice`).
    pub replies: Vec<u64>,
    /// The connection was closed for it (`close`, `truncated`).
    pub closed: bool,
}

/// A received request, as matchers see it.
pub struct RequestView<'a> {
    pub conn: ConnId,
    pub at: Instant,
    pub(crate) msg: &'a MessageRef<'a>,
    pub(crate) dialect: &'a Dialect,
}

impl fmt::Debug for RequestView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RequestView({} {} on {})",
            self.msg.mti, self.at, self.conn
        )
    }
}

impl<'a> RequestView<'a> {
    pub fn mti(&self) -> Mti {
        self.msg.mti
    }
    /// The canonical text of `"mti"`, a field (`"4"`) or a declared subfield (`"60.1"`).
    /// Field 2 comes in full (compare it, never log it); fields the dialect marks as track or
    /// secret (35, 36, 52, 55, 62) are `None`.
    pub fn value(&self, key: &str) -> Option<String> {
        if key == "mti" {
            return Some(self.msg.mti.to_string());
        }
        let (n, sub) = parse_key(key)?;
        let spec = self.dialect.field(n)?;
        if !matches!(spec.mask, protocol::iso8583::dialect::Mask::None)
            && spec.mask != protocol::iso8583::dialect::Mask::Pan
        {
            return None;
        }
        let v = self.msg.field_str(n)?.into_owned();
        match sub {
            None => Some(v),
            Some(id) => subfield_range(self.dialect, n, id)
                .and_then(|(a, b)| v.get(a..b))
                .map(str::to_string),
        }
    }
    /// Every field rendered as the log shows it (PAN masked).
    pub fn rendered(&self) -> Vec<(String, String)> {
        render_message(self.dialect, self.msg)
    }
    /// Field 41.
    pub fn terminal_id(&self) -> Option<String> {
        self.msg.field_str(41).map(|s| s.into_owned())
    }
}

/// `"60"` → (60, None); `"60.1"` → (60, Some(1)).
pub fn parse_key(key: &str) -> Option<(u8, Option<u8>)> {
    let (f, s) = match key.split_once('.') {
        Some((f, s)) => (f, Some(s)),
        None => (key, None),
    };
    let n: u8 = f.parse().ok().filter(|n| (2..=128).contains(n))?;
    let sub = match s {
        Some(s) => Some(s.parse::<u8>().ok()?),
        None => None,
    };
    Some((n, sub))
}

/// Character range of subfield `id` of field `n`.
pub(crate) fn subfield_range(d: &Dialect, n: u8, id: u8) -> Option<(usize, usize)> {
    let spec = d.field(n)?;
    let mut at = 0usize;
    for s in &spec.subfields {
        let end = at + s.len as usize;
        if s.id == id {
            return Some((at, end));
        }
        at = end;
    }
    None
}

/// Sets `key` (`"38"`, `"60.3"`) of `m` to `value` (hex for binary fields). A subfield is
/// written into the field's current value, zero-filled up to it.
pub(crate) fn set_reply_field(
    d: &Dialect,
    m: &mut Message,
    key: &str,
    value: &str,
) -> Result<(), String> {
    let (n, sub) = parse_key(key).ok_or_else(|| format!("{key:?} is not a field number"))?;
    let spec = d
        .field(n)
        .ok_or_else(|| format!("field {n} is not in dialect {}", d.name))?;
    match sub {
        None if spec.charset == Charset::B => {
            let bytes = protocol::fixture::keys::decode_hex(value)
                .ok_or_else(|| format!("field {n} is binary: give hex digits"))?;
            m.set(n, bytes);
        }
        None => {
            m.set(n, value);
        }
        Some(id) => {
            let (a, b) = subfield_range(d, n, id)
                .ok_or_else(|| format!("field {n} has no subfield {id}"))?;
            if value.len() != b - a {
                return Err(format!("{key} takes {} characters, got {value:?}", b - a));
            }
            let mut cur = m.get_str(n).unwrap_or_default().to_string();
            while cur.len() < b {
                cur.push('0');
            }
            if !cur.is_char_boundary(a) || !cur.is_char_boundary(b) {
                return Err(format!("field {n} is not plain text"));
            }
            cur.replace_range(a..b, value);
            m.set(n, cur);
        }
    }
    Ok(())
}

/// Reads a directives script (the format is in the module docs). Field keys are checked
/// against `dialect`; every error names `file:line:column`.
pub fn parse_script(src: &str, file: &str, dialect: &Dialect) -> Result<Vec<Directive>, YamlError> {
    let raw: Vec<Spanned<RawEntry>> = yaml::from_str(src, file)?;
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let at = |loc: &serde_saphyr::Location, msg: String| {
            YamlError::at(file, loc.line(), loc.column(), msg)
        };
        let e = entry.value;
        let mut d = Directive::new();
        d.label = e.name;
        let check_key = |k: &Spanned<String>, what: &str| -> Result<(), YamlError> {
            if what == "match" && k.value == "mti" {
                return Ok(());
            }
            let (n, sub) = parse_key(&k.value).ok_or_else(|| {
                at(
                    &k.referenced,
                    format!(
                        "{what} key {:?}: write a field number (\"4\") or subfield (\"60.1\"){}",
                        k.value,
                        if what == "match" { " or mti" } else { "" }
                    ),
                )
            })?;
            if dialect.field(n).is_none() {
                return Err(at(
                    &k.referenced,
                    format!("field {n} is not in dialect {}", dialect.name),
                ));
            }
            if let Some(id) = sub
                && subfield_range(dialect, n, id).is_none()
            {
                return Err(at(
                    &k.referenced,
                    format!("field {n} of dialect {} has no subfield {id}", dialect.name),
                ));
            }
            Ok(())
        };
        for (k, v) in e.select {
            check_key(&k, "match")?;
            if k.value == "mti" && Mti::parse(&v.value).is_none() {
                return Err(at(
                    &v.referenced,
                    format!("mti {:?} must be 4 digits, quoted", v.value),
                ));
            }
            d.fields.push((k.value, v.value));
        }
        for (k, v) in e.reply {
            check_key(&k, "reply")?;
            if k.value == "39" && v.value.len() != 2 {
                return Err(at(
                    &v.referenced,
                    format!("39 {:?} must be 2 characters", v.value),
                ));
            }
            // Check the value now, not when a request arrives.
            let mut probe = Message::new(Mti::new_clamped(210));
            if k.value != "39" {
                set_reply_field(dialect, &mut probe, &k.value, &v.value)
                    .map_err(|m| at(&v.referenced, m))?;
            }
            d = d.reply(&k.value, v.value);
        }
        for r in e.remove {
            match parse_key(&r.value) {
                Some((n, None)) if dialect.field(n).is_some() => d.remove.push(n),
                _ => {
                    return Err(at(
                        &r.referenced,
                        format!(
                            "remove {:?}: give a field number of dialect {}",
                            r.value, dialect.name
                        ),
                    ));
                }
            }
        }
        if let Some(f) = e.fault {
            d.fault = Some(Fault::parse(&f.value).ok_or_else(|| {
                at(
                    &f.referenced,
                    format!(
                        "unknown fault {:?}; one of {}",
                        f.value,
                        Fault::ALL.map(Fault::name).join(", ")
                    ),
                )
            })?);
        }
        d.delay_ms = e.delay_ms.unwrap_or(0);
        if let Some(t) = e.times {
            d.times = match t.value.as_str() {
                "always" => Times::Always,
                n => match n.parse::<u32>() {
                    Ok(1) => Times::Once,
                    Ok(n) if n > 0 => Times::N(n),
                    _ => {
                        return Err(at(
                            &t.referenced,
                            format!("times {n:?}: a count of at least 1, or \"always\""),
                        ));
                    }
                },
            };
        }
        out.push(d);
    }
    Ok(out)
}

/// Reads a script file.
pub fn load_script(path: &std::path::Path, dialect: &Dialect) -> Result<Vec<Directive>, YamlError> {
    let file = path.display().to_string();
    let src =
        std::fs::read_to_string(path).map_err(|e| YamlError::at(&file, 0, 0, e.to_string()))?;
    parse_script(&src, &file, dialect)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "match")]
    select: Pairs,
    #[serde(default)]
    reply: Pairs,
    #[serde(default)]
    remove: Vec<Spanned<String>>,
    #[serde(default)]
    fault: Option<Spanned<String>>,
    #[serde(default)]
    delay_ms: Option<u64>,
    #[serde(default)]
    times: Option<Spanned<String>>,
}

/// A mapping kept in order with the place of every key and value.
#[derive(Default)]
struct Pairs(Vec<(Spanned<String>, Spanned<String>)>);

impl IntoIterator for Pairs {
    type Item = (Spanned<String>, Spanned<String>);
    type IntoIter = std::vec::IntoIter<Self::Item>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of field to value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut out: Vec<(Spanned<String>, Spanned<String>)> = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    if out.iter().any(|(x, _)| x.value == k.value) {
                        return Err(serde::de::Error::custom(format!(
                            "key {:?} appears twice",
                            k.value
                        )));
                    }
                    let v = map.next_value::<Spanned<String>>()?;
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cup() -> Dialect {
        Dialect::builtin("cup").unwrap()
    }

    #[test]
    fn script_file_reads_every_key() {
        let src = "- name: decline the refund\n  match: {mti: \"0220\", 4: \"000000003333\", \"60.1\": \"25\"}\n  reply: {39: \"05\", 38: \"ABC123\", \"60.3\": \"001\"}\n  remove: [44]\n  fault: close\n  delay_ms: 2000\n  times: 2\n- match: {mti: \"0400\"}\n  fault: no_reply\n  times: always\n";
        let v = parse_script(src, "s.yaml", &cup()).unwrap();
        assert_eq!(v.len(), 2);
        let d = &v[0];
        assert_eq!(d.label.as_deref(), Some("decline the refund"));
        assert_eq!(
            d.fields,
            [
                ("mti".to_string(), "0220".to_string()),
                ("4".into(), "000000003333".into()),
                ("60.1".into(), "25".into())
            ]
        );
        assert_eq!(d.respond, Respond::Decline("05".into()));
        assert_eq!(
            d.set,
            [
                ("38".to_string(), "ABC123".to_string()),
                ("60.3".into(), "001".into())
            ]
        );
        assert_eq!(d.remove, [44]);
        assert_eq!(d.fault, Some(Fault::Close));
        assert_eq!((d.delay_ms, d.times), (2000, Times::N(2)));
        assert_eq!(
            (v[1].fault, v[1].times),
            (Some(Fault::NoReply), Times::Always)
        );
    }

    #[test]
    fn script_errors_are_located() {
        let e = parse_script(
            "- match: {mti: \"0220\"}\n  fault: explode\n",
            "s.yaml",
            &cup(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (2, 10), "{e}");
        assert!(e.message.contains("no_reply"), "{e}");
        let e = parse_script("- match: {99: \"1\"}\n", "s.yaml", &cup()).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.message.contains("field 99"), "{e}");
        let e = parse_script("- reply: {\"60.9\": \"1\"}\n", "s.yaml", &cup()).unwrap_err();
        assert!(e.message.contains("no subfield 9"), "{e}");
        let e = parse_script("- reply: {64: \"xyz\"}\n", "s.yaml", &cup()).unwrap_err();
        assert!(e.message.contains("hex"), "{e}");
        let e = parse_script("- times: 0\n", "s.yaml", &cup()).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        let e = parse_script("- bogus: 1\n", "s.yaml", &cup()).unwrap_err();
        assert!(e.line >= 1, "{e}");
    }

    #[test]
    fn unquoted_values_keep_their_digits() {
        // A YAML scalar read as a string keeps its text: 05 stays "05".
        let v = parse_script(
            "- match: {mti: 0220}\n  reply: {39: 05}\n",
            "s.yaml",
            &cup(),
        )
        .unwrap();
        assert_eq!(v[0].fields[0].1, "0220");
        assert_eq!(v[0].respond, Respond::Decline("05".into()));
    }

    #[test]
    fn reply_subfield_is_written_in_place() {
        let d = cup();
        let mut m = Message::new(Mti::new_clamped(510));
        m.set(60, "00000001201");
        set_reply_field(&d, &mut m, "60.3", "202").unwrap();
        assert_eq!(m.get_str(60), Some("00000001202"));
        let mut m = Message::new(Mti::new_clamped(510));
        set_reply_field(&d, &mut m, "60.2", "000007").unwrap();
        assert_eq!(m.get_str(60), Some("00000007"));
        assert!(set_reply_field(&d, &mut m, "60.2", "7").is_err());
    }
}
