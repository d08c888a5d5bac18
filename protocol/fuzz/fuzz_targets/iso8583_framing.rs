#![no_main]
//! Length-prefix framing: any byte stream, cut anywhere, yields frames or an error, never a
//! panic; the frames found are the same however the stream is split.
use libfuzzer_sys::fuzz_target;
use protocol::iso8583::framing::{LengthPrefixed, PrefixKind};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let kind = [PrefixKind::Binary2, PrefixKind::Binary4, PrefixKind::Ascii4, PrefixKind::Bcd2][(sel & 3) as usize];
    let f = LengthPrefixed { kind, includes_self: sel & 4 != 0, max_frame: 4096 };
    let cut = (sel >> 3) as usize + 1;

    let whole = run(&f, rest, rest.len().max(1));
    let split = run(&f, rest, cut);
    assert_eq!(whole, split);
});

fn run(f: &LengthPrefixed, bytes: &[u8], chunk: usize) -> (Vec<Vec<u8>>, bool) {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for part in bytes.chunks(chunk) {
        buf.extend_from_slice(part);
        loop {
            match f.decode(&mut buf) {
                Ok(Some(fr)) => frames.push(fr),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}
