//! A call's audio figures with `--audio`: real speech was sent, and what each side received
//! was scored against what was sent.
//!
//! The metric is named in every result ([`CallAudio::metric`], [`CallAudio::metric_version`]) so
//! a reader never mistakes it for the E-model MOS beside it (`CallResult::mos`, computed from
//! loss, delay and jitter): today it is wideband PESQ, ITU-T P.862.2 MOS-LQO, as computed by
//! the `pesq` Rust crate (see `crates/audio`, `quality` module, for what that crate is and how
//! it was validated).

use serde::{Deserialize, Serialize};

/// The audio of one call: what was sent, how, and how each direction scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallAudio {
    /// The quality metric, e.g. `PESQ wideband (ITU-T P.862.2 MOS-LQO)`.
    pub metric: String,
    /// The implementation that computed it, e.g. `pesq crate 0.2.0`.
    pub metric_version: String,
    /// The clip sent both ways: `bundled speech (espeak-ng en-us)` or the user's WAV path.
    pub clip: String,
    /// The codec and its settings, e.g. `opus 48 kHz mono 20 ms CBR, complexity 5, wideband`.
    pub codec: String,
    /// The codec's bitrate (bit/s).
    pub bitrate_bps: u32,
    /// Caller → callee: what the callee heard. `None` when that peer reported no audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<AudioDirection>,
    /// Callee → caller: what the caller heard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<AudioDirection>,
}

impl CallAudio {
    /// The worse direction's MOS-LQO (the figure shown beside the E-model MOS); `None` when
    /// neither direction was scored.
    pub fn mos_lqo(&self) -> Option<f64> {
        [&self.up, &self.down].into_iter().flatten().filter_map(|d| d.mos_lqo).reduce(f64::min)
    }
}

/// What one side heard, and its score.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AudioDirection {
    /// MOS-LQO of the received audio against the sent audio (mean over the scored windows);
    /// `None` when it could not be scored (see `error`). A window where nothing was heard
    /// (no frame played, or silent audio) counts as 1.0, the bottom of the scale, never as
    /// PESQ's score of silence (see `floor_reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mos_lqo: Option<f64>,
    /// The lowest window's MOS-LQO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_mos_lqo: Option<f64>,
    /// Why `mos_lqo` holds the bottom of the scale without PESQ having scored (all or some of)
    /// it: e.g. `nothing was played (0 of 400 frames: 0 lost, 400 late)`, or how many windows
    /// were silent. `None` when every window was scored by PESQ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_reason: Option<String>,
    /// How many windows (of at most one clip length, at most 12 s) were scored.
    #[serde(default)]
    pub windows: u32,
    /// Seconds of audio received (frame slots played or concealed).
    pub seconds: f64,
    /// Frame slots of the call (20 ms each), and how they were used.
    pub frames: u64,
    pub played: u64,
    pub lost: u64,
    pub late: u64,
    pub undecodable: u64,
    /// Where the received audio was written (`--record`), relative to the record directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// Why the audio could not be scored or written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
