//! Folding the attempts of a re-run scenario (`callwall run --retries N`) into one result: the
//! last attempt's verdicts stand, each call keeps its earlier attempts, and a call whose verdict
//! changed between attempts is marked flaky. Pure; the CLI calls it.

use crate::{Attempt, RunResult};

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
