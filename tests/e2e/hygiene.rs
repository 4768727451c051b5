//! Nothing outlives a run: no process, namespace or veth, however it ends; the host's own
//! network namespace is never modified.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

fn wait_for<F: FnMut() -> bool>(timeout: Duration, mut f: F) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// SIGKILLs `callwall run` mid-call and checks the kernel cleaned up everything it made.
fn kill_mid_call(signal: i32) {
    let before = host_network_state();
    let tmp = TempDir::new("kill");
    let mut child = callwall()
        .args(["run", "scenarios/baseline.toml", "--transport", "noise", "--out"])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn callwall");
    let root = child.id() as i32;
    // Mid-call: the peers have written their logs and the censor is running.
    let started = wait_for(Duration::from_secs(30), || {
        let d = descendants(root);
        d.len() >= 5 && tmp.path().join("baseline").join("noise-udp.caller.log").exists()
    });
    assert!(started, "the run did not reach its calls");
    std::thread::sleep(Duration::from_millis(1500));
    let procs = descendants(root);
    let namespaces: std::collections::HashSet<String> =
        procs.iter().filter_map(|&p| netns_of(p)).collect();
    let own = netns_of(std::process::id() as i32).unwrap();
    assert!(namespaces.len() >= 4, "expected the run's host namespaces, saw {namespaces:?}");
    let killed_at = uptime_ticks();
    unsafe_kill(root, signal);
    let _ = child.wait();
    let gone = wait_for(Duration::from_secs(10), || {
        procs.iter().all(|&p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
    assert!(
        gone,
        "processes of the run survived: {:?}",
        procs
            .iter()
            .filter(|&&p| std::path::Path::new(&format!("/proc/{p}")).exists())
            .collect::<Vec<_>>()
    );
    let mut ours = namespaces.clone();
    ours.remove(&own);
    let still = namespaces_still_held(&ours, killed_at);
    assert!(still.is_empty(), "namespaces of the run are still in use: {still:?}");
    assert_eq!(before, host_network_state(), "the host's links or routes changed");
}

fn unsafe_kill(pid: i32, sig: i32) {
    // libc is a dev-dependency; kill(2) has no memory-safety preconditions.
    #[allow(unsafe_code)]
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(r, 0, "kill failed");
}

#[test]
fn sigkill_mid_call_leaves_nothing_behind() {
    kill_mid_call(libc::SIGKILL);
}

#[test]
fn sigint_mid_call_stops_cleanly() {
    kill_mid_call(libc::SIGINT);
}

#[test]
fn a_full_run_leaves_the_host_network_unchanged() {
    let before = host_network_state();
    let (_, v, out) = run_scenarios(&["scenarios/udp-blackout.toml"], &["--transport", "noise"]);
    assert!(v["runs"][0]["error"].is_null(), "{}", dump(&out, &v));
    assert_eq!(before, host_network_state());
}

/// Kills a run with `signal` after `delay`, then checks every process and namespace it had
/// is gone and the host network is unchanged.
fn kill_after(signal: i32, delay: Duration, scenario: &str) {
    let before = host_network_state();
    let tmp = TempDir::new("killat");
    let mut child = callwall()
        .args(["run", scenario, "--transport", "noise", "--out"])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn callwall");
    let root = child.id() as i32;
    // Sample the run's processes and namespaces until the moment of the kill.
    let mut procs = std::collections::HashSet::new();
    let mut namespaces = std::collections::HashSet::new();
    let end = Instant::now() + delay;
    while Instant::now() < end {
        for p in descendants(root) {
            if let Some(n) = netns_of(p) {
                namespaces.insert(n);
            }
            procs.insert(p);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_at = uptime_ticks();
    unsafe_kill(root, signal);
    let _ = child.wait();
    let gone = wait_for(Duration::from_secs(10), || {
        procs.iter().all(|&p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
    assert!(gone, "signal {signal} after {delay:?}: processes survived");
    let own = netns_of(std::process::id() as i32).unwrap();
    namespaces.remove(&own);
    let still = namespaces_still_held(&namespaces, killed_at);
    assert!(
        still.is_empty(),
        "signal {signal} after {delay:?}: namespaces still in use: {still:?}"
    );
    assert_eq!(
        before,
        host_network_state(),
        "signal {signal} after {delay:?}: host network changed"
    );
}

#[test]
fn kills_at_random_moments_leave_nothing_behind() {
    // Moments drawn once from a fixed seed, covering setup (first ~0.5 s), the call and the
    // teardown (the udp-blackout run takes about 7 s).
    let mut x: u64 = 0x5eed_ca11;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let signals = [libc::SIGKILL, libc::SIGTERM, libc::SIGINT];
    let mut moments =
        vec![Duration::from_millis(30), Duration::from_millis(300), Duration::from_millis(6900)];
    for _ in 0..3 {
        moments.push(Duration::from_millis(100 + next() % 7000));
    }
    for (i, m) in moments.iter().enumerate() {
        kill_after(signals[i % signals.len()], *m, "scenarios/udp-blackout.toml");
    }
}

#[test]
fn two_runs_at_once_do_not_disturb_each_other() {
    let a = std::thread::spawn(|| {
        run_scenarios(&["scenarios/udp-blackout.toml"], &["--transport", "noise"])
    });
    let b = std::thread::spawn(|| {
        run_scenarios(&["scenarios/baseline.toml"], &["--transport", "noise"])
    });
    let (ca, va, oa) = a.join().unwrap();
    let (cb, vb, ob) = b.join().unwrap();
    assert_eq!(ca, 0, "{}", dump(&oa, &va));
    assert_eq!(cb, 0, "{}", dump(&ob, &vb));
    for (v, o) in [(&va, &oa), (&vb, &ob)] {
        let calls = v["runs"][0]["calls"].as_array().cloned().unwrap_or_default();
        assert!(!calls.is_empty() && calls.iter().all(|c| c["met"] == true), "{}", dump(o, v));
    }
}
