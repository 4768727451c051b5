//! The one output path of `run`, `merge` and `report`: load a results document, print its
//! table, render every requested format, write each file, and decide the exit code — written
//! once, so the commands' formats, messages and exit codes cannot drift apart.
//!
//! Adding a report format: a renderer in `callwall-report`, then a [`Format`] variant and its
//! flag in [`OutputArgs`] here. Nothing else names the formats.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use callwall_results::{Results, RunResult};
use clap::Args;

/// The output-file flags, one group flattened into every command that writes reports.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the results as JSON (versioned schema, see docs/results-schema.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML file (a test suite per run, a test case per call and workload).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown table.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write a self-contained HTML report (verdict matrix, per-call timelines).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// No colours in the table (also without a terminal, or with NO_COLOR set).
    #[arg(long)]
    pub no_color: bool,
}

/// A report format written to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Junit,
    Markdown,
    Html,
}

impl Format {
    /// Every format, in the order files are written.
    pub const ALL: [Format; 4] = [Format::Json, Format::Junit, Format::Markdown, Format::Html];

    /// What the file holds, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Format::Json => "JSON results",
            Format::Junit => "JUnit XML",
            Format::Markdown => "Markdown",
            Format::Html => "HTML report",
        }
    }

    /// The flag that asks for this format.
    pub fn flag(self) -> &'static str {
        match self {
            Format::Json => "--json",
            Format::Junit => "--junit",
            Format::Markdown => "--markdown",
            Format::Html => "--html",
        }
    }

    /// The document rendered in this format (pure: `callwall-report`).
    pub fn render(self, doc: &Results) -> String {
        match self {
            Format::Json => callwall_report::json(doc),
            Format::Junit => callwall_report::junit(doc),
            Format::Markdown => callwall_report::markdown(doc),
            Format::Html => callwall_report::html(doc),
        }
    }
}

/// Why a results file could not be read or a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot read results file {}; pass a file written by `callwall run --json`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot use results file {}: {source}", path.display())]
    Parse { path: PathBuf, source: callwall_report::LoadError },
    #[error("cannot write {what} to {}; check the path and its permissions: {source}", path.display())]
    Write { what: &'static str, path: PathBuf, source: std::io::Error },
}

/// Reads and checks a results document (the output of `callwall run --json`).
pub fn load(path: &Path) -> Result<Results, OutputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| OutputError::Read { path: path.to_path_buf(), source })?;
    callwall_report::parse_results(&text)
        .map_err(|source| OutputError::Parse { path: path.to_path_buf(), source })
}

impl OutputArgs {
    /// The file requested for `format`, if any.
    pub fn path(&self, format: Format) -> Option<&Path> {
        match format {
            Format::Json => self.json.as_deref(),
            Format::Junit => self.junit.as_deref(),
            Format::Markdown => self.markdown.as_deref(),
            Format::Html => self.html.as_deref(),
        }
    }

    /// Whether the table gets colours: asked for, on a terminal, and NO_COLOR unset.
    pub fn color(&self) -> bool {
        !self.no_color && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    }

    /// Prints the table of `doc` on stdout, then writes every requested file (each attempted
    /// even when an earlier one failed), saying on stderr what was written where. Returns
    /// whether every file was written.
    pub fn emit(&self, doc: &Results) -> Written {
        print!("{}", callwall_report::table(doc, self.color()));
        self.write_files(doc)
    }

    /// Writes every requested file (see [`OutputArgs::emit`]).
    pub fn write_files(&self, doc: &Results) -> Written {
        let mut written = Written::All;
        for format in Format::ALL {
            let Some(path) = self.path(format) else { continue };
            match write_file(path, format.what(), &format.render(doc)) {
                Ok(()) => eprintln!("wrote {} to {}", format.what(), path.display()),
                Err(e) => {
                    eprintln!("error: {e}");
                    written = Written::SomeFailed;
                }
            }
        }
        written
    }
}

/// Whether every requested file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    All,
    SomeFailed,
}

/// Writes `text` to `path`, creating its directory.
fn write_file(path: &Path, what: &'static str, text: &str) -> Result<(), OutputError> {
    let err = |source| OutputError::Write { what, path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}

/// How a command's exit code is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// `run` and `merge`: 2 when a file could not be written or a run failed for input or
    /// environment; 0 when every expectation was met and nothing interrupted the runs; 3 when
    /// every expectation was met but for inconclusive calls (the machine to blame); else 1.
    Expectations { interrupted: bool },
    /// `report` (re-rendering a saved document): 2 when a file could not be written, else 0.
    FilesOnly,
}

/// The exit code of a command that wrote `doc` (see [`Judge`]).
pub fn exit_code(doc: &Results, written: Written, judge: Judge) -> ExitCode {
    ExitCode::from(exit_status(doc, written, judge))
}

/// [`exit_code`] as a number (tested).
pub fn exit_status(doc: &Results, written: Written, judge: Judge) -> u8 {
    if written == Written::SomeFailed {
        return 2;
    }
    match judge {
        Judge::FilesOnly => 0,
        Judge::Expectations { interrupted } => {
            let worst_error =
                doc.runs.iter().filter_map(|r| r.error.as_ref()).map(|e| e.kind.exit_code()).max();
            if worst_error == Some(2) {
                2
            } else if doc.runs.iter().all(RunResult::passed) && !interrupted && !doc.interrupted {
                // Inconclusive calls (the machine to blame twice) are neither a pass nor a
                // regression: their own code, so CI can re-run the job elsewhere.
                let inconclusive = doc.runs.iter().flat_map(|r| &r.calls).any(|c| c.inconclusive);
                if inconclusive {
                    3
                } else {
                    0
                }
            } else {
                1
            }
        }
    }
}

/// The last line of `run` and `merge`: the exit code and why, in words. A run that passed only
/// on a retry exits 0 (the convention of Maven Surefire and cargo-nextest: a flaky pass is a
/// pass) but says so here, and in every output.
pub fn verdict_line(doc: &Results, written: Written, judge: Judge) -> String {
    let code = exit_status(doc, written, judge);
    let flaky = doc.runs.iter().filter(|r| r.flaky).count();
    let flaky_words = match flaky {
        0 => String::new(),
        n => format!("; {n} run(s) FLAKY (something missed, then met its expectation on a retry)"),
    };
    let why = if written == Written::SomeFailed {
        "a report file could not be written".to_string()
    } else if doc.interrupted || matches!(judge, Judge::Expectations { interrupted: true }) {
        let stopped = doc
            .runs
            .iter()
            .filter(|r| {
                r.error
                    .as_ref()
                    .is_some_and(|e| e.kind == callwall_results::RunErrorKind::Interrupted)
            })
            .count();
        format!("INTERRUPTED: {stopped} run(s) did not finish; these results are not a pass")
    } else if code == 2 {
        "a run failed for input or environment (fix the job, not the transport)".to_string()
    } else if code == 1 {
        "some expectation NOT met".to_string()
    } else if code == 3 {
        "INCONCLUSIVE: some call missed twice with the machine to blame (re-run on a quieter \
         machine); every other expectation met"
            .to_string()
    } else if flaky > 0 {
        "every expectation met, some only on a retry".to_string()
    } else {
        "every expectation met".to_string()
    };
    format!("exit {code}: {why}{flaky_words}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_results::{RunError, RunErrorKind, SCHEMA_VERSION};

    fn doc(errors: &[Option<RunErrorKind>]) -> Results {
        let runs = errors
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let mut r: RunResult = serde_json::from_value(serde_json::json!({
                    "scenario": format!("s{i}"), "path": "s.toml", "seed": 1, "repeat": 0,
                    "topology": "t", "started_unix_ms": 0, "wall_ms": 0, "calls": [],
                    "censor": callwall_results::CensorResult::default(),
                }))
                .expect("a run");
                r.error = kind.map(|k| RunError::new(k, "x".to_string()));
                r
            })
            .collect();
        Results {
            schema_version: SCHEMA_VERSION,
            callwall_version: "0".into(),
            runs,
            ..Default::default()
        }
    }

    #[test]
    fn exit_codes_follow_one_rule_for_every_command() {
        let ok = doc(&[None, None]);
        let judge = Judge::Expectations { interrupted: false };
        assert_eq!(exit_status(&ok, Written::All, judge), 0);
        assert_eq!(exit_status(&ok, Written::SomeFailed, judge), 2);
        assert_eq!(exit_status(&ok, Written::All, Judge::Expectations { interrupted: true }), 1);
        let timeout = doc(&[None, Some(RunErrorKind::Timeout)]);
        assert_eq!(exit_status(&timeout, Written::All, judge), 1);
        let env = doc(&[Some(RunErrorKind::Timeout), Some(RunErrorKind::Environment)]);
        assert_eq!(exit_status(&env, Written::All, judge), 2);
        // A document that says it was interrupted is never a pass, merged or not.
        let mut stopped = doc(&[None]);
        stopped.interrupted = true;
        assert_eq!(exit_status(&stopped, Written::All, judge), 1);
        assert!(verdict_line(&stopped, Written::All, judge).starts_with("exit 1: INTERRUPTED"));
        let mut flaky = doc(&[None]);
        flaky.runs[0].flaky = true;
        assert_eq!(exit_status(&flaky, Written::All, judge), 0, "a pass on a retry is a pass");
        let line = verdict_line(&flaky, Written::All, judge);
        assert!(
            line.contains("exit 0: every expectation met, some only on a retry")
                && line.contains("1 run(s) FLAKY"),
            "{line}"
        );
        // Re-rendering judges the files only.
        assert_eq!(exit_status(&env, Written::All, Judge::FilesOnly), 0);
        assert_eq!(exit_status(&env, Written::SomeFailed, Judge::FilesOnly), 2);
    }

    fn call(name: &str, met: bool, inconclusive: bool) -> callwall_results::CallResult {
        serde_json::from_value(serde_json::json!({
            "name": name, "transport": "noise", "strategy": "udp", "requested": ["udp"],
            "verdict": "blocked", "expected": ["connected"], "met": met,
            "setup_ms": null, "loss_pct": 0.0, "jitter_ms": 0.0, "one_way_delay_ms": 0.0,
            "longest_gap_ms": 0.0, "mos": 1.0, "reason": {"cause": "text", "text": "r"},
            "caller_addr": "10.1.0.128", "metrics": callwall_results::CallMetrics::default(),
            "machine": {"stall_ms": 400, "process": "censor", "kernel_drops": 0},
            "inconclusive": inconclusive,
        }))
        .expect("a call")
    }

    #[test]
    fn inconclusive_calls_exit_3_unless_something_else_failed() {
        let judge = Judge::Expectations { interrupted: false };
        let mut d = doc(&[None]);
        d.runs[0].calls.push(call("stalled", false, true));
        assert_eq!(exit_status(&d, Written::All, judge), 3);
        assert!(verdict_line(&d, Written::All, judge).starts_with("exit 3: INCONCLUSIVE"));
        d.runs[0].calls.push(call("missed", false, false));
        assert_eq!(exit_status(&d, Written::All, judge), 1);
        let mut env = doc(&[Some(RunErrorKind::Environment)]);
        env.runs[0].calls.push(call("stalled", false, true));
        assert_eq!(exit_status(&env, Written::All, judge), 2);
    }

    #[test]
    fn every_format_is_written_and_a_failed_write_does_not_stop_the_others() {
        let dir = std::env::temp_dir().join(format!("callwall-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let blocker = dir.join("not-a-dir");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&blocker, "").unwrap();
        let out = OutputArgs {
            json: Some(dir.join("sub/r.json")),
            junit: Some(blocker.join("j.xml")),
            markdown: Some(dir.join("r.md")),
            html: Some(dir.join("r.html")),
            no_color: true,
        };
        let d = doc(&[None]);
        assert_eq!(out.write_files(&d), Written::SomeFailed);
        for f in ["sub/r.json", "r.md", "r.html"] {
            assert!(dir.join(f).is_file(), "{f} not written");
        }
        let back = load(&dir.join("sub/r.json")).expect("the JSON reads back");
        assert_eq!(back.runs.len(), 1);
        assert!(matches!(load(&dir.join("missing.json")), Err(OutputError::Read { .. })));
        assert!(matches!(load(&dir.join("r.md")), Err(OutputError::Parse { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
