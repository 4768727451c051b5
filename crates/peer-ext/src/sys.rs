//! The syscalls of the runner: a parent-death signal and a process group for the child, and
//! killing that group. The only `unsafe` of the crate.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Between fork and exec: put the child in a process group of its own (so the whole tree a
/// peer starts, e.g. a browser's helpers, can be killed at once) and arm
/// `PR_SET_PDEATHSIG(SIGKILL)`, then exit if the parent already died.
pub(crate) fn pre_exec_own_group_and_pdeathsig(cmd: &mut Command) {
    // SAFETY: setpgid, prctl, getppid and _exit are async-signal-safe; the closure touches
    // no memory of the parent beyond the copied `parent` integer.
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
            Ok(())
        });
    }
}

/// Sends SIGKILL to process group `pgid` (the peer and every process it started that stayed
/// in its group). Errors (the group is already gone) are ignored.
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
