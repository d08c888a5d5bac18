#![no_main]
//! EMV data: any bytes parse or fail with an offset; typed getters and the masked rendering
//! never panic, and the rendering never shows a full PAN.
use libfuzzer_sys::fuzz_target;
use protocol::card::emv::{EmvData, render_lossy};

fuzz_target!(|data: &[u8]| {
    let text = render_lossy(data);
    if let Ok(d) = EmvData::parse(data) {
        if let Ok(Some(pan)) = d.pan() {
            // The PAN's own line shows it masked (other tags may hold the same digits in hex).
            for l in d.render().lines().chain(text.lines()) {
                if l.trim_start().starts_with("5A ") {
                    assert!(!l.contains(pan.expose()), "{l}");
                }
            }
        }
        let _ = d.expiry();
        let _ = d.effective_date();
        let _ = d.amount();
        let _ = d.app_currency();
        let _ = d.psn();
        let _ = d.atc();
        let _ = d.track2_equivalent();
        let _ = d.label();
        let _ = d.primitives();
        let _ = format!("{d:?}");
    }
});
