//! An audio quality figure from the sent and the received audio.
//!
//! The figure is wideband PESQ: ITU-T P.862.2 MOS-LQO (about 1.0 for unintelligible to 4.64
//! for transparent), computed by the `pesq` crate 0.2.0 (crates.io; a pure-Rust, clean-room
//! implementation written from a specification of P.862/P.862.2, MIT/Apache-2.0). It is the
//! published metric, not a simplified variant, but how far it matches the ITU reference is its
//! author's claim, not ours: its README and CONVERGENCE.md report that the **narrowband** mode
//! passes the P.862 Annex A conformance test (40 of 40 pairs, raw scores equal to 3 decimals),
//! and that the **wideband** mode we use was compared with the ITU C reference binary (2.0,
//! wideband mode) on 64 proxy pairs (LibriSpeech with noise, max MOS-LQO difference 0.005),
//! not on the official P.862 Supplement 23 test 4 vectors, which are not redistributable.
//! callwall has not re-run either check (the ITU data is not available here); its own tests only
//! check that the figure behaves (clean Opus high, 10 % loss far lower, silence lowest). PESQ
//! may be subject to patents; see the crate's README. Both signals are resampled
//! from 48 kHz to the 16 kHz that P.862.2 takes; PESQ aligns them in time itself, so playout
//! delay does not count against the call. Beside it, [`AudioQuality`] gives the share of frames
//! played and a segmental SNR is not reported: Opus is a perceptual codec, so a waveform
//! difference says little about what a listener hears.
//!
//! Silence: P.862.2 is not defined for a degraded signal with no speech in it (the ITU reference
//! code refuses to score it), and the `pesq` crate scores all-zero audio 4.64, the top of the
//! scale. So [`listen`] never hands PESQ a silent recording: received audio whose RMS level is
//! below [`SILENT_BELOW`] of the sent audio's (-40 dB) was not heard, and gets
//! [`MOS_LQO_FLOOR`], the bottom of the scale, with the reason [`NOTHING_HEARD`]. Speech that
//! stops part-way is scored by PESQ (it falls with the share of speech missing).

use crate::clip::resample_i16;

/// The metric's name, as results and reports show it.
pub const METRIC: &str = "PESQ wideband (ITU-T P.862.2 MOS-LQO)";
/// The implementation computing it: keep in step with `pesq` in Cargo.toml (Cargo.lock pins
/// the exact version).
pub const METRIC_VERSION: &str = "pesq crate 0.2.0 (clean-room Rust port of P.862/P.862.2)";
use crate::{AudioError, SAMPLE_RATE};

/// The bottom of the P.862.2 MOS-LQO scale: what a direction where nothing was heard scores.
pub const MOS_LQO_FLOOR: f64 = 1.0;
/// Received audio below this share of the sent audio's RMS level (-40 dB) is silence.
pub const SILENT_BELOW: f64 = 0.01;
/// The reason given with [`MOS_LQO_FLOOR`] for silence.
pub const NOTHING_HEARD: &str = "nothing was heard (the received audio is silent)";

/// What a listener heard in a stretch of audio: a PESQ score, or nothing at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Listening {
    /// P.862.2 MOS-LQO.
    Scored(f64),
    /// The received audio is silent (see the module docs): [`MOS_LQO_FLOOR`].
    Silent,
}

impl Listening {
    /// The MOS-LQO: PESQ's, or [`MOS_LQO_FLOOR`] for silence.
    pub fn mos_lqo(self) -> f64 {
        match self {
            Listening::Scored(m) => m,
            Listening::Silent => MOS_LQO_FLOOR,
        }
    }
}

fn rms(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Whether `received` is silent against `sent`: its RMS level below [`SILENT_BELOW`] of the
/// sent audio's. Never when `sent` is itself silent (a pause in a user's clip: nothing was
/// said, so nothing was missed; PESQ declines to score such a window).
pub fn is_silent(sent: &[i16], received: &[i16]) -> bool {
    let (s, r) = (rms(sent), rms(received));
    s > 0.0 && r < SILENT_BELOW * s
}

/// What a listener heard of `sent` in `received` (both 48 kHz mono, at least 0.25 s): silence,
/// or wideband PESQ's score. Never scores silence at the top of the scale.
pub fn listen(sent: &[i16], received: &[i16]) -> Result<Listening, AudioError> {
    if is_silent(sent, received) {
        return Ok(Listening::Silent);
    }
    Ok(Listening::Scored(f64::from(pesq_wb(sent, received)?)))
}

/// P.862.2 MOS-LQO of `received` against `sent`, both 48 kHz mono (at least 0.25 s), as the
/// `pesq` crate computes it: it scores silence 4.64, so callers go through [`listen`].
pub fn pesq_wb(sent: &[i16], received: &[i16]) -> Result<f32, AudioError> {
    let r = resample_i16(sent, SAMPLE_RATE, 16_000)?;
    let d = resample_i16(received, SAMPLE_RATE, 16_000)?;
    pesq::pesq_wb(&r, &d).map_err(|e| AudioError::Quality(e.to_string()))
}

/// The audio figures of one direction of a call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioQuality {
    /// Wideband PESQ, P.862.2 MOS-LQO; [`MOS_LQO_FLOOR`] when nothing was heard.
    pub pesq_mos_lqo: f32,
    /// Nothing was heard: no frame was played, or the audio is silent; the score is the floor.
    pub nothing_heard: bool,
    /// Frames played out of frames sent (0..=1).
    pub played_fraction: f64,
}

impl AudioQuality {
    pub fn of(received: &crate::Received) -> Result<AudioQuality, AudioError> {
        let s = received.stats;
        let heard = if s.played == 0 {
            Listening::Silent
        } else {
            listen(&received.sent.samples, &received.audio.samples)?
        };
        Ok(AudioQuality {
            pesq_mos_lqo: heard.mos_lqo() as f32,
            nothing_heard: heard == Listening::Silent,
            played_fraction: if s.frames == 0 { 0.0 } else { s.played as f64 / s.frames as f64 },
        })
    }
}
