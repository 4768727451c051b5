//! The doc's rules are tests (style principle 18): every key a scenario file accepts is
//! documented in `docs/scenarios.md`, and every key the doc's key tables list is one the
//! schema accepts. The keys come from the raw serde structs themselves
//! (`callwall_censor::policy::raw::keys_of`, the list `deny_unknown_fields` checks against),
//! so a key added to a struct and not to the doc fails here. The `peer` table of a call is
//! documented in `docs/peers.md` and not checked here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use callwall_censor::policy::raw::{self, keys_of};
use callwall_scenario::{raw as scenario, workload::raw as workload};
use callwall_workload::{Kind, Params};

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/scenarios.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The text under the heading that starts with `heading`: its own text only (up to the next
/// heading of any level: a subsection's table is not its parent's), or with its subsections
/// (up to the next heading of the same or a higher level).
fn section(doc: &str, heading: &str, subsections: bool) -> String {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let lines: Vec<&str> = doc.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/scenarios.md has no heading {heading:?}"));
    // A `# comment` inside a fenced code block is not a heading.
    let mut fenced = false;
    let end = lines[start + 1..]
        .iter()
        .position(|l| {
            if l.starts_with("```") {
                fenced = !fenced;
            }
            let hashes = l.chars().take_while(|&c| c == '#').count();
            !fenced
                && hashes > 0
                && l[hashes..].starts_with(' ')
                && (!subsections || hashes <= level)
        })
        .map_or(lines.len(), |i| start + 1 + i);
    lines[start..end].join("\n")
}

/// The keys a section's table lists: the leading name of every backticked span in the first
/// cell of each row (`` `drop = true` `` is `drop`, `` `[[censor.rules]]` `` is `rules`).
fn table_keys(section: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or_default();
        for span in first.split('`').skip(1).step_by(2) {
            let span = span.trim_start_matches('[');
            let span = span.split(']').next().unwrap_or_default();
            let name = span.rsplit('.').next().unwrap_or_default();
            let name: String =
                name.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                keys.insert(name);
            }
        }
    }
    keys
}

/// Whether `key` is written in `text` as a key: `` `key` ``, `` `key = ...` ``, or `key = ` at
/// the start of a line (commented out or not) or inside an inline table (`{ key = `,
/// `, key = `).
fn mentions(text: &str, key: &str) -> bool {
    text.contains(&format!("`{key}`"))
        || text.contains(&format!("`{key} ="))
        || text.contains(&format!("{{ {key} ="))
        || text.contains(&format!(", {key} ="))
        || text.lines().any(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix('#').map_or(l, str::trim_start);
            l.starts_with(&format!("{key} ="))
        })
}

/// Fails with one line per key the code accepts and the table lacks, and per key the table
/// lists and the code does not accept.
fn assert_table_matches(heading: &str, what: &str, code: &[&str]) {
    let doc = doc();
    let listed = table_keys(&section(&doc, heading, false));
    let code: BTreeSet<String> = code.iter().map(|k| k.to_string()).collect();
    let mut problems = Vec::new();
    for key in code.difference(&listed) {
        problems.push(format!(
            "{what} key `{key}` is accepted by the code but has no row in the table under \
             {heading:?} of docs/scenarios.md: add one (what it holds for, units, an example)"
        ));
    }
    for key in listed.difference(&code) {
        problems.push(format!(
            "the table under {heading:?} of docs/scenarios.md lists `{key}`, which the {what} \
             schema does not accept: remove the row or fix its name"
        ));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// Fails with one line per key of `code` that `heading`'s section never mentions.
fn assert_mentioned(heading: &str, what: &str, code: &[&str]) {
    let doc = doc();
    let text = section(&doc, heading, true);
    let missing: Vec<String> = code
        .iter()
        .filter(|k| !mentions(&text, k))
        .map(|k| {
            format!("{what} key `{k}` is not mentioned under {heading:?} of docs/scenarios.md")
        })
        .collect();
    assert!(missing.is_empty(), "\n{}\n", missing.join("\n"));
}

#[test]
fn every_match_key_is_documented() {
    assert_table_matches("### Matches", "match", raw::match_keys());
}

#[test]
fn every_action_key_is_documented() {
    assert_table_matches("### Actions", "action", raw::action_keys());
}

#[test]
fn every_censor_table_key_is_documented() {
    assert_table_matches("## The censor policy", "[censor]", keys_of::<raw::Policy>());
}

#[test]
fn every_rule_key_is_documented() {
    assert_mentioned("### Rules", "[[censor.rules]]", keys_of::<raw::Rule>());
    assert_mentioned("### Rules", "active", keys_of::<raw::Window>());
    assert_mentioned("### Actions", "burst_loss", keys_of::<raw::GilbertElliott>());
}

#[test]
fn every_top_level_key_is_documented() {
    assert_table_matches("## Top-level keys", "top-level", keys_of::<scenario::Scenario>());
    assert_mentioned("## Top-level keys", "[defaults]", keys_of::<scenario::CallDefaults>());
}

#[test]
fn every_call_key_is_documented() {
    assert_mentioned("## Calls", "[[calls]]", keys_of::<scenario::Call>());
}

#[test]
fn every_workload_key_is_documented() {
    assert_mentioned("## Workloads", "[[workloads]]", keys_of::<workload::Common>());
    assert_mentioned("## Workloads", "[dns]", keys_of::<workload::Dns>());
}

/// The kinds table of the Workloads section: its rows' kinds and, per kind, the keys its
/// "keys" cell lists (the backticked names before each `(`).
fn kind_rows() -> BTreeMap<String, BTreeSet<String>> {
    let text = section(&doc(), "## Workloads", true);
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').collect();
        let (Some(kind), Some(keys)) = (cells.get(1), cells.get(3)) else { continue };
        let kind = kind.trim().trim_matches('`').to_string();
        let listed = keys
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .filter(|k| !matches!(*k, "https" | "h3"))
            .map(str::to_string)
            .collect();
        rows.insert(kind, listed);
    }
    rows
}

#[test]
fn every_kind_and_its_keys_are_documented_both_ways() {
    // The keys come from each kind's parameter type (`callwall_workload::kinds`), the types
    // scenario files are parsed through.
    let rows = kind_rows();
    let mut problems = Vec::new();
    for kind in Kind::ALL {
        let code: BTreeSet<String> = Params::keys(kind).into_iter().collect();
        let Some(listed) = rows.get(kind.as_str()) else {
            problems
                .push(format!("kind `{kind}` has no row in the kinds table of docs/scenarios.md"));
            continue;
        };
        for k in code.difference(listed) {
            problems.push(format!("kind `{kind}` accepts `{k}`, which its row does not list"));
        }
        for k in listed.difference(&code) {
            problems
                .push(format!("the row of kind `{kind}` lists `{k}`, which it does not accept"));
        }
    }
    for kind in rows.keys() {
        if kind.parse::<Kind>().is_err() {
            problems.push(format!("the kinds table lists `{kind}`, which is no workload kind"));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_key_lists_come_from_the_structs() {
    // Guards the introspection itself: an empty list would make every test above pass.
    for keys in [
        raw::match_keys(),
        raw::action_keys(),
        keys_of::<raw::Policy>(),
        keys_of::<scenario::Scenario>(),
        keys_of::<scenario::Call>(),
        keys_of::<workload::Common>(),
    ] {
        assert!(keys.len() >= 5, "{keys:?}");
    }
    assert!(table_keys(&section(&doc(), "### Matches", false)).len() >= 5);
    assert_eq!(kind_rows().len(), Kind::ALL.len());
    assert!(kind_rows().values().all(|keys| !keys.is_empty()));
}
