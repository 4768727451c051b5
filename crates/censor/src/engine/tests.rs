//! Tests of the whole pipeline: frames in, verdicts, transmits, counters and decisions out.

use super::effects::ge_bad_after;
use super::*;
use crate::policy::raw;
use callwall_wire::packet::build;
use callwall_wire::packet::TcpInfo;
use callwall_wire::stun::StunRepr;
use proptest::prelude::*;
use std::net::IpAddr;

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const MS: u64 = 1_000_000;

fn engine(policy: &str, seed: u64) -> Engine {
    let raw: raw::Policy = toml::from_str(policy).expect("policy parses");
    let resolve = |n: &str| (n == "relay").then(|| vec!["10.3.0.2".parse().unwrap()]);
    Engine::new(Policy::compile(&raw, &resolve).expect("policy compiles"), seed)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn up_udp(sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Vec<u8> {
    build::udp(CLIENT_MAC, ROUTER_MAC, (ip("10.1.0.2"), sport), (ip(dst), dport), payload)
}

fn down_udp(src: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    build::udp(ROUTER_MAC, CLIENT_MAC, (ip(src), sport), (ip("10.1.0.2"), dport), payload)
}

#[test]
fn passes_by_default_and_counts() {
    let mut e = engine("", 1);
    for i in 0..10 {
        assert_eq!(
            e.handle_frame(i * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x")),
            Verdict::Forward
        );
    }
    let r = e.report();
    assert_eq!(r.rules.last().unwrap().name, "default-pass");
    assert_eq!(r.rules.last().unwrap().counters.forwarded, 10);
    assert_eq!(r.stats.flows_created, 1);
}

#[test]
fn first_matching_rule_wins() {
    let mut e = engine(
        r#"
        [[rules]]
        name = "allow-dns"
        match = { proto = "udp", dst_port = "53" }
        action = "pass"
        [[rules]]
        name = "drop-udp"
        match = { proto = "udp" }
        action = "drop"
        "#,
        1,
    );
    assert_eq!(e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 53, b"q")), Verdict::Forward);
    assert_eq!(e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"q")), Verdict::Drop);
    let r = e.report();
    assert_eq!(r.rules[0].counters.forwarded, 1);
    assert_eq!(r.rules[1].counters.dropped, 1);
    assert_eq!(r.deciding_rule(ip("10.1.0.2")), Some("drop-udp"));
}

#[test]
fn server_side_matches_use_the_flow_not_the_packet() {
    let mut e = engine(
        r#"
        [[rules]]
        name = "relay-port"
        match = { server_port = "3478", server = ["relay"] }
        action = "drop"
        "#,
        1,
    );
    // The reply from the relay has source port 3478, but the flow's server is the relay.
    assert_eq!(e.handle_frame(0, Dir::Up, &up_udp(4000, "10.3.0.2", 3478, b"a")), Verdict::Drop);
    assert_eq!(
        e.handle_frame(MS, Dir::Down, &down_udp("10.3.0.2", 3478, 4000, b"b")),
        Verdict::Drop
    );
    assert_eq!(
        e.handle_frame(MS, Dir::Up, &up_udp(4000, "10.2.0.2", 3478, b"c")),
        Verdict::Forward
    );
}

#[test]
fn activation_window() {
    let mut e = engine(
        r#"
        [[rules]]
        name = "later"
        active = { from = "5s", until = "8s" }
        action = "drop"
        "#,
        1,
    );
    let f = up_udp(4000, "10.2.0.2", 5000, b"x");
    assert_eq!(e.handle_frame(4_999 * MS, Dir::Up, &f), Verdict::Forward);
    assert_eq!(e.handle_frame(5_000 * MS, Dir::Up, &f), Verdict::Drop);
    assert_eq!(e.handle_frame(8_000 * MS, Dir::Up, &f), Verdict::Forward);
}

#[test]
fn police_limits_the_rate_per_direction() {
    // 80 kbit/s = 10 000 B/s; 200-byte IP packets every 10 ms = 20 000 B/s offered.
    let mut e = engine(
        r#"
        [[rules]]
        name = "throttle"
        match = { proto = "udp" }
        action = { police = "80kbit", burst = "1500B" }
        "#,
        1,
    );
    let payload = [0u8; 172]; // 20 IP + 8 UDP + 172 = 200 bytes of IP
    let mut passed_up = 0;
    let mut passed_down = 0;
    // Forwarded now or held for tokens (released later): both get through.
    let through = |v| v != Verdict::Drop;
    for i in 0..1000u64 {
        if through(e.handle_frame(i * 10 * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, &payload)))
        {
            passed_up += 1;
        }
        if through(e.handle_frame(
            i * 10 * MS + 5 * MS,
            Dir::Down,
            &down_udp("10.2.0.2", 5000, 4000, &payload),
        )) {
            passed_down += 1;
        }
        while e.poll_transmit(i * 10 * MS + 5 * MS).is_some() {}
    }
    // 10 s at 10 000 B/s = 100 000 B = 500 packets (+ the initial bucket).
    assert!((495..=510).contains(&passed_up), "up {passed_up}");
    assert!((495..=510).contains(&passed_down), "down {passed_down}");
}

#[test]
fn police_holds_one_packet_for_its_missing_tokens_and_drops_the_rest() {
    // 80 kbit/s = 10 000 B/s, a bucket of 1500 B; 1000-byte IP packets.
    let mut e = engine(
        r#"
        [[rules]]
        name = "throttle"
        match = { proto = "udp" }
        action = { police = "80kbit", burst = "1500B" }
        [[rules]]
        name = "throttle-delayed"
        match = { proto = "tcp" }
        action = { police = "80kbit", burst = "1500B", delay = "10ms" }
        "#,
        1,
    );
    let p = up_udp(4000, "10.2.0.2", 5000, &[0u8; 972]);
    // The first fits (500 B left); the second lacks 500 B = 50 ms of tokens and waits; the
    // third meets the bucket in debt (a packet is waiting) and is dropped.
    assert_eq!(e.handle_frame(0, Dir::Up, &p), Verdict::Forward);
    assert_eq!(e.handle_frame(0, Dir::Up, &p), Verdict::Held);
    assert_eq!(e.handle_frame(MS, Dir::Up, &p), Verdict::Drop);
    assert_eq!(e.poll_timeout(), Some(50 * MS));
    assert!(e.poll_transmit(50 * MS - 1).is_none());
    assert_eq!(e.poll_transmit(50 * MS).map(|t| t.frame), Some(p.clone()));
    // Still dropped just before the waiting packet has paid its debt...
    assert_eq!(e.handle_frame(49 * MS, Dir::Up, &p), Verdict::Drop);
    // ...and at 100 ms the bucket holds 500 B again: the next packet waits 50 ms.
    assert_eq!(e.handle_frame(100 * MS, Dir::Up, &p), Verdict::Held);
    assert_eq!(e.poll_timeout(), Some(150 * MS));
    // The other direction has its own bucket.
    let d = down_udp("10.2.0.2", 5000, 4000, &[0u8; 972]);
    assert_eq!(e.handle_frame(100 * MS, Dir::Down, &d), Verdict::Forward);
    let c = &e.report().rules[0].counters;
    assert_eq!((c.forwarded, c.delayed, c.dropped), (2, 2, 2));
    assert_eq!(e.poll_transmit(150 * MS).map(|t| t.frame), Some(p));
    // With a delay, the wait comes first and the delay after it.
    let t = build::tcp(
        CLIENT_MAC,
        ROUTER_MAC,
        (ip("10.1.0.2"), 4000),
        (ip("10.2.0.2"), 443),
        1,
        1,
        0x18,
        &[0u8; 960],
    );
    assert_eq!(e.handle_frame(200 * MS, Dir::Up, &t), Verdict::Held);
    assert_eq!(e.handle_frame(200 * MS, Dir::Up, &t), Verdict::Held);
    let mut due = Vec::new();
    for ms in 200..300 {
        while e.poll_transmit(ms * MS).is_some() {
            due.push(ms);
        }
    }
    // The first leaves after the delay only; the second after 50 ms of wait plus the delay.
    assert_eq!(due, [210, 260]);
}

#[test]
fn delay_and_jitter_hold_frames() {
    let mut e = engine(
        r#"
        [[rules]]
        name = "slow"
        action = { delay = "50ms", jitter = "10ms" }
        "#,
        7,
    );
    let f = up_udp(4000, "10.2.0.2", 5000, b"x");
    assert_eq!(e.handle_frame(0, Dir::Up, &f), Verdict::Held);
    let due = e.poll_timeout().unwrap();
    assert!((50 * MS..60 * MS).contains(&due), "{due}");
    assert!(e.poll_transmit(due - 1).is_none());
    let t = e.poll_transmit(due).unwrap();
    assert_eq!((t.dir, t.frame), (Dir::Up, f));
    assert!(e.poll_timeout().is_none());
}

#[test]
fn loss_is_seeded_and_close_to_its_rate() {
    let run = |seed| {
        let mut e = engine("[[rules]]\nname = \"lossy\"\naction = { loss = \"20%\" }", seed);
        (0..5000u64)
            .map(|i| {
                e.handle_frame(i * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x"))
                    == Verdict::Drop
            })
            .collect::<Vec<_>>()
    };
    let a = run(3);
    assert_eq!(a, run(3), "same seed, same decisions");
    assert_ne!(a, run(4));
    let dropped = a.iter().filter(|d| **d).count();
    assert!((900..1100).contains(&dropped), "{dropped}");
}

/// The decisions for one flow (`10.1.0.2:ephemeral -> 10.2.0.2:5000` and back) while other
/// flows' packets are interleaved as `noise` says (how many of them before each packet).
fn decisions_of_one_flow(policy: &str, seed: u64, ephemeral: u16, noise: &[u64]) -> Vec<Verdict> {
    let mut e = engine(policy, seed);
    let mut out = Vec::new();
    for (i, &n) in noise.iter().enumerate() {
        // Our flow's own timing is fixed (a packet each way every 20 ms); others' vary.
        let t = (i as u64 + 1) * 20 * MS;
        for j in 0..n {
            let other = 6000 + (i as u16 + j as u16) % 7;
            e.handle_frame(t - MS, Dir::Up, &up_udp(other, "10.2.0.3", 5000, b"other"));
            e.handle_frame(t - MS, Dir::Down, &down_udp("10.2.0.3", 5000, other, b"other"));
        }
        out.push(e.handle_frame(t, Dir::Up, &up_udp(ephemeral, "10.2.0.2", 5000, b"mine")));
        out.push(e.handle_frame(t, Dir::Down, &down_udp("10.2.0.2", 5000, ephemeral, b"mine")));
    }
    while e.poll_transmit(u64::MAX).is_some() {}
    out
}

#[test]
fn a_flows_random_decisions_ignore_other_flows_and_its_ephemeral_port() {
    for policy in [
        "[[rules]]\nname = \"lossy\"\naction = { loss = \"20%\" }",
        "[[rules]]\nname = \"bursty\"\naction = { burst_loss = { p = \"5%\", r = \"30%\" } }",
        "[[rules]]\nname = \"coin\"\naction = { block_probability = \"50%\" }",
    ] {
        let quiet = vec![0u64; 400];
        let busy: Vec<u64> = (0..400u64).map(|i| (i * 7919) % 5).collect();
        let a = decisions_of_one_flow(policy, 11, 40000, &quiet);
        assert_eq!(a, decisions_of_one_flow(policy, 11, 40000, &busy), "{policy}: interleaving");
        assert_eq!(a, decisions_of_one_flow(policy, 11, 51234, &busy), "{policy}: ephemeral port");
        if !policy.contains("coin") {
            assert!(a.contains(&Verdict::Drop) && a.contains(&Verdict::Forward), "{policy}");
            assert_ne!(a, decisions_of_one_flow(policy, 12, 40000, &quiet), "{policy}: seed");
        }
    }
}

#[test]
fn jitter_of_a_flow_ignores_other_flows() {
    let policy = "[[rules]]\nname = \"slow\"\naction = { delay = \"50ms\", jitter = \"10ms\" }";
    let releases = |noise: &[u64]| {
        let mut e = engine(policy, 3);
        let mut t = 0;
        let mut out = Vec::new();
        for (i, &n) in noise.iter().enumerate() {
            for j in 0..n {
                t += MS;
                let other = 6000 + (i as u16 + j as u16) % 7;
                e.handle_frame(t, Dir::Up, &up_udp(other, "10.2.0.3", 5000, b"other"));
            }
            t += MS;
            let mine = up_udp(4000, "10.2.0.2", 5000, &(i as u32).to_be_bytes());
            e.handle_frame(t, Dir::Up, &mine);
            // Delay relative to the packet's own arrival: what the flow experiences.
            let sent = t;
            let mut held = Vec::new();
            while let Some(at) = e.poll_timeout() {
                while let Some(tx) = e.poll_transmit(at) {
                    if tx.frame == mine {
                        held.push(at - sent);
                    }
                }
                if !held.is_empty() {
                    break;
                }
            }
            out.extend(held);
        }
        out
    };
    let quiet = vec![0u64; 100];
    let busy: Vec<u64> = (0..100u64).map(|i| (i * 31) % 4).collect();
    let a = releases(&quiet);
    assert_eq!(a.len(), 100);
    assert_eq!(a, releases(&busy));
    assert!(a.iter().any(|&d| d != a[0]), "jitter varies");
}

#[test]
fn gilbert_elliott_steps_with_time_between_sparse_packets() {
    // One step: the per-packet probabilities.
    assert!((ge_bad_after(0.03, 0.3, true, 1) - 0.7).abs() < 1e-12);
    assert!((ge_bad_after(0.03, 0.3, false, 1) - 0.03).abs() < 1e-12);
    // Many steps: the stationary loss, whatever the state was.
    let pi = 0.03 / 0.33;
    assert!((ge_bad_after(0.03, 0.3, true, 1000) - pi).abs() < 1e-9);
    assert!((ge_bad_after(0.03, 0.3, false, 1000) - pi).abs() < 1e-9);
    // A flow sending once a second (a TCP retransmission backing off) does not stay in one
    // burst across its packets: its losses are close to independent at the mean rate.
    let mut e = engine(
        "[[rules]]\nname = \"bursty\"\naction = { burst_loss = { p = \"3%\", r = \"30%\" } }",
        5,
    );
    let drops: Vec<bool> = (0..20000u64)
        .map(|i| {
            e.handle_frame(i * 1000 * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x"))
                == Verdict::Drop
        })
        .collect();
    let lost = drops.iter().filter(|d| **d).count() as f64 / drops.len() as f64;
    assert!((0.07..0.11).contains(&lost), "{lost}");
    let pairs = drops.windows(2).filter(|w| w[0] && w[1]).count() as f64;
    let after_loss = pairs / drops.iter().filter(|d| **d).count() as f64;
    assert!(after_loss < 0.15, "P(loss | previous lost) = {after_loss}");
}

#[test]
fn gilbert_elliott_loss_comes_in_bursts() {
    let mut e = engine(
        "[[rules]]\nname = \"bursty\"\naction = { burst_loss = { p = \"2%\", r = \"20%\" } }",
        5,
    );
    let drops: Vec<bool> = (0..20000u64)
        .map(|i| {
            e.handle_frame(i * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x")) == Verdict::Drop
        })
        .collect();
    let lost = drops.iter().filter(|d| **d).count() as f64 / drops.len() as f64;
    // Stationary bad-state probability p/(p+r) = 0.02/0.22 ~ 9 %.
    assert!((0.06..0.13).contains(&lost), "{lost}");
    let runs = drops.windows(2).filter(|w| w[0] && !w[1]).count();
    let mean_burst = drops.iter().filter(|d| **d).count() as f64 / runs as f64;
    assert!(mean_burst > 3.0, "mean burst {mean_burst}");
}

#[test]
fn cut_after_and_freeze_after() {
    let mut e = engine("[[rules]]\nname = \"cut\"\naction = { cut_after = \"2s\" }", 1);
    assert_eq!(e.handle_frame(0, Dir::Up, &up_udp(1, "10.2.0.2", 2, b"x")), Verdict::Forward);
    assert_eq!(
        e.handle_frame(1_999 * MS, Dir::Down, &down_udp("10.2.0.2", 2, 1, b"x")),
        Verdict::Forward
    );
    assert_eq!(e.handle_frame(2_000 * MS, Dir::Up, &up_udp(1, "10.2.0.2", 2, b"x")), Verdict::Drop);

    let mut e = engine("[[rules]]\nname = \"freeze\"\naction = { freeze_after = \"1000B\" }", 1);
    let big = [0u8; 400];
    assert_eq!(e.handle_frame(0, Dir::Up, &up_udp(1, "10.2.0.2", 2, b"hello")), Verdict::Forward);
    let verdicts: Vec<Verdict> = (0..4)
        .map(|i| e.handle_frame(i * MS, Dir::Down, &down_udp("10.2.0.2", 2, 1, &big)))
        .collect();
    assert_eq!(verdicts, [Verdict::Forward, Verdict::Forward, Verdict::Drop, Verdict::Drop]);
    // The client's direction is not frozen.
    assert_eq!(e.handle_frame(9 * MS, Dir::Up, &up_udp(1, "10.2.0.2", 2, &big)), Verdict::Forward);
}

#[test]
fn reject_injects_rst_both_ways_for_tcp_and_icmp_for_udp() {
    let mut e = engine("[[rules]]\nname = \"rst\"\naction = \"reject\"", 1);
    let syn = build::tcp(
        CLIENT_MAC,
        ROUTER_MAC,
        (ip("10.1.0.2"), 40000),
        (ip("10.2.0.2"), 443),
        1000,
        0,
        TcpInfo::SYN,
        &[],
    );
    assert_eq!(e.handle_frame(0, Dir::Up, &syn), Verdict::Drop);
    let a = e.poll_transmit(0).unwrap();
    let b = e.poll_transmit(0).unwrap();
    assert_eq!(a.dir, Dir::Down);
    assert_eq!(b.dir, Dir::Up);
    let pa = Frame::parse(&a.frame).unwrap().ip.unwrap();
    match pa.l4 {
        L4::Tcp(t, info) => {
            assert_eq!((t.src_port, t.dst_port), (443, 40000));
            assert!(info.has(TcpInfo::RST));
            assert_eq!(info.ack, 1001, "acknowledges the SYN");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pa.src, ip("10.2.0.2"));
    assert_eq!(a.frame[0..6], CLIENT_MAC, "sent back to the client's MAC");
    // UDP gets ICMP port unreachable back to the sender, quoting the datagram.
    assert_eq!(e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x")), Verdict::Drop);
    let icmp = e.poll_transmit(0).unwrap();
    assert_eq!(icmp.dir, Dir::Down);
    let p = Frame::parse(&icmp.frame).unwrap().ip.unwrap();
    assert_eq!((p.proto, p.dst), (1, ip("10.1.0.2")));
    assert_eq!(build::checksum(0, &icmp.frame[34..]), 0, "valid ICMP checksum");
    assert_eq!(e.report().rules[0].counters.injected, 3);
}

#[test]
fn block_probability_is_per_flow_with_residual_on_the_3_tuple() {
    let mut e = engine(
        "[[rules]]\nname = \"fet\"\nmatch = { proto = \"udp\", dst_port = \"9000\" }\naction = { block_probability = \"50%\", residual = \"180s\" }",
        11,
    );
    let mut blocked_ports = Vec::new();
    for sport in 1000..1040u16 {
        let first = e.handle_frame(0, Dir::Up, &up_udp(sport, "10.2.0.2", 9000, b"x"));
        let second = e.handle_frame(MS, Dir::Up, &up_udp(sport, "10.2.0.2", 9000, b"y"));
        if first == Verdict::Drop {
            blocked_ports.push(sport);
        }
        if blocked_ports.is_empty() {
            assert_eq!(first, second, "the decision is per flow");
        }
    }
    assert!(!blocked_ports.is_empty());
    // After the first block every new flow to the 3-tuple is dropped (residual).
    assert_eq!(
        e.handle_frame(2 * MS, Dir::Up, &up_udp(2000, "10.2.0.2", 9000, b"z")),
        Verdict::Drop
    );
    // ...until it expires: then the packet is decided afresh, not by the residual block.
    let before = e.report().rules[0].counters.residual_dropped;
    assert!(before > 0);
    e.handle_frame(500_000 * MS, Dir::Up, &up_udp(2001, "10.2.0.2", 9000, b"z"));
    assert_eq!(e.report().rules[0].counters.residual_dropped, before);
    assert!(e.report().rules[0].counters.residual_dropped > 0);
}

#[test]
fn malformed_frames_follow_policy() {
    let mut e = engine("", 1);
    let mut f = up_udp(1, "10.2.0.2", 2, b"x");
    f[14] = 0x41; // IPv4 with IHL 1: invalid
    assert_eq!(e.handle_frame(0, Dir::Up, &f), Verdict::Forward);
    let mut e = engine("malformed = \"drop\"", 1);
    assert_eq!(e.handle_frame(0, Dir::Up, &f), Verdict::Drop);
    assert_eq!(e.stats().malformed, 1);
    // ARP passes.
    let mut arp = vec![0u8; 42];
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert_eq!(e.handle_frame(0, Dir::Up, &arp), Verdict::Forward);
}

#[test]
fn flow_table_is_bounded() {
    let mut e = engine("max_flows = 100", 1);
    for i in 0..10_000u32 {
        let sport = (i % 60000) as u16 + 1;
        let dst = format!("10.2.{}.{}", (i >> 8) & 0xff, i & 0xff);
        e.handle_frame(u64::from(i) * MS * 10, Dir::Up, &up_udp(sport, &dst, 5000, b"x"));
        assert!(e.flow_count() <= 100);
    }
    assert!(e.stats().flows_evicted + e.stats().flows_expired >= 9_900);
}

/// `last_flow` names the engine's own flow of each frame: the first sender is the client, a
/// reply is the server's side, and a 5-tuple back after its flow expired is a new flow.
#[test]
fn last_flow_is_the_engines_flow_of_the_frame() {
    use crate::flow_table::Side;
    let mut e = engine("flow_timeout = \"1s\"\nmax_flows = 16", 1);
    e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"hi"));
    let first = e.last_flow().expect("an IP frame has a flow");
    assert_eq!((first.serial, first.side), (1, Side::ClientToServer));
    assert_eq!(first.flow.client.to_string(), "10.1.0.2:4000");
    e.handle_frame(MS, Dir::Down, &down_udp("10.2.0.2", 5000, 4000, b"ho"));
    let reply = e.last_flow().expect("the reply has a flow");
    assert_eq!((reply.serial, reply.side, reply.flow), (1, Side::ServerToClient, first.flow));
    let mut arp = vec![0u8; 42];
    arp[12] = 0x08;
    arp[13] = 0x06;
    e.handle_frame(2 * MS, Dir::Up, &arp);
    assert_eq!(e.last_flow(), None);
    // Another flow after the timeout expires the first (the front of the table); the first
    // 5-tuple then comes back as flow 3, with the replying side now its client.
    e.handle_frame(2_000 * MS, Dir::Up, &up_udp(4001, "10.2.0.2", 5000, b"x"));
    assert_eq!(e.last_flow().map(|f| f.serial), Some(2));
    e.handle_frame(2_001 * MS, Dir::Down, &down_udp("10.2.0.2", 5000, 4000, b"ho"));
    let back = e.last_flow().expect("the 5-tuple has a flow again");
    assert_eq!((back.serial, back.side), (3, Side::ClientToServer));
    assert_eq!(back.flow.client.to_string(), "10.2.0.2:5000");
    assert_eq!(e.stats().flows_expired, 1);
}

#[test]
fn stun_attributes_and_per_direction_bytes_match() {
    let mut e = engine(
        r#"
        [[rules]]
        name = "wa-relay"
        match = { stun_username = ["*wa*"], min_client_bytes = "40B" }
        action = "drop"
        "#,
        1,
    );
    // A STUN Binding request with USERNAME "wa-user" (RFC 8489: padded to 8).
    let stun = StunRepr { username: Some(b"wa-user"), ..StunRepr::binding_request([9; 12]) };
    let stun = stun.to_bytes();
    assert_eq!(stun.len(), 32);
    // 32 bytes so far: below min_client_bytes.
    assert_eq!(
        e.handle_frame(0, Dir::Up, &up_udp(4000, "10.3.0.2", 3478, &stun)),
        Verdict::Forward
    );
    // 64 bytes: now it matches.
    assert_eq!(e.handle_frame(MS, Dir::Up, &up_udp(4000, "10.3.0.2", 3478, &stun)), Verdict::Drop);
    // Another flow without that USERNAME is left alone.
    let plain = [0x80u8; 64];
    assert_eq!(
        e.handle_frame(MS, Dir::Up, &up_udp(4001, "10.3.0.2", 3478, &plain)),
        Verdict::Forward
    );
}

/// A TLS 1.3-shaped ClientHello handshake message (RFC 8446 section 4.1.2) with an SNI.
fn client_hello(name: &str) -> Vec<u8> {
    let mut sni = vec![0];
    sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni.extend_from_slice(name.as_bytes());
    let mut list = (sni.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&sni);
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
    exts.extend_from_slice(&list);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    hs
}

fn tls_record(fragment: &[u8]) -> Vec<u8> {
    let mut r = vec![22, 3, 1];
    r.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
    r.extend_from_slice(fragment);
    r
}

#[test]
fn first_packet_sni_is_defeated_by_record_splitting_reassembly_is_not() {
    let hello = client_hello("api.twitter.com");
    let whole = tls_record(&hello);
    let mut split = tls_record(&hello[..10]);
    split.extend_from_slice(&tls_record(&hello[10..]));
    let seg = |sport: u16, payload: &[u8]| {
        build::tcp(
            CLIENT_MAC,
            ROUTER_MAC,
            (ip("10.1.0.2"), sport),
            (ip("10.3.0.2"), 443),
            1,
            1,
            0x18,
            payload,
        )
    };
    for (first_packet, split_verdict) in [(true, Verdict::Forward), (false, Verdict::Drop)] {
        let mut e = engine(
            &format!(
                r#"
                [[rules]]
                name = "sni"
                match = {{ sni = ["*twitter.com"], sni_first_packet = {first_packet} }}
                action = "drop"
                "#
            ),
            1,
        );
        assert_eq!(e.handle_frame(0, Dir::Up, &seg(5000, &whole)), Verdict::Drop);
        assert_eq!(e.handle_frame(0, Dir::Up, &seg(5001, &split)), split_verdict);
    }
    let bad = "[[rules]]\nname = \"x\"\nmatch = { sni_first_packet = true }\naction = \"drop\"\n";
    let raw: raw::Policy = toml::from_str(bad).unwrap();
    let err = Policy::compile(&raw, &|_: &str| None).unwrap_err().to_string();
    assert!(err.contains("sni_first_packet"), "{err}");
}

#[test]
fn inspect_packets_zero_skips_classification() {
    let mut e = engine("inspect_packets = 0", 1);
    let stun = StunRepr::binding_request([9; 12]).to_bytes();
    e.handle_frame(0, Dir::Up, &up_udp(4000, "10.3.0.2", 3478, &stun));
    assert!(e.flows.values().all(|f| f.inspector.is_none()));
    let raw: raw::Policy = toml::from_str(
        "inspect_packets = 0\n[[rules]]\nname = \"s\"\nmatch = { label = [\"stun\"] }\naction = \"drop\"\n",
    )
    .unwrap();
    let err = Policy::compile(&raw, &|_: &str| None).unwrap_err().to_string();
    assert!(err.contains("inspect_packets = 0"), "{err}");
}

#[test]
fn decision_log_records_changes_only() {
    let mut e =
        engine("[[rules]]\nname = \"late\"\nactive = { from = \"1s\" }\naction = \"drop\"", 1);
    for i in 0..20u64 {
        e.handle_frame(i * 100 * MS, Dir::Up, &up_udp(4000, "10.2.0.2", 5000, b"x"));
    }
    let events: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!((events[0].rule.as_str(), events[0].outcome), ("default-pass", Outcome::Forward));
    assert!(events[0].default_rule && !events[0].is_notable());
    assert_eq!((events[1].rule.as_str(), events[1].outcome), ("late", Outcome::Drop));
    assert!(!events[1].default_rule && events[1].is_notable());
    assert_eq!(events[1].flow.to_string(), "udp 10.1.0.2:4000 -> 10.2.0.2:5000");
}

proptest! {
    #[test]
    fn random_frames_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..50)) {
        let mut e = engine("[[rules]]\nname = \"mix\"\nmatch = { proto = \"udp\" }\naction = { police = \"100kbit\", loss = \"10%\", delay = \"1ms\" }", 1);
        for (i, f) in frames.iter().enumerate() {
            let dir = if i % 2 == 0 { Dir::Up } else { Dir::Down };
            e.handle_frame(i as u64 * MS, dir, f);
            while e.poll_transmit(i as u64 * MS + 10 * MS).is_some() {}
        }
    }
}

// Live control: rules switched and policies swapped while flows run.

const TWO_RULES: &str = r#"
    [[rules]]
    name = "drop-udp-9000"
    match = { proto = "udp", dst_port = "9000" }
    action = "drop"
    [[rules]]
    name = "delay-udp"
    match = { proto = "udp" }
    action = { delay = "50ms" }
    "#;

fn no_load(_: &std::path::Path) -> Result<Policy, String> {
    Err("no policies in this test".into())
}

fn control_events(e: &mut Engine) -> Vec<(String, &'static str)> {
    use crate::control::Change;
    std::iter::from_fn(|| e.poll_control_event())
        .map(|ev| match ev.change {
            Change::RuleOn { name, .. } => (name, "rule-on"),
            Change::RuleOff { name, .. } => (name, "rule-off"),
            Change::PolicySwap { source, .. } => (source, "policy-swap"),
        })
        .collect()
}

#[test]
fn disabling_a_rule_lets_the_next_one_decide_and_is_logged() {
    use crate::control::{Change, Command, RuleRef};
    let mut e = engine(TWO_RULES, 1);
    let pkt = up_udp(4000, "10.2.0.2", 9000, b"voice");
    assert_eq!(e.handle_frame(0, Dir::Up, &pkt), Verdict::Drop);
    let r = e.control(
        10 * MS,
        &Command::Disable { rule: RuleRef::Name("drop-udp-9000".into()) },
        &mut no_load,
    );
    assert!(r.ok, "{r:?}");
    assert_eq!(r.change, Some(Change::RuleOff { index: 1, name: "drop-udp-9000".into() }));
    assert!(!r.rules[0].enabled && r.rules[1].enabled);
    assert_eq!(r.rules[0].dropped, 1);
    // Same flow, next packet: the first rule is skipped, the second holds it.
    assert_eq!(e.handle_frame(20 * MS, Dir::Up, &pkt), Verdict::Held);
    assert_eq!(e.flow_count(), 1);
    // Disabling again is a no-op, not a second log line.
    let r = e.control(30 * MS, &Command::Disable { rule: RuleRef::Index(1) }, &mut no_load);
    assert!(r.ok && r.change.is_none());
    // Toggle back on: dropped again.
    let r = e.control(40 * MS, &Command::Toggle { rule: RuleRef::Index(1) }, &mut no_load);
    assert_eq!(r.change, Some(Change::RuleOn { index: 1, name: "drop-udp-9000".into() }));
    assert_eq!(e.handle_frame(50 * MS, Dir::Up, &pkt), Verdict::Drop);
    assert_eq!(
        control_events(&mut e),
        vec![("drop-udp-9000".into(), "rule-off"), ("drop-udp-9000".into(), "rule-on")]
    );
    let r = e.report();
    assert_eq!(r.rules[0].counters.dropped, 2);
    assert_eq!(r.rules[1].counters.delayed, 1);
}

#[test]
fn unknown_rules_are_errors_that_change_nothing() {
    use crate::control::{Command, RuleRef};
    let mut e = engine(TWO_RULES, 1);
    let two = vec!["drop-udp-9000".to_string(), "delay-udp".to_string()];
    for rule in [RuleRef::Index(3), RuleRef::Name("nope".into())] {
        let unknown = crate::control::UnknownRule { rule: rule.clone(), rules: two.clone() };
        assert_eq!(e.rule_index(&rule), Err(unknown));
        let r = e.control(0, &Command::Toggle { rule }, &mut no_load);
        assert!(!r.ok);
        let msg = r.error.unwrap();
        assert!(msg.contains("from 1 to 2") && msg.contains("1 drop-udp-9000"), "{msg}");
        assert!(r.rules.iter().all(|s| s.enabled));
    }
    let r = e.control(0, &Command::Swap { policy: "x.toml".into() }, &mut no_load);
    assert_eq!(r.error.as_deref(), Some("no policies in this test"));
    assert_eq!(e.policy().rules.len(), 2);
    assert!(control_events(&mut e).is_empty());
}

#[test]
fn disabling_a_rule_lifts_its_residual_blocks() {
    use crate::control::{Command, RuleRef};
    let mut e = engine(
        "[[rules]]\nname = \"big\"\nmatch = { proto = \"udp\", dst_port = \"9000\", min_payload = 2 }\naction = { drop = true, residual = \"180s\" }",
        1,
    );
    assert_eq!(e.handle_frame(0, Dir::Up, &up_udp(4000, "10.2.0.2", 9000, b"aa")), Verdict::Drop);
    // A new flow to the same 3-tuple that the rule does not match is dropped by the
    // residual block...
    assert_eq!(e.handle_frame(MS, Dir::Up, &up_udp(4001, "10.2.0.2", 9000, b"a")), Verdict::Drop);
    assert_eq!(e.report().rules[0].counters.residual_dropped, 1);
    e.control(2 * MS, &Command::Disable { rule: RuleRef::Index(1) }, &mut no_load);
    // ...until the rule is switched off.
    assert_eq!(
        e.handle_frame(3 * MS, Dir::Up, &up_udp(4002, "10.2.0.2", 9000, b"a")),
        Verdict::Forward
    );
}

#[test]
fn swapping_the_policy_keeps_flows_and_carries_counters_by_name() {
    use crate::control::{Change, Command};
    let mut e = engine(TWO_RULES, 1);
    let voice = up_udp(4000, "10.2.0.2", 9000, b"voice");
    let other = up_udp(4001, "10.2.0.2", 7000, b"other");
    assert_eq!(e.handle_frame(0, Dir::Up, &voice), Verdict::Drop);
    assert_eq!(e.handle_frame(0, Dir::Up, &other), Verdict::Held);
    let raw: raw::Policy = toml::from_str(
        r#"
        [[rules]]
        name = "delay-udp"
        match = { proto = "udp", dst_port = "7000" }
        action = "drop"
        "#,
    )
    .unwrap();
    let new = Policy::compile(&raw, &|_| None).unwrap();
    let mut load = |p: &std::path::Path| {
        assert_eq!(p, std::path::Path::new("scenarios/other.toml"));
        Ok::<_, String>(new.clone())
    };
    let r = e.control(5 * MS, &Command::Swap { policy: "scenarios/other.toml".into() }, &mut load);
    assert!(r.ok);
    assert_eq!(
        r.change,
        Some(Change::PolicySwap { source: "scenarios/other.toml".into(), rules: 1 })
    );
    assert_eq!(e.flow_count(), 2, "the flow table is kept");
    // The rule with the same name keeps its counters; the other's leave the report.
    assert_eq!(r.rules.len(), 1);
    assert_eq!((r.rules[0].name.as_str(), r.rules[0].delayed), ("delay-udp", 1));
    // Running flows meet the new policy at their next packet.
    assert_eq!(e.handle_frame(6 * MS, Dir::Up, &voice), Verdict::Forward);
    assert_eq!(e.handle_frame(6 * MS, Dir::Up, &other), Verdict::Drop);
    let report = e.report();
    assert_eq!(report.rules.len(), 2);
    assert_eq!(report.rules[0].counters.dropped, 1);
    assert_eq!(report.rules[1].counters.forwarded, 1);
    assert_eq!(control_events(&mut e), vec![("scenarios/other.toml".into(), "policy-swap")]);
}

#[test]
fn pass_rules_count_each_flow_once_without_rule_state() {
    // 70 rules: pass rules below index 64 are noted in the flow's mask, the one at index 69
    // (and the default action, index 70) in rule state; each counts a flow once however
    // many of its packets it decides, and again after a policy swap.
    let mut policy = String::new();
    for i in 0..70 {
        let action = if i == 1 { r#"{ loss = "0%" }"# } else { r#""pass""# };
        policy += &format!(
            "[[rules]]\nname = \"r{i}\"\nmatch = {{ proto = \"udp\", dst_port = \"{}\" }}\naction = {action}\n",
            6000 + i
        );
    }
    let mut e = engine(&policy, 1);
    for t in 0..3 {
        for port in [6000, 6001, 6069, 7000] {
            let f = up_udp(4000, "10.2.0.2", port, b"x");
            assert_eq!(e.handle_frame(t * MS, Dir::Up, &f), Verdict::Forward);
        }
    }
    let flows = |e: &Engine| e.report().rules.iter().map(|r| r.counters.flows).collect::<Vec<_>>();
    let counted = flows(&e);
    assert_eq!(counted.len(), 71);
    for (i, n) in counted.iter().enumerate() {
        assert_eq!(*n, u64::from([0, 1, 69, 70].contains(&i)), "rule {i}: {n} flows");
    }
    for flow in e.flows.values() {
        let with_state = flow.rules.iter().map(|r| r.rule).collect::<Vec<_>>();
        match flow.server.port {
            6000 => assert_eq!((flow.passed, with_state), (1, vec![])),
            6001 => assert_eq!((flow.passed, with_state), (0, vec![1])),
            6069 => assert_eq!((flow.passed, with_state), (0, vec![69])),
            _ => assert_eq!((flow.passed, with_state), (0, vec![70])),
        }
    }
    let swapped = {
        let raw: raw::Policy = toml::from_str(&policy).unwrap();
        Policy::compile(&raw, &|_| None).unwrap()
    };
    let mut load = |_: &std::path::Path| Ok::<_, String>(swapped.clone());
    let r =
        e.control(3 * MS, &crate::control::Command::Swap { policy: "same.toml".into() }, &mut load);
    assert!(r.ok);
    for port in [6000, 6001, 6069, 7000] {
        e.handle_frame(4 * MS, Dir::Up, &up_udp(4000, "10.2.0.2", port, b"x"));
    }
    let counted = flows(&e);
    for (i, n) in counted.iter().enumerate() {
        assert_eq!(*n, 2 * u64::from([0, 1, 69, 70].contains(&i)), "rule {i} after the swap");
    }
}
