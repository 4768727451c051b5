//! "What still works": per scenario, a matrix of activity (call, message, voice note, web,
//! video) × app or transport, from a run's calls and workloads, so a sentence like "calls are
//! restricted, messages still work" reads straight off the page. A call that carries an app
//! profile (`app = "whatsapp-like"`) goes in the column of the app it stands for, the profile's
//! name without its `-like` suffix ([`app_column`]), the same column as that app's workloads
//! (`app = "whatsapp"`): one column reads "WhatsApp calls degraded, messages and voice notes
//! fine". A call without an app goes in its transport's column. App columns come first. Also the workload parts of
//! the other renderers: a detail table per run, JUnit test cases, and the workload outcomes
//! `diff` compares.
//!
//! A run without workloads has no matrix (its call table already says everything), so reports
//! of scenarios without workloads are unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use callwall_results::workload::{WorkloadKind, WorkloadOutcome};
use callwall_results::{Figures, Results, RunResult, Verdict, WorkloadResult};
use serde::Serialize;

use crate::html::escape;

/// The matrix's rows, in this order: calls, then each workload kind's activity.
pub fn activities() -> impl Iterator<Item = &'static str> {
    std::iter::once("call").chain(WorkloadKind::ALL.into_iter().map(WorkloadKind::activity))
}

/// How well an activity worked in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Works {
    Works,
    Degraded,
    Broken,
}

impl Works {
    pub fn as_str(self) -> &'static str {
        match self {
            Works::Works => "works",
            Works::Degraded => "degraded",
            Works::Broken => "broken",
        }
    }
}

fn of_verdict(v: Verdict) -> Works {
    match v {
        Verdict::Connected => Works::Works,
        Verdict::Degraded => Works::Degraded,
        _ => Works::Broken,
    }
}

fn of_outcome(o: WorkloadOutcome) -> Works {
    match o {
        WorkloadOutcome::Ok => Works::Works,
        WorkloadOutcome::Degraded => Works::Degraded,
        WorkloadOutcome::Failed | WorkloadOutcome::Error => Works::Broken,
    }
}

/// The matrix's activity for a kind: `message`, `voice note`, `web`, `video`.
pub fn activity(kind: WorkloadKind) -> &'static str {
    kind.activity()
}

/// The figures of a kind by name, in name order, booleans as 0/1 and unknown values left out
/// (the JUnit output lists them).
pub fn figure_pairs(f: &Figures) -> Vec<(&'static str, f64)> {
    f.pairs()
}

/// One short line of the figures that matter for the kind.
pub fn summary(w: &WorkloadResult) -> String {
    w.figures.as_ref().map(Figures::line).unwrap_or_default()
}

fn reason(w: &WorkloadResult) -> String {
    w.reason.as_ref().map(|r| r.to_string()).unwrap_or_default()
}

/// One cell: every call or workload of that activity and app/transport.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cell {
    /// (outcome or verdict word, how well it worked, expectation met) per entry.
    pub entries: Vec<(String, Works, bool)>,
}

impl Cell {
    /// The best any entry did: an activity "still works" when some way of doing it works.
    pub fn best(&self) -> Works {
        self.entries.iter().map(|e| e.1).min().unwrap_or(Works::Broken)
    }

    /// `connected ×3, degraded` style text.
    pub fn text(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for (w, _, _) in &self.entries {
            if !counts.contains_key(w.as_str()) {
                order.push(w);
            }
            *counts.entry(w).or_default() += 1;
        }
        order
            .iter()
            .map(|w| match counts[w] {
                1 => w.to_string(),
                n => format!("{w} ×{n}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn all_met(&self) -> bool {
        self.entries.iter().all(|e| e.2)
    }
}

/// The matrix of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    pub scenario: String,
    /// Apps (see [`app_column`]) first, then the transports of calls without an app.
    pub columns: Vec<String>,
    /// One row per activity present, in [`activities`] order; `None` where nothing ran.
    pub rows: Vec<(String, Vec<Option<Cell>>)>,
}

/// The matrix column of an app: an app profile's name without its `-like` suffix
/// (`whatsapp-like` stands for `whatsapp`), any other app name as it is.
pub fn app_column(app: &str) -> &str {
    app.strip_suffix("-like").filter(|s| !s.is_empty()).unwrap_or(app)
}

/// The "what still works" matrix of a run; `None` when the run has no workloads.
pub fn matrix(r: &RunResult) -> Option<Matrix> {
    if r.workloads.is_empty() {
        return None;
    }
    let mut cells: BTreeMap<(&str, String), Cell> = BTreeMap::new();
    let mut columns: Vec<String> = Vec::new();
    let add_col = |c: &str, columns: &mut Vec<String>| {
        if !columns.iter().any(|x| x == c) {
            columns.push(c.to_string());
        }
    };
    // App columns first (calls' apps, then workloads'), then app-less calls' transports.
    let call_col = |c: &callwall_results::CallResult| match &c.app {
        Some(a) => app_column(a).to_string(),
        None => c.transport.clone(),
    };
    for c in r.calls.iter().filter(|c| c.app.is_some()) {
        add_col(&call_col(c), &mut columns);
    }
    for w in &r.workloads {
        add_col(app_column(&w.app), &mut columns);
    }
    for c in &r.calls {
        add_col(&call_col(c), &mut columns);
        cells.entry(("call", call_col(c))).or_default().entries.push((
            c.verdict.as_str().to_string(),
            of_verdict(c.verdict),
            c.met,
        ));
    }
    for w in &r.workloads {
        let activity = activity(w.kind);
        cells.entry((activity, app_column(&w.app).to_string())).or_default().entries.push((
            w.outcome.to_string(),
            of_outcome(w.outcome),
            w.met,
        ));
    }
    let rows = activities()
        .filter(|a| cells.keys().any(|(x, _)| x == a))
        .map(|a| {
            let row = columns.iter().map(|c| cells.get(&(a, c.clone())).cloned()).collect();
            (a.to_string(), row)
        })
        .collect();
    Some(Matrix { scenario: r.scenario.clone(), columns, rows })
}

fn run_label(r: &RunResult) -> String {
    if r.repeat > 0 {
        format!("{} #{}", r.scenario, r.repeat + 1)
    } else {
        r.scenario.clone()
    }
}

/// For the terminal: per run with workloads, the matrix and one line per workload.
pub fn text(doc: &Results) -> String {
    let mut o = String::new();
    for r in &doc.runs {
        let Some(m) = matrix(r) else { continue };
        let _ = writeln!(o, "\nwhat still works in {}:", run_label(r));
        let mut grid: Vec<Vec<String>> = vec![std::iter::once("activity".to_string())
            .chain(m.columns.iter().cloned())
            .collect()];
        for (a, row) in &m.rows {
            let mut line = vec![a.clone()];
            for c in row {
                line.push(match c {
                    Some(c) => format!("{}{}", if c.all_met() { "" } else { "!" }, c.text()),
                    None => "-".into(),
                });
            }
            grid.push(line);
        }
        let n = grid[0].len();
        let widths: Vec<usize> =
            (0..n).map(|i| grid.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        for l in &grid {
            let cells: Vec<String> =
                l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(o, "  {}", cells.join("  ").trim_end());
        }
        for w in &r.workloads {
            let _ = writeln!(
                o,
                "  {} {} ({} {}{}): {}{}{}",
                if w.met { " " } else { "!" },
                w.name,
                activity(w.kind),
                w.host_name,
                w.proto.map(|p| format!(" over {p}")).unwrap_or_default(),
                w.outcome,
                if w.met {
                    String::new()
                } else {
                    format!(" (expected {})", crate::one_of(&w.expected, "|"))
                },
                match (summary(w), reason(w).as_str()) {
                    (s, "") if s.is_empty() => String::new(),
                    (s, "") => format!("; {s}"),
                    (s, r) if s.is_empty() => format!("; {r}"),
                    (s, r) => format!("; {s}; {r}"),
                }
            );
        }
    }
    let total: usize = doc.runs.iter().map(|r| r.workloads.len()).sum();
    if total > 0 {
        let unmet: usize =
            doc.runs.iter().map(|r| r.workloads.iter().filter(|w| !w.met).count()).sum();
        let _ = writeln!(
            o,
            "\n{total} workload(s): {}",
            if unmet == 0 {
                "every expectation met".to_string()
            } else {
                format!("{unmet} expectation(s) NOT met (marked !)")
            }
        );
    }
    o
}

/// For Markdown: per run with workloads, the matrix and a table of the workloads.
pub fn markdown(doc: &Results) -> String {
    let mut o = String::new();
    for r in &doc.runs {
        let Some(m) = matrix(r) else { continue };
        let _ = writeln!(o, "\n### What still works in {}\n", run_label(r).replace('|', "/"));
        let _ = writeln!(o, "| activity | {} |", m.columns.join(" | "));
        let _ = writeln!(o, "|---|{}", "---|".repeat(m.columns.len()));
        for (a, row) in &m.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| match c {
                    Some(c) if c.all_met() => c.text(),
                    Some(c) => format!("**not met:** {}", c.text()),
                    None => "-".into(),
                })
                .collect();
            let _ = writeln!(o, "| {a} | {} |", cells.join(" | "));
        }
        let _ = writeln!(
            o,
            "\n| workload | activity | app | host name | outcome | expected | figures | reason |\n|---|---|---|---|---|---|---|---|"
        );
        for w in &r.workloads {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {}{} | {} | {} |",
                w.name,
                activity(w.kind),
                w.app,
                w.host_name,
                w.outcome,
                if w.met { "" } else { "**not met:** " },
                crate::one_of(&w.expected, " or "),
                summary(w),
                reason(w).replace('|', "/")
            );
        }
    }
    o
}

fn works_class(w: Works) -> &'static str {
    match w {
        Works::Works => "v-connected",
        Works::Degraded => "v-degraded",
        Works::Broken => "v-blocked",
    }
}

/// For HTML: a section with every run's matrix (empty when no run has workloads).
pub fn html(doc: &Results) -> String {
    let matrices: Vec<(String, Matrix, &RunResult)> =
        doc.runs.iter().filter_map(|r| matrix(r).map(|m| (run_label(r), m, r))).collect();
    if matrices.is_empty() {
        return String::new();
    }
    let mut o = String::from(
        "<section id=\"activities\" class=\"legend\">\n<h2>What still works</h2>\n<p class=\"hint\">Per scenario: each activity (rows) by app or transport (columns), in the same run. A dashed outline marks an outcome the scenario did not expect.</p>\n",
    );
    for (label, m, r) in &matrices {
        let _ = write!(
            o,
            "<h3>{}</h3>\n<div class=\"scroll\"><table class=\"matrix activities\">\n<thead><tr><th class=\"corner\">activity</th>",
            escape(label)
        );
        for c in &m.columns {
            let _ = write!(o, "<th class=\"transport\">{}</th>", escape(c));
        }
        o.push_str("</tr></thead>\n<tbody>\n");
        for (a, row) in &m.rows {
            let _ = write!(o, "<tr><th class=\"row\">{}</th>", escape(a));
            for c in row {
                match c {
                    Some(c) => {
                        let _ = write!(
                            o,
                            "<td class=\"cell {}{}\">{}</td>",
                            works_class(c.best()),
                            if c.all_met() { "" } else { " unmet" },
                            escape(&c.text())
                        );
                    }
                    None => o.push_str("<td class=\"cell none\">-</td>"),
                }
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody></table></div>\n<ul class=\"workloads\">\n");
        for w in &r.workloads {
            let _ = writeln!(
                o,
                "<li><b>{}</b> ({} {}): {}{}{}</li>",
                escape(&w.name),
                escape(activity(w.kind)),
                escape(&w.host_name),
                escape(w.outcome.as_str()),
                if w.met {
                    String::new()
                } else {
                    format!(
                        " <span class=\"expect unmet\">expected {}</span>",
                        escape(&crate::one_of(&w.expected, "|"))
                    )
                },
                escape(
                    &[summary(w), reason(w)]
                        .iter()
                        .filter(|s| !s.is_empty())
                        .fold(String::new(), |acc, s| format!("{acc}; {s}"))
                )
            );
        }
        o.push_str("</ul>\n");
    }
    o.push_str("</section>\n");
    o
}

/// For JUnit: one test case per workload of a run (suite name `suite`).
pub fn junit_cases(r: &RunResult, suite: &str) -> String {
    let mut o = String::new();
    for w in &r.workloads {
        let _ = writeln!(
            o,
            "    <testcase classname=\"{suite}\" name=\"{}\" time=\"{:.3}\">",
            escape(&format!("{} ({} {})", w.name, activity(w.kind), w.app)),
            w.elapsed_ms / 1000.0
        );
        if !w.met {
            let msg = format!(
                "expected {}, got {}; {}",
                crate::one_of(&w.expected, "|"),
                w.outcome,
                reason(w)
            );
            let _ = writeln!(o, "      <failure message=\"{}\" type=\"workload\"/>", escape(&msg));
        }
        let figs: Vec<String> =
            w.figures.iter().flat_map(figure_pairs).map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            o,
            "      <system-out>{}</system-out>\n    </testcase>",
            escape(&format!("outcome={} {}", w.outcome, figs.join(" ")))
        );
    }
    o
}

/// A workload whose outcome changed between two documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadChange {
    pub scenario: String,
    pub workload: String,
    /// `None` when only one side has it.
    pub old: Option<String>,
    pub new: Option<String>,
    /// The new outcome is worse (`ok < degraded < failed`).
    pub worse: bool,
    pub reason: String,
}

fn index(doc: &Results) -> BTreeMap<(String, String), &WorkloadResult> {
    let mut m: BTreeMap<(String, String), &WorkloadResult> = BTreeMap::new();
    for r in &doc.runs {
        for w in &r.workloads {
            let key = (r.scenario.clone(), w.name.clone());
            // Repeats: the worst outcome counts.
            if m.get(&key).is_none_or(|o| o.outcome < w.outcome) {
                m.insert(key, w);
            }
        }
    }
    m
}

/// Workloads whose outcome changed, added or removed, worse ones first.
pub fn changes(old: &Results, new: &Results) -> Vec<WorkloadChange> {
    let (o, n) = (index(old), index(new));
    let keys: BTreeSet<&(String, String)> = o.keys().chain(n.keys()).collect();
    let mut out: Vec<WorkloadChange> = keys
        .into_iter()
        .filter_map(|k| {
            let (ow, nw) = (o.get(k), n.get(k));
            if let (Some(a), Some(b)) = (ow, nw) {
                if a.outcome == b.outcome {
                    return None;
                }
            }
            Some(WorkloadChange {
                scenario: k.0.clone(),
                workload: k.1.clone(),
                old: ow.map(|w| w.outcome.to_string()),
                new: nw.map(|w| w.outcome.to_string()),
                worse: matches!((ow, nw), (Some(a), Some(b)) if b.outcome > a.outcome),
                reason: nw.map(|w| reason(w)).unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.worse));
    out
}

/// Lines for `callwall diff`'s text output.
pub fn changes_text(changes: &[WorkloadChange]) -> String {
    let mut o = String::new();
    for c in changes {
        let _ = match (&c.old, &c.new) {
            (Some(a), Some(b)) => writeln!(
                o,
                "{}  {}/{} (workload): {a} -> {b}  ({})",
                if c.worse { "WORSE " } else { "better" },
                c.scenario,
                c.workload,
                c.reason
            ),
            (None, Some(b)) => writeln!(o, "added   {}/{} (workload): {b}", c.scenario, c.workload),
            (Some(a), None) => {
                writeln!(o, "removed {}/{} (workload): was {a}", c.scenario, c.workload)
            }
            (None, None) => Ok(()),
        };
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::tests::{call, doc, run};

    fn wl(name: &str, kind: &str, app: &str, outcome: &str, expected: &str) -> WorkloadResult {
        let outcome: WorkloadOutcome = outcome.parse().unwrap();
        let expected: callwall_results::ExpectedOutcomes =
            expected.split('|').map(|e| e.parse().unwrap()).collect();
        WorkloadResult {
            name: name.into(),
            kind: kind.parse().unwrap(),
            app: app.into(),
            host_name: format!("{app}.example"),
            proto: None,
            outcome,
            met: expected.contains(&outcome),
            expected,
            figures: None,
            reason: None,
            elapsed_ms: 0.0,
        }
    }

    fn restricted() -> Results {
        let mut r = run("ru", vec![call("a", Verdict::Degraded), call("b", Verdict::Connected)]);
        r.workloads = vec![
            wl("wa-text", "message", "whatsapp", "ok", "ok"),
            wl("wa-note", "voice-note", "whatsapp", "ok", "ok"),
            wl("yt", "video", "youtube", "failed", "ok"),
        ];
        doc(vec![r])
    }

    #[test]
    fn the_matrix_has_calls_and_workloads_by_app() {
        let d = restricted();
        let m = matrix(&d.runs[0]).expect("a matrix");
        let rows: Vec<&str> = m.rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(rows, ["call", "message", "voice note", "video"]);
        assert!(m.columns.contains(&"whatsapp".to_string()));
        let msg = &m.rows[1].1;
        let wa = m.columns.iter().position(|c| c == "whatsapp").unwrap();
        assert_eq!(msg[wa].as_ref().unwrap().best(), Works::Works);
        let t = text(&d);
        assert!(t.contains("what still works in ru"), "{t}");
        assert!(t.contains("!failed"), "{t}");
        assert!(markdown(&d).contains("**not met:** failed"));
        assert!(html(&d).contains("id=\"activities\""));
        assert!(junit_cases(&d.runs[0], "ru").contains("type=\"workload\""));
    }

    #[test]
    fn a_call_with_an_app_shares_its_column_with_that_apps_workloads() {
        // The seed's sentence: WhatsApp calls restricted, WhatsApp messages and voice notes
        // fine; a plain call stays in its transport's column.
        let mut wa_call = call("whatsapp-like", Verdict::Degraded);
        wa_call.app = Some("whatsapp-like".into());
        wa_call.transport = "webrtc".into();
        let mut tg_call = call("telegram-like-force-tcp", Verdict::Connected);
        tg_call.app = Some("telegram-like".into());
        tg_call.transport = "webrtc".into();
        let mut r = run("ru", vec![call("plain", Verdict::Connected), wa_call, tg_call]);
        r.workloads = vec![
            wl("wa-text", "message", "whatsapp", "ok", "ok"),
            wl("wa-note", "voice-note", "whatsapp", "ok", "ok"),
            wl("tg-text", "message", "telegram", "ok", "ok"),
        ];
        let d = doc(vec![r]);
        let m = matrix(&d.runs[0]).unwrap();
        assert_eq!(m.columns, ["whatsapp", "telegram", "noise"]);
        let cell = |row: &str, col: &str| {
            let r = m.rows.iter().find(|r| r.0 == row).unwrap();
            let c = m.columns.iter().position(|c| c == col).unwrap();
            r.1[c].as_ref().map(|c| (c.text(), c.best()))
        };
        assert_eq!(cell("call", "whatsapp"), Some(("degraded".into(), Works::Degraded)));
        assert_eq!(cell("message", "whatsapp"), Some(("ok".into(), Works::Works)));
        assert_eq!(cell("voice note", "whatsapp"), Some(("ok".into(), Works::Works)));
        assert_eq!(cell("call", "telegram"), Some(("connected".into(), Works::Works)));
        assert_eq!(cell("call", "noise"), Some(("connected".into(), Works::Works)));
        assert_eq!(cell("message", "noise"), None);
        // The Markdown matrix has the app column with the three activities in it.
        let md = markdown(&d);
        assert!(md.contains("| whatsapp | telegram | noise |"), "{md}");
        assert_eq!(app_column("whatsapp-like"), "whatsapp");
        assert_eq!(app_column("osm"), "osm");
        assert_eq!(app_column("-like"), "-like");
    }

    #[test]
    fn no_workloads_no_matrix() {
        let d = doc(vec![run("s", vec![call("a", Verdict::Connected)])]);
        assert!(matrix(&d.runs[0]).is_none());
        assert!(text(&d).is_empty() && markdown(&d).is_empty() && html(&d).is_empty());
    }

    #[test]
    fn html_escapes_workload_strings() {
        let mut d = restricted();
        d.runs[0].workloads[0].app = "<script>".into();
        assert!(!html(&d).contains("<script>"));
    }

    #[test]
    fn a_workload_that_fails_is_a_regression() {
        let old = restricted();
        let mut new = restricted();
        new.runs[0].workloads[0].outcome = WorkloadOutcome::Failed;
        let c = changes(&old, &new);
        assert_eq!(c.len(), 1);
        assert!(c[0].worse);
        let d = crate::diff::diff(&old, &new);
        assert!(d.regressed);
        assert!(d.to_text().contains("wa-text (workload): ok -> failed"));
    }
}
