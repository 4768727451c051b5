//! The orchestrator that runs as PID 1 inside a run's sandbox: [`sandbox_main`] runs a
//! [`RunPlan`] in phases, each a function of its own: build the network; start the services
//! (signal server, workload servers, relay, reflector); start the censor; place the calls; start
//! the workloads; wait for the calls and the workloads; stop the censor (its report) and the
//! services; judge the calls ([`crate::judge`]); tear the network down.

use std::io::BufReader;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ChildStdin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callwall_censor::engine::PairBins;
use callwall_netns::Network;
use callwall_scenario::Call;
use callwall_transport::peer::{PeerReport, PeerSpec};
use callwall_transport::voice::VoiceModel;
use callwall_transport::{CallContext, Role};

use crate::judge::Finished;
use crate::plan::RunPlan;
use crate::process::{sanitize, spawn_peer, Service};
use crate::result::{Artifacts, CensorResult, RunResult};
use crate::roles::{CensorConfig, CensorOutput};
use crate::{HarnessError, SIGNAL_PORT};

/// Time between spawning the peers and the calls' start, so every peer is up.
const START_DELAY: Duration = Duration::from_millis(800);
/// Slack on top of a call's own budget before its peers are killed.
const PEER_GRACE: Duration = Duration::from_secs(8);

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
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

/// What a run writes and where: its output directory (if any) and the files it lists.
struct Outputs<'a> {
    dir: Option<&'a Path>,
    artifacts: Artifacts,
}

impl Outputs<'_> {
    /// The log file of process `name`.
    fn log(&self, name: &str) -> Option<PathBuf> {
        self.dir.map(|d| d.join(format!("{name}.log")))
    }
}

/// The phases of a run, in order; each phase's function owns one step.
fn run_scenario(plan: &RunPlan, exe: &Path) -> Result<RunResult, HarnessError> {
    let mut out = Outputs {
        dir: plan.out_dir.as_deref(),
        artifacts: Artifacts {
            dir: plan.out_dir.as_deref().map(|d| d.display().to_string()),
            ..Default::default()
        },
    };
    let calls: Vec<&Call> = plan.calls.iter().map(|p| plan.call(p)).collect();
    let mut network = build_network(plan)?;
    let services = Services::start(plan, &mut network, exe, &out)?;
    // Every peer and workload starts its clock here, so every one is up by then.
    let start_at = unix_ns() + START_DELAY.as_nanos() as u64 + 200_000_000;
    let censor = Censor::start(plan, &calls, &mut network, exe, start_at, &mut out)?;
    let placed = place_calls(plan, &calls, &mut network, exe, &services, start_at, &mut out)?;
    let workload_clients = match &services.workloads {
        Some(s) => {
            crate::workloads::start_clients(&plan.scenario, s, &mut network, exe, start_at, &|n| {
                out.log(n)
            })?
        }
        None => Vec::new(),
    };

    let finished = placed.wait(&calls);
    let workloads = crate::workloads::collect(&plan.scenario, workload_clients);

    // Stop the censor and the services.
    let stop_deadline = Instant::now() + Duration::from_secs(5);
    let (censor_result, bins) = censor.stop(stop_deadline, out.dir)?;
    // Without a censor nothing watched the calls: external calls are then never judged from
    // the network.
    let view = crate::external::NetworkView {
        t0_unix_ns: start_at,
        ignore: vec![services.signal_addr.ip()],
        watched: match bins {
            Some(_) => crate::external::watched_callers(&plan.scenario.topology, &calls),
            None => Vec::new(),
        },
        bins: bins.unwrap_or_default(),
        aliases: crate::external::lone_call_hosts(&plan.scenario.topology, &calls),
    };
    services.stop(stop_deadline, &mut out.artifacts);

    let (results, verdicts_of_call) =
        crate::judge::call_results(finished, &calls, &censor_result, start_at, &view);
    let mut results = results;
    crate::bypass::annotate(plan.scenario.as_of.as_deref(), &calls, &mut results, &censor_result);
    if let Err(e) = network.teardown() {
        tracing::warn!("teardown: {e}");
    }
    Ok(RunResult {
        calls: results,
        censor: censor_result,
        artifacts: out.artifacts,
        distributions: crate::repeat::distributions(&calls, &verdicts_of_call),
        workloads,
        ..plan.header()
    })
}

/// Phase 1: the topology's namespaces, links and addresses.
fn build_network(plan: &RunPlan) -> Result<Network, HarnessError> {
    let sc = &plan.scenario;
    Network::build(&sc.topology).map_err(|e| {
        let msg = format!("building topology {}: {e}", sc.topology_path.display());
        if is_privilege_error(&e) {
            HarnessError::Environment(msg)
        } else {
            HarnessError::Setup(msg)
        }
    })
}

/// Phase 2: the services every call and workload talks to.
struct Services {
    signal: Service,
    signal_addr: SocketAddr,
    /// The DNS and workload servers (`None`: no workloads and no `[dns]`).
    workloads: Option<crate::workloads::Servers>,
    /// coturn, when a call's transport needs it.
    relay: Option<crate::relay::Relay>,
    /// The reflector (Telegram-like), in the relay host, when a call goes through it.
    reflector: Option<crate::reflector::Reflector>,
}

impl Services {
    fn start(
        plan: &RunPlan,
        network: &mut Network,
        exe: &Path,
        out: &Outputs<'_>,
    ) -> Result<Services, HarnessError> {
        let sc = &plan.scenario;
        let signal_host = "signal";
        let signal_ip = sc.topology.ipv4_of(signal_host).map(IpAddr::V4).ok_or_else(|| {
            HarnessError::Setup("the topology has no addressed host named \"signal\"".into())
        })?;
        let signal_addr = SocketAddr::new(signal_ip, SIGNAL_PORT);
        let mut cmd =
            network.command(signal_host, exe).map_err(|e| HarnessError::Setup(e.to_string()))?;
        cmd.arg("__signal").arg("--listen").arg(signal_addr.to_string());
        let signal = Service::spawn("signal server", cmd, out.log("signal").as_deref(), true)?;
        signal.wait_ready()?;
        let workloads = crate::workloads::start_servers(sc, network, exe, &|n| out.log(n))?;
        let relay = crate::relay::maybe_start(sc, plan.relay(), network, out.dir)?;
        let reflector = crate::reflector::maybe_start(sc, plan.relay(), network, exe, out.dir)?;
        Ok(Services { signal, signal_addr, workloads, relay, reflector })
    }

    /// Stops every service (each killed at `deadline`), listing the logs they left.
    fn stop(self, deadline: Instant, artifacts: &mut Artifacts) {
        let _ = self.signal.stop(deadline);
        if let Some(s) = self.workloads {
            s.stop(deadline);
        }
        if let Some(r) = self.relay {
            r.stop();
            artifacts.logs.push("relay.log".into());
        }
        if let Some(r) = self.reflector {
            r.stop();
            artifacts.logs.push("reflector.log".into());
        }
    }
}

/// Phase 3: the censor bridge on the censor host (none in a topology without one), with live
/// control: the sandbox's stdin goes on to the censor's (see `crate::control`).
struct Censor {
    service: Option<Service>,
    control: Option<Arc<Mutex<Option<ChildStdin>>>>,
}

impl Censor {
    fn start(
        plan: &RunPlan,
        calls: &[&Call],
        network: &mut Network,
        exe: &Path,
        start_at: u64,
        out: &mut Outputs<'_>,
    ) -> Result<Censor, HarnessError> {
        let sc = &plan.scenario;
        let Some((censor_host, inside_if, outside_if)) = sc.topology.censor() else {
            return Ok(Censor { service: None, control: None });
        };
        let cfg = CensorConfig {
            inside_if: inside_if.to_string(),
            outside_if: outside_if.to_string(),
            t0_unix_ns: start_at,
            seed: plan.seed,
            policy: sc.censor.clone(),
            hosts: callwall_scenario::host_map(&sc.topology),
            decisions: out.dir.map(|d| d.join("decisions.jsonl")),
            pcap: if plan.pcap { out.dir.map(|d| d.join("censor.pcap")) } else { None },
            bridge: crate::roles::bridge_options_from_env()?,
            watch: crate::external::watched_callers(&sc.topology, calls),
        };
        out.artifacts.decisions = cfg.decisions.as_ref().map(|_| "decisions.jsonl".to_string());
        out.artifacts.pcap = cfg.pcap.as_ref().map(|_| "censor.pcap".to_string());
        let mut cmd =
            network.command(censor_host, exe).map_err(|e| HarnessError::Setup(e.to_string()))?;
        cmd.arg("__censor")
            .arg("--config")
            .arg(serde_json::to_string(&cfg).map_err(|e| HarnessError::Setup(e.to_string()))?);
        let mut service = Service::spawn("censor", cmd, out.log("censor").as_deref(), true)?;
        service.wait_ready()?;
        let control = Arc::new(Mutex::new(service.stdin.take()));
        crate::control::forward_to(BufReader::new(std::io::stdin()), control.clone());
        Ok(Censor { service: Some(service), control: Some(control) })
    }

    /// Stops the censor and reads its report: the per-rule and per-flow counters, the
    /// bins of the watched callers' traffic (`None` without a censor) (for judging external calls from the network), and
    /// from the decision log in `dir`, the notable events and the live control changes.
    fn stop(
        self,
        deadline: Instant,
        dir: Option<&Path>,
    ) -> Result<(CensorResult, Option<Vec<PairBins>>), HarnessError> {
        if let Some(c) = &self.control {
            drop(c.lock().unwrap_or_else(|p| p.into_inner()).take());
        }
        let Some(service) = self.service else { return Ok((CensorResult::default(), None)) };
        let (out, status) = service.stop(deadline);
        let report = out
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(serde_json::from_str::<CensorOutput>);
        let Some(Ok(o)) = report else {
            return Err(HarnessError::Setup(format!(
                "the censor gave no report ({status}); see censor.log"
            )));
        };
        let mut result = CensorResult::from((o.report, o.bridge));
        result.stalls = o.stalls;
        if let Some(path) = dir.map(|d| d.join("decisions.jsonl")) {
            result.events = notable_events(&path);
            result.control = crate::control::read_changes(&path);
        }
        Ok((result, Some(o.call_bins)))
    }
}

/// One placed built-in call copy: its peers and where its caller sits.
struct PlacedCall {
    name: String,
    call_index: usize,
    caller_addr: IpAddr,
    caller: Service,
    callee: Service,
    deadline: Instant,
}

/// One placed external call copy.
struct PlacedExternal {
    name: String,
    call_index: usize,
    caller_addr: IpAddr,
    placed: crate::external::ExternalPlaced,
}

/// Every call copy placed (phase 4).
struct Placed {
    builtin: Vec<PlacedCall>,
    external: Vec<PlacedExternal>,
}

impl Placed {
    /// Waits for every call's peers (each killed at its deadline) and reads their reports.
    fn wait(self, calls: &[&Call]) -> Finished {
        let builtin = self
            .builtin
            .into_iter()
            .map(|p| {
                let (caller_out, caller_status) = p.caller.finish(p.deadline);
                let (callee_out, callee_status) = p.callee.finish(p.deadline);
                let t = &calls[p.call_index].transport;
                let caller = parse_report(caller_out, &caller_status, Role::Caller, t);
                let callee = parse_report(callee_out, &callee_status, Role::Callee, t);
                (p.name, p.call_index, p.caller_addr, caller, callee)
            })
            .collect();
        let external = self
            .external
            .into_iter()
            .map(|e| (e.name, e.call_index, e.caller_addr, e.placed.finish()))
            .collect();
        Finished { builtin, external }
    }
}

/// Phase 4: every copy of every call, each with its own caller and callee address (for
/// attribution), its peers started in their hosts.
fn place_calls(
    plan: &RunPlan,
    calls: &[&Call],
    network: &mut Network,
    exe: &Path,
    services: &Services,
    start_at: u64,
    out: &mut Outputs<'_>,
) -> Result<Placed, HarnessError> {
    let sc = &plan.scenario;
    let voice = VoiceModel::default();
    let root = crate::external::root_of(&plan.topology_dir);
    let ext_relay = match &services.relay {
        Some(r) if calls.iter().any(|c| c.peer.is_some()) => Some(crate::external::relay_env(
            &r.info,
            &Path::new(crate::SCRATCH_DIR).join("callwall-external"),
        )?),
        _ => None,
    };
    let mut placed = Placed { builtin: Vec::new(), external: Vec::new() };
    let mut copy = 0u32;
    for (ci, call) in calls.iter().enumerate() {
        for k in 0..call.placements() {
            let name = if call.placements() > 1 {
                format!("{}#{}", call.name, k + 1)
            } else {
                call.name.clone()
            };
            let address = |network: &mut Network, host: &str| {
                call_address(network, &sc.topology, host, copy).map_err(|e| {
                    HarnessError::Setup(format!("adding an address for call {name}: {e}"))
                })
            };
            let caller_addr = address(network, &call.caller)?;
            let callee_ip = address(network, &call.callee)?;
            copy += 1;
            let call_id = format!("{}-{}", sanitize(&name), copy);
            let seed = callwall_units::seed::derive(
                plan.seed,
                callwall_units::seed::Purpose::Placement,
                copy.into(),
            );
            if let Some(peers) = &call.peer {
                let spec = crate::external::ExternalCallSpec {
                    name: &name,
                    // The contract's CALLWALL_CALL_ID: the call's name in results (unique in
                    // the run; `name#k` for copy k of a call placed several times).
                    call_id: name.clone(),
                    peers,
                    caller_host: &call.caller,
                    callee_host: &call.callee,
                    caller_ip: caller_addr,
                    callee_ip,
                    signal: services.signal_addr,
                    seed,
                    connect_timeout: call.connect_timeout.as_std(),
                    duration: call.duration.as_std(),
                    media_port: peers
                        .media_ports
                        .get(k as usize)
                        .copied()
                        .unwrap_or(callwall_scenario::external::DEFAULT_MEDIA_PORT),
                    out: out.dir,
                    root: &root,
                    relay: ext_relay.as_ref(),
                };
                let ext = crate::external::place(network, &spec);
                placed.external.push(PlacedExternal {
                    name,
                    call_index: ci,
                    caller_addr,
                    placed: ext,
                });
                continue;
            }
            let spec = |role: Role, ip: IpAddr| PeerSpec {
                transport: call.transport.clone(),
                strategies: call.strategies.clone(),
                ctx: CallContext {
                    call_id: call_id.clone(),
                    role,
                    local_ip: ip,
                    signal: services.signal_addr,
                    relay: services.relay.as_ref().map(|r| r.info.clone()),
                    options: call.options.clone(),
                    connect_timeout: call.connect_timeout.as_std(),
                    seed,
                },
                start_at_unix_ns: start_at,
                duration: call.duration.as_std(),
                voice,
                audio: crate::audio::peer_audio(plan.audio.as_ref(), plan.repeat, &sc.name, &name),
            };
            let file = sanitize(&name);
            let callee_log = out.log(&format!("{file}.callee"));
            let callee = spawn_peer(
                network,
                exe,
                &call.callee,
                &spec(Role::Callee, callee_ip),
                callee_log.as_deref(),
            )?;
            let caller_log = out.log(&format!("{file}.caller"));
            let caller = spawn_peer(
                network,
                exe,
                &call.caller,
                &spec(Role::Caller, caller_addr),
                caller_log.as_deref(),
            )?;
            out.artifacts.logs.push(format!("{file}.caller.log"));
            out.artifacts.logs.push(format!("{file}.callee.log"));
            let mut deadline = Instant::now() + START_DELAY + plan.calls[ci].budget + PEER_GRACE;
            if plan.audio.is_some() {
                deadline += crate::audio::AUDIO_GRACE;
            }
            placed.builtin.push(PlacedCall {
                name,
                call_index: ci,
                caller_addr,
                caller,
                callee,
                deadline,
            });
        }
    }
    Ok(placed)
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
) -> Result<IpAddr, CallAddressError> {
    use CallAddressError as E;
    let spec = topology.host(host).ok_or_else(|| E::NoHost(host.to_string()))?;
    let (iface, cidr) = spec
        .interfaces
        .iter()
        .find_map(|i| i.addrs.iter().find(|c| c.addr.is_ipv4()).map(|c| (i.name.clone(), *c)))
        .ok_or_else(|| E::NoIpv4(host.to_string()))?;
    let IpAddr::V4(net) = cidr.network() else { return Err(E::NoIpv4(host.to_string())) };
    let size = 1u32 << (32 - u32::from(cidr.prefix_len).min(32));
    let host_part = CALL_ADDR_BASE + n;
    if host_part + 1 >= size {
        return Err(E::SubnetTooSmall {
            host: host.to_string(),
            subnet: format!("{net}/{}", cidr.prefix_len),
            calls: n + 1,
        });
    }
    let addr = IpAddr::V4(std::net::Ipv4Addr::from(u32::from(net) + host_part));
    network.add_address(
        host,
        &iface,
        callwall_netns::Cidr { addr, prefix_len: cidr.prefix_len },
    )?;
    Ok(addr)
}

/// Why a call copy could not get its address.
#[derive(Debug, thiserror::Error)]
enum CallAddressError {
    #[error("no host {0} in the topology")]
    NoHost(String),
    #[error("host {0} has no IPv4 address")]
    NoIpv4(String),
    #[error("the subnet {subnet} of {host} is too small for {calls} calls")]
    SubnetTooSmall { host: String, subnet: String, calls: u32 },
    #[error(transparent)]
    Netns(#[from] callwall_netns::NetnsError),
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
