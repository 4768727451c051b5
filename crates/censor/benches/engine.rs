//! Engine throughput: frames per second through the sans-I/O engine with a pass-through
//! policy and with a realistic DPI rule set (SNI on decrypted QUIC Initials, DTLS fingerprint,
//! STUN, the fully-encrypted test, policing), as a ratio measured in the same run.
//!
//! Run: `cargo bench -p callwall-censor --bench engine`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use callwall_censor::policy::{raw, Policy};
use callwall_censor::{Dir, Engine};
use callwall_wire::packet::build;

const HEAVY: &str = r#"
[[rules]]
name = "quic-sni"
match = { proto = "udp", sni = ["*.blocked.example", "*twimg*"], label = ["quic-initial"] }
action = { drop = true, residual = "180s" }
[[rules]]
name = "dtls-fp"
match = { proto = "udp", dtls_fingerprint = ["0123456789abcdef"] }
action = "drop"
[[rules]]
name = "stun-relays"
match = { proto = "udp", first_label = ["stun"], server_port = ["3478", "596-599", "1400"] }
action = { police = "64kbit", loss = "10%" }
[[rules]]
name = "fet"
match = { proto = "tcp", label = ["fully-encrypted"] }
action = { block_probability = "26%", residual = "120s" }
[[rules]]
name = "wg"
match = { label = ["wireguard-handshake"] }
action = "drop"
"#;

fn frames(n_flows: u16) -> Vec<(Dir, Vec<u8>)> {
    let a: IpAddr = "10.1.0.2".parse().unwrap();
    let b: IpAddr = "10.2.0.2".parse().unwrap();
    let mut out = Vec::new();
    // RTP-like 160-byte datagrams over many flows, both directions.
    let mut rtp = [0u8; 118];
    rtp[0] = 0x80;
    rtp[1] = 111;
    for i in 0..20_000u32 {
        let port = 10_000 + (i % u32::from(n_flows)) as u16;
        if i % 2 == 0 {
            out.push((
                Dir::Up,
                build::udp([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], (a, port), (b, 5004), &rtp),
            ));
        } else {
            out.push((
                Dir::Down,
                build::udp([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], (b, 5004), (a, port), &rtp),
            ));
        }
    }
    out
}

/// Best of 5 passes of 10 times `frames`.
fn measure(policy: &str, frames: &[(Dir, Vec<u8>)]) -> f64 {
    let raw: raw::Policy = toml::from_str(policy).expect("policy");
    let compiled = Policy::compile(&raw, &|_: &str| None).expect("compiles");
    let mut best = 0.0f64;
    for _ in 0..5 {
        let mut e = Engine::new(compiled.clone(), 1);
        e.set_event_log(false);
        let start = Instant::now();
        let mut t = 0u64;
        for _ in 0..10 {
            for (dir, f) in frames {
                t += 1000;
                black_box(e.handle_frame(t, *dir, f));
                while e.poll_transmit(t).is_some() {}
            }
        }
        let pps = (frames.len() * 10) as f64 / start.elapsed().as_secs_f64();
        best = best.max(pps);
    }
    best
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A flood of new flows (each frame a new 5-tuple) against the default 65 536-flow cap:
/// memory must level off at the cap.
fn flood() {
    let raw: raw::Policy = toml::from_str("").expect("policy");
    let mut e = Engine::new(Policy::compile(&raw, &|_: &str| None).expect("compiles"), 1);
    e.set_event_log(false);
    let a: IpAddr = "10.1.0.2".parse().unwrap();
    let before = rss_kib();
    let mut at_cap = 0;
    let start = Instant::now();
    for i in 0..2_000_000u32 {
        let dst = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff)));
        let f = build::udp(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            (a, 1024 + (i % 60000) as u16),
            (dst, 5000),
            b"flood",
        );
        e.handle_frame(u64::from(i) * 1000, Dir::Up, &f);
        if i == 200_000 {
            at_cap = rss_kib();
        }
        if i > 0 && i % 400_000 == 0 {
            println!("  after {i:>7} flows: RSS {} KiB", rss_kib());
        }
    }
    let after = rss_kib();
    println!(
        "flow flood: 2 000 000 new flows in {:.2}s, table capped at {} flows",
        start.elapsed().as_secs_f64(),
        e.flow_count()
    );
    println!("  RSS before {before} KiB, at 200k flows {at_cap} KiB, at 2M flows {after} KiB (growth after the cap: {} KiB)", after.saturating_sub(at_cap));
    println!("  evicted {}, expired {}", e.stats().flows_evicted, e.stats().flows_expired);
}

fn main() {
    let f = frames(64);
    let pass = measure("", &f);
    let heavy = measure(HEAVY, &f);
    println!("engine, 160-byte UDP frames, 64 flows, best of 5:");
    println!("  pass-through policy : {:>12.0} frames/s", pass);
    println!("  heavy DPI policy    : {:>12.0} frames/s", heavy);
    println!("  ratio heavy/pass    : {:>12.2}", heavy / pass);
    flood();
}
