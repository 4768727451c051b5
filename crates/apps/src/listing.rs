//! `callwall apps`, the `ice` line of `callwall transports`, and the check of every call's
//! `app =` against the app profiles (`apps/*.toml`, or `--app-dir`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::{AppProfile, Sourced};
use callwall_scenario::Scenario;

fn tagged<T: std::fmt::Debug>(s: &Sourced<T>, show: impl Fn(&T) -> String) -> String {
    format!("{} {}", show(&s.value), s.source)
}

/// A unit enum's serde (kebab-case) name.
fn kebab<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn ports(p: &[u16]) -> String {
    p.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lines `callwall apps` prints for one profile.
pub fn describe(p: &AppProfile) -> Vec<String> {
    let mut out = vec![format!("{:14} {}", p.name, p.summary)];
    let c = &p.call;
    out.push(format!("  models:       {}", one_line(&p.models)));
    out.push(format!("  not modelled: {}", one_line(&p.not_modelled)));
    let mut call = format!(
        "  call:         host {}; UDP/TCP ports {}; first packet {}",
        tagged(&c.host, |h| h.clone()),
        tagged(&c.ports, |p| ports(p)),
        tagged(&c.first_packet, kebab),
    );
    if let Some(r) = &c.race {
        call.push_str(&format!("; race {}", tagged(r, |b| if *b { "yes" } else { "no" }.into())));
    }
    out.push(call);
    let steps: Vec<String> = c
        .fallback
        .iter()
        .map(|s| {
            let port = s.port.map(|p| format!(":{p}")).unwrap_or_default();
            let when = s.when.map(|w| format!(" (when {})", kebab(&w))).unwrap_or_default();
            format!("{}/{}{port} {}{when} {}", s.transport, s.strategy, s.timeout, s.source)
        })
        .collect();
    out.push(format!("  fallback:     {}", steps.join(" -> ")));
    let mut msg = format!(
        "  messages:     host {}; ports {}",
        tagged(&p.messages.host, |h| h.clone()),
        tagged(&p.messages.ports, |p| ports(p))
    );
    if let Some(f) = &p.messages.fallback_ports {
        msg.push_str(&format!("; then {}", tagged(f, |p| ports(p))));
    }
    out.push(msg);
    let on = |b: &bool| if *b { "on" } else { "off" }.to_string();
    let opts: Vec<String> =
        [("force-tcp", &p.options.force_tcp), ("always-relay", &p.options.always_relay)]
            .into_iter()
            .filter_map(|(k, o)| o.as_ref().map(|o| format!("{k} {}", tagged(o, on))))
            .collect();
    if !opts.is_empty() {
        out.push(format!("  options:      {}", opts.join(", ")));
    }
    out
}

/// `callwall apps`.
pub fn list(dir: &Path) -> ExitCode {
    let profiles = match crate::load_dir(dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for p in &profiles {
        for l in describe(p) {
            println!("{l}");
        }
        println!();
    }
    println!(
        "tags: [M] measured, [R] repeated reports, [N] news, [U] unconfirmed or inferred \
         (censorship-catalog.md). A profile maps an app onto callwall's transports; the apps' \
         own protocols, encryption and codecs are not modelled."
    );
    ExitCode::SUCCESS
}

/// The `ice` line under a transport in `callwall transports`, from what the transport says of
/// its ICE agent (`VoiceTransport::ice_summary`; none for transports without ICE: no line).
pub fn ice_line(summary: Option<&str>) {
    if let Some(s) = summary {
        println!("{:8} ice: {s}", "");
    }
}

/// The call an [`AppCheckError`] is about: the scenario file, the call's line and index, and
/// the app it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRef {
    pub file: PathBuf,
    pub line: usize,
    pub call: usize,
    pub app: String,
}

/// Why a scenario's calls do not fit the app profiles ([`check_scenario`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppCheckError {
    /// A profile did not load.
    #[error(transparent)]
    Profile(#[from] crate::AppError),
    /// A call names an app no profile has (said on the call's line).
    #[error(transparent)]
    Scenario(#[from] callwall_scenario::ScenarioError),
    /// An app no profile has.
    #[error(transparent)]
    Unknown(#[from] crate::UnknownApp),
    /// The profile's hosts or steps are not in this scenario or build.
    #[error("{}:{}: key `calls[{}].app`: app {:?} does not fit this scenario: {source}", at.file.display(), at.line, at.call, at.app)]
    DoesNotFit { at: CallRef, source: Box<crate::AppError> },
    /// The call's transport is in no step of the profile (`steps` as `transport/strategy`).
    #[error("{}:{}: key `calls[{}].transport`: app {:?} has no step over {transport:?}; use one of its steps ({})", at.file.display(), at.line, at.call, at.app, steps.join(", "))]
    NoStepOver { at: CallRef, transport: String, steps: Vec<String> },
    /// The call's strategy is not a step of the profile (`step` as `transport/strategy`).
    #[error("{}:{}: key `calls[{}].strategy`: app {:?} has no step {step}; use one of its steps ({}) or auto", at.file.display(), at.line, at.call, at.app, steps.join(", "))]
    NoStep { at: CallRef, step: String, steps: Vec<String> },
}

/// Checks every call's `app` of `sc`: the profile exists and loads, its hosts are in the
/// scenario's topology, its steps are transports this build offers, and the call's own
/// transport and strategies are steps of the profile (or `auto`). Errors name the scenario
/// file, the call's line and key, or the profile file, line and key.
pub fn check_scenario(
    sc: &Scenario,
    app_dir: &Path,
    catalog: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<(), AppCheckError> {
    if sc.calls.iter().all(|c| c.app.is_none()) {
        return Ok(());
    }
    let profiles = crate::load_dir(app_dir)?;
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    sc.check_apps(&names)?;
    for (i, c) in sc.calls.iter().enumerate() {
        let Some(app) = &c.app else { continue };
        let p = crate::find(&profiles, app)?;
        let at = || CallRef { file: sc.path.clone(), line: c.line, call: i, app: app.clone() };
        p.check(catalog, |h| sc.topology.host(h).is_some())
            .map_err(|e| AppCheckError::DoesNotFit { at: at(), source: Box::new(e) })?;
        let steps: Vec<(&str, &str)> =
            p.call.fallback.iter().map(|s| (s.transport.as_str(), s.strategy.as_str())).collect();
        let listed = || steps.iter().map(|(t, s)| format!("{t}/{s}")).collect::<Vec<_>>();
        if !steps.iter().any(|(t, _)| *t == c.transport) {
            return Err(AppCheckError::NoStepOver {
                at: at(),
                transport: c.transport.clone(),
                steps: listed(),
            });
        }
        for s in &c.strategies {
            if s != "auto" && !steps.contains(&(c.transport.as_str(), s.as_str())) {
                return Err(AppCheckError::NoStep {
                    at: at(),
                    step: format!("{}/{s}", c.transport),
                    steps: listed(),
                });
            }
        }
    }
    Ok(())
}
