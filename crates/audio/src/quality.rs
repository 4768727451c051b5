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

use crate::clip::resample_i16;

/// The metric's name, as results and reports show it.
pub const METRIC: &str = "PESQ wideband (ITU-T P.862.2 MOS-LQO)";
/// The implementation computing it: keep in step with `pesq` in Cargo.toml (Cargo.lock pins
/// the exact version).
pub const METRIC_VERSION: &str = "pesq crate 0.2.0 (clean-room Rust port of P.862/P.862.2)";
use crate::{AudioError, SAMPLE_RATE};

/// P.862.2 MOS-LQO of `received` against `sent`, both 48 kHz mono (at least 0.25 s).
pub fn pesq_wb(sent: &[i16], received: &[i16]) -> Result<f32, AudioError> {
    let r = resample_i16(sent, SAMPLE_RATE, 16_000)?;
    let d = resample_i16(received, SAMPLE_RATE, 16_000)?;
    pesq::pesq_wb(&r, &d).map_err(|e| AudioError::Quality(e.to_string()))
}

/// The audio figures of one direction of a call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioQuality {
    /// Wideband PESQ, P.862.2 MOS-LQO.
    pub pesq_mos_lqo: f32,
    /// Frames played out of frames sent (0..=1).
    pub played_fraction: f64,
}

impl AudioQuality {
    pub fn of(received: &crate::Received) -> Result<AudioQuality, AudioError> {
        let s = received.stats;
        Ok(AudioQuality {
            pesq_mos_lqo: pesq_wb(&received.sent.samples, &received.audio.samples)?,
            played_fraction: if s.frames == 0 { 0.0 } else { s.played as f64 / s.frames as f64 },
        })
    }
}
