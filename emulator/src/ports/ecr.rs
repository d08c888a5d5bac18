//! The ECR port: ZVT with the emulator as the PT, on TCP or a serial line.
//!
//! The core speaks the protocol (APDUs on TCP; DLE STX … CRC with ACK/NAK, T1/T2 on a serial
//! line, per its `EcrLink`); this moves bytes. On TCP one ECR is served at a time: a new
//! connection replaces the old one (an ECR that restarted must not be locked out by its own
//! half-open socket), and the core hears `EcrDisconnected` for the one that went. A serial line
//! has no connection; read errors (a USB adapter pulled, the other end of a pseudo-terminal
//! closed) are logged and the line is read again after a pause.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_serial::SerialStream;

use super::{Endpoint, PortError};

/// How long a write to the ECR may block before the connection counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before reading a failed serial line again.
const SERIAL_RETRY: Duration = Duration::from_millis(200);

/// What happened on the ECR port.
#[derive(Debug)]
pub enum EcrIn {
    /// An ECR connected (TCP); `replaced` says an earlier connection was dropped for it.
    Connected {
        peer: SocketAddr,
        replaced: bool,
    },
    Bytes(Vec<u8>),
    /// The ECR's connection closed (TCP), or the serial line failed.
    Closed(String),
    /// Nothing for the core (a failed accept, a line still failing).
    Nothing,
}

async fn read_opt(conn: &mut Option<TcpStream>, buf: &mut [u8]) -> std::io::Result<usize> {
    match conn.as_mut() {
        Some(c) => c.read(buf).await,
        None => std::future::pending().await,
    }
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

pub struct EcrPort {
    line: Line,
    buf: Vec<u8>,
    endpoint: Endpoint,
}

impl EcrPort {
    /// Binds the TCP listener or opens the serial line.
    pub async fn open(endpoint: &Endpoint, listen_any: bool) -> Result<EcrPort, PortError> {
        let line = match endpoint {
            Endpoint::Tcp(addr) => Line::Tcp {
                listener: super::bind("ecr", addr, listen_any).await?,
                conn: None,
            },
            Endpoint::Serial(spec) => Line::Serial {
                port: super::open_serial("ecr", spec)?,
                failing: false,
            },
        };
        Ok(EcrPort {
            line,
            buf: vec![0; 4096],
            endpoint: endpoint.clone(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn is_serial(&self) -> bool {
        matches!(self.line, Line::Serial { .. })
    }

    /// The bound TCP address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.line {
            Line::Tcp { listener, .. } => listener.local_addr().ok(),
            Line::Serial { .. } => None,
        }
    }

    /// Closes the ECR's TCP connection, if any (power off). A serial line stays open.
    pub fn disconnect(&mut self) -> bool {
        match &mut self.line {
            Line::Tcp { conn, .. } => conn.take().is_some(),
            Line::Serial { .. } => false,
        }
    }

    /// The next thing that happens on the port. Cancel-safe.
    pub async fn next(&mut self) -> EcrIn {
        match &mut self.line {
            Line::Tcp { listener, conn } => {
                tokio::select! {
                    a = listener.accept() => match a {
                        Ok((stream, peer)) => {
                            let _ = stream.set_nodelay(true);
                            let replaced = conn.replace(stream).is_some();
                            EcrIn::Connected { peer, replaced }
                        }
                        Err(e) => {
                            // Out of descriptors and the like: do not spin.
                            tracing::warn!("ecr: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            EcrIn::Nothing
                        }
                    },
                    r = read_opt(conn, &mut self.buf) => match r {
                        Ok(n) if n > 0 => EcrIn::Bytes(self.buf.get(..n).unwrap_or_default().to_vec()),
                        Ok(_) => {
                            *conn = None;
                            EcrIn::Closed("closed by the ECR".into())
                        }
                        Err(e) => {
                            *conn = None;
                            EcrIn::Closed(e.to_string())
                        }
                    },
                }
            }
            Line::Serial { port, failing } => {
                if *failing {
                    tokio::time::sleep(SERIAL_RETRY).await;
                }
                match port.read(&mut self.buf).await {
                    Ok(n) if n > 0 => {
                        *failing = false;
                        EcrIn::Bytes(self.buf.get(..n).unwrap_or_default().to_vec())
                    }
                    r => {
                        let was = std::mem::replace(failing, true);
                        if was {
                            // Already reported.
                            EcrIn::Nothing
                        } else {
                            EcrIn::Closed(match r {
                                Err(e) => e.to_string(),
                                Ok(_) => "the serial line hung up".into(),
                            })
                        }
                    }
                }
            }
        }
    }

    /// Writes bytes from the core. `Err` on TCP means the connection is gone (it is dropped).
    /// Without a connection the bytes are dropped, as a line without a listener would.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.line {
            Line::Tcp { conn, .. } => {
                let Some(c) = conn.as_mut() else {
                    return Ok(());
                };
                match tokio::time::timeout(WRITE_TIMEOUT, c.write_all(bytes)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => {
                        *conn = None;
                        Err(e.to_string())
                    }
                    Err(_) => {
                        *conn = None;
                        Err(format!("write blocked for {WRITE_TIMEOUT:?}"))
                    }
                }
            }
            Line::Serial { port, .. } => {
                match tokio::time::timeout(WRITE_TIMEOUT, port.write_all(bytes)).await {
                    Ok(Ok(())) => Ok(()),
                    // The serial link layer repeats what was not acknowledged.
                    Ok(Err(e)) => {
                        tracing::warn!("ecr: serial write failed: {e}");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::warn!("ecr: serial write blocked for {WRITE_TIMEOUT:?}");
                        Ok(())
                    }
                }
            }
        }
    }
}
