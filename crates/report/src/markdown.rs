//! A Markdown table of every call (for pull requests and wikis).

use std::fmt::Write as _;

use callwall_results::Results;

use crate::opt_ms;

/// A Markdown table of every call.
pub fn markdown(doc: &Results) -> String {
    let mut o = String::from("| scenario | call | verdict | expected | setup ms | loss % | jitter ms | delay ms | MOS | rule |\n|---|---|---|---|--:|--:|--:|--:|--:|---|\n");
    for r in &doc.runs {
        if let Some(e) = r.error.as_ref().map(|e| &e.message) {
            let _ = writeln!(
                o,
                "| {} | - | error | - | | | | | | {} |",
                r.scenario,
                e.replace('|', "/")
            );
        }
        for c in &r.calls {
            let _ = writeln!(
                o,
                "| {} | {}/{} | {}{}{} | {}{} | {} | {:.1} | {} | {} | {} | {} |",
                r.scenario,
                c.transport,
                c.strategy,
                c.verdict.as_str(),
                crate::flaky::mark(c),
                crate::machine::mark(c),
                if c.met { "" } else { "**not met:** " },
                crate::one_of(&c.expected, " or "),
                opt_ms(c.setup_ms),
                c.loss_pct,
                crate::opt_num(c.jitter_ms, 1),
                crate::opt_num(c.one_way_delay_ms, 1),
                crate::audio::mos_cell(c),
                c.rule.as_deref().unwrap_or("-")
            );
        }
    }
    o.push_str(&crate::stats::markdown_section(doc));
    o.push_str(&crate::machine::markdown_section(doc));
    o.push_str(&crate::audio::markdown_section(doc));
    o.push_str(&crate::activities::markdown(doc));
    o.push_str(&crate::external::markdown_section(doc));
    o.push_str(&crate::bypass::markdown_section(doc));
    o.push_str(&crate::flaky::markdown_section(doc));
    o
}
