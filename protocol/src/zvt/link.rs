//! The ZVT serial link layer, sans-IO (SPEC-T 2.1, 3; reference/zvt.md §1.2).
//!
//! A frame is `DLE STX <APDU, each 10 doubled> DLE ETX CRC_lo CRC_hi` with DLE=10, STX=02,
//! ETX=03. The CRC is CRC-16/KERMIT over the *unstuffed* APDU plus the ETX byte, sent low
//! byte first and not stuffed. The receiver answers every frame at once with a single
//! unframed byte, ACK `06` or NAK `15` (bad CRC, broken frame, T1 exceeded). The sender
//! keeps one frame in flight and repeats it on NAK or when T2 passes without an answer, up
//! to 2 repeats (3 sends), then reports a transmission error.
//!
//! ```
//! use protocol::zvt::link::{encode_frame, crc16_kermit};
//! assert_eq!(crc16_kermit(b"123456789"), 0x2189);
//! // reference/vectors.md: a 0x10 inside the APDU is doubled; the CRC covers it once.
//! let apdu = [0x06, 0x01, 0x0A, 0x04, 0, 0, 0, 0x01, 0x10, 0x00, 0x49, 0x09, 0x78];
//! assert_eq!(encode_frame(&apdu), [0x10, 0x02, 0x06, 0x01, 0x0A, 0x04, 0, 0, 0, 0x01,
//!     0x10, 0x10, 0x00, 0x49, 0x09, 0x78, 0x10, 0x03, 0xF2, 0xFF]);
//! ```
//!
//! [`SerialLink`] is quinn-style: feed received bytes with [`SerialLink::handle_input`],
//! queue APDUs with [`SerialLink::send`], write what [`SerialLink::poll_transmit`] returns,
//! read [`SerialLink::poll_event`], and call [`SerialLink::handle_timeout`] when
//! [`SerialLink::poll_timeout`] passes.
//!
//! Choices beyond the spec (documented because a real terminal may differ):
//! - **Implicit ACK** (on by default): a valid frame arriving while ours waits for its ACK
//!   means the peer got ours (only a master that received our frame answers it), so the
//!   in-flight frame counts as delivered. This avoids a pointless repeat after a lost ACK.
//! - **Duplicate frames**: a frame identical to the previous one, arriving while we have
//!   sent no frame since and within the repeat window, is ACKed but not delivered again
//!   (DESIGN.md R-DUP: "a link-level repeat of a ZVT frame → ignored").
//! - `DLE STX` inside a frame restarts the frame (the peer began anew); a `DLE` followed by
//!   anything but `DLE`/`ETX`/`STX` breaks the frame and draws a NAK.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Instant;

pub const DLE: u8 = 0x10;
pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;
pub const ACK: u8 = 0x06;
pub const NAK: u8 = 0x15;

/// Largest APDU a frame may carry: 5 header bytes + 65 535 data bytes.
pub const MAX_APDU: usize = 5 + 0xFFFF;

/// CRC-16/KERMIT: reflected polynomial 0x8408, init 0, no final XOR.
pub fn crc16_kermit(data: &[u8]) -> u16 {
    crc_update(0, data)
}

fn crc_update(mut crc: u16, data: &[u8]) -> u16 {
    for &b in data {
        crc ^= b as u16;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The frame CRC: over the unstuffed APDU and ETX.
pub fn frame_crc(apdu: &[u8]) -> u16 {
    crc_update(crc_update(0, apdu), &[ETX])
}

/// Appends the serial frame for `apdu` to `out`.
pub fn encode_frame_into(apdu: &[u8], out: &mut Vec<u8>) {
    out.reserve(apdu.len() + 8);
    out.extend_from_slice(&[DLE, STX]);
    for &b in apdu {
        out.push(b);
        if b == DLE {
            out.push(DLE);
        }
    }
    let crc = frame_crc(apdu);
    out.extend_from_slice(&[DLE, ETX, crc as u8, (crc >> 8) as u8]);
}

/// The serial frame for `apdu`. Public so a harness can build corrupted variants.
pub fn encode_frame(apdu: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    encode_frame_into(apdu, &mut v);
    v
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Longest gap between two bytes of a frame (SPEC-T: under 200 ms).
    pub t1: Duration,
    /// Wait for ACK/NAK after a frame (SPEC-T: under 5 s).
    pub t2: Duration,
    /// Repeats after the first send (SPEC-T: 2).
    pub max_repeats: u8,
    /// Treat a valid frame from the peer as the ACK of ours (see module docs).
    pub implicit_ack: bool,
    /// Emit [`LinkEvent::Trace`] events.
    pub trace: bool,
}

impl LinkConfig {
    /// The link for a terminal whose clock runs `scale` times faster than the wall. T1, the
    /// longest gap between two bytes of a frame, is a property of the line, not of the
    /// protocol's pace (USB serial adapters hand bytes over in bursts, 16 ms apart on an FTDI
    /// at its default latency): it is stretched by `scale` so it stays 200 ms on the line. T2
    /// and the repeats run with the terminal's clock like every other protocol timer.
    ///
    /// ```
    /// use protocol::zvt::link::LinkConfig;
    /// let c = LinkConfig::default().for_time_scale(20.0);
    /// assert_eq!(c.t1.as_millis(), 4000); // 200 ms on the line
    /// assert_eq!(c.t2.as_millis(), 5000);
    /// ```
    pub fn for_time_scale(self, scale: f64) -> LinkConfig {
        let s = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        LinkConfig {
            t1: self.t1.mul_f64(s),
            ..self
        }
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            t1: Duration::from_millis(200),
            t2: Duration::from_secs(5),
            max_repeats: 2,
            implicit_ack: true,
            trace: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// A valid frame's APDU (already ACKed).
    Received(Vec<u8>),
    /// The frame in flight was acknowledged.
    Delivered,
    /// The frame was sent `1 + max_repeats` times without an ACK; it is dropped.
    TransmissionFailed { apdu: Vec<u8> },
    /// Bytes outside any frame that were neither ACK nor NAK.
    Noise { bytes: Vec<u8> },
    /// Link-level detail, only with [`LinkConfig::trace`].
    Trace(LinkTrace),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkTrace {
    FrameSent {
        attempt: u16,
    },
    AckSent,
    NakSent(NakReason),
    AckReceived,
    NakReceived,
    /// An ACK/NAK arrived with no frame in flight.
    StrayAckNak(u8),
    ImplicitAck,
    Repeat {
        attempt: u16,
        reason: RepeatReason,
    },
    DuplicateIgnored,
    /// `DLE STX` in the middle of a frame: the partial frame was dropped.
    FrameRestarted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NakReason {
    BadCrc,
    T1Expired,
    BrokenFrame,
    TooLong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepeatReason {
    Nak,
    T2Expired,
}

/// Counters, always kept (the harness shows them on request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LinkStats {
    pub frames_sent: u64,
    pub frames_received: u64,
    pub acks_sent: u64,
    pub naks_sent: u64,
    pub acks_received: u64,
    pub naks_received: u64,
    pub repeats: u64,
    pub failures: u64,
    pub crc_errors: u64,
    pub t1_expiries: u64,
    pub t2_expiries: u64,
    pub noise_bytes: u64,
    pub duplicates: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rx {
    Idle,
    IdleDle,
    Data,
    DataDle,
    Crc1,
    Crc2(u8),
}

#[derive(Clone, Debug)]
struct InFlight {
    apdu: Vec<u8>,
    frame: Vec<u8>,
    sends: u16,
    /// `None` while the frame waits to be (re)sent.
    deadline: Option<Instant>,
}

/// One end of a ZVT serial line.
#[derive(Clone, Debug)]
pub struct SerialLink {
    cfg: LinkConfig,
    rx: Rx,
    rx_buf: Vec<u8>,
    rx_last: Instant,
    noise: Vec<u8>,
    control: Vec<u8>,
    queue: VecDeque<Vec<u8>>,
    in_flight: Option<InFlight>,
    events: VecDeque<LinkEvent>,
    stats: LinkStats,
    /// Last delivered APDU and when, while no frame of ours went out since.
    last_rx: Option<(Vec<u8>, Instant)>,
}

impl Default for SerialLink {
    fn default() -> Self {
        SerialLink::new(LinkConfig::default())
    }
}

impl SerialLink {
    pub fn new(cfg: LinkConfig) -> Self {
        SerialLink {
            cfg,
            rx: Rx::Idle,
            rx_buf: Vec::new(),
            rx_last: Instant::default(),
            noise: Vec::new(),
            control: Vec::new(),
            queue: VecDeque::new(),
            in_flight: None,
            events: VecDeque::new(),
            stats: LinkStats::default(),
            last_rx: None,
        }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }
    pub fn config_mut(&mut self) -> &mut LinkConfig {
        &mut self.cfg
    }
    pub fn stats(&self) -> LinkStats {
        self.stats
    }
    /// Nothing queued, nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_none() && self.control.is_empty()
    }

    /// Queues an APDU; frames go out one at a time, each after the previous one's ACK.
    pub fn send(&mut self, apdu: Vec<u8>) {
        self.queue.push_back(apdu);
    }

    /// Drops everything queued or in flight and any partial frame (e.g. after a port reset).
    pub fn reset(&mut self) {
        self.rx = Rx::Idle;
        self.rx_buf.clear();
        self.noise.clear();
        self.control.clear();
        self.queue.clear();
        self.in_flight = None;
        self.last_rx = None;
    }

    fn trace(&mut self, t: LinkTrace) {
        if self.cfg.trace {
            self.events.push_back(LinkEvent::Trace(t));
        }
    }

    fn in_frame(&self) -> bool {
        matches!(self.rx, Rx::Data | Rx::DataDle | Rx::Crc1 | Rx::Crc2(_))
    }

    fn flush_noise(&mut self) {
        if !self.noise.is_empty() {
            self.stats.noise_bytes += self.noise.len() as u64;
            let bytes = std::mem::take(&mut self.noise);
            self.events.push_back(LinkEvent::Noise { bytes });
        }
    }

    fn nak(&mut self, reason: NakReason) {
        self.control.push(NAK);
        self.stats.naks_sent += 1;
        self.trace(LinkTrace::NakSent(reason));
        self.rx = Rx::Idle;
        self.rx_buf.clear();
    }

    fn check_t1(&mut self, now: Instant) {
        if self.in_frame() && now >= self.rx_last + self.cfg.t1 {
            self.stats.t1_expiries += 1;
            self.nak(NakReason::T1Expired);
        }
    }

    /// Feeds bytes read from the line at `now`.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        self.check_t1(now);
        for &b in bytes {
            self.byte(b, now);
        }
        self.flush_noise();
    }

    fn byte(&mut self, b: u8, now: Instant) {
        if self.in_frame() {
            self.rx_last = now;
        }
        match self.rx {
            Rx::Idle => match b {
                ACK => self.on_ack_nak(true),
                NAK => self.on_ack_nak(false),
                DLE => self.rx = Rx::IdleDle,
                _ => self.noise.push(b),
            },
            Rx::IdleDle => match b {
                STX => {
                    self.flush_noise();
                    self.rx_buf.clear();
                    self.rx = Rx::Data;
                    self.rx_last = now;
                }
                DLE => self.noise.push(DLE),
                _ => {
                    self.noise.push(DLE);
                    self.rx = Rx::Idle;
                    self.byte(b, now);
                }
            },
            Rx::Data => {
                if b == DLE {
                    self.rx = Rx::DataDle;
                } else {
                    self.push_data(b);
                }
            }
            Rx::DataDle => match b {
                DLE => {
                    self.rx = Rx::Data;
                    self.push_data(DLE);
                }
                ETX => self.rx = Rx::Crc1,
                STX => {
                    self.trace(LinkTrace::FrameRestarted);
                    self.rx_buf.clear();
                    self.rx = Rx::Data;
                }
                _ => self.nak(NakReason::BrokenFrame),
            },
            Rx::Crc1 => self.rx = Rx::Crc2(b),
            Rx::Crc2(lo) => {
                self.rx = Rx::Idle;
                let got = lo as u16 | (b as u16) << 8;
                if got == frame_crc(&self.rx_buf) {
                    let apdu = std::mem::take(&mut self.rx_buf);
                    self.on_frame(apdu, now);
                } else {
                    self.stats.crc_errors += 1;
                    self.nak(NakReason::BadCrc);
                }
            }
        }
    }

    fn push_data(&mut self, b: u8) {
        if self.rx_buf.len() >= MAX_APDU {
            self.nak(NakReason::TooLong);
        } else {
            self.rx_buf.push(b);
        }
    }

    fn on_frame(&mut self, apdu: Vec<u8>, now: Instant) {
        self.stats.frames_received += 1;
        self.stats.acks_sent += 1;
        self.control.push(ACK);
        self.trace(LinkTrace::AckSent);
        if self.cfg.implicit_ack
            && let Some(f) = &self.in_flight
            && f.deadline.is_some()
        {
            self.trace(LinkTrace::ImplicitAck);
            self.in_flight = None;
            self.events.push_back(LinkEvent::Delivered);
        }
        let window = self
            .cfg
            .t2
            .saturating_mul(self.cfg.max_repeats as u32 + 1)
            .saturating_add(self.cfg.t1);
        if let Some((last, at)) = &self.last_rx
            && *last == apdu
            && now < *at + window
        {
            self.stats.duplicates += 1;
            self.trace(LinkTrace::DuplicateIgnored);
            return;
        }
        self.last_rx = Some((apdu.clone(), now));
        self.events.push_back(LinkEvent::Received(apdu));
    }

    fn on_ack_nak(&mut self, ack: bool) {
        let waiting = self
            .in_flight
            .as_ref()
            .is_some_and(|f| f.deadline.is_some());
        if !waiting {
            self.trace(LinkTrace::StrayAckNak(if ack { ACK } else { NAK }));
            return;
        }
        if ack {
            self.stats.acks_received += 1;
            self.trace(LinkTrace::AckReceived);
            self.in_flight = None;
            self.events.push_back(LinkEvent::Delivered);
        } else {
            self.stats.naks_received += 1;
            self.trace(LinkTrace::NakReceived);
            self.repeat(RepeatReason::Nak);
        }
    }

    fn repeat(&mut self, reason: RepeatReason) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        if f.sends > u16::from(self.cfg.max_repeats) {
            let apdu = std::mem::take(&mut f.apdu);
            self.in_flight = None;
            self.stats.failures += 1;
            self.events
                .push_back(LinkEvent::TransmissionFailed { apdu });
        } else {
            f.deadline = None;
            let attempt = f.sends;
            self.stats.repeats += 1;
            self.trace(LinkTrace::Repeat { attempt, reason });
        }
    }

    /// Bytes to write now: pending ACK/NAK bytes first, then the next frame.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if !self.control.is_empty() {
            return Some(std::mem::take(&mut self.control));
        }
        if self.in_flight.is_none()
            && let Some(apdu) = self.queue.pop_front()
        {
            let frame = encode_frame(&apdu);
            self.in_flight = Some(InFlight {
                apdu,
                frame,
                sends: 0,
                deadline: None,
            });
        }
        let f = self.in_flight.as_mut()?;
        if f.deadline.is_some() {
            return None;
        }
        f.sends += 1;
        f.deadline = Some(now + self.cfg.t2);
        let attempt = f.sends;
        let frame = f.frame.clone();
        self.stats.frames_sent += 1;
        self.last_rx = None;
        self.trace(LinkTrace::FrameSent { attempt });
        Some(frame)
    }

    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// The next T1 or T2 deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let t1 = self.in_frame().then(|| self.rx_last + self.cfg.t1);
        let t2 = self.in_flight.as_ref().and_then(|f| f.deadline);
        match (t1, t2) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_t1(now);
        if let Some(f) = &self.in_flight
            && let Some(d) = f.deadline
            && now >= d
        {
            self.stats.t2_expiries += 1;
            self.repeat(RepeatReason::T2Expired);
        }
    }
}

#[cfg(test)]
mod tests;
