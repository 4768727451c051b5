//! `callwall merge`: joining results documents (the shards of `callwall run --shard K/N`, or separate runs)
//! into one: [`merge`], a pure function behind `callwall merge`.
//!
//! Checks, each refusal exit 2 naming the files and what to do: every document has the same
//! schema version and was written by the same callwall version; none was interrupted; all have
//! the same fingerprint (commit, options that change results, scenario set with each file's
//! hash, shard count), or none has one (files written before fingerprints); no run
//! (scenario × repeat) appears twice; when the documents say which shard they hold, every
//! shard 1..N of the same N is there exactly once; and with fingerprints, every run of the
//! matrix (each scenario of the set × each repeat) is there.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use callwall_results::{Fingerprint, Results, RunResult};

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
    #[error("{file} is from an interrupted run (SIGINT or SIGTERM): its runs did not all finish; run that shard again")]
    Interrupted { file: String },
    #[error(
        "{file} has no fingerprint but {other} has one: merge files written by the same callwall"
    )]
    MissingFingerprint { file: String, other: String },
    #[error("{file} and {first} measured different things ({differs}): run every shard from the same commit with the same scenario files and options")]
    Fingerprint { file: String, first: String, differs: String },
    #[error("coverage incomplete: {} of the matrix missing ({}): pass every shard's results file, or run the missing scenarios again", missing.len(), missing_list(missing))]
    Incomplete { missing: Vec<(String, u32)> },
}

fn missing_list(missing: &[(String, u32)]) -> String {
    let mut names: Vec<String> =
        missing.iter().take(10).map(|(s, r)| format!("{s} (repeat {})", r + 1)).collect();
    if missing.len() > 10 {
        names.push(format!("and {} more", missing.len() - 10));
    }
    names.join(", ")
}

/// The parts in which two fingerprints differ, in words (`seed 1 vs 2, scenario set`).
pub fn differences(a: &Fingerprint, b: &Fingerprint) -> String {
    let mut d = Vec::new();
    let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    if a.commit != b.commit {
        d.push(format!("commit {} vs {}", a.commit, b.commit));
    }
    let (x, y) = (&a.options, &b.options);
    if x.seed != y.seed {
        let s = |v: Option<u64>| v.map_or("per scenario".to_string(), |v| v.to_string());
        d.push(format!("--seed {} vs {}", s(x.seed), s(y.seed)));
    }
    if x.repeat != y.repeat {
        d.push(format!("--repeat {} vs {}", x.repeat, y.repeat));
    }
    if x.retries != y.retries {
        d.push(format!("--retries {} vs {}", x.retries, y.retries));
    }
    if x.transports != y.transports {
        d.push(format!("--transport {:?} vs {:?}", x.transports, y.transports));
    }
    if x.filter != y.filter {
        d.push(format!("--filter {} vs {}", show(&x.filter), show(&y.filter)));
    }
    if x.audio != y.audio {
        d.push(format!("--audio {} vs {}", show(&x.audio), show(&y.audio)));
    }
    if x.pcap != y.pcap {
        d.push(format!("--pcap {} vs {}", x.pcap, y.pcap));
    }
    if a.scenarios != b.scenarios {
        let names =
            |f: &Fingerprint| f.scenarios.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        if names(a) == names(b) {
            let changed: Vec<&str> = a
                .scenarios
                .iter()
                .zip(&b.scenarios)
                .filter(|(p, q)| p.sha256 != q.sha256)
                .map(|(p, _)| p.name.as_str())
                .collect();
            d.push(format!("scenario file content of {}", changed.join(", ")));
        } else {
            d.push(format!("scenario set [{}] vs [{}]", names(a).join(", "), names(b).join(", ")));
        }
    }
    if a.shards != b.shards {
        d.push(format!("{} vs {} shards", a.shards, b.shards));
    }
    d.join("; ")
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
    if let Some((name, _)) = docs.iter().find(|(_, d)| d.interrupted) {
        return Err(MergeError::Interrupted { file: name.clone() });
    }
    let printed = docs.iter().find(|(_, d)| d.fingerprint.is_some());
    if let Some((with, print)) = printed.map(|(n, d)| (n, d.fingerprint.as_ref())) {
        for (name, d) in docs {
            match (&d.fingerprint, print) {
                (None, _) => {
                    return Err(MergeError::MissingFingerprint {
                        file: name.clone(),
                        other: with.clone(),
                    })
                }
                (Some(f), Some(p)) if f != p => {
                    return Err(MergeError::Fingerprint {
                        file: name.clone(),
                        first: with.clone(),
                        differs: differences(p, f),
                    })
                }
                _ => {}
            }
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
    // Coverage: every scenario of the fingerprint's set, every repeat.
    let fingerprint = first.fingerprint.clone();
    if let Some(f) = &fingerprint {
        let missing: Vec<(String, u32)> = f
            .scenarios
            .iter()
            .flat_map(|s| (0..f.options.repeat.max(1)).map(move |r| (s.name.clone(), r)))
            .filter(|(s, r)| !at.contains_key(&(s.as_str(), *r)))
            .collect();
        if !missing.is_empty() {
            return Err(MergeError::Incomplete { missing });
        }
    }
    runs.sort_by(|a, b| a.1.scenario.cmp(&b.1.scenario).then(a.1.repeat.cmp(&b.1.repeat)));
    Ok(Results {
        schema_version: first.schema_version,
        callwall_version: first.callwall_version.clone(),
        runs: runs.into_iter().map(|(_, r)| r.clone()).collect(),
        shard: None,
        fingerprint: fingerprint.map(|f| Fingerprint { shards: 1, ..f }),
        interrupted: false,
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
    let judge = Judge::Expectations { interrupted: false };
    eprintln!("merged {} file(s); {}", docs.len(), output::verdict_line(&doc, written, judge));
    output::exit_code(&doc, written, judge)
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
            ..Default::default()
        }
    }

    fn print(names: &[&str], seed: Option<u64>, shards: u32) -> Fingerprint {
        Fingerprint {
            commit: "abc".into(),
            options: callwall_results::RunOptions { seed, repeat: 1, ..Default::default() },
            scenarios: names
                .iter()
                .map(|n| callwall_results::ScenarioPrint {
                    name: n.to_string(),
                    sha256: "00".into(),
                })
                .collect(),
            shards,
        }
    }

    fn shard(runs: &[&str], k: u32, f: &Fingerprint) -> Results {
        let runs: Vec<(&str, u32)> = runs.iter().map(|s| (*s, 0)).collect();
        let mut d = doc(&runs, Some((k, f.shards)));
        d.fingerprint = Some(f.clone());
        d
    }

    #[test]
    fn refuses_interrupted_mismatched_and_incomplete_shards() {
        let f = print(&["a", "b", "c"], Some(1), 2);
        let ok =
            merge(&[("1".into(), shard(&["a", "c"], 1, &f)), ("2".into(), shard(&["b"], 2, &f))])
                .unwrap();
        assert_eq!(ok.runs.len(), 3);
        assert_eq!(ok.fingerprint.as_ref().map(|f| f.shards), Some(1));

        let mut stopped = shard(&["b"], 2, &f);
        stopped.interrupted = true;
        let e =
            merge(&[("1".into(), shard(&["a", "c"], 1, &f)), ("2".into(), stopped)]).unwrap_err();
        assert_eq!(e, MergeError::Interrupted { file: "2".into() });
        assert!(e.to_string().contains("interrupted"), "{e}");

        let other_seed = print(&["a", "b", "c"], Some(2), 2);
        let e = merge(&[
            ("1".into(), shard(&["a", "c"], 1, &f)),
            ("2".into(), shard(&["b"], 2, &other_seed)),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("--seed 1 vs 2"), "{e}");

        let fewer = print(&["a", "b"], Some(1), 2);
        let e =
            merge(&[("1".into(), shard(&["a"], 1, &fewer)), ("2".into(), shard(&["b"], 2, &f))])
                .unwrap_err();
        assert!(e.to_string().contains("scenario set [a, b] vs [a, b, c]"), "{e}");

        let mut edited = f.clone();
        edited.scenarios[2].sha256 = "11".into();
        edited.commit = "def".into();
        let e = merge(&[
            ("1".into(), shard(&["a", "c"], 1, &f)),
            ("2".into(), shard(&["b"], 2, &edited)),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("commit abc vs def; scenario file content of c"), "{e}");

        // A shard that lost a run (every shard present, a scenario missing).
        let e = merge(&[("1".into(), shard(&["a"], 1, &f)), ("2".into(), shard(&["b"], 2, &f))])
            .unwrap_err();
        assert_eq!(e, MergeError::Incomplete { missing: vec![("c".into(), 0)] });
        assert!(e.to_string().contains("c (repeat 1)"), "{e}");

        let e = merge(&[
            ("1".into(), shard(&["a", "c"], 1, &f)),
            ("2".into(), doc(&[("b", 0)], Some((2, 2)))),
        ])
        .unwrap_err();
        assert!(matches!(e, MergeError::MissingFingerprint { .. }), "{e:?}");
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
