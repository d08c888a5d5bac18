#![no_main]
//! ESC/POS: any bytes, fed in random splits, parse like one piece, never panic, and render to
//! text without control characters and to HTML.
use libfuzzer_sys::fuzz_target;
use protocol::escpos::{Parser, render_html, render_text};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    let whole = Parser::parse(bytes);

    // Split points from a small xorshift seeded by the first byte.
    let mut x = u32::from(seed) | 0x9E37_0000;
    let mut p = Parser::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x as usize % 8).min(rest.len()).max(1);
        let (a, b) = rest.split_at(n);
        p.feed(a);
        rest = b;
        assert!(p.buffered() <= protocol::escpos::MAX_BUFFER);
    }
    let split = p.finish();
    assert_eq!(split, whole, "split parse differs");

    for cols in [32, 42, 48] {
        let text = render_text(&whole, cols);
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
        let _ = render_html(&whole, cols);
    }
});
