//! What the machine did to a call: the stalls of the run's own processes (peers, censor) and
//! the censor's kernel drops, so that a miss the machine caused is never read as the network's.
//!
//! Every process of a run that times media (each peer, the censor) runs a watch thread that
//! sleeps [`TICK_MS`] at a time and records each sleep that ended [`RECORD_MS`] or more late:
//! for that long none of the process's threads could have run on time (the machine was busy
//! elsewhere), so the process neither sent, forwarded nor stamped anything. A call whose
//! peers or censor stalled for [`SUSPECT_MS`] or longer during it, or whose run's censor lost
//! frames in the kernel, carries a [`MachineLoad`]; if such a call misses its expectation it is
//! re-placed once (the launcher re-runs its run), and if it misses again with the machine still
//! to blame it is [`inconclusive`](crate::CallResult::inconclusive), never a transport
//! regression.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The watch thread's sleep (ms).
pub const TICK_MS: u64 = 10;
/// A sleep that ends this much late (ms) or more is recorded as a stall.
pub const RECORD_MS: u64 = 50;
/// A stall this long (ms) during a call makes a miss of that call suspect: 100 ms is five
/// voice frames that were neither sent nor received on time (sent later in a burst, which a
/// policer drops), enough to move loss by more than 1 % of a 20 s call, a setup by a lost
/// handshake retransmission, or a delay figure by the stall itself.
pub const SUSPECT_MS: u64 = 100;
/// At most this many stalls are kept per process (the longest are kept when there are more).
pub const MAX_STALLS: usize = 256;

/// One stretch during which a process was not scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// When the process should have woken (UNIX ms).
    pub at_unix_ms: u64,
    /// How late it woke (ms).
    pub ms: u64,
}

impl Stall {
    /// The stall of a sleep of `tick_ms` that should have ended at `due_unix_ms` and took
    /// `slept_ms`, if it ended [`RECORD_MS`] or more late.
    pub fn of_sleep(due_unix_ms: u64, tick_ms: u64, slept_ms: u64) -> Option<Stall> {
        let late = slept_ms.saturating_sub(tick_ms);
        (late >= RECORD_MS).then_some(Stall { at_unix_ms: due_unix_ms, ms: late })
    }

    /// Whether the stall overlaps `[from, to]` (UNIX ms): it covers `[at - ms, at]`.
    pub fn overlaps(&self, from_unix_ms: u64, to_unix_ms: u64) -> bool {
        self.at_unix_ms >= from_unix_ms && self.at_unix_ms.saturating_sub(self.ms) <= to_unix_ms
    }
}

/// Keeps `stalls` within [`MAX_STALLS`], dropping the shortest.
pub fn keep_longest(stalls: &mut Vec<Stall>) {
    if stalls.len() > MAX_STALLS {
        stalls.sort_by(|a, b| b.ms.cmp(&a.ms).then(a.at_unix_ms.cmp(&b.at_unix_ms)));
        stalls.truncate(MAX_STALLS);
        stalls.sort_by_key(|s| s.at_unix_ms);
    }
}

/// The longest of `stalls` overlapping `[from, to]` (UNIX ms).
pub fn longest_in(stalls: &[Stall], from_unix_ms: u64, to_unix_ms: u64) -> Option<u64> {
    stalls.iter().filter(|s| s.overlaps(from_unix_ms, to_unix_ms)).map(|s| s.ms).max()
}

/// Which process of the call stalled longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Process {
    Caller,
    Callee,
    Censor,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Process::Caller => "the caller",
            Process::Callee => "the callee",
            Process::Censor => "the censor",
        })
    }
}

/// What the machine did during one call: set when a process of the call stalled for
/// [`SUSPECT_MS`] or more, or the run's censor lost frames in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineLoad {
    /// The longest stall of the call's peers (over their life) and of the censor (during the
    /// call), in ms; 0 when none reached [`RECORD_MS`].
    pub stall_ms: u64,
    /// Which process that stall was in (absent when `stall_ms` is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// Frames the kernel dropped at the censor's sockets over the run (the censor did not keep
    /// up); run-wide, not only this call's.
    #[serde(default)]
    pub kernel_drops: u64,
}

impl MachineLoad {
    /// The load of a call from each process's longest stall during it and the run's kernel
    /// drops; `None` when the machine did nothing that could have moved the call's figures.
    pub fn of(stalls: [(Process, Option<u64>); 3], kernel_drops: u64) -> Option<MachineLoad> {
        let (process, stall_ms) = stalls
            .iter()
            .filter_map(|(p, ms)| ms.map(|ms| (*p, ms)))
            .max_by_key(|(_, ms)| *ms)
            .map_or((None, 0), |(p, ms)| (Some(p), ms));
        (stall_ms >= SUSPECT_MS || kernel_drops > 0).then_some(MachineLoad {
            stall_ms,
            process: process.filter(|_| stall_ms > 0),
            kernel_drops,
        })
    }
}

impl fmt::Display for MachineLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let (Some(p), true) = (self.process, self.stall_ms > 0) {
            parts.push(format!("{p} was not scheduled for {} ms", self.stall_ms));
        }
        if self.kernel_drops > 0 {
            parts.push(format!("the censor's kernel dropped {} frames", self.kernel_drops));
        }
        write!(f, "the machine, not the network: {}", parts.join("; "))
    }
}

/// Whether `run` has a call that missed with the machine to blame: the launcher then re-places
/// the run once.
pub fn suspect(run: &crate::RunResult) -> bool {
    run.calls.iter().any(|c| !c.met && c.machine.is_some())
}

/// The result of a run that was re-placed once because of [`suspect`] (`run` is the folded
/// last attempt, the re-place counted in its `retries`): the re-place is recorded apart from
/// `--retries`, and every call that missed again with the machine to blame is
/// [`inconclusive`](crate::CallResult::inconclusive).
pub fn settle(run: &mut crate::RunResult) {
    run.retries = run.retries.saturating_sub(1);
    run.replaced = true;
    for c in &mut run.calls {
        if !c.met && c.machine.is_some() {
            c.inconclusive = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, met: bool, machine: Option<MachineLoad>) -> serde_json::Value {
        serde_json::json!({
            "name": name, "transport": "noise", "strategy": "udp", "requested": ["udp"],
            "verdict": if met { "connected" } else { "blocked" }, "expected": ["connected"],
            "met": met, "setup_ms": null, "loss_pct": 0.0, "jitter_ms": 0.0,
            "one_way_delay_ms": 0.0, "longest_gap_ms": 0.0, "mos": 1.0,
            "reason": {"cause": "text", "text": "r"}, "caller_addr": "10.1.0.128",
            "metrics": crate::CallMetrics::default(), "machine": machine,
        })
    }

    fn run(calls: Vec<serde_json::Value>) -> crate::RunResult {
        serde_json::from_value(serde_json::json!({
            "scenario": "s", "path": "s.toml", "seed": 1, "topology": "t",
            "started_unix_ms": 0, "wall_ms": 0, "calls": calls,
            "censor": crate::CensorResult::default(),
        }))
        .expect("a valid run")
    }

    #[test]
    fn only_a_miss_with_the_machine_to_blame_is_suspect_and_then_inconclusive() {
        let load = MachineLoad { stall_ms: 300, process: Some(Process::Caller), kernel_drops: 0 };
        let mut run = run(vec![
            call("met-under-load", true, Some(load)),
            call("missed-quietly", false, None),
            call("missed-under-load", false, Some(load)),
        ]);
        assert!(suspect(&run));
        let quiet = self::run(vec![
            call("met-under-load", true, Some(load)),
            call("missed-quietly", false, None),
        ]);
        assert!(!suspect(&quiet), "a met call under load and a quiet miss are not the machine's");
        run.retries = 1;
        settle(&mut run);
        assert_eq!((run.retries, run.replaced), (0, true));
        let inc: Vec<bool> = run.calls.iter().map(|c| c.inconclusive).collect();
        assert_eq!(inc, [false, false, true]);
        assert!(!run.passed(), "the quiet miss still fails the run");
        run.calls.remove(1);
        assert!(run.passed(), "an inconclusive call does not fail the run");
    }

    #[test]
    fn a_sleep_is_a_stall_only_when_it_ends_record_ms_late() {
        assert_eq!(Stall::of_sleep(1000, 10, 59), None);
        assert_eq!(Stall::of_sleep(1000, 10, 60), Some(Stall { at_unix_ms: 1000, ms: 50 }));
        assert_eq!(Stall::of_sleep(1000, 10, 5), None);
    }

    #[test]
    fn overlap_takes_the_stalls_whole_stretch() {
        let s = Stall { at_unix_ms: 5_000, ms: 300 }; // covers 4_700..=5_000
        assert!(s.overlaps(4_000, 4_700));
        assert!(s.overlaps(4_900, 6_000));
        assert!(!s.overlaps(4_000, 4_699));
        assert!(!s.overlaps(5_001, 6_000));
        let all = [s, Stall { at_unix_ms: 9_000, ms: 900 }];
        assert_eq!(longest_in(&all, 0, 6_000), Some(300));
        assert_eq!(longest_in(&all, 0, 10_000), Some(900));
        assert_eq!(longest_in(&all, 6_000, 8_000), None);
    }

    #[test]
    fn keeping_the_longest_drops_the_shortest_and_keeps_time_order() {
        let mut v: Vec<Stall> =
            (0..MAX_STALLS as u64 + 10).map(|i| Stall { at_unix_ms: i, ms: 50 + i % 7 }).collect();
        keep_longest(&mut v);
        assert_eq!(v.len(), MAX_STALLS);
        assert!(v.windows(2).all(|w| w[0].at_unix_ms < w[1].at_unix_ms));
        assert!(v.iter().filter(|s| s.ms == 50).count() < (MAX_STALLS + 10) / 7);
    }

    #[test]
    fn a_load_needs_a_suspect_stall_or_kernel_drops() {
        let none = [(Process::Caller, Some(99)), (Process::Callee, None), (Process::Censor, None)];
        assert_eq!(MachineLoad::of(none, 0), None);
        let l = MachineLoad::of(none, 3).expect("kernel drops are load");
        assert_eq!(l.process, Some(Process::Caller));
        let censor =
            [(Process::Caller, Some(120)), (Process::Callee, None), (Process::Censor, Some(400))];
        let l = MachineLoad::of(censor, 0).expect("a 400 ms stall is load");
        assert_eq!((l.process, l.stall_ms), (Some(Process::Censor), 400));
        assert_eq!(
            l.to_string(),
            "the machine, not the network: the censor was not scheduled for 400 ms"
        );
    }
}
