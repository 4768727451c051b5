//! Judging the calls of a run once they ended: each built-in call from its two peers' reports
//! ([`callwall_transport::metrics::analyze`]: verdict, quality figures, MOS), each external
//! call from its peers' reports or the censor's view of the network
//! ([`crate::external::call_result`]); every call gets the censor rule that hit its caller's
//! address hardest, and what it was expected to do.

use std::net::IpAddr;

use callwall_scenario::Call;
use callwall_transport::metrics::{analyze, Thresholds};
use callwall_transport::peer::PeerReport;
use callwall_transport::Verdict;

use crate::external::NetworkView;
use crate::result::machine::{self, MachineLoad, Process};
use crate::result::{CallCpu, CallResult, CensorResult};

/// What the calls left when they ended (the run's wait phase): what is judged.
pub(crate) struct Finished {
    /// Built-in calls: name, index in the plan's calls, caller address, both peers' reports.
    pub builtin: Vec<(String, usize, IpAddr, PeerReport, PeerReport)>,
    /// External calls: name, index, caller address, what their peers did.
    pub external: Vec<(String, usize, IpAddr, crate::external::ExternalFinished)>,
}

/// Every call's result, in placement order (built-in calls, then external ones), and each
/// built-in copy's verdict by its call's index (for the share expectations of repeated
/// calls). `start_at` is the calls' common start (unix ns).
pub(crate) fn call_results(
    finished: Finished,
    calls: &[&Call],
    censor: &CensorResult,
    start_at: u64,
    view: &NetworkView,
) -> (Vec<CallResult>, Vec<(usize, Verdict)>) {
    let th = Thresholds::default();
    let mut results = Vec::new();
    let mut verdicts_of_call = Vec::new();
    for (name, ci, caller_addr, caller, callee) in finished.builtin {
        let r = builtin(name, calls[ci], caller_addr, &caller, &callee, censor, start_at, &th);
        verdicts_of_call.push((ci, r.verdict));
        results.push(r);
    }
    for (name, ci, addr, done) in &finished.external {
        let rule = censor.deciding_rule(*addr);
        results.push(crate::external::call_result(
            name.clone(),
            calls[*ci],
            *addr,
            rule,
            done,
            Some(view),
        ));
    }
    (results, verdicts_of_call)
}

/// One built-in call from its peers' reports.
#[allow(clippy::too_many_arguments)]
fn builtin(
    name: String,
    call: &Call,
    caller_addr: IpAddr,
    caller: &PeerReport,
    callee: &PeerReport,
    censor: &CensorResult,
    start_at: u64,
    th: &Thresholds,
) -> CallResult {
    let metrics = analyze(caller, callee, th);
    let rule = censor.deciding_rule(caller_addr);
    let verdict = metrics.verdict;
    let strategy = metrics.strategy.clone().unwrap_or_else(|| call.strategies.join(","));
    let not_connected = verdict != Verdict::Connected;
    let reason = crate::result::Reason {
        cause: metrics.reason.clone(),
        rule: rule.clone().filter(|_| not_connected),
        overload: censor.bridge.overload().filter(|_| not_connected),
    };
    CallResult {
        name,
        transport: call.transport.clone(),
        strategy,
        requested: call.strategies.clone(),
        verdict,
        expected: call.expect.iter().copied().collect(),
        met: call.expect.contains(&verdict),
        setup_ms: metrics.setup_ms,
        loss_pct: metrics.loss_pct,
        jitter_ms: Some(metrics.jitter_ms),
        one_way_delay_ms: Some(metrics.one_way_delay_ms),
        longest_gap_ms: metrics.longest_gap_ms,
        mos: Some(metrics.mos),
        rule,
        reason,
        caller_addr,
        cpu: cpu(caller, callee, start_at),
        metrics,
        flaky: false,
        attempts: Vec::new(),
        ice: caller.ice.as_ref().map(crate::ice::call_ice),
        external: None,
        bypass: None,
        audio: crate::audio::join(caller, callee),
        app: call.app.clone(),
        machine: machine_load(caller, callee, censor, start_at),
        inconclusive: false,
    }
}

/// What the machine did to a built-in call: its peers' stalls over their life, the censor's
/// during the call (from the common start to the last peer's end), the run's kernel drops.
fn machine_load(
    caller: &PeerReport,
    callee: &PeerReport,
    censor: &CensorResult,
    start_at: u64,
) -> Option<MachineLoad> {
    let longest = |p: &PeerReport| p.stalls.iter().map(|s| s.ms).max();
    let end_ns = [caller, callee]
        .iter()
        .map(|p| p.media_end_unix_ns.max(p.recv_end_unix_ns).max(p.dial_start_unix_ns))
        .max()
        .unwrap_or(start_at)
        .max(start_at);
    let censor_ms = machine::longest_in(&censor.stalls, start_at / 1_000_000, end_ns / 1_000_000);
    MachineLoad::of(
        [
            (Process::Caller, longest(caller)),
            (Process::Callee, longest(callee)),
            (Process::Censor, censor_ms),
        ],
        censor.bridge.kernel_drops.iter().sum(),
    )
}

/// CPU each peer used, and as a share of one core over its life: from the call's start to the
/// end of its media.
fn cpu(caller: &PeerReport, callee: &PeerReport, start_at: u64) -> CallCpu {
    let life_ms = |p: &PeerReport| {
        let end = p.media_end_unix_ns.max(p.recv_end_unix_ns);
        (end > start_at).then(|| (end - start_at) as f64 / 1e6)
    };
    let pct = |p: &PeerReport| match (p.cpu_ms, life_ms(p)) {
        (Some(c), Some(l)) if l > 0.0 => Some(100.0 * c / l),
        _ => None,
    };
    CallCpu {
        caller_ms: caller.cpu_ms,
        callee_ms: callee.cpu_ms,
        caller_pct_of_core: pct(caller),
        callee_pct_of_core: pct(callee),
    }
}
