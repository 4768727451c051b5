//! Activities beside the calls: what a person does with an app besides talking.
//!
//! A **workload** is one activity of one app against one server host: a chat session
//! ([`Kind::Message`]), a recorded voice note sent through a media host ([`Kind::VoiceNote`]),
//! a web page with map tiles ([`Kind::Web`]) or a chunked video stream ([`Kind::Video`]). This
//! crate is the model only: the parameters of each kind ([`Params`], with unit newtypes and
//! the accepted ranges in [`limits`]), the figures a client measures ([`Figures`], defined in `callwall-results`), the report
//! a client process prints ([`WorkloadReport`]) and the pure verdict rule ([`judge`]) with every
//! threshold in one documented place ([`Thresholds`]). The real clients and servers live in
//! `callwall-workload-net`; scenario files describe workloads through `callwall-scenario`.
//!
//! Guarantees: everything here is pure (no I/O, no clock); [`Params::validate`] rejects any
//! size, count, interval or bitrate outside [`limits`] with a message naming the key and the
//! accepted range; [`judge`] is total (any figures give a verdict). It does not decide which
//! censor rule caused a failure: that is the harness's join with the censor's decision log.
#![forbid(unsafe_code)]

pub mod judge;
pub mod limits;

use callwall_units::{Bytes, Duration, Rate};
use serde::{Deserialize, Serialize};

pub use judge::{judge, Thresholds};

/// The kinds, outcomes, protocols and figures of workloads are the results model's, so a
/// client's figures are stored unchanged in a run's results.
pub use callwall_results::workload::{
    Figures, HttpProto, MessageFigures, UnknownKind, UnknownOutcome, VideoFigures,
    VoiceNoteFigures, WebFigures, WorkloadKind as Kind, WorkloadOutcome as Outcome,
};

/// Parameters of a chat session. Both sides send `count` messages of `size` bytes every
/// `interval`; each message is acknowledged by a delivery receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageParams {
    pub count: u32,
    pub size: Bytes,
    pub interval: Duration,
}

impl Default for MessageParams {
    fn default() -> Self {
        // Short chat lines: a few dozen to a few hundred bytes each, one every half second.
        MessageParams { count: 20, size: Bytes::new(200), interval: Duration::from_millis(500) }
    }
}

/// Parameters of a voice note: an Opus recording of `length` at `bitrate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceNoteParams {
    pub length: Duration,
    pub bitrate: Rate,
}

impl Default for VoiceNoteParams {
    fn default() -> Self {
        // 30 s of Opus voice at 24 kbit/s: 90 kB, a typical WhatsApp or Telegram voice note.
        VoiceNoteParams {
            length: Duration::from_secs(30),
            bitrate: Rate::from_bits_per_sec(24_000),
        }
    }
}

impl VoiceNoteParams {
    /// The recording's size in bytes.
    pub fn size(&self) -> u64 {
        (self.bitrate.bits_per_sec() as f64 * self.length.as_secs_f64() / 8.0).round() as u64
    }
}

/// Parameters of a web page: one page of `page_size`, then `objects` objects of `object_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebParams {
    pub page_size: Bytes,
    pub objects: u32,
    pub object_size: Bytes,
    pub proto: HttpProto,
}

impl Default for WebParams {
    fn default() -> Self {
        // A map view: a small page and 12 tiles of about 20 KB (the Krasnodar taxi case).
        WebParams {
            page_size: Bytes::new(30_000),
            objects: 12,
            object_size: Bytes::new(20_000),
            proto: HttpProto::Https,
        }
    }
}

/// Parameters of a video stream: `duration` of video at `bitrate`, fetched in chunks of
/// `chunk` playback time each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoParams {
    pub bitrate: Rate,
    pub duration: Duration,
    pub chunk: Duration,
    pub proto: HttpProto,
}

impl Default for VideoParams {
    fn default() -> Self {
        // 480p-ish: 1 mbit/s, 2 s segments, 10 s of playback.
        VideoParams {
            bitrate: Rate::from_bits_per_sec(1_000_000),
            duration: Duration::from_secs(10),
            chunk: Duration::from_secs(2),
            proto: HttpProto::Https,
        }
    }
}

impl VideoParams {
    /// Bytes of one chunk.
    pub fn chunk_bytes(&self) -> u64 {
        (self.bitrate.bits_per_sec() as f64 * self.chunk.as_secs_f64() / 8.0).round() as u64
    }
    /// Chunks in the stream (the last one may cover less than `chunk` of playback).
    pub fn chunks(&self) -> u32 {
        let c = self.chunk.as_nanos().max(1);
        self.duration.as_nanos().div_ceil(c) as u32
    }
}

/// One kind's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Params {
    Message(MessageParams),
    VoiceNote(VoiceNoteParams),
    Web(WebParams),
    Video(VideoParams),
}

impl Params {
    pub fn kind(&self) -> Kind {
        match self {
            Params::Message(_) => Kind::Message,
            Params::VoiceNote(_) => Kind::VoiceNote,
            Params::Web(_) => Kind::Web,
            Params::Video(_) => Kind::Video,
        }
    }

    /// How HTTP is carried, for the kinds that use HTTP over TCP or QUIC (web, video).
    pub fn proto(&self) -> Option<HttpProto> {
        match self {
            Params::Web(p) => Some(p.proto),
            Params::Video(p) => Some(p.proto),
            Params::Message(_) | Params::VoiceNote(_) => None,
        }
    }

    /// The defaults of a kind.
    pub fn default_for(kind: Kind) -> Params {
        match kind {
            Kind::Message => Params::Message(MessageParams::default()),
            Kind::VoiceNote => Params::VoiceNote(VoiceNoteParams::default()),
            Kind::Web => Params::Web(WebParams::default()),
            Kind::Video => Params::Video(VideoParams::default()),
        }
    }

    /// Checks every value against [`limits`]; the error names the key and the accepted range.
    pub fn validate(&self) -> Result<(), ParamError> {
        use limits::*;
        match self {
            Params::Message(p) => {
                check_count("count", p.count, MESSAGE_COUNT)?;
                check_bytes("size", p.size, MESSAGE_SIZE)?;
                check_duration("interval", p.interval, MESSAGE_INTERVAL)
            }
            Params::VoiceNote(p) => {
                check_duration("length", p.length, VOICE_NOTE_LENGTH)?;
                check_rate("bitrate", p.bitrate, VOICE_NOTE_BITRATE)
            }
            Params::Web(p) => {
                check_bytes("page_size", p.page_size, WEB_PAGE_SIZE)?;
                check_count("objects", p.objects, WEB_OBJECTS)?;
                check_bytes("object_size", p.object_size, WEB_OBJECT_SIZE)
            }
            Params::Video(p) => {
                check_rate("bitrate", p.bitrate, VIDEO_BITRATE)?;
                check_duration("duration", p.duration, VIDEO_DURATION)?;
                check_duration("chunk", p.chunk, VIDEO_CHUNK)?;
                if p.chunk > p.duration {
                    return Err(ParamError {
                        key: "chunk",
                        message:
                            "a chunk cannot be longer than the video; lower chunk or raise duration"
                                .into(),
                    });
                }
                Ok(())
            }
        }
    }
}

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
    fn sizes_follow_from_bitrates() {
        assert_eq!(VoiceNoteParams::default().size(), 90_000);
        let v = VideoParams {
            bitrate: Rate::from_bits_per_sec(128_000),
            duration: Duration::from_secs(5),
            chunk: Duration::from_secs(2),
            proto: HttpProto::H3,
        };
        assert_eq!((v.chunk_bytes(), v.chunks()), (32_000, 3));
    }

    #[test]
    fn defaults_are_valid_and_limits_name_the_key() {
        for k in Kind::ALL {
            Params::default_for(k).validate().unwrap();
        }
        let p = Params::Message(MessageParams { count: 0, ..Default::default() });
        assert_eq!(p.validate().unwrap_err().key, "count");
        let p = Params::Web(WebParams { object_size: Bytes::new(1 << 40), ..Default::default() });
        let e = p.validate().unwrap_err();
        assert_eq!(e.key, "object_size");
        assert!(e.message.contains("use"), "{e}");
        let p = Params::Video(VideoParams { chunk: Duration::from_secs(20), ..Default::default() });
        assert_eq!(p.validate().unwrap_err().key, "chunk");
    }

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
