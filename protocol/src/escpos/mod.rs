//! ESC/POS, the receipt printer language: a sans-IO parser from bytes to a [`Receipt`],
//! text and HTML renderings for snapshots, and a [`ReceiptBuilder`] that writes the bytes.
//!
//! What the parser interprets: text in `ESC t` code pages and in Chinese mode (`FS &` …
//! `FS .`, GB18030), `ESC !` / `FS !` / `GS !` / `FS W` sizes and modes, `ESC E`, `ESC -` /
//! `FS -`, `GS B`, `ESC a`, `LF`, `HT` (`ESC D` stops), `ESC d`, `ESC J`, cuts (`GS V`, `ESC i`,
//! `ESC m`), barcodes (`GS k` both functions, with `GS h` / `GS w` / `GS H`), QR codes
//! (`GS ( k`), images (`GS v 0`, `ESC *`) and `ESC @`. Every other command is framed by a
//! table of argument lengths and kept as an [`Unknown`] marker with its bytes; a command that
//! is not in the table keeps just its two bytes.
//!
//! Column rule (paper): a character printed from a GB18030 multi-byte sequence is a
//! full-width glyph of two columns; a single-byte character takes one; size ×N multiplies.
//! [`char_columns`] is the general Unicode rule (East Asian Wide/Fullwidth = 2) for text
//! that did not come from a printer.
//!
//! ```
//! use protocol::escpos::{Align, Parser, ReceiptBuilder, render_text};
//! let bytes = ReceiptBuilder::new(32).init().align(Align::Center).size(2, 2).line_zh("退货成功")
//!     .size(1, 1).line_lr("AMOUNT", "33.33").cut().build();
//! let receipt = Parser::parse(&bytes);
//! assert!(receipt.contains("退货成功") && receipt.contains("33.33"));
//! assert!(render_text(&receipt, 32).starts_with("        [2x2]退货成功[/2x2]\n"));
//! ```

mod builder;
pub mod codepage;
mod model;
mod parser;
mod render;

pub use builder::{BuildError, QR_MAX, QrOptions, ReceiptBuilder};
pub use model::*;
pub use parser::{MAX_BUFFER, Parser, ParserConfig};
pub use render::{mnemonic, render_html, render_text};

use unicode_width::UnicodeWidthChar;

/// Terminal columns of a character by Unicode East Asian Width: Wide and Fullwidth take 2,
/// Ambiguous 1, control and combining characters 0.
pub fn char_columns(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// [`char_columns`] summed over a string.
pub fn text_columns(s: &str) -> usize {
    s.chars().map(char_columns).sum()
}

/// Paper columns of a character at size ×1: two for a Chinese-mode (GB18030 multi-byte)
/// character, whatever Unicode says of it (`×` is Ambiguous but prints full-width there);
/// otherwise the Unicode width, at least one (every single byte prints a cell).
pub fn printed_columns(c: char, chinese: bool) -> usize {
    if chinese { 2 } else { char_columns(c).max(1) }
}

impl Receipt {
    /// See [`render_text`].
    pub fn render_text(&self, columns: usize) -> String {
        render_text(self, columns)
    }

    /// See [`render_html`].
    pub fn render_html(&self, columns: usize) -> String {
        render_html(self, columns)
    }
}

#[cfg(test)]
mod tests;
