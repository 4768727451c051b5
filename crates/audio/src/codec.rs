//! Opus at 48 kHz mono in 20 ms frames, over the system's libopus.

use opus::{Application, Bitrate, Channels};

use crate::AudioError;

/// The codec's sample rate (Hz); clips are converted to it.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 960;
/// Largest Opus packet we produce or accept (RFC 6716 section 3.4: 1275 bytes per frame).
pub const MAX_PACKET: usize = 1275;

/// Encoder complexity (0..=10). At 5 a call's encode + decode costs about 1.5 % of a core
/// (`benches/opus.rs`, thread CPU time); libopus' default 10 costs about twice that (3.3 %),
/// over the 2 % budget. The price: the bundled clip scores wideband PESQ 3.86 after a clean
/// round trip at 26.4 kbit/s, against 4.21 at complexity 10 (6 gives 4.03).
pub const COMPLEXITY: i32 = 5;

/// An Opus encoder for speech: VoIP application, voice signal, wideband (the bundled clip and
/// the quality figure are 16 kHz speech), constant bitrate, complexity [`COMPLEXITY`].
pub struct OpusEncoder {
    inner: opus::Encoder,
}

impl OpusEncoder {
    /// An encoder at `bitrate_bps` (clamped to Opus' 6..=510 kbit/s), constant bitrate, so
    /// every 20 ms packet is `bitrate_bps / 400` bytes (plus at most a byte or two).
    pub fn new(bitrate_bps: u32) -> Result<Self, AudioError> {
        Self::with_complexity(bitrate_bps, COMPLEXITY)
    }

    /// [`OpusEncoder::new`] at another complexity (0..=10; clamped).
    pub fn with_complexity(bitrate_bps: u32, complexity: i32) -> Result<Self, AudioError> {
        let mut inner = opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)?;
        let b = bitrate_bps.clamp(6_000, 510_000) as i32;
        inner.set_bitrate(Bitrate::Bits(b))?;
        inner.set_vbr(false)?;
        inner.set_complexity(complexity.clamp(0, 10))?;
        inner.set_signal(opus::Signal::Voice)?;
        inner.set_max_bandwidth(opus::Bandwidth::Wideband)?;
        Ok(OpusEncoder { inner })
    }

    /// The bitrate that fills `payload_bytes` per 20 ms frame.
    pub fn bitrate_for(payload_bytes: usize) -> u32 {
        (payload_bytes as u32).saturating_mul(8 * 50)
    }

    /// Encodes one frame of [`FRAME_SAMPLES`] samples (shorter input is padded with silence).
    pub fn encode(&mut self, frame: &[i16]) -> Result<Vec<u8>, AudioError> {
        let mut pcm = [0i16; FRAME_SAMPLES];
        let n = frame.len().min(FRAME_SAMPLES);
        pcm[..n].copy_from_slice(&frame[..n]);
        Ok(self.inner.encode_vec(&pcm, MAX_PACKET)?)
    }

    /// Encodes a whole clip into one packet per 20 ms (the last frame padded with silence).
    pub fn encode_clip(&mut self, pcm: &[i16]) -> Result<Vec<Vec<u8>>, AudioError> {
        pcm.chunks(FRAME_SAMPLES).map(|f| self.encode(f)).collect()
    }
}

/// An Opus decoder with packet-loss concealment.
pub struct OpusDecoder {
    inner: opus::Decoder,
    /// Payloads libopus rejected (concealed like lost frames).
    pub undecodable: u64,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, AudioError> {
        Ok(OpusDecoder { inner: opus::Decoder::new(SAMPLE_RATE, Channels::Mono)?, undecodable: 0 })
    }

    /// The 20 ms of audio for one frame slot: `Some(packet)` decodes it, `None` (lost or late)
    /// runs libopus' packet-loss concealment, which extrapolates from the frames before.
    /// A packet libopus rejects is concealed too and counted in `undecodable`; never fails.
    pub fn decode(&mut self, packet: Option<&[u8]>) -> [i16; FRAME_SAMPLES] {
        let mut out = [0i16; FRAME_SAMPLES];
        let ok = match packet {
            Some(p) if !p.is_empty() => match self.inner.decode(p, &mut out, false) {
                Ok(_) => true,
                Err(_) => {
                    self.undecodable += 1;
                    false
                }
            },
            _ => false,
        };
        if !ok {
            out = [0i16; FRAME_SAMPLES];
            // An empty input asks libopus for concealment of one frame of `out`'s length.
            let _ = self.inner.decode(&[], &mut out, false);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbr_packets_have_the_asked_size() {
        let mut e = OpusEncoder::new(OpusEncoder::bitrate_for(66)).unwrap();
        let tone: Vec<i16> = (0..FRAME_SAMPLES * 10)
            .map(|i| ((i as f64 * 440.0 * std::f64::consts::TAU / 48_000.0).sin() * 8000.0) as i16)
            .collect();
        let packets = e.encode_clip(&tone).unwrap();
        assert_eq!(packets.len(), 10);
        for p in &packets {
            assert!((64..=68).contains(&p.len()), "{}", p.len());
        }
    }

    #[test]
    fn garbage_payload_is_concealed_and_counted() {
        let mut d = OpusDecoder::new().unwrap();
        // A TOC byte announcing code 3 with an impossible frame count (RFC 6716 3.2.5).
        let _ = d.decode(Some(&[0xff, 0xff]));
        let _ = d.decode(None);
        assert_eq!(d.undecodable, 1);
    }
}
