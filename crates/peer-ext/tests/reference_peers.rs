//! The reference peers in `peers/`, for real: each pair is started with the contract's
//! environment in a throwaway pair of network namespaces (caller and callee joined by one
//! veth), with callwall's signal server in the callee's namespace, and must show media both
//! ways in its own reports. Needs root (or unprivileged user namespaces) and `make deps` (the
//! Python virtualenv `.venv/`); without them the tests fail saying so.
//!
//! Outer tests re-execute this binary inside `spawn_sandboxed` (a PID namespace, a private
//! mount namespace with a fresh tmpfs on /tmp for the peers' logs and on /run for
//! wireguard-go's control socket) with `ROLE` naming the
//! inner function; inner functions return at once when `ROLE` is not theirs.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use callwall_netns::{init, spawn_sandboxed, Network, SandboxOptions, Topology};
use callwall_peer_ext::{
    judge_external, spawn_peer, CallFacts, ExternalJudgement, ExternalPeerContext,
    NetworkThresholds, PeerOutcome, RunLimits,
};
use callwall_transport::{signal, Role, Thresholds, Verdict, VoiceModel};

const ROLE: &str = "CALLWALL_PEER_EXT_TEST_ROLE";
const CALLER_IP: &str = "10.77.0.1";
const CALLEE_IP: &str = "10.77.0.2";
const SIGNAL_PORT: u16 = 7000;
const DURATION: Duration = Duration::from_secs(3);

const TOPOLOGY: &str = r#"
name = "peer-ext-test"
description = "two peers on one veth"

[[hosts]]
name = "caller"

[[hosts]]
name = "callee"

[[links]]
a = { host = "caller", addrs = ["10.77.0.1/24"] }
b = { host = "callee", addrs = ["10.77.0.2/24"] }
"#;

fn role_is(name: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == name)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let p = repo().join(".venv/bin/python3");
    assert!(
        p.exists(),
        "{} is missing: run `make deps` to create the peers' virtualenv",
        p.display()
    );
    p
}

/// Runs inner test `name` in a sandbox and checks it passed.
fn outer(name: &str) {
    if let Err(e) = callwall_netns::check_environment() {
        panic!("these tests need namespaces: {e}");
    }
    let mut c = Command::new(std::env::current_exe().expect("current_exe"));
    c.args([name, "--exact", "--nocapture", "--test-threads=1"]).env(ROLE, name);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child =
        spawn_sandboxed(c, SandboxOptions::private_mounts_with_tmpfs(["/tmp", "/run", "/dev/shm"]))
            .expect("spawn sandbox");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "inner test failed: {}", out.status);
    assert!(stdout.contains("INNER-OK"), "inner test did not run");
}

fn context(role: Role, name: &str, start_at_unix_ns: u64) -> ExternalPeerContext {
    let (local, peer) = match role {
        Role::Caller => (CALLER_IP, CALLEE_IP),
        Role::Callee => (CALLEE_IP, CALLER_IP),
    };
    let dir = PathBuf::from("/tmp/peer-ext").join(name).join(format!("{role:?}").to_lowercase());
    ExternalPeerContext {
        call_id: name.to_string(),
        role,
        local_ip: local.parse().expect("ip"),
        peer_ip: peer.parse().expect("ip"),
        media_port: 40000,
        signal: SocketAddr::new(CALLEE_IP.parse::<IpAddr>().expect("ip"), SIGNAL_PORT),
        rendezvous: format!("test/{name}"),
        relay: None,
        seed: 1,
        start_at_unix_ns,
        connect_timeout: Duration::from_secs(10),
        duration: DURATION,
        drain: Duration::from_secs(1),
        voice: VoiceModel::default(),
        report_path: dir.join("report.jsonl"),
        log_dir: dir,
    }
}

/// Places one call with the pair `args(role)`, `tweak` applied to each peer's context, and
/// returns the two outcomes and the judgement from the reports.
fn call(
    name: &str,
    start_delay: Duration,
    args: impl Fn(Role) -> Vec<String>,
    tweak: impl Fn(&mut ExternalPeerContext),
) -> (PeerOutcome, PeerOutcome, ExternalJudgement) {
    assert!(init::is_pid1(), "not PID 1 of a new PID namespace");
    let topo = Topology::from_str(TOPOLOGY, "peer-ext-test.toml").expect("topology");
    let net = Network::build(&topo).expect("build network");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // The signal server's socket is created inside the callee's namespace.
    let listener = net
        .run_in("callee", || std::net::TcpListener::bind((CALLEE_IP, SIGNAL_PORT)))
        .expect("enter callee")
        .expect("bind signal server");
    listener.set_nonblocking(true).expect("nonblocking");
    let server = rt.spawn(async move {
        let l = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        signal::serve(l).await
    });

    // Python and the WebRTC/QUIC stacks (or a browser) take a while to start: the call starts
    // `start_delay` from now, as the harness gives every call a common start.
    let start = callwall_transport::voice::unix_ns_now() + start_delay.as_nanos() as u64;
    let python = python();
    let spawn = |role: Role| {
        let host = match role {
            Role::Caller => "caller",
            Role::Callee => "callee",
        };
        let mut ctx = context(role, name, start);
        tweak(&mut ctx);
        let mut cmd = net.command(host, &python).expect("command");
        cmd.args(args(role)).current_dir(repo());
        let limits = RunLimits::for_context(&ctx, Duration::from_secs(10));
        (spawn_peer(cmd, &ctx, limits).expect("spawn peer"), ctx)
    };
    let (callee, callee_ctx) = spawn(Role::Callee);
    let (caller, _) = spawn(Role::Caller);
    let callee_run = std::thread::spawn(move || callee.wait());
    let caller_run = caller.wait();
    let callee_run = callee_run.join().expect("join");
    server.abort();

    for (n, r) in [("caller", &caller_run), ("callee", &callee_run)] {
        println!("{n}: exit {:?} in {:?}; stderr tail:\n{}", r.exit, r.elapsed, r.stderr_tail);
    }
    let a = caller_run.outcome();
    let b = callee_run.outcome();
    let facts = CallFacts {
        transport: name,
        start_unix_ns: start,
        voice: callee_ctx.voice,
        drain: callee_ctx.drain,
    };
    let j =
        judge_external(&a, &b, &facts, None, &Thresholds::default(), &NetworkThresholds::default());
    println!("verdict {} ({})", j.verdict, j.reason);
    drop(net);
    (a, b, j)
}

/// A call on a clean veth must connect, with the voice clock's frames heard both ways.
fn place_call(name: &str, start_delay: Duration, args: impl Fn(Role) -> Vec<String>) {
    let (a, b, j) = call(name, start_delay, args, |_| {});
    for (n, o) in [("caller", &a), ("callee", &b)] {
        match o {
            PeerOutcome::Ran { report, connected } => {
                assert!(connected, "{n} did not connect");
                assert!(report.reports_frames(), "{n} reported no frames");
                let sent = report.sent.map(|s| s.frames).unwrap_or(0);
                println!(
                    "{n}: {} via {:?}: sent {sent}, received {}",
                    report.implementation.as_deref().unwrap_or("?"),
                    report.path,
                    report.arrivals.len()
                );
                // The voice clock: one frame per 20 ms for the whole call.
                let frames = (DURATION.as_millis() / 20) as u64;
                assert!(
                    (frames..=frames + 1).contains(&sent),
                    "{n} sent {sent} frames in {DURATION:?}"
                );
                assert!(
                    report.arrivals.len() as u64 >= sent * 9 / 10,
                    "{n} received only {} frames",
                    report.arrivals.len()
                );
            }
            PeerOutcome::Failed(e) => panic!("{n} failed: {e}"),
        }
    }
    let m = j.metrics.as_ref().expect("full figures from the reports");
    println!("MOS {:.2}, setup {:?} ms", m.mos, m.setup_ms);
    // A clean veth: nothing lost, nothing late.
    assert!(m.up.frames_received > 0 && m.down.frames_received > 0);
    assert_eq!(j.verdict, Verdict::Connected, "{}", j.reason);
    println!("INNER-OK");
}

fn peer_args(script: &str, caller: &[&str], callee: &[&str]) -> impl Fn(Role) -> Vec<String> {
    let with = |flags: &[&str]| {
        std::iter::once(script).chain(flags.iter().copied()).map(str::to_string).collect()
    };
    let (caller, callee): (Vec<String>, Vec<String>) = (with(caller), with(callee));
    move |role| if role == Role::Caller { caller.clone() } else { callee.clone() }
}

#[test]
fn aiortc_pair_talks() {
    outer("inner_aiortc");
}

#[test]
fn inner_aiortc() {
    if !role_is("inner_aiortc") {
        return;
    }
    place_call(
        "aiortc",
        Duration::from_secs(3),
        peer_args("peers/aiortc/peer.py", &["--offer"], &["--answer"]),
    );
}

#[test]
fn aioquic_pair_talks() {
    outer("inner_aioquic");
}

#[test]
fn inner_aioquic() {
    if !role_is("inner_aioquic") {
        return;
    }
    place_call(
        "aioquic",
        Duration::from_secs(3),
        peer_args("peers/aioquic/peer.py", &["--client"], &["--server"]),
    );
}

#[test]
fn wireguard_pair_talks() {
    outer("inner_wireguard");
}

#[test]
fn inner_wireguard() {
    if !role_is("inner_wireguard") {
        return;
    }
    place_call("wireguard", Duration::from_secs(3), peer_args("peers/wireguard/peer.py", &[], &[]));
}

#[test]
fn chromium_pair_talks() {
    outer("inner_chromium");
}

#[test]
fn inner_chromium() {
    if !role_is("inner_chromium") {
        return;
    }
    place_call("chromium", Duration::from_secs(8), peer_args("peers/chromium/peer.py", &[], &[]));
}

/// A real peer that cannot reach the other (the caller dials an address nobody has, as if the
/// censor dropped everything) gives up at its connect timeout: `blocked`, never `error`.
#[test]
fn an_unreachable_callee_is_blocked_not_error() {
    outer("inner_unreachable");
}

#[test]
fn inner_unreachable() {
    if !role_is("inner_unreachable") {
        return;
    }
    let (a, b, j) = call(
        "aioquic-unreachable",
        Duration::from_secs(3),
        peer_args("peers/aioquic/peer.py", &["--client"], &["--server"]),
        |ctx| {
            ctx.connect_timeout = Duration::from_secs(3);
            if ctx.role == Role::Caller {
                ctx.peer_ip = "10.77.0.3".parse().expect("ip");
            }
        },
    );
    for (n, o) in [("caller", &a), ("callee", &b)] {
        match o {
            PeerOutcome::Ran { report, connected } => {
                assert!(!connected, "{n} connected to nobody");
                assert_eq!(report.sent.map(|s| s.frames), Some(0), "{n}");
            }
            PeerOutcome::Failed(e) => panic!("{n} failed: {e}"),
        }
    }
    assert_eq!(j.verdict, Verdict::Blocked, "{}", j.reason);
    println!("INNER-OK");
}
