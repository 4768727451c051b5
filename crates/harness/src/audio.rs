//! `--audio` and `--record` as a run carries them to its peers (the audio itself is made,
//! heard and scored in the peer processes, by `callwall-audio`; the harness only tells each
//! peer what to send and where to write, and joins the two sides' figures).

use std::path::{Path, PathBuf};
use std::time::Duration;

use callwall_transport::peer::PeerReport;
use callwall_transport::voice::AudioSpec;
use serde::{Deserialize, Serialize};

use crate::result::audio::CallAudio;
use crate::run::{sanitize, RunArgs};

/// A run's audio options (in [`RunArgs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioRun {
    /// The WAV every call sends (already checked readable by the launcher); `None`: the
    /// bundled speech clip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<PathBuf>,
    /// Write what each side received to `{record}/{scenario}/{call}.{role}-received.wav`, and
    /// the reference to `{call}.sent.wav` (the directory checked writable by the launcher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<PathBuf>,
    /// The clip converted and encoded once by the launcher (see [`AudioSpec::prepared`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared: Option<PathBuf>,
}

/// Extra time a peer with audio gets after its call, to play out, score and write its audio.
pub const AUDIO_GRACE: Duration = Duration::from_secs(20);

/// The directory a run's recordings go to: `{record}/{scenario}` (`{scenario}-repeat{N}` for
/// repeats after the first).
pub fn record_dir(record: &Path, scenario: &str, repeat: u32) -> PathBuf {
    let name = sanitize(scenario);
    if repeat == 0 {
        record.join(name)
    } else {
        record.join(format!("{name}-repeat{}", repeat + 1))
    }
}

/// What a peer of call `call` is told (`None` without `--audio`). Creates the record
/// directory; a failure to create it shows in the call's audio result as a write error.
pub fn peer_audio(args: &RunArgs, scenario: &str, call: &str) -> Option<AudioSpec> {
    let a = args.audio.as_ref()?;
    let record = a.record.as_ref().map(|r| {
        let dir = record_dir(r, scenario, args.repeat);
        let _ = std::fs::create_dir_all(&dir);
        dir.join(sanitize(call))
    });
    Some(AudioSpec { clip: a.clip.clone(), record, prepared: a.prepared.clone() })
}

/// The call's audio result: the caller's (what it heard, `down`) with the callee's `up`.
pub fn join(caller: &PeerReport, callee: &PeerReport) -> Option<CallAudio> {
    let mut out = caller.audio.clone().or_else(|| callee.audio.clone())?;
    out.down = caller.audio.as_ref().and_then(|a| a.down.clone());
    out.up = callee.audio.as_ref().and_then(|a| a.up.clone());
    Some(out)
}
