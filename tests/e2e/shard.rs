//! Past one machine: `run --shard K/N` in separate processes, `merge`, and `--retries`.

use std::collections::BTreeSet;
use std::process::Stdio;

use serde_json::Value;

use crate::common::{callwall, dump, run_scenarios, TempDir};

/// Scenarios with deterministic verdicts (fixed censor rules, no random draw), kept to the
/// cheap transports.
const FILES: &[&str] = &[
    "scenarios/udp-blackout.toml",
    "scenarios/ru-quic-sni.toml",
    "scenarios/cn-gfw-quic-sni.toml",
    "scenarios/ru-wireguard-handshake.toml",
];
const ONLY: &[&str] = &["--transport", "noise", "--transport", "quic"];

fn verdicts(v: &Value) -> BTreeSet<(String, u64, String, String)> {
    let mut out = BTreeSet::new();
    for r in v["runs"].as_array().expect("runs") {
        for c in r["calls"].as_array().expect("calls") {
            out.insert((
                r["scenario"].as_str().unwrap_or("").to_string(),
                r["repeat"].as_u64().unwrap_or(0),
                c["name"].as_str().unwrap_or("").to_string(),
                c["verdict"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

#[test]
fn three_shards_in_separate_processes_merge_to_a_single_runs_verdicts() {
    let (code, single, out) = run_scenarios(FILES, ONLY);
    assert_eq!(code, 0, "{}", dump(&out, &single));
    let tmp = TempDir::new("shards");
    // Three shards at once, each its own process.
    let children: Vec<_> = (1..=3)
        .map(|k| {
            callwall()
                .arg("run")
                .args(FILES)
                .args(ONLY)
                .args(["--jobs", "2", "--shard", &format!("{k}/3")])
                .arg("--out")
                .arg(tmp.path().join(format!("out{k}")))
                .arg("--json")
                .arg(tmp.path().join(format!("shard-{k}.json")))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a shard")
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (k, ch) in children.into_iter().enumerate() {
        let o = ch.wait_with_output().expect("shard ran");
        assert_eq!(
            o.status.code(),
            Some(0),
            "shard {}: {}",
            k + 1,
            String::from_utf8_lossy(&o.stderr)
        );
        let text =
            std::fs::read_to_string(tmp.path().join(format!("shard-{}.json", k + 1))).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["shard"]["index"], k as u64 + 1);
        assert_eq!(v["shard"]["count"], 3);
        for r in v["runs"].as_array().unwrap() {
            assert!(
                seen.insert(r["scenario"].as_str().unwrap().to_string()),
                "a run in two shards"
            );
        }
    }
    assert_eq!(seen.len(), FILES.len(), "the shards cover the matrix");
    let merged = tmp.path().join("merged.json");
    let junit = tmp.path().join("junit.xml");
    let o = callwall()
        .arg("merge")
        .args((1..=3).map(|k| tmp.path().join(format!("shard-{k}.json"))))
        .arg("--json")
        .arg(&merged)
        .arg("--junit")
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(verdicts(&m), verdicts(&single), "merged shards differ from the single run");
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testsuite name=\"udp-blackout\""));
    // A shard missing, or given twice, is refused before anything is written.
    let o = callwall()
        .arg("merge")
        .arg(tmp.path().join("shard-1.json"))
        .arg(tmp.path().join("shard-2.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("shard(s) 3/3 missing"));
}

#[test]
fn retries_rerun_a_missed_scenario_and_record_every_attempt() {
    let tmp = TempDir::new("retries");
    let sc = tmp.path().join("never-blocked.toml");
    std::fs::write(
        &sc,
        "name = \"never-blocked\"\ntopology = \"censored-call\"\n[[calls]]\ntransport = \"noise\"\nstrategy = \"udp\"\nduration = \"2s\"\nexpect = \"blocked\"\n",
    )
    .unwrap();
    let junit = tmp.path().join("junit.xml");
    let sc = sc.to_string_lossy().to_string();
    let (code, v, out) = run_scenarios(
        &[&sc],
        &["--topology-dir", "netns", "--retries", "2", "--junit", &junit.to_string_lossy()],
    );
    assert_eq!(code, 1, "{}", dump(&out, &v));
    let run = &v["runs"][0];
    assert_eq!(run["retries"], 2, "{}", dump(&out, &v));
    let call = &run["calls"][0];
    assert_eq!(call["verdict"], "connected");
    assert_eq!(call["attempts"].as_array().map(Vec::len), Some(2));
    assert!(call.get("flaky").is_none(), "the same verdict every time is not flaky");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(x.matches("<rerunFailure ").count(), 2, "{x}");
    assert_eq!(x.matches("<failure ").count(), 1, "{x}");
}
