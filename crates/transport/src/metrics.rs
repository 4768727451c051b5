//! Call metrics and verdicts: from the two peers' [`PeerReport`]s to loss, jitter, delay, gaps,
//! a MOS estimate and one of `connected`, `degraded`, `cut`, `blocked`, `error`.
//!
//! Inputs: each peer's `frames_sent`, its media window and the arrivals it recorded (sequence
//! number, sender's stamp, receiver's stamp; all hosts share one clock). Nothing here reads a
//! clock or does I/O: [`analyze`] is a pure function of the two reports and the [`Thresholds`].
//!
//! Definitions (per direction, sender S → receiver R):
//! - **expected frames**: the frames S's clock produced, less those S sent after R had stopped
//!   listening (R's `recv_end` minus the median delay); frame `seq` is taken to be sent at
//!   `media_start + seq * interval` (the voice clock is steady, see [`crate::voice::drive`]).
//! - **late frames**: frames received more than the playout deadline after the path's base
//!   delay (see [`crate::voice::PLAYOUT_DEADLINE`] and [`Playout`]): a listener never hears them.
//! - **loss** (`loss_pct`, the effective loss): `1 - frames played / expected`, in percent, a
//!   frame being played when it arrived and was not late; 100 % when S sent nothing. It is the
//!   loss the verdict, the E-model and the timeline use. Beside it, **network loss**
//!   (`network_loss_pct`, `1 - unique frames received / expected`) and **late** (`late_pct`,
//!   late frames / expected) add up to it.
//! - **jitter**: RFC 3550 §6.4.1 interarrival jitter, `J += (|D(i-1,i)| - J) / 16` with
//!   `D = (Rj - Ri) - (Sj - Si)` over the frames in order of arrival, S and R being the frame's
//!   send stamp and receive time.
//! - **one-way delay**: `recv - sent`, median and 95th percentile (nearest rank).
//! - **longest gap**: the longest time nothing reached R while S was talking (late frames
//!   included: a gap is the network's silence): between consecutive
//!   arrivals, from S's media start (shifted by the median delay) to the first arrival, and from
//!   the last arrival to S's media end (shifted by the median delay, capped at R's `recv_end`).
//!   The last of these is the **trailing gap**.
//! - **MOS**: the ITU-T G.107 E-model (see [`emodel`]) from the median delay, the jitter, the
//!   effective loss and the burstiness of the loss (late frames counted as lost); 1.0 when no
//!   frame was played.
//!
//! Verdicts are decided by [`Thresholds`], the one place where the limits live.

use std::collections::HashSet;

use crate::peer::PeerReport;
use crate::voice::{Arrival, Playout};

pub use callwall_results::metrics::{
    CallMetrics, DirectionMetrics, Second, Thresholds, Verdict, MAX_TIMELINE_SECS,
};

const MS: f64 = 1e6;

/// Per-direction working data kept for the timeline.
struct DirWork {
    media_start: u64,
    interval_ns: u64,
    expected: u64,
    /// First arrival per seq, in arrival order: (seq, delay_ms, running jitter in ms, played).
    uniq: Vec<(u32, f64, f64, bool)>,
}

fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / MS
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest value with at least p of the data at or below it.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// G.107 BurstR from a received/lost pattern, as a 2-state Markov chain: with
/// p = P(lost | previous received) and q = P(received | previous lost), BurstR = 1 / (p + q).
/// Random loss gives 1; when the pattern has too few transitions to tell, 1.
fn burst_ratio(received: &[bool]) -> f64 {
    let (mut rr, mut rl, mut lr, mut ll) = (0u64, 0u64, 0u64, 0u64);
    for w in received.windows(2) {
        match (w[0], w[1]) {
            (true, true) => rr += 1,
            (true, false) => rl += 1,
            (false, true) => lr += 1,
            (false, false) => ll += 1,
        }
    }
    if rr + rl == 0 || lr + ll == 0 {
        return 1.0;
    }
    let p = rl as f64 / (rr + rl) as f64;
    let q = lr as f64 / (lr + ll) as f64;
    if p + q <= 0.0 {
        1.0
    } else {
        (1.0 / (p + q)).clamp(0.5, 100.0)
    }
}

fn direction(
    s: &PeerReport,
    r: &PeerReport,
    t0: u64,
    th: &Thresholds,
) -> (DirectionMetrics, DirWork) {
    let interval_ns = (s.voice.interval().as_nanos() as u64).max(1);
    // First arrival of each seq the sender could have sent, in arrival order.
    let mut seen: HashSet<u32> = HashSet::with_capacity(r.arrivals.len());
    let mut uniq: Vec<&Arrival> = Vec::with_capacity(r.arrivals.len());
    let mut duplicates = 0u64;
    for a in &r.arrivals {
        if u64::from(a.seq) >= s.frames_sent {
            continue; // not a frame this sender produced (stale or forged)
        }
        if !seen.insert(a.seq) {
            duplicates += 1;
        } else {
            uniq.push(a);
        }
    }
    let mut delays: Vec<f64> =
        uniq.iter().map(|a| ns_to_ms(a.recv_unix_ns.saturating_sub(a.sent_unix_ns))).collect();
    let delay_med = median(&mut delays);
    let delay_p95 = percentile(&delays, 0.95);
    let delay_med_ns = (delay_med * MS) as u64;

    // Frames the receiver could have heard: drop those sent after it stopped listening.
    let mut expected = s.frames_sent;
    if r.recv_end_unix_ns > 0 && s.frames_sent > 0 {
        let cutoff = r.recv_end_unix_ns.saturating_sub(delay_med_ns);
        let heard_until = if cutoff < s.media_start_unix_ns {
            0
        } else {
            (cutoff - s.media_start_unix_ns) / interval_ns + 1
        };
        expected = expected.min(heard_until);
    }
    let max_seq_plus_1 = uniq.iter().map(|a| u64::from(a.seq) + 1).max().unwrap_or(0);
    expected = expected.max(max_seq_plus_1);
    let received = uniq.len() as u64;
    // The playout rule: a frame later than the deadline past the base delay is not heard.
    let playout = Playout::new(uniq.iter().map(|a| a.delay_ns()), crate::voice::PLAYOUT_DEADLINE);
    let played = uniq.iter().filter(|a| playout.on_time(a.delay_ns())).count() as u64;
    let late = received - played;
    let pct = |n: u64| {
        if expected == 0 {
            100.0
        } else {
            100.0 * (expected - n.min(expected)) as f64 / expected as f64
        }
    };
    let loss_pct = pct(played);
    let network_loss_pct = pct(received);
    let late_pct = if expected == 0 { 0.0 } else { 100.0 * late as f64 / expected as f64 };

    // RFC 3550 §6.4.1 interarrival jitter, in order of arrival.
    let mut jitter_ns = 0.0f64;
    let mut work_uniq = Vec::with_capacity(uniq.len());
    for (i, a) in uniq.iter().enumerate() {
        if i > 0 {
            let p = uniq[i - 1];
            // In integers: UNIX ns do not fit an f64 exactly.
            let d = (i128::from(a.recv_unix_ns) - i128::from(p.recv_unix_ns))
                - (i128::from(a.sent_unix_ns) - i128::from(p.sent_unix_ns));
            let d = d as f64;
            jitter_ns += (d.abs() - jitter_ns) / 16.0;
        }
        let delay = ns_to_ms(a.recv_unix_ns.saturating_sub(a.sent_unix_ns));
        work_uniq.push((a.seq, delay, jitter_ns / MS, playout.on_time(a.delay_ns())));
    }
    let jitter_ms = jitter_ns / MS;

    // Gaps, on the receiver's clock, while the sender was talking (shifted by the delay).
    let mut recv_times: Vec<u64> = uniq.iter().map(|a| a.recv_unix_ns).collect();
    recv_times.sort_unstable();
    let (mut longest_gap_ms, mut trailing_gap_ms, mut first_media_ms) = (0.0, 0.0, None);
    if let (Some(&first), Some(&last)) = (recv_times.first(), recv_times.last()) {
        let talk_start = s.media_start_unix_ns.saturating_add(delay_med_ns);
        let mut talk_end = s.media_end_unix_ns.saturating_add(delay_med_ns);
        if r.recv_end_unix_ns > 0 {
            talk_end = talk_end.min(r.recv_end_unix_ns);
        }
        let leading = ns_to_ms(first.saturating_sub(talk_start));
        trailing_gap_ms = ns_to_ms(talk_end.saturating_sub(last));
        let inner = recv_times.windows(2).map(|w| ns_to_ms(w[1] - w[0])).fold(0.0, f64::max);
        longest_gap_ms = leading.max(trailing_gap_ms).max(inner);
        first_media_ms = Some(ns_to_ms(first.saturating_sub(t0)));
    }

    // Loss pattern (played or not) over the expected frames, for BurstR.
    let mut got = vec![false; usize::try_from(expected).unwrap_or(0).min(1 << 26)];
    for a in uniq.iter().filter(|a| playout.on_time(a.delay_ns())) {
        if let Some(slot) = got.get_mut(a.seq as usize) {
            *slot = true;
        }
    }
    let burst = burst_ratio(&got);

    let (r_factor, mos) = if played == 0 {
        (0.0, 1.0)
    } else {
        let r = emodel::r_factor(&emodel::Input {
            mouth_to_ear_ms: emodel::mouth_to_ear_ms(delay_med, jitter_ms),
            loss_pct,
            burst_ratio: burst,
            codec: emodel::Codec::default(),
        });
        (r, emodel::mos_from_r(r))
    };

    let m = DirectionMetrics {
        frames_sent: s.frames_sent,
        frames_expected: expected,
        frames_received: received,
        duplicates,
        loss_pct,
        frames_late: Some(late),
        network_loss_pct: Some(network_loss_pct),
        late_pct: Some(late_pct),
        jitter_ms,
        one_way_delay_ms: delay_med,
        one_way_delay_p95_ms: delay_p95,
        longest_gap_ms,
        trailing_gap_ms,
        first_media_ms,
        burst_ratio: burst,
        r_factor,
        mos,
        verdict: Verdict::Connected,
    };
    let m = DirectionMetrics { verdict: callwall_results::judge::judge_direction(&m, th), ..m };
    let w = DirWork { media_start: s.media_start_unix_ns, interval_ns, expected, uniq: work_uniq };
    (m, w)
}

fn timeline(up: &DirWork, down: &DirWork, t0: u64, end: u64) -> Vec<Second> {
    let secs = (end.saturating_sub(t0).div_ceil(1_000_000_000)).min(MAX_TIMELINE_SECS) as usize;
    if secs == 0 {
        return Vec::new();
    }
    // Per direction and second: expected, played (received in time), delays, last running
    // jitter.
    struct Bucket {
        expected: u64,
        received: u64,
        delays: Vec<f64>,
        jitter: f64,
    }
    let fill = |w: &DirWork| {
        let mut b: Vec<Bucket> = (0..secs)
            .map(|_| Bucket { expected: 0, received: 0, delays: Vec::new(), jitter: 0.0 })
            .collect();
        let sec_of = |seq: u64| -> Option<usize> {
            let at = w.media_start.saturating_add(seq.saturating_mul(w.interval_ns));
            let s = (at.checked_sub(t0)? / 1_000_000_000) as usize;
            (s < secs).then_some(s)
        };
        for seq in 0..w.expected {
            match sec_of(seq) {
                Some(s) => b[s].expected += 1,
                None if w.media_start.saturating_add(seq.saturating_mul(w.interval_ns)) >= t0 => {
                    break
                }
                None => {}
            }
        }
        for &(seq, delay, jitter, played) in &w.uniq {
            if let Some(s) = sec_of(u64::from(seq)) {
                b[s].received += u64::from(played);
                b[s].delays.push(delay);
                b[s].jitter = jitter;
            }
        }
        b
    };
    let (mut bu, mut bd) = (fill(up), fill(down));
    let loss = |b: &Bucket| {
        (b.expected > 0)
            .then(|| 100.0 * b.expected.saturating_sub(b.received) as f64 / b.expected as f64)
    };
    let mos_of = |b: &mut Bucket| -> Option<f64> {
        if b.expected == 0 {
            return None;
        }
        if b.received == 0 || b.delays.is_empty() {
            return Some(1.0);
        }
        let d = median(&mut b.delays);
        let l = 100.0 * b.expected.saturating_sub(b.received) as f64 / b.expected as f64;
        let r = emodel::r_factor(&emodel::Input {
            mouth_to_ear_ms: emodel::mouth_to_ear_ms(d, b.jitter),
            loss_pct: l,
            burst_ratio: 1.0,
            codec: emodel::Codec::default(),
        });
        Some(emodel::mos_from_r(r))
    };
    (0..secs)
        .map(|t| {
            let (u, d) = (&mut bu[t], &mut bd[t]);
            let mut all: Vec<f64> = u.delays.iter().chain(d.delays.iter()).copied().collect();
            let delay_ms = (!all.is_empty()).then(|| median(&mut all));
            let (up_loss_pct, down_loss_pct) = (loss(u), loss(d));
            let mos = match (mos_of(u), mos_of(d)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Second { t: t as u32, up_loss_pct, down_loss_pct, delay_ms, mos }
        })
        .collect()
}

fn attempts_summary(p: &PeerReport) -> String {
    if p.attempts.is_empty() {
        return "no strategy was tried".into();
    }
    let parts: Vec<String> = p
        .attempts
        .iter()
        .map(|a| match (&a.error, a.ok) {
            (_, true) => format!("{} connected", a.strategy),
            (Some(e), false) => format!("{} failed ({e})", a.strategy),
            (None, false) => format!("{} failed", a.strategy),
        })
        .collect();
    format!("tried {}", parts.join(", "))
}

/// Analyzes one call from the caller's and the callee's reports.
///
/// Never panics, whatever the reports hold (a crashed peer's report may be nearly empty).
pub fn analyze(caller: &PeerReport, callee: &PeerReport, th: &Thresholds) -> CallMetrics {
    let t0 = [caller.dial_start_unix_ns, callee.dial_start_unix_ns]
        .into_iter()
        .find(|&t| t > 0)
        .unwrap_or(0);
    let (up, wu) = direction(caller, callee, t0, th);
    let (down, wd) = direction(callee, caller, t0, th);
    // The timeline covers the talking, not the receivers' drain after it.
    let end = caller.media_end_unix_ns.max(callee.media_end_unix_ns);
    let timeline = if t0 > 0 { timeline(&wu, &wd, t0, end) } else { Vec::new() };

    let errors: Vec<String> = [("caller", caller), ("callee", callee)]
        .into_iter()
        .filter_map(|(n, p)| p.error.as_ref().map(|e| format!("{n} failed: {e}")))
        .collect();
    let strategy = caller.strategy.clone().or_else(|| callee.strategy.clone());

    // Setup that failed on signalling: a peer could not reach the signal server, or every
    // strategy the caller tried failed because signalling did not get through.
    let mut signalling: Vec<String> = [("caller", caller), ("callee", callee)]
        .into_iter()
        .filter_map(|(n, p)| p.signalling_failure.as_ref().map(|e| format!("{n}: {e}")))
        .collect();
    if signalling.is_empty()
        && !caller.attempts.is_empty()
        && caller.attempts.iter().all(|a| a.signalling)
    {
        signalling.push(format!("caller: {}", attempts_summary(caller)));
    }
    // The verdict: the one pure judge (callwall_results::judge).
    let callwall_results::judge::Judgement { verdict, reason } = callwall_results::judge::judge(
        &callwall_results::judge::CallInputs {
            up: &up,
            down: &down,
            peer_errors: &errors,
            signalling_failures: &signalling,
            attempts: &attempts_summary(caller),
            strategy: strategy.as_deref(),
        },
        th,
    );

    let setup_ms = match (caller.connected_unix_ns, caller.dial_start_unix_ns) {
        (Some(c), d) if d > 0 => Some(ns_to_ms(c.saturating_sub(d))),
        _ => None,
    };
    CallMetrics {
        verdict,
        reason,
        setup_ms,
        strategy,
        attempts: caller.attempts.len(),
        loss_pct: up.loss_pct.max(down.loss_pct),
        network_loss_pct: up.network_loss_pct.zip(down.network_loss_pct).map(|(a, b)| a.max(b)),
        late_pct: up.late_pct.zip(down.late_pct).map(|(a, b)| a.max(b)),
        jitter_ms: up.jitter_ms.max(down.jitter_ms),
        one_way_delay_ms: up.one_way_delay_ms.max(down.one_way_delay_ms),
        longest_gap_ms: up.longest_gap_ms.max(down.longest_gap_ms),
        mos: up.mos.min(down.mos),
        up,
        down,
        timeline,
    }
}

/// The ITU-T G.107 (06/2015) E-model, with every parameter at its default (Table 3) except the
/// delays, the packet loss and the codec.
///
/// `R = Ro - Is - Id - Ie_eff + A`, with:
/// - `Ro` and `Is` (basic signal-to-noise ratio, simultaneous impairments) from the default
///   loudness, noise and quantization parameters: `Ro = 94.77`, `Is = 1.41` (§7.1, §7.2);
///   with the delay impairments at zero delay this is the well-known default R of 93.2.
/// - `Id = Idte + Idle + Idd` (§7.3) with `T = Ta` = the mouth-to-ear delay and `Tr = 2 T`,
///   talker echo loudness `TELR = 65 dB` and weighted echo path loss `WEPL = 110 dB` (defaults,
///   i.e. echo well cancelled); `Idd` for `Ta > 100 ms` with the default `mT = 100 ms`, `sT = 1`.
/// - `Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)` (§7.4).
/// - `A = 0` (no advantage factor).
///
/// R converts to MOS (conversational quality, estimated) by Annex B.
pub mod emodel {
    /// The codec's equipment impairment values (ITU-T G.113 Appendix I).
    ///
    /// G.113 has no entry for Opus. The default is G.711 with packet loss concealment, `Ie = 0`,
    /// `Bpl = 25.1`: Opus at wideband VoIP rates is at least as clean as G.711 and its
    /// concealment at least as robust, so this is a conservative stand-in.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Codec {
        pub ie: f64,
        pub bpl: f64,
    }

    impl Default for Codec {
        fn default() -> Self {
            Codec { ie: 0.0, bpl: 25.1 }
        }
    }

    /// What the E-model needs from a call.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Input {
        /// One-way mouth-to-ear delay (see [`mouth_to_ear_ms`]).
        pub mouth_to_ear_ms: f64,
        /// Packet loss probability Ppl, in percent.
        pub loss_pct: f64,
        /// BurstR (1 for random loss).
        pub burst_ratio: f64,
        pub codec: Codec,
    }

    /// Packetisation delay of one 20 ms frame.
    pub const PACKETISATION_MS: f64 = 20.0;
    /// The smallest jitter buffer assumed.
    pub const MIN_JITTER_BUFFER_MS: f64 = 20.0;

    /// Mouth-to-ear delay: network one-way delay + a jitter buffer of twice the jitter (at least
    /// 20 ms) + 20 ms of packetisation.
    pub fn mouth_to_ear_ms(network_ms: f64, jitter_ms: f64) -> f64 {
        network_ms.max(0.0) + (2.0 * jitter_ms).max(MIN_JITTER_BUFFER_MS) + PACKETISATION_MS
    }

    // G.107 Table 3 defaults.
    const SLR: f64 = 8.0;
    const RLR: f64 = 2.0;
    const STMR: f64 = 15.0;
    const LSTR: f64 = 18.0;
    const DS: f64 = 3.0;
    const TELR: f64 = 65.0;
    const WEPL: f64 = 110.0;
    const QDU: f64 = 1.0;
    const NC: f64 = -70.0;
    const NFOR: f64 = -64.0;
    const PS: f64 = 35.0;
    const PR: f64 = 35.0;

    /// Total noise power No (G.107 §7.1, eq. 7-2 to 7-6), dBm0p.
    fn noise() -> f64 {
        let olr = SLR + RLR;
        let nfo = NFOR + RLR;
        let pre = PR + 10.0 * (1.0 + 10f64.powf((10.0 - LSTR) / 10.0)).log10();
        let nor = RLR - 121.0 + pre + 0.008 * (pre - 35.0).powi(2);
        let nos = PS - SLR - DS - 100.0 + 0.004 * (PS - olr - DS - 14.0).powi(2);
        10.0 * (10f64.powf(NC / 10.0)
            + 10f64.powf(nos / 10.0)
            + 10f64.powf(nor / 10.0)
            + 10f64.powf(nfo / 10.0))
        .log10()
    }

    /// Basic signal-to-noise ratio Ro (G.107 §7.1, eq. 7-1).
    pub fn ro() -> f64 {
        15.0 - 1.5 * (SLR + noise())
    }

    /// Simultaneous impairment factor Is = Iolr + Ist + Iq (G.107 §7.2).
    pub fn is() -> f64 {
        let no = noise();
        let olr = SLR + RLR;
        let xolr = olr + 0.2 * (64.0 + no - RLR);
        let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
        // STMRo with T = 0 (the echo term is negligible at TELR = 65 dB).
        let stmro = -10.0 * (10f64.powf(-STMR / 10.0) + 10f64.powf(-TELR / 10.0)).log10();
        let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
            - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
            - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
            + 29.0;
        let q = 37.0 - 15.0 * QDU.log10();
        let g = 1.07 + 0.258 * q + 0.0602 * q * q;
        let y = (ro() - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
        let z = 46.0 / 30.0 - g / 40.0;
        let iq = 15.0 * (1.0 + 10f64.powf(y) + 10f64.powf(z)).log10();
        iolr + ist + iq
    }

    /// Talker echo impairment Idte at mean one-way delay `t` ms (G.107 §7.3, eq. 7-21 to 7-24).
    pub fn idte(t: f64) -> f64 {
        let terv = TELR - 40.0 * ((1.0 + t / 10.0) / (1.0 + t / 150.0)).log10()
            + 6.0 * (-0.3 * t * t).exp();
        let roe = -1.5 * (noise() - RLR);
        let re = 80.0 + 2.5 * (terv - 14.0);
        ((roe - re) / 2.0 + ((roe - re).powi(2) / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp())
    }

    /// Listener echo impairment Idle at round-trip delay `tr` ms (G.107 §7.3, eq. 7-25, 7-26).
    pub fn idle(tr: f64) -> f64 {
        let rle = 10.5 * (WEPL + 7.0) * (tr + 1.0).powf(-0.25);
        let ro = ro();
        (ro - rle) / 2.0 + ((ro - rle).powi(2) / 4.0 + 169.0).sqrt()
    }

    /// Too-long-delay impairment Idd at absolute delay `ta` ms (G.107 §7.3, eq. 7-27, 7-28,
    /// with mT = 100 ms and sT = 1): 0 up to 100 ms.
    pub fn idd(ta: f64) -> f64 {
        if ta <= 100.0 {
            return 0.0;
        }
        let x = (ta / 100.0).log10() / 2f64.log10();
        25.0 * ((1.0 + x.powi(6)).powf(1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(1.0 / 6.0)
            + 2.0)
    }

    /// Effective equipment impairment Ie,eff (G.107 §7.4, eq. 7-29).
    pub fn ie_eff(codec: Codec, loss_pct: f64, burst_ratio: f64) -> f64 {
        let ppl = loss_pct.clamp(0.0, 100.0);
        let burst = if burst_ratio.is_finite() && burst_ratio > 0.0 { burst_ratio } else { 1.0 };
        let denom = ppl / burst + codec.bpl;
        if denom <= 0.0 {
            return codec.ie;
        }
        codec.ie + (95.0 - codec.ie) * ppl / denom
    }

    /// The transmission rating R (G.107 §7, eq. 7-1).
    pub fn r_factor(i: &Input) -> f64 {
        let t = if i.mouth_to_ear_ms.is_finite() { i.mouth_to_ear_ms.max(0.0) } else { 0.0 };
        let id = idte(t) + idle(2.0 * t) + idd(t);
        let r = ro() - is() - id - ie_eff(i.codec, i.loss_pct, i.burst_ratio);
        if r.is_finite() {
            r
        } else {
            0.0
        }
    }

    /// MOS-CQE from R (G.107 Annex B, eq. B-4): 1 for R < 0, 4.5 above 100, otherwise
    /// `1 + 0.035 R + R (R - 60)(100 - R) 7e-6`, floored at 1 (the polynomial dips just below
    /// 1 for R under about 6.5).
    pub fn mos_from_r(r: f64) -> f64 {
        if !r.is_finite() || r <= 0.0 {
            1.0
        } else if r >= 100.0 {
            4.5
        } else {
            (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).max(1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::emodel::*;
    use super::*;
    use crate::peer::{Attempt, PeerReport};
    use crate::Role;
    use callwall_results::{Cause, Direction, Problem};

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn emodel_defaults() {
        assert!(close(ro(), 94.77, 0.01), "Ro {}", ro());
        assert!(close(is(), 1.41, 0.01), "Is {}", is());
        // At zero delay the default R of G.107 is 93.2, MOS 4.41.
        let r = r_factor(&Input {
            mouth_to_ear_ms: 0.0,
            loss_pct: 0.0,
            burst_ratio: 1.0,
            codec: Codec::default(),
        });
        assert!(close(r, 93.2, 0.05), "R {r}");
        assert!(close(mos_from_r(93.2), 4.41, 0.005), "{}", mos_from_r(93.2));
    }

    #[test]
    fn mos_conversion_annex_b() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(0.0), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        assert!(close(mos_from_r(70.0), 3.60, 0.005)); // the degraded threshold
        assert!(close(mos_from_r(50.0), 2.58, 0.005));
        assert!(mos_from_r(3.0) >= 1.0);
        // Monotone over the range.
        let mut last = 0.0;
        for r in 0..=100 {
            let m = mos_from_r(r as f64);
            assert!(m >= last, "R {r}");
            last = m;
        }
    }

    #[test]
    fn emodel_random_loss_5pct() {
        // Ie_eff = 95 * 5 / (5 + 25.1) = 15.78; R = 93.2 - 15.78 = 77.4; MOS 3.92.
        let ie = ie_eff(Codec::default(), 5.0, 1.0);
        assert!(close(ie, 15.78, 0.01), "{ie}");
        let r = r_factor(&Input {
            mouth_to_ear_ms: 0.0,
            loss_pct: 5.0,
            burst_ratio: 1.0,
            codec: Codec::default(),
        });
        assert!(close(r, 77.4, 0.1), "{r}");
        assert!(close(mos_from_r(r), 3.92, 0.01));
        // Bursty loss hurts more: BurstR 2 -> 95 * 5 / (2.5 + 25.1) = 17.21.
        assert!(close(ie_eff(Codec::default(), 5.0, 2.0), 17.21, 0.01));
    }

    #[test]
    fn emodel_delay() {
        // Idd(200) = 25 (2^(1/6) - 3 (1 + 1/729)^(1/6) + 2) = 3.04; Idd(300) = 14.76.
        assert_eq!(idd(100.0), 0.0);
        assert!(close(idd(200.0), 3.04, 0.01), "{}", idd(200.0));
        assert!(close(idd(300.0), 14.76, 0.01), "{}", idd(300.0));
        // 300 ms mouth-to-ear: Id is about 20.7 (the usual 0.024 d + 0.11 (d - 177.3) fit
        // gives 20.7 too), so R is about 72.6 and MOS 3.70.
        let r = r_factor(&Input {
            mouth_to_ear_ms: 300.0,
            loss_pct: 0.0,
            burst_ratio: 1.0,
            codec: Codec::default(),
        });
        assert!(close(r, 72.7, 0.3), "{r}");
        assert!(close(mos_from_r(r), 3.71, 0.03));
        assert_eq!(mouth_to_ear_ms(100.0, 1.0), 140.0);
        assert_eq!(mouth_to_ear_ms(100.0, 30.0), 180.0);
    }

    #[test]
    fn burst_ratio_from_pattern() {
        assert_eq!(burst_ratio(&[true; 100]), 1.0);
        // Alternating loss: p = 1, q = 1 -> 0.5 (smoother than random).
        let alt: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
        assert!(close(burst_ratio(&alt), 0.5, 1e-9));
        // One burst of 10 in 100: p = 1/89, q = 1/10 -> ~9.
        let mut b = vec![true; 100];
        b[40..50].iter_mut().for_each(|x| *x = false);
        assert!(burst_ratio(&b) > 8.0);
    }

    const SEC: u64 = 1_000_000_000;
    const T0: u64 = 1_700_000_000 * SEC;

    /// A peer that connected at 100 ms and talked for `secs` seconds (50 frames/s).
    fn peer(role: Role, secs: u64) -> PeerReport {
        let mut p = PeerReport::new(role, "noise");
        p.dial_start_unix_ns = T0;
        p.connected_unix_ns = Some(T0 + SEC / 10);
        p.strategy = Some("udp".into());
        p.attempts.push(Attempt {
            strategy: "udp".into(),
            ok: true,
            elapsed_ms: 100.0,
            error: None,
            signalling: false,
        });
        p.media_start_unix_ns = T0 + SEC / 10;
        p.frames_sent = secs * 50;
        p.media_end_unix_ns = p.media_start_unix_ns + secs * SEC;
        p.recv_end_unix_ns = p.media_end_unix_ns + SEC;
        p
    }

    /// Delivers `from`'s frames to `to` with `delay_ms`, except those `lose` says.
    fn deliver(from: &PeerReport, to: &mut PeerReport, delay_ms: u64, lose: impl Fn(u32) -> bool) {
        let iv = 20_000_000;
        for seq in 0..from.frames_sent as u32 {
            if lose(seq) {
                continue;
            }
            let sent = from.media_start_unix_ns + u64::from(seq) * iv;
            to.arrivals.push(Arrival {
                seq,
                sent_unix_ns: sent,
                recv_unix_ns: sent + delay_ms * 1_000_000,
            });
        }
    }

    fn call(
        secs: u64,
        delay: u64,
        lose_up: impl Fn(u32) -> bool,
        lose_down: impl Fn(u32) -> bool,
    ) -> CallMetrics {
        let mut a = peer(Role::Caller, secs);
        let mut b = peer(Role::Callee, secs);
        deliver(&a.clone(), &mut b, delay, lose_up);
        deliver(&b.clone(), &mut a, delay, lose_down);
        analyze(&a, &b, &Thresholds::default())
    }

    #[test]
    fn clean_call_is_connected() {
        let m = call(10, 30, |_| false, |_| false);
        assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
        assert_eq!(m.up.frames_received, 500);
        assert_eq!(m.loss_pct, 0.0);
        assert!(close(m.one_way_delay_ms, 30.0, 1e-6));
        assert!(close(m.jitter_ms, 0.0, 1e-6));
        assert!(close(m.longest_gap_ms, 20.0, 0.01), "{}", m.longest_gap_ms);
        assert_eq!(m.setup_ms, Some(100.0));
        assert_eq!(m.strategy.as_deref(), Some("udp"));
        assert!(m.mos > 4.3, "{}", m.mos);
        assert!(close(m.up.first_media_ms.unwrap(), 130.0, 0.01));
        assert_eq!(m.timeline.len(), 11);
        assert_eq!(m.timeline[0].up_loss_pct, Some(0.0));
        assert_eq!(m.timeline[5].delay_ms, Some(30.0));
        assert_eq!(m.timeline[10].up_loss_pct, Some(0.0));
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["verdict"], "connected");
    }

    #[test]
    fn loss_threshold() {
        // Every 50th frame lost: 2 %, still connected; every 25th (4 %): degraded.
        let m = call(10, 20, |s| s % 50 == 7, |_| false);
        assert!(close(m.up.loss_pct, 2.0, 1e-9));
        assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
        let m = call(10, 20, |_| false, |s| s % 25 == 7);
        assert!(close(m.down.loss_pct, 4.0, 1e-9));
        assert_eq!(m.verdict, Verdict::Degraded);
        assert_eq!(m.up.verdict, Verdict::Connected);
        let Cause::Degraded { problems, .. } = &m.reason else { panic!("{}", m.reason) };
        assert!(
            matches!(problems[..], [Problem::Loss { direction: Direction::Down, loss_pct, .. }]
                if close(loss_pct, 4.0, 1e-9)),
            "{problems:?}"
        );
        assert!(m.timeline[3].down_loss_pct.unwrap() > 0.0);
    }

    #[test]
    fn mos_threshold() {
        // 350 ms one way: no loss, short gaps, but mouth-to-ear 390 ms gives MOS < 3.6.
        let m = call(10, 350, |_| false, |_| false);
        assert_eq!(m.loss_pct, 0.0);
        assert!(m.mos < 3.6, "{}", m.mos);
        assert_eq!(m.verdict, Verdict::Degraded);
        let Cause::Degraded { problems, .. } = &m.reason else { panic!("{}", m.reason) };
        assert!(problems.iter().any(|p| matches!(p, Problem::Mos { .. })), "{problems:?}");
        // 150 ms is fine.
        let m = call(10, 150, |_| false, |_| false);
        assert_eq!(m.verdict, Verdict::Connected, "{} {}", m.reason, m.mos);
    }

    #[test]
    fn gap_threshold() {
        // 1.2 s outage mid-call (60 frames), 1.2 % loss: degraded by the gap alone.
        let m = call(50, 20, |s| (1000..1060).contains(&s), |_| false);
        assert!(m.up.loss_pct < 3.0);
        assert!(close(m.up.longest_gap_ms, 1220.0, 0.01), "{}", m.up.longest_gap_ms);
        assert_eq!(m.verdict, Verdict::Degraded, "{}", m.reason);
        // 0.8 s is fine.
        let m = call(50, 20, |s| (1000..1040).contains(&s), |_| false);
        assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
    }

    #[test]
    fn cut_threshold() {
        // Media stops after 5 s of a 10 s call: cut.
        let m = call(10, 20, |_| false, |s| s >= 250);
        assert_eq!(m.verdict, Verdict::Cut, "{}", m.reason);
        assert_eq!(m.down.verdict, Verdict::Cut);
        assert!(close(m.down.trailing_gap_ms, 5020.0, 0.01), "{}", m.down.trailing_gap_ms);
        assert!(matches!(m.reason, Cause::Cut { direction: Direction::Down, .. }), "{}", m.reason);
        // Stopping 2 s before the end is a degraded call, not a cut.
        let m = call(10, 20, |_| false, |s| s >= 400);
        assert_eq!(m.verdict, Verdict::Degraded, "{}", m.reason);
        // The timeline shows when: loss 0 before 5 s, 100 % after.
        let m = call(10, 20, |_| false, |s| s >= 250);
        assert_eq!(m.timeline[2].down_loss_pct, Some(0.0));
        assert_eq!(m.timeline[7].down_loss_pct, Some(100.0));
        assert_eq!(m.timeline[7].mos, Some(1.0));
    }

    #[test]
    fn blocked_when_nothing_arrives() {
        let mut a = PeerReport::new(Role::Caller, "noise");
        a.dial_start_unix_ns = T0;
        a.attempts.push(Attempt {
            strategy: "udp".into(),
            ok: false,
            elapsed_ms: 2000.0,
            error: Some("timed out".into()),
            signalling: false,
        });
        let b = PeerReport::new(Role::Callee, "noise");
        let m = analyze(&a, &b, &Thresholds::default());
        assert_eq!(m.verdict, Verdict::Blocked);
        assert_eq!(m.mos, 1.0);
        assert_eq!(m.loss_pct, 100.0);
        assert_eq!(m.setup_ms, None);
        let Cause::NoMedia { attempts } = &m.reason else { panic!("{}", m.reason) };
        assert!(attempts.contains("udp failed (timed out)"), "{attempts}");
        // One-way audio is blocked too.
        let m = call(5, 20, |_| true, |_| false);
        assert_eq!(m.verdict, Verdict::Blocked);
        assert!(matches!(m.reason, Cause::OneWay { .. }), "{}", m.reason);
    }

    #[test]
    fn setup_that_failed_on_signalling_is_no_signalling_never_error() {
        // Every strategy failed because the signal server's replies never came.
        let mut a = PeerReport::new(Role::Caller, "webrtc");
        a.dial_start_unix_ns = T0;
        a.attempts.push(Attempt {
            strategy: "direct".into(),
            ok: false,
            elapsed_ms: 8000.0,
            error: Some("signalling failed: the signal server did not answer".into()),
            signalling: true,
        });
        let b = PeerReport::new(Role::Callee, "webrtc");
        let m = analyze(&a, &b, &Thresholds::default());
        assert_eq!(m.verdict, Verdict::NoSignalling, "{}", m.reason);
        assert!(matches!(m.reason, Cause::NoSignalling { .. }), "{}", m.reason);
        assert_eq!(serde_json::to_string(&m.verdict).unwrap(), "\"no-signalling\"");
        // The caller could not put its attempt: the same, from the peer's own failure.
        let mut a = PeerReport::new(Role::Caller, "noise");
        a.signalling_failure = Some("signalling: no reply".into());
        let m = analyze(&a, &b, &Thresholds::default());
        assert_eq!(m.verdict, Verdict::NoSignalling, "{}", m.reason);
        // A crash still wins: `error` is for the testbed's own faults.
        a.error = Some("crashed".into());
        assert_eq!(analyze(&a, &b, &Thresholds::default()).verdict, Verdict::Error);
    }

    #[test]
    fn error_wins() {
        let mut a = peer(Role::Caller, 5);
        let b = peer(Role::Callee, 5);
        a.error = Some("signal server unreachable".into());
        let m = analyze(&a, &b, &Thresholds::default());
        assert_eq!(m.verdict, Verdict::Error);
        let Cause::PeerFailed { errors } = &m.reason else { panic!("{}", m.reason) };
        assert_eq!(errors, &["caller failed: signal server unreachable".to_string()]);
        // An empty report (a crashed peer) does not panic.
        let m = analyze(&PeerReport::default(), &PeerReport::default(), &Thresholds::default());
        assert_eq!(m.verdict, Verdict::Blocked);
    }

    #[test]
    fn verdict_order_and_serde() {
        assert!(Verdict::Connected < Verdict::Degraded);
        assert!(Verdict::Degraded < Verdict::Cut);
        assert!(Verdict::Cut < Verdict::Blocked);
        assert!(Verdict::Blocked < Verdict::NoSignalling);
        assert!(Verdict::NoSignalling < Verdict::Error);
        assert_eq!(serde_json::to_string(&Verdict::Cut).unwrap(), "\"cut\"");
        let t: Thresholds = serde_json::from_str(r#"{"degraded_loss_pct": 5}"#).unwrap();
        assert_eq!(t.degraded_loss_pct, 5.0);
        assert_eq!(t.degraded_mos, 3.6);
    }

    #[test]
    fn rfc3550_jitter_and_duplicates() {
        // Delays alternate 20 ms / 30 ms: |D| is 10 ms every frame, so J converges to 10 ms.
        let mut a = peer(Role::Caller, 10);
        let mut b = peer(Role::Callee, 10);
        let iv = 20_000_000;
        for seq in 0..a.frames_sent as u32 {
            let sent = a.media_start_unix_ns + u64::from(seq) * iv;
            let delay = if seq % 2 == 0 { 20_000_000 } else { 30_000_000 };
            b.arrivals.push(Arrival { seq, sent_unix_ns: sent, recv_unix_ns: sent + delay });
        }
        // A duplicate and a frame number the caller never sent are not counted.
        let dup = b.arrivals[10];
        b.arrivals.push(dup);
        b.arrivals.push(Arrival { seq: 9999, ..dup });
        deliver(&b.clone(), &mut a, 20, |_| false);
        let m = analyze(&a, &b, &Thresholds::default());
        assert!(close(m.up.jitter_ms, 10.0, 0.01), "{}", m.up.jitter_ms);
        assert_eq!(m.up.duplicates, 1);
        assert_eq!(m.up.frames_received, 500);
        assert_eq!(m.up.loss_pct, 0.0);
        assert!(close(m.up.one_way_delay_ms, 25.0, 1e-9));
        assert!(close(m.up.one_way_delay_p95_ms, 30.0, 1e-9));
    }

    /// A call whose up frames take `delay_ns(seq)` one way (down: 20 ms, nothing lost).
    fn call_with_delays(secs: u64, delay_ns: impl Fn(u32) -> u64) -> CallMetrics {
        let mut a = peer(Role::Caller, secs);
        let mut b = peer(Role::Callee, secs);
        let iv = 20_000_000;
        for seq in 0..a.frames_sent as u32 {
            let sent = a.media_start_unix_ns + u64::from(seq) * iv;
            b.arrivals.push(Arrival {
                seq,
                sent_unix_ns: sent,
                recv_unix_ns: sent + delay_ns(seq),
            });
        }
        // The receiver's order is the arrival order.
        b.arrivals.sort_by_key(|a| a.recv_unix_ns);
        deliver(&b.clone(), &mut a, 20, |_| false);
        analyze(&a, &b, &Thresholds::default())
    }

    #[test]
    fn late_frames_count_as_lost_and_a_frame_just_inside_the_deadline_is_played() {
        let deadline = crate::voice::PLAYOUT_DEADLINE.as_nanos() as u64;
        let base = 30_000_000;
        // Every 10th frame arrives 1 ns past the deadline (10 % late), every 10th + 5 exactly
        // at it (played): nothing is lost on the network.
        let m = call_with_delays(10, |s| match s % 10 {
            0 => base + deadline + 1,
            5 => base + deadline,
            _ => base,
        });
        assert_eq!(m.up.frames_received, 500);
        assert_eq!(m.up.frames_late, Some(50));
        assert_eq!(m.up.network_loss_pct, Some(0.0));
        assert!(close(m.up.late_pct.unwrap(), 10.0, 1e-9), "{:?}", m.up.late_pct);
        assert!(close(m.up.loss_pct, 10.0, 1e-9), "{}", m.up.loss_pct);
        assert!(close(m.loss_pct, 10.0, 1e-9));
        assert_eq!(m.network_loss_pct, Some(0.0));
        assert!(close(m.late_pct.unwrap(), 10.0, 1e-9));
        // The verdict and the E-model see the effective loss: degraded by loss, and the MOS is
        // the E-model's for 10 % loss, not for a clean call.
        assert_eq!(m.verdict, Verdict::Degraded, "{}", m.reason);
        let Cause::Degraded { problems, .. } = &m.reason else { panic!("{}", m.reason) };
        assert!(
            problems.iter().any(|p| matches!(p, Problem::Loss { direction: Direction::Up, .. })),
            "{problems:?}"
        );
        let clean = call_with_delays(10, |_| base);
        assert!(m.up.mos < clean.up.mos - 0.5, "{} vs {}", m.up.mos, clean.up.mos);
        // The timeline shows the late frames as loss too.
        assert!(m.timeline[3].up_loss_pct.unwrap() > 5.0, "{:?}", m.timeline[3]);

        // Every frame at most the deadline above the base: all played, connected.
        let m = call_with_delays(10, |s| if s % 10 == 5 { base + deadline } else { base });
        assert_eq!(m.up.frames_late, Some(0));
        assert_eq!(m.up.loss_pct, 0.0);
        assert_eq!(m.up.late_pct, Some(0.0));
        assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
    }

    #[test]
    fn the_deadline_is_past_the_paths_base_delay_not_the_send_time() {
        // A long path (400 ms one way) whose frames vary by 0-50 ms: every frame is heard, late,
        // as a satellite call is, and the E-model marks the delay (not loss).
        let m = call_with_delays(10, |s| 400_000_000 + u64::from(s % 6) * 10_000_000);
        assert_eq!(m.up.frames_late, Some(0));
        assert_eq!(m.up.loss_pct, 0.0);
        assert!(m.up.mos < 3.6, "{}", m.up.mos);
        // When no frame is played at all (every frame but the first far behind it), MOS 1.0.
        let m = call_with_delays(10, |s| if s == 0 { 10_000_000 } else { 900_000_000 });
        assert_eq!(m.up.frames_late, Some(499));
        assert!(m.up.loss_pct > 99.0, "{}", m.up.loss_pct);
        assert_eq!(m.up.verdict, Verdict::Degraded);
        assert!(m.up.mos < 1.5, "{}", m.up.mos);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// More frames lost or late never raises the E-model MOS and never lowers the loss
        /// shown: a call whose frames `extra` also loses (half on the network, half late) is
        /// never rated better than the call without them.
        #[test]
        fn more_loss_or_lateness_never_raises_the_mos(
            base in proptest::collection::vec(0u8..100, 250),
            extra in proptest::collection::vec(0u8..100, 250),
            p_base in 0u8..30,
            p_extra in 0u8..40,
        ) {
            let deadline = crate::voice::PLAYOUT_DEADLINE.as_nanos() as u64;
            // None: lost; Some(d): arrives after d ns.
            let fate = |seq: u32, with_extra: bool| -> Option<u64> {
                let i = seq as usize % 250;
                if base[i] < p_base {
                    return None;
                }
                if with_extra && extra[i] < p_extra {
                    return if extra[i] % 2 == 0 { None } else { Some(20_000_000 + deadline + 1) };
                }
                Some(20_000_000)
            };
            let run = |with_extra: bool| {
                let mut a = peer(Role::Caller, 5);
                let mut b = peer(Role::Callee, 5);
                let iv = 20_000_000;
                for seq in 0..a.frames_sent as u32 {
                    let sent = a.media_start_unix_ns + u64::from(seq) * iv;
                    if let Some(d) = fate(seq, with_extra) {
                        b.arrivals.push(Arrival { seq, sent_unix_ns: sent, recv_unix_ns: sent + d });
                    }
                }
                b.arrivals.sort_by_key(|a| a.recv_unix_ns);
                deliver(&b.clone(), &mut a, 20, |_| false);
                analyze(&a, &b, &Thresholds::default())
            };
            let (less, more) = (run(false), run(true));
            proptest::prop_assert!(more.up.loss_pct >= less.up.loss_pct);
            proptest::prop_assert!(
                more.up.mos <= less.up.mos + 1e-9,
                "mos {} with more loss > {} without", more.up.mos, less.up.mos
            );
            proptest::prop_assert!(more.up.verdict >= less.up.verdict);
        }
    }

    #[test]
    fn receiver_that_stopped_early_is_not_charged() {
        // The callee stops listening 1 s before the caller stops talking (and has no drain):
        // the frames it could not hear are not loss.
        let mut a = peer(Role::Caller, 10);
        let mut b = peer(Role::Callee, 10);
        b.recv_end_unix_ns = a.media_end_unix_ns - SEC;
        let cutoff = b.recv_end_unix_ns;
        let iv = 20_000_000;
        for seq in 0..a.frames_sent as u32 {
            let sent = a.media_start_unix_ns + u64::from(seq) * iv;
            if sent + 20_000_000 <= cutoff {
                b.arrivals.push(Arrival {
                    seq,
                    sent_unix_ns: sent,
                    recv_unix_ns: sent + 20_000_000,
                });
            }
        }
        deliver(&b.clone(), &mut a, 20, |_| false);
        let m = analyze(&a, &b, &Thresholds::default());
        assert!(m.up.loss_pct < 0.5, "{}", m.up.loss_pct);
        assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
    }
}
