//! `callwall report` (re-render a saved results file), `callwall diff` (compare two) and the
//! HTML page of `callwall run --html`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use callwall_harness::result::Results;

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

/// The HTML page for `--html`.
pub fn html(doc: &Results) -> String {
    callwall_report::html(doc)
}

fn load(path: &Path) -> anyhow::Result<Results> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read results file {}; pass a file written by `callwall run --json`",
            path.display()
        )
    })?;
    callwall_report::parse_results(&text)
        .with_context(|| format!("cannot use results file {}", path.display()))
}

fn write_file(p: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    std::fs::write(p, text).with_context(|| {
        format!("cannot write {}; check the path and its permissions", p.display())
    })
}

/// `callwall report`: 0 when every requested file was written, 2 on bad input or a failed write.
pub fn report(opts: ReportOpts) -> ExitCode {
    let doc = match load(&opts.results) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    use std::io::IsTerminal as _;
    let color =
        !opts.no_color && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", callwall_report::table(&doc, color));
    type Render = fn(&Results) -> String;
    let outputs: [(&Option<PathBuf>, &str, Render); 3] = [
        (&opts.html, "HTML report", html),
        (&opts.markdown, "Markdown", callwall_report::markdown),
        (&opts.junit, "JUnit XML", callwall_report::junit),
    ];
    let mut failed = false;
    for (path, what, render) in outputs {
        if let Some(p) = path {
            match write_file(p, &render(&doc)) {
                Ok(()) => eprintln!("wrote {what} to {}", p.display()),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// `callwall diff`: 1 when some call's verdict got worse, 0 otherwise, 2 on bad input.
pub fn diff(opts: DiffOpts) -> ExitCode {
    let (old, new) = match (load(&opts.old), load(&opts.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (o, n) => {
            for e in [o.err(), n.err()].into_iter().flatten() {
                eprintln!("error: {e:#}");
            }
            return ExitCode::from(2);
        }
    };
    let d = callwall_report::diff(&old, &new);
    if opts.json {
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
