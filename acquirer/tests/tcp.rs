//! The TCP adapter over real sockets on 127.0.0.1 (port 0), wall clock.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use acquirer::cli::{AcquirerArgs, load};
use acquirer::tcp::{ServeHandle, serve};
use acquirer::{Directive, Host};
use common::*;
use protocol::iso8583::{Dialect, Message, MessageRef, Mti};
use protocol::time::{Clock, WallClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(10);

async fn start(host: Host) -> (Arc<Mutex<Host>>, ServeHandle) {
    let host = Arc::new(Mutex::new(host));
    let server = serve(
        "tcp://127.0.0.1:0",
        host.clone(),
        Arc::new(WallClock::new(1.0)),
    )
    .await
    .unwrap();
    assert!(server.local_addr().ip().is_loopback());
    (host, server)
}

/// Reads whole frames until `n` have arrived.
async fn read_frames(s: &mut TcpStream, d: &Dialect, n: usize) -> Vec<Message> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 512];
    while out.len() < n {
        while let Some(f) = d.length_prefix.decode(&mut buf).unwrap() {
            out.push(MessageRef::decode(d, &f).unwrap().to_owned());
        }
        if out.len() >= n {
            break;
        }
        let k = tokio::time::timeout(LIMIT, s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(k > 0, "connection closed after {} frames", out.len());
        buf.extend_from_slice(&chunk[..k]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_joined_writes() {
    let mut t = Term::cup();
    let (host, server) = start(std::mem::replace(
        &mut t.host,
        Host::new(config("cup", None)),
    ))
    .await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    // One sale, written a few bytes at a time.
    let mut sale = t.sale(10000);
    let w = t.wire(&mut sale);
    for part in w.chunks(5) {
        s.write_all(part).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let r = read_frames(&mut s, &t.d, 1).await;
    assert_eq!(r[0].get_str(39), Some("00"));
    // Two refunds in one write.
    let mut r1 = t.refund(1000, PAN, &sale, &r[0]);
    let mut r2 = t.refund(2000, PAN, &sale, &r[0]);
    let joined = [t.wire(&mut r1), t.wire(&mut r2)].concat();
    s.write_all(&joined).await.unwrap();
    let rs = read_frames(&mut s, &t.d, 2).await;
    assert_eq!(
        rs.iter()
            .map(|m| (
                m.mti.value(),
                m.get_str(39).unwrap().to_string(),
                m.get_str(4).unwrap().to_string()
            ))
            .collect::<Vec<_>>(),
        [
            (230, "00".to_string(), "000000001000".to_string()),
            (230, "00".into(), "000000002000".into())
        ]
    );
    drop(s);
    // The host hears the close.
    let closed = || {
        host.lock()
            .unwrap()
            .log()
            .last()
            .and_then(|e| e.note.clone())
            .is_some_and(|n| n.contains("closed by the terminal"))
    };
    tokio::time::timeout(LIMIT, async {
        while !closed() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    server.shutdown().await;
    assert_eq!(host.lock().unwrap().ledger().records().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_terminals_at_once() {
    let (host, server) = start(Host::new(config("iso87-ascii", Some("usd-1pct.yaml")))).await;
    let addr = server.local_addr();
    let mut tasks = Vec::new();
    for tid in ["30250001", "40250001", "50250001", "60250001", "60250002"] {
        for conn in 0..2u32 {
            tasks.push(tokio::spawn(async move {
                let mut t = Term::iso87(tid, None);
                t.stan = conn * 100;
                let mut s = TcpStream::connect(addr).await.unwrap();
                let mut codes = Vec::new();
                for _ in 0..3 {
                    let mut sale = t.sale(5000);
                    s.write_all(&t.wire(&mut sale)).await.unwrap();
                    let r = read_frames(&mut s, &t.d, 1).await.remove(0);
                    assert_eq!(r.get_str(11), sale.get_str(11));
                    assert_eq!(r.get_str(41), Some(tid));
                    codes.push(r.get_str(39).unwrap().to_string());
                    let mut refund = t.refund(1000, PAN, &sale, &r);
                    s.write_all(&t.wire(&mut refund)).await.unwrap();
                    let rr = read_frames(&mut s, &t.d, 1).await.remove(0);
                    assert_eq!(rr.get_str(11), refund.get_str(11));
                    codes.push(rr.get_str(39).unwrap().to_string());
                }
                codes
            }));
        }
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), ["00"; 6]);
    }
    server.shutdown().await;
    let h = host.lock().unwrap();
    assert_eq!(h.ledger().records().len(), 5 * 2 * 6);
    let conns: std::collections::BTreeSet<_> = h.log().iter().map(|e| e.conn).collect();
    assert_eq!(conns.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_reply_and_scripted_close() {
    let mut host = Host::new(config("iso87-ascii", None));
    host.script(Directive::new().field("4", "000000000100").delay_ms(150));
    host.script(
        Directive::new()
            .field("4", "000000000200")
            .fault(acquirer::Fault::Close),
    );
    let (host, server) = start(host).await;
    let mut t = Term::iso87("30250001", None);
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut sale = t.sale(100);
    s.write_all(&t.wire(&mut sale)).await.unwrap();
    let r = read_frames(&mut s, &t.d, 1).await;
    assert_eq!(r[0].get_str(39), Some("00"));
    let mut sale = t.sale(200);
    s.write_all(&t.wire(&mut sale)).await.unwrap();
    let mut b = [0u8; 16];
    let n = tokio::time::timeout(LIMIT, s.read(&mut b))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the host closes without a reply");
    server.shutdown().await;
    let h = host.lock().unwrap();
    assert_eq!(h.ledger().records().len(), 2);
    let delayed = h
        .log()
        .iter()
        .find(|e| e.note.as_deref() == Some("delayed 150 ms"))
        .unwrap();
    assert_eq!(delayed.mti.as_deref(), Some("0210"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_open_connections() {
    let (_host, server) = start(Host::new(config("cup", None))).await;
    let mut s = TcpStream::connect(server.local_addr()).await.unwrap();
    s.write_all(&[0, 40, 1]).await.unwrap(); // an unfinished frame
    tokio::time::sleep(Duration::from_millis(50)).await;
    tokio::time::timeout(LIMIT, server.shutdown())
        .await
        .unwrap();
    let mut b = [0u8; 4];
    let n = tokio::time::timeout(LIMIT, s.read(&mut b))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[test]
fn cli_load_reads_journal_and_script() {
    let dir = std::env::temp_dir().join(format!("posrig-acquirer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("journal.yaml");
    std::fs::write(
        &journal,
        "description: one sale\ntransactions:\n  - id: sale1\n    type: sale\n    status: approved\n    card: unionpay_debit_01\n    amount: \"100.00\"\n    stan: \"000001\"\n    batch: \"000001\"\n    rrn: \"000000000001\"\n    auth_code: \"A00001\"\n    at: \"D0 09:00\"\n",
    )
    .unwrap();
    let script = dir.join("script.yaml");
    std::fs::write(&script, "- match: {mti: \"0220\"}\n  reply: {39: \"05\"}\n").unwrap();
    let args = AcquirerArgs {
        listen: "tcp://127.0.0.1:0".into(),
        dialect: "cup".into(),
        fixtures: fixtures().to_path_buf(),
        fees: Some(fixtures().join("fees/cny-0.6pct.yaml")),
        script: Some(script.clone()),
        journal: Some(journal),
    };
    let host = load(&args, t0()).unwrap();
    let rec = &host.ledger().records()[0];
    assert_eq!(
        (rec.terminal_id.as_str(), rec.rrn.as_str()),
        (CUP_TID, "000000000001")
    );
    assert_eq!(rec.fee.to_string(), "0.60");
    let mut t = Term::with(host, CUP_TID);
    t.keys = t.host.working_keys(CUP_TID);
    let mut fake_sale = t.sale(10000);
    fake_sale.set(11, "000001");
    let mut fake_reply = Message::new(Mti::new(210).unwrap());
    fake_reply.set(37, "000000000001").set(13, "1126");
    let mut r = t.refund(100, PAN, &fake_sale, &fake_reply);
    assert_eq!(t.code(&mut r), "05");
    // A bad script is located.
    std::fs::write(&script, "- match: {mti: \"0220\"}\n  fault: nope\n").unwrap();
    let e = load(&args, t0()).unwrap_err().to_string();
    assert!(e.contains("script.yaml:2:"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_run_until_serves_and_stops() {
    let args = AcquirerArgs {
        listen: "127.0.0.1:0".into(),
        fixtures: fixtures().to_path_buf(),
        ..AcquirerArgs::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(WallClock::new(1.0));
    let r = tokio::time::timeout(
        LIMIT,
        acquirer::cli::run_until(args, clock, tokio::time::sleep(Duration::from_millis(50))),
    )
    .await
    .unwrap();
    r.unwrap();
    let bad = AcquirerArgs {
        listen: "127.0.0.1:notaport".into(),
        fixtures: fixtures().to_path_buf(),
        ..AcquirerArgs::default()
    };
    let e = acquirer::cli::run_until(bad, Arc::new(WallClock::new(1.0)), async {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot listen on"), "{e}");
}
