//! JUnit XML: a test suite per run, a test case per call, statistical call and workload (for CI
//! dashboards), written with `quick-junit` (cargo-nextest's JUnit model and writer).
//!
//! How it is built: each run's suite is first rendered as the plain Ant-style fragment the
//! parts of this crate contribute (suite properties from [`crate::bypass`] and
//! [`crate::audio`], call properties and stderr from [`crate::external`], distribution cases
//! from [`crate::stats`], workload cases from [`crate::activities`]), read into quick-junit's
//! model, and then each test case gets its status there: pass, `<failure>` or `<error>`, and
//! for a run that `--retries` re-ran, the earlier attempts' failures in the Surefire way:
//!
//! - a test case that missed earlier and met in the last attempt passes, with one
//!   `<flakyFailure>` (a missed expectation) or `<flakyError>` (a run error) per earlier miss;
//! - a test case that missed in the last attempt keeps its `<failure>`/`<error>` and gets one
//!   `<rerunFailure>`/`<rerunError>` per earlier miss.
//!
//! Every flaky and rerun element has `message`, `type` and a `<stackTrace>` child (the detail:
//! which attempt, what was expected, what it got, why), the shape Surefire's XSD requires and
//! Jenkins' readers read. A run that failed gets a `setup` test case with an `<error>`; one
//! whose earlier attempts failed to run and whose last attempt ran gets a passing `setup` case
//! with a `<flakyError>` per failed attempt. An interrupted document ends with a suite
//! `callwall` holding an `interrupted` test case in error. The document validates against
//! `tests/data/junit.xsd` in every case (tests run xmllint on it).

use std::fmt::Write as _;

use callwall_results::{MissKind, Results, RunAttempt, RunResult};
use quick_junit::{
    FlakyOrRerun, NonSuccessKind, NonSuccessReruns, Report, TestCase, TestCaseStatus, TestRerun,
    TestSuite,
};

use crate::html::escape as xml_escape;
use crate::opt_ms;

/// JUnit XML: a test suite per run, a test case per call, distribution and workload.
pub fn junit(doc: &Results) -> String {
    let mut report = Report::new("callwall");
    for r in &doc.runs {
        report.add_test_suite(suite(r));
    }
    if doc.interrupted {
        let mut s = TestSuite::new("callwall");
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message("interrupted (SIGINT or SIGTERM): not every run finished")
            .set_type("interrupted");
        let mut case = TestCase::new("interrupted", status);
        case.set_classname("callwall");
        s.add_test_case(case);
        report.add_test_suite(s);
    }
    // Serializing a model built from strings cannot fail (the writer escapes every string).
    report.to_string().unwrap_or_else(|e| format!("<!-- cannot write JUnit: {e} -->\n"))
}

/// The suite's name: the scenario, with `#K` for repeats after the first.
fn suite_name(r: &RunResult) -> String {
    if r.repeat > 0 {
        format!("{}#{}", r.scenario, r.repeat + 1)
    } else {
        r.scenario.clone()
    }
}

/// One run's suite, statuses set from the run and its earlier attempts.
fn suite(r: &RunResult) -> TestSuite {
    let name = suite_name(r);
    let mut out = TestSuite::new(name.as_str());
    out.set_time(std::time::Duration::from_millis(r.wall_ms));
    let Some(parsed) = parse_fragment(&fragment(r, &xml_escape(&name))) else {
        // Not reachable for fragments this crate writes; say so rather than drop the run.
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message("callwall could not render this run's JUnit").set_type("internal");
        out.add_test_case(TestCase::new("render", status));
        return out;
    };
    out.add_properties(parsed.properties);
    let mut cases = parsed.test_cases.into_iter();
    // The fragment's cases are, in order: `setup` (a run error), the calls, the distributions,
    // the workloads.
    if let Some(e) = &r.error {
        let mut case =
            cases.next().unwrap_or_else(|| TestCase::new("setup", TestCaseStatus::success()));
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(e.message.as_str()).set_type("run-error");
        status.add_reruns(earlier_errors(&r.attempts));
        case.status = status;
        out.add_test_case(case);
    } else if crate::flaky::errored_before(r) {
        let mut case = TestCase::new(
            "setup",
            TestCaseStatus::Success { flaky_runs: earlier_errors(&r.attempts) },
        );
        case.set_classname(name.as_str());
        out.add_test_case(case);
    }
    for c in &r.calls {
        let Some(mut case) = cases.next() else { break };
        let now = (!c.met).then(|| {
            format!(
                "expected {}, got {}; deciding rule: {}; {}",
                crate::one_of(&c.expected, "|"),
                c.verdict.as_str(),
                c.rule.as_deref().unwrap_or("none"),
                c.reason
            )
        });
        case.status = status(now, "verdict", earlier_misses(&r.attempts, MissKind::Call, &c.name));
        // Missed twice with the machine to blame: neither a pass nor a regression.
        if c.inconclusive {
            let why = c.machine.map(|m| m.to_string()).unwrap_or_default();
            case.status = TestCaseStatus::Skipped {
                message: Some(
                    format!("inconclusive: got {} twice; {why}", c.verdict.as_str()).into(),
                ),
                // Surefire's and Jenkins' `skipped` carries a message only.
                ty: None,
                description: None,
            };
        }
        out.add_test_case(case);
    }
    for d in &r.distributions {
        let Some(mut case) = cases.next() else { break };
        let now = (!d.met).then(|| {
            let missed: Vec<String> = d.missed.iter().map(|m| m.to_string()).collect();
            format!(
                "verdicts {}; expected {}; missed: {}",
                d.counts_text(),
                d.expected_text(),
                missed.join(", ")
            )
        });
        case.status = status(
            now,
            "distribution",
            earlier_misses(&r.attempts, MissKind::Distribution, &d.call),
        );
        out.add_test_case(case);
    }
    for w in &r.workloads {
        let Some(mut case) = cases.next() else { break };
        let now = (!w.met).then(|| {
            format!(
                "expected {}, got {}; {}",
                crate::one_of(&w.expected, "|"),
                w.outcome,
                w.reason.as_ref().map(|r| r.to_string()).unwrap_or_default()
            )
        });
        case.status =
            status(now, "workload", earlier_misses(&r.attempts, MissKind::Workload, &w.name));
        out.add_test_case(case);
    }
    // Anything a part added beyond these keeps the status it was written with.
    out.add_test_cases(cases);
    out
}

/// A test case's status: `now` is the last attempt's failure message (`None`: it met its
/// expectation), `earlier` the earlier attempts' misses as reruns.
fn status(now: Option<String>, ty: &str, earlier: Vec<TestRerun>) -> TestCaseStatus {
    match now {
        None => TestCaseStatus::Success { flaky_runs: earlier },
        Some(msg) => TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message: Some(msg.into()),
            ty: Some(ty.into()),
            description: None,
            reruns: NonSuccessReruns { kind: FlakyOrRerun::Rerun, runs: earlier },
        },
    }
}

/// The earlier attempts in which `kind` `name` missed, as reruns (a failure each).
fn earlier_misses(attempts: &[RunAttempt], kind: MissKind, name: &str) -> Vec<TestRerun> {
    let total = attempts.len() + 1;
    attempts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let m = a.missed.iter().find(|m| m.kind == kind && m.name == name)?;
            let msg = format!("expected {}, got {}; {}", m.expected, m.got, m.reason);
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun.set_message(msg.as_str()).set_type(kind.as_str()).set_stack_trace(format!(
                "attempt {} of {total}: {} {} missed its expectation\n{msg}",
                i + 1,
                kind.as_str(),
                name
            ));
            Some(rerun)
        })
        .collect()
}

/// The earlier attempts whose run failed, as reruns (an error each).
fn earlier_errors(attempts: &[RunAttempt]) -> Vec<TestRerun> {
    let total = attempts.len() + 1;
    attempts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let e = a.error.as_ref()?;
            let mut rerun = TestRerun::new(NonSuccessKind::Error);
            rerun.set_message(e.message.as_str()).set_type("run-error").set_stack_trace(format!(
                "attempt {} of {total}: the run failed ({:?})\n{}",
                i + 1,
                e.kind,
                e.message
            ));
            Some(rerun)
        })
        .collect()
}

/// Reads a fragment into quick-junit's model. The parts escape `'` as `&#39;` (shared with the
/// HTML page), a character reference quick-junit's reader does not resolve: it becomes the
/// predefined `&apos;` first (the same character).
fn parse_fragment(xml: &str) -> Option<TestSuite> {
    let xml = xml.replace("&#39;", "&apos;");
    Report::deserialize_from_str(&xml).ok()?.test_suites.into_iter().next()
}

/// The run's suite as the plain fragment the parts write (statuses are set afterwards).
fn fragment(r: &RunResult, name: &str) -> String {
    let mut o = String::from("<testsuites>\n");
    let _ = writeln!(o, "  <testsuite name=\"{name}\" tests=\"0\">");
    o.push_str(&crate::bypass::junit_properties(r));
    crate::audio::junit_properties(&mut o, &r.calls);
    let secs = r.wall_ms as f64 / 1000.0;
    if r.error.is_some() {
        let _ =
            writeln!(o, "    <testcase classname=\"{name}\" name=\"setup\" time=\"{secs:.3}\"/>");
    }
    for c in &r.calls {
        let _ = writeln!(
            o,
            "    <testcase classname=\"{name}\" name=\"{}\" time=\"{:.3}\">",
            xml_escape(&format!("{} ({}/{})", c.name, c.transport, c.strategy)),
            c.metrics.up.frames_sent as f64 * 0.02
        );
        crate::external::junit_properties(&mut o, c);
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
    crate::stats::junit_cases(&mut o, name, r);
    o.push_str(&crate::activities::junit_cases(r, name));
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}
