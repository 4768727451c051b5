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

/// Fills `bypass` on every result of a matrix call of `calls`.
pub fn annotate(
    as_of: Option<&str>,
    calls: &[&Call],
    results: &mut [CallResult],
    censor: &CensorResult,
) {
    let snapshot: Vec<(String, Verdict, Option<f64>, f64, Option<WireTotals>)> = results
        .iter()
        .map(|r| (r.name.clone(), r.verdict, r.setup_ms, r.mos, wire_totals(censor, r.caller_addr)))
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
            match snapshot.iter().find(|s| &s.0 == ref_name) {
                None => note = Some(format!("reference {ref_name:?} was not placed in this run")),
                Some((_, v, ..)) if !matches!(v, Verdict::Connected | Verdict::Degraded) => {
                    note = Some(format!(
                        "reference {ref_name:?} is {} here: cost measured in bypass-cost",
                        v.as_str()
                    ))
                }
                Some(_) if !matches!(r.verdict, Verdict::Connected | Verdict::Degraded) => {
                    note = Some(format!("this call is {}: no cost", r.verdict.as_str()))
                }
                Some((_, _, ref_setup, ref_mos, ref_wire)) => match (wire, ref_wire) {
                    (Some(w), Some(rw)) => {
                        cost = Some(BypassCost {
                            setup_ms: r.setup_ms.zip(*ref_setup).map(|(a, b)| a - b),
                            bytes: w.bytes as i64 - rw.bytes as i64,
                            packets: w.packets as i64 - rw.packets as i64,
                            mos: r.mos - ref_mos,
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
