//! QUIC voice transport for callwall (quinn 0.11, rustls with the `ring` provider).
//!
//! The callee makes a fresh self-signed certificate for the strategy's server name, listens on
//! `ctx.local_ip:port` (UDP) and publishes an [`Offer`] (address, port, SHA-256 of the
//! certificate, SNI, ALPN) under `"{call_id}/callee"` through signalling. The caller fetches it,
//! connects from `ctx.local_ip` trusting exactly that certificate (no CA, no system roots), and
//! the two exchange a one-line hello on a bidirectional control stream. Voice frames then travel
//! as RFC 9221 DATAGRAM frames, one frame per datagram, unreliable and unordered, which is what
//! the voice model measures.
//!
//! # Strategies, and what a censor sees
//!
//! | strategy | UDP port | SNI (default) | ALPN (default) | on the wire |
//! | --- | --- | --- | --- | --- |
//! | `quic` | 4433 | `callee.callwall.test` | `callwall-voice` | QUIC v1; the first client datagram is a 1200-byte Initial holding the whole ClientHello, so SNI and ALPN are readable by anyone who derives the Initial keys from the DCID (RFC 9001 section 5.2) |
//! | `quic-443` | 443 | `www.example.com` | `h3` | the same shape to port 443: looks like ordinary HTTP/3 to a browser-like SNI |
//! | `quic-split` | 443 | `www.example.com` | `h3` | like `quic-443`, but the ClientHello offers `h3` followed by padding ALPN names sized so it spans exactly two Initial packets (or `bypass.quic_split` of them; two 1200-byte datagrams before the server answers). A censor that decrypts only the first packet of a flow (GFW 2024) finds no complete ClientHello. rustls orders extensions randomly per connection, so the SNI itself may sit in either packet; a censor that parses partial ClientHellos or reassembles CRYPTO frames across packets still sees it, and the oversized ALPN list is itself a visible oddity |
//!
//! `options.port`, `options.sni` and `options.alpn` override the defaults (port 0 lets the
//! callee pick one; the caller always uses the port the callee published). After the
//! handshake every packet is a 1-RTT short-header packet (no version field); keep-alives go
//! every [`KEEP_ALIVE`]. None of the strategies helps against a censor that drops every QUIC v1
//! Initial to a port (Russia 2022: UDP to 443, payload >= 1001 bytes, version 1), though `quic`
//! avoids port 443 rules (and `bypass.quic_version = "draft-29"` or a `decoy` escapes them).
//!
//! # Bypasses
//! Every strategy honours [`BYPASSES`]; any other key is refused before anything starts. The
//! caller applies them (the callee's quinn accepts what they produce). Sources are in
//! `/work/shared/censorship-catalog.md` (and `docs/bypasses.md`).
//! - `decoy`: one datagram (`random` 64 bytes, a `dns` query, a `stun` Binding request with
//!   FINGERPRINT; `callwall_transport::bypass::udp`) from the caller's socket to the callee's
//!   address and port before quinn's first Initial. The callee's quinn drops it (too short
//!   for an Initial, no connection for its ids). Source: catalog, GFW QUIC SNI ("bypassed by
//!   a random datagram first" [M]) and QUIC 2022 (TSPU: "if a flow's first packet is not QUIC,
//!   later packets are not checked" [M/R]).
//! - `source_port`: the caller's socket is bound, before quinn gets it, to a port drawn from
//!   the call's seed below the callee's port (`below-server`: `[port/2, port-1]`, so 221-442
//!   for 443) or above it (`above-server`). Source: catalog, GFW QUIC SNI (only flows with
//!   source port > destination port are inspected [M]).
//! - `quic_split = N` (2-8): the ClientHello offers the real ALPN then seeded padding names
//!   sized to about N - 1/2 Initials of CRYPTO data ([`tls::INITIAL_CRYPTO_CAPACITY`]), so quinn
//!   sends it in exactly N Initial packets (checked by decrypting the caller's datagrams with
//!   `callwall-wire` in `tests/bypass.rs`). `quic-split` is this with N = 2. Source: catalog,
//!   GFW QUIC SNI ("a ClientHello split across Initials" [M]) and Hysteria2's 2-8 chunks [R].
//! - `quic_version = "draft-29"`: the caller speaks 0xff00001d (quinn-proto 0.11 supports drafts
//!   29-34; rustls maps 29 to the draft salt and transport-parameter codepoint). The censor's
//!   parsers (`callwall-wire`) label its Initial `quic` but not `quic-initial` and cannot
//!   decrypt it (no draft salt), so rules on `quic-initial`, on the v1 version bytes (the 2022
//!   TSPU rule) or on the SNI do not match it; a rule on `quic` does. `"v2"` is refused with
//!   [`TransportError::Bypass`]: quinn-proto 0.11 has no QUIC v2 (RFC 9369); it would need a
//!   quinn-proto fork mapping 0x6b3343cf to rustls's `quic::Version::V2` (which has the v2 salt
//!   and "quicv2" labels), the v2 long-header type bits in its packet codec and the v2 Retry
//!   integrity key and nonce. Source: catalog, "Known circumvention" (QUIC v2: the GFW and the
//!   2022 TSPU rule ignore it [M/R]).
//!
//! # Guarantees
//! - Every wait in [`QuicTransport::dial`] and [`QuicTransport::answer`] (signalling, bind,
//!   handshake, hello) is bounded by `ctx.connect_timeout`; running out gives
//!   [`TransportError::Timeout`].
//! - The caller only completes a handshake with the holder of the published certificate's key.
//! - Dropping the [`MediaLink`] closes the connection (the peer's `rx` ends at once) and stops
//!   this side's tasks. If the path is cut, the connection times out after [`IDLE_TIMEOUT`] and
//!   `rx` ends; the transport itself never judges the call.
//! - Randomness: ALPN padding names come from `ctx.seed`. Keys, connection IDs and rustls's
//!   extension order are cryptographic randomness and are not reproducible.
//!
//! Not done: QUIC v2 (see "Bypasses"), connection migration, 0-RTT, retransmission of voice frames (frames that do
//! not fit in a datagram are dropped and logged).

mod link;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use callwall_transport::bypass::{udp, Bypass, QuicVersion};
use callwall_transport::signal::{Client, SignalError};
use callwall_transport::{
    check_bypass, check_strategy, CallContext, MediaLink, TransportError, VoiceTransport,
};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use link::{HandshakeInfo, QuicGuard};

/// Keep-alive interval: an idle-but-healthy call keeps its path (and NAT/censor state) warm.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// Idle timeout: a connection that hears nothing for this long is closed, so a cut path ends
/// the link's `rx`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The transport's name in scenarios.
pub const NAME: &str = "quic";
/// The strategies offered.
pub const STRATEGIES: &[&str] = &["quic", "quic-443", "quic-split"];
/// The order `auto` tries them: the most ordinary-looking first, like an app falling back.
pub const AUTO_ORDER: &[&str] = &["quic-443", "quic-split", "quic"];
/// What `auto` races, 250 ms apart (RFC 8305 style; `callwall_transport::race`): `quic-443`
/// and `quic` (callee ports 443 and 4433; `quic-split` shares 443, so it is not raced).
pub const AUTO_RACE: &[&str] = &["quic-443", "quic"];

/// The [`Bypass`] keys every strategy honours (see the crate doc, "Bypasses").
pub const BYPASSES: &[&str] = &["decoy", "quic_split", "quic_version", "source_port"];
/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// IETF draft 29 (quinn-proto 0.11 speaks drafts 29-34; its rustls glue maps 29-32 to the
/// draft salt and transport-parameter codepoint).
pub const VERSION_DRAFT_29: u32 = 0xff00_001d;
/// How many Initials `quic-split` spreads the ClientHello over when `bypass.quic_split` is unset.
pub const DEFAULT_SPLIT: u8 = 2;

/// The QUIC voice transport. Stateless: all per-call state lives in the [`MediaLink`].
#[derive(Debug, Clone, Copy, Default)]
pub struct QuicTransport;

/// What a strategy does once the scenario's options are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub strategy: &'static str,
    /// UDP port the callee listens on (0: any).
    pub port: u16,
    /// Server name the caller sends and the callee's certificate names.
    pub sni: String,
    /// The one ALPN protocol negotiated.
    pub alpn: String,
    /// Over how many Initial packets the caller spreads its ClientHello (`None`: one).
    pub split: Option<u8>,
    /// The QUIC version the caller speaks.
    pub version: u32,
}

impl Plan {
    /// Resolves `strategy` with `ctx.options`.
    pub fn new(
        strategy: &str,
        options: &callwall_transport::StrategyOptions,
    ) -> Result<Plan, TransportError> {
        let (strategy, port, sni, alpn, split) = match strategy {
            "quic" => ("quic", 4433, "callee.callwall.test", "callwall-voice", None),
            "quic-443" => ("quic-443", 443, "www.example.com", "h3", None),
            "quic-split" => ("quic-split", 443, "www.example.com", "h3", Some(DEFAULT_SPLIT)),
            other => {
                return Err(TransportError::UnknownStrategy {
                    transport: NAME,
                    strategy: other.to_string(),
                    offered: STRATEGIES.join(", "),
                })
            }
        };
        let plan = Plan {
            strategy,
            port: options.port.unwrap_or(port),
            sni: options.sni.clone().unwrap_or_else(|| sni.to_string()),
            alpn: options.alpn.clone().unwrap_or_else(|| alpn.to_string()),
            split: options.bypass.quic_split.or(split),
            version: version(&options.bypass)?,
        };
        if plan.alpn.is_empty() || plan.alpn.len() > 255 {
            return Err(TransportError::Other(format!(
                "alpn {:?} must be 1 to 255 bytes (RFC 7301 section 3.1); fix the scenario's options.alpn",
                plan.alpn
            )));
        }
        if plan.sni.is_empty() {
            return Err(TransportError::Other(
                "sni must not be empty; fix the scenario's options.sni".to_string(),
            ));
        }
        Ok(plan)
    }
}

/// The version `bypass.quic_version` asks for; v2 is refused (see the crate doc).
fn version(bypass: &Bypass) -> Result<u32, TransportError> {
    match bypass.quic_version {
        None | Some(QuicVersion::V1) => Ok(VERSION_1),
        Some(QuicVersion::Draft29) => Ok(VERSION_DRAFT_29),
        Some(QuicVersion::V2) => Err(TransportError::Bypass(
            "bypass.quic_version = \"v2\" is not available: quinn-proto 0.11 speaks only QUIC v1 and \
             its drafts; QUIC v2 (RFC 9369) needs a quinn-proto fork with the v2 version number \
             0x6b3343cf mapped to rustls's quic::Version::V2 (the RFC 9369 section 3.3.1 salt and \
             the \"quicv2 key/iv/hp/ku\" HKDF labels, which rustls 0.23 has), the v2 long-header \
             type bits (Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00; section 3.2) in its \
             packet codec, and the v2 Retry integrity key and nonce (section 3.3.3); use \
             quic_version = \"draft-29\" or a transport that speaks v2"
                .to_string(),
        )),
    }
}

/// What the callee publishes under `"{call_id}/callee"`, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub addr: IpAddr,
    pub port: u16,
    /// Lowercase hex SHA-256 of the DER certificate the callee presents.
    pub cert_sha256: String,
    pub sni: String,
    pub alpn: String,
}

/// The signalling key of a call's offer.
pub fn offer_key(call_id: &str) -> String {
    format!("{call_id}/callee")
}

#[async_trait::async_trait]
impl VoiceTransport for QuicTransport {
    fn name(&self) -> &'static str {
        NAME
    }

    fn strategies(&self) -> &'static [&'static str] {
        STRATEGIES
    }

    fn auto_order(&self) -> &'static [&'static str] {
        AUTO_ORDER
    }

    fn auto_race(&self) -> Option<&'static [&'static str]> {
        Some(AUTO_RACE)
    }

    fn bypasses(&self, strategy: &str) -> &'static [&'static str] {
        if STRATEGIES.contains(&strategy) {
            BYPASSES
        } else {
            &[]
        }
    }

    async fn dial(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError> {
        check_strategy(self, strategy)?;
        check_bypass(self, strategy, &ctx.options.bypass)?;
        let plan = Plan::new(strategy, &ctx.options)?;
        let deadline = Deadline::new(ctx.connect_timeout);
        // The outer bound catches anything the per-step bounds miss.
        match tokio::time::timeout_at(deadline.at, dial(ctx, &plan, &deadline)).await {
            Ok(r) => r,
            Err(_) => Err(deadline.timeout("dialling")),
        }
    }

    async fn answer(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError> {
        check_strategy(self, strategy)?;
        check_bypass(self, strategy, &ctx.options.bypass)?;
        let plan = Plan::new(strategy, &ctx.options)?;
        let deadline = Deadline::new(ctx.connect_timeout);
        match tokio::time::timeout_at(deadline.at, answer(ctx, &plan, &deadline)).await {
            Ok(r) => r,
            Err(_) => Err(deadline.timeout("answering")),
        }
    }
}

/// The moment a call setup must be done by.
struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    fn new(budget: Duration) -> Deadline {
        Deadline { at: Instant::now() + budget, budget }
    }

    fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    fn timeout(&self, what: &'static str) -> TransportError {
        TransportError::Timeout(self.budget, what)
    }

    /// Runs `fut` until the deadline; running out is a [`TransportError::Timeout`] naming `what`.
    async fn within<T>(
        &self,
        what: &'static str,
        fut: impl std::future::Future<Output = Result<T, TransportError>>,
    ) -> Result<T, TransportError> {
        match tokio::time::timeout_at(self.at, fut).await {
            Ok(r) => r,
            Err(_) => Err(self.timeout(what)),
        }
    }

    /// Maps a signalling error, turning waits that ran out into timeouts.
    fn signal_error(&self, what: &'static str, e: SignalError) -> TransportError {
        match e {
            SignalError::Timeout { .. } => self.timeout(what),
            other => TransportError::Signal(other),
        }
    }
}

/// The transport config both sides use: datagrams on, keep-alive, a short idle timeout.
fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // 5 s fits a VarInt of milliseconds, so the conversion cannot fail; fall back to quinn's
    // default rather than panic if it ever did.
    if let Ok(idle) = quinn::IdleTimeout::try_from(IDLE_TIMEOUT) {
        t.max_idle_timeout(Some(idle));
    }
    t.datagram_receive_buffer_size(Some(256 * 1024));
    t.datagram_send_buffer_size(256 * 1024);
    // Voice needs no streams beyond the control stream.
    t.max_concurrent_bidi_streams(4u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    Arc::new(t)
}

fn quic_error(what: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError::Handshake(format!("{what}: {e}"))
}

async fn answer(
    ctx: &CallContext,
    plan: &Plan,
    deadline: &Deadline,
) -> Result<MediaLink, TransportError> {
    let other = |e: tls::TlsError| TransportError::Other(e.to_string());
    let cert = tls::CallCertificate::generate(&plan.sni).map_err(other)?;
    let tls = tls::server_config(&cert, &plan.alpn).map_err(other)?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(tls))
        .map_err(|e| TransportError::Other(format!("quic server config: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport_config());
    let bind = SocketAddr::new(ctx.local_ip, plan.port);
    let endpoint = quinn::Endpoint::server(server, bind)
        .map_err(|e| TransportError::io("binding the quic listener", e))?;
    let local =
        endpoint.local_addr().map_err(|e| TransportError::io("reading the listener address", e))?;

    let offer = Offer {
        addr: ctx.local_ip,
        port: local.port(),
        cert_sha256: tls::hex(&cert.sha256),
        sni: plan.sni.clone(),
        alpn: plan.alpn.clone(),
    };
    let value = serde_json::to_string(&offer).map_err(|e| TransportError::Other(e.to_string()))?;
    let mut signal = Client::connect_from(ctx.local_ip, ctx.signal, deadline.left())
        .await
        .map_err(|e| deadline.signal_error("reaching the signal server", e))?;
    deadline
        .within("publishing the quic offer", async {
            signal.put(&offer_key(&ctx.call_id), &value).await.map_err(TransportError::Signal)
        })
        .await?;
    tracing::debug!(call = %ctx.call_id, %local, strategy = plan.strategy, "quic callee listening");

    // Accept until a handshake completes; a stray or failed handshake does not end the call.
    let conn = deadline
        .within("waiting for the caller's quic handshake", async {
            loop {
                let Some(incoming) = endpoint.accept().await else {
                    return Err(TransportError::Other("quic listener closed".into()));
                };
                let from = incoming.remote_address();
                match incoming.await {
                    Ok(conn) => return Ok(conn),
                    Err(e) => tracing::debug!(%from, "quic handshake from caller failed: {e}"),
                }
            }
        })
        .await?;
    let (send, recv) = deadline
        .within("waiting for the caller's hello", async {
            let (send, mut recv) =
                conn.accept_bi().await.map_err(|e| quic_error("control stream", e))?;
            link::expect_hello(&mut recv, "caller", &ctx.call_id).await?;
            Ok((send, recv))
        })
        .await?;
    let mut send = send;
    deadline
        .within("sending the callee's hello", link::send_hello(&mut send, "callee", &ctx.call_id))
        .await?;
    let info = HandshakeInfo::from_connection(&conn, plan, local);
    Ok(link::start(endpoint, conn, (send, recv), info))
}

async fn dial(
    ctx: &CallContext,
    plan: &Plan,
    deadline: &Deadline,
) -> Result<MediaLink, TransportError> {
    let mut signal = Client::connect_from(ctx.local_ip, ctx.signal, deadline.left())
        .await
        .map_err(|e| deadline.signal_error("reaching the signal server", e))?;
    let key = offer_key(&ctx.call_id);
    let value = signal
        .get(&key, deadline.left())
        .await
        .map_err(|e| deadline.signal_error("waiting for the callee's quic offer", e))?;
    let offer: Offer = serde_json::from_str(&value).map_err(|e| {
        TransportError::Signal(SignalError::Protocol(format!(
            "the callee's quic offer under {key:?} is not valid: {e}"
        )))
    })?;
    let pinned = tls::parse_sha256_hex(&offer.cert_sha256).ok_or_else(|| {
        TransportError::Signal(SignalError::Protocol(format!(
            "the callee's quic offer has a bad cert_sha256 {:?}",
            offer.cert_sha256
        )))
    })?;
    if offer.sni != plan.sni || offer.alpn != plan.alpn {
        tracing::warn!(
            call = %ctx.call_id,
            "callee offered sni {:?} alpn {:?}, caller's strategy says sni {:?} alpn {:?}; using the caller's",
            offer.sni, offer.alpn, plan.sni, plan.alpn
        );
    }

    let alpns = tls::alpn_list(&plan.alpn, plan.split, ctx.seed, &plan.sni);
    let tls =
        tls::client_config(pinned, alpns).map_err(|e| TransportError::Other(e.to_string()))?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(Arc::new(tls))
        .map_err(|e| TransportError::Other(format!("quic client config: {e}")))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport_config());
    client.version(plan.version);

    // The caller's socket: a seeded port for `source_port`, then the decoy from it, then quinn.
    let remote = SocketAddr::new(offer.addr, offer.port);
    let bypass = &ctx.options.bypass;
    let mut rng = bypass_rng(ctx);
    let socket = udp::bind_source(ctx.local_ip, remote.port(), bypass.source_port, &mut rng)?;
    if let Some(kind) = bypass.decoy {
        let decoy = udp::decoy_datagram(kind, &mut rng);
        socket.send_to(&decoy, remote).map_err(|e| TransportError::io("sending the decoy", e))?;
    }
    let runtime = quinn::default_runtime()
        .ok_or_else(|| TransportError::Other("no tokio runtime for quinn".into()))?;
    let endpoint = quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
        .map_err(|e| TransportError::io("starting the quic client endpoint", e))?;
    let local =
        endpoint.local_addr().map_err(|e| TransportError::io("reading the client address", e))?;
    let connecting = endpoint
        .connect_with(client, remote, &plan.sni)
        .map_err(|e| quic_error("starting the quic handshake", e))?;
    let conn = deadline
        .within("the quic handshake", async {
            connecting.await.map_err(|e| match e {
                quinn::ConnectionError::TimedOut => deadline.timeout("the quic handshake"),
                other => quic_error("quic handshake", other),
            })
        })
        .await?;
    let (send, recv) = deadline
        .within("exchanging hellos", async {
            let (mut send, mut recv) =
                conn.open_bi().await.map_err(|e| quic_error("control stream", e))?;
            link::send_hello(&mut send, "caller", &ctx.call_id).await?;
            link::expect_hello(&mut recv, "callee", &ctx.call_id).await?;
            Ok((send, recv))
        })
        .await?;
    let info = HandshakeInfo::from_connection(&conn, plan, local);
    Ok(link::start(endpoint, conn, (send, recv), info))
}

/// The seeded generator of the caller's bypass choices (source port, decoy bytes), per call.
fn bypass_rng(ctx: &CallContext) -> rand_chacha::ChaCha8Rng {
    use callwall_units::seed::{derive, name_index, Purpose};
    rand_chacha::ChaCha8Rng::seed_from_u64(derive(
        ctx.seed,
        Purpose::QuicBypass,
        name_index(&ctx.call_id),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_transport::StrategyOptions;

    #[test]
    fn strategy_defaults() {
        let o = StrategyOptions::default();
        let p = Plan::new("quic", &o).unwrap();
        assert_eq!(
            (p.port, p.sni.as_str(), p.alpn.as_str(), p.split),
            (4433, "callee.callwall.test", "callwall-voice", None)
        );
        let p = Plan::new("quic-443", &o).unwrap();
        assert_eq!(
            (p.port, p.sni.as_str(), p.alpn.as_str(), p.split),
            (443, "www.example.com", "h3", None)
        );
        let p = Plan::new("quic-split", &o).unwrap();
        assert_eq!(
            (p.port, p.sni.as_str(), p.alpn.as_str(), p.split),
            (443, "www.example.com", "h3", Some(2))
        );
        assert!(matches!(Plan::new("quic-v2", &o), Err(TransportError::UnknownStrategy { .. })));
    }

    #[test]
    fn bypass_split_and_version() {
        let mut o = StrategyOptions::default();
        o.bypass.quic_split = Some(5);
        o.bypass.quic_version = Some(QuicVersion::Draft29);
        let p = Plan::new("quic-443", &o).unwrap();
        assert_eq!((p.split, p.version), (Some(5), 0xff00_001d));
        o.bypass.quic_version = Some(QuicVersion::V2);
        let e = Plan::new("quic", &o).unwrap_err();
        assert!(matches!(e, TransportError::Bypass(_)), "{e}");
        assert!(e.to_string().contains("RFC 9369") && e.to_string().contains("0x6b3343cf"), "{e}");
        for s in STRATEGIES {
            assert_eq!(QuicTransport.bypasses(s), BYPASSES);
        }
        assert!(QuicTransport.bypasses("nope").is_empty());
    }

    #[test]
    fn options_override_defaults() {
        let o = StrategyOptions {
            sni: Some("cdn.example.net".into()),
            alpn: Some("h3-29".into()),
            port: Some(8443),
            printable_prefix: None,
            ..Default::default()
        };
        let p = Plan::new("quic-split", &o).unwrap();
        assert_eq!(
            (p.port, p.sni.as_str(), p.alpn.as_str(), p.split),
            (8443, "cdn.example.net", "h3-29", Some(2))
        );
        let bad = StrategyOptions { alpn: Some(String::new()), ..Default::default() };
        assert!(matches!(Plan::new("quic", &bad), Err(TransportError::Other(_))));
        let bad = StrategyOptions { alpn: Some("x".repeat(256)), ..Default::default() };
        assert!(matches!(Plan::new("quic", &bad), Err(TransportError::Other(_))));
    }

    #[test]
    fn offer_round_trips_as_json() {
        let o = Offer {
            addr: "10.0.1.2".parse().unwrap(),
            port: 443,
            cert_sha256: "00".repeat(32),
            sni: "www.example.com".into(),
            alpn: "h3".into(),
        };
        let s = serde_json::to_string(&o).unwrap();
        assert!(s.contains("\"addr\":\"10.0.1.2\""), "{s}");
        assert_eq!(serde_json::from_str::<Offer>(&s).unwrap(), o);
    }
}
