//! 48 kHz mono 16-bit PCM clips: the bundled speech, user WAVs, WAV output, resampling.

use std::path::Path;

use rubato::{FftFixedIn, Resampler};

use crate::{AudioError, SAMPLE_RATE};

/// The bundled clip: espeak-ng speaking a few sentences, made at build time by `build.rs`
/// (22.05 kHz mono) and resampled to 48 kHz on load.
const SPEECH_WAV: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/speech.wav"));

/// What [`bundled_speech`] is, for results and reports.
pub const BUNDLED_NAME: &str = "bundled speech (espeak-ng en-us)";

/// Mono 16-bit PCM at [`SAMPLE_RATE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    pub samples: Vec<i16>,
}

impl Clip {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }

    /// `n` samples of the clip played in a loop from its start.
    pub fn looped(&self, n: usize) -> Vec<i16> {
        if self.samples.is_empty() {
            return vec![0; n];
        }
        self.samples.iter().copied().cycle().take(n).collect()
    }

    /// Reads a WAV file: 8/16/24/32-bit integer or 32-bit float PCM, mono or stereo (averaged),
    /// any sample rate (resampled to 48 kHz).
    pub fn read_wav(path: &Path) -> Result<Clip, AudioError> {
        let file = std::fs::File::open(path)
            .map_err(|source| AudioError::Io { path: path.to_path_buf(), source })?;
        Self::from_wav_reader(std::io::BufReader::new(file), path)
    }

    /// Parses WAV bytes; `path` only names the source in errors.
    pub fn from_wav_bytes(bytes: &[u8], path: &Path) -> Result<Clip, AudioError> {
        Self::from_wav_reader(std::io::Cursor::new(bytes), path)
    }

    fn from_wav_reader<R: std::io::Read>(r: R, path: &Path) -> Result<Clip, AudioError> {
        let bad = |e: hound::Error| AudioError::BadWav {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let reader = hound::WavReader::new(r).map_err(bad)?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.channels > 2 {
            return Err(AudioError::Channels { path: path.to_path_buf(), channels: spec.channels });
        }
        let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) => {
                reader.into_samples::<f32>().collect::<Result<_, _>>().map_err(bad)?
            }
            (hound::SampleFormat::Int, bits @ 1..=32) => {
                let scale = 1.0 / (1u64 << (bits - 1)) as f32;
                reader
                    .into_samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()
                    .map_err(bad)?
            }
            (f, b) => {
                return Err(AudioError::BadWav {
                    path: path.to_path_buf(),
                    reason: format!("unsupported sample format {f:?} with {b} bits"),
                })
            }
        };
        let ch = usize::from(spec.channels);
        let mono: Vec<f32> =
            interleaved.chunks_exact(ch).map(|f| f.iter().sum::<f32>() / ch as f32).collect();
        if mono.is_empty() {
            return Err(AudioError::Empty { path: path.to_path_buf() });
        }
        let mono = resample(&mono, spec.sample_rate, SAMPLE_RATE)?;
        Ok(Clip { samples: mono.iter().map(|&s| to_i16(s)).collect() })
    }

    /// Writes the clip as a 48 kHz mono 16-bit WAV.
    pub fn write_wav(&self, path: &Path) -> Result<(), AudioError> {
        write_wav(path, &self.samples, SAMPLE_RATE)
    }
}

/// Writes mono 16-bit PCM at `rate` Hz to `path`.
pub fn write_wav(path: &Path, samples: &[i16], rate: u32) -> Result<(), AudioError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let err =
        |e: hound::Error| AudioError::Write { path: path.to_path_buf(), reason: e.to_string() };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in samples {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

/// The bundled speech clip at 48 kHz.
pub fn bundled_speech() -> Clip {
    // The bytes are ours and checked by a unit test; a failure here is a build defect.
    Clip::from_wav_bytes(SPEECH_WAV, Path::new("speech.wav (bundled, made by espeak-ng)"))
        .expect("the bundled clip is a valid WAV")
}

fn to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Resamples mono `input` from `from` Hz to `to` Hz (FFT resampler, rubato), keeping its
/// timing: the output has `ceil(len * to / from)` samples and the resampler's delay removed.
pub fn resample(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to {
        return Ok(input.to_vec());
    }
    let err = |reason: String| AudioError::Resample { from, to, reason };
    const CHUNK: usize = 1024;
    let mut r = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1)
        .map_err(|e| err(e.to_string()))?;
    let want = (input.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
    let delay = r.output_delay();
    let mut out: Vec<f32> = Vec::with_capacity(want + delay + CHUNK * 2);
    let mut pos = 0;
    while input.len() - pos >= r.input_frames_next() {
        let n = r.input_frames_next();
        let o = r.process(&[&input[pos..pos + n]], None).map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&o[0]);
        pos += n;
    }
    if pos < input.len() {
        let o = r.process_partial(Some(&[&input[pos..]]), None).map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&o[0]);
    }
    while out.len() < want + delay {
        let o = r.process_partial::<&[f32]>(None, None).map_err(|e| err(e.to_string()))?;
        if o[0].is_empty() {
            break;
        }
        out.extend_from_slice(&o[0]);
    }
    let end = (delay + want).min(out.len());
    let mut v = out[delay.min(end)..end].to_vec();
    v.resize(want, 0.0);
    Ok(v)
}

/// Resamples 16-bit mono PCM.
pub fn resample_i16(input: &[i16], from: u32, to: u32) -> Result<Vec<i16>, AudioError> {
    let f: Vec<f32> = input.iter().map(|&s| f32::from(s) / 32768.0).collect();
    Ok(resample(&f, from, to)?.into_iter().map(to_i16).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn bundled_clip_is_speech_at_48k() {
        let c = bundled_speech();
        assert!(c.seconds() > 5.0 && c.seconds() < 15.0, "{}", c.seconds());
        let rms = (c.samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
            / c.samples.len() as f64)
            .sqrt();
        assert!(rms > 500.0, "clip is near silent: rms {rms}");
    }

    #[test]
    fn resampling_keeps_length_and_a_tone() {
        // 1 s of 440 Hz at 16 kHz becomes 48 000 samples of 440 Hz.
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 0.5)
            .collect();
        let up = resample(&tone, 16_000, 48_000).unwrap();
        assert_eq!(up.len(), 48_000);
        // Compare with the ideal 48 kHz tone away from the edges.
        let err: f32 = (4_800..43_200)
            .map(|i| {
                (up[i] - (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.5).abs()
            })
            .fold(0.0, f32::max);
        assert!(err < 0.02, "max error {err}");
        assert_eq!(resample(&tone, 44_100, 48_000).unwrap().len(), 17_415);
    }

    #[test]
    fn stereo_float_44k_is_downmixed_and_resampled() {
        let dir = TestDir::new("stereo");
        let p = dir.0.join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..44_100 {
            let s = (i as f32 * 300.0 * std::f32::consts::TAU / 44_100.0).sin() * 0.25;
            w.write_sample(s).unwrap();
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let c = Clip::read_wav(&p).unwrap();
        assert_eq!(c.samples.len(), 48_000);
        let peak = c.samples[4_800..43_200].iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((7_800..=8_600).contains(&peak), "{peak}");
        // Round trip through our own writer.
        let out = dir.0.join("out.wav");
        c.write_wav(&out).unwrap();
        assert_eq!(Clip::read_wav(&out).unwrap(), c);
    }

    #[test]
    fn bad_input_gives_clear_errors() {
        let dir = TestDir::new("bad");
        let missing = dir.0.join("missing.wav");
        let e = Clip::read_wav(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.wav") && e.starts_with("cannot read"), "{e}");

        let junk = dir.0.join("junk.wav");
        std::fs::write(&junk, b"this is not a wav file at all").unwrap();
        let e = Clip::read_wav(&junk).unwrap_err().to_string();
        assert!(
            e.contains("junk.wav") && e.contains("not a readable WAV") && e.contains("sox"),
            "{e}"
        );

        let empty = dir.0.join("empty.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        hound::WavWriter::create(&empty, spec).unwrap().finalize().unwrap();
        let e = Clip::read_wav(&empty).unwrap_err().to_string();
        assert!(e.contains("empty.wav") && e.contains("no audio"), "{e}");

        let quad = dir.0.join("quad.wav");
        let spec = hound::WavSpec { channels: 4, ..spec };
        let mut w = hound::WavWriter::create(&quad, spec).unwrap();
        for _ in 0..400 {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        let e = Clip::read_wav(&quad).unwrap_err().to_string();
        assert!(e.contains("4 channels") && e.contains("mono or stereo"), "{e}");
    }

    /// A scratch directory under the crate's target dir (never the host's /tmp), removed on drop.
    pub(crate) struct TestDir(pub std::path::PathBuf);
    impl TestDir {
        pub(crate) fn new(name: &str) -> TestDir {
            let p = std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/test-tmp"
            ))
            .join(format!("audio-test-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            TestDir(p)
        }
    }
    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
