//! Loopback tests: real sockets on 127.0.0.1, a real signal server, both peers in one process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use callwall_transport::peer::{run_peer, PeerSpec};
use callwall_transport::voice::{unix_ns_now, VoiceModel};
use callwall_transport::{
    analyze, signal, CallContext, Role, StrategyOptions, Thresholds, Verdict, VoiceTransport,
};
use callwall_transport_noise::wire::{WG_INIT_LEN, WG_RESPONSE_LEN};
use callwall_transport_noise::NoiseTransport;
use tokio::net::{TcpListener, UdpSocket};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn signal_server() -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (addr, tokio::spawn(signal::serve(l)))
}

fn ctx(call_id: &str, role: Role, signal: SocketAddr, options: StrategyOptions) -> CallContext {
    CallContext {
        call_id: call_id.into(),
        role,
        local_ip: LO,
        signal,
        relay: None,
        options,
        connect_timeout: Duration::from_millis(1500),
        seed: 42,
    }
}

/// Port 0: tests run in parallel, so never the default ports.
fn any_port() -> StrategyOptions {
    StrategyOptions { port: Some(0), ..Default::default() }
}

async fn exchange(strategy: &str, options: StrategyOptions) {
    let (sig, server) = signal_server().await;
    let t = NoiseTransport::new();
    let call = format!("ex-{strategy}");
    let callee_ctx = ctx(&call, Role::Callee, sig, options.clone());
    let caller_ctx = ctx(&call, Role::Caller, sig, options);
    let (a, b) = tokio::join!(t.dial(&caller_ctx, strategy), t.answer(&callee_ctx, strategy));
    let mut a = a.unwrap_or_else(|e| panic!("{strategy} dial: {e}"));
    let mut b = b.unwrap_or_else(|e| panic!("{strategy} answer: {e}"));
    assert!(a.path.contains(strategy), "{}", a.path);
    for i in 0..20u8 {
        let up: Vec<u8> = (0..80).map(|j| i ^ j).collect();
        a.tx.send(up.clone()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), b.rx.recv()).await.unwrap();
        assert_eq!(got.as_deref(), Some(&up[..]), "{strategy} up {i}");
        let down: Vec<u8> = vec![i; 1 + i as usize * 10];
        b.tx.send(down.clone()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), a.rx.recv()).await.unwrap();
        assert_eq!(got.as_deref(), Some(&down[..]), "{strategy} down {i}");
    }
    // Dropping one side's link ends its tasks: the other side's sends go nowhere, no panic.
    drop(a);
    b.tx.send(vec![1; 80]).await.unwrap();
    server.abort();
}

#[tokio::test]
async fn udp_exchanges_frames() {
    exchange("udp", any_port()).await;
}

#[tokio::test]
async fn udp_wg_exchanges_frames() {
    exchange("udp-wg", any_port()).await;
}

#[tokio::test]
async fn udp_obfs_exchanges_frames() {
    exchange("udp-obfs", any_port()).await;
}

#[tokio::test]
async fn tcp_443_exchanges_frames() {
    exchange("tcp-443", any_port()).await;
}

#[tokio::test]
async fn tcp_443_with_printable_prefix() {
    let options = StrategyOptions {
        port: Some(0),
        printable_prefix: Some("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".into()),
        ..Default::default()
    };
    exchange("tcp-443", options).await;
}

#[tokio::test]
async fn link_tasks_end_when_dropped() {
    let (sig, server) = signal_server().await;
    let t = NoiseTransport::new();
    let callee_ctx = ctx("drop", Role::Callee, sig, any_port());
    let caller_ctx = ctx("drop", Role::Caller, sig, any_port());
    let (a, b) = tokio::join!(t.dial(&caller_ctx, "udp"), t.answer(&callee_ctx, "udp"));
    let (a, mut b) = (a.unwrap(), b.unwrap());
    let tx = a.tx.clone();
    drop(a);
    // The caller's pump is gone: its channel closes soon.
    tokio::time::timeout(Duration::from_secs(1), tx.closed()).await.expect("task did not end");
    // The callee's side keeps running until its own link is dropped.
    assert!(tokio::time::timeout(Duration::from_millis(100), b.rx.recv()).await.is_err());
    server.abort();
}

/// A fake callee that publishes its details but is a plain UDP socket: the test sees what the
/// caller puts on the wire, like a censor would.
#[tokio::test]
async fn udp_wg_wire_sizes() {
    let (sig, server) = signal_server().await;
    let t = NoiseTransport::new();
    // A real answer in the background to learn the responder's sizes too.
    let callee_ctx = ctx("wg-size", Role::Callee, sig, any_port());
    let answer = {
        let t = t.clone();
        tokio::spawn(async move { t.answer(&callee_ctx, "udp-wg").await.map(|_| ()) })
    };
    // Read the published details and talk to the callee from a raw socket.
    let mut c = signal::Client::connect(sig, Duration::from_secs(2)).await.unwrap();
    let raw = c.get("wg-size/callee", Duration::from_secs(2)).await.unwrap();
    let info: callwall_transport_noise::CalleeInfo = serde_json::from_str(&raw).unwrap();

    // A spy socket: publish it as the callee of another call, and let a caller dial it.
    let spy = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let spy_port = spy.local_addr().unwrap().port();
    let spied = serde_json::json!({"pubkey": info.pubkey, "addr": "127.0.0.1", "port": spy_port});
    c.put("wg-spy/callee", &spied.to_string()).await.unwrap();
    let caller_ctx = ctx("wg-spy", Role::Caller, sig, any_port());
    let dial = {
        let t = t.clone();
        tokio::spawn(async move { t.dial(&caller_ctx, "udp-wg").await.map(|_| ()) })
    };
    let mut buf = [0u8; 2048];
    let (n, from) = spy.recv_from(&mut buf).await.unwrap();
    assert_eq!(n, WG_INIT_LEN, "initiation must be exactly 148 bytes");
    assert_eq!(&buf[..4], &[1, 0, 0, 0]);
    // Forward it to the real callee and capture the response.
    let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    relay.send_to(&buf[..n], ("127.0.0.1", info.port)).await.unwrap();
    let (m, _) = relay.recv_from(&mut buf).await.unwrap();
    assert_eq!(m, WG_RESPONSE_LEN, "response must be exactly 92 bytes");
    assert_eq!(&buf[..4], &[2, 0, 0, 0]);
    // Hand the response to the caller: it completes the handshake.
    spy.send_to(&buf[..m], from).await.unwrap();
    dial.await.unwrap().unwrap();
    answer.await.unwrap().unwrap();
    server.abort();
}

fn spec(
    call: &str,
    role: Role,
    sig: SocketAddr,
    strategies: &[&str],
    start: u64,
    ms: u64,
) -> PeerSpec {
    PeerSpec {
        transport: "noise".into(),
        strategies: strategies.iter().map(|s| s.to_string()).collect(),
        ctx: ctx(call, role, sig, any_port()),
        start_at_unix_ns: start,
        duration: Duration::from_millis(ms),
        voice: VoiceModel::default(),
        audio: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_peer_call_is_connected() {
    let (sig, server) = signal_server().await;
    let t = NoiseTransport::new();
    let start = unix_ns_now() + 100_000_000;
    let a = spec("call-ok", Role::Caller, sig, &["udp"], start, 2000);
    let b = spec("call-ok", Role::Callee, sig, &["udp"], start, 2000);
    let ts: [&dyn VoiceTransport; 1] = [&t];
    let (ra, rb) = tokio::join!(run_peer(&a, &ts), run_peer(&b, &ts));
    assert_eq!(ra.error, None);
    assert_eq!(rb.error, None);
    assert!(ra.frames_sent >= 95, "{}", ra.frames_sent);
    let m = analyze(&ra, &rb, &Thresholds::default());
    assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
    assert!(m.loss_pct < 1.0, "{}", m.loss_pct);
    assert_eq!(m.strategy.as_deref(), Some("udp"));
    assert!(m.mos > 4.0);
    assert!(m.setup_ms.is_some());
    server.abort();
}

#[tokio::test]
async fn nothing_answers_is_blocked() {
    let (sig, server) = signal_server().await;
    let t = NoiseTransport::new();
    let start = unix_ns_now();
    let mut a = spec("call-none", Role::Caller, sig, &["udp", "tcp-443"], start, 1000);
    a.ctx.connect_timeout = Duration::from_millis(500);
    let ts: [&dyn VoiceTransport; 1] = [&t];
    let ra = run_peer(&a, &ts).await;
    assert_eq!(ra.error, None);
    assert!(ra.arrivals.is_empty());
    assert_eq!(ra.attempts.len(), 2);
    assert!(ra.attempts.iter().all(|x| !x.ok && x.error.is_some()));
    let callee = callwall_transport::PeerReport::new(Role::Callee, "noise");
    let m = analyze(&ra, &callee, &Thresholds::default());
    assert_eq!(m.verdict, Verdict::Blocked, "{}", m.reason);
    let callwall_transport::Cause::NoMedia { attempts } = &m.reason else { panic!("{}", m.reason) };
    assert!(attempts.contains("udp failed"), "{attempts}");
    server.abort();
}

/// The caller's UDP goes to a dead port (as if a censor dropped it): it falls back to TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_from_udp_to_tcp() {
    let (sig, server) = signal_server().await;
    let dead = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let caller_t = NoiseTransport::with_caller_udp_port_override(dead_port);
    let callee_t = NoiseTransport::new();
    let start = unix_ns_now() + 50_000_000;
    let mut a = spec("call-fb", Role::Caller, sig, &["udp", "tcp-443"], start, 1000);
    let mut b = spec("call-fb", Role::Callee, sig, &["udp", "tcp-443"], start, 1000);
    a.ctx.connect_timeout = Duration::from_millis(1000);
    b.ctx.connect_timeout = Duration::from_millis(1000);
    let (ta, tb): ([&dyn VoiceTransport; 1], [&dyn VoiceTransport; 1]) = ([&caller_t], [&callee_t]);
    let (ra, rb) = tokio::join!(run_peer(&a, &ta), run_peer(&b, &tb));
    assert_eq!(ra.attempts.len(), 2, "{:?}", ra.attempts);
    assert!(!ra.attempts[0].ok);
    assert!(ra.attempts[1].ok);
    assert_eq!(ra.strategy.as_deref(), Some("tcp-443"));
    assert_eq!(rb.strategy.as_deref(), Some("tcp-443"));
    let m = analyze(&ra, &rb, &Thresholds::default());
    assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
    assert_eq!(m.attempts, 2);
    server.abort();
}

/// An unknown first strategy fails at once and the call goes on with the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_strategy_falls_through() {
    let (sig, server) = signal_server().await;
    let t = NoiseTransport::new();
    let start = unix_ns_now() + 50_000_000;
    let a = spec("call-bad", Role::Caller, sig, &["udp-nope", "udp-obfs"], start, 800);
    let b = spec("call-bad", Role::Callee, sig, &["udp-nope", "udp-obfs"], start, 800);
    let ts: [&dyn VoiceTransport; 1] = [&t];
    let (ra, rb) = tokio::join!(run_peer(&a, &ts), run_peer(&b, &ts));
    assert!(
        ra.attempts[0].error.as_deref().unwrap_or("").contains("not offered"),
        "{:?}",
        ra.attempts
    );
    assert_eq!(ra.strategy.as_deref(), Some("udp-obfs"));
    let m = analyze(&ra, &rb, &Thresholds::default());
    assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
    server.abort();
}

/// What the first TCP segment looks like with a printable prefix: it starts with the prefix,
/// then the 2-byte length of message 1.
#[tokio::test]
async fn tcp_prefix_is_first_on_the_wire() {
    use tokio::io::AsyncReadExt;
    let (sig, server) = signal_server().await;
    let spy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = spy.local_addr().unwrap().port();
    let (_, public) = callwall_transport_noise::session::keypair().unwrap();
    let hex: String = public.iter().map(|b| format!("{b:02x}")).collect();
    let mut c = signal::Client::connect(sig, Duration::from_secs(2)).await.unwrap();
    let info = serde_json::json!({"pubkey": hex, "addr": "127.0.0.1", "port": port});
    c.put("tcp-spy/callee", &info.to_string()).await.unwrap();
    let prefix = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let options = StrategyOptions { printable_prefix: Some(prefix.into()), ..Default::default() };
    let mut caller_ctx = ctx("tcp-spy", Role::Caller, sig, options);
    caller_ctx.connect_timeout = Duration::from_millis(500);
    let t = NoiseTransport::new();
    let dial = tokio::spawn(async move { t.dial(&caller_ctx, "tcp-443").await.map(|_| ()) });
    let (mut s, _) = spy.accept().await.unwrap();
    let mut buf = vec![0u8; prefix.len() + 2 + 113];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf[..prefix.len()], prefix.as_bytes());
    assert_eq!(&buf[prefix.len()..prefix.len() + 3], &[0, 113, 1], "length, then kind 1");
    // The spy never answers: the dial times out with an error, not a hang.
    assert!(dial.await.unwrap().is_err());
    server.abort();
}
