//! The verdict of a workload from its figures: a pure function, every threshold here.
//!
//! | kind | ok | degraded | failed |
//! | --- | --- | --- | --- |
//! | message | all delivered, p95 <= `message_p95_ok` | some delivered, or late | none delivered |
//! | voice note | up + down intact, both within `voice_note_ok` | intact but slower | not intact |
//! | web | page + every object, within `web_ok` | page and >= half the objects, or slow | page missing or most objects failed |
//! | video | keeps up (no stall), throughput >= target | some chunks, stalls | no chunk, or under half the chunks |
//!
//! A run that reports an error before it measured anything has all-zero figures and so is
//! `failed` by the same rules.

use crate::{Figures, Outcome, Params};

/// Thresholds, documented where they are used. One instance, [`Thresholds::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Message delivery latency p95 up to which a chat feels instant, ms. Messengers show a
    /// "sent" tick within a second on a working network.
    pub message_p95_ok_ms: f64,
    /// Fraction of messages that must arrive for `ok`.
    pub message_delivered_ok: f64,
    /// Upload + download of a voice note: at most this many ms per 100 kB for `ok`
    /// (2 s per 100 kB is 400 kbit/s, far below any working mobile link).
    pub voice_note_ms_per_100kb_ok: f64,
    /// A web page with its objects: at most this many ms per 100 kB for `ok`.
    pub web_ms_per_100kb_ok: f64,
    /// Fraction of objects that must arrive for `degraded` rather than `failed`.
    pub web_objects_degraded: f64,
    /// Fraction of chunks that must arrive for `degraded` rather than `failed`.
    pub video_chunks_degraded: f64,
}

impl Thresholds {
    pub const DEFAULT: Thresholds = Thresholds {
        message_p95_ok_ms: 1000.0,
        message_delivered_ok: 1.0,
        voice_note_ms_per_100kb_ok: 2000.0,
        web_ms_per_100kb_ok: 2000.0,
        web_objects_degraded: 0.5,
        video_chunks_degraded: 0.5,
    };
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::DEFAULT
    }
}

/// The verdict for `figures` measured under `params`. Figures of another kind than the
/// params (a bug in the caller) are `failed`.
pub fn judge(params: &Params, figures: &Figures, t: &Thresholds) -> Outcome {
    match (params, figures) {
        (Params::Message(p), Figures::Message(f)) => {
            let delivered = f.delivered_up + f.delivered_down;
            if delivered == 0 {
                return Outcome::Failed;
            }
            let fraction = f.delivered_fraction(p.count);
            let fast = f.latency_p95_ms.is_some_and(|l| l <= t.message_p95_ok_ms);
            if fraction >= t.message_delivered_ok && fast {
                Outcome::Ok
            } else {
                Outcome::Degraded
            }
        }
        (Params::VoiceNote(p), Figures::VoiceNote(f)) => {
            if !(f.uploaded && f.downloaded && f.intact) {
                return Outcome::Failed;
            }
            let total =
                f.upload_ms.unwrap_or(f64::INFINITY) + f.download_ms.unwrap_or(f64::INFINITY);
            let budget =
                t.voice_note_ms_per_100kb_ok * 2.0 * (p.size() as f64 / 100_000.0).max(1.0);
            if total <= budget {
                Outcome::Ok
            } else {
                Outcome::Degraded
            }
        }
        (Params::Web(p), Figures::Web(f)) => {
            if !f.page_ok {
                return Outcome::Failed;
            }
            let want = f64::from(p.objects);
            let got = f64::from(f.objects_ok);
            if p.objects > 0 && got < want * t.web_objects_degraded {
                return Outcome::Failed;
            }
            let bytes = p.page_size.get() + u64::from(p.objects) * p.object_size.get();
            let budget = t.web_ms_per_100kb_ok * (bytes as f64 / 100_000.0).max(1.0);
            match f.complete_ms {
                Some(ms) if f.objects_ok == p.objects && ms <= budget => Outcome::Ok,
                _ => Outcome::Degraded,
            }
        }
        (Params::Video(p), Figures::Video(f)) => {
            let want = f64::from(p.chunks());
            if f.chunks_ok == 0 || f64::from(f.chunks_ok) < want * t.video_chunks_degraded {
                return Outcome::Failed;
            }
            if f.keeps_up && f.chunks_ok == p.chunks() {
                Outcome::Ok
            } else {
                Outcome::Degraded
            }
        }
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    const T: Thresholds = Thresholds::DEFAULT;

    fn msg(up: u32, down: u32, p95: Option<f64>) -> Figures {
        Figures::Message(MessageFigures {
            count: 20,
            sent_up: 20,
            delivered_up: up,
            sent_down: 20,
            delivered_down: down,
            latency_p50_ms: p95.map(|x| x / 2.0),
            latency_p95_ms: p95,
            connect_ms: Some(5.0),
        })
    }

    #[test]
    fn messages() {
        let p = Params::Message(MessageParams::default());
        assert_eq!(judge(&p, &msg(20, 20, Some(3.0)), &T), Outcome::Ok);
        assert_eq!(judge(&p, &msg(20, 20, Some(1500.0)), &T), Outcome::Degraded);
        assert_eq!(judge(&p, &msg(20, 5, Some(3.0)), &T), Outcome::Degraded);
        assert_eq!(judge(&p, &msg(0, 0, None), &T), Outcome::Failed);
    }

    #[test]
    fn voice_notes() {
        let p = Params::VoiceNote(VoiceNoteParams::default());
        let f = |intact, up, down| {
            Figures::VoiceNote(VoiceNoteFigures {
                bytes: 90_000,
                uploaded: true,
                downloaded: true,
                intact,
                upload_ms: Some(up),
                download_ms: Some(down),
                goodput_kbit: None,
            })
        };
        assert_eq!(judge(&p, &f(true, 50.0, 50.0), &T), Outcome::Ok);
        assert_eq!(judge(&p, &f(true, 5000.0, 50.0), &T), Outcome::Degraded);
        assert_eq!(judge(&p, &f(false, 50.0, 50.0), &T), Outcome::Failed);
        assert_eq!(judge(&p, &msg(1, 1, None), &T), Outcome::Failed, "mismatched kind");
    }

    #[test]
    fn web_pages() {
        let p = Params::Web(WebParams::default());
        let f = |page_ok, ok: u32, ms: Option<f64>| {
            Figures::Web(WebFigures {
                page_ok,
                objects: 12,
                objects_ok: ok,
                failed_objects: 12 - ok,
                complete_ms: ms,
                ..Default::default()
            })
        };
        assert_eq!(judge(&p, &f(true, 12, Some(100.0)), &T), Outcome::Ok);
        assert_eq!(judge(&p, &f(true, 12, Some(60_000.0)), &T), Outcome::Degraded);
        assert_eq!(judge(&p, &f(true, 8, None), &T), Outcome::Degraded);
        assert_eq!(judge(&p, &f(true, 2, None), &T), Outcome::Failed);
        assert_eq!(judge(&p, &f(false, 12, None), &T), Outcome::Failed);
    }

    #[test]
    fn video() {
        let p = Params::Video(VideoParams::default());
        let f = |ok: u32, keeps_up| {
            Figures::Video(VideoFigures {
                chunks: 5,
                chunks_ok: ok,
                keeps_up,
                ..Default::default()
            })
        };
        assert_eq!(judge(&p, &f(5, true), &T), Outcome::Ok);
        assert_eq!(judge(&p, &f(5, false), &T), Outcome::Degraded);
        assert_eq!(judge(&p, &f(3, false), &T), Outcome::Degraded);
        assert_eq!(judge(&p, &f(2, false), &T), Outcome::Failed);
        assert_eq!(judge(&p, &f(0, false), &T), Outcome::Failed);
    }
}
