//! The censor bridge's receive ring (TPACKET_V3) against the `recvmmsg` path, on real
//! namespaces (needs root or unprivileged user namespaces).
//!
//! - every UDP payload size from 0 to 1472 bytes (IPv4 frames up to the 1500-byte MTU), four
//!   times over, sent as fast as one sender can, crosses the ring bridge intact and in order
//!   (the receiver checks every byte of every datagram against the generator);
//! - the same mixed traffic (a flow a port rule drops, a flow that starts with STUN, plain
//!   flows) gets the same verdicts and delivers the same datagrams through both paths;
//! - the censor process has as many open descriptors and mappings after the bridge is dropped
//!   as before it was opened (ring unmapped, sockets closed).
//!
//! The outer test re-executes this binary inside `spawn_sandboxed` (`ROLE=sandbox`); the
//! sandbox builds the default topology and starts the censor, sender and receiver as children
//! of this binary in their hosts' namespaces.

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use callwall_censor::bridge::{Bridge, BridgeIo, BridgeOptions, IoCounters, NoRecorder};
use callwall_censor::policy::{raw, Policy};
use callwall_censor::{CensorReport, Engine};
use callwall_netns::{default_topology, Network};
use serde::{Deserialize, Serialize};

mod common;

const ROLE: &str = "CALLWALL_RING_TEST_ROLE";
const ARG: &str = "CALLWALL_RING_TEST_ARG";
const CALLEE: &str = "10.2.0.2";
const PORT: u16 = 7000;
/// Largest UDP payload in one IPv4 frame at a 1500-byte MTU.
const MAX_PAYLOAD: usize = 1472;
const BLAST_ROUNDS: usize = 4;
const BLAST_COUNT: usize = BLAST_ROUNDS * (MAX_PAYLOAD + 1);

fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

#[test]
fn ring_bridge_is_lossless_in_order_same_verdicts_and_leaks_nothing() {
    if role().is_some() {
        return; // a child of the test below: `inner` runs instead
    }
    common::run_inner_in_sandbox(ROLE, "RING-TEST-OK");
}

/// Dispatches the child roles; the sandbox role runs the checks.
#[test]
fn inner() {
    match role().as_deref() {
        Some("sandbox") => sandbox(),
        Some("censor") => censor(),
        Some("recv") => receiver(),
        Some("send") => sender(),
        _ => {}
    }
}

// ---------------------------------------------------------------- traffic

/// Byte `i` of blast datagram `j` (its size is `j % (MAX_PAYLOAD + 1)`).
fn blast_byte(j: usize, i: usize) -> u8 {
    (j.wrapping_mul(131) ^ i.wrapping_mul(7) ^ (j >> 8) ^ (i >> 8)) as u8
}

fn blast_payload(j: usize) -> Vec<u8> {
    (0..j % (MAX_PAYLOAD + 1)).map(|i| blast_byte(j, i)).collect()
}

/// FNV-1a over each datagram's length and bytes, in order.
#[derive(Clone, Copy)]
struct Digest(u64);
impl Digest {
    fn new() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, d: &[u8]) {
        for b in (d.len() as u32).to_be_bytes().iter().chain(d) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// A STUN Binding request (RFC 8489: no attributes), transaction id `id`, `id + 1`, ...
fn stun_binding(id: u8) -> Vec<u8> {
    let tid = std::array::from_fn(|i| id.wrapping_add(i as u8));
    callwall_wire::stun::StunRepr::binding_request(tid).to_bytes()
}

/// Mixed-traffic datagram `seq` of `stream`: random-looking bytes no classifier claims.
fn mixed_payload(stream: u8, seq: u32) -> Vec<u8> {
    let len = 40 + (seq as usize * 37) % 1100;
    let mut p: Vec<u8> =
        (0..len).map(|i| blast_byte(seq as usize * 7 + stream as usize, i)).collect();
    p[0] = 0x55; // not in any RFC 7983 range
    p[1] = stream;
    p[2..6].copy_from_slice(&seq.to_be_bytes());
    p
}

// ---------------------------------------------------------------- sandbox

#[derive(Debug, Serialize, Deserialize)]
struct CensorArg {
    inside: String,
    outside: String,
    policy: raw::Policy,
    bridge: BridgeOptions,
}

#[derive(Debug, Serialize, Deserialize)]
struct CensorResult {
    report: CensorReport,
    received: [u64; 2],
    sent: [u64; 2],
    send_errors: u64,
    oversize: u64,
    io: IoCounters,
    ring: bool,
    fds_before: usize,
    fds_open: usize,
    fds_after: usize,
    maps_before: usize,
    maps_open: usize,
    maps_after: usize,
}

struct Recv {
    count: usize,
    digest: u64,
    first_bad: Option<usize>,
}

fn sandbox() {
    let topo = default_topology().expect("default topology");
    let (host, inside, outside) = topo.censor().expect("a censor host");
    let net = Network::build(&topo).expect("build the network");
    let exe = std::env::current_exe().expect("current_exe");
    let arg = |io: BridgeIo, policy: serde_json::Value| CensorArg {
        inside: inside.to_string(),
        outside: outside.to_string(),
        policy: serde_json::from_value(policy).expect("policy"),
        bridge: BridgeOptions { io, ..BridgeOptions::default() },
    };

    // 1. Every size up to the MTU, as fast as one sender can, through the ring.
    let pass = serde_json::json!({ "default": "pass" });
    let (c, r) = phase(&net, &exe, host, &arg(BridgeIo::Ring, pass), "blast");
    let mut expect = Digest::new();
    for j in 0..BLAST_COUNT {
        expect.add(&blast_payload(j));
    }
    assert!(c.ring, "the censor did not use the ring");
    assert_eq!(r.first_bad, None, "a datagram arrived changed or out of order");
    assert_eq!(r.count, BLAST_COUNT, "datagrams lost through the ring; censor {c:?}");
    assert_eq!(r.digest, expect.0, "the datagrams differ from what was sent");
    assert!(c.received[0] >= BLAST_COUNT as u64 && c.sent[0] >= BLAST_COUNT as u64, "{c:?}");
    assert_eq!((c.send_errors, c.oversize), (0, 0), "{c:?}");
    assert!(c.io.rx_batches > 0 && c.io.rx_batches < c.received[0], "{c:?}");
    check_no_leak(&c);
    println!(
        "blast: {} datagrams intact and in order; censor {} ring blocks, {} wake-ups, {} send calls",
        r.count, c.io.rx_batches, c.io.wakeups, c.io.tx_calls
    );

    // 2. The same verdicts through both paths.
    let dpi = serde_json::json!({
        "default": "pass",
        "rules": [
            { "name": "port-7001", "match": { "proto": "udp", "server_port": "7001-7001" },
              "action": "drop" },
            { "name": "stun", "match": { "label": ["stun"] }, "action": "drop" }
        ]
    });
    let mut seen = Vec::new();
    for io in [BridgeIo::Mmsg, BridgeIo::Ring] {
        let (c, r) = phase(&net, &exe, host, &arg(io, dpi.clone()), "mixed");
        assert_eq!(c.ring, io == BridgeIo::Ring);
        assert_eq!(r.first_bad, None);
        check_no_leak(&c);
        let rules: Vec<(String, u64, u64, u64, u64)> = c
            .report
            .rules
            .iter()
            .take(c.report.rules.len().saturating_sub(1)) // the last is the default
            .map(|x| {
                let k = &x.counters;
                (x.name.clone(), k.packets, k.forwarded, k.dropped, k.flows)
            })
            .collect();
        println!("{io:?}: received {} datagrams, rules {rules:?}", r.count);
        seen.push((r.count, r.digest, rules));
    }
    assert_eq!(seen[0], seen[1], "verdicts differ between the recvmmsg path and the ring");
    let rules = &seen[0].2;
    assert_eq!(rules[0].3, MIXED_PER_STREAM as u64, "port-7001 must drop its whole flow");
    assert!(rules[1].3 >= 1, "the STUN rule must drop the STUN packet: {rules:?}");
    assert!(seen[0].0 >= MIXED_PER_STREAM, "the plain flow must pass");
    net.teardown().expect("teardown");
    println!("RING-TEST-OK");
}

fn check_no_leak(c: &CensorResult) {
    assert!(c.fds_open >= c.fds_before + 2, "the bridge should hold two sockets: {c:?}");
    assert_eq!(c.fds_after, c.fds_before, "descriptors leaked: {c:?}");
    if c.ring {
        assert!(c.maps_open > c.maps_before, "the ring should be mapped: {c:?}");
    }
    assert_eq!(c.maps_after, c.maps_before, "mappings left behind: {c:?}");
}

/// One phase: censor up, receiver up, sender runs, receiver done, censor stopped.
fn phase(
    net: &Network,
    exe: &std::path::Path,
    host: &str,
    arg: &CensorArg,
    traffic: &str,
) -> (CensorResult, Recv) {
    eprintln!("phase {traffic} {:?}: starting the censor", arg.bridge.io);
    let mut censor = net
        .command(host, exe)
        .expect("censor command")
        .args(["inner", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "censor")
        .env(ARG, serde_json::to_string(arg).expect("arg"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the censor");
    wait_ready(&mut censor, "censor");
    let mut rx = net
        .command("callee", exe)
        .expect("receiver command")
        .args(["inner", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "recv")
        .env(ARG, traffic)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the receiver");
    wait_ready(&mut rx, "receiver");
    eprintln!("phase {traffic}: receiver ready, sending");
    let tx = net
        .command("caller", exe)
        .expect("sender command")
        .args(["inner", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "send")
        .env(ARG, traffic)
        .output()
        .expect("run the sender");
    assert!(tx.status.success(), "sender failed: {}", String::from_utf8_lossy(&tx.stderr));
    let out = rx.wait_with_output().expect("receiver");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("RECV ")).expect("receiver result");
    let v: Vec<u64> = line.split_whitespace().map(|x| x.parse().unwrap_or(u64::MAX)).collect();
    let recv = Recv {
        count: v[0] as usize,
        digest: v[1],
        first_bad: (v[2] != u64::MAX).then_some(v[2] as usize),
    };
    eprintln!("phase {traffic}: received {}, stopping the censor", recv.count);
    drop(censor.stdin.take());
    let out = censor.wait_with_output().expect("censor");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("CENSOR ")).expect("censor result");
    (serde_json::from_str(line).expect("censor result JSON"), recv)
}

fn wait_ready(c: &mut Child, what: &str) {
    let out = c.stdout.as_mut().expect("stdout");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = out.read(&mut b).expect("read");
        assert!(n > 0, "{what} exited before it was ready");
        if b[0] == b'\n' {
            if line == b"ready" {
                return;
            }
            line.clear();
        } else {
            line.push(b[0]);
        }
    }
}

// ---------------------------------------------------------------- censor

fn count_dir(p: &str) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

fn count_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0)
}

fn censor() {
    let arg: CensorArg =
        serde_json::from_str(&std::env::var(ARG).expect("arg")).expect("censor arg");
    let policy = Policy::compile(&arg.policy, &|_| None).expect("policy");
    let mut engine = Engine::new(policy, 1);
    // Warm the allocator and the maps count before measuring.
    let (fds_before, maps_before) = (count_dir("/proc/self/fd"), count_maps());
    let mut bridge =
        Bridge::open_with(&arg.inside, &arg.outside, 0, arg.bridge).expect("open the bridge");
    let (fds_open, maps_open) = (count_dir("/proc/self/fd"), count_maps());
    let ring = bridge.io_mode() == BridgeIo::Ring;
    println!("\nready"); // on its own line after libtest's "test inner ... "
    std::io::stdout().flush().expect("flush");
    bridge.run(&mut engine, std::io::stdin().as_raw_fd(), &mut NoRecorder).expect("bridge run");
    let (stats, io) = (bridge.stats.clone(), bridge.io.clone());
    drop(bridge);
    let (fds_after, maps_after) = (count_dir("/proc/self/fd"), count_maps());
    let res = CensorResult {
        report: engine.report(),
        received: stats.received,
        sent: stats.sent,
        send_errors: stats.send_errors,
        oversize: stats.oversize,
        io,
        ring,
        fds_before,
        fds_open,
        fds_after,
        maps_before,
        maps_open,
        maps_after,
    };
    println!("CENSOR {}", serde_json::to_string(&res).expect("json"));
}

// ---------------------------------------------------------------- receiver and sender

fn set_buf(sock: &UdpSocket, opt: libc::c_int) {
    let v: libc::c_int = 32 << 20;
    // SAFETY: v is a live c_int; a failure leaves the default size (and the test then
    // reports the loss).
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
}

/// Receives until 1.5 s of silence (or the blast's count); prints
/// `RECV count digest first_bad` (first_bad: index of the first blast datagram that differs
/// from the generator, or -1).
fn receiver() {
    let traffic = std::env::var(ARG).expect("arg");
    let sock = UdpSocket::bind(SocketAddr::new(CALLEE.parse().expect("addr"), PORT)).expect("bind");
    set_buf(&sock, libc::SO_RCVBUFFORCE);
    sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    println!("\nready"); // on its own line after libtest's "test inner ... "
    std::io::stdout().flush().expect("flush");
    let mut buf = vec![0u8; 2048];
    let (mut n, mut d, mut bad) = (0usize, Digest::new(), None);
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while last.elapsed() < Duration::from_millis(1500) && Instant::now() < deadline {
        let Ok(len) = sock.recv(&mut buf) else { continue };
        last = Instant::now();
        let p = &buf[..len];
        if traffic == "blast" && bad.is_none() && p != blast_payload(n).as_slice() {
            bad = Some(n);
        }
        d.add(p);
        n += 1;
        if traffic == "blast" && n == BLAST_COUNT {
            break;
        }
    }
    let bad = bad.map_or("-1".to_string(), |b| b.to_string());
    println!("RECV {n} {} {bad}", d.0);
}

const MIXED_PER_STREAM: usize = 200;

fn sender() {
    let traffic = std::env::var(ARG).expect("arg");
    let to = |port: u16| {
        let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
        set_buf(&s, libc::SO_SNDBUFFORCE);
        s.connect(SocketAddr::new(CALLEE.parse().expect("addr"), port)).expect("connect");
        s
    };
    // Resolve the path first (ARP on each hop): datagrams to the discard port draw ICMP
    // port unreachable back through the censor.
    let warm = to(9);
    for _ in 0..5 {
        let _ = warm.send(b"warm-up");
        std::thread::sleep(Duration::from_millis(40));
    }
    let send = |s: &UdpSocket, p: &[u8]| {
        // A full buffer is retried: the test is about the path, not the sender.
        for _ in 0..1000 {
            if s.send(p).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        panic!("could not send a datagram");
    };
    if traffic == "blast" {
        let s = to(PORT);
        for j in 0..BLAST_COUNT {
            send(&s, &blast_payload(j));
        }
        return;
    }
    // Mixed, paced: a plain flow, a flow to a port a rule drops, a flow that opens with STUN.
    let (plain, dropped, stun) = (to(PORT), to(PORT + 1), to(PORT));
    send(&stun, &stun_binding(7));
    for seq in 0..MIXED_PER_STREAM as u32 {
        send(&plain, &mixed_payload(0, seq));
        send(&dropped, &mixed_payload(1, seq));
        send(&stun, &mixed_payload(2, seq));
        std::thread::sleep(Duration::from_micros(300));
    }
}
