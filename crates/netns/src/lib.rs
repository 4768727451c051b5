//! callwall's sandbox and topology builder.
//!
//! What it does:
//! - [`sandbox::spawn_sandboxed`] runs a command as PID 1 of a new PID namespace, in a
//!   new empty network namespace (plus a user namespace mapping the caller to root when
//!   not root, plus an optional private mount namespace).
//! - [`Topology`] reads a topology file (`netns/*.toml`): hosts, links, addresses, routes
//!   and the censor's position, validated (addresses only in 10.0.0.0/8 and fd00::/8).
//! - [`Network::build`] turns a topology into one network namespace per host, held by
//!   file descriptors, joined by veth pairs with TX checksum/TSO/GSO/GRO offloads off,
//!   with addresses, routes and sysctls, over a hand-written rtnetlink client (no `ip`).
//! - [`Network::command`] gives a `Command` that runs inside a host's namespace with a
//!   parent-death signal.
//!
//! Guarantees:
//! - Nothing is ever created or changed in the host's network namespace: namespaces are
//!   created by `unshare` on dedicated short-lived threads and configured through sockets
//!   opened inside them; `Network::build` refuses to run from the host's initial network
//!   namespace. No link reaches the namespace of the caller.
//! - Namespaces are never bind-mounted (no `/run/netns` entries): they live exactly as long
//!   as their fds, sockets and processes, so a killed run leaves nothing behind. Run inside
//!   the sandbox, SIGKILL of the caller tears everything down through the PID namespace.
//! - `tokio` workers are never moved between namespaces: every `setns`/`unshare` happens
//!   on a thread made for it or between fork and exec.
//!
//! Not done: traffic shaping (no netem; the censor process delays and drops), bridges,
//! VLANs, policy routing, DNS, firewalling; no `/proc` remount in the sandbox.
//!
//! All `unsafe` code is in the `sys` module.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod init;
mod netns;
mod network;
pub mod sandbox;
mod sys;
pub mod topology;

pub use error::{EnvironmentProblem, NetnsError, ReplyDefect};
pub use netns::{current_inode, current_links, in_initial_netns, Netns};
pub use network::{Host, Interface, Network};
pub use sandbox::{
    check_environment, process_exists, spawn_sandboxed, Privilege, SandboxChild, SandboxOptions,
};
pub use sys::netlink::LinkInfo;
pub use topology::{default_topology, Cidr, Topology};

/// Ethtool `ETHTOOL_G*` commands accepted by [`Netns::offload`].
pub mod ethtool {
    pub use crate::sys::{ETHTOOL_GGRO, ETHTOOL_GGSO, ETHTOOL_GSG, ETHTOOL_GTSO, ETHTOOL_GTXCSUM};
}
