//! The launcher: everything `callwall` does on the caller's side of the process boundary.
//!
//! - the commands: [`run`] (plan the matrix, run the sandboxes, write the reports),
//!   [`merge`], [`report`] and `diff`, [`files`] (`check`, `list`), [`demo`], and the listings
//!   of transports and app profiles ([`listing`]);
//! - the suite ([`suite`]): several sandboxes at once, `--retries`, `--shard` ([`shard`]),
//!   progress on the terminal ([`progress`]);
//! - [`launch`]: start one sandbox (the `__sandbox` hidden subcommand, which runs
//!   `callwall_harness::sandbox_main`), wait for it with a deadline and Ctrl-C, read its
//!   result. The [`callwall_harness::RunPlan`] is the one thing handed across;
//! - [`output`]: the one output path (load, table, every format, files, exit codes).
//!
//! Argument groups are clap derives here ([`args`], and each command's own struct); the binary
//! only wires subcommands to these functions. This crate is the only one that depends on
//! `callwall-report`, `callwall-demo-ui` and `callwall-apps` (checked by a test reading
//! `cargo metadata`).
//!
//! Not here: anything that runs inside a sandbox (services, the censor bridge, peers, judging:
//! `callwall-harness`).

pub mod args;
pub mod demo;
pub mod error;
pub mod files;
pub mod launch;
pub mod listing;
pub mod merge;
pub mod output;
pub mod preflight;
pub mod progress;
pub mod report;
pub mod run;
pub mod shard;
pub mod suite;

pub use args::{AudioArgs, Dirs, Transports};
pub use demo::DemoArgs;
pub use error::CommandError;
pub use merge::MergeArgs;
pub use output::OutputArgs;
pub use report::{DiffArgs, ReportArgs};
pub use run::RunArgs;

/// The commit this build is from (`git describe --always --tags`, `unknown` outside a git
/// checkout; see `build.rs`).
pub const COMMIT: &str = env!("CALLWALL_COMMIT");

/// `callwall --version` and every results document's `callwall_version`: the package version
/// and the commit, `0.1.0 (4ab9477ba7a4)`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CALLWALL_COMMIT"), ")");
