//! `callwall inspect` and `callwall replay` on stored captures: the wire crate's loopback
//! captures (openssl DTLS/TLS, aioquic QUIC) and captures of callwall's own transports, cut
//! from `callwall run scenarios/baseline.toml --pcap` (see `tests/data/captures/trim.py`).
//! No namespaces, no root: these run anywhere.

use std::process::Output;

use serde_json::Value;

use crate::common::{callwall, repo, TempDir};

fn capture(name: &str) -> String {
    format!("tests/data/captures/{name}")
}

fn run(args: &[&str]) -> Output {
    callwall().args(args).output().expect("run callwall")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `callwall inspect --json FILE`: exit 0 and one JSON object per line.
fn inspect(path: &str) -> Vec<Value> {
    let o = run(&["inspect", "--json", path]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The only UDP or TCP flow of a capture.
fn only_flow(path: &str) -> Value {
    let flows: Vec<Value> =
        inspect(path).into_iter().filter(|f| f["proto"] == "udp" || f["proto"] == "tcp").collect();
    assert_eq!(flows.len(), 1, "{path}: {flows:#?}");
    flows.into_iter().next().unwrap_or_default()
}

fn labels(f: &Value, key: &str) -> Vec<String> {
    f[key]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn has_all(f: &Value, key: &str, want: &[&str]) {
    let got = labels(f, key);
    for w in want {
        assert!(got.iter().any(|g| g == w), "{key} lacks {w:?}: {f:#}");
    }
}

fn has_none(f: &Value, key: &str, unwanted: &[&str]) {
    let got = labels(f, key);
    for w in unwanted {
        assert!(!got.iter().any(|g| g == w), "{key} has {w:?}: {f:#}");
    }
}

#[test]
fn inspect_wire_testdata_captures() {
    let d = only_flow("crates/wire/testdata/dtls-openssl.pcapng");
    has_all(&d, "labels", &["dtls", "dtls-client-hello", "dtls-server-hello", "sni"]);
    assert_eq!(d["sni"], "dtls.example");
    assert!(d["dtls_fingerprint"].as_str().is_some_and(|s| s.starts_with("dfefd|")), "{d:#}");
    assert_eq!(d["dtls_fingerprint_hash"].as_str().map(str::len), Some(16));
    assert_eq!(d["src"], "127.0.0.1:59335");

    let q = only_flow("crates/wire/testdata/quic-aioquic.pcap");
    has_all(&q, "first_packet_labels", &["quic", "quic-initial", "sni"]);
    assert_eq!((q["sni"].as_str(), q["quic_version"].as_u64()), (Some("quic.example"), Some(1)));
    assert_eq!(q["alpn"], serde_json::json!(["h3"]));

    let t = only_flow("crates/wire/testdata/tls-openssl.pcap");
    has_all(&t, "labels", &["tls", "tls-client-hello", "sni"]);
    assert_eq!(t["sni"], "tls.example");
    assert_eq!(t["fet"], "exempt:popcount-low");
    assert!(t["tls_fingerprint"].as_str().is_some_and(|s| s.starts_with("t0303|")));
    assert_eq!(t["packets"], 32);
}

#[test]
fn inspect_noise_wireguard_framing() {
    let f = only_flow(&capture("noise-udp-wg.pcap"));
    has_all(&f, "first_packet_labels", &["wireguard", "wireguard-handshake"]);
    assert_eq!(labels(&f, "labels"), vec!["wireguard", "wireguard-handshake"]);
    assert_eq!(f["dst"], "10.2.0.101:51820");
}

#[test]
fn inspect_quic_sni_and_version() {
    let f = only_flow(&capture("quic.pcap"));
    has_all(&f, "first_packet_labels", &["quic", "quic-initial", "sni"]);
    assert_eq!(f["sni"], "callee.callwall.test");
    assert_eq!(f["alpn"], serde_json::json!(["callwall-voice"]));
    assert_eq!(f["quic_version"], 1);
    assert!(f["tls_fingerprint"].as_str().is_some_and(|s| s.starts_with("q0303|")));

    let f = only_flow(&capture("quic-443.pcap"));
    has_all(&f, "labels", &["quic", "quic-initial", "sni"]);
    // The server greases the QUIC bit (RFC 9287): its long header is in the RTP byte range.
    has_none(&f, "labels", &["rtp", "rtcp"]);
    assert_eq!(f["sni"], "www.example.com");
    assert_eq!(f["dst"], "10.2.0.105:443");
}

#[test]
fn inspect_quic_split_client_hello() {
    let f = only_flow(&capture("quic-split.pcap"));
    has_all(&f, "labels", &["quic", "quic-initial", "sni"]);
    // The first Initial alone does not give the name: the hello is split over two.
    has_all(&f, "first_packet_labels", &["quic", "quic-initial"]);
    has_none(&f, "first_packet_labels", &["sni"]);
    assert_eq!(f["sni"], "www.example.com");
    assert_eq!(f["client_hello_packet"], 2);
    assert_eq!(f["quic_initials_with_crypto"], 2);
}

#[test]
fn inspect_webrtc_direct() {
    let f = only_flow(&capture("webrtc-direct.pcap"));
    has_all(&f, "labels", &["stun", "dtls", "dtls-client-hello", "rtp"]);
    assert_eq!(labels(&f, "first_packet_labels"), vec!["stun"]);
    assert!(f["stun"]["username"].as_str().is_some_and(|u| u.contains(':')), "ICE user: {f:#}");
    assert_eq!(f["stun"]["fingerprint_valid"], true);
    assert!(f["dtls_fingerprint"].as_str().is_some_and(|s| s.starts_with("dfefd|")), "{f:#}");
}

#[test]
fn inspect_webrtc_turn_tls_and_tcp() {
    let f = only_flow(&capture("webrtc-turn-tls.pcap"));
    has_all(&f, "first_packet_labels", &["tls", "tls-client-hello", "sni"]);
    assert_eq!(f["sni"], "turn.callwall.test");
    assert_eq!(f["dst"], "10.3.0.2:443");

    let f = only_flow(&capture("webrtc-turn-tcp.pcap"));
    assert_eq!(labels(&f, "first_packet_labels"), vec!["stun"]);
    has_all(&f, "labels", &["stun", "turn-channel-data"]);
    has_none(&f, "labels", &["tls", "fully-encrypted"]);
    assert_eq!(f["stun"]["realm"], "callwall.test");
    assert_eq!(f["stun"]["method"], 3, "ALLOCATE first");
}

#[test]
fn inspect_text_table() {
    let o = run(&["inspect", &capture("quic-split.pcap")]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("10.1.0.106:39445"), "{out}");
    assert!(out.contains("sni=www.example.com"), "{out}");
    assert!(out.contains("hello-split-over-initials=2"), "{out}");
    assert!(out.contains("222 packet(s), 1 flow(s)"), "{out}");
}

#[test]
fn truncated_and_corrupt_captures() {
    let tmp = TempDir::new("offline-trunc");
    let whole = std::fs::read(repo().join(capture("quic.pcap"))).expect("capture");

    // Cut in the middle of a record: the packets before it are reported, with a warning
    // naming the record and its byte offset; exit 0.
    let cut = tmp.path().join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    let o = run(&["inspect", "--json", cut.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stopped reading after") && err.contains("at byte"), "{}", text(&o));
    let flow: Value = serde_json::from_slice(o.stdout.split(|b| *b == b'\n').next().unwrap_or(&[]))
        .expect("one flow line");
    let n = flow["packets"].as_u64().unwrap_or(0);
    assert!(n > 50 && n < 227, "{n} packets before the cut");
    assert_eq!(flow["sni"], "callee.callwall.test");

    // A record whose IP header is garbage: counted, with its packet number and offset.
    let mut bad = whole.clone();
    let first_ip = 24 + 16 + 14;
    bad[first_ip] = 0x00; // IP version 0
    let bad_path = tmp.path().join("bad-ip.pcap");
    std::fs::write(&bad_path, &bad).expect("write");
    let o = run(&["inspect", bad_path.to_str().unwrap_or_default()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 packet(s) did not parse"), "{}", text(&o));
    assert!(err.contains("packet 1 at byte 40"), "{}", text(&o));

    // Not readable at all: exit 2 with a message, never a panic.
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty.pcap", b"", "cannot read any packet"),
        ("header.pcap", &whole[..10], "cannot read any packet"),
        ("first-record.pcap", &whole[..24 + 30], "truncated"),
        ("text.pcap", b"this is not a capture at all\n", "not a pcap or pcapng file"),
    ];
    for (name, bytes, want) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        for cmd in [&["inspect"][..], &["replay", "--scenario", "scenarios/baseline.toml"][..]] {
            let o = run(&[cmd, &[p.to_str().unwrap_or_default()][..]].concat());
            assert_eq!(o.status.code(), Some(2), "{name} {cmd:?}: {}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains(want) && !err.contains("panicked"), "{name}: {}", text(&o));
        }
    }
    let o = run(&["inspect", "no/such/file.pcap"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("check the path"));
}

const POLICY: &str = r#"
name = "offline-replay"
topology = "censored-call"
seed = 7

[censor]
default = "pass"

[[censor.rules]]
name = "block-callee-sni"
match = { label = ["quic-initial"], sni = ["callee.callwall.test"] }
action = "drop"

[[censor.rules]]
name = "delay-wireguard"
match = { label = ["wireguard"] }
action = { delay = "20ms" }

[[censor.rules]]
name = "drop-stun-up"
match = { dir = "up", label = ["stun"] }
action = "drop"

[[calls]]
transport = "noise"
strategy = "udp"
expect = "connected"
"#;

/// `callwall replay --json`: flow lines and the totals line.
fn replay(scenario: &str, cap: &str, extra: &[&str]) -> (Vec<Value>, Value) {
    let o = run(&[&["replay", "--json", "--scenario", scenario, cap][..], extra].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let totals = lines.pop().unwrap_or_default();
    assert_eq!(totals["type"], "totals", "{}", text(&o));
    assert!(lines.iter().all(|l| l["type"] == "flow"));
    (lines, totals)
}

fn rule_totals<'a>(totals: &'a Value, name: &str) -> &'a Value {
    totals["rules"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .map(|r| &r["counters"])
        .unwrap_or(&Value::Null)
}

#[test]
fn replay_through_a_policy() {
    let tmp = TempDir::new("offline-replay");
    let sc = tmp.path().join("offline-replay.toml");
    std::fs::write(&sc, POLICY).expect("write scenario");
    let sc = sc.to_str().unwrap_or_default().to_string();

    // QUIC with the blocked name: every packet dropped by the SNI rule, from the first on.
    let (flows, totals) = replay(&sc, &capture("quic.pcap"), &[]);
    let f = &flows[0];
    assert_eq!(f["rules"]["block-callee-sni"]["dropped"], 227, "{f:#}");
    assert_eq!(f["events"][0]["rule"], "block-callee-sni");
    assert_eq!(f["events"][0]["outcome"], "drop");
    assert_eq!(f["events"][0]["sni"], "callee.callwall.test");
    assert_eq!(rule_totals(&totals, "block-callee-sni")["dropped"], 227);
    // Another name passes.
    let (flows, _) = replay(&sc, &capture("quic-443.pcap"), &[]);
    assert_eq!(flows[0]["rules"]["default-pass"]["forwarded"], 223, "{:#}", flows[0]);

    // WireGuard framing: every packet held 20 ms, then released.
    let (flows, totals) = replay(&sc, &capture("noise-udp-wg.pcap"), &[]);
    assert_eq!(flows[0]["rules"]["delay-wireguard"]["delayed"], 200, "{:#}", flows[0]);
    assert_eq!(rule_totals(&totals, "delay-wireguard")["delayed"], 200);
    assert_eq!(totals["released"], 200);

    // Direction: the callee (outside) sends the first STUN; packets from the caller travel
    // up and are dropped. With the inside declared the other way round, the roles swap.
    let (flows, _) = replay(&sc, &capture("webrtc-direct.pcap"), &[]);
    let r = &flows[0]["rules"];
    let (up, down) = (&r["drop-stun-up"]["dropped"], &r["default-pass"]["forwarded"]);
    let (up, down) = (up.as_u64().unwrap_or(0), down.as_u64().unwrap_or(0));
    assert!(up > 0 && down > 0 && up + down == 204, "{r:#}");
    let (flows, _) = replay(&sc, &capture("webrtc-direct.pcap"), &["--inside", "10.2.0.0/24"]);
    let r = &flows[0]["rules"];
    assert_eq!(r["drop-stun-up"]["dropped"], down, "{r:#}");
    assert_eq!(r["default-pass"]["forwarded"], up, "{r:#}");
}

#[test]
fn replay_text_and_bad_input() {
    let o = run(&[
        "replay",
        "--scenario",
        "scenarios/udp-blackout.toml",
        &capture("webrtc-turn-tcp.pcap"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("inside: 10.1.0.0/24, fd00:1::/64 except 10.1.0.1, fd00:1::1"), "{out}");
    assert!(out.contains("per rule:") && out.contains("drop-all-udp"), "{out}");
    assert!(out.contains("rule default-pass"), "TCP passes: {out}");

    let bad: [(&[&str], &str); 3] = [
        (&["--scenario", "no/such.toml"], "cannot read the scenario file"),
        (&["--scenario", "scenarios/baseline.toml", "--inside", "10.1.0.0/99"], "--inside"),
        (&["--scenario", "scenarios/baseline.toml", "--inside", "caller"], "--inside"),
    ];
    for (args, want) in bad {
        let o = run(&[&["replay"][..], args, &[capture("quic.pcap").as_str()][..]].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(want), "{args:?}: {}", text(&o));
    }
}
