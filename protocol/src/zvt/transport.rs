//! One type over both ZVT transports, so the sequencers ([`crate::zvt::pt`],
//! [`crate::zvt::ecr`]) and the adapters work at the APDU level and do not care whether a
//! serial line (framing, ACK/NAK, repeats) or a TCP stream (reassembly only) is underneath.
//!
//! ```
//! use protocol::time::Instant;
//! use protocol::zvt::transport::{Transport, TransportEvent};
//! let now = Instant::from_millis(0);
//! let mut t = Transport::tcp();
//! t.send_apdu(vec![0x80, 0x00, 0x00]);
//! assert_eq!(t.poll_transmit(now), Some(vec![0x80, 0x00, 0x00]));
//! t.handle_input(&[0x04, 0xFF, 0x01, 0x17], now);
//! assert_eq!(t.poll_event(), Some(TransportEvent::Apdu(vec![0x04, 0xFF, 0x01, 0x17])));
//! ```

use crate::time::Instant;
use crate::zvt::link::{LinkConfig, LinkEvent, LinkTrace, SerialLink};
use crate::zvt::tcp::{TcpError, TcpLink};

// One per connection: the size difference costs nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Transport {
    Serial(SerialLink),
    Tcp(TcpLink),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportEvent {
    /// A whole APDU from the peer.
    Apdu(Vec<u8>),
    /// Serial: the peer ACKed our oldest unacknowledged APDU.
    Delivered,
    /// Serial: an APDU could not be delivered (NAK/T2 three times). It is dropped.
    SendFailed { apdu: Vec<u8> },
    /// Serial: bytes outside frames.
    Noise { bytes: Vec<u8> },
    /// Serial: link detail, if tracing is on.
    Trace(LinkTrace),
    /// TCP: the stream is corrupt; close the connection.
    Broken(TcpError),
}

impl Transport {
    pub fn serial(cfg: LinkConfig) -> Transport {
        Transport::Serial(SerialLink::new(cfg))
    }
    pub fn tcp() -> Transport {
        Transport::Tcp(TcpLink::default())
    }
    pub fn is_serial(&self) -> bool {
        matches!(self, Transport::Serial(_))
    }

    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        match self {
            Transport::Serial(l) => l.handle_input(bytes, now),
            // The error is reported through poll_event.
            Transport::Tcp(t) => {
                let _ = t.handle_input(bytes);
            }
        }
    }
    pub fn send_apdu(&mut self, apdu: Vec<u8>) {
        match self {
            Transport::Serial(l) => l.send(apdu),
            Transport::Tcp(t) => t.send(apdu),
        }
    }
    /// Bytes to write to the line or socket.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        match self {
            Transport::Serial(l) => l.poll_transmit(now),
            Transport::Tcp(t) => t.poll_transmit(),
        }
    }
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        match self {
            Transport::Serial(l) => l.poll_event().map(|e| match e {
                LinkEvent::Received(a) => TransportEvent::Apdu(a),
                LinkEvent::Delivered => TransportEvent::Delivered,
                LinkEvent::TransmissionFailed { apdu } => TransportEvent::SendFailed { apdu },
                LinkEvent::Noise { bytes } => TransportEvent::Noise { bytes },
                LinkEvent::Trace(t) => TransportEvent::Trace(t),
            }),
            Transport::Tcp(t) => t
                .poll_apdu()
                .map(TransportEvent::Apdu)
                .or_else(|| t.poll_error().map(TransportEvent::Broken)),
        }
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Transport::Serial(l) => l.poll_timeout(),
            Transport::Tcp(_) => None,
        }
    }
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Transport::Serial(l) = self {
            l.handle_timeout(now);
        }
    }
    /// Forget everything in progress (new TCP connection, reopened port).
    pub fn reset(&mut self) {
        match self {
            Transport::Serial(l) => l.reset(),
            Transport::Tcp(t) => t.reset(),
        }
    }
}
