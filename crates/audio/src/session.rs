//! One peer's audio for a whole call, as `callwall run --audio` runs it in a peer process.
//!
//! [`prepare`] converts (48 kHz mono) and encodes the clip once for a whole run; [`PeerAudio::new`]
//! reads what it wrote (or, without it, loads and encodes the clip an [`AudioSpec`] names
//! itself: about 0.1 s of CPU, which a hundred peers starting at once cannot afford); the peer runs its call with it as the
//! [`VoiceMedia`]; after the call [`PeerAudio::finish`] plays out what arrived (PLC for the
//! rest), scores it against what was sent, writes the recordings, and returns the direction this
//! peer heard as a [`CallAudio`] result (`down` for the caller, `up` for the callee).
//!
//! Scoring: the received audio is cut into windows of one clip length (at most
//! [`MAX_WINDOW_S`] s, at least 1 s, as PESQ is specified for 8-12 s of speech) starting at frame
//! 0, so with the bundled clip every window is the whole sentence set; each full window is
//! scored with wideband PESQ against the same slots of the looped clip, and the result is their
//! mean and minimum. At most [`MAX_WINDOWS`] windows, evenly spread over a longer call, are
//! scored (PESQ costs about a tenth of a second of CPU per second of speech). A direction where
//! no frame was played scores 1.0, the bottom of the scale, with the reason "nothing was
//! played" and its frame counts; a silent window scores 1.0 too (see
//! [`crate::quality::listen`]): silence never reaches PESQ, which would rate it at the top.
//!
//! Frame slots: the receiver does not know how many frames the other side sent; it plays slots
//! `0..max(frames it sent itself, highest frame number received + 1)`. Both peers send for the
//! same duration from their own connect time, so the count is the sender's to within the few
//! frames by which the two connect times differ.

use std::path::{Path, PathBuf};

use callwall_results::audio::{AudioDirection, CallAudio as CallAudioResult};
use callwall_transport::peer::PeerReport;
use callwall_transport::voice::{Arrival, AudioSpec, VoiceMedia, PAYLOAD_OFFSET};
use callwall_transport::Role;

use crate::clip::{bundled_speech, BUNDLED_NAME};
use crate::codec::{OpusEncoder, COMPLEXITY, FRAME_SAMPLES};
use crate::media::{CallAudio, DEFAULT_PLAYOUT_DELAY};
use crate::quality::{listen, Listening, METRIC, METRIC_VERSION, MOS_LQO_FLOOR, NOTHING_HEARD};
use crate::{AudioError, Clip};

/// Longest scoring window (s).
pub const MAX_WINDOW_S: usize = 12;
/// Most windows scored per direction.
pub const MAX_WINDOWS: usize = 3;
const FRAMES_PER_S: usize = 50;

/// Loads the clip `spec` names: the user's WAV, or the bundled speech. Errors name the file.
pub fn load_clip(spec: &AudioSpec) -> Result<Clip, AudioError> {
    match &spec.clip {
        Some(p) => Clip::read_wav(p),
        None => Ok(bundled_speech()),
    }
}

/// What the results call the clip.
pub fn clip_name(spec: &AudioSpec) -> String {
    match &spec.clip {
        Some(p) => p.display().to_string(),
        None => BUNDLED_NAME.to_string(),
    }
}

/// The payload bytes an Opus packet may fill in a voice frame of `frame_bytes` bytes.
pub fn payload_bytes(frame_bytes: usize) -> usize {
    frame_bytes.saturating_sub(PAYLOAD_OFFSET).max(20)
}

/// One peer's audio: see the module docs.
pub struct PeerAudio {
    spec: AudioSpec,
    media: CallAudio,
    bitrate_bps: u32,
    clip_frames: usize,
}

/// `{prefix}.wav` and `{prefix}.opus` for voice frames of `frame_bytes` bytes.
fn prepared_prefix(dir: &Path, frame_bytes: usize) -> PathBuf {
    dir.join(format!("clip-{frame_bytes}"))
}

/// Converts and encodes the clip `spec` names once for a whole run, into `dir` (48 kHz WAV and
/// the Opus packets, each a 2-byte big-endian length and the packet), so peers only read them.
/// Returns the prefix for [`AudioSpec::prepared`].
pub fn prepare(spec: &AudioSpec, frame_bytes: usize, dir: &Path) -> Result<PathBuf, AudioError> {
    let clip = load_clip(spec)?;
    let media = CallAudio::new(clip, frame_bytes)?;
    let prefix = prepared_prefix(dir, frame_bytes);
    let write_err = |path: &Path, e: std::io::Error| AudioError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    media.clip().write_wav(&with_suffix(&prefix, "wav"))?;
    let mut bytes = Vec::new();
    for p in media.packets() {
        bytes.extend_from_slice(&(p.len() as u16).to_be_bytes());
        bytes.extend_from_slice(p);
    }
    let opus = with_suffix(&prefix, "opus");
    std::fs::write(&opus, bytes).map_err(|e| write_err(&opus, e))?;
    Ok(prefix)
}

fn read_prepared(prefix: &Path) -> Result<(Clip, Vec<Vec<u8>>), AudioError> {
    let clip = Clip::read_wav(&with_suffix(prefix, "wav"))?;
    let path = with_suffix(prefix, "opus");
    let bytes =
        std::fs::read(&path).map_err(|source| AudioError::Io { path: path.clone(), source })?;
    let mut packets = Vec::new();
    let mut rest = bytes.as_slice();
    while let [a, b, tail @ ..] = rest {
        let n = usize::from(u16::from_be_bytes([*a, *b]));
        let Some(p) = tail.get(..n) else {
            return Err(AudioError::BadWav { path, reason: "truncated packet file".into() });
        };
        packets.push(p.to_vec());
        rest = &tail[n..];
    }
    Ok((clip, packets))
}

impl PeerAudio {
    /// Loads and encodes the clip for voice frames of `frame_bytes` bytes (or reads it, when
    /// the spec names a clip [`prepare`]d for that frame size).
    pub fn new(spec: &AudioSpec, frame_bytes: usize) -> Result<PeerAudio, AudioError> {
        let ready = spec
            .prepared
            .as_ref()
            .filter(|p| p.file_name() == prepared_prefix(Path::new(""), frame_bytes).file_name());
        let media = match ready {
            Some(prefix) => {
                let (clip, packets) = read_prepared(prefix)?;
                CallAudio::from_packets(clip, packets)?
            }
            None => CallAudio::new(load_clip(spec)?, frame_bytes)?,
        };
        let clip_frames = media.clip().samples.len().div_ceil(FRAME_SAMPLES);
        Ok(PeerAudio {
            spec: spec.clone(),
            media,
            bitrate_bps: OpusEncoder::bitrate_for(payload_bytes(frame_bytes)),
            clip_frames,
        })
    }

    /// The result's description of what was sent, with no direction scored yet.
    pub fn describe(&self) -> CallAudioResult {
        CallAudioResult {
            metric: METRIC.to_string(),
            metric_version: METRIC_VERSION.to_string(),
            clip: clip_name(&self.spec),
            codec: format!(
                "opus ({}), 48 kHz mono, 20 ms frames, CBR, complexity {COMPLEXITY}, wideband, \
                 decoder PLC, {} ms playout deadline",
                opus::version(),
                DEFAULT_PLAYOUT_DELAY.as_millis()
            ),
            bitrate_bps: self.bitrate_bps,
            up: None,
            down: None,
        }
    }

    /// Plays out, scores and records what this peer heard in the call `report` describes.
    /// Never fails: what went wrong is in the direction's `error`.
    pub fn finish(&self, report: &PeerReport) -> CallAudioResult {
        let heard = self.heard(report);
        let mut out = self.describe();
        match report.role {
            Role::Caller => out.down = Some(heard),
            Role::Callee => out.up = Some(heard),
        }
        out
    }

    fn heard(&self, report: &PeerReport) -> AudioDirection {
        let last_seq = report.arrivals.iter().map(|a| u64::from(a.seq) + 1).max().unwrap_or(0);
        let frames = report.frames_sent.max(last_seq);
        let mut d = AudioDirection::default();
        if frames == 0 {
            d.error = Some("no media ran: nothing to hear".into());
            return d;
        }
        let received = match self.media.finish(frames, DEFAULT_PLAYOUT_DELAY) {
            Ok(r) => r,
            Err(e) => {
                d.error = Some(e.to_string());
                return d;
            }
        };
        let s = received.stats;
        if s.played == 0 {
            d.mos_lqo = Some(MOS_LQO_FLOOR);
            d.min_mos_lqo = Some(MOS_LQO_FLOOR);
            d.floor_reason = Some(format!(
                "nothing was played ({} of {} frames: {} lost, {} late, {} undecodable)",
                s.played, s.frames, s.lost, s.late, s.undecodable
            ));
        }
        d.frames = s.frames;
        d.played = s.played;
        d.lost = s.lost;
        d.late = s.late;
        d.undecodable = s.undecodable;
        d.seconds = received.audio.seconds();
        let mut errors = Vec::new();
        match score(&received.sent.samples, &received.audio.samples, self.clip_frames) {
            _ if s.played == 0 => {}
            Ok(w) if !w.is_empty() => {
                d.windows = w.len() as u32;
                let m: Vec<f64> = w.iter().map(|l| l.mos_lqo()).collect();
                d.mos_lqo = Some(m.iter().sum::<f64>() / m.len() as f64);
                d.min_mos_lqo = m.iter().copied().reduce(f64::min);
                let silent = w.iter().filter(|l| **l == Listening::Silent).count();
                if silent > 0 {
                    d.floor_reason = Some(format!(
                        "{silent} of {} windows: {NOTHING_HEARD}, scored {MOS_LQO_FLOOR:.1}",
                        w.len()
                    ));
                }
            }
            Ok(_) => errors.push("the call was shorter than 1 s of audio: not scored".to_string()),
            Err(e) => errors.push(e.to_string()),
        }
        if let Some(prefix) = &self.spec.record {
            let role = role_name(report.role);
            let path = with_suffix(prefix, &format!("{role}-received.wav"));
            match received.audio.write_wav(&path) {
                Ok(()) => d.recording = path.file_name().map(|n| n.to_string_lossy().into_owned()),
                Err(e) => errors.push(e.to_string()),
            }
            if report.role == Role::Caller {
                if let Err(e) = received.sent.write_wav(&with_suffix(prefix, "sent.wav")) {
                    errors.push(e.to_string());
                }
            }
        }
        if !errors.is_empty() {
            d.error = Some(errors.join("; "));
        }
        d
    }
}

/// `{prefix}.{suffix}`.
pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Caller => "caller",
        Role::Callee => "callee",
    }
}

/// What was heard in each scored window (see the module docs).
pub fn score(
    sent: &[i16],
    received: &[i16],
    clip_frames: usize,
) -> Result<Vec<Listening>, AudioError> {
    let win = clip_frames.clamp(FRAMES_PER_S, MAX_WINDOW_S * FRAMES_PER_S) * FRAME_SAMPLES;
    let n = sent.len().min(received.len());
    let count = n / win;
    let picks: Vec<usize> = if count <= MAX_WINDOWS {
        (0..count).collect()
    } else {
        (0..MAX_WINDOWS).map(|i| i * count / MAX_WINDOWS).collect()
    };
    let mut ranges: Vec<std::ops::Range<usize>> =
        picks.into_iter().map(|k| k * win..(k + 1) * win).collect();
    if ranges.is_empty() && n >= FRAMES_PER_S * FRAME_SAMPLES {
        ranges.push(0..n);
    }
    // A window PESQ cannot score (no speech in its reference: a user clip's pause) is left
    // out; the error only when no window scored.
    let mut out = Vec::new();
    let mut first_error = None;
    for r in ranges {
        match listen(&sent[r.clone()], &received[r]) {
            Ok(m) => out.push(m),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    match first_error {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

impl VoiceMedia for PeerAudio {
    fn payload(&mut self, seq: u32, out: &mut Vec<u8>) {
        self.media.payload(seq, out)
    }
    fn received(&mut self, arrival: &Arrival, payload: &[u8]) {
        self.media.received(arrival, payload)
    }
    fn restart(&mut self) {
        self.media.restart()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_clip_sends_the_same_packets_as_one_encoded_in_the_peer() {
        let dir = crate::clip::tests::TestDir::new("prepare");
        let spec = AudioSpec::default();
        let prefix = prepare(&spec, 80, &dir.0).unwrap();
        let fresh = PeerAudio::new(&spec, 80).unwrap();
        let read =
            PeerAudio::new(&AudioSpec { prepared: Some(prefix.clone()), ..spec.clone() }, 80)
                .unwrap();
        assert_eq!(read.media.packets(), fresh.media.packets());
        assert_eq!(read.media.clip(), fresh.media.clip());
        assert_eq!(read.clip_frames, fresh.clip_frames);
        // A clip prepared for another frame size is not used: the peer encodes its own.
        let other = PeerAudio::new(&AudioSpec { prepared: Some(prefix), ..spec }, 120).unwrap();
        assert!(other.media.packets()[0].len() > fresh.media.packets()[0].len());
    }

    #[test]
    fn a_direction_where_nothing_was_played_scores_the_floor_with_its_reason() {
        let audio = PeerAudio::new(&AudioSpec::default(), 80).unwrap();
        // The callee heard nothing of 500 frames: 300 never came, 200 came far too late.
        let mut report = PeerReport::new(Role::Callee, "noise");
        report.frames_sent = 500;
        let mut a = audio;
        let t = 1_000_000_000u64;
        a.received(&Arrival { seq: 0, sent_unix_ns: t, recv_unix_ns: t + 1_000_000 }, &[]);
        let d = a.finish(&report).up.unwrap();
        assert_eq!(d.played, 0);
        assert_eq!(d.mos_lqo, Some(1.0));
        assert_eq!(d.min_mos_lqo, Some(1.0));
        let why = d.floor_reason.unwrap();
        assert!(why.starts_with("nothing was played (0 of 500 frames"), "{why}");
        assert_eq!(d.error, None);
    }

    #[test]
    fn windows_are_one_clip_long() {
        let clip = bundled_speech();
        let frames = clip.samples.len().div_ceil(FRAME_SAMPLES);
        // 2.5 clip lengths: two full windows; identical audio scores high.
        let sent = clip.looped(frames * FRAME_SAMPLES * 5 / 2);
        let w = score(&sent, &sent, frames).unwrap();
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|m| m.mos_lqo() > 4.0), "{w:?}");
        // Shorter than a clip: scored whole; shorter than 1 s: not at all.
        assert_eq!(score(&sent[..48_000 * 3], &sent[..48_000 * 3], frames).unwrap().len(), 1);
        assert!(score(&sent[..24_000], &sent[..24_000], frames).unwrap().is_empty());
    }
}
