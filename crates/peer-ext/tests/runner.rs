//! The runner with real processes (`/bin/sh` scripts standing in for peers that misbehave):
//! every way a peer can fail is an `error` with its stderr tail, never `blocked`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use callwall_peer_ext::contract::{ALL_VARS, ENV_ROLE};
use callwall_peer_ext::{
    spawn_peer, ExternalPeerContext, PeerExit, PeerOutcome, PeerRun, RunError, RunLimits,
};
use callwall_transport::{Role, VoiceModel};

/// A fresh log directory under cargo's scratch space for integration tests (not the host /tmp).
fn context(name: &str) -> ExternalPeerContext {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("peer-ext-runner").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    ExternalPeerContext {
        call_id: name.into(),
        role: Role::Callee,
        local_ip: "10.2.0.2".parse().unwrap(),
        peer_ip: "10.1.0.2".parse().unwrap(),
        media_port: 40000,
        signal: "10.4.0.2:7000".parse().unwrap(),
        rendezvous: format!("t/{name}"),
        relay: None,
        seed: 3,
        start_at_unix_ns: callwall_transport::voice::unix_ns_now(),
        connect_timeout: Duration::from_secs(1),
        duration: Duration::from_secs(1),
        drain: Duration::from_millis(100),
        voice: VoiceModel::default(),
        report_path: dir.join("report.jsonl"),
        log_dir: dir,
    }
}

fn run_sh(name: &str, script: &str, timeout: Duration) -> (PeerRun, ExternalPeerContext) {
    let ctx = context(name);
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    let limits = RunLimits { timeout, stderr_tail: 64, max_report_bytes: 1 << 20 };
    let run = spawn_peer(cmd, &ctx, limits).expect("spawn").wait();
    (run, ctx)
}

fn failure(run: &PeerRun) -> String {
    match run.outcome() {
        PeerOutcome::Failed(e) => e,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn the_peer_gets_the_contract_environment() {
    let (run, ctx) = run_sh(
        "env",
        "env | grep ^CALLWALL_ | sort > \"$CALLWALL_LOG_DIR/env\"",
        Duration::from_secs(10),
    );
    assert_eq!(run.exit, PeerExit::Code(0));
    let got = std::fs::read_to_string(ctx.log_dir.join("env")).unwrap();
    let want: Vec<String> = ctx.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
    assert!(got.contains(&format!("{ENV_ROLE}=callee")));
    assert_eq!(want.len(), ALL_VARS.len() - 6, "all but the six TURN variables");
    // No report at all: the peer ran and said nothing (judged from the network).
    match run.outcome() {
        PeerOutcome::Ran { report, connected } => {
            assert!(!connected && !report.reports_frames());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_peer_that_does_not_start_is_a_spawn_error() {
    let ctx = context("nostart");
    let e = spawn_peer(
        Command::new("/nonexistent/peer"),
        &ctx,
        RunLimits::for_context(&ctx, Duration::ZERO),
    )
    .unwrap_err();
    assert!(matches!(e, RunError::Spawn { .. }), "{e}");
    assert!(
        e.to_string().contains("/nonexistent/peer") && e.to_string().contains("make deps"),
        "{e}"
    );
}

#[test]
fn a_crash_is_an_error_with_the_stderr_tail() {
    let (run, _) = run_sh(
        "crash",
        "i=0; while [ $i -lt 20 ]; do echo \"noise $i\" >&2; i=$((i+1)); done; echo 'segfault in peer' >&2; kill -SEGV $$",
        Duration::from_secs(10),
    );
    assert_eq!(run.exit, PeerExit::Signal(libc::SIGSEGV));
    let e = failure(&run);
    assert!(e.contains("crashed: killed by signal 11"), "{e}");
    assert!(e.ends_with("segfault in peer"), "{e}");
    assert!(!e.contains("noise 0"), "the tail is bounded: {e}");
    // The whole stderr is kept in the log directory.
    let (run, ctx) = run_sh(
        "exit1",
        "echo 'ImportError: no module named aiortc' >&2; exit 1",
        Duration::from_secs(10),
    );
    let e = failure(&run);
    assert!(e.contains("failed with exit code 1") && e.contains("ImportError"), "{e}");
    let log = std::fs::read_to_string(ctx.log_dir.join("stderr.log")).unwrap();
    assert!(log.contains("ImportError"));
}

#[test]
fn a_hang_is_killed_at_the_deadline_with_everything_it_started() {
    let (run, ctx) = run_sh(
        "hang",
        "sleep 30 & echo $! > \"$CALLWALL_LOG_DIR/child\"; echo 'waiting forever' >&2; wait",
        Duration::from_millis(500),
    );
    assert!(matches!(run.exit, PeerExit::TimedOut(_)), "{:?}", run.exit);
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    let e = failure(&run);
    assert!(e.contains("hung") && e.contains("waiting forever"), "{e}");
    let child: i32 =
        std::fs::read_to_string(ctx.log_dir.join("child")).unwrap().trim().parse().unwrap();
    assert!(gone(child), "the peer's child {child} outlived it");
}

#[test]
fn a_child_left_behind_by_a_peer_that_exited_is_killed() {
    let (run, ctx) = run_sh(
        "orphan",
        "sleep 30 & echo $! > \"$CALLWALL_LOG_DIR/child\"; exit 0",
        Duration::from_secs(10),
    );
    assert_eq!(run.exit, PeerExit::Code(0));
    let child: i32 =
        std::fs::read_to_string(ctx.log_dir.join("child")).unwrap().trim().parse().unwrap();
    assert!(gone(child), "the peer's child {child} outlived it");
}

/// The process is gone or a zombie waiting for its (new) parent to reap it.
fn gone(pid: i32) -> bool {
    for _ in 0..100 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s) if s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')) => {
                return true
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

#[test]
fn a_malformed_report_names_line_and_field() {
    let (run, _) = run_sh(
        "malformed",
        "printf '{\"event\":\"connected\",\"t_ns\":1}\\n{\"seq\":1,\"sent_ns\":2}\\n' > \"$CALLWALL_REPORT\"",
        Duration::from_secs(10),
    );
    let e = failure(&run);
    assert!(e.contains("malformed report: report line 2, field \"recv_ns\": is missing"), "{e}");
}

#[test]
fn exit_codes_follow_the_contract() {
    let (run, _) =
        run_sh("bad-env", "echo 'CALLWALL_SIGNAL is not set' >&2; exit 2", Duration::from_secs(10));
    let e = failure(&run);
    assert!(e.contains("rejected its environment") && e.contains("CALLWALL_SIGNAL"), "{e}");
    // Exit 3: gave up connecting. Not an error; it reported zero frames sent.
    let (run, _) = run_sh(
        "not-connected",
        "printf '{\"event\":\"sent\",\"frames\":0,\"start_ns\":5,\"end_ns\":5}\\n' > \"$CALLWALL_REPORT\"; exit 3",
        Duration::from_secs(10),
    );
    match run.outcome() {
        PeerOutcome::Ran { report, connected } => assert!(!connected && report.reports_frames()),
        other => panic!("{other:?}"),
    }
    // An error line in the report is the peer's own failure.
    let (run, _) = run_sh(
        "error-line",
        "printf '{\"event\":\"error\",\"message\":\"dtls alert\"}\\n' > \"$CALLWALL_REPORT\"",
        Duration::from_secs(10),
    );
    assert!(failure(&run).contains("reported an error: dtls alert"));
}
