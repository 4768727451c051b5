//! Every transport and strategy against the baseline and a UDP blackout, and `auto`'s fallback.

use crate::common::*;

#[test]
fn every_transport_and_strategy_connects_in_the_baseline() {
    let (code, v, out) = run_scenarios(&["scenarios/baseline.toml"], &[]);
    let calls = v["runs"][0]["calls"].as_array().cloned().unwrap_or_default();
    assert!(calls.len() >= 13, "{}", dump(&out, &v));
    let mut seen = std::collections::BTreeSet::new();
    for c in &calls {
        assert_eq!(
            c["verdict"],
            "connected",
            "{} / {}\n{}",
            c["transport"],
            c["strategy"],
            dump(&out, &v)
        );
        assert!(
            c["setup_ms"].as_f64().is_some_and(|s| s > 0.0 && s < 5000.0),
            "{}",
            dump(&out, &v)
        );
        seen.insert(format!(
            "{}/{}",
            c["transport"].as_str().unwrap(),
            c["strategy"].as_str().unwrap()
        ));
    }
    for want in [
        "noise/udp",
        "noise/udp-wg",
        "noise/udp-obfs",
        "noise/tcp-443",
        "quic/quic",
        "quic/quic-443",
        "quic/quic-split",
        "webrtc/direct",
        "webrtc/turn-udp",
        "webrtc/turn-tcp",
        "webrtc/turn-tls",
    ] {
        assert!(seen.contains(want), "{want} missing from {seen:?}");
    }
    assert_eq!(code, 0, "{}", dump(&out, &v));
}

#[test]
fn under_a_udp_blackout_only_tcp_strategies_connect_and_auto_finds_tcp() {
    let tmp = TempDir::new("blackout");
    let path = tmp.path().join("blackout-all.toml");
    let mut text = std::fs::read_to_string(repo().join("scenarios/udp-blackout.toml")).unwrap();
    // Keep only the header and the rule; then the calls this test is about.
    text.truncate(text.find("[defaults]").unwrap());
    text.push_str(
        r#"
[defaults]
duration = "6s"
connect_timeout = "4s"

[[calls]]
transport = "noise"
strategy = "udp"
expect = "blocked"

[[calls]]
transport = "quic"
strategy = "quic-443"
expect = "blocked"

[[calls]]
transport = "webrtc"
strategy = "direct"
expect = "blocked"

[[calls]]
transport = "noise"
strategy = "tcp-443"
expect = "connected"

[[calls]]
transport = "webrtc"
strategy = "turn-tcp"
expect = "connected"

[[calls]]
transport = "webrtc"
strategy = "turn-tls"
expect = "connected"

[[calls]]
name = "noise-fallback"
transport = "noise"
strategy = ["udp", "tcp-443"]
expect = "connected"

[[calls]]
name = "webrtc-auto"
transport = "webrtc"
strategy = "auto"
connect_timeout = "3s"
expect = "connected"
"#,
    );
    std::fs::write(&path, text).unwrap();
    let topo = repo().join("netns");
    let (code, v, out) =
        run_scenarios(&[path.to_str().unwrap(), "--topology-dir", topo.to_str().unwrap()], &[]);
    let calls = v["runs"][0]["calls"].as_array().cloned().unwrap_or_default();
    let get = |name: &str| {
        calls
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing\n{}", dump(&out, &v)))
    };
    for blocked in ["noise-udp", "quic-quic-443", "webrtc-direct"] {
        let c = get(blocked);
        assert_eq!(c["verdict"], "blocked", "{blocked}\n{}", dump(&out, &v));
        assert_eq!(c["rule"], "drop-all-udp", "{blocked}\n{}", dump(&out, &v));
    }
    for ok in ["noise-tcp-443", "webrtc-turn-tcp", "webrtc-turn-tls"] {
        assert_eq!(get(ok)["verdict"], "connected", "{ok}\n{}", dump(&out, &v));
    }
    let fb = get("noise-fallback");
    assert_eq!(fb["verdict"], "connected", "{}", dump(&out, &v));
    assert_eq!(
        fb["strategy"],
        "tcp-443",
        "the fallback reports the strategy that won\n{}",
        dump(&out, &v)
    );
    assert!(fb["setup_ms"].as_f64().unwrap() > 3000.0, "setup includes the failed udp attempt");
    // auto is one ICE agent with every candidate: no UDP timeout to wait for, one attempt.
    let auto = get("webrtc-auto");
    assert_eq!(auto["verdict"], "connected", "{}", dump(&out, &v));
    assert_eq!(auto["strategy"], "ice", "{}", dump(&out, &v));
    let attempts = auto["metrics"]["attempts"].as_u64().unwrap_or(0);
    assert_eq!(attempts, 1, "one agent, no sequential fallback: {}", dump(&out, &v));
    assert_eq!(code, 0, "{}", dump(&out, &v));
}
