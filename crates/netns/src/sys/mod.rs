//! Every `unsafe` block and raw system call of the crate lives here (the rest of the crate
//! is `#![deny(unsafe_code)]`).
//!
//! - [`netlink`]: the rtnetlink client.
//! - namespace calls: [`unshare`], [`setns`].
//! - ethtool ioctls on an `AF_INET` socket: [`set_offload`], [`offload`].
//! - process plumbing: [`pre_exec_enter_netns`] (for `Network::command`) and
//!   [`pre_exec_sandbox`] (for `spawn_sandboxed`), which run between fork and exec and use
//!   only async-signal-safe calls on buffers prepared before the fork.
#![allow(unsafe_code)]

pub mod netlink;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `unshare(2)` for the calling thread (for `CLONE_NEWNET`) or process.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::unshare(flags) }).map(drop)
}

/// `setns(2)` of the calling thread into the namespace `fd` refers to.
pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a live fd.
    cvt(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

/// An `AF_INET` datagram socket in the calling thread's network namespace (for ioctls).
pub fn inet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned right after the check.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fresh fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// <linux/ethtool.h>
/// Get TX checksum offload.
pub const ETHTOOL_GTXCSUM: u32 = 0x16;
/// Set TX checksum offload.
pub const ETHTOOL_STXCSUM: u32 = 0x17;
/// Get scatter-gather.
pub const ETHTOOL_GSG: u32 = 0x18;
/// Get TCP segmentation offload.
pub const ETHTOOL_GTSO: u32 = 0x1e;
/// Set TCP segmentation offload.
pub const ETHTOOL_STSO: u32 = 0x1f;
/// Get generic segmentation offload.
pub const ETHTOOL_GGSO: u32 = 0x23;
/// Set generic segmentation offload.
pub const ETHTOOL_SGSO: u32 = 0x24;
/// Get generic receive offload.
pub const ETHTOOL_GGRO: u32 = 0x2b;
/// Set generic receive offload.
pub const ETHTOOL_SGRO: u32 = 0x2c;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member of the union.
#[repr(C)]
struct IfreqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

fn ethtool(sock: BorrowedFd<'_>, ifname: &str, cmd: u32, data: u32) -> io::Result<u32> {
    if ifname.len() >= libc::IFNAMSIZ || ifname.as_bytes().contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"));
    }
    let mut value = EthtoolValue { cmd, data };
    let mut ifr = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: (&mut value as *mut EthtoolValue).cast(),
        _pad: [0; 16],
    };
    for (d, s) in ifr.name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: `ifr` and `value` outlive the call; SIOCETHTOOL reads/writes `value` only.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut ifr) })?;
    Ok(value.data)
}

/// Turns an offload (`ETHTOOL_S*`) on or off on `ifname`, in the namespace of `sock`.
pub fn set_offload(sock: BorrowedFd<'_>, ifname: &str, set_cmd: u32, on: bool) -> io::Result<()> {
    ethtool(sock, ifname, set_cmd, u32::from(on)).map(drop)
}

/// Reads an offload (`ETHTOOL_G*`) of `ifname`, in the namespace of `sock`.
pub fn offload(sock: BorrowedFd<'_>, ifname: &str, get_cmd: u32) -> io::Result<bool> {
    ethtool(sock, ifname, get_cmd, 0).map(|v| v != 0)
}

/// `kill(2)`.
pub fn kill(pid: i32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Whether a process with this pid exists (`kill(pid, 0)`; EPERM counts as existing).
pub fn pid_exists(pid: i32) -> bool {
    match kill(pid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}

/// Effective uid and gid.
pub fn ids() -> (u32, u32) {
    // SAFETY: always succeed.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Reaps every exited child without blocking; returns how many were reaped.
pub fn reap_zombies() -> usize {
    let mut n = 0;
    loop {
        let mut status = 0;
        // SAFETY: plain syscall with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return n;
        }
        n += 1;
    }
}

/// This process's pid as seen in its own PID namespace.
pub fn getpid() -> i32 {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() }
}

/// Forks a child that tries `unshare(flags)` and reports the errno (0 = success).
pub fn probe_unshare(flags: libc::c_int) -> io::Result<i32> {
    // SAFETY: the child only calls async-signal-safe functions (unshare, _exit) before
    // exiting; the parent waits for it.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            let r = libc::unshare(flags);
            let code = if r == 0 { 0 } else { *libc::__errno_location() };
            libc::_exit(code & 0xff);
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if libc::WIFEXITED(status) {
            Ok(libc::WEXITSTATUS(status))
        } else {
            Err(io::Error::other("probe child died from a signal"))
        }
    }
}

/// Arranges for `cmd` to enter the network namespace `netns` between fork and exec, and
/// to get `SIGKILL` when the spawning thread dies (checked against `parent` after arming).
pub fn pre_exec_enter_netns(cmd: &mut Command, netns: OwnedFd, parent: i32) {
    let hook = move || -> io::Result<()> {
        // SAFETY: only async-signal-safe syscalls; `netns` is alive (owned by the closure).
        unsafe {
            cvt(libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET))?;
            cvt(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    };
    // SAFETY: the hook is async-signal-safe (no allocation, no locks).
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Everything the sandbox pre-exec hook needs, prepared before the fork.
pub struct SandboxPlan {
    /// `Some((uid_map, gid_map))` to create a user namespace with these maps.
    pub user_maps: Option<(Vec<u8>, Vec<u8>)>,
    /// New mount namespace with `/` made private recursively.
    pub mount_ns: bool,
    /// Directories to cover with a fresh tmpfs (needs `mount_ns`).
    pub tmpfs: Vec<CString>,
    /// Pid of the spawning process, to check `PR_SET_PDEATHSIG` was armed in time.
    pub parent: i32,
}

unsafe fn write_all(path: &[u8], data: &[u8]) -> io::Result<()> {
    // `path` is NUL-terminated.
    let fd = cvt(libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC))?;
    let n = libc::write(fd, data.as_ptr().cast(), data.len());
    let err = io::Error::last_os_error();
    libc::close(fd);
    if n != data.len() as isize {
        return Err(err);
    }
    Ok(())
}

unsafe fn close_from(first: RawFd, last: RawFd) {
    if first > last {
        return;
    }
    if libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0) != 0 {
        for fd in first..=last.min(4096) {
            libc::close(fd);
        }
    }
}

/// Installs the hook that turns the spawned process into PID 1 of a new PID namespace,
/// in a new network namespace (and user/mount namespaces per `plan`).
///
/// Between fork and exec: arm `PR_SET_PDEATHSIG(SIGKILL)`, check the parent; unshare the
/// user namespace and write its maps; unshare PID+net(+mount); fork. The grandchild (PID 1)
/// arms its own parent-death signal, checks the intermediate is alive and returns to exec.
/// The intermediate closes every fd except a liveness pipe, waits for PID 1 and exits with
/// its status (or dies from the same signal).
pub fn pre_exec_sandbox(cmd: &mut Command, plan: SandboxPlan) {
    let hook = move || -> io::Result<()> {
        // SAFETY: this runs in the forked child, single-threaded, between fork and exec;
        // every call below is an async-signal-safe syscall on buffers allocated before the
        // fork (the closure's captures).
        unsafe {
            cvt(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            if libc::getppid() != plan.parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            if let Some((uid_map, gid_map)) = &plan.user_maps {
                cvt(libc::unshare(libc::CLONE_NEWUSER))?;
                write_all(b"/proc/self/setgroups\0", b"deny")?;
                write_all(b"/proc/self/uid_map\0", uid_map)?;
                write_all(b"/proc/self/gid_map\0", gid_map)?;
            }
            let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNET;
            if plan.mount_ns {
                flags |= libc::CLONE_NEWNS;
            }
            cvt(libc::unshare(flags))?;
            if plan.mount_ns {
                cvt(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                for dir in &plan.tmpfs {
                    cvt(libc::mount(
                        c"tmpfs".as_ptr(),
                        dir.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        c"mode=0755".as_ptr().cast(),
                    ))?;
                }
            }
            let mut pipe = [0 as RawFd; 2];
            cvt(libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC))?;
            let pid = cvt(libc::fork())?;
            if pid == 0 {
                // PID 1 of the new namespace.
                libc::close(pipe[1]);
                cvt(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
                // getppid() is 0 for a namespace's PID 1, so check the intermediate via the
                // pipe: once it is gone, no writer is left and poll reports POLLHUP.
                let mut pfd = libc::pollfd { fd: pipe[0], events: libc::POLLIN, revents: 0 };
                if libc::poll(&mut pfd, 1, 0) != 0 {
                    libc::_exit(137);
                }
                libc::close(pipe[0]);
                return Ok(());
            }
            // Intermediate: hold only the pipe's write end (so the std exec-error pipe and
            // stdio are closed and the parent sees EOF on them), wait, mirror the status.
            libc::close(pipe[0]);
            let keep = pipe[1];
            close_from(0, keep - 1);
            close_from(keep + 1, RawFd::MAX);
            let mut status = 0;
            loop {
                let r = libc::waitpid(pid, &mut status, 0);
                if r == pid {
                    break;
                }
                if *libc::__errno_location() != libc::EINTR {
                    libc::_exit(126);
                }
            }
            if libc::WIFEXITED(status) {
                libc::_exit(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                libc::signal(sig, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::kill(libc::getpid(), sig);
                libc::_exit(128 + sig);
            }
            libc::_exit(126);
        }
    };
    // SAFETY: see the hook's comment: async-signal-safe only.
    unsafe {
        cmd.pre_exec(hook);
    }
}
