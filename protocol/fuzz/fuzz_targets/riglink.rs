#![no_main]
//! Rig link: any bytes, in any chunks, decode to lines or located errors, never panic; every
//! decoded line re-encodes to text that decodes to the same line.
use libfuzzer_sys::fuzz_target;
use protocol::riglink::{ClientSession, LineDecoder, ServerSession, Capability, Outcome, decode_line, encode_line};
use protocol::time::Instant;

fuzz_target!(|data: &[u8]| {
    let split = data.first().copied().unwrap_or(1).max(1) as usize;
    let mut d = LineDecoder::new();
    let mut s = ServerSession::new("fuzz", &Capability::ALL);
    let mut c = ClientSession::new(std::time::Duration::from_secs(1), 2);
    for chunk in data.chunks(split) {
        d.feed(chunk);
        s.handle_input(chunk);
        c.handle_input(chunk, Instant::from_millis(0));
        assert!(d.pending_len() <= protocol::riglink::MAX_LINE + 2);
    }
    while let Some(r) = d.poll() {
        if let Ok(line) = r {
            let text = encode_line(&line).expect("a decoded line encodes");
            let again = decode_line(text.trim_end_matches('\n').as_bytes());
            assert_eq!(again, Ok(Some(line)));
        }
    }
    while s.poll_request().is_some() {
        s.reply(Outcome::Done);
    }
    while s.poll_transmit().is_some() {}
    while c.poll_event().is_some() {}
});
