#![no_main]
//! CUP dialect: any frame decodes or fails with a field/offset; whatever decodes re-encodes and
//! decodes to the same values.
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use protocol::iso8583::{Dialect, MessageRef, mac};

static D: LazyLock<Dialect> = LazyLock::new(|| Dialect::builtin("cup").unwrap());

fuzz_target!(|data: &[u8]| check(&D, data));

fn check(d: &Dialect, data: &[u8]) {
    let Ok(r) = MessageRef::decode(d, data) else { return };
    for (_, f) in r.fields() {
        let _ = f.to_str();
    }
    let _ = mac::mac_input(d, &r);
    let owned = r.to_owned();
    let again = owned.encode(d).expect("a decoded message must re-encode");
    let r2 = MessageRef::decode(d, &again).expect("a re-encoded message must decode");
    assert!(r2.to_owned() == owned);
    let _ = protocol::iso8583::subfield::render_fields(d, &r);
}
