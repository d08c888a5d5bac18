//! Rendering what crossed a channel as transcript text, normalised (see `transcript`).
//!
//! - ZVT APDUs: name, positional parts, then every BMP as `TAG=value`, TLV containers by tag.
//!   Card numbers are masked at capture (first 6 / last 4) even when an ECR keyed one in
//!   full; track data never appears.
//! - ISO 8583: the acquirer's decoded, masked fields, with identifiers renumbered.
//! - Receipts: ESC/POS rendered as text at the paper width.

use protocol::card::pan::mask_digits;
use protocol::tlv::{self, Tag};
use protocol::zvt::bmp::{self, CardNumber};

use crate::transcript::Normaliser;

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn bcd_digits(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn ascii(b: &[u8]) -> String {
    let s: String = b
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| {
            if (0x20..0x7F).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{:?}", s.trim_end())
}

/// The name of a ZVT command.
pub fn zvt_name(class: u8, instr: u8) -> &'static str {
    match (class, instr) {
        (0x06, 0x00) => "registration",
        (0x06, 0x01) => "authorization",
        (0x06, 0x02) => "log-off",
        (0x06, 0x0F) => "completion",
        (0x06, 0x1E) => "abort",
        (0x06, 0x20) => "repeat-receipt",
        (0x06, 0x30) => "reversal",
        (0x06, 0x31) => "refund",
        (0x06, 0x50) => "end-of-day",
        (0x06, 0x70) => "diagnosis",
        (0x06, 0x93) => "initialisation",
        (0x06, 0xB0) => "abort-from-ecr",
        (0x06, 0xD1) => "print-line",
        (0x06, 0xD3) => "print-text-block",
        (0x04, 0x0F) => "status-information",
        (0x04, 0xFF) => "intermediate-status",
        (0x04, 0x01) => "set-date-time",
        (0x05, 0x01) => "status-enquiry",
        (0x80, 0x00) => "ack",
        (0x84, _) => "nack",
        _ => "command",
    }
}

/// Renders one APDU. `answering` says which command a 06 0F answers (05 01 changes its layout).
pub fn zvt(apdu: &[u8], answering_enquiry: bool, n: &mut Normaliser) -> String {
    let Ok(a) = protocol::zvt::Apdu::decode_exact(apdu) else {
        return format!("undecodable {}", hex(apdu));
    };
    let (class, instr, data) = (a.class, a.instr, a.data);
    let name = zvt_name(class, instr);
    let mut out = format!("{class:02X} {instr:02X} {name}");
    // Positional parts before the BMP list.
    let skip = match (class, instr) {
        (0x84, _) => {
            out.push_str(&format!(" code={instr:02X}"));
            return out;
        }
        (0x80, 0x00) => return out,
        (0x06, 0x00) => {
            if data.len() >= 4 {
                out.push_str(&format!(" pw=*** config={:02X}", data[3]));
            }
            if data.len() >= 6 {
                out.push_str(&format!(" cc={}", bcd_digits(&data[4..6])));
                6
            } else {
                data.len()
            }
        }
        (0x06, 0x20 | 0x30 | 0x31 | 0x50 | 0x93) | (0x05, 0x01) if data.len() >= 3 => {
            out.push_str(" pw=***");
            3
        }
        (0x06, 0x1E) => {
            if let Some(r) = data.first() {
                out.push_str(&format!(" result={r:02X}"));
            }
            // With 6F (wrong currency) the PT's currency follows, positional (no BMP tag).
            match data.get(1..3) {
                Some(cc) if data.first() == Some(&0x6F) && cc[0] <= 0x09 => {
                    out.push_str(&format!(" cc={}", bcd_digits(cc)));
                    3
                }
                _ => 1.min(data.len()),
            }
        }
        (0x04, 0xFF) => {
            let mut k = 0;
            if let Some(s) = data.first() {
                out.push_str(&format!(" status={s:02X}"));
                k = 1;
            }
            if let Some(t) = data.get(1)
                && *t != 0x06
            {
                out.push_str(&format!(" timeout={t:02X}"));
                k = 2;
            }
            k
        }
        (0x06, 0xD1) => {
            if let Some((attr, text)) = data.split_first() {
                // Receipt text: identifiers, dates and times normalised like a printed receipt.
                let shown = n.receipt_text(&String::from_utf8_lossy(text));
                out.push_str(&format!(
                    " attr={attr:02X} {:?}",
                    shown.trim_end_matches('\n')
                ));
            }
            return out;
        }
        (0x06, 0x0F) if answering_enquiry => {
            out.push_str(&format!(" {}", hex(data)));
            return out;
        }
        _ => 0,
    };
    let rest = data.get(skip..).unwrap_or(&[]);
    let mut it = bmp::fields(rest, skip);
    for f in it.by_ref() {
        match f {
            Ok(f) => out.push_str(&format!(" {}", bmp_value(f.tag, f.value, n))),
            Err(e) => {
                out.push_str(&format!(" [{e}]"));
                break;
            }
        }
    }
    out
}

fn bmp_value(tag: u8, v: &[u8], n: &mut Normaliser) -> String {
    let val = match tag {
        0x0B | 0x37 => n.id("STAN", &bcd_digits(v)),
        0x87 => n.id("RECEIPT", &bcd_digits(v)),
        0x0C if !n.passthrough => "[TIME]".into(),
        0x0D => n.mmdd(&bcd_digits(v)),
        0xAA => n.yymmdd(&bcd_digits(v)),
        0x04 | 0x0E | 0x17 | 0x29 | 0x49 | 0x88 => bcd_digits(v),
        0x22 => match CardNumber::from_bcd(v) {
            Ok(c) => c.masked(),
            Err(_) => "[PAN]".into(),
        },
        0x23 | 0x24 | 0x2D => "[TRACK]".into(),
        0x3A => "[CVV]".into(),
        0x3D => "***".into(),
        0x3B => {
            let a = ascii(v);
            let inner = a.trim_matches('"').to_string();
            n.id("AUTH", &inner)
        }
        0x2A | 0x3C | 0x8B => ascii(v),
        0x06 => format!("{{{}}}", tlv_render(v, n)),
        _ => hex(v),
    };
    format!("{tag:02X}={val}")
}

fn tlv_render(v: &[u8], n: &mut Normaliser) -> String {
    let Ok(items) = tlv::parse_all(v) else {
        return hex(v);
    };
    items
        .iter()
        .map(|t| {
            let val = match t.tag.0 {
                0x1F1F => n.id("RECEIPT", &String::from_utf8_lossy(t.value)),
                0x1F16 | 0x1F17 | 0x07 => ascii(t.value),
                0xDF60 => n.id("STAN", &bcd_digits(t.value)),
                0xDF62 => n.id("RRN", &String::from_utf8_lossy(t.value)),
                0xDF63 => n.mmdd(&bcd_digits(t.value)),
                0xDF64 => n.id("AUTH", &String::from_utf8_lossy(t.value)),
                _ if t.tag.is_constructed() => format!("{{{}}}", tlv_render(t.value, n)),
                _ => hex(t.value),
            };
            format!("{}={val}", t.tag)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Print lines of a 06 D3 block.
pub fn print_block_lines(tlv_bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(t)) = tlv::find(tlv_bytes, Tag(0x25))
        && let Ok(kids) = t.children()
    {
        for k in kids.iter().filter(|k| k.tag == Tag(0x07)) {
            out.push(String::from_utf8_lossy(k.value).into_owned());
        }
    }
    out
}

/// One ISO 8583 message from the acquirer's log: `0220 2=622202******7811 3=200000 …`.
pub fn iso(mti: Option<&str>, fields: &[(String, String)], n: &mut Normaliser) -> String {
    let mut out = mti.unwrap_or("????").to_string();
    for (k, v) in fields {
        let val = iso_value(k, v, n);
        out.push_str(&format!(" {k}={val}"));
    }
    out
}

fn iso_value(k: &str, v: &str, n: &mut Normaliser) -> String {
    match k {
        "11" | "61.2" => n.id("STAN", v),
        "37" => n.id("RRN", v),
        "38" => n.id("AUTH", v.trim()),
        "12" if !n.passthrough => "[TIME]".into(),
        "13" | "61.3" | "15" => n.mmdd(v),
        "7" if !n.passthrough => format!("{} [TIME]", n.mmdd(v.get(..4).unwrap_or(""))),
        "64" | "128" if !n.passthrough => "[MAC]".into(),
        "62" => "[KEYS]".into(),
        "2" => {
            if v.bytes().all(|b| b.is_ascii_digit()) && v.len() > 10 {
                mask_digits(v)
            } else {
                v.to_string()
            }
        }
        "90.2" => n.id("STAN", v),
        "90.3" if !n.passthrough => "[TIME]".into(),
        _ => v.to_string(),
    }
}

/// A printed receipt as text, normalised.
pub fn receipt(bytes: &[u8], width: usize, n: &mut Normaliser) -> String {
    let r = protocol::escpos::Parser::parse(bytes);
    n.receipt_text(&protocol::escpos::render_text(&r, width))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn n() -> Normaliser {
        Normaliser::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap())
    }

    #[test]
    fn real_status_information_renders_by_bmp() {
        // reference/vectors.md: the Feig 04 0F after a Mastercard payment.
        let hexs = "04 0F 5A 27 00 04 00 00 00 00 25 00 49 09 78 0C 22 55 58 0D 04 05 22 F0 F8 55 98 83 EE EE EE 80 74 87 02 31 3B 37 35 30 30 37 31 00 00 0B 00 09 75 19 60 29 52 52 35 35 0E 24 05 8A 06 8C 01 8B F1 F1 4D 61 73 74 65 72 43 61 72 64 00 2A 38 30 34 30 31 31 39 32 36 20 20 20 20 20 20";
        let bytes: Vec<u8> = hexs
            .split(' ')
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        let s = zvt(&bytes, false, &mut n());
        assert!(
            s.starts_with("04 0F status-information 27=00 04=000000002500 49=0978 0C=[TIME]"),
            "{s}"
        );
        assert!(s.contains("22=559883******8074"), "{s}");
        assert!(
            s.contains("87=[RECEIPT#1]") && s.contains("0B=[STAN#1]"),
            "{s}"
        );
        assert!(s.contains("8B=\"MasterCard\""), "{s}");
    }

    #[test]
    fn a_keyed_in_pan_is_masked_at_capture() {
        // vectors.md: refund with manual card entry, PAN 6222021234567894.
        let bytes = [
            0x06, 0x31, 0x1B, 0x12, 0x34, 0x56, 0x04, 0, 0, 0, 0, 0x19, 0x95, 0x49, 0x09, 0x78,
            0x0E, 0x28, 0x12, 0x22, 0xF0, 0xF8, 0x62, 0x22, 0x02, 0x12, 0x34, 0x56, 0x78, 0x94,
        ];
        let s = zvt(&bytes, false, &mut n());
        assert_eq!(
            s,
            "06 31 refund pw=*** 04=000000001995 49=0978 0E=2812 22=622202******7894"
        );
    }

    #[test]
    fn abort_6f_renders_its_positional_currency() {
        // 06 1E with 6F (wrong currency): the PT's CC follows without a BMP tag.
        let s = zvt(&[0x06, 0x1E, 0x03, 0x6F, 0x09, 0x78], false, &mut n());
        assert_eq!(s, "06 1E abort result=6F cc=0978");
        let s = zvt(&[0x06, 0x1E, 0x01, 0x6C], false, &mut n());
        assert_eq!(s, "06 1E abort result=6C");
        // FF with the host's non-numeric code in 1F16 and its text in 1F17, both ASCII.
        let s = zvt(
            &[
                0x06, 0x1E, 0x0C, 0xFF, 0x06, 0x09, 0x1F, 0x16, 0x02, b'A', b'0', 0x1F, 0x17, 0x01,
                b'X',
            ],
            false,
            &mut n(),
        );
        assert_eq!(s, "06 1E abort result=FF 06={1F16=\"A0\" 1F17=\"X\"}");
    }

    #[test]
    fn iso_identifiers_and_dates_are_normalised() {
        let f = vec![
            ("2".to_string(), "622202******7894".to_string()),
            ("11".into(), "000123".into()),
            ("13".into(), "1126".into()),
            ("37".into(), "100000000001".into()),
            ("61.2".into(), "000123".into()),
            ("64".into(), "0102030405060708".into()),
        ];
        let s = iso(Some("0220"), &f, &mut n());
        assert_eq!(
            s,
            "0220 2=622202******7894 11=[STAN#1] 13=[D0] 37=[RRN#1] 61.2=[STAN#1] 64=[MAC]"
        );
    }
}
