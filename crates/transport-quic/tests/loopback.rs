//! Calls over loopback (127.0.0.1 only): both peers, the signal server and, where a test needs
//! to see the wire, a UDP proxy between caller and callee all run in this process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callwall_transport::signal::{self, Client};
use callwall_transport::{
    CallContext, MediaLink, Role, StrategyOptions, TransportError, VoiceTransport,
};
use callwall_transport_quic::{offer_key, Offer, QuicGuard, QuicTransport};
use tokio::net::{TcpListener, UdpSocket};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const FRAMES: usize = 50;

async fn signal_server() -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, tokio::spawn(signal::serve(listener)))
}

fn ctx(
    call_id: &str,
    role: Role,
    signal: SocketAddr,
    options: StrategyOptions,
    timeout: Duration,
) -> CallContext {
    CallContext {
        call_id: call_id.to_string(),
        role,
        local_ip: LOOPBACK,
        signal,
        relay: None,
        options,
        connect_timeout: timeout,
        seed: 42,
    }
}

/// A UDP port that was free a moment ago.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind((LOOPBACK, 0)).unwrap().local_addr().unwrap().port()
}

/// Answers and dials concurrently; returns (caller, callee).
async fn call(call_id: &str, strategy: &str, options: StrategyOptions) -> (MediaLink, MediaLink) {
    let (signal, _server) = signal_server().await;
    let t = QuicTransport;
    let timeout = Duration::from_secs(5);
    let callee = ctx(call_id, Role::Callee, signal, options.clone(), timeout);
    let caller = ctx(call_id, Role::Caller, signal, options, timeout);
    let (a, d) = tokio::join!(t.answer(&callee, strategy), t.dial(&caller, strategy));
    (d.expect("dial"), a.expect("answer"))
}

fn guard(link: &MediaLink) -> &QuicGuard {
    link.guard.downcast_ref::<QuicGuard>().expect("the guard is a QuicGuard")
}

/// A voice-sized frame: tag, index, then filler that differs per frame.
fn frame(tag: u8, i: usize) -> Vec<u8> {
    let mut f = vec![tag, i as u8];
    f.extend((0..78 + i).map(|j| (j * 31 + i * 7) as u8 ^ tag));
    f
}

/// Sends FRAMES each way and checks both sides received exactly what the other sent.
async fn exchange(caller: &mut MediaLink, callee: &mut MediaLink) {
    let sent_up: Vec<Vec<u8>> = (0..FRAMES).map(|i| frame(0xca, i)).collect();
    let sent_down: Vec<Vec<u8>> = (0..FRAMES).map(|i| frame(0xce, i)).collect();
    for (up, down) in sent_up.iter().zip(&sent_down) {
        caller.tx.send(up.clone()).await.unwrap();
        callee.tx.send(down.clone()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut got_down = receive(caller).await;
    let mut got_up = receive(callee).await;
    got_up.sort();
    got_down.sort();
    let (mut want_up, mut want_down) = (sent_up, sent_down);
    want_up.sort();
    want_down.sort();
    assert_eq!(got_up, want_up, "caller -> callee frames");
    assert_eq!(got_down, want_down, "callee -> caller frames");
}

async fn receive(link: &mut MediaLink) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < FRAMES {
        match tokio::time::timeout(Duration::from_secs(3), link.rx.recv()).await {
            Ok(Some(f)) => got.push(f),
            Ok(None) => panic!("link closed after {} frames", got.len()),
            Err(_) => panic!("only {} of {FRAMES} frames arrived", got.len()),
        }
    }
    got
}

#[tokio::test]
async fn quic_honours_sni_alpn_and_port_options() {
    let port = free_udp_port();
    let options = StrategyOptions {
        sni: Some("voice.example.org".into()),
        alpn: Some("x-voice/2".into()),
        port: Some(port),
        printable_prefix: None,
        ..Default::default()
    };
    let (mut caller, mut callee) = call("opts", "quic", options).await;
    let seen = guard(&callee).handshake().clone();
    assert_eq!(seen.server_name.as_deref(), Some("voice.example.org"));
    assert_eq!(seen.alpn.as_deref(), Some("x-voice/2"));
    assert_eq!(seen.local, SocketAddr::new(LOOPBACK, port));
    let dialled = guard(&caller).handshake().clone();
    assert_eq!(dialled.remote, SocketAddr::new(LOOPBACK, port));
    assert_eq!(dialled.alpn.as_deref(), Some("x-voice/2"));
    assert_eq!(dialled.local.ip(), LOOPBACK);
    assert!(caller.path.contains("quic quic"), "{}", caller.path);
    exchange(&mut caller, &mut callee).await;
}

#[tokio::test]
async fn quic_defaults_with_ephemeral_port() {
    let options = StrategyOptions { port: Some(0), ..Default::default() };
    let (mut caller, mut callee) = call("defaults", "quic", options).await;
    let seen = guard(&callee).handshake().clone();
    assert_eq!(seen.server_name.as_deref(), Some("callee.callwall.test"));
    assert_eq!(seen.alpn.as_deref(), Some("callwall-voice"));
    assert_eq!(seen.split, None);
    exchange(&mut caller, &mut callee).await;
}

/// `quic-443` on its default port. Binding UDP 443 needs root (or CAP_NET_BIND_SERVICE), as
/// the whole suite does; without it the test fails and says so rather than skipping.
#[tokio::test]
async fn quic_443_on_port_443_looks_like_http3() {
    if let Err(e) = std::net::UdpSocket::bind((LOOPBACK, 443)) {
        panic!("cannot bind udp 127.0.0.1:443 ({e}): run the tests as root or grant CAP_NET_BIND_SERVICE");
    }
    let (mut caller, mut callee) = call("h3", "quic-443", StrategyOptions::default()).await;
    let seen = guard(&callee).handshake().clone();
    assert_eq!(seen.server_name.as_deref(), Some("www.example.com"));
    assert_eq!(seen.alpn.as_deref(), Some("h3"));
    assert_eq!(seen.local.port(), 443);
    exchange(&mut caller, &mut callee).await;
}

/// What the proxy saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A datagram from the client: its length and first byte.
    Client(usize, u8),
    /// A datagram from the server.
    Server,
}

/// A UDP proxy on loopback: the client talks to its address, it forwards to `upstream` and back.
/// Setting `cut` makes it drop everything from then on, like a censor cutting the flow.
async fn proxy(
    upstream: SocketAddr,
    cut: Arc<AtomicBool>,
) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>, tokio::task::JoinHandle<()>) {
    let front = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let back = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    back.connect(upstream).await.unwrap();
    let addr = front.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    let task = tokio::spawn(async move {
        let mut client = None;
        let mut a = [0u8; 2048];
        let mut b = [0u8; 2048];
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { return };
                    if cut.load(Ordering::Relaxed) {
                        continue;
                    }
                    client = Some(from);
                    log2.lock().unwrap().push(Seen::Client(n, a[0]));
                    let _ = back.send(&a[..n]).await;
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { return };
                    if cut.load(Ordering::Relaxed) {
                        continue;
                    }
                    log2.lock().unwrap().push(Seen::Server);
                    if let Some(c) = client {
                        let _ = front.send_to(&b[..n], c).await;
                    }
                }
            }
        }
    });
    (addr, log, task)
}

/// Places a call whose caller goes through [`proxy`]; returns the links and what the proxy saw.
async fn call_through_proxy(
    call_id: &str,
    strategy: &'static str,
    cut: Arc<AtomicBool>,
) -> (MediaLink, MediaLink, Vec<Seen>) {
    let (signal, _server) = signal_server().await;
    let t = QuicTransport;
    let timeout = Duration::from_secs(5);
    let options = StrategyOptions { port: Some(0), ..Default::default() };
    let callee_ctx = ctx(call_id, Role::Callee, signal, options.clone(), timeout);
    let caller_ctx = ctx(call_id, Role::Caller, signal, options, timeout);
    let answering = tokio::spawn(async move { QuicTransport.answer(&callee_ctx, strategy).await });

    // Take the callee's offer and point it at the proxy before the caller reads it.
    let mut c = Client::connect(signal, timeout).await.unwrap();
    let key = offer_key(call_id);
    let mut offer: Offer = serde_json::from_str(&c.get(&key, timeout).await.unwrap()).unwrap();
    let (proxy_addr, log, proxy_task) = proxy(SocketAddr::new(offer.addr, offer.port), cut).await;
    offer.port = proxy_addr.port();
    c.put(&key, &serde_json::to_string(&offer).unwrap()).await.unwrap();

    let caller = t.dial(&caller_ctx, strategy).await.expect("dial");
    let callee = answering.await.unwrap().expect("answer");
    let seen = log.lock().unwrap().clone();
    drop(proxy_task); // detached: it keeps forwarding for the media exchange
    (caller, callee, seen)
}

/// Client datagrams before the server's first answer, as (length, first byte).
fn before_server_answer(seen: &[Seen]) -> Vec<(usize, u8)> {
    seen.iter()
        .take_while(|s| **s != Seen::Server)
        .map(|s| match s {
            Seen::Client(n, b) => (*n, *b),
            Seen::Server => unreachable!(),
        })
        .collect()
}

/// RFC 9000 section 17.2: long header form bit and fixed bit set, type 0b00 (Initial, v1),
/// bits not covered by header protection (RFC 9001 section 5.4.1).
fn is_initial(first_byte: u8) -> bool {
    first_byte & 0xf0 == 0xc0
}

#[tokio::test]
async fn quic_split_spans_two_initials_before_the_server_answers() {
    let (mut caller, mut callee, seen) =
        call_through_proxy("split", "quic-split", Arc::default()).await;
    let first = before_server_answer(&seen);
    eprintln!("client datagrams before the server answered: {first:?}");
    assert!(first.len() >= 2, "client sent {first:?} before the server answered");
    for (n, b) in &first {
        assert!(is_initial(*b), "datagram first byte {b:#04x} is not an Initial: {first:?}");
        assert!(*n >= 1200, "Initial datagram of {n} bytes (RFC 9000 section 14.1 wants >= 1200)");
    }
    let h = guard(&callee).handshake().clone();
    assert_eq!(h.server_name.as_deref(), Some("www.example.com"));
    assert_eq!(
        h.alpn.as_deref(),
        Some("h3"),
        "the server must pick the real protocol, not padding"
    );
    assert_eq!(guard(&caller).handshake().split, Some(2));
    exchange(&mut caller, &mut callee).await;
}

/// The control for the split test: without padding, one Initial carries the whole ClientHello.
#[tokio::test]
async fn quic_443_sends_one_initial_before_the_server_answers() {
    let (mut caller, mut callee, seen) =
        call_through_proxy("single", "quic-443", Arc::default()).await;
    let first = before_server_answer(&seen);
    eprintln!("client datagrams before the server answered: {first:?}");
    assert_eq!(first.len(), 1, "client sent {first:?} before the server answered");
    assert!(is_initial(first[0].1) && first[0].0 >= 1200, "{first:?}");
    exchange(&mut caller, &mut callee).await;
}

#[tokio::test]
async fn caller_times_out_when_the_callee_never_answers() {
    let (signal, _server) = signal_server().await;
    let timeout = Duration::from_millis(800);
    let caller = ctx("silent", Role::Caller, signal, StrategyOptions::default(), timeout);
    let start = Instant::now();
    let err = QuicTransport.dial(&caller, "quic").await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, TransportError::Timeout(..)), "{err}");
    assert!(took < timeout + Duration::from_millis(500), "took {took:?}");
}

/// The offer arrives but every packet to the callee vanishes (a censor dropping Initials).
#[tokio::test]
async fn caller_times_out_when_initials_are_dropped() {
    let (signal, _server) = signal_server().await;
    let hole = UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let offer = Offer {
        addr: LOOPBACK,
        port: hole.local_addr().unwrap().port(),
        cert_sha256: "11".repeat(32),
        sni: "www.example.com".into(),
        alpn: "h3".into(),
    };
    let mut c = Client::connect(signal, Duration::from_secs(2)).await.unwrap();
    c.put(&offer_key("hole"), &serde_json::to_string(&offer).unwrap()).await.unwrap();
    let timeout = Duration::from_millis(1500);
    let caller = ctx("hole", Role::Caller, signal, StrategyOptions::default(), timeout);
    let start = Instant::now();
    let err = QuicTransport.dial(&caller, "quic-split").await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, TransportError::Timeout(..)), "{err}");
    assert!(took < timeout + Duration::from_millis(500), "took {took:?}");
}

#[tokio::test]
async fn callee_times_out_when_no_caller_comes() {
    let (signal, _server) = signal_server().await;
    let timeout = Duration::from_millis(800);
    let options = StrategyOptions { port: Some(0), ..Default::default() };
    let callee = ctx("alone", Role::Callee, signal, options, timeout);
    let start = Instant::now();
    let err = QuicTransport.answer(&callee, "quic").await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout(..)), "{err}");
    assert!(start.elapsed() < timeout + Duration::from_millis(500));
}

/// A certificate other than the published one fails the handshake (pinning), fast.
#[tokio::test]
async fn caller_rejects_a_certificate_it_was_not_given() {
    let (signal, _server) = signal_server().await;
    let timeout = Duration::from_secs(5);
    let options = StrategyOptions { port: Some(0), ..Default::default() };
    let callee_ctx = ctx("pin", Role::Callee, signal, options.clone(), timeout);
    let answering = tokio::spawn(async move { QuicTransport.answer(&callee_ctx, "quic").await });
    let mut c = Client::connect(signal, timeout).await.unwrap();
    let key = offer_key("pin");
    let mut offer: Offer = serde_json::from_str(&c.get(&key, timeout).await.unwrap()).unwrap();
    offer.cert_sha256 = "ab".repeat(32);
    c.put(&key, &serde_json::to_string(&offer).unwrap()).await.unwrap();
    let caller = ctx("pin", Role::Caller, signal, options, timeout);
    let start = Instant::now();
    let err = QuicTransport.dial(&caller, "quic").await.unwrap_err();
    assert!(matches!(err, TransportError::Handshake(_)), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    answering.abort();
}

#[tokio::test]
async fn dropping_a_link_ends_the_peers_rx() {
    let options = StrategyOptions { port: Some(0), ..Default::default() };
    let (caller, mut callee) = call("hangup", "quic", options).await;
    drop(caller);
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while callee.rx.recv().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the callee's rx did not end after the caller hung up");
}

/// A censor that silently drops the flow mid-call: both links' rx end once the idle timeout
/// runs out, without either side hanging up.
#[tokio::test]
async fn a_cut_path_ends_both_links_after_the_idle_timeout() {
    let cut = Arc::new(AtomicBool::new(false));
    let (mut caller, mut callee, _) = call_through_proxy("cut", "quic", cut.clone()).await;
    exchange(&mut caller, &mut callee).await;
    cut.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let limit = callwall_transport_quic::IDLE_TIMEOUT + Duration::from_secs(3);
    for link in [&mut caller, &mut callee] {
        let ended = tokio::time::timeout(limit, async { while link.rx.recv().await.is_some() {} });
        assert!(ended.await.is_ok(), "rx still open {:?} after the cut", start.elapsed());
    }
    assert!(start.elapsed() >= Duration::from_secs(2), "ended too soon: {:?}", start.elapsed());
}

#[tokio::test]
async fn unknown_strategy_is_refused() {
    let (signal, _server) = signal_server().await;
    let caller = ctx("x", Role::Caller, signal, StrategyOptions::default(), Duration::from_secs(1));
    let err = QuicTransport.dial(&caller, "quic-v2").await.unwrap_err();
    assert!(matches!(err, TransportError::UnknownStrategy { .. }), "{err}");
}
