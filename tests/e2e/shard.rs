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
    assert_eq!(x.matches("<stackTrace>").count(), 2, "every rerun has its stack trace: {x}");
    crate::report::xmllint_valid(&junit);
    // Every attempt's failures are kept on the run too, with what, expected, got and why.
    let attempts = run["attempts"].as_array().expect("run attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["missed"][0]["kind"], "call");
    assert_eq!(attempts[0]["missed"][0]["got"], "connected");
    assert!(run.get("flaky").is_none(), "missed every time: not flaky");
    assert!(String::from_utf8_lossy(&out.stderr).contains("exit 1: some expectation NOT met"));
}

/// Two 2-second scenarios, one per shard of 2 (equal estimates: the first name goes to shard 1).
fn two_scenarios(dir: &std::path::Path) -> Vec<String> {
    ["alpha", "beta"]
        .iter()
        .map(|n| {
            let p = dir.join(format!("{n}.toml"));
            std::fs::write(
                &p,
                format!("name = \"{n}\"\ntopology = \"censored-call\"\n[[calls]]\ntransport = \"noise\"\nstrategy = \"udp\"\nduration = \"2s\"\nexpect = \"connected\"\n"),
            )
            .unwrap();
            p.to_string_lossy().to_string()
        })
        .collect()
}

fn shard_cmd(
    files: &[String],
    dir: &std::path::Path,
    k: u32,
    tag: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut c = callwall();
    c.arg("run")
        .args(files)
        .args(["--topology-dir", "netns", "--shard", &format!("{k}/2")])
        .args(extra)
        .arg("--out")
        .arg(dir.join(format!("out-{tag}")))
        .arg("--json")
        .arg(dir.join(format!("{tag}.json")));
    c
}

#[test]
fn interrupted_and_mismatched_shards_are_refused_by_merge() {
    let tmp = TempDir::new("guarded-merge");
    let files = two_scenarios(tmp.path());
    // Shard 1, stopped by SIGTERM as soon as its run starts: not green, and says so.
    let mut child = shard_cmd(&files, tmp.path(), 1, "stopped", &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        assert!(n > 0, "the shard ended before its run started: {seen}");
        seen.push_str(&line);
        if line.contains("start") && line.contains("alpha") {
            break;
        }
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let mut table = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut table).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{seen}{rest}");
    assert!(rest.contains("INTERRUPTED") && !rest.contains("every expectation met"), "{rest}");
    assert!(table.contains("INTERRUPTED") && !table.contains("every expectation met"), "{table}");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("stopped.json")).unwrap())
            .unwrap();
    assert_eq!(v["interrupted"], true, "{v}");
    assert_eq!(v["runs"][0]["scenario"], "alpha");
    assert_eq!(v["runs"][0]["error"]["kind"], "interrupted", "{v}");

    // Shard 2 runs through; shard 1 again with another seed.
    for (k, tag, extra) in [(2, "second", &[][..]), (1, "seeded", &["--seed", "9"][..])] {
        let o = shard_cmd(&files, tmp.path(), k, tag, extra).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{tag}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let merge = |a: &str, b: &str| {
        callwall()
            .arg("merge")
            .arg(tmp.path().join(format!("{a}.json")))
            .arg(tmp.path().join(format!("{b}.json")))
            .arg("--json")
            .arg(tmp.path().join("merged.json"))
            .output()
            .unwrap()
    };
    let o = merge("stopped", "second");
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("stopped.json is from an interrupted run"), "{e}");
    let o = merge("seeded", "second");
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("measured different things (--seed 9 vs per scenario)"), "{e}");
    assert!(!tmp.path().join("merged.json").exists(), "a refused merge writes nothing");
    // The fingerprint names the commit, the options and each scenario file's hash.
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("seeded.json")).unwrap())
            .unwrap();
    let f = &v["fingerprint"];
    assert_eq!(f["options"]["seed"], 9);
    assert_eq!(f["shards"], 2);
    assert_eq!(f["scenarios"].as_array().map(Vec::len), Some(2));
    assert_eq!(f["scenarios"][0]["sha256"].as_str().map(str::len), Some(64));
    assert!(v["callwall_version"].as_str().unwrap().contains(f["commit"].as_str().unwrap()));
}
