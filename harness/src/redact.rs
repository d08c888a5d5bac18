//! Raw bytes kept beside a run (for diagnosis and later pcapng export) must not carry a full
//! PAN either: card data is overwritten in place before anything is stored.

use protocol::iso8583::{Dialect, MessageRef};
use protocol::zvt::bmp;

/// ISO 8583 fields that carry card secrets or the full PAN.
const ISO_SECRET: [u8; 6] = [2, 35, 36, 45, 52, 55];
/// ZVT BMPs that carry card data: PAN, tracks, CVV.
const ZVT_SECRET: [u8; 5] = [0x22, 0x23, 0x24, 0x2D, 0x3A];

/// A framed ISO 8583 message (length prefix included) with card fields overwritten by `0xEE`
/// bytes; `None` when it does not decode (then nothing of it is kept).
pub fn iso(dialect: &Dialect, wire: &[u8]) -> Option<Vec<u8>> {
    let p = dialect.length_prefix.kind.width();
    let frame = wire.get(p..)?;
    let m = MessageRef::decode(dialect, frame).ok()?;
    let mut out = wire.to_vec();
    for n in ISO_SECRET {
        if let Some(f) = m.field(n) {
            let start = p + f.offset();
            let end = start + f.wire().len();
            // Keep the length prefix of the field; overwrite its value bytes.
            let value_len = f.wire().len();
            let from = end.saturating_sub(value_len);
            for b in out.get_mut(from..end)? {
                *b = 0xEE;
            }
        }
    }
    Some(out)
}

/// A ZVT APDU with card BMPs overwritten; APDUs that do not decode are kept as their header.
pub fn zvt(apdu: &[u8]) -> Vec<u8> {
    let Ok(a) = protocol::zvt::Apdu::decode_exact(apdu) else {
        return apdu.iter().take(3).copied().collect();
    };
    let header = apdu.len() - a.data.len();
    let skip = match (a.class, a.instr) {
        (0x06, 0x00) => 6,
        (0x06, 0x20 | 0x30 | 0x31 | 0x50 | 0x93) | (0x05, 0x01) => 3,
        (0x06, 0x1E) | (0x04, 0xFF) => 1,
        (0x06, 0xD1) => return apdu.to_vec(),
        _ => 0,
    }
    .min(a.data.len());
    let mut out = apdu.to_vec();
    for f in bmp::fields(&a.data[skip..], header + skip).flatten() {
        if ZVT_SECRET.contains(&f.tag) {
            let end = f.value_offset + f.value.len();
            if let Some(s) = out.get_mut(f.value_offset..end) {
                s.fill(0xEE);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_in_pan_does_not_survive() {
        // vectors.md: refund with manual card entry, PAN 6222021234567894.
        let apdu = [
            0x06, 0x31, 0x1B, 0x12, 0x34, 0x56, 0x04, 0, 0, 0, 0, 0x19, 0x95, 0x49, 0x09, 0x78,
            0x0E, 0x28, 0x12, 0x22, 0xF0, 0xF8, 0x62, 0x22, 0x02, 0x12, 0x34, 0x56, 0x78, 0x94,
        ];
        let r = zvt(&apdu);
        assert_eq!(r.len(), apdu.len());
        assert_eq!(&r[22..], &[0xEE; 8]);
        assert_eq!(&r[..22], &apdu[..22]);
    }

    #[test]
    fn iso_card_fields_are_overwritten() {
        // vectors.md: the CUP 0220 with field 2 and 35.
        let hexs = "0080600003000060310000000002207020048028c080191962220212345678901230200000000000001000000124021000316222021234567890123d30121011234031323334353637383930313231323334353637383132333435363738393031323334353135360011250000010000001600000100012311260000000000000000";
        let wire: Vec<u8> = (0..hexs.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hexs[i..i + 2], 16).unwrap())
            .collect();
        let d = Dialect::builtin("cup").unwrap();
        let r = iso(&d, &wire).unwrap();
        let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!hex.contains("6222021234567890"), "{hex}");
        assert!(hex.contains("200000"), "other fields stay");
    }
}
