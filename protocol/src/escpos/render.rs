//! Renderings of a [`Receipt`] at a paper width in columns (32 for 58 mm paper, 42 or 48 for
//! 80 mm): plain text for snapshots and a self-contained HTML fragment.
//!
//! # Text syntax
//! Every line is laid out as the printer would: aligned with spaces at the paper width,
//! wrapped when it overflows, a CJK character counting two columns and a character of width
//! ×N counting N times its columns. Styles are inline markers that take no columns:
//!
//! | marker | meaning |
//! |---|---|
//! | `[2W]` … `[/2W]` | double width (`[3W]` …) |
//! | `[2H]` … `[/2H]` | double height |
//! | `[2x2]` … `[/2x2]` | both (`[3x2]` when they differ) |
//! | `[B]` … `[/B]` | emphasis |
//! | `[U]` … `[/U]`, `[U2]` … `[/U2]` | underline, 1 or 2 dots |
//! | `[R]` … `[/R]` | white on black |
//! | `[[` | a literal `[` in the printed text |
//! | `[ESC 3 1b 33 18]` | a command kept uninterpreted: mnemonic, then its bytes in hex |
//! | `[PC437 ff]`, `[GB18030 81]` | bytes with no glyph in the character set |
//!
//! Markers open in the order size, B, U, R and close in reverse, per printed row. Blocks:
//! `----- cut -----` across the paper (`partial cut`, `cut +3` for a feed of 3 units),
//! `[BARCODE CODE128 "{B123"]`, `[QR "…"]`, `[IMG 384x120 sha256:0123456789abcdef]`,
//! `[FEED 60 dots]`. Data in quotes escapes `"`, `\` and non-UTF-8 bytes as `\xNN`.
//!
//! ```
//! use protocol::escpos::{Align, Parser, ReceiptBuilder, render_text};
//! let bytes = ReceiptBuilder::new(32).init().align(Align::Center).size(2, 2).bold(true)
//!     .line_zh("退货").bold(false).size(1, 1).align(Align::Left)
//!     .line_lr("AMOUNT", "CNY 33.33").line_lr("金额", "33.33").cut().build();
//! let text = render_text(&Parser::parse(&bytes), 32);
//! assert_eq!(text, concat!(
//!     "            [2x2][B]退货[/B][/2x2]\n",
//!     "AMOUNT                 CNY 33.33\n",
//!     "金额                       33.33\n",
//!     "------------- cut --------------\n",
//! ));
//! ```

use std::fmt::Write as _;

use super::codepage;
use super::model::*;
use super::printed_columns;

/// A piece of a printed row.
enum Piece {
    Text {
        style: Style,
        text: String,
    },
    /// Zero-width command marker, or undecodable bytes taking `cols` columns.
    Marker {
        text: String,
    },
}

struct Row {
    used: usize,
    pieces: Vec<Piece>,
}

fn new_row() -> Row {
    Row {
        used: 0,
        pieces: Vec::new(),
    }
}

/// Splits a line into printed rows (the printer wraps an overflowing line).
fn layout(line: &Line, cols: usize) -> Vec<Row> {
    let mut rows = vec![new_row()];
    for span in &line.spans {
        match span {
            Span::Text(run) => {
                let w = usize::from(run.style.width.max(1));
                for c in run.text.chars() {
                    let cw = printed_columns(c, run.style.chinese) * w;
                    let mut row = rows.last_mut().map(|r| r.used).unwrap_or(0);
                    if row > 0 && row + cw > cols {
                        rows.push(new_row());
                        row = 0;
                    }
                    let Some(r) = rows.last_mut() else { continue };
                    r.used = row + cw;
                    match r.pieces.last_mut() {
                        Some(Piece::Text { style, text }) if *style == run.style => text.push(c),
                        _ => r.pieces.push(Piece::Text {
                            style: run.style,
                            text: c.to_string(),
                        }),
                    }
                }
            }
            Span::Undecodable {
                charset,
                bytes,
                style,
            } => {
                let cw = bytes.len() * usize::from(style.width.max(1));
                if rows
                    .last()
                    .is_some_and(|r| r.used > 0 && r.used + cw > cols)
                {
                    rows.push(new_row());
                }
                if let Some(r) = rows.last_mut() {
                    r.used += cw;
                    r.pieces.push(Piece::Marker {
                        text: format!("[{} {}]", charset_name(*charset), hex(bytes)),
                    });
                }
            }
            Span::Command(u) => {
                if let Some(r) = rows.last_mut() {
                    r.pieces.push(Piece::Marker {
                        text: command_marker(u),
                    });
                }
            }
        }
    }
    rows
}

fn pad(align: Align, used: usize, cols: usize) -> usize {
    let free = cols.saturating_sub(used);
    match align {
        Align::Left => 0,
        Align::Center => free / 2,
        Align::Right => free,
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn charset_name(c: Charset) -> String {
    match c {
        Charset::Gb18030 => "GB18030".to_owned(),
        Charset::CodePage(n) => codepage::name(n)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("page{n}")),
    }
}

const CONTROL_NAMES: [&str; 32] = [
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
    "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC",
    "FS", "GS", "RS", "US",
];

/// `ESC 3`, `GS ( L`, `DLE EOT`, `NUL`: a readable name for the start of a command.
pub fn mnemonic(bytes: &[u8]) -> String {
    let Some(&first) = bytes.first() else {
        return String::new();
    };
    let Some(name) = CONTROL_NAMES.get(usize::from(first)) else {
        return "DATA".to_owned();
    };
    let mut s = (*name).to_owned();
    let graphic = |b: u8| b.is_ascii_graphic().then(|| char::from(b));
    match (first, bytes.get(1).copied()) {
        (0x1B..=0x1D, Some(c)) => {
            match graphic(c) {
                Some(ch) => {
                    s.push(' ');
                    s.push(ch);
                }
                None => {
                    let _ = write!(s, " x{c:02x}");
                }
            }
            if matches!(c, b'(' | b'8' | b'v')
                && let Some(ch) = bytes.get(2).copied().and_then(graphic)
            {
                s.push(' ');
                s.push(ch);
            }
        }
        (0x10, Some(c @ (0x04 | 0x05 | 0x14))) => {
            s.push(' ');
            s.push_str(CONTROL_NAMES[usize::from(c)]);
        }
        _ => {}
    }
    s
}

fn command_marker(u: &Unknown) -> String {
    let mut s = format!("[{} {}", mnemonic(&u.bytes), hex(&u.bytes));
    let shown = u.bytes.len() as u64;
    if u.len > shown {
        let _ = write!(s, " …+{} bytes", u.len - shown);
    }
    if !u.complete {
        s.push_str(" incomplete");
    }
    s.push(']');
    s
}

/// Quoted data: UTF-8 as is, `"` and `\` escaped, other bytes and control characters as `\xNN`.
fn quote(data: &[u8]) -> String {
    let mut s = String::from("\"");
    for chunk in data.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(s, "\\x{b:02x}");
                    }
                }
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s.push('"');
    s
}

fn size_token(w: u8, h: u8) -> Option<String> {
    match (w, h) {
        (1, 1) | (0, _) | (_, 0) => None,
        (w, 1) => Some(format!("{w}W")),
        (1, h) => Some(format!("{h}H")),
        (w, h) => Some(format!("{w}x{h}")),
    }
}

/// The marker tokens a style opens, in opening order.
fn tokens(s: &Style) -> Vec<String> {
    let mut t = Vec::new();
    t.extend(size_token(s.width, s.height));
    if s.bold {
        t.push("B".to_owned());
    }
    match s.underline {
        0 => {}
        1 => t.push("U".to_owned()),
        n => t.push(format!("U{n}")),
    }
    if s.reverse {
        t.push("R".to_owned());
    }
    t
}

fn push_text_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '[' => out.push_str("[["),
            c if c.is_control() => {
                let _ = write!(out, "[U+{:04X}]", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

fn block_text(item: &Item) -> Option<(String, Align)> {
    Some(match item {
        Item::Barcode(b) => (
            format!("[BARCODE {} {}]", b.symbology.name(), quote(&b.data)),
            b.align,
        ),
        Item::Qr(q) => (format!("[QR {}]", quote(&q.data)), q.align),
        Item::Image(i) => {
            let mut s = format!(
                "[IMG {}x{} sha256:{}",
                i.width,
                i.height,
                hex(&i.sha256[..8]).replace(' ', "")
            );
            if !i.complete {
                let _ = write!(s, " incomplete {} bytes", i.len);
            }
            s.push(']');
            (s, i.align)
        }
        _ => return None,
    })
}

fn cut_text(c: &Cut, cols: usize) -> String {
    let mut label = if c.partial { "partial cut" } else { "cut" }.to_owned();
    if let Some(n) = c.feed.filter(|&n| n > 0) {
        let _ = write!(label, " +{n}");
    }
    let label = format!(" {label} ");
    let dashes = cols.saturating_sub(label.chars().count()).max(4);
    let left = dashes / 2;
    format!("{}{label}{}", "-".repeat(left), "-".repeat(dashes - left))
}

/// Plain-text rendering for snapshots (see the module docs for the syntax). Always UTF-8
/// without control characters; each line ends with `\n`, without trailing spaces.
pub fn render_text(receipt: &Receipt, cols: usize) -> String {
    let cols = cols.max(1);
    let mut out = String::new();
    let push_line = |out: &mut String, line: &str| {
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
    };
    for item in &receipt.items {
        match item {
            Item::Line(line) => {
                for row in layout(line, cols) {
                    let mut s = " ".repeat(pad(line.align, row.used, cols));
                    let mut open: Vec<String> = Vec::new();
                    let mut current: Option<Style> = None;
                    for piece in &row.pieces {
                        match piece {
                            Piece::Text { style, text } => {
                                let visual = Style {
                                    chinese: false,
                                    ..*style
                                };
                                if current != Some(visual) {
                                    for t in open.iter().rev() {
                                        let _ = write!(s, "[/{t}]");
                                    }
                                    open = tokens(&visual);
                                    for t in &open {
                                        let _ = write!(s, "[{t}]");
                                    }
                                    current = Some(visual);
                                }
                                push_text_escaped(&mut s, text);
                            }
                            Piece::Marker { text } => s.push_str(text),
                        }
                    }
                    for t in open.iter().rev() {
                        let _ = write!(s, "[/{t}]");
                    }
                    push_line(&mut out, &s);
                }
            }
            Item::Feed(Feed::Lines(n)) => {
                for _ in 0..*n {
                    push_line(&mut out, "");
                }
            }
            Item::Feed(Feed::Dots(n)) => push_line(&mut out, &format!("[FEED {n} dots]")),
            Item::Cut(c) => push_line(&mut out, &cut_text(c, cols)),
            Item::Init => {}
            other => {
                if let Some((text, align)) = block_text(other) {
                    let p = pad(align, text.chars().count(), cols);
                    push_line(&mut out, &format!("{}{text}", " ".repeat(p)));
                }
            }
        }
    }
    out
}

fn html_escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(out, "&#x{:X};", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

const HTML_STYLE: &str = ".escpos pre{font-family:monospace;line-height:1.3;background:#fff;\
color:#000;padding:1ch;border:1px solid #bbb;margin:0;white-space:pre}\
.escpos .b{font-weight:bold}.escpos .u1{text-decoration:underline}\
.escpos .u2{text-decoration:underline;text-decoration-thickness:2px}\
.escpos .r{background:#000;color:#fff}\
.escpos .sz{display:inline-block;transform-origin:0 100%}\
.escpos .cmd,.escpos .cut,.escpos .blk{color:#777}";

/// A self-contained HTML fragment (a `<div>` with its own `<style>` and a `<pre>`): the same
/// layout as [`render_text`], styles as spans (`b`, `u1`, `u2`, `r`, and a scaled `sz` span
/// for sizes), commands and blocks as grey text.
pub fn render_html(receipt: &Receipt, cols: usize) -> String {
    let cols = cols.max(1);
    let mut out =
        format!("<div class=\"escpos\"><style>{HTML_STYLE}</style><pre style=\"width:{cols}ch\">");
    for item in &receipt.items {
        match item {
            Item::Line(line) => {
                for row in layout(line, cols) {
                    out.push_str(&" ".repeat(pad(line.align, row.used, cols)));
                    for piece in &row.pieces {
                        match piece {
                            Piece::Text { style, text } => html_run(&mut out, style, text),
                            Piece::Marker { text } => {
                                out.push_str("<span class=\"cmd\">");
                                html_escape(&mut out, text);
                                out.push_str("</span>");
                            }
                        }
                    }
                    out.push('\n');
                }
            }
            Item::Feed(Feed::Lines(n)) => {
                for _ in 0..*n {
                    out.push('\n');
                }
            }
            Item::Feed(Feed::Dots(n)) => {
                let _ = writeln!(out, "<span class=\"cmd\">[FEED {n} dots]</span>");
            }
            Item::Cut(c) => {
                let _ = writeln!(out, "<span class=\"cut\">{}</span>", cut_text(c, cols));
            }
            Item::Init => {}
            other => {
                if let Some((text, align)) = block_text(other) {
                    out.push_str(&" ".repeat(pad(align, text.chars().count(), cols)));
                    out.push_str("<span class=\"blk\">");
                    html_escape(&mut out, &text);
                    out.push_str("</span>\n");
                }
            }
        }
    }
    out.push_str("</pre></div>\n");
    out
}

fn html_run(out: &mut String, style: &Style, text: &str) {
    let mut classes: Vec<&str> = Vec::new();
    if style.bold {
        classes.push("b");
    }
    match style.underline {
        0 => {}
        1 => classes.push("u1"),
        _ => classes.push("u2"),
    }
    if style.reverse {
        classes.push("r");
    }
    let sized = style.width > 1 || style.height > 1;
    if sized {
        classes.push("sz");
    }
    if classes.is_empty() {
        html_escape(out, text);
        return;
    }
    let _ = write!(out, "<span class=\"{}\"", classes.join(" "));
    if sized {
        // The glyphs are scaled; the margin reserves the columns the scaling adds.
        let cols: usize = text
            .chars()
            .map(|c| printed_columns(c, style.chinese))
            .sum();
        let extra = cols * usize::from(style.width.saturating_sub(1));
        let _ = write!(
            out,
            " style=\"transform:scale({},{});margin-right:{extra}ch\"",
            style.width, style.height
        );
    }
    out.push('>');
    html_escape(out, text);
    out.push_str("</span>");
}
