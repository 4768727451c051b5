//! Issue 14: steering a running censor (live control) and what the class sees of it.
//!
//! These tests place real calls and switch censor rules while they run. They wait for
//! outcomes (a flow in the decision log, the run's end) with generous windows and assert on
//! what the results and the decision log say, never on how long anything took.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{callwall, TempDir};

/// A UDP call through a censor whose only rule drops every UDP datagram.
const SCENARIO: &str = r#"
name = "classroom-control"
description = "a noise/udp call; the test switches drop-all-udp off, on and off again live"
topology = "censored-call"
seed = 1

[censor]
default = "pass"

[[censor.rules]]
name = "drop-all-udp"
match = { proto = "udp" }
action = "drop"

[[calls]]
transport = "noise"
strategy = "udp"
duration = "40s"
connect_timeout = "10s"
expect = ["connected", "degraded", "cut"]
"#;

/// Waits until `f` is true, at most `limit`.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn control_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["flow"] == "control")
        .collect()
}

#[test]
fn rules_switched_live_stop_and_resume_media_and_are_logged() {
    let tmp = TempDir::new("classroom-control");
    let scenario = tmp.path().join("classroom-control.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = tmp.path().join("out");
    let json = tmp.path().join("results.json");
    let html = tmp.path().join("report.html");
    let mut child: std::process::Child = callwall()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .args(["--control", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start callwall run");
    let mut stdin = child.stdin.take().unwrap();
    let mut send = |line: &str| {
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    };
    // Off before the call starts (the line waits in the pipes until the censor reads it), so
    // the call connects.
    send(r#"{"cmd":"disable","rule":1}"#);
    let log = out.join("classroom-control").join("decisions.jsonl");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // The call's flow shows in the decision log once its packets cross the censor.
    let media = wait_for(Duration::from_secs(60), || {
        read_log().lines().any(|l| l.contains("\"proto\":\"udp\""))
    });
    assert!(media, "no UDP flow reached the censor; decision log:\n{}", read_log());
    std::thread::sleep(Duration::from_secs(4));
    send(r#"{"cmd":"enable","rule":"drop-all-udp"}"#);
    std::thread::sleep(Duration::from_secs(6));
    send(r#"{"cmd":"toggle","rule":1}"#);
    send(r#"{"cmd":"enable","rule":7}"#); // no such rule: an error, nothing changes
    drop(stdin);
    let output = child.wait_with_output().expect("wait for callwall run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|_| panic!("no results ({:?}); stderr:\n{stderr}", output.status));
    let v: Value = serde_json::from_str(&text).unwrap();
    let run = &v["runs"][0];
    assert!(run["error"].is_null(), "the run failed: {}", run["error"]);

    // The results carry the three changes, in order.
    let control = run["censor"]["control"].as_array().expect("censor.control in the results");
    let kinds: Vec<&str> = control.iter().map(|c| c["change"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["rule-off", "rule-on", "rule-off"], "{control:?}");
    assert!(control.iter().all(|c| c["index"] == 1 && c["name"] == "drop-all-udp"));
    let t: Vec<f64> = control.iter().map(|c| c["t_ms"].as_f64().unwrap() / 1000.0).collect();
    assert!(t[0] <= t[1] && t[1] < t[2], "{t:?}");
    // So does the decision log.
    let logged = control_lines(&read_log());
    let logged: Vec<&str> = logged.iter().map(|c| c["change"].as_str().unwrap()).collect();
    assert_eq!(logged, ["rule-off", "rule-on", "rule-off"]);
    // The censor answered every line, the bad one with an error naming the rules there are.
    let censor_log =
        std::fs::read_to_string(out.join("classroom-control").join("censor.log")).unwrap();
    let answers: Vec<Value> = censor_log
        .lines()
        .filter_map(|l| l.strip_prefix("control "))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 4, "{censor_log}");
    assert_eq!(answers[3]["ok"], false);
    assert!(answers[3]["error"].as_str().unwrap().contains("from 1 to 1"), "{censor_log}");

    // Media stopped while the rule was on, and came back after (the flow was kept).
    let call = &run["calls"][0];
    let timeline = call["metrics"]["timeline"].as_array().unwrap();
    let loss = |s: &Value| {
        s["up_loss_pct"].as_f64().unwrap_or(0.0).max(s["down_loss_pct"].as_f64().unwrap_or(0.0))
    };
    let sec = |s: &Value| s["t"].as_f64().unwrap();
    let before = timeline.iter().filter(|s| sec(s) + 1.0 <= t[1]).any(|s| loss(s) < 5.0);
    let during = timeline
        .iter()
        .filter(|s| sec(s) >= t[1] + 1.0 && sec(s) + 1.0 <= t[2] - 0.5)
        .any(|s| loss(s) >= 99.0);
    let after = timeline.iter().filter(|s| sec(s) >= t[2] + 1.5).any(|s| loss(s) < 5.0);
    assert!(
        before && during && after,
        "before {before} during {during} after {after}: {t:?}\n{timeline:?}"
    );
    assert_ne!(call["verdict"], "connected", "a 6 s outage is not a clean call");

    // The report marks the changes on the call's timeline.
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("class=\"control-marker\"").count(), 3);
    assert!(page.contains("rule 1 drop-all-udp on"));
}

#[test]
fn control_needs_exactly_one_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_callwall"))
        .current_dir(crate::common::repo())
        .args(["run", "scenarios/baseline.toml", "scenarios/udp-blackout.toml", "--control", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--control steers one run"));
}
