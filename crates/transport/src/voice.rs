//! The voice model: Opus-sized frames at a steady clock, stamped so the receiver can measure.
//!
//! A voice frame on the wire (inside whatever the transport wraps it in) is:
//!
//! ```text
//! offset  size  field
//!      0     4  seq           u32, big-endian, 0 for the first frame of a call, +1 per frame
//!      4     8  sent_unix_ns  u64, big-endian, the sender's system clock (UNIX ns) at send
//!     12     2  payload_len   u16, big-endian: bytes of media payload that follow (0: filler only)
//!     14     …  payload       `payload_len` bytes of media (an Opus packet with `--audio`)
//!      …     …  padding       zero bytes up to `frame_bytes` (default 80 bytes = 32 kbit/s at 20 ms)
//! ```
//!
//! A filler frame is all zeros after the header, so it reads as `payload_len` 0: frames with and
//! without media share one format. What the payload is belongs to a [`VoiceMedia`] (see
//! [`drive_with`]); transports only carry bytes and never look inside.
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
/// Bytes before a media payload: the header and the `payload_len` field.
pub const PAYLOAD_OFFSET: usize = HEADER_BYTES + 2;

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

/// The playout deadline: how long after the path's earliest arrival a frame may come and still
/// be played. The receiver is a fixed jitter buffer set on the lowest one-way delay of the
/// frames it received (the path's base delay, which a real buffer settles on): frame `seq` is
/// played if `recv - sent <= base + PLAYOUT_DEADLINE` and is **late** (concealed like a lost
/// frame) otherwise. The one deadline of callwall: the call meters ([`crate::metrics`],
/// [`crate::live`]) count late frames as lost with it, and the audio path (`callwall-audio`)
/// plays out with it. 200 ms is the largest fixed buffer of common VoIP stacks; a longer
/// buffer would add its own delay to every frame.
pub const PLAYOUT_DEADLINE: Duration = Duration::from_millis(200);

/// The playout rule of [`PLAYOUT_DEADLINE`] for one direction: pure, from the delays seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Playout {
    /// The lowest one-way delay seen (ns); `u64::MAX` before any arrival.
    pub base_delay_ns: u64,
    /// How far past the base delay a frame may arrive (ns).
    pub deadline_ns: u64,
}

impl Playout {
    /// A buffer with `deadline` past the lowest delay of `delays_ns` (one-way delays in ns).
    pub fn new(delays_ns: impl IntoIterator<Item = u64>, deadline: Duration) -> Playout {
        Playout {
            base_delay_ns: delays_ns.into_iter().min().unwrap_or(u64::MAX),
            deadline_ns: u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// [`Playout::new`] over the arrivals' delays, with [`PLAYOUT_DEADLINE`].
    pub fn of(arrivals: &[Arrival]) -> Playout {
        Playout::new(arrivals.iter().map(Arrival::delay_ns), PLAYOUT_DEADLINE)
    }

    /// Whether a frame that took `delay_ns` one way is played (not late).
    pub fn on_time(&self, delay_ns: u64) -> bool {
        delay_ns <= self.base_delay_ns.saturating_add(self.deadline_ns)
    }
}

impl Arrival {
    /// One-way delay, `recv - sent` (0 if the stamps are reversed).
    pub fn delay_ns(&self) -> u64 {
        self.recv_unix_ns.saturating_sub(self.sent_unix_ns)
    }
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
    #[error("voice frame of {frame} bytes announces a {payload}-byte payload that does not fit")]
    Truncated { frame: usize, payload: usize },
}

/// Builds a frame carrying `payload` (at most `u16::MAX` bytes; longer payloads are cut) after
/// the header, padded with zeros to `frame_bytes` if it is shorter.
pub fn encode_frame_with(
    seq: u32,
    sent_unix_ns: u64,
    payload: &[u8],
    frame_bytes: usize,
) -> Vec<u8> {
    let payload = &payload[..payload.len().min(usize::from(u16::MAX))];
    let mut f = encode_frame(seq, sent_unix_ns, frame_bytes.max(PAYLOAD_OFFSET + payload.len()));
    f[HEADER_BYTES..PAYLOAD_OFFSET].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    f[PAYLOAD_OFFSET..PAYLOAD_OFFSET + payload.len()].copy_from_slice(payload);
    f
}

/// The media payload of a frame: empty for filler frames and for frames of just a header;
/// an error if the frame is shorter than its header or than the payload it announces.
pub fn frame_payload(bytes: &[u8]) -> Result<&[u8], FrameError> {
    decode_frame(bytes)?;
    let Some(len) = bytes.get(HEADER_BYTES..PAYLOAD_OFFSET) else { return Ok(&[]) };
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    bytes
        .get(PAYLOAD_OFFSET..PAYLOAD_OFFSET + len)
        .ok_or(FrameError::Truncated { frame: bytes.len(), payload: len })
}

/// What a call's voice frames carry, and who hears them: plugged into [`drive_with`], invisible
/// to transports. Both methods run on the media task between frames, so they must be quick
/// (an Opus packet lookup or a copy, not a decode of the whole call).
pub trait VoiceMedia: Send {
    /// Appends the payload of outgoing frame `seq` to `out` (empty: a filler frame).
    fn payload(&mut self, seq: u32, out: &mut Vec<u8>);
    /// An incoming frame: its header stamps and arrival time, and its payload (empty for
    /// filler). Called for duplicates and out-of-order frames too, as they arrive.
    fn received(&mut self, arrival: &Arrival, payload: &[u8]);
    /// The call starts over on another link (the callee followed the caller's next attempt):
    /// forget what was received, since frame numbers start again at 0.
    fn restart(&mut self) {}
}

/// Real speech in a call's voice frames (`callwall run --audio`), as a peer is told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioSpec {
    /// A WAV file to send (any rate, mono or stereo); `None`: the bundled speech clip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<std::path::PathBuf>,
    /// Where to write what this peer heard: `{record}.{role}-received.wav` (and, from the
    /// caller, the reference `{record}.sent.wav`); `None`: nothing written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<std::path::PathBuf>,
    /// The clip already converted and encoded once for the whole run (`callwall-audio`'s
    /// `session::prepare`): `{prepared}.wav` and `{prepared}.opus`, so a peer neither resamples
    /// nor encodes; `None`: the peer does both itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared: Option<std::path::PathBuf>,
}

/// The default voice: filler frames, nothing heard.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filler;

impl VoiceMedia for Filler {
    fn payload(&mut self, _seq: u32, _out: &mut Vec<u8>) {}
    fn received(&mut self, _arrival: &Arrival, _payload: &[u8]) {}
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
    /// The longest the voice loop ran behind its clock (ms): how long this process was not
    /// scheduled (CPU load), during which it neither sent nor stamped arrivals. A receiver's
    /// gap that matches a stall here is the machine's, not the network's.
    pub max_clock_late_ms: u64,
}

/// A voice loop this late is logged (a stall of the process, not of the network).
const STALL_LOG: Duration = Duration::from_millis(200);

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
    drive_with(link, model, media_end, drain, &mut Filler).await
}

/// [`drive`], with frames carrying `media`'s payloads and every arrival handed to `media`.
/// Timing, counting and the report are the same as with filler frames; a frame whose payload
/// does not fit what it announces is counted as malformed and not handed over.
pub async fn drive_with(
    link: MediaLink,
    model: &VoiceModel,
    media_end: SystemTime,
    drain: Duration,
    media: &mut dyn VoiceMedia,
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
    let mut payload = Vec::new();
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
                let late = Instant::now().saturating_duration_since(at);
                if late >= STALL_LOG && late.as_millis() as u64 > out.max_clock_late_ms {
                    tracing::warn!(
                        "voice clock {} ms late at frame {seq}: this process was not scheduled \
                         (cpu load), so gaps this long are the machine's, not the network's",
                        late.as_millis()
                    );
                }
                out.max_clock_late_ms = out.max_clock_late_ms.max(late.as_millis() as u64);
                payload.clear();
                media.payload(seq, &mut payload);
                let frame = encode_frame_with(seq, now, &payload, model.frame_bytes);
                // A full or closed channel loses the frame: the sender never waits.
                let _ = tx.try_send(frame);
                seq += 1;
                out.frames_sent += 1;
            }
            got = rx.recv(), if receiving => match got {
                Some(bytes) => match (decode_frame(&bytes), frame_payload(&bytes)) {
                    (Ok(h), Ok(p)) => {
                        let a = Arrival {
                            seq: h.seq,
                            sent_unix_ns: h.sent_unix_ns,
                            recv_unix_ns: unix_ns_now(),
                        };
                        media.received(&a, p);
                        out.arrivals.push(a);
                    }
                    _ => out.malformed += 1,
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

    #[test]
    fn payload_frames_roundtrip_and_filler_reads_empty() {
        let f = encode_frame_with(7, 9, b"opus", 80);
        assert_eq!(f.len(), 80);
        assert_eq!(&f[12..18], &[0, 4, b'o', b'p', b'u', b's']);
        assert_eq!(decode_frame(&f).unwrap(), FrameHeader { seq: 7, sent_unix_ns: 9 });
        assert_eq!(frame_payload(&f).unwrap(), b"opus");
        // A payload longer than the model's frame grows the frame.
        let big = encode_frame_with(1, 2, &[0xaa; 100], 80);
        assert_eq!(big.len(), PAYLOAD_OFFSET + 100);
        assert_eq!(frame_payload(&big).unwrap(), &[0xaa; 100][..]);
        // Filler frames and bare headers carry nothing.
        assert_eq!(frame_payload(&encode_frame(1, 2, 80)).unwrap(), b"");
        assert_eq!(frame_payload(&encode_frame(1, 2, 12)).unwrap(), b"");
        assert_eq!(frame_payload(&[0; 13]).unwrap(), b"");
        // A payload that does not fit, and a short frame, are errors.
        let mut cut = encode_frame_with(1, 2, b"opus", 0);
        cut.truncate(16);
        assert_eq!(frame_payload(&cut), Err(FrameError::Truncated { frame: 16, payload: 4 }));
        assert_eq!(frame_payload(&[0; 5]), Err(FrameError::Short(5)));
    }

    /// Sends `seq` as a 4-byte payload and records what came back.
    #[derive(Default)]
    struct Echo {
        heard: Vec<(u32, Vec<u8>)>,
    }
    impl VoiceMedia for Echo {
        fn payload(&mut self, seq: u32, out: &mut Vec<u8>) {
            out.extend_from_slice(&seq.to_le_bytes());
        }
        fn received(&mut self, a: &Arrival, payload: &[u8]) {
            self.heard.push((a.seq, payload.to_vec()));
        }
    }

    #[tokio::test]
    async fn drive_with_carries_media_payloads() {
        let (tx, rx) = mpsc::channel(1024);
        let link = MediaLink { tx, rx, path: "loop".into(), guard: Box::new(()) };
        let mut echo = Echo::default();
        let end = SystemTime::now() + Duration::from_millis(200);
        let r = drive_with(link, &VoiceModel::default(), end, Duration::from_millis(50), &mut echo)
            .await;
        assert!(r.frames_sent >= 9);
        assert_eq!(echo.heard.len() as u64, r.frames_sent);
        for (seq, p) in &echo.heard {
            assert_eq!(p, &seq.to_le_bytes());
        }
        assert_eq!(r.malformed, 0);
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
