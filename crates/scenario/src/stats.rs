//! Statistical expectations in scenario files: `repeat = N` on a call with
//! `expect = { degraded = "70-100%", blocked = "0-30%" }`.
//!
//! A call whose outcome is genuinely random (a handshake under 8 % loss, a censor that blocks a
//! connection with probability 0.26) is placed `repeat` times at once, each copy from its own
//! caller and callee address, so each is its own flow and gets its own draw of the censor's
//! counter-based randomness. The harness judges the distribution of the copies' verdicts with
//! [`callwall_results::stats::judge`]; verdicts not listed are expected at 0 %.
//!
//! Rules checked here (each error names the key): shares need `repeat` of 2 or more; a repeated
//! call needs shares; `repeat` and `count` do not combine; the shares must be satisfiable.

use std::fmt;

use callwall_transport::Verdict;
use serde::Deserialize;

pub use callwall_results::stats::{ShareRange, Shares};

use crate::raw::{ExpectSpec, OneOrMany};

/// Most repeats of one call (each is a placed call; the scenario's total is also bounded).
pub const MAX_REPEAT: u32 = 32;

/// The written form of `expect`: names (one or a list) or a table of shares.
pub(crate) enum ExpectForm {
    Names(OneOrMany<String>),
    Shares(Shares),
}

impl<'de> Deserialize<'de> for ExpectForm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ExpectForm;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a verdict, a list of verdicts, or a table of shares like { connected = \"70-100%\" }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(ExpectForm::Names(OneOrMany(vec![s.to_string()], true)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<String>()? {
                    v.push(x);
                }
                Ok(ExpectForm::Names(OneOrMany(v, false)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                use serde::de::Error as _;
                let mut shares = Shares::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    let verdict = crate::raw::parse_verdict(&k).map_err(A::Error::custom)?;
                    let range = ShareRange::parse(&v)
                        .map_err(|e| A::Error::custom(format!("share of {k}: {e}")))?;
                    shares.insert(verdict, range);
                }
                Ok(ExpectForm::Shares(shares))
            }
        }
        d.deserialize_any(V)
    }
}

/// Checks `repeat`, `expect` and `count` together; returns the repeat count and the shares
/// (`None` for an ordinary call). `Err` names the key (`repeat` or `expect`) and the fix.
pub(crate) fn validate(
    repeat: Option<u32>,
    expect: &ExpectSpec,
    count: Option<u32>,
) -> Result<(u32, Option<Shares>), (&'static str, String)> {
    let shares = match expect {
        ExpectSpec::Shares(s) => Some(s.clone()),
        _ => None,
    };
    let n = repeat.unwrap_or(1);
    match (&shares, n) {
        (_, 0) => return Err(("repeat", format!("use 2 to {MAX_REPEAT}"))),
        (_, n) if n > MAX_REPEAT => return Err(("repeat", format!("use 2 to {MAX_REPEAT}"))),
        (Some(_), 1) => {
            return Err((
                "repeat",
                "expected shares need repeats: add repeat = N (2 or more, 10 is a good start)"
                    .into(),
            ))
        }
        (None, n) if n > 1 => {
            return Err((
                "expect",
                "a repeated call is judged by the share of each verdict: write expect = { verdict = \"lo-hi%\", ... }"
                    .into(),
            ))
        }
        _ => {}
    }
    if n > 1 && count.unwrap_or(1) > 1 {
        return Err((
            "repeat",
            "repeat and count do not combine: use count for copies placed as load, repeat for trials judged by shares".into(),
        ));
    }
    if let Some(s) = &shares {
        callwall_results::stats::check_satisfiable(s).map_err(|m| ("expect", m.to_string()))?;
    }
    Ok((n, shares))
}

/// The verdicts a share table allows at all (upper share above 0), best first: what each
/// single repeat may get.
pub fn possible(shares: &Shares) -> Vec<Verdict> {
    shares.iter().filter(|(_, r)| r.hi > 0.0).map(|(v, _)| *v).collect()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::{Catalog, Scenario};

    fn netns_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../netns")
    }

    fn load(calls: &str) -> Result<Scenario, crate::ScenarioError> {
        let mut c = Catalog::default();
        c.transports.insert("noise".into(), vec!["udp".into(), "tcp-443".into()]);
        let text = format!("name = \"x\"\n{calls}");
        Scenario::from_str(&text, Path::new("x.toml"), &netns_dir(), &c)
    }

    #[test]
    fn a_repeated_call_with_shares_loads() {
        let sc = load(
            "[[calls]]\ntransport = \"noise\"\nrepeat = 10\nexpect = { degraded = \"70-100%\", blocked = \"0-30%\", cut = \"0%\" }\n",
        )
        .unwrap();
        let c = &sc.calls[0];
        assert_eq!((c.repeat, c.placements()), (10, 10));
        let s = c.shares.as_ref().unwrap();
        assert_eq!(s.len(), 3);
        // A repeat may be degraded or blocked, never cut (0 %).
        use callwall_transport::Verdict::*;
        assert_eq!(c.expect, [Degraded, Blocked]);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            // shares without repeat
            ("[[calls]]\ntransport = \"noise\"\nexpect = { connected = \"100%\" }\n", 2, "calls[0].repeat", "add repeat"),
            // repeat without shares
            ("[[calls]]\ntransport = \"noise\"\nrepeat = 5\nexpect = \"connected\"\n", 5, "calls[0].expect", "share of each verdict"),
            // repeat with count
            ("[[calls]]\ntransport = \"noise\"\ncount = 2\nrepeat = 5\nexpect = { connected = \"100%\" }\n", 5, "calls[0].repeat", "do not combine"),
            // unsatisfiable
            ("[[calls]]\ntransport = \"noise\"\nrepeat = 5\nexpect = { connected = \"0-50%\" }\n", 5, "calls[0].expect", "upper shares"),
            // too many
            ("[[calls]]\ntransport = \"noise\"\nrepeat = 99\nexpect = { connected = \"100%\" }\n", 4, "calls[0].repeat", "use 2 to"),
        ];
        for (calls, line, key, msg) in cases {
            let e = load(calls).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (Some(line), Some(key)), "{e}");
            assert!(e.message.contains(msg), "{e}");
        }
        // Bad shares and unknown verdicts fail while parsing, on the expect line.
        for (calls, msg) in [
            ("[[calls]]\ntransport = \"noise\"\nrepeat = 5\nexpect = { connected = \"70-100\" }\n", "not a share"),
            ("[[calls]]\ntransport = \"noise\"\nrepeat = 5\nexpect = { fine = \"100%\" }\n", "unknown verdict"),
        ] {
            let e = load(calls).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("expect")), "{e}");
            assert!(e.message.contains(msg), "{e}");
        }
    }
}
