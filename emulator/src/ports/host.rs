//! The host link: ISO 8583 frames to the acquirer over TCP, connected on demand and kept open.
//!
//! The core frames its messages (length prefix, TPDU/header); this only moves bytes and tells
//! the core what happened, which decides R-REV's "not sent" against "unknown":
//! - a refused or timed-out connect, or a write that fails before its first byte was taken,
//!   is [`SendOutcome::NotSent`] (→ `Event::HostSendFailed`);
//! - a write that fails part-way is [`SendOutcome::Broken`] (→ `Event::HostClosed`);
//! - EOF or an error while reading is [`HostIn::Closed`] (→ `Event::HostClosed`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one write may block before the link counts as broken.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a send did.
#[derive(Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// No byte left; why.
    NotSent(String),
    /// Some bytes left, then the connection failed; why.
    Broken(String),
}

/// What the link read.
#[derive(Debug, PartialEq, Eq)]
pub enum HostIn {
    Bytes(Vec<u8>),
    /// The acquirer closed the connection, or it failed.
    Closed(String),
}

pub struct HostLink {
    addr: String,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

impl HostLink {
    /// `tcp://host:port` or `host:port`.
    pub fn new(addr: &str) -> HostLink {
        HostLink {
            addr: addr.strip_prefix("tcp://").unwrap_or(addr).to_string(),
            conn: None,
            buf: vec![0; 4096],
        }
    }

    pub fn address(&self) -> &str {
        &self.addr
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Drops the connection (power off).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Writes one framed message, connecting first if needed.
    pub async fn send(&mut self, bytes: &[u8], connect_timeout: Duration) -> SendOutcome {
        if self.conn.is_none() {
            match tokio::time::timeout(connect_timeout, TcpStream::connect(&self.addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    tracing::debug!("host link: connected to {}", self.addr);
                    self.conn = Some(s);
                }
                Ok(Err(e)) => return SendOutcome::NotSent(format!("connect {}: {e}", self.addr)),
                Err(_) => {
                    return SendOutcome::NotSent(format!(
                        "connect {}: no answer within {connect_timeout:?}",
                        self.addr
                    ));
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return SendOutcome::NotSent("no connection".into());
        };
        let mut sent = 0usize;
        while let Some(rest) = bytes.get(sent..).filter(|r| !r.is_empty()) {
            let why = match tokio::time::timeout(WRITE_TIMEOUT, conn.write(rest)).await {
                Ok(Ok(n)) if n > 0 => {
                    sent += n;
                    continue;
                }
                Ok(Ok(_)) => "the connection took no bytes".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("write blocked for {WRITE_TIMEOUT:?}"),
            };
            self.conn = None;
            return if sent == 0 {
                SendOutcome::NotSent(why)
            } else {
                SendOutcome::Broken(format!("after {sent} of {} bytes: {why}", bytes.len()))
            };
        }
        SendOutcome::Sent
    }

    /// The next bytes from the acquirer; pending forever while not connected. Cancel-safe.
    pub async fn next(&mut self) -> HostIn {
        let Some(conn) = self.conn.as_mut() else {
            return std::future::pending().await;
        };
        let r = conn.read(&mut self.buf).await;
        match r {
            Ok(n) if n > 0 => HostIn::Bytes(self.buf.get(..n).unwrap_or_default().to_vec()),
            Ok(_) => {
                self.conn = None;
                HostIn::Closed("closed by the acquirer".into())
            }
            Err(e) => {
                self.conn = None;
                HostIn::Closed(e.to_string())
            }
        }
    }
}
