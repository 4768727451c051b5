//! What a call placed by external peers (`peer = {caller, callee}` in a scenario, issue 13)
//! adds to its [`CallResult`](crate::CallResult): which programs ran, whether the verdict came
//! from the censor's view of the network, and the stderr tail of a peer that failed.

use serde::{Deserialize, Serialize};

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
}

impl ExternalCall {
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
