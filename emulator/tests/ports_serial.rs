//! The ECR port and the rig link on serial lines: real pseudo-terminal pairs made in-process.
//! The emulator opens the slave by its path (`serial:///dev/pts/N?…`) as it would a USB
//! adapter; the test speaks on the master — ZVT with the serial link layer (DLE STX … CRC,
//! ACK/NAK) through the shared ECR sequencer, and the rig link through the shared client.

mod common;

use std::sync::Mutex;

use common::*;
use emulator::journal::Outcome;
use emulator::ports::{Endpoint, SerialSpec};
use protocol::fixture::journal::TxnType;
use protocol::riglink::Report;
use protocol::zvt::bmp::Bcd;
use protocol::zvt::command::{Command, OriginalRef, Refund};
use protocol::zvt::ecr::EcrEvent;
use protocol::zvt::transport::Transport;
use serialport::{SerialPort, TTYPort};

/// `TTYPort::pair` is not thread-safe (serialport's docs): one at a time in this process.
static PTY: Mutex<()> = Mutex::new(());

/// (master, slave, slave path). The slave stays open in the test so the line never hangs up
/// while the emulator reopens it.
fn pty() -> (TTYPort, TTYPort, String) {
    let _one = PTY.lock().unwrap_or_else(|e| e.into_inner());
    let (master, slave) = TTYPort::pair().expect("a pseudo-terminal pair");
    let path = slave.name().expect("the slave's path");
    (master, slave, path)
}

fn async_master(m: TTYPort) -> Box<dyn Io> {
    Box::new(tokio_serial::SerialStream::try_from(m).unwrap())
}

fn eur_refund(minor: u64) -> Command {
    let mut z = Refund {
        password: Bcd::from_digits("123456").unwrap(),
        amount_minor: Some(minor),
        currency: Some(978),
        payment_type: Some(0x40),
        ..Default::default()
    };
    z.set_original_ref(&OriginalRef::RrnDate {
        rrn: "000000000201".into(),
        month: 11,
        day: 26,
    })
    .unwrap();
    Command::Refund(z)
}

/// A refund from an ECR on a serial line at 9600 8N2: a frame with a bad CRC is NAKed and
/// costs nothing, then the real command runs end to end with link-level ACKs both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_refund_over_a_serial_line() {
    let (master, _slave, path) = pty();
    refund_over_serial(&path, async_master(master)).await;
}

/// The same refund across a null-modem made by socat, an independent program: two ptys it
/// joins byte for byte, with its own line settings — the emulator opens one end by the link
/// socat made, the ECR the other. Skips with a message where socat is not installed
/// (`.ci/run` installs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_refund_across_a_socat_null_modem() {
    if std::process::Command::new("socat")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED ecr_refund_across_a_socat_null_modem: socat is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (terminal_end, ecr_end) = (dir.path().join("terminal"), dir.path().join("ecr"));
    let mut socat = std::process::Command::new("socat")
        .arg(format!("PTY,raw,echo=0,link={}", terminal_end.display()))
        .arg(format!("PTY,raw,echo=0,link={}", ecr_end.display()))
        .spawn()
        .unwrap();
    eventually("socat made both ends", || {
        terminal_end.exists() && ecr_end.exists()
    })
    .await;
    let ecr_port =
        tokio_serial::SerialStream::open(&tokio_serial::new(path_str(&ecr_end), 9600)).unwrap();
    refund_over_serial(&path_str(&terminal_end), Box::new(ecr_port)).await;
    let _ = socat.kill();
    let _ = socat.wait();
}

/// Runs one refund with the emulator's ECR port on the serial device `path` and the cash
/// register speaking on `line`.
async fn refund_over_serial(path: &str, line: Box<dyn Io>) {
    let mut spec = Spec::new("zvt-en-eur.yaml");
    spec.journal = Some("eur-open-batch.yaml");
    spec.signed_on = true;
    spec.ecr =
        Some(Endpoint::parse(&format!("serial://{path}?baud=9600"), SerialSpec::zvt).unwrap());
    let w = setup(&spec).await;
    let emu = start(&w, &spec).await;
    assert!(emu.ecr_addr.is_none());
    let mut rig = Rig::connect(emu.signals_addr.unwrap()).await;
    let mut ecr = Ecr::over(line, Transport::serial(Default::default()));

    // 06 31 with its CRC broken: the PT answers NAK (15) and does nothing.
    let mut frame = protocol::zvt::link::encode_frame(&eur_refund(1000).to_bytes().unwrap());
    let n = frame.len();
    frame[n - 1] ^= 0xFF;
    ecr.write_raw(&frame).await;
    assert_eq!(ecr.read_raw(LIMIT).await, [0x15], "NAK");
    assert!(
        rig.display.iter().any(|l| l.contains("WELCOME")),
        "{:?}",
        rig.display
    );

    ecr.start(&eur_refund(1000)).await;
    let driver = tokio::spawn(async move {
        let evs = ecr.until(is_end).await;
        (ecr, evs)
    });
    rig.wait_display("SWIPE/INSERT/TAP").await;
    rig.ok("CARD INSERT visa_credit_01").await;
    let (ecr, evs) = driver.await.unwrap();
    assert!(
        matches!(evs.last(), Some(EcrEvent::Completed { .. })),
        "{evs:?}"
    );
    assert_eq!(status_result(&evs), Some(0x00), "{evs:?}");
    // The serial link really ran: frames were acknowledged at the link level.
    let Transport::Serial(link) = ecr.s.transport() else {
        panic!("serial transport")
    };
    let st = link.stats();
    assert!(st.frames_sent > 0 && st.acks_received > 0, "{st:?}");
    rig.wait_display("REFUND APPROVED").await;
    emu.stop().await;
    let j = w.journal();
    let r: Vec<_> = j
        .txns
        .iter()
        .filter(|t| t.kind == TxnType::Refund)
        .collect();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].outcome, Outcome::Approved);
}

/// The rig link on a serial line (115200 8N1 by default): the session starts with `!0 BOOT`
/// without a connection; HELLO, keys and GET work as on TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rig_link_over_a_serial_line() {
    let (master, _slave, path) = pty();
    let mut spec = Spec::new("cup-zh-cny.yaml");
    spec.signals = Some(Endpoint::parse(&path, SerialSpec::riglink).unwrap());
    let w = setup(&spec).await;
    let emu = start(&w, &spec).await;
    assert!(emu.signals_addr.is_none());
    let mut rig = Rig::over(async_master(master)).await;
    assert!(
        rig.events.iter().any(|e| matches!(e, Report::Boot { .. })),
        "{:?}",
        rig.events
    );
    assert!(
        rig.display.iter().any(|l| l.contains("欢迎光临")),
        "{:?}",
        rig.display
    );
    rig.ok("KEY MENU").await;
    rig.wait_display("1.").await;
    rig.ok("KEY CANCEL").await;
    rig.wait_display("欢迎光临").await;
    assert_eq!(rig.ok("GET POWER").await, Some(Report::Power(true)));
    emu.stop().await;
}
