//! Call metrics and verdicts as data: what the analysis of one call produces and the limits
//! that turn figures into verdicts. The analysis itself (a pure function of the peers' reports)
//! is `callwall_transport::metrics::analyze`; its definitions are documented there.

use serde::{Deserialize, Serialize};

/// The outcome of a call, ordered by severity (`Connected` < ... < `Error`), so the worst of
/// several is their `max`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Media flowed both ways within every threshold.
    Connected,
    /// Media flowed both ways, but loss, MOS or a gap crossed a threshold.
    Degraded,
    /// Media flowed, then stopped for longer than the cut threshold before the sender's end.
    Cut,
    /// No media arrived (in at least one direction) within the call.
    Blocked,
    /// The call could not be set up because signalling could not get through (the signal
    /// server unreachable, or its replies lost until the budget ran out): no transport was
    /// tried to the end, so the call says nothing about the media path.
    #[serde(rename = "no-signalling")]
    NoSignalling,
    /// A peer failed or crashed: the call says nothing about the censor.
    #[default]
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Connected => "connected",
            Verdict::Degraded => "degraded",
            Verdict::Cut => "cut",
            Verdict::Blocked => "blocked",
            Verdict::NoSignalling => "no-signalling",
            Verdict::Error => "error",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The limits that turn figures into verdicts. All of them, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Degraded when a direction loses more than this share of frames (percent). Default 3 %:
    /// Opus-class concealment hides isolated losses of about 1 %, operational VoIP targets are
    /// at most 1 %, and above 3 % clipping is audible to most listeners.
    pub degraded_loss_pct: f64,
    /// Degraded when a direction's MOS is below this. Default 3.6, which is R = 70 in G.107
    /// Annex B: the boundary below which Table B.1 rates a connection "many users dissatisfied".
    pub degraded_mos: f64,
    /// Degraded when a direction's longest gap exceeds this (ms). Default 1000 ms: loss
    /// concealment covers tens of milliseconds; a second of silence is a dropout people notice
    /// and answer with "hello?".
    pub degraded_gap_ms: f64,
    /// Cut when media flowed and then a direction's trailing gap exceeds this (ms). Default
    /// 3000 ms: after about three seconds of silence a caller takes the call for dead, and it is
    /// well above the degraded gap so a long dropout that recovers is not called a cut.
    pub cut_trailing_gap_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            degraded_loss_pct: 3.0,
            degraded_mos: 3.6,
            degraded_gap_ms: 1000.0,
            cut_trailing_gap_ms: 3000.0,
        }
    }
}

/// Figures for one direction of a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectionMetrics {
    /// Frames the sender's clock produced.
    pub frames_sent: u64,
    /// Frames the receiver could have heard (see the module doc).
    pub frames_expected: u64,
    /// Distinct frames received.
    pub frames_received: u64,
    /// Frames received more than once.
    pub duplicates: u64,
    /// Effective loss, percent of `frames_expected`: frames that were not played, whether
    /// they never arrived or arrived after the playout deadline (`network_loss_pct` +
    /// `late_pct`). The verdict and the E-model use it. Documents written before late frames
    /// were counted (no `late_pct`) hold the network loss here.
    pub loss_pct: f64,
    /// Distinct frames that arrived after the playout deadline (past the path's base delay),
    /// so were never heard; `None` in documents from before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_late: Option<u64>,
    /// Frames that never arrived, percent of `frames_expected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_loss_pct: Option<f64>,
    /// Frames that arrived late (`frames_late`), percent of `frames_expected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_pct: Option<f64>,
    /// RFC 3550 §6.4.1 interarrival jitter.
    pub jitter_ms: f64,
    /// Median one-way delay (0 when nothing arrived).
    pub one_way_delay_ms: f64,
    /// 95th percentile one-way delay.
    pub one_way_delay_p95_ms: f64,
    /// Longest silence while the sender talked, trailing gap included.
    pub longest_gap_ms: f64,
    /// Silence from the last arrival to the sender's media end.
    pub trailing_gap_ms: f64,
    /// First arrival, in ms after the call start (the caller's dial), if any.
    pub first_media_ms: Option<f64>,
    /// G.107 BurstR of the loss pattern (1 = random).
    pub burst_ratio: f64,
    /// G.107 transmission rating R.
    pub r_factor: f64,
    /// MOS-CQE from R (1.0 when no frame was played).
    pub mos: f64,
    pub verdict: Verdict,
}

/// One second of the call, counted from the call start, by the frames' send times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Second {
    pub t: u32,
    /// Effective loss (never arrived or late) of the caller→callee frames sent in this second;
    /// `None` when none were sent.
    pub up_loss_pct: Option<f64>,
    pub down_loss_pct: Option<f64>,
    /// Median one-way delay of the frames of both directions sent in this second.
    pub delay_ms: Option<f64>,
    /// The worse direction's MOS over this second (random loss assumed).
    pub mos: Option<f64>,
}

/// The analysis of one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMetrics {
    /// The worst of both directions, or `error` if a peer reported an error.
    pub verdict: Verdict,
    /// Why (its `Display` is the sentence).
    pub reason: crate::cause::Cause,
    /// From the caller's first dial to its connected strategy's success.
    pub setup_ms: Option<f64>,
    /// The strategy that connected.
    pub strategy: Option<String>,
    /// Strategies the caller tried.
    pub attempts: usize,
    /// The worse direction's figures (max loss, jitter, delay, gap; min MOS). `loss_pct` is the
    /// effective loss (see [`DirectionMetrics::loss_pct`]).
    pub loss_pct: f64,
    /// The worse direction's network loss and late share (each the max over the directions,
    /// so they need not add up to `loss_pct`); `None` in documents from before late frames
    /// were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_loss_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_pct: Option<f64>,
    pub jitter_ms: f64,
    pub one_way_delay_ms: f64,
    pub longest_gap_ms: f64,
    pub mos: f64,
    /// Caller → callee.
    pub up: DirectionMetrics,
    /// Callee → caller.
    pub down: DirectionMetrics,
    pub timeline: Vec<Second>,
}

/// Longest timeline kept (one hour of seconds); longer calls are truncated.
pub const MAX_TIMELINE_SECS: u64 = 3600;
