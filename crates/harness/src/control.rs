//! Live control of a running censor, across the process boundaries of a run.
//!
//! A command line (see `callwall_censor::control`) travels: the launcher's control source
//! (`run --control FILE|-`, or `callwall demo`'s keys) → the sandbox's stdin
//! ([`crate::launch_with`]) → the censor process's stdin ([`forward_to`]) → the engine
//! ([`apply`], between two frames, keeping the flow table). The censor writes each response
//! as a `control {json}` line to its log (`censor.log`) and each change to the decision log;
//! the harness reads the changes back into `CensorResult::control` ([`read_changes`]).
//!
//! A `swap` names a scenario file (absolute, or relative to where `callwall` was started);
//! only its `[censor]` table is read, compiled against the running topology's host names.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ChildStdin;
use std::sync::{Arc, Mutex};

use callwall_censor::control_io::Queued;
use callwall_censor::policy::{raw, Cidr, Policy};
use callwall_censor::Engine;
use callwall_results::ControlEvent;

/// Applies queued command lines to the engine at `now_ns`; each response (or parse error) is
/// one `live control {json}` line on stdout and, unless it answers `status`, one
/// `control {json}` line on stderr (the censor's log).
pub fn apply(
    engine: &mut Engine,
    now_ns: u64,
    queued: Vec<Queued>,
    hosts: &BTreeMap<String, Vec<Cidr>>,
) {
    let mut load = |p: &Path| load_policy(p, hosts).map_err(|e| e.to_string());
    for q in queued {
        match q {
            Ok(cmd) => {
                let r = engine.control(now_ns, &cmd, &mut load);
                let line = r.to_line();
                if cmd != callwall_censor::control::Command::Status {
                    eprintln!("control {line}");
                }
                live(&line);
            }
            Err(e) => {
                let line = format!(
                    "{{\"ok\":false,\"t_ms\":0,\"error\":{:?},\"rules\":[]}}",
                    e.to_string()
                );
                eprintln!("control {line}");
                live(&line);
            }
        }
    }
}

/// A response as a live line on stdout (see [`crate::live`]).
fn live(response: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}control {response}", crate::live::PREFIX);
    let _ = out.flush();
}

/// Why a policy to swap in could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read {}: {source}; give a scenario file", path.display())]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Syntax { path: std::path::PathBuf, source: toml::de::Error },
    #[error("{}: key censor: {source}", path.display())]
    Schema { path: std::path::PathBuf, source: toml::de::Error },
    #[error("{} has no [censor] table; give a scenario file", path.display())]
    NoCensor { path: std::path::PathBuf },
    #[error("{}: censor.{}: {}", path.display(), source.path, source.message)]
    Policy { path: std::path::PathBuf, source: callwall_censor::policy::PolicyError },
}

/// The compiled `[censor]` policy of a scenario file.
pub fn load_policy(
    path: &Path,
    hosts: &BTreeMap<String, Vec<Cidr>>,
) -> Result<Policy, PolicyFileError> {
    let p = || path.to_path_buf();
    let text = std::fs::read_to_string(path)
        .map_err(|source| PolicyFileError::Read { path: p(), source })?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|source| PolicyFileError::Syntax { path: p(), source })?;
    let raw: raw::Policy = match table.get("censor") {
        Some(v) => {
            v.clone().try_into().map_err(|source| PolicyFileError::Schema { path: p(), source })?
        }
        None => return Err(PolicyFileError::NoCensor { path: p() }),
    };
    callwall_scenario::compile_policy(&raw, hosts)
        .map_err(|source| PolicyFileError::Policy { path: p(), source })
}

/// Copies command lines from `input` to the censor's stdin until `input` ends or the censor's
/// stdin is taken away (the run stops the censor by dropping it). Runs on its own thread.
pub fn forward_to<R: BufRead + Send + 'static>(input: R, censor: Arc<Mutex<Option<ChildStdin>>>) {
    std::thread::spawn(move || {
        for line in input.lines() {
            let Ok(line) = line else { break };
            let mut guard = censor.lock().unwrap_or_else(|p| p.into_inner());
            let Some(stdin) = guard.as_mut() else { break };
            if stdin.write_all(line.as_bytes()).and_then(|_| stdin.write_all(b"\n")).is_err() {
                break;
            }
            let _ = stdin.flush();
        }
    });
}

/// The control changes of a decision log, in order.
pub fn read_changes(path: &Path) -> Vec<ControlEvent> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines().filter_map(callwall_censor::control_io::parse_log_line).collect()
}
