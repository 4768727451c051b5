//! Terminal outputs: the results table (one row per call, verdicts coloured on a terminal) and
//! the agreement of verdicts across `--repeat` runs.

use std::fmt::Write as _;

use callwall_results::{Results, Verdict};

use crate::opt_ms;

fn verdict_str(v: Verdict) -> &'static str {
    v.as_str()
}

fn paint(s: &str, v: Verdict, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match v {
        Verdict::Connected => "32",
        Verdict::Degraded => "33",
        Verdict::Cut => "35",
        Verdict::Blocked => "31",
        Verdict::NoSignalling => "1;33",
        Verdict::Error => "1;31",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The results table: one row per call.
pub fn table(doc: &Results, color: bool) -> String {
    let mut rows: Vec<[String; 11]> = Vec::new();
    let mut verdicts: Vec<Option<Verdict>> = Vec::new();
    for r in &doc.runs {
        let scen = if r.repeat > 0 {
            format!("{} #{}", r.scenario, r.repeat + 1)
        } else {
            r.scenario.clone()
        };
        if let Some(e) = r.error.as_ref().map(|e| &e.message) {
            rows.push([
                scen,
                "-".into(),
                "-".into(),
                "error".into(),
                "-".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                e.clone(),
            ]);
            verdicts.push(Some(Verdict::Error));
            continue;
        }
        for c in &r.calls {
            rows.push([
                scen.clone(),
                // The call's name, and the strategy that carried it when that is not obvious.
                if c.name == format!("{}-{}", c.transport, c.strategy) {
                    format!("{}/{}", c.transport, c.strategy)
                } else {
                    format!("{} ({}/{})", c.name, c.transport, c.strategy)
                },
                format!(
                    "{}{}{}",
                    verdict_str(c.verdict),
                    crate::flaky::mark(c),
                    crate::machine::mark(c)
                ),
                format!("{}{}", if c.met { "" } else { "!" }, crate::one_of(&c.expected, "|")),
                opt_ms(c.setup_ms),
                format!("{:.1}", c.loss_pct),
                crate::opt_num(c.jitter_ms, 1),
                crate::opt_num(c.one_way_delay_ms, 1),
                format!("{:.0}", c.longest_gap_ms),
                crate::audio::mos_cell(c),
                c.rule.clone().unwrap_or_else(|| "-".into()),
            ]);
            verdicts.push(Some(c.verdict));
        }
    }
    let head = [
        "scenario",
        "call",
        "verdict",
        "expected",
        "setup ms",
        "loss %",
        "jitter ms",
        "delay ms",
        "gap ms",
        "MOS",
        "rule",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    w[10] = w[10].min(40);
    let mut out = String::new();
    let line = |cells: &[String; 11], v: Option<Verdict>, out: &mut String| {
        for (i, c) in cells.iter().enumerate() {
            let cell = if i == 10 { c.chars().take(80).collect::<String>() } else { c.clone() };
            let padded = if (4..=9).contains(&i) {
                format!("{cell:>width$}", width = w[i])
            } else {
                format!("{cell:<width$}", width = w[i])
            };
            let shown = match (i, v) {
                (2, Some(v)) => paint(&padded, v, color),
                _ => padded,
            };
            out.push_str(&shown);
            out.push_str(if i == 10 { "\n" } else { "  " });
        }
    };
    line(&head.map(String::from), None, &mut out);
    for (r, v) in rows.iter().zip(&verdicts) {
        line(r, *v, &mut out);
    }
    let calls: usize = doc.runs.iter().map(|r| r.calls.len()).sum();
    let unmet: usize = doc
        .runs
        .iter()
        .map(|r| {
            r.calls.iter().filter(|c| !c.met && !c.inconclusive).count()
                + usize::from(r.error.is_some())
        })
        .sum::<usize>()
        + crate::stats::missed(doc);
    out.push_str(&crate::stats::table_section(doc));
    out.push_str(&crate::flaky::table_section(doc));
    out.push_str(&crate::machine::table_section(doc));
    out.push_str(&crate::bypass::table_section(doc));
    out.push_str(&crate::audio::table_section(doc));
    let _ = writeln!(
        out,
        "\n{calls} call(s) in {} run(s): {}",
        doc.runs.len(),
        match (unmet, crate::machine::inconclusive(doc)) {
            (0, 0) => "every expectation met".to_string(),
            (0, n) => format!("{n} inconclusive (the machine, not the network), the rest met"),
            (u, 0) => format!("{u} expectation(s) NOT met (marked !)"),
            (u, n) => format!("{u} expectation(s) NOT met (marked !), {n} inconclusive"),
        }
    );
    out.push_str(&crate::activities::text(doc));
    out
}

/// For `--repeat`: whether each call got the same verdict in every repeat.
pub fn agreement(doc: &Results) -> String {
    let mut by: std::collections::BTreeMap<(String, String), Vec<&'static str>> =
        Default::default();
    for r in &doc.runs {
        for c in &r.calls {
            by.entry((r.scenario.clone(), c.name.clone()))
                .or_default()
                .push(verdict_str(c.verdict));
        }
    }
    let mut out = String::from("\nverdict agreement across repeats:\n");
    let mut all = true;
    for ((s, c), vs) in &by {
        let same = vs.iter().all(|v| *v == vs[0]);
        all &= same;
        let _ =
            writeln!(out, "  {} {s}/{c}: {}", if same { "same " } else { "DIFFER" }, vs.join(" "));
    }
    let _ = writeln!(out, "{}", if all { "all repeats agree" } else { "some repeats disagree" });
    out
}
