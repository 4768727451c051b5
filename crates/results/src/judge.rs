//! The verdict of a call, from its typed inputs: one pure function, [`judge`] (and
//! [`judge_direction`] for one direction's figures), with every verdict and every boundary
//! tested here without namespaces or peers.
//!
//! Inputs: the two directions' figures ([`DirectionMetrics`], computed by
//! `callwall_transport::metrics::analyze` from the peers' reports), the [`Thresholds`], the
//! setup outcome (peers that failed), the signalling outcome (why signalling did not get
//! through, per peer) and the attempts (their summary, the strategy that connected).
//!
//! Rules, in order:
//! 1. a peer failed → `error` (the call says nothing about the censor);
//! 2. no media either way and signalling failed → `no-signalling`;
//! 3. otherwise the worse direction: per direction, no frame received → `blocked`; a trailing
//!    gap over `cut_trailing_gap_ms` → `cut`; loss over `degraded_loss_pct`, MOS under
//!    `degraded_mos` or a gap over `degraded_gap_ms` → `degraded`; else `connected`.
//!
//! Limits are strict: a figure exactly at its threshold passes.
//!
//! The per-direction rule is [`verdict_of`] over [`Observed`] figures, the one place where
//! observations become a verdict: the built-in analysis feeds it the peers' figures
//! ([`judge_direction`]), and external calls judged from the network (crates/peer-ext) feed it
//! the censor's view (media seen or not, the censor's drops as the loss, no MOS).

use crate::cause::{Cause, Direction, Problem};
use crate::metrics::{DirectionMetrics, Thresholds, Verdict};

/// What the judge needs to know about a call besides its figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallInputs<'a> {
    /// Caller → callee.
    pub up: &'a DirectionMetrics,
    /// Callee → caller.
    pub down: &'a DirectionMetrics,
    /// The setup outcome: each peer that failed, as `caller failed: why` (empty: none).
    pub peer_errors: &'a [String],
    /// The signalling outcome: why signalling did not get through, per peer (empty: it did).
    pub signalling_failures: &'a [String],
    /// The attempts, summarised (`tried direct failed (timeout), turn-udp connected`).
    pub attempts: &'a str,
    /// The strategy that connected, if any.
    pub strategy: Option<&'a str>,
}

/// A verdict and its cause (whose `Display` is the sentence that explains it).
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: Cause,
}

/// What one direction's verdict is decided from, whoever observed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// Media arrived (the peers: a frame was received; the network: media was seen).
    pub media: bool,
    /// Lost share of the media, percent (the network: the censor's drops).
    pub loss_pct: f64,
    /// The listening quality, when it is known (not from the network).
    pub mos: Option<f64>,
    /// Longest silence within the media (ms).
    pub longest_gap_ms: f64,
    /// Silence from the last media to its expected end (ms).
    pub trailing_gap_ms: f64,
}

impl From<&DirectionMetrics> for Observed {
    fn from(m: &DirectionMetrics) -> Observed {
        Observed {
            media: m.frames_received > 0,
            loss_pct: m.loss_pct,
            mos: Some(m.mos),
            longest_gap_ms: m.longest_gap_ms,
            trailing_gap_ms: m.trailing_gap_ms,
        }
    }
}

/// The verdict of one direction (rule 3 of the module docs): the one per-direction rule.
pub fn verdict_of(o: &Observed, th: &Thresholds) -> Verdict {
    if !o.media {
        Verdict::Blocked
    } else if o.trailing_gap_ms > th.cut_trailing_gap_ms {
        Verdict::Cut
    } else if o.loss_pct > th.degraded_loss_pct
        || o.mos.is_some_and(|mos| mos < th.degraded_mos)
        || o.longest_gap_ms > th.degraded_gap_ms
    {
        Verdict::Degraded
    } else {
        Verdict::Connected
    }
}

/// The verdict of a call from its two directions' verdicts: the worse one.
pub fn worse(up: Verdict, down: Verdict) -> Verdict {
    up.max(down)
}

/// The verdict of one direction from its figures (its own `verdict` field is not read).
pub fn judge_direction(m: &DirectionMetrics, th: &Thresholds) -> Verdict {
    verdict_of(&Observed::from(m), th)
}

/// What pushed a direction to `degraded`, one problem per crossed limit.
pub fn direction_problems(
    direction: Direction,
    m: &DirectionMetrics,
    th: &Thresholds,
) -> Vec<Problem> {
    let mut v = Vec::new();
    if m.loss_pct > th.degraded_loss_pct {
        v.push(Problem::Loss { direction, loss_pct: m.loss_pct, limit_pct: th.degraded_loss_pct });
    }
    if m.mos < th.degraded_mos {
        v.push(Problem::Mos { direction, mos: m.mos, limit: th.degraded_mos });
    }
    if m.longest_gap_ms > th.degraded_gap_ms {
        v.push(Problem::Gap { direction, gap_ms: m.longest_gap_ms, limit_ms: th.degraded_gap_ms });
    }
    v
}

/// The verdict of a call (see the module docs for the rules).
pub fn judge(c: &CallInputs<'_>, th: &Thresholds) -> Judgement {
    let (up, down) = (c.up, c.down);
    let (vu, vd) = (judge_direction(up, th), judge_direction(down, th));
    let via = c.strategy.map(str::to_string);
    let no_media = up.frames_received == 0 && down.frames_received == 0;
    if !c.peer_errors.is_empty() {
        return Judgement {
            verdict: Verdict::Error,
            reason: Cause::PeerFailed { errors: c.peer_errors.to_vec() },
        };
    }
    if no_media && !c.signalling_failures.is_empty() {
        return Judgement {
            verdict: Verdict::NoSignalling,
            reason: Cause::NoSignalling { failures: c.signalling_failures.to_vec() },
        };
    }
    let verdict = worse(vu, vd);
    let reason = match verdict {
        Verdict::Blocked => {
            if no_media {
                Cause::NoMedia { attempts: c.attempts.to_string() }
            } else if up.frames_received == 0 {
                Cause::OneWay { missing: Direction::Up, via }
            } else {
                Cause::OneWay { missing: Direction::Down, via }
            }
        }
        Verdict::Cut => {
            let (direction, m) =
                if vu == Verdict::Cut { (Direction::Up, up) } else { (Direction::Down, down) };
            Cause::Cut {
                direction,
                via,
                trailing_gap_ms: m.trailing_gap_ms,
                frames_received: m.frames_received,
            }
        }
        Verdict::Degraded => {
            let mut problems = direction_problems(Direction::Up, up, th);
            problems.extend(direction_problems(Direction::Down, down, th));
            Cause::Degraded { via, problems }
        }
        Verdict::Connected => Cause::Connected {
            via,
            up_loss_pct: up.loss_pct,
            down_loss_pct: down.loss_pct,
            mos: up.mos.min(down.mos),
        },
        // Not reachable from directions, which are never judged no-signalling or error.
        Verdict::NoSignalling | Verdict::Error => {
            Cause::PeerFailed { errors: vec!["a peer failed".into()] }
        }
    };
    Judgement { verdict, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> DirectionMetrics {
        DirectionMetrics {
            frames_sent: 500,
            frames_expected: 500,
            frames_received: 500,
            loss_pct: 0.0,
            mos: 4.3,
            longest_gap_ms: 20.0,
            trailing_gap_ms: 20.0,
            ..Default::default()
        }
    }

    fn call(up: &DirectionMetrics, down: &DirectionMetrics) -> Judgement {
        judge(
            &CallInputs {
                up,
                down,
                peer_errors: &[],
                signalling_failures: &[],
                attempts: "tried udp connected",
                strategy: Some("udp"),
            },
            &Thresholds::default(),
        )
    }

    #[test]
    fn connected() {
        let j = call(&good(), &good());
        assert_eq!(j.verdict, Verdict::Connected, "{}", j.reason);
        assert!(
            matches!(&j.reason, Cause::Connected { via: Some(v), .. } if v == "udp"),
            "{:?}",
            j.reason
        );
    }

    #[test]
    fn degraded_by_each_limit_and_not_at_it() {
        let th = Thresholds::default();
        type Set = fn(&mut DirectionMetrics, f64);
        let cases: [(Set, f64, bool); 3] = [
            (|m, x| m.loss_pct = x, th.degraded_loss_pct, true),
            (|m, x| m.longest_gap_ms = x, th.degraded_gap_ms, true),
            (|m, x| m.mos = x, th.degraded_mos, false),
        ];
        for (set, limit, above_is_worse) in cases {
            let mut at = good();
            set(&mut at, limit);
            assert_eq!(judge_direction(&at, &th), Verdict::Connected, "at the limit {limit}");
            let mut past = good();
            set(&mut past, if above_is_worse { limit + 0.01 } else { limit - 0.01 });
            assert_eq!(judge_direction(&past, &th), Verdict::Degraded, "past {limit}");
            let j = call(&good(), &past);
            assert_eq!(j.verdict, Verdict::Degraded);
            let Cause::Degraded { via, problems } = &j.reason else { panic!("{:?}", j.reason) };
            assert_eq!(via.as_deref(), Some("udp"));
            assert!(problems.iter().all(|p| matches!(
                p,
                Problem::Loss { direction: Direction::Down, .. }
                    | Problem::Mos { direction: Direction::Down, .. }
                    | Problem::Gap { direction: Direction::Down, .. }
            )));
        }
    }

    #[test]
    fn cut_at_and_past_the_trailing_gap() {
        let th = Thresholds::default();
        let mut m = good();
        m.trailing_gap_ms = th.cut_trailing_gap_ms;
        m.longest_gap_ms = 500.0;
        assert_eq!(judge_direction(&m, &th), Verdict::Connected);
        m.trailing_gap_ms += 1.0;
        assert_eq!(judge_direction(&m, &th), Verdict::Cut);
        let j = call(&m, &good());
        assert_eq!(j.verdict, Verdict::Cut);
        assert_eq!(
            j.reason,
            Cause::Cut {
                direction: Direction::Up,
                via: Some("udp".into()),
                trailing_gap_ms: m.trailing_gap_ms,
                frames_received: 500
            }
        );
        assert!(j.reason.to_string().starts_with("media caller→callee via udp stopped 3.0 s"));
    }

    #[test]
    fn blocked_one_way_and_both() {
        let none = DirectionMetrics { frames_sent: 500, loss_pct: 100.0, mos: 1.0, ..good() };
        let none = DirectionMetrics { frames_received: 0, ..none };
        let j = call(&good(), &none);
        assert_eq!(j.verdict, Verdict::Blocked);
        assert_eq!(j.reason, Cause::OneWay { missing: Direction::Down, via: Some("udp".into()) });
        assert_eq!(j.reason.to_string(), "no media arrived callee→caller (one-way audio via udp)");
        let j = call(&none, &none);
        assert_eq!(j.verdict, Verdict::Blocked);
        assert_eq!(j.reason, Cause::NoMedia { attempts: "tried udp connected".into() });
        assert_eq!(
            j.reason.to_string(),
            "no media arrived in either direction; tried udp connected"
        );
        // A single frame is not blocked.
        let one = DirectionMetrics { frames_received: 1, ..none };
        assert_ne!(judge_direction(&one, &Thresholds::default()), Verdict::Blocked);
    }

    #[test]
    fn no_signalling_only_without_media() {
        let none = DirectionMetrics { frames_received: 0, ..good() };
        let sig = ["caller: the signal server did not answer".to_string()];
        let inputs = |up, down| CallInputs {
            up,
            down,
            peer_errors: &[],
            signalling_failures: &sig,
            attempts: "tried udp failed",
            strategy: None,
        };
        let j = judge(&inputs(&none, &none), &Thresholds::default());
        assert_eq!(j.verdict, Verdict::NoSignalling);
        assert_eq!(j.reason, Cause::NoSignalling { failures: sig.to_vec() });
        // Media in one direction: signalling evidently got through.
        let j = judge(&inputs(&good(), &none), &Thresholds::default());
        assert_eq!(j.verdict, Verdict::Blocked);
    }

    #[test]
    fn error_wins_over_everything() {
        let errs = ["callee failed: crashed".to_string()];
        let sig = ["caller: no answer".to_string()];
        let j = judge(
            &CallInputs {
                up: &good(),
                down: &good(),
                peer_errors: &errs,
                signalling_failures: &sig,
                attempts: "",
                strategy: Some("udp"),
            },
            &Thresholds::default(),
        );
        let reason = Cause::PeerFailed { errors: errs.to_vec() };
        assert_eq!(j, Judgement { verdict: Verdict::Error, reason });
    }

    #[test]
    fn without_a_mos_only_loss_and_gaps_degrade() {
        let th = Thresholds::default();
        let o = Observed {
            media: true,
            loss_pct: 0.0,
            mos: None,
            longest_gap_ms: 0.0,
            trailing_gap_ms: 0.0,
        };
        assert_eq!(verdict_of(&o, &th), Verdict::Connected);
        assert_eq!(verdict_of(&Observed { mos: Some(1.0), ..o }, &th), Verdict::Degraded);
        let lossy = Observed { loss_pct: th.degraded_loss_pct + 0.1, ..o };
        assert_eq!(verdict_of(&lossy, &th), Verdict::Degraded);
        let cut = Observed { trailing_gap_ms: th.cut_trailing_gap_ms + 1.0, ..lossy };
        assert_eq!(verdict_of(&cut, &th), Verdict::Cut);
        assert_eq!(verdict_of(&Observed { media: false, ..cut }, &th), Verdict::Blocked);
        assert_eq!(worse(Verdict::Connected, Verdict::Cut), Verdict::Cut);
    }
}
