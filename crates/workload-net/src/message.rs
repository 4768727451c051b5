//! Chat messages: WebSocket text frames (RFC 6455) over TLS over one persistent TCP
//! connection, as WhatsApp Web and most messengers' web clients use.
//!
//! Frames are JSON objects:
//!
//! ```text
//! client -> server  {"t":"hello","count":N,"size":S,"interval_ms":I}   once, first
//! either way        {"t":"msg","seq":n,"sent_ns":T,"body":"..."}        N times each way
//! either way        {"t":"ack","seq":n,"recv_ns":T}                      a delivery receipt
//! ```
//!
//! After the hello the server sends its own N messages at the same interval (the other side
//! of the chat) and acknowledges each client message. Delivery latency is `recv_ns - sent_ns`
//! on the shared clock: for client messages from the server's receipt, for server messages
//! from the client's arrival time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callwall_workload::{percentile, Figures, Kind, MessageFigures, MessageParams};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::tls::{client_config, server_config, Identity, ALPN_HTTP11};
use crate::{ms, unix_ns_now, Measured, Target, Workload, WorkloadError};

/// How long the client keeps listening after its last message for receipts and late messages.
pub const DRAIN: Duration = Duration::from_secs(3);
/// Most messages the server sends back on one connection, whatever the hello asks.
pub const MAX_SERVER_MESSAGES: u32 = 1000;

/// One frame of the chat protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Frame {
    Hello { count: u32, size: u64, interval_ms: u64 },
    Msg { seq: u32, sent_ns: u64, body: String },
    Ack { seq: u32, recv_ns: u64 },
}

impl Frame {
    /// A message whose JSON is about `size` bytes.
    pub fn msg(seq: u32, size: u64) -> Frame {
        // {"t":"msg","seq":N,"sent_ns":T,"body":""} is about 60 bytes.
        let pad = size.saturating_sub(60).min(64 * 1024) as usize;
        Frame::Msg { seq, sent_ns: unix_ns_now(), body: "m".repeat(pad) }
    }

    fn to_ws(&self) -> WsMessage {
        WsMessage::text(serde_json::to_string(self).unwrap_or_default())
    }
}

pub(crate) async fn serve(tcp: TcpListener, identity: &Identity) -> Result<(), WorkloadError> {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(identity, ALPN_HTTP11, false)?));
    loop {
        let Ok((sock, _)) = tcp.accept().await else { continue };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = sock.set_nodelay(true);
            let Ok(tls) = acceptor.accept(sock).await else { return };
            let Ok(ws) = tokio_tungstenite::accept_async(tls).await else { return };
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::channel::<WsMessage>(64);
            let writer = tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if sink.send(m).await.is_err() {
                        return;
                    }
                }
            });
            let mut sender: Option<tokio::task::JoinHandle<()>> = None;
            while let Some(Ok(m)) = stream.next().await {
                let WsMessage::Text(text) = m else {
                    if matches!(m, WsMessage::Close(_)) {
                        break;
                    }
                    continue;
                };
                match serde_json::from_str::<Frame>(text.as_str()) {
                    Ok(Frame::Hello { count, size, interval_ms }) if sender.is_none() => {
                        let tx = tx.clone();
                        sender = Some(tokio::spawn(async move {
                            let interval = Duration::from_millis(interval_ms.clamp(1, 60_000));
                            for seq in 0..count.min(MAX_SERVER_MESSAGES) {
                                if tx.send(Frame::msg(seq, size).to_ws()).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(interval).await;
                            }
                        }));
                    }
                    Ok(Frame::Msg { seq, .. }) => {
                        let ack = Frame::Ack { seq, recv_ns: unix_ns_now() };
                        if tx.send(ack.to_ws()).await.is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if let Some(s) = sender {
                s.abort();
            }
            drop(tx);
            let _ = writer.await;
        });
    }
}

/// The chat client.
pub struct Client(pub MessageParams);

#[async_trait]
impl Workload for Client {
    fn kind(&self) -> Kind {
        Kind::Message
    }

    async fn run(&self, target: &Target) -> Measured {
        let mut f = MessageFigures { count: self.0.count, ..Default::default() };
        let error = chat(&self.0, target, &mut f).await.err();
        Measured { figures: Figures::Message(f), error }
    }
}

async fn chat(p: &MessageParams, t: &Target, f: &mut MessageFigures) -> Result<(), WorkloadError> {
    let started = tokio::time::Instant::now();
    let budget = t.request_budget();
    let ws = tokio::time::timeout(budget, async {
        let sock = TcpStream::connect(t.addr)
            .await
            .map_err(|e| WorkloadError::Connect(format!("{}: {e}", t.addr)))?;
        let _ = sock.set_nodelay(true);
        let cfg = client_config(&t.ca_pem, ALPN_HTTP11, false)?;
        let name = rustls::pki_types::ServerName::try_from(t.server_name.clone())
            .map_err(|e| WorkloadError::Config(format!("server name {:?}: {e}", t.server_name)))?;
        let tls = TlsConnector::from(Arc::new(cfg))
            .connect(name, sock)
            .await
            .map_err(|e| WorkloadError::Tls(e.to_string()))?;
        let url = format!("wss://{}/chat", t.server_name);
        let (ws, _) = tokio_tungstenite::client_async(url, tls)
            .await
            .map_err(|e| WorkloadError::WebSocket(e.to_string()))?;
        Ok::<_, WorkloadError>(ws)
    })
    .await
    .map_err(|_| WorkloadError::Timeout(format!("chat connection not up after {budget:?}")))??;
    f.connect_ms = Some(ms(started.elapsed()));

    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<WsMessage>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let interval = p.interval.as_std();
    let hello = Frame::Hello {
        count: p.count,
        size: p.size.get(),
        interval_ms: interval.as_millis() as u64,
    };
    tx.send(hello.to_ws())
        .await
        .map_err(|_| WorkloadError::WebSocket("connection closed".into()))?;

    let sent_at: Arc<std::sync::Mutex<HashMap<u32, u64>>> = Arc::default();
    let (count, size) = (p.count, p.size.get());
    let tx2 = tx.clone();
    let sent2 = sent_at.clone();
    let sender = tokio::spawn(async move {
        let mut sent = 0u32;
        for seq in 0..count {
            let m = Frame::msg(seq, size);
            if let Frame::Msg { sent_ns, .. } = &m {
                if let Ok(mut s) = sent2.lock() {
                    s.insert(seq, *sent_ns);
                }
            }
            if tx2.send(m.to_ws()).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(interval).await;
        }
        sent
    });

    let end = (tokio::time::Instant::now() + interval * count + DRAIN).min(t.deadline);
    let mut latencies = Vec::new();
    let mut acked = std::collections::HashSet::new();
    let mut got = std::collections::HashSet::new();
    let mut error = None;
    loop {
        if acked.len() as u32 >= count && got.len() as u32 >= count {
            break;
        }
        let next = match tokio::time::timeout_at(end, stream.next()).await {
            Err(_) => {
                error = Some(WorkloadError::Timeout(format!(
                    "{} of {count} receipts and {} of {count} messages by the end",
                    acked.len(),
                    got.len()
                )));
                break;
            }
            Ok(None) => {
                error = Some(WorkloadError::WebSocket("the server closed the connection".into()));
                break;
            }
            Ok(Some(Err(e))) => {
                error = Some(WorkloadError::WebSocket(e.to_string()));
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        let WsMessage::Text(text) = next else { continue };
        let now = unix_ns_now();
        match serde_json::from_str::<Frame>(text.as_str()) {
            Ok(Frame::Ack { seq, recv_ns }) => {
                let sent = sent_at.lock().ok().and_then(|s| s.get(&seq).copied());
                if let Some(sent) = sent {
                    if acked.insert(seq) {
                        latencies.push(recv_ns.saturating_sub(sent) as f64 / 1e6);
                    }
                }
            }
            Ok(Frame::Msg { seq, sent_ns, .. }) => {
                if seq < count && got.insert(seq) {
                    latencies.push(now.saturating_sub(sent_ns) as f64 / 1e6);
                }
                let _ = tx.send(Frame::Ack { seq, recv_ns: now }.to_ws()).await;
            }
            _ => {}
        }
    }
    sender.abort();
    f.sent_up = sent_at.lock().map_or(0, |s| s.len() as u32);
    f.delivered_up = acked.len() as u32;
    f.sent_down = count;
    f.delivered_down = got.len() as u32;
    f.latency_p50_ms = percentile(&latencies, 50.0);
    f.latency_p95_ms = percentile(&latencies, 95.0);
    f.latency_max_ms = percentile(&latencies, 100.0);
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_millis(500), writer).await;
    error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_documented_shape_and_size() {
        let m = Frame::msg(3, 200);
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.starts_with("{\"t\":\"msg\",\"seq\":3,"), "{s}");
        assert!((180..=230).contains(&s.len()), "{} bytes", s.len());
        let h: Frame =
            serde_json::from_str(r#"{"t":"hello","count":2,"size":64,"interval_ms":10}"#).unwrap();
        assert_eq!(h, Frame::Hello { count: 2, size: 64, interval_ms: 10 });
        assert!(serde_json::from_str::<Frame>(r#"{"t":"spam"}"#).is_err());
    }
}
