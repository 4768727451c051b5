//! Placeholder: filled in by the transport work.
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict { Connected, Degraded, Cut, Blocked, Error }
#[derive(Debug, Clone, Default)]
pub struct Thresholds;
#[derive(Debug, Clone, Default)]
pub struct CallMetrics;
