#![no_main]
//! ZVT serial link: arbitrary bytes, in arbitrary chunks at arbitrary times, with sends and
//! timeouts interleaved, never panic; every APDU it delivers survives a fresh encode/deframe.
use libfuzzer_sys::fuzz_target;
use protocol::time::Instant;
use protocol::zvt::link::{encode_frame, LinkConfig, LinkEvent, SerialLink};

fuzz_target!(|data: &[u8]| {
    let mut l = SerialLink::new(LinkConfig {
        trace: true,
        ..Default::default()
    });
    let mut now = 0i64;
    let mut i = 0;
    while i + 2 <= data.len() {
        let op = data[i];
        let len = (data[i + 1] & 0x3F) as usize;
        i += 2;
        let chunk = &data[i..(i + len).min(data.len())];
        i += chunk.len();
        now += (op >> 4) as i64 * 97;
        let t = Instant::from_millis(now);
        match op & 0x03 {
            0 | 1 => l.handle_input(chunk, t),
            2 => l.send(chunk.to_vec()),
            _ => {
                if let Some(d) = l.poll_timeout() {
                    now = now.max(d.as_millis());
                    l.handle_timeout(Instant::from_millis(now));
                }
            }
        }
        while l.poll_transmit(Instant::from_millis(now)).is_some() {}
        while let Some(e) = l.poll_event() {
            if let LinkEvent::Received(apdu) = e {
                let mut fresh = SerialLink::default();
                fresh.handle_input(&encode_frame(&apdu), Instant::from_millis(0));
                assert_eq!(fresh.poll_event(), Some(LinkEvent::Received(apdu)));
            }
        }
    }
});
