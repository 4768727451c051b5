//! External peers (issue 13, `docs/peers.md`) placed by `callwall run`: parity with the
//! built-in transport of the same protocol, and failure clarity (a peer that does not start,
//! crashes or hangs makes its call `error`, never `blocked`, with its stderr tail).
//! Needs `make deps` (the peers' `.venv/`, wireguard-go, Chromium).

use serde_json::Value;

use crate::common::*;

/// (external call, built-in call of the same protocol) in the external-* scenarios.
const PAIRS: &[(&str, &str)] = &[
    ("ext-aiortc", "parity-webrtc-direct"),
    ("ext-aioquic", "parity-quic"),
    ("ext-wireguard", "parity-noise-udp-wg"),
];

fn call<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["runs"][0]["calls"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no call {name} in {v}"))
}

/// Each pair gets the same verdict, and that verdict is the scenario's expectation.
fn parity(scenario: &str) {
    let (code, v, out) = run_scenarios(&[scenario], &[]);
    for (ext, builtin) in PAIRS {
        let (e, b) = (call(&v, ext), call(&v, builtin));
        assert_eq!(e["verdict"], b["verdict"], "{ext} vs {builtin}\n{}", dump(&out, &v));
        assert_eq!(e["transport"], "external", "{}", dump(&out, &v));
        assert!(
            e["external"]["caller"]["implementation"].as_str().is_some_and(|s| !s.is_empty()),
            "{ext} named no implementation\n{}",
            dump(&out, &v)
        );
    }
    assert_eq!(code, 0, "{}", dump(&out, &v));
}

#[test]
fn external_peers_match_the_builtin_transports_in_the_baseline() {
    parity("scenarios/external-baseline.toml");
}

#[test]
fn external_peers_match_the_builtin_transports_under_a_udp_blackout() {
    parity("scenarios/external-udp-blackout.toml");
}

#[test]
fn external_peers_match_the_builtin_transports_under_the_ru_2025_call_restriction() {
    parity("scenarios/external-ru-2025-call-restriction.toml");
}

#[test]
fn a_peer_that_does_not_start_crashes_or_hangs_is_an_error_with_its_stderr_tail() {
    let tmp = TempDir::new("ext-fail");
    let path = tmp.path().join("ext-fail.toml");
    // The callee of each call is a well-behaved peer that waits for a caller that never comes.
    let ok = r#"[".venv/bin/python3", "peers/aioquic/peer.py", "--server"]"#;
    std::fs::write(
        &path,
        format!(
            r#"
name = "ext-fail"
topology = "censored-call"
[censor]
default = "pass"
[defaults]
duration = "1s"
connect_timeout = "2s"

[[calls]]
name = "not-started"
expect = "error"
peer = {{ caller = ["peers/no-such-peer"], callee = {ok}, lead = "1s" }}

[[calls]]
name = "crashes"
expect = "error"
peer = {{ caller = ["sh", "-c", "echo crash-marker >&2; kill -9 $$"], callee = {ok}, lead = "1s" }}

[[calls]]
name = "hangs"
expect = "error"
peer = {{ caller = ["sh", "-c", "echo hang-marker >&2; exec sleep 600"], callee = {ok}, lead = "1s" }}
"#
        ),
    )
    .unwrap();
    let (code, v, out) = run_scenarios(&[path.to_str().unwrap()], &[]);
    for (name, marker) in
        [("not-started", "no-such-peer"), ("crashes", "crash-marker"), ("hangs", "hang-marker")]
    {
        let c = call(&v, name);
        assert_eq!(c["verdict"], "error", "{name}\n{}", dump(&out, &v));
        let tail = c["external"]["caller"]["stderr_tail"].as_str().unwrap_or("");
        assert!(tail.contains(marker), "{name}: stderr tail {tail:?}\n{}", dump(&out, &v));
        assert!(c["reason"].as_str().unwrap_or("").contains(marker), "{}", dump(&out, &v));
    }
    assert!(call(&v, "hangs")["reason"].as_str().unwrap().contains("hung"), "{}", dump(&out, &v));
    assert!(
        call(&v, "crashes")["reason"].as_str().unwrap().contains("signal 9"),
        "{}",
        dump(&out, &v)
    );
    assert_eq!(code, 0, "{}", dump(&out, &v));
}
