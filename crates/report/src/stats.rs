//! How every output shows statistical calls (`repeat = N` with expected shares): the
//! distribution of verdicts over the repeats next to the expected shares, and whether it met
//! them. Pure functions over [`RunResult::distributions`]; the renderers call them.

use std::fmt::Write as _;

use callwall_results::stats::Distribution;
use callwall_results::{Results, RunResult};

use crate::html::escape;

/// `blocked 40% (expected 0-30%), ...`: why a distribution missed.
fn missed_text(d: &Distribution) -> String {
    d.missed.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
}

/// Distributions that missed their shares, over the whole document.
pub fn missed(doc: &Results) -> usize {
    doc.runs.iter().flat_map(|r| &r.distributions).filter(|d| !d.met).count()
}

fn line(d: &Distribution) -> String {
    format!(
        "{}/{} x{}: {}; expected {}{}",
        d.transport,
        d.strategy,
        d.repeats,
        d.counts_text(),
        d.expected_text(),
        if d.met { String::new() } else { format!("; NOT met: {}", missed_text(d)) }
    )
}

fn run_name(r: &RunResult) -> String {
    if r.repeat > 0 {
        format!("{} #{}", r.scenario, r.repeat + 1)
    } else {
        r.scenario.clone()
    }
}

/// For the terminal table: one line per statistical call, empty when there is none.
pub fn table_section(doc: &Results) -> String {
    let mut out = String::new();
    for r in &doc.runs {
        for d in &r.distributions {
            if out.is_empty() {
                out.push_str(
                    "\nrepeated calls (verdicts over the repeats vs the expected shares):\n",
                );
            }
            let _ = writeln!(
                out,
                "  {} {}/{}: {}",
                if d.met { "met " } else { "MISS" },
                run_name(r),
                d.call,
                line(d)
            );
        }
    }
    out
}

/// For Markdown: a table of the statistical calls, empty when there is none.
pub fn markdown_section(doc: &Results) -> String {
    let mut o = String::new();
    for r in &doc.runs {
        for d in &r.distributions {
            if o.is_empty() {
                o.push_str("\n**Repeated calls** (distribution of verdicts over the repeats)\n\n| scenario | call | repeats | verdicts | expected shares | met |\n|---|---|--:|---|---|---|\n");
            }
            let _ = writeln!(
                o,
                "| {} | {} ({}/{}) | {} | {} | {} | {} |",
                run_name(r),
                d.call,
                d.transport,
                d.strategy,
                d.repeats,
                d.counts_text(),
                d.expected_text(),
                if d.met { "yes".to_string() } else { format!("**no:** {}", missed_text(d)) }
            );
        }
    }
    o
}

/// For JUnit: one test case per statistical call, in the run's test suite; a failure when the
/// distribution missed. `suite` is the escaped suite name.
pub fn junit_cases(o: &mut String, suite: &str, r: &RunResult) {
    for d in &r.distributions {
        let _ = writeln!(
            o,
            "    <testcase classname=\"{suite}\" name=\"{}\" time=\"0.000\">",
            escape(&format!(
                "{} ({}/{}) distribution over {} repeats",
                d.call, d.transport, d.strategy, d.repeats
            ))
        );
        if !d.met {
            let _ = writeln!(
                o,
                "      <failure message=\"{}\" type=\"distribution\"/>",
                escape(&format!(
                    "verdicts {}; expected {}; missed: {}",
                    d.counts_text(),
                    d.expected_text(),
                    missed_text(d)
                ))
            );
        }
        let _ = writeln!(o, "      <system-out>{}</system-out>", escape(&line(d)));
        let _ = writeln!(o, "    </testcase>");
    }
}

/// For HTML: a table of a run's statistical calls, nothing when there is none.
pub fn html_run(o: &mut String, r: &RunResult) {
    if r.distributions.is_empty() {
        return;
    }
    o.push_str("<h3>Repeated calls</h3>\n<p class=\"hint\">These calls are genuinely random (a handshake under loss, a censor blocking with a probability), so each was placed several times at once and the share of each verdict is judged.</p>\n<table class=\"rules distributions\"><thead><tr><th>call</th><th>repeats</th><th>verdicts</th><th>expected shares</th><th>met</th></tr></thead><tbody>\n");
    for d in &r.distributions {
        let mut cells = String::new();
        for (v, n) in &d.counts {
            let _ = write!(cells, "<span class=\"chip v-{v}\">{v} {n}/{}</span> ", d.repeats);
        }
        let _ = writeln!(
            o,
            "<tr><td>{} <small>{} / {}</small></td><td>{}</td><td>{cells}</td><td>{}</td><td>{}</td></tr>",
            escape(&d.call),
            escape(&d.transport),
            escape(&d.strategy),
            d.repeats,
            escape(&d.expected_text()),
            if d.met { "✓".to_string() } else { format!("✗ {}", escape(&missed_text(d))) }
        );
    }
    o.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::tests::{call, doc, run};
    use callwall_results::stats::{judge, ShareRange, Shares};
    use callwall_results::Verdict::*;

    fn with_distribution(met: bool) -> Results {
        let shares: Shares = [
            (Degraded, ShareRange::parse("70-100%").unwrap()),
            (Blocked, ShareRange::parse("0-30%").unwrap()),
        ]
        .into();
        let verdicts = if met {
            vec![Degraded, Degraded, Degraded, Blocked]
        } else {
            vec![Degraded, Blocked, Blocked, Blocked]
        };
        let mut c = call("webrtc-direct#1", Degraded);
        c.met = true;
        c.expected = [Degraded, Blocked].into_iter().collect();
        let mut r = run("net-lossy", vec![c]);
        r.distributions.push(judge("webrtc-direct", "webrtc", "direct", &verdicts, &shares));
        doc(vec![r])
    }

    #[test]
    fn every_output_shows_the_distribution() {
        let d = with_distribution(true);
        let t = crate::table(&d, false);
        assert!(t.contains("met  net-lossy/webrtc-direct: webrtc/direct x4: degraded 3/4, blocked 1/4; expected degraded 70-100%, blocked 0-30%"), "{t}");
        let m = crate::markdown(&d);
        assert!(m.contains("| net-lossy | webrtc-direct (webrtc/direct) | 4 | degraded 3/4, blocked 1/4 | degraded 70-100%, blocked 0-30% | yes |"), "{m}");
        let j = crate::junit(&d);
        assert!(
            j.contains("name=\"webrtc-direct (webrtc/direct) distribution over 4 repeats\""),
            "{j}"
        );
        assert!(!j.contains("type=\"distribution\""), "{j}");
        let h = crate::html(&d);
        assert!(
            h.contains("<h3>Repeated calls</h3>") && h.contains("degraded 3/4"),
            "distribution missing from the page"
        );
        let json = crate::json(&d);
        assert!(json.contains("\"distributions\""), "{json}");
    }

    #[test]
    fn a_missed_distribution_fails_every_output() {
        let d = with_distribution(false);
        assert!(!d.runs[0].passed());
        assert_eq!(missed(&d), 1);
        let t = crate::table(&d, false);
        assert!(
            t.contains("MISS net-lossy/webrtc-direct") && t.contains("1 expectation(s) NOT met"),
            "{t}"
        );
        assert!(crate::markdown(&d).contains("**no:** degraded 25% (expected 70-100%)"));
        let j = crate::junit(&d);
        assert!(j.contains("type=\"distribution\"") && j.contains("failures=\"1\""), "{j}");
        assert!(crate::html(&d).contains("1 expectation(s) not met"));
    }
}
