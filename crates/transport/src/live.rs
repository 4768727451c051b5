//! Live figures: a call's loss, delay and MOS estimate for each second, while it runs.
//!
//! [`LiveMeter`] is a [`VoiceMedia`] that watches the frames a peer receives. Its sender-side
//! hook runs every frame interval, so it is also the clock: once a second of media is over
//! (plus [`GRACE`] for late frames) it hands a [`LiveSecond`] to its sink. The peer process
//! prints each one as a `live second {json}` line on its stdout, before its report; the harness
//! forwards such lines as they come (see `callwall_harness::run`), and `callwall demo` draws
//! them. Seconds count from the run's call start (`t0`), as in the report's timelines.
//!
//! The figures are an estimate for people watching: the frames expected in a second are the
//! frames one second of the voice model holds, a frame counts as heard when it came within
//! [`PLAYOUT_DEADLINE`] of the lowest delay seen so far (the results' rule, applied as the
//! frames come), and the MOS is the E-model's for that loss and median delay. The results'
//! figures are computed after the call from every arrival.

use serde::{Deserialize, Serialize};

use crate::metrics::emodel;
use crate::voice::{unix_ns_now, Arrival, VoiceMedia, PLAYOUT_DEADLINE};

/// How long after a second ends its figures wait for late frames.
pub const GRACE_NS: u64 = 300_000_000;
/// [`GRACE_NS`] as a name for docs.
pub const GRACE: std::time::Duration = std::time::Duration::from_nanos(GRACE_NS);

/// One second of what a peer received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveSecond {
    /// The call (`PeerSpec.ctx.call_id`).
    pub call: String,
    /// `caller` (it hears the callee) or `callee`.
    pub role: String,
    /// Seconds since the calls started.
    pub t: u32,
    /// Frames of that second (by send time) that were not heard: they did not arrive, or
    /// arrived after the playout deadline; percent.
    pub loss_pct: f64,
    /// The late share of `loss_pct`: frames that arrived after the playout deadline, percent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late_pct: f64,
    /// Median one-way delay of the frames that arrived; `None` if none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    /// E-model MOS estimate (1.0 when nothing arrived).
    pub mos: f64,
}

/// Counts arrivals per second of send time and reports each finished second to `sink`.
pub struct LiveMeter<'a> {
    call: String,
    role: String,
    t0_unix_ns: u64,
    per_second: f64,
    /// Arrivals per second index: (frames heard, frames late, delays in ms).
    seconds: std::collections::BTreeMap<u32, (u32, u32, Vec<f64>)>,
    /// The lowest one-way delay seen so far (ns).
    base_delay_ns: u64,
    /// The next second to report.
    next: Option<u32>,
    inner: &'a mut dyn VoiceMedia,
    sink: Box<dyn FnMut(&LiveSecond) + Send + 'a>,
}

impl<'a> LiveMeter<'a> {
    /// A meter for `call`'s `role` whose seconds count from `t0_unix_ns`, with frames every
    /// `interval`; `inner` still gets every payload and arrival.
    pub fn new(
        call: &str,
        role: &str,
        t0_unix_ns: u64,
        interval: std::time::Duration,
        inner: &'a mut dyn VoiceMedia,
        sink: Box<dyn FnMut(&LiveSecond) + Send + 'a>,
    ) -> LiveMeter<'a> {
        let per_second = 1.0 / interval.as_secs_f64().max(0.001);
        LiveMeter {
            call: call.to_string(),
            role: role.to_string(),
            t0_unix_ns,
            per_second,
            seconds: Default::default(),
            base_delay_ns: u64::MAX,
            next: None,
            inner,
            sink,
        }
    }

    fn second_of(&self, unix_ns: u64) -> Option<u32> {
        unix_ns.checked_sub(self.t0_unix_ns).map(|d| (d / 1_000_000_000) as u32)
    }

    /// Reports every second that ended at least [`GRACE_NS`] before `now`.
    pub fn tick(&mut self, now_unix_ns: u64) {
        let Some(done) = self.second_of(now_unix_ns.saturating_sub(GRACE_NS)) else { return };
        // The first full second after media started is the first reported.
        let next = *self.next.get_or_insert(done + 1);
        for t in next..done {
            let (n, late, mut delays) = self.seconds.remove(&t).unwrap_or_default();
            let loss_pct = (100.0 * (1.0 - f64::from(n) / self.per_second)).clamp(0.0, 100.0);
            let late_pct = (100.0 * f64::from(late) / self.per_second).clamp(0.0, loss_pct);
            let delay_ms = (!delays.is_empty()).then(|| {
                delays.sort_by(f64::total_cmp);
                delays[delays.len() / 2]
            });
            let mos = match delay_ms {
                _ if n == 0 => 1.0,
                None => 1.0,
                Some(d) => emodel::mos_from_r(emodel::r_factor(&emodel::Input {
                    mouth_to_ear_ms: emodel::mouth_to_ear_ms(d, 0.0),
                    loss_pct,
                    burst_ratio: 1.0,
                    codec: emodel::Codec::default(),
                })),
            };
            let s = LiveSecond {
                call: self.call.clone(),
                role: self.role.clone(),
                t,
                loss_pct,
                late_pct,
                delay_ms,
                mos,
            };
            (self.sink)(&s);
        }
        if done > next {
            self.next = Some(done);
        }
        // Arrivals for seconds already reported (very late frames) are dropped.
        let keep = self.next.unwrap_or(0);
        self.seconds.retain(|&t, _| t >= keep);
    }
}

impl VoiceMedia for LiveMeter<'_> {
    fn payload(&mut self, seq: u32, out: &mut Vec<u8>) {
        self.inner.payload(seq, out);
        self.tick(unix_ns_now());
    }

    fn received(&mut self, arrival: &Arrival, payload: &[u8]) {
        self.inner.received(arrival, payload);
        let delay = arrival.delay_ns();
        self.base_delay_ns = self.base_delay_ns.min(delay);
        let deadline = PLAYOUT_DEADLINE.as_nanos() as u64;
        let on_time = delay <= self.base_delay_ns.saturating_add(deadline);
        if let Some(t) = self.second_of(arrival.sent_unix_ns) {
            let e = self.seconds.entry(t).or_default();
            if on_time {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
            e.2.push(delay as f64 / 1e6);
        }
    }

    fn restart(&mut self) {
        self.inner.restart();
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// The line a peer prints for a second (`live second {json}`).
pub fn line(s: &LiveSecond) -> String {
    format!("live second {}", serde_json::to_string(s).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::Filler;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    #[test]
    fn reports_each_finished_second_with_loss_and_delay() {
        let got: Arc<Mutex<Vec<LiveSecond>>> = Arc::default();
        let g = got.clone();
        let mut filler = Filler;
        let t0 = 1000 * S;
        let mut m = LiveMeter::new(
            "c-1",
            "caller",
            t0,
            Duration::from_millis(20),
            &mut filler,
            Box::new(move |s| g.lock().unwrap().push(s.clone())),
        );
        // Second 0 starts the meter; seconds 1 (all 50 frames, 2 ms late) and 2 (25 frames).
        m.tick(t0 + S / 2 + GRACE_NS);
        for k in 0..50u64 {
            let sent = t0 + S + k * 20_000_000;
            m.received(
                &Arrival { seq: k as u32, sent_unix_ns: sent, recv_unix_ns: sent + 2_000_000 },
                &[],
            );
        }
        for k in 0..25u64 {
            let sent = t0 + 2 * S + k * 40_000_000;
            m.received(
                &Arrival { seq: 0, sent_unix_ns: sent, recv_unix_ns: sent + 4_000_000 },
                &[],
            );
        }
        m.tick(t0 + 4 * S + GRACE_NS);
        let got = got.lock().unwrap().clone();
        assert_eq!(got.iter().map(|s| s.t).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(got[0].loss_pct, 0.0);
        assert_eq!(got[0].delay_ms, Some(2.0));
        assert!(got[0].mos > 4.0, "{got:?}");
        assert!((got[1].loss_pct - 50.0).abs() < 1e-9);
        assert!(got[1].mos < got[0].mos);
        // Nothing arrived in second 3: all lost, MOS 1.
        assert_eq!((got[2].loss_pct, got[2].delay_ms, got[2].mos), (100.0, None, 1.0));
        assert!(line(&got[0]).starts_with("live second {\"call\":\"c-1\""));
    }

    #[test]
    fn a_frame_past_the_playout_deadline_is_lost_one_just_inside_is_heard() {
        let got: Arc<Mutex<Vec<LiveSecond>>> = Arc::default();
        let g = got.clone();
        let mut filler = Filler;
        let t0 = 1000 * S;
        let mut m = LiveMeter::new(
            "c-1",
            "callee",
            t0,
            Duration::from_millis(20),
            &mut filler,
            Box::new(move |s| g.lock().unwrap().push(s.clone())),
        );
        m.tick(t0 + S / 2 + GRACE_NS);
        let base = 10_000_000;
        let deadline = PLAYOUT_DEADLINE.as_nanos() as u64;
        // Second 1: every frame 10 ms one way but 10 of them at base + deadline + 1 ns (late),
        // and 5 exactly at base + deadline (just in time); the base is seen first.
        for k in 0..50u64 {
            let sent = t0 + S + k * 20_000_000;
            let delay = match k {
                40..=49 => base + deadline + 1,
                30..=34 => base + deadline,
                _ => base,
            };
            m.received(
                &Arrival { seq: k as u32, sent_unix_ns: sent, recv_unix_ns: sent + delay },
                &[],
            );
        }
        m.tick(t0 + 2 * S + GRACE_NS);
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!((got[0].loss_pct - 20.0).abs() < 1e-9, "{got:?}");
        assert!((got[0].late_pct - 20.0).abs() < 1e-9, "{got:?}");
        assert!(got[0].mos < 4.0, "{got:?}");
    }
}
