//! `callwall`: which voice transports still connect when a censor goes after encrypted
//! calls, and how good is the call?
//!
//! This binary is the command-line front end and, through hidden subcommands, every process a
//! run starts inside its sandbox (the sandbox's PID 1, the censor, the signal server, peers).

mod apps;
mod audio_opts;
mod cli;
mod demo;
mod merge;
mod output;
mod report_cmd;
mod roles;
mod shard;
mod workload;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
