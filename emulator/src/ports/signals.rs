//! The signals port: the rig link server (`hil-rigs/PROTOCOL.md`) on TCP or a serial line.
//!
//! The protocol is `protocol::riglink::ServerSession`'s (HELLO, PING, MODE, duplicates, bad
//! lines and their `ERR` replies are answered there); this module moves its lines and keeps
//! what a `GET` reads ([`RigView`]). The runtime turns each request into core events.
//!
//! On TCP one client is served at a time and a new connection is a new session (it starts with
//! `!0 BOOT`); a new client replaces the old one. Events are pushed to the connected client
//! only — a client that connects later reads the state with `GET`. On a serial line there is no
//! connection: one session lives as long as the process and the client starts with `HELLO`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use protocol::riglink::{
    CardName, ErrCode, FaultKind, Incoming, LedState, MAX_PRINTER_CHUNK, Outcome, Report, RigState,
    ServerSession, Tone,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_serial::SerialStream;

use super::{Endpoint, PortError};

/// The name the emulator gives in `BOOT` and `HELLO`.
pub const RIG_NAME: &str = concat!("posrig-emulator/", env!("CARGO_PKG_VERSION"));
/// Printer bytes held for `GET PRINTER` (PROTOCOL.md asks for at least 4096).
pub const PRINTER_KEEP: usize = 64 * 1024;

const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const SERIAL_RETRY: Duration = Duration::from_millis(200);

/// What happened on the signals port.
#[derive(Debug)]
pub enum SigIn {
    /// A client connected (TCP); its session has started.
    Connected {
        peer: SocketAddr,
        replaced: bool,
    },
    /// Bytes were fed to the session: requests may be waiting.
    Input,
    /// The client went (TCP), or the serial line failed.
    Closed(String),
    Nothing,
}

enum Line {
    Tcp {
        listener: TcpListener,
        conn: Option<TcpStream>,
    },
    Serial {
        port: SerialStream,
        failing: bool,
    },
}

pub struct SignalsPort {
    line: Line,
    session: Option<ServerSession>,
    buf: Vec<u8>,
}

fn new_session() -> ServerSession {
    ServerSession::new(RIG_NAME, &protocol::riglink::Capability::ALL)
}

async fn read_opt(conn: &mut Option<TcpStream>, buf: &mut [u8]) -> std::io::Result<usize> {
    match conn.as_mut() {
        Some(c) => c.read(buf).await,
        None => std::future::pending().await,
    }
}

impl SignalsPort {
    pub async fn open(endpoint: &Endpoint, listen_any: bool) -> Result<SignalsPort, PortError> {
        let (line, session) = match endpoint {
            Endpoint::Tcp(addr) => (
                Line::Tcp {
                    listener: super::bind("signals", addr, listen_any).await?,
                    conn: None,
                },
                None,
            ),
            Endpoint::Serial(spec) => (
                Line::Serial {
                    port: super::open_serial("signals", spec)?,
                    failing: false,
                },
                Some(new_session()),
            ),
        };
        Ok(SignalsPort {
            line,
            session,
            buf: vec![0; 4096],
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.line {
            Line::Tcp { listener, .. } => listener.local_addr().ok(),
            Line::Serial { .. } => None,
        }
    }

    /// A client is there to hear events.
    pub fn has_client(&self) -> bool {
        self.session.is_some()
    }

    /// The next thing that happens on the port; input goes into the session. Cancel-safe.
    pub async fn next(&mut self) -> SigIn {
        match &mut self.line {
            Line::Tcp { listener, conn } => tokio::select! {
                a = listener.accept() => match a {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let replaced = conn.replace(stream).is_some();
                        self.session = Some(new_session());
                        SigIn::Connected { peer, replaced }
                    }
                    Err(e) => {
                        tracing::warn!("signals: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        SigIn::Nothing
                    }
                },
                r = read_opt(conn, &mut self.buf) => match r {
                    Ok(n) if n > 0 => {
                        if let (Some(s), Some(b)) = (self.session.as_mut(), self.buf.get(..n)) {
                            s.handle_input(b);
                        }
                        SigIn::Input
                    }
                    Ok(_) => {
                        *conn = None;
                        self.session = None;
                        SigIn::Closed("closed by the client".into())
                    }
                    Err(e) => {
                        *conn = None;
                        self.session = None;
                        SigIn::Closed(e.to_string())
                    }
                },
            },
            Line::Serial { port, failing } => {
                if *failing {
                    tokio::time::sleep(SERIAL_RETRY).await;
                }
                match port.read(&mut self.buf).await {
                    Ok(n) if n > 0 => {
                        *failing = false;
                        if let (Some(s), Some(b)) = (self.session.as_mut(), self.buf.get(..n)) {
                            s.handle_input(b);
                        }
                        SigIn::Input
                    }
                    r => {
                        if std::mem::replace(failing, true) {
                            SigIn::Nothing
                        } else {
                            SigIn::Closed(match r {
                                Err(e) => e.to_string(),
                                Ok(_) => "the serial line hung up".into(),
                            })
                        }
                    }
                }
            }
        }
    }

    /// The next request to carry out (one at a time: see `ServerSession::poll_request`).
    pub fn poll_request(&mut self) -> Option<Incoming> {
        self.session.as_mut()?.poll_request()
    }

    /// Answers the request last handed out.
    pub fn reply(&mut self, outcome: Outcome) {
        if let Some(s) = self.session.as_mut() {
            s.reply(outcome);
        }
    }

    /// Queues an event for the client, if one is there.
    pub fn event(&mut self, report: Report) {
        if let Some(s) = self.session.as_mut()
            && let Err(e) = s.push_event(report)
        {
            tracing::warn!("signals: event not sent: {e}");
        }
    }

    /// Writes every queued line. A TCP client that cannot take them is dropped.
    pub async fn flush(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let mut out = String::new();
        while let Some(l) = session.poll_transmit() {
            out.push_str(&l);
        }
        if out.is_empty() {
            return;
        }
        match &mut self.line {
            Line::Tcp { conn, .. } => {
                let Some(c) = conn.as_mut() else { return };
                let ok = matches!(
                    tokio::time::timeout(WRITE_TIMEOUT, c.write_all(out.as_bytes())).await,
                    Ok(Ok(()))
                );
                if !ok {
                    tracing::warn!("signals: client not reading; dropped");
                    *conn = None;
                    self.session = None;
                }
            }
            Line::Serial { port, .. } => {
                if !matches!(
                    tokio::time::timeout(WRITE_TIMEOUT, port.write_all(out.as_bytes())).await,
                    Ok(Ok(()))
                ) {
                    tracing::warn!("signals: serial write failed");
                }
            }
        }
    }
}

/// What the rig shows, kept for `GET` and `GET STATE`.
#[derive(Clone, Debug)]
pub struct RigView {
    pub power: bool,
    pub display: Vec<String>,
    pub leds: [LedState; 4],
    printer: Vec<u8>,
    /// Printer bytes since power-on that are no longer held.
    printer_base: u32,
    pub beeps: u32,
    pub last_tone: Option<Tone>,
    pub faults: BTreeSet<FaultKind>,
    /// The card in the chip slot.
    pub card: Option<CardName>,
}

impl Default for RigView {
    fn default() -> Self {
        RigView {
            power: false,
            display: Vec::new(),
            leds: [LedState::Off; 4],
            printer: Vec::new(),
            printer_base: 0,
            beeps: 0,
            last_tone: None,
            faults: BTreeSet::new(),
            card: None,
        }
    }
}

impl RigView {
    /// Printer bytes since power-on.
    pub fn printed(&self) -> u32 {
        self.printer_base
            .saturating_add(u32::try_from(self.printer.len()).unwrap_or(u32::MAX))
    }

    /// Power-on: printer and beeper counts start again (PROTOCOL.md: "since power-on").
    pub fn powered_on(&mut self) {
        self.power = true;
        self.printer.clear();
        self.printer_base = 0;
        self.beeps = 0;
        self.last_tone = None;
    }

    /// Power-off: the screen and LEDs go dark, faults and the card are gone.
    pub fn powered_off(&mut self) {
        self.power = false;
        self.display.clear();
        self.leds = [LedState::Off; 4];
        self.faults.clear();
        self.card = None;
    }

    /// Takes printed bytes; returns the `PRINTER` events (chunks of at most 256 bytes).
    pub fn print(&mut self, bytes: &[u8]) -> Vec<Report> {
        let mut offset = self.printed();
        let events = bytes
            .chunks(MAX_PRINTER_CHUNK)
            .map(|c| {
                let r = Report::Printer {
                    offset,
                    bytes: c.to_vec(),
                };
                offset = offset.saturating_add(c.len() as u32);
                r
            })
            .collect();
        self.printer.extend_from_slice(bytes);
        if self.printer.len() > PRINTER_KEEP {
            let drop = self.printer.len() - PRINTER_KEEP;
            self.printer.drain(..drop);
            self.printer_base = self.printer_base.saturating_add(drop as u32);
        }
        events
    }

    /// `GET PRINTER <from>`: up to 256 bytes from `from`.
    pub fn printer_from(&self, from: u32) -> Outcome {
        if from < self.printer_base {
            return Outcome::Failed(
                ErrCode::Gone,
                format!(
                    "printer bytes before {} are no longer held",
                    self.printer_base
                ),
            );
        }
        let start = (from - self.printer_base) as usize;
        let bytes = self
            .printer
            .get(start..)
            .map(|b| b.get(..MAX_PRINTER_CHUNK).unwrap_or(b).to_vec())
            .unwrap_or_default();
        Outcome::Data(Report::Printer {
            offset: from,
            bytes,
        })
    }

    /// A beep: the `BEEP` event.
    pub fn beep(&mut self, tone: Tone) -> Report {
        self.beeps = self.beeps.saturating_add(1);
        self.last_tone = Some(tone);
        Report::Beep {
            tone,
            count: self.beeps,
        }
    }

    /// `GET STATE` (the session fills in the event number).
    pub fn state(&self) -> RigState {
        RigState {
            event_seq: 0,
            power: self.power,
            card: self.card.clone(),
            faults: self.faults.iter().copied().collect(),
            printed: self.printed(),
            beeps: self.beeps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_history_is_chunked_and_bounded() {
        let mut v = RigView::default();
        v.powered_on();
        let ev = v.print(&[0xAA; 600]);
        assert_eq!(ev.len(), 3);
        assert!(matches!(&ev[2], Report::Printer { offset: 512, bytes } if bytes.len() == 88));
        assert_eq!(
            v.printer_from(590),
            Outcome::Data(Report::Printer {
                offset: 590,
                bytes: vec![0xAA; 10]
            })
        );
        assert_eq!(
            v.printer_from(600),
            Outcome::Data(Report::Printer {
                offset: 600,
                bytes: vec![]
            })
        );
        v.print(&vec![0x55; PRINTER_KEEP]);
        assert_eq!(v.printed(), 600 + PRINTER_KEEP as u32);
        assert!(matches!(
            v.printer_from(0),
            Outcome::Failed(ErrCode::Gone, _)
        ));
        assert!(matches!(
            v.printer_from(600),
            Outcome::Data(Report::Printer { offset: 600, .. })
        ));
        v.powered_on();
        assert_eq!(v.printed(), 0);
    }
}
