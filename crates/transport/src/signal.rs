//! Signalling: a tiny rendezvous service on the signal host, reached over TCP.
//!
//! Real calling apps exchange offers, keys and addresses through their messaging servers; the
//! censor may leave that channel alone (as Russia did with text in 2025) or not. Here the
//! signal host runs [`serve`], a key-value store with blocking reads, and each peer uses a
//! [`Client`]. The protocol is one JSON object per line:
//!
//! ```text
//! -> {"op":"put","key":"call-1/0/callee","value":"..."}   <- {"ok":true}
//! -> {"op":"get","key":"call-1/0/callee","wait_ms":5000}  <- {"ok":true,"value":"..."}
//!                                                          <- {"ok":false,"error":"timeout"}
//! ```
//!
//! Guarantees: a `get` returns as soon as the key exists, or fails when its wait runs out; the
//! server never blocks one connection on another. Values are capped at [`MAX_VALUE`] bytes and
//! lines at [`MAX_LINE`]; the server holds at most [`MAX_KEYS`] keys (oldest dropped first).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

pub const MAX_VALUE: usize = 256 * 1024;
pub const MAX_LINE: usize = MAX_VALUE + 4096;
pub const MAX_KEYS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("cannot reach the signal server at {addr}: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("timed out after {0:?} reaching the signal server")]
    ConnectTimeout(Duration),
    #[error("signal connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered that the key did not appear within the wait: the server is
    /// reachable, the other peer did not put the key in time.
    #[error("no value for {key:?} within {wait:?}")]
    Timeout { key: String, wait: Duration },
    /// The server did not answer a request in time: signalling could not get through.
    #[error("the signal server did not answer the request for {key:?} within {after:?}")]
    NoReply { key: String, after: Duration },
    #[error("signal server closed the connection")]
    Closed,
    #[error("signal protocol error: {0}")]
    Protocol(String),
}

impl SignalError {
    /// Whether this error means signalling could not get through (the server was unreachable,
    /// the connection broke or a reply never came), as opposed to a protocol error or a key the
    /// other peer did not put in time.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SignalError::Connect { .. }
                | SignalError::ConnectTimeout(_)
                | SignalError::Io(_)
                | SignalError::Closed
                | SignalError::NoReply { .. }
        )
    }
}

/// How long a request waits for the server's reply beyond the server-side wait of a `get`:
/// room for TCP to retransmit a lost segment several times (RTO 200 ms, doubling). Never zero,
/// so no request ever has a budget of zero.
pub const REPLY_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Request {
    Put { key: String, value: String },
    Get { key: String, wait_ms: u64 },
}

#[derive(Debug, Serialize, Deserialize)]
struct Response {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A connection to the signal server. One request at a time.
///
/// Cancel-safe: if a request's future is dropped before its reply was read (e.g. a `get`
/// inside `tokio::select!`), the next request reconnects first, so it never reads a stale
/// reply.
pub struct Client {
    addr: SocketAddr,
    local: Option<IpAddr>,
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    /// A request was sent whose reply has not been read.
    in_flight: bool,
}

impl Client {
    /// Connects, retrying until `timeout` (the server may still be starting).
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Client, SignalError> {
        Client::connect_inner(None, addr, timeout).await
    }

    /// Like [`Client::connect`], but the connection leaves from `local` (a call's own
    /// address), so the censor attributes the call's signalling to it. Falls back to an
    /// unbound connection when the address families differ.
    pub async fn connect_from(
        local: IpAddr,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Client, SignalError> {
        Client::connect_inner(Some(local), addr, timeout).await
    }

    async fn connect_inner(
        local: Option<IpAddr>,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Client, SignalError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, open(local, addr)).await {
                Ok(Ok(s)) => {
                    s.set_nodelay(true)?;
                    let (r, w) = s.into_split();
                    return Ok(Client {
                        addr,
                        local,
                        reader: BufReader::new(r),
                        writer: w,
                        in_flight: false,
                    });
                }
                Ok(Err(e))
                    if tokio::time::Instant::now() + Duration::from_millis(100) < deadline =>
                {
                    tracing::debug!("signal connect to {addr} failed ({e}), retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(Err(source)) => return Err(SignalError::Connect { addr, source }),
                Err(_) => return Err(SignalError::ConnectTimeout(timeout)),
            }
        }
    }

    /// Sends `req` and waits up to `reply_within` (at least [`REPLY_MARGIN`]) for the reply.
    async fn request(
        &mut self,
        req: &Request,
        reply_within: Duration,
    ) -> Result<Response, SignalError> {
        let reply_within = reply_within.max(REPLY_MARGIN);
        if self.in_flight {
            *self = Client::connect_inner(self.local, self.addr, Duration::from_secs(5)).await?;
        }
        self.in_flight = true;
        let mut line =
            serde_json::to_string(req).map_err(|e| SignalError::Protocol(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        let mut buf = String::new();
        let read = tokio::time::timeout(reply_within, async {
            let mut limited = (&mut self.reader).take(MAX_LINE as u64);
            limited.read_line(&mut buf).await
        });
        match read.await {
            Err(_) => {
                Err(SignalError::NoReply { key: key_of(req).to_string(), after: reply_within })
            }
            Ok(Err(e)) => Err(SignalError::Io(e)),
            Ok(Ok(0)) => Err(SignalError::Closed),
            Ok(Ok(_)) => {
                self.in_flight = false;
                serde_json::from_str(&buf).map_err(|e| SignalError::Protocol(e.to_string()))
            }
        }
    }

    /// Stores `value` under `key` (replacing any previous value).
    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), SignalError> {
        let req = Request::Put { key: key.to_string(), value: value.to_string() };
        let resp = self.request(&req, REPLY_MARGIN).await?;
        if resp.ok {
            Ok(())
        } else {
            Err(SignalError::Protocol(resp.error.unwrap_or_default()))
        }
    }

    /// Waits up to `wait` for `key` to exist and returns its value.
    pub async fn get(&mut self, key: &str, wait: Duration) -> Result<String, SignalError> {
        let req = Request::Get { key: key.to_string(), wait_ms: wait.as_millis() as u64 };
        // The server answers a get within its wait; allow a margin for the path.
        let resp = self.request(&req, wait.saturating_add(REPLY_MARGIN)).await?;
        match (resp.ok, resp.value) {
            (true, Some(v)) => Ok(v),
            (false, _) if resp.error.as_deref() == Some("timeout") => {
                Err(SignalError::Timeout { key: key.to_string(), wait })
            }
            (_, _) => Err(SignalError::Protocol(resp.error.unwrap_or_else(|| "no value".into()))),
        }
    }
}

async fn open(local: Option<IpAddr>, addr: SocketAddr) -> std::io::Result<TcpStream> {
    match local {
        Some(ip) if ip.is_ipv4() == addr.is_ipv4() => {
            let sock = if ip.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            sock.bind(SocketAddr::new(ip, 0))?;
            sock.connect(addr).await
        }
        _ => TcpStream::connect(addr).await,
    }
}

fn key_of(req: &Request) -> &str {
    match req {
        Request::Put { key, .. } | Request::Get { key, .. } => key,
    }
}

#[derive(Default)]
struct Store {
    map: HashMap<String, String>,
    order: VecDeque<String>,
}

/// Serves the signalling protocol on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let store = Arc::new((Mutex::new(Store::default()), Notify::new()));
    loop {
        let (stream, peer) = listener.accept().await?;
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, store).await {
                tracing::debug!("signal client {peer}: {e}");
            }
        });
    }
}

async fn handle(stream: TcpStream, store: Arc<(Mutex<Store>, Notify)>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    loop {
        let mut buf = String::new();
        let n = (&mut reader).take(MAX_LINE as u64).read_line(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let resp = match serde_json::from_str::<Request>(&buf) {
            Err(e) => Response { ok: false, value: None, error: Some(format!("bad request: {e}")) },
            Ok(Request::Put { value, .. }) if value.len() > MAX_VALUE => {
                Response { ok: false, value: None, error: Some("value too large".into()) }
            }
            Ok(Request::Put { key, value }) => {
                let (lock, notify) = &*store;
                {
                    let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
                    if s.map.insert(key.clone(), value).is_none() {
                        s.order.push_back(key);
                        while s.order.len() > MAX_KEYS {
                            if let Some(old) = s.order.pop_front() {
                                s.map.remove(&old);
                            }
                        }
                    }
                }
                notify.notify_waiters();
                Response { ok: true, value: None, error: None }
            }
            Ok(Request::Get { key, wait_ms }) => {
                let (lock, notify) = &*store;
                let deadline =
                    tokio::time::Instant::now() + Duration::from_millis(wait_ms.min(600_000));
                loop {
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    let found =
                        lock.lock().unwrap_or_else(|p| p.into_inner()).map.get(&key).cloned();
                    if let Some(v) = found {
                        break Response { ok: true, value: Some(v), error: None };
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        break Response { ok: false, value: None, error: Some("timeout".into()) };
                    }
                }
            }
        };
        let mut out = serde_json::to_string(&resp).unwrap_or_else(|_| "{\"ok\":false}".into());
        out.push('\n');
        w.write_all(out.as_bytes()).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn get_waits_for_put() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener));
        let mut a = Client::connect(addr, Duration::from_secs(2)).await.unwrap();
        let mut b = Client::connect(addr, Duration::from_secs(2)).await.unwrap();
        let getter = tokio::spawn(async move { b.get("room/offer", Duration::from_secs(3)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.put("room/offer", "sdp").await.unwrap();
        assert_eq!(getter.await.unwrap().unwrap(), "sdp");
        let err = a.get("missing", Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(err, SignalError::Timeout { .. }), "{err}");
        server.abort();
    }

    #[tokio::test]
    async fn a_cancelled_get_does_not_poison_the_next_request() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener));
        let mut a = Client::connect(addr, Duration::from_secs(2)).await.unwrap();
        let mut b = Client::connect(addr, Duration::from_secs(2)).await.unwrap();
        // Cancel a get while it waits; its reply would arrive later on the same connection.
        let _ = tokio::time::timeout(
            Duration::from_millis(50),
            a.get("k1", Duration::from_millis(300)),
        )
        .await;
        b.put("k1", "one").await.unwrap();
        b.put("k2", "two").await.unwrap();
        assert_eq!(a.get("k2", Duration::from_secs(1)).await.unwrap(), "two");
        server.abort();
    }

    #[tokio::test]
    async fn garbage_gets_an_error_not_a_hangup() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"not json\n").await.unwrap();
        let mut r = BufReader::new(&mut s);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert!(line.contains("\"ok\":false"), "{line}");
        server.abort();
    }
}
