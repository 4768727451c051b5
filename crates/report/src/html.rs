//! The HTML report: one self-contained page (inline CSS and SVG, no script, no external
//! resources) for people who did not write the scenario: a summary, a legend, the verdict
//! matrix as a heat map and, per call, a timeline with the censor's actions marked.

use crate::one_of;
use callwall_results::metrics::Second;
use callwall_results::{CallResult, DecisionEvent, Flow, Outcome, Results, RunResult, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const VERDICTS: [Verdict; 6] = [
    Verdict::Connected,
    Verdict::Degraded,
    Verdict::Cut,
    Verdict::Blocked,
    Verdict::NoSignalling,
    Verdict::Error,
];

/// Most censor actions drawn (and listed) per call; the decision log has them all.
const MAX_MARKERS: usize = 40;

/// Escapes text for HTML and SVG element content and quoted attribute values. Control
/// characters other than tab and newline become spaces.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\n' | '\t' => o.push(ch),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// A plain-words explanation of a verdict, for the legend.
pub fn explain(v: Verdict) -> &'static str {
    match v {
        Verdict::Connected => "The call worked: voice got through in both directions with good quality.",
        Verdict::Degraded => {
            "The call got through but sounded bad: too many lost packets, a low quality score (MOS) or a dropout of more than a second."
        }
        Verdict::Cut => "The call started, then went silent for good: something stopped it in the middle.",
        Verdict::Blocked => "No voice got through (in at least one direction): the call never really started.",
        Verdict::NoSignalling => {
            "The call could not be set up because its signalling (the exchange before the call) did not get through: the media path was never tested."
        }
        Verdict::Error => "The testbed itself failed (a crash, a setup problem): this says nothing about the censor.",
    }
}

/// A finite number with `prec` decimals (non-finite values become 0, so SVG stays valid).
fn num(x: f64, prec: usize) -> String {
    let x = if x.is_finite() { x } else { 0.0 };
    format!("{x:.prec$}")
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{} ms", num(x, 0)))
}

fn run_label(r: &RunResult) -> String {
    if r.repeat > 0 {
        format!("{} (repeat {})", r.scenario, r.repeat + 1)
    } else {
        r.scenario.clone()
    }
}

/// The matrix column of a call: its transport and the strategies it asked for.
fn column(c: &CallResult) -> (String, String) {
    let asked = if c.requested.is_empty() { c.strategy.clone() } else { c.requested.join(",") };
    (c.transport.clone(), asked)
}

fn call_anchor(run: usize, call: usize) -> String {
    format!("call-{run}-{call}")
}

/// Renders the whole report page.
pub fn html(doc: &Results) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = "callwall report";
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"generator\" content=\"callwall {}\">\n<title>{title}</title>\n<style>{CSS}{}</style>\n</head>\n<body>\n",
        escape(&doc.callwall_version),
        crate::control::CSS
    );
    summary(&mut o, doc);
    o.push_str(&crate::activities::html(doc));
    o.push_str(&crate::bypass::html_section(doc));
    legend(&mut o);
    matrix(&mut o, doc);
    for (ri, r) in doc.runs.iter().enumerate() {
        run_section(&mut o, ri, r);
    }
    let _ = write!(
        o,
        "<footer>Made by callwall {} (results schema version {}). This page is self-contained: it loads nothing from the network.</footer>\n</body>\n</html>\n",
        escape(&doc.callwall_version),
        doc.schema_version
    );
    o
}

fn summary(o: &mut String, doc: &Results) {
    let calls: usize = doc.runs.iter().map(|r| r.calls.len()).sum();
    let met: usize = doc.runs.iter().map(|r| r.calls.iter().filter(|c| c.met).count()).sum();
    let failed_runs = doc.runs.iter().filter(|r| r.error.is_some()).count();
    let missed_shares = crate::stats::missed(doc);
    let all_met = met == calls && failed_runs == 0 && missed_shares == 0;
    let mut seeds: Vec<u64> = doc.runs.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let seeds = if seeds.is_empty() {
        "–".to_string()
    } else {
        seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    };
    let mut counts: BTreeMap<Verdict, usize> = BTreeMap::new();
    for c in doc.runs.iter().flat_map(|r| &r.calls) {
        *counts.entry(c.verdict).or_default() += 1;
    }
    let _ = write!(o, "<header>\n<h1>callwall report</h1>\n<p class=\"lead\">Voice calls placed through a network with a censor in the middle: which calls got through, and how good they sounded.</p>\n");
    crate::flaky::html_doc(o, doc);
    let status = if doc.runs.is_empty() {
        "<div class=\"status empty\">This results file has no runs: nothing was tested.</div>"
            .to_string()
    } else if all_met {
        "<div class=\"status ok\">✓ Every call ended the way its scenario expected.</div>"
            .to_string()
    } else {
        let unmet = calls - met + failed_runs + missed_shares;
        format!("<div class=\"status bad\">✗ {unmet} expectation(s) not met: see the cells marked ✗ below.</div>")
    };
    o.push_str(&status);
    let _ = write!(
        o,
        "\n<dl class=\"summary\" id=\"summary\">\
         <div><dt>Scenario runs</dt><dd>{}</dd></div>\
         <div><dt>Calls</dt><dd>{calls}</dd></div>\
         <div><dt>Expectations met</dt><dd>{met} of {calls}{}</dd></div>\
         <div><dt>Seed(s)</dt><dd>{}</dd></div>\
         <div><dt>callwall version</dt><dd>{}</dd></div>\
         </dl>\n",
        doc.runs.len(),
        if failed_runs > 0 { format!(" ({failed_runs} run(s) failed)") } else { String::new() },
        escape(&seeds),
        escape(&doc.callwall_version)
    );
    if !counts.is_empty() {
        o.push_str("<p class=\"counts\">");
        for v in VERDICTS {
            if let Some(n) = counts.get(&v) {
                let _ = write!(o, "<span class=\"chip v-{v}\">{n} {v}</span> ");
            }
        }
        o.push_str("</p>\n");
    }
    o.push_str("</header>\n");
}

fn legend(o: &mut String) {
    o.push_str("<section class=\"legend\" id=\"legend\">\n<h2>How to read this report</h2>\n<div class=\"cols\">\n<div>\n<h3>Verdicts</h3>\n<ul class=\"verdicts\">\n");
    for v in VERDICTS {
        let _ = writeln!(o, "<li><span class=\"chip v-{v}\">{v}</span> {}</li>", explain(v));
    }
    o.push_str(
        "</ul>\n<p>A cell marked <span class=\"unmet-mark\">✗</span> did not end the way the scenario expected. \
         Hover over a cell for its figures; click it to jump to the call.</p>\n</div>\n<div>\n<h3>Words and figures</h3>\n<dl class=\"words\">\
         <dt>Loss</dt><dd>The share of voice packets that never arrived, in percent. Above 3&nbsp;% people hear clipping.</dd>\
         <dt>One-way delay</dt><dd>How long a packet takes from mouth to ear, in milliseconds. Above about 150&nbsp;ms people talk over each other.</dd>\
         <dt>MOS</dt><dd>Mean Opinion Score, an estimate of how good the call sounds: 1 is unusable, 5 is perfect, a good call scores about 4.4; below 3.6 many people are unhappy.</dd>\
         <dt>Setup</dt><dd>Time from dialling to the call being connected.</dd>\
         <dt>Rule</dt><dd>The censor rule that hit the call's packets hardest.</dd>\
         <dt>Up / down</dt><dd>Up is caller&nbsp;→&nbsp;callee, down is callee&nbsp;→&nbsp;caller.</dd>\
         </dl>\n<p>In the timelines, a red dashed line marks the moment the censor acted on one of the call's connections, \
         labelled with the rule and what it did; a shaded band shows how long that rule kept acting on it. \
         Times count from the start of the calls.</p>\n</div>\n</div>\n</section>\n",
    );
}

fn matrix(o: &mut String, doc: &Results) {
    // Columns: in order of first appearance, grouped by transport.
    let mut cols: Vec<(String, String)> = Vec::new();
    for c in doc.runs.iter().flat_map(|r| &r.calls) {
        let k = column(c);
        if !cols.contains(&k) {
            cols.push(k);
        }
    }
    let mut transports: Vec<String> = Vec::new();
    for (t, _) in &cols {
        if !transports.contains(t) {
            transports.push(t.clone());
        }
    }
    cols.sort_by_key(|(t, _)| transports.iter().position(|x| x == t));

    o.push_str("<section id=\"matrix-section\">\n<h2>Verdict matrix</h2>\n<p class=\"hint\">One row per scenario, one column per transport and strategy. The colour is the verdict.</p>\n");
    if doc.runs.is_empty() {
        o.push_str("<p class=\"empty\">No runs: there is nothing to show.</p>\n</section>\n");
        return;
    }
    o.push_str("<div class=\"scroll\"><table class=\"matrix\" id=\"matrix\">\n<thead>\n<tr><th rowspan=\"2\" class=\"corner\">scenario</th>");
    for t in &transports {
        let span = cols.iter().filter(|(x, _)| x == t).count();
        let _ = write!(o, "<th colspan=\"{span}\" class=\"transport\">{}</th>", escape(t));
    }
    if cols.is_empty() {
        o.push_str("<th>calls</th>");
    }
    o.push_str("</tr>\n<tr>");
    for (_, s) in &cols {
        let _ = write!(o, "<th class=\"strategy\">{}</th>", escape(s));
    }
    o.push_str("</tr>\n</thead>\n<tbody>\n");
    for (ri, r) in doc.runs.iter().enumerate() {
        let _ = write!(
            o,
            "<tr><th class=\"row\" scope=\"row\"><a href=\"#run-{ri}\">{}</a></th>",
            escape(&run_label(r))
        );
        if let Some(e) = r.error.as_ref().map(|e| &e.message) {
            if r.calls.is_empty() {
                let _ = writeln!(
                    o,
                    "<td class=\"cell v-error unmet\" colspan=\"{}\" title=\"{}\"><span class=\"word\">run error</span> <span class=\"unmet-mark\">✗</span> {}</td></tr>",
                    cols.len().max(1),
                    escape(e),
                    escape(e)
                );
                continue;
            }
        }
        for col in &cols {
            let here: Vec<(usize, &CallResult)> =
                r.calls.iter().enumerate().filter(|(_, c)| &column(c) == col).collect();
            if here.is_empty() {
                o.push_str("<td class=\"cell none\" title=\"not run in this scenario\">·</td>");
                continue;
            }
            let worst = here.iter().map(|(_, c)| c.verdict).max().unwrap_or_default();
            let unmet = here.iter().any(|(_, c)| !c.met);
            let tip: Vec<String> = here.iter().map(|(_, c)| tooltip(c)).collect();
            let _ = write!(
                o,
                "<td class=\"cell v-{worst}{}\" title=\"{}\">",
                if unmet { " unmet" } else { "" },
                escape(&tip.join("\n\n"))
            );
            for (ci, c) in &here {
                let _ = write!(
                    o,
                    "<a class=\"word\" href=\"#{}\">{}{}</a>",
                    call_anchor(ri, *ci),
                    c.verdict,
                    if c.met {
                        String::new()
                    } else {
                        format!(" <span class=\"unmet-mark\">✗</span><span class=\"exp\">expected {}</span>", escape(&one_of(&c.expected, " or ")))
                    }
                );
            }
            o.push_str("</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody>\n</table></div>\n<p class=\"keys\">");
    for v in VERDICTS {
        let _ = write!(o, "<span class=\"chip v-{v}\">{v}</span> ");
    }
    o.push_str("<span class=\"chip none\">· not run</span> <span class=\"chip unmet\">✗ expectation not met</span></p>\n</section>\n");
}

fn tooltip(c: &CallResult) -> String {
    let mut t = format!("{} ({}/{}): {}", c.name, c.transport, c.strategy, c.verdict);
    if !c.met {
        let _ = write!(t, ", expected {} (NOT met)", one_of(&c.expected, " or "));
    }
    let _ = write!(
        t,
        "\nMOS {} · loss {} % · delay {} ms · setup {}",
        c.mos.map_or_else(|| "–".to_string(), |x| num(x, 2)),
        num(c.loss_pct, 1),
        c.one_way_delay_ms.map_or_else(|| "–".to_string(), |x| num(x, 1)),
        opt_ms(c.setup_ms)
    );
    if let Some(rule) = &c.rule {
        let _ = write!(t, "\ncensor rule: {rule}");
    }
    let reason = c.reason.to_string();
    if !reason.is_empty() {
        let _ = write!(t, "\n{reason}");
    }
    t
}

fn run_section(o: &mut String, ri: usize, r: &RunResult) {
    let _ = write!(
        o,
        "<section class=\"run\" id=\"run-{ri}\">\n<h2>Scenario: {}</h2>\n",
        escape(&run_label(r))
    );
    if !r.description.trim().is_empty() {
        let _ = writeln!(o, "<p class=\"description\">{}</p>", escape(r.description.trim()));
    }
    let _ = writeln!(
        o,
        "<p class=\"meta\">file {} · topology {} · seed {} · {} s wall time{}</p>",
        escape(&r.path),
        escape(&r.topology),
        r.seed,
        num(r.wall_ms as f64 / 1000.0, 1),
        r.source.as_deref().map(|s| format!(" · source: {}", escape(s))).unwrap_or_default()
    );
    if let Some(e) = r.error.as_ref().map(|e| &e.message) {
        let _ = writeln!(
            o,
            "<p class=\"run-error\"><strong>The run failed:</strong> {}</p>",
            escape(e)
        );
    }
    crate::flaky::html_run(o, r);
    crate::stats::html_run(o, r);
    if !r.censor.rules.is_empty() {
        o.push_str("<h3>What the censor did</h3>\n<table class=\"rules\"><thead><tr><th>rule (in order)</th><th>action</th><th>what it is for</th><th>packets</th><th>connections</th><th>dropped</th><th>delayed</th><th>injected</th></tr></thead><tbody>\n");
        for rule in &r.censor.rules {
            let c = &rule.counters;
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&rule.name),
                escape(&rule.action),
                escape(rule.description.as_deref().unwrap_or("")),
                c.packets,
                c.flows,
                c.dropped + c.residual_dropped,
                c.delayed,
                c.injected
            );
        }
        o.push_str("</tbody></table>\n");
    }
    if let Some(note) = r.censor.bridge.overload() {
        let _ = writeln!(
            o,
            "<p class=\"run-error\"><strong>The censor did not keep up:</strong> {}; calls lost these frames in the censor, not on the network.</p>",
            escape(&note.to_string())
        );
    }
    crate::control::list(o, &r.censor.control);
    // Calls of a run share one time axis, long enough for the longest of them.
    let run_secs = r.calls.iter().map(call_secs).fold(0.0, f64::max);
    for (ci, c) in r.calls.iter().enumerate() {
        call_section(o, (ri, ci), c, &r.censor.events, &r.censor.control, run_secs);
    }
    o.push_str("</section>\n");
}

/// How many seconds of the call there is to plot: its timeline, or the voice its peers sent.
fn call_secs(c: &CallResult) -> f64 {
    let sent = c.metrics.up.frames_sent.max(c.metrics.down.frames_sent) as f64 * 0.02;
    c.metrics.timeline.iter().map(|s| f64::from(s.t) + 1.0).fold(sent.ceil(), f64::max)
}

fn call_section(
    o: &mut String,
    (ri, ci): (usize, usize),
    c: &CallResult,
    events: &[DecisionEvent],
    control: &[callwall_results::ControlEvent],
    run_secs: f64,
) {
    let _ = write!(
        o,
        "<article class=\"call\" id=\"{}\">\n<h3><span class=\"chip v-{}\">{}</span> {} <small>{} / {}</small></h3>\n",
        call_anchor(ri, ci),
        c.verdict,
        c.verdict,
        escape(&c.name),
        escape(&c.transport),
        escape(&c.strategy)
    );
    let _ = writeln!(
        o,
        "<p class=\"reason\"><strong>Why:</strong> {}</p>",
        escape(&c.reason.to_string())
    );
    crate::flaky::html_call(o, c);
    crate::machine::html_call(o, c);
    let _ = writeln!(
        o,
        "<p class=\"expect {}\">Expected: {} — {}</p>",
        if c.met { "met" } else { "unmet" },
        escape(&one_of(&c.expected, " or ")),
        if c.met { "✓ as expected" } else { "✗ NOT as expected" }
    );
    let m = &c.metrics;
    let _ = writeln!(
        o,
        "<table class=\"figures\"><thead><tr><th></th><th>up (caller → callee)</th><th>down (callee → caller)</th></tr></thead><tbody>\
         <tr><th>loss</th><td>{} %</td><td>{} %</td></tr>\
         <tr><th>one-way delay (median / 95th pct.)</th><td>{} / {} ms</td><td>{} / {} ms</td></tr>\
         <tr><th>jitter</th><td>{} ms</td><td>{} ms</td></tr>\
         <tr><th>longest silence</th><td>{} ms</td><td>{} ms</td></tr>\
         <tr><th>MOS</th><td>{}</td><td>{}</td></tr>\
         <tr><th>voice packets sent / received</th><td>{} / {}</td><td>{} / {}</td></tr>\
         </tbody></table>",
        num(m.up.loss_pct, 1),
        num(m.down.loss_pct, 1),
        num(m.up.one_way_delay_ms, 1),
        num(m.up.one_way_delay_p95_ms, 1),
        num(m.down.one_way_delay_ms, 1),
        num(m.down.one_way_delay_p95_ms, 1),
        num(m.up.jitter_ms, 1),
        num(m.down.jitter_ms, 1),
        num(m.up.longest_gap_ms, 0),
        num(m.down.longest_gap_ms, 0),
        num(m.up.mos, 2),
        num(m.down.mos, 2),
        m.up.frames_sent,
        m.up.frames_received,
        m.down.frames_sent,
        m.down.frames_received,
    );
    let _ = writeln!(
        o,
        "<p class=\"meta\">setup {} · strategies tried {} · censor rule {} · caller address {}</p>",
        opt_ms(c.setup_ms),
        m.attempts,
        escape(c.rule.as_deref().unwrap_or("none")),
        escape(&c.caller_addr.to_string())
    );
    crate::ice::ice_block(o, c);
    crate::external::html_block(o, c);
    crate::audio::html_call(o, c);
    let mine: Vec<&DecisionEvent> =
        events.iter().filter(|e| e.flow.involves(c.caller_addr)).collect();
    timeline_svg(o, c, &mine, control, run_secs);
    actions_list(o, &mine);
    o.push_str("</article>\n");
}

fn actions_list(o: &mut String, mine: &[&DecisionEvent]) {
    let notable: Vec<&&DecisionEvent> = mine.iter().filter(|e| e.outcome.is_harmful()).collect();
    let passed = mine.len() - notable.len();
    if notable.is_empty() {
        o.push_str("<p class=\"actions none\">The censor took no notable action on this call's connections.</p>\n");
        return;
    }
    let _ = writeln!(
        o,
        "<details class=\"actions\"><summary>What the censor did to this call's connections ({} action(s){})</summary><ol>",
        notable.len(),
        if passed > 0 { format!(", {passed} decision(s) to let packets pass not listed") } else { String::new() }
    );
    for e in notable.iter().take(MAX_MARKERS) {
        let _ = write!(
            o,
            "<li><span class=\"t\">{} s</span> rule <b>{}</b> → <b>{}</b> <code>{}</code>",
            num(e.t_ms / 1000.0, 3),
            escape(&e.rule),
            e.outcome,
            escape(&e.flow.to_string())
        );
        if let Some(sni) = &e.sni {
            let _ = write!(o, " SNI <code>{}</code>", escape(sni));
        }
        if !e.labels.is_empty() {
            let _ = write!(o, " <span class=\"labels\">[{}]</span>", escape(&e.labels.join(", ")));
        }
        o.push_str("</li>\n");
    }
    if notable.len() > MAX_MARKERS {
        let _ = writeln!(
            o,
            "<li>… and {} more in the run's decision log</li>",
            notable.len() - MAX_MARKERS
        );
    }
    o.push_str("</ol></details>\n");
}

/// A censor marker: events of one rule with one outcome, each within a second of the last.
struct Marker {
    t: f64,
    last: f64,
    rule: String,
    outcome: Outcome,
    count: usize,
    detail: Vec<String>,
}

/// Most event lines in one marker's tooltip.
const MAX_DETAIL: usize = 8;

fn markers(mine: &[&DecisionEvent]) -> Vec<Marker> {
    let mut evs: Vec<&DecisionEvent> =
        mine.iter().copied().filter(|e| e.outcome.is_harmful()).collect();
    evs.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    let mut out: Vec<Marker> = Vec::new();
    for e in evs {
        let t = (e.t_ms / 1000.0).max(0.0);
        let detail = format!(
            "{} s: {} → {} on {}{}",
            num(e.t_ms / 1000.0, 3),
            e.rule,
            e.outcome,
            e.flow,
            e.sni.as_deref().map(|s| format!(" (SNI {s})")).unwrap_or_default()
        );
        if let Some(m) =
            out.iter_mut().find(|m| m.rule == e.rule && m.outcome == e.outcome && t - m.last < 1.0)
        {
            m.last = t;
            m.count += 1;
            if m.detail.len() < MAX_DETAIL {
                m.detail.push(detail);
            } else if m.detail.len() == MAX_DETAIL {
                m.detail.push("…".into());
            }
            continue;
        }
        if out.len() >= MAX_MARKERS {
            break;
        }
        out.push(Marker {
            t,
            last: t,
            rule: e.rule.clone(),
            outcome: e.outcome,
            count: 1,
            detail: vec![detail],
        });
    }
    out
}

/// A time window in which a rule acted (other than forwarding) on the call's flows.
struct Window {
    from: f64,
    to: f64,
    rule: String,
    outcome: Outcome,
}

/// The censor's windows on the call's flows: from an event until the next event on the same
/// flow (or the end of the plot), with intermittent outcomes and windows less than a second
/// apart joined into one.
fn windows(mine: &[&DecisionEvent], end: f64) -> Vec<Window> {
    let mut by_flow: BTreeMap<Flow, Vec<&DecisionEvent>> = BTreeMap::new();
    for e in mine {
        by_flow.entry(e.flow).or_default().push(e);
    }
    let mut w: Vec<Window> = Vec::new();
    for evs in by_flow.values_mut() {
        evs.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        for (i, e) in evs.iter().enumerate() {
            if !e.outcome.is_harmful() {
                continue;
            }
            let from = (e.t_ms / 1000.0).clamp(0.0, end);
            let to = match evs.get(i + 1) {
                Some(n) => (n.t_ms / 1000.0).clamp(0.0, end),
                // Loss and policing hit some packets and not others, so the log flips between them
                // and `forward`; the other outcomes hold until the flow's next event.
                None if e.outcome.is_intermittent() => (from + 0.05).min(end),
                None => end,
            };
            w.push(Window { from, to: to.max(from), rule: e.rule.clone(), outcome: e.outcome });
        }
    }
    w.sort_by(|a, b| {
        (&a.rule, &a.outcome).cmp(&(&b.rule, &b.outcome)).then(a.from.total_cmp(&b.from))
    });
    let mut merged: Vec<Window> = Vec::new();
    for x in w {
        match merged.last_mut() {
            Some(last)
                if last.rule == x.rule && last.outcome == x.outcome && x.from <= last.to + 1.0 =>
            {
                last.to = last.to.max(x.to)
            }
            _ => merged.push(x),
        }
    }
    merged
}

fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    mag * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// Picks one plotted figure from a second of the timeline.
type SeriesOf = fn(&Second) -> Option<f64>;

fn timeline_svg(
    o: &mut String,
    c: &CallResult,
    mine: &[&DecisionEvent],
    control: &[callwall_results::ControlEvent],
    run_secs: f64,
) {
    let tl = &c.metrics.timeline;
    let last_event = mine.iter().map(|e| e.t_ms / 1000.0).fold(0.0, f64::max);
    let end = call_secs(c).max(run_secs).max((last_event + 1.0).ceil()).max(1.0);
    let end = if end.is_finite() { end.min(3600.0) } else { 1.0 };

    let marks = markers(mine);
    let label_rows = marks.len().clamp(1, 3);
    let (w, left, right) = (820.0, 58.0, 16.0);
    let top = 10.0 + 16.0 * label_rows as f64;
    let ph = 84.0;
    let gap = 30.0;
    let panels = [
        ("Packet loss per second (%)", 0.0, 100.0),
        ("One-way delay (ms)", 0.0, {
            let max =
                tl.iter().filter_map(|s| s.delay_ms).filter(|x| x.is_finite()).fold(0.0, f64::max);
            let step = nice_step(max.max(5.0) * 1.15, 3.0);
            (max.max(5.0) * 1.15 / step).ceil() * step
        }),
        ("Call quality (MOS, 1 = unusable, 5 = perfect)", 1.0, 5.0),
    ];
    let pw = w - left - right;
    let y0 = |i: usize| top + 24.0 + i as f64 * (ph + gap);
    let h = y0(2) + ph + 40.0;
    let x = |t: f64| left + (t.clamp(0.0, end) / end) * pw;

    let _ = writeln!(
        o,
        "<figure class=\"plot\"><svg class=\"timeline\" data-call=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"100%\" role=\"img\" aria-label=\"timeline of loss, delay and MOS for call {}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(&c.name),
        escape(&c.name)
    );
    let wins = windows(mine, end);
    let step = nice_step(end, 10.0).max(1.0);
    for (i, (title, lo, hi)) in panels.iter().enumerate() {
        let top_y = y0(i);
        let y = |v: f64| top_y + ph - ((v.clamp(*lo, *hi) - lo) / (hi - lo)) * ph;
        let _ = writeln!(
            o,
            "<text class=\"ptitle\" x=\"{left}\" y=\"{}\">{title}</text>",
            num(top_y - 6.0, 1)
        );
        let _ = writeln!(
            o,
            "<rect class=\"frame\" x=\"{left}\" y=\"{}\" width=\"{pw}\" height=\"{ph}\"/>",
            num(top_y, 1)
        );
        // The censor's windows, behind the data.
        for win in &wins {
            let class = if win.outcome.is_degrading() { "win-slow" } else { "win-stop" };
            let _ = writeln!(
                o,
                "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{ph}\"><title>censor rule {}: {} from {} s to {} s</title></rect>",
                num(x(win.from), 1),
                num(top_y, 1),
                num((x(win.to) - x(win.from)).max(2.0), 1),
                escape(&win.rule),
                win.outcome,
                num(win.from, 1),
                num(win.to, 1)
            );
        }
        // Horizontal grid and labels.
        let ticks: Vec<f64> = match i {
            0 => vec![0.0, 25.0, 50.0, 75.0, 100.0],
            2 => vec![1.0, 2.0, 3.0, 4.0, 5.0],
            _ => {
                let s = nice_step(hi - lo, 3.0);
                (0..=((hi - lo) / s).round() as usize).map(|k| lo + k as f64 * s).collect()
            }
        };
        for v in ticks {
            let _ = writeln!(
                o,
                "<line class=\"grid\" x1=\"{left}\" x2=\"{x2}\" y1=\"{gy}\" y2=\"{gy}\"/><text class=\"ylab\" x=\"{lx}\" y=\"{ly}\">{label}</text>",
                x2 = left + pw,
                gy = num(y(v), 1),
                lx = left - 6.0,
                ly = num(y(v) + 4.0, 1),
                label = num(v, 0)
            );
        }
        if i == 2 {
            let _ = writeln!(
                o,
                "<line class=\"threshold\" x1=\"{left}\" x2=\"{x2}\" y1=\"{ty}\" y2=\"{ty}\"/><text class=\"thlab\" x=\"{lx}\" y=\"{ly}\">3.6: below this, many people are unhappy</text>",
                x2 = left + pw,
                ty = num(y(3.6), 1),
                lx = left + pw - 4.0,
                ly = num(y(3.6) - 4.0, 1)
            );
        }
        let series: &[(&str, SeriesOf)] = match i {
            0 => &[("up", |s| s.up_loss_pct), ("down", |s| s.down_loss_pct)],
            1 => &[("delay", |s| s.delay_ms)],
            _ => &[("mos", |s| s.mos)],
        };
        for &(class, get) in series {
            let mut d = String::new();
            let mut prev: Option<u32> = None;
            let mut dots = String::new();
            for s in tl {
                let Some(v) = get(s).filter(|v| v.is_finite()) else {
                    prev = None;
                    continue;
                };
                let (px, py) = (x(f64::from(s.t) + 0.5), y(v));
                let cmd = if prev.is_some_and(|p| p + 1 == s.t) { 'L' } else { 'M' };
                let _ = write!(d, "{cmd}{} {} ", num(px, 1), num(py, 1));
                let _ = write!(
                    dots,
                    "<circle class=\"dot {class}\" cx=\"{}\" cy=\"{}\" r=\"2.5\"/>",
                    num(px, 1),
                    num(py, 1)
                );
                prev = Some(s.t);
            }
            if !d.is_empty() {
                let _ = writeln!(o, "<path class=\"line {class}\" d=\"{}\"/>{dots}", d.trim_end());
            }
        }
        if tl.is_empty() {
            let _ = writeln!(
                o,
                "<text class=\"nodata\" x=\"{}\" y=\"{}\">no voice arrived: nothing to plot</text>",
                num(left + pw / 2.0, 1),
                num(top_y + ph / 2.0 + 5.0, 1)
            );
        }
    }
    // Time axis.
    let bottom = y0(2) + ph;
    let mut t = 0.0;
    while t <= end + 1e-9 {
        let _ = writeln!(
            o,
            "<line class=\"tick\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/><text class=\"xlab\" x=\"{0}\" y=\"{3}\">{4}</text>",
            num(x(t), 1),
            num(bottom, 1),
            num(bottom + 5.0, 1),
            num(bottom + 18.0, 1),
            num(t, 0)
        );
        t += step;
    }
    let _ = writeln!(
        o,
        "<text class=\"xtitle\" x=\"{}\" y=\"{}\">seconds since the calls started</text>",
        num(left + pw / 2.0, 1),
        num(bottom + 34.0, 1)
    );
    // Per-second hover boxes.
    for s in tl {
        let _ = writeln!(
            o,
            "<rect class=\"hover\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>second {}: loss up {} / down {}, delay {}, MOS {}</title></rect>",
            num(x(f64::from(s.t)), 1),
            num(y0(0), 1),
            num((x(f64::from(s.t) + 1.0) - x(f64::from(s.t))).max(1.0), 1),
            num(bottom - y0(0), 1),
            s.t,
            s.up_loss_pct.map_or("–".into(), |v| format!("{} %", num(v, 1))),
            s.down_loss_pct.map_or("–".into(), |v| format!("{} %", num(v, 1))),
            s.delay_ms.map_or("–".into(), |v| format!("{} ms", num(v, 1))),
            s.mos.map_or("–".into(), |v| num(v, 2)),
        );
    }
    // Censor markers on top.
    for (k, m) in marks.iter().enumerate() {
        let mx = x(m.t);
        let row = k % label_rows;
        let ly = 16.0 * (row as f64 + 1.0);
        let anchor = if mx > left + pw * 0.7 { "end" } else { "start" };
        let dx = if anchor == "end" { -4.0 } else { 4.0 };
        let count = if m.count > 1 { format!(" ({} times)", m.count) } else { String::new() };
        let _ = writeln!(
            o,
            "<g class=\"censor-marker\"><title>{tip}</title><line x1=\"{lx}\" x2=\"{lx}\" y1=\"{y1}\" y2=\"{y2}\" class=\"mline\"/><text class=\"mlab\" text-anchor=\"{anchor}\" x=\"{tx}\" y=\"{ty}\">{rule}: {outcome}{count}</text></g>",
            tip = escape(&m.detail.join("\n")),
            lx = num(mx, 1),
            y1 = num(ly + 3.0, 1),
            y2 = num(bottom, 1),
            tx = num(mx + dx, 1),
            ty = num(ly, 1),
            rule = escape(&m.rule),
            outcome = m.outcome,
        );
    }
    crate::control::marks(o, control, &x, y0(0), bottom);
    o.push_str("</svg>\n<figcaption><span class=\"key up\"></span> loss caller → callee <span class=\"key down\"></span> loss callee → caller <span class=\"key delay\"></span> one-way delay <span class=\"key mos\"></span> MOS <span class=\"key mark\"></span> censor action <span class=\"key win\"></span> censor rule acting</figcaption></figure>\n");
}

const CSS: &str = r#"
:root{--connected:#2e8b57;--degraded:#e0a800;--cut:#e8702a;--blocked:#c62828;--error:#6d5a7b;--no-signalling:#3f6fb5;--ink:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#f6f7fa}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1100px;padding:24px;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);background:var(--bg)}
h1{font-size:28px;margin:0 0 4px}h2{font-size:21px;margin:32px 0 8px;border-bottom:2px solid var(--line);padding-bottom:4px}h3{font-size:17px;margin:18px 0 6px}
.lead{color:var(--muted);margin:0 0 12px}
header,section.legend,#matrix-section,section.run{background:#fff;border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:0 0 18px}
section.run h2,#matrix-section h2,section.legend h2{margin-top:0}
.status{font-size:17px;font-weight:600;padding:10px 14px;border-radius:8px;margin:8px 0}
.status.ok{background:#e6f4ec;color:#1e6b41}.status.bad{background:#fdeaea;color:#9b1c1c}.status.empty{background:#eef0f4;color:var(--muted)}
dl.summary{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0 4px}dl.summary div{background:var(--bg);border-radius:8px;padding:8px 14px;min-width:130px}
dl.summary dt{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}dl.summary dd{margin:0;font-size:20px;font-weight:600}
.chip{display:inline-block;padding:1px 9px;border-radius:999px;color:#fff;font-weight:600;font-size:13px}
.v-connected{background:var(--connected);color:#fff}.v-degraded{background:var(--degraded);color:#1d2330}.v-cut{background:var(--cut);color:#fff}.v-blocked{background:var(--blocked);color:#fff}.v-no-signalling{background:var(--no-signalling);color:#fff}.v-error{background:var(--error);color:#fff}
.chip.none{background:#eef0f4;color:var(--muted)}.chip.unmet{background:#fff;color:#9b1c1c;border:2px dashed #9b1c1c}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:24px}@media (max-width:800px){.cols{grid-template-columns:1fr}}
ul.verdicts{list-style:none;padding:0;margin:0}ul.verdicts li{margin:6px 0}ul.verdicts .chip{min-width:88px;text-align:center;margin-right:6px}
dl.words dt{font-weight:600;float:left;clear:left;width:120px}dl.words dd{margin:0 0 6px 120px}
.hint,.meta,.description{color:var(--muted)}.meta{font-size:13px}
.scroll{overflow-x:auto}
table{border-collapse:collapse}
table.matrix th,table.matrix td{border:2px solid #fff;padding:6px 10px;text-align:center}
table.matrix th.transport{background:#e8ebf1;font-size:14px}table.matrix th.strategy{background:#f1f3f7;font-weight:500;font-size:13px}
table.matrix th.row{text-align:left;background:#f1f3f7;white-space:nowrap}table.matrix th.corner{background:#e8ebf1;text-align:left}
table.matrix td.cell{min-width:92px;font-weight:600;font-size:14px;border-radius:6px}
table.matrix td.cell a{color:inherit;text-decoration:none;display:block}
table.matrix td.none{background:#f3f4f7;color:#a0a6b3}
table.matrix td.unmet{outline:3px dashed #7a0e0e;outline-offset:-5px}
.unmet-mark{font-weight:800}.exp{display:block;font-size:11px;font-weight:500}
.keys{font-size:13px}.keys .chip{margin-right:4px}
table.rules,table.figures{font-size:13px;margin:6px 0 10px}table.rules th,table.rules td,table.figures th,table.figures td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left}
table.figures td{text-align:right}table.figures th{font-weight:500;color:var(--muted)}
article.call{border-top:1px solid var(--line);padding-top:10px;margin-top:16px}article.call h3 small{color:var(--muted);font-weight:400}
.expect.unmet{color:#9b1c1c;font-weight:600}.expect.met{color:#1e6b41}
.run-error{background:#fdeaea;padding:8px 12px;border-radius:6px}
figure.plot{margin:8px 0}figcaption{font-size:12px;color:var(--muted)}
.key{display:inline-block;width:22px;height:0;border-top:3px solid;vertical-align:middle;margin:0 4px 0 12px}
.key.up{border-color:#1f6fd1}.key.down{border-color:#9c27b0;border-top-style:dashed}.key.delay{border-color:#00897b}.key.mos{border-color:#37474f}.key.mark{border-color:#c62828;border-top-style:dotted}.key.win{height:10px;border:0;background:rgba(198,40,40,.15)}
svg.timeline{font-family:system-ui,"DejaVu Sans",sans-serif;font-size:11px;background:#fff}
svg .frame{fill:#fbfcfd;stroke:#c9cfda}svg .grid{stroke:#e6e9ef}svg .tick{stroke:#8a93a3}
svg .ylab{text-anchor:end;fill:#5b6475}svg .xlab{text-anchor:middle;fill:#5b6475}svg .xtitle{text-anchor:middle;fill:#5b6475;font-size:12px}
svg .ptitle{font-weight:600;fill:#1d2330;font-size:12px}
svg .line{fill:none;stroke-width:2.2;stroke-linejoin:round}svg .line.up{stroke:#1f6fd1}svg .line.down{stroke:#9c27b0;stroke-dasharray:6 3}svg .line.delay{stroke:#00897b}svg .line.mos{stroke:#37474f}
svg .dot.up{fill:#1f6fd1}svg .dot.down{fill:#9c27b0}svg .dot.delay{fill:#00897b}svg .dot.mos{fill:#37474f}
svg .threshold{stroke:#e0a800;stroke-dasharray:5 4;stroke-width:1.5}svg .thlab{text-anchor:end;fill:#8a6d00;font-size:10px}
svg .nodata{text-anchor:middle;fill:#8a93a3;font-style:italic;font-size:13px}
svg .hover{fill:transparent}svg .hover:hover{fill:rgba(31,111,209,.06)}
svg .mline{stroke:#c62828;stroke-width:1.6;stroke-dasharray:4 3}svg .mlab{fill:#b71c1c;font-weight:600;font-size:11px}
svg .win-stop{fill:rgba(198,40,40,.12)}svg .win-slow{fill:rgba(232,112,42,.14)}
details.actions{font-size:13px;margin:4px 0 8px}details.actions code{font-size:12px}details.actions .t{display:inline-block;min-width:70px;color:var(--muted)}
p.actions.none{font-size:13px;color:var(--muted)}
footer{color:var(--muted);font-size:12px;text-align:center;margin:20px 0}
"#;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use callwall_results::metrics::CallMetrics;
    use callwall_results::Cause;
    use callwall_results::{Artifacts, CensorResult, Endpoint};

    /// A call as the JSON of a run has it (fields added later with defaults stay optional).
    pub(crate) fn call(name: &str, v: Verdict) -> CallResult {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "transport": "noise",
            "strategy": "udp",
            "requested": ["udp"],
            "verdict": v,
            "expected": ["connected"],
            "met": v == Verdict::Connected,
            "setup_ms": 100.0,
            "loss_pct": 0.0,
            "jitter_ms": 1.0,
            "one_way_delay_ms": 2.0,
            "longest_gap_ms": 40.0,
            "mos": 4.38,
            "reason": { "cause": "text", "text": format!("{name} reason") },
            "caller_addr": "10.1.0.100",
            "metrics": CallMetrics::default(),
        }))
        .expect("a valid call")
    }

    pub(crate) fn run(name: &str, calls: Vec<CallResult>) -> RunResult {
        RunResult {
            scenario: name.into(),
            path: format!("scenarios/{name}.toml"),
            description: String::new(),
            source: None,
            seed: 7,
            repeat: 0,
            topology: "two-sites".into(),
            started_unix_ms: 0,
            wall_ms: 1000,
            calls,
            censor: CensorResult::default(),
            error: None,
            artifacts: Artifacts::default(),
            distributions: Vec::new(),
            retries: 0,
            replaced: false,
            workloads: Vec::new(),
            attempts: Vec::new(),
            flaky: false,
        }
    }

    pub(crate) fn doc(runs: Vec<RunResult>) -> Results {
        Results {
            schema_version: callwall_results::SCHEMA_VERSION,
            callwall_version: "0.1.0".into(),
            runs,
            ..Default::default()
        }
    }

    fn second(t: u32, loss: f64) -> Second {
        Second {
            t,
            up_loss_pct: Some(loss),
            down_loss_pct: Some(loss / 2.0),
            delay_ms: Some(20.0 + f64::from(t)),
            mos: Some(4.4 - loss / 30.0),
        }
    }

    /// A flow from its display form, `udp 10.1.0.100:1 -> 10.2.0.100:2`.
    fn flow(s: &str) -> Flow {
        let p: Vec<&str> = s.split_whitespace().collect();
        let ep = |a: &str| {
            let sa: std::net::SocketAddr = a.parse().unwrap();
            Endpoint { ip: sa.ip(), port: sa.port() }
        };
        Flow { proto: p[0].parse().unwrap(), client: ep(p[1]), server: ep(p[3]) }
    }

    fn event(t_ms: f64, f: &str, rule: &str, outcome: Outcome) -> DecisionEvent {
        DecisionEvent {
            t_ms,
            flow: flow(f),
            rule: rule.into(),
            outcome,
            labels: vec!["quic".into()],
            sni: Some("example.org".into()),
            default_rule: false,
        }
    }

    #[test]
    fn escapes_everything_from_the_results() {
        let evil = "<script>alert(1)</script>\"'&";
        let mut c = call(evil, Verdict::Blocked);
        c.reason = Cause::Text { text: "<img src=x onerror=alert(2)>".into() }.into();
        c.transport = "<b>t</b>".into();
        c.rule = Some("<i>rule</i>".into());
        let mut r = run(evil, vec![c]);
        r.description = "</title><script>x</script>".into();
        r.censor.events.push(DecisionEvent {
            t_ms: 10.0,
            flow: flow("udp 10.1.0.100:1 -> 10.2.0.100:2"),
            rule: "<r>".into(),
            outcome: Outcome::Drop,
            labels: vec!["<l>".into()],
            sni: Some("<sni>\"x".into()),
            default_rule: false,
        });
        let mut d = doc(vec![r]);
        d.callwall_version = "<v>".into();
        let page = html(&d);
        for bad in
            ["<script", "<img", "<svg onload", "<b>t", "<i>rule", "<r>", "<l>", "<sni>", "<v>"]
        {
            assert!(!page.contains(bad), "unescaped {bad:?}");
        }
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        assert!(page.contains("&lt;sni&gt;&quot;x"));
        assert_eq!(escape("a\u{0}b\nc"), "a b\nc");
    }

    #[test]
    fn renders_empty_results() {
        let page = html(&doc(vec![]));
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.trim_end().ends_with("</html>"));
        assert!(page.contains("no runs"));
        assert!(!page.contains("<svg"));
        assert!(
            !page.contains("http://")
                || page.matches("http://").count()
                    == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        );
    }

    #[test]
    fn shows_a_failed_run() {
        let mut r = run("broken", vec![]);
        r.error = Some(callwall_results::RunError::new(
            callwall_results::RunErrorKind::Environment,
            "cannot create namespace: <permission denied>",
        ));
        let page = html(&doc(vec![run("fine", vec![call("a", Verdict::Connected)]), r]));
        assert!(page.contains("run error"));
        assert!(page.contains("cannot create namespace: &lt;permission denied&gt;"));
        assert!(page.contains("The run failed"));
        assert!(page.contains("1 run(s) failed"));
        assert!(page.contains("status bad"));
    }

    #[test]
    fn says_when_the_kernel_dropped_frames_at_the_censor() {
        let mut r = run("load", vec![call("noise-udp", Verdict::Degraded)]);
        r.censor.rules.push(Default::default());
        let quiet = html(&doc(vec![r.clone()]));
        assert!(!quiet.contains("did not keep up"));
        r.censor.bridge.kernel_frames = [900, 100];
        r.censor.bridge.kernel_drops = [150, 20];
        let p = html(&doc(vec![r]));
        assert!(p.contains("The censor did not keep up"), "{p}");
        assert!(p.contains("dropped 170 of 1000 frames (17.0 %)"), "{p}");
    }

    #[test]
    fn has_the_matrix_and_a_plot_per_call_with_the_censor_marked() {
        let mut a = call("noise-udp", Verdict::Cut);
        a.metrics.timeline = (0..8).map(|t| second(t, if t >= 4 { 100.0 } else { 0.0 })).collect();
        a.metrics.up.frames_sent = 400;
        let mut b = call("quic-quic", Verdict::Connected);
        b.transport = "quic".into();
        b.strategy = "quic".into();
        b.requested = vec!["quic".into()];
        b.caller_addr = "10.1.0.101".parse().unwrap();
        b.metrics.timeline = (0..8).map(|t| second(t, 0.0)).collect();
        let mut r = run("cut-at-4s", vec![a, b]);
        r.censor.events.push(event(
            4000.0,
            "udp 10.1.0.100:40000 -> 10.2.0.100:51820",
            "cut-udp",
            Outcome::Cut,
        ));
        r.censor.events.push(event(
            4100.0,
            "udp 10.2.0.100:51820 -> 10.1.0.100:40000",
            "cut-udp",
            Outcome::Cut,
        ));
        r.censor.events.push(event(
            1000.0,
            "udp 10.1.0.250:1 -> 10.2.0.100:2",
            "other-host",
            Outcome::Drop,
        ));
        let page = html(&doc(vec![r]));
        assert!(page.contains("id=\"matrix\""));
        assert_eq!(page.matches("<svg class=\"timeline\"").count(), 2);
        assert!(page.contains("class=\"cell v-cut unmet\""));
        assert!(page.contains("class=\"cell v-connected\""));
        // One merged marker for the two cut events of the first call; none for the other host.
        assert_eq!(page.matches("class=\"censor-marker\"").count(), 1);
        assert!(page.contains("cut-udp: cut (2 times)"));
        assert!(!page.contains("other-host"));
        assert!(page.contains("class=\"win-stop\""));
        assert!(page.contains("<path class=\"line up\""));
        assert!(page.contains("<path class=\"line mos\""));
        assert!(!page.contains("NaN"));
    }

    #[test]
    fn matches_flows_of_ipv6_callers() {
        let e = event(0.0, "tcp [fd00::5]:443 -> [fd00::1]:5000", "r", Outcome::Reject);
        assert!(e.flow.involves("fd00::1".parse().unwrap()));
        assert!(!e.flow.involves("fd00::2".parse().unwrap()));
        let page = html(&doc(vec![{
            let mut c = call("v6", Verdict::Blocked);
            c.caller_addr = "fd00::1".parse().unwrap();
            let mut r = run("v6", vec![c]);
            r.censor.events.push(e);
            r
        }]));
        assert!(page.contains("r: reject"));
    }

    #[test]
    fn plots_a_blocked_call_without_data() {
        let mut r = run("blackout", vec![call("noise-udp", Verdict::Blocked)]);
        r.censor.events.push(event(
            6.0,
            "udp 10.1.0.100:32857 -> 10.2.0.100:51820",
            "drop-all-udp",
            Outcome::Drop,
        ));
        let page = html(&doc(vec![r]));
        assert!(page.contains("nothing to plot"));
        assert!(page.contains("drop-all-udp: drop"));
    }
}
