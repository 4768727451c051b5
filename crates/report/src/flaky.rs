//! How every output marks what `callwall run --retries N` re-ran: a call whose verdict changed
//! between attempts of its run is flaky ([`CallResult::flaky`], its earlier attempts in
//! [`CallResult::attempts`]); a run is flaky ([`RunResult::flaky`]) when something in it (a
//! call, a workload, a distribution, the run itself) missed in an earlier attempt and met in
//! the last; every earlier attempt's failures are in [`RunResult::attempts`].
//!
//! - table and Markdown: `(flaky)` after a flaky call's verdict, then a section listing every
//!   flaky run with each earlier attempt's failures (what, expected, got, why);
//! - HTML: a banner for an interrupted document, a note in each flaky call's and run's section;
//! - JUnit ([`crate::junit`]): Surefire's `flakyFailure`/`flakyError`/`rerunFailure`/
//!   `rerunError` on every kind of test case;
//! - JSON: the fields themselves.

use std::fmt::Write as _;

use callwall_results::{CallResult, Results, RunResult};

use crate::html::escape;

pub use callwall_results::flaky::{errored_before, missed_before};

/// The mark after a flaky call's verdict in the table and Markdown.
pub const MARK: &str = " (flaky)";

/// `" (flaky)"` for a flaky call, empty otherwise.
pub fn mark(c: &CallResult) -> &'static str {
    if c.flaky {
        MARK
    } else {
        ""
    }
}

/// Flaky calls over the whole document.
pub fn count(doc: &Results) -> usize {
    doc.runs.iter().flat_map(|r| &r.calls).filter(|c| c.flaky).count()
}

/// The lines describing a retried run's earlier attempts, each prefixed with `indent`.
fn attempt_lines(r: &RunResult, indent: &str) -> Vec<String> {
    let total = r.attempts.len() + 1;
    let mut lines = Vec::new();
    for (i, a) in r.attempts.iter().enumerate() {
        if let Some(e) = &a.error {
            lines.push(format!("{indent}attempt {}/{total}: the run failed: {}", i + 1, e.message));
        }
        for m in &a.missed {
            lines.push(format!(
                "{indent}attempt {}/{total}: {} {} expected {}, got {}{}{}",
                i + 1,
                m.kind.as_str(),
                m.name,
                m.expected,
                m.got,
                if m.reason.is_empty() { "" } else { "; " },
                m.reason
            ));
        }
    }
    lines
}

fn run_label(r: &RunResult) -> String {
    if r.repeat > 0 {
        format!("{}#{}", r.scenario, r.repeat + 1)
    } else {
        r.scenario.clone()
    }
}

fn outcome(r: &RunResult) -> &'static str {
    if r.passed() {
        "passed on a retry (FLAKY)"
    } else {
        "missed in every attempt"
    }
}

/// For the terminal table: every flaky call with its verdicts in order, every retried run
/// with its earlier attempts' failures, and a line for an interrupted document; empty if none.
pub fn table_section(doc: &Results) -> String {
    let mut out = String::new();
    for r in &doc.runs {
        for c in r.calls.iter().filter(|c| c.flaky) {
            if out.is_empty() {
                out.push_str("\nflaky calls (verdict changed between attempts; --retries):\n");
            }
            let seq: Vec<&str> =
                c.attempts.iter().map(|a| a.verdict.as_str()).chain([c.verdict.as_str()]).collect();
            let _ = writeln!(out, "  {}/{}: {}", r.scenario, c.name, seq.join(" -> "));
        }
    }
    let retried: Vec<&RunResult> = doc.runs.iter().filter(|r| !r.attempts.is_empty()).collect();
    if !retried.is_empty() {
        out.push_str("\nretried runs (--retries; earlier attempts' failures):\n");
        for r in retried {
            let _ = writeln!(out, "  {}: {}", run_label(r), outcome(r));
            for l in attempt_lines(r, "    ") {
                let _ = writeln!(out, "{l}");
            }
        }
    }
    if doc.interrupted {
        out.push_str("\nINTERRUPTED (SIGINT or SIGTERM): not every run finished; these results are not a pass\n");
    }
    out
}

/// For Markdown: the same as [`table_section`], as a list.
pub fn markdown_section(doc: &Results) -> String {
    let mut out = String::new();
    if doc.interrupted {
        out.push_str("\n**Interrupted** (SIGINT or SIGTERM): not every run finished; these results are not a pass.\n");
    }
    let retried: Vec<&RunResult> = doc.runs.iter().filter(|r| !r.attempts.is_empty()).collect();
    if !retried.is_empty() {
        out.push_str("\n**Retried runs** (`--retries`):\n\n");
        for r in retried {
            let _ = writeln!(out, "- {}: {}", run_label(r), outcome(r));
            for l in attempt_lines(r, "") {
                let _ = writeln!(out, "  - {}", l.replace('|', "/"));
            }
        }
    }
    out
}

/// For HTML: a banner at the top of an interrupted document.
pub fn html_doc(o: &mut String, doc: &Results) {
    if doc.interrupted {
        o.push_str("<p class=\"run-error\"><strong>Interrupted</strong> (SIGINT or SIGTERM): not every run finished; these results are not a pass.</p>\n");
    }
}

/// For HTML: a retried run's earlier attempts in its section.
pub fn html_run(o: &mut String, r: &RunResult) {
    if r.attempts.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "<p class=\"flaky\"><strong>{}:</strong> attempt {} of {}.</p>\n<ul class=\"flaky\">",
        if r.passed() { "Flaky" } else { "Retried" },
        r.attempts.len() + 1,
        r.attempts.len() + 1
    );
    for l in attempt_lines(r, "") {
        let _ = writeln!(o, "<li>{}</li>", escape(&l));
    }
    o.push_str("</ul>\n");
}

/// For HTML: a note in a flaky call's section.
pub fn html_call(o: &mut String, c: &CallResult) {
    if !c.flaky {
        return;
    }
    let seq: Vec<&str> =
        c.attempts.iter().map(|a| a.verdict.as_str()).chain([c.verdict.as_str()]).collect();
    let _ = writeln!(
        o,
        "<p class=\"flaky\"><strong>Flaky:</strong> this call's verdict changed between attempts of its run ({}): it is not a stable property of the build.</p>",
        escape(&seq.join(" → "))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::tests::{call, doc, run};
    use callwall_results::{Attempt, Miss, MissKind, RunAttempt, RunError, RunErrorKind, Verdict};

    fn retried(final_met: bool) -> Results {
        let mut c =
            call("noise-udp", if final_met { Verdict::Connected } else { Verdict::Blocked });
        c.flaky = final_met;
        c.met = final_met;
        c.attempts.push(Attempt {
            verdict: Verdict::Blocked,
            met: false,
            reason: callwall_results::Cause::Text { text: "no media".into() }.into(),
            rule: Some("drop-udp".into()),
        });
        let mut r = run("baseline", vec![c]);
        r.retries = 1;
        r.attempts.push(RunAttempt {
            error: None,
            missed: vec![Miss {
                kind: MissKind::Call,
                name: "noise-udp".into(),
                expected: "connected".into(),
                got: "blocked".into(),
                reason: "deciding rule: drop-udp; no media".into(),
            }],
        });
        r.flaky = final_met;
        doc(vec![r])
    }

    /// A run that failed to set up, then one whose workload missed, then passed.
    fn recovered_run() -> Results {
        let mut r = run("baseline", vec![call("noise-udp", Verdict::Connected)]);
        r.retries = 2;
        r.attempts = vec![
            RunAttempt {
                error: Some(RunError::new(RunErrorKind::Timeout, "timed out after 40s")),
                missed: vec![],
            },
            RunAttempt {
                error: None,
                missed: vec![Miss {
                    kind: MissKind::Workload,
                    name: "web".into(),
                    expected: "ok".into(),
                    got: "failed".into(),
                    reason: "client crashed".into(),
                }],
            },
        ];
        r.flaky = true;
        doc(vec![r])
    }

    #[test]
    fn a_flaky_call_is_marked_in_every_output() {
        let d = retried(true);
        assert_eq!(count(&d), 1);
        let t = crate::table(&d, false);
        assert!(
            t.contains("connected (flaky)")
                && t.contains("baseline/noise-udp: blocked -> connected")
                && t.contains("baseline: passed on a retry (FLAKY)")
                && t.contains("attempt 1/2: call noise-udp expected connected, got blocked"),
            "{t}"
        );
        let md = crate::markdown(&d);
        assert!(
            md.contains("connected (flaky)") && md.contains("passed on a retry (FLAKY)"),
            "{md}"
        );
        let j = crate::junit(&d);
        assert!(j.contains("<flakyFailure message=\"expected connected, got blocked; deciding rule: drop-udp; no media\" type=\"call\">"), "{j}");
        assert!(j.contains("<stackTrace>attempt 1 of 2: call noise-udp missed"), "{j}");
        assert!(!j.contains("<failure"), "a flaky pass is not a failure: {j}");
        let html = crate::html(&d);
        assert!(html.contains("<strong>Flaky:</strong>"));
        let json = crate::json(&d);
        assert!(json.contains("\"flaky\": true") && json.contains("\"retries\": 1"), "{json}");
        assert!(json.contains("\"attempts\"") && json.contains("\"kind\": \"call\""), "{json}");
    }

    #[test]
    fn a_call_that_missed_every_attempt_has_rerun_failures() {
        let d = retried(false);
        let j = crate::junit(&d);
        assert!(j.contains("<failure ") && j.contains("<rerunFailure "), "{j}");
        assert!(!j.contains("flakyFailure"));
        let t = crate::table(&d, false);
        assert!(!t.contains("(flaky)") && t.contains("missed in every attempt"), "{t}");
    }

    #[test]
    fn a_setup_error_and_a_workload_that_recovered_are_flaky_everywhere() {
        let d = recovered_run();
        let t = crate::table(&d, false);
        assert!(
            t.contains("attempt 1/3: the run failed: timed out after 40s")
                && t.contains("attempt 2/3: workload web expected ok, got failed; client crashed"),
            "{t}"
        );
        assert!(crate::markdown(&d).contains("the run failed: timed out after 40s"));
        assert!(crate::html(&d).contains("workload web expected ok, got failed"));
        let j = crate::junit(&d);
        // The setup case passed on the last attempt: a flakyError per failed attempt.
        assert!(j.contains("<testcase name=\"setup\""), "{j}");
        assert!(
            j.contains("<flakyError message=\"timed out after 40s\" type=\"run-error\">"),
            "{j}"
        );
        assert!(!j.contains("<error") && !j.contains("<failure"), "{j}");
    }

    /// The reader's view (quick-junit's deserializer, the shape Surefire's and Jenkins' readers
    /// take): every flaky and rerun element has a message, a type and a stack trace.
    #[test]
    fn every_rerun_has_message_type_and_stack_trace() {
        for d in [retried(true), retried(false), recovered_run()] {
            let report = quick_junit::Report::deserialize_from_str(&crate::junit(&d)).unwrap();
            let mut reruns = 0;
            for case in report.test_suites.iter().flat_map(|s| &s.test_cases) {
                let runs = match &case.status {
                    quick_junit::TestCaseStatus::Success { flaky_runs } => flaky_runs.clone(),
                    quick_junit::TestCaseStatus::NonSuccess { reruns, .. } => reruns.runs.clone(),
                    quick_junit::TestCaseStatus::Skipped { .. } => vec![],
                };
                for r in runs {
                    reruns += 1;
                    assert!(
                        r.message.is_some() && r.ty.is_some() && r.stack_trace.is_some(),
                        "{r:?}"
                    );
                }
            }
            assert!(reruns >= 1);
        }
    }

    /// Every case validates against the project's XSD with xmllint (libxml2-utils).
    #[test]
    fn junit_validates_against_the_schema_in_every_case() {
        let xsd =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/junit.xsd");
        let dir = std::env::temp_dir().join(format!("callwall-junit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut interrupted = doc(vec![run("baseline", vec![call("a", Verdict::Connected)])]);
        interrupted.interrupted = true;
        let plain = doc(vec![run("baseline", vec![call("a", Verdict::Connected)])]);
        for (i, d) in
            [retried(true), retried(false), recovered_run(), interrupted, plain].iter().enumerate()
        {
            let f = dir.join(format!("{i}.xml"));
            std::fs::write(&f, crate::junit(d)).unwrap();
            let out = std::process::Command::new("xmllint")
                .arg("--noout")
                .arg("--schema")
                .arg(&xsd)
                .arg(&f)
                .output()
                .expect("xmllint (Debian package libxml2-utils, make deps)");
            assert!(
                out.status.success(),
                "case {i}: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                crate::junit(d)
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
