//! The foundation: a Noise call through the censor connects when it passes everything and is
//! blocked when it drops all UDP.

use crate::common::*;

#[test]
fn baseline_noise_call_connects_with_good_quality() {
    let (code, v, out) = run_scenarios(&["scenarios/baseline.toml"], &["--transport", "noise"]);
    let calls = v["runs"][0]["calls"].as_array().cloned().unwrap_or_default();
    assert!(!calls.is_empty(), "no calls\n{}", dump(&out, &v));
    for c in &calls {
        assert_eq!(c["verdict"], "connected", "{}", dump(&out, &v));
        assert!(c["loss_pct"].as_f64().unwrap() < 1.0, "{}", dump(&out, &v));
        assert!(c["mos"].as_f64().unwrap() > 4.0, "{}", dump(&out, &v));
        assert!(c["setup_ms"].as_f64().is_some(), "{}", dump(&out, &v));
    }
    assert_eq!(code, 0, "{}", dump(&out, &v));
    // The censor saw the call's packets and passed them.
    let rules = v["runs"][0]["censor"]["rules"].as_array().unwrap();
    let default = rules.last().unwrap();
    assert_eq!(default["name"], "default-pass");
    assert!(default["counters"]["forwarded"].as_u64().unwrap() > 500, "{}", dump(&out, &v));
    assert_eq!(default["counters"]["dropped"].as_u64().unwrap(), 0);
}

#[test]
fn udp_blackout_blocks_noise_over_udp_and_names_the_rule() {
    let (code, v, out) = run_scenarios(&["scenarios/udp-blackout.toml"], &["--transport", "noise"]);
    let calls = v["runs"][0]["calls"].as_array().cloned().unwrap_or_default();
    let udp = calls
        .iter()
        .find(|c| c["strategy"] == "udp")
        .unwrap_or_else(|| panic!("no udp call\n{}", dump(&out, &v)));
    assert_eq!(udp["verdict"], "blocked", "{}", dump(&out, &v));
    assert_eq!(udp["rule"], "drop-all-udp", "{}", dump(&out, &v));
    let rule = &v["runs"][0]["censor"]["rules"][0];
    assert_eq!(rule["name"], "drop-all-udp");
    assert!(rule["counters"]["dropped"].as_u64().unwrap() > 0, "{}", dump(&out, &v));
    assert_eq!(code, 0, "every expectation in the file is met\n{}", dump(&out, &v));
}

#[test]
fn a_wrong_expectation_gives_exit_code_1() {
    let tmp = TempDir::new("expect");
    let path = tmp.path().join("wrong.toml");
    let text = std::fs::read_to_string(repo().join("scenarios/udp-blackout.toml"))
        .unwrap()
        .replace("expect = \"blocked\"", "expect = \"connected\"");
    std::fs::write(&path, text).unwrap();
    let (code, v, out) = run_scenarios(
        &[path.to_str().unwrap(), "--topology-dir", repo().join("netns").to_str().unwrap()],
        &["--transport", "noise"],
    );
    assert_eq!(code, 1, "{}", dump(&out, &v));
    assert_eq!(v["runs"][0]["calls"][0]["met"], false);
}
