//! A workload's result: an activity beside the calls (a message exchange, a voice note, a web
//! page, a video) with its outcome, what the scenario expected and its figures.
//!
//! Kinds and outcomes are kept as their lowercase names (`message`, `voice-note`, `web`,
//! `video`; `ok`, `degraded`, `failed`) so this crate stays free of the workload model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One workload of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResult {
    pub name: String,
    /// `message`, `voice-note`, `web` or `video`.
    pub kind: String,
    /// The app or label the "what still works" matrix shows (`whatsapp`, `osm`, `youtube`).
    pub app: String,
    /// The name resolved through the run's DNS and sent as SNI.
    #[serde(default)]
    pub host_name: String,
    /// `http/1.1` or `h3` for web and video; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub proto: String,
    /// `ok`, `degraded` or `failed`.
    pub outcome: String,
    /// The accepted outcomes, `|`-separated.
    pub expected: String,
    pub met: bool,
    /// Named figures (`latency_p50_ms`, `delivered_pct`, `throughput_kbit`, ...).
    #[serde(default)]
    pub figures: BTreeMap<String, f64>,
    /// The first error the client met, or why the outcome is not `ok`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Milliseconds the workload ran.
    #[serde(default)]
    pub elapsed_ms: f64,
}

impl WorkloadResult {
    /// The matrix's activity for this kind: `message`, `voice note`, `web`, `video`.
    pub fn activity(&self) -> &str {
        match self.kind.as_str() {
            "voice-note" => "voice note",
            k => k,
        }
    }

    /// One short line of the figures that matter for the kind.
    pub fn summary(&self) -> String {
        let f = |k: &str| self.figures.get(k).copied();
        let mut parts = Vec::new();
        match self.kind.as_str() {
            "message" => {
                if let Some(d) = f("delivered_pct") {
                    parts.push(format!("{d:.0}% delivered"));
                }
                if let Some(l) = f("latency_p50_ms") {
                    parts.push(format!("p50 {l:.1} ms"));
                }
                if let Some(l) = f("latency_p95_ms") {
                    parts.push(format!("p95 {l:.1} ms"));
                }
            }
            "voice-note" => {
                if let Some(u) = f("upload_ms") {
                    parts.push(format!("up {u:.0} ms"));
                }
                if let Some(d) = f("download_ms") {
                    parts.push(format!("down {d:.0} ms"));
                }
                if let Some(g) = f("goodput_kbit") {
                    parts.push(format!("{g:.0} kbit/s"));
                }
            }
            "web" => {
                if let (Some(ok), Some(n)) = (f("objects_ok"), f("objects")) {
                    parts.push(format!("{ok:.0}/{n:.0} objects"));
                }
                if let Some(c) = f("complete_ms") {
                    parts.push(format!("{c:.0} ms"));
                }
            }
            "video" => {
                if let Some(t) = f("throughput_kbit") {
                    parts.push(format!("{t:.0} kbit/s"));
                }
                if let Some(s) = f("stalls") {
                    parts.push(format!("{s:.0} stalls"));
                }
            }
            _ => {}
        }
        parts.join(", ")
    }
}
