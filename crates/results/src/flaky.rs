//! Folding the attempts of a re-run scenario (`callwall run --retries N`) into one result: the
//! last attempt's verdicts stand, each call keeps its earlier attempts, and a call whose verdict
//! changed between attempts is marked flaky. The run keeps every earlier attempt's failures of
//! every kind ([`RunAttempt`]: its run error, the calls, workloads and distributions that
//! missed, and why), and is flaky when something that missed earlier met its expectation in
//! the last attempt. Pure; the CLI calls it.

use crate::{Attempt, Miss, MissKind, RunAttempt, RunResult};

/// Every failure of one attempt: its run error and each call, workload and distribution that
/// missed, with why.
pub fn attempt_of(r: &RunResult) -> RunAttempt {
    let words = |e: &crate::ExpectedVerdicts| {
        e.iter().map(|v| v.as_str().to_string()).collect::<Vec<_>>().join("|")
    };
    let mut missed = Vec::new();
    for c in r.calls.iter().filter(|c| !c.met) {
        missed.push(Miss {
            kind: MissKind::Call,
            name: c.name.clone(),
            expected: words(&c.expected),
            got: c.verdict.as_str().to_string(),
            reason: match &c.rule {
                Some(rule) => format!("deciding rule: {rule}; {}", c.reason),
                None => c.reason.to_string(),
            },
        });
    }
    for w in r.workloads.iter().filter(|w| !w.met) {
        missed.push(Miss {
            kind: MissKind::Workload,
            name: w.name.clone(),
            expected: w.expected.iter().map(|o| o.to_string()).collect::<Vec<_>>().join("|"),
            got: w.outcome.to_string(),
            reason: w.reason.as_ref().map(|r| r.to_string()).unwrap_or_default(),
        });
    }
    for d in r.distributions.iter().filter(|d| !d.met) {
        missed.push(Miss {
            kind: MissKind::Distribution,
            name: d.call.clone(),
            expected: d.expected_text(),
            got: d.counts_text(),
            reason: d.missed.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("; "),
        });
    }
    RunAttempt { error: r.error.clone(), missed }
}

/// Whether `kind` `name` missed in some earlier attempt of `r` (and so, if it meets now, is
/// flaky).
pub fn missed_before(r: &RunResult, kind: MissKind, name: &str) -> bool {
    r.attempts.iter().any(|a| a.missed.iter().any(|m| m.kind == kind && m.name == name))
}

/// Whether the run itself failed (a run error) in some earlier attempt.
pub fn errored_before(r: &RunResult) -> bool {
    r.attempts.iter().any(|a| a.error.is_some())
}

/// The result of a run attempted `earlier.len() + 1` times: `last` with every call's earlier
/// attempts (matched by call name; a call missing from an attempt, e.g. one whose run failed to
/// set up, has no entry for it) and `flaky` set where any verdict differs from the last one.
pub fn fold_attempts(earlier: &[RunResult], mut last: RunResult) -> RunResult {
    last.retries = earlier.len() as u32;
    for c in &mut last.calls {
        c.attempts = earlier
            .iter()
            .filter_map(|r| r.calls.iter().find(|e| e.name == c.name))
            .map(|e| Attempt {
                verdict: e.verdict,
                met: e.met,
                reason: e.reason.clone(),
                rule: e.rule.clone(),
            })
            .collect();
        c.flaky = c.attempts.iter().any(|a| a.verdict != c.verdict);
    }
    last.attempts = earlier.iter().map(attempt_of).collect();
    let recovered = (errored_before(&last) && last.error.is_none())
        || last.calls.iter().any(|c| c.met && missed_before(&last, MissKind::Call, &c.name))
        || last
            .workloads
            .iter()
            .any(|w| w.met && missed_before(&last, MissKind::Workload, &w.name))
        || last
            .distributions
            .iter()
            .any(|d| d.met && missed_before(&last, MissKind::Distribution, &d.call));
    last.flaky = last.calls.iter().any(|c| c.flaky) || recovered;
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verdict;

    fn run(verdicts: &[(&str, Verdict)]) -> RunResult {
        let calls: Vec<serde_json::Value> = verdicts
            .iter()
            .map(|(n, v)| {
                serde_json::json!({
                    "name": n, "transport": "noise", "strategy": "udp", "requested": ["udp"],
                    "verdict": v, "expected": ["connected"], "met": *v == Verdict::Connected,
                    "setup_ms": null, "loss_pct": 0.0, "jitter_ms": 0.0, "one_way_delay_ms": 0.0,
                    "longest_gap_ms": 0.0, "mos": 1.0, "reason": {"cause": "text", "text": "r"}, "caller_addr": "10.1.0.128",
                    "metrics": crate::CallMetrics::default(),
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "scenario": "s", "path": "s.toml", "seed": 1, "topology": "t",
            "started_unix_ms": 0, "wall_ms": 0, "calls": calls,
            "censor": crate::CensorResult::default(),
        }))
        .unwrap()
    }

    #[test]
    fn a_call_that_changed_is_flaky_and_one_that_did_not_is_not() {
        use Verdict::*;
        let first = run(&[("a", Blocked), ("b", Connected)]);
        let last = run(&[("a", Connected), ("b", Connected)]);
        let r = fold_attempts(std::slice::from_ref(&first), last);
        assert_eq!(r.retries, 1);
        assert!(r.calls[0].flaky && !r.calls[1].flaky);
        assert_eq!(r.calls[0].attempts[0].verdict, Blocked);
        assert!(!r.calls[0].attempts[0].met);
        assert!(r.passed());
        // Missed every time with the same verdict: not flaky, still failing.
        let r = fold_attempts(
            &[run(&[("a", Blocked)]), run(&[("a", Blocked)])],
            run(&[("a", Blocked)]),
        );
        assert_eq!((r.retries, r.calls[0].attempts.len(), r.calls[0].flaky), (2, 2, false));
        assert!(!r.passed());
    }

    #[test]
    fn every_kind_of_failure_keeps_its_attempts() {
        use crate::{RunError, RunErrorKind};
        use Verdict::*;
        // A timed-out attempt, then a passing one: the run is flaky, the error kept.
        let mut timed_out = run(&[]);
        timed_out.error = Some(RunError::new(RunErrorKind::Timeout, "timed out after 40s"));
        let r = fold_attempts(std::slice::from_ref(&timed_out), run(&[("a", Connected)]));
        assert!(r.passed() && r.flaky, "{r:?}");
        assert_eq!(r.attempts.len(), 1);
        assert_eq!(r.attempts[0].error.as_ref().map(|e| e.kind), Some(RunErrorKind::Timeout));
        assert!(errored_before(&r));
        // A missed call is recorded with what, expected, got and why.
        let r = fold_attempts(&[run(&[("a", Blocked)])], run(&[("a", Connected)]));
        let m = &r.attempts[0].missed[0];
        assert_eq!(
            (m.kind, m.name.as_str(), m.expected.as_str(), m.got.as_str()),
            (MissKind::Call, "a", "connected", "blocked")
        );
        assert!(missed_before(&r, MissKind::Call, "a") && r.flaky);
        // Missed every time: kept, but not flaky.
        let r = fold_attempts(&[run(&[("a", Blocked)])], run(&[("a", Blocked)]));
        assert!(!r.flaky && !r.passed() && r.attempts[0].missed.len() == 1);
    }

    #[test]
    fn no_retries_changes_nothing() {
        let r = fold_attempts(&[], run(&[("a", Verdict::Connected)]));
        assert_eq!(r.retries, 0);
        assert!(r.calls[0].attempts.is_empty() && !r.calls[0].flaky);
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            !json.contains("flaky")
                && !json.contains("\"attempts\":[")
                && !json.contains("retries")
        );
    }
}
