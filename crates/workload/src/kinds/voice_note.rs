//! `voice-note`: an Opus recording of `length` at `bitrate`, uploaded over HTTPS to a media
//! host and downloaded again on a new connection, compared byte for byte.
//!
//! Verdict: `failed` unless it went up, came down and is intact; `ok` when upload plus
//! download took at most [`MS_PER_100KB_OK`] per 100 kB each way; `degraded` otherwise.

use callwall_units::{Duration, Rate};
use serde::{Deserialize, Serialize};

use super::{KindParams, Serves};
use crate::limits::{check_duration, check_rate, Range};
use crate::{Kind, Outcome, ParamError, VoiceNoteFigures};

/// Parameters of a voice note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

pub const LENGTH: Range<Duration> =
    Range { min: Duration::from_secs(1), max: Duration::from_secs(600) };
pub const BITRATE: Range<Rate> =
    Range { min: Rate::from_bits_per_sec(6_000), max: Rate::from_bits_per_sec(510_000) };

/// Upload + download: at most this many ms per 100 kB each way for `ok` (2 s per 100 kB is
/// 400 kbit/s, far below any working mobile link).
pub const MS_PER_100KB_OK: f64 = 2000.0;

impl KindParams for VoiceNoteParams {
    type Figures = VoiceNoteFigures;
    const KIND: Kind = Kind::VoiceNote;
    const SERVES: Serves = Serves::Http;

    fn validate(&self) -> Result<(), ParamError> {
        check_duration("length", self.length, LENGTH)?;
        check_rate("bitrate", self.bitrate, BITRATE)
    }

    fn empty_figures(&self) -> VoiceNoteFigures {
        VoiceNoteFigures { bytes: self.size(), ..Default::default() }
    }

    fn judge(&self, f: &VoiceNoteFigures) -> Outcome {
        if !(f.uploaded && f.downloaded && f.intact) {
            return Outcome::Failed;
        }
        let total = f.upload_ms.unwrap_or(f64::INFINITY) + f.download_ms.unwrap_or(f64::INFINITY);
        let budget = MS_PER_100KB_OK * 2.0 * (self.size() as f64 / 100_000.0).max(1.0);
        if total <= budget {
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
    fn sizes_follow_from_bitrates() {
        assert_eq!(VoiceNoteParams::default().size(), 90_000);
    }

    #[test]
    fn voice_notes() {
        let p = VoiceNoteParams::default();
        let f = |intact, up, down| VoiceNoteFigures {
            bytes: 90_000,
            uploaded: true,
            downloaded: true,
            intact,
            upload_ms: Some(up),
            download_ms: Some(down),
            ..Default::default()
        };
        assert_eq!(p.judge(&f(true, 50.0, 50.0)), Outcome::Ok);
        assert_eq!(p.judge(&f(true, 5000.0, 50.0)), Outcome::Degraded);
        assert_eq!(p.judge(&f(false, 50.0, 50.0)), Outcome::Failed);
        // Through a 48 kbit/s throttle the 90 kB note takes 15 s each way: longer than any
        // one request used to be allowed (10 s), but it arrived whole: slow, not failed.
        assert_eq!(p.judge(&f(true, 15_000.0, 15_000.0)), Outcome::Degraded);
        // Up but never down: failed, with what arrived still reported by the client.
        let half = VoiceNoteFigures {
            uploaded: true,
            upload_ms: Some(15_000.0),
            bytes_arrived: Some(90_000),
            rate_kbit: Some(48.0),
            ..f(false, 0.0, 0.0)
        };
        assert_eq!(p.judge(&VoiceNoteFigures { downloaded: false, ..half }), Outcome::Failed);
    }
}
