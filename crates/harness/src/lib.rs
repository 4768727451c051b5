//! Runs one callwall scenario end to end.
//!
//! [`launch`] (in the caller's process) starts a sandbox: a child process that is PID 1 of
//! new PID and network namespaces (and a user namespace when not root). Inside it,
//! [`sandbox_main`] builds the topology, starts the signal server, the relay (coturn) when a
//! call needs one, the censor bridge and the call peers, each in its host's namespace; waits
//! for the calls with hard deadlines; collects the peers' and the censor's reports; computes
//! verdicts; and prints the [`result::RunResult`] as JSON on its stdout. When the sandbox
//! ends, however it ends, the kernel kills every process in it and frees its namespaces.
//!
//! Guarantees: never touches the host's network namespace (the sandbox has its own from its
//! first instruction, and topology building refuses to run in the initial one); every wait has
//! a deadline; a peer that crashes or hangs gives its call the verdict `error` with the reason.

pub mod outer;
pub mod relay;
/// The results model; moved to `callwall-results` (this path is kept for existing callers).
pub mod result {
    pub use callwall_results::*;
}
pub mod roles;
pub mod run;

pub use outer::{launch, LaunchOptions};
pub use run::{sandbox_main, RunArgs};

/// Why a run (not a call) failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}")]
    Setup(String),
    #[error("i/o error while {context}: {source}")]
    Io { context: &'static str, source: std::io::Error },
    #[error("{0}")]
    Environment(String),
    #[error("the run did not finish within {0:?} and was killed")]
    Timeout(std::time::Duration),
    #[error("interrupted")]
    Interrupted,
}

impl HarnessError {
    /// The kind recorded in the results (it decides the exit code).
    pub fn kind(&self) -> result::RunErrorKind {
        use result::RunErrorKind as K;
        match self {
            HarnessError::Setup(_) => K::Setup,
            HarnessError::Io { .. } => K::Internal,
            HarnessError::Environment(_) => K::Environment,
            HarnessError::Timeout(_) => K::Timeout,
            HarnessError::Interrupted => K::Interrupted,
        }
    }

    /// This error as recorded in the results.
    pub fn to_run_error(&self) -> result::RunError {
        result::RunError::new(self.kind(), self.to_string())
    }

    pub fn io(context: &'static str, source: std::io::Error) -> Self {
        HarnessError::Io { context, source }
    }
}

/// Where a run keeps its scratch files (the relay's certificate and key). Each sandbox mounts
/// a private tmpfs here in its own mount namespace, so the files are never on the host's
/// disk, runs never see each other's, and everything vanishes with the sandbox, even when it
/// is killed. On the host this stays an empty directory.
pub const SCRATCH_DIR: &str = "/tmp/callwall-scratch";

/// Port of the signal server on the signal host.
pub const SIGNAL_PORT: u16 = 7000;
