//! A dialect as data: how each field, the MTI, the bitmap, the header and the TCP length prefix
//! are laid out on the wire. Loaded from YAML (the built-in files are embedded; users may load
//! their own at run time); every error names `file:line:column`.
//!
//! ```
//! use protocol::iso8583::{Dialect, DialectFamily};
//! let cup = Dialect::builtin("cup").unwrap();
//! assert_eq!(cup.family, DialectFamily::Cup);
//! assert_eq!(cup.field(2).unwrap().max, 19);
//! ```

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::framing::{LengthPrefixed, PrefixKind};

/// The built-in dialect files, embedded so the binary works from any directory.
pub const CUP_YAML: &str = include_str!("../../../fixtures/dialects/cup.yaml");
pub const ISO87_ASCII_YAML: &str = include_str!("../../../fixtures/dialects/iso87-ascii.yaml");

/// Which family of transaction rules applies. The *layout* of fields is data (this file); what
/// each transaction carries (MTI, processing code, 25, 60.1, which fields) is code per family
/// in [`super::builder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialectFamily {
    /// China UnionPay POS terminal ⇄ POS centre.
    Cup,
    /// Generic ISO 8583:1987.
    Iso87,
}

/// What characters a field may hold (its canonical form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Charset {
    /// Digits `0-9`.
    N,
    /// Track data: digits and `=` (the separator; nibble `D` in BCD).
    Z,
    /// Letters, digits and space.
    An,
    /// Any byte from 0x20 up except DEL, so GB18030 text passes through.
    Ans,
    /// Raw bytes.
    B,
}

impl Charset {
    #[inline]
    pub fn allows(self, b: u8) -> bool {
        match self {
            Charset::N => b.is_ascii_digit(),
            Charset::Z => b.is_ascii_digit() || b == b'=',
            Charset::An => b.is_ascii_alphanumeric() || b == b' ',
            Charset::Ans => b >= 0x20 && b != 0x7F,
            Charset::B => true,
        }
    }
}

/// How the value's bytes go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataEncoding {
    /// Packed BCD, an odd digit count padded with a trailing `0` nibble (左靠). Decoding also
    /// accepts an `F` pad.
    BcdLeft,
    /// Packed BCD, an odd digit count padded with a leading `0` nibble (右靠).
    BcdRight,
    /// One byte per character.
    Ascii,
    /// Raw bytes.
    Binary,
    /// Packed BCD, left-aligned, with `=` sent as the nibble `D`.
    Track2,
}

impl DataEncoding {
    pub fn is_packed(self) -> bool {
        matches!(
            self,
            DataEncoding::BcdLeft | DataEncoding::BcdRight | DataEncoding::Track2
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthType {
    Fixed,
    /// Two-digit length prefix (max 99).
    Llvar,
    /// Three-digit length prefix (max 999).
    Lllvar,
}

/// How a LLVAR/LLLVAR prefix is written: BCD (`LL` one byte, `LLL` two bytes `0L LL`), ASCII
/// digits, or a binary count (one byte for `LL`, two big-endian for `LLL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthEncoding {
    Bcd,
    Ascii,
    Binary,
}

/// What a length prefix counts: digits (nibbles) or bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    Digits,
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MtiEncoding {
    /// Two bytes of packed BCD (`02 00`).
    Bcd,
    /// Four ASCII digits (`"0200"`).
    Ascii,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BitmapEncoding {
    /// 8 bytes per bitmap.
    Binary,
    /// 16 hex characters per bitmap (jPOS `IFA_BITMAP`).
    Hex,
}

/// How a transcript shows a field that carries card secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mask {
    #[default]
    None,
    /// First 6 / last 4 digits.
    Pan,
    /// The PAN part masked, everything after the separator hidden.
    Track,
    /// Never shown: only the length.
    Secret,
}

/// A positional subfield: `len` characters of the canonical value, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubfieldSpec {
    pub id: u8,
    pub name: String,
    pub len: u16,
}

/// One data element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub number: u8,
    pub name: String,
    pub charset: Charset,
    pub data: DataEncoding,
    pub length: LengthType,
    pub length_encoding: LengthEncoding,
    pub unit: LengthUnit,
    /// Maximum (or, for fixed fields, exact) length of the canonical value: digits for n/z,
    /// characters for an/ans, bytes for b.
    pub max: u16,
    pub mask: Mask,
    pub subfields: Vec<SubfieldSpec>,
}

impl FieldSpec {
    /// Bytes on the wire for `len` canonical characters (prefix not included).
    #[inline]
    pub fn wire_len(&self, len: usize) -> usize {
        if self.data.is_packed() {
            len.div_ceil(2)
        } else {
            len
        }
    }
    /// Bytes taken by the length prefix.
    #[inline]
    pub fn prefix_len(&self) -> usize {
        match (self.length, self.length_encoding) {
            (LengthType::Fixed, _) => 0,
            (LengthType::Llvar, LengthEncoding::Ascii) => 2,
            (LengthType::Llvar, _) => 1,
            (LengthType::Lllvar, LengthEncoding::Ascii) => 3,
            (LengthType::Lllvar, _) => 2,
        }
    }
    /// Largest value a length prefix may carry.
    pub fn prefix_max(&self) -> usize {
        match self.length {
            LengthType::Fixed => usize::MAX,
            LengthType::Llvar => 99,
            LengthType::Lllvar => 999,
        }
    }
}

/// Bytes between the length prefix and the MTI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSpec {
    pub length: usize,
    /// The first 5 bytes are a TPDU (`60 dddd ssss`) whose addresses swap on a reply.
    pub tpdu: bool,
    /// Used when a message carries no header of its own.
    pub default: Vec<u8>,
}

/// A whole dialect. Field slots are indexed by field number (0 and 1 stay empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    pub name: String,
    pub family: DialectFamily,
    pub description: String,
    pub header: Option<HeaderSpec>,
    pub mti: MtiEncoding,
    pub bitmap: BitmapEncoding,
    pub secondary_bitmap: bool,
    pub length_prefix: LengthPrefixed,
    /// The field carrying the acquirer's fee, net and returned fee (R-FEE).
    pub fee_field: u8,
    fields: Box<[Option<FieldSpec>; 129]>,
}

/// A dialect file that failed to load; `line`/`column` are 1-based (0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct DialectError {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl Dialect {
    /// `cup` or `iso87-ascii`. Parsed once per process: the built-in files never change, and
    /// a suite of thousands of scenarios asks for them thousands of times.
    pub fn builtin(name: &str) -> Result<Dialect, DialectError> {
        static CUP: std::sync::OnceLock<Result<Dialect, DialectError>> = std::sync::OnceLock::new();
        static ISO87: std::sync::OnceLock<Result<Dialect, DialectError>> =
            std::sync::OnceLock::new();
        let cell = match name {
            "cup" => &CUP,
            "iso87-ascii" => &ISO87,
            _ => return Self::parse_builtin(name),
        };
        cell.get_or_init(|| Self::parse_builtin(name)).clone()
    }

    fn parse_builtin(name: &str) -> Result<Dialect, DialectError> {
        let (src, file) = match name {
            "cup" => (CUP_YAML, "fixtures/dialects/cup.yaml"),
            "iso87-ascii" => (ISO87_ASCII_YAML, "fixtures/dialects/iso87-ascii.yaml"),
            other => {
                return Err(DialectError {
                    file: other.to_string(),
                    line: 0,
                    column: 0,
                    message: format!("no built-in dialect `{other}`; try `cup` or `iso87-ascii`"),
                });
            }
        };
        Dialect::from_yaml_str(src, file)
    }

    /// The names [`Dialect::builtin`] accepts.
    pub fn builtin_names() -> &'static [&'static str] {
        &["cup", "iso87-ascii"]
    }

    /// Reads a user's dialect file.
    pub fn from_path(path: &Path) -> Result<Dialect, DialectError> {
        let file = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| DialectError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })?;
        if meta.len() > MAX_FILE_BYTES as u64 {
            return Err(DialectError {
                file,
                line: 0,
                column: 0,
                message: format!(
                    "file is {} bytes; the limit is {MAX_FILE_BYTES}",
                    meta.len()
                ),
            });
        }
        let src = std::fs::read_to_string(path).map_err(|e| DialectError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: e.to_string(),
        })?;
        Dialect::from_yaml_str(&src, &file)
    }

    /// Parses and validates a dialect; `file_name` only labels errors.
    pub fn from_yaml_str(src: &str, file_name: &str) -> Result<Dialect, DialectError> {
        let err = |line: u64, column: u64, message: String| DialectError {
            file: file_name.to_string(),
            line,
            column,
            message,
        };
        if src.len() > MAX_FILE_BYTES {
            return Err(err(
                0,
                0,
                format!(
                    "input is {} bytes; the limit is {MAX_FILE_BYTES}",
                    src.len()
                ),
            ));
        }
        // Dialect files may come from users: bound the parser's work.
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_events: 200_000,
                max_aliases: 1_000,
                max_anchors: 1_000,
                max_depth: 32,
            },
        };
        let raw: RawDialect = serde_saphyr::from_str_with_options(src, options).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let opts = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
            let mut message = e.render_with_options(opts);
            if let Some(i) = message.rfind(" at line ") {
                message.truncate(i);
            }
            err(line, column, message)
        })?;
        raw.validate(file_name)
    }

    /// The layout of field `n` (2–128), if this dialect defines it.
    #[inline]
    pub fn field(&self, n: u8) -> Option<&FieldSpec> {
        self.fields.get(n as usize).and_then(Option::as_ref)
    }

    /// All defined fields in number order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().flatten()
    }

    /// Length of the header (TPDU + application header), 0 when there is none.
    pub fn header_len(&self) -> usize {
        self.header.as_ref().map_or(0, |h| h.length)
    }
}

const MAX_FILE_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDialect {
    name: String,
    family: DialectFamily,
    #[serde(default)]
    description: String,
    #[serde(default)]
    header: Option<Spanned<RawHeader>>,
    mti: MtiEncoding,
    bitmap: BitmapEncoding,
    #[serde(default)]
    secondary_bitmap: bool,
    length_prefix: RawPrefix,
    #[serde(default)]
    max_frame: Option<Spanned<usize>>,
    length_encoding: LengthEncoding,
    fee_field: Spanned<u8>,
    fields: Vec<Spanned<RawField>>,
}

const DEFAULT_MAX_FRAME: usize = 8192;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    length: usize,
    #[serde(default)]
    tpdu: bool,
    /// Hex.
    default: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefix {
    kind: PrefixKind,
    #[serde(default)]
    includes_self: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    no: Spanned<u8>,
    name: String,
    #[serde(rename = "type")]
    charset: Charset,
    max: Spanned<u16>,
    #[serde(default = "default_length")]
    length: LengthType,
    data: DataEncoding,
    #[serde(default)]
    length_encoding: Option<LengthEncoding>,
    #[serde(default)]
    unit: Option<LengthUnit>,
    #[serde(default)]
    mask: Mask,
    #[serde(default)]
    subfields: Vec<Spanned<RawSubfield>>,
}

fn default_length() -> LengthType {
    LengthType::Fixed
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubfield {
    id: u8,
    name: String,
    len: u16,
}

impl RawDialect {
    fn validate(self, file: &str) -> Result<Dialect, DialectError> {
        let at = |loc: serde_saphyr::Location, message: String| DialectError {
            file: file.to_string(),
            line: loc.line(),
            column: loc.column(),
            message,
        };
        let header = match self.header {
            None => None,
            Some(h) => {
                let loc = h.referenced;
                let h = h.value;
                let default = hex_decode(&h.default).ok_or_else(|| {
                    at(
                        loc,
                        "header.default must be an even number of hex digits".into(),
                    )
                })?;
                if default.len() != h.length {
                    return Err(at(
                        loc,
                        format!(
                            "header.default has {} bytes but header.length is {}",
                            default.len(),
                            h.length
                        ),
                    ));
                }
                if h.tpdu && h.length < 5 {
                    return Err(at(loc, "a TPDU needs a header of at least 5 bytes".into()));
                }
                if h.length == 0 {
                    None
                } else {
                    Some(HeaderSpec {
                        length: h.length,
                        tpdu: h.tpdu,
                        default,
                    })
                }
            }
        };
        let max_frame = match self.max_frame {
            None => DEFAULT_MAX_FRAME,
            Some(m) if (1..=65_535).contains(&m.value) => m.value,
            Some(m) => {
                return Err(at(
                    m.referenced,
                    format!("max_frame {} is out of range 1..=65535", m.value),
                ));
            }
        };
        let mut fields: Box<[Option<FieldSpec>; 129]> = Box::new(std::array::from_fn(|_| None));
        for f in self.fields {
            let loc = f.referenced;
            let f = f.value;
            let n = f.no.value;
            if !(2..=128).contains(&n) {
                return Err(at(
                    f.no.referenced,
                    format!("field number {n} is not in 2..=128"),
                ));
            }
            if n > 64 && !self.secondary_bitmap {
                return Err(at(
                    f.no.referenced,
                    format!("field {n} needs a secondary bitmap, but secondary_bitmap is false"),
                ));
            }
            if n == 65 {
                return Err(at(
                    f.no.referenced,
                    "field 65 is the tertiary-bitmap flag and cannot be defined".into(),
                ));
            }
            let unit = f.unit.unwrap_or(if f.data.is_packed() {
                LengthUnit::Digits
            } else {
                LengthUnit::Bytes
            });
            let spec = FieldSpec {
                number: n,
                name: f.name,
                charset: f.charset,
                data: f.data,
                length: f.length,
                length_encoding: f.length_encoding.unwrap_or(self.length_encoding),
                unit,
                max: f.max.value,
                mask: f.mask,
                subfields: Vec::new(),
            };
            let ok = match spec.data {
                DataEncoding::BcdLeft | DataEncoding::BcdRight => spec.charset == Charset::N,
                DataEncoding::Track2 => spec.charset == Charset::Z,
                DataEncoding::Binary => spec.charset == Charset::B,
                DataEncoding::Ascii => spec.charset != Charset::B,
            };
            if !ok {
                return Err(at(
                    loc,
                    format!(
                        "field {n}: type {:?} cannot be carried as {:?} data",
                        spec.charset, spec.data
                    ),
                ));
            }
            if spec.max == 0 {
                return Err(at(
                    f.max.referenced,
                    format!("field {n}: max must be at least 1"),
                ));
            }
            if spec.data == DataEncoding::Binary && unit == LengthUnit::Digits {
                return Err(at(
                    loc,
                    format!("field {n}: binary data cannot count digits"),
                ));
            }
            let prefix_value_max = match unit {
                LengthUnit::Digits => spec.max as usize,
                LengthUnit::Bytes => spec.wire_len(spec.max as usize),
            };
            if prefix_value_max > spec.prefix_max() {
                return Err(at(
                    f.max.referenced,
                    format!(
                        "field {n}: max {} does not fit a {:?} length prefix",
                        spec.max, spec.length
                    ),
                ));
            }
            if spec.length == LengthType::Fixed
                && spec.data.is_packed()
                && unit == LengthUnit::Bytes
                && spec.max % 2 == 1
            {
                return Err(at(
                    f.max.referenced,
                    format!("field {n}: a BCD field counted in bytes needs an even max"),
                ));
            }
            let mut subfields = Vec::with_capacity(f.subfields.len());
            let mut total = 0usize;
            for s in f.subfields {
                let sloc = s.referenced;
                let s = s.value;
                if s.len == 0 {
                    return Err(at(
                        sloc,
                        format!("subfield {n}.{}: len must be at least 1", s.id),
                    ));
                }
                total += s.len as usize;
                if total > spec.max as usize {
                    return Err(at(
                        sloc,
                        format!(
                            "subfield {n}.{} ends at {total}, past the field's max {}",
                            s.id, spec.max
                        ),
                    ));
                }
                subfields.push(SubfieldSpec {
                    id: s.id,
                    name: s.name,
                    len: s.len,
                });
            }
            let spec = FieldSpec { subfields, ..spec };
            let slot = &mut fields[n as usize];
            if slot.is_some() {
                return Err(at(f.no.referenced, format!("field {n} is defined twice")));
            }
            *slot = Some(spec);
        }
        let fee = self.fee_field.value;
        match fields.get(fee as usize).and_then(Option::as_ref) {
            Some(spec) if spec.charset == Charset::N || spec.charset == Charset::Ans => {}
            Some(_) => {
                return Err(at(
                    self.fee_field.referenced,
                    format!("fee_field {fee} must be a numeric or ans field"),
                ));
            }
            None => {
                return Err(at(
                    self.fee_field.referenced,
                    format!("fee_field {fee} is not defined under fields"),
                ));
            }
        }
        Ok(Dialect {
            name: self.name,
            family: self.family,
            description: self.description,
            header,
            mti: self.mti,
            bitmap: self.bitmap,
            secondary_bitmap: self.secondary_bitmap,
            length_prefix: LengthPrefixed {
                kind: self.length_prefix.kind,
                includes_self: self.length_prefix.includes_self,
                max_frame,
            },
            fee_field: fee,
            fields,
        })
    }
}

pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load() {
        for name in Dialect::builtin_names() {
            let d = Dialect::builtin(name).unwrap();
            assert_eq!(&d.name, name);
        }
        let cup = Dialect::builtin("cup").unwrap();
        assert_eq!(cup.header_len(), 11);
        assert_eq!(cup.mti, MtiEncoding::Bcd);
        assert!(!cup.secondary_bitmap);
        assert_eq!(cup.field(22).unwrap().data, DataEncoding::BcdLeft);
        assert_eq!(cup.field(23).unwrap().data, DataEncoding::BcdRight);
        assert_eq!(cup.field(35).unwrap().data, DataEncoding::Track2);
        assert_eq!(cup.field(49).unwrap().data, DataEncoding::Ascii);
        assert_eq!(cup.field(60).unwrap().length, LengthType::Lllvar);
        assert_eq!(cup.field(60).unwrap().subfields.len(), 7);
        let iso = Dialect::builtin("iso87-ascii").unwrap();
        assert_eq!(iso.family, DialectFamily::Iso87);
        assert!(iso.header.is_none());
        assert!(iso.secondary_bitmap);
        assert_eq!(iso.field(90).unwrap().max, 42);
        assert_eq!(iso.field(2).unwrap().length_encoding, LengthEncoding::Ascii);
        assert!(Dialect::builtin("nope").is_err());
    }

    #[test]
    fn errors_carry_line_and_column() {
        let bad = CUP_YAML.replacen("data: track2", "data: track3", 1);
        let e = Dialect::from_yaml_str(&bad, "my.yaml").unwrap_err();
        assert_eq!(e.file, "my.yaml");
        let line = CUP_YAML
            .lines()
            .position(|l| l.contains("data: track2"))
            .unwrap() as u64
            + 1;
        assert_eq!(e.line, line, "{e}");
        assert!(e.column > 0);
        assert!(e.message.contains("track3"), "{e}");
        assert!(
            e.to_string().starts_with(&format!("my.yaml:{line}:")),
            "{e}"
        );
    }

    #[test]
    fn semantic_errors_carry_line_and_column() {
        let src = "name: t\nfamily: iso87\nmti: ascii\nbitmap: binary\nlength_prefix: {kind: binary2}\n\
                   length_encoding: ascii\nfee_field: 63\nfields:\n  - {no: 63, name: a, type: ans, max: 99, length: llvar, data: ascii}\n  - {no: 63, name: b, type: n, max: 3, data: ascii}\n";
        let e = Dialect::from_yaml_str(src, "t.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (10, 10), "{e}");
        assert!(e.message.contains("twice"), "{e}");

        let src2 = src.replace("no: 63, name: b", "no: 70, name: b");
        let e = Dialect::from_yaml_str(&src2, "t.yaml").unwrap_err();
        assert_eq!(e.line, 10, "{e}");
        assert!(e.message.contains("secondary"), "{e}");

        let src3 = src.replace("max: 99, length: llvar", "max: 100, length: llvar");
        let e = Dialect::from_yaml_str(&src3, "t.yaml").unwrap_err();
        assert_eq!(e.line, 9, "{e}");

        let src5 = src.replace("fee_field: 63", "fee_field: 63\nmax_frame: 0");
        let e = Dialect::from_yaml_str(&src5, "t.yaml").unwrap_err();
        assert_eq!((e.line, e.column), (8, 12), "{e}");

        let src4 = src.replace(
            "type: n, max: 3, data: ascii",
            "type: an, max: 3, data: bcd_left",
        );
        let src4 = src4.replace("no: 63, name: b", "no: 3, name: b");
        let e = Dialect::from_yaml_str(&src4, "t.yaml").unwrap_err();
        assert_eq!(e.line, 10, "{e}");
    }

    #[test]
    fn hostile_yaml_is_bounded() {
        // Well-typed, but with more aliases than the budget allows: refused by the budget.
        let mut s = String::from(
            "name: &n t\nfamily: iso87\nmti: ascii\nbitmap: binary\nlength_prefix: {kind: binary2}\n\
             length_encoding: ascii\nfee_field: 63\nfields:\n",
        );
        for _ in 0..1_001 {
            s.push_str("  - {no: 63, name: *n, type: ans, max: 9, length: llvar, data: ascii}\n");
        }
        let e = Dialect::from_yaml_str(&s, "aliases.yaml").unwrap_err();
        assert!(e.message.to_lowercase().contains("alias"), "{e}");
        assert!(!e.message.contains("twice"), "{e}");
        // Oversized input is refused before parsing.
        let big = "#".repeat(MAX_FILE_BYTES + 1);
        assert!(
            Dialect::from_yaml_str(&big, "big.yaml")
                .unwrap_err()
                .message
                .contains("limit")
        );
    }
}
