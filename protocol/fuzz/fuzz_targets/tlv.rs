#![no_main]
//! BER-TLV (ZVT BMP 06, EMV): any bytes parse or fail with an offset, never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(items) = protocol::tlv::parse_all(data) {
        for t in items {
            let _ = t.children();
        }
    }
    let _ = protocol::tlv::find(data, protocol::tlv::Tag(0x1F16));
});
