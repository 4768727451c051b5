//! Dated censor versions and the bypass matrix (issue 15).
//!
//! A scenario may state the date its censor behaviour is documented for (`as_of =
//! "2025-09-28"`): behaviours that changed are separate scenarios, one per version, so a
//! bypass's outcome is always stated against a dated censor.
//!
//! A call is a cell of the bypass matrix when it carries a citation or a prediction:
//!
//! ```toml
//! [[calls]]
//! name = "reflector-decoy"
//! transport = "reflector"
//! strategy = "udp"
//! options = { port = 596, bypass = { decoy = "random" } }
//! expect = "connected"
//! cite = "catalog: Russia after August 2025, 'Mid-August a fake packet before the STUN exchange worked' [R]"
//! reference = "telegram-like"
//! ```
//!
//! The contract:
//! - A call that sets any `options.bypass` key must carry exactly one of `cite` (where the
//!   expected outcome is published) or `prediction` (why callwall expects it when nothing is
//!   published). A call may carry one of them without a bypass key: its column is then the
//!   other bypass it uses (`sni`, `printable_prefix`, `port`, a circumventing strategy such as
//!   `quic-split` or `turn-tls`) or `none` (the call without any bypass, for comparison).
//! - `reference` names the call the cost is measured against: another call of the same
//!   scenario, same transport, without `options.bypass`, placed once. The harness reports the
//!   difference in setup time, bytes, packets and MOS between the two; where the reference is
//!   blocked by the censor the cost is not computed (it is measured in `bypass-cost`, a scenario
//!   without a censor, instead). Pairing is explicit, never guessed.
//! - `column` overrides the derived column where it is wrong (`column = "none"` for a call
//!   whose `sni` is what the censor matches rather than a bypass).
//! - Matrix calls are placed once (`count` and `repeat` 1), so each cell is one call.
//! - [`check_bypasses`] refuses, before anything starts, a call whose bypass its transport's
//!   strategy does not honour (the launcher calls it with the transports of the build).

use callwall_results::bypass::Basis;
use callwall_transport::{check_bypass, StrategyOptions, VoiceTransport};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::{raw, Call, Scenario, ScenarioError};

/// Strategies that are themselves circumvention (their name is the matrix column when the call
/// sets no option bypass).
pub const BYPASS_STRATEGIES: &[&str] =
    &["quic-split", "turn-tcp", "turn-tls", "udp-obfs", "direct"];

/// A call's place in the bypass matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixCall {
    /// The matrix column: the bypass keys and options set, joined by `+` (`decoy`,
    /// `sni`, `junk+wg_headers`), a circumventing strategy, or `none`.
    pub column: String,
    /// The call's bypass with its values, e.g. `quic/quic-443 decoy=random sni=www.google.com`.
    pub label: String,
    /// Where the expectation comes from.
    pub basis: Basis,
    /// The call the cost is measured against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// The matrix column of a call with these options and strategies (see [`MatrixCall::column`]).
pub fn column_of(strategies: &[String], o: &StrategyOptions) -> String {
    let mut parts: Vec<&str> = o.bypass.keys();
    if o.sni.is_some() {
        parts.push("sni");
    }
    if o.printable_prefix.is_some() {
        parts.push("printable_prefix");
    }
    if o.port.is_some() {
        parts.push("port");
    }
    if parts.is_empty() {
        match strategies {
            [s] if BYPASS_STRATEGIES.contains(&s.as_str()) => return s.clone(),
            _ => return "none".into(),
        }
    }
    parts.join("+")
}

/// The label of a call's bypass: transport/strategy, then each option with its value.
pub fn label_of(transport: &str, strategies: &[String], o: &StrategyOptions) -> String {
    let mut l = format!("{transport}/{}", strategies.join(","));
    let b = o.bypass.label();
    if !b.is_empty() {
        l.push(' ');
        l.push_str(&b);
    }
    if let Some(s) = &o.sni {
        l.push_str(&format!(" sni={s:?}"));
    }
    if let Some(p) = &o.printable_prefix {
        l.push_str(&format!(" printable_prefix={p:?}"));
    }
    if let Some(p) = o.port {
        l.push_str(&format!(" port={p}"));
    }
    l
}

/// Why an `as_of` date was rejected (each variant holds the date as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("as_of = {0:?}: write a date as YYYY-MM-DD, e.g. \"2025-09-28\"")]
    Format(String),
    #[error("as_of = {0:?}: the year must be 1990 to 2100")]
    Year(String),
    #[error("as_of = {0:?}: the month must be 01 to 12")]
    Month(String),
    #[error("as_of = {date:?}: that month has days 01 to {days:02}")]
    Day { date: String, days: u32 },
}

/// Validates `YYYY-MM-DD` (a real calendar date, years 1990-2100).
pub fn validate_date(s: &str) -> Result<String, DateError> {
    let bad = || DateError::Format(s.to_string());
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let num =
        |t: &str| t.bytes().all(|b| b.is_ascii_digit()).then(|| t.parse::<u32>().ok()).flatten();
    let (Some(y), Some(m), Some(d)) = (num(y), num(m), num(d)) else { return Err(bad()) };
    if !(1990..=2100).contains(&y) {
        return Err(DateError::Year(s.to_string()));
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(DateError::Month(s.to_string())),
    };
    if d == 0 || d > days {
        return Err(DateError::Day { date: s.to_string(), days });
    }
    Ok(s.to_string())
}

/// Validates the matrix fields of every call and fills [`Call::matrix`]. `calls[i]` is the
/// validated form of `raw_calls[i]`. Errors are (call index, key, message).
pub(crate) fn validate_calls(
    raw_calls: &[Spanned<raw::Call>],
    calls: &mut [Call],
) -> Result<(), (usize, &'static str, String)> {
    let names: Vec<(String, String, bool, bool)> = calls
        .iter()
        .map(|c| {
            (c.name.clone(), c.transport.clone(), c.options.bypass.is_empty(), c.placements() == 1)
        })
        .collect();
    for (i, (rc, c)) in raw_calls.iter().zip(calls.iter_mut()).enumerate() {
        let rc = rc.get_ref();
        c.options.bypass.validate().map_err(|m| (i, "options", m.to_string()))?;
        for (k, v) in [
            ("cite", &rc.cite),
            ("prediction", &rc.prediction),
            ("reference", &rc.reference),
            ("column", &rc.column),
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err((i, k, format!("{k} is empty: write it out or remove the key")));
            }
        }
        let basis = match (&rc.cite, &rc.prediction) {
            (Some(_), Some(_)) => {
                return Err((
                    i,
                    "prediction",
                    "give cite (the expected outcome is published) or prediction (it is callwall's own), not both".into(),
                ))
            }
            (Some(c), None) => Some(Basis::Cite(c.clone())),
            (None, Some(p)) => Some(Basis::Prediction(p.clone())),
            (None, None) => None,
        };
        let Some(basis) = basis else {
            if !c.options.bypass.is_empty() {
                return Err((
                    i,
                    "options",
                    format!(
                        "a call with a bypass ({}) states where its expected outcome comes from: add cite = \"...\" (published) or prediction = \"...\" (callwall's own expectation)",
                        c.options.bypass.label()
                    ),
                ));
            }
            for (k, v) in [("reference", &rc.reference), ("column", &rc.column)] {
                if v.is_some() {
                    return Err((
                        i,
                        k,
                        format!(
                            "only a bypass-matrix call (one with cite or prediction) has a {k}"
                        ),
                    ));
                }
            }
            continue;
        };
        if c.placements() != 1 {
            return Err((
                i,
                "cite",
                "a bypass-matrix call is placed once: remove count/repeat or the citation".into(),
            ));
        }
        if let Some(r) = &rc.reference {
            let Some((_, transport, plain, once)) = names.iter().find(|(n, ..)| n == r) else {
                return Err((
                    i,
                    "reference",
                    format!(
                        "no call is named {r:?} in this scenario; name the call without the bypass"
                    ),
                ));
            };
            if *r == c.name {
                return Err((i, "reference", "a call cannot be its own reference".into()));
            }
            if *transport != c.transport || !*plain || !*once {
                return Err((
                    i,
                    "reference",
                    format!("the reference {r:?} must use transport {:?} without options.bypass and be placed once", c.transport),
                ));
            }
        }
        if let Some(col) = &rc.column {
            if !crate::valid_name(col) {
                return Err((i, "column", "use 1-64 letters, digits, '-', '_', '+' or '.'".into()));
            }
        }
        c.matrix = Some(MatrixCall {
            column: rc.column.clone().unwrap_or_else(|| column_of(&c.strategies, &c.options)),
            label: label_of(&c.transport, &c.strategies, &c.options),
            basis,
            reference: rc.reference.clone(),
        });
    }
    Ok(())
}

/// Refuses a call whose bypass its strategy does not honour ([`check_bypass`] against the
/// build's transports), before anything starts: the error names the file, the line of the call's
/// `options` and the key `calls[i].options.bypass.KEY`. A call with `auto` or a list checks
/// every strategy it may try.
pub fn check_bypasses(
    sc: &Scenario,
    transports: &[Box<dyn VoiceTransport>],
) -> Result<(), ScenarioError> {
    for (i, c) in sc.calls.iter().enumerate() {
        let b = &c.options.bypass;
        if b.is_empty() {
            continue;
        }
        let fail = |key: &str, message: String| ScenarioError {
            file: sc.path.clone(),
            line: Some(c.options_line).filter(|&l| l > 0),
            key: Some(format!("calls[{i}].options.bypass{key}")),
            message,
        };
        let Some(t) = transports.iter().find(|t| t.name() == c.transport) else {
            return Err(fail(
                "",
                format!(
                    "transport {:?} takes no bypass options; remove options.bypass",
                    c.transport
                ),
            ));
        };
        let strategies: Vec<&str> = if c.strategies == ["auto"] {
            t.auto_order().to_vec()
        } else {
            c.strategies.iter().map(String::as_str).collect()
        };
        for s in strategies {
            if let Err(e) = check_bypass(t.as_ref(), s, b) {
                let honoured = t.bypasses(s);
                let key = b.keys().into_iter().find(|k| !honoured.contains(k));
                return Err(fail(&key.map(|k| format!(".{k}")).unwrap_or_default(), e.to_string()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn load(text: &str) -> Result<Scenario, ScenarioError> {
        let mut cat = crate::Catalog::default();
        cat.transports
            .insert("quic".into(), vec!["quic".into(), "quic-443".into(), "quic-split".into()]);
        cat.transports.insert("noise".into(), vec!["udp".into()]);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../netns");
        Scenario::from_str(text, Path::new("m.toml"), &dir, &cat)
    }

    #[test]
    fn dates_are_real_calendar_dates() {
        assert_eq!(validate_date("2025-09-28").unwrap(), "2025-09-28");
        assert!(validate_date("2024-02-29").is_ok());
        let s = |d: &str| d.to_string();
        for (bad, e) in [
            ("2025-02-29", DateError::Day { date: s("2025-02-29"), days: 28 }),
            ("2025-13-01", DateError::Month(s("2025-13-01"))),
            ("2025-9-28", DateError::Format(s("2025-9-28"))),
            ("28.09.2025", DateError::Format(s("28.09.2025"))),
            ("2025-04-31", DateError::Day { date: s("2025-04-31"), days: 30 }),
            ("1899-01-01", DateError::Year(s("1899-01-01"))),
            ("2025-00-10", DateError::Month(s("2025-00-10"))),
        ] {
            assert_eq!(validate_date(bad), Err(e), "{bad}");
        }
        assert_eq!(
            DateError::Day { date: s("2025-02-29"), days: 28 }.to_string(),
            "as_of = \"2025-02-29\": that month has days 01 to 28"
        );
    }

    #[test]
    fn matrix_calls_get_a_column_a_label_and_a_basis() {
        let sc = load(
            r#"name = "m"
as_of = "2024-04-01"
[[calls]]
name = "plain"
transport = "quic"
strategy = "quic-443"
options = { sni = "www.google.com" }
expect = "blocked"
cite = "Zohaib et al. 2025 [M]"
column = "none"
[[calls]]
name = "split"
transport = "quic"
strategy = "quic-split"
options = { sni = "www.google.com" }
expect = "connected"
prediction = "one Initial holds no whole hello"
reference = "plain"
[[calls]]
transport = "noise"
strategy = "udp"
expect = "connected"
"#,
        )
        .unwrap();
        assert_eq!(sc.as_of.as_deref(), Some("2024-04-01"));
        let plain = sc.calls[0].matrix.as_ref().unwrap();
        assert_eq!((plain.column.as_str(), plain.basis.is_prediction()), ("none", false));
        let split = sc.calls[1].matrix.as_ref().unwrap();
        assert_eq!(split.column, "sni");
        assert_eq!(split.label, "quic/quic-split sni=\"www.google.com\"");
        assert_eq!(split.reference.as_deref(), Some("plain"));
        assert!(sc.calls[2].matrix.is_none());
    }

    #[test]
    fn columns_come_from_bypass_keys_options_and_strategies() {
        let o = |j: &str| serde_json::from_str::<StrategyOptions>(j).unwrap();
        let s = |v: &str| vec![v.to_string()];
        assert_eq!(
            column_of(
                &s("udp"),
                &o(r#"{"bypass":{"decoy":"random","source_port":"below-server"}}"#)
            ),
            "decoy+source_port"
        );
        assert_eq!(column_of(&s("turn-tls"), &o("{}")), "turn-tls");
        assert_eq!(column_of(&s("quic"), &o("{}")), "none");
        assert_eq!(
            column_of(&s("tcp-443"), &o(r#"{"printable_prefix":"GET "}"#)),
            "printable_prefix"
        );
    }

    #[test]
    fn a_reference_must_exist_and_a_matrix_call_is_placed_once() {
        let base = "name = \"m\"\n[[calls]]\nname = \"a\"\ntransport = \"quic\"\nexpect = \"connected\"\n[[calls]]\ntransport = \"quic\"\nstrategy = \"quic-split\"\nexpect = \"connected\"\nprediction = \"p\"\n";
        let e = load(&format!("{base}reference = \"zz\"\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(11), Some("calls[1].reference")), "{e}");
        let e = load(&format!("{base}count = 2\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("calls[1].cite"), "{e}");
        let e = load(&format!("{base}reference = \"quic-quic-split\"\n")).unwrap_err();
        assert!(e.message.contains("own reference"), "{e}");
    }
}
