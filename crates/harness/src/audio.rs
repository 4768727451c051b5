//! `--audio` and `--record` as a run carries them to its peers (the audio itself is made,
//! heard and scored in the peer processes, by `callwall-audio`; the harness only tells each
//! peer what to send and where to write, and joins the two sides' figures).

use std::path::{Path, PathBuf};
use std::time::Duration;

use callwall_audio::session::PeerAudio;
use callwall_transport::peer::{run_peer, run_peer_with, PeerReport, PeerSpec};
use callwall_transport::voice::AudioSpec;
use callwall_transport::VoiceTransport;
use serde::{Deserialize, Serialize};

use crate::process::sanitize;
use crate::result::audio::CallAudio;

/// A run's audio options (in [`RunPlan::audio`]).
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

/// What a peer of call `call` of repeat `repeat` is told (`None` without `--audio`). Creates
/// the record directory; a failure to create it shows in the call's audio result as a write
/// error.
pub fn peer_audio(
    audio: Option<&AudioRun>,
    repeat: u32,
    scenario: &str,
    call: &str,
) -> Option<AudioSpec> {
    let a = audio?;
    let record = a.record.as_ref().map(|r| {
        let dir = record_dir(r, scenario, repeat);
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

/// Why `--audio` or `--record` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(transparent)]
    Clip(#[from] callwall_audio::AudioError),
    #[error("{} holds {seconds:.2} s of audio; give a WAV of speech at least 1 s long", wav.display())]
    TooShort { wav: PathBuf, seconds: f64 },
    #[error("--record {}: cannot write there ({source}); give a directory you can write", dir.display())]
    RecordDir { dir: PathBuf, source: std::io::Error },
}

/// `--audio[=WAV]` and `--record DIR`, checked before anything starts: `Ok(None)` without
/// `--audio`; `Err` says what to fix (the WAV must be readable audio of at least 1 s, the record
/// directory creatable and writable).
pub fn resolve(
    audio: &Option<Option<PathBuf>>,
    record: &Option<PathBuf>,
) -> Result<Option<AudioRun>, AudioError> {
    let Some(wav) = audio else { return Ok(None) };
    let clip = if let Some(wav) = wav {
        let c = callwall_audio::Clip::read_wav(wav)?;
        if c.seconds() < 1.0 {
            return Err(AudioError::TooShort { wav: wav.clone(), seconds: c.seconds() });
        }
        Some(absolute(wav))
    } else {
        None
    };
    let record = match record {
        Some(dir) => Some(writable_dir(dir)?),
        None => None,
    };
    Ok(Some(AudioRun { clip, record, prepared: None }))
}

/// Converts and encodes the clip once for every peer of the run(s), into `out/.audio/` (the
/// output directory the launcher made), so a hundred peers starting at once do not each
/// resample and encode it (about 0.1 s of CPU each).
pub fn prepare(audio: &mut Option<AudioRun>, out: &Path) -> Result<(), AudioError> {
    let Some(a) = audio else { return Ok(()) };
    let spec = callwall_transport::voice::AudioSpec { clip: a.clip.clone(), ..Default::default() };
    let frame_bytes = callwall_transport::voice::VoiceModel::default().frame_bytes;
    let dir = out.join(".audio");
    let prefix = callwall_audio::session::prepare(&spec, frame_bytes, &dir)?;
    a.prepared = Some(match prefix.file_name() {
        Some(name) => absolute(&dir).join(name),
        None => prefix,
    });
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// Creates `dir` if needed and checks a file can be written in it; returns it absolute.
fn writable_dir(dir: &Path) -> Result<PathBuf, AudioError> {
    let bad = |source| AudioError::RecordDir { dir: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(bad)?;
    let probe = dir.join(format!(".callwall-record-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(bad)?;
    let _ = std::fs::remove_file(&probe);
    Ok(absolute(dir))
}

/// The peer process's call: with `spec.audio`, real speech out, what came in played out,
/// scored and recorded after the call (its CPU time is taken before that, so the call's CPU
/// figure stays the call's).
pub fn run_peer_audio(
    rt: &tokio::runtime::Runtime,
    spec: &PeerSpec,
    transports: &[&dyn VoiceTransport],
    cpu_ms: impl Fn() -> f64,
) -> PeerReport {
    // The machine's stalls over the peer's whole life (setup included), beside its figures.
    let watch = crate::stall::StallWatch::start();
    let ended = |r: &mut PeerReport| {
        r.cpu_ms = Some(cpu_ms());
        r.stalls = watch.snapshot();
    };
    let Some(a) = &spec.audio else {
        let mut r = rt.block_on(run_peer(spec, transports));
        ended(&mut r);
        return r;
    };
    match PeerAudio::new(a, spec.voice.frame_bytes) {
        Ok(mut audio) => {
            let mut r = rt.block_on(run_peer_with(spec, transports, &mut audio));
            ended(&mut r);
            // The report without audio first: if scoring does not finish before the harness's
            // deadline, the call is still judged (the harness reads the last report line).
            if let Ok(line) = serde_json::to_string(&r) {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            r.audio = Some(audio.finish(&r));
            r
        }
        Err(e) => {
            let mut r = rt.block_on(run_peer(spec, transports));
            ended(&mut r);
            r.error = Some(format!("audio: {e}"));
            r
        }
    }
}
