//! What a run produces: the results model written to JSON (schema version [`SCHEMA_VERSION`]).
//!
//! This crate is the bottom of the reporting side: the harness fills these types, the censor
//! engine emits [`censor::DecisionEvent`]s and counters, the transports' analysis fills
//! [`metrics::CallMetrics`], and `callwall-report` renders them. It depends on serde alone (no
//! I/O, no async runtime, no namespaces), so anything that reads results can use it cheaply.
//!
//! `docs/results-schema.md` documents every field; this crate is the source of truth.
//!
//! Extending: optional parts carry `#[serde(default)]`, so a field added later (a workload's
//! results, per-call flakiness, shard merges) keeps older documents readable; bump
//! [`SCHEMA_VERSION`] only for a change older readers would misread.

pub mod audio;
pub mod bypass;
pub mod cause;
pub mod censor;
pub mod expect;
pub mod external;
pub mod flaky;
pub mod ice;
pub mod judge;
pub mod machine;
pub mod metrics;
pub mod stats;
pub mod workload;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use cause::{Cause, Direction, Overload, Problem, Reason};
pub use censor::{
    deciding_rule, BridgeStats, CensorReport, ControlChange, ControlEvent, DecisionEvent, Endpoint,
    EngineStats, Flow, HostRuleCounters, InsideReport, Outcome, Proto, RuleCounters, RuleReport,
};
pub use expect::{ExpectedVerdicts, OneOf};
pub use external::{
    ExternalCall, ExternalNetwork, ExternalPeerResult, ExternalReportSummary,
    NetworkDirectionResult,
};
pub use metrics::{CallMetrics, DirectionMetrics, Second, Thresholds, Verdict};
pub use workload::{
    ExpectedOutcomes, Figures, HttpProto, WorkloadCause, WorkloadKind, WorkloadOutcome,
    WorkloadResult,
};

/// Bumped on any incompatible change of the JSON layout. Version 2: censor events carry a
/// typed flow (`proto`, `client` and `server` endpoints) and a typed `outcome`. Version 3:
/// expectations are lists of names, reasons are typed causes, a workload's figures are its
/// kind's typed figures (`callwall-report` converts version 2 files when it loads them).
pub const SCHEMA_VERSION: u32 = 3;

/// The top-level JSON document of `callwall run --json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub callwall_version: String,
    pub runs: Vec<RunResult>,
    /// Set by `callwall run --shard K/N`: this document holds shard K of N of a matrix;
    /// `callwall merge` checks that every shard is present once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// What decides whether two documents measured the same thing (build, options, scenario
    /// files, shard matrix): `callwall merge` joins only documents with equal fingerprints.
    /// Absent in documents written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Set when the run was stopped (SIGINT, SIGTERM) before every planned run finished: the
    /// runs that did not finish are `interrupted` run errors, and nothing here is a pass.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// What a results document measured: the same fingerprint means the same build, the same
/// options that change results, the same scenario files and the same shard matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The build: `git describe --always --tags` of the checkout callwall was built from
    /// (`unknown` when it was not built from a git checkout).
    pub commit: String,
    /// The options of `callwall run` that change results.
    pub options: RunOptions,
    /// Every scenario of the matrix (after `--filter` and `--transport`), by name, with a
    /// hash of its file's content; sorted by name.
    pub scenarios: Vec<ScenarioPrint>,
    /// How many shards the matrix was cut into (1 without `--shard`).
    pub shards: u32,
}

/// The options of `callwall run` that change results (a fingerprint part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// `--seed`, when given (each scenario's own seed otherwise).
    #[serde(default)]
    pub seed: Option<u64>,
    /// `--repeat`.
    #[serde(default)]
    pub repeat: u32,
    /// `--retries`.
    #[serde(default)]
    pub retries: u32,
    /// `--transport`, sorted (empty: every transport).
    #[serde(default)]
    pub transports: Vec<String>,
    /// `--filter`.
    #[serde(default)]
    pub filter: Option<String>,
    /// `--audio`: `bundled`, the WAV file given, or absent without `--audio`.
    #[serde(default)]
    pub audio: Option<String>,
    /// `--pcap`.
    #[serde(default)]
    pub pcap: bool,
}

/// One scenario of a fingerprint: its name and the SHA-256 of its file (hex).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScenarioPrint {
    pub name: String,
    pub sha256: String,
}

/// Which slice of a matrix a results document holds (1-based `index` of `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u32,
    pub count: u32,
}

/// One scenario run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub scenario: String,
    pub path: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub seed: u64,
    /// 0-based repeat index when `--repeat` is used.
    #[serde(default)]
    pub repeat: u32,
    pub topology: String,
    pub started_unix_ms: u64,
    pub wall_ms: u64,
    pub calls: Vec<CallResult>,
    pub censor: CensorResult,
    /// Set when the run itself failed (environment, setup); calls are then `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    #[serde(default)]
    pub artifacts: Artifacts,
    /// Calls placed `repeat = N` times with expected shares: their verdicts' distribution and
    /// whether it met the shares (see [`stats`]). Empty when the scenario has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distributions: Vec<stats::Distribution>,
    /// How many times `--retries` re-ran this scenario after a miss (0: this is the first run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// The run was placed a second time, whatever `--retries` said, because a call missed
    /// with the machine to blame (see [`machine`]); the first placing is in the calls'
    /// `attempts`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaced: bool,
    /// The activities beside the calls (messages, voice notes, web, video); empty when the
    /// scenario has no workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadResult>,
    /// The earlier attempts of a run `--retries` re-ran, oldest first: each one's run error
    /// and every call, workload and distribution that missed in it, with why. Empty when the
    /// run was not retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<RunAttempt>,
    /// Set by `--retries` when something that missed in an earlier attempt (a call, a
    /// workload, a distribution, the run itself) met its expectation in the last one: the run
    /// passed only on a retry, or part of it did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
}

/// One earlier attempt of a run that `--retries` re-ran: what failed in it and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunAttempt {
    /// The attempt's run error (setup, timeout, ...), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// Every call, workload and distribution that missed its expectation in this attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<Miss>,
}

/// Something that missed its expectation in an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Miss {
    pub kind: MissKind,
    /// The call's, workload's or statistical call's name.
    pub name: String,
    /// What was expected, in words (`connected|degraded`, `ok`, `blocked 5-55%`).
    pub expected: String,
    /// What it got (a verdict, an outcome, the verdicts' counts).
    pub got: String,
    /// Why, in words.
    pub reason: String,
}

/// What kind of thing missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissKind {
    Call,
    Workload,
    Distribution,
}

impl MissKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MissKind::Call => "call",
            MissKind::Workload => "workload",
            MissKind::Distribution => "distribution",
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl RunResult {
    /// True when every call and every workload got one of its expected outcomes (or, for a
    /// call, was [`CallResult::inconclusive`]), every statistical call's distribution met its
    /// shares, and the run had no error.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.calls.iter().all(|c| c.met || c.inconclusive)
            && self.distributions.iter().all(|d| d.met)
            && self.workloads.iter().all(|w| w.met)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CensorResult {
    /// Per rule, in chain order, the default action last.
    pub rules: Vec<RuleReport>,
    pub stats: EngineStats,
    #[serde(default)]
    pub bridge: BridgeStats,
    #[serde(default)]
    pub by_inside: Vec<InsideReport>,
    /// The decision log's notable events (anything but the default pass), at most
    /// [`MAX_EVENTS`]; the full log is the `decisions` artifact.
    #[serde(default)]
    pub events: Vec<DecisionEvent>,
    /// Live control changes (rules switched, policies swapped) in the order they were made;
    /// also lines with `"flow":"control"` in the decision log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control: Vec<ControlEvent>,
    /// When the censor process was not scheduled (see [`machine`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalls: Vec<machine::Stall>,
}

/// Most censor events kept in the results.
pub const MAX_EVENTS: usize = 2000;

impl From<(CensorReport, BridgeStats)> for CensorResult {
    fn from((r, b): (CensorReport, BridgeStats)) -> Self {
        CensorResult {
            rules: r.rules,
            stats: r.stats,
            bridge: b,
            by_inside: r.by_inside,
            events: Vec::new(),
            control: Vec::new(),
            stalls: Vec::new(),
        }
    }
}

impl CensorResult {
    /// The rule that hit `addr`'s packets hardest, if any did.
    pub fn deciding_rule(&self, addr: IpAddr) -> Option<String> {
        censor::deciding_rule(&self.by_inside, addr).map(str::to_string)
    }
}

/// Why a run (not a call) failed: a kind that decides the exit code, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub kind: RunErrorKind,
    pub message: String,
}

impl RunError {
    pub fn new(kind: RunErrorKind, message: impl Into<String>) -> RunError {
        RunError { kind, message: message.into() }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The kinds of run failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunErrorKind {
    /// The machine cannot run scenarios (no namespaces, no privileges, a tool not installed):
    /// fix the machine.
    Environment,
    /// Bad input found late (a scenario or topology the sandbox could not use).
    Input,
    /// Setting the run up failed (a service did not start, a topology could not be built).
    Setup,
    /// The run did not finish within its budget and was killed.
    Timeout,
    /// The run was interrupted (Ctrl-C).
    Interrupted,
    /// Anything else: an I/O error, a sandbox that exited without a result.
    Internal,
}

impl RunErrorKind {
    /// The process exit code a run error of this kind gives `callwall run`: 2 for what the user
    /// must fix before anything can run (environment, input), 1 (like an unmet expectation)
    /// otherwise.
    pub fn exit_code(self) -> u8 {
        match self {
            RunErrorKind::Environment | RunErrorKind::Input => 2,
            _ => 1,
        }
    }
}

/// Files a run left in its output directory (paths relative to it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Artifacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

/// CPU cost of a call: each peer sends one direction and receives the other.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallCpu {
    pub caller_ms: Option<f64>,
    pub callee_ms: Option<f64>,
    /// Percent of one core over the peer's lifetime (start of the call to its end).
    pub caller_pct_of_core: Option<f64>,
    pub callee_pct_of_core: Option<f64>,
}

/// One call's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallResult {
    pub name: String,
    pub transport: String,
    /// The strategy that connected, or the requested ones joined by `,` when none did.
    pub strategy: String,
    pub requested: Vec<String>,
    pub verdict: Verdict,
    /// The verdicts the scenario accepts.
    pub expected: ExpectedVerdicts,
    /// Whether `verdict` is one of the expected ones.
    pub met: bool,
    pub setup_ms: Option<f64>,
    pub loss_pct: f64,
    /// `None` (JSON `null`, `-` in tables) when the call has no such figure: judged from the
    /// network (an external call whose peers reported no frames), the censor cannot tell.
    pub jitter_ms: Option<f64>,
    /// `None` as `jitter_ms`.
    pub one_way_delay_ms: Option<f64>,
    pub longest_gap_ms: f64,
    /// `None` as `jitter_ms`.
    pub mos: Option<f64>,
    /// The censor rule that hit this call's packets hardest, if any did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why the verdict is what it is (its `Display` is the sentence).
    pub reason: Reason,
    /// The caller's address for this call (each call gets its own, for attribution).
    pub caller_addr: IpAddr,
    /// CPU each peer process used, when known.
    #[serde(default)]
    pub cpu: CallCpu,
    pub metrics: CallMetrics,
    /// Set by `--retries` when this call's verdict changed between attempts of its run: the
    /// verdict is not a stable property of the build (see [`Attempt`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
    /// This call in the earlier attempts of its run (`--retries`), oldest first; empty when the
    /// run was not retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// What the caller's ICE agent did (webrtc `ice`/`auto` calls only): the chosen pair and
    /// each candidate source's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice: Option<ice::CallIce>,
    /// Set for a call placed by external peers (`transport` is then `external`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalCall>,
    /// Set for a bypass-matrix call (one with `cite` or `prediction`): its bypass, the source
    /// of its expectation and its cost (see [`bypass`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass: Option<bypass::CallBypass>,
    /// With `--audio`: the speech sent and how each direction scored (see [`audio`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<audio::CallAudio>,
    /// The app profile the call stands for (the scenario's `app =`, e.g. `whatsapp-like`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Set when the machine stalled this call's processes or the censor lost frames in the
    /// kernel (see [`machine`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<machine::MachineLoad>,
    /// The call missed its expectation twice (placed, then re-placed once), each time with
    /// [`CallResult::machine`] to blame: it says nothing about the transport or the censor
    /// (`met` stays false; the run does not fail for it; JUnit `skipped`, exit code 3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inconclusive: bool,
}

/// One earlier attempt of a call whose run `--retries` re-ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub verdict: Verdict,
    pub met: bool,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}
