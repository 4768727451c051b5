//! `callwall report` (re-render a saved results file) and `callwall diff` (compare two): the
//! arguments; the bodies are `callwall_harness::report_cmd`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use callwall_harness::report_cmd::{DiffArgs, ReportArgs};

#[derive(Args, Debug)]
pub struct ReportOpts {
    /// A results file written by `callwall run --json`.
    #[arg(value_name = "RESULTS.json")]
    results: PathBuf,
    /// Write a self-contained HTML page with the verdict matrix and per-call timelines.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write a Markdown table.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write a JUnit XML file (one test case per call).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// No colours in the table.
    #[arg(long)]
    no_color: bool,
}

#[derive(Args, Debug)]
pub struct DiffOpts {
    /// The earlier results file (e.g. from the main branch).
    #[arg(value_name = "OLD.json")]
    old: PathBuf,
    /// The later results file (e.g. from this change).
    #[arg(value_name = "NEW.json")]
    new: PathBuf,
    /// Print the difference as JSON (for machines) instead of lines of text.
    #[arg(long)]
    json: bool,
}

/// `callwall report`.
pub fn report(o: ReportOpts) -> ExitCode {
    callwall_harness::report_cmd::report(ReportArgs {
        results: o.results,
        html: o.html,
        markdown: o.markdown,
        junit: o.junit,
        no_color: o.no_color,
    })
}

/// `callwall diff`.
pub fn diff(o: DiffOpts) -> ExitCode {
    callwall_harness::report_cmd::diff(DiffArgs { old: o.old, new: o.new, json: o.json })
}
