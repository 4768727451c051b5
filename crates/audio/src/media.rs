//! A call's audio on the voice model: Opus packets of a clip out, received packets in.
//!
//! [`CallAudio`] is the [`VoiceMedia`] one side of a call plugs into
//! [`callwall_transport::voice::drive_with`]: outgoing frame `seq` carries Opus packet
//! `seq % n` of the pre-encoded clip (the clip loops, so frame `seq` always holds the audio of
//! `seq * 20 ms` into the looped clip); every incoming payload is kept with its stamps. After
//! the call, [`CallAudio::finish`] plays the received frames out like a fixed jitter buffer:
//! frame `seq` is played if its one-way delay was no more than `playout_delay` above the
//! lowest delay of the frames received (the rule of
//! [`callwall_transport::voice::Playout`], the same the call meters count late frames with),
//! and libopus conceals every frame that is missing, late or undecodable.
//!
//! The whole clip is encoded once up front (encoding and decoding a call-second costs about
//! 1.5 % of a core, see `benches/opus.rs`), so sending a frame is a copy; decoding happens in
//! [`CallAudio::finish`], off the media task's clock.

use std::collections::HashMap;
use std::time::Duration;

use callwall_transport::voice::{Arrival, Playout, VoiceMedia, PAYLOAD_OFFSET};

use crate::codec::{OpusDecoder, OpusEncoder, FRAME_SAMPLES};
use crate::{AudioError, Clip};

/// How long past the path's base delay a frame may arrive and still be played (a fixed jitter
/// buffer): the one deadline of callwall, [`callwall_transport::voice::PLAYOUT_DEADLINE`].
pub const DEFAULT_PLAYOUT_DELAY: Duration = callwall_transport::voice::PLAYOUT_DEADLINE;

/// One side's audio for a call. See the module docs.
pub struct CallAudio {
    clip: Clip,
    packets: Vec<Vec<u8>>,
    /// First arrival of each seq: its payload and its one-way delay (ns after its send time).
    got: HashMap<u32, (Vec<u8>, u64)>,
    duplicates: u64,
}

/// What the receiving side heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// 48 kHz mono PCM, 20 ms per frame slot `0..frames`.
    pub audio: Clip,
    /// What was sent in the same slots: the looped clip (the reference for quality).
    pub sent: Clip,
    pub stats: ReceiverStats,
}

/// How the received frames were used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub frames: u64,
    pub played: u64,
    /// Never arrived.
    pub lost: u64,
    /// Arrived after the playout deadline (past the lowest delay of the frames received).
    pub late: u64,
    /// Arrived but libopus rejected the payload, or it carried none.
    pub undecodable: u64,
    pub duplicates: u64,
}

impl CallAudio {
    /// Audio that sends `clip` in packets that fit a voice model frame of `frame_bytes` bytes
    /// (the Opus bitrate is chosen so header + packet fill the frame: 80 bytes gives 26.4
    /// kbit/s of Opus).
    pub fn new(clip: Clip, frame_bytes: usize) -> Result<CallAudio, AudioError> {
        let payload = frame_bytes.saturating_sub(PAYLOAD_OFFSET).max(20);
        let mut enc = OpusEncoder::new(OpusEncoder::bitrate_for(payload))?;
        let packets = enc.encode_clip(&clip.samples)?;
        if packets.is_empty() {
            return Err(AudioError::Opus("clip is empty: nothing to send".into()));
        }
        Ok(CallAudio { clip, packets, got: HashMap::new(), duplicates: 0 })
    }

    /// Audio that sends `packets` (one Opus packet per 20 ms of `clip`, as [`CallAudio::new`]
    /// makes them): for packets encoded once and shared by many calls.
    pub fn from_packets(clip: Clip, packets: Vec<Vec<u8>>) -> Result<CallAudio, AudioError> {
        if packets.is_empty() {
            return Err(AudioError::Opus("no packets: nothing to send".into()));
        }
        Ok(CallAudio { clip, packets, got: HashMap::new(), duplicates: 0 })
    }

    /// The encoded clip, one Opus packet per 20 ms.
    pub fn packets(&self) -> &[Vec<u8>] {
        &self.packets
    }

    /// The clip sent.
    pub fn clip(&self) -> &Clip {
        &self.clip
    }

    /// The Opus packet sent in frame `seq`.
    pub fn packet(&self, seq: u32) -> &[u8] {
        &self.packets[seq as usize % self.packets.len()]
    }

    /// Plays out frame slots `0..frames` (the sender's `frames_sent`) as described in the
    /// module docs.
    pub fn finish(&self, frames: u64, playout_delay: Duration) -> Result<Received, AudioError> {
        let playout = Playout::new(self.got.values().map(|(_, d)| *d), playout_delay);
        let mut dec = OpusDecoder::new()?;
        let mut stats = ReceiverStats { frames, duplicates: self.duplicates, ..Default::default() };
        let mut audio = Vec::with_capacity(frames as usize * FRAME_SAMPLES);
        for seq in 0..frames {
            let slot = u32::try_from(seq).ok().and_then(|s| self.got.get(&s));
            let packet = match slot {
                None => {
                    stats.lost += 1;
                    None
                }
                Some((_, delay)) if !playout.on_time(*delay) => {
                    stats.late += 1;
                    None
                }
                Some((p, _)) if p.is_empty() => {
                    stats.undecodable += 1;
                    None
                }
                Some((p, _)) => Some(p.as_slice()),
            };
            let before = dec.undecodable;
            audio.extend_from_slice(&dec.decode(packet));
            if packet.is_some() {
                if dec.undecodable > before {
                    stats.undecodable += 1;
                } else {
                    stats.played += 1;
                }
            }
        }
        let n = audio.len();
        Ok(Received {
            audio: Clip { samples: audio },
            sent: Clip { samples: self.clip.looped(n) },
            stats,
        })
    }
}

impl VoiceMedia for CallAudio {
    fn payload(&mut self, seq: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(self.packet(seq));
    }

    fn received(&mut self, arrival: &Arrival, payload: &[u8]) {
        if self.got.contains_key(&arrival.seq) {
            self.duplicates += 1;
            return;
        }
        self.got.insert(arrival.seq, (payload.to_vec(), arrival.delay_ns()));
    }

    fn restart(&mut self) {
        self.got.clear();
        self.duplicates = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled_speech;

    fn arrival(seq: u32, late_ms: u64) -> Arrival {
        Arrival {
            seq,
            sent_unix_ns: 1_000_000_000,
            recv_unix_ns: 1_000_000_000 + late_ms * 1_000_000,
        }
    }

    #[test]
    fn payload_fits_the_voice_frame() {
        let a = CallAudio::new(bundled_speech(), 80).unwrap();
        for seq in 0..100 {
            assert!(a.packet(seq).len() + PAYLOAD_OFFSET <= 82, "{}", a.packet(seq).len());
        }
    }

    #[test]
    fn playout_counts_lost_late_duplicate_and_garbage() {
        let mut a = CallAudio::new(bundled_speech(), 80).unwrap();
        let p0 = a.packet(0).to_vec();
        let p2 = a.packet(2).to_vec();
        a.received(&arrival(0, 5), &p0);
        a.received(&arrival(0, 6), &p0);
        // seq 1 never arrives; seq 2 is too late; seq 3 is garbage; seq 4 carries nothing.
        a.received(&arrival(2, 500), &p2);
        a.received(&arrival(3, 5), &[0xff, 0xff]);
        a.received(&arrival(4, 5), &[]);
        let r = a.finish(5, DEFAULT_PLAYOUT_DELAY).unwrap();
        assert_eq!(
            r.stats,
            ReceiverStats { frames: 5, played: 1, lost: 1, late: 1, undecodable: 2, duplicates: 1 }
        );
        assert_eq!(r.audio.samples.len(), 5 * FRAME_SAMPLES);
        assert_eq!(r.sent.samples.len(), 5 * FRAME_SAMPLES);
    }
}
