//! Judging calls placed `repeat = N` times: the distribution of their copies' verdicts against
//! the call's expected shares (the judging itself is the pure
//! [`callwall_results::stats::judge`]).

use callwall_scenario::Call;
use callwall_transport::Verdict;

use crate::result::stats::{judge, Distribution};

/// One [`Distribution`] per call of `calls` that has expected shares, from the verdicts of
/// its placed copies (`(index into calls, verdict)`, in any order).
pub fn distributions(calls: &[&Call], verdicts: &[(usize, Verdict)]) -> Vec<Distribution> {
    calls
        .iter()
        .enumerate()
        .filter_map(|(ci, call)| {
            let shares = call.shares.as_ref()?;
            let vs: Vec<Verdict> =
                verdicts.iter().filter(|(i, _)| *i == ci).map(|(_, v)| *v).collect();
            Some(judge(&call.name, &call.transport, &call.strategies.join(","), &vs, shares))
        })
        .collect()
}
