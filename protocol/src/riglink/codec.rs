//! Line codec of the rig link: [`encode_line`], [`decode_line`] and the sans-IO
//! [`LineDecoder`] that turns arbitrary byte chunks into lines.

use std::collections::VecDeque;
use std::fmt::Write as _;

use super::model::*;

/// Protocol version spoken here.
pub const VERSION: u16 = 1;
/// Longest line in bytes, not counting the `\r\n` / `\n` terminator.
pub const MAX_LINE: usize = 2048;
/// Most display lines in one DISPLAY report.
pub const MAX_DISPLAY_LINES: usize = 16;
/// Most keys in one KEYS request.
pub const MAX_KEYS: usize = 32;
/// Most printer bytes in one PRINTER report (512 hex digits).
pub const MAX_PRINTER_CHUNK: usize = 256;
/// Longest pause KEYS accepts between keys.
pub const MAX_GAP_MS: u16 = 10_000;
/// Longest HELLO/BOOT name.
pub const MAX_NAME: usize = 64;

/// CRC-8/SMBUS: polynomial 0x07, initial value 0, no reflection, no final XOR
/// (`crc8(b"123456789") == 0xF4`, the catalogue check value). Eight shifts per byte, no table:
/// small enough for any microcontroller.
///
/// ```
/// use protocol::riglink::crc8;
/// assert_eq!(crc8(b"123456789"), 0xF4);
/// assert_eq!(crc8(b"@2 KEY 5"), 0xB5); // the line is "@2 KEY 5 *B5"
/// ```
pub fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Quotes a text field: printable ASCII except `"` and `%` stays as it is, every other byte of
/// the UTF-8 encoding becomes `%XX` (uppercase hex).
///
/// ```
/// use protocol::riglink::escape_text;
/// assert_eq!(escape_text("退货 OK"), "\"%E9%80%80%E8%B4%A7 OK\"");
/// assert_eq!(escape_text("100% \"x\""), "\"100%25 %22x%22\"");
/// ```
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s.as_bytes() {
        if (0x20..=0x7E).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out.push('"');
    out
}

/// Undoes [`escape_text`] on the bytes between the quotes. Err: index of the bad `%` (or 0
/// when the result is not UTF-8).
pub fn unescape_text(inner: &[u8]) -> Result<String, usize> {
    let mut bytes = Vec::with_capacity(inner.len());
    let mut i = 0;
    while let Some(&b) = inner.get(i) {
        if b == b'%' {
            let h = inner
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(i)?;
            bytes.push(h);
            i += 3;
        } else {
            bytes.push(b);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| 0)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("line would be {0} bytes, at most {MAX_LINE} allowed")]
    TooLong(usize),
    #[error("{what}: {n} items, at most {max}")]
    TooMany {
        what: &'static str,
        n: usize,
        max: usize,
    },
    #[error("{what} `{value}` cannot travel as a word (A-Z a-z 0-9 and _ - . / + : only)")]
    BadWord { what: &'static str, value: String },
    #[error("KEYS gap {0} ms exceeds {MAX_GAP_MS}")]
    Gap(u16),
    #[error("KEYS needs at least one key")]
    NoKeys,
}

fn word_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'+' | b':')
        })
}

fn seq_str(seq: Option<u16>) -> String {
    seq.map_or_else(|| "-".to_string(), |s| s.to_string())
}

fn on_off(b: bool) -> &'static str {
    if b { "ON" } else { "OFF" }
}

fn encode_request(r: &Request, out: &mut String) -> Result<(), EncodeError> {
    match r {
        Request::Hello { version, client } => {
            if !word_ok(client) {
                return Err(EncodeError::BadWord {
                    what: "client name",
                    value: client.clone(),
                });
            }
            let _ = write!(out, "HELLO {version} {client}");
        }
        Request::Ping => out.push_str("PING"),
        Request::Mode(m) => out.push_str(match m {
            Mode::Human => "MODE HUMAN",
            Mode::Machine => "MODE MACHINE",
        }),
        Request::Key(k) => {
            let _ = write!(out, "KEY {k}");
        }
        Request::Keys { gap_ms, keys } => {
            if keys.is_empty() {
                return Err(EncodeError::NoKeys);
            }
            if keys.len() > MAX_KEYS {
                return Err(EncodeError::TooMany {
                    what: "KEYS",
                    n: keys.len(),
                    max: MAX_KEYS,
                });
            }
            if *gap_ms > MAX_GAP_MS {
                return Err(EncodeError::Gap(*gap_ms));
            }
            let _ = write!(out, "KEYS {gap_ms}");
            for k in keys {
                let _ = write!(out, " {k}");
            }
        }
        Request::Card(a) => {
            let _ = match a {
                CardAction::Swipe(n) => write!(out, "CARD SWIPE {n}"),
                CardAction::Insert(n) => write!(out, "CARD INSERT {n}"),
                CardAction::Tap(n) => write!(out, "CARD TAP {n}"),
                CardAction::Remove => write!(out, "CARD REMOVE"),
            };
        }
        Request::Fault { kind, on } => {
            let _ = write!(out, "FAULT {} {}", kind.as_str(), on_off(*on));
        }
        Request::Power(on) => {
            let _ = write!(out, "POWER {}", on_off(*on));
        }
        Request::Get(w) => {
            let _ = match w {
                GetWhat::Display => write!(out, "GET DISPLAY"),
                GetWhat::Printer { from } => write!(out, "GET PRINTER {from}"),
                GetWhat::Leds => write!(out, "GET LEDS"),
                GetWhat::Beeper => write!(out, "GET BEEPER"),
                GetWhat::Power => write!(out, "GET POWER"),
                GetWhat::State => write!(out, "GET STATE"),
            };
        }
    }
    Ok(())
}

fn encode_report(r: &Report, out: &mut String) -> Result<(), EncodeError> {
    match r {
        Report::Hello {
            version,
            name,
            caps,
        } => {
            if !word_ok(name) {
                return Err(EncodeError::BadWord {
                    what: "rig name",
                    value: name.clone(),
                });
            }
            let caps = if caps.is_empty() {
                "-".to_string()
            } else {
                caps.iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let _ = write!(out, "HELLO {version} {name} {caps}");
        }
        Report::Boot { version, name } => {
            if !word_ok(name) {
                return Err(EncodeError::BadWord {
                    what: "rig name",
                    value: name.clone(),
                });
            }
            let _ = write!(out, "BOOT {version} {name}");
        }
        Report::Display { lines } => {
            if lines.len() > MAX_DISPLAY_LINES {
                return Err(EncodeError::TooMany {
                    what: "DISPLAY lines",
                    n: lines.len(),
                    max: MAX_DISPLAY_LINES,
                });
            }
            let _ = write!(out, "DISPLAY {}", lines.len());
            for l in lines {
                out.push(' ');
                out.push_str(&escape_text(l));
            }
        }
        Report::Printer { offset, bytes } => {
            if bytes.len() > MAX_PRINTER_CHUNK {
                return Err(EncodeError::TooMany {
                    what: "PRINTER bytes",
                    n: bytes.len(),
                    max: MAX_PRINTER_CHUNK,
                });
            }
            let _ = write!(out, "PRINTER {offset} ");
            if bytes.is_empty() {
                out.push('-');
            }
            for b in bytes {
                let _ = write!(out, "{b:02X}");
            }
        }
        Report::Leds(l) => {
            let _ = write!(
                out,
                "LEDS {} {} {} {}",
                l[0].as_str(),
                l[1].as_str(),
                l[2].as_str(),
                l[3].as_str()
            );
        }
        Report::Beep { tone, count } => {
            let _ = write!(out, "BEEP {} {count}", tone.as_str());
        }
        Report::Beeper { last, count } => {
            let _ = write!(
                out,
                "BEEPER {} {count}",
                last.map_or("NONE", |t| t.as_str())
            );
        }
        Report::Power(on) => {
            let _ = write!(out, "POWER {}", on_off(*on));
        }
        Report::State(s) => {
            let mut faults = s.faults.clone();
            faults.sort();
            faults.dedup();
            let faults = if faults.is_empty() {
                "-".to_string()
            } else {
                faults
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let _ = write!(
                out,
                "STATE EVENT={} POWER={} CARD={} FAULTS={faults} PRINTED={} BEEPS={}",
                s.event_seq,
                on_off(s.power),
                s.card.as_ref().map_or("-", |c| c.as_str()),
                s.printed,
                s.beeps
            );
        }
    }
    Ok(())
}

/// Writes one line with its terminator. Framed lines end in ` *CC`; an unframed request
/// (`seq: None`) is written the way a person would type it, without checksum.
///
/// ```
/// use protocol::riglink::{encode_line, KeyName, Line, Request};
/// let l = Line::Request { seq: Some(2), request: Request::Key(KeyName::Digit(5)) };
/// assert_eq!(encode_line(&l).unwrap(), "@2 KEY 5 *B5\n");
/// ```
pub fn encode_line(line: &Line) -> Result<String, EncodeError> {
    let mut out = String::new();
    let framed = match line {
        Line::Request { seq: None, request } => {
            encode_request(request, &mut out)?;
            false
        }
        Line::Request {
            seq: Some(s),
            request,
        } => {
            let _ = write!(out, "@{s} ");
            encode_request(request, &mut out)?;
            true
        }
        Line::Ack { seq, report } => {
            let _ = write!(out, "ACK {}", seq_str(*seq));
            if let Some(r) = report {
                out.push(' ');
                encode_report(r, &mut out)?;
            }
            true
        }
        Line::Err { seq, code, text } => {
            if !word_ok(code.as_str()) {
                return Err(EncodeError::BadWord {
                    what: "error code",
                    value: code.to_string(),
                });
            }
            let _ = write!(out, "ERR {} {} {}", seq_str(*seq), code, escape_text(text));
            true
        }
        Line::Event { seq, report } => {
            let _ = write!(out, "!{seq} ");
            encode_report(report, &mut out)?;
            true
        }
    };
    if framed {
        let c = crc8(out.as_bytes());
        let _ = write!(out, " *{c:02X}");
    }
    if out.len() > MAX_LINE {
        return Err(EncodeError::TooLong(out.len()));
    }
    out.push('\n');
    Ok(out)
}

/// A line that failed to decode: where (byte offset of the line's start in the stream,
/// 1-based column within the line), the sequence number if it could be trusted (so the rig can
/// answer `ERR <seq> …` rather than `ERR - …`), and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line at byte {offset}, column {column}: {kind}")]
pub struct DecodeError {
    pub offset: u64,
    pub column: usize,
    pub seq: Option<u16>,
    pub kind: DecodeErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("byte {0:#04x} is not printable ASCII")]
    NotAscii(u8),
    #[error("framed line does not end in ` *CC`")]
    MissingChecksum,
    #[error("checksum is {found:02X}, expected {expected:02X}")]
    BadChecksum { expected: u8, found: u8 },
    #[error("sequence number is not 0-65535")]
    BadSeq,
    #[error("{0}")]
    Syntax(&'static str),
    #[error("unknown verb `{0}`")]
    UnknownVerb(String),
    #[error("{0}")]
    BadArg(String),
}

impl DecodeErrorKind {
    /// The `ERR` code a rig answers with.
    pub fn code(&self) -> ErrCode {
        match self {
            DecodeErrorKind::TooLong => ErrCode::TooLong,
            DecodeErrorKind::NotAscii(_)
            | DecodeErrorKind::MissingChecksum
            | DecodeErrorKind::BadSeq
            | DecodeErrorKind::Syntax(_) => ErrCode::BadLine,
            DecodeErrorKind::BadChecksum { .. } => ErrCode::Checksum,
            DecodeErrorKind::UnknownVerb(_) => ErrCode::Unknown,
            DecodeErrorKind::BadArg(_) => ErrCode::BadArg,
        }
    }
}

#[derive(Debug)]
enum TokKind {
    Word(String),
    Text(String),
}

#[derive(Debug)]
struct Tok {
    /// 1-based column.
    col: usize,
    kind: TokKind,
}

struct Ctx {
    seq: Option<u16>,
}

impl Ctx {
    fn err(&self, col: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            offset: 0,
            column: col,
            seq: self.seq,
            kind,
        }
    }
}

fn tokenize(b: &[u8], col0: usize, ctx: &Ctx) -> Result<Vec<Tok>, DecodeError> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(b' ');
        if c == b' ' {
            i += 1;
            continue;
        }
        let col = col0 + i;
        if c == b'"' {
            let close = b
                .get(i + 1..)
                .and_then(|r| r.iter().position(|&x| x == b'"'))
                .map(|p| i + 1 + p)
                .ok_or_else(|| ctx.err(col, DecodeErrorKind::Syntax("unterminated quote")))?;
            let inner = b.get(i + 1..close).unwrap_or(&[]);
            let text = unescape_text(inner).map_err(|p| {
                ctx.err(
                    col + 1 + p,
                    DecodeErrorKind::Syntax("bad %XX escape or not UTF-8"),
                )
            })?;
            if let Some(&n) = b.get(close + 1)
                && n != b' '
            {
                return Err(ctx.err(
                    col0 + close + 1,
                    DecodeErrorKind::Syntax("space expected after closing quote"),
                ));
            }
            toks.push(Tok {
                col,
                kind: TokKind::Text(text),
            });
            i = close + 1;
        } else {
            let end = b
                .get(i..)
                .and_then(|r| r.iter().position(|&x| x == b' '))
                .map_or(b.len(), |p| i + p);
            let w = b.get(i..end).unwrap_or(&[]);
            if let Some(q) = w.iter().position(|&x| x == b'"') {
                return Err(ctx.err(col + q, DecodeErrorKind::Syntax("quote inside a word")));
            }
            toks.push(Tok {
                col,
                kind: TokKind::Word(String::from_utf8_lossy(w).into_owned()),
            });
            i = end;
        }
    }
    Ok(toks)
}

struct Args<'a> {
    toks: &'a [Tok],
    i: usize,
    end_col: usize,
    ctx: &'a Ctx,
}

impl<'a> Args<'a> {
    fn col(&self) -> usize {
        self.toks.get(self.i).map_or(self.end_col, |t| t.col)
    }
    fn bad(&self, col: usize, msg: String) -> DecodeError {
        self.ctx.err(col, DecodeErrorKind::BadArg(msg))
    }
    fn word(&mut self, what: &str) -> Result<(&'a str, usize), DecodeError> {
        match self.toks.get(self.i) {
            Some(Tok {
                col,
                kind: TokKind::Word(w),
            }) => {
                self.i += 1;
                Ok((w.as_str(), *col))
            }
            Some(t) => Err(self.bad(t.col, format!("{what} expected, found a quoted text"))),
            None => Err(self.bad(self.end_col, format!("{what} missing"))),
        }
    }
    fn opt_word(&mut self) -> Option<(&'a str, usize)> {
        match self.toks.get(self.i) {
            Some(Tok {
                col,
                kind: TokKind::Word(w),
            }) => {
                self.i += 1;
                Some((w.as_str(), *col))
            }
            _ => None,
        }
    }
    fn text(&mut self, what: &str) -> Result<String, DecodeError> {
        match self.toks.get(self.i) {
            Some(Tok {
                kind: TokKind::Text(t),
                ..
            }) => {
                self.i += 1;
                Ok(t.clone())
            }
            Some(t) => Err(self.bad(t.col, format!("{what} must be a quoted text"))),
            None => Err(self.bad(self.end_col, format!("{what} missing"))),
        }
    }
    fn num<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, DecodeError> {
        let (w, col) = self.word(what)?;
        if !w.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.bad(col, format!("{what} must be a decimal number")));
        }
        w.parse()
            .map_err(|_| self.bad(col, format!("{what} is out of range")))
    }
    fn on_off(&mut self) -> Result<bool, DecodeError> {
        let (w, col) = self.word("ON or OFF")?;
        match w.to_ascii_uppercase().as_str() {
            "ON" => Ok(true),
            "OFF" => Ok(false),
            _ => Err(self.bad(col, format!("`{w}`: ON or OFF expected"))),
        }
    }
    fn name(&mut self, what: &str) -> Result<String, DecodeError> {
        let (w, col) = self.word(what)?;
        if !word_ok(w) {
            return Err(self.bad(col, format!("{what} `{w}` is not a valid name")));
        }
        Ok(w.to_string())
    }
    fn card(&mut self) -> Result<CardName, DecodeError> {
        let (w, col) = self.word("card name")?;
        CardName::new(w).ok_or_else(|| self.bad(col, format!("`{w}` is not a card name")))
    }
    fn finish(&self) -> Result<(), DecodeError> {
        match self.toks.get(self.i) {
            None => Ok(()),
            Some(t) => Err(self.bad(t.col, "unexpected extra argument".into())),
        }
    }
}

fn parse_request(a: &mut Args<'_>) -> Result<Request, DecodeError> {
    let (verb, vcol) = a.word("verb")?;
    let r = match verb.to_ascii_uppercase().as_str() {
        "HELLO" => Request::Hello {
            version: a.num("version")?,
            client: a.name("client name")?,
        },
        "PING" => Request::Ping,
        "MODE" => {
            let (w, col) = a.word("HUMAN or MACHINE")?;
            match w.to_ascii_uppercase().as_str() {
                "HUMAN" => Request::Mode(Mode::Human),
                "MACHINE" => Request::Mode(Mode::Machine),
                _ => return Err(a.bad(col, format!("`{w}`: HUMAN or MACHINE expected"))),
            }
        }
        "KEY" => {
            let (w, col) = a.word("key")?;
            Request::Key(
                w.parse()
                    .map_err(|_| a.bad(col, format!("unknown key `{w}`")))?,
            )
        }
        "KEYS" => {
            let gcol = a.col();
            let gap_ms: u16 = a.num("gap in ms")?;
            if gap_ms > MAX_GAP_MS {
                return Err(a.bad(gcol, format!("gap {gap_ms} ms exceeds {MAX_GAP_MS}")));
            }
            let mut keys = Vec::new();
            while let Some((w, col)) = a.opt_word() {
                if keys.len() == MAX_KEYS {
                    return Err(a.bad(col, format!("more than {MAX_KEYS} keys")));
                }
                keys.push(
                    w.parse()
                        .map_err(|_| a.bad(col, format!("unknown key `{w}`")))?,
                );
            }
            if keys.is_empty() {
                return Err(a.bad(a.col(), "KEYS needs at least one key".into()));
            }
            Request::Keys { gap_ms, keys }
        }
        "CARD" => {
            let (w, col) = a.word("SWIPE, INSERT, TAP or REMOVE")?;
            Request::Card(match w.to_ascii_uppercase().as_str() {
                "SWIPE" => CardAction::Swipe(a.card()?),
                "INSERT" => CardAction::Insert(a.card()?),
                "TAP" => CardAction::Tap(a.card()?),
                "REMOVE" => CardAction::Remove,
                _ => {
                    return Err(a.bad(col, format!("`{w}`: SWIPE, INSERT, TAP or REMOVE expected")));
                }
            })
        }
        "FAULT" => {
            let (w, col) = a.word("fault")?;
            let kind = FaultKind::parse(w).ok_or_else(|| {
                a.bad(
                    col,
                    format!("unknown fault `{w}` (PAPER_OUT, COVER_OPEN, CHIP_MUTE, BAD_SWIPE)"),
                )
            })?;
            Request::Fault {
                kind,
                on: a.on_off()?,
            }
        }
        "POWER" => Request::Power(a.on_off()?),
        "GET" => {
            let (w, col) = a.word("what to get")?;
            Request::Get(match w.to_ascii_uppercase().as_str() {
                "DISPLAY" => GetWhat::Display,
                "PRINTER" => GetWhat::Printer {
                    from: if a.toks.get(a.i).is_some() {
                        a.num("printer offset")?
                    } else {
                        0
                    },
                },
                "LEDS" => GetWhat::Leds,
                "BEEPER" => GetWhat::Beeper,
                "POWER" => GetWhat::Power,
                "STATE" => GetWhat::State,
                _ => {
                    return Err(a.bad(
                        col,
                        format!("cannot GET `{w}` (DISPLAY, PRINTER, LEDS, BEEPER, POWER, STATE)"),
                    ));
                }
            })
        }
        _ => {
            return Err(a
                .ctx
                .err(vcol, DecodeErrorKind::UnknownVerb(verb.to_string())));
        }
    };
    a.finish()?;
    Ok(r)
}

fn parse_hex_bytes(s: &str) -> Option<Vec<u8>> {
    if s == "-" {
        return Some(Vec::new());
    }
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

fn parse_report(a: &mut Args<'_>) -> Result<Report, DecodeError> {
    let (verb, vcol) = a.word("report")?;
    let r = match verb.to_ascii_uppercase().as_str() {
        "HELLO" => {
            let version = a.num("version")?;
            let name = a.name("rig name")?;
            let (w, col) = a.word("capabilities")?;
            let caps = if w == "-" {
                Vec::new()
            } else {
                w.split(',')
                    .map(|c| {
                        Capability::parse(c)
                            .ok_or_else(|| a.bad(col, format!("unknown capability `{c}`")))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            Report::Hello {
                version,
                name,
                caps,
            }
        }
        "BOOT" => Report::Boot {
            version: a.num("version")?,
            name: a.name("rig name")?,
        },
        "DISPLAY" => {
            let ncol = a.col();
            let n: usize = a.num("line count")?;
            if n > MAX_DISPLAY_LINES {
                return Err(a.bad(ncol, format!("{n} lines, at most {MAX_DISPLAY_LINES}")));
            }
            let mut lines = Vec::with_capacity(n);
            for _ in 0..n {
                lines.push(a.text("display line")?);
            }
            Report::Display { lines }
        }
        "PRINTER" => {
            let offset = a.num("printer offset")?;
            let (w, col) = a.word("hex bytes")?;
            let bytes = parse_hex_bytes(w)
                .ok_or_else(|| a.bad(col, "printer data must be hex byte pairs or -".into()))?;
            if bytes.len() > MAX_PRINTER_CHUNK {
                return Err(a.bad(
                    col,
                    format!("{} bytes, at most {MAX_PRINTER_CHUNK}", bytes.len()),
                ));
            }
            Report::Printer { offset, bytes }
        }
        "LEDS" => {
            let mut leds = [LedState::Off; 4];
            for l in leds.iter_mut() {
                let (w, col) = a.word("LED state")?;
                *l = LedState::parse(w)
                    .ok_or_else(|| a.bad(col, format!("`{w}`: OFF, ON or BLINK expected")))?;
            }
            Report::Leds(leds)
        }
        "BEEP" => {
            let (w, col) = a.word("tone")?;
            let tone = Tone::parse(w).ok_or_else(|| a.bad(col, format!("unknown tone `{w}`")))?;
            Report::Beep {
                tone,
                count: a.num("beep count")?,
            }
        }
        "BEEPER" => {
            let (w, col) = a.word("tone")?;
            let last = if w.eq_ignore_ascii_case("NONE") {
                None
            } else {
                Some(Tone::parse(w).ok_or_else(|| a.bad(col, format!("unknown tone `{w}`")))?)
            };
            Report::Beeper {
                last,
                count: a.num("beep count")?,
            }
        }
        "POWER" => Report::Power(a.on_off()?),
        "STATE" => Report::State(parse_state(a)?),
        _ => {
            return Err(a
                .ctx
                .err(vcol, DecodeErrorKind::UnknownVerb(verb.to_string())));
        }
    };
    a.finish()?;
    Ok(r)
}

fn parse_state(a: &mut Args<'_>) -> Result<RigState, DecodeError> {
    let mut s = RigState::default();
    let mut seen = 0u8;
    let start = a.col();
    while let Some((w, col)) = a.opt_word() {
        let Some((k, v)) = w.split_once('=') else {
            return Err(a.bad(col, format!("`{w}`: KEY=VALUE expected")));
        };
        let num = |v: &str| -> Result<u32, DecodeError> {
            v.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| v.parse().ok())
                .flatten()
                .ok_or_else(|| a.bad(col, format!("{k}: `{v}` is not a number")))
        };
        let bit = match k.to_ascii_uppercase().as_str() {
            "EVENT" => {
                s.event_seq = u16::try_from(num(v)?)
                    .map_err(|_| a.bad(col, "EVENT is out of range".into()))?;
                1
            }
            "POWER" => {
                s.power = match v.to_ascii_uppercase().as_str() {
                    "ON" => true,
                    "OFF" => false,
                    _ => return Err(a.bad(col, format!("POWER=`{v}`: ON or OFF expected"))),
                };
                2
            }
            "CARD" => {
                s.card = if v == "-" {
                    None
                } else {
                    Some(
                        CardName::new(v)
                            .ok_or_else(|| a.bad(col, format!("`{v}` is not a card name")))?,
                    )
                };
                4
            }
            "FAULTS" => {
                s.faults = if v == "-" {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|f| {
                            FaultKind::parse(f)
                                .ok_or_else(|| a.bad(col, format!("unknown fault `{f}`")))
                        })
                        .collect::<Result<Vec<_>, _>>()?
                };
                s.faults.sort();
                s.faults.dedup();
                8
            }
            "PRINTED" => {
                s.printed = num(v)?;
                16
            }
            "BEEPS" => {
                s.beeps = num(v)?;
                32
            }
            // Newer rigs may add keys; older clients skip them.
            _ => 0,
        };
        seen |= bit;
    }
    if seen != 63 {
        return Err(a.bad(
            start,
            "STATE needs EVENT, POWER, CARD, FAULTS, PRINTED and BEEPS".into(),
        ));
    }
    Ok(s)
}

/// Decodes one line (terminator already removed; a trailing `\r` is tolerated). `Ok(None)` for
/// a blank line, which the protocol ignores.
pub fn decode_line(line: &[u8]) -> Result<Option<Line>, DecodeError> {
    let mut ctx = Ctx { seq: None };
    if line.len() > MAX_LINE + 1 {
        return Err(ctx.err(MAX_LINE + 1, DecodeErrorKind::TooLong));
    }
    let mut b = line;
    while let Some((&last, rest)) = b.split_last()
        && (last == b'\r' || last == b' ')
    {
        b = rest;
    }
    if b.len() > MAX_LINE {
        return Err(ctx.err(MAX_LINE + 1, DecodeErrorKind::TooLong));
    }
    if let Some(i) = b.iter().position(|&c| !(0x20..=0x7E).contains(&c)) {
        let c = b.get(i).copied().unwrap_or(0);
        return Err(ctx.err(i + 1, DecodeErrorKind::NotAscii(c)));
    }
    if b.iter().all(|&c| c == b' ') {
        return Ok(None);
    }
    let upper3 = |s: &[u8]| s.get(..4).map(|p| p.to_ascii_uppercase());
    let is_reply = matches!(upper3(b).as_deref(), Some(b"ACK ") | Some(b"ERR "))
        || b.eq_ignore_ascii_case(b"ACK")
        || b.eq_ignore_ascii_case(b"ERR");
    let framed = matches!(b.first(), Some(b'@') | Some(b'!')) || is_reply;

    if !framed {
        let toks = tokenize(b, 1, &ctx)?;
        let mut a = Args {
            toks: &toks,
            i: 0,
            end_col: b.len() + 1,
            ctx: &ctx,
        };
        return Ok(Some(Line::Request {
            seq: None,
            request: parse_request(&mut a)?,
        }));
    }

    // ` *CC` at the very end.
    let n = b.len();
    let sum = match b.get(n.saturating_sub(4)..) {
        Some([b' ', b'*', h, l]) if n >= 4 => {
            let hex = [*h, *l];
            std::str::from_utf8(&hex)
                .ok()
                .filter(|s| s.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        }
        _ => None,
    };
    let Some(found) = sum else {
        return Err(ctx.err(n + 1, DecodeErrorKind::MissingChecksum));
    };
    let body = b.get(..n - 4).unwrap_or(&[]);
    let expected = crc8(body);
    if expected != found {
        return Err(ctx.err(n - 1, DecodeErrorKind::BadChecksum { expected, found }));
    }

    let toks = tokenize(body, 1, &ctx)?;
    let end_col = body.len() + 1;
    let first = toks
        .first()
        .ok_or_else(|| ctx.err(1, DecodeErrorKind::Syntax("empty line")))?;
    let TokKind::Word(head) = &first.kind else {
        return Err(ctx.err(1, DecodeErrorKind::Syntax("line starts with a quote")));
    };
    let parse_seq = |s: &str| -> Option<u16> {
        (!s.is_empty() && s.len() <= 5 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };

    if let Some(rest) = head.strip_prefix('@').or_else(|| head.strip_prefix('!')) {
        let seq = parse_seq(rest).ok_or_else(|| ctx.err(2, DecodeErrorKind::BadSeq))?;
        ctx.seq = Some(seq);
        let mut a = Args {
            toks: toks.get(1..).unwrap_or(&[]),
            i: 0,
            end_col,
            ctx: &ctx,
        };
        if head.starts_with('@') {
            let request = parse_request(&mut a)?;
            return Ok(Some(Line::Request {
                seq: Some(seq),
                request,
            }));
        }
        let report = parse_report(&mut a)?;
        return Ok(Some(Line::Event { seq, report }));
    }

    // ACK / ERR
    let is_ack = head.eq_ignore_ascii_case("ACK");
    let seq_tok = toks.get(1).ok_or_else(|| {
        ctx.err(
            end_col,
            DecodeErrorKind::Syntax("sequence number or - missing"),
        )
    })?;
    let seq = match &seq_tok.kind {
        TokKind::Word(w) if w == "-" => None,
        TokKind::Word(w) => {
            Some(parse_seq(w).ok_or_else(|| ctx.err(seq_tok.col, DecodeErrorKind::BadSeq))?)
        }
        TokKind::Text(_) => return Err(ctx.err(seq_tok.col, DecodeErrorKind::BadSeq)),
    };
    ctx.seq = seq;
    let mut a = Args {
        toks: toks.get(2..).unwrap_or(&[]),
        i: 0,
        end_col,
        ctx: &ctx,
    };
    if is_ack {
        let report = if a.toks.is_empty() {
            None
        } else {
            Some(parse_report(&mut a)?)
        };
        Ok(Some(Line::Ack { seq, report }))
    } else {
        let (code, col) = a.word("error code")?;
        if !word_ok(code) {
            return Err(a.bad(col, format!("`{code}` is not an error code")));
        }
        let code = ErrCode::parse(code);
        let text = a.text("error text")?;
        a.finish()?;
        Ok(Some(Line::Err { seq, code, text }))
    }
}

/// Splits a byte stream into lines and decodes them. Sans-IO: feed it whatever the transport
/// delivered ([`LineDecoder::feed`]) and take results out ([`LineDecoder::poll`]).
///
/// A line longer than [`MAX_LINE`] yields one `TooLong` error and is skipped up to the next
/// `\n`; any other bad line yields one error and decoding resumes with the next line. Memory is
/// bounded by `MAX_LINE` plus the decoded results not yet polled.
///
/// ```
/// use protocol::riglink::{LineDecoder, Line, Request, KeyName};
/// let mut d = LineDecoder::new();
/// d.feed(b"\x07\xffnoise\n@2 KEY");
/// d.feed(b" 5 *B5\r\n");
/// assert!(d.poll().unwrap().is_err()); // the noise
/// assert_eq!(
///     d.poll().unwrap().unwrap(),
///     Line::Request { seq: Some(2), request: Request::Key(KeyName::Digit(5)) }
/// );
/// assert!(d.poll().is_none());
/// ```
#[derive(Debug, Default)]
pub struct LineDecoder {
    buf: Vec<u8>,
    discarding: bool,
    line_start: u64,
    consumed: u64,
    ready: VecDeque<Result<Line, DecodeError>>,
}

impl LineDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let nl = rest.iter().position(|&b| b == b'\n');
            let (part, after) = match nl {
                Some(p) => (rest.get(..p).unwrap_or(&[]), rest.get(p + 1..)),
                None => (rest, None),
            };
            if !self.discarding {
                // Keep one byte more than a line may hold so an over-long line is detected
                // without buffering it.
                let room = (MAX_LINE + 2).saturating_sub(self.buf.len());
                let take = part.len().min(room);
                self.buf.extend_from_slice(part.get(..take).unwrap_or(&[]));
                if self.buf.len() > MAX_LINE + 1 {
                    self.ready.push_back(Err(DecodeError {
                        offset: self.line_start,
                        column: MAX_LINE + 1,
                        seq: None,
                        kind: DecodeErrorKind::TooLong,
                    }));
                    self.buf.clear();
                    self.discarding = true;
                }
            }
            self.consumed += part.len() as u64;
            match after {
                Some(a) => {
                    self.consumed += 1;
                    if !self.discarding {
                        match decode_line(&self.buf) {
                            Ok(Some(l)) => self.ready.push_back(Ok(l)),
                            Ok(None) => {}
                            Err(mut e) => {
                                e.offset = self.line_start;
                                self.ready.push_back(Err(e));
                            }
                        }
                    }
                    self.buf.clear();
                    self.discarding = false;
                    self.line_start = self.consumed;
                    rest = a;
                }
                None => break,
            }
        }
    }

    /// The next decoded line or error, in stream order.
    pub fn poll(&mut self) -> Option<Result<Line, DecodeError>> {
        self.ready.pop_front()
    }

    /// Bytes of an incomplete line held.
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }
}
