//! A bypass-matrix call's results (issue 15): which bypass it applied, where its expected
//! outcome comes from (a citation, or callwall's prediction), and what the bypass cost against
//! a reference call of the same run (the same transport without the bypass).
//!
//! Filled by the harness for calls that carry `cite` or `prediction` in their scenario; absent
//! otherwise. Costs are differences `bypass call - reference call`; the wire totals come from
//! the censor's per-caller-address accounting (every frame of the call through the censor,
//! both directions, dropped ones included, since they were sent).

use serde::{Deserialize, Serialize};

/// Where a matrix call's expectation comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// The outcome is published; the text cites where.
    Cite(String),
    /// Nothing is published; the text says why callwall expects the outcome.
    Prediction(String),
}

impl Basis {
    /// The citation or the prediction's reason.
    pub fn text(&self) -> &str {
        match self {
            Basis::Cite(s) | Basis::Prediction(s) => s,
        }
    }

    /// True for a prediction.
    pub fn is_prediction(&self) -> bool {
        matches!(self, Basis::Prediction(_))
    }
}

/// Frames and bytes a call put through the censor (both directions, from the caller's address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTotals {
    pub packets: u64,
    pub bytes: u64,
}

/// What a bypass cost against its reference call: bypass minus reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BypassCost {
    /// Added setup time (ms); `None` when either call has no setup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_ms: Option<f64>,
    /// Added bytes on the wire.
    pub bytes: i64,
    /// Added packets on the wire.
    pub packets: i64,
    /// Change in MOS.
    pub mos: f64,
}

/// A bypass-matrix call's bypass, basis and cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallBypass {
    /// The matrix column (`decoy`, `sni`, `quic-split`, `none`, ...).
    pub column: String,
    /// The bypass with its values (`quic/quic-443 decoy=random sni="www.google.com"`).
    pub label: String,
    pub basis: Basis,
    /// The date the scenario's censor behaviour is stated for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// What this call put on the wire, when the censor accounted for its address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<WireTotals>,
    /// The reference call's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The cost against the reference; `None` with `cost_note` saying why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<BypassCost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_note: Option<String>,
}
