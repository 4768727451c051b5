//! Verdicts for external calls: from the peers' reports when they give frames, otherwise from
//! what the censor saw of the call's packets.
//!
//! [`judge_from_network`] is pure. Its input, [`NetworkObservation`], is what the censor can
//! count for one call without understanding its protocol: per direction (`up` = caller to
//! callee through the censor) and per time bin from the call's start, the packets and bytes it
//! forwarded and the packets it dropped. The rules, with the same [`Thresholds`] as the
//! built-in analysis:
//!
//! - **media seen** in a direction: at least [`NetworkThresholds::min_active_secs`] whole
//!   seconds after the handshake each carried at least [`NetworkThresholds::min_media_pps`]
//!   forwarded packets (a voice stream of 20 ms frames carries 50; a handshake, keepalives or
//!   ICE checks that stop do not last). The handshake ends at the peers' `connected` time when
//!   they reported it, else at the call's start.
//! - `blocked`: no media seen in at least one direction.
//! - `cut`: media seen, then the direction fell silent for longer than
//!   `cut_trailing_gap_ms` before the media's expected end (first media + duration).
//! - `degraded`: the censor dropped more than `degraded_loss_pct` of the direction's packets
//!   after the handshake, or the longest silence between media exceeded `degraded_gap_ms`.
//! - `connected` otherwise.
//!
//! These are the rules of the one pure judge, `callwall_results::judge::verdict_of`, fed the
//! censor's figures (media seen, the drops as the loss, no MOS); this module only turns the
//! censor's bins into those figures and words the reason.
//!
//! The result always carries a note saying it was judged from the network: there is no MOS,
//! no one-way delay and no jitter, only drops, gaps and rate.

use std::time::Duration;

use callwall_results::{judge, Cause, Direction, Problem};
use callwall_transport::{metrics, CallMetrics, Role, Thresholds, Verdict, VoiceModel};
use serde::Serialize;

use crate::report::{ExternalReport, Stage};
use crate::runner::PeerOutcome;

/// The note every network-judged result carries.
pub const NETWORK_NOTE: &str = "judged from the network: the peers reported no frames, so the \
     figures are the censor's view of the call's packets (drops, gaps, rate), without MOS, \
     delay or jitter";

/// What the censor forwarded and dropped of one direction of a call in one time bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bin {
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
    pub dropped_packets: u64,
}

/// The censor's view of one call: bins of equal width from the call's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkObservation {
    /// When the call started (the contract's start time), UNIX ns.
    pub start_unix_ns: u64,
    /// Width of every bin (at most one second; 100 ms is a good choice).
    pub bin: Duration,
    /// Caller to callee.
    pub up: Vec<Bin>,
    /// Callee to caller.
    pub down: Vec<Bin>,
    /// When a peer reported `connected` (the earliest), if one did.
    pub connected_unix_ns: Option<u64>,
    /// How long the peers were told to talk.
    pub duration: Duration,
    /// The caller's packets to the signal server (every bin of the pair, from before the
    /// call's start too), summed: not media, but what says whether signalling got through.
    pub signal_up: Bin,
    /// The signal server's packets to the caller, summed.
    pub signal_down: Bin,
}

/// How far a peer's claim of received frames may exceed what the censor forwarded toward it
/// before the report is taken to contradict the network (see [`cross_check`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossCheck {
    /// The claimed bytes (frames × frame size) may be up to this many times the IP bytes the
    /// censor forwarded toward the peer. Default 2.
    pub factor: u64,
    /// Plus this many frames' worth. Default 25 (half a second of 20 ms frames).
    pub slack_frames: u64,
}

impl Default for CrossCheck {
    fn default() -> Self {
        CrossCheck { factor: 2, slack_frames: 25 }
    }
}

/// Checks each reporting peer's received frames against the censor's view: a frame the peer
/// received crossed the censor toward it (the caller's frames came `down`, the callee's `up`,
/// directly or through the relay), in at least `frame_bytes` IP bytes (the frame is carried
/// whole; encryption makes it incompressible). A claim of more than `factor` × the forwarded
/// bytes plus `slack_frames` frames is a contradiction: `Err` names the peer and the figures.
/// Peers that reported no frames are not checked. Pure.
pub fn cross_check(
    caller: &ExternalReport,
    callee: &ExternalReport,
    obs: &NetworkObservation,
    frame_bytes: u64,
    cc: &CrossCheck,
) -> Result<(), String> {
    let toward = |bins: &[Bin]| bins.iter().map(|b| b.forwarded_bytes).sum::<u64>();
    let mut out = Vec::new();
    for (name, r, forwarded, dir) in [
        ("caller", caller, toward(&obs.down), "callee to caller"),
        ("callee", callee, toward(&obs.up), "caller to callee"),
    ] {
        if !r.reports_frames() {
            continue;
        }
        let frames = r.arrivals.len() as u64;
        let claimed = frames.saturating_mul(frame_bytes);
        let allowed = forwarded
            .saturating_mul(cc.factor)
            .saturating_add(cc.slack_frames.saturating_mul(frame_bytes));
        if claimed > allowed {
            out.push(format!(
                "the {name} reports {frames} frames received ({claimed} bytes), but the censor \
                 forwarded {forwarded} bytes {dir} (at most {allowed} allowed)"
            ));
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("report contradicts the network: {}", out.join("; ")))
    }
}

/// The censor dropped signalling of the call: its description, for `no-signalling`.
fn signalling_dropped(obs: &NetworkObservation) -> Option<String> {
    let dropped = obs.signal_up.dropped_packets + obs.signal_down.dropped_packets;
    (dropped > 0).then(|| {
        format!(
            "the censor dropped {dropped} packets between the caller and the signal server \
             ({} up and {} down forwarded)",
            obs.signal_up.forwarded_packets, obs.signal_down.forwarded_packets
        )
    })
}

/// The limits that are particular to judging from the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkThresholds {
    /// Packets per second that make a second count as carrying media. Default 10.
    pub min_media_pps: u64,
    /// Seconds carrying media needed to say media was seen. Default 2.
    pub min_active_secs: usize,
}

impl Default for NetworkThresholds {
    fn default() -> Self {
        NetworkThresholds { min_media_pps: 10, min_active_secs: 2 }
    }
}

/// The figures of one direction, as the censor saw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NetworkDirection {
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
    pub dropped_packets: u64,
    /// Dropped share of the packets after the handshake, percent.
    pub drop_pct: f64,
    /// Seconds that carried media (see the module doc).
    pub media_secs: usize,
    /// When media was first seen, ms after the call's start.
    pub first_media_ms: Option<f64>,
    /// Forwarded payload rate over the media span, kbit/s.
    pub rate_kbit: f64,
    /// Longest silence between forwarded packets within the media span (ms).
    pub longest_gap_ms: f64,
    /// Silence from the last forwarded packet to the media's expected end (ms).
    pub trailing_gap_ms: f64,
    pub verdict: Verdict,
}

/// A verdict from the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkJudgement {
    pub verdict: Verdict,
    pub reason: Cause,
    /// Always [`NETWORK_NOTE`].
    pub note: &'static str,
    pub up: NetworkDirection,
    pub down: NetworkDirection,
}

/// Judges a call from the censor's view. Pure; never panics.
pub fn judge_from_network(
    obs: &NetworkObservation,
    th: &Thresholds,
    nth: &NetworkThresholds,
) -> NetworkJudgement {
    let up = direction(obs, &obs.up, th, nth);
    let down = direction(obs, &obs.down, th, nth);
    let verdict = judge::worse(up.verdict, down.verdict);
    let reason = match verdict {
        Verdict::Blocked => Cause::NetworkBlocked {
            missing: match (up.verdict == Verdict::Blocked, down.verdict == Verdict::Blocked) {
                (true, true) => None,
                (true, false) => Some(Direction::Up),
                _ => Some(Direction::Down),
            },
            dropped_up: up.dropped_packets,
            dropped_down: down.dropped_packets,
        },
        Verdict::Cut => {
            let (direction, d) = if up.verdict == Verdict::Cut {
                (Direction::Up, &up)
            } else {
                (Direction::Down, &down)
            };
            Cause::NetworkCut {
                direction,
                trailing_gap_ms: d.trailing_gap_ms,
                dropped: d.dropped_packets,
            }
        }
        Verdict::Degraded => {
            let mut problems = Vec::new();
            for (direction, d) in [(Direction::Up, &up), (Direction::Down, &down)] {
                if d.drop_pct > th.degraded_loss_pct {
                    problems.push(Problem::Dropped { direction, drop_pct: d.drop_pct });
                }
                if d.longest_gap_ms > th.degraded_gap_ms {
                    problems.push(Problem::NetworkGap { direction, gap_ms: d.longest_gap_ms });
                }
            }
            Cause::NetworkDegraded { problems }
        }
        _ => Cause::NetworkConnected {
            up_kbit: up.rate_kbit,
            down_kbit: down.rate_kbit,
            up_drop_pct: up.drop_pct,
            down_drop_pct: down.drop_pct,
        },
    };
    NetworkJudgement { verdict, reason, note: NETWORK_NOTE, up, down }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn direction(
    obs: &NetworkObservation,
    bins: &[Bin],
    th: &Thresholds,
    nth: &NetworkThresholds,
) -> NetworkDirection {
    let mut out = NetworkDirection { verdict: Verdict::Blocked, ..Default::default() };
    let bin_ns = ns(obs.bin).clamp(1_000_000, 1_000_000_000);
    let per_sec = (1_000_000_000 / bin_ns).max(1) as usize;
    let skip = obs
        .connected_unix_ns
        .map(|c| (c.saturating_sub(obs.start_unix_ns) / bin_ns) as usize)
        .unwrap_or(0)
        .min(bins.len());
    let after = &bins[skip..];
    for b in after {
        out.forwarded_packets += b.forwarded_packets;
        out.forwarded_bytes += b.forwarded_bytes;
        out.dropped_packets += b.dropped_packets;
    }
    let total = out.forwarded_packets + out.dropped_packets;
    if total > 0 {
        out.drop_pct = out.dropped_packets as f64 * 100.0 / total as f64;
    }
    // Whole seconds (from the handshake's end) carrying media.
    let mut first_media_bin = None;
    for (s, chunk) in after.chunks(per_sec).enumerate() {
        let pkts: u64 = chunk.iter().map(|b| b.forwarded_packets).sum();
        if chunk.len() == per_sec && pkts >= nth.min_media_pps {
            out.media_secs += 1;
            if first_media_bin.is_none() {
                let first_in = chunk.iter().position(|b| b.forwarded_packets > 0).unwrap_or(0);
                first_media_bin = Some(skip + s * per_sec + first_in);
            }
        }
    }
    let Some(first) = first_media_bin else { return out };
    if out.media_secs < nth.min_active_secs {
        out.first_media_ms = Some((first as u64 * bin_ns) as f64 / 1e6);
        return out;
    }
    out.first_media_ms = Some((first as u64 * bin_ns) as f64 / 1e6);
    let expected_end = (first as u64).saturating_mul(bin_ns).saturating_add(ns(obs.duration));
    let end_bin = (expected_end.div_ceil(bin_ns) as usize).min(bins.len());
    let span = &bins[first..end_bin.max(first)];
    let last_active = span.iter().rposition(|b| b.forwarded_packets > 0).map(|i| first + i);
    let mut gap = 0u64;
    let mut longest = 0u64;
    for b in span {
        if b.forwarded_packets == 0 {
            gap += 1;
        } else {
            longest = longest.max(gap);
            gap = 0;
        }
    }
    out.longest_gap_ms = (longest * bin_ns) as f64 / 1e6;
    let last_end = last_active.map(|i| (i as u64 + 1) * bin_ns).unwrap_or(0);
    out.trailing_gap_ms = expected_end.saturating_sub(last_end) as f64 / 1e6;
    let media_bytes: u64 = span.iter().map(|b| b.forwarded_bytes).sum();
    let span_s = (last_end.saturating_sub(first as u64 * bin_ns)) as f64 / 1e9;
    if span_s > 0.0 {
        out.rate_kbit = media_bytes as f64 * 8.0 / 1e3 / span_s;
    }
    // The one per-direction rule, fed the censor's view: no MOS from the network.
    out.verdict = judge::verdict_of(
        &judge::Observed {
            media: true,
            loss_pct: out.drop_pct,
            mos: None,
            longest_gap_ms: out.longest_gap_ms,
            trailing_gap_ms: out.trailing_gap_ms,
        },
        th,
    );
    out
}

/// The verdict of an external call and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalJudgement {
    pub verdict: Verdict,
    pub reason: Cause,
    /// Set when the verdict was judged from the network.
    pub note: Option<&'static str>,
    /// The full figures, when both peers reported frames.
    pub metrics: Option<CallMetrics>,
    /// The censor's figures, when judged from the network.
    pub network: Option<NetworkJudgement>,
}

/// What the judge needs to know about the call besides the two outcomes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallFacts<'a> {
    /// The name results give the transport (e.g. `ext:aiortc`).
    pub transport: &'a str,
    pub start_unix_ns: u64,
    pub voice: VoiceModel,
    pub drain: Duration,
}

/// Judges an external call: `error` when a peer failed (its reason and stderr tail in the
/// reason, never `blocked`); the full analysis when both peers reported frames; otherwise the
/// censor's view, or `error` when there is none.
pub fn judge_external(
    caller: &PeerOutcome,
    callee: &PeerOutcome,
    facts: &CallFacts<'_>,
    network: Option<&NetworkObservation>,
    th: &Thresholds,
    nth: &NetworkThresholds,
) -> ExternalJudgement {
    let failed: Vec<String> = [("caller", caller), ("callee", callee)]
        .into_iter()
        .filter_map(|(n, o)| match o {
            PeerOutcome::Failed(e) => Some(format!("{n}: {e}")),
            PeerOutcome::Ran { .. } => None,
        })
        .collect();
    let error = |reason: Cause| ExternalJudgement {
        verdict: Verdict::Error,
        reason,
        note: None,
        metrics: None,
        network: None,
    };
    if !failed.is_empty() {
        return error(Cause::PeerFailed { errors: failed });
    }
    let (PeerOutcome::Ran { report: a, .. }, PeerOutcome::Ran { report: b, .. }) = (caller, callee)
    else {
        return error(Cause::Text { text: "unreachable: both peers ran".into() });
    };
    if let Some(obs) = network {
        if let Err(e) = cross_check(
            a,
            b,
            obs,
            facts.voice.frame_bytes.max(callwall_transport::voice::HEADER_BYTES) as u64,
            &CrossCheck::default(),
        ) {
            return error(Cause::Text { text: e });
        }
    }
    let j = if a.reports_frames() && b.reports_frames() {
        let ra = a.to_peer_report(
            Role::Caller,
            facts.transport,
            facts.start_unix_ns,
            facts.voice,
            facts.drain,
        );
        let rb = b.to_peer_report(
            Role::Callee,
            facts.transport,
            facts.start_unix_ns,
            facts.voice,
            facts.drain,
        );
        let m = metrics::analyze(&ra, &rb, th);
        ExternalJudgement {
            verdict: m.verdict,
            reason: m.reason.clone(),
            note: None,
            metrics: Some(m),
            network: None,
        }
    } else {
        let Some(obs) = network else {
            return error(Cause::NoFramesNoView);
        };
        let mut obs = obs.clone();
        obs.connected_unix_ns = [a.connected_unix_ns, b.connected_unix_ns, obs.connected_unix_ns]
            .into_iter()
            .flatten()
            .min();
        let j = judge_from_network(&obs, th, nth);
        ExternalJudgement {
            verdict: j.verdict,
            reason: j.reason.clone(),
            note: Some(NETWORK_NOTE),
            metrics: None,
            network: Some(j),
        }
    };
    if j.verdict != Verdict::Blocked {
        return j;
    }
    // No media: was it the signalling that failed? A peer's `failed` line says so, or the
    // censor's drops of the call's signalling do.
    let mut failures: Vec<String> = [("caller", a), ("callee", b)]
        .into_iter()
        .filter_map(|(n, r)| match &r.failed {
            Some((Stage::Signalling, why)) => Some(format!("{n}: {why}")),
            _ => None,
        })
        .collect();
    if let Some(d) = network.and_then(signalling_dropped) {
        failures.push(d);
    }
    if failures.is_empty() {
        return j;
    }
    ExternalJudgement {
        verdict: Verdict::NoSignalling,
        reason: Cause::NoSignalling { failures },
        ..j
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SentTotals;

    const T0: u64 = 1_700_000_000_000_000_000;
    const BIN: Duration = Duration::from_millis(100);

    /// 10 s of bins: voice (5 packets of 120 bytes per 100 ms) from `from` to `to` seconds.
    fn voice(from: f64, to: f64) -> Vec<Bin> {
        (0..100)
            .map(|i| {
                let t = i as f64 / 10.0;
                if t >= from && t < to {
                    Bin { forwarded_packets: 5, forwarded_bytes: 600, dropped_packets: 0 }
                } else {
                    Bin::default()
                }
            })
            .collect()
    }

    fn obs(up: Vec<Bin>, down: Vec<Bin>) -> NetworkObservation {
        NetworkObservation {
            start_unix_ns: T0,
            bin: BIN,
            up,
            down,
            connected_unix_ns: None,
            duration: Duration::from_secs(8),
            signal_up: Bin::default(),
            signal_down: Bin::default(),
        }
    }

    fn judge(o: &NetworkObservation) -> NetworkJudgement {
        judge_from_network(o, &Thresholds::default(), &NetworkThresholds::default())
    }

    #[test]
    fn both_ways_is_connected_with_rate() {
        let j = judge(&obs(voice(0.5, 8.5), voice(0.5, 8.5)));
        assert_eq!(j.verdict, Verdict::Connected, "{}", j.reason);
        assert_eq!(j.note, NETWORK_NOTE);
        assert!((j.up.rate_kbit - 48.0).abs() < 1.0, "{}", j.up.rate_kbit);
        assert_eq!(j.up.first_media_ms, Some(500.0));
        assert_eq!(j.up.longest_gap_ms, 0.0);
    }

    #[test]
    fn one_way_or_handshake_only_is_blocked() {
        let j = judge(&obs(voice(0.5, 8.5), vec![Bin::default(); 100]));
        assert_eq!(j.verdict, Verdict::Blocked);
        assert!(
            matches!(j.reason, Cause::NetworkBlocked { missing: Some(Direction::Down), .. }),
            "{}",
            j.reason
        );
        // A handshake burst and sparse keepalives are not media.
        let mut up = vec![Bin::default(); 100];
        up[0] = Bin { forwarded_packets: 6, forwarded_bytes: 2000, dropped_packets: 0 };
        for i in (10..100).step_by(10) {
            up[i].forwarded_packets = 1;
        }
        let mut down = vec![Bin { dropped_packets: 5, ..Bin::default() }; 100];
        down[0].forwarded_packets = 3;
        let j = judge(&obs(up, down));
        assert_eq!(j.verdict, Verdict::Blocked, "{}", j.reason);
        assert_eq!(
            j.reason,
            Cause::NetworkBlocked { missing: None, dropped_up: 0, dropped_down: 500 }
        );
    }

    #[test]
    fn stopping_early_is_cut_and_a_hole_is_degraded() {
        let j = judge(&obs(voice(0.5, 8.5), voice(0.5, 3.0)));
        assert_eq!(j.verdict, Verdict::Cut, "{}", j.reason);
        assert!((j.down.trailing_gap_ms - 5500.0).abs() < 1.0, "{}", j.down.trailing_gap_ms);
        let mut down = voice(0.5, 8.5);
        for b in &mut down[30..45] {
            *b = Bin { dropped_packets: 5, ..Bin::default() };
        }
        let j = judge(&obs(voice(0.5, 8.5), down));
        assert_eq!(j.verdict, Verdict::Degraded, "{}", j.reason);
        assert!((j.down.longest_gap_ms - 1500.0).abs() < 1.0);
        let Cause::NetworkDegraded { problems } = &j.reason else { panic!("{}", j.reason) };
        assert!(problems.iter().any(|p| matches!(p, Problem::Dropped { .. })), "{problems:?}");
        assert!(problems.iter().any(|p| matches!(p, Problem::NetworkGap { .. })), "{problems:?}");
    }

    #[test]
    fn the_handshake_before_connected_is_not_counted() {
        // 2 s of ICE-like checks that the censor partly drops, then clean media.
        let mut up = voice(2.0, 10.0);
        for b in &mut up[..20] {
            *b = Bin { forwarded_packets: 2, forwarded_bytes: 200, dropped_packets: 3 };
        }
        let mut o = obs(up.clone(), voice(2.0, 10.0));
        o.connected_unix_ns = Some(T0 + 2_000_000_000);
        let j = judge(&o);
        assert_eq!(j.verdict, Verdict::Connected, "{}", j.reason);
        assert_eq!(j.up.dropped_packets, 0);
    }

    #[test]
    fn never_panics_on_odd_input() {
        for bin in [Duration::ZERO, Duration::from_secs(5), Duration::from_nanos(1)] {
            let mut o = obs(vec![], voice(0.0, 10.0));
            o.bin = bin;
            o.connected_unix_ns = Some(u64::MAX);
            let _ = judge(&o);
            o.connected_unix_ns = Some(0);
            o.duration = Duration::MAX;
            let _ = judge(&o);
        }
    }

    fn ran(report: ExternalReport) -> PeerOutcome {
        PeerOutcome::Ran { connected: report.connected_unix_ns.is_some(), report }
    }

    fn facts() -> CallFacts<'static> {
        CallFacts {
            transport: "ext:test",
            start_unix_ns: T0,
            voice: VoiceModel::default(),
            drain: Duration::from_secs(1),
        }
    }

    #[test]
    fn silent_peers_are_judged_from_the_network_connected_degraded_or_blocked() {
        let judge = |o: NetworkObservation| {
            judge_external(
                &ran(ExternalReport::default()),
                &ran(ExternalReport {
                    connected_unix_ns: Some(T0 + 500_000_000),
                    ..Default::default()
                }),
                &facts(),
                Some(&o),
                &Thresholds::default(),
                &NetworkThresholds::default(),
            )
        };
        let j = judge(obs(voice(0.5, 8.5), voice(0.5, 8.5)));
        assert_eq!(j.verdict, Verdict::Connected, "{}", j.reason);
        assert_eq!(j.note, Some(NETWORK_NOTE));
        assert!(j.metrics.is_none() && j.network.is_some());
        let mut lossy = voice(0.5, 8.5);
        for b in lossy.iter_mut().step_by(4) {
            b.dropped_packets = 2;
        }
        let j = judge(obs(voice(0.5, 8.5), lossy));
        assert_eq!(j.verdict, Verdict::Degraded, "{}", j.reason);
        let Cause::NetworkDegraded { problems } = &j.reason else { panic!("{}", j.reason) };
        assert!(problems.iter().any(|p| matches!(p, Problem::Dropped { .. })), "{problems:?}");
        let j =
            judge(obs(vec![Bin { dropped_packets: 5, ..Bin::default() }; 100], voice(0.5, 8.5)));
        assert_eq!(j.verdict, Verdict::Blocked, "{}", j.reason);
        assert!(
            matches!(j.reason, Cause::NetworkBlocked { missing: Some(Direction::Up), .. }),
            "{}",
            j.reason
        );
    }

    #[test]
    fn a_failed_peer_is_an_error_never_blocked() {
        let j = judge_external(
            &PeerOutcome::Failed("peer.py crashed: killed by signal 11; stderr ends: boom".into()),
            &ran(ExternalReport::default()),
            &facts(),
            Some(&obs(vec![], vec![])),
            &Thresholds::default(),
            &NetworkThresholds::default(),
        );
        assert_eq!(j.verdict, Verdict::Error);
        let Cause::PeerFailed { errors } = &j.reason else { panic!("{}", j.reason) };
        assert!(errors[0].starts_with("caller: ") && errors[0].contains("boom"), "{errors:?}");
    }

    #[test]
    fn reports_with_frames_win_over_the_network() {
        let start = T0 + 50_000_000;
        let r = |n: u64| ExternalReport {
            connected_unix_ns: Some(start),
            sent: Some(SentTotals {
                frames: n,
                start_unix_ns: start,
                end_unix_ns: start + n * 20_000_000,
            }),
            arrivals: (0..n as u32)
                .map(|s| callwall_transport::Arrival {
                    seq: s,
                    sent_unix_ns: start + s as u64 * 20_000_000,
                    recv_unix_ns: start + s as u64 * 20_000_000 + 3_000_000,
                })
                .collect(),
            ..Default::default()
        };
        let j = judge_external(
            &ran(r(100)),
            &ran(r(100)),
            &facts(),
            None,
            &Thresholds::default(),
            &NetworkThresholds::default(),
        );
        assert_eq!(j.verdict, Verdict::Connected, "{}", j.reason);
        assert!(j.note.is_none() && j.metrics.is_some());
        // One peer silent: judged from the network, with the note.
        let j = judge_external(
            &ran(r(100)),
            &ran(ExternalReport::default()),
            &facts(),
            Some(&obs(voice(0.5, 8.5), voice(0.5, 8.5))),
            &Thresholds::default(),
            &NetworkThresholds::default(),
        );
        assert_eq!(j.verdict, Verdict::Connected, "{}", j.reason);
        assert_eq!(j.note, Some(NETWORK_NOTE));
        // The caller claims 100 frames the censor never forwarded toward it: an error.
        let j = judge_external(
            &ran(r(100)),
            &ran(ExternalReport::default()),
            &facts(),
            Some(&obs(voice(0.5, 8.5), vec![Bin::default(); 100])),
            &Thresholds::default(),
            &NetworkThresholds::default(),
        );
        assert_eq!(j.verdict, Verdict::Error, "{}", j.reason);
        assert!(
            j.reason
                .to_string()
                .starts_with("report contradicts the network: the caller reports 100 frames"),
            "{}",
            j.reason
        );
        // And without a censor view that is an error, not a guess.
        let j = judge_external(
            &ran(ExternalReport::default()),
            &ran(ExternalReport::default()),
            &facts(),
            None,
            &Thresholds::default(),
            &NetworkThresholds::default(),
        );
        assert_eq!(j.verdict, Verdict::Error);
    }

    fn frames(n: u32) -> ExternalReport {
        ExternalReport {
            sent: Some(SentTotals { frames: u64::from(n), start_unix_ns: T0, end_unix_ns: T0 }),
            arrivals: (0..n)
                .map(|s| callwall_transport::Arrival { seq: s, sent_unix_ns: T0, recv_unix_ns: T0 })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_cross_check_allows_bundling_and_slack_but_not_invention() {
        let cc = CrossCheck::default();
        // 8 s of voice each way: 400 frames of 80 bytes in 400 packets of 120 IP bytes.
        let o = obs(voice(0.5, 8.5), voice(0.5, 8.5));
        assert_eq!(cross_check(&frames(400), &frames(400), &o, 80, &cc), Ok(()));
        // A transport that bundled four frames per packet still forwards every frame's bytes.
        let bundled: Vec<Bin> = voice(0.5, 8.5)
            .into_iter()
            .map(|b| Bin { forwarded_packets: b.forwarded_packets / 4, ..b })
            .collect();
        let o = obs(bundled.clone(), bundled);
        assert_eq!(cross_check(&frames(400), &frames(400), &o, 80, &cc), Ok(()));
        // Nothing forwarded: up to the slack (25 frames) passes, more does not.
        let none = obs(vec![], vec![]);
        assert_eq!(cross_check(&frames(25), &ExternalReport::default(), &none, 80, &cc), Ok(()));
        let e = cross_check(&ExternalReport::default(), &frames(26), &none, 80, &cc).unwrap_err();
        assert!(
            e.contains("the callee reports 26 frames") && e.contains("caller to callee"),
            "{e}"
        );
        // Twice what was forwarded is the limit (a transport may carry frames compactly).
        let o = obs(
            vec![Bin { forwarded_packets: 1, forwarded_bytes: 8000, dropped_packets: 0 }],
            vec![],
        );
        assert_eq!(cross_check(&ExternalReport::default(), &frames(225), &o, 80, &cc), Ok(()));
        assert!(cross_check(&ExternalReport::default(), &frames(226), &o, 80, &cc).is_err());
    }

    #[test]
    fn no_media_with_signalling_dropped_or_reported_failed_is_no_signalling() {
        let judge = |a: ExternalReport, o: NetworkObservation| {
            judge_external(
                &ran(a),
                &ran(ExternalReport::default()),
                &facts(),
                Some(&o),
                &Thresholds::default(),
                &NetworkThresholds::default(),
            )
        };
        let empty = || obs(vec![Bin::default(); 100], vec![Bin::default(); 100]);
        // No media, signalling untouched: blocked.
        assert_eq!(judge(ExternalReport::default(), empty()).verdict, Verdict::Blocked);
        // No media, the censor dropped the caller's signalling: no-signalling.
        let mut o = empty();
        o.signal_up = Bin { forwarded_packets: 0, forwarded_bytes: 0, dropped_packets: 6 };
        let j = judge(ExternalReport::default(), o.clone());
        assert_eq!(j.verdict, Verdict::NoSignalling, "{}", j.reason);
        assert!(j.reason.to_string().contains("dropped 6 packets"), "{}", j.reason);
        assert_eq!(j.note, Some(NETWORK_NOTE));
        // Media flowed: signalling drops (a retry that got through) change nothing.
        o.up = voice(0.5, 8.5);
        o.down = voice(0.5, 8.5);
        assert_eq!(judge(ExternalReport::default(), o).verdict, Verdict::Connected);
        // A peer's `failed` line for signalling: no-signalling with its reason.
        let said = ExternalReport {
            failed: Some((Stage::Signalling, "signal server unreachable".into())),
            ..Default::default()
        };
        let j = judge(said, empty());
        assert_eq!(j.verdict, Verdict::NoSignalling, "{}", j.reason);
        assert!(j.reason.to_string().contains("caller: signal server unreachable"), "{}", j.reason);
        // A media failure stays blocked.
        let said = ExternalReport {
            failed: Some((Stage::Media, "ice failed".into())),
            ..Default::default()
        };
        assert_eq!(judge(said, empty()).verdict, Verdict::Blocked);
    }
}
