//! The webrtc transport's bypasses on real loopback calls: what each puts on the wire, read
//! with callwall's own parsers (`callwall-wire`, the censor's classifier), and the call still
//! carries its frames byte-exact. A missing coturn fails the test.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callwall_transport::bypass::{Bypass, Decoy};
use callwall_transport::{
    CallContext, MediaLink, RelayInfo, Role, StrategyOptions, VoiceTransport,
};
use callwall_transport_webrtc::{bypass, WebrtcCall, WebrtcTransport};
use callwall_wire::inspect::{Dir, FlowInspector, Proto};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FRAMES: usize = 30;
const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// The DTLS fingerprint the censor's `ru-dtls-fingerprint` rule blocks (webrtc-rs 0.21).
const WEBRTC_RS_FP: u64 = 0xbb26_24a1_bcee_be32;
/// Chromium's, from `crates/wire/testdata/chromium-webrtc.pcap` (`callwall inspect`).
const CHROMIUM_FP: &str = "dfefd|1301,1302,1303,c02b,c02f,cca9,cca8,c009,c013,c00a,c014,009c,002f,0035|000a,000b,000d,000e,0017,002b,002d,0033,ff01|11ec,001d,0017,0018|0403,0804,0401,0503,0805,0501,0806,0601,0201|0000|0001,0008,0007|fefc,fefd";

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

async fn start_relay(ip: &str) -> Relay {
    let ip: IpAddr = ip.parse().expect("ip");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("callwall-webrtc-bypass-{ip}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
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

fn frame(from: u8, i: usize) -> Vec<u8> {
    let mut f = vec![from, (i >> 8) as u8, i as u8];
    f.extend((0..77).map(|k| (k as u8).wrapping_mul(31).wrapping_add(i as u8).wrapping_add(from)));
    f
}

async fn exchange(link: &mut MediaLink, me: u8, peer: u8) {
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
    assert_eq!(got, want, "side {me}: frames missing, not byte-exact or out of order");
}

/// Places one call (both sides with `options`), exchanges frames; returns (caller, callee).
async fn call(
    strategy: &str,
    relay: Option<RelayInfo>,
    options: StrategyOptions,
) -> (MediaLink, MediaLink) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.expect("signal bind");
    let signal = listener.local_addr().expect("signal addr");
    let server = tokio::spawn(callwall_transport::signal::serve(listener));
    let ctx = |role| CallContext {
        call_id: format!("bypass-{strategy}"),
        role,
        local_ip: LOOPBACK,
        signal,
        relay: relay.clone(),
        options: options.clone(),
        connect_timeout: Duration::from_secs(15),
        seed: 42,
    };
    let (callee_ctx, caller_ctx) = (ctx(Role::Callee), ctx(Role::Caller));
    let s = strategy.to_string();
    let callee = tokio::spawn(async move { WebrtcTransport::new().answer(&callee_ctx, &s).await });
    let caller = WebrtcTransport::new().dial(&caller_ctx, strategy).await;
    let mut caller = caller.unwrap_or_else(|e| panic!("caller {strategy}: {e}"));
    let mut callee = callee.await.expect("task").unwrap_or_else(|e| panic!("callee: {e}"));
    tokio::join!(exchange(&mut caller, 1, 2), exchange(&mut callee, 2, 1));
    server.abort();
    (caller, callee)
}

fn guard(link: &MediaLink) -> &WebrtcCall {
    link.guard.downcast_ref::<WebrtcCall>().expect("webrtc guard")
}

fn with(bypass: Bypass) -> StrategyOptions {
    StrategyOptions { bypass, ..Default::default() }
}

/// The DTLS ClientHello's fingerprint from whichever side sent it (the DTLS client).
fn dtls_fingerprint(caller: &MediaLink, callee: &MediaLink) -> String {
    for side in [caller, callee] {
        let mut r = callwall_wire::dtls::HelloReassembler::new(1 << 16);
        for (_, d) in guard(side).wire_tap().first_datagrams() {
            if callwall_wire::dtls::is_dtls_datagram(&d) {
                r.push(&d);
                if let Some(ch) = r.client_hello() {
                    return ch.fingerprint('d');
                }
            }
        }
    }
    panic!("neither side's first datagrams hold a dtls clienthello")
}

fn fnv(s: &str) -> u64 {
    callwall_wire::tls::Fnv1a::hash(s.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtls_mimic_reshapes_the_hello_but_it_is_not_chromes() {
    let (a, b) = call("direct", None, StrategyOptions::default()).await;
    let plain = dtls_fingerprint(&a, &b);
    eprintln!("webrtc-rs: {plain} ({:016x})", fnv(&plain));
    assert_eq!(fnv(&plain), WEBRTC_RS_FP, "the censor's rule no longer matches webrtc-rs: {plain}");
    drop((a, b));
    assert_eq!(fnv(CHROMIUM_FP), 0x8d3a_4843_ab4b_8d8f);
    for (mimic, srtp) in [("chrome", "0001,0008,0007"), ("firefox", "0007,0008,0001,0002")] {
        let bypass = Bypass { dtls_mimic: Some(mimic.into()), ..Default::default() };
        let (a, b) = call("direct", None, with(bypass)).await;
        let fp = dtls_fingerprint(&a, &b);
        eprintln!("dtls_mimic={mimic}: {fp} ({:016x})", fnv(&fp));
        let fields: Vec<&str> = fp.split('|').collect();
        assert_eq!(fields[1], "c02b,c02f,cca9,cca8,c00a,c014", "{fp}");
        assert_eq!(fields[6], srtp, "{fp}");
        assert_ne!(fnv(&fp), WEBRTC_RS_FP);
        assert_ne!(fp, CHROMIUM_FP, "webrtc-rs cannot send chrome's groups, versions, extensions");
    }
}

/// The first datagram from the call's socket to each remote is the decoy, then ICE follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoy_goes_first_to_each_remote_on_direct_and_turn_udp() {
    let relay = start_relay("127.0.0.21").await;
    for (strategy, decoy) in [("direct", Decoy::Random), ("turn-udp", Decoy::Dns)] {
        let bypass = Bypass { decoy: Some(decoy), ..Default::default() };
        let info = (strategy != "direct").then(|| relay.info.clone());
        let (caller, callee) = call(strategy, info, with(bypass)).await;
        let want = bypass::decoy_payload(decoy, 42, Role::Caller);
        let sent = guard(&caller).wire_tap().first_datagrams();
        assert!(!sent.is_empty());
        let mut seen = Vec::new();
        for (to, d) in &sent {
            if !seen.contains(to) {
                seen.push(*to);
                assert_eq!(d, &want, "{strategy}: the first datagram to {to} is not the decoy");
            }
        }
        if strategy == "turn-udp" {
            let turn = SocketAddr::new(relay.info.addr, relay.info.udp_port);
            assert_eq!(sent[0].0, turn, "{strategy}: the decoy goes to the relay first");
            assert!(
                callwall_wire::stun::parse_datagram(&sent[1].1).is_ok(),
                "then the allocation request"
            );
        }
        let decoys = guard(&caller).wire_tap().decoys.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(decoys, seen.len() as u64, "{strategy}: one decoy per remote");
        eprintln!(
            "{strategy}: {decoys} decoy(s) of {} bytes: {caller_path}",
            want.len(),
            caller_path = caller.path
        );
        drop(callee);
    }
    // `ice`: the relay's UDP port (STUN server and TURN over UDP) gets the decoy first; the
    // local TURN-over-TCP/TLS adapters get none.
    let bypass = Bypass { decoy: Some(Decoy::Stun), ..Default::default() };
    let (caller, _callee) = call("ice", Some(relay.info.clone()), with(bypass)).await;
    let want = bypass::decoy_payload(Decoy::Stun, 42, Role::Caller);
    let turn = SocketAddr::new(relay.info.addr, relay.info.udp_port);
    let sent = guard(&caller).wire_tap().first_datagrams();
    let to_relay: Vec<&Vec<u8>> =
        sent.iter().filter(|(to, _)| *to == turn).map(|(_, d)| d).collect();
    assert!(to_relay.len() >= 2, "{sent:?}");
    assert_eq!(to_relay[0], &want, "ice: the first datagram to the relay is the decoy");
    assert_ne!(to_relay[1], &want, "one decoy per destination");
}

/// A TCP proxy in front of the relay's TLS port that records what the client sends, per read.
async fn recording_proxy(relay: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(relay.ip(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.expect("accept");
        let server = tokio::net::TcpStream::connect(relay).await.expect("relay");
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let up = async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = cr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                record.lock().unwrap().extend_from_slice(&buf[..n]);
                if sw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let down = async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
        };
        tokio::join!(up, down);
    });
    (addr, seen)
}

/// The record lengths carrying the ClientHello at the start of `stream`, and their bytes on
/// the wire (headers included).
fn hello_records(stream: &[u8]) -> (Vec<usize>, usize) {
    let hello = 4
        + usize::from(stream[6]) * 65536
        + usize::from(u16::from_be_bytes([stream[7], stream[8]]));
    let (mut lens, mut at, mut body) = (Vec::new(), 0, 0);
    while body < hello {
        assert_eq!(stream[at], 22, "a handshake record");
        let len = usize::from(u16::from_be_bytes([stream[at + 3], stream[at + 4]]));
        lens.push(len);
        body += len;
        at += 5 + len;
    }
    (lens, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_tls_hello_split_over_records_and_segments_still_reassembles() {
    let relay = start_relay("127.0.0.22").await;
    let tls = SocketAddr::new(relay.info.addr, relay.info.tls_port);
    for (record, segment, sni) in [
        (None, None, None),
        (Some(40u16), None, None),
        (None, Some(60u16), None),
        (None, None, Some("")),
    ] {
        let (proxy, seen) = recording_proxy(tls).await;
        let options = StrategyOptions {
            port: Some(proxy.port()),
            sni: sni.map(String::from),
            bypass: Bypass { tls_record: record, tcp_segment: segment, ..Default::default() },
            ..Default::default()
        };
        let (caller, _callee) = call("turn-tls", Some(relay.info.clone()), options).await;
        let stream = seen.lock().unwrap().clone();
        let (records, flight) = hello_records(&stream);
        // What the censor's classifier reads, packet by packet: the first flight is one packet,
        // or one packet per segment with `tcp_segment`.
        let packets: Vec<&[u8]> = match segment {
            Some(n) => stream[..flight].chunks(usize::from(n)).collect(),
            None => vec![&stream[..flight]],
        };
        let mut flow = FlowInspector::new();
        for p in &packets {
            flow.observe(Proto::Tcp, Dir::ClientToServer, p);
        }
        let facts = flow.facts().clone();
        let want_sni = match sni {
            Some("") => None,
            _ => Some(relay.info.tls_server_name.clone()),
        };
        // The reassembling classifier reads the name whatever the shaping.
        assert_eq!(facts.sni, want_sni, "record {record:?} segment {segment:?}: {records:?}");
        let shaped = guard(&caller).shaped();
        let writes = shaped.map(|s| s.writes.load(std::sync::atomic::Ordering::Relaxed));
        eprintln!(
            "tls_record={record:?} tcp_segment={segment:?} sni={sni:?}: hello {flight} bytes in records {records:?}; first-packet sni {:?}; shaped writes {writes:?}",
            facts.first_packet_sni,
        );
        match (record, segment) {
            (Some(n), _) => {
                assert!(records.len() > 1 && records.iter().all(|l| *l <= usize::from(n)));
                // A first-packet-only rule reads the first record, which is not a whole hello.
                assert_eq!(facts.first_packet_sni, None);
            }
            (None, Some(n)) => {
                assert_eq!(records.len(), 1);
                let writes = writes.expect("shaping counters") as usize;
                assert!(writes >= flight.div_ceil(usize::from(n)), "{writes} writes");
                assert_eq!(facts.first_packet_sni, None);
            }
            (None, None) => {
                assert_eq!(records.len(), 1);
                assert_eq!(facts.first_packet_sni, want_sni, "unshaped: the first packet has it");
            }
        }
    }
}
