//! Reports as users see them: `callwall report` re-renders a real run's results; the HTML page
//! is loaded in headless Chromium (no console errors, matrix and plots in the rendered DOM, a
//! screenshot kept in `target/e2e-artifacts/report.png`); the JUnit file validates against the
//! Jenkins/Ant schema in `tests/data/junit.xsd`; `callwall diff` gives 0/1/2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::*;

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A real results file: the UDP blackout with its noise call (blocked by `drop-all-udp`).
fn blackout_results(dir: &Path) -> (PathBuf, Value) {
    let (code, v, out) = run_scenarios(&["scenarios/udp-blackout.toml"], &["--transport", "noise"]);
    assert_eq!(code, 0, "{}", dump(&out, &v));
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    (path, v)
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in ["/usr/bin", "/usr/local/bin", "/snap/bin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!("headless Chromium is not installed; install the Debian package chromium (make deps)");
}

/// Chromium in headless mode, as root, isolated from the network and from any profile.
fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Lines of Chromium's log that are messages of the page's console (errors, CSP violations,
/// failed loads: a self-contained page without script has none).
fn console_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

#[test]
fn report_renders_in_a_browser_and_junit_validates() {
    let tmp = TempDir::new("report");
    let (results, v) = blackout_results(tmp.path());
    let html = tmp.path().join("report.html");
    let junit = tmp.path().join("junit.xml");
    let md = tmp.path().join("results.md");
    let out = callwall()
        .arg("report")
        .arg(&results)
        .arg("--html")
        .arg(&html)
        .arg("--junit")
        .arg(&junit)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("blocked"), "{}", text(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("udp-blackout") && page.contains("drop-all-udp"), "{page}");
    assert!(!page.contains("<script"), "the page must not need a script");
    assert!(std::fs::read_to_string(&md).unwrap().contains("| udp-blackout |"));

    // JUnit: valid for the schema CI systems read.
    xmllint_valid(&junit);

    // The page in a browser: the rendered DOM.
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    let dom =
        headless(&tmp.path().join("profile-dom")).arg("--dump-dom").arg(&url).output().unwrap();
    assert!(dom.status.success(), "chromium failed:\n{}", text(&dom));
    assert_eq!(
        console_lines(&dom.stderr),
        Vec::<String>::new(),
        "console messages while loading the report"
    );
    let rendered = String::from_utf8_lossy(&dom.stdout);
    assert!(rendered.contains("id=\"matrix\""), "no verdict matrix in the rendered page");
    assert!(rendered.contains("class=\"cell v-blocked\""), "the blocked call is not in the matrix");
    let calls = v["runs"][0]["calls"].as_array().map_or(0, Vec::len);
    assert!(calls >= 1);
    assert_eq!(rendered.matches("<svg class=\"timeline\"").count(), calls, "one timeline per call");
    assert!(
        rendered.contains("class=\"censor-marker\""),
        "the censor's drop is not marked on the timeline"
    );
    assert!(rendered.contains("drop-all-udp: drop"));

    // A screenshot, kept for people to look at.
    let artifacts = repo().join("target").join("e2e-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("report.png");
    let _ = std::fs::remove_file(&png);
    let shot = headless(&tmp.path().join("profile-shot"))
        .arg("--window-size=1200,2600")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot.status.success(), "chromium screenshot failed:\n{}", text(&shot));
    assert_eq!(console_lines(&shot.stderr), Vec::<String>::new());
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{}", png.display(), text(&shot)));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "screenshot is not a PNG of a page"
    );

    // `callwall diff`: same file 0; a call that got worse 1, with JSON for machines.
    let same = callwall().arg("diff").arg(&results).arg(&results).output().unwrap();
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let mut better = v.clone();
    better["runs"][0]["calls"][0]["verdict"] = "connected".into();
    let old = tmp.path().join("old.json");
    std::fs::write(&old, better.to_string()).unwrap();
    let worse = callwall().arg("diff").arg(&old).arg(&results).arg("--json").output().unwrap();
    assert_eq!(worse.status.code(), Some(1), "{}", text(&worse));
    let d: Value = serde_json::from_slice(&worse.stdout)
        .unwrap_or_else(|e| panic!("diff --json is not JSON ({e}): {}", text(&worse)));
    assert_eq!(d["regressed"], true);
    assert_eq!(d["changed"][0]["old"], "connected");
    assert_eq!(d["changed"][0]["new"], "blocked");
    let improved = callwall().arg("diff").arg(&results).arg(&old).output().unwrap();
    assert_eq!(improved.status.code(), Some(0), "{}", text(&improved));
    assert!(String::from_utf8_lossy(&improved.stdout).contains("better"), "{}", text(&improved));

    // A call that disappeared is lost coverage: worse (exit 1) unless --allow-removed.
    let mut fewer = v.clone();
    fewer["runs"][0]["calls"] = serde_json::json!([]);
    let new = tmp.path().join("fewer.json");
    std::fs::write(&new, fewer.to_string()).unwrap();
    let removed = callwall().arg("diff").arg(&results).arg(&new).output().unwrap();
    assert_eq!(removed.status.code(), Some(1), "{}", text(&removed));
    assert!(
        String::from_utf8_lossy(&removed.stdout).contains("removed udp-blackout/"),
        "{}",
        text(&removed)
    );
    let allowed =
        callwall().arg("diff").arg(&results).arg(&new).arg("--allow-removed").output().unwrap();
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));

    // The same run, as if it had passed only on its second attempt after a setup timeout
    // and a missed call: JUnit marks both flaky (Surefire's flakyError and flakyFailure, each
    // with a stack trace) and validates; the table says it.
    let mut flaky = v.clone();
    let call = flaky["runs"][0]["calls"][0]["name"].clone();
    flaky["runs"][0]["retries"] = 2.into();
    flaky["runs"][0]["flaky"] = true.into();
    flaky["runs"][0]["attempts"] = serde_json::json!([
        { "error": { "kind": "timeout", "message": "timed out after 40s" } },
        { "missed": [ { "kind": "call", "name": call, "expected": "blocked",
                        "got": "connected", "reason": "media flowed" } ] }
    ]);
    let flaky_json = tmp.path().join("flaky.json");
    std::fs::write(&flaky_json, flaky.to_string()).unwrap();
    let flaky_junit = tmp.path().join("flaky.xml");
    let out = callwall()
        .arg("report")
        .arg(&flaky_json)
        .arg("--junit")
        .arg(&flaky_junit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("passed on a retry (FLAKY)"),
        "{}",
        text(&out)
    );
    let x = std::fs::read_to_string(&flaky_junit).unwrap();
    assert!(x.contains("<flakyError message=\"timed out after 40s\" type=\"run-error\">"), "{x}");
    assert!(x.contains("<flakyFailure message=\"expected blocked, got connected; media flowed\" type=\"call\">"), "{x}");
    assert_eq!(x.matches("<stackTrace>").count(), 2, "{x}");
    xmllint_valid(&flaky_junit);
}

/// Asserts `junit` validates against `tests/data/junit.xsd` (Ant's format with Surefire's
/// re-run elements) with xmllint.
pub fn xmllint_valid(junit: &Path) {
    let lint = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(repo().join("tests/data/junit.xsd"))
        .arg(junit)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run xmllint ({e}); install the Debian package libxml2-utils (make deps)")
        });
    assert!(
        lint.status.success(),
        "JUnit does not validate:\n{}\n{}",
        text(&lint),
        std::fs::read_to_string(junit).unwrap()
    );
}

#[test]
fn report_and_diff_reject_bad_input_with_exit_code_2() {
    let tmp = TempDir::new("report-bad");
    let missing = tmp.path().join("missing.json");
    let garbage = tmp.path().join("garbage.json");
    std::fs::write(&garbage, "this is not JSON").unwrap();
    let future = tmp.path().join("future.json");
    std::fs::write(&future, r#"{"schema_version": 999, "callwall_version": "9.9.9", "runs": []}"#)
        .unwrap();
    let empty = tmp.path().join("empty.json");
    std::fs::write(&empty, r#"{"schema_version": 2, "callwall_version": "0.1.0", "runs": []}"#)
        .unwrap();

    for (file, says) in [
        (&missing, "cannot read results file"),
        (&garbage, "not valid JSON"),
        (&future, "version(s) 2"),
    ] {
        let out = callwall().arg("report").arg(file).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{}", text(&out));
        let out = callwall().arg("diff").arg(&empty).arg(file).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
    // An empty but valid document renders.
    let html = tmp.path().join("empty.html");
    let out = callwall().arg("report").arg(&empty).arg("--html").arg(&html).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(std::fs::read_to_string(&html).unwrap().contains("no runs"));
}
