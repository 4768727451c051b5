//! `callwall merge A.json B.json ...`: joins the results of shards (`run --shard K/N`) or of
//! separate runs into one document and renders every report from it.
//!
//! Checks before anything is written (exit 2, naming the file): every file is a results
//! document of a schema version this build reads; all have the same schema version and were
//! written by the same callwall version; no run (scenario × repeat) appears twice; when the
//! files say which shard they hold, every shard 1..N of the same N is there exactly once.
//! Exit 0 when every expectation of the merged runs is met, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use callwall_harness::merge::{merge_files, MergeArgs};

#[derive(Args, Debug)]
pub struct MergeOpts {
    /// Results files written by `callwall run --json` (for example one per shard).
    #[arg(value_name = "RESULTS.json", required = true)]
    inputs: Vec<PathBuf>,
    /// Write the merged results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown table.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// No colours in the table.
    #[arg(long)]
    no_color: bool,
}

pub fn main(o: MergeOpts) -> ExitCode {
    merge_files(MergeArgs {
        inputs: o.inputs,
        json: o.json,
        junit: o.junit,
        markdown: o.markdown,
        html: o.html,
        no_color: o.no_color,
    })
}
