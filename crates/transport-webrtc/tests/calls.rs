//! Real calls on loopback: a signal server, coturn started from `callwall_relay::plan` (for
//! the relay strategies), a callee `answer` and a caller `dial` running concurrently, and 50
//! voice frames each way that must arrive byte-exact. A missing coturn fails the test.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Stdio};
use std::time::Duration;

use callwall_transport::{
    CallContext, MediaLink, RelayInfo, Role, StrategyOptions, VoiceTransport,
};
use callwall_transport_webrtc::{WebrtcCall, WebrtcTransport};

const FRAMES: usize = 50;
const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A coturn process, killed on drop.
struct Relay {
    child: Child,
    info: RelayInfo,
    dir: std::path::PathBuf,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Starts coturn on `ip` (a loopback address of its own, so tests can run in parallel).
async fn start_relay(ip: &str) -> Relay {
    let ip: IpAddr = ip.parse().expect("ip");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("callwall-webrtc-{ip}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    // Never skip: a missing coturn is a failure with the install hint.
    let plan = callwall_relay::plan(ip, &dir).unwrap_or_else(|e| panic!("{e}"));
    let log = std::fs::File::create(dir.join("turnserver.log")).expect("log file");
    let child = plan
        .command()
        .stdout(Stdio::from(log))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning turnserver");
    let relay = Relay { child, info: plan.info, dir };
    callwall_relay::wait_ready(&relay.info, Duration::from_secs(10)).await.expect("relay ready");
    relay
}

fn context(call_id: &str, role: Role, signal: SocketAddr, relay: Option<RelayInfo>) -> CallContext {
    CallContext {
        call_id: call_id.to_string(),
        role,
        local_ip: LOOPBACK,
        signal,
        relay,
        options: StrategyOptions::default(),
        connect_timeout: Duration::from_secs(15),
        seed: 42,
    }
}

fn frame(from: u8, i: usize) -> Vec<u8> {
    // ~80 bytes like an Opus frame: who, sequence, then a pattern that covers every byte value.
    let mut f = vec![from, (i >> 8) as u8, i as u8];
    f.extend((0..77).map(|k| (k as u8).wrapping_mul(31).wrapping_add(i as u8).wrapping_add(from)));
    f
}

/// Sends FRAMES frames every 20 ms and collects what the other side sends.
async fn exchange(link: &mut MediaLink, me: u8, peer: u8) -> Vec<Vec<u8>> {
    let tx = link.tx.clone();
    let sender = tokio::spawn(async move {
        for i in 0..FRAMES {
            tx.send(frame(me, i)).await.expect("link open");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < FRAMES {
        match tokio::time::timeout_at(deadline, link.rx.recv()).await {
            Ok(Some(f)) => got.push(f),
            Ok(None) | Err(_) => break,
        }
    }
    sender.await.expect("sender");
    let want: Vec<Vec<u8>> = (0..FRAMES).map(|i| frame(peer, i)).collect();
    let missing: Vec<usize> = (0..FRAMES).filter(|i| !got.contains(&want[*i])).collect();
    assert!(missing.is_empty(), "side {me} is missing frames {missing:?} of {FRAMES}");
    assert_eq!(got.len(), FRAMES, "side {me} received {} of {FRAMES} frames", got.len());
    assert_eq!(got, want, "side {me}: frames not byte-exact or out of order");
    got
}

/// Places one call with `strategy` and exchanges frames both ways; returns (caller, callee).
async fn call(strategy: &str, relay: Option<RelayInfo>) -> (MediaLink, MediaLink) {
    call_between(strategy, relay, LOOPBACK, LOOPBACK).await
}

/// Like [`call`], with the caller bound to `caller_ip` and the callee to `callee_ip`.
///
/// The kernel's source address towards any 127.0.0.x is 127.0.0.1, so a caller on another
/// loopback address is in the situation of a call on a secondary interface address: every
/// socket it does not bind explicitly leaves from the wrong address.
async fn call_between(
    strategy: &str,
    relay: Option<RelayInfo>,
    caller_ip: IpAddr,
    callee_ip: IpAddr,
) -> (MediaLink, MediaLink) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.expect("signal bind");
    let signal = listener.local_addr().expect("signal addr");
    let server = tokio::spawn(callwall_transport::signal::serve(listener));
    let call_id = format!("test-{strategy}");
    let callee_ctx = CallContext {
        local_ip: callee_ip,
        ..context(&call_id, Role::Callee, signal, relay.clone())
    };
    let caller_ctx =
        CallContext { local_ip: caller_ip, ..context(&call_id, Role::Caller, signal, relay) };
    let t = WebrtcTransport::new();
    let s = strategy.to_string();
    let callee = tokio::spawn(async move { t.answer(&callee_ctx, &s).await });
    let caller = WebrtcTransport::new().dial(&caller_ctx, strategy).await;
    let callee = callee.await.expect("callee task");
    let mut caller = caller.unwrap_or_else(|e| panic!("caller {strategy}: {e}"));
    let mut callee = callee.unwrap_or_else(|e| panic!("callee {strategy}: {e}"));
    eprintln!("caller path: {}\ncallee path: {}", caller.path, callee.path);
    let (a, b) = tokio::join!(exchange(&mut caller, 1, 2), exchange(&mut callee, 2, 1));
    assert_eq!((a.len(), b.len()), (FRAMES, FRAMES));
    server.abort();
    (caller, callee)
}

fn guard(link: &MediaLink) -> &WebrtcCall {
    link.guard.downcast_ref::<WebrtcCall>().expect("webrtc guard")
}

fn assert_relayed(caller: &MediaLink) {
    let selected = guard(caller).selected().expect("caller has a selected pair");
    assert_eq!(selected.local_type, "relay", "caller did not go through the relay: {selected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_call_carries_frames_byte_exact() {
    let (caller, callee) = call("direct", None).await;
    let selected = guard(&caller).selected().expect("selected pair");
    assert_eq!(selected.local_type, "host", "{selected}");
    assert!(guard(&callee).selected().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_udp_call_goes_through_coturn() {
    let relay = start_relay("127.0.0.11").await;
    let (caller, _callee) = call("turn-udp", Some(relay.info.clone())).await;
    assert_relayed(&caller);
    assert!(caller.path.contains("relay"), "{}", caller.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_tcp_call_goes_through_coturn_over_one_stream() {
    let relay = start_relay("127.0.0.12").await;
    let (caller, _callee) = call("turn-tcp", Some(relay.info.clone())).await;
    assert_relayed(&caller);
    let (up, down) = guard(&caller).adapter_counters().expect("adapter").datagrams();
    assert!(up > FRAMES as u64 && down > FRAMES as u64, "adapter carried {up} up, {down} down");
    assert!(caller.path.contains("over tcp to 127.0.0.12:3478"), "{}", caller.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_tls_call_goes_through_coturn_on_443() {
    let relay = start_relay("127.0.0.13").await;
    let (caller, _callee) = call("turn-tls", Some(relay.info.clone())).await;
    assert_relayed(&caller);
    let (up, down) = guard(&caller).adapter_counters().expect("adapter").datagrams();
    assert!(up > FRAMES as u64 && down > FRAMES as u64, "adapter carried {up} up, {down} down");
    assert!(caller.path.contains("over tls to 127.0.0.13:443"), "{}", caller.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_tls_refuses_a_different_certificate() {
    let relay = start_relay("127.0.0.14").await;
    let mut info = relay.info.clone();
    // A certificate from another run must not be trusted.
    let other = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("callwall-webrtc-other-{}", std::process::id()));
    std::fs::create_dir_all(&other).expect("dir");
    info.tls_cert_pem = callwall_relay::plan("127.0.0.14".parse().expect("ip"), &other)
        .expect("plan")
        .info
        .tls_cert_pem;
    let _ = std::fs::remove_dir_all(&other);
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.expect("signal bind");
    let signal = listener.local_addr().expect("signal addr");
    let server = tokio::spawn(callwall_transport::signal::serve(listener));
    let ctx = context("test-bad-cert", Role::Caller, signal, Some(info));
    let err = WebrtcTransport::new().dial(&ctx, "turn-tls").await.expect_err("must refuse");
    assert!(err.to_string().contains("tls handshake"), "{err}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_strategies_need_a_relay() {
    let ctx = context("test-no-relay", Role::Caller, "127.0.0.1:9".parse().expect("addr"), None);
    for s in ["turn-udp", "turn-tcp", "turn-tls"] {
        let err = WebrtcTransport::new().dial(&ctx, s).await.expect_err("no relay");
        assert!(matches!(err, callwall_transport::TransportError::NoRelay), "{s}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_call_carries_frames_over_tcp() {
    let (caller, callee) = call("ice-tcp", None).await;
    for link in [&caller, &callee] {
        let selected = guard(link).selected().expect("selected pair");
        assert_eq!(
            (selected.local_type.as_str(), selected.protocol.as_str()),
            ("host", "tcp"),
            "{selected}"
        );
    }
}

/// The caller on a secondary address (127.0.0.21; the kernel would pick 127.0.0.1): the active
/// ICE-TCP connection must leave from it, or ICE discards it as "not a valid local candidate".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_call_from_a_secondary_address() {
    let caller_ip: IpAddr = "127.0.0.21".parse().expect("ip");
    let callee_ip: IpAddr = "127.0.0.22".parse().expect("ip");
    let (caller, callee) = call_between("ice-tcp", None, caller_ip, callee_ip).await;
    let selected = guard(&caller).selected().expect("caller selected pair");
    assert_eq!(selected.protocol, "tcp", "{selected}");
    assert!(selected.local.starts_with("127.0.0.21:"), "caller pair: {selected}");
    let selected = guard(&callee).selected().expect("callee selected pair");
    assert!(selected.local.starts_with("127.0.0.22:"), "callee pair: {selected}");
}

/// The TURN-over-TCP adapter's stream leaves from the caller's own (secondary) address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_tcp_stream_leaves_from_a_secondary_address() {
    let relay = start_relay("127.0.0.15").await;
    let caller_ip: IpAddr = "127.0.0.23".parse().expect("ip");
    let (caller, _callee) =
        call_between("turn-tcp", Some(relay.info.clone()), caller_ip, LOOPBACK).await;
    assert_relayed(&caller);
    assert!(
        caller.path.contains("over tcp to 127.0.0.15:3478 from 127.0.0.23:"),
        "{}",
        caller.path
    );
}

/// The ICE report of an `ice` caller, printed for the test log.
fn ice_of(link: &MediaLink) -> &callwall_transport::ice::IceReport {
    let ice = guard(link).ice().expect("an ice call has an ice report");
    eprintln!("{}", serde_json::to_string_pretty(ice).expect("json"));
    ice
}

/// `ice` with a relay: one agent gathers host UDP, ICE-TCP, and relay candidates over UDP,
/// TCP and TLS at once, checks pairs in parallel and nominates one; the report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_gathers_every_candidate_in_one_agent() {
    let relay = start_relay("127.0.0.16").await;
    let caller_ip: IpAddr = "127.0.0.31".parse().expect("ip");
    let callee_ip: IpAddr = "127.0.0.32".parse().expect("ip");
    let (caller, callee) =
        call_between("ice", Some(relay.info.clone()), caller_ip, callee_ip).await;
    let ice = ice_of(&caller);
    let gathered = |via: &str| ice.candidates.iter().any(|c| c.via == via && c.error.is_none());
    // coturn answers STUN Binding on its UDP port: the srflx candidate comes from there.
    for via in ["host-udp", "host-tcp", "stun", "turn-udp", "turn-tcp", "turn-tls"] {
        assert!(gathered(via), "no {via} candidate: {:?}", ice.candidates);
    }
    let selected = ice.selected.as_ref().expect("a nominated pair");
    assert!(ice.pairs.iter().any(|p| p.state == "succeeded"), "{:?}", ice.pairs);
    assert!(ice.connected_ms.is_some() && ice.gathering_ms.is_some());
    assert!(caller.path.starts_with("webrtc ice"), "{}", caller.path);
    assert!(selected.local.starts_with("127.0.0."), "{selected:?}");
    // The callee answers with host candidates only and reports its side too.
    let callee_ice = guard(&callee).ice().expect("callee ice report");
    assert!(callee_ice.candidates.iter().all(|c| c.kind == "host"), "{:?}", callee_ice.candidates);
}

/// `ice` when the relay's UDP port is dead (STUN and TURN over UDP never answer): the call does
/// not wait for them; relays over TCP and TLS are gathered and the call connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_goes_on_without_a_dead_udp_relay() {
    let relay = start_relay("127.0.0.17").await;
    let mut info = relay.info.clone();
    // A UDP port on the relay's address where nothing listens.
    let dead = std::net::UdpSocket::bind(("127.0.0.17", 0)).expect("bind");
    info.udp_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let caller_ip: IpAddr = "127.0.0.33".parse().expect("ip");
    let callee_ip: IpAddr = "127.0.0.34".parse().expect("ip");
    let (caller, _callee) = call_between("ice", Some(info), caller_ip, callee_ip).await;
    let ice = ice_of(&caller);
    let gathered = |via: &str| ice.candidates.iter().any(|c| c.via == via && c.error.is_none());
    assert!(!gathered("turn-udp") && !gathered("stun"), "{:?}", ice.candidates);
    assert!(gathered("turn-tcp") && gathered("turn-tls"), "{:?}", ice.candidates);
    assert!(ice.selected.is_some());
}
