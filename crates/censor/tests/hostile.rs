//! Hostile traffic: a million random and mutated frames through the engine with a rule set
//! that exercises every classifier, without a panic, with the flow table within its cap.

use std::net::IpAddr;

use callwall_censor::policy::{raw, Policy};
use callwall_censor::{Dir, Engine};
use callwall_wire::packet::{build, TcpInfo};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const POLICY: &str = r#"
max_flows = 4096
[[rules]]
name = "sni"
match = { sni = ["*.blocked.example"], label = ["quic-initial", "tls-client-hello"] }
action = { drop = true, residual = "30s" }
[[rules]]
name = "dtls"
match = { dtls_fingerprint = ["0123456789abcdef"] }
action = "reject"
[[rules]]
name = "stun"
match = { first_label = ["stun"], server_port = ["3478", "596-599"] }
action = { police = "64kbit", burst_loss = { p = "5%", r = "30%" } }
[[rules]]
name = "fet"
match = { proto = "tcp", label = ["fully-encrypted"] }
action = { block_probability = "26%", residual = "120s" }
[[rules]]
name = "freeze"
match = { proto = "tcp", server_port = "443" }
action = { freeze_after = "16KiB", delay = "1ms", jitter = "1ms" }
[[rules]]
name = "wg"
match = { label = ["wireguard", "wireguard-handshake"] }
action = { cut_after = "1s" }
"#;

fn seeds() -> Vec<Vec<u8>> {
    let a: IpAddr = "10.1.0.2".parse().unwrap();
    let b: IpAddr = "10.2.0.2".parse().unwrap();
    let m1 = [2, 0, 0, 0, 0, 1];
    let m2 = [2, 0, 0, 0, 0, 2];
    let stun = callwall_wire::stun::StunRepr::binding_request([7; 12]).to_bytes();
    let mut dtls = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60, 1, 0, 0, 48];
    dtls.extend_from_slice(&[0xab; 60]);
    let mut quic = vec![0xc3, 0, 0, 0, 1, 8];
    quic.extend_from_slice(&[0x11; 8]);
    quic.extend_from_slice(&[0, 0, 0x44, 0xd0]);
    quic.resize(1200, 0x5a);
    let mut wg = vec![1, 0, 0, 0];
    wg.resize(148, 0x33);
    let tls = [0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
    vec![
        build::udp(m1, m2, (a, 40000), (b, 3478), &stun),
        build::udp(m1, m2, (a, 40001), (b, 5004), &dtls),
        build::udp(m1, m2, (a, 40002), (b, 443), &quic),
        build::udp(m1, m2, (a, 40003), (b, 51820), &wg),
        build::tcp(m1, m2, (a, 40004), (b, 443), 1, 1, TcpInfo::PSH | TcpInfo::ACK, &tls),
        build::tcp(m1, m2, (a, 40005), (b, 8443), 1, 1, TcpInfo::PSH | TcpInfo::ACK, &[0xe7; 300]),
        build::udp(
            m1,
            m2,
            ("fd00:1::2".parse().unwrap(), 40006),
            ("fd00:2::2".parse().unwrap(), 3478),
            &stun,
        ),
    ]
}

#[test]
fn a_million_hostile_frames_do_not_panic_and_memory_stays_bounded() {
    let raw: raw::Policy = toml::from_str(POLICY).unwrap();
    let policy = Policy::compile(&raw, &|_: &str| None).unwrap();
    let mut e = Engine::new(policy, 7);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let seeds = seeds();
    let mut buf = Vec::with_capacity(2048);
    for i in 0..1_000_000u64 {
        buf.clear();
        match rng.gen_range(0..10) {
            // Pure noise of any length.
            0 => {
                let n = rng.gen_range(0..200);
                buf.extend((0..n).map(|_| rng.gen::<u8>()));
            }
            // A seed frame, truncated.
            1 | 2 => {
                let s = &seeds[rng.gen_range(0..seeds.len())];
                buf.extend_from_slice(&s[..rng.gen_range(0..=s.len())]);
            }
            // A seed frame with random bytes flipped (lengths, ports, addresses, headers).
            _ => {
                let s = &seeds[rng.gen_range(0..seeds.len())];
                buf.extend_from_slice(s);
                for _ in 0..rng.gen_range(1..6) {
                    let at = rng.gen_range(0..buf.len());
                    buf[at] = rng.gen();
                }
            }
        }
        let dir = if rng.gen_bool(0.5) { Dir::Up } else { Dir::Down };
        let now = i * 10_000;
        e.handle_frame(now, dir, &buf);
        while e.poll_transmit(now + 5_000_000).is_some() {}
        while e.poll_event().is_some() {}
        assert!(e.flow_count() <= 4096);
    }
    let s = e.stats();
    assert_eq!(s.frames, 1_000_000);
    assert!(s.malformed > 10_000, "the corpus must exercise the malformed path: {s:?}");
    assert!(s.flows_evicted + s.flows_expired > 1000, "the flood must hit the flow cap: {s:?}");
}
