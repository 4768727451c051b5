//! The "Bypass matrix" section (issue 15): rows are dated censors (scenario and `as_of`),
//! columns are bypasses (the `column` of each bypass-matrix call), each cell the calls placed
//! there with their outcome, whether it met the expectation, and the bypass's cost against its
//! reference call (added setup ms, bytes, packets, ΔMOS). Every expectation's basis is a
//! footnote: a citation, or a prediction marked `(P)`.
//!
//! Below the grid, every circumvention the censorship catalog names ([`CATALOG`]) is listed
//! with the columns that place it, or "not available: why" when no transport here can do it,
//! so a bypass missing from the matrix is visible rather than silently absent.
//!
//! Pure functions of a [`Results`] document; empty when no call carries a bypass basis.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use callwall_results::bypass::{BypassCost, CallBypass};
use callwall_results::{CallResult, Results, RunResult, Verdict};

use crate::html::escape;

/// A circumvention named in `censorship-catalog.md` and where it shows in the matrix.
#[derive(Debug, Clone, Copy)]
pub struct CatalogBypass {
    /// What the catalog calls it.
    pub name: &'static str,
    /// Matrix column parts (bypass keys, options or strategies) that place it.
    pub columns: &'static [&'static str],
    /// Why no transport here can place it (`None`: available).
    pub unavailable: Option<&'static str>,
}

/// Every circumvention the catalog names ("Known circumvention" and "Circumvention for calls").
pub const CATALOG: &[CatalogBypass] = &[
    CatalogBypass { name: "decoy first datagram (random bytes, fake DNS or STUN)", columns: &["decoy"], unavailable: None },
    CatalogBypass { name: "peer-to-peer instead of relays", columns: &["direct"], unavailable: None },
    CatalogBypass { name: "TURN over TCP on 443 (Telegram's force-TCP)", columns: &["turn-tcp"], unavailable: None },
    CatalogBypass { name: "TURN over TLS on 443 (a TLS proxy on 443 carrying calls)", columns: &["turn-tls"], unavailable: None },
    CatalogBypass { name: "SNI choice (an allowed or domestic-looking name, a fake name, none)", columns: &["sni"], unavailable: None },
    CatalogBypass { name: "ECH", columns: &[], unavailable: Some("no stack here can serve it: rustls offers client-side ECH only, and neither coturn nor the quinn server here decrypts an ECH ClientHello") },
    CatalogBypass { name: "QUIC ClientHello split across Initials", columns: &["quic-split", "quic_split"], unavailable: None },
    CatalogBypass { name: "QUIC v2 (or another version the filter does not parse)", columns: &["quic_version"], unavailable: None },
    CatalogBypass { name: "sacrificial first QUIC Initial", columns: &["decoy"], unavailable: None },
    CatalogBypass { name: "printable prefix against the entropy test", columns: &["printable_prefix"], unavailable: None },
    CatalogBypass { name: "TLS-like header against the entropy test", columns: &[], unavailable: Some("the noise tcp-443 framing has no TLS-record-header option; turn-tls is real TLS (column turn-tls)") },
    CatalogBypass { name: "server port choice (a port the rule does not list, a server port above the client's)", columns: &["port"], unavailable: None },
    CatalogBypass { name: "source-port choice (source port below the destination port)", columns: &["source_port"], unavailable: None },
    CatalogBypass { name: "port hopping", columns: &["port_hop"], unavailable: None },
    CatalogBypass { name: "WireGuard with junk packets, custom headers and padding (AmneziaWG)", columns: &["junk", "wg_headers", "wg_padding"], unavailable: None },
    CatalogBypass { name: "AmneziaWG 1.5/2.0 packets mimicking QUIC or DNS", columns: &[], unavailable: Some("junk here is random bytes; the nearest is decoy = \"dns\" (column decoy)") },
    CatalogBypass { name: "random-looking framing (obfuscated transports)", columns: &["udp-obfs"], unavailable: None },
    CatalogBypass { name: "DTLS hellos that mimic browsers (covert-dtls)", columns: &["dtls_mimic"], unavailable: None },
    CatalogBypass { name: "DTLS 1.3 hellos", columns: &[], unavailable: Some("webrtc-rs 0.21's DTLS (a pion port) speaks DTLS 1.2 only") },
    CatalogBypass { name: "TLS record splitting of the ClientHello", columns: &["tls_record"], unavailable: None },
    CatalogBypass { name: "TCP segmentation of the ClientHello", columns: &["tcp_segment"], unavailable: None },
    CatalogBypass { name: "tunnelling through whitelisted call relays (WireGuard in a domestic service's TURN/DTLS)", columns: &[], unavailable: Some("needs a domestic call service's relay on the allowlist and a tunnel inside its DTLS; no such relay or tunnel is modelled") },
    CatalogBypass { name: "Hysteria2 (QUIC as HTTP/3, long headers split into chunks, aggressive congestion control)", columns: &[], unavailable: Some("no Hysteria2 transport; splitting the Initial is column quic-split") },
    CatalogBypass { name: "XTLS-Reality", columns: &[], unavailable: Some("no Reality transport (reported hit by the 16-20 KB freeze and fingerprinting [R])") },
];

/// One call in a cell.
struct Entry<'a> {
    call: &'a CallResult,
    b: &'a CallBypass,
    note: usize,
}

/// A row's cells: column -> the calls placed there.
type Cells<'a> = BTreeMap<String, Vec<Entry<'a>>>;

/// The matrix of a results document.
struct Matrix<'a> {
    /// Column names, `none` first, then sorted.
    columns: Vec<String>,
    /// (scenario, as_of, cells by column), in run order.
    rows: Vec<(String, Option<String>, Cells<'a>)>,
    /// Footnotes: (text, is prediction).
    notes: Vec<(String, bool)>,
}

fn build(doc: &Results) -> Option<Matrix<'_>> {
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut notes: Vec<(String, bool)> = Vec::new();
    for r in &doc.runs {
        let mut cells: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        let mut as_of = None;
        for c in &r.calls {
            let Some(b) = &c.bypass else { continue };
            as_of = as_of.or(b.as_of.clone());
            let key = (b.basis.text().to_string(), b.basis.is_prediction());
            let note = match notes.iter().position(|n| *n == key) {
                Some(i) => i + 1,
                None => {
                    notes.push(key);
                    notes.len()
                }
            };
            if !columns.contains(&b.column) {
                columns.push(b.column.clone());
            }
            cells.entry(b.column.clone()).or_default().push(Entry { call: c, b, note });
        }
        if !cells.is_empty() {
            let label = if r.repeat > 0 {
                format!("{} #{}", r.scenario, r.repeat + 1)
            } else {
                r.scenario.clone()
            };
            rows.push((label, as_of, cells));
        }
    }
    if rows.is_empty() {
        return None;
    }
    columns.sort_by(|a, b| (a != "none", a).cmp(&(b != "none", b)));
    Some(Matrix { columns, rows, notes })
}

/// `+12 ms +1.2 KB +9 pkt ΔMOS -0.05`, or the note why there is no cost, or `-`.
fn cost_text(b: &CallBypass) -> String {
    match (&b.cost, &b.cost_note) {
        (Some(c), _) => fmt_cost(c),
        (None, Some(n)) => format!("no cost: {n}"),
        (None, None) => "-".into(),
    }
}

fn fmt_cost(c: &BypassCost) -> String {
    let setup = c.setup_ms.map_or("? ms".into(), |s| format!("{s:+.0} ms"));
    format!("{setup} {:+.1} KB {:+} pkt ΔMOS {:+.2}", c.bytes as f64 / 1000.0, c.packets, c.mos)
}

fn outcome(c: &CallResult) -> String {
    format!("{}{}", c.verdict.as_str(), if c.met { " ✓" } else { " ✗ not met" })
}

fn mark(p: bool) -> &'static str {
    if p {
        " (P)"
    } else {
        ""
    }
}

/// The catalog coverage: each catalog bypass with the columns that placed it in this document,
/// `not placed in this run`, or `not available: why`.
fn coverage(m: Option<&Matrix>) -> Vec<(&'static str, String)> {
    CATALOG
        .iter()
        .map(|cb| {
            let placed: Vec<&String> = m
                .map(|m| {
                    m.columns
                        .iter()
                        .filter(|col| col.split('+').any(|p| cb.columns.contains(&p)))
                        .collect()
                })
                .unwrap_or_default();
            let status = match (cb.unavailable, placed.is_empty()) {
                (Some(why), _) => format!("not available: {why}"),
                (None, false) => format!(
                    "columns {}",
                    placed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                (None, true) => {
                    format!("not placed in this run (column {})", cb.columns.join(" / "))
                }
            };
            (cb.name, status)
        })
        .collect()
}

fn row_label(scenario: &str, as_of: &Option<String>) -> String {
    match as_of {
        Some(d) => format!("{scenario} (as of {d})"),
        None => scenario.to_string(),
    }
}

/// The terminal section: per dated censor, one line per matrix call.
pub fn table_section(doc: &Results) -> String {
    let Some(m) = build(doc) else { return String::new() };
    let mut o = String::from(
        "\nbypass matrix (cells: outcome, met, cost vs reference; [n] source, (P) prediction):\n",
    );
    let w = m.columns.iter().map(|c| c.len()).max().unwrap_or(4);
    for (scen, as_of, cells) in &m.rows {
        let _ = writeln!(o, "  {}", row_label(scen, as_of));
        for col in &m.columns {
            for e in cells.get(col).into_iter().flatten() {
                let _ = writeln!(
                    o,
                    "    {col:<w$}  {:<52}  {:<22}  {}  [{}]{}",
                    e.b.label,
                    outcome(e.call),
                    cost_text(e.b),
                    e.note,
                    mark(m.notes[e.note - 1].1)
                );
            }
        }
    }
    for (i, (t, p)) in m.notes.iter().enumerate() {
        let _ = writeln!(o, "  [{}]{} {t}", i + 1, mark(*p));
    }
    let _ = writeln!(o, "  catalog bypasses:");
    for (name, status) in coverage(Some(&m)) {
        let _ = writeln!(o, "    {name}: {status}");
    }
    o
}

/// The Markdown section: the grid, the footnotes, the catalog coverage.
pub fn markdown_section(doc: &Results) -> String {
    let Some(m) = build(doc) else { return String::new() };
    let md = |s: &str| s.replace('|', "/").replace('\n', " ");
    let mut o = String::from("\n## Bypass matrix\n\nRows: dated censors. Columns: bypasses. Cells: the call, its outcome (✓ met, ✗ not met), the cost against its reference call (added setup ms, KB and packets on the wire, ΔMOS), and the source of its expectation ([n]; (P) marks callwall's prediction where nothing is published).\n\n| censor (as of) |");
    for c in &m.columns {
        let _ = write!(o, " {} |", md(c));
    }
    o.push_str("\n|---|");
    for _ in &m.columns {
        o.push_str("---|");
    }
    o.push('\n');
    for (scen, as_of, cells) in &m.rows {
        let _ = write!(o, "| {} |", md(&row_label(scen, as_of)));
        for col in &m.columns {
            let parts: Vec<String> = cells
                .get(col)
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "`{}` **{}** {} [{}]{}",
                        md(&e.b.label),
                        md(&outcome(e.call)),
                        md(&cost_text(e.b)),
                        e.note,
                        mark(m.notes[e.note - 1].1)
                    )
                })
                .collect();
            let _ = write!(o, " {} |", parts.join("<br>"));
        }
        o.push('\n');
    }
    o.push('\n');
    for (i, (t, p)) in m.notes.iter().enumerate() {
        let _ = writeln!(o, "{}. {}{}", i + 1, if *p { "(P) prediction: " } else { "" }, md(t));
    }
    o.push_str("\n**Catalog bypasses**\n\n");
    for (name, status) in coverage(Some(&m)) {
        let _ = writeln!(o, "- {name}: {}", md(&status));
    }
    o
}

/// The HTML section (escaped): the grid with verdict chips, the footnotes, the coverage.
pub fn html_section(doc: &Results) -> String {
    let Some(m) = build(doc) else { return String::new() };
    let mut o = String::from("<section id=\"bypass-matrix\" class=\"legend\">\n<h2>Bypass matrix</h2>\n<p class=\"hint\">Rows: dated censors. Columns: bypasses. Each cell: the call, its outcome (a dashed outline: not the expected one), the cost against its reference call (added setup, bytes, packets, ΔMOS) and the source of its expectation; (P) marks callwall's prediction where nothing is published.</p>\n<div class=\"scroll\"><table class=\"rules bypass\">\n<thead><tr><th>censor (as of)</th>");
    for c in &m.columns {
        let _ = write!(o, "<th>{}</th>", escape(c));
    }
    o.push_str("</tr></thead><tbody>\n");
    for (scen, as_of, cells) in &m.rows {
        let _ = write!(o, "<tr><td>{}</td>", escape(&row_label(scen, as_of)));
        for col in &m.columns {
            o.push_str("<td>");
            for e in cells.get(col).into_iter().flatten() {
                let v: Verdict = e.call.verdict;
                let _ = write!(
                    o,
                    "<div><small>{}</small><br><span class=\"chip v-{}{}\">{}</span> <small>{}</small> <sup><a href=\"#bypass-note-{}\">{}</a>{}</sup></div>",
                    escape(&e.b.label),
                    v.as_str(),
                    if e.call.met { "" } else { " unmet" },
                    v.as_str(),
                    escape(&cost_text(e.b)),
                    e.note,
                    e.note,
                    mark(m.notes[e.note - 1].1)
                );
            }
            o.push_str("</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div>\n<ol class=\"bypass-notes\">\n");
    for (i, (t, p)) in m.notes.iter().enumerate() {
        let _ = writeln!(
            o,
            "<li id=\"bypass-note-{}\">{}{}</li>",
            i + 1,
            if *p { "<b>(P) prediction:</b> " } else { "" },
            escape(t)
        );
    }
    o.push_str("</ol>\n<h3>Catalog bypasses</h3>\n<ul>\n");
    for (name, status) in coverage(Some(&m)) {
        let _ = writeln!(o, "<li>{}: {}</li>", escape(name), escape(&status));
    }
    o.push_str("</ul>\n</section>\n");
    o
}

/// JUnit `<properties>` of a run's test suite (the JUnit schema has no properties per test
/// case): the censor's date and, per matrix call, `bypass.CALL.column`, `.label`, `.cite` or
/// `.prediction`, `.reference` and `.cost`. Empty for a run without matrix calls.
pub fn junit_properties(r: &RunResult) -> String {
    let mut props: Vec<(String, String)> = Vec::new();
    for c in &r.calls {
        let Some(b) = &c.bypass else { continue };
        if props.is_empty() {
            if let Some(d) = &b.as_of {
                props.push(("bypass.as_of".into(), d.clone()));
            }
        }
        let k = |f: &str| format!("bypass.{}.{f}", c.name);
        props.push((k("column"), b.column.clone()));
        props.push((k("label"), b.label.clone()));
        let basis = if b.basis.is_prediction() { "prediction" } else { "cite" };
        props.push((k(basis), b.basis.text().to_string()));
        if let Some(rf) = &b.reference {
            props.push((k("reference"), rf.clone()));
        }
        props.push((k("cost"), cost_text(b)));
    }
    if props.is_empty() {
        return String::new();
    }
    let mut o = String::from("    <properties>\n");
    for (k, v) in props {
        let _ = writeln!(o, "      <property name=\"{}\" value=\"{}\"/>", escape(&k), escape(&v));
    }
    o.push_str("    </properties>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_results::bypass::{Basis, WireTotals};

    fn doc() -> Results {
        let mut blocked = crate::html::tests::call("quic-443", Verdict::Blocked);
        blocked.met = true;
        blocked.bypass = Some(CallBypass {
            column: "none".into(),
            label: "quic/quic-443".into(),
            basis: Basis::Cite("Zohaib et al. <2025>".into()),
            as_of: Some("2024-04-01".into()),
            wire: Some(WireTotals { packets: 3, bytes: 3600 }),
            reference: None,
            cost: None,
            cost_note: None,
        });
        let mut split = crate::html::tests::call("split", Verdict::Connected);
        split.bypass = Some(CallBypass {
            column: "quic-split".into(),
            label: "quic/quic-split sni=\"www.google.com\"".into(),
            basis: Basis::Prediction("the filter reads one Initial".into()),
            as_of: Some("2024-04-01".into()),
            wire: Some(WireTotals { packets: 420, bytes: 60_000 }),
            reference: Some("quic-443".into()),
            cost: Some(BypassCost { setup_ms: Some(12.0), bytes: 1300, packets: 1, mos: -0.01 }),
            cost_note: None,
        });
        let plain = crate::html::tests::call("plain", Verdict::Connected);
        let mut d = Results {
            schema_version: callwall_results::SCHEMA_VERSION,
            callwall_version: "t".into(),
            runs: vec![crate::html::tests::run("cn-gfw-quic-sni", vec![blocked, split, plain])],
            ..Default::default()
        };
        d.runs.push(crate::html::tests::run(
            "baseline",
            vec![crate::html::tests::call("x", Verdict::Connected)],
        ));
        d
    }

    #[test]
    fn the_matrix_has_a_row_per_dated_censor_and_a_column_per_bypass() {
        let d = doc();
        let md = markdown_section(&d);
        assert!(md.contains("| censor (as of) | none | quic-split |"), "{md}");
        assert!(md.contains("cn-gfw-quic-sni (as of 2024-04-01)"), "{md}");
        assert!(!md.contains("| baseline"), "runs without matrix calls have no row: {md}");
        assert!(md.contains("+12 ms +1.3 KB +1 pkt ΔMOS -0.01"), "{md}");
        assert!(md.contains("(P) prediction: the filter reads one Initial"), "{md}");
        assert!(md.contains("- ECH: not available: "), "{md}");
        assert!(md.contains("QUIC ClientHello split across Initials: columns quic-split"), "{md}");
        assert!(md.contains("port hopping: not placed in this run"), "{md}");
        let t = table_section(&d);
        assert!(t.contains("bypass matrix") && t.contains("[2] (P)"), "{t}");
        let h = html_section(&d);
        assert!(h.contains("Zohaib et al. &lt;2025&gt;") && !h.contains("<2025>"), "{h}");
        let j = junit_properties(&d.runs[0]);
        assert!(
            j.contains("name=\"bypass.split.prediction\"") && j.contains("bypass.split.reference"),
            "{j}"
        );
        assert!(j.contains("name=\"bypass.as_of\" value=\"2024-04-01\""), "{j}");
        assert!(!j.contains("bypass.plain."), "{j}");
        assert!(junit_properties(&d.runs[1]).is_empty());
    }

    #[test]
    fn nothing_without_matrix_calls() {
        let mut d = doc();
        d.runs.remove(0);
        assert!(markdown_section(&d).is_empty() && table_section(&d).is_empty());
        assert!(html_section(&d).is_empty());
    }

    #[test]
    fn every_catalog_bypass_is_available_or_says_why_not() {
        for cb in CATALOG {
            assert!(cb.columns.is_empty() == cb.unavailable.is_some(), "{}", cb.name);
        }
    }
}
