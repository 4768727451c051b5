//! The syscalls of the runner: a PID namespace, a process group and a parent-death signal for
//! the peer, and killing that group. The only `unsafe` of the crate.
//!
//! The process tree of one peer (contract v2, `docs/peers.md` "Containment"):
//!
//! ```text
//! harness ── S (the spawned child: the peer's process group, its exit status)
//!             └─ I  PID 1 of a new PID namespace: waits for the peer, exits with its status
//!                 └─ P  the peer's program (PID 2), and everything it starts
//! ```
//!
//! When the peer (P) exits, I exits with it; the kernel then kills every other process of the
//! namespace (a `setsid` or double-forked child included) before I's exit is reported to S, so
//! when the runner sees the peer's exit, nothing the peer started is left. The peer is not
//! PID 1 itself, so it keeps the ordinary signal semantics (`kill -9 $$` kills it; PID 1 would
//! ignore it). A killed S or I (deadline, harness death through the parent-death signals)
//! takes the namespace down the same way.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Between fork and exec, in the spawned child S: a process group of its own (so the runner
/// can kill S, I and P at once), `PR_SET_PDEATHSIG(SIGKILL)`, then the namespace and the two
/// forks of the module doc. Only P returns (and execs the peer); S and I wait and exit with
/// the peer's status (a signal is re-raised by S, so the runner sees "killed by signal N").
pub(crate) fn pre_exec_contained(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls (setpgid, prctl, getppid, unshare, pipe2, fork,
    // close, read, write, waitpid, signal, kill, _exit) on integers copied into the closure.
    let parent = unsafe { libc::getpid() };
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            if libc::unshare(libc::CLONE_NEWPID) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // I tells S the peer's raw wait status through this pipe.
            let mut fds = [0i32; 2];
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let (rd, wr) = (fds[0], fds[1]);
            let init = libc::fork();
            if init < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if init > 0 {
                // S: hold no descriptor but the pipe's read end (std's exec-error pipe must
                // close when P execs, or the harness's spawn would wait for the peer's end).
                close_all_but(rd);
                let mut status = 0i32;
                let got = read_status(rd, &mut status);
                let mut st = 0i32;
                while libc::waitpid(init, &mut st, 0) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
                if !got {
                    status = st;
                }
                exit_like(status);
            }
            // I: PID 1 of the new namespace (its parent S is outside it, so getppid() says
            // 0 here: S dying first is caught by the death signal alone).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            let peer = libc::fork();
            if peer < 0 {
                libc::_exit(1);
            }
            if peer > 0 {
                close_all_but(wr);
                let mut st = 0i32;
                while libc::waitpid(peer, &mut st, 0) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
                let bytes = st.to_ne_bytes();
                libc::write(wr, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0);
            }
            // P: the peer. Its pipe ends close on exec.
            libc::close(rd);
            libc::close(wr);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            Ok(())
        });
    }
}

/// Closes every descriptor from 3 up but `keep`.
unsafe fn close_all_but(keep: i32) {
    let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(256, 65536) as i32;
    for fd in 3..max {
        if fd != keep {
            libc::close(fd);
        }
    }
}

/// Reads I's report of the peer's wait status; false when I died without one.
unsafe fn read_status(rd: i32, status: &mut i32) -> bool {
    let mut buf = [0u8; 4];
    let mut got = 0usize;
    while got < 4 {
        let n = libc::read(rd, buf[got..].as_mut_ptr().cast(), 4 - got);
        if n > 0 {
            got += n as usize;
        } else if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        } else {
            return false;
        }
    }
    *status = i32::from_ne_bytes(buf);
    true
}

/// Ends S the way the peer ended: the same exit code, or the same signal.
unsafe fn exit_like(status: i32) -> ! {
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
    libc::_exit(1)
}

/// Sends SIGKILL to process group `pgid` (S, I, the peer and every process it started that
/// stayed in its group; the rest of its namespace dies with I). Errors (the group is already
/// gone) are ignored.
pub(crate) fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        if pgid > 1 {
            // SAFETY: kill has no memory effects; a negative pid names a process group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}
