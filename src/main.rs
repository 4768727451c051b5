//! `callwall`: which voice transports still connect when a censor goes after encrypted
//! calls, and how good is the call?
//!
//! This binary is wiring only: the command line ([`cli`]) hands each command to the crate that
//! does it (`callwall-launcher` for what runs on the caller's side, `callwall-harness` for the
//! hidden subcommands that are the processes of a run inside its sandbox: the sandbox's PID 1,
//! the censor, the signal server, peers; `callwall-offline` for captures), and [`roles`]
//! registers the transports this build offers.

mod cli;
mod roles;

use callwall_workload_net::role as workload;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
