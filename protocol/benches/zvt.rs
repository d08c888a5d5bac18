//! ZVT codec throughput: 06 31 encode+decode, the real 90-byte 04 0F of vectors.md (decode,
//! goal ≥ 1 000 000/s; encode), serial frame + deframe.
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::time::Instant;
use protocol::zvt::bmp::{Bcd, CardNumber, Password};
use protocol::zvt::command::{Command, Context, ManualCard, OriginalRef, Refund};
use protocol::zvt::link::{SerialLink, encode_frame};

fn h(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// reference/vectors.md: status information after a Mastercard payment of 25.00 EUR (Feig).
const FEIG_04_0F: &str = "04 0F 5A 27 00 04 00 00 00 00 25 00 49 09 78 0C 22 55 58 0D 04 05
    22 F0 F8 55 98 83 EE EE EE 80 74 87 02 31 3B 37 35 30 30 37 31 00 00
    0B 00 09 75 19 60 29 52 52 35 35 0E 24 05 8A 06 8C 01
    8B F1 F1 4D 61 73 74 65 72 43 61 72 64 00
    2A 38 30 34 30 31 31 39 32 36 20 20 20 20 20 20";

fn refund() -> Command {
    let mut r = Refund {
        password: Password::from_digits("123456").unwrap(),
        amount_minor: Some(1995),
        currency: Some(978),
        payment_type: Some(0x40),
        card: ManualCard {
            expiry: Some(Bcd([0x28, 0x12])),
            pan: CardNumber::from_digits("6222021234567894"),
            ..Default::default()
        },
        ..Default::default()
    };
    r.set_original_ref(&OriginalRef::TraceBatch {
        trace: 123,
        batch: 1,
    })
    .unwrap();
    Command::Refund(r)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("zvt");
    g.throughput(Throughput::Elements(1));

    let r = refund();
    g.bench_function("06_31_encode_decode", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            out.clear();
            black_box(&r).encode(&mut out).unwrap();
            black_box(Command::decode(&out, Context::None).unwrap())
        })
    });

    let si = h(FEIG_04_0F);
    g.bench_function("04_0F_feig_decode", |b| {
        b.iter(|| black_box(Command::decode(black_box(&si), Context::None).unwrap()))
    });
    let si_cmd = Command::decode(&si, Context::None).unwrap();
    g.bench_function("04_0F_feig_encode", |b| {
        let mut out = Vec::with_capacity(128);
        b.iter(|| {
            out.clear();
            black_box(&si_cmd).encode(&mut out).unwrap();
            black_box(out.len())
        })
    });

    g.bench_function("serial_frame_deframe_04_0F", |b| {
        let mut link = SerialLink::default();
        let mut ms = 0;
        b.iter(|| {
            // Step past the duplicate window so every frame is delivered.
            ms += 20_000;
            let t = Instant::from_millis(ms);
            let frame = encode_frame(black_box(&si));
            link.handle_input(&frame, t);
            let ev = link.poll_event();
            let _ = link.poll_transmit(t);
            black_box(ev)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
