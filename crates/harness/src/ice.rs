//! The caller's ICE report ([`callwall_transport::ice::IceReport`]) summarised for the results
//! ([`callwall_results::ice::CallIce`]): the nominated pair and each candidate source's outcome.

use callwall_results::ice::{CallIce, IceChoice, IceSource};
use callwall_transport::ice::IceReport;

/// Summarises one peer's ICE report.
pub fn call_ice(r: &IceReport) -> CallIce {
    CallIce {
        selected: r.selected.as_ref().map(|s| IceChoice {
            local_kind: s.local_kind.clone(),
            local_via: s.local_via.clone(),
            local: s.local.clone(),
            remote_kind: s.remote_kind.clone(),
            remote: s.remote.clone(),
            protocol: s.protocol.clone(),
        }),
        sources: r
            .by_source()
            .into_iter()
            .map(|(via, gathered, succeeded)| {
                let error = if gathered {
                    None
                } else {
                    r.candidates.iter().find(|c| c.via == via).and_then(|c| c.error.clone())
                };
                IceSource { via, gathered, succeeded, error }
            })
            .collect(),
        gathering_ms: r.gathering_ms,
        connected_ms: r.connected_ms,
    }
}
