//! What starting an external call adds over a built-in call (issue 13 target: under 50 ms).
//!
//! Both cases start the same program (`/bin/true`, so the program's own start-up cancels out)
//! the way the harness starts a call's two peers, and wait for both to end:
//! - **built-in**: as `crate::run::Service::spawn` starts callwall's own peers: a `Command`
//!   with piped stdin and stdout (read by a thread) and stderr to a log file;
//! - **external**: as `crate::external::place` does: the contract's environment, a log
//!   directory with stdout/stderr logs, a process group and a parent-death signal, the stderr
//!   tail thread, the deadline wait, the group kill and the report read
//!   (`callwall_peer_ext::spawn_peer` + `RunningPeer::wait`).
//!
//! Entering the host's namespaces (`Network::command`) is the same for both and left out.
//! Rounds alternate the two cases; the figures are medians per call (two peers), and the
//! difference and ratio are of the same run. `cargo bench -p callwall-peer-ext --bench start`
//! (`-- N` for N rounds, default 200).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use callwall_peer_ext::{spawn_peer, ExternalPeerContext, RunLimits};
use callwall_transport::{Role, VoiceModel};

const PROGRAM: &str = "/bin/true";
const TARGET_MS: f64 = 50.0;

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("peer-ext-start-bench")
}

fn builtin_call() -> Duration {
    let t = Instant::now();
    let mut children = Vec::new();
    for role in ["caller", "callee"] {
        let log = std::fs::File::create(scratch().join(format!("builtin.{role}.log"))).unwrap();
        let mut c = Command::new(PROGRAM)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn");
        let mut out = c.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
        });
        children.push((c, reader));
    }
    for (mut c, reader) in children {
        drop(c.stdin.take());
        c.wait().unwrap();
        reader.join().unwrap();
    }
    t.elapsed()
}

fn context(role: Role) -> ExternalPeerContext {
    let dir = scratch().join(format!("ext.{}", callwall_peer_ext::contract::role_str(role)));
    ExternalPeerContext {
        call_id: "bench".into(),
        role,
        local_ip: "10.1.0.128".parse().unwrap(),
        peer_ip: "10.2.0.128".parse().unwrap(),
        media_port: 40000,
        signal: "10.4.0.2:7000".parse().unwrap(),
        rendezvous: "ext/bench".into(),
        relay: None,
        seed: 1,
        start_at_unix_ns: callwall_transport::voice::unix_ns_now(),
        connect_timeout: Duration::from_secs(10),
        duration: Duration::from_secs(4),
        drain: Duration::from_secs(1),
        voice: VoiceModel::default(),
        report_path: dir.join("report.jsonl"),
        log_dir: dir,
    }
}

fn external_call() -> Duration {
    let t = Instant::now();
    let mut peers = Vec::new();
    for role in [Role::Callee, Role::Caller] {
        let ctx = context(role);
        let limits = RunLimits::for_context(&ctx, Duration::from_secs(5));
        peers.push(spawn_peer(Command::new(PROGRAM), &ctx, limits).expect("spawn"));
    }
    for p in peers {
        let run = p.wait();
        assert!(matches!(run.outcome(), callwall_peer_ext::PeerOutcome::Ran { .. }), "{run:?}");
    }
    t.elapsed()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200).max(1);
    std::fs::create_dir_all(scratch()).unwrap();
    // Warm-up: page cache, the allocator, thread stacks.
    for _ in 0..5 {
        builtin_call();
        external_call();
    }
    let (mut b, mut e, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let x = builtin_call().as_secs_f64() * 1e3;
        let y = external_call().as_secs_f64() * 1e3;
        b.push(x);
        e.push(y);
        d.push(y - x);
    }
    let (mb, me, md) = (median(&mut b), median(&mut e), median(&mut d));
    let p90 = {
        d.sort_by(f64::total_cmp);
        d[(d.len() * 9 / 10).min(d.len() - 1)]
    };
    println!("start of a call (two peers, {PROGRAM}), {rounds} rounds, medians:");
    println!("  built-in path   {mb:8.2} ms");
    println!("  external path   {me:8.2} ms");
    println!(
        "  external adds   {md:8.2} ms (p90 {p90:.2} ms), ratio {:.2}x; target < {TARGET_MS} ms: {}",
        me / mb,
        if md < TARGET_MS { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(scratch());
}
