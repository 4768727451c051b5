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
    // A variable of the harness's own that the contract does not define: never reaches a peer.
    cmd.args(["-c", script]).env("CALLWALL_OUTER_NETNS_INODE", "12345");
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
    let token = unique_sleep("hang");
    let (run, _) = run_sh(
        "hang",
        &format!("sleep {token} & setsid sleep {token} & echo 'waiting forever' >&2; wait"),
        Duration::from_millis(500),
    );
    assert!(matches!(run.exit, PeerExit::TimedOut(_)), "{:?}", run.exit);
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    let e = failure(&run);
    assert!(e.contains("hung") && e.contains("waiting forever"), "{e}");
    assert_eq!(alive_with(&token), Vec::<i32>::new(), "the peer's children outlived it");
}

/// A peer that exits leaves nothing: its child in its group, and a `setsid` child that left
/// the group (the PID namespace takes it), are dead by the time `wait` returns.
#[test]
fn children_left_behind_by_a_peer_that_exited_are_dead_when_its_exit_is_seen() {
    let token = unique_sleep("orphan");
    let (run, _) = run_sh(
        "orphan",
        &format!(
            "sleep {token} & setsid sleep {token} & sleep 0.2; \
             [ \"$(pgrep -xfc 'sleep {token}')\" = 2 ] || exit 5; exit 0"
        ),
        Duration::from_secs(10),
    );
    // Exit 5 would say the two children were not both running before the peer exited.
    assert_eq!(run.exit, PeerExit::Code(0));
    assert_eq!(alive_with(&token), Vec::<i32>::new(), "the peer's children outlived it");
    // The peer's own exit code and signal come through the namespace's init unchanged.
    let (run, _) = run_sh("exit7", "exit 7", Duration::from_secs(10));
    assert_eq!(run.exit, PeerExit::Code(7));
    let (run, _) = run_sh("pid", "[ $$ -ne 1 ] && exit 0; exit 9", Duration::from_secs(10));
    assert_eq!(run.exit, PeerExit::Code(0), "the peer is not its namespace's PID 1");
}

/// A `sleep` argument no other process has: `1000.<pid><n>`.
fn unique_sleep(tag: &str) -> String {
    let n: u32 = tag.bytes().map(u32::from).sum();
    format!("1000.{}{n}", std::process::id())
}

/// Processes (not zombies) whose command line contains `token`, seen from this namespace.
fn alive_with(token: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if !String::from_utf8_lossy(&cmd).contains(token) {
            continue;
        }
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')));
        if !zombie {
            out.push(pid);
        }
    }
    out
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
