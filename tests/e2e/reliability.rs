//! A run can be trusted: faults in peers give `error` verdicts without stopping the run, the
//! same seed gives the same verdicts, and it works without root through user namespaces.

use std::process::Command;

use crate::common::*;

fn write_scenario(tmp: &TempDir, name: &str, body: &str) -> String {
    let path = tmp.path().join(format!("{name}.toml"));
    std::fs::write(&path, format!("name = \"{name}\"\ntopology = \"{}\"\n{body}", repo().join("netns/censored-call.toml").display()))
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
    let v = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default()).unwrap_or_default();
    (out.status.code().unwrap_or(-1), v, out)
}

#[test]
fn a_crashing_peer_gives_error_and_the_run_goes_on() {
    let tmp = TempDir::new("crash");
    let file = write_scenario(&tmp, "crash", TWO_CALLS);
    let (code, v, out) = run_with_env(&file, ("CALLWALL_FAULT_INJECT", "crash:callee:victim"));
    let calls = v["runs"][0]["calls"].as_array().cloned().unwrap_or_default();
    let victim = calls.iter().find(|c| c["name"] == "victim").unwrap_or_else(|| panic!("{}", dump(&out, &v)));
    assert_eq!(victim["verdict"], "error", "{}", dump(&out, &v));
    assert!(victim["reason"].as_str().unwrap().contains("callee"), "the reason names the peer: {}", victim["reason"]);
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
    let victim = calls.iter().find(|c| c["name"] == "victim").unwrap_or_else(|| panic!("{}", dump(&out, &v)));
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
        assert_eq!(summary(r), first, "verdicts or deciding rules differ between repeats\n{}", dump(&out, &v));
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
    std::fs::copy(repo().join("scenarios/udp-blackout.toml"), base.join("scenarios/udp-blackout.toml")).unwrap();
    std::fs::copy(repo().join("netns/censored-call.toml"), base.join("netns/censored-call.toml")).unwrap();
    Command::new("chmod").args(["-R", "a+rwX"]).arg(&base).status().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(base.join("callwall"))
        .args(["run", "scenarios/udp-blackout.toml", "--transport", "noise", "--json", "out/r.json", "--out", "out"])
        .current_dir(&base)
        .output()
        .expect("setpriv (util-linux) runs");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(base.join("out/r.json")).unwrap_or_default()).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&base);
    assert_eq!(out.status.code(), Some(0), "{}", dump(&out, &v));
    assert_eq!(v["runs"][0]["calls"][0]["verdict"], "blocked", "{}", dump(&out, &v));
}
