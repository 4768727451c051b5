//! Bypass-matrix calls (issue 15): after a run, each call that carries `cite` or `prediction`
//! gets its [`CallBypass`]: the bypass, the basis of its expectation, the date of the censor
//! version, what it put on the wire (the censor's per-caller-address accounting) and its cost
//! against its `reference` call of the same run.
//!
//! The cost is computed only when the reference call got media through (connected or
//! degraded): against a blocked reference, "added bytes" would compare a call with a few
//! handshake packets. Those bypasses' cost is measured in a scenario without a censor
//! (`scenarios/bypass-cost.toml`).

use callwall_results::bypass::{BypassCost, CallBypass, WireTotals};
use callwall_results::{CallResult, CensorResult, Verdict};
use callwall_scenario::Call;

/// The frames and bytes of `addr` through the censor, both directions, every rule.
pub fn wire_totals(censor: &CensorResult, addr: std::net::IpAddr) -> Option<WireTotals> {
    let row = censor.by_inside.iter().find(|r| r.addr == addr)?;
    let mut t = WireTotals::default();
    for (_, c) in &row.rules {
        t.packets += c.forwarded + c.dropped + c.delayed;
        t.bytes += c.bytes;
    }
    Some(t)
}

/// What a reference needs of a call's result.
struct Seen {
    name: String,
    verdict: Verdict,
    setup_ms: Option<f64>,
    mos: f64,
    wire: Option<WireTotals>,
}

/// Fills `bypass` on every result of a matrix call of `calls`.
pub fn annotate(
    as_of: Option<&str>,
    calls: &[&Call],
    results: &mut [CallResult],
    censor: &CensorResult,
) {
    let snapshot: Vec<Seen> = results
        .iter()
        .map(|r| Seen {
            name: r.name.clone(),
            verdict: r.verdict,
            setup_ms: r.setup_ms,
            mos: r.mos.unwrap_or(0.0),
            wire: wire_totals(censor, r.caller_addr),
        })
        .collect();
    for r in results.iter_mut() {
        let Some(m) = calls.iter().find(|c| c.name == r.name).and_then(|c| c.matrix.as_ref())
        else {
            continue;
        };
        let wire = wire_totals(censor, r.caller_addr);
        let mut cost = None;
        let mut note = None;
        if let Some(ref_name) = &m.reference {
            match snapshot.iter().find(|s| &s.name == ref_name) {
                None => note = Some(format!("reference {ref_name:?} was not placed in this run")),
                Some(s) if !matches!(s.verdict, Verdict::Connected | Verdict::Degraded) => {
                    note = Some(format!(
                        "reference {ref_name:?} {}: see bypass-cost",
                        s.verdict.as_str()
                    ))
                }
                Some(_) if !matches!(r.verdict, Verdict::Connected | Verdict::Degraded) => {
                    note = Some(format!("this call is {}: no cost", r.verdict.as_str()))
                }
                Some(s) => match (wire, s.wire) {
                    (Some(w), Some(rw)) => {
                        cost = Some(BypassCost {
                            setup_ms: r.setup_ms.zip(s.setup_ms).map(|(a, b)| a - b),
                            bytes: w.bytes as i64 - rw.bytes as i64,
                            packets: w.packets as i64 - rw.packets as i64,
                            mos: r.mos.unwrap_or(0.0) - s.mos,
                        })
                    }
                    _ => note = Some("the censor did not account for one of the calls".into()),
                },
            }
        }
        r.bypass = Some(CallBypass {
            column: m.column.clone(),
            label: m.label.clone(),
            basis: m.basis.clone(),
            as_of: as_of.map(str::to_string),
            wire,
            reference: m.reference.clone(),
            cost,
            cost_note: note,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_results::{HostRuleCounters, InsideReport};
    use std::path::Path;

    fn result(name: &str, addr: &str, v: Verdict, setup: f64, mos: f64) -> CallResult {
        serde_json::from_value(serde_json::json!({
            "name": name, "transport": "quic", "strategy": "quic-443", "requested": ["quic-443"],
            "verdict": v, "expected": ["connected"], "met": true, "setup_ms": setup,
            "loss_pct": 0.0, "jitter_ms": 0.0, "one_way_delay_ms": 0.0, "longest_gap_ms": 0.0,
            "mos": mos, "reason": { "cause": "text", "text": "" }, "caller_addr": addr,
            "metrics": callwall_results::CallMetrics::default(),
        }))
        .unwrap()
    }

    fn row(addr: &str, forwarded: u64, dropped: u64, bytes: u64) -> InsideReport {
        InsideReport {
            addr: addr.parse().unwrap(),
            rules: vec![(
                "default".into(),
                HostRuleCounters { forwarded, dropped, delayed: 0, bytes },
            )],
        }
    }

    #[test]
    fn cost_is_bypass_minus_reference_and_never_against_a_blocked_reference() {
        let mut cat = callwall_scenario::Catalog::default();
        cat.transports.insert("quic".into(), vec!["quic-443".into(), "quic-split".into()]);
        let text = "name = \"m\"\nas_of = \"2024-04-01\"\n[[calls]]\nname = \"plain\"\ntransport = \"quic\"\nstrategy = \"quic-443\"\nexpect = \"connected\"\n[[calls]]\nname = \"split\"\ntransport = \"quic\"\nstrategy = \"quic-split\"\nexpect = \"connected\"\nprediction = \"p\"\nreference = \"plain\"\n";
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../netns");
        let sc =
            callwall_scenario::Scenario::from_str(text, Path::new("m.toml"), &dir, &cat).unwrap();
        let calls: Vec<&Call> = sc.calls.iter().collect();
        let censor = CensorResult {
            by_inside: vec![row("10.1.0.128", 400, 0, 60_000), row("10.1.0.129", 410, 2, 62_000)],
            ..Default::default()
        };
        let mut results = vec![
            result("plain", "10.1.0.128", Verdict::Connected, 40.0, 4.38),
            result("split", "10.1.0.129", Verdict::Connected, 45.0, 4.30),
        ];
        annotate(sc.as_of.as_deref(), &calls, &mut results, &censor);
        assert!(results[0].bypass.is_none(), "the reference is no matrix call here");
        let b = results[1].bypass.as_ref().unwrap();
        assert_eq!((b.column.as_str(), b.as_of.as_deref()), ("quic-split", Some("2024-04-01")));
        assert_eq!(b.wire, Some(WireTotals { packets: 412, bytes: 62_000 }));
        let c = b.cost.unwrap();
        assert_eq!((c.bytes, c.packets, c.setup_ms), (2000, 12, Some(5.0)));
        assert!((c.mos + 0.08).abs() < 1e-9);
        // A blocked reference gives no cost, and says why.
        results[0].verdict = Verdict::Blocked;
        annotate(None, &calls, &mut results, &censor);
        let b = results[1].bypass.as_ref().unwrap();
        assert!(b.cost.is_none());
        assert!(b.cost_note.as_deref().unwrap().contains("blocked"), "{:?}", b.cost_note);
    }
}
