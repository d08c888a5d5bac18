#![no_main]
//! ISO 7813 tracks 1 and 2: any string parses or fails with an offset; whatever parses
//! re-encodes to a track that parses to the same fields.
use libfuzzer_sys::fuzz_target;
use protocol::card::track::{decode_codes, RawTrack, Track1, Track2, TrackKind};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok((t, _)) = Track1::parse_lenient(&s) {
        let raw = t.encode();
        assert_eq!(Track1::parse(raw.expose()).as_ref(), Ok(&t));
        assert!(!format!("{t:?}").contains(t.pan().expose()));
    }
    if let Ok((t, _)) = Track2::parse_lenient(&s) {
        let raw = t.encode();
        assert_eq!(Track2::parse(raw.expose()).as_ref(), Ok(&t));
    }
    for kind in [TrackKind::One, TrackKind::Two] {
        let raw = RawTrack::new(kind, s.to_string());
        let _ = raw.masked();
        let _ = raw.lrc_status();
        let _ = raw.with_wrong_lrc();
        let _ = decode_codes(kind, data);
    }
});
