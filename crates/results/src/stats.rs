//! Statistical expectations: a call placed `repeat = N` times whose verdicts are judged as a
//! distribution (`expect = { degraded = "70-100%", blocked = "0-30%" }`) rather than one draw.
//!
//! [`ShareRange::parse`] reads one share (`"70-100%"`, `"100%"`, `"0%"`), [`judge`] is the pure
//! judging function: given the verdicts of the repeats and the expected shares, it says whether
//! the distribution met them. Every verdict a scenario does not list is expected never to occur
//! (0 %), so an unexpected `error` or `blocked` is never hidden by a share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Verdict;

/// An inclusive range of percentages, `lo..=hi`, within 0-100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShareRange {
    pub lo: f64,
    pub hi: f64,
}

impl ShareRange {
    /// Parses `"70-100%"`, `"70%-100%"` or a single `"100%"`; the `%` is required.
    pub fn parse(s: &str) -> Result<ShareRange, ShareError> {
        let bad = || ShareError::NotAShare(s.to_string());
        let t = s.trim();
        let Some(t) = t.strip_suffix('%') else { return Err(bad()) };
        let num = |x: &str| -> Result<f64, ShareError> {
            let x = x.trim().trim_end_matches('%').trim();
            let v: f64 = x.parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&v) || !v.is_finite() {
                return Err(ShareError::OutOfRange(s.to_string()));
            }
            Ok(v)
        };
        let r = match t.split_once('-') {
            Some((a, b)) => ShareRange { lo: num(a)?, hi: num(b)? },
            None => {
                let v = num(t)?;
                ShareRange { lo: v, hi: v }
            }
        };
        if r.lo > r.hi {
            return Err(ShareError::Reversed(s.to_string()));
        }
        Ok(r)
    }

    /// Whether `pct` lies in the range (with a margin for rounding of k/N).
    pub fn contains(&self, pct: f64) -> bool {
        pct >= self.lo - 1e-9 && pct <= self.hi + 1e-9
    }
}

impl std::fmt::Display for ShareRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}%", self.lo)
        } else {
            write!(f, "{}-{}%", self.lo, self.hi)
        }
    }
}

/// Why a share was rejected (each variant holds the share as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error(
        "{0:?} is not a share: write a percentage or a range of them, like \"70-100%\" or \"0%\""
    )]
    NotAShare(String),
    #[error("{0:?}: a share is between 0% and 100%")]
    OutOfRange(String),
    #[error("{0:?}: the lower share is above the upper; write it low-high")]
    Reversed(String),
}

/// Why a set of expected shares cannot be met by any distribution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnsatisfiableShares {
    #[error("no verdict listed: name at least one verdict with its share")]
    Empty,
    /// The lower bounds' sum, in percent.
    #[error("the lower shares add up to {0}%, more than 100%: no distribution can meet them")]
    LowerAbove100(f64),
    /// The upper bounds' sum, in percent.
    #[error("the upper shares add up to {0}%, less than 100%: list every verdict that may occur")]
    UpperBelow100(f64),
}

/// The expected share of each verdict; verdicts not listed are expected at 0 %.
pub type Shares = BTreeMap<Verdict, ShareRange>;

/// Checks that expected shares can be met at all: the lower bounds add up to at most 100 % and
/// the upper bounds to at least 100 %. `Err` says what to change.
pub fn check_satisfiable(shares: &Shares) -> Result<(), UnsatisfiableShares> {
    if shares.is_empty() {
        return Err(UnsatisfiableShares::Empty);
    }
    let lo: f64 = shares.values().map(|r| r.lo).sum();
    let hi: f64 = shares.values().map(|r| r.hi).sum();
    if lo > 100.0 + 1e-9 {
        return Err(UnsatisfiableShares::LowerAbove100(lo));
    }
    if hi < 100.0 - 1e-9 {
        return Err(UnsatisfiableShares::UpperBelow100(hi));
    }
    Ok(())
}

/// The distribution of one statistical call's verdicts over its repeats, and whether it met its
/// expected shares. Stored in [`crate::RunResult::distributions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// The call's name in the scenario (its repeats are named `name#1`, `name#2`, ...).
    pub call: String,
    pub transport: String,
    pub strategy: String,
    /// How many times the call was placed.
    pub repeats: u32,
    /// How many repeats got each verdict.
    pub counts: BTreeMap<Verdict, u32>,
    /// The expected share of each verdict (others expected at 0 %).
    pub expected: Shares,
    /// Whether every verdict's share is in its range.
    pub met: bool,
    /// The verdicts whose share missed, with the share seen (shown as
    /// `blocked 40% (expected 0-30%)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missed: Vec<Miss>,
}

/// Why a distribution missed its shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "miss", rename_all = "kebab-case")]
pub enum Miss {
    /// No repeat gave a verdict.
    NoVerdict,
    /// A verdict's share out of its range (`expected`: `None` when the verdict was not
    /// listed, so expected at 0 %).
    Share { verdict: Verdict, share_pct: f64, expected: Option<ShareRange> },
    /// A miss read from an older results file, as it was written.
    Text { text: String },
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::NoVerdict => f.write_str("no repeat gave a verdict"),
            Miss::Share { verdict, share_pct, expected: Some(r) } => {
                write!(f, "{verdict} {share_pct:.0}% (expected {r})")
            }
            Miss::Share { verdict, share_pct, expected: None } => {
                write!(f, "{verdict} {share_pct:.0}% (expected 0%)")
            }
            Miss::Text { text } => f.write_str(text),
        }
    }
}

impl Distribution {
    /// `degraded 8/10, blocked 2/10` (best verdict first).
    pub fn counts_text(&self) -> String {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(v, n)| format!("{v} {n}/{}", self.repeats))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `degraded 70-100%, blocked 0-30%`.
    pub fn expected_text(&self) -> String {
        self.expected.iter().map(|(v, r)| format!("{v} {r}")).collect::<Vec<_>>().join(", ")
    }
}

/// Judges the verdicts of a call's repeats against its expected shares (pure).
pub fn judge(
    call: &str,
    transport: &str,
    strategy: &str,
    verdicts: &[Verdict],
    expected: &Shares,
) -> Distribution {
    let n = verdicts.len() as u32;
    let mut counts: BTreeMap<Verdict, u32> = BTreeMap::new();
    for v in verdicts {
        *counts.entry(*v).or_default() += 1;
    }
    let share = |v: &Verdict| -> f64 {
        if n == 0 {
            0.0
        } else {
            100.0 * f64::from(counts.get(v).copied().unwrap_or(0)) / f64::from(n)
        }
    };
    let mut missed = Vec::new();
    if n == 0 {
        missed.push(Miss::NoVerdict);
    }
    for (v, r) in expected {
        let s = share(v);
        if n > 0 && !r.contains(s) {
            missed.push(Miss::Share { verdict: *v, share_pct: s, expected: Some(*r) });
        }
    }
    for (v, k) in &counts {
        if !expected.contains_key(v) && *k > 0 {
            missed.push(Miss::Share { verdict: *v, share_pct: share(v), expected: None });
        }
    }
    Distribution {
        call: call.to_string(),
        transport: transport.to_string(),
        strategy: strategy.to_string(),
        repeats: n,
        counts,
        expected: expected.clone(),
        met: missed.is_empty(),
        missed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    fn shares(list: &[(Verdict, &str)]) -> Shares {
        list.iter().map(|(v, s)| (*v, ShareRange::parse(s).unwrap())).collect()
    }

    #[test]
    fn parses_shares_and_rejects_nonsense() {
        assert_eq!(ShareRange::parse("70-100%").unwrap(), ShareRange { lo: 70.0, hi: 100.0 });
        assert_eq!(ShareRange::parse("70%-100%").unwrap(), ShareRange { lo: 70.0, hi: 100.0 });
        assert_eq!(ShareRange::parse(" 0% ").unwrap(), ShareRange { lo: 0.0, hi: 0.0 });
        assert_eq!(ShareRange::parse("12.5-30%").unwrap(), ShareRange { lo: 12.5, hi: 30.0 });
        for bad in ["70-100", "abc%", "-5%", "", "%"] {
            assert_eq!(ShareRange::parse(bad), Err(ShareError::NotAShare(bad.into())), "{bad:?}");
        }
        assert_eq!(ShareRange::parse("50-120%"), Err(ShareError::OutOfRange("50-120%".into())));
        assert_eq!(ShareRange::parse("NaN%"), Err(ShareError::OutOfRange("NaN%".into())));
        assert_eq!(ShareRange::parse("80-20%"), Err(ShareError::Reversed("80-20%".into())));
        assert_eq!(ShareRange::parse("0-30%").unwrap().to_string(), "0-30%");
        assert_eq!(ShareRange::parse("100%").unwrap().to_string(), "100%");
    }

    #[test]
    fn satisfiable_shares_only() {
        assert!(check_satisfiable(&shares(&[(Connected, "70-100%"), (Degraded, "0-30%")])).is_ok());
        assert_eq!(
            check_satisfiable(&shares(&[(Connected, "80-100%"), (Degraded, "30-40%")])),
            Err(UnsatisfiableShares::LowerAbove100(110.0))
        );
        assert_eq!(
            check_satisfiable(&shares(&[(Connected, "0-50%")])),
            Err(UnsatisfiableShares::UpperBelow100(50.0))
        );
        assert_eq!(check_satisfiable(&Shares::new()), Err(UnsatisfiableShares::Empty));
    }

    #[test]
    fn judges_a_distribution_inside_its_ranges() {
        let exp = shares(&[(Degraded, "70-100%"), (Blocked, "0-30%")]);
        let mut v = vec![Degraded; 8];
        v.extend([Blocked, Blocked]);
        let d = judge("c", "webrtc", "direct", &v, &exp);
        assert!(d.met, "{d:?}");
        assert_eq!(d.counts_text(), "degraded 8/10, blocked 2/10");
        assert_eq!(d.expected_text(), "degraded 70-100%, blocked 0-30%");
        // Boundaries are inclusive: 7 of 10 is 70 %.
        let mut v = vec![Degraded; 7];
        v.extend([Blocked; 3]);
        assert!(judge("c", "t", "s", &v, &exp).met);
    }

    #[test]
    fn misses_a_share_out_of_range_or_an_unlisted_verdict() {
        let exp = shares(&[(Degraded, "70-100%"), (Blocked, "0-30%")]);
        let mut v = vec![Degraded; 6];
        v.extend([Blocked; 4]);
        let d = judge("c", "t", "s", &v, &exp);
        assert!(!d.met);
        let range = |lo, hi| Some(ShareRange { lo, hi });
        assert_eq!(
            d.missed,
            [
                Miss::Share {
                    verdict: Verdict::Degraded,
                    share_pct: 60.0,
                    expected: range(70.0, 100.0)
                },
                Miss::Share {
                    verdict: Verdict::Blocked,
                    share_pct: 40.0,
                    expected: range(0.0, 30.0)
                },
            ]
        );
        assert_eq!(d.missed[1].to_string(), "blocked 40% (expected 0-30%)");
        // An error is never absorbed by the shares of other verdicts.
        let mut v = vec![Degraded; 9];
        v.push(Error);
        let d = judge("c", "t", "s", &v, &exp);
        assert!(!d.met);
        assert_eq!(
            d.missed,
            [Miss::Share { verdict: Verdict::Error, share_pct: 10.0, expected: None }]
        );
        assert_eq!(d.missed[0].to_string(), "error 10% (expected 0%)");
        // No repeats at all is a miss, not a vacuous pass.
        assert!(!judge("c", "t", "s", &[], &exp).met);
    }

    #[test]
    fn round_trips_through_json() {
        let d = judge(
            "c",
            "t",
            "s",
            &[Connected, Blocked],
            &shares(&[(Connected, "0-100%"), (Blocked, "0-100%")]),
        );
        let back: Distribution = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
