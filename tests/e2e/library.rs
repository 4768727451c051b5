//! The whole scenario library against its expectations: every scenario of `scenarios/`, each
//! call's verdict checked against its `expect`. A call that misses fails the test, named by
//! scenario and call with its verdict and reason.

use crate::common::*;

#[test]
fn every_scenario_meets_its_expectations() {
    let files: Vec<String> = std::fs::read_dir(repo().join("scenarios"))
        .expect("scenarios/ is readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(files.len() >= 20, "expected the whole library, found {} files", files.len());
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let (code, v, out) = run_scenarios(&refs, &[]);
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    for r in &runs {
        let scenario = r["scenario"].as_str().unwrap_or("?");
        if !r["error"].is_null() {
            problems.push(format!("{scenario}: the run failed: {}", r["error"]));
            continue;
        }
        for c in r["calls"].as_array().into_iter().flatten() {
            if c["met"] != true {
                problems.push(format!(
                    "{scenario}/{}: got {}, expected {}: {}",
                    c["name"].as_str().unwrap_or("?"),
                    c["verdict"],
                    c["expected"],
                    serde_json::from_value::<callwall_results::Reason>(c["reason"].clone())
                        .map(|r| r.to_string())
                        .unwrap_or_default()
                ));
            }
        }
        // Calls placed `repeat = N` times are judged by the distribution of their verdicts.
        for d in r["distributions"].as_array().into_iter().flatten() {
            if d["met"] != true {
                problems.push(format!(
                    "{scenario}/{}: distribution {} missed: {}",
                    d["call"].as_str().unwrap_or("?"),
                    d["counts"],
                    d["missed"]
                ));
            }
        }
    }
    assert_eq!(runs.len(), files.len(), "not every scenario ran\n{}", dump(&out, &v));
    assert!(problems.is_empty(), "expectations missed:\n{}", problems.join("\n"));
    assert_eq!(code, 0, "{}", dump(&out, &v));
}
