//! The hidden subcommands' bodies: the processes a run starts inside its sandbox (its PID 1,
//! the censor, the signal server, the peers, the reflector). The binary parses the arguments
//! and passes in the transports it registers.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use crate::roles::{censor_main, signal_main, CensorConfig};
use crate::{sandbox_main, RunPlan};
use callwall_transport::peer::{PeerReport, PeerSpec};
use callwall_transport::VoiceTransport;

fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("callwall {what}: {e}");
    ExitCode::from(2)
}

/// `__sandbox --args JSON`: PID 1 of a run; the JSON is its `RunPlan`.
pub fn sandbox(args_json: &str) -> ExitCode {
    let plan: RunPlan = match serde_json::from_str(args_json) {
        Ok(a) => a,
        Err(e) => return fail("sandbox", format!("bad arguments: {e}")),
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail("sandbox", e),
    };
    // No generic zombie reaper here: waitpid(-1) would steal the exit statuses the harness
    // waits for. Orphans, if any, are reaped by the kernel when this PID namespace ends.
    let result = sandbox_main(&plan, &exe);
    match serde_json::to_string(&result) {
        Ok(line) => {
            println!("{line}");
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => fail("sandbox", e),
    }
}

/// `__censor --config JSON`.
pub fn censor(config_json: &str) -> ExitCode {
    let cfg: CensorConfig = match serde_json::from_str(config_json) {
        Ok(c) => c,
        Err(e) => return fail("censor", format!("bad config: {e}")),
    };
    match censor_main(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("censor", e),
    }
}

/// `__signal --listen ADDR`.
pub fn signal(listen: std::net::SocketAddr) -> ExitCode {
    match signal_main(listen) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("signal", e),
    }
}

/// `__peer`: reads a PeerSpec line on stdin, places or answers the call, prints a PeerReport.
pub fn peer(all: Vec<Box<dyn VoiceTransport>>) -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        return fail("peer", e);
    }
    let spec: PeerSpec = match serde_json::from_str(&line) {
        Ok(s) => s,
        Err(e) => return fail("peer", format!("bad spec: {e}")),
    };
    inject_fault(&spec);
    let rt =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(r) => r,
            Err(e) => return fail("peer", e),
        };
    let refs: Vec<&dyn VoiceTransport> = all.iter().map(|b| b.as_ref()).collect();
    let report: PeerReport = crate::audio::run_peer_audio(&rt, &spec, &refs, cpu_ms);
    match serde_json::to_string(&report) {
        Ok(s) => {
            println!("{s}");
            let _ = std::io::stdout().flush();
            // Do not wait for lingering transport tasks.
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            ExitCode::SUCCESS
        }
        Err(e) => fail("peer", e),
    }
}

/// This process's CPU time (user + system) so far, in milliseconds.
fn cpu_ms() -> f64 {
    // /proc/self/stat fields 14 and 15 (utime, stime) in clock ticks; the name field may
    // contain spaces, so count from the closing parenthesis.
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on every Linux ABI this runs on.
    (ticks(11) + ticks(12)) * 10.0
}

/// Fault injection for reliability tests: `CALLWALL_FAULT_INJECT=<crash|hang>:<caller|callee>:<call-id prefix>`
/// makes the matching peer abort or hang before it does anything, so tests can check that
/// the call gets the verdict `error` and the run goes on.
fn inject_fault(spec: &PeerSpec) {
    let Ok(v) = std::env::var("CALLWALL_FAULT_INJECT") else { return };
    let mut parts = v.splitn(3, ':');
    let (Some(kind), Some(role), Some(prefix)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let my_role = format!("{:?}", spec.ctx.role).to_lowercase();
    if role != my_role || !spec.ctx.call_id.starts_with(prefix) {
        return;
    }
    match kind {
        "crash" => std::process::abort(),
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        _ => {}
    }
}

/// `__reflector --listen IP`: the Telegram-like reflector on every reflector port of `IP`
/// (UDP 596-599 and 1400). Prints `ready` once bound, its counters on stderr every 5 s, and
/// runs until killed.
pub fn reflector(listen: std::net::IpAddr) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail("reflector", e),
    };
    rt.block_on(async move {
        let ports = callwall_reflector::PORTS;
        let server = match callwall_reflector::Server::start(listen, ports).await {
            Ok(s) => s,
            Err(e) => {
                return fail("reflector", format!("cannot bind {listen} ports {ports:?}: {e}"))
            }
        };
        println!("ready");
        let _ = std::io::stdout().flush();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            eprintln!("{:?}", server.counters());
        }
    })
}
