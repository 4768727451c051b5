//! The processes of a run: a [`Service`] is a child (a service, a peer, a workload client)
//! whose stdout is read by a thread, with a `ready` handshake, a stop signal (stdin closed) and
//! a deadline after which it is killed; [`spawn_peer`] starts a built-in call peer with its
//! spec; [`sanitize`] makes the file names of their logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use callwall_netns::Network;
use callwall_transport::peer::PeerSpec;

use crate::HarnessError;

/// How long services get to say `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A child whose stdout is read by a thread: the first line `ready` is signalled, everything
/// after it is collected as the output.
pub struct Service {
    name: String,
    child: Child,
    pub stdin: Option<ChildStdin>,
    ready: mpsc::Receiver<bool>,
    output: mpsc::Receiver<String>,
}

impl Service {
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log: Option<&Path>,
        wants_ready: bool,
    ) -> Result<Service, HarnessError> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        match log.map(std::fs::File::create) {
            Some(Ok(f)) => {
                cmd.stderr(Stdio::from(f));
            }
            _ => {
                cmd.stderr(Stdio::inherit());
            }
        }
        let mut child =
            cmd.spawn().map_err(|e| HarnessError::Setup(format!("cannot start {name}: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| HarnessError::Setup(format!("{name} has no stdout")))?;
        let (rtx, ready) = mpsc::channel();
        let (otx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            if wants_ready {
                let mut first = String::new();
                let ok = r.read_line(&mut first).is_ok() && first.trim() == "ready";
                let _ = rtx.send(ok);
            }
            let rest = crate::live::split_output(r.take(64 << 20));
            let _ = otx.send(rest);
        });
        Ok(Service { name: name.to_string(), child, stdin, ready, output })
    }

    pub fn wait_ready(&self) -> Result<(), HarnessError> {
        match self.ready.recv_timeout(READY_TIMEOUT) {
            Ok(true) => Ok(()),
            Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(HarnessError::Setup(
                format!("{} exited before it was ready; see its log", self.name),
            )),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(HarnessError::Setup(format!(
                "{} was not ready within {READY_TIMEOUT:?}",
                self.name
            ))),
        }
    }

    /// Closes stdin (the stop signal) and collects the output, killing at the deadline.
    pub fn stop(mut self, deadline: Instant) -> (Option<String>, String) {
        drop(self.stdin.take());
        self.finish(deadline)
    }

    /// Waits for the process to end (killing it at `deadline`): what it printed, and how it
    /// ended (its exit status, or [`KILLED_AT_DEADLINE`]).
    pub fn finish(mut self, deadline: Instant) -> (Option<String>, String) {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let out = self.output.recv_timeout(Duration::from_secs(2)).ok();
                    return (out, format!("{status}"));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    // A process can print its report and then hang on the way out: the censor
                    // closing its packet sockets leaves promiscuous mode, which waits for the
                    // kernel's rtnl lock, held for seconds while other runs' namespaces are torn
                    // down. Its report is still its report: keep what it printed before the kill.
                    let out = self.output.recv_timeout(Duration::from_secs(2)).ok();
                    let out = out.filter(|o| !o.trim().is_empty());
                    if out.is_some() {
                        tracing::warn!(
                            "{} printed its report but did not exit by its deadline; killed it",
                            self.name
                        );
                    }
                    return (out, KILLED_AT_DEADLINE.into());
                }
            }
        }
    }
}

/// How [`Service::finish`] says it killed a process still running at its deadline.
pub const KILLED_AT_DEADLINE: &str = "killed at its deadline";

/// A file-name-safe form of a call name.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect()
}

/// Starts the built-in peer of `spec` on `host` and hands it the spec on its stdin.
pub fn spawn_peer(
    network: &mut Network,
    exe: &Path,
    host: &str,
    spec: &PeerSpec,
    log: Option<&Path>,
) -> Result<Service, HarnessError> {
    let mut cmd = network.command(host, exe).map_err(|e| HarnessError::Setup(e.to_string()))?;
    cmd.arg("__peer");
    let role = format!("{:?} peer on {host}", spec.ctx.role).to_lowercase();
    let mut s = Service::spawn(&role, cmd, log, false)?;
    let json = serde_json::to_string(spec).map_err(|e| HarnessError::Setup(e.to_string()))?;
    if let Some(mut stdin) = s.stdin.take() {
        stdin
            .write_all(json.as_bytes())
            .and_then(|_| stdin.write_all(b"\n"))
            .map_err(|e| HarnessError::io("sending a peer its spec", e))?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn a_report_printed_before_a_hang_on_exit_is_kept() {
        // Prints its report, then hangs (as a censor waiting on the kernel at exit can).
        let s = Service::spawn(
            "hanger",
            shell("echo ready; echo '{\"x\":1}'; exec sleep 30"),
            None,
            true,
        )
        .expect("spawn");
        s.wait_ready().expect("ready");
        let t = Instant::now();
        let (out, status) = s.stop(Instant::now() + Duration::from_millis(300));
        assert_eq!(status, "killed at its deadline");
        assert_eq!(out.as_deref().map(str::trim), Some("{\"x\":1}"));
        assert!(t.elapsed() < Duration::from_secs(10), "the kill did not end the wait");
    }

    #[test]
    fn a_hang_without_a_report_gives_none() {
        let s = Service::spawn("silent", shell("echo ready; exec sleep 30"), None, true)
            .expect("spawn");
        s.wait_ready().expect("ready");
        let (out, status) = s.stop(Instant::now() + Duration::from_millis(300));
        assert_eq!(status, "killed at its deadline");
        assert_eq!(out, None);
    }

    #[test]
    fn a_process_that_exits_on_stop_gives_its_report() {
        let s =
            Service::spawn("polite", shell("echo ready; cat >/dev/null; echo done"), None, true)
                .expect("spawn");
        s.wait_ready().expect("ready");
        let (out, status) = s.stop(Instant::now() + Duration::from_secs(20));
        assert!(status.contains("exit status: 0"), "{status}");
        assert_eq!(out.as_deref().map(str::trim), Some("done"));
    }
}
