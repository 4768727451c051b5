//! How every output marks flaky calls (`callwall run --retries N`): a call whose verdict changed
//! between attempts of its run. The final attempt's verdict is the call's verdict; earlier ones
//! are in [`CallResult::attempts`].
//!
//! JUnit follows the convention of Maven Surefire and cargo-nextest: a call that missed and then
//! met its expectation passes, with one `<flakyFailure>` per earlier attempt that missed; a call
//! that missed in every attempt has a `<failure>` (the last attempt) and one `<rerunFailure>`
//! per earlier attempt.

use std::fmt::Write as _;

use callwall_results::{CallResult, Results};

use crate::html::escape;

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

/// For the terminal table: one line per flaky call with its verdicts in order, empty if none.
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
    out
}

/// For JUnit: the `<flakyFailure>`/`<rerunFailure>` elements of a call's test case.
pub fn junit_elements(o: &mut String, c: &CallResult) {
    let tag = if c.met { "flakyFailure" } else { "rerunFailure" };
    for a in c.attempts.iter().filter(|a| !a.met) {
        let msg = format!(
            "expected {}, got {}; deciding rule: {}; {}",
            crate::one_of(&c.expected, "|"),
            a.verdict.as_str(),
            a.rule.as_deref().unwrap_or("none"),
            a.reason
        );
        let _ = writeln!(o, "      <{tag} message=\"{}\" type=\"verdict\"/>", escape(&msg));
    }
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
    use callwall_results::{Attempt, Verdict};

    fn retried(final_met: bool) -> Results {
        let mut c =
            call("noise-udp", if final_met { Verdict::Connected } else { Verdict::Blocked });
        c.flaky = final_met;
        c.attempts.push(Attempt {
            verdict: Verdict::Blocked,
            met: false,
            reason: callwall_results::Cause::Text { text: "no media".into() }.into(),
            rule: Some("drop-udp".into()),
        });
        let mut r = run("baseline", vec![c]);
        r.retries = 1;
        doc(vec![r])
    }

    #[test]
    fn a_flaky_call_is_marked_in_every_output() {
        let d = retried(true);
        assert_eq!(count(&d), 1);
        let t = crate::table(&d, false);
        assert!(
            t.contains("connected (flaky)")
                && t.contains("baseline/noise-udp: blocked -> connected"),
            "{t}"
        );
        assert!(crate::markdown(&d).contains("connected (flaky)"));
        let j = crate::junit(&d);
        assert!(j.contains("<flakyFailure message=\"expected connected, got blocked; deciding rule: drop-udp; no media\" type=\"verdict\"/>"), "{j}");
        assert!(!j.contains("<failure"), "a flaky pass is not a failure: {j}");
        assert!(crate::html(&d).contains("<strong>Flaky:</strong>"));
        let json = crate::json(&d);
        assert!(json.contains("\"flaky\": true") && json.contains("\"retries\": 1"), "{json}");
    }

    #[test]
    fn a_call_that_missed_every_attempt_has_rerun_failures() {
        let d = retried(false);
        let j = crate::junit(&d);
        assert!(j.contains("<failure ") && j.contains("<rerunFailure "), "{j}");
        assert!(!j.contains("flakyFailure"));
        assert!(!crate::table(&d, false).contains("(flaky)"));
    }
}
