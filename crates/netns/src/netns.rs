//! One network namespace, held by a file descriptor (never bind-mounted).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::error::NetnsError;
use crate::sys;
use crate::sys::netlink::NetlinkSocket;

/// A network namespace held open by its fd, with a netlink socket and an `AF_INET` socket
/// (for ethtool ioctls) that were created inside it.
///
/// The namespace lives while this value (or a process inside it, or a dup of its fd)
/// lives; dropping it closes the fd and both sockets, after which the kernel destroys the
/// namespace and every interface in it.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    inode: u64,
    pub(crate) netlink: NetlinkSocket,
    pub(crate) inet: OwnedFd,
}

impl Netns {
    /// Creates a new, empty network namespace (only `lo`, down) on a short-lived thread.
    pub fn new() -> Result<Self, NetnsError> {
        Self::create_with(|_| Ok(()))
    }

    /// Creates a namespace on a dedicated short-lived thread and runs `setup` on that same
    /// thread, which is inside the new namespace (e.g. to write sysctls), then lets the
    /// thread exit. Never runs on the caller's thread, so the caller's namespace is untouched.
    pub fn create_with<F>(setup: F) -> Result<Self, NetnsError>
    where
        F: FnOnce(&mut Netns) -> Result<(), NetnsError> + Send,
    {
        std::thread::scope(|s| {
            s.spawn(|| {
                Self::create_on_this_thread().and_then(|mut ns| {
                    setup(&mut ns)?;
                    Ok(ns)
                })
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Moves the calling thread into a new namespace. Only for threads made for it.
    pub(crate) fn create_on_this_thread() -> Result<Self, NetnsError> {
        sys::unshare(libc::CLONE_NEWNET)
            .map_err(|e| NetnsError::sys("unshare(CLONE_NEWNET)", e))?;
        let file = File::open("/proc/thread-self/ns/net")
            .map_err(|e| NetnsError::sys("open /proc/thread-self/ns/net", e))?;
        let inode =
            file.metadata().map_err(|e| NetnsError::sys("stat /proc/thread-self/ns/net", e))?.ino();
        let netlink = NetlinkSocket::open()?;
        let inet = sys::inet_socket().map_err(|e| NetnsError::sys("socket(AF_INET)", e))?;
        Ok(Self { fd: OwnedFd::from(file), inode, netlink, inet })
    }

    /// The namespace's inode number (what `/proc/<pid>/ns/net` points to, `net:[inode]`).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// A duplicate of the namespace fd (keeps the namespace alive while it is open).
    pub fn try_clone_fd(&self) -> Result<OwnedFd, NetnsError> {
        self.fd.try_clone().map_err(|e| NetnsError::sys("dup namespace fd", e))
    }

    /// Runs `f` on a new short-lived thread that has entered this namespace, and returns
    /// its result. A panic in `f` is propagated.
    pub fn run<F, R>(&self, f: F) -> Result<R, NetnsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|s| {
            s.spawn(|| {
                sys::setns(self.fd.as_fd(), libc::CLONE_NEWNET)
                    .map_err(|e| NetnsError::sys("setns(CLONE_NEWNET)", e))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Reads an offload flag (`sys::ETHTOOL_G*`) of an interface in this namespace.
    pub fn offload(&self, ifname: &str, get_cmd: u32) -> Result<bool, NetnsError> {
        sys::offload(self.inet.as_fd(), ifname, get_cmd)
            .map_err(|e| NetnsError::sys(format!("ethtool get {get_cmd:#x} on {ifname}"), e))
    }

    /// One link of this namespace by name (`RTM_GETLINK`): index, MAC, flags.
    pub fn link_by_name(&mut self, name: &str) -> Result<sys::netlink::LinkInfo, NetnsError> {
        self.netlink.link_by_name(name)
    }

    /// Deletes one link of this namespace by index (`RTM_DELLINK`; a veth takes its peer).
    pub fn delete_link(&mut self, ifindex: u32) -> Result<(), NetnsError> {
        let mut b = sys::netlink::Batch::new();
        b.delete_link(ifindex);
        self.netlink.execute(b)
    }

    /// The links in this namespace, via `RTM_GETLINK`.
    pub fn links(&mut self) -> Result<Vec<sys::netlink::LinkInfo>, NetnsError> {
        self.netlink.links()
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Inode of the calling thread's network namespace.
pub fn current_inode() -> Result<u64, NetnsError> {
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .map_err(|e| NetnsError::sys("stat /proc/thread-self/ns/net", e))
}

/// Environment variable through which [`crate::sandbox::spawn_sandboxed`] tells the sandbox
/// the inode of the network namespace it was launched from (the host's, normally).
pub const OUTER_NETNS_ENV: &str = "CALLWALL_OUTER_NETNS_INODE";

/// Whether the calling thread is in the host's initial network namespace, or in the
/// namespace the sandbox was launched from.
///
/// Compares `/proc/thread-self/ns/net` with `/proc/1/ns/net` (with the host's `/proc`,
/// `/proc/1` is the host's init even inside a new PID namespace) and with the launcher's
/// namespace passed in [`OUTER_NETNS_ENV`]. Some machines hide init's namespaces even from
/// root; then only the launcher's inode is compared, and with neither available the answer
/// errs on the safe side (`true`, unless we are in a non-initial user namespace, where the
/// host's namespace cannot be changed anyway).
pub fn in_initial_netns() -> Result<bool, NetnsError> {
    let me = current_inode()?;
    if let Some(outer) = std::env::var(OUTER_NETNS_ENV).ok().and_then(|v| v.parse::<u64>().ok()) {
        if outer == me {
            return Ok(true);
        }
    }
    match std::fs::metadata("/proc/1/ns/net") {
        Ok(m) => Ok(m.ino() == me),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            if std::env::var(OUTER_NETNS_ENV).is_ok() {
                return Ok(false);
            }
            Ok(in_initial_userns().unwrap_or(true))
        }
        Err(e) => Err(NetnsError::sys("stat /proc/1/ns/net", e)),
    }
}

fn in_initial_userns() -> Option<bool> {
    let map = std::fs::read_to_string("/proc/self/uid_map").ok()?;
    let fields: Vec<&str> = map.split_whitespace().collect();
    Some(fields == ["0", "0", "4294967295"])
}

/// The links of the calling thread's network namespace (a read-only `RTM_GETLINK` dump,
/// e.g. to check that the host namespace did not change).
pub fn current_links() -> Result<Vec<sys::netlink::LinkInfo>, NetnsError> {
    sys::netlink::NetlinkSocket::open()?.links()
}
