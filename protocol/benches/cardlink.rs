//! Throughput of the rig-link line decoder and of the card parsers.
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::card::emv::{EmvBuilder, EmvData};
use protocol::card::{Expiry, Pan, ServiceCode, Track2};
use protocol::riglink::{KeyName, Line, LineDecoder, Report, Request, encode_line};

fn riglink(c: &mut Criterion) {
    let lines = [
        Line::Request {
            seq: Some(12),
            request: Request::Keys {
                gap_ms: 100,
                keys: vec![KeyName::Digit(3); 4],
            },
        },
        Line::Event {
            seq: 7,
            report: Report::Display {
                lines: vec!["退货成功".into(), "REFUND OK".into(), "33.33".into()],
            },
        },
        Line::Event {
            seq: 8,
            report: Report::Printer {
                offset: 1024,
                bytes: (0..=255u8).collect(),
            },
        },
        Line::Ack {
            seq: Some(12),
            report: None,
        },
    ];
    let mut stream = Vec::new();
    for _ in 0..64 {
        for l in &lines {
            stream.extend_from_slice(encode_line(l).unwrap().as_bytes());
        }
    }
    let mut g = c.benchmark_group("riglink");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("decode_stream", |b| {
        b.iter(|| {
            let mut d = LineDecoder::new();
            for chunk in stream.chunks(64) {
                d.feed(black_box(chunk));
            }
            let mut n = 0;
            while let Some(r) = d.poll() {
                n += r.is_ok() as usize;
            }
            n
        })
    });
    g.throughput(Throughput::Elements(lines.len() as u64 * 64));
    g.bench_function("encode_lines", |b| {
        b.iter(|| {
            let mut n = 0;
            for _ in 0..64 {
                for l in &lines {
                    n += encode_line(black_box(l)).unwrap().len();
                }
            }
            n
        })
    });
    g.finish();
}

fn card(c: &mut Criterion) {
    let pan = Pan::new("6222021234567894").unwrap();
    let t2 = Track2::new(
        pan.clone(),
        Expiry::parse_yymm("3012").unwrap(),
        ServiceCode::parse("220").unwrap(),
        "1010000",
    )
    .unwrap();
    let raw = t2.encode();
    let emv = EmvBuilder::new()
        .nest(
            protocol::card::emv::tags::RECORD,
            EmvBuilder::new().pan(&pan).track2_equivalent(&t2).psn(1),
        )
        .amount(3333)
        .build();
    let mut g = c.benchmark_group("card");
    g.throughput(Throughput::Elements(1));
    g.bench_function("track2_parse", |b| {
        b.iter(|| Track2::parse(black_box(raw.expose())).is_ok())
    });
    g.bench_function("emv_parse_pan_amount", |b| {
        b.iter(|| {
            let d = EmvData::parse(black_box(&emv)).unwrap();
            (d.pan().unwrap().is_some(), d.amount_minor().unwrap())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = riglink, card
}
criterion_main!(benches);
