//! WebRTC voice transport for callwall, on webrtc-rs 0.21 (tokio).
//!
//! A call is what a WebRTC app places: an SDP offer and answer exchanged through signalling
//! (the caller puts `{call_id}/offer`, the callee puts `{call_id}/answer`; candidates are
//! gathered completely before a description is sent, no trickle), ICE, DTLS-SRTP, and one
//! Opus audio track. Each voice frame from the [`MediaLink`] is the payload of one RTP packet
//! (payload type 111, `audio/opus` 48 kHz, timestamp from the send time), and each received RTP
//! payload is handed to the link unchanged: frames arrive byte-exact or not at all.
//!
//! # Strategies
//! | strategy | caller | callee |
//! | --- | --- | --- |
//! | `direct` | host candidates, UDP | host candidates, UDP |
//! | `turn-udp` | ICE policy `relay`, TURN over UDP to the relay's 3478 | host candidates |
//! | `turn-tcp` | ICE policy `relay`, TURN over one TCP stream to the relay's 3478 | host candidates |
//! | `turn-tls` | ICE policy `relay`, TURN over one TLS stream to the relay's 443 | host candidates |
//! | `ice-tcp` | ICE-TCP active host candidates (RFC 6544) | ICE-TCP passive host candidate on TCP 443 |
//! | `ice` | every candidate at once: host UDP, ICE-TCP active, srflx (STUN), relay over UDP, TCP and TLS | host UDP and ICE-TCP passive on TCP 443 |
//!
//! `auto` is `ice` ([`AUTO_ORDER`]): one ICE agent with every candidate, as a browser does,
//! instead of one strategy after another each with its own connect timeout. The callee needs
//! no relay: the relay reaches it beyond the censor.
//!
//! # `ice`: one agent, every candidate (RFC 8445)
//! The caller starts its two TURN-over-stream adapters (TCP to the relay's 3478, TLS to its
//! 443) at once, then builds one peer connection with host UDP and active ICE-TCP sockets on
//! `ctx.local_ip` and four servers: `stun:` the relay's UDP port (coturn answers STUN Binding
//! there; this is the sandbox's STUN server), `turn:` the relay over UDP, and `turn:` each
//! adapter. The agent gathers from all of them in parallel, pairs every local candidate with
//! the callee's (host UDP, passive ICE-TCP), checks the pairs in parallel in priority order,
//! and the caller (controlling) nominates the first pair that succeeds. A source the censor
//! blocks costs no timeout of its own: gathering ends at completion, at [`GATHER_CAP`], or once
//! the relays over TCP and TLS are in and a quiet period (twice their gathering time, at least
//! [`GATHER_QUIET`]) has passed (a blocked STUN or TURN server never answers; webrtc-rs 0.21
//! sends complete descriptions, so the offer goes out with what was gathered by then, where a
//! browser would trickle), and a stream adapter that cannot connect within 1.5 s is left out. What happened is in an
//! [`IceReport`](callwall_transport::ice::IceReport) (candidates with their source and
//! gathering time, every checked pair with its state and checks sent/answered, the nominated
//! pair), reached through [`VoiceTransport::ice_report`] and put in the peer report.
//! Not modelled: candidates gathered after the cap (no trickle), relay candidates for the
//! callee, the browser's per-transport relay preference (webrtc-rs sees every relay as UDP
//! TURN, so relays over UDP, TCP and TLS have equal priority), aggressive nomination.
//!
//! # TURN over TCP and TLS
//! webrtc-rs 0.21 gathers TURN relays over UDP only (it skips `turn:…?transport=tcp` and
//! `turns:` URLs). For `turn-tcp` and `turn-tls` the caller runs an adapter ([`adapter`]): a
//! UDP socket on the caller's own address (`ctx.local_ip`, ephemeral port; not 127.0.0.1, so
//! the caller's namespace needs no loopback interface) that webrtc-rs uses as its TURN server
//! (`turn:<local_ip>:<port>?transport=udp` with the run's credentials). The adapter carries
//! every datagram over one TCP stream (to relay:3478) or one TLS stream (to relay:443, SNI
//! [`RelayInfo::tls_server_name`] unless `options.sni` says otherwise, trusting exactly
//! [`RelayInfo::tls_cert_pem`]) with RFC 8656 §12.5 stream framing ([`framing`]), and splits
//! the stream back into datagrams. Messages are not rewritten, so the TURN exchange is exactly
//! webrtc-rs's; coturn sees the caller's real TCP source address, and the relayed address is
//! the same UDP relay as with TURN over UDP. The censor sees real TURN-over-TCP/TLS.
//!
//! # Work-arounds for webrtc-rs 0.21
//! - Priming: after the connection is up, each side sends RTP packets with an empty payload
//!   every 20 ms (at most 500 ms) until the peer's arrive; receivers discard them. webrtc-rs
//!   opens a remote track on its first RTP packet and drops the packets that arrive in the
//!   same read pass, so without priming the first voice frame of a relayed call was lost.
//! - ICE-TCP: webrtc-rs connects to a passive TCP candidate only when it is given through
//!   `add_ice_candidate`, not when it is in the remote description, so the caller adds the
//!   callee's passive candidates again after applying the answer.
//! - ICE-TCP from the call's address: webrtc-rs 0.21 dials active ICE-TCP connections unbound
//!   (`Runtime::connect_tcp`), so on a secondary address (the per-call `ctx.local_ip`) the
//!   stream left from the interface's primary address, matched no local candidate and ICE
//!   discarded it. Each peer connection gets a runtime (`bind::BoundRuntime`, tokio otherwise)
//!   whose `connect_tcp` binds `ctx.local_ip`; the TURN adapter's stream is bound the same way.
//! - DTLS retransmission: webrtc-rs's `rtc-dtls` 0.21.1 stopped re-sending a lost handshake
//!   flight once the peer repeated its own, so a call under loss could stay without DTLS
//!   (and `blocked`) with ICE connected. The workspace patches it (`vendor/README.md`; tested
//!   in `tests/dtls_retransmit.rs`).
//! - Relayed packets: webrtc-rs's `webrtc` 0.21.1 driver sent a packet through a TURN
//!   relay, and handed relayed data's answer on, only at its loop's next pass (the next
//!   ~200 ms ICE tick), so every relayed handshake round trip paid up to 200 ms (turn-udp,
//!   turn-tcp and turn-tls setup about 1.2-1.5 s on a clean network, 0.55 s after). The
//!   workspace patches it (`vendor/README.md`).
//! - Consent: webrtc-rs counts only STUN as a sign of life on a connected pair; consent
//!   expires after 30 s without an answer, as in browsers ([`consent`]).
//!
//! # Bypasses (issue 15)
//! Keys of `options.bypass` ([`callwall_transport::Bypass`]) this transport honours, per
//! strategy ([`bypass::honoured`]); a key a strategy does not list is refused before the call
//! starts. Sources are in `/work/shared/censorship-catalog.md` (quoted by section); the
//! per-key costs below were measured on loopback (`cargo nextest run --release -p
//! callwall-transport-webrtc --test bypass --no-capture`) and through the censor
//! (`tests/e2e/bypass_tls.rs`).
//!
//! | key | strategies | on the wire |
//! | --- | --- | --- |
//! | `decoy` | `direct`, `turn-udp`, `ice` | one datagram (`random`: 64 seeded bytes; `dns`: a DNS A query for `yandex.ru`, 27 bytes; `stun`: a Binding request with FINGERPRINT, 28 bytes) from the call's own UDP socket to each remote address, before the first packet to it |
//! | `tls_record` | `turn-tls` | the ClientHello re-cut into TLS handshake records of at most N bytes |
//! | `tcp_segment` | `turn-tls` | the client's writes (hence TCP segments, `TCP_NODELAY`) at most N bytes until the TLS handshake is done |
//! | `dtls_mimic` | every strategy | DTLS cipher suites and SRTP profiles in a browser's order (see below) |
//!
//! And `options.sni` for `turn-tls`: a name to present, or `""` for no server_name extension
//! at all (rustls `enable_sni = false`; before, `""` failed the call as an invalid name).
//!
//! - **`decoy`** (catalog: "Call restriction, from August 2025" — "a fake first datagram
//!   defeated it"; "Russia after August 2025": worked mid-August, no longer by 28 September;
//!   "Known circumvention"). webrtc-rs 0.21 binds its UDP sockets itself and wraps each with
//!   [`Runtime::wrap_udp_socket`](webrtc::runtime::Runtime::wrap_udp_socket); every datagram
//!   (host ICE checks, STUN to the STUN server, and the TURN client's traffic to the relay,
//!   which goes out through the same socket) passes [`bypass::DecoyRuntime`]'s socket, which
//!   sends the decoy to a destination the first time it sees it, then the datagram. So the
//!   decoy leaves from the call's own 5-tuple before the first STUN packet: for `turn-udp` to
//!   the relay before the Allocate request, for `direct` to each remote host candidate
//!   before its first connectivity check (both sides send one, so the flow's first packet is a
//!   decoy whichever side speaks first). The local TURN-over-TCP/TLS adapters get none (they
//!   are not the network), so `turn-tcp`/`turn-tls` do not list it. Cost: one datagram per
//!   remote address per side (27-64 bytes), no added wait.
//! - **`tls_record`** (catalog: "TSPU throttling of Twitter, 2021" — "defeated by … TLS record
//!   splitting"; "Circumvention for calls": against first-packet SNI reading). Done by
//!   [`bypass::FirstFlight`] between rustls and the socket, not by rustls's
//!   `ClientConfig::max_fragment_size`: that splits the ClientHello too, but it has a floor of
//!   32 bytes (27 of plaintext) and splits every record for the whole connection, where the
//!   bypass is about the first flight. A censor that reads only the first record
//!   (`sni_first_packet = true`) finds no whole hello and no SNI; callwall's reassembling
//!   classifier (`crates/wire`, no `sni_first_packet`) still reads it. Cost: 5 bytes per
//!   extra record (a 240-byte hello at N = 40: 6 records, +25 bytes), no extra packet.
//! - **`tcp_segment`** (catalog: same sources, "fragmentation" / "TCP segmentation"): the
//!   first flight in writes of at most N bytes with `TCP_NODELAY`, so each is its own segment;
//!   the first packet holds no whole record. Segments beyond the initial congestion window
//!   (10) may be coalesced by the kernel while unacknowledged, so N below about a tenth of
//!   the hello (≈25 bytes) is not guaranteed on the wire. Cost: ⌈hello/N⌉ − 1 extra packets
//!   (a 245-byte hello at N = 60: 5 segments, +4 packets and their 40-60 header bytes).
//! - **`dtls_mimic`** (catalog: "Snowflake / DTLS, from December 2021", "DTLS fingerprints,
//!   from 30 March 2026", "Circumvention for calls": hellos that mimic browsers). webrtc-rs
//!   0.21's peer connection exposes only the cipher suites
//!   (`SettingEngineBuilder::with_dtls_cipher_suites`) and SRTP profiles
//!   (`with_srtp_protection_profiles`) of its DTLS ([`bypass::dtls_profile`]). Measured with
//!   `crates/wire`'s fingerprint (the censor's), on loopback calls:
//!   - webrtc-rs: `dfefd|c02b,c00a,c02f,c014,cca9|0000,000a,000b,000d,000e,0017,ff01|0017,001d,0018|0403,0503,0401,0501,0601,0807|0000|0007,0008,0001,0002|-`
//!     (hash `bb2624a1bceebe32`, the one `scenarios/ru-dtls-fingerprint.toml` blocks);
//!   - `chrome`: `dfefd|c02b,c02f,cca9,cca8,c00a,c014|…same…|0001,0008,0007|-` (`1e88cc0ff171264b`);
//!   - `firefox`: suites as `chrome`, SRTP `0007,0008,0001,0002` (`c4331ac4c30f420d`);
//!   - Chromium (`crates/wire/testdata/chromium-webrtc.pcap`): `dfefd|1301,1302,1303,c02b,c02f,cca9,cca8,c009,c013,c00a,c014,009c,002f,0035|000a,000b,000d,000e,0017,002b,002d,0033,ff01|11ec,001d,0017,0018|0403,0804,0401,0503,0805,0501,0806,0601,0201|0000|0001,0008,0007|fefc,fefd`
//!     (`8d3a4843ab4b8d8f`).
//!
//!   So the mimic changes the hash (an exact-hash rule like the censor's no longer matches:
//!   the e2e pair shows the call then connects) but is not Chrome's: still different are the
//!   TLS 1.3 suites and `supported_versions` (webrtc-rs has no DTLS 1.3), `key_share` and
//!   `psk_key_exchange_modes`, the groups (no X25519MLKEM768 `11ec`; P-256 first where Chrome
//!   puts X25519 first), the signature algorithms (no RSA-PSS), c009/c013/009c/002f/0035, the
//!   `server_name` extension webrtc-rs sends (the remote address, or `localhost`; Chrome sends
//!   none) and GREASE. A censor that scores "not a browser" (catalog: "TLS fingerprints,
//!   2026") or lists features rather than one hash still tells it apart. Firefox's order is
//!   taken from NSS's published suite order, not from a capture. What a fork would need:
//!   `rtc-dtls`'s flight-1 extension list and `Config` fields (`local_named_curves`,
//!   `local_signature_schemes`, `server_name`, extension order) made configurable through the
//!   peer connection's setting engine, GREASE values, and DTLS 1.3 (with key_share) for the
//!   hello Chrome sends now.
//!
//! Measured cost through the censor (`callwall run … --repeat 3 --pcap` on a pass-all
//! `censored-call` scenario with each pair, 3 s calls; packets read from `censor.pcap`): no
//! added setup time is measurable for any key (relayed setups come in ~200 ms steps: turn-tls
//! 1121-1529 ms plain vs 1328-1530 ms with `tls_record`/`tcp_segment`; direct 283-291 ms vs
//! 281-289 ms with `decoy`/`dtls_mimic`) and MOS is unchanged (4.37-4.38 relayed, 4.38
//! direct). Wire: `tls_record = 40` +25 bytes, same packet count (190 client packets);
//! `tcp_segment = 60` a first flight of 60, 60, 60, 60, 5 bytes, +4 client packets; `decoy`
//! +1 datagram per side per remote (random 64 bytes, dns 27); `dtls_mimic` ±0 bytes (one
//! suite more, one SRTP profile fewer for `chrome`).
//!
//! Every call also keeps its UDP sockets' first datagrams ([`WebrtcCall::wire_tap`]: the
//! first [`bypass::TAP_DATAGRAMS`] datagrams, decoys included), which is how the tests read
//! the DTLS hello and the decoy from the real call.
//!
//! # Options
//! - `sni`: the SNI for `turn-tls` (default: the relay's certificate name; `""` sends none).
//! - `alpn`: an ALPN protocol for `turn-tls` (default: none; coturn knows `stun.turn`).
//! - `port`: the relay port for the `turn-*` strategies; the callee's listening port for
//!   `direct` (UDP) and `ice-tcp` (TCP, default 443).
//!
//! # Guarantees and limits
//! Every wait is bounded by `connect_timeout` from the start of `dial`/`answer`. The caller
//! and callee bind only `ctx.local_ip` for media, ICE-TCP and TURN (UDP sockets, the ICE-TCP
//! listener and active connections, the adapter's stream, and the signalling connection via
//! [`Client::connect_from`]); mDNS is off. A [`WebrtcCall`] guard (the link's
//! `guard`) closes the peer connection and the adapter when dropped, and reports the selected
//! candidate pair. Not done: trickle ICE, ICE restarts, renegotiation, RTCP-based feedback,
//! a DTLS hello equal to a browser's (see Bypasses), IPv6 TURN-over-stream tests.
//!
//! [`RelayInfo::tls_server_name`]: callwall_transport::RelayInfo::tls_server_name
//! [`RelayInfo::tls_cert_pem`]: callwall_transport::RelayInfo::tls_cert_pem

#![forbid(unsafe_code)]

/// The `Runtime` methods a wrapping runtime hands to its `inner` runtime unchanged (host
/// resolution, clocks, timers, executor); the wrappers in `bind` and `bypass` differ only in
/// how they open sockets.
macro_rules! delegate_runtime_basics {
    () => {
        fn resolve_host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
            self.inner.resolve_host(host)
        }

        fn now(&self) -> Instant {
            self.inner.now()
        }

        fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
            self.inner.sleep(duration)
        }

        fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
            self.inner.interval(period)
        }

        fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
            self.inner.block_on(future)
        }

        fn yield_now(&self) -> BoxFuture<'static, ()> {
            self.inner.yield_now()
        }
    };
}

pub mod adapter;
mod bind;
pub mod bypass;
pub mod consent;
pub mod framing;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use callwall_transport::ice::{IceCandidate, IcePair, IceReport, IceSelected};
use callwall_transport::signal::Client;
use callwall_transport::{
    check_strategy, CallContext, MediaLink, RelayInfo, Role, TransportError, VoiceTransport,
};
use callwall_units::seed::Purpose;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry, SettingEngineBuilder,
    StatsSelector,
};

use adapter::{AdapterCounters, StreamAdapter, Upstream};

/// Every strategy this transport offers.
pub const STRATEGIES: &[&str] = &["direct", "turn-udp", "turn-tcp", "turn-tls", "ice-tcp", "ice"];
/// What `auto` does: one ICE agent with every candidate, as a browser does (see `ice` above).
pub const AUTO_ORDER: &[&str] = &["ice"];
/// How long the `ice` caller waits for gathering to complete before it sends its offer with
/// the candidates it has (a STUN or TURN server the censor blocks never answers; a browser
/// trickles instead, webrtc-rs 0.21 with a complete description cannot).
pub const GATHER_CAP: Duration = Duration::from_millis(800);
/// The shortest wait for UDP sources once the stream relays are gathered (see `ice`).
pub const GATHER_QUIET: Duration = Duration::from_millis(200);
/// How long the `ice` caller waits for its TURN-over-TCP/TLS adapters' streams.
const ADAPTER_WAIT: Duration = Duration::from_millis(1500);

/// The RTP payload type and codec of the audio track (RFC 7587: Opus, 48 kHz, 2 channels).
const OPUS_PT: u8 = 111;
const OPUS_CLOCK: u64 = 48_000;
/// Frames waiting in either direction before the newest is dropped.
const QUEUE: usize = 1024;
/// The ICE-TCP callee's default listening port.
const ICE_TCP_PORT: u16 = 443;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Direct,
    TurnUdp,
    TurnTcp,
    TurnTls,
    IceTcp,
    Ice,
}

impl Strategy {
    fn parse(s: &str) -> Option<Strategy> {
        Some(match s {
            "direct" => Strategy::Direct,
            "turn-udp" => Strategy::TurnUdp,
            "turn-tcp" => Strategy::TurnTcp,
            "turn-tls" => Strategy::TurnTls,
            "ice-tcp" => Strategy::IceTcp,
            "ice" => Strategy::Ice,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Strategy::Direct => "direct",
            Strategy::TurnUdp => "turn-udp",
            Strategy::TurnTcp => "turn-tcp",
            Strategy::TurnTls => "turn-tls",
            Strategy::IceTcp => "ice-tcp",
            Strategy::Ice => "ice",
        }
    }
}

/// The WebRTC transport. Stateless: each call builds its own peer connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebrtcTransport;

impl WebrtcTransport {
    pub fn new() -> Self {
        WebrtcTransport
    }
}

#[async_trait::async_trait]
impl VoiceTransport for WebrtcTransport {
    fn name(&self) -> &'static str {
        "webrtc"
    }

    fn strategies(&self) -> &'static [&'static str] {
        STRATEGIES
    }

    fn auto_order(&self) -> &'static [&'static str] {
        AUTO_ORDER
    }

    fn bypasses(&self, strategy: &str) -> &'static [&'static str] {
        bypass::honoured(strategy)
    }

    async fn dial(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError> {
        check_strategy(self, strategy)?;
        callwall_transport::check_bypass(self, strategy, &ctx.options.bypass)?;
        let s = Strategy::parse(strategy).ok_or_else(|| unknown(strategy))?;
        call(ctx, s, Role::Caller).await
    }

    async fn answer(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError> {
        check_strategy(self, strategy)?;
        callwall_transport::check_bypass(self, strategy, &ctx.options.bypass)?;
        let s = Strategy::parse(strategy).ok_or_else(|| unknown(strategy))?;
        call(ctx, s, Role::Callee).await
    }

    fn ice_summary(&self) -> Option<&'static str> {
        Some(
            "one agent gathers host UDP, ICE-TCP, srflx (STUN on relay:3478) and relays over \
             UDP/TCP/TLS, checks every pair at once; reports show the chosen pair and each \
             candidate source's outcome",
        )
    }

    fn ice_report(&self, link: &MediaLink) -> Option<IceReport> {
        link.guard.downcast_ref::<WebrtcCall>().and_then(|c| c.ice.clone())
    }

    /// `turn-*`: that one TURN port of the relay; `ice`: all three (it gathers a relay
    /// candidate over each, and STUN on the UDP port); `direct` and `ice-tcp`: none.
    fn relay_needs(&self, strategy: &str) -> callwall_transport::RelayNeeds {
        use callwall_transport::RelayNeeds as R;
        match Strategy::parse(strategy) {
            Some(Strategy::TurnUdp) => R { turn_udp: true, ..R::NONE },
            Some(Strategy::TurnTcp) => R { turn_tcp: true, ..R::NONE },
            Some(Strategy::TurnTls) => R { turn_tls: true, ..R::NONE },
            Some(Strategy::Ice) => R::TURN_ALL,
            Some(Strategy::Direct | Strategy::IceTcp) | None => R::NONE,
        }
    }
}

fn unknown(strategy: &str) -> TransportError {
    TransportError::UnknownStrategy {
        transport: "webrtc",
        strategy: strategy.to_string(),
        offered: STRATEGIES.join(", "),
    }
}

/// The candidate pair ICE selected, as the local peer connection reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedPair {
    /// `host`, `srflx`, `prflx` or `relay`.
    pub local_type: String,
    pub local: String,
    /// The remote candidate, when the stats name it (webrtc-rs 0.21 often does not).
    pub remote_type: Option<String>,
    pub remote: Option<String>,
    /// `udp` or `tcp`.
    pub protocol: String,
}

impl std::fmt::Display for SelectedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "local {} {}", self.local_type, self.local)?;
        if let (Some(t), Some(a)) = (&self.remote_type, &self.remote) {
            write!(f, " -> remote {t} {a}")?;
        }
        write!(f, " over {}", self.protocol)
    }
}

/// The guard of a WebRTC [`MediaLink`]: owns the peer connection, the media tasks and the
/// TURN adapter. Dropping it stops them and closes the connection.
///
/// Reach it with `link.guard.downcast_ref::<WebrtcCall>()`.
pub struct WebrtcCall {
    pc: Arc<dyn PeerConnection>,
    events: Arc<Events>,
    tasks: Vec<JoinHandle<()>>,
    /// TURN-over-TCP/TLS adapters (one for `turn-tcp`/`turn-tls`, up to two for `ice`).
    adapters: Vec<StreamAdapter>,
    selected: Option<SelectedPair>,
    ice: Option<IceReport>,
    /// The first datagrams the call's UDP sockets sent, and its decoys (see [`bypass`]).
    tap: Arc<bypass::WireTap>,
}

impl WebrtcCall {
    /// The candidate pair ICE selected when the call connected (None if stats had none).
    pub fn selected(&self) -> Option<&SelectedPair> {
        self.selected.as_ref()
    }

    /// Traffic through the TURN-over-TCP/TLS adapter, for `turn-tcp` and `turn-tls` callers
    /// (for `ice`, the first adapter: TCP).
    pub fn adapter_counters(&self) -> Option<&AdapterCounters> {
        self.adapters.first().map(|a| &*a.counters)
    }

    /// What the ICE agent did, for the `ice` strategy.
    pub fn ice(&self) -> Option<&IceReport> {
        self.ice.as_ref()
    }

    /// The first datagrams the call's UDP sockets sent (decoys included) and the decoy count.
    pub fn wire_tap(&self) -> &bypass::WireTap {
        &self.tap
    }

    /// What the TURN-over-TLS adapter's first-flight shaping did (`tls_record`, `tcp_segment`).
    pub fn shaped(&self) -> Option<&bypass::ShapeCounters> {
        self.adapters.iter().find_map(|a| a.shaped.as_deref())
    }
}

impl Drop for WebrtcCall {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.events.abort_tracks();
        let pc = self.pc.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = pc.close().await {
                    tracing::debug!("closing the peer connection: {e}");
                }
            });
        }
    }
}

/// What goes through signalling: the strategy (so a stale offer from another attempt is
/// refused) and the complete session description.
#[derive(Debug, Serialize, Deserialize)]
struct Description {
    strategy: String,
    sdp: RTCSessionDescription,
}

/// Events from the peer connection's driver, turned into watch channels.
struct Events {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    media_in: mpsc::Sender<Vec<u8>>,
    /// Primers received from the peer.
    primers: Arc<watch::Sender<u64>>,
    track_tasks: Mutex<Vec<JoinHandle<()>>>,
    /// When `call` started, for the ICE report's times.
    started: Instant,
    /// `(scheme, addr, via)` of each configured server (see [`Setup::sources`]).
    sources: Vec<(&'static str, String, &'static str)>,
    /// Local candidates gathered (and sources that failed), in order.
    candidates: Mutex<Vec<IceCandidate>>,
}

impl Events {
    /// The candidate source a gathering event's server URL stands for.
    fn via(&self, url: &str, protocol: &str) -> String {
        if url.is_empty() {
            return if protocol == "tcp" { "host-tcp" } else { "host-udp" }.to_string();
        }
        self.sources
            .iter()
            .find(|(scheme, addr, _)| url.starts_with(scheme) && url.contains(addr.as_str()))
            .map(|(_, _, via)| via.to_string())
            .unwrap_or_else(|| url.to_string())
    }

    fn record(&self, c: IceCandidate) {
        self.candidates.lock().unwrap_or_else(|p| p.into_inner()).push(c);
    }

    fn abort_tracks(&self) {
        let tasks =
            std::mem::take(&mut *self.track_tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.abort();
        }
    }
}

struct Handler(Arc<Events>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let c = &event.candidate;
        let protocol = c.protocol.to_string();
        let kind = c.typ.to_string();
        // webrtc-rs 0.21 gives srflx candidates no server URL; the only STUN server is ours.
        let via = match (kind.as_str(), event.url.is_empty()) {
            ("srflx", true) => "stun".to_string(),
            _ => self.0.via(&event.url, &protocol),
        };
        tracing::debug!("gathered {} candidate {}:{} via {via}", c.typ, c.address, c.port);
        self.0.record(IceCandidate {
            kind,
            via,
            protocol,
            address: format!("{}:{}", c.address, c.port),
            priority: c.priority,
            gathered_ms: Some(ms(self.0.started)),
            error: None,
        });
    }

    async fn on_ice_candidate_error(&self, event: RTCPeerConnectionIceErrorEvent) {
        let via = self.0.via(&event.url, "udp");
        self.0.record(IceCandidate {
            kind: if via == "stun" { "srflx" } else { "relay" }.into(),
            via,
            protocol: "udp".into(),
            address: String::new(),
            priority: 0,
            gathered_ms: Some(ms(self.0.started)),
            error: Some(format!("{} {}", event.error_code, event.error_text)),
        });
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.0.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!("webrtc connection state: {state}");
        let _ = self.0.state.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let media_in = self.0.media_in.clone();
        let primers = self.0.primers.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    // A primer (see `prime`) has no payload and is not a frame.
                    TrackRemoteEvent::OnRtpPacket(pkt) if pkt.payload.is_empty() => {
                        primers.send_modify(|n| *n += 1);
                    }
                    TrackRemoteEvent::OnRtpPacket(pkt) => {
                        // The payload is the voice frame, byte for byte.
                        match media_in.try_send(pkt.payload.to_vec()) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                tracing::debug!("receiver is behind; dropping a frame")
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => return,
                        }
                    }
                    TrackRemoteEvent::OnEnded => return,
                    _ => {}
                }
            }
        });
        self.0.track_tasks.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }
}

fn rtc_error(context: &'static str) -> impl Fn(webrtc::error::Error) -> TransportError {
    move |e| TransportError::Other(format!("webrtc failed while {context}: {e}"))
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The time left for a signalling wait, or the attempt's timeout when none is left: a wait is
/// never given a budget of zero (which reads as "no value within 0ns", blaming the peer).
fn left_for(
    deadline: Instant,
    budget: Duration,
    what: &'static str,
) -> Result<Duration, TransportError> {
    let left = remaining(deadline);
    if left.is_zero() {
        return Err(TransportError::Timeout(budget, what));
    }
    Ok(left)
}

/// How one side of one strategy is configured.
struct Setup {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    network_types: Vec<NetworkType>,
    ice_servers: Vec<RTCIceServer>,
    policy: RTCIceTransportPolicy,
    adapters: Vec<StreamAdapter>,
    /// For `ice`: which server stands for which candidate source (`(scheme, addr, via)`), and
    /// the sources that failed before gathering (`(via, error)`).
    sources: Vec<(&'static str, String, &'static str)>,
    failed_sources: Vec<(&'static str, String)>,
}

fn relay_of(ctx: &CallContext) -> Result<&RelayInfo, TransportError> {
    ctx.relay.as_ref().ok_or(TransportError::NoRelay)
}

fn turn_server(addr: SocketAddr, relay: &RelayInfo) -> RTCIceServer {
    RTCIceServer {
        urls: vec![format!("turn:{addr}?transport=udp")],
        username: relay.username.clone(),
        credential: relay.password.clone(),
    }
}

async fn setup(
    ctx: &CallContext,
    s: Strategy,
    role: Role,
    deadline: Instant,
) -> Result<Setup, TransportError> {
    let ip = ctx.local_ip;
    let (udp_types, tcp_types) = if ip.is_ipv4() {
        (vec![NetworkType::Udp4], vec![NetworkType::Tcp4])
    } else {
        (vec![NetworkType::Udp6], vec![NetworkType::Tcp6])
    };
    let host_udp = |port: u16| Setup {
        udp: vec![SocketAddr::new(ip, port)],
        tcp: vec![],
        network_types: udp_types.clone(),
        ice_servers: vec![],
        policy: RTCIceTransportPolicy::All,
        adapters: vec![],
        sources: vec![],
        failed_sources: vec![],
    };
    let relayed = |servers: Vec<RTCIceServer>, adapter: Option<StreamAdapter>| Setup {
        udp: vec![SocketAddr::new(ip, 0)],
        tcp: vec![],
        network_types: udp_types.clone(),
        ice_servers: servers,
        policy: RTCIceTransportPolicy::Relay,
        adapters: adapter.into_iter().collect(),
        sources: vec![],
        failed_sources: vec![],
    };
    Ok(match (s, role) {
        (Strategy::Direct, Role::Callee) => host_udp(ctx.options.port.unwrap_or(0)),
        (Strategy::Direct, Role::Caller) => host_udp(0),
        (Strategy::TurnUdp | Strategy::TurnTcp | Strategy::TurnTls, Role::Callee) => host_udp(0),
        (Strategy::TurnUdp, Role::Caller) => {
            let relay = relay_of(ctx)?;
            let addr = SocketAddr::new(relay.addr, ctx.options.port.unwrap_or(relay.udp_port));
            relayed(vec![turn_server(addr, relay)], None)
        }
        (Strategy::TurnTcp, Role::Caller) => {
            let relay = relay_of(ctx)?;
            let addr = SocketAddr::new(relay.addr, ctx.options.port.unwrap_or(relay.tcp_port));
            let a = StreamAdapter::start(Upstream::Tcp, ip, addr, remaining(deadline)).await?;
            relayed(vec![turn_server(a.local, relay)], Some(a))
        }
        (Strategy::TurnTls, Role::Caller) => {
            let relay = relay_of(ctx)?;
            let addr = SocketAddr::new(relay.addr, ctx.options.port.unwrap_or(relay.tls_port));
            let upstream = Upstream::Tls {
                sni: ctx.options.sni.clone().unwrap_or_else(|| relay.tls_server_name.clone()),
                cert_pem: relay.tls_cert_pem.clone(),
                alpn: ctx.options.alpn.clone(),
                shape: bypass::FirstFlightShape {
                    record: ctx.options.bypass.tls_record,
                    segment: ctx.options.bypass.tcp_segment,
                },
            };
            let a = StreamAdapter::start(upstream, ip, addr, remaining(deadline)).await?;
            relayed(vec![turn_server(a.local, relay)], Some(a))
        }
        (Strategy::IceTcp, role) => {
            let port = match role {
                Role::Callee => ctx.options.port.unwrap_or(ICE_TCP_PORT),
                Role::Caller => 0,
            };
            Setup {
                udp: vec![],
                tcp: vec![SocketAddr::new(ip, port)],
                network_types: tcp_types,
                ice_servers: vec![],
                policy: RTCIceTransportPolicy::All,
                adapters: vec![],
                sources: vec![],
                failed_sources: vec![],
            }
        }
        (Strategy::Ice, Role::Callee) => Setup {
            // Host candidates only: UDP, and a passive ICE-TCP candidate (RFC 6544) on 443.
            // The callee is beyond the censor; the caller's relays reach it there.
            udp: vec![SocketAddr::new(ip, ctx.options.port.unwrap_or(0))],
            tcp: vec![SocketAddr::new(ip, ICE_TCP_PORT)],
            network_types: [udp_types.clone(), tcp_types].concat(),
            ice_servers: vec![],
            policy: RTCIceTransportPolicy::All,
            adapters: vec![],
            sources: vec![],
            failed_sources: vec![],
        },
        (Strategy::Ice, Role::Caller) => {
            ice_caller_setup(ctx, udp_types, tcp_types, deadline).await
        }
    })
}

/// The `ice` caller: host UDP and active ICE-TCP candidates, and, when the run has a relay,
/// a srflx candidate from the relay's STUN listener (coturn answers Binding on its UDP port)
/// and relay candidates over UDP, TCP and TLS (the last two through [`adapter`]s started at
/// once, in parallel). A source that fails (a stream the censor resets) is recorded and left
/// out; the others go on.
async fn ice_caller_setup(
    ctx: &CallContext,
    udp_types: Vec<NetworkType>,
    tcp_types: Vec<NetworkType>,
    deadline: Instant,
) -> Setup {
    let ip = ctx.local_ip;
    let mut setup = Setup {
        udp: vec![SocketAddr::new(ip, 0)],
        tcp: vec![SocketAddr::new(ip, 0)],
        network_types: [udp_types, tcp_types].concat(),
        ice_servers: vec![],
        policy: RTCIceTransportPolicy::All,
        adapters: vec![],
        sources: vec![],
        failed_sources: vec![],
    };
    let Some(relay) = ctx.relay.as_ref() else { return setup };
    let udp = SocketAddr::new(relay.addr, relay.udp_port);
    setup.ice_servers.push(RTCIceServer {
        urls: vec![format!("stun:{udp}")],
        username: String::new(),
        credential: String::new(),
    });
    setup.sources.push(("stun", udp.to_string(), "stun"));
    setup.ice_servers.push(turn_server(udp, relay));
    setup.sources.push(("turn", udp.to_string(), "turn-udp"));
    let wait = remaining(deadline).min(ADAPTER_WAIT);
    let tls = Upstream::Tls {
        sni: ctx.options.sni.clone().unwrap_or_else(|| relay.tls_server_name.clone()),
        cert_pem: relay.tls_cert_pem.clone(),
        alpn: ctx.options.alpn.clone(),
        shape: bypass::FirstFlightShape::default(),
    };
    let (tcp_adapter, tls_adapter) = tokio::join!(
        StreamAdapter::start(Upstream::Tcp, ip, SocketAddr::new(relay.addr, relay.tcp_port), wait),
        StreamAdapter::start(tls, ip, SocketAddr::new(relay.addr, relay.tls_port), wait),
    );
    for (via, adapter) in [("turn-tcp", tcp_adapter), ("turn-tls", tls_adapter)] {
        match adapter {
            Ok(a) => {
                setup.ice_servers.push(turn_server(a.local, relay));
                setup.sources.push(("turn", a.local.to_string(), via));
                setup.adapters.push(a);
            }
            Err(e) => setup.failed_sources.push((via, e.to_string())),
        }
    }
    setup
}

fn media_engine() -> Result<MediaEngine, TransportError> {
    let mut media = MediaEngine::default();
    media
        .register_codec(
            RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: OPUS_PT },
            RtpCodecKind::Audio,
        )
        .map_err(rtc_error("registering the opus codec"))?;
    Ok(media)
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".to_string(),
        clock_rate: OPUS_CLOCK as u32,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_string(),
        rtcp_feedback: vec![],
    }
}

/// A 32-bit value from the scenario seed, distinct per role and purpose.
fn seeded(seed: u64, role: Role, purpose: Purpose) -> u32 {
    callwall_units::seed::derive(seed, purpose, role_index(role)) as u32
}

/// The role as a sub-seed index (caller 1, callee 2).
pub(crate) fn role_index(role: Role) -> u64 {
    if role == Role::Caller {
        1
    } else {
        2
    }
}

async fn call(ctx: &CallContext, s: Strategy, role: Role) -> Result<MediaLink, TransportError> {
    let deadline = Instant::now() + ctx.connect_timeout;
    let relayed = matches!(s, Strategy::TurnUdp | Strategy::TurnTcp | Strategy::TurnTls);
    if role == Role::Caller && relayed && ctx.relay.is_none() {
        return Err(TransportError::NoRelay);
    }
    let mut signal = Client::connect_from(ctx.local_ip, ctx.signal, remaining(deadline)).await?;
    let setup = setup(ctx, s, role, deadline).await?;
    let started = Instant::now();

    let (gathered_tx, mut gathered_rx) = watch::channel(false);
    let (state_tx, mut state_rx) = watch::channel(RTCPeerConnectionState::New);
    let (media_in_tx, media_in_rx) = mpsc::channel(QUEUE);
    let (primers_tx, mut primers_rx) = watch::channel(0u64);
    let events = Arc::new(Events {
        gathered: gathered_tx,
        state: state_tx,
        media_in: media_in_tx,
        primers: Arc::new(primers_tx),
        track_tasks: Mutex::new(Vec::new()),
        started,
        sources: setup.sources.clone(),
        candidates: Mutex::new(
            setup
                .failed_sources
                .iter()
                .map(|(via, e)| IceCandidate {
                    kind: "relay".into(),
                    via: via.to_string(),
                    protocol: "udp".into(),
                    address: String::new(),
                    priority: 0,
                    gathered_ms: Some(ms(started)),
                    error: Some(e.clone()),
                })
                .collect(),
        ),
    });

    // Once connected, consent is checked every second and expires after 30 s without an
    // answer (RFC 7675); setup is bounded by the connect budget. See `consent`.
    let (disconnected, failed, keepalive) = consent::ice_timeouts(ctx.connect_timeout);
    let mut settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_network_types(setup.network_types.clone())
        .with_include_loopback_candidate(ctx.local_ip.is_loopback())
        .with_ice_timeouts(Some(disconnected), Some(failed), Some(keepalive))
        // Nominate the first pair that works, whatever its type: each strategy already limits
        // the candidates, so the default waits (up to 2 s for relay pairs) only delay the call.
        .with_host_acceptance_min_wait(Some(Duration::ZERO))
        .with_srflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_relay_acceptance_min_wait(Some(Duration::ZERO));
    if let Some(mimic) = &ctx.options.bypass.dtls_mimic {
        let (suites, profiles) = bypass::dtls_profile(mimic)?;
        settings = settings.with_dtls_cipher_suites(suites).with_srtp_protection_profiles(profiles);
    }
    let settings = settings.build();
    // Every UDP socket of the call reports to the tap and, with `decoy`, sends it first.
    let tap = Arc::new(bypass::WireTap::default());
    let decoy = ctx.options.bypass.decoy.map(|kind| bypass::DecoyPlan {
        payload: bypass::decoy_payload(kind, ctx.seed, role),
        skip: setup.adapters.iter().map(|a| a.local).collect(),
    });
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(setup.ice_servers.clone())
        .with_ice_transport_policy(setup.policy)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_media_engine(media_engine()?)
        .with_setting_engine(settings)
        // Active ICE-TCP connections leave from `ctx.local_ip` (see `bind`).
        .with_runtime(bypass::DecoyRuntime::shared(
            bind::BoundRuntime::shared(ctx.local_ip),
            decoy,
            tap.clone(),
        ))
        .with_handler(Arc::new(Handler(events.clone())))
        .with_udp_addrs(setup.udp.clone())
        .with_tcp_addrs(setup.tcp.clone())
        .build()
        .await
        .map_err(rtc_error("building the peer connection"))?;
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);
    // From here on the guard owns the connection, so every early return closes it.
    let mut guard = WebrtcCall {
        pc: pc.clone(),
        events: events.clone(),
        tasks: Vec::new(),
        adapters: setup.adapters,
        selected: None,
        ice: None,
        tap,
    };

    let ssrc = seeded(ctx.seed, role, Purpose::RtpSsrc);
    let stream_id = format!("callwall-{}", ctx.call_id);
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream_id,
        format!("voice-{}", if role == Role::Caller { "caller" } else { "callee" }),
        "voice".to_string(),
        RtpCodecKind::Audio,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: opus_codec(),
            ..Default::default()
        }],
    )));
    pc.add_track(track.clone() as Arc<dyn TrackLocal>)
        .await
        .map_err(rtc_error("adding the audio track"))?;

    let offer_key = format!("{}/offer", ctx.call_id);
    let answer_key = format!("{}/answer", ctx.call_id);
    let gathering;
    match role {
        Role::Caller => {
            let offer = pc.create_offer(None).await.map_err(rtc_error("creating the offer"))?;
            pc.set_local_description(offer).await.map_err(rtc_error("applying the offer"))?;
            let gather_until = if s == Strategy::Ice {
                let cap = (Instant::now() + GATHER_CAP).min(deadline);
                let streams: Vec<&str> = events
                    .sources
                    .iter()
                    .filter(|(_, _, via)| matches!(*via, "turn-tcp" | "turn-tls"))
                    .map(|(_, _, via)| *via)
                    .collect();
                ice_gathering_end(&events, &gathered_rx, &streams, cap).await
            } else {
                deadline
            };
            let (local, complete) =
                gathered_description(&*pc, &mut gathered_rx, gather_until, s == Strategy::Ice, ctx)
                    .await?;
            gathering = Some((ms(started), complete));
            tracing::debug!("{} offer gathered (complete: {complete})", s.name());
            signal.put(&offer_key, &encode(s, local)?).await?;
            let wait = left_for(deadline, ctx.connect_timeout, "waiting for the callee's answer")?;
            let answer = signal.get(&answer_key, wait).await?;
            let answer = decode(&answer, s)?;
            let tcp_passive = passive_tcp_candidates(&answer.sdp);
            pc.set_remote_description(answer).await.map_err(rtc_error("applying the answer"))?;
            if matches!(s, Strategy::IceTcp | Strategy::Ice) {
                // webrtc-rs 0.21 opens ICE-TCP connections to passive candidates only when they
                // come through add_ice_candidate, not when they are in a description; hand them
                // over again so the active side connects.
                for candidate in tcp_passive {
                    pc.add_ice_candidate(candidate)
                        .await
                        .map_err(rtc_error("adding the callee's ice-tcp candidate"))?;
                }
            }
        }
        Role::Callee => {
            let wait = left_for(deadline, ctx.connect_timeout, "waiting for the caller's offer")?;
            let offer = signal.get(&offer_key, wait).await?;
            let offer = decode(&offer, s)?;
            pc.set_remote_description(offer).await.map_err(rtc_error("applying the offer"))?;
            let answer = pc.create_answer(None).await.map_err(rtc_error("creating the answer"))?;
            pc.set_local_description(answer).await.map_err(rtc_error("applying the answer"))?;
            let (local, complete) =
                gathered_description(&*pc, &mut gathered_rx, deadline, false, ctx).await?;
            gathering = Some((ms(started), complete));
            tracing::debug!("{} answer gathered", s.name());
            signal.put(&answer_key, &encode(s, local)?).await?;
        }
    }

    wait_connected(&mut state_rx, deadline, ctx.connect_timeout).await?;
    tracing::debug!("{} {role:?} connected", s.name());
    let connected_ms = ms(started);
    // Reading stats goes through the peer connection's driver; never let it hold the call's
    // setup (the path description is then less precise, the call is the same).
    guard.selected =
        tokio::time::timeout(SELECTED_PAIR_MAX, selected_pair(&*pc)).await.ok().flatten();
    tracing::debug!("{} {role:?} read the selected pair", s.name());
    if s == Strategy::Ice {
        guard.ice = tokio::time::timeout(
            SELECTED_PAIR_MAX,
            ice_report(&*pc, &events, gathering, connected_ms, &guard.selected),
        )
        .await
        .ok();
    }

    let mut writer = RtpWriter {
        track,
        ssrc,
        seq: seeded(ctx.seed, role, Purpose::RtpSequence) as u16,
        ts0: seeded(ctx.seed, role, Purpose::RtpTimestamp),
        start: Instant::now(),
        marker: false,
    };
    // Bounded here too, in case a write blocks in the driver: priming is an optimisation.
    let primed = tokio::time::timeout(
        PRIME_MAX + Duration::from_millis(200),
        prime(&mut writer, &mut primers_rx, deadline),
    )
    .await;
    tracing::debug!("{} {role:?} primed (in time: {})", s.name(), primed.is_ok());
    let (media_out_tx, media_out_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    guard.tasks.push(tokio::spawn(send_frames(writer, media_out_rx)));

    let path = describe_path(s, &guard);
    Ok(MediaLink { tx: media_out_tx, rx: media_in_rx, path, guard: Box::new(guard) })
}

fn encode(s: Strategy, sdp: RTCSessionDescription) -> Result<String, TransportError> {
    serde_json::to_string(&Description { strategy: s.name().to_string(), sdp })
        .map_err(|e| TransportError::Other(format!("encoding the session description: {e}")))
}

fn decode(value: &str, s: Strategy) -> Result<RTCSessionDescription, TransportError> {
    let d: Description = serde_json::from_str(value).map_err(|e| {
        TransportError::Handshake(format!("the peer's session description is not valid: {e}"))
    })?;
    if d.strategy != s.name() {
        return Err(TransportError::Handshake(format!(
            "the peer uses strategy {:?} but this side uses {:?}; use a fresh call_id per attempt",
            d.strategy,
            s.name()
        )));
    }
    Ok(d.sdp)
}

/// The passive ICE-TCP candidates (RFC 6544 §4.5) of component 1 in `sdp`, ready for
/// `add_ice_candidate`.
fn passive_tcp_candidates(sdp: &str) -> Vec<RTCIceCandidateInit> {
    let mid = sdp.lines().find_map(|l| l.strip_prefix("a=mid:")).map(str::trim).map(String::from);
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter(|c| c.starts_with("candidate:"))
        .filter(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            f.get(1) == Some(&"1")
                && f.get(2).is_some_and(|p| p.eq_ignore_ascii_case("tcp"))
                && f.windows(2).any(|w| w[0] == "tcptype" && w[1] == "passive")
        })
        .map(|c| RTCIceCandidateInit {
            candidate: c.to_string(),
            sdp_mid: mid.clone(),
            sdp_mline_index: Some(0),
            ..Default::default()
        })
        .collect()
}

/// When the `ice` caller stops waiting for candidates: at completion, at `cap`, or once every
/// stream relay (`streams`: TURN over TCP/TLS, which a UDP censor cannot stop) is gathered and
/// a quiet period of twice their gathering time (at least [`GATHER_QUIET`]) has passed, so
/// UDP sources on a path that answers at all have had their round trips.
async fn ice_gathering_end(
    events: &Events,
    gathered: &watch::Receiver<bool>,
    streams: &[&str],
    cap: Instant,
) -> Instant {
    let start = Instant::now();
    loop {
        let now = Instant::now();
        if *gathered.borrow() || now >= cap {
            return now;
        }
        if !streams.is_empty() {
            let candidates = events.candidates.lock().unwrap_or_else(|p| p.into_inner());
            let last = streams.iter().try_fold(0.0f64, |acc, via| {
                candidates
                    .iter()
                    .filter(|c| c.via == *via && c.error.is_none())
                    .filter_map(|c| c.gathered_ms)
                    .reduce(f64::min)
                    .map(|t| acc.max(t))
            });
            drop(candidates);
            if let Some(last_ms) = last {
                let took = Duration::from_secs_f64(
                    (last_ms - (start - events.started).as_secs_f64() * 1e3).max(0.0) / 1e3,
                );
                if now >= start + (took * 2).max(GATHER_QUIET) {
                    return now;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for ICE gathering to complete and returns the local description with every candidate.
async fn gathered_description(
    pc: &dyn PeerConnection,
    gathered: &mut watch::Receiver<bool>,
    until: Instant,
    capped: bool,
    ctx: &CallContext,
) -> Result<(RTCSessionDescription, bool), TransportError> {
    let what = if ctx.role == Role::Caller && ctx.relay.is_some() {
        "gathering ice candidates (is the relay reachable?)"
    } else {
        "gathering ice candidates"
    };
    // With `capped` (the `ice` caller), past `until` go on with the candidates gathered so far.
    let complete = match tokio::time::timeout_at(until, gathered.wait_for(|done| *done)).await {
        Err(_) if capped => false,
        Err(_) => return Err(TransportError::Timeout(ctx.connect_timeout, what)),
        Ok(Err(_)) => return Err(TransportError::Other("the peer connection went away".into())),
        Ok(Ok(_)) => true,
    };
    let desc = pc
        .local_description()
        .await
        .ok_or_else(|| TransportError::Other("no local description after gathering".into()))?;
    for line in desc.sdp.lines().filter(|l| l.starts_with("a=candidate:")) {
        tracing::trace!("local {line}");
    }
    if !desc.sdp.contains("a=candidate:") {
        return Err(TransportError::Handshake(format!(
            "no ice candidates were gathered on {} for this strategy",
            ctx.local_ip
        )));
    }
    Ok((desc, complete))
}

async fn wait_connected(
    state: &mut watch::Receiver<RTCPeerConnectionState>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), TransportError> {
    let done = state.wait_for(|s| {
        matches!(
            s,
            RTCPeerConnectionState::Connected
                | RTCPeerConnectionState::Failed
                | RTCPeerConnectionState::Closed
        )
    });
    match tokio::time::timeout_at(deadline, done).await {
        Err(_) => Err(TransportError::Timeout(timeout, "connecting ice and dtls")),
        Ok(Err(_)) => Err(TransportError::Other("the peer connection went away".into())),
        Ok(Ok(s)) if *s == RTCPeerConnectionState::Connected => Ok(()),
        Ok(Ok(s)) => Err(TransportError::Handshake(format!("the peer connection is {}", *s))),
    }
}

/// Reads the selected candidate pair from the connection's stats.
async fn selected_pair(pc: &dyn PeerConnection) -> Option<SelectedPair> {
    for _ in 0..20 {
        let report = pc.get_stats(std::time::Instant::now(), StatsSelector::None).await;
        let found = report.transport().and_then(|t| {
            let pair = match report.get(&t.selected_candidate_pair_id)? {
                RTCStatsReportEntry::IceCandidatePair(p) => p,
                _ => return None,
            };
            // Candidate entries are keyed with a type prefix the pair's ids do not carry.
            let candidate = |prefix: &str, id: &str| {
                [id.to_string(), format!("{prefix}{id}")].iter().find_map(|k| match report.get(k) {
                    Some(
                        RTCStatsReportEntry::LocalCandidate(c)
                        | RTCStatsReportEntry::RemoteCandidate(c),
                    ) => Some(c),
                    _ => None,
                })
            };
            let local = candidate("RTCLocalIceCandidate_", &pair.local_candidate_id)?;
            let remote = candidate("RTCRemoteIceCandidate_", &pair.remote_candidate_id);
            let addr = |c: &rtc::statistics::stats::ice_candidate::RTCIceCandidateStats| {
                format!("{}:{}", c.address.clone().unwrap_or_default(), c.port)
            };
            Some(SelectedPair {
                local_type: local.candidate_type.to_string(),
                local: addr(local),
                remote_type: remote.map(|c| c.candidate_type.to_string()),
                remote: remote.map(addr),
                protocol: local.protocol.to_string(),
            })
        });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// The ICE report of an `ice` call: the candidates the handler recorded, every pair from the
/// agent's stats, and the nominated pair.
async fn ice_report(
    pc: &dyn PeerConnection,
    events: &Events,
    gathering: Option<(f64, bool)>,
    connected_ms: f64,
    selected: &Option<SelectedPair>,
) -> IceReport {
    let candidates = events.candidates.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let via_of = |addr: &str, protocol: &str| {
        candidates
            .iter()
            .find(|c| c.address == addr && c.protocol == protocol && c.error.is_none())
            .map(|c| c.via.clone())
            .unwrap_or_else(|| format!("unknown-{protocol}"))
    };
    let report = pc.get_stats(std::time::Instant::now(), StatsSelector::None).await;
    let candidate = |id: &str| {
        ["", "RTCLocalIceCandidate_", "RTCRemoteIceCandidate_"].iter().find_map(|prefix| {
            match report.get(&format!("{prefix}{id}")) {
                Some(
                    RTCStatsReportEntry::LocalCandidate(c)
                    | RTCStatsReportEntry::RemoteCandidate(c),
                ) => Some(c),
                _ => None,
            }
        })
    };
    let addr = |c: &rtc::statistics::stats::ice_candidate::RTCIceCandidateStats| {
        format!("{}:{}", c.address.clone().unwrap_or_default(), c.port)
    };
    let mut pairs = Vec::new();
    for entry in report.iter() {
        let RTCStatsReportEntry::IceCandidatePair(p) = entry else { continue };
        let Some(local) = candidate(&p.local_candidate_id) else { continue };
        let remote = candidate(&p.remote_candidate_id);
        let state = serde_json::to_value(p.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        pairs.push(IcePair {
            local_via: via_of(&addr(local), &local.protocol),
            local: addr(local),
            remote_kind: remote.map(|c| c.candidate_type.to_string()).unwrap_or_default(),
            remote: remote.map(addr).unwrap_or_default(),
            state,
            nominated: p.nominated,
            requests_sent: p.requests_sent,
            responses_received: p.responses_received,
        });
    }
    let selected = selected.as_ref().map(|p| IceSelected {
        local_kind: p.local_type.clone(),
        local_via: via_of(&p.local, &p.protocol),
        local: p.local.clone(),
        remote_kind: p.remote_type.clone(),
        remote: p.remote.clone(),
        protocol: p.protocol.clone(),
    });
    IceReport {
        gathering_ms: gathering.map(|g| g.0),
        gathering_complete: gathering.is_some_and(|g| g.1),
        candidates,
        pairs,
        selected,
        connected_ms: Some(connected_ms),
    }
}

fn describe_path(s: Strategy, call: &WebrtcCall) -> String {
    let mut path = format!("webrtc {}", s.name());
    if let Some(p) = &call.selected {
        path.push_str(&format!(": {p}"));
    }
    let via_adapter = |p: &SelectedPair| {
        let ice = call.ice.as_ref()?;
        let c = ice.candidates.iter().find(|c| c.address == p.local && c.error.is_none())?;
        Some(c.via.clone())
    };
    for a in &call.adapters {
        // For `ice`, name only the adapter the nominated pair uses.
        if s == Strategy::Ice
            && call.selected.as_ref().and_then(via_adapter).as_deref()
                != Some(if a.kind == "tls" { "turn-tls" } else { "turn-tcp" })
        {
            continue;
        }
        path.push_str(&format!("; turn over {} to {} from {}", a.kind, a.relay, a.stream_source));
    }
    path
}

/// Writes voice frames as RTP packets on the local track (RFC 3550 §5.1 header fields).
struct RtpWriter {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    seq: u16,
    ts0: u32,
    start: Instant,
    marker: bool,
}

impl RtpWriter {
    /// Writes one packet; `payload` is the frame, or empty for a primer.
    async fn write(&mut self, payload: Vec<u8>) {
        // The timestamp is the send time at the codec clock (RFC 7587 §4.1: 48 kHz).
        let ticks =
            (self.start.elapsed().as_micros() as u64).saturating_mul(OPUS_CLOCK) / 1_000_000;
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                // The first packet of a talkspurt carries the marker (RFC 3551 §4.1).
                marker: self.marker,
                payload_type: OPUS_PT,
                sequence_number: self.seq,
                timestamp: self.ts0.wrapping_add(ticks as u32),
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: bytes::Bytes::from(payload),
        };
        if let Err(e) = self.track.write_rtp(packet).await {
            tracing::debug!("sending an rtp packet failed: {e}");
        }
        self.seq = self.seq.wrapping_add(1);
        self.marker = false;
    }
}

/// How long priming may take after the connection is up.
const PRIME_MAX: Duration = Duration::from_millis(500);
/// Longest wait for the selected candidate pair from the stats after connecting.
const SELECTED_PAIR_MAX: Duration = Duration::from_secs(1);
/// Primers sent after the peer's first primer arrived.
const PRIMERS_AFTER_PEER: u32 = 3;

/// Sends primers (RTP packets with an empty payload, discarded by the receiver) every 20 ms
/// until the peer's primers arrive here and a few more of ours went out, at most [`PRIME_MAX`].
///
/// webrtc-rs 0.21 opens a remote track on its first RTP packet and drops the packets that
/// arrive in the same read pass as the open ("Failed to get track_remote … for RtpPacket"),
/// and a packet that arrives before the receiver's DTLS is done is dropped too. Priming puts
/// both losses on packets that are not voice frames, so the first frame is measured like every
/// other. It adds up to [`PRIME_MAX`] to setup time.
async fn prime(writer: &mut RtpWriter, primers_in: &mut watch::Receiver<u64>, deadline: Instant) {
    let until = (Instant::now() + PRIME_MAX).min(deadline);
    let mut after_peer = 0;
    loop {
        writer.write(Vec::new()).await;
        if *primers_in.borrow() > 0 {
            after_peer += 1;
            if after_peer >= PRIMERS_AFTER_PEER {
                return;
            }
        }
        if Instant::now() >= until {
            tracing::debug!("no primer from the peer within {PRIME_MAX:?}; starting anyway");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends each voice frame as the payload of one RTP packet. Empty frames are not carried
/// (an empty payload is a primer).
async fn send_frames(mut writer: RtpWriter, mut frames: mpsc::Receiver<Vec<u8>>) {
    writer.marker = true;
    while let Some(frame) = frames.recv().await {
        if !frame.is_empty() {
            writer.write(frame).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_needs_follow_the_strategies() {
        use callwall_transport::{relay_needs_of, RelayNeeds};
        let t = WebrtcTransport;
        let of =
            |s: &[&str]| relay_needs_of(&t, &s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(of(&["direct"]), RelayNeeds::NONE);
        assert_eq!(of(&["ice-tcp"]), RelayNeeds::NONE);
        assert!(of(&["turn-tls"]).turn_tls && !of(&["turn-tls"]).turn_udp);
        assert_eq!(of(&["auto"]), RelayNeeds::TURN_ALL);
        assert_eq!(of(&["direct", "turn-udp"]), RelayNeeds { turn_udp: true, ..RelayNeeds::NONE });
    }

    #[test]
    fn strategies_parse_and_auto_is_a_prefix() {
        for s in STRATEGIES {
            assert_eq!(Strategy::parse(s).map(|s| s.name()), Some(*s));
        }
        assert!(AUTO_ORDER.iter().all(|s| STRATEGIES.contains(s)));
        assert_eq!(AUTO_ORDER, &["ice"]);
        assert_eq!(Strategy::parse("auto"), None);
    }

    #[test]
    fn seeded_values_differ_by_role_and_repeat_by_seed() {
        let ssrc = Purpose::RtpSsrc;
        assert_eq!(seeded(7, Role::Caller, ssrc), seeded(7, Role::Caller, ssrc));
        assert_ne!(seeded(7, Role::Caller, ssrc), seeded(7, Role::Callee, ssrc));
        assert_ne!(seeded(7, Role::Caller, ssrc), seeded(8, Role::Caller, ssrc));
        assert_ne!(seeded(7, Role::Caller, ssrc), seeded(7, Role::Caller, Purpose::RtpTimestamp));
    }

    #[test]
    fn stale_descriptions_are_refused() {
        let d = encode(Strategy::Direct, RTCSessionDescription::default()).expect("encode");
        assert!(decode(&d, Strategy::Direct).is_ok());
        let err = decode(&d, Strategy::TurnUdp).expect_err("mismatch");
        assert!(err.to_string().contains("fresh call_id"), "{err}");
        assert!(decode("not json", Strategy::Direct).is_err());
    }
}
