//! The voice model: Opus-sized frames at a steady clock, stamped so the receiver can measure.
//!
//! A voice frame on the wire (inside whatever the transport wraps it in) is:
//!
//! ```text
//! offset  size  field
//!      0     4  seq           u32, big-endian, 0 for the first frame of a call, +1 per frame
//!      4     8  sent_unix_ns  u64, big-endian, the sender's system clock (UNIX ns) at send
//!     12     …  padding       zero bytes up to `frame_bytes` (default 80 bytes = 32 kbit/s at 20 ms)
//! ```
//!
//! All hosts of a run share one clock (they are namespaces of one kernel), so the receiver's
//! `recv_unix_ns - sent_unix_ns` is the one-way delay.
//!
//! Guarantees: [`decode_frame`] is pure and never panics; it rejects frames shorter than
//! [`HEADER_BYTES`] and ignores the padding (its length is not checked, so a transport may pad
//! further). [`drive`] never blocks on a slow or dead transport: a frame it cannot hand over is
//! counted as sent and is lost, as it would be for a real sender.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::{Instant, MissedTickBehavior};

use crate::MediaLink;

/// Bytes of the frame header (`seq` + `sent_unix_ns`); the smallest valid frame.
pub const HEADER_BYTES: usize = 12;

/// How a call's voice is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceModel {
    /// Time between frames; written `"20ms"` in files.
    #[serde(default = "default_interval", with = "duration_str")]
    pub frame_interval: Duration,
    /// Bytes per frame, header included (at least [`HEADER_BYTES`]; smaller values are raised).
    #[serde(default = "default_frame_bytes")]
    pub frame_bytes: usize,
}

fn default_interval() -> Duration {
    Duration::from_millis(20)
}
fn default_frame_bytes() -> usize {
    80
}

impl Default for VoiceModel {
    /// 20 ms frames of 80 bytes: 50 frames/s, 32 kbit/s of payload, as Opus at a typical
    /// wideband VoIP bitrate.
    fn default() -> Self {
        VoiceModel { frame_interval: default_interval(), frame_bytes: default_frame_bytes() }
    }
}

impl VoiceModel {
    /// The frame interval, never zero (a zero interval would spin; it is raised to 1 ms).
    pub fn interval(&self) -> Duration {
        self.frame_interval.max(Duration::from_millis(1))
    }
}

/// Serde for `std::time::Duration` as a unit string (`"20ms"`), via `callwall_units::Duration`.
pub mod duration_str {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        callwall_units::Duration::from_std(*d).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(callwall_units::Duration::deserialize(d)?.as_std())
    }
}

/// One received frame, as the receiver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    pub seq: u32,
    /// The sender's stamp.
    pub sent_unix_ns: u64,
    /// The receiver's clock when the frame came out of the transport.
    pub recv_unix_ns: u64,
}

/// The decoded header of a voice frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub seq: u32,
    pub sent_unix_ns: u64,
}

/// Why a frame did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("voice frame of {0} bytes is shorter than its {HEADER_BYTES}-byte header")]
    Short(usize),
}

/// Builds a frame of `frame_bytes` bytes (at least the header) in the format above.
pub fn encode_frame(seq: u32, sent_unix_ns: u64, frame_bytes: usize) -> Vec<u8> {
    let mut f = vec![0u8; frame_bytes.max(HEADER_BYTES)];
    f[0..4].copy_from_slice(&seq.to_be_bytes());
    f[4..12].copy_from_slice(&sent_unix_ns.to_be_bytes());
    f
}

/// Reads a frame's header; rejects frames shorter than [`HEADER_BYTES`].
pub fn decode_frame(bytes: &[u8]) -> Result<FrameHeader, FrameError> {
    let (Some(seq), Some(sent)) = (bytes.get(0..4), bytes.get(4..12)) else {
        return Err(FrameError::Short(bytes.len()));
    };
    let mut s = [0u8; 4];
    s.copy_from_slice(seq);
    let mut t = [0u8; 8];
    t.copy_from_slice(sent);
    Ok(FrameHeader { seq: u32::from_be_bytes(s), sent_unix_ns: u64::from_be_bytes(t) })
}

/// The system clock in UNIX nanoseconds (0 if the clock is before 1970).
pub fn unix_ns_now() -> u64 {
    to_unix_ns(SystemTime::now())
}

/// A `SystemTime` in UNIX nanoseconds (0 before 1970, saturating far in the future).
pub fn to_unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The `tokio` instant at which the system clock will read `unix_ns` (now, if that is past).
pub fn instant_at_unix_ns(unix_ns: u64) -> Instant {
    let now_ns = unix_ns_now();
    Instant::now() + Duration::from_nanos(unix_ns.saturating_sub(now_ns))
}

/// What [`drive`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriveReport {
    /// Frames the sender's clock produced (handed to the transport or lost locally).
    pub frames_sent: u64,
    /// Every frame that came in, in order of arrival (duplicates included).
    pub arrivals: Vec<Arrival>,
    /// Incoming datagrams that were not voice frames (too short).
    pub malformed: u64,
    /// When the first frame was sent (UNIX ns).
    pub media_start_unix_ns: u64,
    /// When the sender's clock stopped (UNIX ns).
    pub media_end_unix_ns: u64,
    /// When the receiver stopped listening (UNIX ns): media end plus the drain.
    pub recv_end_unix_ns: u64,
}

/// Runs a call's media on `link`: sends one frame per interval until `media_end`, records every
/// arrival until `media_end + drain`, then drops the link.
///
/// The sender keeps a steady clock ([`MissedTickBehavior::Burst`]): like an audio device that
/// captures 20 ms whether or not the app is scheduled, frames missed during a stall are sent
/// late rather than skipped, so frame `seq` always belongs to `media_start + seq * interval`
/// and the frame count over a call is exact. Frames are handed over with `try_send`; a full or
/// closed channel loses the frame (counted as sent), so a dead transport never stalls the clock.
pub async fn drive(
    link: MediaLink,
    model: &VoiceModel,
    media_end: SystemTime,
    drain: Duration,
) -> DriveReport {
    let MediaLink { tx, mut rx, guard, .. } = link;
    let interval = model.interval();
    let start_ns = unix_ns_now();
    let send_end = instant_at_unix_ns(to_unix_ns(media_end));
    let recv_end = send_end + drain;
    let mut out = DriveReport { media_start_unix_ns: start_ns, ..Default::default() };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sending = true;
    let mut receiving = true;
    let mut seq: u32 = 0;
    let stop = tokio::time::sleep_until(recv_end);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            at = ticker.tick(), if sending => {
                if at >= send_end || seq == u32::MAX {
                    sending = false;
                    out.media_end_unix_ns = unix_ns_now();
                    continue;
                }
                let now = unix_ns_now();
                if seq == 0 {
                    out.media_start_unix_ns = now;
                }
                let frame = encode_frame(seq, now, model.frame_bytes);
                // A full or closed channel loses the frame: the sender never waits.
                let _ = tx.try_send(frame);
                seq += 1;
                out.frames_sent += 1;
            }
            got = rx.recv(), if receiving => match got {
                Some(bytes) => match decode_frame(&bytes) {
                    Ok(h) => out.arrivals.push(Arrival {
                        seq: h.seq,
                        sent_unix_ns: h.sent_unix_ns,
                        recv_unix_ns: unix_ns_now(),
                    }),
                    Err(_) => out.malformed += 1,
                },
                None => receiving = false,
            },
            _ = &mut stop => break,
        }
    }
    if sending {
        out.media_end_unix_ns = unix_ns_now();
    }
    out.recv_end_unix_ns = unix_ns_now();
    drop(tx);
    drop(rx);
    drop(guard);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[test]
    fn frame_roundtrip_and_layout() {
        let f = encode_frame(0x01020304, 0x1112131415161718, 80);
        assert_eq!(f.len(), 80);
        assert_eq!(&f[..12], &[1, 2, 3, 4, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
        assert!(f[12..].iter().all(|&b| b == 0));
        let h = decode_frame(&f).unwrap();
        assert_eq!(h, FrameHeader { seq: 0x01020304, sent_unix_ns: 0x1112131415161718 });
        assert_eq!(encode_frame(1, 2, 3).len(), HEADER_BYTES);
    }

    #[test]
    fn short_frames_are_rejected() {
        for n in 0..HEADER_BYTES {
            assert_eq!(decode_frame(&vec![0xff; n]), Err(FrameError::Short(n)));
        }
        assert!(decode_frame(&[0; HEADER_BYTES]).is_ok());
    }

    #[test]
    fn voice_model_serde_uses_unit_strings() {
        let m = VoiceModel::default();
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, r#"{"frame_interval":"20ms","frame_bytes":80}"#);
        let back: VoiceModel = serde_json::from_str(r#"{"frame_interval":"10ms"}"#).unwrap();
        assert_eq!(back.frame_interval, Duration::from_millis(10));
        assert_eq!(back.frame_bytes, 80);
    }

    #[tokio::test]
    async fn drive_loops_back() {
        // A link whose tx feeds its own rx: every frame comes back.
        let (tx, rx) = mpsc::channel(1024);
        let link = MediaLink { tx, rx, path: "loop".into(), guard: Box::new(()) };
        let model = VoiceModel::default();
        let end = SystemTime::now() + Duration::from_millis(200);
        let r = drive(link, &model, end, Duration::from_millis(50)).await;
        assert!((9..=11).contains(&r.frames_sent), "{}", r.frames_sent);
        assert_eq!(r.arrivals.len() as u64, r.frames_sent);
        for (i, a) in r.arrivals.iter().enumerate() {
            assert_eq!(a.seq as usize, i);
            assert!(a.recv_unix_ns >= a.sent_unix_ns);
        }
        assert!(r.media_end_unix_ns >= r.media_start_unix_ns);
        assert!(r.recv_end_unix_ns >= r.media_end_unix_ns);
    }
}
