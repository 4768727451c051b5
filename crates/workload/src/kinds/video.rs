//! `video`: `duration` of video at `bitrate`, fetched in chunks of `chunk` playback time each
//! over HTTPS/1.1 on TCP or HTTP/3 on QUIC; a player model counts stalls.
//!
//! Verdict: `failed` when no chunk or fewer than [`CHUNKS_DEGRADED`] of them arrived; `ok`
//! when every chunk arrived and playback never stalled; `degraded` otherwise.

use callwall_units::{Duration, Rate};
use serde::{Deserialize, Serialize};

use super::{KindParams, Serves};
use crate::limits::{check_duration, check_rate, Range};
use crate::{HttpProto, Kind, Outcome, ParamError, VideoFigures};

/// Parameters of a video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

pub const BITRATE: Range<Rate> =
    Range { min: Rate::from_bits_per_sec(32_000), max: Rate::from_bits_per_sec(50_000_000) };
pub const DURATION: Range<Duration> =
    Range { min: Duration::from_secs(1), max: Duration::from_secs(600) };
pub const CHUNK: Range<Duration> =
    Range { min: Duration::from_millis(250), max: Duration::from_secs(10) };

/// Fraction of chunks that must arrive for `degraded` rather than `failed`.
pub const CHUNKS_DEGRADED: f64 = 0.5;

impl KindParams for VideoParams {
    type Figures = VideoFigures;
    const KIND: Kind = Kind::Video;
    const SERVES: Serves = Serves::Http;

    fn proto(&self) -> Option<HttpProto> {
        Some(self.proto)
    }

    fn validate(&self) -> Result<(), ParamError> {
        check_rate("bitrate", self.bitrate, BITRATE)?;
        check_duration("duration", self.duration, DURATION)?;
        check_duration("chunk", self.chunk, CHUNK)?;
        if self.chunk > self.duration {
            return Err(ParamError {
                key: "chunk",
                message: "a chunk cannot be longer than the video; lower chunk or raise duration"
                    .into(),
            });
        }
        Ok(())
    }

    fn empty_figures(&self) -> VideoFigures {
        VideoFigures {
            proto: self.proto,
            target_kbit: self.bitrate.bits_per_sec() as f64 / 1000.0,
            chunks: self.chunks(),
            ..Default::default()
        }
    }

    fn judge(&self, f: &VideoFigures) -> Outcome {
        let want = f64::from(self.chunks());
        if f.chunks_ok == 0 || f64::from(f.chunks_ok) < want * CHUNKS_DEGRADED {
            return Outcome::Failed;
        }
        if f.keeps_up && f.chunks_ok == self.chunks() {
            Outcome::Ok
        } else {
            Outcome::Degraded
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_from_the_bitrate() {
        let v = VideoParams {
            bitrate: Rate::from_bits_per_sec(128_000),
            duration: Duration::from_secs(5),
            chunk: Duration::from_secs(2),
            proto: HttpProto::H3,
        };
        assert_eq!((v.chunk_bytes(), v.chunks()), (32_000, 3));
        let p = VideoParams { chunk: Duration::from_secs(20), ..Default::default() };
        assert_eq!(p.validate().unwrap_err().key, "chunk");
    }

    #[test]
    fn video() {
        let p = VideoParams::default();
        let f = |ok: u32, keeps_up| VideoFigures {
            chunks: 5,
            chunks_ok: ok,
            keeps_up,
            ..Default::default()
        };
        assert_eq!(p.judge(&f(5, true)), Outcome::Ok);
        assert_eq!(p.judge(&f(5, false)), Outcome::Degraded);
        assert_eq!(p.judge(&f(3, false)), Outcome::Degraded);
        assert_eq!(p.judge(&f(2, false)), Outcome::Failed);
        assert_eq!(p.judge(&f(0, false)), Outcome::Failed);
    }
}
