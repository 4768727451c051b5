//! Unit newtypes used in scenario files and censor policies.
//!
//! Each type parses from the string form a person writes (`"50ms"`, `"128kbit"`, `"2%"`,
//! `"16KiB"`) and serializes back to that form, so a scenario round-trips through JSON reports.
//!
//! Guarantees: parsing is pure, never panics, and rejects negative, non-finite, empty and
//! out-of-range values with an error that names the accepted forms. It does not do arithmetic
//! beyond the conversions each type exposes.
//!
//! [`Cidr`] (an address with a prefix length) lives here too: it is the one address-range
//! type of the workspace, used by the topology (`netns`) and the censor policy alike.
//!
//! [`seed::derive`] is the one function that derives a random stream's seed from the
//! scenario's seed.
#![forbid(unsafe_code)]

mod cidr;
pub use cidr::{Cidr, CidrError};
pub mod seed;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a unit string was rejected. The message lists the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {input:?}: {reason}; write it like {examples}")]
pub struct UnitError {
    kind: &'static str,
    input: String,
    reason: &'static str,
    examples: &'static str,
}

impl UnitError {
    fn new(kind: &'static str, input: &str, reason: &'static str, examples: &'static str) -> Self {
        UnitError { kind, input: input.to_string(), reason, examples }
    }
}

/// Splits `"12.5ms"` into `(12.5, "ms")`, rejecting signs, NaN and exponents.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    value.is_finite().then_some((value, unit.trim()))
}

macro_rules! string_serde {
    ($ty:ident) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A span of time with nanosecond resolution, written `"250us"`, `"50ms"`, `"1.5s"`, `"2min"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// Largest accepted value: one day. Longer spans are almost always a typo.
    pub const MAX: Duration = Duration(std::time::Duration::from_secs(86_400));
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    pub const fn from_std(d: std::time::Duration) -> Self {
        Duration(d)
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub const fn as_std(self) -> std::time::Duration {
        self.0
    }
    pub fn as_nanos(self) -> u64 {
        self.0.as_nanos() as u64
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl FromStr for Duration {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        const EX: &str = "\"250us\", \"50ms\", \"1.5s\" or \"2min\"";
        let bad = |r| UnitError::new("duration", s, r, EX);
        let (v, unit) = split_number(s).ok_or_else(|| bad("expected a non-negative number"))?;
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "min" | "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit")),
        };
        let nanos = v * nanos_per;
        if nanos > Duration::MAX.as_nanos() as f64 {
            return Err(bad("longer than one day"));
        }
        Ok(Duration(std::time::Duration::from_nanos(nanos.round() as u64)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.as_nanos();
        if n == 0 {
            write!(f, "0s")
        } else if n.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", n / 1_000_000_000)
        } else if n.is_multiple_of(1_000_000) {
            write!(f, "{}ms", n / 1_000_000)
        } else if n.is_multiple_of(1_000) {
            write!(f, "{}us", n / 1_000)
        } else {
            write!(f, "{n}ns")
        }
    }
}
string_serde!(Duration);

/// A bit rate in bits per second, written `"128kbit"`, `"1.5mbit"`, `"14KB/s"` (bytes), `"900bit"`.
///
/// Prefixes are decimal (k = 1000), as in tc and in the censorship literature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate {
    bits_per_sec: u64,
}

impl Rate {
    /// Largest accepted value: 100 gbit/s.
    pub const MAX_BPS: u64 = 100_000_000_000;

    pub const fn from_bits_per_sec(bits_per_sec: u64) -> Self {
        Rate { bits_per_sec }
    }
    pub const fn bits_per_sec(self) -> u64 {
        self.bits_per_sec
    }
    pub const fn bytes_per_sec(self) -> u64 {
        self.bits_per_sec / 8
    }
}

impl FromStr for Rate {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        const EX: &str = "\"128kbit\", \"1.5mbit\", \"900bit\" or \"14KB/s\"";
        let bad = |r| UnitError::new("rate", s, r, EX);
        let (v, unit) = split_number(s).ok_or_else(|| bad("expected a non-negative number"))?;
        let lower = unit.to_ascii_lowercase();
        let bits = match lower.as_str() {
            "bit" | "bps" | "bit/s" => 1.0,
            "kbit" | "kbps" | "kbit/s" => 1e3,
            "mbit" | "mbps" | "mbit/s" => 1e6,
            "gbit" | "gbps" | "gbit/s" => 1e9,
            "b/s" => 8.0,
            "kb/s" => 8e3,
            "mb/s" => 8e6,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit")),
        };
        let bps = v * bits;
        if bps < 1.0 {
            return Err(bad("must be at least 1 bit per second; to block, use the drop action"));
        }
        if bps > Rate::MAX_BPS as f64 {
            return Err(bad("above 100gbit"));
        }
        Ok(Rate { bits_per_sec: bps.round() as u64 })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bits_per_sec;
        if b.is_multiple_of(1_000_000_000) {
            write!(f, "{}gbit", b / 1_000_000_000)
        } else if b.is_multiple_of(1_000_000) {
            write!(f, "{}mbit", b / 1_000_000)
        } else if b.is_multiple_of(1_000) {
            write!(f, "{}kbit", b / 1_000)
        } else {
            write!(f, "{b}bit")
        }
    }
}
string_serde!(Rate);

/// A probability written as a percentage, `"2%"`, `"0.5%"`, `"100%"`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

impl Percent {
    pub const ZERO: Percent = Percent(0.0);
    pub const HUNDRED: Percent = Percent(100.0);

    /// Builds from a percentage in 0..=100; `None` outside that range or for NaN.
    pub fn new(pct: f64) -> Option<Self> {
        (0.0..=100.0).contains(&pct).then_some(Percent(pct))
    }
    pub fn as_percent(self) -> f64 {
        self.0
    }
    /// The probability in 0..=1.
    pub fn as_fraction(self) -> f64 {
        self.0 / 100.0
    }
}

impl FromStr for Percent {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        const EX: &str = "\"2%\", \"0.5%\" or \"100%\"";
        let bad = |r| UnitError::new("percentage", s, r, EX);
        let (v, unit) = split_number(s).ok_or_else(|| bad("expected a non-negative number"))?;
        if unit != "%" {
            return Err(bad("missing % sign"));
        }
        Percent::new(v).ok_or_else(|| bad("must be between 0% and 100%"))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}
string_serde!(Percent);

/// A byte count, written `"1500B"`, `"16KiB"`, `"15KB"`, `"2MiB"`. KB = 1000, KiB = 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(u64);

impl Bytes {
    /// Largest accepted value: 1 TiB.
    pub const MAX: u64 = 1 << 40;

    pub const fn new(n: u64) -> Self {
        Bytes(n)
    }
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl FromStr for Bytes {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        const EX: &str = "\"1500B\", \"16KiB\", \"15KB\" or \"2MiB\"";
        let bad = |r| UnitError::new("size", s, r, EX);
        let (v, unit) = split_number(s).ok_or_else(|| bad("expected a non-negative number"))?;
        let mult = match unit {
            "B" | "b" | "bytes" => 1.0,
            "KB" | "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit")),
        };
        let n = v * mult;
        if n > Bytes::MAX as f64 {
            return Err(bad("above 1TiB"));
        }
        Ok(Bytes(n.round() as u64))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n != 0 && n.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", n >> 20)
        } else if n != 0 && n.is_multiple_of(1024) {
            write!(f, "{}KiB", n >> 10)
        } else {
            write!(f, "{n}B")
        }
    }
}
string_serde!(Bytes);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_round_trip() {
        assert_eq!("50ms".parse::<Duration>().unwrap(), Duration::from_millis(50));
        assert_eq!("1.5s".parse::<Duration>().unwrap(), Duration::from_millis(1500));
        assert_eq!("2min".parse::<Duration>().unwrap(), Duration::from_secs(120));
        assert_eq!("250us".parse::<Duration>().unwrap().as_nanos(), 250_000);
        for s in ["50ms", "3s", "250us", "7ns", "0s"] {
            assert_eq!(s.parse::<Duration>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn durations_reject_bad_input() {
        for s in ["", "ms", "-5ms", "5", "5 parsecs", "1e3ms", ".5s", "5.s", "NaNs", "2d", "25h"] {
            let err = s.parse::<Duration>().unwrap_err().to_string();
            assert!(err.contains("write it like"), "{s}: {err}");
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!("128kbit".parse::<Rate>().unwrap().bits_per_sec(), 128_000);
        assert_eq!("1.5mbit".parse::<Rate>().unwrap().bits_per_sec(), 1_500_000);
        assert_eq!("14KB/s".parse::<Rate>().unwrap().bits_per_sec(), 112_000);
        assert_eq!("128kbit".parse::<Rate>().unwrap().to_string(), "128kbit");
        assert!("0kbit".parse::<Rate>().is_err());
        assert!("128".parse::<Rate>().is_err());
        assert!("200gbit".parse::<Rate>().is_err());
    }

    #[test]
    fn percents_parse() {
        assert_eq!("2%".parse::<Percent>().unwrap().as_fraction(), 0.02);
        assert_eq!("0.5%".parse::<Percent>().unwrap().as_percent(), 0.5);
        assert!("101%".parse::<Percent>().is_err());
        assert!("2".parse::<Percent>().is_err());
        assert!("-1%".parse::<Percent>().is_err());
    }

    #[test]
    fn bytes_parse() {
        assert_eq!("16KiB".parse::<Bytes>().unwrap().get(), 16384);
        assert_eq!("15KB".parse::<Bytes>().unwrap().get(), 15000);
        assert_eq!("1500B".parse::<Bytes>().unwrap().get(), 1500);
        assert_eq!("16KiB".parse::<Bytes>().unwrap().to_string(), "16KiB");
        assert!("2TiB".parse::<Bytes>().is_err());
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(Debug, Deserialize, Serialize)]
        struct S {
            d: Duration,
            r: Rate,
        }
        let s: S = toml::from_str("d = \"20ms\"\nr = \"64kbit\"").unwrap();
        assert_eq!(s.d, Duration::from_millis(20));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"d":"20ms","r":"64kbit"}"#);
        let err = toml::from_str::<S>("d = \"20\"\nr = \"64kbit\"").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
