//! A voice transport over the Noise protocol (`Noise_IK_25519_ChaChaPoly_BLAKE2s`, via snow),
//! with four wire shapes a censor may or may not recognise.
//!
//! # How a call is set up
//! The callee (responder) makes a fresh static X25519 keypair for the call, binds its socket on
//! `ctx.local_ip`, and publishes `{"pubkey": hex, "addr": ip, "port": n}` under
//! `"{call_id}/callee"` on the signal server. The caller (initiator) reads it and sends IK
//! message 1 (a 12-byte TAI64N payload, like WireGuard's timestamp), again every second until
//! it gets message 2 or `connect_timeout` runs out. The callee answers every copy of message 1
//! with the same message 2, even after it considers the call up, so a lost answer costs one
//! retransmission. After the handshake both sides use snow's *stateless* transport mode: every
//! data packet carries its nonce (a counter), so loss and reordering only lose the packets
//! concerned. Replays (a 128-counter window) and packets that do not authenticate are dropped
//! and counted, never delivered. Voice frames are the plaintexts.
//!
//! # Strategies, and what a censor sees
//! - **`udp`**: one datagram per message to UDP port 51820 (or `options.port`). Plain framing:
//!   a kind byte (`01` initiation, `02` response, `04` data), big-endian 4-byte indices, for
//!   data an 8-byte big-endian counter, then the Noise message. A DPI sees a constant first
//!   byte and fixed handshake sizes (1+4+108 = 113 and 1+4+4+48 = 57 bytes): easy to pin.
//! - **`udp-wg`**: WireGuard's shapes (whitepaper §5.4): initiation exactly 148 bytes
//!   `01 00 00 00` + sender index (LE) + IK message 1 (108 bytes) + mac1 + mac2; response
//!   exactly 92 bytes `02 00 00 00` + sender + receiver + IK message 2 (48) + mac1 + mac2; data
//!   `04 00 00 00` + receiver index + 8-byte little-endian counter + ciphertext. mac1 is random
//!   bytes (a real one is a keyed BLAKE2s that only the responder's key holder can check, so a
//!   censor cannot tell the difference); mac2 is zero, as in WireGuard without a cookie. A
//!   censor that matches WireGuard by shape catches it: that is the point of the strategy. It
//!   is not interoperable with WireGuard (IK without the psk, no cookie handling).
//! - **`udp-obfs`**: nothing fixed. Every datagram is an 8-byte random prefix, then the kind,
//!   a padding length and the rest of the plain framing XOR-masked with
//!   `ChaCha20(key = K, nonce = prefix)`, then 0-96 (handshake) or 0-48 (data) random padding
//!   bytes. `K` is a PRF of the callee's public key, which both peers have from signalling and
//!   the censor does not. The port defaults to one drawn from the seed (10000-59999). A DPI sees
//!   uniformly random bytes of varying length: it can only block unidentified UDP as a whole.
//! - **`tcp-443`**: a TCP connection to port 443 (or `options.port`); each message is the plain
//!   framing behind a 2-byte big-endian length. If `options.printable_prefix` is set (e.g.
//!   `"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"`), the caller sends it first, in the same
//!   write as message 1, and the callee checks and discards it. The first data packet then
//!   starts with six printable bytes, which exempts the connection from the GFW's
//!   fully-encrypted-traffic test (Wu et al., USENIX Security 2023, exemption 2). Without a
//!   prefix the first packet is high-entropy from byte 0 and may be blocked by that test.
//!
//! # Bypasses
//! The [`callwall_transport::Bypass`] keys each strategy honours ([`BYPASSES_UDP`],
//! [`BYPASSES_UDP_WG`], [`BYPASSES_TCP`]); any other key is refused before anything starts.
//! The caller applies them; the callee reads the same options, so both sides agree on the
//! framing. Sources are in `/work/shared/censorship-catalog.md` (and `docs/bypasses.md`).
//! - `decoy` (`udp`, `udp-wg`, `udp-obfs`): one datagram (`random` 64 bytes, a `dns` query, a
//!   `stun` Binding request with FINGERPRINT; built by `callwall_transport::bypass::udp`) from
//!   the call's own socket to the callee's address and port, before the first initiation. The
//!   callee does not decode it and counts it as malformed. Source: catalog, "Known
//!   circumvention" and "Russia after August 2025" (a fake first packet beat the call
//!   restriction in August 2025).
//! - `source_port` (UDP strategies): the caller binds a port drawn from the call's seed below
//!   the callee's port (`below-server`, in `[port/2, port-1]`) or above it (`above-server`).
//!   Source: catalog, GFW QUIC SNI (only flows with source port > destination port inspected).
//! - `port_hop` (UDP strategies): every interval the caller binds a fresh socket (a seeded port
//!   when `source_port` is set, else an ephemeral one) and sends from it; it keeps reading the
//!   previous socket for [`HOP_GRACE`]. Both sides follow the peer to the address of the newest
//!   authenticated data packet (WireGuard's roaming, whitepaper §2.1), so media crosses a hop
//!   without loss in the loopback tests. Each hop is a new 5-tuple: per-flow state in a censor
//!   (a first-packet verdict, a cut after some age or bytes) starts again; a block on the
//!   3-tuple (client IP, server IP, server port) is not escaped. Source: catalog, "Known
//!   circumvention": port hopping.
//! - `junk` (`udp-wg`): `count` datagrams of `min`-`max` random bytes before every
//!   initiation (AmneziaWG's Jc/Jmin/Jmax). `wg_headers` (`udp-wg`): the 4-byte little-endian
//!   type field of initiation, response, cookie and data is H1-H4 instead of 1-4.
//!   `wg_padding` (`udp-wg`): S1 random bytes before the initiation and S2 before the response,
//!   so they are no longer 148 and 92 bytes; the receiver recognises a handshake by its size
//!   and header, as AmneziaWG does. Source: catalog, "Circumvention for calls" (AmneziaWG:
//!   junk packets, padding, custom header values [R]).
//! - `tcp_segment` (`tcp-443`): the first flight (the printable prefix, if any, then message 1
//!   behind its length) is written in writes of at most N bytes with TCP_NODELAY, so the
//!   censor's first data segment holds only N bytes. Linux sends each write as its own segment
//!   while the initial congestion window (10 segments) lasts; beyond that it may merge unsent
//!   writes. Source: catalog, "Known circumvention" (TCP segmentation of the ClientHello
//!   against first-packet reading, 2021 TSPU [M]).
//!
//! # Guarantees and limits
//! Every wait is bounded by `ctx.connect_timeout`; sockets bind to `ctx.local_ip`; the link's
//! tasks end when the [`MediaLink`] is dropped (or its channels close). A default port that is
//! busy falls back to an ephemeral one (the path says so). The responder does not authenticate
//! the initiator's static key (no prior knowledge of it); the data is confidential and
//! authenticated to whoever completed the handshake. No rekeying: a call stays far below
//! 2^64 packets.

#![forbid(unsafe_code)]

pub mod session;
pub mod wire;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use callwall_transport::bypass::{udp, Bypass, SourcePort};
use callwall_transport::signal::Client;
use callwall_transport::{
    check_bypass, check_strategy, CallContext, MediaLink, TransportError, VoiceTransport,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use session::{Initiator, Session, Stats};
use wire::{Framing, ObfsKey, Packet, WgShape};

/// The strategies, in `auto` order.
pub const STRATEGIES: &[&str] = &["udp", "udp-wg", "udp-obfs", "tcp-443"];
/// What `auto` races, 250 ms apart (RFC 8305 style; `callwall_transport::race`): UDP and
/// TCP 443, on distinct callee ports (the UDP variants share one port, so only `udp` races).
pub const AUTO_RACE: &[&str] = &["udp", "tcp-443"];
/// Default UDP port of `udp` and `udp-wg` (WireGuard's customary port).
pub const DEFAULT_UDP_PORT: u16 = 51820;
/// Default TCP port of `tcp-443`.
pub const DEFAULT_TCP_PORT: u16 = 443;
/// Initiation retransmit interval.
pub const RETRANSMIT: Duration = Duration::from_secs(1);
/// Capacity of the link's channels, in frames.
pub const CHANNEL_FRAMES: usize = 512;
/// After a port hop the caller keeps reading its previous socket this long, for the callee's
/// packets still addressed to it (the callee follows on the first authenticated packet from
/// the new port, one round trip later).
pub const HOP_GRACE: Duration = Duration::from_millis(1000);

/// The [`Bypass`] keys each strategy honours (see the crate doc, "Bypasses").
pub const BYPASSES_UDP: &[&str] = &["decoy", "source_port", "port_hop"];
/// `udp-wg` adds AmneziaWG's junk, custom headers and padding.
pub const BYPASSES_UDP_WG: &[&str] =
    &["decoy", "source_port", "port_hop", "junk", "wg_headers", "wg_padding"];
/// `tcp-443`: TCP segmentation of the first flight.
pub const BYPASSES_TCP: &[&str] = &["tcp_segment"];

/// What the callee publishes under `"{call_id}/callee"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalleeInfo {
    /// The callee's static public key, hex.
    pub pubkey: String,
    pub addr: IpAddr,
    pub port: u16,
}

/// The Noise transport. See the crate doc.
#[derive(Debug, Clone, Default)]
pub struct NoiseTransport {
    caller_udp_port_override: Option<u16>,
}

impl NoiseTransport {
    pub fn new() -> Self {
        NoiseTransport::default()
    }

    /// Test hook: the caller sends its UDP strategies to `port` instead of the published one
    /// (a port where nothing listens makes them fail as if UDP were blocked).
    pub fn with_caller_udp_port_override(port: u16) -> Self {
        NoiseTransport { caller_udp_port_override: Some(port) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Udp,
    UdpWg,
    UdpObfs,
    Tcp,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "udp" => Some(Kind::Udp),
            "udp-wg" => Some(Kind::UdpWg),
            "udp-obfs" => Some(Kind::UdpObfs),
            "tcp-443" => Some(Kind::Tcp),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Udp => "udp",
            Kind::UdpWg => "udp-wg",
            Kind::UdpObfs => "udp-obfs",
            Kind::Tcp => "tcp-443",
        }
    }
    fn framing(self, callee_public: &[u8], bypass: &Bypass) -> Framing {
        match self {
            Kind::Udp | Kind::Tcp => Framing::Plain,
            Kind::UdpWg => {
                let mut shape = WgShape::default();
                if let Some(h) = bypass.wg_headers {
                    shape.headers = h;
                }
                if let Some(p) = bypass.wg_padding {
                    shape.padding = p;
                }
                Framing::WireGuard(shape)
            }
            Kind::UdpObfs => Framing::Obfs(ObfsKey::from_public_key(callee_public)),
        }
    }
    fn default_port(self, rng: &mut ChaCha8Rng) -> u16 {
        match self {
            Kind::Udp | Kind::UdpWg => DEFAULT_UDP_PORT,
            Kind::UdpObfs => rng.gen_range(10000..60000),
            Kind::Tcp => DEFAULT_TCP_PORT,
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok().filter(|t| t.len() == 2)?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// A per-call, per-role RNG from the scenario seed (indices, padding, obfuscation prefixes).
fn call_rng(ctx: &CallContext) -> ChaCha8Rng {
    use callwall_units::seed::{derive, name_index, Purpose};
    let role = match ctx.role {
        callwall_transport::Role::Caller => 1,
        callwall_transport::Role::Callee => 2,
    };
    let index = name_index(&ctx.call_id).wrapping_add(role);
    ChaCha8Rng::seed_from_u64(derive(ctx.seed, Purpose::NoiseCall, index))
}

fn callee_key(ctx: &CallContext) -> String {
    format!("{}/callee", ctx.call_id)
}

/// Aborts the link's tasks when the link is dropped.
struct TaskGuard(Vec<JoinHandle<()>>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn log_stats(path: &str, s: &Stats) {
    tracing::debug!(
        path,
        sent = s.sent,
        received = s.received,
        replayed = s.replayed,
        undecryptable = s.undecryptable,
        malformed = s.malformed,
        "noise link closed"
    );
}

#[async_trait::async_trait]
impl VoiceTransport for NoiseTransport {
    fn name(&self) -> &'static str {
        "noise"
    }
    fn strategies(&self) -> &'static [&'static str] {
        STRATEGIES
    }
    fn auto_race(&self) -> Option<&'static [&'static str]> {
        Some(AUTO_RACE)
    }
    fn bypasses(&self, strategy: &str) -> &'static [&'static str] {
        match Kind::parse(strategy) {
            Some(Kind::Udp | Kind::UdpObfs) => BYPASSES_UDP,
            Some(Kind::UdpWg) => BYPASSES_UDP_WG,
            Some(Kind::Tcp) => BYPASSES_TCP,
            None => &[],
        }
    }
    async fn dial(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError> {
        check_strategy(self, strategy)?;
        check_bypass(self, strategy, &ctx.options.bypass)?;
        let kind = Kind::parse(strategy).ok_or_else(|| TransportError::Other(strategy.into()))?;
        let deadline = Instant::now() + ctx.connect_timeout;
        let info = fetch_callee(ctx, deadline).await?;
        let public = unhex(&info.pubkey)
            .filter(|k| k.len() == 32)
            .ok_or_else(|| TransportError::Handshake("callee published a malformed key".into()))?;
        match kind {
            Kind::Tcp => dial_tcp(ctx, &info, &public, deadline).await,
            _ => {
                let port = self.caller_udp_port_override.unwrap_or(info.port);
                let to = SocketAddr::new(info.addr, port);
                dial_udp(ctx, kind, to, &public, deadline).await
            }
        }
    }
    async fn answer(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError> {
        check_strategy(self, strategy)?;
        check_bypass(self, strategy, &ctx.options.bypass)?;
        let kind = Kind::parse(strategy).ok_or_else(|| TransportError::Other(strategy.into()))?;
        // The caller may start its dial a little after us; allow it its full timeout.
        let deadline = Instant::now() + ctx.connect_timeout + Duration::from_secs(1);
        match kind {
            Kind::Tcp => answer_tcp(ctx, deadline).await,
            _ => answer_udp(ctx, kind, deadline).await,
        }
    }
}

async fn fetch_callee(ctx: &CallContext, deadline: Instant) -> Result<CalleeInfo, TransportError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut sig = Client::connect_from(ctx.local_ip, ctx.signal, left).await?;
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        // Never a wait of zero ("no value within 0ns" would blame the callee).
        return Err(TransportError::Timeout(
            ctx.connect_timeout,
            "waiting for the callee's details",
        ));
    }
    let raw = sig.get(&callee_key(ctx), left).await?;
    serde_json::from_str(&raw)
        .map_err(|e| TransportError::Handshake(format!("callee published bad details: {e}")))
}

async fn publish(
    ctx: &CallContext,
    info: &CalleeInfo,
    deadline: Instant,
) -> Result<(), TransportError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut sig = Client::connect_from(ctx.local_ip, ctx.signal, left).await?;
    let v = serde_json::to_string(info).map_err(|e| TransportError::Other(e.to_string()))?;
    sig.put(&callee_key(ctx), &v).await?;
    Ok(())
}

/// Binds `ip:port`, or an ephemeral port if `port` is a default that is busy.
async fn bind_udp(
    ip: IpAddr,
    port: u16,
    explicit: bool,
) -> Result<(UdpSocket, Option<u16>), TransportError> {
    match UdpSocket::bind(SocketAddr::new(ip, port)).await {
        Ok(s) => Ok((s, None)),
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!("udp port {port} on {ip} is busy; using an ephemeral port");
            let s = UdpSocket::bind(SocketAddr::new(ip, 0))
                .await
                .map_err(|e| TransportError::io("binding the callee's udp socket", e))?;
            Ok((s, Some(port)))
        }
        Err(e) => Err(TransportError::io("binding the callee's udp socket", e)),
    }
}

async fn answer_udp(
    ctx: &CallContext,
    kind: Kind,
    deadline: Instant,
) -> Result<MediaLink, TransportError> {
    let mut rng = call_rng(ctx);
    let (private, public) = session::keypair()?;
    let explicit = ctx.options.port.is_some();
    let want = ctx.options.port.unwrap_or_else(|| kind.default_port(&mut rng));
    let (sock, busy) = bind_udp(ctx.local_ip, want, explicit).await?;
    let local = sock.local_addr().map_err(|e| TransportError::io("reading the udp address", e))?;
    let info = CalleeInfo { pubkey: hex(&public), addr: ctx.local_ip, port: local.port() };
    publish(ctx, &info, deadline).await?;
    let framing = kind.framing(&public, &ctx.options.bypass);
    let local_index: u32 = rng.gen();
    let mut buf = vec![0u8; 65536];
    let mut malformed = 0u64;
    loop {
        let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        let (n, from) = match got {
            Err(_) => {
                return Err(TransportError::Timeout(
                    ctx.connect_timeout,
                    "waiting for the caller's handshake",
                ))
            }
            Ok(Err(e)) => return Err(TransportError::io("receiving the handshake", e)),
            Ok(Ok(x)) => x,
        };
        let Some(Packet::Init { sender, msg }) = framing.decode(&buf[..n]) else {
            malformed += 1;
            continue;
        };
        let responded = match session::respond(&private, &msg) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("ignoring a bad initiation from {from}: {e}");
                malformed += 1;
                continue;
            }
        };
        let response =
            Packet::Response { sender: local_index, receiver: sender, msg: responded.msg2 };
        let bytes = framing.encode(&response, &mut rng);
        sock.send_to(&bytes, from)
            .await
            .map_err(|e| TransportError::io("sending the handshake response", e))?;
        let mut session = Session::new(responded.state, local_index, sender);
        session.stats.malformed = malformed;
        let busy_note = busy.map(|p| format!(" (port {p} was busy)")).unwrap_or_default();
        let path = format!("noise {} {local} <- {from}{busy_note}", kind.name());
        let replay = Some(Replay { msg1: msg, response });
        return Ok(spawn_udp(sock, from, framing, session, rng, replay, None, path));
    }
}

async fn dial_udp(
    ctx: &CallContext,
    kind: Kind,
    to: SocketAddr,
    callee_public: &[u8],
    deadline: Instant,
) -> Result<MediaLink, TransportError> {
    let mut rng = call_rng(ctx);
    let bypass = &ctx.options.bypass;
    let sock = udp::bind_source_tokio(ctx.local_ip, to.port(), bypass.source_port, &mut rng)?;
    let local = sock.local_addr().map_err(|e| TransportError::io("reading the udp address", e))?;
    let framing = kind.framing(callee_public, bypass);
    let init = Initiator::start(callee_public)?;
    let local_index: u32 = rng.gen();
    let mut buf = vec![0u8; 65536];
    let mut malformed = 0u64;
    let mut last_error: Option<String> = None;
    // The decoy goes once, before the first handshake message, from this same socket.
    if let Some(d) = bypass.decoy {
        let bytes = udp::decoy_datagram(d, &mut rng);
        if let Err(e) = sock.send_to(&bytes, to).await {
            last_error = Some(format!("send decoy: {e}"));
        }
    }
    loop {
        if Instant::now() >= deadline {
            let why = match last_error {
                Some(e) => {
                    format!("timed out after {:?}; last bad response: {e}", ctx.connect_timeout)
                }
                None => format!("no handshake response within {:?}", ctx.connect_timeout),
            };
            return Err(TransportError::Handshake(why));
        }
        // AmneziaWG: Jc junk datagrams of Jmin-Jmax random bytes before every initiation.
        if let Some(j) = bypass.junk {
            for _ in 0..j.count {
                let mut junk = vec![0u8; usize::from(rng.gen_range(j.min..=j.max))];
                rng.fill(&mut junk[..]);
                let _ = sock.send_to(&junk, to).await;
            }
        }
        // Re-encoded each time: new mac1 (udp-wg), new prefix and padding (udp-obfs).
        let pkt = Packet::Init { sender: local_index, msg: init.msg1.clone() };
        let bytes = framing.encode(&pkt, &mut rng);
        if let Err(e) = sock.send_to(&bytes, to).await {
            // ICMP errors surface here (e.g. connection refused); keep trying until the deadline.
            last_error = Some(format!("send: {e}"));
        }
        let resend_at = (Instant::now() + RETRANSMIT).min(deadline);
        while let Ok(got) = tokio::time::timeout_at(resend_at, sock.recv_from(&mut buf)).await {
            let (n, from) = match got {
                Ok(x) => x,
                Err(e) => {
                    last_error = Some(format!("receive: {e}"));
                    // An ICMP error arrives at once: wait for the retransmit rather than spin.
                    tokio::time::sleep_until(resend_at).await;
                    break;
                }
            };
            match framing.decode(&buf[..n]) {
                Some(Packet::Response { sender, receiver, msg }) if receiver == local_index => {
                    match init.finish(&msg) {
                        Ok(state) => {
                            let mut session = Session::new(state, local_index, sender);
                            session.stats.malformed = malformed;
                            let hop = bypass.port_hop.map(|every| Hop {
                                every: every.as_std(),
                                ip: ctx.local_ip,
                                source_port: bypass.source_port,
                            });
                            let hop_note = match &hop {
                                Some(h) => format!(" (port hop every {:?})", h.every),
                                None => String::new(),
                            };
                            let path = format!("noise {} {local} -> {from}{hop_note}", kind.name());
                            return Ok(spawn_udp(
                                sock, from, framing, session, rng, None, hop, path,
                            ));
                        }
                        Err(e) => last_error = Some(e.to_string()),
                    }
                }
                _ => malformed += 1,
            }
        }
    }
}

/// The caller's port hopping: a fresh socket every `every` (see [`HOP_GRACE`]).
struct Hop {
    every: Duration,
    ip: IpAddr,
    source_port: Option<SourcePort>,
}

/// What the responder re-sends when the initiator retransmits message 1.
struct Replay {
    msg1: Vec<u8>,
    response: Packet,
}

#[allow(clippy::too_many_arguments)]
fn spawn_udp(
    sock: UdpSocket,
    peer: SocketAddr,
    framing: Framing,
    session: Session,
    rng: ChaCha8Rng,
    replay: Option<Replay>,
    hop: Option<Hop>,
    path: String,
) -> MediaLink {
    let (app_tx, from_app) = mpsc::channel::<Vec<u8>>(CHANNEL_FRAMES);
    let (to_app, app_rx) = mpsc::channel::<Vec<u8>>(CHANNEL_FRAMES);
    let p = path.clone();
    let pump = Pump { peer, framing, session, rng, replay, to_app, path: p, newest: None };
    let task = tokio::spawn(pump.run(sock, hop, from_app));
    MediaLink { tx: app_tx, rx: app_rx, path, guard: Box::new(TaskGuard(vec![task])) }
}

/// Waits for a datagram on `sock`, or forever when there is none.
async fn recv_opt(
    sock: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match sock {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// One side's established UDP link.
struct Pump {
    peer: SocketAddr,
    framing: Framing,
    session: Session,
    rng: ChaCha8Rng,
    replay: Option<Replay>,
    to_app: mpsc::Sender<Vec<u8>>,
    path: String,
    /// The highest counter authenticated so far: only a packet newer than every other moves
    /// `peer` (WireGuard's roaming, whitepaper §2.1), so a late packet from an old port does
    /// not pull the link back to it.
    newest: Option<u64>,
}

impl Pump {
    async fn run(
        mut self,
        mut sock: UdpSocket,
        hop: Option<Hop>,
        mut from_app: mpsc::Receiver<Vec<u8>>,
    ) {
        let mut buf = vec![0u8; 65536];
        let mut old_buf = vec![0u8; 65536];
        // The socket before the last hop, read until its grace period ends.
        let mut old: Option<(UdpSocket, Instant)> = None;
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let mut next_hop = hop.as_ref().map_or(far, |h| Instant::now() + h.every);
        loop {
            let old_until = old.as_ref().map_or(far, |(_, t)| *t);
            tokio::select! {
                frame = from_app.recv() => {
                    let Some(frame) = frame else { break };
                    if let Some(pkt) = self.session.seal(&frame) {
                        let bytes = self.framing.encode(&pkt, &mut self.rng);
                        // Send errors (ICMP unreachable, buffer full) lose this frame only.
                        let _ = sock.send_to(&bytes, self.peer).await;
                    }
                }
                got = sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = got else { continue };
                    if !self.handle(&sock, &buf[..n], from).await {
                        break;
                    }
                }
                got = recv_opt(old.as_ref().map(|(s, _)| s), &mut old_buf) => {
                    let Ok((n, from)) = got else { continue };
                    let Some((s, _)) = old.as_ref() else { continue };
                    if !self.handle(s, &old_buf[..n], from).await {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(old_until) => old = None,
                _ = tokio::time::sleep_until(next_hop) => {
                    let Some(h) = hop.as_ref() else { next_hop = far; continue };
                    next_hop = Instant::now() + h.every;
                    match udp::bind_source_tokio(
                        h.ip,
                        self.peer.port(),
                        h.source_port,
                        &mut self.rng,
                    ) {
                        Ok(fresh) => {
                            let prev = std::mem::replace(&mut sock, fresh);
                            tracing::debug!(
                                from = ?prev.local_addr().ok(),
                                to = ?sock.local_addr().ok(),
                                "noise port hop"
                            );
                            old = Some((prev, Instant::now() + HOP_GRACE));
                        }
                        Err(e) => tracing::debug!("port hop skipped: {e}"),
                    }
                }
            }
        }
        log_stats(&self.path, &self.session.stats);
    }

    /// Handles one datagram that arrived on `sock`; false when the app side is gone.
    async fn handle(&mut self, sock: &UdpSocket, b: &[u8], from: SocketAddr) -> bool {
        match self.framing.decode(b) {
            Some(Packet::Data { receiver, counter, ct }) => {
                if let Some(frame) = self.session.open(receiver, counter, &ct) {
                    // Authenticated: follow the peer if its address changed (roaming).
                    if self.newest.is_none_or(|n| counter > n) {
                        self.newest = Some(counter);
                        if self.peer != from {
                            tracing::debug!(old = %self.peer, new = %from, "noise peer roamed");
                            self.peer = from;
                        }
                    }
                    if let Err(mpsc::error::TrySendError::Closed(_)) = self.to_app.try_send(frame) {
                        return false;
                    }
                }
            }
            Some(Packet::Init { msg, .. }) => match &self.replay {
                Some(r) if r.msg1 == msg => {
                    let bytes = self.framing.encode(&r.response, &mut self.rng);
                    let _ = sock.send_to(&bytes, from).await;
                }
                _ => self.session.stats.malformed += 1,
            },
            _ => self.session.stats.malformed += 1,
        }
        true
    }
}

// ---- TCP ----

async fn write_msg(
    w: &mut (impl AsyncWriteExt + Unpin),
    prefix: &[u8],
    body: &[u8],
) -> std::io::Result<()> {
    let len = u16::try_from(body.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "message over 65535 bytes")
    })?;
    let mut out = Vec::with_capacity(prefix.len() + 2 + body.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    w.write_all(&out).await
}

/// The first flight (`prefix`, then message 1 behind its length) in writes of at most `size`
/// bytes each, on a stream with TCP_NODELAY: Linux sends each write as its own segment while
/// the congestion window allows (10 segments at first, RFC 6928), so a censor reading the
/// first data segment sees only its first `size` bytes.
async fn write_segmented(
    w: &mut TcpStream,
    prefix: &[u8],
    body: &[u8],
    size: u16,
) -> std::io::Result<()> {
    let len = u16::try_from(body.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "message over 65535 bytes")
    })?;
    let mut out = Vec::with_capacity(prefix.len() + 2 + body.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    w.set_nodelay(true)?;
    for chunk in out.chunks(usize::from(size.max(1))) {
        w.write_all(chunk).await?;
        // Let the segment leave before the next write is queued behind it.
        tokio::task::yield_now().await;
    }
    Ok(())
}

async fn read_msg(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut body).await?;
    Ok(body)
}

async fn dial_tcp(
    ctx: &CallContext,
    info: &CalleeInfo,
    callee_public: &[u8],
    deadline: Instant,
) -> Result<MediaLink, TransportError> {
    let to = SocketAddr::new(info.addr, info.port);
    let sock = match ctx.local_ip {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| TransportError::io("creating the tcp socket", e))?;
    sock.bind(SocketAddr::new(ctx.local_ip, 0))
        .map_err(|e| TransportError::io("binding the tcp socket", e))?;
    let mut stream = match tokio::time::timeout_at(deadline, sock.connect(to)).await {
        Err(_) => return Err(TransportError::Timeout(ctx.connect_timeout, "connecting over tcp")),
        Ok(Err(e)) => return Err(TransportError::io("connecting over tcp", e)),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let local =
        stream.local_addr().map_err(|e| TransportError::io("reading the tcp address", e))?;
    let mut rng = call_rng(ctx);
    let init = Initiator::start(callee_public)?;
    let local_index: u32 = rng.gen();
    let pkt = wire::Framing::Plain
        .encode(&Packet::Init { sender: local_index, msg: init.msg1.clone() }, &mut rng);
    let prefix = ctx.options.printable_prefix.as_deref().unwrap_or("").as_bytes();
    let segment = ctx.options.bypass.tcp_segment;
    let handshake = async {
        match segment {
            None => write_msg(&mut stream, prefix, &pkt).await,
            Some(n) => write_segmented(&mut stream, prefix, &pkt, n).await,
        }
        .map_err(|e| TransportError::io("sending the handshake", e))?;
        let body = read_msg(&mut stream)
            .await
            .map_err(|e| TransportError::io("reading the handshake response", e))?;
        match Framing::Plain.decode(&body) {
            Some(Packet::Response { sender, receiver, msg }) if receiver == local_index => {
                Ok((sender, init.finish(&msg)?))
            }
            _ => Err(TransportError::Handshake(
                "the callee's first message is not a handshake response".into(),
            )),
        }
    };
    let (remote_index, state) = match tokio::time::timeout_at(deadline, handshake).await {
        Err(_) => {
            return Err(TransportError::Timeout(
                ctx.connect_timeout,
                "waiting for the tcp handshake response",
            ))
        }
        Ok(r) => r?,
    };
    let session = Session::new(state, local_index, remote_index);
    let path = format!("noise tcp-443 {local} -> {to}");
    Ok(spawn_tcp(stream, session, path))
}

async fn answer_tcp(ctx: &CallContext, deadline: Instant) -> Result<MediaLink, TransportError> {
    let mut rng = call_rng(ctx);
    let (private, public) = session::keypair()?;
    let explicit = ctx.options.port.is_some();
    let want = ctx.options.port.unwrap_or(DEFAULT_TCP_PORT);
    let (listener, busy) = match TcpListener::bind(SocketAddr::new(ctx.local_ip, want)).await {
        Ok(l) => (l, None),
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!("tcp port {want} is busy; using an ephemeral port");
            let l = TcpListener::bind(SocketAddr::new(ctx.local_ip, 0))
                .await
                .map_err(|e| TransportError::io("binding the callee's tcp listener", e))?;
            (l, Some(want))
        }
        Err(e) => return Err(TransportError::io("binding the callee's tcp listener", e)),
    };
    let local =
        listener.local_addr().map_err(|e| TransportError::io("reading the tcp address", e))?;
    let info = CalleeInfo { pubkey: hex(&public), addr: ctx.local_ip, port: local.port() };
    publish(ctx, &info, deadline).await?;
    let prefix = ctx.options.printable_prefix.clone().unwrap_or_default().into_bytes();
    let local_index: u32 = rng.gen();
    loop {
        let (mut stream, from) = match tokio::time::timeout_at(deadline, listener.accept()).await {
            Err(_) => {
                return Err(TransportError::Timeout(
                    ctx.connect_timeout,
                    "waiting for the caller's tcp connection",
                ))
            }
            Ok(Err(e)) => return Err(TransportError::io("accepting the caller", e)),
            Ok(Ok(x)) => x,
        };
        let _ = stream.set_nodelay(true);
        // One connection at a time; one that is not our caller (a probe) is dropped.
        let handshake = async {
            let mut got = vec![0u8; prefix.len()];
            stream.read_exact(&mut got).await.map_err(|e| e.to_string())?;
            if got != prefix {
                return Err(
                    "the connection did not start with the configured printable prefix".to_string()
                );
            }
            let body = read_msg(&mut stream).await.map_err(|e| e.to_string())?;
            let Some(Packet::Init { sender, msg }) = Framing::Plain.decode(&body) else {
                return Err("first message is not a handshake initiation".into());
            };
            let r = session::respond(&private, &msg).map_err(|e| e.to_string())?;
            let resp = Packet::Response { sender: local_index, receiver: sender, msg: r.msg2 };
            write_msg(&mut stream, &[], &Framing::Plain.encode(&resp, &mut rng))
                .await
                .map_err(|e| e.to_string())?;
            Ok((sender, r.state))
        };
        match tokio::time::timeout_at(deadline, handshake).await {
            Err(_) => {
                return Err(TransportError::Timeout(
                    ctx.connect_timeout,
                    "waiting for the tcp handshake",
                ))
            }
            Ok(Err(e)) => {
                tracing::debug!("dropping tcp connection from {from}: {e}");
                continue;
            }
            Ok(Ok((remote_index, state))) => {
                let session = Session::new(state, local_index, remote_index);
                let busy_note = busy.map(|p| format!(" (port {p} was busy)")).unwrap_or_default();
                let path = format!("noise tcp-443 {local} <- {from}{busy_note}");
                return Ok(spawn_tcp(stream, session, path));
            }
        }
    }
}

fn spawn_tcp(stream: TcpStream, session: Session, path: String) -> MediaLink {
    let (app_tx, mut from_app) = mpsc::channel::<Vec<u8>>(CHANNEL_FRAMES);
    let (to_app, app_rx) = mpsc::channel::<Vec<u8>>(CHANNEL_FRAMES);
    let (mut r, mut w) = stream.into_split();
    let session = Arc::new(std::sync::Mutex::new(session));
    let s_w = session.clone();
    let writer = tokio::spawn(async move {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        while let Some(frame) = from_app.recv().await {
            let pkt = s_w.lock().unwrap_or_else(|p| p.into_inner()).seal(&frame);
            let Some(pkt) = pkt else { continue };
            if write_msg(&mut w, &[], &Framing::Plain.encode(&pkt, &mut rng)).await.is_err() {
                break;
            }
        }
    });
    let p = path.clone();
    let reader = tokio::spawn(async move {
        while let Ok(body) = read_msg(&mut r).await {
            let mut s = session.lock().unwrap_or_else(|p| p.into_inner());
            let frame = match Framing::Plain.decode(&body) {
                Some(Packet::Data { receiver, counter, ct }) => s.open(receiver, counter, &ct),
                _ => {
                    s.stats.malformed += 1;
                    None
                }
            };
            drop(s);
            if let Some(frame) = frame {
                if let Err(mpsc::error::TrySendError::Closed(_)) = to_app.try_send(frame) {
                    break;
                }
            }
        }
        log_stats(&p, &session.lock().unwrap_or_else(|p| p.into_inner()).stats);
    });
    MediaLink { tx: app_tx, rx: app_rx, path, guard: Box::new(TaskGuard(vec![writer, reader])) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_rejects() {
        let k: Vec<u8> = (0..32).collect();
        assert_eq!(unhex(&hex(&k)), Some(k));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("é0"), None);
        assert_eq!(unhex(""), Some(vec![]));
    }

    #[test]
    fn strategies_parse() {
        for s in STRATEGIES {
            assert_eq!(Kind::parse(s).map(Kind::name), Some(*s));
        }
        assert_eq!(Kind::parse("udp-nope"), None);
        assert_eq!(NoiseTransport::new().auto_order(), STRATEGIES);
    }
}
