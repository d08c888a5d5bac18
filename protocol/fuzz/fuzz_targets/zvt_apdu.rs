#![no_main]
//! ZVT APDU + typed command decode in every context: any bytes decode or fail with an
//! offset inside the input, never panic; whatever decodes re-encodes to an APDU that decodes
//! to the same command.
use libfuzzer_sys::fuzz_target;
use protocol::zvt::bmp;
use protocol::zvt::command::{Command, CommandKind, Context};
use protocol::zvt::Apdu;

const KINDS: [CommandKind; 6] = [
    CommandKind::StatusEnquiry,
    CommandKind::Registration,
    CommandKind::Refund,
    CommandKind::Authorization,
    CommandKind::EndOfDay,
    CommandKind::Other([0x06, 0x18]),
];

fuzz_target!(|data: &[u8]| {
    if let Ok((a, _)) = Apdu::decode(data) {
        let l = bmp::decode_list(a.data, a.data_offset());
        if let Some((e, rest)) = &l.stop {
            assert!(e.offset() <= data.len());
            assert!(rest.len() <= a.data.len());
        }
    }
    let ctxs = std::iter::once(Context::None).chain(KINDS.into_iter().map(Context::Answering));
    for ctx in ctxs {
        match Command::decode(data, ctx) {
            Ok(c) => {
                let bytes = c.to_bytes().expect("a decoded command re-encodes");
                let again = Command::decode(&bytes, ctx).expect("re-encoded bytes decode");
                assert_eq!(again, c);
                // Accessors on untrusted TLV.
                let _ = c.tlv().map(protocol::tlv::parse_all);
                let _ = c.max_status_infos();
                match &c {
                    Command::Refund(r) => {
                        let _ = r.original_ref();
                        let _ = r.ecr_reference();
                    }
                    Command::Abort(a) => {
                        let _ = a.extended_error_code();
                        let _ = a.extended_error_text();
                    }
                    Command::Registration(r) => {
                        let _ = r.permitted_commands();
                    }
                    Command::PrintTextBlock(b) => {
                        let _ = b.text_lines();
                        let _ = b.receipt_type();
                    }
                    Command::IntermediateStatus(s) => {
                        let _ = s.display_lines();
                        let _ = s.t4();
                    }
                    Command::StatusInformation(s) => {
                        let _ = s.transaction_id();
                        if let Some(p) = &s.pan {
                            let _ = p.masked();
                            let _ = p.to_pan();
                        }
                    }
                    _ => {}
                }
            }
            Err(e) => assert!(e.offset() <= data.len(), "{e:?}"),
        }
    }
});
