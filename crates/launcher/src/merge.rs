//! `callwall merge`: joining results documents (the shards of `callwall run --shard K/N`, or separate runs)
//! into one: [`merge`], a pure function behind `callwall merge`.
//!
//! Checks: every document has the same schema version and was written by the same callwall
//! version; no run (scenario × repeat) appears twice; when the documents say which shard they
//! hold, every shard 1..N of the same N is there exactly once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use callwall_results::{Results, RunResult};

use crate::output::{self, Judge, OutputArgs};

/// Why documents cannot be merged (each names the files and says what to do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("no results files given")]
    NoFiles,
    #[error("{file} has results schema version {version}, {first} has {first_version}: merge files written by the same callwall")]
    SchemaVersion { file: String, version: u32, first: String, first_version: u32 },
    #[error("{file} was written by callwall {version}, {first} by {first_version}: run every shard with the same build")]
    CallwallVersion { file: String, version: String, first: String, first_version: String },
    #[error(
        "some files are shards (run --shard) and some are not: merge the shards of one matrix"
    )]
    MixedShards,
    #[error("{file} is shard {index}/{count}, but {first} is of {first_count} shards: merge the shards of one matrix")]
    ShardCount { file: String, index: u32, count: u32, first: String, first_count: u32 },
    #[error("{file} and {other} are both shard {index}/{count}")]
    DuplicateShard { file: String, other: String, index: u32, count: u32 },
    #[error("shard(s) {} missing: pass every shard's results file", shard_list(missing, *count))]
    MissingShards { missing: Vec<u32>, count: u32 },
    #[error("scenario {scenario} (repeat {}) is in both {other} and {file}: each run may be merged once", repeat + 1)]
    DuplicateRun { scenario: String, repeat: u32, other: String, file: String },
}

fn shard_list(missing: &[u32], count: u32) -> String {
    missing.iter().map(|k| format!("{k}/{count}")).collect::<Vec<_>>().join(", ")
}

/// Joins documents (`(file name, document)`); `Err` says which files conflict and how.
pub fn merge(docs: &[(String, Results)]) -> Result<Results, MergeError> {
    let Some((first_name, first)) = docs.first() else {
        return Err(MergeError::NoFiles);
    };
    for (name, d) in docs {
        if d.schema_version != first.schema_version {
            return Err(MergeError::SchemaVersion {
                file: name.clone(),
                version: d.schema_version,
                first: first_name.clone(),
                first_version: first.schema_version,
            });
        }
        if d.callwall_version != first.callwall_version {
            return Err(MergeError::CallwallVersion {
                file: name.clone(),
                version: d.callwall_version.clone(),
                first: first_name.clone(),
                first_version: first.callwall_version.clone(),
            });
        }
    }
    // Shards: all or none say which shard they are; then each of 1..N once.
    let shards: Vec<_> = docs.iter().filter_map(|(n, d)| d.shard.map(|s| (n, s))).collect();
    if !shards.is_empty() {
        if shards.len() != docs.len() {
            return Err(MergeError::MixedShards);
        }
        let count = shards[0].1.count;
        let mut seen: BTreeMap<u32, &String> = BTreeMap::new();
        for (n, s) in &shards {
            if s.count != count {
                return Err(MergeError::ShardCount {
                    file: (*n).clone(),
                    index: s.index,
                    count: s.count,
                    first: shards[0].0.clone(),
                    first_count: count,
                });
            }
            if let Some(other) = seen.insert(s.index, n) {
                return Err(MergeError::DuplicateShard {
                    file: (*n).clone(),
                    other: other.clone(),
                    index: s.index,
                    count,
                });
            }
        }
        let missing: Vec<u32> = (1..=count).filter(|k| !seen.contains_key(k)).collect();
        if !missing.is_empty() {
            return Err(MergeError::MissingShards { missing, count });
        }
    }
    let mut runs: Vec<(&String, &RunResult)> = Vec::new();
    let mut at: BTreeMap<(&str, u32), &String> = BTreeMap::new();
    for (name, d) in docs {
        for r in &d.runs {
            if let Some(other) = at.insert((r.scenario.as_str(), r.repeat), name) {
                return Err(MergeError::DuplicateRun {
                    scenario: r.scenario.clone(),
                    repeat: r.repeat,
                    other: other.clone(),
                    file: name.clone(),
                });
            }
            runs.push((name, r));
        }
    }
    runs.sort_by(|a, b| a.1.scenario.cmp(&b.1.scenario).then(a.1.repeat.cmp(&b.1.repeat)));
    Ok(Results {
        schema_version: first.schema_version,
        callwall_version: first.callwall_version.clone(),
        runs: runs.into_iter().map(|(_, r)| r.clone()).collect(),
        shard: None,
    })
}

/// `callwall merge`'s arguments.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Results files written by `callwall run --json` (for example one per shard).
    #[arg(value_name = "RESULTS.json", required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `callwall merge`: reads, joins and renders; exit 2 (naming the file) when a file cannot be
/// read or the files conflict, otherwise as `run` ([`Judge::Expectations`]).
pub fn merge_files(args: MergeArgs) -> ExitCode {
    let mut docs = Vec::new();
    for p in &args.inputs {
        match output::load(p) {
            Ok(d) => docs.push((p.display().to_string(), d)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let doc = match merge(&docs) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let written = args.output.emit(&doc);
    output::exit_code(&doc, written, Judge::Expectations { interrupted: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_results::ShardInfo;

    fn doc(runs: &[(&str, u32)], shard: Option<(u32, u32)>) -> Results {
        let runs = runs
            .iter()
            .map(|(s, rep)| {
                serde_json::from_value(serde_json::json!({
                    "scenario": s, "path": format!("{s}.toml"), "seed": 1, "repeat": rep,
                    "topology": "t", "started_unix_ms": 0, "wall_ms": 0, "calls": [],
                    "censor": callwall_results::CensorResult::default(),
                }))
                .unwrap()
            })
            .collect();
        Results {
            schema_version: callwall_results::SCHEMA_VERSION,
            callwall_version: "0.1.0".into(),
            runs,
            shard: shard.map(|(index, count)| ShardInfo { index, count }),
        }
    }

    #[test]
    fn joins_shards_in_scenario_order() {
        let m = merge(&[
            ("b.json".into(), doc(&[("zeta", 0), ("alpha", 1)], Some((2, 2)))),
            ("a.json".into(), doc(&[("alpha", 0)], Some((1, 2)))),
        ])
        .unwrap();
        let names: Vec<_> = m.runs.iter().map(|r| (r.scenario.as_str(), r.repeat)).collect();
        assert_eq!(names, [("alpha", 0), ("alpha", 1), ("zeta", 0)]);
        assert!(m.shard.is_none());
    }

    #[test]
    fn refuses_duplicates_missing_shards_and_mixed_versions() {
        let e =
            merge(&[("a".into(), doc(&[("x", 0)], None)), ("b".into(), doc(&[("x", 0)], None))])
                .unwrap_err();
        assert!(
            matches!(&e, MergeError::DuplicateRun { scenario, repeat: 0, other, file }
            if scenario == "x" && other == "a" && file == "b"),
            "{e:?}"
        );
        assert!(e.to_string().contains("scenario x (repeat 1) is in both a and b"), "{e}");
        let e =
            merge(&[("a".into(), doc(&[], Some((1, 3)))), ("b".into(), doc(&[], Some((3, 3))))])
                .unwrap_err();
        assert_eq!(e, MergeError::MissingShards { missing: vec![2], count: 3 });
        assert!(e.to_string().contains("shard(s) 2/3 missing"), "{e}");
        let e =
            merge(&[("a".into(), doc(&[], Some((1, 2)))), ("b".into(), doc(&[], Some((1, 2))))])
                .unwrap_err();
        assert!(matches!(e, MergeError::DuplicateShard { index: 1, count: 2, .. }), "{e:?}");
        let e = merge(&[("a".into(), doc(&[], Some((1, 2)))), ("b".into(), doc(&[], None))])
            .unwrap_err();
        assert_eq!(e, MergeError::MixedShards);
        let mut old = doc(&[], None);
        old.callwall_version = "0.0.9".into();
        let e = merge(&[("a".into(), doc(&[], None)), ("b".into(), old)]).unwrap_err();
        assert!(matches!(e, MergeError::CallwallVersion { .. }), "{e:?}");
        let mut v = doc(&[], None);
        v.schema_version = 1;
        let e = merge(&[("a".into(), doc(&[], None)), ("b".into(), v)]).unwrap_err();
        assert!(matches!(e, MergeError::SchemaVersion { version: 1, .. }), "{e:?}");
        assert_eq!(merge(&[]).unwrap_err(), MergeError::NoFiles);
    }
}
