use super::*;
use proptest::prelude::*;

fn parse(bytes: &[u8]) -> Receipt {
    Parser::parse(bytes)
}

fn only_line(r: &Receipt) -> &Line {
    let lines: Vec<&Line> = r.lines().collect();
    assert_eq!(lines.len(), 1, "{r:?}");
    lines[0]
}

fn runs(l: &Line) -> Vec<(String, Style)> {
    l.runs().map(|r| (r.text.clone(), r.style)).collect()
}

fn markers(l: &Line) -> Vec<Vec<u8>> {
    l.spans
        .iter()
        .filter_map(|s| match s {
            Span::Command(u) => Some(u.bytes.clone()),
            _ => None,
        })
        .collect()
}

/// Parses `bytes` split at every position and byte by byte; all must equal the one-piece parse.
fn assert_split_invariant(bytes: &[u8]) -> Receipt {
    let whole = parse(bytes);
    for cut in 0..=bytes.len() {
        let mut p = Parser::new();
        p.feed(&bytes[..cut]);
        p.feed(&bytes[cut..]);
        assert_eq!(p.finish(), whole, "split at {cut}");
    }
    let mut p = Parser::new();
    for b in bytes {
        p.feed(std::slice::from_ref(b));
    }
    assert_eq!(p.finish(), whole, "byte by byte");
    whole
}

// ---- GB18030 and Chinese mode -------------------------------------------------------------

#[test]
fn gb18030_refund_success_bytes() {
    // 退货成功 in GB18030 = CD CB BB F5 B3 C9 B9 A6: Python 3 `"退货成功".encode("gb18030")`,
    // and encoding_rs agrees.
    let expected = [0xCD, 0xCB, 0xBB, 0xF5, 0xB3, 0xC9, 0xB9, 0xA6];
    assert_eq!(&*encoding_rs::GB18030.encode("退货成功").0, &expected);
    let built = ReceiptBuilder::new(32).text_zh("退货成功").build();
    assert_eq!(built, [&[0x1C, 0x26][..], &expected].concat());
    let mut stream = vec![0x1C, 0x26];
    stream.extend_from_slice(&expected);
    stream.extend_from_slice(&[0x1C, 0x2E, b'\n']);
    let r = assert_split_invariant(&stream);
    let l = only_line(&r);
    assert_eq!(l.text(), "退货成功");
    assert!(l.runs().all(|r| r.style.chinese));
    assert_eq!(l.columns(), 8);
}

#[test]
fn gb18030_four_byte_split_anywhere() {
    // U+1F600 = 94 39 FC 36 and € = A2 E3 in GB18030 (Python 3 codecs "gb18030").
    let stream = b"\x1c\x26A\x94\x39\xfc\x36\xa2\xe3B\n";
    let r = assert_split_invariant(stream);
    let l = only_line(&r);
    assert_eq!(l.text(), "A😀€B");
    let rs = runs(l);
    assert_eq!(rs.len(), 3);
    assert!(!rs[0].1.chinese && rs[1].1.chinese && !rs[2].1.chinese);
}

#[test]
fn gb18030_broken_sequences_keep_bytes() {
    // A lead byte before a control code, a lone 0x80, a four-byte start with a bad third byte.
    let r = assert_split_invariant(b"\x1c\x26\xcd\n\x80X\n\x94\x39\x20Y\n");
    let lines: Vec<&Line> = r.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        matches!(&lines[0].spans[0], Span::Undecodable { charset: Charset::Gb18030, bytes, .. } if bytes == &[0xCD])
    );
    assert!(matches!(&lines[1].spans[0], Span::Undecodable { bytes, .. } if bytes == &[0x80]));
    assert_eq!(lines[1].text(), "X");
    // 94 kept as hex; "9 Y" is ASCII again.
    assert_eq!(lines[2].text(), "9 Y");
    // Stream ends inside a sequence: the lead byte is kept.
    let r = parse(b"\x1c\x26\xcd");
    assert!(matches!(&only_line(&r).spans[0], Span::Undecodable { bytes, .. } if bytes == &[0xCD]));
}

#[test]
fn gb18030_unmapped_four_byte_does_not_spoil_its_run() {
    // Fuzz find: F6 39 FC 36 has the four-byte shape but maps to nothing (GB18030 four-byte
    // codes end at E3 32 9A 35); the € (A2 E3) after it must decode however the run is split.
    let r = assert_split_invariant(b"\x1c\x26\xf6\x39\xfc\x36\xa2\xe3\xcd\n");
    let l = only_line(&r);
    assert_eq!(l.text(), "€");
    assert!(
        matches!(&l.spans[0], Span::Undecodable { bytes, .. } if bytes == &[0xF6, 0x39, 0xFC, 0x36])
    );
    assert!(matches!(&l.spans[2], Span::Undecodable { bytes, .. } if bytes == &[0xCD]));
}

#[test]
fn chinese_sizes_follow_fs_and_gs_not_esc() {
    // ESC ! 0x30 doubles single-byte characters only; FS ! 0x0C doubles Chinese ones.
    let r = parse(b"\x1b\x21\x30\x1c\x26A\xcd\xcb\x1c\x21\x0c\xbb\xf5\n");
    let rs = runs(only_line(&r));
    assert_eq!((rs[0].1.width, rs[0].1.height), (2, 2));
    assert_eq!((rs[1].1.width, rs[1].1.height), (1, 1));
    assert_eq!((rs[2].1.width, rs[2].1.height), (2, 2));
    assert_eq!(rs[2].0, "货");
    // GS ! sets both; FS W quadruples Chinese characters; FS ! bit 7 underlines them.
    let r = parse(b"\x1d\x21\x21\x1c\x26A\xcd\xcb\x1c\x57\x01\xbb\xf5\x1c\x21\x80\xcd\xcb\n");
    let rs = runs(only_line(&r));
    assert_eq!((rs[0].1.width, rs[0].1.height), (3, 2));
    assert_eq!((rs[1].1.width, rs[1].1.height), (3, 2));
    assert_eq!((rs[2].1.width, rs[2].1.height), (2, 2));
    assert_eq!((rs[3].1.width, rs[3].1.underline), (1, 1));
}

// ---- code pages ---------------------------------------------------------------------------

#[test]
fn code_pages() {
    // PC437 0x82 é, 0x9C £; WPC1252 0x80 €; Katakana 0xB1 ｱ; page 99 unknown → hex.
    let r = parse(b"\x82\x9c\n\x1bt\x10\x80\n\x1bt\x01\xb1\n\x1bt\x63A\xff\xfeB\n");
    let lines: Vec<&Line> = r.lines().collect();
    assert_eq!(lines[0].text(), "é£");
    assert_eq!(lines[1].text(), "€");
    assert_eq!(lines[2].text(), "ｱ");
    assert_eq!(lines[3].text(), "AB");
    assert!(matches!(&lines[3].spans[1],
        Span::Undecodable { charset: Charset::CodePage(99), bytes, .. } if bytes == &[0xFF, 0xFE]));
    assert!(render_text(&r, 32).contains("A[page99 ff fe]B"));
    // WPC1252 0x81 has no glyph: kept as hex, not as a control character.
    let r = parse(b"\x1bt\x10\x81\n");
    assert!(render_text(&r, 32).contains("[WPC1252 81]"));
}

// ---- print modes --------------------------------------------------------------------------

#[test]
fn esc_bang_bits() {
    // ESC ! n: bit 3 emphasis, bit 4 double height, bit 5 double width, bit 7 underline.
    let r = parse(b"\x1b\x21\xb8X\x1b\x21\x00Y\n");
    let rs = runs(only_line(&r));
    assert_eq!(
        rs[0].1,
        Style {
            width: 2,
            height: 2,
            bold: true,
            underline: 1,
            reverse: false,
            chinese: false
        }
    );
    assert_eq!(rs[1].1, Style::default());
}

#[test]
fn gs_bang_sizes_and_range() {
    for w in 1..=8u8 {
        for h in 1..=8u8 {
            let r = parse(&[0x1D, 0x21, ((w - 1) << 4) | (h - 1), b'x', b'\n']);
            let rs = runs(only_line(&r));
            assert_eq!((rs[0].1.width, rs[0].1.height), (w, h));
        }
    }
    // 0x88: magnification 9 is out of range; the command is kept as a marker, size unchanged.
    let r = parse(b"\x1d\x21\x88x\n");
    let l = only_line(&r);
    assert_eq!(markers(l), vec![vec![0x1D, 0x21, 0x88]]);
    assert_eq!(runs(l)[0].1.width, 1);
}

#[test]
fn emphasis_underline_reverse() {
    let r = parse(b"\x1bE\x01a\x1bE\x00b\x1b-\x02c\x1b-0d\x1dB\x01e\n");
    let rs = runs(only_line(&r));
    assert!(rs[0].1.bold && !rs[1].1.bold);
    assert_eq!(rs[2].1.underline, 2);
    assert_eq!(rs[3].1.underline, 0);
    assert!(rs[4].1.reverse);
    // ESC - 3 is out of range: a marker.
    let r = parse(b"\x1b-\x03z\n");
    assert_eq!(markers(only_line(&r)), vec![vec![0x1B, 0x2D, 3]]);
}

#[test]
fn alignment_is_taken_at_line_start() {
    let r = parse(b"\x1ba\x01centre\n\x1ba2right\nx\x1ba\x00y\nleft\n");
    let aligns: Vec<Align> = r.lines().map(|l| l.align).collect();
    assert_eq!(
        aligns,
        [Align::Center, Align::Right, Align::Right, Align::Left]
    );
}

#[test]
fn init_resets_modes() {
    let r = parse(b"\x1d\x21\x11\x1bE\x01\x1ba\x01\x1c\x26\x1b\x40A\xcd\n");
    assert_eq!(r.items[0], Item::Init);
    let l = only_line(&r);
    assert_eq!(l.align, Align::Left);
    // Chinese mode is off again: 0xCD is PC437 '═'.
    assert_eq!(l.text(), "A═");
    assert_eq!(runs(l)[0].1, Style::default());
}

// ---- feeds, tabs ---------------------------------------------------------------------------

#[test]
fn feeds() {
    let r = parse(b"a\x1bd\x03\x1bd\x02b\x1bJ\x3c\n\r\n");
    assert_eq!(
        r.items,
        vec![
            Item::Line(Line {
                align: Align::Left,
                spans: vec![Span::Text(Run {
                    text: "a".into(),
                    style: Style::default()
                })]
            }),
            Item::Feed(Feed::Lines(2)),
            Item::Feed(Feed::Lines(2)),
            Item::Line(Line {
                align: Align::Left,
                spans: vec![Span::Text(Run {
                    text: "b".into(),
                    style: Style::default()
                })]
            }),
            Item::Feed(Feed::Dots(60)),
            Item::Line(Line::default()),
            Item::Line(Line::default()),
        ]
    );
}

#[test]
fn tab_list_without_nul_is_capped_at_32() {
    // ESC D with 33 non-NUL stops: the first 32 are stops, the 33rd byte is data.
    let mut s = b"\x1bD".to_vec();
    s.extend(1..=32u8);
    s.extend_from_slice(b"Zz\n");
    let r = assert_split_invariant(&s);
    assert_eq!(only_line(&r).text(), "Zz");
}

#[test]
fn tabs() {
    // Default stops every 8 columns; ESC D 4 10 NUL sets stops at 4 and 10; none left → ignored.
    let r = parse(b"ab\tc\n\x1bD\x04\x0a\x00a\tb\tc\td\n");
    let lines: Vec<&Line> = r.lines().collect();
    assert_eq!(lines[0].text(), "ab      c");
    assert_eq!(lines[1].text(), "a   b     cd");
}

// ---- cuts ----------------------------------------------------------------------------------

#[test]
fn cut_forms() {
    let cases: [(&[u8], Cut); 10] = [
        (
            b"\x1dV\x00",
            Cut {
                partial: false,
                feed: None,
            },
        ),
        (
            b"\x1dV\x30",
            Cut {
                partial: false,
                feed: None,
            },
        ),
        (
            b"\x1dV\x01",
            Cut {
                partial: true,
                feed: None,
            },
        ),
        (
            b"\x1dV\x31",
            Cut {
                partial: true,
                feed: None,
            },
        ),
        (
            b"\x1dVA\x05",
            Cut {
                partial: false,
                feed: Some(5),
            },
        ),
        (
            b"\x1dVB\x00",
            Cut {
                partial: true,
                feed: Some(0),
            },
        ),
        (
            b"\x1dVa\x01",
            Cut {
                partial: false,
                feed: Some(1),
            },
        ),
        (
            b"\x1dVh\x02",
            Cut {
                partial: true,
                feed: Some(2),
            },
        ),
        (
            b"\x1bi",
            Cut {
                partial: true,
                feed: None,
            },
        ),
        (
            b"\x1bm",
            Cut {
                partial: true,
                feed: None,
            },
        ),
    ];
    for (bytes, cut) in cases {
        let mut stream = b"x".to_vec();
        stream.extend_from_slice(bytes);
        stream.extend_from_slice(b"y");
        let r = assert_split_invariant(&stream);
        assert_eq!(r.items.len(), 3, "{bytes:02x?}");
        assert_eq!(r.items[1], Item::Cut(cut), "{bytes:02x?}");
        assert_eq!(r.lines().nth(1).unwrap().text(), "y");
    }
    // GS V 2 is no cut: a three-byte marker.
    let r = parse(b"\x1dV\x02z\n");
    assert_eq!(markers(only_line(&r)), vec![vec![0x1D, 0x56, 2]]);
    assert_eq!(only_line(&r).text(), "z");
}

#[test]
fn poll_receipt_splits_at_cuts() {
    let bytes = ReceiptBuilder::new(32)
        .line("MERCHANT COPY")
        .cut()
        .line("CUSTOMER COPY")
        .cut()
        .line("tail")
        .build();
    let mut p = Parser::new();
    p.feed(&bytes);
    let first = p.poll_receipt().unwrap();
    assert!(first.contains("MERCHANT") && !first.contains("CUSTOMER"));
    let second = p.poll_receipt().unwrap();
    assert!(second.contains("CUSTOMER"));
    assert!(p.poll_receipt().is_none());
    assert_eq!(p.finish().text(), "tail");
}

// ---- barcodes and QR -----------------------------------------------------------------------

#[test]
fn barcode_function_a_and_b() {
    // GS h 80, GS w 2, GS H 2, then GS k 4 "ABC-1" NUL (CODE39, function A)
    let r = assert_split_invariant(b"\x1dhP\x1dw\x02\x1dH\x02\x1dk\x04ABC-1\x00");
    assert_eq!(
        r.items,
        vec![Item::Barcode(Barcode {
            symbology: Symbology::Code39,
            data: b"ABC-1".to_vec(),
            align: Align::Left,
            height: 80,
            module_width: 2,
            hri: HriPosition::Below,
        })]
    );
    // GS k 73 7 "{B12345" (CODE128, function B), centred.
    let r = assert_split_invariant(b"\x1ba\x01\x1dkI\x07{B12345ok\n");
    let Item::Barcode(b) = &r.items[0] else {
        panic!("{r:?}")
    };
    assert_eq!(
        (b.symbology, b.data.as_slice()),
        (Symbology::Code128, &b"{B12345"[..])
    );
    assert_eq!(b.align, Align::Center);
    assert_eq!(r.lines().next().unwrap().text(), "ok");
    let text = render_text(&r, 32);
    assert!(
        text.starts_with("  [BARCODE CODE128 \"{B12345\"]\n"),
        "{text}"
    );
}

#[test]
fn barcode_malformed() {
    // Unknown symbology 7 → 3-byte marker, the data is text.
    let r = parse(b"\x1dk\x07AB\n");
    assert_eq!(markers(only_line(&r)), vec![vec![0x1D, 0x6B, 7]]);
    assert_eq!(only_line(&r).text(), "AB");
    // Function A without NUL within 255 bytes → marker, then text.
    let mut s = b"\x1dk\x04".to_vec();
    s.extend(std::iter::repeat_n(b'A', 300));
    s.push(b'\n');
    let r = parse(&s);
    assert_eq!(markers(only_line(&r)).len(), 1);
    assert_eq!(only_line(&r).text().len(), 300);
}

#[test]
fn qr_store_and_print() {
    let bytes = ReceiptBuilder::new(32)
        .align(Align::Center)
        .qr_with(
            b"https://x.test/r?id=1",
            QrOptions {
                model: 2,
                module_size: 8,
                level: QrLevel::Q,
            },
        )
        .unwrap()
        .build();
    let r = assert_split_invariant(&bytes);
    assert_eq!(
        r.items,
        vec![Item::Qr(Qr {
            data: b"https://x.test/r?id=1".to_vec(),
            model: 2,
            module_size: 8,
            level: QrLevel::Q,
            align: Align::Center,
        })]
    );
    // Print (function 181) with nothing stored: the command stays visible.
    let r = parse(b"\x1d(k\x03\x00\x31\x51\x30");
    assert_eq!(markers(only_line(&r)).len(), 1);
    // Another symbol (cn 48 = PDF417): framed by pL pH and kept.
    let r = parse(b"\x1d(k\x03\x00\x30\x41\x02x\n");
    assert_eq!(
        markers(only_line(&r)),
        vec![vec![0x1D, 0x28, 0x6B, 3, 0, 0x30, 0x41, 2]]
    );
    assert_eq!(only_line(&r).text(), "x");
}

// ---- unknown and known-length commands -------------------------------------------------------

#[test]
fn known_length_commands_are_framed() {
    let cases: [&[u8]; 14] = [
        b"\x1b3\x18",         // ESC 3 n line spacing
        b"\x1b2",             // ESC 2 default spacing
        b"\x1b \x41",         // ESC SP n (n = 'A' must not print)
        b"\x1dL\x41\x41",     // GS L nL nH
        b"\x1dW\x41\x41",     // GS W nL nH
        b"\x1b$\x41\x41",     // ESC $ nL nH
        b"\x1bp\x00\x19\xfa", // ESC p m t1 t2 (drawer pulse)
        b"\x10\x04\x01",      // DLE EOT n
        b"\x10\x04\x07\x01",  // DLE EOT 7 a
        b"\x1dfA",            // GS f n
        b"\x1bR\x41",         // ESC R n
        b"\x1bM\x41",         // ESC M n
        b"\x1bc5\x41",        // ESC c 5 n
        b"\x1c2\x41\x41",     // FS 2 c1 c2 + 72 bytes, completed below
    ];
    for case in cases {
        let mut cmd = case.to_vec();
        if case.starts_with(b"\x1c2") {
            cmd.extend(std::iter::repeat_n(b'A', 72));
        }
        let mut s = b"x".to_vec();
        s.extend_from_slice(&cmd);
        s.extend_from_slice(b"y\n");
        let r = assert_split_invariant(&s);
        let l = only_line(&r);
        assert_eq!(l.text(), "xy", "{cmd:02x?}");
        let Span::Command(u) = &l.spans[1] else {
            panic!("{l:?}")
        };
        assert_eq!(u.len, cmd.len() as u64);
        assert_eq!(u.bytes, cmd[..cmd.len().min(Unknown::HEAD)]);
    }
}

#[test]
fn truly_unknown_escape_keeps_two_bytes() {
    let r = parse(b"\x1b\x7fAB\x1d\x01C\x1c\x7fD\x07E\n");
    let l = only_line(&r);
    assert_eq!(l.text(), "ABCDE");
    assert_eq!(
        markers(l),
        vec![
            vec![0x1B, 0x7F],
            vec![0x1D, 0x01],
            vec![0x1C, 0x7F],
            vec![0x07]
        ]
    );
    let t = render_text(&r, 32);
    assert_eq!(
        t,
        "[ESC x7f 1b 7f]AB[GS x01 1d 01]C[FS x7f 1c 7f]D[BEL 07]E\n"
    );
}

#[test]
fn raster_image_streams_without_buffering() {
    // GS v 0 0 xL xH yL yH with x = 48 bytes (384 dots), y = 1000 rows: 48 000 payload bytes.
    let mut s = b"\x1dv0\x00\x30\x00\xe8\x03".to_vec();
    let payload: Vec<u8> = (0..48_000u32).map(|i| (i % 251) as u8).collect();
    s.extend_from_slice(&payload);
    s.extend_from_slice(b"after\n");
    let mut p = Parser::new();
    for chunk in s.chunks(1000) {
        p.feed(chunk);
        assert!(p.buffered() < 16, "buffered {}", p.buffered());
    }
    let r = p.finish();
    let Item::Image(img) = &r.items[0] else {
        panic!("{r:?}")
    };
    assert_eq!((img.width, img.height, img.len), (384, 1000, 48_000));
    use sha2::Digest;
    assert_eq!(img.sha256, <[u8; 32]>::from(sha2::Sha256::digest(&payload)));
    assert!(img.complete);
    assert_eq!(r.lines().next().unwrap().text(), "after");
    assert!(render_text(&r, 32).starts_with("[IMG 384x1000 sha256:"));
}

#[test]
fn huge_declared_lengths_stay_bounded() {
    // GS v 0 with 65535 × 65535 declared; GS 8 L with 4 GiB declared; stream ends early.
    let mut p = Parser::new();
    p.feed(b"\x1dv0\x00\xff\xff\xff\xff");
    p.feed(&[0xAA; 100_000]);
    assert_eq!(p.buffered(), 0);
    let r = p.finish();
    let Item::Image(img) = &r.items[0] else {
        panic!()
    };
    assert!(!img.complete);
    assert_eq!(img.len, 100_000);

    let mut p = Parser::new();
    p.feed(b"\x1d8L\xff\xff\xff\xff\x30\x70");
    p.feed(&[0x55; 200_000]);
    assert_eq!(p.buffered(), 0);
    let r = p.finish();
    let Span::Command(u) = &only_line(&r).spans[0] else {
        panic!()
    };
    assert_eq!(
        (u.len, u.complete, u.bytes.len()),
        (200_009, false, Unknown::HEAD)
    );
    assert!(render_text(&r, 32).contains("…+199977 bytes incomplete]"));

    // A QR store that never completes: buffered up to its frame, never beyond MAX_BUFFER.
    let mut p = Parser::new();
    p.feed(b"\x1d(k\xff\xff\x31\x50\x30");
    for _ in 0..100 {
        p.feed(&[b'9'; 10_000]);
        assert!(p.buffered() <= MAX_BUFFER);
    }
    // The frame completed after 65 540 bytes; the rest is text.
    assert!(p.buffered() < 16);
}

#[test]
fn incomplete_command_at_end_is_kept() {
    let r = parse(b"ok\x1d\x28\x6b\x10\x00\x31");
    let l = only_line(&r);
    assert_eq!(l.text(), "ok");
    let Span::Command(u) = &l.spans[1] else {
        panic!()
    };
    assert!(!u.complete);
    assert_eq!(u.bytes, b"\x1d\x28\x6b\x10\x00\x31");
    assert_eq!(
        render_text(&r, 32),
        "ok[GS ( k 1d 28 6b 10 00 31 incomplete]\n"
    );
}

// ---- widths, alignment, rendering --------------------------------------------------------------

#[test]
fn width_functions() {
    assert_eq!(char_columns('A'), 1);
    assert_eq!(char_columns('退'), 2);
    assert_eq!(char_columns('Ａ'), 2); // fullwidth
    assert_eq!(char_columns('ｱ'), 1); // halfwidth katakana
    assert_eq!(char_columns('\u{1b}'), 0);
    assert_eq!(text_columns("退货 OK"), 7);
    assert_eq!(printed_columns('×', true), 2);
    assert_eq!(printed_columns('×', false), 1);
    assert_eq!(printed_columns('\u{301}', false), 1);
}

/// Strips `[...]` markers (and unescapes `[[`) from a rendered line.
fn strip_markers(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '[' {
            if chars.peek() == Some(&'[') {
                chars.next();
                out.push('[');
                continue;
            }
            for d in chars.by_ref() {
                if d == ']' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Paper columns of a rendered row, knowing its runs are ×`w` wide.
fn rendered_columns(s: &str, w: usize) -> usize {
    let plain = strip_markers(s);
    let lead = plain.len() - plain.trim_start_matches(' ').len();
    lead + text_columns(plain.trim_start_matches(' ')) * w
}

#[test]
fn alignment_with_cjk_at_32_42_48() {
    for cols in [32usize, 42, 48] {
        let bytes = ReceiptBuilder::new(cols)
            .align(Align::Center)
            .size(2, 2)
            .line_zh("退货")
            .size(1, 1)
            .align(Align::Right)
            .line_zh("商户存根 MERCHANT")
            .align(Align::Left)
            .line_lr("金额 AMOUNT", "CNY 33.33")
            .separator()
            .build();
        let text = render_text(&parse(&bytes), cols);
        let rows: Vec<&str> = text.lines().collect();
        // 退货 at 2x2 = 8 columns, centred.
        assert_eq!(
            rows[0],
            format!("{}[2x2]退货[/2x2]", " ".repeat((cols - 8) / 2))
        );
        // 商户存根 MERCHANT = 8 + 9 = 17 columns, right-aligned.
        assert_eq!(
            rows[1],
            format!("{}商户存根 MERCHANT", " ".repeat(cols - 17))
        );
        assert_eq!(rendered_columns(rows[1], 1), cols);
        // 金额 AMOUNT = 11 columns, CNY 33.33 = 9: the line fills the paper exactly.
        assert_eq!(rendered_columns(rows[2], 1), cols);
        assert!(rows[2].starts_with("金额 AMOUNT ") && rows[2].ends_with(" CNY 33.33"));
        assert_eq!(rows[3], "-".repeat(cols));
    }
}

#[test]
fn line_lr_at_double_width_and_overflow() {
    let bytes = ReceiptBuilder::new(32)
        .size(2, 1)
        .line_lr("合计", "33.33")
        .size(1, 1)
        .line_lr("A VERY LONG MERCHANT NAME LIMITED", "33.33")
        .build();
    let r = parse(&bytes);
    let lines: Vec<&Line> = r.lines().collect();
    assert_eq!(lines[0].columns(), 32);
    assert_eq!(
        lines[0].text(),
        format!("合计{}33.33", " ".repeat(16 - 4 - 5))
    );
    // Does not fit: the value goes on its own line, right-aligned.
    assert_eq!(lines[1].text(), "A VERY LONG MERCHANT NAME LIMITED");
    assert_eq!(lines[2].text(), format!("{}33.33", " ".repeat(27)));
    let text = render_text(&r, 32);
    // The 33-column line wraps on 32 columns.
    assert!(
        text.contains("A VERY LONG MERCHANT NAME LIMITE\nD\n"),
        "{text}"
    );
}

#[test]
fn wide_char_does_not_straddle_rows() {
    // 15 ASCII + 退 at ×2 width: 15×2 = 30, 退 needs 4 → next row.
    let bytes = ReceiptBuilder::new(32)
        .size(2, 1)
        .line("ABCDEFGHIJKLMNO退")
        .build();
    let text = render_text(&parse(&bytes), 32);
    assert_eq!(text, "[2W]ABCDEFGHIJKLMNO[/2W]\n[2W]退[/2W]\n");
}

#[test]
fn render_markers_and_escaping() {
    let bytes = ReceiptBuilder::new(32)
        .bold(true)
        .text("[B] ")
        .underline(1)
        .text("u")
        .underline(2)
        .text("v")
        .underline(0)
        .reverse(true)
        .text("r")
        .reverse(false)
        .bold(false)
        .size(1, 3)
        .text("h")
        .size(3, 2)
        .line("x")
        .raw(b"\x1b3\x18")
        .feed(2)
        .raw(b"\x1bJ\x10")
        .cut_partial()
        .build();
    let text = render_text(&parse(&bytes), 32);
    assert_eq!(
        text,
        "[B][[B] [/B][B][U]u[/U][/B][B][U2]v[/U2][/B][B][R]r[/R][/B][3H]h[/3H][3x2]x[/3x2]\n\
         [ESC 3 1b 33 18]\n\
         \n\
         [FEED 16 dots]\n\
         --------- partial cut ----------\n"
    );
}

#[test]
fn html_is_escaped_and_styled() {
    let bytes = ReceiptBuilder::new(32)
        .bold(true)
        .line("<a href=\"x\">&'")
        .bold(false)
        .size(2, 2)
        .line_zh("退货")
        .raw(b"\x1b3<")
        .cut()
        .build();
    let html = render_html(&parse(&bytes), 32);
    assert!(html.starts_with("<div class=\"escpos\"><style>"));
    assert!(html.contains("<span class=\"b\">&lt;a href=&quot;x&quot;&gt;&amp;&#39;</span>\n"));
    assert!(html.contains(
        "<span class=\"sz\" style=\"transform:scale(2,2);margin-right:4ch\">退货</span>"
    ));
    assert!(html.contains("<span class=\"cmd\">[ESC 3 1b 33 3c]</span>"));
    assert!(html.contains("<span class=\"cut\">"));
    assert!(html.ends_with("</pre></div>\n"));
    assert!(!html.contains("<a "));
}

// ---- builder --------------------------------------------------------------------------------

#[test]
fn builder_bytes() {
    let bytes = ReceiptBuilder::new(32)
        .init()
        .bold(true)
        .underline(1)
        .text("é")
        .code_page(16)
        .text("€")
        .feed(3)
        .cut()
        .cut_partial()
        .barcode(Symbology::Code128, b"{B12")
        .unwrap()
        .build();
    assert_eq!(
        bytes,
        [
            0x1B, 0x40, // ESC @
            0x1B, 0x45, 1, // ESC E 1
            0x1B, 0x2D, 1, 0x1C, 0x2D, 1, // ESC - 1, FS - 1
            0x1C, 0x2E, 0x82, // FS . (Chinese mode off), PC437 é
            0x1B, 0x74, 16, 0x80, // ESC t 16, WPC1252 €
            0x1B, 0x64, 3, // ESC d 3
            0x1D, 0x56, 65, 0, 0x1D, 0x56, 66, 0, // GS V 65 0, GS V 66 0
            0x1D, 0x6B, 73, 4, b'{', b'B', b'1', b'2', // GS k 73 4 {B12
        ]
    );
    assert_eq!(
        ReceiptBuilder::new(32)
            .barcode(Symbology::Ean13, &[])
            .unwrap_err(),
        BuildError::BarcodeLength { len: 0 }
    );
    assert!(ReceiptBuilder::new(32).qr(&"9".repeat(QR_MAX + 1)).is_err());
}

#[test]
fn builder_text_falls_back_to_chinese_mode() {
    // Not in PC437: sent as GB18030 in Chinese mode; back to the code page for é.
    let bytes = ReceiptBuilder::new(32).text("退货 OK").text("é").build();
    assert_eq!(
        bytes,
        [
            0x1C, 0x26, 0xCD, 0xCB, 0xBB, 0xF5, b' ', b'O', b'K', 0x1C, 0x2E, 0x82
        ]
    );
    let r = parse(&bytes);
    assert_eq!(r.text(), "退货 OKé");
}

// ---- property tests ---------------------------------------------------------------------------

fn text_strategy() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec![
        'A', 'z', '0', '9', ' ', '.', ':', '-', '[', 'é', '£', '退', '货', '成', '功', '金', '额',
        '¥', '商', '户', '😀', '€', 'ß',
    ]);
    prop::collection::vec(chars, 0..20).prop_map(|v| v.into_iter().collect())
}

#[derive(Debug, Clone)]
struct Seg {
    text: String,
    zh: bool,
    w: u8,
    h: u8,
    bold: bool,
    ul: u8,
    align: Align,
}

fn seg_strategy() -> impl Strategy<Value = Seg> {
    (
        text_strategy(),
        any::<bool>(),
        1u8..=8,
        1u8..=8,
        any::<bool>(),
        0u8..=2,
        prop::sample::select(vec![Align::Left, Align::Center, Align::Right]),
    )
        .prop_map(|(text, zh, w, h, bold, ul, align)| Seg {
            text,
            zh,
            w,
            h,
            bold,
            ul,
            align,
        })
}

proptest! {
    #[test]
    fn builder_parser_round_trip(segs in prop::collection::vec(seg_strategy(), 1..12),
                                 cols in prop::sample::select(vec![32usize, 42, 48]),
                                 splits in prop::collection::vec(any::<prop::sample::Index>(), 0..4)) {
        let mut b = ReceiptBuilder::new(cols).init();
        for s in &segs {
            b = b.align(s.align).size(s.w, s.h).bold(s.bold).underline(s.ul);
            b = if s.zh { b.line_zh(&s.text) } else { b.line(&s.text) };
        }
        let bytes = b.cut().build();
        // Random splits parse the same as one piece.
        let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut p = Parser::new();
        let mut last = 0;
        for c in cuts {
            p.feed(&bytes[last..c]);
            last = c;
        }
        p.feed(&bytes[last..]);
        let r = p.finish();
        prop_assert_eq!(&r, &parse(&bytes));

        let lines: Vec<&Line> = r.lines().collect();
        prop_assert_eq!(lines.len(), segs.len());
        for (l, s) in lines.iter().zip(&segs) {
            prop_assert_eq!(l.text(), s.text.clone());
            if !s.text.is_empty() {
                prop_assert_eq!(l.align, s.align);
            }
            // Sent in Chinese mode when forced or when PC437 lacks a character.
            let chinese_line = s.zh || s.text.chars().any(|c| !c.is_ascii() && !"é£ß¥".contains(c));
            for run in l.runs() {
                prop_assert_eq!((run.style.width, run.style.height), (s.w, s.h));
                prop_assert_eq!(run.style.bold, s.bold);
                prop_assert_eq!(run.style.underline, s.ul);
                prop_assert_eq!(run.style.chinese, chinese_line && !run.text.is_ascii());
            }
            let expect_cols: usize = s.text.chars()
                .map(|c| if chinese_line && !c.is_ascii() { 2 } else { 1 })
                .sum::<usize>() * usize::from(s.w);
            prop_assert_eq!(l.columns(), expect_cols);
        }
        prop_assert_eq!(r.cuts(), 1);
        let text = render_text(&r, cols);
        prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
    }

    #[test]
    fn line_lr_fills_the_paper(left in text_strategy(), right in text_strategy(),
                               cols in prop::sample::select(vec![32usize, 42, 48]),
                               w in 1u8..=2) {
        let b = ReceiptBuilder::new(cols).size(w, 1);
        let (lc, rc) = (b.columns_of(&left), b.columns_of(&right));
        let r = parse(&b.line_lr(&left, &right).build());
        let lines: Vec<&Line> = r.lines().collect();
        let cells = cols / usize::from(w) * usize::from(w);
        if lc + rc + usize::from(w) <= cells {
            prop_assert_eq!(lines.len(), 1);
            prop_assert_eq!(lines[0].columns(), cells);
            let t = lines[0].text();
            prop_assert!(t.starts_with(left.as_str()) && t.ends_with(right.as_str()));
        } else {
            prop_assert_eq!(lines.len(), 2);
            prop_assert_eq!(lines[0].text(), left.clone());
            let second = lines[1].text();
            prop_assert_eq!(second.trim_start_matches(' '), right.trim_start_matches(' '));
        }
    }

    #[test]
    fn any_bytes_any_split(bytes in prop::collection::vec(any::<u8>(), 0..400),
                           at in any::<prop::sample::Index>()) {
        let cut = at.index(bytes.len() + 1);
        let mut p = Parser::new();
        p.feed(&bytes[..cut]);
        p.feed(&bytes[cut..]);
        let r = p.finish();
        prop_assert_eq!(&r, &parse(&bytes));
        for cols in [32, 42, 48] {
            let text = render_text(&r, cols);
            prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{:?}", text);
            let _ = render_html(&r, cols);
        }
    }

    #[test]
    fn escpos_heavy_bytes_any_split(bytes in prop::collection::vec(
            prop::sample::select(vec![0x1B, 0x1D, 0x1C, 0x10, 0x0A, 0x00, 0x01, 0x21, 0x26, 0x28,
                                      0x6B, 0x56, 0x76, 0x30, 0x31, 0x41, 0x44, 0x80, 0x81, 0xCD,
                                      0xFE, 0x39, 0x2E, 0x51, 0x50, 0x03, 0x02]), 0..300),
            at in any::<prop::sample::Index>()) {
        let cut = at.index(bytes.len() + 1);
        let mut p = Parser::new();
        p.feed(&bytes[..cut]);
        p.feed(&bytes[cut..]);
        prop_assert_eq!(p.finish(), parse(&bytes));
    }
}

#[test]
fn fuzz_crash_46651eb7() {
    // Fuzz find: ESC D whose 33rd list byte is the NUL; 32 bytes without NUL were taken as a
    // full list before the 33rd arrived, so the parse depended on the split.
    let data = b"\x1dv0\x00\x00\x00\x00\x1c-\x01\xbb\xf5\x1bD\x04\x08\x04\x99\x99\x99\x99\x99\x87\x99\x99\x99\x99\x99\x99a\x09b\x09c\x1b&\x03 !\x02ab\xa3\x1dv0\x00\x00\x00\x00\x1c-\x01\xbb\xf5\x1bD\x04\x08\x04\x99\x99\x99\xfa\x10\x04\x01\x1b(\x01\x00\x01";
    assert_split_invariant(data);
}

#[test]
fn bit_image_and_streamed_commands() {
    // ESC * 33 nL=2 nH=0: 24-dot double density, 2 columns × 3 bytes.
    let r = assert_split_invariant(b"\x1b*\x21\x02\x00abcdefX\n");
    let Item::Image(img) = &r.items[0] else {
        panic!("{r:?}")
    };
    assert_eq!(
        (img.kind, img.width, img.height, img.len),
        (ImageKind::BitImage, 2, 24, 6)
    );
    assert_eq!(r.lines().next().unwrap().text(), "X");
    // ESC * with an unknown mode keeps ESC * only.
    let r = parse(b"\x1b*qY\n");
    assert_eq!(markers(only_line(&r)), vec![vec![0x1B, 0x2A]]);
    assert_eq!(only_line(&r).text(), "qY");
    // GS ( L, ESC ( A, FS ( A: pL pH framed, payload kept in the marker.
    for head in [&b"\x1d(L"[..], b"\x1b(A", b"\x1c(A"] {
        let mut s = head.to_vec();
        s.extend_from_slice(&[3, 0, 0x30, 0x31, 0x32]);
        s.extend_from_slice(b"Z\n");
        let r = assert_split_invariant(&s);
        let l = only_line(&r);
        assert_eq!(l.text(), "Z");
        assert_eq!(markers(l), vec![s[..s.len() - 2].to_vec()]);
    }
    // ESC & 3 32 33: two user-defined characters of x = 2 columns × 3 bytes each.
    let mut s = b"\x1b&\x03\x20\x21".to_vec();
    s.extend_from_slice(&[2, 1, 2, 3, 4, 5, 6, 2, 1, 2, 3, 4, 5, 6]);
    s.extend_from_slice(b"Q\n");
    let r = assert_split_invariant(&s);
    assert_eq!(only_line(&r).text(), "Q");
    // DLE DC4 1 m t (drawer pulse) and DLE ENQ n.
    let r = assert_split_invariant(b"\x10\x14\x01\x00\x05\x10\x05\x02R\n");
    assert_eq!(markers(only_line(&r)).len(), 2);
    assert_eq!(only_line(&r).text(), "R");
}

#[test]
fn kanji_underline_fs_minus() {
    let r = parse(b"\x1c\x26\x1c-\x02\xcd\xcbA\x1c-0\xcd\xcb\n");
    let rs = runs(only_line(&r));
    assert_eq!(
        (rs[0].1.underline, rs[1].1.underline, rs[2].1.underline),
        (2, 0, 0)
    );
}
