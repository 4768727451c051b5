//! Reports from callwall results, as pure functions of a [`Results`] document.
//!
//! - [`html`]: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched from
//!   the network) with a summary, the verdict matrix as a heat map and, per call, a timeline of
//!   loss, one-way delay and MOS per second with the censor's actions marked.
//! - [`load`]: parse a results JSON file, checking its `schema_version` first so an unknown
//!   version is named as such rather than reported as a parse error.
//! - [`diff`]: compare two results documents call by call (matched by scenario and call name)
//!   and say which verdicts got worse.
//!
//! Guarantees: every string taken from the results (scenario names, reasons, SNIs, flows: they
//! come from files and from traffic) is escaped before it reaches the page, so hostile input
//! cannot inject markup. Nothing here does I/O, reads a clock or panics on any [`Results`].
//!
//! Not done here: writing files, exit codes and terminal output (the `callwall` binary does
//! those), and the terminal table, JUnit and Markdown outputs (the binary's `output` module).

pub mod diff;
pub mod html;
pub mod load;

pub use callwall_harness::result::Results;
pub use diff::{diff, CallKey, Change, Diff};
pub use html::html;
pub use load::{parse_results, LoadError, SUPPORTED_SCHEMA_VERSIONS};
