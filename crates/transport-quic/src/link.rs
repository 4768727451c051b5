//! An established QUIC call: the control-stream hello, the datagram pumps, and the guard that
//! owns them.

use std::net::SocketAddr;

use bytes::Bytes;
use callwall_transport::{MediaLink, TransportError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Plan;

/// Frames queued each way between the voice model and the connection.
const CHANNEL_FRAMES: usize = 1024;
/// Longest hello line accepted on the control stream.
const MAX_HELLO: usize = 512;
/// Protocol tag at the start of each hello.
const HELLO_TAG: &str = "callwall-quic/1";

/// What the handshake settled, as seen from this side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    pub strategy: &'static str,
    /// The SNI the caller sent, as the callee's TLS saw it (`None` on the caller, per quinn).
    pub server_name: Option<String>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<String>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Over how many Initials the caller spread its ClientHello (`None`: one).
    pub split: Option<u8>,
}

impl HandshakeInfo {
    pub(crate) fn from_connection(
        conn: &quinn::Connection,
        plan: &Plan,
        local: SocketAddr,
    ) -> HandshakeInfo {
        let data = conn
            .handshake_data()
            .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok());
        let (server_name, alpn) = match data {
            Some(d) => {
                (d.server_name, d.protocol.map(|p| String::from_utf8_lossy(&p).into_owned()))
            }
            None => (None, None),
        };
        HandshakeInfo {
            strategy: plan.strategy,
            server_name,
            alpn,
            local,
            remote: conn.remote_address(),
            split: plan.split,
        }
    }

    fn describe(&self) -> String {
        format!(
            "quic {} {} -> {} sni={} alpn={}{}",
            self.strategy,
            self.local,
            self.remote,
            self.server_name.as_deref().unwrap_or("-"),
            self.alpn.as_deref().unwrap_or("-"),
            match self.split {
                Some(n) => format!(" (ClientHello split across {n} Initials)"),
                None => String::new(),
            }
        )
    }
}

/// Keeps a call's QUIC endpoint, connection, control stream and pump tasks alive. Dropping it
/// closes the connection with code 0 ("call over") and stops the tasks.
///
/// It is the [`MediaLink::guard`]; downcast it to read the [`HandshakeInfo`].
pub struct QuicGuard {
    info: HandshakeInfo,
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    _control: (quinn::SendStream, quinn::RecvStream),
    tasks: Vec<JoinHandle<()>>,
}

impl QuicGuard {
    /// What the handshake settled.
    pub fn handshake(&self) -> &HandshakeInfo {
        &self.info
    }

    /// The connection, for inspection (stats, RTT). Closing it ends the link.
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }
}

impl std::fmt::Debug for QuicGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicGuard").field("info", &self.info).finish_non_exhaustive()
    }
}

impl Drop for QuicGuard {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"call over");
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Sends this side's hello: `callwall-quic/1 <role> <call_id>\n`.
pub(crate) async fn send_hello(
    send: &mut quinn::SendStream,
    role: &str,
    call_id: &str,
) -> Result<(), TransportError> {
    let line = format!("{HELLO_TAG} {role} {call_id}\n");
    send.write_all(line.as_bytes())
        .await
        .map_err(|e| TransportError::Handshake(format!("sending the {role} hello: {e}")))
}

/// Reads the peer's hello and checks it names `role` and this call.
pub(crate) async fn expect_hello(
    recv: &mut quinn::RecvStream,
    role: &str,
    call_id: &str,
) -> Result<(), TransportError> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 128];
    while !line.contains(&b'\n') {
        if line.len() > MAX_HELLO {
            return Err(TransportError::Handshake(format!(
                "the {role} hello is longer than {MAX_HELLO} bytes"
            )));
        }
        match recv.read(&mut chunk).await {
            Ok(Some(n)) => line.extend_from_slice(&chunk[..n]),
            Ok(None) => {
                return Err(TransportError::Handshake(format!(
                    "the {role} closed the control stream before its hello"
                )))
            }
            Err(e) => {
                return Err(TransportError::Handshake(format!("reading the {role} hello: {e}")))
            }
        }
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let expected = format!("{HELLO_TAG} {role} {call_id}");
    if &line[..end] == expected.as_bytes() {
        Ok(())
    } else {
        Err(TransportError::Handshake(format!(
            "unexpected hello {:?}, wanted {expected:?}; is another call using this address?",
            String::from_utf8_lossy(&line[..end])
        )))
    }
}

/// Starts the datagram pumps and wraps everything in a [`MediaLink`].
pub(crate) fn start(
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    control: (quinn::SendStream, quinn::RecvStream),
    info: HandshakeInfo,
) -> MediaLink {
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(CHANNEL_FRAMES);
    let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(CHANNEL_FRAMES);

    let sender = conn.clone();
    let send_task = tokio::spawn(async move {
        let mut warned = false;
        while let Some(frame) = out_rx.recv().await {
            match sender.send_datagram(Bytes::from(frame)) {
                Ok(()) => {}
                Err(quinn::SendDatagramError::TooLarge) => {
                    if !warned {
                        tracing::warn!(
                            max = ?sender.max_datagram_size(),
                            "voice frame larger than a quic datagram, dropped"
                        );
                        warned = true;
                    }
                }
                Err(e) => {
                    tracing::debug!("quic datagram send stopped: {e}");
                    break;
                }
            }
        }
    });

    let receiver = conn.clone();
    let recv_task = tokio::spawn(async move {
        loop {
            match receiver.read_datagram().await {
                Ok(frame) => {
                    // A full queue means the voice model stalled; dropping is what a real
                    // jitter buffer would do, and the loss shows in the metrics.
                    match in_tx.try_send(frame.to_vec()) {
                        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
                Err(e) => {
                    tracing::debug!("quic connection ended: {e}");
                    break;
                }
            }
        }
        // Dropping in_tx ends the link's rx.
    });

    let path = info.describe();
    let guard = QuicGuard {
        info,
        conn,
        _endpoint: endpoint,
        _control: control,
        tasks: vec![send_task, recv_task],
    };
    MediaLink { tx: out_tx, rx: in_rx, path, guard: Box::new(guard) }
}
