//! The UDP bypasses of issue 15 (noise, quic, reflector) through the real censor: each test is
//! a small inline policy and pairs of calls, the call WITHOUT the bypass blocked, degraded or
//! cut by the rule, the same call WITH the bypass connected. Calls are 3 s long.

use serde_json::Value;

use crate::common::*;

/// Runs one inline scenario (policy and calls in `body`) on the default topology, 3 s calls.
fn run_inline(name: &str, body: &str) -> (i32, Value, std::process::Output) {
    let tmp = TempDir::new(name);
    let path = tmp.path().join(format!("{name}.toml"));
    let topology = repo().join("netns/censored-call.toml");
    let text = format!(
        "name = \"{name}\"\ntopology = \"{}\"\nseed = 1\n{body}\n[defaults]\nduration = \"3s\"\nconnect_timeout = \"3s\"\n",
        topology.display()
    );
    std::fs::write(&path, text).unwrap();
    run_scenarios(&[path.to_str().unwrap()], &[])
}

fn call<'a>(v: &'a Value, out: &std::process::Output, name: &str) -> &'a Value {
    v["runs"][0]["calls"]
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("call {name} missing\n{}", dump(out, v)))
}

/// Asserts each `(call, verdict)` and, for the ones the rule hit, the rule named.
fn check(v: &Value, out: &std::process::Output, want: &[(&str, &str, Option<&str>)]) {
    for (name, verdict, rule) in want {
        let c = call(v, out, name);
        assert_eq!(c["verdict"], *verdict, "{name}: {}\n{}", c["reason"], dump(out, v));
        if let Some(rule) = rule {
            assert_eq!(c["rule"], *rule, "{name}\n{}", dump(out, v));
        }
    }
}

/// The August 2025 call restriction (STUN first to relay ports: loss + policing) and the 2022
/// TSPU QUIC rule (outbound UDP to 443, >= 1001 bytes, first packet a QUIC v1 Initial: drop;
/// a flow whose first packet is not QUIC is never checked), against the decoy first datagram,
/// and the TSPU rule against QUIC draft-29.
#[test]
fn decoy_beats_first_packet_rules_for_the_reflector_and_quic() {
    let (code, v, out) = run_inline(
        "bypass-decoy",
        r#"
[censor]
default = "pass"

[[censor.rules]]
name = "stun-first-to-relay-ports"
match = { proto = "udp", server_port = ["596-599", "1400", "3478"], first_label = ["stun"] }
action = { loss = "10%", police = "48kbit" }

[[censor.rules]]
name = "quic-v1-initial-to-443"
match = { dir = "up", proto = "udp", dst_port = "443", min_payload = 1001, first_label = ["quic-initial"], not_label = ["quic-v2"] }
action = "drop"

[[calls]]
name = "reflector"
transport = "reflector"
strategy = "udp"
options = { port = 596 }
expect = "degraded"

[[calls]]
name = "reflector-decoy"
transport = "reflector"
strategy = "udp"
options = { port = 596, bypass = { decoy = "random" } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"

[[calls]]
name = "reflector-decoy-dns"
transport = "reflector"
strategy = "udp"
options = { port = 1400, bypass = { decoy = "dns" } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"

[[calls]]
name = "quic-443"
transport = "quic"
strategy = "quic-443"
expect = "blocked"

[[calls]]
name = "quic-443-decoy"
transport = "quic"
strategy = "quic-443"
options = { bypass = { decoy = "random" } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"

[[calls]]
name = "quic-443-draft29"
transport = "quic"
strategy = "quic-443"
options = { bypass = { quic_version = "draft-29" } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"
"#,
    );
    check(
        &v,
        &out,
        &[
            ("reflector", "degraded", Some("stun-first-to-relay-ports")),
            ("reflector-decoy", "connected", None),
            ("reflector-decoy-dns", "connected", None),
            ("quic-443", "blocked", Some("quic-v1-initial-to-443")),
            ("quic-443-decoy", "connected", None),
            ("quic-443-draft29", "connected", None),
        ],
    );
    assert_eq!(code, 0, "{}", dump(&out, &v));
}

/// Russia's WireGuard handshake-shape rule against AmneziaWG's junk, headers and padding.
#[test]
fn amnezia_wg_beats_the_wireguard_handshake_rule() {
    let (code, v, out) = run_inline(
        "bypass-awg",
        r#"
[censor]
default = "pass"

[[censor.rules]]
name = "wireguard-handshake-shapes"
match = { proto = "udp", label = ["wireguard-handshake"] }
action = "drop"

[[calls]]
name = "wg"
transport = "noise"
strategy = "udp-wg"
expect = "blocked"

[[calls]]
name = "awg"
transport = "noise"
strategy = "udp-wg"
options = { bypass = { junk = { count = 4, min = 40, max = 70 }, wg_headers = [1376283417, 2919412101, 316922145, 3567188031], wg_padding = [37, 19] } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"
"#,
    );
    check(
        &v,
        &out,
        &[("wg", "blocked", Some("wireguard-handshake-shapes")), ("awg", "connected", None)],
    );
    assert_eq!(code, 0, "{}", dump(&out, &v));
}

/// The GFW's QUIC SNI filter (first packet only, only when source port > destination port,
/// 180 s residual) against a source port below the server's, a ClientHello split over three
/// Initials, and a decoy.
#[test]
fn source_port_split_and_decoy_beat_the_gfw_quic_sni_filter() {
    let (code, v, out) = run_inline(
        "bypass-gfw-quic",
        r#"
[censor]
default = "pass"
flow_timeout = "60s"

[[censor.rules]]
name = "quic-first-initial-bad-sni"
match = { proto = "udp", dir = "up", first_packets = 1, client_port_above_server_port = true, label = ["quic-initial"], sni = ["*.google.com"] }
action = { drop = true, residual = "180s" }

[[calls]]
name = "google"
transport = "quic"
strategy = "quic-443"
options = { sni = "www.google.com" }
expect = "blocked"

[[calls]]
name = "google-below"
transport = "quic"
strategy = "quic-443"
options = { sni = "www.google.com", bypass = { source_port = "below-server" } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"

[[calls]]
name = "google-split"
transport = "quic"
strategy = "quic-443"
options = { sni = "www.google.com", bypass = { quic_split = 3 } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"

[[calls]]
name = "google-decoy"
transport = "quic"
strategy = "quic-443"
options = { sni = "www.google.com", bypass = { decoy = "stun" } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"
"#,
    );
    check(
        &v,
        &out,
        &[
            ("google", "blocked", Some("quic-first-initial-bad-sni")),
            ("google-below", "connected", None),
            ("google-split", "connected", None),
            ("google-decoy", "connected", None),
        ],
    );
    assert_eq!(code, 0, "{}", dump(&out, &v));
}

/// Per-flow state against port hopping: a rule that cuts every UDP flow to the Noise port
/// 1.5 s after it starts (the 2025 reports of tunnels dying after a few packets) silences a
/// plain call halfway (a 3 s call with a 1.5 s trailing gap is `degraded`; `cut` needs a
/// trailing gap over 3 s); hopping every 500 ms keeps each flow younger than that. (The engine's residual block
/// is on the 3-tuple client IP, server IP, server port, which a new source port does not
/// change: port hopping does not beat it, as with the GFW.)
#[test]
fn port_hop_beats_a_per_flow_cut() {
    let (code, v, out) = run_inline(
        "bypass-hop",
        r#"
[censor]
default = "pass"

[[censor.rules]]
name = "cut-noise-flows"
match = { proto = "udp", server_port = "51820" }
action = { cut_after = "1500ms" }

[[calls]]
name = "noise"
transport = "noise"
strategy = "udp"
expect = "degraded"

[[calls]]
name = "noise-hop"
transport = "noise"
strategy = "udp"
options = { bypass = { port_hop = "500ms" } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"

[[calls]]
name = "wg-hop"
transport = "noise"
strategy = "udp-wg"
options = { bypass = { port_hop = "500ms" } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"
"#,
    );
    check(
        &v,
        &out,
        &[
            ("noise", "degraded", Some("cut-noise-flows")),
            ("noise-hop", "connected", None),
            ("wg-hop", "connected", None),
        ],
    );
    let plain = call(&v, &out, "noise");
    assert!(plain["longest_gap_ms"].as_f64().unwrap_or(0.0) >= 1000.0, "{}", dump(&out, &v));
    let hop = call(&v, &out, "noise-hop");
    assert!(hop["loss_pct"].as_f64().unwrap_or(100.0) < 3.0, "{}", dump(&out, &v));
    assert_eq!(code, 0, "{}", dump(&out, &v));
}

/// The caller's TCP payloads to port 443, in order, as the censor's capture holds them.
fn caller_segments(pcap: &std::path::Path, caller: std::net::IpAddr) -> Vec<Vec<u8>> {
    use callwall_wire::packet::L4;
    use callwall_wire::pcap::{parse_frame, PcapReader};
    let bytes = std::fs::read(pcap).unwrap_or_else(|e| panic!("{}: {e}", pcap.display()));
    let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
    for rec in PcapReader::new(&bytes).expect("a pcap").flatten() {
        let mut scratch = Vec::new();
        let Ok(frame) = parse_frame(&rec, &mut scratch) else { continue };
        let Some(ip) = frame.ip else { continue };
        let L4::Tcp(t, info) = ip.l4 else { continue };
        if ip.src != caller || t.dst_port != 443 || t.payload.is_empty() {
            continue;
        }
        // One entry per segment, even if the capture holds a frame twice or a retransmission.
        if !out.iter().any(|(seq, _)| *seq == info.seq) {
            out.push((info.seq, t.payload.to_vec()));
        }
    }
    out.into_iter().map(|(_, p)| p).collect()
}

/// `tcp_segment` through the real censor: a rule that reads the first client data segment
/// and drops a flow whose first segment holds at least 100 bytes (it stands for a classifier
/// that needs the whole first message in the first data packet, like the 2021 TSPU's SNI
/// reading; the number is callwall's) blocks `tcp-443`; with the first flight in segments of
/// at most 24 bytes, the capture shows those small segments and the call connects.
#[test]
fn tcp_segment_splits_the_first_flight_on_the_wire() {
    let tmp = TempDir::new("bypass-seg");
    let path = tmp.path().join("bypass-seg.toml");
    let topology = repo().join("netns/censored-call.toml");
    let body = r#"
[censor]
default = "pass"

[[censor.rules]]
name = "big-first-data-segment"
match = { proto = "tcp", dir = "up", server_port = "443", first_packets = 3, min_payload = 100 }
action = { drop = true, residual = "60s" }

[[calls]]
name = "tcp"
transport = "noise"
strategy = "tcp-443"
options = { printable_prefix = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" }
expect = "blocked"

[[calls]]
name = "tcp-seg"
transport = "noise"
strategy = "tcp-443"
options = { printable_prefix = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", bypass = { tcp_segment = 24 } }
prediction = "e2e pair: this rule against this bypass"
expect = "connected"
"#;
    let text = format!(
        "name = \"bypass-seg\"\ntopology = \"{}\"\nseed = 1\n{body}\n[defaults]\nduration = \"3s\"\nconnect_timeout = \"3s\"\n",
        topology.display()
    );
    std::fs::write(&path, text).unwrap();
    let json = tmp.path().join("r.json");
    let out = callwall()
        .arg("run")
        .arg(&path)
        .arg("--pcap")
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run callwall");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
        .unwrap_or_default();
    check(
        &v,
        &out,
        &[("tcp", "blocked", Some("big-first-data-segment")), ("tcp-seg", "connected", None)],
    );
    let dir = v["runs"][0]["artifacts"]["dir"].as_str().unwrap_or_default();
    let pcap = tmp.path().join("out").join(dir).join("censor.pcap");
    let pcap = if pcap.exists() { pcap } else { std::path::PathBuf::from(dir).join("censor.pcap") };
    let addr = |name: &str| call(&v, &out, name)["caller_addr"].as_str().unwrap().parse().unwrap();
    // Prefix (37) + length (2) + message 1 (113): 152 bytes of first flight.
    let first_flight = 37 + 2 + 113;
    let plain = caller_segments(&pcap, addr("tcp"));
    assert!(plain[0].len() >= first_flight, "{:?}", plain.iter().map(Vec::len).collect::<Vec<_>>());
    let seg = caller_segments(&pcap, addr("tcp-seg"));
    let mut sum = 0;
    let mut n = 0;
    for s in &seg {
        if sum >= first_flight {
            break;
        }
        assert!(
            s.len() <= 24,
            "segment of {} bytes: {:?}",
            s.len(),
            seg.iter().map(Vec::len).collect::<Vec<_>>()
        );
        sum += s.len();
        n += 1;
    }
    assert_eq!(n, first_flight.div_ceil(24), "{:?}", seg.iter().map(Vec::len).collect::<Vec<_>>());
    assert!(seg[0].starts_with(b"GET / HTTP/1.1"));
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out, &v));
}
