//! A run can be trusted: faults in peers give `error` verdicts without stopping the run, the
//! same seed gives the same verdicts, and it works without root through user namespaces.

use std::process::Command;

use crate::common::*;

fn write_scenario(tmp: &TempDir, name: &str, body: &str) -> String {
    let path = tmp.path().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\ntopology = \"{}\"\n{body}",
            repo().join("netns/censored-call.toml").display()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

const TWO_CALLS: &str = r#"
[defaults]
duration = "4s"
connect_timeout = "3s"

[[calls]]
name = "victim"
transport = "noise"
strategy = "udp"
expect = "error"

[[calls]]
name = "bystander"
transport = "noise"
strategy = "tcp-443"
expect = "connected"
"#;

fn run_with_env(file: &str, env: (&str, &str)) -> (i32, serde_json::Value, std::process::Output) {
    let tmp = TempDir::new("fault");
    let json = tmp.path().join("r.json");
    let out = callwall()
        .args(["run", file, "--json"])
        .arg(&json)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .env(env.0, env.1)
        .output()
        .unwrap();
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
        .unwrap_or_default();
    (out.status.code().unwrap_or(-1), v, out)
}

#[test]
fn a_crashing_peer_gives_error_and_the_run_goes_on() {
    let tmp = TempDir::new("crash");
    let file = write_scenario(&tmp, "crash", TWO_CALLS);
    let (code, v, out) = run_with_env(&file, ("CALLWALL_FAULT_INJECT", "crash:callee:victim"));
    let calls = v["runs"][0]["calls"].as_array().cloned().unwrap_or_default();
    let victim = calls
        .iter()
        .find(|c| c["name"] == "victim")
        .unwrap_or_else(|| panic!("{}", dump(&out, &v)));
    assert_eq!(victim["verdict"], "error", "{}", dump(&out, &v));
    let reason: callwall_results::Reason =
        serde_json::from_value(victim["reason"].clone()).expect("a typed reason");
    assert!(
        matches!(&reason.cause, callwall_results::Cause::PeerFailed { errors }
            if errors.iter().any(|e| e.starts_with("callee"))),
        "the reason names the peer: {reason:?}"
    );
    let by = calls.iter().find(|c| c["name"] == "bystander").unwrap();
    assert_eq!(by["verdict"], "connected", "{}", dump(&out, &v));
    assert_eq!(code, 0, "both expectations are met\n{}", dump(&out, &v));
}

#[test]
fn a_hanging_peer_is_killed_at_its_deadline_and_gives_error() {
    let tmp = TempDir::new("hang");
    let file = write_scenario(&tmp, "hang", TWO_CALLS);
    let start = std::time::Instant::now();
    let (code, v, out) = run_with_env(&file, ("CALLWALL_FAULT_INJECT", "hang:caller:victim"));
    let calls = v["runs"][0]["calls"].as_array().cloned().unwrap_or_default();
    let victim = calls
        .iter()
        .find(|c| c["name"] == "victim")
        .unwrap_or_else(|| panic!("{}", dump(&out, &v)));
    assert_eq!(victim["verdict"], "error", "{}", dump(&out, &v));
    assert_eq!(code, 0, "{}", dump(&out, &v));
    // The call's budget is 3 s connect + 4 s media + grace; the run must not wait forever.
    assert!(start.elapsed().as_secs() < 60, "the run hung");
}

#[test]
fn the_same_seed_gives_the_same_verdicts_five_times() {
    let tmp = TempDir::new("det");
    let file = write_scenario(
        &tmp,
        "determinism",
        r#"
seed = 42
[censor]
[[censor.rules]]
name = "lossy-udp"
match = { proto = "udp" }
action = { loss = "12%" }
[[censor.rules]]
name = "slow-tcp"
match = { proto = "tcp", server_port = "443" }
action = { delay = "40ms", jitter = "5ms" }

[defaults]
duration = "4s"
connect_timeout = "3s"

[[calls]]
transport = "noise"
strategy = "udp"
expect = "degraded"

[[calls]]
transport = "noise"
strategy = "tcp-443"
expect = "connected"
"#,
    );
    let (code, v, out) = run_scenarios(&[&file], &["--repeat", "5"]);
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 5, "{}", dump(&out, &v));
    let summary = |r: &serde_json::Value| -> Vec<(String, String, String)> {
        r["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].to_string(), c["verdict"].to_string(), c["rule"].to_string()))
            .collect()
    };
    let first = summary(&runs[0]);
    for r in &runs[1..] {
        assert_eq!(
            summary(r),
            first,
            "verdicts or deciding rules differ between repeats\n{}",
            dump(&out, &v)
        );
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("all repeats agree"));
    assert_eq!(code, 0, "{}", dump(&out, &v));
}

#[test]
fn runs_unprivileged_through_user_namespaces() {
    // The tests run as root; drop to `nobody` for this run. Everything it needs is copied to
    // a world-readable directory, since the checkout may sit below a directory only root
    // can enter.
    let base = std::env::temp_dir().join(format!("callwall-unpriv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("scenarios")).unwrap();
    std::fs::create_dir_all(base.join("netns")).unwrap();
    std::fs::create_dir_all(base.join("out")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_callwall"), base.join("callwall")).unwrap();
    std::fs::copy(
        repo().join("scenarios/udp-blackout.toml"),
        base.join("scenarios/udp-blackout.toml"),
    )
    .unwrap();
    std::fs::copy(repo().join("netns/censored-call.toml"), base.join("netns/censored-call.toml"))
        .unwrap();
    // The scenario names app profiles (apps/*.toml), which `run` checks before it starts.
    std::fs::create_dir_all(base.join("apps")).unwrap();
    for entry in std::fs::read_dir(repo().join("apps")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "toml") {
            std::fs::copy(entry.path(), base.join("apps").join(entry.file_name())).unwrap();
        }
    }
    Command::new("chmod").args(["-R", "a+rwX"]).arg(&base).status().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(base.join("callwall"))
        .args([
            "run",
            "scenarios/udp-blackout.toml",
            "--transport",
            "noise",
            "--json",
            "out/r.json",
            "--out",
            "out",
        ])
        .current_dir(&base)
        .output()
        .expect("setpriv (util-linux) runs");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("out/r.json")).unwrap_or_default())
            .unwrap_or_default();
    let _ = std::fs::remove_dir_all(&base);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out, &v));
    assert_eq!(v["runs"][0]["calls"][0]["verdict"], "blocked", "{}", dump(&out, &v));
}

/// Runs a relayed WebRTC call, reading the relay's credentials from coturn's command line
/// while it runs; returns them and every byte the run wrote.
fn relayed_run() -> ((String, String), Vec<u8>) {
    let tmp = TempDir::new("creds");
    let file = write_scenario(
        &tmp,
        "creds",
        "[defaults]\nduration = \"3s\"\n[[calls]]\ntransport = \"webrtc\"\nstrategy = \"turn-udp\"\nexpect = \"connected\"\n",
    );
    let out_dir = tmp.path().join("out");
    let child = callwall()
        .args(["run", &file, "--pcap", "--json"])
        .arg(tmp.path().join("r.json"))
        .arg("--junit")
        .arg(tmp.path().join("j.xml"))
        .arg("--markdown")
        .arg(tmp.path().join("r.md"))
        .arg("--out")
        .arg(&out_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let root = child.id() as i32;
    let mut creds = None;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while creds.is_none() && std::time::Instant::now() < end {
        for p in descendants(root) {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let args: Vec<String> =
                cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            if let Some(i) = args.iter().position(|a| a == "--user") {
                if let Some((u, pw)) = args.get(i + 1).and_then(|s| s.split_once(':')) {
                    creds = Some((u.to_string(), pw.to_string()));
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let mut bytes = output.stdout;
    bytes.extend(output.stderr);
    fn walk(dir: &std::path::Path, out: &mut Vec<u8>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_none_or(|x| x != "pcap") {
                // Credentials legitimately cross the wire (STUN USERNAME): captures are not reports.
                out.extend(std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    walk(tmp.path(), &mut bytes);
    (creds.expect("coturn ran with --user credentials"), bytes)
}

#[test]
fn turn_credentials_are_fresh_per_run_and_never_written_to_reports_or_logs() {
    let ((user1, pass1), written1) = relayed_run();
    let ((user2, pass2), _) = relayed_run();
    assert_ne!(user1, user2, "usernames must be fresh per run");
    assert_ne!(pass1, pass2, "passwords must be fresh per run");
    assert!(pass1.len() >= 32, "password too short: {}", pass1.len());
    let text = String::from_utf8_lossy(&written1);
    assert!(text.contains("connected"), "the run wrote its results");
    assert!(!text.contains(&pass1), "the TURN password appears in a report or log");
    assert!(!text.contains(&user1), "the TURN username appears in a report or log");
}

/// `--seed` is recorded identically whether the run succeeds or fails inside its sandbox (the
/// launcher's own error path records it from the same `RunPlan`: `harness::plan` unit tests).
#[test]
fn the_seed_given_is_recorded_on_success_and_on_failure() {
    let tmp = TempDir::new("seed");
    // A topology without a relay host: a TURN call fails the run inside the sandbox.
    let topo = tmp.path().join("no-relay.toml");
    std::fs::write(
        &topo,
        r#"name = "no-relay"
description = "caller behind a censor; callee and signal beyond a router; no relay"
[[hosts]]
name = "caller"
[[hosts]]
name = "censor"
[[hosts]]
name = "wan"
forward = true
[[hosts]]
name = "callee"
[[hosts]]
name = "signal"
[[links]]
a = { host = "caller", addrs = ["10.1.0.2/24"] }
b = { host = "censor" }
[[links]]
a = { host = "censor" }
b = { host = "wan", addrs = ["10.1.0.1/24"] }
[[links]]
a = { host = "wan", addrs = ["10.2.0.1/24"] }
b = { host = "callee", addrs = ["10.2.0.2/24"] }
[[links]]
a = { host = "wan", addrs = ["10.4.0.1/24"] }
b = { host = "signal", addrs = ["10.4.0.2/24"] }
[[routes]]
host = "caller"
to = "default"
via = "10.1.0.1"
[[routes]]
host = "callee"
to = "default"
via = "10.2.0.1"
[[routes]]
host = "signal"
to = "default"
via = "10.4.0.1"
[censor]
host = "censor"
inside = "caller"
outside = "wan"
"#,
    )
    .unwrap();
    let call = |strategy: &str| {
        format!(
            "seed = 5\n[defaults]\nduration = \"2s\"\nconnect_timeout = \"3s\"\n\
             [[calls]]\ntransport = \"webrtc\"\nstrategy = \"{strategy}\"\nexpect = \"connected\"\n"
        )
    };
    let write = |name: &str, body: String| {
        let p = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&p, format!("name = \"{name}\"\ntopology = \"{}\"\n{body}", topo.display()))
            .unwrap();
        p.to_str().unwrap().to_string()
    };
    let ok = write("seed-ok", call("direct"));
    let bad = write("seed-fails", call("turn-udp"));
    let (_, v, out) = run_scenarios(&[&ok, &bad], &["--seed", "4242"]);
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 2, "{}", dump(&out, &v));
    let by = |n: &str| runs.iter().find(|r| r["scenario"] == n).cloned().unwrap();
    let (ok, bad) = (by("seed-ok"), by("seed-fails"));
    assert!(ok["error"].is_null(), "{}", dump(&out, &v));
    assert!(
        bad["error"]["message"].as_str().unwrap_or("").contains("no host named \"relay\""),
        "{}",
        dump(&out, &v)
    );
    assert_eq!(ok["seed"], 4242, "{}", dump(&out, &v));
    assert_eq!(bad["seed"], 4242, "{}", dump(&out, &v));
}
