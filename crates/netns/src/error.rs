//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Messages are lowercase and say what to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// A netlink request was refused by the kernel (or the socket failed).
    #[error("netlink {op} failed: {source}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Netlink {
        /// What we asked for, e.g. `create veth caller<->censor`.
        op: String,
        /// The errno, as an `io::Error` (`raw_os_error()` gives the number).
        #[source]
        source: io::Error,
        /// The kernel's extended-ack message, when it sent one.
        detail: Option<String>,
    },
    /// A reply from the kernel could not be parsed.
    #[error("malformed netlink reply to {op}: {reason}")]
    MalformedReply {
        /// The request.
        op: String,
        /// What was wrong.
        reason: ReplyDefect,
    },
    /// A system call other than netlink failed.
    #[error("{op} failed: {source}")]
    Sys {
        /// The call and its object, e.g. `unshare(CLONE_NEWNET)`.
        op: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// Writing a sysctl inside a namespace failed.
    #[error("cannot set sysctl {path} = {value} in namespace of host {host}: {source}")]
    Sysctl {
        /// Host (namespace) name.
        host: String,
        /// Path under /proc/sys.
        path: String,
        /// Value written.
        value: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// `Network::build` was called from the host's initial network namespace.
    #[error("refusing to build a topology from the host's initial network namespace: run it inside callwall_netns::sandbox::spawn_sandboxed")]
    InHostNamespace,
    /// The environment cannot create the namespaces we need.
    #[error("cannot create namespaces: {reason}; run as root, or enable unprivileged user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1`, `sysctl -w user.max_user_namespaces=15000`, and on Ubuntu `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`)")]
    Environment {
        /// What failed.
        reason: EnvironmentProblem,
    },
    /// Reading a topology file failed.
    #[error("cannot read topology file {path}: {source}")]
    ReadTopology {
        /// The file.
        path: PathBuf,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// A topology file is malformed or invalid.
    #[error("{origin}{}: {key}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Topology {
        /// File path or origin name given to `Topology::from_str`.
        origin: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// The offending key (e.g. `links[2].a.addrs`).
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A host name that is not in the network.
    #[error("no host named {0:?} in this network; use a name from the topology file")]
    UnknownHost(String),
    /// Spawning a process failed.
    #[error("cannot spawn {program}: {source}")]
    Spawn {
        /// Program.
        program: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
}

/// What was wrong with a netlink exchange ([`NetnsError::MalformedReply`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyDefect {
    /// The kernel took fewer bytes than the request had.
    #[error("short send")]
    ShortSend,
    /// The reply did not fit the receive buffer.
    #[error("reply of {0} bytes truncated")]
    Truncated(usize),
    /// A message header's length is below the header or past the datagram.
    #[error("bad message length {0}")]
    BadLength(usize),
    /// An `NLMSG_ERROR` too short for its error code.
    #[error("short error message")]
    ShortError,
    /// An `RTM_NEWLINK` reply too short for its `ifinfomsg`.
    #[error("short ifinfomsg")]
    ShortIfinfomsg,
    /// The kernel sent nothing back.
    #[error("no reply")]
    NoReply,
    /// An interface just created is not in the dump.
    #[error("interface {0} missing after creation")]
    MissingInterface(String),
}

/// Why this process cannot create the sandbox's namespaces ([`NetnsError::Environment`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnvironmentProblem {
    /// Root, but `unshare` was refused (the errno).
    #[error("unshare(CLONE_NEWNET|CLONE_NEWPID) as root failed: {} (missing CAP_SYS_ADMIN? in a container, give it that capability)", io::Error::from_raw_os_error(*.0))]
    RootUnshare(i32),
    /// Not root, and a sysctl forbids user namespaces (which one, as `name is 0`).
    #[error("not root and {0}")]
    UserNamespacesOff(&'static str),
    /// Not root, and `unshare(CLONE_NEWUSER)` was refused (the errno).
    #[error("not root and unshare(CLONE_NEWUSER) failed: {}", io::Error::from_raw_os_error(*.0))]
    UserUnshare(i32),
    /// The probe process could not be forked.
    #[error("cannot fork a probe process: {0}")]
    Fork(std::sync::Arc<io::Error>),
}

impl NetnsError {
    pub(crate) fn sys(op: impl Into<String>, source: io::Error) -> Self {
        NetnsError::Sys { op: op.into(), source }
    }

    /// The errno behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NetnsError::Netlink { source, .. }
            | NetnsError::Sys { source, .. }
            | NetnsError::Sysctl { source, .. }
            | NetnsError::ReadTopology { source, .. }
            | NetnsError::Spawn { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
