//! What runs inside a run's sandbox.
//!
//! The launcher (`callwall-launcher`) plans a run ([`RunPlan`], the one contract between the
//! processes) and starts the `__sandbox` hidden subcommand as PID 1 of new PID and network
//! namespaces (and a user namespace when not root), handing it the plan as JSON. Inside,
//! [`sandbox_main`] runs the plan in phases ([`run`]): builds the topology; starts the signal
//! server, the workload servers, the relay (coturn) and the reflector when a call needs them,
//! and the censor bridge; places the calls (built-in peers and external ones) and the
//! workloads, each process in its host's namespace ([`process`]); waits for them with hard
//! deadlines; stops the services and collects the censor's report; judges every call
//! ([`judge`]); and prints the [`result::RunResult`] as JSON on its stdout. The other hidden
//! subcommands' bodies (censor, signal server, peer, reflector) are in [`entry`] and
//! [`roles`]. When the sandbox ends, however it ends, the kernel kills every process in it and
//! frees its namespaces.
//!
//! Guarantees: never touches the host's network namespace (the sandbox has its own from its
//! first instruction, and topology building refuses to run in the initial one); every wait has
//! a deadline; a peer that crashes or hangs gives its call the verdict `error` with the reason.
//!
//! Not here: the commands, the suite of runs, reports and files (`callwall-launcher`).

pub mod audio;
pub mod bypass;
pub mod control;
pub mod entry;
pub mod external;
pub mod ice;
pub mod judge;
pub mod live;
pub mod plan;
pub mod priority;
pub mod process;
pub mod reflector;
pub mod relay;
pub mod repeat;
/// The results model; moved to `callwall-results` (this path is kept for existing callers).
pub mod result {
    pub use callwall_results::*;
}
pub mod roles;
pub mod run;
pub mod stall;
pub mod workloads;

pub use plan::{PlanOptions, RunPlan};
pub use run::sandbox_main;

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

/// Where a run keeps its scratch files (the relay's certificate, key, user database and pid
/// file). [`launch`] gives every sandbox a private mount namespace with a fresh tmpfs mounted
/// over this directory, so the files are never on the host's disk or in any directory the host
/// sees, runs never see each other's, and everything vanishes with the sandbox, even when it is
/// killed.
///
/// `/dev/shm` exists on every Linux system, so the mount point is never created on the host;
/// inside the sandbox the host's `/dev/shm` is hidden under the new tmpfs (nothing in a run
/// uses POSIX shared memory). Before writing anything, the relay checks that this directory
/// really is a different file system from the launcher's ([`scratch_is_private`]).
pub const SCRATCH_DIR: &str = "/dev/shm";

/// Environment variable through which [`launch`] tells the sandbox the device number of the
/// launcher's [`SCRATCH_DIR`], so the sandbox can check its own is a different mount.
pub const HOST_SCRATCH_DEV_ENV: &str = "CALLWALL_HOST_SCRATCH_DEV";

/// The device number of [`SCRATCH_DIR`] as this process sees it.
pub fn scratch_dev() -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(SCRATCH_DIR).map(|m| m.dev())
}

/// Whether [`SCRATCH_DIR`] is a mount of its own in this process, distinct from the launcher's
/// (whose device number [`launch`] passes in [`HOST_SCRATCH_DEV_ENV`]). `Err` says why not.
pub fn scratch_is_private() -> Result<(), HarnessError> {
    let host = std::env::var(HOST_SCRATCH_DEV_ENV).ok().and_then(|v| v.parse::<u64>().ok());
    let Some(host) = host else {
        return Err(HarnessError::Setup(format!(
            "{HOST_SCRATCH_DEV_ENV} is not set: scratch files may only be written in a sandbox \
             started by `callwall run`"
        )));
    };
    let here = scratch_dev().map_err(|e| HarnessError::io("reading the scratch directory", e))?;
    if here == host {
        return Err(HarnessError::Setup(format!(
            "{SCRATCH_DIR} is the host's, not the sandbox's private tmpfs; refusing to write \
             scratch files there"
        )));
    }
    Ok(())
}

/// Port of the signal server on the signal host.
pub const SIGNAL_PORT: u16 = 7000;
