//! Comparing two results documents: which calls' verdicts changed, and did any get worse.
//!
//! Calls are matched by (scenario, call name). When a scenario ran several times (`--repeat`)
//! or a name occurs more than once, the worst verdict counts. A run that failed before placing
//! calls (`error` set, no calls) gives each call the other side knows for that scenario the
//! verdict `error`, so a run that stops working is a regression, not a removal.
//!
//! Worse means later in the order `connected < degraded < cut < blocked < error`.

use std::collections::{BTreeMap, BTreeSet};

use callwall_results::Results;
use callwall_results::Verdict;
use serde::Serialize;

/// A call, as matched between two documents.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CallKey {
    pub scenario: String,
    pub call: String,
}

impl std::fmt::Display for CallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.scenario, self.call)
    }
}

/// A call whose verdict differs between the two documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    #[serde(flatten)]
    pub key: CallKey,
    pub old: Verdict,
    pub new: Verdict,
    /// `new` is more severe than `old`.
    pub worse: bool,
    /// The new call's reason (or the run's error), for the reader.
    pub reason: String,
}

/// A call present in only one of the documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OneSided {
    #[serde(flatten)]
    pub key: CallKey,
    pub verdict: Verdict,
}

/// The difference between two results documents.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    /// Calls whose verdict changed, worse ones first.
    pub changed: Vec<Change>,
    /// Calls only in the new document.
    pub added: Vec<OneSided>,
    /// Calls only in the old document.
    pub removed: Vec<OneSided>,
    /// Calls with the same verdict in both.
    pub unchanged: usize,
    /// True when some verdict or workload outcome got worse.
    pub regressed: bool,
    /// Workloads whose outcome changed, were added or removed (worse ones first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<crate::activities::WorkloadChange>,
    /// Calls scored with `--audio` in both whose audio MOS-LQO moved (informational).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audio: Vec<crate::audio::AudioChange>,
}

struct Seen {
    verdict: Verdict,
    reason: String,
}

fn index(doc: &Results) -> (BTreeMap<CallKey, Seen>, BTreeMap<String, String>) {
    let mut calls: BTreeMap<CallKey, Seen> = BTreeMap::new();
    let mut failed_runs = BTreeMap::new();
    for r in &doc.runs {
        if r.calls.is_empty() {
            if let Some(e) = r.error.as_ref().map(|e| &e.message) {
                failed_runs.insert(r.scenario.clone(), e.clone());
            }
        }
        for c in &r.calls {
            let key = CallKey { scenario: r.scenario.clone(), call: c.name.clone() };
            let worst = calls.get(&key).is_some_and(|s| s.verdict >= c.verdict);
            if !worst {
                calls.insert(key, Seen { verdict: c.verdict, reason: c.reason.to_string() });
            }
        }
    }
    (calls, failed_runs)
}

/// Compares `old` with `new`.
pub fn diff(old: &Results, new: &Results) -> Diff {
    let (old_calls, old_failed) = index(old);
    let (new_calls, new_failed) = index(new);
    let keys: BTreeSet<&CallKey> = old_calls.keys().chain(new_calls.keys()).collect();
    let mut d = Diff::default();
    for key in keys {
        let o = old_calls
            .get(key)
            .map(|s| (s.verdict, s.reason.clone()))
            .or_else(|| old_failed.get(&key.scenario).map(|e| (Verdict::Error, e.clone())));
        let n = new_calls.get(key).map(|s| (s.verdict, s.reason.clone())).or_else(|| {
            new_failed.get(&key.scenario).map(|e| (Verdict::Error, format!("the run failed: {e}")))
        });
        match (o, n) {
            (Some((ov, _)), Some((nv, reason))) if ov != nv => d.changed.push(Change {
                key: key.clone(),
                old: ov,
                new: nv,
                worse: nv > ov,
                reason,
            }),
            (Some(_), Some(_)) => d.unchanged += 1,
            (None, Some((nv, _))) => d.added.push(OneSided { key: key.clone(), verdict: nv }),
            (Some((ov, _)), None) => d.removed.push(OneSided { key: key.clone(), verdict: ov }),
            (None, None) => {}
        }
    }
    d.changed.sort_by(|a, b| b.worse.cmp(&a.worse).then_with(|| a.key.cmp(&b.key)));
    d.regressed = d.changed.iter().any(|c| c.worse);
    d.workloads = crate::activities::changes(old, new);
    d.regressed |= d.workloads.iter().any(|c| c.worse);
    d.audio = crate::audio::changes(old, new);
    d
}

impl Diff {
    /// Counts calls (and workloads) present in the old document and missing from the new one
    /// as worse: lost coverage is a regression unless the caller says removals are expected
    /// (`callwall diff --allow-removed`).
    pub fn count_removed_as_worse(&mut self) {
        self.regressed |= !self.removed.is_empty()
            || self.workloads.iter().any(|w| w.old.is_some() && w.new.is_none());
    }

    /// The difference as lines for a terminal or a CI log.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        for c in &self.changed {
            let tag = if c.worse { "WORSE " } else { "better" };
            o.push_str(&format!("{tag}  {}: {} -> {}  ({})\n", c.key, c.old, c.new, c.reason));
        }
        for a in &self.added {
            o.push_str(&format!("added   {}: {}\n", a.key, a.verdict));
        }
        for r in &self.removed {
            o.push_str(&format!("removed {}: was {}\n", r.key, r.verdict));
        }
        o.push_str(&crate::activities::changes_text(&self.workloads));
        o.push_str(&crate::audio::changes_text(&self.audio));
        let worse = self.changed.iter().filter(|c| c.worse).count();
        o.push_str(&format!(
            "{} changed ({worse} worse, {} better), {} added, {} removed, {} unchanged: {}\n",
            self.changed.len(),
            self.changed.len() - worse,
            self.added.len(),
            self.removed.len(),
            self.unchanged,
            if self.regressed { "REGRESSION" } else { "no verdict got worse" }
        ));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::tests::{call, doc, run};

    #[test]
    fn finds_worse_better_added_and_removed() {
        let old = doc(vec![run(
            "s",
            vec![
                call("a", Verdict::Connected),
                call("b", Verdict::Blocked),
                call("gone", Verdict::Connected),
            ],
        )]);
        let new = doc(vec![run(
            "s",
            vec![
                call("a", Verdict::Cut),
                call("b", Verdict::Connected),
                call("new", Verdict::Degraded),
            ],
        )]);
        let d = diff(&old, &new);
        assert!(d.regressed);
        assert_eq!(d.changed.len(), 2);
        assert!(d.changed[0].worse && d.changed[0].key.call == "a");
        assert!(!d.changed[1].worse && d.changed[1].key.call == "b");
        assert_eq!(d.added[0].key.call, "new");
        assert_eq!(d.removed[0].key.call, "gone");
        assert!(d.to_text().contains("REGRESSION"));
    }

    #[test]
    fn identical_documents_do_not_regress() {
        let a = doc(vec![run("s", vec![call("a", Verdict::Degraded)])]);
        let d = diff(&a, &a.clone());
        assert!(!d.regressed);
        assert_eq!(d.unchanged, 1);
        assert!(d.changed.is_empty() && d.added.is_empty() && d.removed.is_empty());
    }

    #[test]
    fn a_run_that_fails_is_a_regression_of_its_calls() {
        let old = doc(vec![run("s", vec![call("a", Verdict::Connected)])]);
        let mut failed = run("s", vec![]);
        failed.error = Some(callwall_results::RunError::new(
            callwall_results::RunErrorKind::Environment,
            "cannot create namespace",
        ));
        let d = diff(&old, &doc(vec![failed]));
        assert!(d.regressed, "{d:?}");
        assert_eq!(d.changed[0].new, Verdict::Error);
        assert!(d.removed.is_empty());
    }

    #[test]
    fn a_removed_call_is_worse_only_when_counted() {
        let old =
            doc(vec![run("s", vec![call("a", Verdict::Connected), call("b", Verdict::Blocked)])]);
        let new = doc(vec![run("s", vec![call("a", Verdict::Connected)])]);
        let mut d = diff(&old, &new);
        assert!(!d.regressed, "without counting, removal is informational");
        d.count_removed_as_worse();
        assert!(d.regressed);
        assert!(
            d.to_text().contains("removed s/b: was blocked") && d.to_text().contains("REGRESSION")
        );
        let mut same = diff(&old, &old.clone());
        same.count_removed_as_worse();
        assert!(!same.regressed);
    }

    #[test]
    fn repeats_count_their_worst_verdict() {
        let old = doc(vec![run("s", vec![call("a", Verdict::Connected)])]);
        let new = doc(vec![
            run("s", vec![call("a", Verdict::Connected)]),
            run("s", vec![call("a", Verdict::Cut)]),
        ]);
        let d = diff(&old, &new);
        assert!(d.regressed);
        assert_eq!(d.changed[0].new, Verdict::Cut);
    }
}
