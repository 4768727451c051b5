//! External peers: put any program's call through the censor.
//!
//! A scenario may name a pair of commands instead of a built-in transport. This crate holds
//! everything about such a call that does not need the harness (the harness starts the
//! commands inside the caller's and callee's namespaces and feeds the censor's counters in):
//!
//! - [`contract`]: the environment a peer gets, as typed data ([`ExternalPeerContext::env`]);
//!   `docs/peers.md` is the same contract in words, for peer authors.
//! - [`report`]: a pure parser of the peer's JSON-lines report that names the line and the
//!   field of a malformed line, and converts into the built-in
//!   [`PeerReport`](callwall_transport::PeerReport), so a peer that reports frames gets the
//!   same figures, MOS and verdict rules as callwall's own transports.
//! - [`runner`]: spawns a prepared command with that environment, its own process group and a
//!   parent-death signal, enforces a deadline, keeps a bounded stderr tail, reads the report,
//!   and classifies the run ([`PeerOutcome`]): a peer that does not start, crashes, hangs or
//!   writes a malformed report is an `error`, never `blocked`.
//! - [`judge`]: the verdict of an external call, from the reports when both peers gave frames,
//!   else from the censor's per-direction counts ([`judge_from_network`], pure), with a note.
//!
//! Not here: entering namespaces (the harness passes a `Command` from
//! `callwall_netns::Network::command`), collecting the censor's per-call counts, results and
//! reports.
#![deny(unsafe_code)]

pub mod contract;
pub mod judge;
pub mod report;
pub mod runner;
mod sys;

pub use contract::{ContractError, ExternalPeerContext, RelayEnv};
pub use judge::{
    cross_check, judge_external, judge_from_network, Bin, CallFacts, CrossCheck, ExternalJudgement,
    NetworkDirection, NetworkJudgement, NetworkObservation, NetworkThresholds, NETWORK_NOTE,
};
pub use report::{parse_report, ExternalReport, ReportError, SentTotals, Stage};
pub use runner::{spawn_peer, PeerExit, PeerOutcome, PeerRun, RunError, RunLimits, RunningPeer};
