//! The caller's side of a run: start the sandbox, wait for it (with a deadline and Ctrl-C
//! handling), read its result.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callwall_harness::HarnessError;
use callwall_harness::RunPlan;
use callwall_results::RunResult;

pub struct LaunchOptions {
    /// The callwall binary to run inside the sandbox (`__sandbox` subcommand).
    pub exe: PathBuf,
    /// The run, decided; the sandbox is killed after its `deadline`.
    pub run: RunPlan,
    /// Set to stop the run early (Ctrl-C): the sandbox is killed, which frees everything.
    pub cancel: Arc<AtomicBool>,
    /// `RUST_LOG` for the processes inside.
    pub log_filter: Option<String>,
}

/// Runs one scenario in a fresh sandbox and returns its result.
pub fn launch(opts: &LaunchOptions) -> Result<RunResult, HarnessError> {
    launch_with(opts, None, None)
}

/// Called with each live line of a running sandbox (censor answers, calls' seconds).
pub type OnLive = Box<dyn FnMut(&str) + Send>;

/// [`launch`], sending the lines of `control` to the run's censor as they come (live control
/// commands: see [`callwall_harness::control`]).
///
/// `on_live` gets each live line of the run as it comes, without its `live ` prefix:
/// `second {json}` (a call's figures, `callwall_transport::live::LiveSecond`) and
/// `control {json}` (a control response): see [`callwall_harness::live`].
pub fn launch_with(
    opts: &LaunchOptions,
    control: Option<Box<dyn std::io::BufRead + Send>>,
    on_live: Option<OnLive>,
) -> Result<RunResult, HarnessError> {
    let mut cmd = Command::new(&opts.exe);
    cmd.arg("__sandbox")
        .arg("--args")
        .arg(serde_json::to_string(&opts.run).map_err(|e| HarnessError::Setup(e.to_string()))?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(f) = &opts.log_filter {
        cmd.env("RUST_LOG", f);
    }
    // A private mount namespace with a fresh tmpfs on SCRATCH_DIR: scratch files never reach
    // the host (see `SCRATCH_DIR`). Another on /run, where external peers' daemons put their
    // sockets (wireguard-go: /run/wireguard), so those stay inside the run too.
    let host_dev = callwall_harness::scratch_dev()
        .map_err(|e| HarnessError::io("reading the scratch directory", e))?;
    cmd.env(callwall_harness::HOST_SCRATCH_DEV_ENV, host_dev.to_string());
    let mut child = callwall_netns::sandbox::spawn_sandboxed(
        cmd,
        callwall_netns::sandbox::SandboxOptions::private_mounts_with_tmpfs([
            callwall_harness::SCRATCH_DIR,
            "/run",
        ]),
    )
    .map_err(|e| HarnessError::Environment(e.to_string()))?;
    if let (Some(input), Some(mut sandbox_in)) = (control, child.stdin.take()) {
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            for line in input.lines() {
                let Ok(line) = line else { break };
                if writeln!(sandbox_in, "{line}").and_then(|_| sandbox_in.flush()).is_err() {
                    break;
                }
            }
        });
    }
    let mut stdout =
        child.stdout.take().ok_or_else(|| HarnessError::Setup("sandbox has no stdout".into()))?;
    let reader = std::thread::spawn(move || {
        let mut on_live = on_live;
        let mut s = String::new();
        let mut r = std::io::BufReader::new(&mut stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::BufRead::read_line(&mut r, &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            match (line.strip_prefix(callwall_harness::live::PREFIX), on_live.as_mut()) {
                (Some(l), Some(f)) => f(l.trim_end()),
                (Some(_), None) => {}
                (None, _) => s.push_str(&line),
            }
        }
        let _ = r.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + opts.run.deadline;
    let status = loop {
        if let Some(st) =
            child.try_wait().map_err(|e| HarnessError::io("waiting for the sandbox", e))?
        {
            break st;
        }
        if opts.cancel.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HarnessError::Interrupted);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HarnessError::Timeout(opts.run.deadline));
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let out = reader.join().unwrap_or_default();
    let last = out.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    serde_json::from_str::<RunResult>(last).map_err(|_| {
        HarnessError::Setup(format!(
            "the sandbox exited ({status}) without a result; run with RUST_LOG=debug to see why"
        ))
    })
}
