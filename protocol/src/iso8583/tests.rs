//! Cross-module tests: byte-exact vectors and round trips.

use super::dialect::hex_decode;
use super::*;

/// The CUP 0220 refund advice of shared/reference/vectors.md ("CUP ISO 8583 refund advice
/// (0220), 130 bytes with the 2-byte length"), laid out there by an independent encoder from
/// the field table of reference/iso8583.md §2–3.
pub(crate) const CUP_0220_HEX: &str = "\
0080600003000060310000000002207020048028c080191962220212345678901230200000000000001000000124\
021000316222021234567890123d30121011234031323334353637383930313231323334353637383132333435\
363738393031323334353135360011250000010000001600000100012311260000000000000000";

pub(crate) fn cup_0220_wire() -> Vec<u8> {
    hex_decode(CUP_0220_HEX).unwrap()
}

#[test]
fn cup_0220_vector_decodes_field_by_field_and_reencodes_byte_exact() {
    let cup = Dialect::builtin("cup").unwrap();
    let wire = cup_0220_wire();
    assert_eq!(wire.len(), 130);
    let mut buf = wire.clone();
    let frame = cup.length_prefix.decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_eq!(frame.len(), 0x80);

    let m = MessageRef::decode(&cup, &frame).unwrap();
    assert_eq!(m.header, Some(&hex_decode("6000030000603100000000").unwrap()[..]));
    assert_eq!(m.mti, Mti::new(220).unwrap());
    let present: Vec<u8> = m.fields().map(|(n, _)| n).collect();
    assert_eq!(present, [2, 3, 4, 11, 22, 25, 35, 37, 41, 42, 49, 60, 61, 64]);
    let s = |n| m.field_str(n).unwrap().into_owned();
    assert_eq!(s(2), "6222021234567890123");
    assert_eq!(m.field(2).unwrap().len(), 19);
    assert_eq!(s(3), "200000");
    assert_eq!(s(4), "000000001000");
    assert_eq!(s(11), "000124");
    assert_eq!(s(22), "021");
    assert_eq!(m.field_bytes(22), Some(&[0x02, 0x10][..]));
    assert_eq!(s(25), "00");
    assert_eq!(s(35), "6222021234567890123=30121011234");
    assert_eq!(m.field(35).unwrap().len(), 31);
    assert_eq!(s(37), "123456789012");
    assert_eq!(s(41), "12345678");
    assert_eq!(s(42), "123456789012345");
    assert_eq!(s(49), "156");
    assert_eq!(s(60), "25000001000");
    assert_eq!(s(61), "0000010001231126");
    assert_eq!(m.field_bytes(64), Some(&[0u8; 8][..]));
    // Field offsets count from the TPDU: 11 header + 2 MTI + 8 bitmap = 21 for field 2.
    assert_eq!(m.field(2).unwrap().offset(), 21);
    assert_eq!(m.field(64).unwrap().offset(), 0x80 - 8);

    // Owned copy and re-encode: the same bytes.
    let owned = m.to_owned();
    assert_eq!(owned.get_str(35), Some("6222021234567890123=30121011234"));
    let mut out = Vec::new();
    owned.encode_into(&cup, &mut out).unwrap();
    assert_eq!(out, frame);
    let mut framed = Vec::new();
    cup.length_prefix.encode(&out, &mut framed).unwrap();
    assert_eq!(framed, wire);
}
