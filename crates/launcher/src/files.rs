//! Finding and loading scenario files for `callwall run`, `check` and `list`: a directory
//! stands for its `*.toml` files in name order; every file is validated (and its calls' app
//! profiles checked) before anything runs, every error collected.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use callwall_scenario::{Catalog, Scenario};

use crate::args::{Dirs, Transports};
use crate::error::CommandError;

/// The scenario files to use: `given` (a directory stands for its `*.toml` in name order), or
/// every `*.toml` of `scenario_dir` when none is given.
pub fn scenario_files(
    given: &[PathBuf],
    scenario_dir: &Path,
) -> Result<Vec<PathBuf>, CommandError> {
    if given.is_empty() {
        return toml_files_in(scenario_dir)
            .map_err(|e| CommandError::DefaultScenarioDir(Box::new(e)));
    }
    // A directory stands for the scenario files (*.toml) in it, in name order.
    let mut files = Vec::new();
    for p in given {
        if p.is_dir() {
            files.extend(toml_files_in(p)?);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn toml_files_in(dir: &Path) -> Result<Vec<PathBuf>, CommandError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|source| CommandError::ReadScenarioDir { dir: dir.to_path_buf(), source })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CommandError::NoScenarioFiles { dir: dir.to_path_buf() });
    }
    Ok(files)
}

/// The catalog scenarios are validated against: every transport of the build and its
/// strategies.
pub fn catalog(transports: Transports) -> Catalog {
    Catalog { transports: callwall_harness::plan::catalog_of(&transports()) }
}

/// Loads and validates every file (and the app profiles and bypasses its calls name);
/// `Err` holds every error found.
pub fn load_all(
    files: &[PathBuf],
    dirs: &Dirs,
    transports: Transports,
) -> Result<Vec<Scenario>, Vec<CommandError>> {
    let cat = catalog(transports);
    let transports = transports();
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match Scenario::load(f, &dirs.topology_dir, &cat) {
            // Then the app profiles it names, and every bypass against what its strategies
            // honour (`callwall_transport::check_bypass`), before anything starts.
            Ok(s) => {
                match callwall_apps::listing::check_scenario(&s, &dirs.app_dir, &cat.transports)
                    .map_err(CommandError::AppProfile)
                    .and_then(|()| {
                        callwall_scenario::bypass::check_bypasses(&s, &transports)
                            .map_err(CommandError::from)
                    }) {
                    Ok(()) => ok.push(s),
                    Err(e) => errs.push(e),
                }
            }
            Err(e) => errs.push(e.into()),
        }
    }
    errs.extend(duplicate_names(&ok));
    if errs.is_empty() {
        Ok(ok)
    } else {
        Err(errs)
    }
}

/// Scenarios that share a `name` (they would overwrite each other's output directory and
/// results): one error per later file, naming the first.
fn duplicate_names(scenarios: &[Scenario]) -> Vec<CommandError> {
    let mut first: std::collections::BTreeMap<&str, &Path> = std::collections::BTreeMap::new();
    let mut errs = Vec::new();
    for s in scenarios {
        if let Some(f) = first.insert(&s.name, &s.path) {
            errs.push(CommandError::DuplicateName {
                name: s.name.clone(),
                first: f.to_path_buf(),
                second: s.path.clone(),
            });
            first.insert(&s.name, f);
        }
    }
    errs
}

/// `callwall check`: validates every file; 0 when all are valid, 2 otherwise (every error
/// printed).
pub fn check(given: &[PathBuf], dirs: &Dirs, transports: Transports) -> ExitCode {
    let files = match scenario_files(given, &dirs.scenario_dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match load_all(&files, dirs, transports) {
        Ok(list) => {
            for s in &list {
                let calls: usize = s.calls.iter().map(|c| c.placements() as usize).sum();
                println!(
                    "ok  {:28} {} rule(s), {} call(s)  {}",
                    s.name,
                    s.policy.rules.len(),
                    calls,
                    s.path.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            ExitCode::from(2)
        }
    }
}

/// `callwall list`: each scenario's name and first description line (invalid ones say why).
pub fn list(dirs: &Dirs, transports: Transports) -> ExitCode {
    let cat = &catalog(transports);
    let files = match scenario_files(&[], &dirs.scenario_dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for f in files {
        match Scenario::load(&f, &dirs.topology_dir, cat) {
            Ok(s) => println!("{:28} {}", s.name, s.description.lines().next().unwrap_or("")),
            Err(e) => println!("{:28} (invalid: {e})", f.display()),
        }
    }
    ExitCode::SUCCESS
}
