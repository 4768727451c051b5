//! Why a command could not start or go on: bad input or an unusable environment, every one
//! exit 2. The text of each is made here, at the edge; callers match on the variants.

use std::path::PathBuf;

/// An input or environment error of a launcher command (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot read scenario directory {}: {source}", dir.display())]
    ReadScenarioDir { dir: PathBuf, source: std::io::Error },
    #[error("no scenario files (*.toml) in {}", dir.display())]
    NoScenarioFiles { dir: PathBuf },
    #[error("{0}; run from the repository root or pass --scenario-dir")]
    DefaultScenarioDir(Box<CommandError>),
    #[error(transparent)]
    Scenario(#[from] callwall_scenario::ScenarioError),
    #[error(transparent)]
    AppProfile(#[from] callwall_apps::listing::AppCheckError),
    #[error(transparent)]
    Environment(#[from] callwall_netns::NetnsError),
    #[error(transparent)]
    Harness(#[from] callwall_harness::HarnessError),
    #[error(transparent)]
    Audio(#[from] callwall_harness::audio::AudioError),
    #[error("unknown transport {name:?}; use one of {known}")]
    UnknownTransport { name: String, known: String },
    #[error("no scenario left to run after --filter/--transport")]
    NothingToRun,
    #[error("--repeat takes 1 to 100")]
    Repeat,
    #[error("--retries takes 0 to 10")]
    Retries,
    #[error("cannot find the callwall executable: {0}")]
    Executable(std::io::Error),
    #[error("--control steers one run, but {runs} scenario(s) x {repeat} repeat(s) were given; name one scenario file and drop --repeat")]
    ControlNeedsOneRun { runs: usize, repeat: u32 },
    #[error("cannot open the control file {}: {source}", path.display())]
    ControlFile { path: PathBuf, source: std::io::Error },
    #[error("cannot create output directory {}: {source}", dir.display())]
    OutputDir { dir: PathBuf, source: std::io::Error },
    #[error("cannot read {}: {source}", path.display())]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Toml { path: PathBuf, source: toml::de::Error },
    #[error("cannot write {}: {source}", path.display())]
    WriteFile { path: PathBuf, source: std::io::Error },
    #[error("--calls: {0:?} is not TRANSPORT/STRATEGY (e.g. webrtc/turn-tls)")]
    CallSyntax(String),
    #[error("{} has no [[calls]]; give --calls", path.display())]
    NoCalls { path: PathBuf },
    #[error("the demo shows 1 to {max} calls, {} has {calls}; choose them with --calls", path.display())]
    DemoCallCount { path: PathBuf, calls: usize, max: usize },
    #[error("cannot open the demo's control channel: {0}")]
    ControlChannel(std::io::Error),
    #[error("missing capabilities {missing}: a run needs CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_NET_RAW; {hint}")]
    Capabilities { missing: String, hint: &'static str },
    #[error("{flag} {}: {why}", path.display())]
    OutputPath { flag: &'static str, path: PathBuf, why: String },
    #[error("scenario name {name:?} is used by both {} and {}: each scenario needs its own name (its output directory and results are keyed by it); rename one", first.display(), second.display())]
    DuplicateName { name: String, first: PathBuf, second: PathBuf },
    #[error("the terminal view failed: {0}")]
    Terminal(std::io::Error),
}
