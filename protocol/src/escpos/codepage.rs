//! Single-byte code pages selected with `ESC t n` (Epson numbering).
//!
//! Bytes 0x20–0x7E are ASCII in every page. The upper half comes from a compact table for the
//! DOS pages encoding_rs lacks (PC437, PC850, PC858: tables generated from Python's `codecs`
//! `cp437` / `cp850` / `cp858`), the JIS X 0201 half-width Katakana block for page 1, and
//! encoding_rs for the Windows and ISO pages it implements. Page numbers 0–19 were checked
//! against the esc_pos_dart `CharCodeTableEscPos` table; 39–52 are from Epson's ESC t list
//! (UNVERIFIED against a primary source).

use encoding_rs::Encoding;

/// The upper half (0x80–0xFF) of a code page: `None` where the page has no printable glyph
/// we can name (the parser then keeps the byte as a hex marker).
pub type UpperHalf = [Option<char>; 128];

/// PC437, 0x80..=0xFF (Python `bytes(range(128, 256)).decode("cp437")`).
const CP437: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
/// PC850, 0x80..=0xFF (Python `cp850`); PC858 differs only at 0xD5 (`€` instead of `ı`).
const CP850: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐└┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈıÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u{ad}±‗¾¶§÷¸°¨·¹³²■\u{a0}";

/// Epson's name of a code page, for markers and docs.
pub fn name(page: u8) -> Option<&'static str> {
    Some(match page {
        0 => "PC437",
        1 => "Katakana",
        2 => "PC850",
        15 => "ISO8859-7",
        16 => "WPC1252",
        17 => "PC866",
        19 => "PC858",
        39 => "ISO8859-2",
        40 => "ISO8859-15",
        45 => "WPC1250",
        46 => "WPC1251",
        47 => "WPC1253",
        48 => "WPC1254",
        49 => "WPC1255",
        50 => "WPC1256",
        51 => "WPC1257",
        52 => "WPC1258",
        _ => return None,
    })
}

fn encoding(page: u8) -> Option<&'static Encoding> {
    Some(match page {
        15 => encoding_rs::ISO_8859_7,
        16 => encoding_rs::WINDOWS_1252,
        17 => encoding_rs::IBM866,
        39 => encoding_rs::ISO_8859_2,
        40 => encoding_rs::ISO_8859_15,
        45 => encoding_rs::WINDOWS_1250,
        46 => encoding_rs::WINDOWS_1251,
        47 => encoding_rs::WINDOWS_1253,
        48 => encoding_rs::WINDOWS_1254,
        49 => encoding_rs::WINDOWS_1255,
        50 => encoding_rs::WINDOWS_1256,
        51 => encoding_rs::WINDOWS_1257,
        52 => encoding_rs::WINDOWS_1258,
        _ => return None,
    })
}

fn from_str_table(s: &str) -> UpperHalf {
    let mut t = [None; 128];
    for (slot, c) in t.iter_mut().zip(s.chars()) {
        *slot = Some(c);
    }
    t
}

/// The upper half of page `page`, or `None` for a page we do not know.
pub fn upper_half(page: u8) -> Option<UpperHalf> {
    let mut t = match page {
        0 => from_str_table(CP437),
        2 => from_str_table(CP850),
        19 => {
            let mut t = from_str_table(CP850);
            t[0xD5 - 0x80] = Some('€');
            t
        }
        1 => {
            // JIS X 0201: 0xA1..=0xDF are the half-width Katakana U+FF61..=U+FF9F. Epson's
            // graphics in 0x80..=0x9F and 0xE0..=0xFF are not named here.
            let mut t = [None; 128];
            for b in 0xA1u32..=0xDF {
                t[(b - 0x80) as usize] = char::from_u32(0xFF61 + (b - 0xA1));
            }
            t
        }
        _ => {
            let enc = encoding(page)?;
            let mut t = [None; 128];
            for (i, slot) in t.iter_mut().enumerate() {
                let byte = [0x80 + i as u8];
                if let Some(s) = enc.decode_without_bom_handling_and_without_replacement(&byte) {
                    let mut cs = s.chars();
                    if let (Some(c), None) = (cs.next(), cs.next()) {
                        *slot = Some(c);
                    }
                }
            }
            t
        }
    };
    // A control character would put a control byte in a snapshot: keep such bytes as hex.
    for slot in t.iter_mut() {
        if slot.is_some_and(char::is_control) {
            *slot = None;
        }
    }
    Some(t)
}

/// The byte for `c` in page `page` (ASCII printable maps to itself), if the page has it.
pub fn encode_char(page: u8, c: char) -> Option<u8> {
    if (' '..='~').contains(&c) {
        return Some(c as u8);
    }
    let t = upper_half(page)?;
    t.iter().position(|&x| x == Some(c)).map(|i| 0x80 + i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp437_samples() {
        // IBM PC code page 437: 0x82 é, 0x9C £, 0xC4 ─, 0xE1 ß (Python codecs cp437).
        let t = upper_half(0).unwrap();
        assert_eq!(t[0x82 - 0x80], Some('é'));
        assert_eq!(t[0x9C - 0x80], Some('£'));
        assert_eq!(t[0xC4 - 0x80], Some('─'));
        assert_eq!(t[0xE1 - 0x80], Some('ß'));
        assert_eq!(encode_char(0, 'é'), Some(0x82));
        assert_eq!(encode_char(0, '€'), None);
    }

    #[test]
    fn wpc1252_and_pc858_euro() {
        // Windows-1252 0x80 is €; PC858 put € at 0xD5.
        assert_eq!(upper_half(16).unwrap()[0], Some('€'));
        assert_eq!(encode_char(16, '€'), Some(0x80));
        assert_eq!(encode_char(19, '€'), Some(0xD5));
        // 0x81 is unassigned in 1252 (WHATWG decodes it to the control U+0081): no glyph.
        assert_eq!(upper_half(16).unwrap()[1], None);
    }

    #[test]
    fn katakana_half_width() {
        // JIS X 0201 0xB1 is ｱ (U+FF71).
        assert_eq!(upper_half(1).unwrap()[0xB1 - 0x80], Some('ｱ'));
        assert_eq!(upper_half(1).unwrap()[0x80 - 0x80], None);
    }

    #[test]
    fn unknown_page() {
        assert!(upper_half(99).is_none());
        assert_eq!(encode_char(99, 'A'), Some(b'A'));
        assert_eq!(encode_char(99, 'é'), None);
    }
}
