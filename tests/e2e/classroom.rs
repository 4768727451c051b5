//! Issue 14: steering a running censor (live control) and what the class sees of it.
//!
//! These tests place real calls and switch censor rules while they run. They wait for
//! outcomes (a flow in the decision log, the run's end) with generous windows and assert on
//! what the results and the decision log say, never on how long anything took.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
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
    // Live lines on stderr: the censor's answers and each peer's figures per second.
    let (tx, rx) = mpsc::channel::<Value>();
    let stderr = child.stderr.take().unwrap();
    let all_stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(j) =
                line.strip_prefix("live second ").or(line.strip_prefix("live control "))
            {
                let mut v: Value = serde_json::from_str(j).unwrap_or(Value::Null);
                v["live"] =
                    Value::from(if line.starts_with("live second") { "second" } else { "control" });
                let _ = tx.send(v);
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // Waits for a live line that satisfies `f` (generous: the machine may be loaded).
    let wait = |what: &str, f: &dyn Fn(&Value) -> bool| -> Value {
        let end = Instant::now() + Duration::from_secs(90);
        while Instant::now() < end {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(v) if f(&v) => return v,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no live line for: {what}");
    };
    let second = |v: &Value| v["live"] == "second";
    let loss = |v: &Value| v["loss_pct"].as_f64().unwrap_or(100.0);
    let t_of = |v: &Value| v["t_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    // Off before the call starts (the line waits in the pipes until the censor reads it), so
    // the call connects.
    send(r#"{"cmd":"disable","rule":1}"#);
    wait("the rule switched off", &|v| v["live"] == "control" && v["ok"] == true);
    wait("a clean second of media", &|v| second(v) && loss(v) < 5.0);
    send(r#"{"cmd":"enable","rule":"drop-all-udp"}"#);
    let on = wait("the rule switched on", &|v| {
        v["live"] == "control" && v["change"]["change"] == "rule-on"
    });
    let t_on = t_of(&on);
    // The next whole second shows it: nothing arrives.
    wait("a second with everything lost", &|v| {
        second(v) && v["t"].as_f64().unwrap() >= t_on.ceil() && loss(v) >= 99.0
    });
    send(r#"{"cmd":"toggle","rule":1}"#);
    let off = wait("the rule switched off again", &|v| {
        v["live"] == "control" && v["change"]["change"] == "rule-off"
    });
    let t_off = t_of(&off);
    wait("a clean second after the rule went off", &|v| {
        second(v) && v["t"].as_f64().unwrap() >= t_off.ceil() + 1.0 && loss(v) < 5.0
    });
    send(r#"{"cmd":"enable","rule":7}"#); // no such rule: an error, nothing changes
    wait("the error", &|v| v["live"] == "control" && v["ok"] == false);
    drop(stdin);
    let log = out.join("classroom-control").join("decisions.jsonl");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let output = child.wait_with_output().expect("wait for callwall run");
    let stderr = all_stderr.join().unwrap();
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
        .filter(|s| sec(s) >= t[1].ceil() && sec(s) + 1.0 <= t[2])
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

/// Runs `tmux` on the test's own server socket (never the default one in the host's /tmp).
fn tmux(sock: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("tmux").arg("-S").arg(sock).args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The loss figures on screen, left to right (`loss   0.0%` in each call's panel).
fn losses(pane: &str) -> Vec<f64> {
    let line = pane.lines().find(|l| l.contains("loss ")).unwrap_or("");
    line.split("loss")
        .skip(1)
        .filter_map(|p| p.split_whitespace().next())
        .filter_map(|v| v.strip_suffix('%').and_then(|v| v.parse().ok()))
        .collect()
}

/// Processes whose command line mentions `needle` (the demo's own output directory).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                found.push(c);
            }
        }
    }
    found
}

#[test]
fn demo_in_tmux_shows_a_toggle_in_the_next_seconds_and_quits_cleanly() {
    let tmp = TempDir::new("classroom-demo");
    let sock = tmp.path().join("tmux.sock");
    let out = tmp.path().join("out");
    let done = tmp.path().join("done");
    let cmd = format!(
        "cd {} && {} demo scenarios/demo/classroom.toml --calls noise/udp,noise/tcp-443 --out {} 2>{}; echo $? > {}",
        crate::common::repo().display(),
        env!("CARGO_BIN_EXE_callwall"),
        out.display(),
        tmp.path().join("stderr").display(),
        done.display()
    );
    tmux(&sock, &["new-session", "-d", "-s", "demo", "-x", "160", "-y", "40", &cmd]);
    let pane = || tmux(&sock, &["capture-pane", "-p", "-t", "demo"]);
    let wait = |what: &str, f: &dyn Fn(&str) -> bool| {
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            let p = pane();
            if f(&p) {
                return;
            }
            if Instant::now() > end || done.exists() {
                let err = std::fs::read_to_string(tmp.path().join("stderr")).unwrap_or_default();
                tmux(&sock, &["kill-server"]);
                panic!("the view never showed {what}; screen:\n{p}\nstderr:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    // The rule drops UDP: switch it off at once (before the calls start: the key waits in
    // the pipes until the censor reads it) so the UDP call connects.
    wait("the view", &|p| p.contains("callwall demo"));
    tmux(&sock, &["send-keys", "-t", "demo", "1"]);
    wait("both calls clean", &|p| {
        let l = losses(p);
        l.len() == 2 && l.iter().all(|&x| x < 5.0)
    });
    tmux(&sock, &["send-keys", "-t", "demo", "1"]);
    wait("the UDP call losing everything, the TCP call untouched", &|p| {
        let l = losses(p);
        l.len() == 2 && l[0] >= 99.0 && l[1] < 5.0
    });
    tmux(&sock, &["send-keys", "-t", "demo", "1"]);
    wait("the UDP call back", &|p| {
        let l = losses(p);
        l.len() == 2 && l[0] < 5.0
    });
    tmux(&sock, &["send-keys", "-t", "demo", "q"]);
    let end = Instant::now() + Duration::from_secs(60);
    while !done.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let code = std::fs::read_to_string(&done).unwrap_or_default();
    tmux(&sock, &["kill-server"]);
    assert_eq!(code.trim(), "0", "demo did not quit cleanly");
    // Nothing of the run is left: no process names its output directory.
    let left = processes_mentioning(&out.display().to_string());
    assert!(left.is_empty(), "left behind: {left:?}");
    // The toggles are in the decision log.
    let log = std::fs::read_to_string(out.join("classroom").join("decisions.jsonl")).unwrap();
    let kinds: Vec<String> =
        control_lines(&log).iter().map(|c| c["change"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["rule-off", "rule-on", "rule-off"]);
}
