//! The censor process's side of the control channel: command lines in from a reader (the
//! censor process's stdin), a wake-up socket the bridge polls, and control changes as
//! decision-log lines.
//!
//! [`ControlInput::spawn`] starts a thread that reads command lines (see [`crate::control`])
//! and queues them; the bridge polls [`ControlInput::wake_fd`], which becomes readable when a
//! command waits and reaches end of file when the reader does (the stop signal, as before).
//! The bridge then hands the engine to a closure that drains the queue with
//! [`ControlInput::drain`] and [`crate::Engine::control`].
//!
//! In the decision log a control change is one line with `"flow":"control"`, the run time and
//! the change: `{"t_ms":12000.0,"flow":"control","change":"rule-off","index":1,"name":"x"}`.
//! A [`crate::Event`] line never has a string `flow`, so readers tell the two apart.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use callwall_results::{ControlChange, ControlEvent};
use serde::{Deserialize, Serialize};

use crate::control::{parse_command, Command, ControlError};

#[derive(Serialize, Deserialize)]
struct LogLine {
    t_ms: f64,
    flow: ControlFlow,
    #[serde(flatten)]
    change: ControlChange,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ControlFlow {
    Control,
}

/// A control change as one decision-log line (no trailing newline).
pub fn log_line(ev: &ControlEvent) -> String {
    let line = LogLine { t_ms: ev.t_ms, flow: ControlFlow::Control, change: ev.change.clone() };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The control change of a decision-log line, or `None` for any other line.
pub fn parse_log_line(text: &str) -> Option<ControlEvent> {
    let l: LogLine = serde_json::from_str(text.trim()).ok()?;
    Some(ControlEvent { t_ms: l.t_ms, change: l.change })
}

/// A command line read, or why it is not a command.
pub type Queued = Result<Command, ControlError>;

/// Command lines read by a thread, queued for the bridge.
pub struct ControlInput {
    wake: UnixStream,
    queue: Arc<Mutex<VecDeque<Queued>>>,
}

impl ControlInput {
    /// Starts the reading thread over `input`. The thread ends at the input's end of file,
    /// and [`ControlInput::wake_fd`] then reaches end of file too.
    pub fn spawn<R: BufRead + Send + 'static>(input: R) -> std::io::Result<ControlInput> {
        let (wake, mut signal) = UnixStream::pair()?;
        let queue: Arc<Mutex<VecDeque<Queued>>> = Arc::default();
        let q = queue.clone();
        std::thread::Builder::new().name("censor-control".into()).spawn(move || {
            for (i, line) in input.lines().enumerate() {
                let Ok(line) = line else { break };
                match parse_command(&line, i + 1) {
                    Ok(None) => continue,
                    Ok(Some(c)) => q.lock().unwrap_or_else(|p| p.into_inner()).push_back(Ok(c)),
                    Err(e) => q.lock().unwrap_or_else(|p| p.into_inner()).push_back(Err(e)),
                }
                if signal.write_all(b"c").is_err() {
                    break;
                }
            }
            // Dropping `signal` is the stop signal.
        })?;
        Ok(ControlInput { wake, queue })
    }

    /// The descriptor the bridge polls: readable when a command waits, end of file when the
    /// input ended.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Takes every queued command line.
    pub fn drain(&self) -> Vec<Queued> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::RuleRef;
    use std::io::Read;

    #[test]
    fn log_lines_roundtrip_and_decision_lines_are_not_control() {
        let ev = ControlEvent {
            t_ms: 1500.0,
            change: ControlChange::RuleOff { index: 1, name: "drop-all-udp".into() },
        };
        let line = log_line(&ev);
        assert!(line.contains(r#""flow":"control""#), "{line}");
        assert!(line.contains(r#""change":"rule-off""#), "{line}");
        assert_eq!(parse_log_line(&line), Some(ev));
        let decision = r#"{"t_ms":1.0,"flow":{"proto":"udp","client":{"ip":"10.0.0.1","port":1},"server":{"ip":"10.0.0.2","port":2}},"rule":"r","outcome":"drop"}"#;
        assert_eq!(parse_log_line(decision), None);
        assert_eq!(parse_log_line("not json"), None);
    }

    #[test]
    fn input_queues_commands_wakes_and_ends_at_eof() {
        let text = "{\"cmd\":\"disable\",\"rule\":1}\n\n# comment\nnonsense\n";
        let input = ControlInput::spawn(std::io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        let mut wake = input.wake.try_clone().unwrap();
        let mut buf = Vec::new();
        // End of file once the reader is done: two wake-ups (a command, a bad line).
        wake.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"cc");
        let q = input.drain();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].as_ref().unwrap(), &Command::Disable { rule: RuleRef::Index(1) });
        let e = q[1].as_ref().unwrap_err();
        assert_eq!(e.line, 4);
        assert!(input.drain().is_empty());
    }
}
