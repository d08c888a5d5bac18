//! Sans-IO, incremental ESC/POS parser: bytes in, [`Receipt`] items out.
//!
//! The parser keeps the bytes of an incomplete command (or GB18030 character) until the rest
//! arrives, so a stream split anywhere parses the same as in one piece. Large payloads (raster
//! images, graphics stores) stream through a digest and are never buffered; the buffer is
//! capped at [`MAX_BUFFER`] bytes, enough for the longest command kept whole (`GS ( k` with a
//! 16-bit length, i.e. a QR store of up to 65 532 data bytes).
//!
//! ```
//! use protocol::escpos::{Parser, Item, Span};
//! // ESC a 1 (center), GS ! 0x11 (2x2), "HI", LF, GS V 66 0 (feed and partial cut)
//! let bytes = b"\x1b\x61\x01\x1d\x21\x11HI\n\x1d\x56\x42\x00";
//! let mut p = Parser::new();
//! p.feed(&bytes[..5]); // split inside GS !
//! p.feed(&bytes[5..]);
//! let r = p.finish();
//! let Item::Line(line) = &r.items[0] else { panic!() };
//! let Span::Text(run) = &line.spans[0] else { panic!() };
//! assert_eq!((run.text.as_str(), run.style.width, run.style.height), ("HI", 2, 2));
//! assert_eq!(r.cuts(), 1);
//! ```

use sha2::{Digest, Sha256};

use super::codepage::{self, UpperHalf};
use super::model::*;

const LF: u8 = 0x0A;
const CR: u8 = 0x0D;
const HT: u8 = 0x09;
const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const FS: u8 = 0x1C;
const DLE: u8 = 0x10;

/// The longest command the parser holds whole: `GS ( k pL pH` + 65 535 bytes.
const MAX_FRAME: usize = 5 + 0xFFFF;
/// Cap on buffered input: one whole frame plus room to make progress.
pub const MAX_BUFFER: usize = MAX_FRAME + 4096;

/// Power-on settings that differ between printers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParserConfig {
    /// Chinese (Kanji) mode on at power-on and after `ESC @` (true on many printers sold in
    /// China; Epson's default is off).
    pub chinese_default: bool,
    /// `ESC t` page at power-on and after `ESC @`.
    pub code_page: u8,
}

#[derive(Debug, Clone)]
struct Modes {
    code_page: u8,
    cp_table: Option<UpperHalf>,
    chinese: bool,
    ascii_w: u8,
    ascii_h: u8,
    kanji_w: u8,
    kanji_h: u8,
    bold: bool,
    ascii_ul: u8,
    kanji_ul: u8,
    reverse: bool,
    align: Align,
    /// `ESC D` tab stops in character columns; `None` = every 8 columns (Epson default).
    tabs: Option<Vec<u8>>,
    bc_height: u8,
    bc_width: u8,
    bc_hri: HriPosition,
    qr_model: u8,
    qr_size: u8,
    qr_level: QrLevel,
    qr_data: Option<Vec<u8>>,
}

impl Modes {
    fn new(cfg: &ParserConfig) -> Self {
        Modes {
            code_page: cfg.code_page,
            cp_table: codepage::upper_half(cfg.code_page),
            chinese: cfg.chinese_default,
            ascii_w: 1,
            ascii_h: 1,
            kanji_w: 1,
            kanji_h: 1,
            bold: false,
            ascii_ul: 0,
            kanji_ul: 0,
            reverse: false,
            align: Align::Left,
            tabs: None,
            // Epson TM-T88 defaults (model-dependent).
            bc_height: 162,
            bc_width: 3,
            bc_hri: HriPosition::None,
            qr_model: 2,
            qr_size: 3,
            qr_level: QrLevel::L,
            qr_data: None,
        }
    }

    fn style(&self, chinese: bool) -> Style {
        let (width, height, underline) = if chinese {
            (self.kanji_w, self.kanji_h, self.kanji_ul)
        } else {
            (self.ascii_w, self.ascii_h, self.ascii_ul)
        };
        Style {
            width,
            height,
            bold: self.bold,
            underline,
            reverse: self.reverse,
            chinese,
        }
    }
}

/// A payload being streamed past without buffering.
#[derive(Debug)]
struct Skip {
    remaining: u64,
    what: SkipWhat,
}

#[derive(Debug)]
enum SkipWhat {
    Command(Unknown),
    Image {
        kind: ImageKind,
        width: u32,
        height: u32,
        len: u64,
        hasher: Box<Sha256>,
    },
}

impl Skip {
    /// Takes up to `remaining` bytes of `data`; returns how many it took.
    fn take(&mut self, data: &[u8]) -> usize {
        let n = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let Some(chunk) = data.get(..n) else { return 0 };
        match &mut self.what {
            SkipWhat::Command(u) => {
                let room = Unknown::HEAD.saturating_sub(u.bytes.len()).min(chunk.len());
                u.bytes
                    .extend_from_slice(chunk.get(..room).unwrap_or_default());
            }
            SkipWhat::Image { hasher, .. } => hasher.update(chunk),
        }
        self.remaining -= n as u64;
        n
    }
}

/// The ESC/POS parser. See the module docs.
#[derive(Debug)]
pub struct Parser {
    config: ParserConfig,
    buf: Vec<u8>,
    skip: Option<Skip>,
    modes: Modes,
    line: Vec<Span>,
    line_align: Option<Align>,
    /// Columns used on the current line (for `HT`).
    col: usize,
    items: Vec<Item>,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

/// `Some(())` when `b` holds at least `n` bytes, for `?` in the command handlers.
fn need(b: &[u8], n: usize) -> Option<()> {
    (b.len() >= n).then_some(())
}

fn at(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}

fn u16le(lo: u8, hi: u8) -> usize {
    usize::from(lo) | usize::from(hi) << 8
}

/// `0/48 → 0`, `1/49 → 1`, `2/50 → 2`: the ASCII-digit-or-binary parameters of Epson.
fn digit_param(n: u8) -> u8 {
    if (48..=57).contains(&n) { n - 48 } else { n }
}

impl Parser {
    pub fn new() -> Self {
        Self::with_config(ParserConfig::default())
    }

    pub fn with_config(config: ParserConfig) -> Self {
        Parser {
            modes: Modes::new(&config),
            config,
            buf: Vec::new(),
            skip: None,
            line: Vec::new(),
            line_align: None,
            col: 0,
            items: Vec::new(),
        }
    }

    /// Parses a whole stream at once.
    pub fn parse(bytes: &[u8]) -> Receipt {
        let mut p = Parser::new();
        p.feed(bytes);
        p.finish()
    }

    /// Feeds bytes; complete items become visible through [`Parser::items`].
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if let Some(skip) = self.skip.as_mut() {
                let n = skip.take(data);
                data = data.get(n..).unwrap_or_default();
                if skip.remaining == 0 {
                    self.end_skip(true);
                }
                continue;
            }
            let room = MAX_BUFFER.saturating_sub(self.buf.len()).max(1);
            let (chunk, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(chunk);
            data = rest;
            self.process();
        }
    }

    /// Bytes held for an incomplete command (never more than [`MAX_BUFFER`]).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Items completed so far (the line being printed is not among them).
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Takes the items up to and including the first cut, when there is one: the stream of a
    /// merchant copy and a customer copy yields two receipts.
    pub fn poll_receipt(&mut self) -> Option<Receipt> {
        let i = self.items.iter().position(|i| matches!(i, Item::Cut(_)))?;
        let rest = self.items.split_off(i + 1);
        Some(Receipt {
            items: std::mem::replace(&mut self.items, rest),
        })
    }

    /// Ends the stream: an incomplete command becomes a marker, the pending line is flushed,
    /// and every item not yet polled is returned. The printer modes stay as they were.
    pub fn finish(&mut self) -> Receipt {
        if self.skip.is_some() {
            self.end_skip(false);
        }
        let buf = std::mem::take(&mut self.buf);
        if !buf.is_empty() {
            if self.modes.chinese && buf.first().is_some_and(|&b| b >= 0x80) {
                let style = self.modes.style(true);
                self.push_undecodable(Charset::Gb18030, &buf, style);
            } else {
                self.push_span(Span::Command(Unknown {
                    bytes: buf.iter().copied().take(Unknown::HEAD).collect(),
                    len: buf.len() as u64,
                    complete: false,
                }));
            }
        }
        if !self.line.is_empty() {
            self.end_line();
        }
        Receipt {
            items: std::mem::take(&mut self.items),
        }
    }

    fn process(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut pos = 0;
        while let Some(rest) = buf.get(pos..) {
            if rest.is_empty() {
                break;
            }
            if let Some(skip) = self.skip.as_mut() {
                pos += skip.take(rest);
                if skip.remaining == 0 {
                    self.end_skip(true);
                    continue;
                }
                break;
            }
            match self.step(rest) {
                Some(n) => pos += n.max(1),
                None => break,
            }
        }
        let mut buf = buf;
        buf.drain(..pos.min(buf.len()));
        self.buf = buf;
    }

    /// Interprets one command or text run at the start of `b`; `None` = need more bytes.
    fn step(&mut self, b: &[u8]) -> Option<usize> {
        let first = at(b, 0)?;
        match first {
            LF => {
                self.end_line();
                Some(1)
            }
            // Auto line feed is off by default: CR only matters to printers set otherwise.
            CR => Some(1),
            HT => {
                self.tab();
                Some(1)
            }
            ESC => self.esc(b),
            GS => self.gs(b),
            FS => self.fs(b),
            DLE => self.dle(b),
            0x00..=0x1F => Some(self.mark(b, 1)),
            _ if self.modes.chinese => self.chinese_text(b),
            _ => Some(self.codepage_text(b)),
        }
    }

    // ---- text ----------------------------------------------------------------------------

    fn codepage_text(&mut self, b: &[u8]) -> usize {
        let n = b.iter().position(|&x| x < 0x20).unwrap_or(b.len());
        let run = b.get(..n).unwrap_or_default();
        let style = self.modes.style(false);
        let mut text = String::with_capacity(n);
        let mut bad: Vec<u8> = Vec::new();
        for &byte in run {
            let c = match byte {
                0x20..=0x7E => Some(char::from(byte)),
                0x7F => None,
                _ => self
                    .modes
                    .cp_table
                    .as_ref()
                    .and_then(|t| t.get(usize::from(byte - 0x80)).copied().flatten()),
            };
            match c {
                Some(c) => {
                    if !bad.is_empty() {
                        self.push_undecodable(Charset::CodePage(self.modes.code_page), &bad, style);
                        bad.clear();
                    }
                    text.push(c);
                }
                None => {
                    if !text.is_empty() {
                        self.push_text(&text, style);
                        text.clear();
                    }
                    bad.push(byte);
                }
            }
        }
        if !text.is_empty() {
            self.push_text(&text, style);
        }
        if !bad.is_empty() {
            self.push_undecodable(Charset::CodePage(self.modes.code_page), &bad, style);
        }
        n
    }

    /// Length of the GB18030 sequence at the start of `b`: `Some(Ok(n))` valid,
    /// `Some(Err(()))` broken (keep the lead byte as hex), `None` need more bytes.
    fn gb_len(b: &[u8]) -> Option<Result<usize, ()>> {
        let lead = at(b, 0)?;
        if !(0x81..=0xFE).contains(&lead) {
            return Some(Err(()));
        }
        let second = at(b, 1)?;
        match second {
            0x40..=0x7E | 0x80..=0xFE => Some(Ok(2)),
            0x30..=0x39 => {
                let third = at(b, 2)?;
                if !(0x81..=0xFE).contains(&third) {
                    return Some(Err(()));
                }
                let fourth = at(b, 3)?;
                if (0x30..=0x39).contains(&fourth) {
                    Some(Ok(4))
                } else {
                    Some(Err(()))
                }
            }
            _ => Some(Err(())),
        }
    }

    /// Text of whole GB18030 sequences, or `None` if one is unmapped or a control character.
    fn gb_decode(seq: &[u8]) -> Option<String> {
        encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(seq)
            .filter(|t| !t.chars().any(char::is_control))
            .map(|t| t.into_owned())
    }

    fn chinese_text(&mut self, b: &[u8]) -> Option<usize> {
        let first = at(b, 0)?;
        if (0x20..=0x7E).contains(&first) {
            let n = b
                .iter()
                .position(|&x| !(0x20..=0x7E).contains(&x))
                .unwrap_or(b.len());
            let text: String = b.get(..n)?.iter().map(|&x| char::from(x)).collect();
            let style = self.modes.style(false);
            self.push_text(&text, style);
            return Some(n);
        }
        let style = self.modes.style(true);
        // A run of whole multi-byte sequences, decoded in one call.
        let mut n = 0;
        loop {
            let rest = b.get(n..).unwrap_or_default();
            if rest.first().is_none_or(|&x| x < 0x80) {
                break;
            }
            match Self::gb_len(rest) {
                Some(Ok(k)) => n += k,
                Some(Err(())) => {
                    if n == 0 {
                        self.push_undecodable(Charset::Gb18030, &[first], style);
                        return Some(1);
                    }
                    break;
                }
                None if n == 0 => return None,
                None => break,
            }
        }
        let seq = b.get(..n)?;
        match Self::gb_decode(seq) {
            Some(text) => self.push_text(&text, style),
            None => {
                // Some sequence in the run is unmapped: decide sequence by sequence, so the
                // outcome does not depend on how the run was split across feeds.
                let mut i = 0;
                while let Some(rest) = seq.get(i..).filter(|r| !r.is_empty()) {
                    let k = match Self::gb_len(rest) {
                        Some(Ok(k)) => k,
                        _ => rest.len(),
                    };
                    let one = rest.get(..k).unwrap_or(rest);
                    match Self::gb_decode(one) {
                        Some(text) => self.push_text(&text, style),
                        None => self.push_undecodable(Charset::Gb18030, one, style),
                    }
                    i += k;
                }
            }
        }
        Some(n)
    }

    fn push_text(&mut self, text: &str, style: Style) {
        let cols: usize = text
            .chars()
            .map(|c| super::printed_columns(c, style.chinese))
            .sum::<usize>()
            * usize::from(style.width);
        self.col += cols;
        if let Some(Span::Text(run)) = self.line.last_mut()
            && run.style == style
        {
            run.text.push_str(text);
            return;
        }
        self.push_span(Span::Text(Run {
            text: text.to_owned(),
            style,
        }));
    }

    fn push_undecodable(&mut self, charset: Charset, bytes: &[u8], style: Style) {
        self.col += bytes.len() * usize::from(style.width);
        if let Some(Span::Undecodable {
            charset: c,
            bytes: b,
            style: s,
        }) = self.line.last_mut()
            && *c == charset
            && *s == style
        {
            b.extend_from_slice(bytes);
            return;
        }
        self.push_span(Span::Undecodable {
            charset,
            bytes: bytes.to_vec(),
            style,
        });
    }

    fn push_span(&mut self, span: Span) {
        if self.line_align.is_none() {
            self.line_align = Some(self.modes.align);
        }
        self.line.push(span);
    }

    /// Keeps the first `n` bytes of `b` as a marker; returns `n`.
    fn mark(&mut self, b: &[u8], n: usize) -> usize {
        let n = n.min(b.len());
        let bytes = b.get(..n.min(Unknown::HEAD)).unwrap_or_default().to_vec();
        self.push_span(Span::Command(Unknown {
            bytes,
            len: n as u64,
            complete: true,
        }));
        n
    }

    /// A known-length command that is not interpreted: wait for `n` bytes, keep a marker.
    fn fixed(&mut self, b: &[u8], n: usize) -> Option<usize> {
        need(b, n)?;
        Some(self.mark(b, n))
    }

    fn tab(&mut self) {
        let col = self.col;
        let next = match &self.modes.tabs {
            None => Some((col / 8 + 1) * 8),
            Some(stops) => stops.iter().map(|&s| usize::from(s)).find(|&s| s > col),
        };
        // No stop ahead: Epson ignores HT.
        if let Some(stop) = next {
            let style = self.modes.style(false);
            let w = usize::from(style.width);
            let spaces = (stop - col).div_ceil(w);
            self.push_text(&" ".repeat(spaces), style);
        }
    }

    // ---- lines and blocks ------------------------------------------------------------------

    fn end_line(&mut self) {
        let align = self.line_align.take().unwrap_or(self.modes.align);
        let spans = std::mem::take(&mut self.line);
        self.col = 0;
        self.items.push(Item::Line(Line { align, spans }));
    }

    /// Flushes a pending line, then pushes a block item.
    fn block(&mut self, item: Item) {
        if !self.line.is_empty() {
            self.end_line();
        }
        self.items.push(item);
    }

    fn start_skip(&mut self, remaining: u64, what: SkipWhat) {
        if remaining == 0 {
            self.skip = Some(Skip { remaining, what });
            self.end_skip(true);
        } else {
            self.skip = Some(Skip { remaining, what });
        }
    }

    fn end_skip(&mut self, complete: bool) {
        let Some(skip) = self.skip.take() else { return };
        match skip.what {
            SkipWhat::Command(mut u) => {
                u.complete = complete;
                if !complete {
                    u.len -= skip.remaining;
                }
                self.push_span(Span::Command(u));
            }
            SkipWhat::Image {
                kind,
                width,
                height,
                len,
                hasher,
            } => {
                let image = Image {
                    kind,
                    width,
                    height,
                    len: len - skip.remaining,
                    sha256: hasher.finalize().into(),
                    complete,
                    align: self.line_align.unwrap_or(self.modes.align),
                };
                self.block(Item::Image(image));
            }
        }
    }

    /// A command of `header` bytes plus `payload` bytes, kept as a marker without buffering
    /// the payload.
    fn stream_command(&mut self, b: &[u8], header: usize, payload: u64) -> Option<usize> {
        need(b, header)?;
        let head = b.get(..header)?;
        let u = Unknown {
            bytes: head.iter().copied().take(Unknown::HEAD).collect(),
            len: header as u64 + payload,
            complete: true,
        };
        self.start_skip(payload, SkipWhat::Command(u));
        Some(header)
    }

    fn stream_image(
        &mut self,
        header: usize,
        kind: ImageKind,
        width: u32,
        height: u32,
        payload: u64,
    ) -> Option<usize> {
        self.start_skip(
            payload,
            SkipWhat::Image {
                kind,
                width,
                height,
                len: payload,
                hasher: Box::new(Sha256::new()),
            },
        );
        Some(header)
    }

    fn init(&mut self) {
        if !self.line.is_empty() {
            self.end_line();
        }
        self.modes = Modes::new(&self.config);
        self.items.push(Item::Init);
    }

    // ---- ESC -------------------------------------------------------------------------------

    fn esc(&mut self, b: &[u8]) -> Option<usize> {
        let c = at(b, 1)?;
        match c {
            b'@' => {
                self.init();
                Some(2)
            }
            b'!' => {
                let n = at(b, 2)?;
                let m = &mut self.modes;
                m.ascii_w = if n & 0x20 != 0 { 2 } else { 1 };
                m.ascii_h = if n & 0x10 != 0 { 2 } else { 1 };
                m.bold = n & 0x08 != 0;
                m.ascii_ul = if n & 0x80 != 0 { 1 } else { 0 };
                Some(3)
            }
            b'E' => {
                self.modes.bold = at(b, 2)? & 1 != 0;
                Some(3)
            }
            b'-' => {
                let n = digit_param(at(b, 2)?);
                if n > 2 {
                    return Some(self.mark(b, 3));
                }
                self.modes.ascii_ul = n;
                Some(3)
            }
            b'a' => {
                let n = digit_param(at(b, 2)?);
                self.modes.align = match n {
                    0 => Align::Left,
                    1 => Align::Center,
                    2 => Align::Right,
                    _ => return Some(self.mark(b, 3)),
                };
                Some(3)
            }
            b't' => {
                let n = at(b, 2)?;
                self.modes.code_page = n;
                self.modes.cp_table = codepage::upper_half(n);
                Some(3)
            }
            b'd' => {
                let n = at(b, 2)?;
                if self.line.is_empty() {
                    if n > 0 {
                        self.items.push(Item::Feed(Feed::Lines(n)));
                    }
                } else {
                    self.end_line();
                    if n > 1 {
                        self.items.push(Item::Feed(Feed::Lines(n - 1)));
                    }
                }
                Some(3)
            }
            b'J' => {
                let n = at(b, 2)?;
                self.block(Item::Feed(Feed::Dots(n)));
                Some(3)
            }
            b'i' | b'm' => {
                self.block(Item::Cut(Cut {
                    partial: true,
                    feed: None,
                }));
                Some(2)
            }
            b'D' => {
                // ESC D n1 … nk NUL, k ≤ 32; bytes past the 32nd stop are ordinary data.
                let list = b.get(2..).unwrap_or_default();
                match list.iter().take(33).position(|&x| x == 0) {
                    Some(k) => {
                        self.modes.tabs = Some(list.get(..k).unwrap_or_default().to_vec());
                        Some(k + 3)
                    }
                    // 33 bytes without NUL: only now is it known that none follows.
                    None if list.len() >= 33 => {
                        self.modes.tabs = Some(list.get(..32).unwrap_or_default().to_vec());
                        Some(34)
                    }
                    None => None,
                }
            }
            b'*' => {
                need(b, 5)?;
                let m = at(b, 2)?;
                let n = u16le(at(b, 3)?, at(b, 4)?);
                let (rows, bytes_per_col) = match m {
                    0 | 1 => (8, 1),
                    32 | 33 => (24, 3),
                    _ => return Some(self.mark(b, 2)),
                };
                self.stream_image(
                    5,
                    ImageKind::BitImage,
                    n as u32,
                    rows,
                    (n * bytes_per_col) as u64,
                )
            }
            b'(' => {
                // ESC ( x pL pH d1…dk
                need(b, 5)?;
                let len = u16le(at(b, 3)?, at(b, 4)?);
                self.stream_command(b, 5, len as u64)
            }
            b'&' => self.esc_user_chars(b),
            // Known lengths, kept as markers.
            b'2' | b'<' | b'L' | b'S' | b'v' => self.fixed(b, 2),
            b' ' | b'3' | b'%' | b'=' | b'?' | b'G' | b'K' | b'M' | b'R' | b'T' | b'U' | b'V'
            | b'e' | b'r' | b'u' | b'{' => self.fixed(b, 3),
            // ESC c 0/1/3/4/5 n (paper type, sensors, panel keys), ESC $ / ESC \ positions,
            // ESC f (slip wait).
            b'c' | b'$' | b'\\' | b'f' => self.fixed(b, 4),
            b'p' => self.fixed(b, 5),
            b'W' => self.fixed(b, 10),
            // Truly unknown: keep ESC x, carry on with the next byte.
            _ => Some(self.mark(b, 2)),
        }
    }

    /// `ESC & y c1 c2 [x d1…d(y×x)]…`: user-defined characters, one entry per code c1..=c2.
    fn esc_user_chars(&mut self, b: &[u8]) -> Option<usize> {
        need(b, 5)?;
        let y = usize::from(at(b, 2)?);
        let (c1, c2) = (at(b, 3)?, at(b, 4)?);
        if c2 < c1 {
            return Some(self.mark(b, 5));
        }
        let mut pos = 5;
        for _ in c1..=c2 {
            let x = usize::from(at(b, pos)?);
            pos += 1 + y * x;
            if pos > MAX_FRAME {
                return Some(self.mark(b, 2));
            }
            need(b, pos)?;
        }
        Some(self.mark(b, pos))
    }

    // ---- GS --------------------------------------------------------------------------------

    fn gs(&mut self, b: &[u8]) -> Option<usize> {
        let c = at(b, 1)?;
        match c {
            b'!' => {
                let n = at(b, 2)?;
                if n & 0x88 != 0 {
                    // Magnification above 8: Epson ignores the command.
                    return Some(self.mark(b, 3));
                }
                let m = &mut self.modes;
                let (w, h) = ((n >> 4) + 1, (n & 0x07) + 1);
                (m.ascii_w, m.ascii_h, m.kanji_w, m.kanji_h) = (w, h, w, h);
                Some(3)
            }
            b'B' => {
                self.modes.reverse = at(b, 2)? & 1 != 0;
                Some(3)
            }
            b'V' => {
                let m = at(b, 2)?;
                let (partial, with_n) = match m {
                    0 | 48 => (false, false),
                    1 | 49 => (true, false),
                    65 | 97 | 103 => (false, true),
                    66 | 98 | 104 => (true, true),
                    _ => return Some(self.mark(b, 3)),
                };
                let feed = if with_n { Some(at(b, 3)?) } else { None };
                self.block(Item::Cut(Cut { partial, feed }));
                Some(if with_n { 4 } else { 3 })
            }
            b'h' => {
                self.modes.bc_height = at(b, 2)?;
                Some(3)
            }
            b'w' => {
                self.modes.bc_width = at(b, 2)?;
                Some(3)
            }
            b'H' => {
                self.modes.bc_hri = match digit_param(at(b, 2)?) {
                    0 => HriPosition::None,
                    1 => HriPosition::Above,
                    2 => HriPosition::Below,
                    3 => HriPosition::Both,
                    _ => return Some(self.mark(b, 3)),
                };
                Some(3)
            }
            b'k' => self.gs_barcode(b),
            b'(' => {
                need(b, 5)?;
                let len = u16le(at(b, 3)?, at(b, 4)?);
                if at(b, 2)? == b'k' {
                    need(b, 5 + len)?;
                    self.gs_2d(b, b.get(5..5 + len)?);
                    Some(5 + len)
                } else {
                    self.stream_command(b, 5, len as u64)
                }
            }
            b'8' => {
                // GS 8 L p1 p2 p3 p4 …: a 32-bit length.
                need(b, 7)?;
                let len = u32::from_le_bytes([at(b, 3)?, at(b, 4)?, at(b, 5)?, at(b, 6)?]);
                self.stream_command(b, 7, u64::from(len))
            }
            b'v' => {
                if at(b, 2)? != b'0' {
                    return Some(self.mark(b, 2));
                }
                // GS v 0 m xL xH yL yH d1…dk, k = x × y: x bytes per row, y rows.
                need(b, 8)?;
                let x = u16le(at(b, 4)?, at(b, 5)?);
                let y = u16le(at(b, 6)?, at(b, 7)?);
                self.stream_image(
                    8,
                    ImageKind::Raster,
                    (x * 8) as u32,
                    y as u32,
                    (x as u64) * (y as u64),
                )
            }
            b'*' => {
                // GS * x y d1…d(x × y × 8): define a downloaded bit image.
                need(b, 4)?;
                let len = usize::from(at(b, 2)?) * usize::from(at(b, 3)?) * 8;
                self.stream_command(b, 4, len as u64)
            }
            b':' | b'c' => self.fixed(b, 2),
            b'/' | b'I' | b'a' | b'b' | b'r' | b'T' | b'f' | b'E' | b'#' => self.fixed(b, 3),
            b'L' | b'W' | b'P' | b'\\' | b'$' => self.fixed(b, 4),
            b'^' => self.fixed(b, 5),
            b'g' => self.fixed(b, 6),
            _ => Some(self.mark(b, 2)),
        }
    }

    fn gs_barcode(&mut self, b: &[u8]) -> Option<usize> {
        let m = at(b, 2)?;
        let Some(symbology) = Symbology::from_m(m) else {
            return Some(self.mark(b, 3));
        };
        let (data, used) = if m <= 6 {
            // Function A: data up to NUL (capped at 255 bytes).
            let rest = b.get(3..).unwrap_or_default();
            match rest.iter().take(256).position(|&x| x == 0) {
                Some(k) => (rest.get(..k)?.to_vec(), 3 + k + 1),
                None if rest.len() >= 256 => return Some(self.mark(b, 3)),
                None => return None,
            }
        } else {
            let n = usize::from(at(b, 3)?);
            need(b, 4 + n)?;
            (b.get(4..4 + n)?.to_vec(), 4 + n)
        };
        let m = &self.modes;
        let barcode = Barcode {
            symbology,
            data,
            align: m.align,
            height: m.bc_height,
            module_width: m.bc_width,
            hri: m.bc_hri,
        };
        self.block(Item::Barcode(barcode));
        Some(used)
    }

    /// `GS ( k pL pH cn fn …`, the 2D symbol command; `p` is everything after pH.
    fn gs_2d(&mut self, b: &[u8], p: &[u8]) {
        let frame = 5 + p.len();
        let handled = match p {
            // cn 49 = QR Code. Function 165: model.
            [49, 65, n1, _] if (49..=51).contains(n1) => {
                self.modes.qr_model = n1 - 48;
                true
            }
            // Function 167: module size.
            [49, 67, n] if (1..=16).contains(n) => {
                self.modes.qr_size = *n;
                true
            }
            // Function 169: error correction level.
            [49, 69, n] if (48..=51).contains(n) => {
                self.modes.qr_level =
                    [QrLevel::L, QrLevel::M, QrLevel::Q, QrLevel::H][usize::from(n - 48)];
                true
            }
            // Function 180: store data.
            [49, 80, 48, data @ ..] => {
                self.modes.qr_data = Some(data.to_vec());
                true
            }
            // Function 181: print the stored symbol.
            [49, 81, 48] => match &self.modes.qr_data {
                Some(data) => {
                    let m = &self.modes;
                    let qr = Qr {
                        data: data.clone(),
                        model: m.qr_model,
                        module_size: m.qr_size,
                        level: m.qr_level,
                        align: m.align,
                    };
                    self.block(Item::Qr(qr));
                    true
                }
                None => false,
            },
            _ => false,
        };
        if !handled {
            self.mark(b, frame);
        }
    }

    // ---- FS --------------------------------------------------------------------------------

    fn fs(&mut self, b: &[u8]) -> Option<usize> {
        let c = at(b, 1)?;
        match c {
            b'&' => {
                self.modes.chinese = true;
                Some(2)
            }
            b'.' => {
                self.modes.chinese = false;
                Some(2)
            }
            b'!' => {
                let n = at(b, 2)?;
                let m = &mut self.modes;
                m.kanji_w = if n & 0x04 != 0 { 2 } else { 1 };
                m.kanji_h = if n & 0x08 != 0 { 2 } else { 1 };
                m.kanji_ul = if n & 0x80 != 0 { 1 } else { 0 };
                Some(3)
            }
            b'-' => {
                let n = digit_param(at(b, 2)?);
                if n > 2 {
                    return Some(self.mark(b, 3));
                }
                self.modes.kanji_ul = n;
                Some(3)
            }
            b'W' => {
                let q = if at(b, 2)? & 1 != 0 { 2 } else { 1 };
                (self.modes.kanji_w, self.modes.kanji_h) = (q, q);
                Some(3)
            }
            b'(' => {
                need(b, 5)?;
                let len = u16le(at(b, 3)?, at(b, 4)?);
                self.stream_command(b, 5, len as u64)
            }
            b'C' | b'r' => self.fixed(b, 3),
            b'S' | b'?' | b'p' => self.fixed(b, 4),
            // FS 2 c1 c2 d1…d72: define a 24×24 Kanji glyph.
            b'2' => self.fixed(b, 76),
            _ => Some(self.mark(b, 2)),
        }
    }

    // ---- DLE -------------------------------------------------------------------------------

    fn dle(&mut self, b: &[u8]) -> Option<usize> {
        let c = at(b, 1)?;
        match c {
            // DLE EOT n (n = 7, 8 take one more byte)
            0x04 => {
                let n = at(b, 2)?;
                self.fixed(b, if n == 7 || n == 8 { 4 } else { 3 })
            }
            0x05 => self.fixed(b, 3),
            // DLE DC4 fn …
            0x14 => match at(b, 2)? {
                1 | 2 => self.fixed(b, 5),
                7 => self.fixed(b, 4),
                8 => self.fixed(b, 10),
                _ => Some(self.mark(b, 2)),
            },
            _ => Some(self.mark(b, 1)),
        }
    }
}
