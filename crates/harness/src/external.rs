//! Calls placed by external peers (issue 13): a scenario's `peer = {caller, callee}` commands
//! started inside the caller's and callee's namespaces of the run's sandbox, under the
//! contract of `docs/peers.md` (`callwall_peer_ext`), then judged by
//! [`callwall_peer_ext::judge_external`].
//!
//! Guarantees are the built-in peers': the commands run in the sandbox's PID namespace (so
//! nothing outlives the run), each in its own process group with a parent-death signal, killed
//! at the call's deadline. A peer that does not start, crashes, hangs or writes a malformed
//! report makes the call `error` (never `blocked`) with its stderr tail in the result.
//!
//! Commands resolve from the repository root (see `callwall_scenario::external`), which is the
//! directory holding the topology directory. Each peer's log directory (its stdout, stderr and
//! report) is `<out>/<call>.caller/` and `<out>/<call>.callee/` in the run's output directory,
//! or under the sandbox's private scratch tmpfs when the run keeps no output.
//!
//! Not yet: a TURN relay for external peers (`CALLWALL_TURN_*` are not set) and the censor's
//! per-call bins for judging peers that report no frames (such a call is `error`, saying so).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use callwall_netns::Network;
use callwall_peer_ext::{
    judge_external, spawn_peer, CallFacts, ExternalPeerContext, NetworkThresholds, PeerExit,
    PeerOutcome, PeerRun, RunLimits, RunningPeer,
};
use callwall_scenario::external::ExternalPeers;
use callwall_transport::metrics::Thresholds;
use callwall_transport::voice::VoiceModel;
use callwall_transport::{Role, Verdict};

use crate::result::{CallCpu, CallMetrics, CallResult, ExternalCall, ExternalPeerResult};

/// Slack past a peer's own deadline (start + connect timeout + duration + drain) before it is
/// killed as hung.
const SLACK: Duration = Duration::from_secs(5);

/// One side of a placed external call: started, or why not.
enum Side {
    Running(RunningPeer),
    NotStarted(String),
}

/// A placed external call, waiting for its peers.
pub struct ExternalPlaced {
    caller: Side,
    callee: Side,
    caller_cmd: String,
    callee_cmd: String,
    start_unix_ns: u64,
    voice: VoiceModel,
    drain: Duration,
}

/// What the harness needs to place one external call copy.
pub struct ExternalCallSpec<'a> {
    pub name: &'a str,
    pub call_id: String,
    pub peers: &'a ExternalPeers,
    pub caller_host: &'a str,
    pub callee_host: &'a str,
    pub caller_ip: IpAddr,
    pub callee_ip: IpAddr,
    pub signal: SocketAddr,
    pub seed: u64,
    pub connect_timeout: Duration,
    pub duration: Duration,
    /// `CALLWALL_MEDIA_PORT`: the scenario's port plus the call copy's index, so protocols
    /// that bind every address (WireGuard) never collide in a namespace.
    pub media_port: u16,
    /// The run's output directory, if any.
    pub out: Option<&'a Path>,
    /// The directory relative commands resolve from.
    pub root: &'a Path,
}

/// The repository root for `topology_dir` (its parent; `.` when it has none).
pub fn root_of(topology_dir: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(topology_dir).unwrap_or_else(|_| topology_dir.to_path_buf());
    abs.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Starts both peers of one call copy (the callee first). Never fails the run: a peer that
/// cannot start makes the call `error`.
pub fn place(network: &Network, spec: &ExternalCallSpec<'_>) -> ExternalPlaced {
    let voice = VoiceModel::default();
    let drain = callwall_peer_ext::contract::DEFAULT_DRAIN;
    let start_unix_ns =
        callwall_transport::voice::unix_ns_now() + spec.peers.lead.as_nanos() as u64;
    let file = crate::run::sanitize(spec.name);
    let base = match spec.out {
        Some(d) => d.to_path_buf(),
        None => Path::new(crate::SCRATCH_DIR).join("callwall-external"),
    };
    let ctx = |role: Role| {
        let (local_ip, peer_ip) = match role {
            Role::Caller => (spec.caller_ip, spec.callee_ip),
            Role::Callee => (spec.callee_ip, spec.caller_ip),
        };
        let dir = base.join(format!("{file}.{}", callwall_peer_ext::contract::role_str(role)));
        ExternalPeerContext {
            call_id: spec.call_id.clone(),
            role,
            local_ip,
            peer_ip,
            media_port: spec.media_port,
            signal: spec.signal,
            rendezvous: format!("ext/{}", spec.call_id),
            relay: None,
            seed: spec.seed,
            start_at_unix_ns: start_unix_ns,
            connect_timeout: spec.connect_timeout,
            duration: spec.duration,
            drain,
            voice,
            report_path: dir.join("report.jsonl"),
            log_dir: dir,
        }
    };
    let start = |role: Role, host: &str, cmd: &[String]| -> Side {
        let ctx = ctx(role);
        let program = resolve(spec.root, &cmd[0]);
        let mut c = match network.command(host, &program) {
            Ok(c) => c,
            Err(e) => return Side::NotStarted(format!("cannot enter host {host}: {e}")),
        };
        c.args(&cmd[1..]).current_dir(spec.root);
        match spawn_peer(c, &ctx, RunLimits::for_context(&ctx, SLACK)) {
            Ok(p) => Side::Running(p),
            Err(e) => Side::NotStarted(e.to_string()),
        }
    };
    let callee = start(Role::Callee, spec.callee_host, &spec.peers.callee);
    let caller = start(Role::Caller, spec.caller_host, &spec.peers.caller);
    ExternalPlaced {
        caller,
        callee,
        caller_cmd: spec.peers.caller.join(" "),
        callee_cmd: spec.peers.callee.join(" "),
        start_unix_ns,
        voice,
        drain,
    }
}

/// A program with a `/` that is not absolute resolves from `root`; a bare name from `PATH`.
fn resolve(root: &Path, program: &str) -> PathBuf {
    let p = Path::new(program);
    if p.is_absolute() || !program.contains('/') {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

/// The finished peers of a call, ready to judge once the censor has stopped.
pub struct ExternalFinished {
    caller: Result<PeerRun, String>,
    callee: Result<PeerRun, String>,
    caller_cmd: String,
    callee_cmd: String,
    start_unix_ns: u64,
    voice: VoiceModel,
    drain: Duration,
}

impl ExternalPlaced {
    /// Waits for both peers (each until it exits or its deadline).
    pub fn finish(self) -> ExternalFinished {
        let wait = |s: Side| match s {
            Side::Running(p) => Ok(p.wait()),
            Side::NotStarted(e) => Err(e),
        };
        let callee = std::thread::spawn(move || wait(self.callee));
        let caller = wait(self.caller);
        let callee = callee.join().unwrap_or_else(|_| Err("the waiting thread panicked".into()));
        ExternalFinished {
            caller,
            callee,
            caller_cmd: self.caller_cmd,
            callee_cmd: self.callee_cmd,
            start_unix_ns: self.start_unix_ns,
            voice: self.voice,
            drain: self.drain,
        }
    }
}

/// An external call's verdict and what its result shows.
pub struct ExternalVerdict {
    pub verdict: Verdict,
    pub reason: String,
    pub metrics: CallMetrics,
    pub external: ExternalCall,
}

impl ExternalFinished {
    /// Judges the call (see [`judge_external`]).
    pub fn judge(&self) -> ExternalVerdict {
        let outcome = |r: &Result<PeerRun, String>| match r {
            Ok(run) => run.outcome(),
            Err(e) => PeerOutcome::Failed(format!("did not start: {e}")),
        };
        let a = outcome(&self.caller);
        let b = outcome(&self.callee);
        let facts = CallFacts {
            transport: callwall_scenario::external::TRANSPORT,
            start_unix_ns: self.start_unix_ns,
            voice: self.voice,
            drain: self.drain,
        };
        let j = judge_external(
            &a,
            &b,
            &facts,
            None,
            &Thresholds::default(),
            &NetworkThresholds::default(),
        );
        let side = |cmd: &str, r: &Result<PeerRun, String>, o: &PeerOutcome| {
            let failed = matches!(o, PeerOutcome::Failed(_));
            match r {
                Ok(run) => ExternalPeerResult {
                    command: cmd.to_string(),
                    implementation: run.report.as_ref().ok().and_then(|r| r.implementation.clone()),
                    exit: exit_text(run.exit),
                    stderr_tail: (failed && !run.stderr_tail.trim().is_empty())
                        .then(|| run.stderr_tail.clone()),
                },
                Err(e) => ExternalPeerResult {
                    command: cmd.to_string(),
                    implementation: None,
                    exit: "not started".into(),
                    stderr_tail: Some(e.clone()),
                },
            }
        };
        ExternalVerdict {
            verdict: j.verdict,
            reason: j.reason.clone(),
            metrics: j.metrics.clone().unwrap_or_default(),
            external: ExternalCall {
                caller: side(&self.caller_cmd, &self.caller, &a),
                callee: side(&self.callee_cmd, &self.callee, &b),
                judged_from_network: j.note.map(str::to_string),
            },
        }
    }
}

fn exit_text(e: PeerExit) -> String {
    match e {
        PeerExit::Code(c) => format!("exit {c}"),
        PeerExit::Signal(s) => format!("killed by signal {s}"),
        PeerExit::TimedOut(t) => format!("hung: killed after {t:?}"),
    }
}

/// The result of an external call copy: `rule` is the censor rule that hit its caller's
/// address hardest, if any.
pub fn call_result(
    name: String,
    call: &callwall_scenario::Call,
    caller_addr: IpAddr,
    rule: Option<String>,
    finished: &ExternalFinished,
) -> CallResult {
    let v = finished.judge();
    let mut reason = v.reason;
    if let (Some(r), true) = (&rule, v.verdict != Verdict::Connected) {
        reason = format!("{reason} (censor rule {r:?})");
    }
    let m = v.metrics;
    CallResult {
        name,
        transport: call.transport.clone(),
        strategy: m.strategy.clone().unwrap_or_else(|| call.strategies.join(",")),
        requested: call.strategies.clone(),
        verdict: v.verdict,
        expected: call.expect.iter().map(|v| v.as_str()).collect::<Vec<_>>().join("|"),
        met: call.expect.contains(&v.verdict),
        setup_ms: m.setup_ms,
        loss_pct: m.loss_pct,
        jitter_ms: m.jitter_ms,
        one_way_delay_ms: m.one_way_delay_ms,
        longest_gap_ms: m.longest_gap_ms,
        mos: m.mos,
        rule,
        reason,
        caller_addr,
        cpu: CallCpu::default(),
        metrics: m,
        flaky: false,
        attempts: Vec::new(),
        ice: None,
        external: Some(v.external),
        audio: None,
    }
}
