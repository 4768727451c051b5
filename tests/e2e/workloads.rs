//! Workloads (messages, voice notes, web, video) beside the calls, with the run's DNS host.

use std::path::PathBuf;

use serde_json::Value;

use crate::common::*;

/// Writes `text` as `<name>.toml` in `dir` and returns its path.
fn scenario(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(format!("{name}.toml"));
    std::fs::write(&p, text).expect("write scenario");
    p
}

fn workloads(v: &Value) -> &Vec<Value> {
    v["runs"][0]["workloads"].as_array().expect("the run has workloads")
}

#[test]
fn workloads_beside_the_baseline_calls_leave_their_verdicts_alone() {
    let dir = TempDir::new("wl-baseline");
    let base = std::fs::read_to_string(repo().join("scenarios/baseline.toml")).unwrap();
    let four = std::fs::read_to_string(repo().join("tests/data/workloads/four.toml")).unwrap();
    let p = scenario(&dir, "baseline-with-workloads", &format!("{base}\n{four}"));
    let (code, v, out) = run_scenarios(&[p.to_str().unwrap()], &[]);
    let calls = v["runs"][0]["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 13, "{}", dump(&out, &v));
    for c in calls {
        assert_eq!(
            c["verdict"],
            "connected",
            "call {} beside workloads: {}",
            c["name"],
            dump(&out, &v)
        );
    }
    let w = workloads(&v);
    assert_eq!(w.len(), 4);
    for w in w {
        assert_eq!(w["outcome"], "ok", "workload {}: {}", w["name"], dump(&out, &v));
        assert_eq!(w["met"], true);
    }
    let chat = w.iter().find(|w| w["name"] == "chat").unwrap();
    let figures: callwall_results::Figures =
        serde_json::from_value(chat["figures"].clone()).expect("typed figures");
    let callwall_results::Figures::Message(m) = figures else { panic!("{chat}") };
    assert_eq!(m.delivered_pct(), 100.0);
    assert!(m.latency_p50_ms.is_some(), "{chat}");
    assert_eq!(code, 0, "{}", dump(&out, &v));
    // The table shows the "what still works" matrix.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("what still works in baseline"), "{stdout}");
}

#[test]
fn a_name_removed_from_the_dns_fails_and_the_rest_works() {
    let dir = TempDir::new("wl-dns");
    let p = scenario(
        &dir,
        "dns-removed",
        r#"name = "dns-removed"
topology = "censored-call"

[censor]
default = "pass"

[dns]
remove = ["web.whatsapp.net"]

[[calls]]
transport = "noise"
strategy = "udp"
duration = "3s"
expect = "connected"

[[workloads]]
name = "removed"
kind = "message"
app = "whatsapp"
server = "msg"
host_name = "web.whatsapp.net"
count = 3
interval = "100ms"
timeout = "10s"
expect = "failed"

[[workloads]]
name = "kept"
kind = "message"
app = "max"
server = "msg"
host_name = "ws-api.oneme.ru"
count = 3
interval = "100ms"
timeout = "10s"
expect = "ok"
"#,
    );
    let (code, v, out) = run_scenarios(&[p.to_str().unwrap()], &[]);
    let w = workloads(&v);
    let removed = w.iter().find(|w| w["name"] == "removed").unwrap();
    assert_eq!(removed["outcome"], "failed", "{}", dump(&out, &v));
    let reason: callwall_results::WorkloadCause =
        serde_json::from_value(removed["reason"].clone()).expect("a typed reason");
    assert!(
        matches!(&reason, callwall_results::WorkloadCause::ClientError { error }
            if error.starts_with("dns")),
        "{removed}"
    );
    let kept = w.iter().find(|w| w["name"] == "kept").unwrap();
    assert_eq!(kept["outcome"], "ok", "{}", dump(&out, &v));
    assert_eq!(code, 0, "{}", dump(&out, &v));

    // Expecting the removed name to work is a missed expectation: exit 1.
    let q = scenario(
        &dir,
        "dns-removed-wrong",
        &std::fs::read_to_string(&p).unwrap().replacen("expect = \"failed\"", "expect = \"ok\"", 1),
    );
    let (code, v, out) = run_scenarios(&[q.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{}", dump(&out, &v));
}

#[test]
fn an_unknown_host_or_kind_exits_2_naming_file_line_and_key_before_anything_starts() {
    let dir = TempDir::new("wl-bad");
    let head = "name = \"bad\"\ntopology = \"censored-call\"\n[[calls]]\ntransport = \"noise\"\nexpect = \"connected\"\n\n";
    for (name, body, key, line) in [
        (
            "unknown-host",
            "[[workloads]]\nkind = \"message\"\napp = \"x\"\nserver = \"nowhere\"\nhost_name = \"a.example\"\nexpect = \"ok\"\n",
            "workloads[0].server",
            10,
        ),
        (
            "unknown-kind",
            "[[workloads]]\nkind = \"telepathy\"\napp = \"x\"\nserver = \"msg\"\nhost_name = \"a.example\"\nexpect = \"ok\"\n",
            "workloads[0].kind",
            8,
        ),
    ] {
        let p = scenario(&dir, name, &format!("{head}{body}"));
        let before = host_network_state();
        let outdir = dir.path().join(format!("{name}-out"));
        let out = callwall()
            .args(["run", p.to_str().unwrap(), "--out", outdir.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(&format!("{name}.toml")), "{name}: no file: {stderr}");
        assert!(stderr.contains(key), "{name}: no key {key}: {stderr}");
        assert!(stderr.contains(&format!("{name}.toml:{line}")), "{name}: no line {line}: {stderr}");
        assert!(!outdir.exists(), "{name}: a rejected run must not create its output directory");
        assert_eq!(before, host_network_state());
    }
}
