//! Human and machine outputs: the terminal table, progress, JUnit XML and Markdown.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use callwall_harness::result::{Artifacts, CensorResult, Results, RunResult};
use callwall_scenario::Scenario;
use callwall_transport::Verdict;

/// A run that failed before producing calls.
pub fn error_run(sc: &Scenario, repeat: u32, error: String) -> RunResult {
    RunResult {
        scenario: sc.name.clone(),
        path: sc.path.display().to_string(),
        description: sc.description.clone(),
        source: sc.source.clone(),
        seed: sc.seed,
        repeat,
        topology: sc.topology_path.display().to_string(),
        started_unix_ms: 0,
        wall_ms: 0,
        calls: Vec::new(),
        censor: CensorResult::default(),
        error: Some(error),
        artifacts: Artifacts::default(),
    }
}

/// Errors that mean "fix your machine", which give exit code 2.
pub fn is_environment_error(e: &str) -> bool {
    e.contains("not installed")
        || e.contains("user namespaces")
        || e.contains("run as root")
        || e.contains("permission denied")
}

fn verdict_str(v: Verdict) -> &'static str {
    callwall_harness::run::verdict_name(v)
}

fn paint(s: &str, v: Verdict, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match v {
        Verdict::Connected => "32",
        Verdict::Degraded => "33",
        Verdict::Cut => "35",
        Verdict::Blocked => "31",
        Verdict::NoSignalling => "1;33",
        Verdict::Error => "1;31",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.0}"))
}

/// The results table: one row per call.
pub fn table(doc: &Results, color: bool) -> String {
    let mut rows: Vec<[String; 11]> = Vec::new();
    let mut verdicts: Vec<Option<Verdict>> = Vec::new();
    for r in &doc.runs {
        let scen = if r.repeat > 0 {
            format!("{} #{}", r.scenario, r.repeat + 1)
        } else {
            r.scenario.clone()
        };
        if let Some(e) = &r.error {
            rows.push([
                scen,
                "-".into(),
                "-".into(),
                "error".into(),
                "-".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                "".into(),
                e.clone(),
            ]);
            verdicts.push(Some(Verdict::Error));
            continue;
        }
        for c in &r.calls {
            rows.push([
                scen.clone(),
                // The call's name, and the strategy that carried it when that is not obvious.
                if c.name == format!("{}-{}", c.transport, c.strategy) {
                    format!("{}/{}", c.transport, c.strategy)
                } else {
                    format!("{} ({}/{})", c.name, c.transport, c.strategy)
                },
                verdict_str(c.verdict).to_string(),
                format!("{}{}", if c.met { "" } else { "!" }, c.expected),
                opt_ms(c.setup_ms),
                format!("{:.1}", c.loss_pct),
                format!("{:.1}", c.jitter_ms),
                format!("{:.1}", c.one_way_delay_ms),
                format!("{:.0}", c.longest_gap_ms),
                format!("{:.2}", c.mos),
                c.rule.clone().unwrap_or_else(|| "-".into()),
            ]);
            verdicts.push(Some(c.verdict));
        }
    }
    let head = [
        "scenario",
        "call",
        "verdict",
        "expected",
        "setup ms",
        "loss %",
        "jitter ms",
        "delay ms",
        "gap ms",
        "MOS",
        "rule",
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    w[10] = w[10].min(40);
    let mut out = String::new();
    let line = |cells: &[String; 11], v: Option<Verdict>, out: &mut String| {
        for (i, c) in cells.iter().enumerate() {
            let cell = if i == 10 { c.chars().take(80).collect::<String>() } else { c.clone() };
            let padded = if (4..=9).contains(&i) {
                format!("{cell:>width$}", width = w[i])
            } else {
                format!("{cell:<width$}", width = w[i])
            };
            let shown = match (i, v) {
                (2, Some(v)) => paint(&padded, v, color),
                _ => padded,
            };
            out.push_str(&shown);
            out.push_str(if i == 10 { "\n" } else { "  " });
        }
    };
    line(&head.map(String::from), None, &mut out);
    for (r, v) in rows.iter().zip(&verdicts) {
        line(r, *v, &mut out);
    }
    let calls: usize = doc.runs.iter().map(|r| r.calls.len()).sum();
    let unmet: usize = doc
        .runs
        .iter()
        .map(|r| r.calls.iter().filter(|c| !c.met).count() + usize::from(r.error.is_some()))
        .sum();
    let _ = writeln!(
        out,
        "\n{calls} call(s) in {} run(s): {}",
        doc.runs.len(),
        if unmet == 0 {
            "every expectation met".to_string()
        } else {
            format!("{unmet} expectation(s) NOT met (marked !)")
        }
    );
    out
}

/// For `--repeat`: whether each call got the same verdict in every repeat.
pub fn agreement(doc: &Results) -> String {
    let mut by: std::collections::BTreeMap<(String, String), Vec<&'static str>> =
        Default::default();
    for r in &doc.runs {
        for c in &r.calls {
            by.entry((r.scenario.clone(), c.name.clone()))
                .or_default()
                .push(verdict_str(c.verdict));
        }
    }
    let mut out = String::from("\nverdict agreement across repeats:\n");
    let mut all = true;
    for ((s, c), vs) in &by {
        let same = vs.iter().all(|v| *v == vs[0]);
        all &= same;
        let _ =
            writeln!(out, "  {} {s}/{c}: {}", if same { "same " } else { "DIFFER" }, vs.join(" "));
    }
    let _ = writeln!(out, "{}", if all { "all repeats agree" } else { "some repeats disagree" });
    out
}

/// XML text and attribute escaping: the report's HTML escaping is also valid XML.
fn xml_escape(s: &str) -> String {
    callwall_report::html::escape(s)
}

/// JUnit XML: a test suite per run, a test case per call.
pub fn junit(doc: &Results) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = doc.runs.iter().map(|r| r.calls.len().max(1)).sum();
    let failures: usize = doc.runs.iter().map(|r| r.calls.iter().filter(|c| !c.met).count()).sum();
    let errors = doc.runs.iter().filter(|r| r.error.is_some()).count();
    let _ = writeln!(o, "<testsuites name=\"callwall\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">");
    for r in &doc.runs {
        let name = xml_escape(&if r.repeat > 0 {
            format!("{}#{}", r.scenario, r.repeat + 1)
        } else {
            r.scenario.clone()
        });
        let secs = r.wall_ms as f64 / 1000.0;
        let f = r.calls.iter().filter(|c| !c.met).count();
        let _ = writeln!(
            o,
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{f}\" errors=\"{}\" time=\"{secs:.3}\">",
            r.calls.len().max(1),
            usize::from(r.error.is_some())
        );
        if let Some(e) = &r.error {
            let _ = writeln!(
                o,
                "    <testcase classname=\"{name}\" name=\"setup\" time=\"{secs:.3}\">"
            );
            let _ = writeln!(o, "      <error message=\"{}\" type=\"run-error\"/>", xml_escape(e));
            let _ = writeln!(o, "    </testcase>");
        }
        for c in &r.calls {
            let _ = writeln!(
                o,
                "    <testcase classname=\"{name}\" name=\"{}\" time=\"{:.3}\">",
                xml_escape(&format!("{} ({}/{})", c.name, c.transport, c.strategy)),
                c.metrics.up.frames_sent as f64 * 0.02
            );
            if !c.met {
                let msg = format!(
                    "expected {}, got {}; deciding rule: {}; {}",
                    c.expected,
                    verdict_str(c.verdict),
                    c.rule.as_deref().unwrap_or("none"),
                    c.reason
                );
                let _ = writeln!(
                    o,
                    "      <failure message=\"{}\" type=\"verdict\"/>",
                    xml_escape(&msg)
                );
            }
            let _ = writeln!(
                o,
                "      <system-out>{}</system-out>",
                xml_escape(&format!(
                    "verdict={} setup_ms={} loss_pct={:.2} jitter_ms={:.2} one_way_delay_ms={:.2} longest_gap_ms={:.0} mos={:.2} seed={}",
                    verdict_str(c.verdict),
                    opt_ms(c.setup_ms),
                    c.loss_pct,
                    c.jitter_ms,
                    c.one_way_delay_ms,
                    c.longest_gap_ms,
                    c.mos,
                    r.seed
                ))
            );
            let _ = writeln!(o, "    </testcase>");
        }
        let _ = writeln!(o, "  </testsuite>");
    }
    o.push_str("</testsuites>\n");
    o
}

/// A Markdown table of every call.
pub fn markdown(doc: &Results) -> String {
    let mut o = String::from("| scenario | call | verdict | expected | setup ms | loss % | jitter ms | delay ms | MOS | rule |\n|---|---|---|---|--:|--:|--:|--:|--:|---|\n");
    for r in &doc.runs {
        if let Some(e) = &r.error {
            let _ = writeln!(
                o,
                "| {} | - | error | - | | | | | | {} |",
                r.scenario,
                e.replace('|', "/")
            );
        }
        for c in &r.calls {
            let _ = writeln!(
                o,
                "| {} | {}/{} | {} | {}{} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {} |",
                r.scenario,
                c.transport,
                c.strategy,
                verdict_str(c.verdict),
                if c.met { "" } else { "**not met:** " },
                c.expected.replace('|', " or "),
                opt_ms(c.setup_ms),
                c.loss_pct,
                c.jitter_ms,
                c.one_way_delay_ms,
                c.mos,
                c.rule.as_deref().unwrap_or("-")
            );
        }
    }
    o
}

/// Progress on stderr: a redrawn line on a terminal, plain lines otherwise.
pub struct Progress {
    total: usize,
    tty: bool,
    state: Mutex<(usize, Vec<String>)>,
    start: Instant,
}

impl Progress {
    pub fn new(total: usize, tty: bool) -> Progress {
        Progress { total, tty, state: Mutex::new((0, Vec::new())), start: Instant::now() }
    }

    fn draw(&self, st: &(usize, Vec<String>)) {
        if self.tty {
            let width = 30;
            let filled = (st.0 * width).checked_div(self.total).unwrap_or(width).min(width);
            let bar: String = "#".repeat(filled) + &".".repeat(width - filled);
            let running = st.1.join(", ");
            let mut e = std::io::stderr().lock();
            let _ = write!(
                e,
                "\r\x1b[2K[{bar}] {}/{} {:.0}s  running: {}",
                st.0,
                self.total,
                self.start.elapsed().as_secs_f64(),
                running.chars().take(60).collect::<String>()
            );
            let _ = e.flush();
        }
    }

    pub fn start(&self, name: &str) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.1.push(name.to_string());
        if !self.tty {
            eprintln!("[{}/{}] start  {name}", st.0, self.total);
        }
        self.draw(&st);
    }

    pub fn finish(&self, name: &str, r: &RunResult) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.0 += 1;
        if let Some(i) = st.1.iter().position(|n| n == name) {
            st.1.remove(i);
        }
        let summary = match &r.error {
            Some(e) => format!("error: {e}"),
            None => r
                .calls
                .iter()
                .map(|c| format!("{}={}", c.name, verdict_str(c.verdict)))
                .collect::<Vec<_>>()
                .join(" "),
        };
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
        eprintln!(
            "[{}/{}] {} {name} ({:.1}s): {summary}",
            st.0,
            self.total,
            if r.passed() { "ok  " } else { "FAIL" },
            r.wall_ms as f64 / 1000.0
        );
        self.draw(&st);
    }

    pub fn done(&self) {
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
