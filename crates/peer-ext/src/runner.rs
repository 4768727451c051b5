//! Running one external peer: the contract's environment in, a deadline, a bounded stderr
//! tail, the report read back.
//!
//! [`spawn_peer`] takes a [`Command`] the caller prepared (the harness's comes from
//! `callwall_netns::Network::command`, which enters the host's namespace), gives it exactly the
//! contract's environment (every other `CALLWALL_*` variable removed), a PID namespace, a
//! process group and parent-death signals (see `sys`), sends stdout to
//! `stdout.log` and stderr to `stderr.log` in the peer's log directory (keeping the last bytes
//! in memory), and starts it. [`RunningPeer::wait`] blocks until the peer exits or its deadline
//! passes; the peer runs as PID 2 of a PID namespace of its own whose PID 1 exits with it, so
//! the kernel kills everything the peer started (a `setsid` child included) by the time its
//! exit is seen; at the deadline the runner kills the group, which takes the namespace down.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::contract::{ExternalPeerContext, EXIT_BAD_CONTRACT, EXIT_NOT_CONNECTED, EXIT_OK};
use crate::report::{parse_report, ExternalReport, ReportError};
use crate::sys;

/// Bytes of stderr kept for the report by default.
pub const DEFAULT_STDERR_TAIL: usize = 2048;
/// Largest report file read by default (bigger ones are an error, never read whole).
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 256 * 1024 * 1024;

/// Bounds of one peer's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// How long the peer may run, counted from the spawn.
    pub timeout: Duration,
    /// Bytes of stderr kept (the end of it).
    pub stderr_tail: usize,
    pub max_report_bytes: u64,
}

impl RunLimits {
    /// Limits for `ctx`: until its deadline with `slack`, default tail and report caps.
    pub fn for_context(ctx: &ExternalPeerContext, slack: Duration) -> RunLimits {
        let now = callwall_transport::voice::unix_ns_now();
        RunLimits {
            timeout: Duration::from_nanos(ctx.deadline_unix_ns(slack).saturating_sub(now)),
            stderr_tail: DEFAULT_STDERR_TAIL,
            max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
        }
    }
}

/// Why a peer could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create the peer's log directory {path}: {source}")]
    LogDir { path: String, source: std::io::Error },
    #[error("cannot start {program:?}: {source}; check the command and that `make deps` ran")]
    Spawn { program: String, source: std::io::Error },
}

/// How the peer's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerExit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal (not by us).
    Signal(i32),
    /// Still running at its deadline: killed.
    TimedOut(Duration),
}

/// A started peer.
#[derive(Debug)]
pub struct RunningPeer {
    pid: u32,
    program: String,
    started: Instant,
    limits: RunLimits,
    status: mpsc::Receiver<std::io::Result<ExitStatus>>,
    stderr: Arc<Mutex<Tail>>,
    stderr_thread: Option<thread::JoinHandle<()>>,
    report_path: std::path::PathBuf,
}

/// What a finished peer left.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerRun {
    pub program: String,
    pub exit: PeerExit,
    pub elapsed: Duration,
    /// The last bytes of stderr (lossy UTF-8).
    pub stderr_tail: String,
    /// The parsed report: empty when the peer wrote none.
    pub report: Result<ExternalReport, ReportError>,
}

/// What a peer's run means for its call.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerOutcome {
    /// The peer ran its call (exit 0 or 3). Its report may be empty.
    Ran { report: ExternalReport, connected: bool },
    /// The peer did not start, crashed, hung, broke the contract or reported an error: the
    /// call's verdict is `error`, with this reason (which ends with the stderr tail).
    Failed(String),
}

impl PeerRun {
    /// Classifies the run (exit codes in `docs/peers.md`).
    pub fn outcome(&self) -> PeerOutcome {
        let tail = if self.stderr_tail.trim().is_empty() {
            " (stderr was empty)".to_string()
        } else {
            format!("; stderr ends: {}", self.stderr_tail.trim_end())
        };
        let fail = |what: String| PeerOutcome::Failed(format!("{what}{tail}"));
        match self.exit {
            PeerExit::TimedOut(t) => {
                fail(format!("{} hung: still running after {t:?}, killed", self.program))
            }
            PeerExit::Signal(s) => fail(format!("{} crashed: killed by signal {s}", self.program)),
            PeerExit::Code(EXIT_BAD_CONTRACT) => fail(format!(
                "{} rejected its environment (exit {EXIT_BAD_CONTRACT})",
                self.program
            )),
            PeerExit::Code(c) if c != EXIT_OK && c != EXIT_NOT_CONNECTED => {
                fail(format!("{} failed with exit code {c}", self.program))
            }
            PeerExit::Code(c) => match &self.report {
                Err(e) => fail(format!("{} wrote a malformed report: {e}", self.program)),
                Ok(r) => match &r.error {
                    Some(e) => fail(format!("{} reported an error: {e}", self.program)),
                    None => PeerOutcome::Ran {
                        report: r.clone(),
                        connected: c == EXIT_OK && r.connected_unix_ns.is_some(),
                    },
                },
            },
        }
    }
}

/// Starts `cmd` as the peer of `ctx`. See the module doc.
pub fn spawn_peer(
    mut cmd: Command,
    ctx: &ExternalPeerContext,
    limits: RunLimits,
) -> Result<RunningPeer, RunError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    std::fs::create_dir_all(&ctx.log_dir)
        .map_err(|source| RunError::LogDir { path: ctx.log_dir.display().to_string(), source })?;
    let stdout = log_file(&ctx.log_dir, "stdout.log")?;
    // Exactly the contract's variables: no other CALLWALL_* reaches the peer, whether the
    // harness inherited it or the command was given it.
    let env = ctx.env();
    let stray: Vec<std::ffi::OsString> = std::env::vars_os()
        .map(|(k, _)| k)
        .chain(cmd.get_envs().map(|(k, _)| k.to_os_string()))
        .filter(|k| {
            k.to_str().is_some_and(|k| k.starts_with(crate::contract::ENV_PREFIX))
                && !env.keys().any(|e| std::ffi::OsStr::new(e) == k.as_os_str())
        })
        .collect();
    for k in stray {
        cmd.env_remove(k);
    }
    cmd.envs(env).stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped());
    sys::pre_exec_contained(&mut cmd);
    let mut child =
        cmd.spawn().map_err(|source| RunError::Spawn { program: program.clone(), source })?;
    let started = Instant::now();
    let pid = child.id();

    let stderr = Arc::new(Mutex::new(Tail::new(limits.stderr_tail)));
    let stderr_thread = child.stderr.take().map(|mut pipe| {
        let tail = stderr.clone();
        let mut copy = std::fs::File::create(ctx.log_dir.join("stderr.log")).ok();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(f) = copy.as_mut() {
                            let _ = std::io::Write::write_all(f, &buf[..n]);
                        }
                        tail.lock().unwrap_or_else(|p| p.into_inner()).push(&buf[..n]);
                    }
                }
            }
        })
    });
    let (tx, status) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    Ok(RunningPeer {
        pid,
        program,
        started,
        limits,
        status,
        stderr,
        stderr_thread,
        report_path: ctx.report_path.clone(),
    })
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File, RunError> {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .map_err(|source| RunError::LogDir { path: path.display().to_string(), source })
}

impl RunningPeer {
    /// The peer's process id (also its process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the peer to exit or its deadline, kills its process group, reads its report.
    pub fn wait(mut self) -> PeerRun {
        let left = self.limits.timeout.saturating_sub(self.started.elapsed());
        let exit = match self.status.recv_timeout(left) {
            Ok(Ok(st)) => exit_of(st),
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => PeerExit::Signal(0),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                sys::kill_group(self.pid);
                let _ = self.status.recv_timeout(Duration::from_secs(5));
                PeerExit::TimedOut(self.limits.timeout)
            }
        };
        // Whatever the peer left running in its group goes with it.
        sys::kill_group(self.pid);
        let elapsed = self.started.elapsed();
        if let Some(t) = self.stderr_thread.take() {
            // The pipe closes once every process holding it is dead; the group kill made sure
            // of that unless a process left the group. Do not wait forever for such a one.
            let until = Instant::now() + Duration::from_secs(2);
            while !t.is_finished() && Instant::now() < until {
                thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        let stderr_tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner()).text();
        PeerRun {
            program: self.program,
            exit,
            elapsed,
            stderr_tail,
            report: read_report(&self.report_path, self.limits.max_report_bytes),
        }
    }
}

fn exit_of(st: ExitStatus) -> PeerExit {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => PeerExit::Code(c),
        (None, Some(s)) => PeerExit::Signal(s),
        (None, None) => PeerExit::Signal(0),
    }
}

/// Reads and parses a report file: absent means an empty report.
pub fn read_report(path: &Path, max_bytes: u64) -> Result<ExternalReport, ReportError> {
    let file = match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ExternalReport::default()),
        Err(e) => {
            return Err(ReportError {
                line: 0,
                lines_read: 0,
                field: None,
                message: format!("cannot read {}: {e}", path.display()),
            })
        }
        Ok(f) => f,
    };
    let mut text = String::new();
    let mut limited = file.take(max_bytes.saturating_add(1));
    if let Err(e) = limited.read_to_string(&mut text) {
        return Err(ReportError {
            line: 0,
            lines_read: 0,
            field: None,
            message: format!("cannot read {} as UTF-8 text: {e}", path.display()),
        });
    }
    if text.len() as u64 > max_bytes {
        return Err(ReportError {
            line: 0,
            lines_read: 0,
            field: None,
            message: format!("{} is larger than {max_bytes} bytes", path.display()),
        });
    }
    parse_report(&text)
}

/// The last `cap` bytes written.
#[derive(Debug)]
struct Tail {
    cap: usize,
    buf: std::collections::VecDeque<u8>,
}

impl Tail {
    fn new(cap: usize) -> Tail {
        Tail { cap, buf: std::collections::VecDeque::with_capacity(cap.min(64 * 1024)) }
    }
    fn push(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(self.cap)..];
        let over = (self.buf.len() + bytes.len()).saturating_sub(self.cap);
        self.buf.drain(..over.min(self.buf.len()));
        self.buf.extend(bytes);
    }
    fn text(&self) -> String {
        let v: Vec<u8> = self.buf.iter().copied().collect();
        String::from_utf8_lossy(&v).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end() {
        let mut t = Tail::new(5);
        t.push(b"abc");
        t.push(b"defg");
        assert_eq!(t.text(), "cdefg");
        t.push(b"0123456789");
        assert_eq!(t.text(), "56789");
        let mut z = Tail::new(0);
        z.push(b"x");
        assert_eq!(z.text(), "");
    }
}
