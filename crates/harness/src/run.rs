//! The orchestrator that runs as PID 1 inside a run's sandbox.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callwall_netns::Network;
use callwall_transport::metrics::{analyze, Thresholds};
use callwall_transport::peer::{PeerReport, PeerSpec};
use callwall_transport::voice::VoiceModel;
use callwall_transport::{CallContext, Role, Verdict};

use crate::plan::RunPlan;
use crate::result::{Artifacts, CallResult, CensorResult, RunResult};
use crate::roles::{CensorConfig, CensorOutput};
use crate::{HarnessError, SIGNAL_PORT};

/// How long services get to say `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Time between spawning the peers and the calls' start, so every peer is up.
const START_DELAY: Duration = Duration::from_millis(800);
/// Slack on top of a call's own budget before its peers are killed.
const PEER_GRACE: Duration = Duration::from_secs(8);

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// A child whose stdout is read by a thread: the first line `ready` is signalled, everything
/// after it is collected as the output.
pub(crate) struct Service {
    name: String,
    child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    ready: mpsc::Receiver<bool>,
    output: mpsc::Receiver<String>,
}

impl Service {
    pub(crate) fn spawn(
        name: &str,
        mut cmd: Command,
        log: Option<&Path>,
        wants_ready: bool,
    ) -> Result<Service, HarnessError> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        match log.map(std::fs::File::create) {
            Some(Ok(f)) => {
                cmd.stderr(Stdio::from(f));
            }
            _ => {
                cmd.stderr(Stdio::inherit());
            }
        }
        let mut child =
            cmd.spawn().map_err(|e| HarnessError::Setup(format!("cannot start {name}: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| HarnessError::Setup(format!("{name} has no stdout")))?;
        let (rtx, ready) = mpsc::channel();
        let (otx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            if wants_ready {
                let mut first = String::new();
                let ok = r.read_line(&mut first).is_ok() && first.trim() == "ready";
                let _ = rtx.send(ok);
            }
            let rest = crate::live::split_output(r.take(64 << 20));
            let _ = otx.send(rest);
        });
        Ok(Service { name: name.to_string(), child, stdin, ready, output })
    }

    pub(crate) fn wait_ready(&self) -> Result<(), HarnessError> {
        match self.ready.recv_timeout(READY_TIMEOUT) {
            Ok(true) => Ok(()),
            Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(HarnessError::Setup(
                format!("{} exited before it was ready; see its log", self.name),
            )),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(HarnessError::Setup(format!(
                "{} was not ready within {READY_TIMEOUT:?}",
                self.name
            ))),
        }
    }

    /// Closes stdin (the stop signal) and collects the output, killing at the deadline.
    pub(crate) fn stop(mut self, deadline: Instant) -> (Option<String>, String) {
        drop(self.stdin.take());
        self.finish(deadline)
    }

    pub(crate) fn finish(mut self, deadline: Instant) -> (Option<String>, String) {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let out = self.output.recv_timeout(Duration::from_secs(2)).ok();
                    return (out, format!("{status}"));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    // A process can print its report and then hang on the way out: the censor
                    // closing its packet sockets leaves promiscuous mode, which waits for the
                    // kernel's rtnl lock, held for seconds while other runs' namespaces are torn
                    // down. Its report is still its report: keep what it printed before the kill.
                    let out = self.output.recv_timeout(Duration::from_secs(2)).ok();
                    let out = out.filter(|o| !o.trim().is_empty());
                    if out.is_some() {
                        tracing::warn!(
                            "{} printed its report but did not exit by its deadline; killed it",
                            self.name
                        );
                    }
                    return (out, "killed at its deadline".into());
                }
            }
        }
    }
}

/// Runs a plan inside the sandbox. Never panics on a failed call; returns a result with
/// `error` set when the run itself could not be set up. The scenario is the plan's (validated
/// in the launcher): nothing is loaded again here.
pub fn sandbox_main(plan: &RunPlan, current_exe: &Path) -> RunResult {
    // Before anything starts, so every process of the run inherits it (see `priority`).
    if let Err(e) = crate::priority::raise_run_priority() {
        tracing::debug!(
            "the run keeps its cpu priority (nice {}): {e}",
            crate::priority::current_nice()
        );
    }
    let started = unix_ns();
    let t = Instant::now();
    let mut result = match run_scenario(plan, current_exe) {
        Ok(r) => r,
        Err(e) => plan.failed(e.to_run_error()),
    };
    result.started_unix_ms = started / 1_000_000;
    result.wall_ms = t.elapsed().as_millis() as u64;
    result
}

/// Whether building namespaces failed for lack of privileges (the machine's fault, not the
/// scenario's).
fn is_privilege_error(e: &callwall_netns::NetnsError) -> bool {
    use callwall_netns::NetnsError as E;
    let errno = |s: &std::io::Error| matches!(s.raw_os_error(), Some(libc::EPERM | libc::EACCES));
    match e {
        E::Environment { .. } => true,
        E::Netlink { source, .. } | E::Sys { source, .. } | E::Sysctl { source, .. } => {
            errno(source)
        }
        _ => false,
    }
}

/// One placed call copy: its spec and where its caller sits.
struct PlacedCall {
    name: String,
    call_index: usize,
    caller_addr: IpAddr,
    caller: Service,
    callee: Service,
    deadline: Instant,
}

fn run_scenario(plan: &RunPlan, exe: &Path) -> Result<RunResult, HarnessError> {
    let sc = &plan.scenario;
    let seed = plan.seed;
    let out = plan.out_dir.as_deref();
    let log = |name: &str| out.map(|d| d.join(format!("{name}.log")));
    let mut artifacts =
        Artifacts { dir: out.map(|d| d.display().to_string()), ..Default::default() };

    let mut network = Network::build(&sc.topology).map_err(|e| {
        let msg = format!("building topology {}: {e}", sc.topology_path.display());
        if is_privilege_error(&e) {
            HarnessError::Environment(msg)
        } else {
            HarnessError::Setup(msg)
        }
    })?;
    let hosts = callwall_scenario::host_map(&sc.topology);

    // Signalling.
    let signal_host = "signal";
    let signal_ip = sc.topology.ipv4_of(signal_host).map(IpAddr::V4).ok_or_else(|| {
        HarnessError::Setup("the topology has no addressed host named \"signal\"".into())
    })?;
    let signal_addr = SocketAddr::new(signal_ip, SIGNAL_PORT);
    let mut cmd =
        network.command(signal_host, exe).map_err(|e| HarnessError::Setup(e.to_string()))?;
    cmd.arg("__signal").arg("--listen").arg(signal_addr.to_string());
    let signal = Service::spawn("signal server", cmd, log("signal").as_deref(), true)?;
    signal.wait_ready()?;
    let workload_servers = crate::workloads::start_servers(sc, &mut network, exe, &log)?;

    // Calls to place, each copy with its own caller address (for attribution).
    let calls: Vec<&callwall_scenario::Call> = plan.calls.iter().map(|p| plan.call(p)).collect();

    // Relay: coturn, when the topology has a relay host and a call's transport needs it.
    let relay = crate::relay::maybe_start(sc, plan.relay(), &mut network, out)?;
    // Reflector (Telegram-like), in the relay host, when a call goes through it.
    let reflector = crate::reflector::maybe_start(sc, plan.relay(), &mut network, exe, out)?;

    // The censor.
    let start_at = unix_ns() + START_DELAY.as_nanos() as u64 + 200_000_000;
    let censor = match sc.topology.censor() {
        Some((censor_host, inside_if, outside_if)) => {
            let cfg = CensorConfig {
                inside_if: inside_if.to_string(),
                outside_if: outside_if.to_string(),
                t0_unix_ns: start_at,
                seed,
                policy: sc.censor.clone(),
                hosts: hosts.clone(),
                decisions: out.map(|d| d.join("decisions.jsonl")),
                pcap: if plan.pcap { out.map(|d| d.join("censor.pcap")) } else { None },
                bridge: crate::roles::bridge_options_from_env()?,
                watch: crate::external::watched_callers(&sc.topology, &calls),
            };
            artifacts.decisions = cfg.decisions.as_ref().map(|_| "decisions.jsonl".to_string());
            artifacts.pcap = cfg.pcap.as_ref().map(|_| "censor.pcap".to_string());
            let mut cmd = network
                .command(censor_host, exe)
                .map_err(|e| HarnessError::Setup(e.to_string()))?;
            cmd.arg("__censor")
                .arg("--config")
                .arg(serde_json::to_string(&cfg).map_err(|e| HarnessError::Setup(e.to_string()))?);
            let s = Service::spawn("censor", cmd, log("censor").as_deref(), true)?;
            s.wait_ready()?;
            Some(s)
        }
        None => None,
    };
    // Live control: the sandbox's stdin goes on to the censor's (see `crate::control`).
    let mut censor = censor;
    let censor_control = censor.as_mut().map(|c| Arc::new(Mutex::new(c.stdin.take())));
    if let Some(c) = &censor_control {
        crate::control::forward_to(BufReader::new(std::io::stdin()), c.clone());
    }

    // Peers.
    let voice = VoiceModel::default();
    let mut placed: Vec<PlacedCall> = Vec::new();
    let mut external = Vec::new();
    let root = crate::external::root_of(&plan.topology_dir);
    let ext_relay = match &relay {
        Some(r) if calls.iter().any(|c| c.peer.is_some()) => Some(crate::external::relay_env(
            &r.info,
            &Path::new(crate::SCRATCH_DIR).join("callwall-external"),
        )?),
        _ => None,
    };
    let mut copy = 0u32;
    for (ci, call) in calls.iter().enumerate() {
        for k in 0..call.placements() {
            let name = if call.placements() > 1 {
                format!("{}#{}", call.name, k + 1)
            } else {
                call.name.clone()
            };
            let caller_addr = call_address(&mut network, &sc.topology, &call.caller, copy)
                .map_err(|e| {
                    HarnessError::Setup(format!("adding an address for call {name}: {e}"))
                })?;
            let callee_ip =
                call_address(&mut network, &sc.topology, &call.callee, copy).map_err(|e| {
                    HarnessError::Setup(format!("adding an address for call {name}: {e}"))
                })?;
            copy += 1;
            let budget = plan.calls[ci].budget;
            if let Some(peers) = &call.peer {
                let spec = crate::external::ExternalCallSpec {
                    name: &name,
                    call_id: format!("{}-{}", sanitize(&name), copy),
                    peers,
                    caller_host: &call.caller,
                    callee_host: &call.callee,
                    caller_ip: caller_addr,
                    callee_ip,
                    signal: signal_addr,
                    seed: seed ^ (u64::from(copy) << 32),
                    connect_timeout: call.connect_timeout.as_std(),
                    duration: call.duration.as_std(),
                    media_port: peers.media_port.wrapping_add(copy as u16),
                    out,
                    root: &root,
                    relay: ext_relay.as_ref(),
                };
                let placed = crate::external::place(&network, &spec);
                external.push((name, ci, caller_addr, placed));
                continue;
            }
            let ctx = |role: Role, ip: IpAddr| CallContext {
                call_id: format!("{}-{}", sanitize(&name), copy),
                role,
                local_ip: ip,
                signal: signal_addr,
                relay: relay.as_ref().map(|r| r.info.clone()),
                options: call.options.clone(),
                connect_timeout: call.connect_timeout.as_std(),
                seed: seed ^ (u64::from(copy) << 32),
            };
            let spec = |role: Role, ip: IpAddr| PeerSpec {
                transport: call.transport.clone(),
                strategies: call.strategies.clone(),
                ctx: ctx(role, ip),
                start_at_unix_ns: start_at,
                duration: call.duration.as_std(),
                voice,
                audio: crate::audio::peer_audio(plan, &sc.name, &name),
            };
            let file = sanitize(&name);
            let callee = spawn_peer(
                &mut network,
                exe,
                &call.callee,
                &spec(Role::Callee, callee_ip),
                log(&format!("{file}.callee")).as_deref(),
            )?;
            let caller = spawn_peer(
                &mut network,
                exe,
                &call.caller,
                &spec(Role::Caller, caller_addr),
                log(&format!("{file}.caller")).as_deref(),
            )?;
            artifacts.logs.push(format!("{file}.caller.log"));
            artifacts.logs.push(format!("{file}.callee.log"));
            let mut deadline = Instant::now() + START_DELAY + budget + PEER_GRACE;
            if plan.audio.is_some() {
                deadline += crate::audio::AUDIO_GRACE;
            }
            placed.push(PlacedCall { name, call_index: ci, caller_addr, caller, callee, deadline });
        }
    }

    let workload_clients = match &workload_servers {
        Some(s) => crate::workloads::start_clients(sc, s, &mut network, exe, start_at, &log)?,
        None => Vec::new(),
    };

    // Wait for the calls.
    let mut reports = Vec::new();
    for p in placed {
        let (caller_out, caller_status) = p.caller.finish(p.deadline);
        let (callee_out, callee_status) = p.callee.finish(p.deadline);
        let call = calls[p.call_index];
        let caller = parse_report(caller_out, &caller_status, Role::Caller, &call.transport);
        let callee = parse_report(callee_out, &callee_status, Role::Callee, &call.transport);
        reports.push((p.name, p.call_index, p.caller_addr, caller, callee));
    }
    let external: Vec<_> =
        external.into_iter().map(|(n, ci, a, p)| (n, ci, a, p.finish())).collect();

    let workloads = crate::workloads::collect(sc, workload_clients);

    // Stop the censor and the services.
    let stop_deadline = Instant::now() + Duration::from_secs(5);
    if let Some(c) = &censor_control {
        drop(c.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
    let mut ext_view = crate::external::NetworkView {
        t0_unix_ns: start_at,
        ignore: vec![signal_ip],
        ..Default::default()
    };
    let mut censor_result = match censor {
        Some(c) => {
            let (out, status) = c.stop(stop_deadline);
            match out
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(serde_json::from_str::<CensorOutput>)
            {
                Some(Ok(o)) => {
                    ext_view.watched = crate::external::watched_callers(&sc.topology, &calls);
                    ext_view.bins = o.call_bins;
                    CensorResult::from((o.report, o.bridge))
                }
                _ => {
                    return Err(HarnessError::Setup(format!(
                        "the censor gave no report ({status}); see censor.log"
                    )))
                }
            }
        }
        None => CensorResult::default(),
    };
    if let Some(path) = out.map(|d| d.join("decisions.jsonl")) {
        censor_result.events = notable_events(&path);
        censor_result.control = crate::control::read_changes(&path);
    }
    let _ = signal.stop(stop_deadline);
    if let Some(s) = workload_servers {
        s.stop(stop_deadline);
    }
    if let Some(r) = relay {
        r.stop();
        artifacts.logs.push("relay.log".into());
    }
    if let Some(r) = reflector {
        r.stop();
        artifacts.logs.push("reflector.log".into());
    }

    let th = Thresholds::default();
    let mut results = Vec::new();
    let mut verdicts_of_call = Vec::new();
    for (name, ci, caller_addr, caller, callee) in reports {
        let call = calls[ci];
        let metrics = analyze(&caller, &callee, &th);
        // A peer lives from the call's start to its media end (plus the setup before it).
        let life_ms = |p: &PeerReport| {
            let end = p.media_end_unix_ns.max(p.recv_end_unix_ns);
            (end > start_at).then(|| (end - start_at) as f64 / 1e6)
        };
        let pct = |p: &PeerReport| match (p.cpu_ms, life_ms(p)) {
            (Some(c), Some(l)) if l > 0.0 => Some(100.0 * c / l),
            _ => None,
        };
        let cpu = crate::result::CallCpu {
            caller_ms: caller.cpu_ms,
            callee_ms: callee.cpu_ms,
            caller_pct_of_core: pct(&caller),
            callee_pct_of_core: pct(&callee),
        };
        let rule = censor_result.deciding_rule(caller_addr);
        let verdict = metrics.verdict;
        verdicts_of_call.push((ci, verdict));
        let met = call.expect.contains(&verdict);
        let strategy = metrics.strategy.clone().unwrap_or_else(|| call.strategies.join(","));
        let not_connected = verdict != Verdict::Connected;
        let reason = crate::result::Reason {
            cause: metrics.reason.clone(),
            rule: rule.clone().filter(|_| not_connected),
            overload: censor_result.bridge.overload().filter(|_| not_connected),
        };
        results.push(CallResult {
            name,
            transport: call.transport.clone(),
            strategy,
            requested: call.strategies.clone(),
            verdict,
            expected: call.expect.iter().copied().collect(),
            met,
            setup_ms: metrics.setup_ms,
            loss_pct: metrics.loss_pct,
            jitter_ms: metrics.jitter_ms,
            one_way_delay_ms: metrics.one_way_delay_ms,
            longest_gap_ms: metrics.longest_gap_ms,
            mos: metrics.mos,
            rule,
            reason,
            caller_addr,
            cpu,
            metrics,
            flaky: false,
            attempts: Vec::new(),
            ice: caller.ice.as_ref().map(crate::ice::call_ice),
            external: None,
            bypass: None,
            audio: crate::audio::join(&caller, &callee),
        });
    }
    for (name, ci, addr, done) in &external {
        let rule = censor_result.deciding_rule(*addr);
        results.push(crate::external::call_result(
            name.clone(),
            calls[*ci],
            *addr,
            rule,
            done,
            Some(&ext_view),
        ));
    }
    crate::bypass::annotate(sc.as_of.as_deref(), &calls, &mut results, &censor_result);
    if let Err(e) = network.teardown() {
        tracing::warn!("teardown: {e}");
    }
    Ok(RunResult {
        calls: results,
        censor: censor_result,
        artifacts,
        distributions: crate::repeat::distributions(&calls, &verdicts_of_call),
        workloads,
        ..plan.header()
    })
}

use callwall_scenario::CALL_ADDR_BASE;

/// Adds and returns the address call copy `n` uses on `host`: its first IPv4 subnet's
/// address number `CALL_ADDR_BASE` + n. Each call gets its own caller and callee address, so concurrent
/// calls never compete for a port (two callees on UDP 443) and the censor's per-address
/// counters name the rule that hit each call.
fn call_address(
    network: &mut Network,
    topology: &callwall_netns::topology::Topology,
    host: &str,
    n: u32,
) -> Result<IpAddr, String> {
    let spec = topology.host(host).ok_or_else(|| format!("no host {host} in the topology"))?;
    let (iface, cidr) = spec
        .interfaces
        .iter()
        .find_map(|i| i.addrs.iter().find(|c| c.addr.is_ipv4()).map(|c| (i.name.clone(), *c)))
        .ok_or_else(|| format!("host {host} has no IPv4 address"))?;
    let IpAddr::V4(net) = cidr.network() else { return Err("not IPv4".into()) };
    let size = 1u32 << (32 - u32::from(cidr.prefix_len).min(32));
    let host_part = CALL_ADDR_BASE + n;
    if host_part + 1 >= size {
        return Err(format!(
            "the subnet {}/{} of {host} is too small for {} calls",
            net,
            cidr.prefix_len,
            n + 1
        ));
    }
    let addr = IpAddr::V4(std::net::Ipv4Addr::from(u32::from(net) + host_part));
    network
        .add_address(host, &iface, callwall_netns::Cidr { addr, prefix_len: cidr.prefix_len })
        .map_err(|e| e.to_string())?;
    Ok(addr)
}

/// Reads the decision log and keeps what is worth showing: every event that is not the
/// default pass, at most [`crate::result::MAX_EVENTS`].
fn notable_events(path: &Path) -> Vec<crate::result::DecisionEvent> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines()
        .filter_map(|l| serde_json::from_str::<crate::result::DecisionEvent>(l).ok())
        .filter(crate::result::DecisionEvent::is_notable)
        .take(crate::result::MAX_EVENTS)
        .collect()
}

/// A file-name-safe form of a call name.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect()
}

fn spawn_peer(
    network: &mut Network,
    exe: &Path,
    host: &str,
    spec: &PeerSpec,
    log: Option<&Path>,
) -> Result<Service, HarnessError> {
    let mut cmd = network.command(host, exe).map_err(|e| HarnessError::Setup(e.to_string()))?;
    cmd.arg("__peer");
    let role = format!("{:?} peer on {host}", spec.ctx.role).to_lowercase();
    let mut s = Service::spawn(&role, cmd, log, false)?;
    let json = serde_json::to_string(spec).map_err(|e| HarnessError::Setup(e.to_string()))?;
    if let Some(mut stdin) = s.stdin.take() {
        stdin
            .write_all(json.as_bytes())
            .and_then(|_| stdin.write_all(b"\n"))
            .map_err(|e| HarnessError::io("sending a peer its spec", e))?;
    }
    Ok(s)
}

fn parse_report(out: Option<String>, status: &str, role: Role, transport: &str) -> PeerReport {
    let text = out.unwrap_or_default();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    match serde_json::from_str::<PeerReport>(last) {
        Ok(r) => r,
        Err(_) => PeerReport::failed(
            role,
            transport,
            format!("the {role:?} peer process gave no report ({status}); see its log")
                .to_lowercase(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn a_report_printed_before_a_hang_on_exit_is_kept() {
        // Prints its report, then hangs (as a censor waiting on the kernel at exit can).
        let s = Service::spawn(
            "hanger",
            shell("echo ready; echo '{\"x\":1}'; exec sleep 30"),
            None,
            true,
        )
        .expect("spawn");
        s.wait_ready().expect("ready");
        let t = Instant::now();
        let (out, status) = s.stop(Instant::now() + Duration::from_millis(300));
        assert_eq!(status, "killed at its deadline");
        assert_eq!(out.as_deref().map(str::trim), Some("{\"x\":1}"));
        assert!(t.elapsed() < Duration::from_secs(10), "the kill did not end the wait");
    }

    #[test]
    fn a_hang_without_a_report_gives_none() {
        let s = Service::spawn("silent", shell("echo ready; exec sleep 30"), None, true)
            .expect("spawn");
        s.wait_ready().expect("ready");
        let (out, status) = s.stop(Instant::now() + Duration::from_millis(300));
        assert_eq!(status, "killed at its deadline");
        assert_eq!(out, None);
    }

    #[test]
    fn a_process_that_exits_on_stop_gives_its_report() {
        let s =
            Service::spawn("polite", shell("echo ready; cat >/dev/null; echo done"), None, true)
                .expect("spawn");
        s.wait_ready().expect("ready");
        let (out, status) = s.stop(Instant::now() + Duration::from_secs(20));
        assert!(status.contains("exit status: 0"), "{status}");
        assert_eq!(out.as_deref().map(str::trim), Some("done"));
    }
}
