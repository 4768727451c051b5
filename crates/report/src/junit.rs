//! JUnit XML: a test suite per run, a test case per call (for CI dashboards).

use std::fmt::Write as _;

use callwall_results::Results;

use crate::html::escape as xml_escape;
use crate::opt_ms;

/// JUnit XML: a test suite per run, a test case per call.
pub fn junit(doc: &Results) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = doc
        .runs
        .iter()
        .map(|r| r.calls.len().max(1) + r.distributions.len() + r.workloads.len())
        .sum();
    let failures: usize = doc
        .runs
        .iter()
        .map(|r| {
            r.calls.iter().filter(|c| !c.met).count()
                + r.workloads.iter().filter(|w| !w.met).count()
        })
        .sum::<usize>()
        + crate::stats::missed(doc);
    let errors = doc.runs.iter().filter(|r| r.error.is_some()).count();
    let _ = writeln!(o, "<testsuites name=\"callwall\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">");
    for r in &doc.runs {
        let name = xml_escape(&if r.repeat > 0 {
            format!("{}#{}", r.scenario, r.repeat + 1)
        } else {
            r.scenario.clone()
        });
        let secs = r.wall_ms as f64 / 1000.0;
        let f = r.calls.iter().filter(|c| !c.met).count()
            + r.distributions.iter().filter(|d| !d.met).count()
            + r.workloads.iter().filter(|w| !w.met).count();
        let _ = writeln!(
            o,
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{f}\" errors=\"{}\" time=\"{secs:.3}\">",
            r.calls.len().max(1) + r.distributions.len() + r.workloads.len(),
            usize::from(r.error.is_some())
        );
        o.push_str(&crate::bypass::junit_properties(r));
        crate::audio::junit_properties(&mut o, &r.calls);
        if let Some(e) = r.error.as_ref().map(|e| &e.message) {
            let _ = writeln!(
                o,
                "    <testcase classname=\"{name}\" name=\"setup\" time=\"{secs:.3}\">"
            );
            let _ = writeln!(o, "      <error message=\"{}\" type=\"run-error\"/>", xml_escape(e));
            let _ = writeln!(o, "    </testcase>");
        }
        for c in &r.calls {
            let _ = writeln!(
                o,
                "    <testcase classname=\"{name}\" name=\"{}\" time=\"{:.3}\">",
                xml_escape(&format!("{} ({}/{})", c.name, c.transport, c.strategy)),
                c.metrics.up.frames_sent as f64 * 0.02
            );
            crate::external::junit_properties(&mut o, c);
            if !c.met {
                let msg = format!(
                    "expected {}, got {}; deciding rule: {}; {}",
                    crate::one_of(&c.expected, "|"),
                    c.verdict.as_str(),
                    c.rule.as_deref().unwrap_or("none"),
                    c.reason
                );
                let _ = writeln!(
                    o,
                    "      <failure message=\"{}\" type=\"verdict\"/>",
                    xml_escape(&msg)
                );
            }
            crate::flaky::junit_elements(&mut o, c);
            let _ = writeln!(
                o,
                "      <system-out>{}</system-out>",
                xml_escape(&format!(
                    "verdict={} setup_ms={} loss_pct={:.2} jitter_ms={} one_way_delay_ms={} longest_gap_ms={:.0} mos={}{} seed={}",
                    c.verdict.as_str(),
                    opt_ms(c.setup_ms),
                    c.loss_pct,
                    crate::opt_num(c.jitter_ms, 2),
                    crate::opt_num(c.one_way_delay_ms, 2),
                    c.longest_gap_ms,
                    crate::opt_num(c.mos, 2),
                    crate::audio::junit_keys(c),
                    r.seed
                ))
            );
            crate::external::junit_system_err(&mut o, c);
            let _ = writeln!(o, "    </testcase>");
        }
        crate::stats::junit_cases(&mut o, &name, r);
        o.push_str(&crate::activities::junit_cases(r, &name));
        let _ = writeln!(o, "  </testsuite>");
    }
    o.push_str("</testsuites>\n");
    o
}
