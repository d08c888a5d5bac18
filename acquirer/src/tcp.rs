//! The TCP adapter: the sans-IO [`Host`] behind real sockets, for process and real rigs.
//!
//! One task per connection reads and feeds [`Host::handle_bytes`]; after every call the host's
//! outputs are routed to the connection they name; one timer task sleeps until
//! [`Host::poll_timeout`] and calls [`Host::handle_timeout`] (delayed replies). Every new log
//! entry is traced (`target: "acquirer"`), PAN-masked.
//!
//! ```no_run
//! # async fn demo(host: acquirer::Host) -> std::io::Result<()> {
//! use std::sync::{Arc, Mutex};
//! use protocol::time::WallClock;
//! let host = Arc::new(Mutex::new(host));
//! let server = acquirer::tcp::serve("tcp://127.0.0.1:0", host.clone(), Arc::new(WallClock::new(1.0))).await?;
//! println!("listening on {}", server.local_addr());
//! // … the terminal connects; tests read host.lock().log() …
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::time::{Clock, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::host::{ConnId, Host, HostOutput};

/// The longest the timer sleeps before looking again (the clock may be scaled).
const TIMER_SLICE: Duration = Duration::from_millis(250);

enum Out {
    Bytes(Vec<u8>),
    Close,
}

struct Shared {
    host: Arc<Mutex<Host>>,
    clock: Arc<dyn Clock>,
    routes: Mutex<HashMap<ConnId, mpsc::UnboundedSender<Out>>>,
    timer: Notify,
    traced: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the server down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Runs `f` on the host at the clock's `now`, then routes its outputs and traces its log.
    fn with_host<R>(&self, f: impl FnOnce(&mut Host, Instant) -> R) -> R {
        let mut outs = Vec::new();
        let r = {
            let mut h = lock(&self.host);
            let now = self.clock.now();
            let r = f(&mut h, now);
            while let Some(o) = h.poll_output() {
                outs.push(o);
            }
            let from = self.traced.load(Ordering::Relaxed);
            for e in h.log().iter().skip(from) {
                tracing::info!(target: "acquirer", "{e}");
            }
            self.traced.store(h.log().len(), Ordering::Relaxed);
            r
        };
        let routes = lock(&self.routes);
        for o in outs {
            let (conn, out) = match o {
                HostOutput::Send { conn, bytes } => (conn, Out::Bytes(bytes)),
                HostOutput::Close { conn } => (conn, Out::Close),
            };
            if let Some(tx) = routes.get(&conn) {
                let _ = tx.send(out);
            }
        }
        drop(routes);
        self.timer.notify_one();
        r
    }
}

/// A running server. Dropping it without [`ServeHandle::shutdown`] also stops it.
pub struct ServeHandle {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServeHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    /// Stops accepting, closes every connection and waits for the tasks to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// `tcp://127.0.0.1:5000` or `127.0.0.1:5000` → `127.0.0.1:5000`.
pub fn listen_address(s: &str) -> &str {
    s.strip_prefix("tcp://").unwrap_or(s)
}

/// Binds `addr` (`tcp://host:port` or `host:port`; port 0 picks one) and serves `host` until
/// [`ServeHandle::shutdown`]. Any address is allowed; one that is not loopback is warned about,
/// since the simulator accepts anyone who connects.
pub async fn serve(
    addr: &str,
    host: Arc<Mutex<Host>>,
    clock: Arc<dyn Clock>,
) -> std::io::Result<ServeHandle> {
    let listener = TcpListener::bind(listen_address(addr)).await?;
    let local_addr = listener.local_addr()?;
    if !local_addr.ip().is_loopback() {
        tracing::warn!(
            target: "acquirer",
            "listening on {local_addr}, which is not a loopback address: anyone on the network can reach this test host"
        );
    }
    let traced = lock(&host).log().len();
    let shared = Arc::new(Shared {
        host,
        clock,
        routes: Mutex::new(HashMap::new()),
        timer: Notify::new(),
        traced: AtomicUsize::new(traced),
    });
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, shared, stop_rx));
    Ok(ServeHandle {
        local_addr,
        stop,
        task,
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    tasks.spawn(timer(Arc::clone(&shared), stop.clone()));
    loop {
        tokio::select! {
            a = listener.accept() => match a {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tracing::debug!(target: "acquirer", "connection from {peer}");
                    tasks.spawn(connection(Arc::clone(&shared), stream, stop.clone()));
                }
                Err(e) => {
                    tracing::warn!(target: "acquirer", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn timer(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        let deadline = lock(&shared.host).poll_timeout();
        let wait = match deadline {
            Some(d) => {
                let now = shared.clock.now();
                if d <= now {
                    shared.with_host(|h, now| h.handle_timeout(now));
                    continue;
                }
                d.saturating_since(now).min(TIMER_SLICE)
            }
            None => TIMER_SLICE,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.timer.notified() => {}
            r = stop.changed() => if r.is_err() { break },
        }
    }
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, mut stop: watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = shared.with_host(|h, now| h.connect(now));
    lock(&shared.routes).insert(conn, tx);
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = vec![0u8; 4096];
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    shared.with_host(|h, now| h.handle_close(conn, now));
                    break;
                }
                Ok(n) => {
                    let data = buf.get(..n).unwrap_or_default();
                    shared.with_host(|h, now| h.handle_bytes(conn, data, now));
                }
            },
            out = rx.recv() => match out {
                Some(Out::Bytes(b)) => {
                    if wr.write_all(&b).await.is_err() {
                        shared.with_host(|h, now| h.handle_close(conn, now));
                        break;
                    }
                }
                Some(Out::Close) | None => {
                    let _ = wr.shutdown().await;
                    break;
                }
            },
            r = stop.changed() => if r.is_err() { break },
        }
    }
    lock(&shared.routes).remove(&conn);
}
