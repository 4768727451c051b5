//! Running a command as PID 1 of a fresh sandbox: new PID namespace, new empty network
//! namespace, a user namespace mapping the caller to root when the caller is not root, and
//! optionally a private mount namespace.
//!
//! How it works: in the forked child, before exec, the hook arms
//! `PR_SET_PDEATHSIG(SIGKILL)`, unshares the namespaces (writing `setgroups`, `uid_map`,
//! `gid_map` for a user namespace), and forks once more. The grandchild is PID 1 of the
//! new PID namespace and execs the program; the intermediate process (the one
//! [`SandboxChild::id`] names) waits for it and exits with its status. Teardown is by
//! construction: when the caller dies (even by SIGKILL) the intermediate gets SIGKILL,
//! PID 1 then gets SIGKILL, the kernel kills every process of the PID namespace, all
//! namespace fds close, and the namespaces and their veths vanish.
//!
//! Not done: no new `/proc` is mounted (so `/proc/1` is still the host's init, which
//! [`crate::Network::build`] relies on for its safety check), no seccomp, no cgroups, no
//! filesystem isolation beyond the optional private mount namespace.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output};
use std::sync::OnceLock;

use crate::error::{EnvironmentProblem, NetnsError};
use crate::sys;

/// How we can create namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// We are root: no user namespace needed.
    Root,
    /// Not root, but unprivileged user namespaces work: the sandbox maps us to root.
    UserNamespaces,
}

/// Options of [`spawn_sandboxed`].
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Give the sandbox a private mount namespace (`/` made private recursively), so that
    /// mounts made inside never reach the host.
    pub private_mounts: bool,
    /// Directories to cover with a fresh tmpfs inside the private mount namespace (e.g.
    /// `/run`, so `ip netns add` files stay inside). Requires `private_mounts`.
    pub tmpfs: Vec<PathBuf>,
}

impl SandboxOptions {
    /// Private mount namespace with a fresh tmpfs on each of `dirs`.
    pub fn private_mounts_with_tmpfs<I, P>(dirs: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        Self { private_mounts: true, tmpfs: dirs.into_iter().map(Into::into).collect() }
    }
}

/// Tells whether this process can create the sandbox's namespaces, and how.
///
/// As root: probes `unshare(CLONE_NEWNET|CLONE_NEWPID)` in a forked child. Otherwise:
/// checks the user-namespace sysctls and probes `unshare(CLONE_NEWUSER|...)`. The result
/// is cached for the life of the process.
pub fn check_environment() -> Result<Privilege, NetnsError> {
    static CACHE: OnceLock<Result<Privilege, EnvironmentProblem>> = OnceLock::new();
    CACHE
        .get_or_init(probe_environment)
        .clone()
        .map_err(|reason| NetnsError::Environment { reason })
}

fn probe_environment() -> Result<Privilege, EnvironmentProblem> {
    let (uid, _) = sys::ids();
    let base = libc::CLONE_NEWNET | libc::CLONE_NEWPID;
    if uid == 0 {
        return match sys::probe_unshare(base) {
            Ok(0) => Ok(Privilege::Root),
            Ok(errno) => Err(EnvironmentProblem::RootUnshare(errno)),
            Err(e) => Err(EnvironmentProblem::Fork(e.into())),
        };
    }
    for (path, hint) in [
        ("/proc/sys/kernel/unprivileged_userns_clone", "kernel.unprivileged_userns_clone is 0"),
        ("/proc/sys/user/max_user_namespaces", "user.max_user_namespaces is 0"),
    ] {
        if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "0") {
            return Err(EnvironmentProblem::UserNamespacesOff(hint));
        }
    }
    match sys::probe_unshare(base | libc::CLONE_NEWUSER) {
        Ok(0) => Ok(Privilege::UserNamespaces),
        Ok(errno) => Err(EnvironmentProblem::UserUnshare(errno)),
        Err(e) => Err(EnvironmentProblem::Fork(e.into())),
    }
}

/// A sandboxed process; behaves like [`std::process::Child`].
///
/// [`kill`](Self::kill) (and dropping it without having waited) kills the whole sandbox.
#[derive(Debug)]
pub struct SandboxChild {
    /// `None` only after `wait_with_output` moved it out.
    child: Option<Child>,
    reaped: bool,
    /// The child's stdin, when piped.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, when piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, when piped.
    pub stderr: Option<ChildStderr>,
}

fn gone() -> io::Error {
    io::Error::other("sandbox child already consumed")
}

impl SandboxChild {
    fn child(&mut self) -> io::Result<&mut Child> {
        self.child.as_mut().ok_or_else(gone)
    }

    /// Pid (in the caller's PID namespace) of the process that holds the sandbox: killing
    /// it kills the sandbox. PID 1 inside is its only child.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the whole sandbox (SIGKILL to the holder; PID 1 follows by its parent-death
    /// signal, then the kernel kills the rest of the PID namespace).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        self.child()?.kill()
    }

    /// Waits for PID 1 to exit (then every other process of the sandbox is gone too) and
    /// returns its status. Closes stdin first, as `Child::wait` does.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let s = self.child()?.wait()?;
        self.reaped = true;
        Ok(s)
    }

    /// Non-blocking [`wait`](Self::wait).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let s = self.child()?.try_wait()?;
        if s.is_some() {
            self.reaped = true;
        }
        Ok(s)
    }

    /// Collects stdout/stderr (when piped) and waits, like `Child::wait_with_output`.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        let mut child = self.child.take().ok_or_else(gone)?;
        child.stdin = self.stdin.take();
        child.stdout = self.stdout.take();
        child.stderr = self.stderr.take();
        self.reaped = true;
        child.wait_with_output()
    }
}

impl Drop for SandboxChild {
    fn drop(&mut self) {
        if !self.reaped {
            if let Some(c) = self.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Spawns `cmd` as PID 1 of a new sandbox (see the module docs).
///
/// stdio is as configured on `cmd`. The sandbox gets `PR_SET_PDEATHSIG(SIGKILL)` tied to
/// the *calling thread*: call this from a thread that lives as long as the sandbox should
/// (the main thread, or a dedicated one; not a pooled blocking thread that may retire).
pub fn spawn_sandboxed(mut cmd: Command, opts: SandboxOptions) -> Result<SandboxChild, NetnsError> {
    let privilege = check_environment()?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    if !opts.tmpfs.is_empty() && !opts.private_mounts {
        return Err(NetnsError::Spawn {
            program,
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "tmpfs directories need a private mount namespace; set private_mounts",
            ),
        });
    }
    let user_maps = match privilege {
        Privilege::Root => None,
        Privilege::UserNamespaces => {
            let (uid, gid) = sys::ids();
            Some((format!("0 {uid} 1\n").into_bytes(), format!("0 {gid} 1\n").into_bytes()))
        }
    };
    let mut tmpfs = Vec::new();
    for d in &opts.tmpfs {
        tmpfs.push(CString::new(d.as_os_str().as_bytes()).map_err(|_| NetnsError::Spawn {
            program: program.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "tmpfs path contains a NUL byte"),
        })?);
    }
    // Tell the sandbox which namespace it must never build in (see `in_initial_netns`).
    cmd.env(crate::netns::OUTER_NETNS_ENV, crate::netns::current_inode()?.to_string());
    sys::pre_exec_sandbox(
        &mut cmd,
        sys::SandboxPlan { user_maps, mount_ns: opts.private_mounts, tmpfs, parent: sys::getpid() },
    );
    let mut child = cmd.spawn().map_err(|source| NetnsError::Spawn { program, source })?;
    Ok(SandboxChild {
        stdin: child.stdin.take(),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        child: Some(child),
        reaped: false,
    })
}

/// Whether a process with this pid (in the caller's PID namespace) exists, zombies
/// included.
pub fn process_exists(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(sys::pid_exists)
}
