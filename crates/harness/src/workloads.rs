//! The activities beside the calls: a run's workload servers, DNS resolver and clients.
//!
//! Inside the sandbox, for a scenario with `[[workloads]]` (or a `[dns]` table):
//!
//! 1. [`start_servers`] makes one [`RunCa`] for the run, starts the DNS server on the `[dns]`
//!    host with the scenario's zone (every workload host name pointing at its server host,
//!    minus removed names, plus forged answers), and one server process per (host, port) with
//!    a certificate naming every host name served there. Certificates, keys and configs travel
//!    over the processes' stdin, never through a file.
//! 2. [`start_clients`] starts each client in its client host (behind the censor like the
//!    caller, by default the caller itself) at the calls' start plus the workload's `start`;
//!    clients resolve their host name through the run's DNS host.
//! 3. [`collect`] waits for every client's `WorkloadReport` (each with a hard deadline), then
//!    judges it against the scenario's `expect` into a [`WorkloadResult`].
//! 4. [`Servers::stop`] closes the servers' stdin (their stop signal).
//!
//! The processes are the binary's hidden `__workload-server` and `__workload-client`
//! subcommands: a server reads one [`ServerConfig`] JSON line on stdin, prints `ready` once
//! bound and serves until stdin closes; a client reads one [`ClientSpec`] JSON line and prints
//! one `WorkloadReport` JSON line.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use callwall_netns::Network;
use callwall_results::WorkloadCause;
use callwall_scenario::workload::Workload;
use callwall_scenario::Scenario;
use callwall_workload::WorkloadReport;
use callwall_workload_net::{dns::Zone, ClientSpec, RunCa, ServerConfig, ServerRole, DNS_PORT};

use crate::plan::CLIENT_GRACE;
use crate::process::{sanitize, Service, KILLED_AT_DEADLINE};
use crate::result::WorkloadResult;
use crate::HarnessError;

/// The run's servers and what clients need to reach them.
pub struct Servers {
    services: Vec<Service>,
    ca_pem: String,
    resolver: Option<SocketAddr>,
}

/// A started client.
pub struct Client {
    index: usize,
    service: Service,
    deadline: Instant,
}

fn setup(e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Setup(e.to_string())
}

fn spawn_with_stdin(
    network: &mut Network,
    exe: &Path,
    host: &str,
    sub: &str,
    json: &str,
    log: Option<&Path>,
    wants_ready: bool,
) -> Result<Service, HarnessError> {
    let mut cmd: Command = network.command(host, exe).map_err(setup)?;
    cmd.arg(sub);
    let what = format!("{} on {host}", sub.trim_start_matches('_'));
    let mut s = Service::spawn(&what, cmd, log, wants_ready)?;
    if let Some(stdin) = s.stdin.as_mut() {
        stdin
            .write_all(json.as_bytes())
            .and_then(|_| stdin.write_all(b"\n"))
            .and_then(|_| stdin.flush())
            .map_err(|e| HarnessError::io("sending a workload process its config", e))?;
    }
    Ok(s)
}

/// Starts the DNS server and the workload servers; `None` when the scenario has neither
/// workloads nor a `[dns]` table. `log` names a log file for a process.
pub fn start_servers(
    sc: &Scenario,
    network: &mut Network,
    exe: &Path,
    log: &dyn Fn(&str) -> Option<std::path::PathBuf>,
) -> Result<Option<Servers>, HarnessError> {
    if sc.workloads.is_empty() && sc.dns.is_none() {
        return Ok(None);
    }
    let ca = RunCa::generate().map_err(setup)?;
    let mut services = Vec::new();
    let mut resolver = None;
    if let Some(d) = &sc.dns {
        let ip = sc
            .topology
            .ipv4_of(&d.host)
            .map(IpAddr::V4)
            .ok_or_else(|| setup(format!("the dns host {:?} has no IPv4 address", d.host)))?;
        let cfg = ServerConfig {
            role: ServerRole::Dns,
            listen: ip,
            port: Some(DNS_PORT),
            identity: None,
            zone: Some(Zone { records: d.records.clone() }),
        };
        let json = serde_json::to_string(&cfg).map_err(setup)?;
        let s = spawn_with_stdin(
            network,
            exe,
            &d.host,
            "__workload-server",
            &json,
            log("workload-dns").as_deref(),
            true,
        )?;
        services.push(s);
        resolver = Some(SocketAddr::new(ip, DNS_PORT));
    }
    // One server per (host, port), naming every host name served there.
    let mut groups: BTreeMap<(String, u16), (ServerRole, Vec<String>)> = BTreeMap::new();
    for w in &sc.workloads {
        let role = ServerRole::serving(&w.params);
        let e = groups.entry((w.server.clone(), w.port)).or_insert((role, Vec::new()));
        if e.0 != role {
            return Err(setup(format!(
                "workload {:?}: host {} port {} already serves another kind; give it another \
                 server host or port",
                w.name, w.server, w.port
            )));
        }
        if !e.1.contains(&w.host_name) {
            e.1.push(w.host_name.clone());
        }
    }
    for ((host, port), (role, names)) in groups {
        let ip = sc
            .topology
            .ipv4_of(&host)
            .map(IpAddr::V4)
            .ok_or_else(|| setup(format!("the workload host {host:?} has no IPv4 address")))?;
        let cfg = ServerConfig {
            role,
            listen: ip,
            port: Some(port),
            identity: Some(ca.issue(&names).map_err(setup)?),
            zone: None,
        };
        let json = serde_json::to_string(&cfg).map_err(setup)?;
        let s = spawn_with_stdin(
            network,
            exe,
            &host,
            "__workload-server",
            &json,
            log(&format!("workload-server.{host}.{port}")).as_deref(),
            true,
        )?;
        services.push(s);
    }
    for s in &services {
        s.wait_ready()?;
    }
    Ok(Some(Servers { services, ca_pem: ca.cert_pem(), resolver }))
}

/// Starts every workload's client in its host, to begin at `start_at_unix_ns` plus the
/// workload's `start`.
pub fn start_clients(
    sc: &Scenario,
    servers: &Servers,
    network: &mut Network,
    exe: &Path,
    start_at_unix_ns: u64,
    log: &dyn Fn(&str) -> Option<std::path::PathBuf>,
) -> Result<Vec<Client>, HarnessError> {
    let now = callwall_workload_net::unix_ns_now();
    let mut clients = Vec::new();
    for (index, w) in sc.workloads.iter().enumerate() {
        let start = start_at_unix_ns + w.start.as_std().as_nanos() as u64;
        let spec = ClientSpec {
            name: w.name.clone(),
            app: w.app.clone(),
            params: w.params,
            server_name: w.host_name.clone(),
            port: Some(w.port),
            resolver: servers.resolver,
            server_addr: sc.topology.ipv4_of(&w.server).map(IpAddr::V4),
            ca_pem: servers.ca_pem.clone(),
            start_at_unix_ns: start,
            timeout: w.timeout,
            request_timeout: None,
        };
        let json = serde_json::to_string(&spec).map_err(setup)?;
        let file = sanitize(&w.name);
        let mut service = spawn_with_stdin(
            network,
            exe,
            &w.client,
            "__workload-client",
            &json,
            log(&format!("workload.{file}")).as_deref(),
            false,
        )?;
        drop(service.stdin.take());
        let wait = Duration::from_nanos(start.saturating_sub(now));
        let deadline = Instant::now() + wait + w.timeout.as_std() + CLIENT_GRACE;
        clients.push(Client { index, service, deadline });
    }
    Ok(clients)
}

/// Waits for every client and judges its report against the scenario's expectation.
pub fn collect(sc: &Scenario, clients: Vec<Client>) -> Vec<WorkloadResult> {
    collect_from(&sc.workloads, clients)
}

/// [`collect`] over the scenario's workloads: a client whose last line is a report gets the
/// report's outcome; one that crashed (exit status, signal, no parsable report) or hung past
/// its deadline is `error`, a failure of the testbed that never meets `failed`.
fn collect_from(workloads: &[Workload], clients: Vec<Client>) -> Vec<WorkloadResult> {
    clients
        .into_iter()
        .map(|c| {
            let w = &workloads[c.index];
            let (out, status) = c.service.finish(c.deadline);
            let last = out
                .as_deref()
                .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string));
            match last.as_deref().map(serde_json::from_str::<WorkloadReport>) {
                Some(Ok(r)) => result_of(w, &r),
                _ => {
                    let log = format!("workload.{}.log", sanitize(&w.name));
                    let reason = if status == KILLED_AT_DEADLINE {
                        WorkloadCause::Hung { log }
                    } else {
                        WorkloadCause::NoReport { status, log }
                    };
                    let outcome = callwall_workload::Outcome::Error;
                    WorkloadResult {
                        name: w.name.clone(),
                        kind: w.kind(),
                        app: w.app.clone(),
                        host_name: w.host_name.clone(),
                        proto: w.params.proto(),
                        outcome,
                        expected: w.expect.iter().copied().collect(),
                        met: w.expect.contains(&outcome),
                        figures: None,
                        reason: Some(reason),
                        elapsed_ms: 0.0,
                    }
                }
            }
        })
        .collect()
}

impl Servers {
    /// Closes every server's stdin and waits for it, killing at `deadline`.
    pub fn stop(self, deadline: Instant) {
        for s in self.services {
            let _ = s.stop(deadline);
        }
    }
}

/// A client's report as a run's workload result.
pub fn result_of(w: &Workload, r: &WorkloadReport) -> WorkloadResult {
    let reason = match &r.error {
        Some(e) if !e.is_empty() => Some(WorkloadCause::ClientError { error: e.clone() }),
        _ if r.outcome != callwall_workload::Outcome::Ok => {
            Some(WorkloadCause::Thresholds { outcome: r.outcome })
        }
        _ => None,
    };
    WorkloadResult {
        name: w.name.clone(),
        kind: w.kind(),
        app: w.app.clone(),
        host_name: w.host_name.clone(),
        proto: w.params.proto(),
        outcome: r.outcome,
        expected: w.expect.iter().copied().collect(),
        met: w.expect.contains(&r.outcome),
        figures: Some(r.figures.clone()),
        reason,
        elapsed_ms: r.elapsed_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_workload::{Outcome, Params};

    fn workload(name: &str) -> Workload {
        Workload {
            name: name.into(),
            app: "wa".into(),
            params: Params::default_for(callwall_workload::Kind::Message),
            client: "caller".into(),
            server: "msg".into(),
            host_name: "web.whatsapp.net".into(),
            port: 443,
            start: callwall_units::Duration::ZERO,
            timeout: callwall_units::Duration::from_secs(1),
            expect: vec![Outcome::Failed],
        }
    }

    /// A real process in place of the workload client: `sh -c script`.
    fn client(index: usize, script: &str, budget: Duration) -> Client {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        let service = Service::spawn("test client", cmd, None, false).expect("spawn sh");
        Client { index, service, deadline: Instant::now() + budget }
    }

    #[test]
    fn a_crashed_or_hung_client_is_an_error_that_never_meets_failed() {
        let ws = [workload("crashed"), workload("garbled"), workload("hung")];
        let clients = vec![
            // Killed by a signal before printing anything, as a crash would.
            client(0, "kill -SEGV $$", Duration::from_secs(20)),
            // Exits 0 with a last line that is no report.
            client(1, "echo 'thread main panicked'", Duration::from_secs(20)),
            // Still running at its deadline.
            client(2, "exec sleep 30", Duration::from_millis(300)),
        ];
        let r = collect_from(&ws, clients);
        for w in &r {
            assert_eq!(w.outcome, Outcome::Error, "{}", w.name);
            assert!(!w.met, "{}: error must not meet expect = failed", w.name);
            assert!(w.figures.is_none());
        }
        match &r[0].reason {
            Some(WorkloadCause::NoReport { status, .. }) => {
                assert!(status.contains("signal: 11"), "{status}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&r[1].reason, Some(WorkloadCause::NoReport { .. })), "{:?}", r[1]);
        assert_eq!(
            r[2].reason,
            Some(WorkloadCause::Hung { log: "workload.hung.log".into() }),
            "{:?}",
            r[2]
        );
    }
}
