//! The `external` object of a call placed by external peers (issue 13, `docs/peers.md`) in
//! every renderer: which commands ran, how each exited, what its report said, whether the
//! verdict was judged from the peers' reports or from the network (then with the censor's
//! figures per direction), and the stderr tail of a peer that failed.
//!
//! Hooks, one call each: [`html_block`] in a call's HTML article, [`markdown_section`] at the
//! end of the Markdown document, [`junit_properties`] and [`junit_system_err`] in a call's
//! JUnit test case. All pure; every string from the results is escaped.

use std::fmt::Write as _;

use callwall_results::external::{
    ExternalCall, ExternalNetwork, ExternalPeerResult, ExternalReportSummary,
};
use callwall_results::{CallResult, Results};

use crate::html::escape;

/// `judged from the network`, `judged from the peers' reports`, or `not judged (a peer failed)`.
pub fn judged_from_words(e: &ExternalCall) -> &'static str {
    match e.judged_from() {
        "network" => "judged from the network",
        "reports" => "judged from the peers' reports",
        _ => "not judged (a peer failed)",
    }
}

/// One line for a peer's report: `412 lines, 200 frames received, sent 200, connected at 310 ms
/// (ice host …)`, or why there is none.
pub fn report_words(r: Option<&ExternalReportSummary>) -> String {
    let Some(r) = r else { return "no report".into() };
    if let Some(e) = &r.error {
        return format!("malformed report ({} lines read before the error): {e}", r.lines);
    }
    let mut s = format!("{} lines, {} frames received", r.lines, r.frames_received);
    match r.frames_sent {
        Some(n) => {
            let _ = write!(s, ", sent {n}");
        }
        None => s.push_str(", no \"sent\" line"),
    }
    if let Some(ms) = r.connected_ms {
        let _ = write!(s, ", connected at {ms:.0} ms");
    }
    if let Some(p) = &r.path {
        let _ = write!(s, " ({p})");
    }
    if let Some(f) = &r.failed {
        let _ = write!(s, "; {} failed: {}", f.stage, f.reason);
    }
    s
}

fn network_rows(n: &ExternalNetwork) -> [(&'static str, String, String); 7] {
    let (u, d) = (&n.up, &n.down);
    let first = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.0} ms"));
    [
        (
            "forwarded packets / bytes",
            format!("{} / {}", u.forwarded_packets, u.forwarded_bytes),
            format!("{} / {}", d.forwarded_packets, d.forwarded_bytes),
        ),
        (
            "dropped by the censor",
            format!("{} ({:.1} %)", u.dropped_packets, u.drop_pct),
            format!("{} ({:.1} %)", d.dropped_packets, d.drop_pct),
        ),
        ("seconds with media", u.media_secs.to_string(), d.media_secs.to_string()),
        ("first media", first(u.first_media_ms), first(d.first_media_ms)),
        ("rate", format!("{:.0} kbit/s", u.rate_kbit), format!("{:.0} kbit/s", d.rate_kbit)),
        (
            "longest gap / trailing silence",
            format!("{:.0} / {:.0} ms", u.longest_gap_ms, u.trailing_gap_ms),
            format!("{:.0} / {:.0} ms", d.longest_gap_ms, d.trailing_gap_ms),
        ),
        ("direction verdict", u.verdict.as_str().to_string(), d.verdict.as_str().to_string()),
    ]
}

fn peers(e: &ExternalCall) -> [(&'static str, &ExternalPeerResult); 2] {
    [("caller", &e.caller), ("callee", &e.callee)]
}

/// Appends the external block of `c` to an HTML call article (nothing for built-in calls).
pub fn html_block(o: &mut String, c: &CallResult) {
    let Some(e) = &c.external else { return };
    let _ = writeln!(
        o,
        "<div class=\"external\"><p class=\"meta\"><strong>External peers</strong> ({}) · {}</p>",
        escape(&e.implementations()),
        judged_from_words(e)
    );
    if let Some(note) = &e.judged_from_network {
        let _ = writeln!(o, "<p class=\"meta\">{}</p>", escape(note));
    }
    o.push_str(
        "<table class=\"figures\"><thead><tr><th>peer</th><th>command</th><th>implementation</th>\
         <th>exit</th><th>report</th></tr></thead><tbody>",
    );
    for (role, p) in peers(e) {
        let _ = write!(
            o,
            "<tr><th>{role}</th><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.command),
            escape(p.implementation.as_deref().unwrap_or("-")),
            escape(&p.exit),
            escape(&report_words(p.report.as_ref()))
        );
    }
    o.push_str("</tbody></table>\n");
    if let Some(n) = &e.network {
        let _ = write!(
            o,
            "<table class=\"figures\"><thead><tr><th>the censor saw ({} ms bins)</th><th>up (caller → callee)</th>\
             <th>down (callee → caller)</th></tr></thead><tbody>",
            n.bin_ms
        );
        for (k, u, d) in network_rows(n) {
            let _ =
                write!(o, "<tr><th>{k}</th><td>{}</td><td>{}</td></tr>", escape(&u), escape(&d));
        }
        o.push_str("</tbody></table>\n");
    }
    for (role, p) in peers(e) {
        if let Some(t) = &p.stderr_tail {
            let _ = writeln!(
                o,
                "<p class=\"meta\">{role}'s stderr ends:</p><pre class=\"stderr\">{}</pre>",
                escape(t)
            );
        }
    }
    o.push_str("</div>\n");
}

/// A Markdown section on every external call of the document (empty when there is none).
pub fn markdown_section(doc: &Results) -> String {
    let calls: Vec<(&str, &CallResult, &ExternalCall)> = doc
        .runs
        .iter()
        .flat_map(|r| {
            r.calls.iter().filter_map(move |c| Some((r.scenario.as_str(), c, c.external.as_ref()?)))
        })
        .collect();
    if calls.is_empty() {
        return String::new();
    }
    let cell = |s: &str| s.replace('|', "/").replace('\n', " ");
    let mut o = String::from(
        "\n## External peers\n\n| scenario | call | verdict | judged from | peer | command | implementation | exit | report |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (sc, c, e) in &calls {
        for (role, p) in peers(e) {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {role} | `{}` | {} | {} | {} |",
                cell(sc),
                cell(&c.name),
                c.verdict.as_str(),
                e.judged_from(),
                cell(&p.command).replace('`', "'"),
                cell(p.implementation.as_deref().unwrap_or("-")),
                cell(&p.exit),
                cell(&report_words(p.report.as_ref()))
            );
        }
    }
    for (sc, c, e) in &calls {
        if let Some(n) = &e.network {
            let _ = writeln!(
                o,
                "\n**{} / {}**: judged from the network ({} ms bins)\n\n| the censor saw | up (caller → callee) | down (callee → caller) |\n|---|--:|--:|",
                cell(sc),
                cell(&c.name),
                n.bin_ms
            );
            for (k, u, d) in network_rows(n) {
                let _ = writeln!(o, "| {k} | {u} | {d} |");
            }
        }
        for (role, p) in peers(e) {
            if let Some(t) = &p.stderr_tail {
                let _ =
                    writeln!(o, "\n**{} / {}**, {role}'s stderr ends:\n", cell(sc), cell(&c.name));
                for line in t.lines() {
                    let _ = writeln!(o, "    {line}");
                }
            }
        }
    }
    o
}

/// `<properties>` of an external call's JUnit test case (place right after `<testcase>`).
pub fn junit_properties(o: &mut String, c: &CallResult) {
    let Some(e) = &c.external else { return };
    let mut props: Vec<(String, String)> =
        vec![("external.judged_from".into(), e.judged_from().into())];
    for (role, p) in peers(e) {
        props.push((format!("external.{role}.command"), p.command.clone()));
        if let Some(i) = &p.implementation {
            props.push((format!("external.{role}.implementation"), i.clone()));
        }
        props.push((format!("external.{role}.exit"), p.exit.clone()));
        props.push((format!("external.{role}.report"), report_words(p.report.as_ref())));
        if let Some(f) = p.report.as_ref().and_then(|r| r.file.as_ref()) {
            props.push((format!("external.{role}.report_file"), f.clone()));
        }
    }
    if let Some(n) = &e.network {
        for (dir, d) in [("up", &n.up), ("down", &n.down)] {
            props.push((
                format!("external.network.{dir}.dropped_pct"),
                format!("{:.2}", d.drop_pct),
            ));
            props
                .push((format!("external.network.{dir}.rate_kbit"), format!("{:.1}", d.rate_kbit)));
            props.push((
                format!("external.network.{dir}.longest_gap_ms"),
                format!("{:.0}", d.longest_gap_ms),
            ));
        }
    }
    o.push_str("      <properties>\n");
    for (k, v) in props {
        let _ = writeln!(o, "        <property name=\"{}\" value=\"{}\"/>", escape(&k), escape(&v));
    }
    o.push_str("      </properties>\n");
}

/// `<system-err>` with the stderr tails of an external call's failed peers (place after
/// `<system-out>`); nothing when no peer left one.
pub fn junit_system_err(o: &mut String, c: &CallResult) {
    let Some(e) = &c.external else { return };
    let tails: Vec<String> = peers(e)
        .into_iter()
        .filter_map(|(role, p)| Some(format!("{role}'s stderr ends:\n{}", p.stderr_tail.as_ref()?)))
        .collect();
    if !tails.is_empty() {
        let _ = writeln!(o, "      <system-err>{}</system-err>", escape(&tails.join("\n")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_results::external::NetworkDirectionResult;
    use callwall_results::Verdict;

    fn ext_call(network: bool) -> CallResult {
        let mut c = crate::html::tests::call("ext-<aiortc>", Verdict::Blocked);
        c.transport = "external".into();
        let dir = |v: Verdict, pkts: u64| NetworkDirectionResult {
            forwarded_packets: pkts,
            forwarded_bytes: pkts * 100,
            dropped_packets: 7,
            drop_pct: 1.5,
            media_secs: 4,
            first_media_ms: Some(300.0),
            rate_kbit: 41.0,
            longest_gap_ms: 200.0,
            trailing_gap_ms: 0.0,
            verdict: v,
        };
        c.external = Some(ExternalCall {
            caller: ExternalPeerResult {
                command: ".venv/bin/python3 peers/aiortc/peer.py --offer".into(),
                implementation: Some("aiortc 1.16.0".into()),
                exit: "exit 0".into(),
                stderr_tail: None,
                report: Some(ExternalReportSummary {
                    file: Some("ext.caller/report.jsonl".into()),
                    lines: 3,
                    frames_received: 0,
                    frames_sent: None,
                    connected_ms: Some(310.0),
                    path: Some("ice host".into()),
                    error: None,
                    failed: None,
                }),
            },
            callee: ExternalPeerResult {
                command: "peers/x --answer".into(),
                implementation: None,
                exit: "killed by signal 9".into(),
                stderr_tail: Some("Traceback <boom> & ]]>".into()),
                report: None,
            },
            judged_from_network: network.then(|| "judged from the network: <note>".into()),
            network: network.then(|| ExternalNetwork {
                bin_ms: 100,
                up: dir(Verdict::Connected, 200),
                down: dir(Verdict::Blocked, 0),
            }),
        });
        c
    }

    #[test]
    fn html_shows_peers_judgement_figures_and_stderr_escaped() {
        let mut o = String::new();
        html_block(&mut o, &crate::html::tests::call("builtin", Verdict::Connected));
        assert!(o.is_empty());
        html_block(&mut o, &ext_call(true));
        assert!(o.contains("judged from the network"), "{o}");
        assert!(o.contains("judged from the network: &lt;note&gt;"), "{o}");
        assert!(o.contains("<code>.venv/bin/python3 peers/aiortc/peer.py --offer</code>"), "{o}");
        assert!(
            o.contains(
                "3 lines, 0 frames received, no &quot;sent&quot; line, connected at 310 ms (ice host)"
            ),
            "{o}"
        );
        assert!(o.contains("<th>dropped by the censor</th><td>7 (1.5 %)</td>"), "{o}");
        assert!(o.contains("<td>blocked</td>"), "{o}");
        assert!(o.contains("Traceback &lt;boom&gt; &amp; ]]&gt;"), "{o}");
        assert!(!o.contains("<boom>"));
        let page = crate::html::html(&crate::html::tests::doc(vec![crate::html::tests::run(
            "s",
            vec![ext_call(false)],
        )]));
        assert!(page.contains("<div class=\"external\">"));
        assert!(page.contains("not judged (a peer failed)"));
    }

    #[test]
    fn markdown_has_a_section_only_with_external_calls() {
        let plain = crate::html::tests::doc(vec![crate::html::tests::run(
            "s",
            vec![crate::html::tests::call("builtin", Verdict::Connected)],
        )]);
        assert_eq!(markdown_section(&plain), "");
        let doc = crate::html::tests::doc(vec![crate::html::tests::run("s", vec![ext_call(true)])]);
        let md = crate::markdown(&doc);
        assert!(md.contains("## External peers"), "{md}");
        assert!(md.contains("| s | ext-<aiortc> | blocked | network | caller | `.venv/bin/python3 peers/aiortc/peer.py --offer` | aiortc 1.16.0 | exit 0 |"), "{md}");
        assert!(md.contains("| rate | 41 kbit/s | 41 kbit/s |"), "{md}");
        assert!(md.contains("callee's stderr ends:\n\n    Traceback <boom> & ]]>"), "{md}");
    }

    #[test]
    fn junit_has_properties_and_system_err() {
        let doc = crate::html::tests::doc(vec![crate::html::tests::run("s", vec![ext_call(true)])]);
        let x = crate::junit(&doc);
        assert!(x.contains("<property name=\"external.judged_from\" value=\"network\"/>"), "{x}");
        assert!(x.contains("<property name=\"external.caller.report_file\" value=\"ext.caller/report.jsonl\"/>"), "{x}");
        assert!(
            x.contains("<property name=\"external.network.up.dropped_pct\" value=\"1.50\"/>"),
            "{x}"
        );
        assert!(x.contains("<system-err>callee&#39;s stderr ends:\nTraceback &lt;boom&gt; &amp; ]]&gt;</system-err>")
            || x.contains("<system-err>callee's stderr ends:\nTraceback &lt;boom&gt; &amp; ]]&gt;</system-err>")
            || x.contains("<system-err>callee&apos;s stderr ends:\nTraceback &lt;boom&gt; &amp; ]]&gt;</system-err>"), "{x}");
        // Properties come first in the test case, before failure and system-out.
        let props = x.find("<properties>").unwrap();
        assert!(props < x.find("<failure").unwrap() && props < x.find("<system-out>").unwrap());
        assert!(x.find("</system-out>").unwrap() < x.find("<system-err>").unwrap());
    }
}

#[cfg(test)]
mod words_tests {
    use super::*;

    #[test]
    fn a_malformed_report_shows_the_lines_read_before_it_and_a_failed_stage_its_reason() {
        let r = ExternalReportSummary {
            lines: 204,
            error: Some("report line 206, field \"recv_ns\": is missing".into()),
            ..Default::default()
        };
        let w = report_words(Some(&r));
        assert!(w.contains("204 lines read before the error") && w.contains("line 206"), "{w}");
        let r = ExternalReportSummary {
            lines: 3,
            frames_sent: Some(0),
            failed: Some(callwall_results::external::ExternalFailure {
                stage: "signalling".into(),
                reason: "no answer".into(),
            }),
            ..Default::default()
        };
        assert!(report_words(Some(&r)).ends_with("; signalling failed: no answer"));
    }
}
