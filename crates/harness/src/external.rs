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
//! A call whose peers report no frames is judged from the network: the censor bins the
//! packets of every external call's caller address per outside address, direction and 100 ms
//! ([`watched_callers`], `callwall_censor::engine::CallBins`); [`NetworkView::observation`]
//! turns the bins of one call (its signalling left out) into a
//! [`NetworkObservation`] for [`judge_external`].
//!
//! When the run has a TURN relay (a call asks for it, e.g. `relay = true` in a `peer` table),
//! every external peer gets `CALLWALL_TURN_*`, with the relay's certificate as a PEM file on
//! the sandbox's private scratch tmpfs ([`relay_env`]).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use callwall_censor::engine::{PairBins, BIN_NS};
use callwall_netns::Network;
use callwall_peer_ext::{
    judge_external, spawn_peer, Bin, CallFacts, ExternalPeerContext, NetworkJudgement,
    NetworkObservation, NetworkThresholds, PeerExit, PeerOutcome, PeerRun, RelayEnv, RunLimits,
    RunningPeer,
};
use callwall_scenario::external::ExternalPeers;
use callwall_transport::metrics::Thresholds;
use callwall_transport::voice::VoiceModel;
use callwall_transport::{Role, Verdict};

use crate::result::{CallCpu, CallMetrics, CallResult, ExternalCall, ExternalPeerResult};
use callwall_results::external::{
    ExternalFailure, ExternalNetwork, ExternalReportSummary, NetworkDirectionResult,
};

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
    duration: Duration,
    caller_ip: IpAddr,
    /// `<file>.caller`: the log directories' stem, relative to the output directory.
    file: String,
    has_out: bool,
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
    /// `CALLWALL_MEDIA_PORT`: the scenario's `media_port` exactly as written, or the port the
    /// scenario check gave this copy (`ExternalPeers::media_ports`).
    pub media_port: u16,
    /// The run's output directory, if any.
    pub out: Option<&'a Path>,
    /// The directory relative commands resolve from.
    pub root: &'a Path,
    /// The run's TURN relay as the peers see it ([`relay_env`]), when the run has one.
    pub relay: Option<&'a RelayEnv>,
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
    let file = crate::process::sanitize(spec.name);
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
            relay: spec.relay.cloned(),
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
        duration: spec.duration,
        caller_ip: spec.caller_ip,
        has_out: spec.out.is_some(),
        file,
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
    duration: Duration,
    caller_ip: IpAddr,
    file: String,
    has_out: bool,
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
            duration: self.duration,
            caller_ip: self.caller_ip,
            file: self.file,
            has_out: self.has_out,
        }
    }
}

/// An external call's verdict and what its result shows.
pub struct ExternalVerdict {
    pub verdict: Verdict,
    pub reason: callwall_results::Cause,
    pub metrics: CallMetrics,
    pub external: ExternalCall,
    /// Whether the figures come from both peers' frames (else there is no MOS, jitter, delay).
    pub has_frames: bool,
}

impl ExternalFinished {
    /// Judges the call (see [`judge_external`]), from the censor's view when the peers
    /// reported no frames.
    pub fn judge(&self, view: Option<&NetworkView>) -> ExternalVerdict {
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
        let obs =
            view.and_then(|v| v.observation(self.caller_ip, self.start_unix_ns, self.duration));
        let j = judge_external(
            &a,
            &b,
            &facts,
            obs.as_ref(),
            &Thresholds::default(),
            &NetworkThresholds::default(),
        );
        let side = |role: &str, cmd: &str, r: &Result<PeerRun, String>, o: &PeerOutcome| {
            let failed = matches!(o, PeerOutcome::Failed(_));
            match r {
                Ok(run) => ExternalPeerResult {
                    command: cmd.to_string(),
                    implementation: run.report.as_ref().ok().and_then(|r| r.implementation.clone()),
                    exit: exit_text(run.exit),
                    stderr_tail: (failed && !run.stderr_tail.trim().is_empty())
                        .then(|| run.stderr_tail.clone()),
                    report: self.report_summary(role, run),
                },
                Err(e) => ExternalPeerResult {
                    command: cmd.to_string(),
                    implementation: None,
                    exit: "not started".into(),
                    stderr_tail: Some(e.clone()),
                    report: None,
                },
            }
        };
        let mut metrics = j.metrics.clone().unwrap_or_default();
        if let Some(n) = &j.network {
            // The censor's drops and gaps stand in for loss and gaps; no MOS, delay, jitter.
            metrics.loss_pct = n.up.drop_pct.max(n.down.drop_pct);
            metrics.longest_gap_ms = n.up.longest_gap_ms.max(n.down.longest_gap_ms);
            metrics.setup_ms = [&self.caller, &self.callee]
                .iter()
                .filter_map(|r| r.as_ref().ok()?.report.as_ref().ok()?.connected_unix_ns)
                .min()
                .map(|c| c.saturating_sub(self.start_unix_ns) as f64 / 1e6);
        }
        ExternalVerdict {
            verdict: j.verdict,
            reason: j.reason.clone(),
            has_frames: j.metrics.is_some(),
            metrics,
            external: ExternalCall {
                caller: side("caller", &self.caller_cmd, &self.caller, &a),
                callee: side("callee", &self.callee_cmd, &self.callee, &b),
                judged_from_network: j.note.map(str::to_string),
                network: j.network.as_ref().map(network_result),
            },
        }
    }

    fn report_summary(&self, role: &str, run: &PeerRun) -> Option<ExternalReportSummary> {
        let file = self.has_out.then(|| format!("{}.{role}/report.jsonl", self.file));
        match &run.report {
            Err(e) => Some(ExternalReportSummary {
                file,
                lines: e.lines_read,
                error: Some(e.to_string()),
                ..Default::default()
            }),
            Ok(r) if r.lines == 0 => None,
            Ok(r) => Some(ExternalReportSummary {
                file,
                lines: r.lines,
                frames_received: r.arrivals.len() as u64,
                frames_sent: r.sent.map(|s| s.frames),
                connected_ms: r
                    .connected_unix_ns
                    .map(|c| c.saturating_sub(self.start_unix_ns) as f64 / 1e6),
                path: r.path.clone(),
                error: None,
                failed: r.failed.as_ref().map(|(stage, reason)| ExternalFailure {
                    stage: stage.as_str().to_string(),
                    reason: reason.clone(),
                }),
            }),
        }
    }
}

fn network_result(n: &NetworkJudgement) -> ExternalNetwork {
    let d = |d: &callwall_peer_ext::NetworkDirection| NetworkDirectionResult {
        forwarded_packets: d.forwarded_packets,
        forwarded_bytes: d.forwarded_bytes,
        dropped_packets: d.dropped_packets,
        drop_pct: d.drop_pct,
        media_secs: d.media_secs as u64,
        first_media_ms: d.first_media_ms,
        rate_kbit: d.rate_kbit,
        longest_gap_ms: d.longest_gap_ms,
        trailing_gap_ms: d.trailing_gap_ms,
        verdict: d.verdict,
    };
    ExternalNetwork { bin_ms: BIN_NS / 1_000_000, up: d(&n.up), down: d(&n.down) }
}

/// The censor's per-call bins of a run, as the judge of external calls reads them.
#[derive(Debug, Clone, Default)]
pub struct NetworkView {
    /// Engine time 0 of the censor (its `t0_unix_ns`).
    pub t0_unix_ns: u64,
    /// The inside addresses the censor was asked to bin ([`watched_callers`]).
    pub watched: Vec<IpAddr>,
    pub bins: Vec<PairBins>,
    /// Outside addresses whose traffic is not the call's media (the signal server).
    pub ignore: Vec<IpAddr>,
    /// For a call alone on its caller host in the run: its caller address and the host's own
    /// addresses, whose traffic is the call's too ([`lone_call_hosts`]).
    pub aliases: Vec<(IpAddr, Vec<IpAddr>)>,
}

impl NetworkView {
    /// The call of `caller` as the censor saw it, from `start_unix_ns` for the call's
    /// `duration` plus its connect time and some slack: the bins of every pair of `caller`
    /// but the ignored ones, summed per direction. `None` when the censor did not watch
    /// `caller` (the call is then `error`, never guessed).
    pub fn observation(
        &self,
        caller: IpAddr,
        start_unix_ns: u64,
        duration: Duration,
    ) -> Option<NetworkObservation> {
        if !self.watched.contains(&caller) {
            return None;
        }
        let also: &[IpAddr] =
            self.aliases.iter().find(|(c, _)| *c == caller).map_or(&[], |(_, a)| a.as_slice());
        let mine = |a: IpAddr| a == caller || also.contains(&a);
        let first = start_unix_ns.saturating_sub(self.t0_unix_ns) / BIN_NS;
        let mut up: Vec<Bin> = Vec::new();
        let mut down: Vec<Bin> = Vec::new();
        let (mut signal_up, mut signal_down) = (Bin::default(), Bin::default());
        for p in self.bins.iter().filter(|p| mine(p.inside) && self.ignore.contains(&p.outside)) {
            for (src, dst) in [(&p.up, &mut signal_up), (&p.down, &mut signal_down)] {
                for b in src {
                    dst.forwarded_packets += u64::from(b.forwarded_packets);
                    dst.forwarded_bytes += u64::from(b.forwarded_bytes);
                    dst.dropped_packets += u64::from(b.dropped_packets);
                }
            }
        }
        for p in self.bins.iter().filter(|p| mine(p.inside) && !self.ignore.contains(&p.outside)) {
            for (src, dst) in [(&p.up, &mut up), (&p.down, &mut down)] {
                for (i, b) in src.iter().enumerate() {
                    let abs = p.first_bin + i as u64;
                    let Some(k) = abs.checked_sub(first) else { continue };
                    let k = k as usize;
                    if dst.len() <= k {
                        dst.resize(k + 1, Bin::default());
                    }
                    dst[k].forwarded_packets += u64::from(b.forwarded_packets);
                    dst[k].forwarded_bytes += u64::from(b.forwarded_bytes);
                    dst[k].dropped_packets += u64::from(b.dropped_packets);
                }
            }
        }
        Some(NetworkObservation {
            start_unix_ns: self.t0_unix_ns + first * BIN_NS,
            bin: Duration::from_nanos(BIN_NS),
            up,
            down,
            connected_unix_ns: None,
            duration,
            signal_up,
            signal_down,
        })
    }
}

/// The caller addresses of the run's external calls, as the run loop will give them (copy
/// `n` of the run, counting every call's copies in order, gets host part
/// `CALL_ADDR_BASE + n` in its caller host's first IPv4 subnet): the censor bins these.
pub fn watched_callers(
    topology: &callwall_netns::topology::Topology,
    calls: &[&callwall_scenario::Call],
) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut copy = 0u32;
    for call in calls {
        for _ in 0..call.placements() {
            if call.peer.is_some() {
                if let Some(ip) = call_ip(topology, &call.caller, copy) {
                    out.push(ip);
                }
            }
            copy += 1;
        }
    }
    for (_, own) in lone_call_hosts(topology, calls) {
        out.extend(own.into_iter().filter(|a| !out.contains(a)).collect::<Vec<_>>());
    }
    out
}

/// The external calls that are alone on their caller host in the run (one placement, no other
/// call from that host): each call's caller address and the host's own interface addresses.
/// A peer that cannot choose its source address (a browser binds its ICE host candidates to
/// the interface's first address, not to `CALLWALL_LOCAL_IP`) sends from those; when no other
/// call shares the host, that traffic can only be this call's, so the censor watches those
/// addresses too and counts them as the call's.
pub fn lone_call_hosts(
    topology: &callwall_netns::topology::Topology,
    calls: &[&callwall_scenario::Call],
) -> Vec<(IpAddr, Vec<IpAddr>)> {
    let mut per_host: std::collections::HashMap<&str, u32> = Default::default();
    for call in calls {
        *per_host.entry(call.caller.as_str()).or_default() += call.placements();
    }
    let mut out = Vec::new();
    let mut copy = 0u32;
    for call in calls {
        for _ in 0..call.placements() {
            if call.peer.is_some() && per_host.get(call.caller.as_str()) == Some(&1) {
                let host = topology.host(&call.caller);
                if let (Some(ip), Some(spec)) = (call_ip(topology, &call.caller, copy), host) {
                    let own = spec.interfaces.iter().flat_map(|i| &i.addrs).map(|c| c.addr);
                    out.push((ip, own.collect()));
                }
            }
            copy += 1;
        }
    }
    out
}

fn call_ip(topology: &callwall_netns::topology::Topology, host: &str, n: u32) -> Option<IpAddr> {
    let spec = topology.host(host)?;
    let cidr = spec.interfaces.iter().find_map(|i| i.addrs.iter().find(|c| c.addr.is_ipv4()))?;
    let IpAddr::V4(net) = cidr.network() else { return None };
    let host_part = callwall_scenario::CALL_ADDR_BASE + n;
    Some(IpAddr::V4(std::net::Ipv4Addr::from(u32::from(net) + host_part)))
}

/// The relay as external peers see it: its URLs and credentials, and its TLS certificate
/// written to `dir` (the sandbox's private scratch tmpfs, never the host's /tmp).
pub fn relay_env(
    relay: &callwall_transport::RelayInfo,
    dir: &Path,
) -> Result<RelayEnv, crate::HarnessError> {
    crate::scratch_is_private()?;
    std::fs::create_dir_all(dir).map_err(|e| {
        crate::HarnessError::io("creating the external peers' scratch directory", e)
    })?;
    let ca = dir.join("turn-ca.pem");
    std::fs::write(&ca, &relay.tls_cert_pem).map_err(|e| {
        crate::HarnessError::io("writing the relay's certificate for external peers", e)
    })?;
    Ok(RelayEnv::from_relay(relay, Some(ca)))
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
    view: Option<&NetworkView>,
) -> CallResult {
    let v = finished.judge(view);
    let reason = crate::result::Reason {
        cause: v.reason,
        rule: rule.clone().filter(|_| v.verdict != Verdict::Connected),
        overload: None,
    };
    let m = v.metrics;
    CallResult {
        name,
        transport: call.transport.clone(),
        strategy: m.strategy.clone().unwrap_or_else(|| call.strategies.join(",")),
        requested: call.strategies.clone(),
        verdict: v.verdict,
        expected: call.expect.iter().copied().collect(),
        met: call.expect.contains(&v.verdict),
        setup_ms: m.setup_ms,
        loss_pct: m.loss_pct,
        // Judged from the network (or a failed peer): the censor cannot tell MOS, jitter or
        // delay, so there are none (null in JSON, `-` in tables), never a made-up 0.
        jitter_ms: v.has_frames.then_some(m.jitter_ms),
        one_way_delay_ms: v.has_frames.then_some(m.one_way_delay_ms),
        longest_gap_ms: m.longest_gap_ms,
        mos: v.has_frames.then_some(m.mos),
        rule,
        reason,
        caller_addr,
        cpu: CallCpu::default(),
        metrics: m,
        flaky: false,
        attempts: Vec::new(),
        ice: None,
        external: Some(v.external),
        bypass: None,
        audio: None,
        app: call.app.clone(),
        machine: None,
        inconclusive: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_censor::engine::BinCounts;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn bins(n: usize, pkts: u32) -> Vec<BinCounts> {
        vec![
            BinCounts { forwarded_packets: pkts, forwarded_bytes: pkts * 100, dropped_packets: 1 };
            n
        ]
    }

    #[test]
    fn the_observation_sums_a_callers_pairs_from_the_calls_start_without_signalling() {
        let t0 = 1_000_000_000_000;
        let caller = ip("10.1.0.130");
        let pair = |outside: &str, first_bin: u64, up: Vec<BinCounts>| PairBins {
            inside: caller,
            outside: ip(outside),
            first_bin,
            up,
            down: bins(2, 3),
            late_packets: 0,
        };
        let view = NetworkView {
            t0_unix_ns: t0,
            watched: vec![caller],
            bins: vec![
                // Media to the callee from bin 20 (2 s after t0), to the relay from bin 22.
                pair("10.2.0.130", 20, bins(5, 5)),
                pair("10.3.0.2", 22, bins(2, 4)),
                // Signalling: left out.
                pair("10.4.0.2", 18, bins(10, 100)),
                // Another caller: left out.
                PairBins { inside: ip("10.1.0.131"), ..pair("10.2.0.131", 20, bins(5, 50)) },
            ],
            ignore: vec![ip("10.4.0.2")],
            aliases: Vec::new(),
        };
        // The call starts 2.05 s after t0: its bins start at bin 20.
        let o = view.observation(caller, t0 + 2_050_000_000, Duration::from_secs(4)).unwrap();
        assert_eq!(o.start_unix_ns, t0 + 2_000_000_000);
        assert_eq!(o.bin, Duration::from_millis(100));
        let up: Vec<u64> = o.up.iter().map(|b| b.forwarded_packets).collect();
        assert_eq!(up, [5, 5, 9, 9, 5]);
        assert_eq!(o.up[2].forwarded_bytes, 900);
        assert_eq!(o.up[2].dropped_packets, 2);
        let down: Vec<u64> = o.down.iter().map(|b| b.forwarded_packets).collect();
        assert_eq!(down, [3, 3, 3, 3]);
        // The signalling pair is summed apart, every bin of it.
        assert_eq!(o.signal_up.forwarded_packets, 1000);
        assert_eq!(o.signal_up.dropped_packets, 10);
        assert_eq!(o.signal_down.forwarded_packets, 6);
        // Bins before the call's start are not the call's.
        let late = view.observation(caller, t0 + 2_300_000_000, Duration::from_secs(4)).unwrap();
        assert_eq!(late.up.iter().map(|b| b.forwarded_packets).collect::<Vec<_>>(), [9, 5]);
        // A caller the censor did not watch has no observation (the judge says error).
        assert!(view.observation(ip("10.1.0.200"), t0, Duration::from_secs(4)).is_none());
        // A call alone on its host: the host's own address counts as the call's (a browser
        // sends from it), another host address does not.
        let host = ip("10.1.0.2");
        let lone = NetworkView {
            aliases: vec![(caller, vec![host])],
            bins: vec![PairBins { inside: host, ..pair("10.2.0.2", 20, bins(5, 7)) }],
            ..view
        };
        let o = lone.observation(caller, t0 + 2_050_000_000, Duration::from_secs(4)).unwrap();
        assert_eq!(o.up.iter().map(|b| b.forwarded_packets).sum::<u64>(), 35);
        let other = NetworkView { aliases: Vec::new(), ..lone };
        let o = other.observation(caller, t0 + 2_050_000_000, Duration::from_secs(4)).unwrap();
        assert!(o.up.is_empty());
    }
}
