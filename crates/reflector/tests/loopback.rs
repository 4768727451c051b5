//! The reflector and the `reflector` transport on loopback: a real server, two real peers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use callwall_reflector::{ReflectorTransport, Server};
use callwall_transport::{CallContext, RelayInfo, Role, StrategyOptions, VoiceTransport};
use callwall_wire::{dns, stun};

fn ctx(role: Role, ip: &str, reflector: SocketAddr, signal: SocketAddr) -> CallContext {
    CallContext {
        call_id: "tg-1".into(),
        role,
        local_ip: ip.parse().expect("ip"),
        signal,
        relay: Some(RelayInfo {
            addr: reflector.ip(),
            udp_port: 3478,
            tcp_port: 3478,
            tls_port: 443,
            username: String::new(),
            password: String::new(),
            realm: String::new(),
            tls_cert_pem: String::new(),
            tls_server_name: String::new(),
        }),
        options: StrategyOptions { port: Some(reflector.port()), ..Default::default() },
        connect_timeout: Duration::from_secs(5),
        seed: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_talk_through_the_reflector_after_stun() {
    let ip: IpAddr = "127.0.0.41".parse().expect("ip");
    let server = Server::start(ip, &[0]).await.expect("reflector");
    let at = server.addrs[0];
    // Nothing listens on the signal address: this transport needs no signalling.
    let signal: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let t = ReflectorTransport;
    let (caller, callee) =
        (ctx(Role::Caller, "127.0.0.42", at, signal), ctx(Role::Callee, "127.0.0.43", at, signal));
    let (a, b) = tokio::join!(t.dial(&caller, "udp"), t.answer(&callee, "udp"));
    let (mut a, mut b) = (a.expect("caller"), b.expect("callee"));
    assert!(a.path.contains("stun first; mapped 127.0.0.42:"), "{}", a.path);
    for i in 0..50u8 {
        a.tx.send(vec![1, i, 0xAA]).await.expect("send");
        b.tx.send(vec![2, i, 0xBB]).await.expect("send");
    }
    let recv = |rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>| {
        let mut got = Vec::new();
        while let Ok(f) = rx.try_recv() {
            got.push(f);
        }
        got
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ga, gb) = (recv(&mut a.rx), recv(&mut b.rx));
    assert_eq!(gb, (0..50u8).map(|i| vec![1, i, 0xAA]).collect::<Vec<_>>());
    assert_eq!(ga, (0..50u8).map(|i| vec![2, i, 0xBB]).collect::<Vec<_>>());
    let c = server.counters();
    assert!(c.stun_answered >= 2, "{c:?}");
    assert!(c.relayed >= 100, "{c:?}");
    assert_eq!((c.refused, c.malformed), (0, 0), "{c:?}");
    // "auto" is not a strategy of this transport.
    let e = t.dial(&ctx(Role::Caller, "127.0.0.42", at, signal), "tcp").await.unwrap_err();
    assert!(e.to_string().contains("choose one of udp"), "{e}");
}

#[tokio::test]
async fn no_reflector_is_a_bounded_timeout() {
    // A port where nothing listens.
    let dead = std::net::UdpSocket::bind("127.0.0.44:0").expect("bind");
    let at = dead.local_addr().expect("addr");
    drop(dead);
    let mut c = ctx(Role::Caller, "127.0.0.45", at, "127.0.0.1:9".parse().expect("addr"));
    c.connect_timeout = Duration::from_millis(600);
    let e = ReflectorTransport.dial(&c, "udp").await.unwrap_err();
    assert!(e.to_string().contains("stun binding response"), "{e}");
}

#[test]
fn the_binary_says_ready_and_refuses_bad_arguments() {
    use std::io::BufRead;
    let exe = env!("CARGO_BIN_EXE_callwall-reflector");
    for bad in [&["nowhere"][..], &["127.0.0.46", "99999"], &[]] {
        let out = std::process::Command::new(exe).args(bad).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage"), "{bad:?}");
    }
    let mut child = std::process::Command::new(exe)
        .args(["127.0.0.46", "0", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let _ = child.kill();
    let _ = child.wait();
    let addrs: Vec<&str> =
        line.trim().strip_prefix("ready ").expect("ready line").split(' ').collect();
    assert_eq!(addrs.len(), 2, "{line}");
    assert!(addrs.iter().all(|a| a.starts_with("127.0.0.46:")), "{line}");
}

/// `decoy` and `source_port`: a raw UDP listener in the reflector's place sees the decoy first,
/// then the STUN Binding request, both from one port below its own.
#[tokio::test]
async fn the_decoy_goes_first_from_a_port_below_the_reflectors() {
    use callwall_transport::bypass::{Decoy, SourcePort};
    for kind in [Decoy::Random, Decoy::Dns, Decoy::Stun] {
        let spy = tokio::net::UdpSocket::bind("127.0.0.46:0").await.expect("bind");
        let at = spy.local_addr().expect("addr");
        let mut c = ctx(Role::Caller, "127.0.0.47", at, "127.0.0.1:9".parse().expect("addr"));
        c.options.bypass.decoy = Some(kind);
        c.options.bypass.source_port = Some(SourcePort::BelowServer);
        c.connect_timeout = Duration::from_millis(300);
        let dial =
            tokio::spawn(async move { ReflectorTransport.dial(&c, "udp").await.map(|_| ()) });
        let mut buf = [0u8; 2048];
        let (n, from) = spy.recv_from(&mut buf).await.expect("decoy");
        let decoy = buf[..n].to_vec();
        let (m, from2) = spy.recv_from(&mut buf).await.expect("stun");
        assert_eq!(from, from2, "one socket");
        assert!(from.port() < at.port() && from.port() >= at.port() / 2, "{from} vs {at}");
        assert!(callwall_reflector::core::binding_request_id(&buf[..m]).is_some(), "then stun");
        match kind {
            Decoy::Random => assert_eq!(decoy.len(), 64),
            Decoy::Dns => assert!(dns::Query::parse(&decoy).is_some(), "a dns query"),
            Decoy::Stun => {
                let m = stun::parse_datagram(&decoy).expect("a stun message");
                let r = stun::StunRepr::parse(&m).expect("a valid fingerprint");
                assert!(r.fingerprint, "with FINGERPRINT");
                assert!(callwall_reflector::core::binding_request_id(&decoy).is_some());
            }
        }
        // Nobody answers: a bounded timeout.
        assert!(dial.await.expect("task").is_err());
    }
}

/// With both bypasses the call still connects through the real reflector, which keeps the
/// decoy as an idle tag (counted as waiting) and relays the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_a_decoy_connects_through_the_reflector() {
    use callwall_transport::bypass::{Decoy, SourcePort};
    let server = Server::start("127.0.0.48".parse().expect("ip"), &[0]).await.expect("reflector");
    let at = server.addrs[0];
    let signal: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let mut caller = ctx(Role::Caller, "127.0.0.49", at, signal);
    caller.options.bypass.decoy = Some(Decoy::Random);
    caller.options.bypass.source_port = Some(SourcePort::AboveServer);
    let mut callee = ctx(Role::Callee, "127.0.0.50", at, signal);
    callee.options.bypass = caller.options.bypass.clone();
    let t = ReflectorTransport;
    let (a, b) = tokio::join!(t.dial(&caller, "udp"), t.answer(&callee, "udp"));
    let (a, mut b) = (a.expect("caller"), b.expect("callee"));
    a.tx.send(vec![7; 40]).await.expect("send");
    let got = tokio::time::timeout(Duration::from_secs(2), b.rx.recv()).await.expect("frame");
    assert_eq!(got, Some(vec![7; 40]));
    assert!(server.counters().waiting >= 1, "{:?}", server.counters());
    assert_eq!(t.bypasses("udp"), &["decoy", "source_port"]);
    let mut bad = ctx(Role::Caller, "127.0.0.49", at, signal);
    bad.options.bypass.port_hop = Some("1s".parse().expect("duration"));
    let e = t.dial(&bad, "udp").await.unwrap_err();
    assert!(e.to_string().contains("bypass.port_hop is not available"), "{e}");
}
