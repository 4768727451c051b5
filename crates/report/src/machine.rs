//! How every output shows what the machine did to a call (see [`callwall_results::machine`]):
//! an `(inconclusive)` mark after the verdict of a call that missed twice with the machine to
//! blame, and the load itself beside any call that carries one.

use std::fmt::Write as _;

use callwall_results::{CallResult, Results};

use crate::html::escape;

/// The mark after an inconclusive call's verdict in the table and Markdown.
pub const MARK: &str = " (inconclusive)";

/// `" (inconclusive)"` for an inconclusive call, empty otherwise.
pub fn mark(c: &CallResult) -> &'static str {
    if c.inconclusive {
        MARK
    } else {
        ""
    }
}

/// Inconclusive calls over the whole document.
pub fn inconclusive(doc: &Results) -> usize {
    doc.runs.iter().flat_map(|r| &r.calls).filter(|c| c.inconclusive).count()
}

/// For the terminal table and Markdown: one line per inconclusive call with why, empty if
/// none.
pub fn table_section(doc: &Results) -> String {
    let mut out = String::new();
    for r in &doc.runs {
        for c in r.calls.iter().filter(|c| c.inconclusive) {
            if out.is_empty() {
                out.push_str(
                    "\ninconclusive calls (missed twice, the machine to blame both times; not a \
                     verdict on the transport):\n",
                );
            }
            let why = c.machine.map(|m| m.to_string()).unwrap_or_default();
            let _ = writeln!(out, "  {}/{}: {} ({why})", r.scenario, c.name, c.verdict.as_str());
        }
    }
    out
}

/// For Markdown: a list of inconclusive calls with why, empty if none.
pub fn markdown_section(doc: &Results) -> String {
    let mut out = String::new();
    for r in &doc.runs {
        for c in r.calls.iter().filter(|c| c.inconclusive) {
            if out.is_empty() {
                out.push_str(
                    "\n### Inconclusive calls\n\nMissed twice with the machine to blame both \
                     times: not a verdict on the transport.\n\n",
                );
            }
            let why = c.machine.map(|m| m.to_string()).unwrap_or_default();
            let _ = writeln!(out, "- {} / {}: {} ({why})", r.scenario, c.name, c.verdict.as_str());
        }
    }
    out
}

/// For the HTML call card: the machine's load, when the call carries one.
pub fn html_call(o: &mut String, c: &CallResult) {
    if let Some(m) = c.machine {
        let head = if c.inconclusive { "Inconclusive:" } else { "Machine:" };
        let _ = writeln!(
            o,
            "<p class=\"reason\"><strong>{head}</strong> {}</p>",
            escape(&m.to_string())
        );
    }
}
