//! What a call placed by external peers (`peer = {caller, callee}` in a scenario, issue 13)
//! adds to its [`CallResult`](crate::CallResult): which programs ran, whether the verdict came
//! from the censor's view of the network (with the censor's figures), what each peer's
//! report said, and the stderr tail of a peer that failed.

use serde::{Deserialize, Serialize};

use crate::Verdict;

/// One external peer as the result shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalPeerResult {
    /// The command as written in the scenario (program and arguments joined by spaces).
    pub command: String,
    /// The implementation the peer named in its `hello` line (e.g. `aiortc 1.9.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
    /// How the process ended: `exit 0`, `killed by signal 9`, `hung`, `not started`.
    pub exit: String,
    /// The end of its stderr, kept when the peer failed (the call's verdict is then `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
    /// What its JSON-lines report said, when it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ExternalReportSummary>,
}

/// A peer's report in brief (the lines of `docs/peers.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalReportSummary {
    /// Where the report is, relative to the run's output directory when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Non-blank lines read.
    pub lines: u64,
    /// Frame lines (frames this peer received).
    pub frames_received: u64,
    /// `sent.frames`, when the peer wrote its `sent` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_sent: Option<u64>,
    /// `connected.t_ns` as ms after the call's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_ms: Option<f64>,
    /// `connected.path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The parse error of a malformed report (line and field); `lines` then counts the
    /// lines read before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The peer's `failed` line: which stage of the call failed, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<ExternalFailure>,
}

/// A stage of a call a peer said failed (`{"event":"failed",...}` in its report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalFailure {
    /// `signalling` or `media`.
    pub stage: String,
    pub reason: String,
}

/// One direction of an external call as the censor saw it (judged from the network).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkDirectionResult {
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
    pub dropped_packets: u64,
    /// Dropped share of the packets after the handshake, percent.
    pub drop_pct: f64,
    /// Seconds that carried media.
    pub media_secs: u64,
    /// When media was first seen, ms after the call's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_media_ms: Option<f64>,
    pub rate_kbit: f64,
    pub longest_gap_ms: f64,
    pub trailing_gap_ms: f64,
    pub verdict: Verdict,
}

/// The censor's view of an external call: per direction (`up` = caller to callee).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalNetwork {
    /// Width of the censor's time bins, ms.
    pub bin_ms: u64,
    pub up: NetworkDirectionResult,
    pub down: NetworkDirectionResult,
}

/// The external side of a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExternalCall {
    pub caller: ExternalPeerResult,
    pub callee: ExternalPeerResult,
    /// Set when the peers reported no frames and the verdict was judged from the censor's
    /// view of the call (media both ways, drops, gaps, rate): says so in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_from_network: Option<String>,
    /// The censor's figures, when the verdict was judged from the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<ExternalNetwork>,
}

impl ExternalCall {
    /// Where the verdict came from: `network` (the censor's view), `reports` (the peers'
    /// frames) or `none` (a peer failed: the verdict is `error`).
    pub fn judged_from(&self) -> &'static str {
        if self.judged_from_network.is_some() {
            "network"
        } else if self.caller.report.as_ref().is_some_and(|r| r.frames_sent.is_some())
            && self.callee.report.as_ref().is_some_and(|r| r.frames_sent.is_some())
        {
            "reports"
        } else {
            "none"
        }
    }

    /// `aiortc 1.9.0 ↔ aiortc 1.9.0`, or the commands' programs when no `hello` came.
    pub fn implementations(&self) -> String {
        let name = |p: &ExternalPeerResult| {
            p.implementation
                .clone()
                .unwrap_or_else(|| p.command.split_whitespace().last().unwrap_or("?").to_string())
        };
        format!("{} <-> {}", name(&self.caller), name(&self.callee))
    }
}
