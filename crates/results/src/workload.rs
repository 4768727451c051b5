//! A workload's result: an activity beside the calls (a message exchange, a voice note, a web
//! page, a video) with its outcome, what the scenario expected and its figures.
//!
//! The kinds, outcomes, protocols and per-kind figures are defined here, once: the workload
//! clients (`callwall-workload-net`) measure into these [`Figures`], the harness stores them
//! unchanged in a [`WorkloadResult`], and `callwall-report` turns them into text. Adding a kind
//! adds a [`WorkloadKind`] variant and its figures struct here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::expect::OneOf;

/// The outcomes a workload may end with.
pub type ExpectedOutcomes = OneOf<WorkloadOutcome>;

/// The kinds of activity, as written in scenario files and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// Text messages both ways over one persistent WebSocket-over-TLS connection.
    Message,
    /// An Opus-sized recording uploaded over HTTPS and downloaded again.
    VoiceNote,
    /// A page plus N objects (map tiles) over HTTPS/TCP or HTTP/3.
    Web,
    /// Chunked streaming at a target bitrate over HTTPS/TCP or HTTP/3.
    Video,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 4] =
        [WorkloadKind::Message, WorkloadKind::VoiceNote, WorkloadKind::Web, WorkloadKind::Video];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Message => "message",
            WorkloadKind::VoiceNote => "voice-note",
            WorkloadKind::Web => "web",
            WorkloadKind::Video => "video",
        }
    }

    /// The activity a report's "what still works" matrix shows for the kind, in words.
    pub fn activity(self) -> &'static str {
        match self {
            WorkloadKind::Message => "message",
            WorkloadKind::VoiceNote => "voice note",
            WorkloadKind::Web => "web",
            WorkloadKind::Video => "video",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workload kind name that is none of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload kind {0:?}; use message, voice-note, web or video")]
pub struct UnknownKind(pub String);

impl FromStr for WorkloadKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        WorkloadKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// The verdict of one workload, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadOutcome {
    /// Worked as a person would expect.
    Ok,
    /// Worked, but slowly or partly (late messages, failed tiles, video stalls).
    Degraded,
    /// Did not work (nothing delivered, name not resolved, connection refused or frozen).
    Failed,
    /// The testbed failed, not the network: the client crashed (exit status, signal, no
    /// parsable report) or hung past its budget. Never meets an expectation of `failed`.
    Error,
}

impl WorkloadOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadOutcome::Ok => "ok",
            WorkloadOutcome::Degraded => "degraded",
            WorkloadOutcome::Failed => "failed",
            WorkloadOutcome::Error => "error",
        }
    }
}

impl fmt::Display for WorkloadOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A workload verdict name that is none of `ok`, `degraded`, `failed` or `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload verdict {0:?}: use ok, degraded, failed or error")]
pub struct UnknownOutcome(pub String);

impl FromStr for WorkloadOutcome {
    type Err = UnknownOutcome;
    fn from_str(s: &str) -> Result<Self, UnknownOutcome> {
        match s {
            "ok" => Ok(WorkloadOutcome::Ok),
            "degraded" => Ok(WorkloadOutcome::Degraded),
            "failed" => Ok(WorkloadOutcome::Failed),
            "error" => Ok(WorkloadOutcome::Error),
            _ => Err(UnknownOutcome(s.to_string())),
        }
    }
}

/// How HTTP is carried for web and video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpProto {
    /// HTTP/1.1 over TLS over TCP (port 443).
    #[default]
    Https,
    /// HTTP/3 over QUIC (UDP port 443).
    H3,
}

impl HttpProto {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpProto::Https => "https",
            HttpProto::H3 => "h3",
        }
    }
}

impl fmt::Display for HttpProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a message client measured. Latencies are from timestamps on the shared clock.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageFigures {
    /// Messages each side was to send (the scenario's `count`).
    #[serde(default)]
    pub count: u32,
    /// Messages the client sent, and how many of them the server received (by receipt).
    pub sent_up: u32,
    pub delivered_up: u32,
    /// Messages the server sent, and how many of them reached the client.
    pub sent_down: u32,
    pub delivered_down: u32,
    /// Delivery latency over both directions, milliseconds.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// The slowest delivery, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<f64>,
    /// TCP + TLS + WebSocket handshake, milliseconds; `None` when it never completed.
    pub connect_ms: Option<f64>,
}

impl MessageFigures {
    /// Delivered over expected, both directions (expected = `count` each way).
    pub fn delivered_fraction(&self, count: u32) -> f64 {
        if count == 0 {
            return 1.0;
        }
        f64::from(self.delivered_up + self.delivered_down) / (2.0 * f64::from(count))
    }

    /// Delivered over expected ([`MessageFigures::count`] each way), percent.
    pub fn delivered_pct(&self) -> f64 {
        100.0 * self.delivered_fraction(self.count)
    }
}

/// What a voice-note client measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VoiceNoteFigures {
    pub bytes: u64,
    pub uploaded: bool,
    pub downloaded: bool,
    /// The downloaded bytes equal the uploaded ones.
    pub intact: bool,
    pub upload_ms: Option<f64>,
    pub download_ms: Option<f64>,
    /// Bytes x 8 over upload + download time, kbit/s.
    pub goodput_kbit: Option<f64>,
    /// Bytes that reached the other side: the upload's when it completed, plus the
    /// download's (an incomplete transfer counts 0: HTTP bodies are taken whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_arrived: Option<u64>,
    /// `bytes_arrived` x 8 over the time spent transferring, kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_kbit: Option<f64>,
}

/// What a web client measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebFigures {
    pub proto: HttpProto,
    pub page_ok: bool,
    pub objects: u32,
    pub objects_ok: u32,
    pub failed_objects: u32,
    /// From the first connection attempt to the last object, milliseconds; `None` when
    /// the page or any object failed.
    pub complete_ms: Option<f64>,
    /// Bytes that arrived (the page and every object that arrived whole).
    pub bytes: u64,
    /// `bytes` x 8 over the time from the first connection attempt to the end of the last
    /// request, kbit/s, failed objects included; `None` when nothing arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_kbit: Option<f64>,
}

/// What a video client measured. Playback starts when the first chunk has arrived; a stall
/// is a moment the player had played everything it had and the next chunk was still missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoFigures {
    pub proto: HttpProto,
    pub target_kbit: f64,
    pub chunks: u32,
    pub chunks_ok: u32,
    /// Bytes received x 8 over the time spent receiving, kbit/s.
    pub throughput_kbit: Option<f64>,
    /// Bytes of the chunks that arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_arrived: Option<u64>,
    pub startup_ms: Option<f64>,
    /// Stalls, and their total length in ms; a video that never started is one stall as long
    /// as the whole time the viewer waited.
    pub stalls: u32,
    pub stall_ms: f64,
    /// Every chunk arrived and the stream never stalled.
    pub keeps_up: bool,
}

/// A figure as a number: booleans as 0/1, unknown values left out.
fn b(x: bool) -> Option<f64> {
    Some(if x { 1.0 } else { 0.0 })
}

impl MessageFigures {
    /// Every figure by name (see [`Figures::pairs`]).
    pub fn pairs(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
            ("sent_up", Some(f64::from(self.sent_up))),
            ("delivered_up", Some(f64::from(self.delivered_up))),
            ("sent_down", Some(f64::from(self.sent_down))),
            ("delivered_down", Some(f64::from(self.delivered_down))),
            ("latency_p50_ms", self.latency_p50_ms),
            ("latency_p95_ms", self.latency_p95_ms),
            ("latency_max_ms", self.latency_max_ms),
            ("connect_ms", self.connect_ms),
            ("delivered_pct", Some(self.delivered_pct())),
        ]
    }

    /// The figures that matter, as a table shows them (`100% delivered, p50 1.2 ms, ...`).
    pub fn line(&self) -> Vec<String> {
        let mut parts = vec![format!("{:.0}% delivered", self.delivered_pct())];
        if let Some(l) = self.latency_p50_ms {
            parts.push(format!("p50 {l:.1} ms"));
        }
        if let Some(l) = self.latency_p95_ms {
            parts.push(format!("p95 {l:.1} ms"));
        }
        if let Some(l) = self.latency_max_ms {
            parts.push(format!("max {l:.1} ms"));
        }
        parts
    }
}

impl VoiceNoteFigures {
    /// Every figure by name (see [`Figures::pairs`]).
    pub fn pairs(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
            ("bytes", Some(self.bytes as f64)),
            ("uploaded", b(self.uploaded)),
            ("downloaded", b(self.downloaded)),
            ("intact", b(self.intact)),
            ("upload_ms", self.upload_ms),
            ("download_ms", self.download_ms),
            ("goodput_kbit", self.goodput_kbit),
            ("bytes_arrived", self.bytes_arrived.map(|b| b as f64)),
            ("rate_kbit", self.rate_kbit),
        ]
    }

    /// The figures that matter, as a table shows them.
    pub fn line(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(u) = self.upload_ms {
            parts.push(format!("up {u:.0} ms"));
        }
        if let Some(d) = self.download_ms {
            parts.push(format!("down {d:.0} ms"));
        }
        if let Some(g) = self.goodput_kbit {
            parts.push(format!("{g:.0} kbit/s"));
        } else if let (Some(b), Some(r)) = (self.bytes_arrived, self.rate_kbit) {
            parts.push(format!("{b} B at {r:.0} kbit/s"));
        }
        parts
    }
}

impl WebFigures {
    /// Every figure by name (see [`Figures::pairs`]).
    pub fn pairs(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
            ("page_ok", b(self.page_ok)),
            ("objects", Some(f64::from(self.objects))),
            ("objects_ok", Some(f64::from(self.objects_ok))),
            ("failed_objects", Some(f64::from(self.failed_objects))),
            ("complete_ms", self.complete_ms),
            ("bytes", Some(self.bytes as f64)),
            ("rate_kbit", self.rate_kbit),
        ]
    }

    /// The figures that matter, as a table shows them.
    pub fn line(&self) -> Vec<String> {
        let mut parts = vec![format!("{}/{} objects", self.objects_ok, self.objects)];
        if let Some(c) = self.complete_ms {
            parts.push(format!("{c:.0} ms"));
        }
        if let Some(r) = self.rate_kbit {
            parts.push(format!("{} B at {r:.0} kbit/s", self.bytes));
        }
        parts
    }
}

impl VideoFigures {
    /// Every figure by name (see [`Figures::pairs`]).
    pub fn pairs(&self) -> Vec<(&'static str, Option<f64>)> {
        vec![
            ("target_kbit", Some(self.target_kbit)),
            ("chunks", Some(f64::from(self.chunks))),
            ("chunks_ok", Some(f64::from(self.chunks_ok))),
            ("throughput_kbit", self.throughput_kbit),
            ("bytes_arrived", self.bytes_arrived.map(|b| b as f64)),
            ("startup_ms", self.startup_ms),
            ("stalls", Some(f64::from(self.stalls))),
            ("stall_ms", Some(self.stall_ms)),
            ("keeps_up", b(self.keeps_up)),
        ]
    }

    /// The figures that matter, as a table shows them.
    pub fn line(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(t) = self.throughput_kbit {
            parts.push(format!("{t:.0} kbit/s"));
        }
        parts.push(format!("{} stalls", self.stalls));
        parts
    }
}

/// One kind's figures, tagged with the kind (`{"kind": "message", "sent_up": 20, ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Figures {
    Message(MessageFigures),
    VoiceNote(VoiceNoteFigures),
    Web(WebFigures),
    Video(VideoFigures),
}

impl Figures {
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Figures::Message(_) => WorkloadKind::Message,
            Figures::VoiceNote(_) => WorkloadKind::VoiceNote,
            Figures::Web(_) => WorkloadKind::Web,
            Figures::Video(_) => WorkloadKind::Video,
        }
    }

    /// Every figure by name, in name order, booleans as 0/1 and unknown values left out (the
    /// JUnit output lists them).
    pub fn pairs(&self) -> Vec<(&'static str, f64)> {
        let mut v = match self {
            Figures::Message(f) => f.pairs(),
            Figures::VoiceNote(f) => f.pairs(),
            Figures::Web(f) => f.pairs(),
            Figures::Video(f) => f.pairs(),
        };
        v.sort_by_key(|p| p.0);
        v.into_iter().filter_map(|(k, x)| x.map(|x| (k, x))).collect()
    }

    /// One short line of the figures that matter for the kind (`3/12 objects, 840 ms`).
    pub fn line(&self) -> String {
        match self {
            Figures::Message(f) => f.line(),
            Figures::VoiceNote(f) => f.line(),
            Figures::Web(f) => f.line(),
            Figures::Video(f) => f.line(),
        }
        .join(", ")
    }
}

/// Why a workload's outcome is what it is (absent when it is `ok` without an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum WorkloadCause {
    /// The first error the client met (`dns: ... nxdomain`, `timeout: ...`).
    ClientError { error: String },
    /// No error, but the figures missed the thresholds of `ok`.
    Thresholds { outcome: WorkloadOutcome },
    /// The client process ended without a report: how it ended, and its log file.
    NoReport { status: String, log: String },
    /// The client process was still running past its budget (the workload's start + timeout
    /// + grace) and was killed.
    Hung { log: String },
    /// A reason read from an older results file, as it was written.
    Text { text: String },
}

impl fmt::Display for WorkloadCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadCause::ClientError { error } => f.write_str(error),
            WorkloadCause::Thresholds { outcome } => write!(f, "{outcome} by the thresholds"),
            WorkloadCause::NoReport { status, log } => {
                write!(f, "the workload client gave no report ({status}); see {log}")
            }
            WorkloadCause::Hung { log } => {
                write!(f, "the workload client hung past its budget and was killed; see {log}")
            }
            WorkloadCause::Text { text } => f.write_str(text),
        }
    }
}

/// One workload of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResult {
    pub name: String,
    pub kind: WorkloadKind,
    /// The app or label the "what still works" matrix shows (`whatsapp`, `osm`, `youtube`).
    pub app: String,
    /// The name resolved through the run's DNS and sent as SNI.
    #[serde(default)]
    pub host_name: String,
    /// How HTTP was carried, for web and video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<HttpProto>,
    pub outcome: WorkloadOutcome,
    /// The accepted outcomes.
    pub expected: ExpectedOutcomes,
    pub met: bool,
    /// What the client measured (its `kind` is this workload's); absent when the client gave
    /// no report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
    /// Why the outcome is not `ok`, or the first error the client met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<WorkloadCause>,
    /// Milliseconds the workload ran.
    #[serde(default)]
    pub elapsed_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_outcomes_round_trip_their_names() {
        for k in WorkloadKind::ALL {
            assert_eq!(k.as_str().parse::<WorkloadKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert_eq!("voicenote".parse::<WorkloadKind>(), Err(UnknownKind("voicenote".into())));
        assert!(UnknownKind("x".into()).to_string().contains("voice-note"));
        assert_eq!("degraded".parse::<WorkloadOutcome>(), Ok(WorkloadOutcome::Degraded));
        assert_eq!("blocked".parse::<WorkloadOutcome>(), Err(UnknownOutcome("blocked".into())));
        assert_eq!("error".parse::<WorkloadOutcome>(), Ok(WorkloadOutcome::Error));
        assert!(WorkloadOutcome::Error > WorkloadOutcome::Failed, "worse than failed");
        assert_eq!(serde_json::to_string(&HttpProto::H3).unwrap(), "\"h3\"");
    }

    #[test]
    fn causes_read_as_before() {
        let c = WorkloadCause::Thresholds { outcome: WorkloadOutcome::Degraded };
        assert_eq!(c.to_string(), "degraded by the thresholds");
        let c = WorkloadCause::NoReport { status: "exit 1".into(), log: "workload.a.log".into() };
        assert_eq!(
            c.to_string(),
            "the workload client gave no report (exit 1); see workload.a.log"
        );
    }
}
