//! What the bridge tests share: re-running this test binary's `inner` test inside a sandbox.

use std::process::{Command, Stdio};

use callwall_netns::{spawn_sandboxed, SandboxOptions};

/// Re-executes this test binary's `inner` test inside `spawn_sandboxed` with `role_env` set to
/// `sandbox`, and checks it passed and printed `marker` (so a skipped inner test fails).
pub fn run_inner_in_sandbox(role_env: &str, marker: &str) {
    callwall_netns::check_environment().expect("this test needs namespaces");
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["inner", "--exact", "--nocapture", "--test-threads=1"])
        .env(role_env, "sandbox")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let child = spawn_sandboxed(cmd, SandboxOptions::default()).expect("spawn sandbox");
    let out = child.wait_with_output().expect("wait for the sandbox");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "sandbox failed: {}\n{stdout}", out.status);
    assert!(stdout.contains(marker), "the inner test did not finish:\n{stdout}");
}
