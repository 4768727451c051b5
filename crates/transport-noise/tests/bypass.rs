//! The Noise bypasses on loopback, checked on the wire: a NAT-like UDP proxy between caller and
//! callee (one upstream socket per caller address, so the callee sees the caller's address
//! change when it hops) records every datagram, and `callwall-wire` (the censor's own parsers)
//! reads them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callwall_transport::bypass::{Decoy, Junk, SourcePort};
use callwall_transport::signal::{self, Client};
use callwall_transport::{
    CallContext, MediaLink, Role, StrategyOptions, TransportError, VoiceTransport,
};
use callwall_transport_noise::wire::{WG_INIT_LEN, WG_RESPONSE_LEN};
use callwall_transport_noise::{CalleeInfo, NoiseTransport};
use callwall_wire::inspect::classify_datagram;
use callwall_wire::label::Label;
use tokio::net::{TcpListener, UdpSocket};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn ctx(call_id: &str, role: Role, signal: SocketAddr, options: StrategyOptions) -> CallContext {
    CallContext {
        call_id: call_id.into(),
        role,
        local_ip: LO,
        signal,
        relay: None,
        options,
        connect_timeout: Duration::from_secs(3),
        seed: 42,
    }
}

/// What the proxy saw, in order.
#[derive(Debug, Clone)]
enum Seen {
    /// From the caller: its source address and the datagram.
    Up(SocketAddr, Vec<u8>),
    /// From the callee.
    Down(Vec<u8>),
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A NAT-like proxy: every caller address gets its own upstream socket, so a hop is a new
/// address for the callee too.
async fn proxy(upstream: SocketAddr) -> (SocketAddr, Log) {
    let front = Arc::new(UdpSocket::bind((LO, 0)).await.unwrap());
    let addr = front.local_addr().unwrap();
    let log: Log = Arc::default();
    let log2 = log.clone();
    tokio::spawn(async move {
        let mut map: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, from)) = front.recv_from(&mut buf).await else { return };
            log2.lock().unwrap().push(Seen::Up(from, buf[..n].to_vec()));
            let back = match map.get(&from) {
                Some(b) => b.clone(),
                None => {
                    let b = Arc::new(UdpSocket::bind((LO, 0)).await.unwrap());
                    b.connect(upstream).await.unwrap();
                    let (b2, front2, log3) = (b.clone(), front.clone(), log2.clone());
                    tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = b2.recv(&mut buf).await {
                            log3.lock().unwrap().push(Seen::Down(buf[..n].to_vec()));
                            let _ = front2.send_to(&buf[..n], from).await;
                        }
                    });
                    map.insert(from, b.clone());
                    b
                }
            };
            let _ = back.send(&buf[..n]).await;
        }
    });
    (addr, log)
}

/// Places a call whose caller goes through [`proxy`]; returns (caller, callee, log).
async fn call(
    call_id: &str,
    strategy: &'static str,
    options: StrategyOptions,
) -> (MediaLink, MediaLink, Log) {
    let listener = TcpListener::bind((LO, 0)).await.unwrap();
    let sig = listener.local_addr().unwrap();
    tokio::spawn(signal::serve(listener));
    let mut callee_opts = options.clone();
    callee_opts.port = Some(0);
    let callee_ctx = ctx(call_id, Role::Callee, sig, callee_opts);
    let caller_ctx = ctx(call_id, Role::Caller, sig, options);
    let answering =
        tokio::spawn(async move { NoiseTransport::new().answer(&callee_ctx, strategy).await });
    let mut c = Client::connect(sig, Duration::from_secs(3)).await.unwrap();
    let key = format!("{call_id}/callee");
    let mut info: CalleeInfo =
        serde_json::from_str(&c.get(&key, Duration::from_secs(3)).await.unwrap()).unwrap();
    let (at, log) = proxy(SocketAddr::new(info.addr, info.port)).await;
    info.port = at.port();
    c.put(&key, &serde_json::to_string(&info).unwrap()).await.unwrap();
    let caller = NoiseTransport::new().dial(&caller_ctx, strategy).await.expect("dial");
    let callee = answering.await.unwrap().expect("answer");
    (caller, callee, log)
}

fn ups(log: &Log) -> Vec<(SocketAddr, Vec<u8>)> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            Seen::Up(a, b) => Some((*a, b.clone())),
            Seen::Down(_) => None,
        })
        .collect()
}

fn downs(log: &Log) -> Vec<Vec<u8>> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            Seen::Down(b) => Some(b.clone()),
            Seen::Up(..) => None,
        })
        .collect()
}

/// Sends `n` numbered frames each way, 20 ms apart (voice pace), and returns the numbers each
/// side received.
async fn talk(caller: &mut MediaLink, callee: &mut MediaLink, n: u16) -> (Vec<u16>, Vec<u16>) {
    let frame = |tag: u8, i: u16| {
        let mut f = vec![tag; 80];
        f[..2].copy_from_slice(&i.to_be_bytes());
        f
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut up, mut down) = (Vec::new(), Vec::new());
    let drain = |rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>, out: &mut Vec<u16>| {
        while let Ok(f) = rx.try_recv() {
            out.push(u16::from_be_bytes([f[0], f[1]]));
        }
    };
    for i in 0..n {
        tick.tick().await;
        caller.tx.send(frame(1, i)).await.unwrap();
        callee.tx.send(frame(2, i)).await.unwrap();
        drain(&mut callee.rx, &mut up);
        drain(&mut caller.rx, &mut down);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drain(&mut callee.rx, &mut up);
    drain(&mut caller.rx, &mut down);
    (up, down)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoys_go_first_from_the_calls_socket_and_the_callee_ignores_them() {
    for strategy in ["udp", "udp-wg", "udp-obfs"] {
        for kind in [Decoy::Random, Decoy::Dns, Decoy::Stun] {
            let mut o = StrategyOptions::default();
            o.bypass.decoy = Some(kind);
            let (mut a, mut b, log) =
                call(&format!("decoy-{strategy}-{kind:?}"), strategy, o).await;
            let up = ups(&log);
            let (from0, first) = &up[0];
            let labels = classify_datagram(first);
            match kind {
                Decoy::Random => assert_eq!(first.len(), 64),
                // An RFC 1035 query (flags RD, one question). Its id is random, so a quarter of
                // ids start in RTP's demux range (RFC 7983) and `classify_datagram` reads the
                // decoy as RTP, not DNS: which one depends on the call's seed.
                Decoy::Dns => assert_eq!(&first[2..6], &[1, 0, 0, 1], "{labels:?}"),
                Decoy::Stun => assert!(labels.contains(Label::Stun), "{labels:?}"),
            }
            assert_eq!(from0, &up[1].0, "the decoy comes from the call's own socket");
            if strategy == "udp-wg" {
                assert!(classify_datagram(&up[1].1).contains(Label::WireguardHandshake));
            }
            let (got_up, got_down) = talk(&mut a, &mut b, 10).await;
            assert_eq!((got_up.len(), got_down.len()), (10, 10), "{strategy} {kind:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_port_below_and_above_the_server_port() {
    for choice in [SourcePort::BelowServer, SourcePort::AboveServer] {
        let mut o = StrategyOptions::default();
        o.bypass.source_port = Some(choice);
        let (mut a, mut b, log) = call(&format!("sport-{choice:?}"), "udp", o).await;
        let up = ups(&log);
        let server = a.path.rsplit(':').next().unwrap().trim_end_matches(')').parse::<u16>();
        let server = server.unwrap_or_else(|_| panic!("{}", a.path));
        let src = up[0].0.port();
        match choice {
            SourcePort::BelowServer => assert!(src < server && src >= server / 2, "{src} {server}"),
            SourcePort::AboveServer => assert!(src > server, "{src} {server}"),
        }
        let (got_up, got_down) = talk(&mut a, &mut b, 10).await;
        assert_eq!((got_up.len(), got_down.len()), (10, 10));
    }
}

/// AmneziaWG's three changes together: junk before the initiation, custom header values and
/// padded handshakes. The censor's WireGuard classifier no longer sees a handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wg_junk_headers_and_padding_hide_the_handshake_shape() {
    let mut o = StrategyOptions::default();
    o.bypass.junk = Some(Junk { count: 4, min: 40, max: 70 });
    o.bypass.wg_headers = Some([0x5d3a_0b11, 0x1e2f_3c4d, 0x6071_8293, 0x0a0b_0c0d]);
    o.bypass.wg_padding = Some([37, 19]);
    let (mut a, mut b, log) = call("awg", "udp-wg", o).await;
    let up = ups(&log);
    for (_, junk) in &up[..4] {
        assert!((40..=70).contains(&junk.len()), "junk of {} bytes", junk.len());
    }
    let init = &up[4].1;
    assert_eq!(init.len(), WG_INIT_LEN + 37);
    assert_ne!(init[0], 1, "the initiation's first byte is not WireGuard's type 1");
    assert_eq!(&init[37..41], &0x5d3a_0b11u32.to_le_bytes());
    let down = downs(&log);
    assert_eq!(down[0].len(), WG_RESPONSE_LEN + 19);
    for d in up.iter().map(|(_, d)| d).chain(down.iter()) {
        let l = classify_datagram(d);
        assert!(!l.contains(Label::WireguardHandshake) && !l.contains(Label::Wireguard), "{l:?}");
    }
    let (got_up, got_down) = talk(&mut a, &mut b, 10).await;
    assert_eq!((got_up.len(), got_down.len()), (10, 10));
    // Data packets carry H4.
    let up = ups(&log);
    assert_eq!(&up.last().unwrap().1[..4], &0x0a0b_0c0du32.to_le_bytes());
}

/// Port hopping: the caller moves to a fresh source port every 300 ms; the callee follows the
/// authenticated packets (WireGuard roaming); media keeps flowing both ways across the hops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_hop_keeps_media_flowing_across_hops() {
    for strategy in ["udp", "udp-wg", "udp-obfs"] {
        let mut o = StrategyOptions::default();
        o.bypass.port_hop = Some("300ms".parse().unwrap());
        let (mut a, mut b, log) = call(&format!("hop-{strategy}"), strategy, o).await;
        assert!(a.path.contains("port hop every 300ms"), "{}", a.path);
        let n = 75; // 1.5 s of voice: four or five hops
        let (got_up, got_down) = talk(&mut a, &mut b, n).await;
        let mut ports: Vec<u16> = ups(&log).iter().map(|(a, _)| a.port()).collect();
        ports.dedup();
        let hops = ports.len() - 1;
        assert!(hops >= 2, "{strategy}: source ports {ports:?}");
        let lost_up = usize::from(n) - got_up.len();
        let lost_down = usize::from(n) - got_down.len();
        eprintln!("{strategy}: {hops} hops, ports {ports:?}, lost up {lost_up} down {lost_down}");
        assert!(
            lost_up <= 2 * hops && lost_down <= 2 * hops,
            "{strategy}: lost {lost_up}/{lost_down} over {hops} hops"
        );
        // The last frames, sent after the last hop, arrived both ways.
        assert_eq!(got_up.last(), Some(&(n - 1)), "{strategy}");
        assert_eq!(got_down.last(), Some(&(n - 1)), "{strategy}");
    }
}

#[tokio::test]
async fn keys_each_strategy_honours_and_refusals() {
    let t = NoiseTransport::new();
    assert_eq!(t.bypasses("udp"), &["decoy", "source_port", "port_hop"]);
    assert!(t.bypasses("udp-wg").contains(&"wg_headers"));
    assert_eq!(t.bypasses("tcp-443"), &["tcp_segment"]);
    let signal: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut o = StrategyOptions::default();
    o.bypass.junk = Some(Junk { count: 1, min: 1, max: 2 });
    let caller = ctx("refuse", Role::Caller, signal, o.clone());
    let e = t.dial(&caller, "udp").await.unwrap_err();
    assert!(matches!(e, TransportError::Bypass(_)), "{e}");
    assert!(
        e.to_string().contains("bypass.junk is not available with noise strategy \"udp\""),
        "{e}"
    );
    let callee = ctx("refuse", Role::Callee, signal, o);
    let e = t.answer(&callee, "udp").await.unwrap_err();
    assert!(matches!(e, TransportError::Bypass(_)), "{e}");
}

/// `tcp_segment`: the first flight in small writes still makes a working call (the segments
/// themselves are checked through the real censor in the end-to-end tests).
#[tokio::test]
async fn tcp_segment_call_works() {
    let listener = TcpListener::bind((LO, 0)).await.unwrap();
    let sig = listener.local_addr().unwrap();
    tokio::spawn(signal::serve(listener));
    let mut o = StrategyOptions { port: Some(0), ..Default::default() };
    o.printable_prefix = Some("GET / HTTP/1.1\r\n\r\n".into());
    o.bypass.tcp_segment = Some(16);
    let t = NoiseTransport::new();
    let (caller, callee) =
        (ctx("seg", Role::Caller, sig, o.clone()), ctx("seg", Role::Callee, sig, o));
    let (a, b) = tokio::join!(t.dial(&caller, "tcp-443"), t.answer(&callee, "tcp-443"));
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    let (up, down) = talk(&mut a, &mut b, 10).await;
    assert_eq!((up.len(), down.len()), (10, 10));
}

/// What each bypass costs, measured on loopback through the proxy: the dial time, and the
/// caller's datagrams and bytes before its first data packet and over one second of voice
/// (50 frames). Printed for the report; the packet and byte differences that follow from
/// the options are asserted (times are only printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_of_each_bypass() {
    use callwall_transport::bypass::Bypass;
    let awg = Bypass {
        junk: Some(Junk { count: 4, min: 40, max: 70 }),
        wg_headers: Some([5, 6, 7, 8]),
        wg_padding: Some([37, 19]),
        ..Default::default()
    };
    let cases: Vec<(&str, &'static str, Bypass)> = vec![
        ("none", "udp", Bypass::default()),
        ("decoy=random", "udp", Bypass { decoy: Some(Decoy::Random), ..Default::default() }),
        ("decoy=dns", "udp", Bypass { decoy: Some(Decoy::Dns), ..Default::default() }),
        ("decoy=stun", "udp", Bypass { decoy: Some(Decoy::Stun), ..Default::default() }),
        (
            "source_port=below-server",
            "udp",
            Bypass { source_port: Some(SourcePort::BelowServer), ..Default::default() },
        ),
        (
            "port_hop=300ms",
            "udp",
            Bypass { port_hop: Some("300ms".parse().unwrap()), ..Default::default() },
        ),
        ("none", "udp-wg", Bypass::default()),
        ("junk+wg_headers+wg_padding", "udp-wg", awg),
    ];
    let mut rows = Vec::new();
    for (i, (label, strategy, bypass)) in cases.into_iter().enumerate() {
        let o = StrategyOptions { bypass: bypass.clone(), ..Default::default() };
        let t0 = std::time::Instant::now();
        let (mut a, mut b, log) = call(&format!("cost-{i}"), strategy, o).await;
        let dial_ms = t0.elapsed().as_secs_f64() * 1e3;
        let before = ups(&log);
        let (got_up, got_down) = talk(&mut a, &mut b, 50).await;
        let all = ups(&log);
        let hs: (usize, usize) = (before.len(), before.iter().map(|(_, d)| d.len()).sum());
        let media = (
            all.len() - before.len(),
            all[before.len()..].iter().map(|(_, d)| d.len()).sum::<usize>(),
        );
        eprintln!(
            "noise {strategy:8} {label:28} dial {dial_ms:6.1} ms  handshake {:2} pkts {:5} B  1 s media {:3} pkts {:5} B  got {}/{}",
            hs.0, hs.1, media.0, media.1, got_up.len(), got_down.len()
        );
        rows.push((label, strategy, hs, media));
    }
    let row = |l: &str, s: &str| *rows.iter().find(|r| r.0 == l && r.1 == s).unwrap();
    let base = row("none", "udp");
    assert_eq!(
        row("decoy=random", "udp").2,
        (base.2 .0 + 1, base.2 .1 + 64),
        "a decoy is one 64-byte datagram"
    );
    assert_eq!(row("source_port=below-server", "udp").2, base.2, "a port choice costs nothing");
    let hop = row("port_hop=300ms", "udp");
    assert_eq!(hop.3, base.3, "hops add no packets");
    let wg = row("none", "udp-wg");
    let awg = row("junk+wg_headers+wg_padding", "udp-wg");
    assert_eq!(awg.2 .0, wg.2 .0 + 4, "four junk datagrams");
    let extra = awg.2 .1 - wg.2 .1;
    assert!((4 * 40 + 37..=4 * 70 + 37).contains(&extra), "junk and S1 add {extra} bytes");
    assert_eq!(awg.3, wg.3, "data packets are the same size");
}
