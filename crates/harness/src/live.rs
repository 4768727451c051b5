//! Live lines: what the processes of a run say while it goes on.
//!
//! A peer prints `live second {json}` each second of its call (see `callwall_transport::live`)
//! and the censor prints `live control {json}` for each control response. Inside the sandbox
//! every such line is passed on to the sandbox's stdout as it comes ([`split_output`]); the
//! launcher hands them to its `on_live` callback ([`crate::launch_with`]) and keeps the last
//! JSON line as the run's result, as before. Lines are whole: each is written with one call
//! while holding stdout's lock.

use std::io::{BufRead, BufReader, Read, Write};

/// The prefix of a live line.
pub const PREFIX: &str = "live ";

/// Reads a child's output to its end, passing live lines on to this process's stdout at once
/// and returning every other line (joined with newlines).
pub fn split_output<R: Read>(r: R) -> String {
    let mut rest = String::new();
    for line in BufReader::new(r).lines() {
        let Ok(line) = line else { break };
        if line.starts_with(PREFIX) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        } else {
            rest.push_str(&line);
            rest.push('\n');
        }
    }
    rest
}
