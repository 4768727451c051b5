//! The run's processes ahead of the machine's other work.
//!
//! A run stands for a network and two phones: the censor's packet loop, the peers' voice
//! clocks and coturn each have a CPU of their own in the world they model. On a shared machine
//! (CI runners, a developer's laptop compiling beside it) they compete with everything else.
//! Measured here with other engineers' builds holding the load average at 11-20 on 2 cores,
//! calls over TCP were rated `degraded` by 1.1-1.6 s gaps in both directions at once, and
//! voice clocks fell behind by hundreds of milliseconds: scheduling, not the network
//! (RELIABILITY.md, "CPU load").
//!
//! So PID 1 of a run lowers its nice value to [`RUN_NICE`] before it starts anything; every
//! process and thread of the run inherits it. CFS then gives each of them about nine times the
//! share of a process at nice 0. Lowering a nice value needs `CAP_SYS_NICE` in the initial user
//! namespace: an unprivileged run (user namespace) keeps its priority and says so in the
//! debug log. Real-time classes (`SCHED_FIFO`) are not used: a busy loop there could starve the
//! machine.

/// The nice value of a run's processes (0 is the default, -20 the highest priority).
pub const RUN_NICE: i32 = -10;
/// Overrides [`RUN_NICE`] (an integer from -20 to 19; `0` keeps the default priority, for
/// a machine where the run must not take precedence, or to measure what it changes).
pub const RUN_NICE_ENV: &str = "CALLWALL_RUN_NICE";

/// The nice value a run asks for: [`RUN_NICE_ENV`] when it holds a valid nice value, else
/// [`RUN_NICE`].
pub fn run_nice() -> i32 {
    std::env::var(RUN_NICE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|n| (-20..=19).contains(n))
        .unwrap_or(RUN_NICE)
}

/// Sets the calling thread's nice value to [`run_nice`] (inherited by the threads and
/// processes it starts afterwards). Returns the nice value in force afterwards, or the error
/// when it could not be changed (unprivileged).
pub fn raise_run_priority() -> Result<i32, std::io::Error> {
    // SAFETY: setpriority/getpriority take plain integers and touch no memory of ours.
    // `PRIO_PROCESS` with who = 0 is the calling thread on Linux.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, run_nice()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(current_nice())
}

/// The calling thread's nice value.
pub fn current_nice() -> i32 {
    // SAFETY: as above. getpriority may return -1 legitimately; nice values are all valid.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nice_value_is_the_default_or_a_valid_override() {
        // One test touches the variable, so parallel tests never see it half-set.
        std::env::remove_var(RUN_NICE_ENV);
        assert_eq!(run_nice(), RUN_NICE);
        for (v, want) in [("0", 0), (" -5 ", -5), ("19", 19), ("-21", RUN_NICE), ("x", RUN_NICE)] {
            std::env::set_var(RUN_NICE_ENV, v);
            assert_eq!(run_nice(), want, "{v:?}");
        }
        std::env::remove_var(RUN_NICE_ENV);
    }
}
