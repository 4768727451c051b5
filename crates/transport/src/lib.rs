//! The contract between callwall's harness and its voice transports.
//!
//! A transport (`transport-noise`, `transport-quic`, `transport-webrtc`) implements
//! [`VoiceTransport`]: given a [`CallContext`] and a strategy name it sets up a media path to the
//! other peer and hands back a [`MediaLink`], a pair of channels carrying opaque voice frames.
//! The voice model ([`voice`]) drives the link for the call's duration, and the metrics module
//! ([`metrics`]) turns the two peers' [`PeerReport`]s into loss, jitter, delay, gaps, a MOS and
//! a [`Verdict`]. The bypasses a call may apply are [`bypass`]; what the UDP transports put on
//! the wire for them (decoy datagram, source port) is [`bypass::udp`], whose messages are
//! written by `callwall_wire`'s codecs.
//!
//! Guarantees: every wait in a transport is bounded by the context's deadlines; a transport
//! never reads a clock other than the shared system clock used for one-way delay. It does not
//! guarantee delivery: frames lost on the path are the measurement.

pub mod bypass;
pub mod ice;
pub mod live;
pub mod metrics;
pub mod peer;
pub mod race;
pub mod relay_needs;
pub mod signal;
pub mod voice;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use bypass::{check_bypass, Bypass, BypassError};
pub use callwall_results::Cause;
pub use metrics::{analyze, CallMetrics, DirectionMetrics, Second, Thresholds, Verdict};
pub use peer::{run_peer, Attempt, PeerReport, PeerSpec};
pub use relay_needs::{relay_needs_of, RelayNeeds};
pub use voice::{Arrival, VoiceModel};

/// Which side of the call a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Dials: sits behind the censor.
    Caller,
    /// Answers.
    Callee,
}

/// A TURN relay the harness started for the run (coturn in the relay host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayInfo {
    /// The relay's address; it listens on UDP and TCP 3478 and TLS 443.
    pub addr: IpAddr,
    pub udp_port: u16,
    pub tcp_port: u16,
    pub tls_port: u16,
    /// Long-term credentials, fresh per run. Never written to reports.
    pub username: String,
    pub password: String,
    pub realm: String,
    /// PEM of the certificate the relay's TLS listener presents, so clients can pin it.
    pub tls_cert_pem: String,
    /// The name in that certificate.
    pub tls_server_name: String,
}

/// Knobs a scenario can set on a call's strategy. Each transport documents which it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyOptions {
    /// TLS/QUIC server name to present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// ALPN protocol to offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// Server port to use instead of the strategy's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Bytes to send first on a TCP stream, to pass "fully encrypted" tests (noise `tcp-443`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printable_prefix: Option<String>,
    /// Circumvention to apply (see [`bypass`]); empty by default.
    #[serde(default, skip_serializing_if = "Bypass::is_empty")]
    pub bypass: Bypass,
}

/// Everything a transport needs to place or answer one call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallContext {
    /// Unique within the run; used as the signalling room.
    pub call_id: String,
    pub role: Role,
    /// This peer's own address (callee listens on it; caller binds to it).
    pub local_ip: IpAddr,
    /// The signalling server (the signal host), reached over TCP.
    pub signal: SocketAddr,
    /// The relay, when the run has one.
    pub relay: Option<RelayInfo>,
    pub options: StrategyOptions,
    /// How long one strategy may take to connect before it counts as failed.
    pub connect_timeout: Duration,
    /// Seed for any randomness the transport needs to be reproducible (padding, ports).
    pub seed: u64,
}

/// An established media path: voice frames go out on `tx` and come in on `rx`.
///
/// Dropping the link tears down the transport's tasks and sockets.
pub struct MediaLink {
    pub tx: mpsc::Sender<Vec<u8>>,
    pub rx: mpsc::Receiver<Vec<u8>>,
    /// Human-readable detail of the path (e.g. "relay 10.3.0.2:443 over tls").
    pub path: String,
    /// Keeps the transport's tasks alive; dropped with the link.
    pub guard: Box<dyn std::any::Any + Send>,
}

impl std::fmt::Debug for MediaLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaLink").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Why a transport could not set up a call.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "strategy {strategy:?} is not offered by transport {transport:?}; choose one of {offered}"
    )]
    UnknownStrategy { transport: &'static str, strategy: String, offered: String },
    #[error("timed out after {0:?} while {1}")]
    Timeout(Duration, &'static str),
    #[error("signalling failed: {0}")]
    Signal(#[from] signal::SignalError),
    #[error("i/o error while {context}: {source}")]
    Io { context: &'static str, source: std::io::Error },
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("the strategy needs a relay, but the run has none; add a relay host to the topology")]
    NoRelay,
    /// A bypass the strategy does not honour, or a bypass value out of range.
    #[error("{0}")]
    Bypass(String),
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    pub fn io(context: &'static str, source: std::io::Error) -> Self {
        TransportError::Io { context, source }
    }
}

/// A voice transport. One implementation per crate; strategies are named by the scenario.
#[async_trait::async_trait]
pub trait VoiceTransport: Send + Sync {
    /// The name scenarios use (`noise`, `quic`, `webrtc`).
    fn name(&self) -> &'static str;
    /// The strategies this transport offers, in the order `auto` should try them.
    fn strategies(&self) -> &'static [&'static str];
    /// The strategies `auto` tries, in order, like a real app falling back. Defaults to all.
    fn auto_order(&self) -> &'static [&'static str] {
        self.strategies()
    }
    /// Places a call (caller side) with one strategy.
    async fn dial(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError>;
    /// Answers a call (callee side) with one strategy. It must publish whatever the caller
    /// needs through signalling before it waits for the caller.
    async fn answer(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError>;
    /// What the transport's ICE agent did on `link` (a link this transport returned), for
    /// transports that run ICE. Defaults to none.
    fn ice_report(&self, _link: &MediaLink) -> Option<ice::IceReport> {
        None
    }
    /// For transports that run ICE: one sentence on what their agent gathers and checks, for
    /// `callwall transports`. Defaults to none.
    fn ice_summary(&self) -> Option<&'static str> {
        None
    }
    /// The strategies `auto` races with staggered starts (RFC 8305 style, see [`race`])
    /// instead of trying [`VoiceTransport::auto_order`] one after another; they must listen on
    /// distinct callee ports. Defaults to none (sequential).
    fn auto_race(&self) -> Option<&'static [&'static str]> {
        None
    }
    /// The [`Bypass`] keys `strategy` honours (see [`bypass`]). Defaults to none: a transport
    /// opts in key by key, so a bypass is never silently ignored.
    fn bypasses(&self, _strategy: &str) -> &'static [&'static str] {
        &[]
    }
    /// What `strategy` needs on the run's relay host (TURN ports, the reflector): the harness
    /// starts those services from this answer (see [`relay_needs`]). Defaults to none.
    fn relay_needs(&self, _strategy: &str) -> RelayNeeds {
        RelayNeeds::NONE
    }
}

/// Checks `strategy` against the transport's list, for use at the top of `dial`/`answer`.
pub fn check_strategy(t: &dyn VoiceTransport, strategy: &str) -> Result<(), TransportError> {
    if t.strategies().contains(&strategy) {
        Ok(())
    } else {
        Err(TransportError::UnknownStrategy {
            transport: t.name(),
            strategy: strategy.to_string(),
            offered: t.strategies().join(", "),
        })
    }
}

/// The socket address a peer should use: `ip:port`.
pub fn sockaddr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}
