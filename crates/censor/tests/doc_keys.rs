//! The doc's rules are tests (style principle 18): every key the policy schema accepts is
//! documented in `docs/scenarios.md`, and every key the doc's tables list is one the schema
//! accepts. The keys come from the raw serde structs themselves (`policy::raw::keys_of`, the
//! list `deny_unknown_fields` checks against), so a key added to a struct and not to the doc
//! fails here.

use std::collections::BTreeSet;
use std::path::Path;

use callwall_censor::policy::raw;

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/scenarios.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The text from the heading that starts with `heading` to the next heading (of any level:
/// a subsection's table is not its parent's).
fn section(doc: &str, heading: &str) -> String {
    let lines: Vec<&str> = doc.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/scenarios.md has no heading {heading:?}"));
    let end = lines[start + 1..]
        .iter()
        .position(|l| {
            let hashes = l.chars().take_while(|&c| c == '#').count();
            hashes > 0 && l[hashes..].starts_with(' ')
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
/// the start of a line or inside an inline table (`{ key = `, `, key = `).
fn mentions(text: &str, key: &str) -> bool {
    text.contains(&format!("`{key}`"))
        || text.contains(&format!("`{key} ="))
        || text.contains(&format!("{{ {key} ="))
        || text.contains(&format!(", {key} ="))
        || text.lines().any(|l| l.trim_start().starts_with(&format!("{key} =")))
}

/// Fails with one line per key the code accepts and the table lacks, and per key the table
/// lists and the code does not accept.
fn assert_table_matches(heading: &str, what: &str, code: &[&str]) {
    let doc = doc();
    let listed = table_keys(&section(&doc, heading));
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
    let text = section(&doc, heading);
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
    assert_table_matches("## The censor policy", "[censor]", raw::keys_of::<raw::Policy>());
}

#[test]
fn every_rule_key_is_documented() {
    assert_mentioned("### Rules", "[[censor.rules]]", raw::keys_of::<raw::Rule>());
    assert_mentioned("### Rules", "active", raw::keys_of::<raw::Window>());
    assert_mentioned("### Actions", "burst_loss", raw::keys_of::<raw::GilbertElliott>());
}

#[test]
fn the_key_lists_come_from_the_structs() {
    // Guards the introspection itself: an empty list would make every test above pass.
    for keys in [raw::match_keys(), raw::action_keys(), raw::keys_of::<raw::Policy>()] {
        assert!(keys.len() >= 5, "{keys:?}");
    }
    assert!(table_keys(&section(&doc(), "### Matches")).len() >= 5);
}
