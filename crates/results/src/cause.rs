//! Why a call got its verdict, as data: the judge ([`crate::judge`], and external calls judged
//! from the network) returns a [`Cause`]; a call's [`Reason`] adds the censor rule and an
//! overload note. The sentence people read is their `Display`, made when something is
//! rendered; the JSON keeps the typed fields (`{"cause": "no-media", "attempts": "..."}`).
//!
//! Texts are those of the earlier string reasons, word for word.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One direction of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Caller → callee.
    Up,
    /// Callee → caller.
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Up => "caller→callee",
            Direction::Down => "callee→caller",
        })
    }
}

/// A limit a direction's figures crossed (what makes a call `degraded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// Loss above the limit (percent).
    Loss { direction: Direction, loss_pct: f64, limit_pct: f64 },
    /// MOS below the limit.
    Mos { direction: Direction, mos: f64, limit: f64 },
    /// A gap longer than the limit (ms).
    Gap { direction: Direction, gap_ms: f64, limit_ms: f64 },
    /// Judged from the network: the censor dropped this share of a direction's packets.
    Dropped { direction: Direction, drop_pct: f64 },
    /// Judged from the network: a gap in a direction's media (ms).
    NetworkGap { direction: Direction, gap_ms: f64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Loss { direction, loss_pct, limit_pct } => {
                write!(f, "{direction} loss {loss_pct:.1} % > {limit_pct} %")
            }
            Problem::Mos { direction, mos, limit } => {
                write!(f, "{direction} MOS {mos:.2} < {limit}")
            }
            Problem::Gap { direction, gap_ms, limit_ms } => {
                write!(f, "{direction} gap of {:.1} s > {:.1} s", gap_ms / 1e3, limit_ms / 1e3)
            }
            Problem::Dropped { direction, drop_pct } => {
                write!(f, "the censor dropped {drop_pct:.1} % {direction}")
            }
            Problem::NetworkGap { direction, gap_ms } => {
                write!(f, "a {:.1} s gap {direction}", gap_ms / 1e3)
            }
        }
    }
}

/// Why the judge gave a call its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Cause {
    /// A peer failed (`error`): each failure as its peer said it (`caller failed: why`).
    PeerFailed { errors: Vec<String> },
    /// Signalling did not get through (`no-signalling`): why, per peer.
    NoSignalling { failures: Vec<String> },
    /// No media either way (`blocked`): what the caller tried.
    NoMedia { attempts: String },
    /// Media one way only (`blocked`): the direction without media.
    OneWay { missing: Direction, via: Option<String> },
    /// Media stopped early (`cut`).
    Cut { direction: Direction, via: Option<String>, trailing_gap_ms: f64, frames_received: u64 },
    /// Media flowed but crossed limits (`degraded`).
    Degraded { via: Option<String>, problems: Vec<Problem> },
    /// Media flowed both ways within every limit (`connected`).
    Connected { via: Option<String>, up_loss_pct: f64, down_loss_pct: f64, mos: f64 },
    /// Judged from the network: the censor saw no media in a direction (`None`: either).
    NetworkBlocked { missing: Option<Direction>, dropped_up: u64, dropped_down: u64 },
    /// Judged from the network: media stopped before its expected end.
    NetworkCut { direction: Direction, trailing_gap_ms: f64, dropped: u64 },
    /// Judged from the network: media flowed both ways but crossed limits.
    NetworkDegraded { problems: Vec<Problem> },
    /// Judged from the network: media flowed both ways.
    NetworkConnected { up_kbit: f64, down_kbit: f64, up_drop_pct: f64, down_drop_pct: f64 },
    /// External peers reported no frames and the censor's view of the call is missing.
    NoFramesNoView,
    /// A reason read from an older results file, or one without a cause of its own.
    Text { text: String },
}

impl Default for Cause {
    fn default() -> Self {
        Cause::Text { text: String::new() }
    }
}

fn via(v: &Option<String>) -> String {
    v.as_ref().map(|s| format!(" via {s}")).unwrap_or_default()
}

fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(sep)
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::PeerFailed { errors } => f.write_str(&errors.join("; ")),
            Cause::NoSignalling { failures } => write!(
                f,
                "the call could not be set up: signalling could not get through ({})",
                failures.join("; ")
            ),
            Cause::NoMedia { attempts } => {
                write!(f, "no media arrived in either direction; {attempts}")
            }
            Cause::OneWay { missing, via: v } => {
                write!(f, "no media arrived {missing} (one-way audio{})", via(v))
            }
            Cause::Cut { direction, via: v, trailing_gap_ms, frames_received } => write!(
                f,
                "media {direction}{} stopped {:.1} s before the sender's end after {frames_received} frames",
                via(v),
                trailing_gap_ms / 1e3
            ),
            Cause::Degraded { via: v, problems } => {
                write!(f, "media flowed{} but {}", via(v), join(problems, ", "))
            }
            Cause::Connected { via: v, up_loss_pct, down_loss_pct, mos } => write!(
                f,
                "media flowed both ways{}: loss {up_loss_pct:.1} % / {down_loss_pct:.1} %, MOS {mos:.2}",
                via(v)
            ),
            Cause::NetworkBlocked { missing, dropped_up, dropped_down } => write!(
                f,
                "the censor saw no media in {} (dropped {dropped_up} up, {dropped_down} down)",
                missing.map_or("either direction".to_string(), |d| d.to_string())
            ),
            Cause::NetworkCut { direction, trailing_gap_ms, dropped } => write!(
                f,
                "media {direction} stopped {:.1} s before its expected end (dropped {dropped})",
                trailing_gap_ms / 1e3
            ),
            Cause::NetworkDegraded { problems } => {
                write!(f, "media flowed both ways but {}", join(problems, ", "))
            }
            Cause::NetworkConnected { up_kbit, down_kbit, up_drop_pct, down_drop_pct } => write!(
                f,
                "media flowed both ways: {up_kbit:.0} / {down_kbit:.0} kbit/s, drops {up_drop_pct:.1} % / {down_drop_pct:.1} %"
            ),
            Cause::NoFramesNoView => f.write_str(
                "the peers reported no frames and the censor's view of the call is missing; \
                 have the peers write \"sent\" and frame lines (docs/peers.md)",
            ),
            Cause::Text { text } => f.write_str(text),
        }
    }
}

/// The censor's packet sockets lost frames before the censor read them (the machine was
/// overloaded), so some loss may be the censor's rather than the network's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overload {
    /// Frames the kernel dropped at the censor's sockets, both directions.
    pub dropped: u64,
    /// Frames the kernel saw there.
    pub seen: u64,
}

impl fmt::Display for Overload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Overload { dropped, seen } = *self;
        let share = if seen > 0 { 100.0 * dropped as f64 / seen as f64 } else { 0.0 };
        write!(
            f,
            "censor overloaded: the kernel dropped {dropped} of {seen} frames ({share:.1} %) \
             at the censor's packet sockets before the censor read them"
        )
    }
}

/// A call's reason: the judge's cause, the censor rule that hit the call hardest (kept only
/// when the call did not connect) and the overload note (same rule).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    #[serde(flatten)]
    pub cause: Cause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overload: Option<Overload>,
}

impl From<Cause> for Reason {
    fn from(cause: Cause) -> Reason {
        Reason { cause, rule: None, overload: None }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cause)?;
        if let Some(r) = &self.rule {
            write!(f, " (censor rule {r:?})")?;
        }
        if let Some(o) = &self.overload {
            write!(f, "; {o}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_the_sentences_they_replaced() {
        let r = Reason {
            cause: Cause::NoMedia { attempts: "tried udp failed (timeout)".into() },
            rule: Some("drop-all-udp".into()),
            overload: Some(Overload { dropped: 5, seen: 1000 }),
        };
        assert_eq!(
            r.to_string(),
            "no media arrived in either direction; tried udp failed (timeout) (censor rule \
             \"drop-all-udp\"); censor overloaded: the kernel dropped 5 of 1000 frames (0.5 %) \
             at the censor's packet sockets before the censor read them"
        );
        let d = Cause::Degraded {
            via: Some("udp".into()),
            problems: vec![
                Problem::Loss { direction: Direction::Down, loss_pct: 4.04, limit_pct: 3.0 },
                Problem::Gap { direction: Direction::Up, gap_ms: 1500.0, limit_ms: 1000.0 },
            ],
        };
        assert_eq!(
            d.to_string(),
            "media flowed via udp but callee→caller loss 4.0 % > 3 %, caller→callee gap of 1.5 s > 1.0 s"
        );
    }

    #[test]
    fn reasons_round_trip_as_tagged_json() {
        let r = Reason {
            cause: Cause::OneWay { missing: Direction::Up, via: None },
            rule: Some("x".into()),
            overload: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"cause":"one-way","missing":"up","via":null,"rule":"x"}"#);
        assert_eq!(serde_json::from_str::<Reason>(&s).unwrap(), r);
    }
}
