//! The TURN-over-stream adapter: a local UDP "TURN server" that carries every datagram to the
//! real relay over one TCP or TLS stream.
//!
//! webrtc-rs 0.21 allocates TURN relays over UDP only (it skips `turn:…?transport=tcp` and
//! `turns:` URLs). The caller therefore points webrtc-rs at this adapter's UDP socket, bound on
//! the caller's own address with an ephemeral port, and the adapter:
//! - connects one TCP stream (turn-tcp) or one TLS stream (turn-tls) to coturn before the peer
//!   connection is built, so a blocked relay fails fast and clearly;
//! - accepts datagrams from exactly one local client (the first one seen: the peer
//!   connection's socket) and writes each as a stream message, ChannelData padded to a multiple
//!   of 4 ([`crate::framing`], RFC 8656 §12.5);
//! - splits the stream back into messages and sends each as one datagram to that client.
//!
//! Messages are never parsed beyond their length, never rewritten: XOR-RELAYED-ADDRESS and the
//! message integrity are end-to-end between webrtc-rs and coturn. coturn sees the caller's real
//! TCP source address (so XOR-MAPPED-ADDRESS names that, not the UDP socket); the relayed
//! address it allocates is the same UDP relay as for TURN over UDP. The censor sees real TURN
//! over TCP or TLS to the relay.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use callwall_transport::TransportError;

use crate::bypass::{FirstFlight, FirstFlightShape, ShapeCounters};
use crate::framing::{frame_for_stream, Deframer};

/// How the adapter reaches the relay.
#[derive(Debug, Clone)]
pub(crate) enum Upstream {
    Tcp,
    /// `sni` empty: no server_name extension. `shape`: the first flight's record and
    /// segment sizes (bypasses `tls_record`, `tcp_segment`).
    Tls {
        sni: String,
        cert_pem: String,
        alpn: Option<String>,
        shape: FirstFlightShape,
    },
}

impl Upstream {
    fn name(&self) -> &'static str {
        match self {
            Upstream::Tcp => "tcp",
            Upstream::Tls { .. } => "tls",
        }
    }
}

/// Traffic the adapter carried, for reports and tests.
#[derive(Debug, Default)]
pub struct AdapterCounters {
    /// Datagrams (and their bytes) from webrtc-rs written to the stream.
    pub datagrams_up: AtomicU64,
    pub bytes_up: AtomicU64,
    /// Messages (and their bytes) read from the stream and sent to webrtc-rs.
    pub datagrams_down: AtomicU64,
    pub bytes_down: AtomicU64,
}

impl AdapterCounters {
    /// `(datagrams_up, datagrams_down)`.
    pub fn datagrams(&self) -> (u64, u64) {
        (self.datagrams_up.load(Ordering::Relaxed), self.datagrams_down.load(Ordering::Relaxed))
    }
}

/// A running adapter. Dropping it stops its tasks and closes the stream.
pub(crate) struct StreamAdapter {
    /// The UDP address webrtc-rs uses as its TURN server.
    pub local: SocketAddr,
    /// The relay's stream address.
    pub relay: SocketAddr,
    /// The caller's source address of the stream, as the relay sees it.
    pub stream_source: SocketAddr,
    pub kind: &'static str,
    pub counters: Arc<AdapterCounters>,
    /// What the first-flight shaping did (TLS with `tls_record`/`tcp_segment` only).
    pub shaped: Option<Arc<ShapeCounters>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for StreamAdapter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl StreamAdapter {
    /// Connects to `relay` over `upstream` from `bind_ip` (bounded by `timeout`) and binds the
    /// local UDP socket on `bind_ip`.
    pub async fn start(
        upstream: Upstream,
        bind_ip: IpAddr,
        relay: SocketAddr,
        timeout: Duration,
    ) -> Result<StreamAdapter, TransportError> {
        let kind = upstream.name();
        let udp = UdpSocket::bind(SocketAddr::new(bind_ip, 0))
            .await
            .map_err(|e| TransportError::io("binding the turn adapter's udp socket", e))?;
        let local = udp.local_addr().map_err(|e| TransportError::io("turn adapter address", e))?;
        // From the call's own address, so the relay and the censor see the call's address.
        let connect = crate::bind::connect_from(bind_ip, relay);
        let tcp = match tokio::time::timeout(timeout, connect).await {
            Err(_) => {
                return Err(TransportError::Timeout(timeout, "connecting to the relay over tcp"))
            }
            Ok(Err(e)) => return Err(TransportError::io("connecting to the relay over tcp", e)),
            Ok(Ok(s)) => s,
        };
        tcp.set_nodelay(true).map_err(|e| TransportError::io("setting tcp nodelay", e))?;
        let stream_source =
            tcp.local_addr().map_err(|e| TransportError::io("turn stream address", e))?;
        let counters = Arc::new(AdapterCounters::default());
        let udp = Arc::new(udp);
        let mut shaped = None;
        let tasks = match upstream {
            Upstream::Tcp => spawn_pumps(tcp, udp, counters.clone()),
            Upstream::Tls { sni, cert_pem, alpn, shape } => {
                let connector =
                    crate::tls::pinned_connector(&cert_pem, alpn.as_deref(), !sni.is_empty())?;
                let name = crate::tls::server_name_or_none(&sni, relay.ip())?;
                // Shapes the first flight (a no-op without `shape`) until the handshake is done.
                let tcp = FirstFlight::new(tcp, shape);
                if !shape.is_none() {
                    shaped = Some(tcp.counters.clone());
                }
                let mut tls =
                    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
                        Err(_) => {
                            return Err(TransportError::Timeout(
                                timeout,
                                "tls handshake with the relay",
                            ))
                        }
                        Ok(Err(e)) => {
                            return Err(TransportError::Handshake(format!(
                                "tls handshake with the relay at {relay}: {e}"
                            )))
                        }
                        Ok(Ok(s)) => s,
                    };
                tls.get_mut().0.finish();
                spawn_pumps(tls, udp, counters.clone())
            }
        };
        tracing::debug!("turn adapter {local} -> {relay} over {kind} from {stream_source}");
        Ok(StreamAdapter { local, relay, stream_source, kind, counters, shaped, tasks })
    }
}

fn spawn_pumps<S>(
    stream: S,
    udp: Arc<UdpSocket>,
    counters: Arc<AdapterCounters>,
) -> Vec<JoinHandle<()>>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (client_tx, mut client_rx) = watch::channel::<Option<SocketAddr>>(None);

    let up_udp = udp.clone();
    let up_counters = counters.clone();
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        let mut client: Option<SocketAddr> = None;
        loop {
            let (n, from) = match up_udp.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!("turn adapter udp receive failed: {e}");
                    continue;
                }
            };
            match client {
                None => {
                    client = Some(from);
                    let _ = client_tx.send(Some(from));
                }
                Some(c) if c != from => {
                    tracing::debug!("turn adapter ignores a datagram from {from} (client is {c})");
                    continue;
                }
                Some(_) => {}
            }
            let framed = match frame_for_stream(&buf[..n]) {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!("turn adapter drops a datagram it cannot frame: {e}");
                    continue;
                }
            };
            if let Err(e) = writer.write_all(&framed).await {
                tracing::debug!("turn adapter stream write failed: {e}");
                return;
            }
            up_counters.datagrams_up.fetch_add(1, Ordering::Relaxed);
            up_counters.bytes_up.fetch_add(n as u64, Ordering::Relaxed);
        }
    });

    let down = tokio::spawn(async move {
        let mut deframer = Deframer::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) => {
                    tracing::debug!("the relay closed the turn stream");
                    return;
                }
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!("turn adapter stream read failed: {e}");
                    return;
                }
            };
            deframer.push(&buf[..n]);
            loop {
                let datagram = match deframer.next_datagram() {
                    Ok(Some(d)) => d,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!("turn stream out of sync, closing: {e}");
                        return;
                    }
                };
                // The relay only answers what the client sent, so the client is known by now.
                let client = *client_rx.borrow_and_update();
                let Some(client) = client else {
                    tracing::debug!("turn adapter drops a message that arrived before any request");
                    continue;
                };
                if let Err(e) = udp.send_to(&datagram, client).await {
                    tracing::debug!("turn adapter udp send failed: {e}");
                    continue;
                }
                counters.datagrams_down.fetch_add(1, Ordering::Relaxed);
                counters.bytes_down.fetch_add(datagram.len() as u64, Ordering::Relaxed);
            }
        }
    });
    vec![up, down]
}
