//! ESC/POS parse and render of a 40-line refund receipt (merchant copy, zh + en, sizes, QR,
//! cut), as the emulator prints it and the harness snapshots it.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::escpos::{Align, Parser, ReceiptBuilder, render_html, render_text};
use std::hint::black_box;

fn refund_receipt(cols: usize) -> Vec<u8> {
    let b = ReceiptBuilder::new(cols)
        .init()
        .align(Align::Center)
        .size(2, 2)
        .bold(true)
        .line_zh("银联POS签购单")
        .size(1, 1)
        .bold(false)
        .line("UNIONPAY POS SALES SLIP")
        .line_zh("商户存根 MERCHANT COPY")
        .align(Align::Left)
        .separator()
        .line_lr("商户名称 MERCHANT", "")
        .line_zh("  上海测试商户有限公司")
        .line_lr("商户编号 MID", "898310048990001")
        .line_lr("终端编号 TID", "10000001")
        .line_lr("操作员号 OPER", "01")
        .separator()
        .line_lr("卡号 CARD NO", "622848******1234")
        .line_lr("输入方式 ENTRY", "SWIPE")
        .line_lr("发卡行 ISSUER", "01030000")
        .line_lr("收单行 ACQUIRER", "48020000")
        .line_lr("有效期 EXP", "2812")
        .line_lr("交易类型 TYPE", "")
        .size(2, 2)
        .bold(true)
        .line_zh("退货 REFUND")
        .size(1, 1)
        .bold(false)
        .line_lr("批次号 BATCH", "000001")
        .line_lr("凭证号 VOUCHER", "000123")
        .line_lr("参考号 RRN", "000000000001")
        .line_lr("授权码 AUTH", "A1B2C3")
        .line_lr("日期时间 DATE", "2026/11/26 10:00:00")
        .separator()
        .size(2, 1)
        .line_lr("金额", "CNY 33.33")
        .size(1, 1)
        .line_lr("AMOUNT", "CNY 33.33")
        .line_lr("手续费 FEE", "0.20")
        .line_lr("结算金额 NET", "33.13")
        .separator()
        .line_lr("原凭证号 ORIG VOUCHER", "000042")
        .line_lr("原参考号 ORIG RRN", "000000000001")
        .line_lr("原交易日期 ORIG DATE", "1126")
        .separator()
        .line_zh("备注 REFERENCE:")
        .line("ECR REF 4711-0815")
        .feed(1)
        .line_zh("持卡人签名 CARDHOLDER SIGNATURE")
        .feed(2)
        .separator_with('_')
        .line_zh("本人确认以上交易，同意将其记入本卡账户")
        .line("I ACKNOWLEDGE SATISFACTORY RECEIPT")
        .line_lr("应用标识 AID", "A000000333010101")
        .line_lr("TC", "1A2B3C4D5E6F7A8B")
        .align(Align::Center)
        .line_zh("谢谢惠顾 THANK YOU")
        .align(Align::Center)
        .qr("https://example.invalid/r/000000000001")
        .expect("short QR");
    b.align(Align::Left).feed(3).cut_partial().build()
}

fn bench(c: &mut Criterion) {
    let bytes = refund_receipt(32);
    let receipt = Parser::parse(&bytes);
    let lines = receipt.lines().count();
    assert!(lines >= 40, "{lines} lines");
    let mut g = c.benchmark_group("escpos");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("parse", |b| b.iter(|| Parser::parse(black_box(&bytes))));
    g.bench_function("parse_split_16", |b| {
        b.iter(|| {
            let mut p = Parser::new();
            for chunk in black_box(&bytes).chunks(16) {
                p.feed(chunk);
            }
            p.finish()
        })
    });
    g.bench_function("render_text", |b| {
        b.iter(|| render_text(black_box(&receipt), 32))
    });
    g.bench_function("render_html", |b| {
        b.iter(|| render_html(black_box(&receipt), 32))
    });
    g.bench_function("parse_render_text", |b| {
        b.iter(|| render_text(&Parser::parse(black_box(&bytes)), 32))
    });
    g.bench_function("build", |b| b.iter(|| refund_receipt(black_box(32))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
