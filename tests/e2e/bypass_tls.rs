//! The webrtc transport's bypasses through the real censor (issue 15): each censor rule with
//! calls without and with the bypass, short calls. Rules are inline so the pairs stay exact;
//! the dated matrix is in `scenarios/`.

use serde_json::Value;

use crate::common::{dump, repo, run_scenarios, TempDir};

const HEADER: &str = r#"
source = "tests/e2e/bypass_tls.rs (issue 15)"
topology = "censored-call"
seed = 1
"#;

const DEFAULTS: &str = r#"
[defaults]
duration = "3s"
connect_timeout = "3s"
"#;

/// One scenario file: `name`, its rule (a `[[censor.rules]]` body) and its calls.
fn scenario(dir: &std::path::Path, name: &str, rule: &str, calls: &str) -> String {
    let text = format!(
        "name = \"{name}\"\ndescription = \"bypass pairs\"{HEADER}\n[censor]\ndefault = \"pass\"\n\n[[censor.rules]]\n{rule}\n{DEFAULTS}\n{calls}"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A call of a pair: name, strategy, options (TOML inline table or empty), expected verdict.
type PairCall = (&'static str, &'static str, &'static str, &'static str);

/// A `[[calls]]` entry.
fn call(name: &str, strategy: &str, options: &str, expect: &str) -> String {
    // A call with a bypass says where its expectation comes from (see docs/bypasses.md).
    let options = if options.is_empty() {
        String::new()
    } else if options.contains("bypass") {
        format!("options = {options}\nprediction = \"e2e pair: this rule against this bypass\"\n")
    } else {
        format!("options = {options}\n")
    };
    format!(
        "[[calls]]\nname = \"{name}\"\ntransport = \"webrtc\"\nstrategy = \"{strategy}\"\n{options}expect = \"{expect}\"\n\n"
    )
}

#[test]
fn webrtc_bypasses_against_the_censor_rules_they_target() {
    let tmp = TempDir::new("bypass-tls");
    let relay_sni =
        "name = \"relay-sni\"\nmatch = { proto = \"tcp\", sni = [\"turn.callwall.test\"]";
    let plan: Vec<(&str, String, Vec<PairCall>)> = vec![
        (
            // The 2021 TSPU read the SNI of the first packet only.
            "sni-first-packet",
            format!("{relay_sni}, sni_first_packet = true }}\naction = \"reject\""),
            vec![
                ("tls-plain", "turn-tls", "", "blocked"),
                ("tls-record", "turn-tls", "{ bypass = { tls_record = 40 } }", "connected"),
                ("tcp-segment", "turn-tls", "{ bypass = { tcp_segment = 60 } }", "connected"),
                ("tls-no-sni", "turn-tls", "{ sni = \"\" }", "connected"),
            ],
        ),
        (
            // A classifier that reassembles the hello over records and segments.
            "sni-reassembled",
            format!("{relay_sni} }}\naction = \"reject\""),
            vec![
                ("tls-plain", "turn-tls", "", "blocked"),
                ("tls-record", "turn-tls", "{ bypass = { tls_record = 40 } }", "blocked"),
                ("tcp-segment", "turn-tls", "{ bypass = { tcp_segment = 60 } }", "blocked"),
            ],
        ),
        (
            // The August 2025 call restriction's first-packet test, as a drop.
            "stun-first",
            "name = \"stun-first\"\nmatch = { proto = \"udp\", first_label = [\"stun\"] }\naction = \"drop\"".into(),
            vec![
                ("turn-udp-plain", "turn-udp", "", "blocked"),
                ("turn-udp-decoy", "turn-udp", "{ bypass = { decoy = \"random\" } }", "connected"),
                ("direct-plain", "direct", "", "blocked"),
                ("direct-decoy", "direct", "{ bypass = { decoy = \"dns\" } }", "connected"),
            ],
        ),
        (
            // webrtc-rs's DTLS hello fingerprint (ru-dtls-fingerprint's rule).
            "dtls-fingerprint",
            "name = \"webrtc-rs-dtls\"\nmatch = { proto = \"udp\", dtls_fingerprint = [\"bb2624a1bceebe32\"] }\naction = \"drop\"".into(),
            vec![
                ("direct-plain", "direct", "", "blocked"),
                ("direct-chrome", "direct", "{ bypass = { dtls_mimic = \"chrome\" } }", "connected"),
                ("direct-firefox", "direct", "{ bypass = { dtls_mimic = \"firefox\" } }", "connected"),
            ],
        ),
    ];
    let mut files = Vec::new();
    for (name, rule, calls) in &plan {
        let calls: String = calls.iter().map(|(n, s, o, e)| call(n, s, o, e)).collect();
        files.push(scenario(tmp.path(), name, rule, &calls));
    }
    let topo = repo().join("netns");
    let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
    args.extend(["--topology-dir", topo.to_str().unwrap()]);
    let (code, v, out) = run_scenarios(&args, &[]);
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), plan.len(), "{}", dump(&out, &v));
    for ((name, _, calls), run) in plan.iter().zip(&runs) {
        let got = run["calls"].as_array().cloned().unwrap_or_default();
        for (call, _, _, expect) in calls {
            let c: &Value = got
                .iter()
                .find(|c| c["name"] == *call)
                .unwrap_or_else(|| panic!("{name}/{call} missing\n{}", dump(&out, &v)));
            eprintln!(
                "{name}/{call}: {} rule {} setup {} ms, path {}",
                c["verdict"], c["rule"], c["setup_ms"], c["path"]
            );
            assert_eq!(c["verdict"], *expect, "{name}/{call}\n{}", dump(&out, &v));
            if *expect == "blocked" {
                assert!(c["rule"].is_string(), "{name}/{call}: the blocking rule is named");
            }
        }
    }
    assert_eq!(code, 0, "every expectation is met\n{}", dump(&out, &v));
}
