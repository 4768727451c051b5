//! Activities beside the calls: what a person does with an app besides talking.
//!
//! A **workload** is one activity of one app against one server host: a chat session
//! ([`Kind::Message`]), a recorded voice note sent through a media host ([`Kind::VoiceNote`]),
//! a web page with map tiles ([`Kind::Web`]) or a chunked video stream ([`Kind::Video`]). This
//! crate is the model only: one module per kind in [`kinds`] with its parameters (the serde
//! type scenario keys are parsed through, with unit newtypes and defaults), their accepted
//! ranges and its verdict rule with its thresholds; the figures a client measures
//! ([`Figures`], defined in `callwall-results`); the report a client process prints
//! ([`WorkloadReport`]). The real clients and servers live in `callwall-workload-net`;
//! scenario files describe workloads through `callwall-scenario`.
//!
//! Guarantees: everything here is pure (no I/O, no clock); [`Params::validate`] rejects any
//! size, count, interval or bitrate outside its kind's ranges with a message naming the key
//! and the accepted range; [`judge`] is total (any figures give a verdict). It does not decide which
//! censor rule caused a failure: that is the harness's join with the censor's decision log.
#![forbid(unsafe_code)]

pub mod kinds;
pub mod limits;

use serde::{Deserialize, Serialize};

pub use kinds::{
    judge, KindParams, MessageParams, Params, Serves, VideoParams, VoiceNoteParams, WebParams,
};

/// The kinds, outcomes, protocols and figures of workloads are the results model's, so a
/// client's figures are stored unchanged in a run's results.
pub use callwall_results::workload::{
    Figures, HttpProto, MessageFigures, UnknownKind, UnknownOutcome, VideoFigures,
    VoiceNoteFigures, WebFigures, WorkloadKind as Kind, WorkloadOutcome as Outcome,
};

/// A parameter out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ParamError {
    /// The offending key (`count`, `size`, ...).
    pub key: &'static str,
    pub message: String,
}

/// What a workload client prints as one JSON object on stdout when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadReport {
    /// The workload's name in the scenario.
    pub name: String,
    pub kind: Kind,
    /// The app or label the scenario gave (`whatsapp`, `osm`, ...).
    pub app: String,
    /// The host name the client resolved and presented as SNI.
    pub server_name: String,
    /// What the resolver answered; empty when resolution failed or no resolver was given.
    #[serde(default)]
    pub resolved: Vec<std::net::IpAddr>,
    pub outcome: Outcome,
    pub figures: Figures,
    /// Wall time of the whole workload, milliseconds.
    pub elapsed_ms: f64,
    /// The first error met, in words (`dns: name not found`, `tls: ...`, `timeout ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `p`-th percentile (0-100) of `values` by nearest rank; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&[3.0], 95.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn reports_round_trip_as_json() {
        let r = WorkloadReport {
            name: "wa-text".into(),
            kind: Kind::Message,
            app: "whatsapp".into(),
            server_name: "web.whatsapp.net".into(),
            resolved: vec!["10.5.0.2".parse().unwrap()],
            outcome: Outcome::Ok,
            figures: Figures::Message(MessageFigures {
                count: 2,
                sent_up: 2,
                delivered_up: 2,
                sent_down: 2,
                delivered_down: 2,
                latency_p50_ms: Some(1.5),
                latency_p95_ms: Some(3.0),
                latency_max_ms: Some(3.5),
                connect_ms: Some(4.0),
            }),
            elapsed_ms: 1000.0,
            error: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains("\"kind\":\"message\""), "{s}");
        assert_eq!(serde_json::from_str::<WorkloadReport>(&s).unwrap(), r);
    }
}
