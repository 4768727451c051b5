//! `callwall report` (re-render a saved results file) and `callwall diff` (compare two).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::output::{self, Judge, OutputArgs};

/// `callwall report`'s arguments.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A results file written by `callwall run --json`.
    #[arg(value_name = "RESULTS.json")]
    pub results: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `callwall diff`'s arguments.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The earlier results file (e.g. from the main branch).
    #[arg(value_name = "OLD.json")]
    pub old: PathBuf,
    /// The later results file (e.g. from this change).
    #[arg(value_name = "NEW.json")]
    pub new: PathBuf,
    /// Print the difference as JSON (for machines) instead of lines of text.
    #[arg(long)]
    pub json: bool,
    /// Calls (and workloads) in OLD but not in NEW are not a regression (by default they are:
    /// lost coverage exits 1).
    #[arg(long)]
    pub allow_removed: bool,
}

/// `callwall report`: the table, then every requested file; 0 when every file was written,
/// 2 on bad input or a failed write.
pub fn report(args: ReportArgs) -> ExitCode {
    let doc = match output::load(&args.results) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let written = args.output.emit(&doc);
    output::exit_code(&doc, written, Judge::FilesOnly)
}

/// `callwall diff`: 1 when some call's verdict got worse or a call was removed (unless
/// `--allow-removed`), 0 otherwise, 2 on bad input.
pub fn diff(args: DiffArgs) -> ExitCode {
    let (old, new) = match (output::load(&args.old), output::load(&args.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (o, n) => {
            for e in [o.err(), n.err()].into_iter().flatten() {
                eprintln!("error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let mut d = callwall_report::diff(&old, &new);
    if !args.allow_removed {
        d.count_removed_as_worse();
    }
    if args.json {
        match serde_json::to_string_pretty(&d) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot encode the difference as JSON: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", d.to_text());
    }
    if d.regressed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
