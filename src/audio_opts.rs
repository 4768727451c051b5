//! `--audio[=WAV]` and `--record DIR` (run and demo), and the peer's side of them.
//!
//! Checked before anything starts (exit 2, nothing started): the WAV must be readable audio of
//! at least 1 s (any rate, mono or stereo: the peers convert it to 48 kHz mono), and the record
//! directory must be creatable and writable. Nothing is recorded unless `--record` is given.

use std::path::{Path, PathBuf};

use callwall_audio::session::PeerAudio;
use callwall_harness::audio::AudioRun;
use callwall_transport::peer::{run_peer, run_peer_with, PeerReport, PeerSpec};
use callwall_transport::VoiceTransport;
use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct AudioOpts {
    /// Send real speech in every built-in call: Opus in 20 ms frames, decoded with packet-loss
    /// concealment at the receiver, and scored with wideband PESQ (ITU-T P.862.2 MOS-LQO)
    /// beside the E-model MOS. `--audio` sends the bundled clip (espeak-ng); `--audio=FILE.wav`
    /// sends a WAV of any rate, mono or stereo (converted to 48 kHz mono).
    #[arg(long, value_name = "WAV", num_args = 0..=1, require_equals = true)]
    pub audio: Option<Option<PathBuf>>,
    /// With --audio: write what each side of every call received as WAV,
    /// DIR/<scenario>/<call>.caller-received.wav and .callee-received.wav, beside the reference
    /// sent, <call>.sent.wav (48 kHz mono).
    #[arg(long, value_name = "DIR", requires = "audio")]
    pub record: Option<PathBuf>,
}

impl AudioOpts {
    /// The run's audio options, checked: `Ok(None)` without `--audio`; `Err` says what to fix.
    pub fn resolve(&self) -> Result<Option<AudioRun>, String> {
        let Some(wav) = &self.audio else { return Ok(None) };
        let clip = if let Some(wav) = wav {
            let c = callwall_audio::Clip::read_wav(wav).map_err(|e| e.to_string())?;
            if c.seconds() < 1.0 {
                return Err(format!(
                    "{} holds {:.2} s of audio; give a WAV of speech at least 1 s long",
                    wav.display(),
                    c.seconds()
                ));
            }
            Some(absolute(wav))
        } else {
            None
        };
        let record = match &self.record {
            Some(dir) => Some(writable_dir(dir)?),
            None => None,
        };
        Ok(Some(AudioRun { clip, record, prepared: None }))
    }
}

/// Converts and encodes the clip once for every peer of the run(s), into `out/.audio/` (the
/// output directory the launcher made), so a hundred peers starting at once do not each
/// resample and encode it (about 0.1 s of CPU each).
pub fn prepare(audio: &mut Option<AudioRun>, out: &Path) -> Result<(), String> {
    let Some(a) = audio else { return Ok(()) };
    let spec = callwall_transport::voice::AudioSpec { clip: a.clip.clone(), ..Default::default() };
    let frame_bytes = callwall_transport::voice::VoiceModel::default().frame_bytes;
    let dir = out.join(".audio");
    let prefix =
        callwall_audio::session::prepare(&spec, frame_bytes, &dir).map_err(|e| e.to_string())?;
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
fn writable_dir(dir: &Path) -> Result<PathBuf, String> {
    let bad = |e: std::io::Error| {
        format!(
            "--record {}: cannot write there ({e}); give a directory you can write",
            dir.display()
        )
    };
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
    let Some(a) = &spec.audio else {
        let mut r = rt.block_on(run_peer(spec, transports));
        r.cpu_ms = Some(cpu_ms());
        return r;
    };
    match PeerAudio::new(a, spec.voice.frame_bytes) {
        Ok(mut audio) => {
            let mut r = rt.block_on(run_peer_with(spec, transports, &mut audio));
            r.cpu_ms = Some(cpu_ms());
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
            r.cpu_ms = Some(cpu_ms());
            r.error = Some(format!("audio: {e}"));
            r
        }
    }
}
