//! `callwall`: which voice transports still connect when a censor goes after encrypted
//! calls, and how good is the call?
//!
//! This binary is the command-line front end and, through hidden subcommands, every process a
//! run starts inside its sandbox (the sandbox's PID 1, the censor, the signal server, peers).

mod audio_opts;
mod cli;
mod merge;
mod report_cmd;
mod roles;

// Moved to the library crates that own them (issue 10).
use callwall_apps::listing as apps;
use callwall_harness::shard;
use callwall_workload_net::role as workload;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
