//! ISO 8583 codec speed on the CUP 0220 refund advice of reference/vectors.md (128-byte frame,
//! 14 fields). Goal: ≥ 2,000,000 encodes/s and ≥ 2,000,000 decodes/s on one core.
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::iso8583::keys::DoubleKey;
use protocol::iso8583::{Dialect, MessageRef, mac};

const CUP_0220_HEX: &str = "\
600003000060310000000002207020048028c080191962220212345678901230200000000000001000000124\
021000316222021234567890123d30121011234031323334353637383930313231323334353637383132333435\
363738393031323334353135360011250000010000001600000100012311260000000000000000";

fn frame() -> Vec<u8> {
    (0..CUP_0220_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&CUP_0220_HEX[i..i + 2], 16).unwrap())
        .collect()
}

fn bench(c: &mut Criterion) {
    let cup = Dialect::builtin("cup").unwrap();
    let frame = frame();
    let msg = MessageRef::decode(&cup, &frame).unwrap().to_owned();

    let mut g = c.benchmark_group("iso8583_cup_0220");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let m = MessageRef::decode(&cup, black_box(&frame)).unwrap();
            black_box(m.mti);
        })
    });
    let mut buf = Vec::with_capacity(256);
    g.bench_function("encode_into", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&msg).encode_into(&cup, &mut buf).unwrap();
            black_box(buf.len());
        })
    });
    g.bench_function("decode_to_owned", |b| {
        b.iter(|| {
            black_box(
                MessageRef::decode(&cup, black_box(&frame))
                    .unwrap()
                    .to_owned(),
            )
        })
    });
    let key = DoubleKey::from_hex("11223344556677888877665544332211").unwrap();
    let mut signed = msg.clone();
    g.bench_function("encode_with_x919_mac", |b| {
        b.iter(|| {
            buf.clear();
            mac::sign(&cup, &mut signed, &key, &mut buf).unwrap();
            black_box(buf.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
