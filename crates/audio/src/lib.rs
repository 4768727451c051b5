//! Real speech for callwall's voice model.
//!
//! - [`codec`]: Opus at 48 kHz mono in 20 ms frames over the system's libopus, found by
//!   pkg-config (Debian's `libopus-dev`); constant bitrate so a frame fits the voice model's
//!   frame size, and decoder packet-loss concealment (PLC) for every frame that did not arrive.
//! - [`clip`]: 48 kHz mono 16-bit PCM clips: the bundled speech clip (made by espeak-ng at
//!   build time, `build.rs`: the build needs `espeak-ng`, which `make deps` installs; no audio
//!   file is committed), any user WAV (downmixed to mono and resampled to 48 kHz), and WAV
//!   output.
//! - [`media`]: the sender and receiver a call plugs into the voice model
//!   ([`callwall_transport::voice::VoiceMedia`]): each frame carries the next Opus packet of
//!   the clip (looping), the receiver keeps what arrived in time for playout and decodes it
//!   with PLC for the rest.
//! - [`quality`]: an audio quality figure from the sent and the received audio: wideband PESQ
//!   (ITU-T P.862.2 MOS-LQO, 1.0 to 4.64) computed by the `pesq` crate 0.2.0, a clean-room
//!   pure-Rust port of P.862/P.862.2 (see [`quality`] for how it was validated, and what was not);
//!   silence is never scored by PESQ (which rates it at the top): it gets the bottom of the
//!   scale, 1.0, with its reason.
//! - [`session`]: one peer's audio for a whole call (`callwall run --audio`): load and encode
//!   the clip, be the call's [`VoiceMedia`](callwall_transport::voice::VoiceMedia), then play
//!   out, score (windows of one clip length) and record (`--record`) what was heard.
//!
//! Guarantees: no panics on any WAV file or received payload (bad input is an [`AudioError`]
//! naming the file and what format is needed; an undecodable payload is concealed like a lost
//! one and counted). Not done: echo, jitter-buffer adaptation (playout is a fixed deadline
//! after the send time), Opus in-band FEC, stereo.

pub mod clip;
pub mod codec;
pub mod media;
pub mod quality;
pub mod session;

pub use clip::{bundled_speech, Clip};
pub use codec::{OpusDecoder, OpusEncoder, FRAME_SAMPLES, SAMPLE_RATE};
pub use media::{CallAudio, Received, ReceiverStats};
pub use quality::{listen, pesq_wb, AudioQuality, Listening, MOS_LQO_FLOOR};
pub use session::PeerAudio;

use std::path::PathBuf;

/// What went wrong with audio input or the codec.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a readable WAV file ({reason}); give a PCM or float WAV, e.g. `sox in.mp3 -r 48000 -c 1 -b 16 out.wav`")]
    BadWav { path: PathBuf, reason: String },
    #[error("{path} holds no audio samples; give a WAV of speech at least 1 s long")]
    Empty { path: PathBuf },
    #[error("{path} has {channels} channels; give a mono or stereo WAV")]
    Channels { path: PathBuf, channels: u16 },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("resampling from {from} Hz to {to} Hz failed: {reason}")]
    Resample { from: u32, to: u32, reason: String },
    #[error("opus {0}")]
    Opus(String),
    #[error("audio quality: {0}; the clip must hold speech of at least 0.25 s")]
    Quality(String),
}

impl From<opus::Error> for AudioError {
    fn from(e: opus::Error) -> Self {
        AudioError::Opus(e.to_string())
    }
}
