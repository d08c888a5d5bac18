//! The host link: ISO 8583 frames to the acquirer over TCP, connected on demand and kept open.
//!
//! The core frames its messages (length prefix, TPDU/header); this only moves bytes and tells
//! the core what happened, which decides R-REV's "not sent" against "unknown":
//! - a send while not connected starts the connect and queues the bytes
//!   ([`SendOutcome::Connecting`]); the connect runs inside [`HostLink::next`], so the event
//!   loop keeps serving the ECR, the rig link and the core's timers meanwhile;
//! - a connect that succeeds hands the queue back ([`HostIn::Connected`]) to be written in
//!   order; a refused or timed-out connect is [`HostIn::ConnectFailed`]: nothing of the queue
//!   left (→ one `Event::HostSendFailed` per queued message);
//! - a write that fails before its first byte was taken is [`SendOutcome::NotSent`]
//!   (→ `Event::HostSendFailed`);
//! - a write that fails part-way is [`SendOutcome::Broken`] (→ `Event::HostClosed`);
//! - EOF or an error while reading is [`HostIn::Closed`] (→ `Event::HostClosed`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one write may block before the link counts as broken.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a send did.
#[derive(Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// Not connected: the connect is under way and the bytes wait for it; the answer comes
    /// from [`HostLink::next`].
    Connecting,
    /// No byte left; why.
    NotSent(String),
    /// Some bytes left, then the connection failed; why.
    Broken(String),
}

/// What the link read, or how a connect ended.
#[derive(Debug, PartialEq, Eq)]
pub enum HostIn {
    Bytes(Vec<u8>),
    /// The acquirer closed the connection, or it failed.
    Closed(String),
    /// The connect succeeded: the messages queued meanwhile, oldest first, not written yet.
    Connected(Vec<Vec<u8>>),
    /// The connect was refused or timed out; `queued` messages were dropped, no byte of them
    /// left.
    ConnectFailed {
        why: String,
        queued: usize,
    },
}

/// A connect under way; boxed so that [`HostLink::next`] can be dropped and called again
/// (a `tokio::select!` branch) without losing it.
type Connect = Pin<Box<dyn Future<Output = Result<TcpStream, String>> + Send>>;

pub struct HostLink {
    addr: String,
    conn: Option<TcpStream>,
    connecting: Option<Connect>,
    /// Messages waiting for the connect, oldest first.
    queued: Vec<Vec<u8>>,
    buf: Vec<u8>,
}

impl HostLink {
    /// `tcp://host:port` or `host:port`.
    pub fn new(addr: &str) -> HostLink {
        HostLink {
            addr: addr.strip_prefix("tcp://").unwrap_or(addr).to_string(),
            conn: None,
            connecting: None,
            queued: Vec::new(),
            buf: vec![0; 4096],
        }
    }

    pub fn address(&self) -> &str {
        &self.addr
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    pub fn is_connecting(&self) -> bool {
        self.connecting.is_some()
    }

    /// Drops the connection, or the connect under way and its queue (power off).
    pub fn disconnect(&mut self) {
        self.conn = None;
        self.connecting = None;
        self.queued.clear();
    }

    /// Gives up the connect under way; returns how many queued messages were dropped (none of
    /// their bytes left).
    pub fn abandon_connect(&mut self, why: &str) -> usize {
        if self.connecting.take().is_none() {
            return 0;
        }
        let n = std::mem::take(&mut self.queued).len();
        tracing::debug!("host link: connect {} abandoned: {why}", self.addr);
        n
    }

    /// Writes one framed message; when not connected, starts the connect (bounded by
    /// `connect_timeout`) and queues the message for it.
    pub async fn send(&mut self, bytes: &[u8], connect_timeout: Duration) -> SendOutcome {
        let Some(conn) = self.conn.as_mut() else {
            if self.connecting.is_none() {
                let addr = self.addr.clone();
                let give_up = tokio::time::Instant::now() + connect_timeout;
                self.connecting = Some(Box::pin(async move {
                    match tokio::time::timeout_at(give_up, TcpStream::connect(&addr)).await {
                        Ok(Ok(s)) => Ok(s),
                        Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
                        Err(_) => Err(format!(
                            "connect {addr}: no answer within {connect_timeout:?}"
                        )),
                    }
                }));
            }
            self.queued.push(bytes.to_vec());
            return SendOutcome::Connecting;
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

    /// How the connect under way ended, else the next bytes from the acquirer; pending forever
    /// while neither connecting nor connected. Cancel-safe: a connect under way survives the
    /// future being dropped.
    pub async fn next(&mut self) -> HostIn {
        if let Some(connect) = self.connecting.as_mut() {
            let r = connect.await;
            self.connecting = None;
            let queued = std::mem::take(&mut self.queued);
            return match r {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    tracing::debug!("host link: connected to {}", self.addr);
                    self.conn = Some(s);
                    HostIn::Connected(queued)
                }
                Err(why) => HostIn::ConnectFailed {
                    why,
                    queued: queued.len(),
                },
            };
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const T: Duration = Duration::from_secs(30);

    /// Sends queue behind the connect and come back in order; once connected, a send writes.
    #[tokio::test]
    async fn queued_messages_come_back_when_connected() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut link = HostLink::new(&format!("tcp://{}", l.local_addr().unwrap()));
        assert_eq!(link.send(b"one", T).await, SendOutcome::Connecting);
        assert_eq!(link.send(b"two", T).await, SendOutcome::Connecting);
        assert!(link.is_connecting() && !link.is_connected());
        // The connect makes progress inside `next()` (the kernel completes it before accept).
        assert_eq!(
            link.next().await,
            HostIn::Connected(vec![b"one".to_vec(), b"two".to_vec()])
        );
        let (mut peer, _) = l.accept().await.unwrap();
        assert!(link.is_connected() && !link.is_connecting());
        assert_eq!(link.send(b"three", T).await, SendOutcome::Sent);
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"three");
    }

    /// A `next()` dropped part-way (a lost `select!` branch) loses neither the connect nor the
    /// queue.
    #[tokio::test]
    async fn a_dropped_next_keeps_the_connect() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut link = HostLink::new(&l.local_addr().unwrap().to_string());
        assert_eq!(link.send(b"req", T).await, SendOutcome::Connecting);
        // Polled once, then dropped (unless the connect was already done at the first poll).
        let first = tokio::time::timeout(Duration::ZERO, link.next()).await;
        let got = match first {
            Ok(got) => got,
            Err(_) => link.next().await,
        };
        assert_eq!(got, HostIn::Connected(vec![b"req".to_vec()]));
    }

    /// Refused: nothing of the queue left, and the link is idle again.
    #[tokio::test]
    async fn a_refused_connect_drops_the_queue() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let mut link = HostLink::new(&addr.to_string());
        assert_eq!(link.send(b"a", T).await, SendOutcome::Connecting);
        assert_eq!(link.send(b"b", T).await, SendOutcome::Connecting);
        assert!(matches!(
            link.next().await,
            HostIn::ConnectFailed { queued: 2, .. }
        ));
        assert!(!link.is_connecting() && !link.is_connected());
    }

    /// Power off: the connect and its queue go; the next send starts afresh with only itself.
    #[tokio::test]
    async fn disconnect_cancels_the_connect_and_its_queue() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut link = HostLink::new(&l.local_addr().unwrap().to_string());
        assert_eq!(link.send(b"old", T).await, SendOutcome::Connecting);
        link.disconnect();
        assert!(!link.is_connecting());
        assert_eq!(link.abandon_connect("nothing to abandon"), 0);
        assert_eq!(link.send(b"new", T).await, SendOutcome::Connecting);
        assert_eq!(link.next().await, HostIn::Connected(vec![b"new".to_vec()]));
    }

    /// Abandoned (the host timeout came first): the queue is counted and dropped.
    #[tokio::test]
    async fn abandon_connect_counts_the_dropped_messages() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut link = HostLink::new(&l.local_addr().unwrap().to_string());
        assert_eq!(link.send(b"x", T).await, SendOutcome::Connecting);
        assert_eq!(link.send(b"y", T).await, SendOutcome::Connecting);
        assert_eq!(link.abandon_connect("timeout"), 2);
        assert!(!link.is_connecting() && !link.is_connected());
    }
}
