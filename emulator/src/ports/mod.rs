//! The tokio side of the emulator: thin adapters that put the sans-IO [`crate::core`] on real
//! lines, and the process driver that owns it ([`runtime::Emulator`], `posrig emulate`).
//!
//! - [`ecr`]: the ECR port, ZVT as the PT, on TCP (one ECR at a time) or a serial line;
//! - [`signals`]: the rig link server (keys, cards, faults, power in; display, printer, LEDs,
//!   beeper out), on TCP or a serial line — `hil-rigs/PROTOCOL.md`;
//! - [`host`]: ISO 8583 to the acquirer over TCP, connected on demand;
//! - [`runtime`]: one select loop over all of them and the core's next deadline, with the
//!   journal in SQLite (`synchronous=FULL`) committed before any later output is acted on.
//!
//! Endpoints are written as URLs: `tcp://127.0.0.1:20007`, or
//! `serial:///dev/ttyUSB0?baud=9600&data_bits=8&parity=none&stop_bits=2&flow=none`.
//! Listeners bind loopback addresses only unless `--listen-any` is given.

pub mod ecr;
pub mod failpoints;
pub mod host;
pub mod runtime;
pub mod signals;

use std::fmt;
use std::net::SocketAddr;

pub use tokio_serial::{DataBits, FlowControl, Parity, StopBits};

/// The ECR port's default TCP address (ZVT's usual port).
pub const DEFAULT_ECR: &str = "tcp://127.0.0.1:20007";
/// The rig link's default TCP address.
pub const DEFAULT_SIGNALS: &str = "tcp://127.0.0.1:20010";

/// Line settings of a serial endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialSpec {
    pub path: String,
    pub baud: u32,
    pub data_bits: DataBits,
    pub parity: Parity,
    pub stop_bits: StopBits,
    pub flow: FlowControl,
}

impl SerialSpec {
    /// ZVT on a serial line: 9600 8N2, no flow control (reference/zvt.md §1.1).
    pub fn zvt(path: &str) -> SerialSpec {
        SerialSpec {
            path: path.into(),
            baud: 9600,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::Two,
            flow: FlowControl::None,
        }
    }
    /// The rig link on a serial line: 115200 8N1 (PROTOCOL.md, Transport).
    pub fn riglink(path: &str) -> SerialSpec {
        SerialSpec {
            baud: 115_200,
            stop_bits: StopBits::One,
            ..SerialSpec::zvt(path)
        }
    }
}

impl fmt::Display for SerialSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parity = match self.parity {
            Parity::None => "none",
            Parity::Odd => "odd",
            Parity::Even => "even",
        };
        let flow = match self.flow {
            FlowControl::None => "none",
            FlowControl::Software => "software",
            FlowControl::Hardware => "hardware",
        };
        write!(
            f,
            "serial://{}?baud={}&data_bits={}&parity={parity}&stop_bits={}&flow={flow}",
            self.path,
            self.baud,
            u8::from(self.data_bits),
            u8::from(self.stop_bits),
        )
    }
}

/// Where a port listens or a line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port` to listen on.
    Tcp(String),
    Serial(SerialSpec),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
            Endpoint::Serial(s) => s.fmt(f),
        }
    }
}

/// A malformed endpoint URL; `column` is 1-based in the text given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?}, column {column}: {message}")]
pub struct EndpointError {
    pub text: String,
    pub column: usize,
    pub message: String,
}

impl Endpoint {
    /// Parses `tcp://host:port`, `host:port`, `serial:///dev/x?baud=…` or a bare `/dev/x`.
    /// `serial` gives the line defaults for the port (see [`SerialSpec::zvt`]).
    ///
    /// ```
    /// use emulator::ports::{Endpoint, SerialSpec, StopBits};
    /// let e = Endpoint::parse("serial:///dev/ttyUSB0?baud=19200&stop_bits=1", SerialSpec::zvt).unwrap();
    /// let Endpoint::Serial(s) = e else { panic!() };
    /// assert_eq!((s.path.as_str(), s.baud, s.stop_bits), ("/dev/ttyUSB0", 19200, StopBits::One));
    /// assert_eq!(Endpoint::parse("tcp://127.0.0.1:0", SerialSpec::zvt).unwrap(),
    ///            Endpoint::Tcp("127.0.0.1:0".into()));
    /// ```
    pub fn parse(text: &str, serial: fn(&str) -> SerialSpec) -> Result<Endpoint, EndpointError> {
        let err = |column: usize, message: String| EndpointError {
            text: text.into(),
            column,
            message,
        };
        if let Some(rest) = text.strip_prefix("tcp://") {
            if rest.is_empty() || !rest.contains(':') {
                return Err(err(7, "expected host:port after tcp://".into()));
            }
            return Ok(Endpoint::Tcp(rest.into()));
        }
        let (rest, at) = if let Some(r) = text.strip_prefix("serial://") {
            (r, "serial://".len())
        } else if text.starts_with('/') {
            (text, 0)
        } else if text.contains("://") {
            return Err(err(1, "unknown scheme: use tcp:// or serial://".into()));
        } else if text.contains(':') {
            return Ok(Endpoint::Tcp(text.into()));
        } else {
            return Err(err(1, "expected tcp://host:port or serial:///dev/…".into()));
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.is_empty() {
            return Err(err(at + 1, "no device path".into()));
        }
        let mut spec = serial(path);
        let Some(query) = query else {
            return Ok(Endpoint::Serial(spec));
        };
        let mut col = at + path.len() + 2;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |what: &str| err(col, format!("{k}={v}: {what}"));
            match k {
                "baud" => {
                    spec.baud = v
                        .parse()
                        .ok()
                        .filter(|b| *b > 0)
                        .ok_or_else(|| bad("expected a baud rate such as 9600"))?;
                }
                "data_bits" => {
                    spec.data_bits = match v {
                        "5" => DataBits::Five,
                        "6" => DataBits::Six,
                        "7" => DataBits::Seven,
                        "8" => DataBits::Eight,
                        _ => return Err(bad("expected 5, 6, 7 or 8")),
                    }
                }
                "parity" => {
                    spec.parity = match v {
                        "none" | "n" => Parity::None,
                        "odd" | "o" => Parity::Odd,
                        "even" | "e" => Parity::Even,
                        _ => return Err(bad("expected none, odd or even")),
                    }
                }
                "stop_bits" => {
                    spec.stop_bits = match v {
                        "1" => StopBits::One,
                        "2" => StopBits::Two,
                        _ => return Err(bad("expected 1 or 2")),
                    }
                }
                "flow" => {
                    spec.flow = match v {
                        "none" => FlowControl::None,
                        "software" | "xonxoff" => FlowControl::Software,
                        "hardware" | "rtscts" => FlowControl::Hardware,
                        _ => return Err(bad("expected none, software or hardware")),
                    }
                }
                _ => {
                    return Err(bad(
                        "unknown setting (baud, data_bits, parity, stop_bits, flow)",
                    ));
                }
            }
            col += pair.len() + 1;
        }
        Ok(Endpoint::Serial(spec))
    }
}

/// Why a port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("{what}: cannot resolve {addr}: {source}")]
    Resolve {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "{what}: {addr} is not a loopback address; pass --listen-any to listen on it (anyone on the network could then drive the terminal)"
    )]
    NotLoopback { what: &'static str, addr: String },
    #[error("{what}: cannot listen on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("{what}: cannot open {spec}: {source}")]
    Serial {
        what: &'static str,
        spec: String,
        source: tokio_serial::Error,
    },
}

/// Binds a TCP listener, refusing a non-loopback address unless `listen_any`.
pub(crate) async fn bind(
    what: &'static str,
    addr: &str,
    listen_any: bool,
) -> Result<tokio::net::TcpListener, PortError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| PortError::Resolve {
            what,
            addr: addr.into(),
            source,
        })?
        .collect();
    if addrs.iter().any(|a| !a.ip().is_loopback()) {
        if !listen_any {
            return Err(PortError::NotLoopback {
                what,
                addr: addr.into(),
            });
        }
        tracing::warn!(
            "{what}: listening on {addr}, which is not a loopback address: anyone who can reach it can drive this terminal"
        );
    }
    tokio::net::TcpListener::bind(addrs.as_slice())
        .await
        .map_err(|source| PortError::Bind {
            what,
            addr: addr.into(),
            source,
        })
}

/// Opens a serial line with its settings.
pub(crate) fn open_serial(
    what: &'static str,
    spec: &SerialSpec,
) -> Result<tokio_serial::SerialStream, PortError> {
    use tokio_serial::SerialPortBuilderExt;
    tokio_serial::new(&spec.path, spec.baud)
        .data_bits(spec.data_bits)
        .parity(spec.parity)
        .stop_bits(spec.stop_bits)
        .flow_control(spec.flow)
        .open_native_async()
        .map_err(|source| PortError::Serial {
            what,
            spec: spec.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_defaults_and_settings() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:20007", SerialSpec::zvt).unwrap(),
            Endpoint::Tcp("127.0.0.1:20007".into())
        );
        assert_eq!(
            Endpoint::parse("/dev/ttyS0", SerialSpec::riglink).unwrap(),
            Endpoint::Serial(SerialSpec::riglink("/dev/ttyS0"))
        );
        let Endpoint::Serial(s) = Endpoint::parse(
            "serial:///dev/ttyUSB0?baud=9600&data_bits=7&parity=even&stop_bits=1&flow=hardware",
            SerialSpec::zvt,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.baud, 9600);
        assert_eq!(s.data_bits, DataBits::Seven);
        assert_eq!(s.parity, Parity::Even);
        assert_eq!(s.stop_bits, StopBits::One);
        assert_eq!(s.flow, FlowControl::Hardware);
        // Display round-trips.
        assert_eq!(
            Endpoint::parse(&s.to_string(), SerialSpec::zvt).unwrap(),
            Endpoint::Serial(s)
        );
        // ZVT default: 9600 8N2.
        let Endpoint::Serial(z) = Endpoint::parse("serial:///dev/x", SerialSpec::zvt).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (z.baud, z.data_bits, z.parity, z.stop_bits),
            (9600, DataBits::Eight, Parity::None, StopBits::Two)
        );
    }

    #[test]
    fn bad_endpoints_say_where() {
        let e = Endpoint::parse("serial:///dev/x?baud=fast", SerialSpec::zvt).unwrap_err();
        assert_eq!(e.column, 17, "{e}");
        assert!(e.message.contains("baud"), "{e}");
        let e = Endpoint::parse("serial:///dev/x?baud=9600&bits=8", SerialSpec::zvt).unwrap_err();
        assert_eq!(e.column, 27, "{e}");
        assert!(Endpoint::parse("udp://1.2.3.4:5", SerialSpec::zvt).is_err());
        assert!(Endpoint::parse("tcp://", SerialSpec::zvt).is_err());
        assert!(Endpoint::parse("serial://", SerialSpec::zvt).is_err());
        assert!(Endpoint::parse("nonsense", SerialSpec::zvt).is_err());
    }
}
