//! `callwall report` (re-render a saved results file), `callwall diff` (compare two) and the
//! HTML page of `callwall run --html`; the binary parses the arguments into [`ReportArgs`]
//! and [`DiffArgs`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::result::Results;

/// `callwall report`'s arguments.
pub struct ReportArgs {
    pub results: PathBuf,
    pub html: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub no_color: bool,
}

/// `callwall diff`'s arguments.
pub struct DiffArgs {
    pub old: PathBuf,
    pub new: PathBuf,
    pub json: bool,
}

/// The HTML page for `--html`.
pub fn html(doc: &Results) -> String {
    callwall_report::html(doc)
}

fn load(path: &Path) -> Result<Results, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read results file {}; pass a file written by `callwall run --json`: {e}",
            path.display()
        )
    })?;
    callwall_report::parse_results(&text)
        .map_err(|e| format!("cannot use results file {}: {e}", path.display()))
}

fn write_file(p: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    std::fs::write(p, text).map_err(|e| {
        format!("cannot write {}; check the path and its permissions: {e}", p.display())
    })
}

/// `callwall report`: 0 when every requested file was written, 2 on bad input or a failed write.
pub fn report(opts: ReportArgs) -> ExitCode {
    let doc = match load(&opts.results) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
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
                    eprintln!("error: {e}");
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
pub fn diff(opts: DiffArgs) -> ExitCode {
    let (old, new) = match (load(&opts.old), load(&opts.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (o, n) => {
            for e in [o.err(), n.err()].into_iter().flatten() {
                eprintln!("error: {e}");
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
