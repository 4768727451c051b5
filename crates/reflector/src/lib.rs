//! A Telegram-like call reflector, and the `reflector` voice transport that calls through it.
//!
//! Telegram's calls go through "reflectors" on UDP 596-599 and 1400 and start with a STUN
//! Binding request; the August 2025 Russian restriction matched exactly that
//! (censorship-catalog.md, "Russia after August 2025" [R]). This crate gives the sandbox such a
//! component so a telegram-like call sends a STUN-first flow to those ports for real:
//! - [`core::Reflector`], sans-I/O: answers STUN Binding, then pairs the two addresses that send
//!   a 16-byte call tag and relays each tagged datagram to the other (see [`core`] for the
//!   protocol and what is and is not modelled);
//! - [`Server`], the tokio adapter: one UDP socket per port ([`PORTS`] by default) on one
//!   address, each with its own core;
//! - [`ReflectorTransport`] (`reflector`, strategy `udp`): each peer binds `ctx.local_ip`,
//!   sends a STUN Binding request to the reflector and waits for the answer, then sends tagged
//!   hellos until the other peer's arrive through the reflector; after that every voice frame
//!   is one datagram `tag || frame`.
//!
//! Where the reflector is: the harness starts it in the relay host (beside coturn, whose ports
//! 3478 and 443 it does not use), so the transport sends to `ctx.relay.addr` on
//! `options.port` (default 596). Frames are not encrypted (the voice model's frames are
//! synthetic; the censor's decision rests on the first packets and flow shape, which this
//! reproduces); Telegram's end-to-end encryption is not modelled.
//!
//! # Bypasses
//! Strategy `udp` honours two [`callwall_transport::Bypass`] keys, applied by the caller (the
//! peer behind the censor) only; [`callwall_transport::bypass::udp`] builds what goes on the
//! wire:
//! - `decoy`: one datagram (`random` 64 bytes, a `dns` query or a `stun` Binding request with
//!   FINGERPRINT) from the call's own socket to the reflector before the STUN Binding request,
//!   so the flow's first packet is not STUN. The reflector answers a STUN decoy (the caller
//!   ignores the answer: wrong transaction id) and keeps any other decoy as an idle tag that
//!   expires ([`core::IDLE`]). Source: censorship-catalog.md, "Russia after August 2025": "a
//!   fake packet before the STUN exchange worked" mid-August 2025, no longer by 28 September.
//! - `source_port`: the caller's port drawn from the seed below the reflector's port
//!   (`below-server`, e.g. 298-595 for 596) or above it (`above-server`). Source: the catalog's
//!   GFW QUIC entry (only flows with source port > destination port are inspected); no
//!   published result for Telegram-like calls, so any outcome is callwall's prediction.
//!
//! Guarantees: every wait is bounded by `connect_timeout`; malformed datagrams are counted,
//! never a panic; dropping a [`Server`] or a link stops its tasks.
#![forbid(unsafe_code)]

pub mod core;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use callwall_transport::bypass::udp;
use callwall_transport::{
    check_bypass, check_strategy, CallContext, MediaLink, Role, TransportError, VoiceTransport,
};
use callwall_wire::stun::StunRepr;
use rand::SeedableRng;

use crate::core::{Counters, Reflector, Tag, TAG_LEN};

/// The ports Telegram-like reflectors listen on (catalog: UDP 596-599 and 1400 [R]).
pub const PORTS: &[u16] = &[596, 597, 598, 599, 1400];
/// The transport's strategies.
pub const STRATEGIES: &[&str] = &["udp"];
/// The default reflector port of strategy `udp`.
pub const DEFAULT_PORT: u16 = 596;
/// The [`callwall_transport::Bypass`] keys strategy `udp` honours (see the crate doc).
pub const BYPASSES: &[&str] = &["decoy", "source_port"];
/// How often a peer repeats its STUN request and its hellos while connecting.
const RETRY: Duration = Duration::from_millis(100);
const QUEUE: usize = 1024;

/// A running reflector: one UDP socket per port. Dropping it stops the tasks.
pub struct Server {
    pub addrs: Vec<SocketAddr>,
    cores: Vec<Arc<Mutex<Reflector>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds `ip` on every port in `ports` and starts relaying.
    pub async fn start(ip: IpAddr, ports: &[u16]) -> Result<Server, std::io::Error> {
        let mut server = Server { addrs: Vec::new(), cores: Vec::new(), tasks: Vec::new() };
        for &port in ports {
            let socket = UdpSocket::bind(SocketAddr::new(ip, port)).await?;
            server.addrs.push(socket.local_addr()?);
            let core = Arc::new(Mutex::new(Reflector::new()));
            server.cores.push(core.clone());
            server.tasks.push(tokio::spawn(serve_socket(socket, core)));
        }
        Ok(server)
    }

    /// The counters of every port, summed.
    pub fn counters(&self) -> Counters {
        let mut sum = Counters::default();
        for c in &self.cores {
            let c = c.lock().unwrap_or_else(|p| p.into_inner()).counters;
            sum.stun_answered += c.stun_answered;
            sum.relayed += c.relayed;
            sum.waiting += c.waiting;
            sum.refused += c.refused;
            sum.malformed += c.malformed;
        }
        sum
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve_socket(socket: UdpSocket, core: Arc<Mutex<Reflector>>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("reflector receive: {e}");
                continue;
            }
        };
        let out: Vec<(SocketAddr, Vec<u8>)> = {
            let mut r = core.lock().unwrap_or_else(|p| p.into_inner());
            r.handle(std::time::Instant::now(), from, &buf[..n]);
            std::iter::from_fn(|| r.poll_transmit()).collect()
        };
        for (to, bytes) in out {
            if let Err(e) = socket.send_to(&bytes, to).await {
                tracing::debug!("reflector send to {to}: {e}");
            }
        }
    }
}

/// The call tag of `call_id` (both peers derive the same one): the SplitMix64 stream that
/// starts at the FNV-1a hash of the call id.
pub fn call_tag(call_id: &str) -> Tag {
    use callwall_units::seed::{mix, name_index};
    let h = name_index(call_id);
    let mut tag = [0u8; TAG_LEN];
    for (i, chunk) in tag.chunks_mut(8).enumerate() {
        let z = h.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        chunk.copy_from_slice(&mix(z).to_be_bytes());
    }
    tag
}

/// The `reflector` transport (see the crate doc).
#[derive(Debug, Default, Clone, Copy)]
pub struct ReflectorTransport;

#[async_trait::async_trait]
impl VoiceTransport for ReflectorTransport {
    fn name(&self) -> &'static str {
        "reflector"
    }

    fn strategies(&self) -> &'static [&'static str] {
        STRATEGIES
    }

    fn bypasses(&self, strategy: &str) -> &'static [&'static str] {
        if STRATEGIES.contains(&strategy) {
            BYPASSES
        } else {
            &[]
        }
    }

    /// Every strategy reaches the reflector on the relay host.
    fn relay_needs(&self, _strategy: &str) -> callwall_transport::RelayNeeds {
        callwall_transport::RelayNeeds::REFLECTOR
    }

    async fn dial(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError> {
        check_strategy(self, strategy)?;
        check_bypass(self, strategy, &ctx.options.bypass)?;
        connect(ctx).await
    }

    async fn answer(&self, ctx: &CallContext, strategy: &str) -> Result<MediaLink, TransportError> {
        check_strategy(self, strategy)?;
        check_bypass(self, strategy, &ctx.options.bypass)?;
        connect(ctx).await
    }
}

/// Both roles do the same: STUN first, then tagged hellos until the peer's arrive.
async fn connect(ctx: &CallContext) -> Result<MediaLink, TransportError> {
    let deadline = Instant::now() + ctx.connect_timeout;
    let relay = ctx.relay.as_ref().ok_or(TransportError::NoRelay)?;
    let reflector = SocketAddr::new(relay.addr, ctx.options.port.unwrap_or(DEFAULT_PORT));
    // The caller (the peer behind the censor) applies the bypasses; seeded per call.
    let bypass = match ctx.role {
        Role::Caller => ctx.options.bypass.clone(),
        Role::Callee => Default::default(),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(callwall_units::seed::derive(
        ctx.seed,
        callwall_units::seed::Purpose::ReflectorBypass,
        callwall_units::seed::name_index(&ctx.call_id),
    ));
    let socket =
        udp::bind_source_tokio(ctx.local_ip, reflector.port(), bypass.source_port, &mut rng)?;
    socket
        .connect(reflector)
        .await
        .map_err(|e| TransportError::io("connecting the reflector client's socket", e))?;
    let mut buf = vec![0u8; 65_536];
    // 0. The decoy, once, before the STUN request: the flow's first packet is not STUN.
    if let Some(kind) = bypass.decoy {
        let decoy = udp::decoy_datagram(kind, &mut rng);
        socket.send(&decoy).await.map_err(|e| TransportError::io("sending the decoy", e))?;
    }

    // 1. STUN Binding request, repeated until answered (RFC 8489 §6.2.1 retransmits too).
    let mut id = [0u8; 12];
    id.copy_from_slice(&call_tag(&format!("{}/{:?}/stun", ctx.call_id, ctx.role))[..12]);
    let request = StunRepr::binding_request(id).to_bytes();
    let mapped = loop {
        if Instant::now() >= deadline {
            return Err(TransportError::Timeout(
                ctx.connect_timeout,
                "waiting for the reflector's stun binding response",
            ));
        }
        let _ = socket.send(&request).await;
        let wait = (Instant::now() + RETRY).min(deadline);
        if let Ok(Ok(n)) = tokio::time::timeout_at(wait, socket.recv(&mut buf)).await {
            if let Some(m) = core::mapped_address(&buf[..n], id) {
                break m;
            }
        }
    };

    // 2. Tagged hellos (tag alone) until one of the peer's comes back through the reflector.
    let tag = call_tag(&ctx.call_id);
    loop {
        if Instant::now() >= deadline {
            return Err(TransportError::Timeout(
                ctx.connect_timeout,
                "waiting for the other peer through the reflector",
            ));
        }
        let _ = socket.send(&tag).await;
        let wait = (Instant::now() + RETRY).min(deadline);
        if let Ok(Ok(n)) = tokio::time::timeout_at(wait, socket.recv(&mut buf)).await {
            if n >= TAG_LEN && buf[..TAG_LEN] == tag {
                break;
            }
        }
    }
    // One more hello, so the peer hears us even if our first ones went before it joined.
    let _ = socket.send(&tag).await;

    let socket = Arc::new(socket);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let sender = {
        let socket = socket.clone();
        tokio::spawn(async move {
            while let Some(frame) = out_rx.recv().await {
                let _ = socket.send(&[&tag[..], &frame].concat()).await;
            }
        })
    };
    let receiver = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok(n) = socket.recv(&mut buf).await else { continue };
            // Hellos (tag alone) and anything without our tag are not frames.
            if n <= TAG_LEN || buf[..TAG_LEN] != tag {
                continue;
            }
            match in_tx.try_send(buf[TAG_LEN..n].to_vec()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    });
    Ok(MediaLink {
        tx: out_tx,
        rx: in_rx,
        path: format!("reflector {reflector} (stun first; mapped {mapped})"),
        guard: Box::new(Tasks(vec![sender, receiver])),
    })
}

struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn call_tag_is_pinned() {
        // Both peers and older builds must agree on a call's tag.
        let hex: String = super::call_tag("call-1").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "ed406901f270e088ba49c831b9f25f11");
    }
}
