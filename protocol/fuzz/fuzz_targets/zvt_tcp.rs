#![no_main]
//! ZVT over TCP: any byte stream, split anywhere, yields the same APDUs (or the same error)
//! as the stream fed whole, and each APDU decodes exactly.
use libfuzzer_sys::fuzz_target;
use protocol::zvt::tcp::TcpLink;
use protocol::zvt::Apdu;

fuzz_target!(|data: &[u8]| {
    let Some((&cut_seed, stream)) = data.split_first() else {
        return;
    };
    let mut whole = TcpLink::new(4096);
    let whole_res = whole.handle_input(stream);
    let want: Vec<_> = std::iter::from_fn(|| whole.poll_apdu()).collect();

    let mut split = TcpLink::new(4096);
    let step = (cut_seed as usize % 7) + 1;
    let mut res = Ok(());
    for c in stream.chunks(step) {
        res = split.handle_input(c);
        if res.is_err() {
            break;
        }
    }
    let got: Vec<_> = std::iter::from_fn(|| split.poll_apdu()).collect();
    assert_eq!(got, want);
    assert_eq!(res.is_err(), whole_res.is_err());
    for a in &got {
        Apdu::decode_exact(a).expect("a reassembled APDU is whole");
    }
});
