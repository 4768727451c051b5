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
fn parity(scenario: &str) -> Value {
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
    if scenario.contains("baseline") || scenario.contains("udp-blackout") {
        silent_matches_reporting(&v, &out);
    }
    assert_eq!(code, 0, "{}", dump(&out, &v));
    v
}

/// `ext-aiortc-silent` is `ext-aiortc` writing no report: judged from the network (the
/// censor's per-call bins), it gets the same verdict, says so, and carries the censor's
/// figures; `ext-aiortc` itself is judged from its reports.
fn silent_matches_reporting(v: &Value, out: &std::process::Output) {
    let (silent, reporting) = (call(v, "ext-aiortc-silent"), call(v, "ext-aiortc"));
    assert_eq!(silent["verdict"], reporting["verdict"], "{}", dump(out, v));
    let ext = &silent["external"];
    assert!(
        ext["judged_from_network"].as_str().is_some_and(|s| s.contains("judged from the network")),
        "{}",
        dump(out, v)
    );
    assert!(ext["caller"]["report"].is_null(), "the silent peer wrote a report\n{}", dump(out, v));
    let up = &ext["network"]["up"];
    if silent["verdict"] == "connected" {
        assert!(up["media_secs"].as_u64().unwrap_or(0) >= 2, "{}", dump(out, v));
        assert!(up["rate_kbit"].as_f64().unwrap_or(0.0) > 0.0, "{}", dump(out, v));
    } else {
        assert!(up["dropped_packets"].as_u64().unwrap_or(0) > 0, "{}", dump(out, v));
    }
    assert!(reporting["external"]["judged_from_network"].is_null(), "{}", dump(out, v));
    assert!(reporting["external"]["caller"]["report"]["frames_sent"].is_u64(), "{}", dump(out, v));
}

#[test]
fn external_peers_match_the_builtin_transports_in_the_baseline() {
    parity("scenarios/external-baseline.toml");
}

#[test]
fn external_peers_match_the_builtin_transports_under_a_udp_blackout() {
    let v = parity("scenarios/external-udp-blackout.toml");
    // aiortc forced through coturn over TURN/TLS/TCP survives the blackout, and says so.
    let c = call(&v, "ext-aiortc-turn-tls");
    assert_eq!(c["verdict"], "connected", "{c}");
    let path = c["external"]["caller"]["report"]["path"].as_str().unwrap_or("");
    assert!(path.contains("relay"), "the caller's path is not relayed: {path:?}\n{c}");
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
        assert!(peer_errors(c).contains(marker), "{}", dump(&out, &v));
    }
    assert!(peer_errors(call(&v, "hangs")).contains("hung"), "{}", dump(&out, &v));
    assert!(peer_errors(call(&v, "crashes")).contains("signal 9"), "{}", dump(&out, &v));
    assert_eq!(code, 0, "{}", dump(&out, &v));
}

/// The peers' failures of an `error` call, joined (empty when its cause is another).
fn peer_errors(c: &serde_json::Value) -> String {
    match serde_json::from_value::<callwall_results::Reason>(c["reason"].clone()) {
        Ok(callwall_results::Reason {
            cause: callwall_results::Cause::PeerFailed { errors },
            ..
        }) => errors.join("; "),
        _ => String::new(),
    }
}

/// Contract v2 in one short run (`tests/data/peers/`): a liar peer is `error` ("report
/// contradicts the network"), a forking peer's `setsid` child dies with it (not at the run's
/// end), a peer whose signalling the censor drops is `no-signalling`, media ports are exactly
/// as written (copies of a call without one get distinct ports), a peer sees exactly the
/// documented CALLWALL_* variables with the documented values, and a network-judged call has
/// no MOS, jitter or delay (null).
#[test]
fn contract_v2_liar_forking_peer_dropped_signalling_ports_and_environment() {
    let tmp = TempDir::new("ext-v2");
    let path = tmp.path().join("ext-v2.toml");
    let aioquic =
        |flag: &str| format!(r#"[".venv/bin/python3", "peers/aioquic/peer.py", "{flag}"]"#);
    let sh = |script: &str| format!(r#"["sh", "tests/data/peers/{script}"]"#);
    std::fs::write(
        &path,
        format!(
            r#"
name = "ext-v2"
topology = "censored-call"
seed = 5
[censor]
default = "pass"
[[censor.rules]]
name = "drop-all-udp"
match = {{ proto = "udp" }}
action = "drop"
[[censor.rules]]
name = "drop-signalling"
match = {{ proto = "tcp", server_port = ["7000"] }}
action = "drop"
[defaults]
duration = "1s"
connect_timeout = "2s"

[[calls]]
name = "liar"
expect = "error"
peer = {{ caller = {liar}, callee = {liar}, lead = "1s" }}

[[calls]]
name = "forking"
expect = "blocked"
peer = {{ caller = {fork}, callee = {wait}, lead = "1s" }}

[[calls]]
name = "no-signal"
expect = "no-signalling"
peer = {{ caller = {client}, callee = {server}, lead = "1s" }}

[[calls]]
name = "port"
expect = "blocked"
count = 2
peer = {{ caller = {port}, callee = {port}, lead = "1s" }}

[[calls]]
name = "port-written"
expect = "blocked"
peer = {{ caller = {port}, callee = {port}, lead = "1s", media_port = 3478 }}
"#,
            liar = sh("liar.sh"),
            fork = sh("forking-caller.sh"),
            wait = sh("waiting-callee.sh"),
            port = sh("port-echo.sh"),
            client = aioquic("--client"),
            server = aioquic("--server"),
        ),
    )
    .unwrap();
    let json = tmp.path().join("results.json");
    let out_dir = tmp.path().join("out");
    let out = callwall()
        .args(["run", path.to_str().unwrap(), "--out"])
        .arg(&out_dir)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(&json)
            .unwrap_or_else(|_| panic!("no JSON\n{}", String::from_utf8_lossy(&out.stderr))),
    )
    .unwrap();
    let d = || dump(&out, &v);
    let logs = out_dir.join("ext-v2");
    let read = |p: &str| std::fs::read_to_string(logs.join(p)).unwrap_or_default();

    // The liar: 400 frames each way claimed, none forwarded by the censor.
    let liar = call(&v, "liar");
    assert_eq!(liar["verdict"], "error", "{}", d());
    let reason = liar["reason"].to_string();
    assert!(reason.contains("report contradicts the network"), "{reason}\n{}", d());

    // The forking caller's setsid child died with it: the callee got the lock at once.
    assert_eq!(read("forking.caller/held").trim(), "held", "{}", d());
    assert_eq!(read("forking.callee/lock-state").trim(), "freed", "{}", d());
    // Judged from the network: no MOS, jitter or delay (null, not 0).
    let forking = call(&v, "forking");
    assert!(forking["external"]["judged_from_network"].is_string(), "{}", d());
    for k in ["mos", "jitter_ms", "one_way_delay_ms"] {
        assert!(forking[k].is_null(), "{k} = {}\n{}", forking[k], d());
    }

    // Signalling dropped: no-signalling, said by the peer and seen by the censor.
    let ns = call(&v, "no-signal");
    assert_eq!(ns["verdict"], "no-signalling", "{}", d());
    assert_eq!(ns["external"]["caller"]["report"]["failed"]["stage"], "signalling", "{}", d());
    assert!(ns["reason"].to_string().contains("signal server"), "{}", d());

    // Ports: exactly as written; copies of a call without one get distinct ports.
    for role in ["caller", "callee"] {
        assert_eq!(read(&format!("port-written.{role}/port")).trim(), "3478", "{}", d());
    }
    let (p1, p2) = (read("port_1.caller/port"), read("port_2.caller/port"));
    assert!(!p1.trim().is_empty() && p1 != p2, "{p1:?} {p2:?}\n{}", d());

    // The environment: exactly the documented variables (no relay in this run: no TURN ones),
    // CALLWALL_CALL_ID the call's name, CALLWALL_SEED the call's seed derived from the run's.
    let doc = std::fs::read_to_string(repo().join("docs/peers.md")).unwrap();
    let section = doc.split("## Environment in").nth(1).unwrap().split("\n## ").next().unwrap();
    let documented: std::collections::BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `CALLWALL_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("CALLWALL_{n}"))
        .filter(|n| !n.starts_with("CALLWALL_TURN_"))
        .collect();
    let env = read("forking.caller/env");
    let seen: std::collections::BTreeMap<&str, &str> =
        env.lines().filter_map(|l| l.split_once('=')).collect();
    let names: std::collections::BTreeSet<String> = seen.keys().map(|k| k.to_string()).collect();
    assert_eq!(names, documented, "{env}");
    assert_eq!(seen["CALLWALL_CALL_ID"], "forking", "{env}");
    assert_eq!(seen["CALLWALL_CONTRACT"], "2", "{env}");
    let seed = callwall_units::seed::derive(5, callwall_units::seed::Purpose::Placement, 2);
    assert_eq!(seen["CALLWALL_SEED"], seed.to_string(), "{env}");
    assert_eq!(code_of(&out), 0, "{}", d());
}

fn code_of(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}
