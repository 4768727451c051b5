//! The layering rules of `docs/architecture.md` are tests (style principle 18): the
//! workspace's dependency graph comes from `cargo metadata --no-deps`, the floors from the
//! doc's crate table, and the named rules from [`RULES`] below. Each broken rule is one line
//! of the failure message.
//!
//! It lives in `callwall-results` because that is the lightest crate (serde only): the test
//! builds in seconds and needs nothing of what it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The transports and what serves them; none of them may reach the process-level crates.
const TRANSPORT_SIDE: &[&str] = &[
    "transport",
    "transport-noise",
    "transport-quic",
    "transport-webrtc",
    "reflector",
    "relay",
    "tls-pin",
];
/// The transport implementations.
const TRANSPORTS: &[&str] = &["transport-noise", "transport-quic", "transport-webrtc"];
/// What only the launcher (the caller's side of the process boundary) may use.
const LAUNCHER_ONLY: &[&str] = &["report", "demo-ui", "apps"];

/// One layering rule, in the doc's words. Crates are named as in the doc (`report` is the
/// package `callwall-report`, `callwall` the root package). "Depends" means a normal or build
/// dependency; dev-dependencies only have to respect the floors (no higher floor).
enum Rule {
    /// `krate` depends on no workspace crate but these.
    Only { krate: &'static str, allowed: &'static [&'static str] },
    /// No crate of `from` depends on a crate of `to`.
    Never { from: &'static [&'static str], to: &'static [&'static str] },
    /// Only the crates of `dependents` depend on a crate of `targets`.
    OnlyFrom { targets: &'static [&'static str], dependents: &'static [&'static str] },
}

const RULES: &[(&str, Rule)] = &[
    ("`units` is the ground floor", Rule::Only { krate: "units", allowed: &[] }),
    (
        "`results` is plain data: anything that reads a results file needs nothing else",
        Rule::Only { krate: "results", allowed: &["units"] },
    ),
    (
        "`wire` is pure parsers and codecs over bytes",
        Rule::Only { krate: "wire", allowed: &["units"] },
    ),
    (
        "`report` depends on `results` only (no path to the harness, netns or tokio)",
        Rule::Only { krate: "report", allowed: &["results"] },
    ),
    (
        "the censor depends on no transport and on nothing that runs it",
        Rule::Never {
            from: &["censor"],
            to: &[
                "transport",
                "transport-noise",
                "transport-quic",
                "transport-webrtc",
                "relay",
                "reflector",
                "tls-pin",
                "scenario",
                "harness",
                "launcher",
                "report",
            ],
        },
    ),
    (
        "no transport crate depends on the harness or the launcher",
        Rule::Never { from: TRANSPORT_SIDE, to: &["harness", "launcher", "scenario"] },
    ),
    (
        "transports get STUN from `wire`, not from the reflector",
        Rule::Never { from: TRANSPORTS, to: &["reflector"] },
    ),
    (
        "only the root package depends on the launcher",
        Rule::OnlyFrom { targets: &["launcher"], dependents: &["callwall"] },
    ),
    (
        "only the launcher depends on `report`, `demo-ui` and `apps`",
        Rule::OnlyFrom { targets: LAUNCHER_ONLY, dependents: &["launcher"] },
    ),
    (
        "the harness (inside the sandbox) depends on none of the launcher's crates",
        Rule::Never { from: &["harness"], to: &["launcher", "report", "demo-ui", "apps"] },
    ),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The doc's name of a package: `callwall-report` is `report`, the root stays `callwall`.
fn short(package: &str) -> &str {
    package.strip_prefix("callwall-").unwrap_or(package)
}

/// Dependencies between workspace crates, by doc name: (normal and build, all kinds).
struct Graph {
    crates: BTreeSet<String>,
    deps: BTreeMap<String, BTreeSet<String>>,
    all_deps: BTreeMap<String, BTreeSet<(String, String)>>,
}

fn graph() -> Graph {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path"])
        .arg(workspace_root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let packages = meta["packages"].as_array().expect("metadata has packages");
    let crates: BTreeSet<String> =
        packages.iter().filter_map(|p| p["name"].as_str()).map(|n| short(n).to_string()).collect();
    let mut deps = BTreeMap::new();
    let mut all_deps = BTreeMap::new();
    for p in packages {
        let name = short(p["name"].as_str().unwrap_or_default()).to_string();
        let mut normal = BTreeSet::new();
        let mut all = BTreeSet::new();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let dep = short(d["name"].as_str().unwrap_or_default()).to_string();
            if !crates.contains(&dep) {
                continue;
            }
            let kind = d["kind"].as_str().unwrap_or("normal").to_string();
            if kind != "dev" {
                normal.insert(dep.clone());
            }
            all.insert((dep, kind));
        }
        deps.insert(name.clone(), normal);
        all_deps.insert(name, all);
    }
    Graph { crates, deps, all_deps }
}

/// The floors of the crate table in `docs/architecture.md`: the table whose header has a
/// `crate` and a `floor` column; each backticked name of a crate cell is a crate.
fn doc_floors() -> BTreeMap<String, u32> {
    let path = workspace_root().join("docs/architecture.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let cells = |l: &str| -> Vec<String> {
        l.trim().trim_matches('|').split('|').map(|c| c.trim().to_string()).collect()
    };
    let lines: Vec<&str> = doc.lines().collect();
    let header = lines
        .iter()
        .position(|l| {
            let c = cells(l);
            l.starts_with('|') && c.iter().any(|c| c == "crate") && c.iter().any(|c| c == "floor")
        })
        .expect("docs/architecture.md has a table with `crate` and `floor` columns");
    let head = cells(lines[header]);
    let crate_col = head.iter().position(|c| c == "crate").unwrap_or(0);
    let floor_col = head.iter().position(|c| c == "floor").unwrap_or(1);
    let mut floors = BTreeMap::new();
    for line in lines[header + 2..].iter().take_while(|l| l.starts_with('|')) {
        let c = cells(line);
        // Every backticked name of the crate cell is a crate (`transport-noise`,
        // `transport-quic`, ...); a path such as `src/` is not.
        let names: Vec<&str> = c
            .get(crate_col)
            .map(|c| c.split('`').skip(1).step_by(2).filter(|n| !n.contains('/')).collect())
            .unwrap_or_default();
        let floor = c.get(floor_col).and_then(|f| f.parse::<u32>().ok());
        match floor {
            Some(f) if !names.is_empty() => {
                for name in names {
                    floors.insert(name.to_string(), f);
                }
            }
            _ => panic!("docs/architecture.md: a crate row without a crate or a floor: {line}"),
        }
    }
    floors
}

fn check_rules(g: &Graph) -> Vec<String> {
    let mut broken = Vec::new();
    for (why, rule) in RULES {
        match rule {
            Rule::Only { krate, allowed } => {
                let Some(deps) = g.deps.get(*krate) else {
                    broken.push(format!("{why}: there is no crate `{krate}`"));
                    continue;
                };
                for d in deps.iter().filter(|d| !allowed.contains(&d.as_str())) {
                    broken.push(format!("{why}: `{krate}` depends on `{d}`"));
                }
            }
            Rule::Never { from, to } => {
                for f in from.iter().copied() {
                    for d in g.deps.get(f).into_iter().flatten() {
                        if to.contains(&d.as_str()) {
                            broken.push(format!("{why}: `{f}` depends on `{d}`"));
                        }
                    }
                }
            }
            Rule::OnlyFrom { targets, dependents } => {
                for (k, deps) in &g.deps {
                    if dependents.contains(&k.as_str()) {
                        continue;
                    }
                    for d in deps.iter().filter(|d| targets.contains(&d.as_str())) {
                        broken.push(format!("{why}: `{k}` depends on `{d}`"));
                    }
                }
            }
        }
    }
    broken
}

fn check_floors(g: &Graph, floors: &BTreeMap<String, u32>) -> Vec<String> {
    let mut broken = Vec::new();
    for k in &g.crates {
        if !floors.contains_key(k) {
            broken.push(format!(
                "every crate has a floor: `{k}` has no row in the crate table of docs/architecture.md"
            ));
        }
    }
    for k in floors.keys() {
        if !g.crates.contains(k) {
            broken.push(format!(
                "the crate table of docs/architecture.md lists `{k}`, which is not a workspace crate"
            ));
        }
    }
    for (k, deps) in &g.all_deps {
        let Some(&fk) = floors.get(k) else { continue };
        for (d, kind) in deps {
            let Some(&fd) = floors.get(d) else { continue };
            // A crate uses crates of lower floors only; its tests may also use its neighbours.
            if fd > fk || (fd == fk && kind != "dev") {
                broken.push(format!(
                    "every dependency points down a floor: `{k}` (floor {fk}) depends on `{d}` \
                     (floor {fd}, {kind})"
                ));
            }
        }
    }
    broken
}

#[test]
fn the_layering_rules_of_the_architecture_doc_hold() {
    let g = graph();
    let mut broken = check_rules(&g);
    broken.extend(check_floors(&g, &doc_floors()));
    assert!(
        broken.is_empty(),
        "\n{} layering rule(s) of docs/architecture.md broken:\n  {}\n",
        broken.len(),
        broken.join("\n  ")
    );
}

#[test]
fn every_rule_names_crates_that_exist_in_the_doc() {
    // A misspelt crate in `RULES` would make its rule hold vacuously.
    let floors = doc_floors();
    let mut named: Vec<&str> = Vec::new();
    for (_, rule) in RULES {
        match rule {
            Rule::Only { krate, allowed } => {
                named.push(krate);
                named.extend(allowed.iter());
            }
            Rule::Never { from, to } => named.extend(from.iter().chain(to.iter())),
            Rule::OnlyFrom { targets, dependents } => {
                named.extend(targets.iter().chain(dependents.iter()))
            }
        }
    }
    let unknown: BTreeSet<&str> = named.into_iter().filter(|n| !floors.contains_key(*n)).collect();
    assert!(unknown.is_empty(), "rules name crates the doc's table lacks: {unknown:?}");
}
