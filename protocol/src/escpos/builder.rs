//! Builds ESC/POS bytes for receipts: what the emulator prints.
//!
//! Text goes out in the active code page when every character has a byte there, otherwise in
//! Chinese mode (`FS &`) as GB18030; [`ReceiptBuilder::text_zh`] forces Chinese mode. Sizes are
//! set with `GS !`, which applies to single-byte and Chinese characters alike (`ESC !` would
//! size single-byte characters only). Column maths counts a Chinese-mode character as two
//! columns and every size-×N character as N times its columns.
//!
//! ```
//! use protocol::escpos::{Align, ReceiptBuilder};
//! let bytes = ReceiptBuilder::new(32).init().align(Align::Center).size(2, 2).text_zh("退货")
//!     .build();
//! // ESC @, ESC a 1, GS ! 0x11, FS &, GB18030 退 = CD CB, 货 = BB F5
//! assert_eq!(bytes, [0x1B, 0x40, 0x1B, 0x61, 1, 0x1D, 0x21, 0x11, 0x1C, 0x26,
//!                    0xCD, 0xCB, 0xBB, 0xF5]);
//! ```

use super::codepage::{self, UpperHalf};
use super::model::{Align, HriPosition, QrLevel, Symbology};

/// What a builder refused to encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("barcode data is {len} bytes; GS k function B takes 1 to 255")]
    BarcodeLength { len: usize },
    #[error("QR data is {len} bytes; a QR code holds at most {max}")]
    QrTooLong { len: usize, max: usize },
}

/// Options of a QR code (`GS ( k` functions 165, 167, 169).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrOptions {
    /// 1 or 2 (model 2 is what every phone reads).
    pub model: u8,
    /// Module size in dots, 1..=16.
    pub module_size: u8,
    pub level: QrLevel,
}

impl Default for QrOptions {
    fn default() -> Self {
        QrOptions {
            model: 2,
            module_size: 6,
            level: QrLevel::M,
        }
    }
}

/// The most data bytes a QR code (version 40, level L, numeric) can hold.
pub const QR_MAX: usize = 7089;

/// A receipt under construction. Methods take and return the builder so calls chain.
#[derive(Debug, Clone)]
pub struct ReceiptBuilder {
    columns: usize,
    out: Vec<u8>,
    code_page: u8,
    cp_table: Option<UpperHalf>,
    /// `None` until the builder itself switched: the printer's default is not assumed.
    chinese: Option<bool>,
    width: u8,
    height: u8,
    align: Align,
}

/// Columns `s` takes on paper at size ×1 when sent as the builder sends it.
fn columns_as_sent(s: &str, chinese: bool) -> usize {
    if chinese {
        s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
    } else {
        s.chars().count()
    }
}

impl ReceiptBuilder {
    /// A builder for paper `columns` wide (Font A: 32 on 58 mm, 42 or 48 on 80 mm).
    pub fn new(columns: usize) -> Self {
        ReceiptBuilder {
            columns: columns.max(1),
            out: Vec::new(),
            code_page: 0,
            cp_table: codepage::upper_half(0),
            chinese: None,
            width: 1,
            height: 1,
            align: Align::Left,
        }
    }

    pub fn columns(&self) -> usize {
        self.columns
    }

    /// `ESC @`: back to power-on modes (code page 0, size ×1, left).
    pub fn init(mut self) -> Self {
        self.out.extend_from_slice(&[0x1B, 0x40]);
        self.code_page = 0;
        self.cp_table = codepage::upper_half(0);
        self.chinese = None;
        self.width = 1;
        self.height = 1;
        self.align = Align::Left;
        self
    }

    /// `ESC a n`. Takes effect at the start of a line.
    pub fn align(mut self, align: Align) -> Self {
        let n = match align {
            Align::Left => 0,
            Align::Center => 1,
            Align::Right => 2,
        };
        self.out.extend_from_slice(&[0x1B, 0x61, n]);
        self.align = align;
        self
    }

    /// `GS !`: width and height magnification, each clamped to 1..=8.
    pub fn size(mut self, width: u8, height: u8) -> Self {
        let (w, h) = (width.clamp(1, 8), height.clamp(1, 8));
        self.out
            .extend_from_slice(&[0x1D, 0x21, ((w - 1) << 4) | (h - 1)]);
        self.width = w;
        self.height = h;
        self
    }

    /// `ESC E n`: emphasis (applies to Chinese characters too).
    pub fn bold(mut self, on: bool) -> Self {
        self.out.extend_from_slice(&[0x1B, 0x45, u8::from(on)]);
        self
    }

    /// `ESC - n` and `FS - n`: underline single-byte and Chinese characters (0, 1 or 2 dots).
    pub fn underline(mut self, dots: u8) -> Self {
        let n = dots.min(2);
        self.out.extend_from_slice(&[0x1B, 0x2D, n, 0x1C, 0x2D, n]);
        self
    }

    /// `GS B n`: white on black.
    pub fn reverse(mut self, on: bool) -> Self {
        self.out.extend_from_slice(&[0x1D, 0x42, u8::from(on)]);
        self
    }

    /// `ESC t n`: selects a code page by its Epson number (0 PC437, 16 WPC1252, …).
    pub fn code_page(mut self, page: u8) -> Self {
        self.out.extend_from_slice(&[0x1B, 0x74, page]);
        self.code_page = page;
        self.cp_table = codepage::upper_half(page);
        self
    }

    fn cp_byte(&self, c: char) -> Option<u8> {
        if (' '..='~').contains(&c) {
            return Some(c as u8);
        }
        let t = self.cp_table.as_ref()?;
        t.iter().position(|&x| x == Some(c)).map(|i| 0x80 + i as u8)
    }

    fn set_chinese(&mut self, on: bool) {
        if self.chinese != Some(on) {
            self.out
                .extend_from_slice(if on { &[0x1C, 0x26] } else { &[0x1C, 0x2E] });
            self.chinese = Some(on);
        }
    }

    /// Whether `s` would go out in Chinese mode.
    fn needs_chinese(&self, s: &str) -> bool {
        s.chars().any(|c| self.cp_byte(c).is_none())
    }

    /// Sends one line's worth of text (no control characters left) in the chosen mode.
    fn emit(&mut self, s: &str, chinese: bool) {
        if chinese {
            self.set_chinese(true);
            let (bytes, _, _) = encoding_rs::GB18030.encode(s);
            self.out.extend_from_slice(&bytes);
        } else {
            if !s.is_ascii() {
                self.set_chinese(false);
            }
            for c in s.chars() {
                let b = self.cp_byte(c).unwrap_or(b'?');
                self.out.push(b);
            }
        }
    }

    fn text_mode(mut self, s: &str, force_chinese: bool) -> Self {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.out.push(0x0A);
            }
            let clean: String = part
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            if clean.is_empty() {
                continue;
            }
            let chinese = force_chinese || self.needs_chinese(&clean);
            self.emit(&clean, chinese);
        }
        self
    }

    /// Text without a line feed (`\n` inside becomes LF; other control characters `?`).
    pub fn text(self, s: &str) -> Self {
        self.text_mode(s, false)
    }

    /// Text in Chinese mode (GB18030), e.g. `退货`.
    pub fn text_zh(self, s: &str) -> Self {
        self.text_mode(s, true)
    }

    /// Text and LF.
    pub fn line(self, s: &str) -> Self {
        self.text(s).newline()
    }

    /// Chinese-mode text and LF.
    pub fn line_zh(self, s: &str) -> Self {
        self.text_zh(s).newline()
    }

    /// LF.
    pub fn newline(mut self) -> Self {
        self.out.push(0x0A);
        self
    }

    /// Columns `s` takes at the current size, sent as [`ReceiptBuilder::text`] sends it.
    pub fn columns_of(&self, s: &str) -> usize {
        columns_as_sent(s, self.needs_chinese(s)) * usize::from(self.width)
    }

    /// A key on the left and a value on the right of one line (`AMOUNT        33.33`), at the
    /// current size, counting Chinese characters as two columns. When both do not fit, the
    /// value goes right-aligned on a line of its own.
    pub fn line_lr(mut self, left: &str, right: &str) -> Self {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        };
        let (left, right) = (clean(left), clean(right));
        let cells = self.columns / usize::from(self.width);
        let lc = columns_as_sent(&left, self.needs_chinese(&left));
        let rc = columns_as_sent(&right, self.needs_chinese(&right));
        let restore = self.align;
        if restore != Align::Left {
            self = self.align(Align::Left);
        }
        if lc + 1 + rc <= cells {
            self = self
                .text(&left)
                .text(&" ".repeat(cells - lc - rc))
                .text(&right)
                .newline();
        } else {
            self = self
                .text(&left)
                .newline()
                .text(&" ".repeat(cells.saturating_sub(rc)))
                .text(&right)
                .newline();
        }
        if restore != Align::Left {
            self = self.align(restore);
        }
        self
    }

    /// A line of `-` across the paper.
    pub fn separator(self) -> Self {
        self.separator_with('-')
    }

    /// A line of `c` across the paper at the current size.
    pub fn separator_with(self, c: char) -> Self {
        let one = columns_as_sent(&c.to_string(), self.needs_chinese(&c.to_string())).max(1);
        let n = self.columns / usize::from(self.width) / one;
        let s: String = std::iter::repeat_n(c, n).collect();
        self.line(&s)
    }

    /// `ESC d n`: print and feed `n` lines.
    pub fn feed(mut self, lines: u8) -> Self {
        self.out.extend_from_slice(&[0x1B, 0x64, lines]);
        self
    }

    /// `GS V 65 0`: feed to the cutter and cut fully.
    pub fn cut(mut self) -> Self {
        self.out.extend_from_slice(&[0x1D, 0x56, 65, 0]);
        self
    }

    /// `GS V 66 0`: feed to the cutter and cut leaving one point.
    pub fn cut_partial(mut self) -> Self {
        self.out.extend_from_slice(&[0x1D, 0x56, 66, 0]);
        self
    }

    /// `GS h`, `GS w`, `GS H`: barcode height (dots), module width and text position.
    pub fn barcode_style(mut self, height: u8, module_width: u8, hri: HriPosition) -> Self {
        let h = match hri {
            HriPosition::None => 0,
            HriPosition::Above => 1,
            HriPosition::Below => 2,
            HriPosition::Both => 3,
        };
        self.out
            .extend_from_slice(&[0x1D, 0x68, height, 0x1D, 0x77, module_width, 0x1D, 0x48, h]);
        self
    }

    /// `GS k m n d…` (function B). CODE128 data starts with a code set, e.g. `{B`.
    pub fn barcode(mut self, symbology: Symbology, data: &[u8]) -> Result<Self, BuildError> {
        let n = u8::try_from(data.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or(BuildError::BarcodeLength { len: data.len() })?;
        self.out
            .extend_from_slice(&[0x1D, 0x6B, symbology.function_b(), n]);
        self.out.extend_from_slice(data);
        Ok(self)
    }

    /// A model 2, size 6, level M QR code of `data`.
    pub fn qr(self, data: &str) -> Result<Self, BuildError> {
        self.qr_with(data.as_bytes(), QrOptions::default())
    }

    /// `GS ( k`: model (165), size (167), level (169), store (180), print (181).
    pub fn qr_with(mut self, data: &[u8], o: QrOptions) -> Result<Self, BuildError> {
        if data.len() > QR_MAX {
            return Err(BuildError::QrTooLong {
                len: data.len(),
                max: QR_MAX,
            });
        }
        let level = match o.level {
            QrLevel::L => 48,
            QrLevel::M => 49,
            QrLevel::Q => 50,
            QrLevel::H => 51,
        };
        let model = 48 + o.model.clamp(1, 2);
        let size = o.module_size.clamp(1, 16);
        let store_len = (data.len() + 3) as u16; // ≤ QR_MAX + 3 fits
        let [pl, ph] = store_len.to_le_bytes();
        let gs2d = [0x1D, 0x28, 0x6B];
        let o = &mut self.out;
        o.extend_from_slice(&gs2d);
        o.extend_from_slice(&[4, 0, 49, 65, model, 0]);
        o.extend_from_slice(&gs2d);
        o.extend_from_slice(&[3, 0, 49, 67, size]);
        o.extend_from_slice(&gs2d);
        o.extend_from_slice(&[3, 0, 49, 69, level]);
        o.extend_from_slice(&gs2d);
        o.extend_from_slice(&[pl, ph, 49, 80, 48]);
        o.extend_from_slice(data);
        o.extend_from_slice(&gs2d);
        o.extend_from_slice(&[3, 0, 49, 81, 48]);
        Ok(self)
    }

    /// Bytes sent as they are (a command the builder has no method for).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// The bytes so far (the builder stays usable).
    pub fn bytes(&self) -> &[u8] {
        &self.out
    }

    pub fn build(self) -> Vec<u8> {
        self.out
    }
}
