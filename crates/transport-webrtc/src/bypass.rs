//! The bypasses this transport puts on the wire (issue 15); see the crate docs' "Bypasses"
//! section for what each does, its source and its limits.
//!
//! - [`honoured`]: the keys each strategy honours.
//! - [`DecoyRuntime`]: the webrtc-rs runtime whose UDP sockets send one decoy datagram to each
//!   new destination before anything else, and keep the first datagrams each socket sent
//!   ([`WireTap`]) so tests and reports can see what went out first.
//! - [`FirstFlight`]: a stream wrapper for the TURN-over-TLS adapter that splits the client's
//!   TLS handshake records into records of at most N bytes and writes the first flight in
//!   writes (TCP segments, with `TCP_NODELAY`) of at most N bytes, until the handshake is done.
//! - [`dtls_profile`]: the DTLS cipher suites and SRTP profiles of a browser, as far as
//!   webrtc-rs's public configuration reaches.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    Transmit,
};

use callwall_transport::bypass::Decoy;
use callwall_transport::{Role, TransportError};
use callwall_wire::dns;
use callwall_wire::stun::StunRepr;

use rtc::dtls::cipher_suite::CipherSuiteId;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;

/// The bypass keys `strategy` honours.
pub fn honoured(strategy: &str) -> &'static [&'static str] {
    match strategy {
        "direct" | "turn-udp" | "ice" => &["decoy", "dtls_mimic"],
        "turn-tls" => &["tls_record", "tcp_segment", "dtls_mimic"],
        "turn-tcp" | "ice-tcp" => &["dtls_mimic"],
        _ => &[],
    }
}

// ---------------------------------------------------------------------------------------------
// Decoy datagrams

/// The name a `dns` decoy asks for (type A, class IN, recursion desired).
const DNS_DECOY_NAME: &str = "yandex.ru";

/// The decoy datagram's bytes for a call: `seed` and `role` make it repeatable per call. The
/// `dns` and `stun` decoys are written by `callwall_wire`'s codecs: a recursive A query
/// ([`dns::Query`]) and a Binding request with FINGERPRINT ([`StunRepr`]).
pub fn decoy_payload(kind: Decoy, seed: u64, role: Role) -> Vec<u8> {
    let mut rng = SplitMix(callwall_units::seed::derive(
        seed,
        callwall_units::seed::Purpose::Decoy,
        crate::role_index(role),
    ));
    match kind {
        Decoy::Random => (0..8).flat_map(|_| rng.next().to_be_bytes()).collect(),
        Decoy::Dns => {
            let name = dns::Name::from_dotted(DNS_DECOY_NAME).expect("a valid name");
            dns::Query::a(rng.next() as u16, name).to_bytes()
        }
        Decoy::Stun => {
            let mut tid = [0u8; 12];
            tid[..8].copy_from_slice(&rng.next().to_be_bytes());
            tid[8..].copy_from_slice(&(rng.next() as u32).to_be_bytes());
            StunRepr { fingerprint: true, ..StunRepr::binding_request(tid) }.to_bytes()
        }
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// How many datagrams per socket the [`WireTap`] keeps.
pub const TAP_DATAGRAMS: usize = 24;

/// What the call's UDP sockets sent: the first [`TAP_DATAGRAMS`] datagrams of each socket (with
/// their destination), and the decoys sent. Shared by every socket of one peer connection.
#[derive(Debug, Default)]
pub struct WireTap {
    first: Mutex<Vec<(SocketAddr, Vec<u8>)>>,
    /// Decoy datagrams sent, and their bytes.
    pub decoys: AtomicU64,
    pub decoy_bytes: AtomicU64,
}

impl WireTap {
    /// The first datagrams sent (decoys included), in order, with their destination.
    pub fn first_datagrams(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn keep(&self, to: SocketAddr, bytes: &[u8], segment: Option<usize>) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        let step = segment.filter(|s| *s > 0).unwrap_or(bytes.len().max(1));
        for chunk in bytes.chunks(step) {
            if first.len() >= TAP_DATAGRAMS {
                return;
            }
            first.push((to, chunk.to_vec()));
        }
    }
}

/// The decoy a call sends, and the destinations it never sends one to (the local TURN
/// adapters, which are not the network).
#[derive(Debug, Clone)]
pub struct DecoyPlan {
    pub payload: Vec<u8>,
    pub skip: Vec<SocketAddr>,
}

/// webrtc-rs's runtime with UDP sockets that send the decoy (if any) to each new destination
/// before the first datagram to it, and report to a [`WireTap`]. Everything else is `inner`.
pub struct DecoyRuntime {
    inner: Arc<dyn Runtime>,
    decoy: Option<DecoyPlan>,
    tap: Arc<WireTap>,
}

impl DecoyRuntime {
    pub fn shared(
        inner: Arc<dyn Runtime>,
        decoy: Option<DecoyPlan>,
        tap: Arc<WireTap>,
    ) -> Arc<dyn Runtime> {
        Arc::new(DecoyRuntime { inner, decoy, tap })
    }
}

impl fmt::Debug for DecoyRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecoyRuntime")
            .field("inner", &self.inner.name())
            .field("decoy", &self.decoy.as_ref().map(|d| d.payload.len()))
            .finish()
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for DecoyRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: BoxFuture<'static, ()>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let inner = self.inner.wrap_udp_socket(socket)?;
        Ok(Arc::new(DecoySocket {
            inner,
            decoy: self.decoy.clone(),
            sent: Mutex::new(HashSet::new()),
            tap: self.tap.clone(),
            tapping: AtomicBool::new(true),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        self.inner.connect_tcp(remote_addr)
    }

    delegate_runtime_basics!();

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// A UDP socket that sends the decoy to each destination before the first datagram to it.
#[derive(Debug)]
struct DecoySocket {
    inner: Arc<dyn AsyncUdpSocket>,
    decoy: Option<DecoyPlan>,
    /// Destinations that got their decoy.
    sent: Mutex<HashSet<SocketAddr>>,
    tap: Arc<WireTap>,
    /// False once this socket's first datagrams are kept (no lock on the hot path after).
    tapping: AtomicBool,
}

impl DecoySocket {
    fn tap(&self, to: SocketAddr, bytes: &[u8], segment: Option<usize>) {
        if !self.tapping.load(Ordering::Relaxed) {
            return;
        }
        self.tap.keep(to, bytes, segment);
        if self.tap.first.lock().unwrap_or_else(|p| p.into_inner()).len() >= TAP_DATAGRAMS {
            self.tapping.store(false, Ordering::Relaxed);
        }
    }
}

impl AsyncUdpSocket for DecoySocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let to = transmit.destination;
        if let Some(plan) = &self.decoy {
            let due = !plan.skip.contains(&to)
                && !self.sent.lock().unwrap_or_else(|p| p.into_inner()).contains(&to);
            if due {
                let decoy = Transmit {
                    destination: to,
                    ecn: None,
                    contents: &plan.payload,
                    segment_size: None,
                    src_ip: transmit.src_ip,
                };
                match self.inner.poll_send(cx, &decoy) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => {
                        tracing::debug!("sending the decoy to {to} failed: {e}");
                    }
                    Poll::Ready(Ok(_)) => {
                        tracing::debug!("decoy ({} bytes) sent to {to}", plan.payload.len());
                        self.tap.decoys.fetch_add(1, Ordering::Relaxed);
                        self.tap
                            .decoy_bytes
                            .fetch_add(plan.payload.len() as u64, Ordering::Relaxed);
                        self.tap(to, &plan.payload, None);
                    }
                }
                self.sent.lock().unwrap_or_else(|p| p.into_inner()).insert(to);
            }
        }
        let r = self.inner.poll_send(cx, transmit);
        if matches!(r, Poll::Ready(Ok(_))) {
            self.tap(to, transmit.contents, transmit.segment_size);
        }
        r
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

// ---------------------------------------------------------------------------------------------
// TLS record splitting and TCP segmentation of the first flight

/// How the TLS client's first flight is shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirstFlightShape {
    /// Largest handshake record plaintext, in bytes (`tls_record`).
    pub record: Option<u16>,
    /// Largest write, hence TCP segment, in bytes (`tcp_segment`).
    pub segment: Option<u16>,
}

impl FirstFlightShape {
    pub fn is_none(&self) -> bool {
        self.record.is_none() && self.segment.is_none()
    }
}

/// What [`FirstFlight`] did, for reports and tests.
#[derive(Debug, Default)]
pub struct ShapeCounters {
    /// Handshake records in (from rustls) and out (after splitting).
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Writes to the socket while shaping, and their bytes.
    pub writes: AtomicU64,
    pub bytes: AtomicU64,
}

/// A stream whose writes are shaped ([`FirstFlightShape`]) until [`FirstFlight::finish`]:
/// TLS handshake records (content type 22) are re-cut into records of at most `record`
/// plaintext bytes (a handshake message may span records, RFC 8446 §5.1, RFC 5246 §6.2.1), and
/// every write to the socket carries at most `segment` bytes. Other records pass unchanged.
/// Reads are never touched. After `finish`, writes go straight through.
pub struct FirstFlight<S> {
    inner: S,
    shape: FirstFlightShape,
    shaping: bool,
    /// Bytes accepted but not yet cut into records (an incomplete record).
    partial: Vec<u8>,
    /// Bytes ready for the socket, and how far they are written.
    out: Vec<u8>,
    written: usize,
    pub counters: Arc<ShapeCounters>,
}

impl<S> FirstFlight<S> {
    pub fn new(inner: S, shape: FirstFlightShape) -> Self {
        FirstFlight {
            inner,
            shape,
            shaping: !shape.is_none(),
            partial: Vec::new(),
            out: Vec::new(),
            written: 0,
            counters: Arc::new(ShapeCounters::default()),
        }
    }

    /// Stops shaping: what is still buffered is written as it is, later writes pass through.
    pub fn finish(&mut self) {
        if self.shaping {
            self.shaping = false;
            let rest = std::mem::take(&mut self.partial);
            self.out.extend_from_slice(&rest);
        }
    }

    /// Cuts every whole record of `partial` into `out`.
    fn cut_records(&mut self) {
        let mut at = 0;
        while self.partial.len() >= at + 5 {
            let len = usize::from(u16::from_be_bytes([self.partial[at + 3], self.partial[at + 4]]));
            if self.partial.len() < at + 5 + len {
                break;
            }
            let rec = &self.partial[at..at + 5 + len];
            match self.shape.record {
                Some(max) if rec[0] == 22 && len > 0 => {
                    self.counters.records_in.fetch_add(1, Ordering::Relaxed);
                    for piece in rec[5..].chunks(usize::from(max.max(1))) {
                        self.out.extend_from_slice(&rec[..3]);
                        self.out.extend_from_slice(&(piece.len() as u16).to_be_bytes());
                        self.out.extend_from_slice(piece);
                        self.counters.records_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => self.out.extend_from_slice(rec),
            }
            at += 5 + len;
        }
        self.partial.drain(..at);
    }
}

impl<S: AsyncWrite + Unpin> FirstFlight<S> {
    /// Writes `out` to the socket, at most `segment` bytes per write.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let end = match self.shape.segment.filter(|_| self.shaping) {
                Some(max) => (self.written + usize::from(max.max(1))).min(self.out.len()),
                None => self.out.len(),
            };
            let n = match Pin::new(&mut self.inner).poll_write(cx, &self.out[self.written..end]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the socket accepted no bytes",
                    )))
                }
                Poll::Ready(Ok(n)) => n,
            };
            if self.shaping {
                self.counters.writes.fetch_add(1, Ordering::Relaxed);
                self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            self.written += n;
        }
        self.out.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstFlight<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstFlight<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Earlier bytes go first.
        if this.poll_drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        if !this.shaping {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        if this.shape.record.is_some() {
            this.partial.extend_from_slice(buf);
            this.cut_records();
        } else {
            this.out.extend_from_slice(buf);
        }
        // Accepted; what the socket does not take now goes on the next write or flush.
        let _ = this.poll_drain(cx)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.poll_drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.finish();
        if this.poll_drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// DTLS ClientHello shaping

/// The cipher suites (in order) and SRTP protection profiles (in order) of a browser's DTLS
/// ClientHello, restricted to what webrtc-rs 0.21's DTLS implements.
///
/// - `chrome`: Chromium's hello (the capture in `crates/wire/testdata/chromium-webrtc.pcap`)
///   offers c02b, c02f, cca9, cca8, c009, c013, c00a, c014, 009c, 002f, 0035 after the three
///   TLS 1.3 suites, and SRTP 0001, 0008, 0007. webrtc-rs has c02b, c02f, cca9, cca8, c00a,
///   c014 of those (in Chrome's order) and all three profiles.
/// - `firefox`: NSS's DTLS suites in Firefox's order (c02b, c02f, cca9, cca8, c02c, c030,
///   c00a, c009, c013, c014, …) have the same six in the same order; Firefox offers SRTP
///   0007, 0008, 0001, 0002. Not checked against a Firefox capture (none is committed).
pub fn dtls_profile(
    name: &str,
) -> Result<(Vec<CipherSuiteId>, Vec<SrtpProtectionProfile>), TransportError> {
    use CipherSuiteId::*;
    use SrtpProtectionProfile::*;
    let suites = vec![
        Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
        Tls_Ecdhe_Rsa_With_Aes_128_Gcm_Sha256,
        Tls_Ecdhe_Ecdsa_With_ChaCha20_Poly1305_Sha256,
        Tls_Ecdhe_Rsa_With_ChaCha20_Poly1305_Sha256,
        Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha,
        Tls_Ecdhe_Rsa_With_Aes_256_Cbc_Sha,
    ];
    match name {
        "chrome" => Ok((
            suites,
            vec![Srtp_Aes128_Cm_Hmac_Sha1_80, Srtp_Aead_Aes_256_Gcm, Srtp_Aead_Aes_128_Gcm],
        )),
        "firefox" => Ok((
            suites,
            vec![
                Srtp_Aead_Aes_128_Gcm,
                Srtp_Aead_Aes_256_Gcm,
                Srtp_Aes128_Cm_Hmac_Sha1_80,
                Srtp_Aes128_Cm_Hmac_Sha1_32,
            ],
        )),
        other => Err(TransportError::Bypass(format!(
            "bypass.dtls_mimic = {other:?}: use \"chrome\" or \"firefox\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn decoys_are_well_formed_and_repeat_per_seed() {
        let stun = decoy_payload(Decoy::Stun, 7, Role::Caller);
        assert_eq!(stun.len(), 28);
        let m = callwall_wire::stun::parse_datagram(&stun).expect("a stun message");
        assert_eq!((m.class, m.method), (callwall_wire::stun::StunClass::Request, 1));
        assert!(m.fingerprint().is_some_and(|f| f.is_valid()), "a valid fingerprint");
        let d = decoy_payload(Decoy::Dns, 7, Role::Caller);
        let q = dns::Query::parse(&d).expect("a dns query");
        assert_eq!(q.name.to_string(), DNS_DECOY_NAME);
        let r = decoy_payload(Decoy::Random, 7, Role::Caller);
        assert_eq!(r.len(), 64);
        assert_eq!(r, decoy_payload(Decoy::Random, 7, Role::Caller));
        assert_ne!(r, decoy_payload(Decoy::Random, 8, Role::Caller));
        assert_ne!(r, decoy_payload(Decoy::Random, 7, Role::Callee));
    }

    /// Today's bytes on the wire, pinned: each decoy kind for a few seeds and both roles (the
    /// generator seeded by `callwall_units::seed::derive(seed, Purpose::Decoy, role)`).
    #[test]
    fn decoy_bytes_are_pinned() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut got = Vec::new();
        for seed in [0u64, 7, 42] {
            for role in [Role::Caller, Role::Callee] {
                for kind in [Decoy::Random, Decoy::Dns, Decoy::Stun] {
                    let d = decoy_payload(kind, seed, role);
                    got.push(format!("{seed} {role:?} {kind:?} {}", hex(&d)));
                }
            }
        }
        let want: &[&str] = &[
            "0 Caller Random 45676688dff741b0f9bb53793ff0344782153e3a44d662ae9aed78f4cf8e0956d882e7858fd1e9c65544aa8861c007545e85f04a307d57109a1d29661e83a418",
            "0 Caller Dns 41b0010000010000000000000679616e6465780272750000010001",
            "0 Caller Stun 000100082112a44245676688dff741b03ff034478028000486c86114",
            "0 Callee Random 6f0c708446ef9791efb74a12a1ff6c7a33644c720bee928950492c06f55c61d6606a5f76e849be03edcecf6f9c27125ffa36a2260b01cda5f590d04bed6fdc73",
            "0 Callee Dns 9791010000010000000000000679616e6465780272750000010001",
            "0 Callee Stun 000100082112a4426f0c708446ef9791a1ff6c7a80280004eb4e8f58",
            "7 Caller Random 84b4be97f5e9028b64ab80d8b630037881a10a62df94c0484b27d68ff7d90e08cbabb1acfab1a09d2808c8db72a5fa06618a1b144b512c1d89e730d38cc7a3b9",
            "7 Caller Dns 028b010000010000000000000679616e6465780272750000010001",
            "7 Caller Stun 000100082112a44284b4be97f5e9028bb630037880280004c33eb36c",
            "7 Callee Random 56e6d5d1eb88a2b3815cf6600928a6b9c628b037051ae19483d6606641e383ccdbbef50a1d948e5a75174887f944ccf1d4fc9e3574075cddc03ccb359362783a",
            "7 Callee Dns a2b3010000010000000000000679616e6465780272750000010001",
            "7 Callee Stun 000100082112a44256e6d5d1eb88a2b30928a6b980280004736e699f",
            "42 Caller Random fa15297596d588207bc7435be29b8d78c61a779f90101d3c786601c515fcfd970a0acab10e3ec30ca2547cd3135afa404f82574adc33ab78b53b0c0ac389e1ad",
            "42 Caller Dns 8820010000010000000000000679616e6465780272750000010001",
            "42 Caller Stun 000100082112a442fa15297596d58820e29b8d7880280004b438d005",
            "42 Callee Random c1fb4364e9f750a4d0b42fba9bc6ea74f10de84333ca2a0479a1e9ae816576283e38f8384a5ecaa9c4ea92d0d38c3fb6bd6b4d0f1c71ebf407ac3816d0c17659",
            "42 Callee Dns 50a4010000010000000000000679616e6465780272750000010001",
            "42 Callee Stun 000100082112a442c1fb4364e9f750a49bc6ea74802800041fbec802",
        ];
        assert_eq!(got, want);
    }

    /// The decoy is the first datagram the remote gets, once per destination, and the real
    /// datagram follows unchanged.
    #[tokio::test]
    async fn the_decoy_goes_first_to_each_destination() {
        let a = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let b = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let tap = Arc::new(WireTap::default());
        let plan =
            DecoyPlan { payload: decoy_payload(Decoy::Random, 1, Role::Caller), skip: vec![] };
        let rt = DecoyRuntime::shared(
            Arc::new(webrtc::runtime::TokioRuntime),
            Some(plan.clone()),
            tap.clone(),
        );
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let from = std_sock.local_addr().expect("addr");
        let sock = rt.wrap_udp_socket(std_sock).expect("wrap");
        for dest in [a.local_addr().unwrap(), b.local_addr().unwrap()] {
            sock.send_to(b"check-1", dest).await.expect("send");
            sock.send_to(b"check-2", dest).await.expect("send");
        }
        for l in [&a, &b] {
            let mut buf = [0u8; 128];
            let mut got = Vec::new();
            for _ in 0..3 {
                let (n, src) = l.recv_from(&mut buf).await.expect("recv");
                assert_eq!(src, from, "the decoy leaves from the call's own socket");
                got.push(buf[..n].to_vec());
            }
            assert_eq!(got, vec![plan.payload.clone(), b"check-1".to_vec(), b"check-2".to_vec()]);
        }
        assert_eq!(tap.decoys.load(Ordering::Relaxed), 2);
        assert_eq!(tap.first_datagrams().len(), 6);
    }

    /// A ClientHello-like handshake record of `len` bytes of body.
    fn handshake_record(len: usize) -> Vec<u8> {
        let mut r = vec![22, 3, 1];
        r.extend_from_slice(&(len as u16).to_be_bytes());
        r.extend((0..len).map(|i| i as u8));
        r
    }

    #[tokio::test]
    async fn handshake_records_are_split_and_other_records_pass() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let mut s = FirstFlight::new(client, FirstFlightShape { record: Some(40), segment: None });
        let hello = handshake_record(100);
        // rustls may hand over a record in pieces: split across two writes.
        s.write_all(&hello[..7]).await.unwrap();
        s.write_all(&hello[7..]).await.unwrap();
        s.write_all(&[23, 3, 3, 0, 2, 0xaa, 0xbb]).await.unwrap();
        s.flush().await.unwrap();
        s.finish();
        s.write_all(&handshake_record(100)).await.unwrap();
        s.flush().await.unwrap();
        drop(s);
        let mut wire = Vec::new();
        server.read_to_end(&mut wire).await.unwrap();
        let mut lens = Vec::new();
        let mut body = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let len = usize::from(u16::from_be_bytes([wire[at + 3], wire[at + 4]]));
            lens.push((wire[at], len));
            if wire[at] == 22 && lens.len() <= 3 {
                body.extend_from_slice(&wire[at + 5..at + 5 + len]);
            }
            at += 5 + len;
        }
        assert_eq!(lens, vec![(22, 40), (22, 40), (22, 20), (23, 2), (22, 100)]);
        assert_eq!(body, hello[5..], "the records carry the hello unchanged");
    }

    /// Each write reaching the socket carries at most N bytes while shaping.
    #[tokio::test]
    async fn writes_are_cut_to_the_segment_size() {
        struct Recorder(Vec<usize>);
        impl AsyncWrite for Recorder {
            fn poll_write(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.0.push(buf.len());
                Poll::Ready(Ok(buf.len()))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        let mut s = FirstFlight::new(
            Recorder(Vec::new()),
            FirstFlightShape { record: None, segment: Some(50) },
        );
        s.write_all(&handshake_record(200)).await.unwrap();
        s.finish();
        s.write_all(&[0u8; 300]).await.unwrap();
        assert_eq!(s.inner.0, vec![50, 50, 50, 50, 5, 300]);
        assert_eq!(s.counters.writes.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn keys_a_strategy_does_not_honour_are_refused() {
        use callwall_transport::bypass::Bypass;
        use callwall_transport::check_bypass;
        let t = crate::WebrtcTransport::new();
        let decoy = Bypass { decoy: Some(Decoy::Random), ..Default::default() };
        for s in ["direct", "turn-udp", "ice"] {
            check_bypass(&t, s, &decoy).unwrap();
        }
        let e = check_bypass(&t, "turn-tls", &decoy).unwrap_err().to_string();
        assert!(e.contains("bypass.decoy") && e.contains("tls_record, tcp_segment"), "{e}");
        let record = Bypass { tls_record: Some(40), tcp_segment: Some(60), ..Default::default() };
        check_bypass(&t, "turn-tls", &record).unwrap();
        assert!(check_bypass(&t, "direct", &record).is_err());
        let mimic = Bypass { dtls_mimic: Some("chrome".into()), ..Default::default() };
        for s in crate::STRATEGIES {
            check_bypass(&t, s, &mimic).unwrap();
        }
    }

    #[test]
    fn dtls_profiles_are_named() {
        assert!(dtls_profile("chrome").is_ok());
        assert!(dtls_profile("firefox").is_ok());
        let e = dtls_profile("safari").unwrap_err().to_string();
        assert!(e.contains("chrome"), "{e}");
    }
}
