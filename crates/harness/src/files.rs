//! Finding and loading scenario files for `callwall run`, `check` and `list`: a directory
//! stands for its `*.toml` files in name order; every file is validated (and its calls' app
//! profiles checked) before anything runs, every error collected.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use callwall_scenario::{Catalog, Scenario};

/// The scenario files to use: `given` (a directory stands for its `*.toml` in name order), or
/// every `*.toml` of `scenario_dir` when none is given.
pub fn scenario_files(given: &[PathBuf], scenario_dir: &Path) -> Result<Vec<PathBuf>, String> {
    if given.is_empty() {
        return toml_files_in(scenario_dir)
            .map_err(|e| format!("{e}; run from the repository root or pass --scenario-dir"));
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

fn toml_files_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read scenario directory {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no scenario files (*.toml) in {}", dir.display()));
    }
    Ok(files)
}

pub fn load_all(
    files: &[PathBuf],
    topology_dir: &Path,
    app_dir: &Path,
    cat: &Catalog,
    transports: &[Box<dyn callwall_transport::VoiceTransport>],
) -> Result<Vec<Scenario>, Vec<String>> {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match Scenario::load(f, topology_dir, cat) {
            // Then the app profiles it names, and every bypass against what its strategies
            // honour (`callwall_transport::check_bypass`), before anything starts.
            Ok(s) => match callwall_apps::listing::check_scenario(&s, app_dir, &cat.transports)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    callwall_scenario::bypass::check_bypasses(&s, transports)
                        .map_err(|e| e.to_string())
                }) {
                Ok(()) => ok.push(s),
                Err(e) => errs.push(e),
            },
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(ok)
    } else {
        Err(errs)
    }
}

/// `callwall check`: validates every file; 0 when all are valid, 2 otherwise (every error
/// printed).
pub fn check(
    given: &[PathBuf],
    scenario_dir: &Path,
    topology_dir: &Path,
    app_dir: &Path,
    cat: &Catalog,
    transports: &[Box<dyn callwall_transport::VoiceTransport>],
) -> ExitCode {
    let files = match scenario_files(given, scenario_dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match load_all(&files, topology_dir, app_dir, cat, transports) {
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
pub fn list(scenario_dir: &Path, topology_dir: &Path, cat: &Catalog) -> ExitCode {
    let files = match scenario_files(&[], scenario_dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for f in files {
        match Scenario::load(&f, topology_dir, cat) {
            Ok(s) => println!("{:28} {}", s.name, s.description.lines().next().unwrap_or("")),
            Err(e) => println!("{:28} (invalid: {e})", f.display()),
        }
    }
    ExitCode::SUCCESS
}
