//! Reports from callwall results, as pure functions of a [`Results`] document. Every renderer
//! lives here; the crate depends on `callwall-results` alone (no harness, namespaces or async
//! runtime), so a results file can be rendered anywhere.
//!
//! - [`table`]: the terminal table (one row per call) and the verdict agreement of repeats.
//! - [`junit`]: JUnit XML, a test suite per run and a test case per call.
//! - [`markdown`]: a Markdown table of every call.
//! - [`json`]: the results document as pretty JSON.
//! - [`html`]: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched from
//!   the network) with a summary, the verdict matrix as a heat map and, per call, a timeline of
//!   loss, one-way delay and MOS per second with the censor's actions marked.
//! - [`control`]: live control changes of the censor in the HTML report (a list, timeline
//!   markers).
//! - [`load`]: parse a results JSON file, checking its `schema_version` first so an unknown
//!   version is named as such rather than reported as a parse error.
//! - [`activities`]: the "what still works" matrix (activity × app or transport) of runs with
//!   workloads, and the workload parts of every renderer.
//! - [`external`]: the `external` object of calls placed by external peers (commands, exits,
//!   report lines, judged from the reports or the network, stderr tails) in every renderer.
//! - [`bypass`]: the "Bypass matrix" section (dated censors × bypasses, outcome, cost and
//!   source per cell) of the table, Markdown, HTML and JUnit outputs.
//! - [`diff`]: compare two results documents call by call (matched by scenario and call name)
//!   and say which verdicts got worse.
//!
//! Guarantees: every string taken from the results (scenario names, reasons, SNIs, flows: they
//! come from files and from traffic) is escaped before it reaches the page, so hostile input
//! cannot inject markup. Nothing here does I/O, reads a clock or panics on any [`Results`].
//!
//! Not done here: writing files, exit codes and progress on the terminal (the `callwall`
//! binary does those).
//!
//! Libraries we considered (issue 10, item 7) and kept ours for, for now:
//! - `quick-junit` (the JUnit model and writer of cargo-nextest) writes [`junit`] since runs
//!   report every attempt (issue 23): its `flakyFailure`/`rerunFailure` elements, each with
//!   the `stackTrace` Surefire's schema requires, are where a hand-written writer went wrong.
//! - `comfy-table` / `tabled` for [`table`]: our cells are short ASCII (names, verdicts,
//!   milliseconds) coloured by verdict, and the table is a pure `String` (tested as text); the
//!   libraries' strengths (wrapping, Unicode width, borders, terminal-width detection) are
//!   things this table does not need, and comfy-table's terminal support pulls in crossterm.
//!   Adopt one if cells grow free text (SNIs, reasons) that needs wrapping.

pub mod activities;
pub mod audio;
pub mod bypass;
pub mod control;
pub mod diff;
pub mod external;
pub mod flaky;
pub mod html;
pub mod ice;
pub mod junit;
pub mod load;
pub mod machine;
pub mod markdown;
pub mod stats;
pub mod table;
pub mod upgrade;

pub use callwall_results::Results;
pub use junit::junit;
pub use markdown::markdown;
pub use table::{agreement, table};

/// The results document as pretty-printed JSON (the format of `callwall run --json`).
pub fn json(doc: &Results) -> String {
    // Serializing plain data with string keys cannot fail.
    serde_json::to_string_pretty(doc).expect("results serialize")
}

/// The accepted outcomes in words, joined by `sep` (`connected or degraded`).
pub(crate) fn one_of<T: Ord + Copy + std::fmt::Display>(
    e: &callwall_results::OneOf<T>,
    sep: &str,
) -> String {
    e.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(sep)
}

/// A figure with `prec` decimals, `-` when the call has none (judged from the network).
pub(crate) fn opt_num(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.prec$}"))
}

/// Milliseconds without decimals, `-` when unknown.
fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.0}"))
}
pub use diff::{diff, CallKey, Change, Diff};
pub use html::html;
pub use load::{parse_results, LoadError, SUPPORTED_SCHEMA_VERSIONS};
