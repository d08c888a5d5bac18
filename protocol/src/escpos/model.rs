//! What a printer was asked to print, independent of the bytes that said it.
//!
//! A [`Receipt`] is a list of [`Item`]s in paper order. Text lives in [`Line`]s (what the
//! printer prints with one line feed); a line is a list of [`Span`]s: styled [`Run`]s of
//! text, bytes without a glyph, and commands the parser framed but did not interpret. Cuts,
//! barcodes, QR codes, images and feeds are items of their own.

use super::printed_columns;

/// Horizontal alignment of a line (`ESC a n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Align {
    #[default]
    Left,
    Center,
    Right,
}

/// How one character is printed. Sizes are magnifications 1..=8 (`GS !`); `underline` is the
/// line thickness in dots (0 = off, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Style {
    pub width: u8,
    pub height: u8,
    pub bold: bool,
    pub underline: u8,
    /// White on black (`GS B`).
    pub reverse: bool,
    /// The text came from a two- or four-byte GB18030 sequence in Chinese mode (`FS &`): each
    /// character is a full-width glyph, two columns wide, sized by `FS !` / `FS W` / `GS !`.
    pub chinese: bool,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            width: 1,
            height: 1,
            bold: false,
            underline: 0,
            reverse: false,
            chinese: false,
        }
    }
}

/// Text printed in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub text: String,
    pub style: Style,
}

impl Run {
    /// Paper columns (Font A cells) the run occupies.
    pub fn columns(&self) -> usize {
        self.text
            .chars()
            .map(|c| printed_columns(c, self.style.chinese))
            .sum::<usize>()
            * usize::from(self.style.width.max(1))
    }
}

/// The character set that failed to decode some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// An `ESC t` code page (Epson number).
    CodePage(u8),
    /// Chinese mode: a broken or unmapped GB18030 sequence.
    Gb18030,
}

/// A command or control byte that was framed but not interpreted. It is kept, never dropped,
/// so a snapshot shows it: `ESC 3 n` (line spacing) becomes `[ESC 3 1b 33 18]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// The first bytes of the command (at most [`Unknown::HEAD`]).
    pub bytes: Vec<u8>,
    /// The whole length of the command, payload included.
    pub len: u64,
    /// False when the stream ended inside the command.
    pub complete: bool,
}

impl Unknown {
    /// How many leading bytes of a long command are kept.
    pub const HEAD: usize = 32;
}

/// One piece of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    Text(Run),
    /// Bytes the active character set has no glyph for; each prints one cell.
    Undecodable {
        charset: Charset,
        bytes: Vec<u8>,
        style: Style,
    },
    Command(Unknown),
}

/// What the printer prints between two line feeds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Line {
    /// The alignment in force when the line's first span arrived (Epson applies `ESC a` only
    /// at the beginning of a line).
    pub align: Align,
    pub spans: Vec<Span>,
}

impl Line {
    /// The printed text without styles or markers (for `contains` checks).
    pub fn text(&self) -> String {
        self.runs().map(|r| r.text.as_str()).collect()
    }

    /// The text runs of the line.
    pub fn runs(&self) -> impl Iterator<Item = &Run> {
        self.spans.iter().filter_map(|s| match s {
            Span::Text(r) => Some(r),
            _ => None,
        })
    }

    /// Paper columns the line occupies (commands take none; an undecodable byte one cell).
    pub fn columns(&self) -> usize {
        self.spans
            .iter()
            .map(|s| match s {
                Span::Text(r) => r.columns(),
                Span::Undecodable { bytes, style, .. } => {
                    bytes.len() * usize::from(style.width.max(1))
                }
                Span::Command(_) => 0,
            })
            .sum()
    }
}

/// A paper feed without text: `ESC d n` (lines) or `ESC J n` (dots, in vertical motion units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    Lines(u8),
    Dots(u8),
}

/// A paper cut (`GS V`, or the obsolete `ESC i` / `ESC m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// One point left uncut.
    pub partial: bool,
    /// `GS V m n` forms: feed to the cutter plus `n` motion units first. `None` for the
    /// forms that cut where the paper is (`GS V 0/1/48/49`, `ESC i`, `ESC m`).
    pub feed: Option<u8>,
}

/// Barcode symbologies of `GS k` (function A `m = 0..=6`, function B `m = 65..=79`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbology {
    UpcA,
    UpcE,
    Ean13,
    Ean8,
    Code39,
    Itf,
    Codabar,
    Code93,
    Code128,
    Gs1_128,
    Gs1DataBarOmni,
    Gs1DataBarTruncated,
    Gs1DataBarLimited,
    Gs1DataBarExpanded,
    Code128Auto,
}

impl Symbology {
    /// From the `m` of `GS k m` (either function).
    pub fn from_m(m: u8) -> Option<Self> {
        use Symbology::*;
        Some(match m {
            0 | 65 => UpcA,
            1 | 66 => UpcE,
            2 | 67 => Ean13,
            3 | 68 => Ean8,
            4 | 69 => Code39,
            5 | 70 => Itf,
            6 | 71 => Codabar,
            72 => Code93,
            73 => Code128,
            74 => Gs1_128,
            75 => Gs1DataBarOmni,
            76 => Gs1DataBarTruncated,
            77 => Gs1DataBarLimited,
            78 => Gs1DataBarExpanded,
            79 => Code128Auto,
            _ => return None,
        })
    }

    /// The `m` of function B (`GS k m n d…`).
    pub fn function_b(self) -> u8 {
        use Symbology::*;
        match self {
            UpcA => 65,
            UpcE => 66,
            Ean13 => 67,
            Ean8 => 68,
            Code39 => 69,
            Itf => 70,
            Codabar => 71,
            Code93 => 72,
            Code128 => 73,
            Gs1_128 => 74,
            Gs1DataBarOmni => 75,
            Gs1DataBarTruncated => 76,
            Gs1DataBarLimited => 77,
            Gs1DataBarExpanded => 78,
            Code128Auto => 79,
        }
    }

    /// The name used in renderings (`CODE128`).
    pub fn name(self) -> &'static str {
        use Symbology::*;
        match self {
            UpcA => "UPC-A",
            UpcE => "UPC-E",
            Ean13 => "EAN13",
            Ean8 => "EAN8",
            Code39 => "CODE39",
            Itf => "ITF",
            Codabar => "CODABAR",
            Code93 => "CODE93",
            Code128 => "CODE128",
            Gs1_128 => "GS1-128",
            Gs1DataBarOmni => "GS1-DATABAR",
            Gs1DataBarTruncated => "GS1-DATABAR-TRUNCATED",
            Gs1DataBarLimited => "GS1-DATABAR-LIMITED",
            Gs1DataBarExpanded => "GS1-DATABAR-EXPANDED",
            Code128Auto => "CODE128-AUTO",
        }
    }
}

/// Where the human-readable text of a barcode goes (`GS H n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HriPosition {
    #[default]
    None,
    Above,
    Below,
    Both,
}

/// A printed barcode with the settings in force (`GS h`, `GS w`, `GS H`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Barcode {
    pub symbology: Symbology,
    /// The data bytes as sent (CODE128 data keeps its `{A`/`{B`/`{C` code set selectors).
    pub data: Vec<u8>,
    pub align: Align,
    /// Height in dots (`GS h`).
    pub height: u8,
    /// Module width (`GS w`).
    pub module_width: u8,
    pub hri: HriPosition,
}

/// QR error correction level (`GS ( k … 31 45 n`, n = 48..=51).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QrLevel {
    #[default]
    L,
    M,
    Q,
    H,
}

/// A printed QR code: the data stored with function 180 and printed with function 181.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    pub data: Vec<u8>,
    /// 1, 2, or 3 for Micro QR (`GS ( k … 31 41 n1 n2`, n1 = 49..=51).
    pub model: u8,
    /// Module size in dots, 1..=16.
    pub module_size: u8,
    pub level: QrLevel,
    pub align: Align,
}

/// Which command carried an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `GS v 0`: raster bit image.
    Raster,
    /// `ESC *`: a band of a column-format bit image.
    BitImage,
}

/// An image: its size and a digest of its bits instead of the bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
    /// Payload bytes (the stream may have ended earlier: see `complete`).
    pub len: u64,
    /// SHA-256 of the payload bytes received.
    pub sha256: [u8; 32],
    pub complete: bool,
    pub align: Align,
}

/// One thing on the paper, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Line(Line),
    Feed(Feed),
    Cut(Cut),
    Barcode(Barcode),
    Qr(Qr),
    Image(Image),
    /// `ESC @`: the printer was initialised (modes back to defaults). Not rendered.
    Init,
}

/// The decoded print stream.
///
/// ```
/// use protocol::escpos::{Parser, ReceiptBuilder, Align};
/// let bytes = ReceiptBuilder::new(32).init().align(Align::Center).size(2, 2)
///     .line_zh("退货").size(1, 1).line_lr("AMOUNT", "33.33").cut().build();
/// let receipt = Parser::parse(&bytes);
/// assert!(receipt.contains("33.33"));
/// assert_eq!(receipt.lines().next().unwrap().text(), "退货");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Receipt {
    pub items: Vec<Item>,
}

impl Receipt {
    /// The text lines in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.items.iter().filter_map(|i| match i {
            Item::Line(l) => Some(l),
            _ => None,
        })
    }

    /// All printed text, one line per [`Line`], without styles or markers.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, l) in self.lines().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&l.text());
        }
        out
    }

    /// Whether one printed line contains `needle` (style changes inside it do not matter).
    pub fn contains(&self, needle: &str) -> bool {
        self.lines().any(|l| l.text().contains(needle))
    }

    /// Number of cuts: a merchant and a customer copy make two.
    pub fn cuts(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Cut(_)))
            .count()
    }
}
