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

/// Every path below `dir` (recursively, skipping `skip`) with its owner and mode: what a run
/// could have left behind.
const LIST_SCRIPT: &str = r#"
list() { find /tmp /var/tmp /dev/shm -mindepth 1 -path "$STAGE" -prune -o -printf '%p %u %m\n' | sort; }
"#;

/// The whole default suite, first as root, then as `nobody`, leaves `/tmp`, `/var/tmp` and
/// `/dev/shm` exactly as it found them, and the root run does not break the unprivileged one.
///
/// The two runs happen in a mount namespace of the test's own (`unshare --mount`) whose `/tmp`,
/// `/var/tmp` and `/dev/shm` are fresh, empty tmpfs mounts: for `callwall run` they are the
/// host's directories (it cannot tell the difference), but no other process on the machine
/// writes there, so any entry that appears was made by the runs. The binary, scenarios and
/// topologies, the external peers and a link to their virtualenv are staged in
/// `/tmp/callwall-hygiene-stage` (world-readable, for `nobody`), the
/// one entry the comparison skips.
#[test]
fn a_whole_suite_as_root_then_as_nobody_leaves_tmp_unchanged() {
    let keep = TempDir::new("tmp-hygiene");
    let script = format!(
        r#"set -eu
STAGE=/tmp/callwall-hygiene-stage
KEEP="$1"; BIN="$2"; REPO="$3"
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
{LIST_SCRIPT}
mkdir -p "$STAGE/out-root" "$STAGE/out-nobody"
cp "$BIN" "$STAGE/callwall"
cp -r "$REPO/scenarios" "$REPO/netns" "$REPO/apps" "$REPO/peers" "$STAGE/"
# The external peers' virtualenv (`make deps`), so the Chromium and aiortc scenarios really run
# their browsers and Python stacks here: their temporary files are what CI once found left.
if [ -d "$REPO/.venv" ]; then ln -s "$REPO/.venv" "$STAGE/.venv"; fi
chmod -R a+rwX "$STAGE"
cd "$STAGE"
list > "$KEEP/before"
set +e
./callwall run --out out-root --json out-root/r.json > "$KEEP/root.log" 2>&1
echo $? > "$KEEP/root.code"
list > "$KEEP/after-root"
setpriv --reuid=65534 --regid=65534 --clear-groups ./callwall run --out out-nobody --json out-nobody/r.json > "$KEEP/nobody.log" 2>&1
echo $? > "$KEEP/nobody.code"
list > "$KEEP/after-nobody"
cp out-root/r.json "$KEEP/root.json"
cp out-nobody/r.json "$KEEP/nobody.json"
exit 0
"#
    );
    let status = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script, "sh"])
        .arg(keep.path())
        .arg(env!("CARGO_BIN_EXE_callwall"))
        .arg(repo())
        .status()
        .expect("unshare (util-linux) runs");
    assert!(status.success(), "the hygiene script failed: {status}");
    let read = |f: &str| std::fs::read_to_string(keep.path().join(f)).unwrap_or_default();
    let before = read("before");
    for who in ["root", "nobody"] {
        let code = read(&format!("{who}.code"));
        let v: serde_json::Value =
            serde_json::from_str(&read(&format!("{who}.json"))).unwrap_or_default();
        let runs = v["runs"].as_array().cloned().unwrap_or_default();
        assert!(
            runs.len() >= 20,
            "the {who} run ran {} scenarios; exit {code}\n{}",
            runs.len(),
            read(&format!("{who}.log"))
        );
        for r in &runs {
            assert!(
                r["error"].is_null(),
                "the {who} run: scenario {} failed to run: {}\n{}",
                r["scenario"],
                r["error"],
                read(&format!("{who}.log"))
            );
        }
        // 0: every expectation met; 1: some missed (the library test names them). Anything
        // else (2: environment or output error) is a failure of the run itself.
        assert!(
            matches!(code.trim(), "0" | "1"),
            "the {who} run exited {code}\n{}",
            read(&format!("{who}.log"))
        );
        assert_eq!(
            before,
            read(&format!("after-{who}")),
            "the {who} run changed /tmp, /var/tmp or /dev/shm (path owner mode)"
        );
    }
}
