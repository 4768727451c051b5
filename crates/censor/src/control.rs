//! The censor's control channel: switch rules on and off and swap the policy while a run goes
//! on, keeping the flow table.
//!
//! The protocol is JSON lines: one [`Command`] object per line in, one [`Response`] object per
//! line out. This module is pure (parsing and serialization); [`crate::Engine::control`]
//! applies a command, and the censor process's I/O adapter carries the lines (a Unix socket or
//! stdin, wired by the harness).
//!
//! ```text
//! {"cmd":"status"}
//! {"cmd":"disable","rule":2}                 rules count from 1, in policy order
//! {"cmd":"enable","rule":"drop-all-udp"}     or by name
//! {"cmd":"toggle","rule":1}
//! {"cmd":"swap","policy":"scenarios/ru-quic-sni.toml"}   a scenario file whose censor policy
//!                                                        replaces the running one
//! ```
//!
//! Every response carries `ok`, the engine time `t_ms`, and the rule list with each rule's
//! state and counters; a failed command carries `error` (lowercase, saying what to send) and
//! changes nothing. Every change is also a decision-log [`crate::Event`] with `flow` =
//! `"control"`, `rule` = the rule's name (the policy's source for a swap) and `outcome` one of
//! `rule-on`, `rule-off`, `policy-swap`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A rule, by 1-based position in the policy or by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RuleRef {
    Index(usize),
    Name(String),
}

impl std::fmt::Display for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleRef::Index(i) => write!(f, "{i}"),
            RuleRef::Name(n) => write!(f, "`{n}`"),
        }
    }
}

/// A command named a rule the policy does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRule {
    /// The rule as the command named it.
    pub rule: RuleRef,
    /// The policy's rules, in order, by name.
    pub rules: Vec<String>,
}

impl std::fmt::Display for UnknownRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rule = &self.rule;
        let n = self.rules.len();
        if n == 0 {
            return write!(f, "no rule {rule}: the policy has no rules (swap in another policy)");
        }
        let names: Vec<String> =
            self.rules.iter().enumerate().map(|(i, r)| format!("{} {r}", i + 1)).collect();
        write!(f, "no rule {rule}: use a number from 1 to {n} or a name ({})", names.join(", "))
    }
}

impl std::error::Error for UnknownRule {}

/// A control command: one JSON object per line, `cmd` naming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Command {
    /// Switch a rule on (a no-op if it is on).
    Enable { rule: RuleRef },
    /// Switch a rule off: packets skip it and fall through to the next rule; residual blocks it
    /// started are lifted.
    Disable { rule: RuleRef },
    /// Switch a rule on if off, off if on.
    Toggle { rule: RuleRef },
    /// Replace the policy with the censor policy of this scenario file, keeping the flow table.
    Swap { policy: PathBuf },
    /// The rule list with states and counters; changes nothing.
    Status,
}

/// One rule's state as the control channel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// 1-based position in the policy.
    pub index: usize,
    pub name: String,
    /// The action in words (`drop`, `police 64kbit + loss 10%`, ...).
    pub action: String,
    pub enabled: bool,
    /// Packets this rule decided (its hits).
    pub packets: u64,
    pub dropped: u64,
    pub delayed: u64,
    pub flows: u64,
}

/// A change the control channel made (the results model's type: it also goes to the decision
/// log and the report's timelines).
pub use callwall_results::ControlChange as Change;

/// The answer to one command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// Engine time of the command (ms since the run's start).
    pub t_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What changed; absent for `status`, failures and no-ops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    pub rules: Vec<RuleStatus>,
}

impl Response {
    /// The response as one JSON line (no trailing newline).
    pub fn to_line(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"ok":false}"#.into())
    }
}

/// A control line that is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("control line {line}: {message}")]
pub struct ControlError {
    pub line: usize,
    pub message: String,
}

const USAGE: &str = r#"send one JSON object per line: {"cmd":"status"}, {"cmd":"enable"|"disable"|"toggle","rule":N or "name"}, {"cmd":"swap","policy":"scenarios/FILE.toml"}"#;

/// Parses one command line (`line` is its 1-based number, for the error). Blank lines and
/// lines starting with `#` are `Ok(None)`.
pub fn parse_command(text: &str, line: usize) -> Result<Option<Command>, ControlError> {
    let t = text.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(None);
    }
    let cmd: Command = serde_json::from_str(t)
        .map_err(|e| ControlError { line, message: format!("{e}; {USAGE}") })?;
    if let Command::Enable { rule: RuleRef::Index(0) }
    | Command::Disable { rule: RuleRef::Index(0) }
    | Command::Toggle { rule: RuleRef::Index(0) } = cmd
    {
        return Err(ControlError { line, message: "rules count from 1, not 0".into() });
    }
    Ok(Some(cmd))
}

/// Serializes a command as one JSON line (what a controller sends).
pub fn command_line(cmd: &Command) -> String {
    serde_json::to_string(cmd).unwrap_or_default()
}

/// Parses a response line (what a controller reads back).
pub fn parse_response(text: &str) -> Result<Response, serde_json::Error> {
    serde_json::from_str(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_roundtrip() {
        let cases = [
            (r#"{"cmd":"status"}"#, Command::Status),
            (r#"{"cmd":"disable","rule":2}"#, Command::Disable { rule: RuleRef::Index(2) }),
            (
                r#"{"cmd":"enable","rule":"drop-all-udp"}"#,
                Command::Enable { rule: RuleRef::Name("drop-all-udp".into()) },
            ),
            (r#" {"cmd":"toggle","rule":9} "#, Command::Toggle { rule: RuleRef::Index(9) }),
            (
                r#"{"cmd":"swap","policy":"scenarios/ru-quic-sni.toml"}"#,
                Command::Swap { policy: "scenarios/ru-quic-sni.toml".into() },
            ),
        ];
        for (text, want) in cases {
            let got = parse_command(text, 1).unwrap().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(parse_command(&command_line(&got), 1).unwrap().unwrap(), want);
        }
        assert_eq!(parse_command("   ", 3), Ok(None));
        assert_eq!(parse_command("# comment", 3), Ok(None));
    }

    #[test]
    fn bad_lines_name_the_line_and_what_to_send() {
        for bad in [
            r#"{"cmd":"explode"}"#,
            r#"{"cmd":"disable"}"#,
            r#"{"cmd":"disable","rule":2,"extra":1}"#,
            r#"{"cmd":"disable","rule":-1}"#,
            r#"disable 2"#,
            r#"{"cmd":"swap"}"#,
        ] {
            let e = parse_command(bad, 4).unwrap_err();
            assert_eq!(e.line, 4, "{bad}");
            let s = e.to_string();
            assert!(s.starts_with("control line 4: "), "{s}");
            assert!(s.contains(r#"{"cmd":"status"}"#), "{bad}: {s}");
        }
        let e = parse_command(r#"{"cmd":"toggle","rule":0}"#, 2).unwrap_err();
        assert_eq!(e.to_string(), "control line 2: rules count from 1, not 0");
    }

    #[test]
    fn responses_roundtrip() {
        let r = Response {
            ok: true,
            t_ms: 1500.0,
            error: None,
            change: Some(Change::RuleOff { index: 1, name: "drop-all-udp".into() }),
            rules: vec![RuleStatus {
                index: 1,
                name: "drop-all-udp".into(),
                action: "drop".into(),
                enabled: false,
                packets: 10,
                dropped: 10,
                delayed: 0,
                flows: 1,
            }],
        };
        let line = r.to_line();
        assert!(
            line.contains(r#""change":{"change":"rule-off","index":1,"name":"drop-all-udp"}"#),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert_eq!(parse_response(&line).unwrap(), r);
    }
}
