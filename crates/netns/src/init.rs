//! Helpers for code running as PID 1 of a sandbox.
//!
//! PID 1 of a PID namespace inherits every orphan of the namespace, so it should reap
//! zombies now and then ([`reap_zombies`]). It also ignores every signal it has no
//! handler for (even SIGTERM and SIGINT sent from inside the namespace); SIGKILL from the
//! parent namespace still kills it, and with it the whole namespace.

use crate::sys;

/// Reaps every exited child without blocking; returns how many were reaped.
///
/// Note it reaps *any* child, including ones a `std::process::Child` still wants to wait
/// for (whose `wait` would then fail with ECHILD): call it when no such child is pending,
/// or wait for your own children first.
pub fn reap_zombies() -> usize {
    sys::reap_zombies()
}

/// Whether this process is PID 1 of its PID namespace.
pub fn is_pid1() -> bool {
    sys::getpid() == 1
}
