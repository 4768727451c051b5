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

/// A verdict and the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
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

/// What pushed a direction to `degraded`, one phrase per crossed limit.
pub fn direction_problems(name: &str, m: &DirectionMetrics, th: &Thresholds) -> Vec<String> {
    let mut v = Vec::new();
    if m.loss_pct > th.degraded_loss_pct {
        v.push(format!("{name} loss {:.1} % > {} %", m.loss_pct, th.degraded_loss_pct));
    }
    if m.mos < th.degraded_mos {
        v.push(format!("{name} MOS {:.2} < {}", m.mos, th.degraded_mos));
    }
    if m.longest_gap_ms > th.degraded_gap_ms {
        v.push(format!(
            "{name} gap of {:.1} s > {:.1} s",
            m.longest_gap_ms / 1e3,
            th.degraded_gap_ms / 1e3
        ));
    }
    v
}

/// The verdict of a call (see the module docs for the rules).
pub fn judge(c: &CallInputs<'_>, th: &Thresholds) -> Judgement {
    let (up, down) = (c.up, c.down);
    let (vu, vd) = (judge_direction(up, th), judge_direction(down, th));
    let via = c.strategy.map(|s| format!(" via {s}")).unwrap_or_default();
    let no_media = up.frames_received == 0 && down.frames_received == 0;
    if !c.peer_errors.is_empty() {
        return Judgement { verdict: Verdict::Error, reason: c.peer_errors.join("; ") };
    }
    if no_media && !c.signalling_failures.is_empty() {
        return Judgement {
            verdict: Verdict::NoSignalling,
            reason: format!(
                "the call could not be set up: signalling could not get through ({})",
                c.signalling_failures.join("; ")
            ),
        };
    }
    let verdict = worse(vu, vd);
    let reason = match verdict {
        Verdict::Blocked => {
            if no_media {
                format!("no media arrived in either direction; {}", c.attempts)
            } else if up.frames_received == 0 {
                format!("no media arrived caller→callee (one-way audio{via})")
            } else {
                format!("no media arrived callee→caller (one-way audio{via})")
            }
        }
        Verdict::Cut => {
            let (name, m) = if vu == Verdict::Cut {
                ("caller→callee", up)
            } else {
                ("callee→caller", down)
            };
            format!(
                "media {name}{via} stopped {:.1} s before the sender's end after {} frames",
                m.trailing_gap_ms / 1e3,
                m.frames_received
            )
        }
        Verdict::Degraded => {
            let mut p = direction_problems("caller→callee", up, th);
            p.extend(direction_problems("callee→caller", down, th));
            format!("media flowed{via} but {}", p.join(", "))
        }
        Verdict::Connected => format!(
            "media flowed both ways{via}: loss {:.1} % / {:.1} %, MOS {:.2}",
            up.loss_pct,
            down.loss_pct,
            up.mos.min(down.mos)
        ),
        // Not reachable from directions, which are never judged no-signalling or error.
        Verdict::NoSignalling | Verdict::Error => "a peer failed".into(),
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
        assert!(j.reason.contains("via udp"), "{}", j.reason);
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
            assert!(j.reason.starts_with("media flowed via udp but callee→caller"), "{}", j.reason);
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
        assert!(j.reason.starts_with("media caller→callee via udp stopped 3.0 s"), "{}", j.reason);
    }

    #[test]
    fn blocked_one_way_and_both() {
        let none = DirectionMetrics { frames_sent: 500, loss_pct: 100.0, mos: 1.0, ..good() };
        let none = DirectionMetrics { frames_received: 0, ..none };
        let j = call(&good(), &none);
        assert_eq!(j.verdict, Verdict::Blocked);
        assert!(j.reason.contains("callee→caller (one-way audio via udp)"), "{}", j.reason);
        let j = call(&none, &none);
        assert_eq!(j.verdict, Verdict::Blocked);
        assert_eq!(j.reason, "no media arrived in either direction; tried udp connected");
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
        assert!(j.reason.contains("signal server did not answer"), "{}", j.reason);
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
        assert_eq!(j, Judgement { verdict: Verdict::Error, reason: errs[0].clone() });
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
