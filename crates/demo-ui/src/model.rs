//! The state the view shows, changed only by [`Update`]s.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;

use callwall_censor::control::{Command, RuleRef, RuleStatus};

use crate::keys::UiCommand;

/// Seconds of history kept per call (the sparklines show as many as fit).
pub const HISTORY_SECONDS: usize = 300;
/// Control changes kept for the marks line.
pub const MAX_MARKS: usize = 50;

/// A call's figures for one second of media.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallSecond {
    /// Seconds since the call's media started.
    pub t_s: u32,
    /// Frames lost in that second, percent (0..=100).
    pub loss_pct: f64,
    /// Mean one-way delay of the frames that arrived (ms); `None` if none arrived.
    pub delay_ms: Option<f64>,
    /// E-model MOS for that second (1.0..=4.5).
    pub mos: f64,
}

/// A call's verdict as it changes during the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveVerdict {
    Connecting,
    Connected,
    Degraded,
    Cut,
    Blocked,
    Error,
}

impl LiveVerdict {
    pub fn name(self) -> &'static str {
        match self {
            LiveVerdict::Connecting => "connecting",
            LiveVerdict::Connected => "connected",
            LiveVerdict::Degraded => "degraded",
            LiveVerdict::Cut => "cut",
            LiveVerdict::Blocked => "blocked",
            LiveVerdict::Error => "error",
        }
    }

    /// Parses the names above (the verdict names of callwall's results).
    pub fn from_name(s: &str) -> Option<LiveVerdict> {
        Some(match s {
            "connecting" => LiveVerdict::Connecting,
            "connected" => LiveVerdict::Connected,
            "degraded" => LiveVerdict::Degraded,
            "cut" => LiveVerdict::Cut,
            "blocked" => LiveVerdict::Blocked,
            "error" => LiveVerdict::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for LiveVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One call on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    /// `webrtc/turn-tls`
    pub label: String,
    pub verdict: LiveVerdict,
    /// The last [`HISTORY_SECONDS`] seconds, oldest first.
    pub seconds: VecDeque<CallSecond>,
    /// The audio quality figure (P.862.2 MOS-LQO) when the call carries audio.
    pub audio_mos: Option<f64>,
}

impl CallView {
    pub fn last(&self) -> Option<&CallSecond> {
        self.seconds.back()
    }
}

/// One censor rule on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleView {
    /// 1-based, the key that toggles it (for 1..=9).
    pub index: usize,
    pub name: String,
    pub action: String,
    pub enabled: bool,
    /// Packets the rule decided.
    pub hits: u64,
}

impl From<&RuleStatus> for RuleView {
    fn from(s: &RuleStatus) -> Self {
        RuleView {
            index: s.index,
            name: s.name.clone(),
            action: s.action.clone(),
            enabled: s.enabled,
            hits: s.packets,
        }
    }
}

/// What changes the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Calls (re)start: one view per label, history cleared.
    Calls(Vec<String>),
    /// One more second of a call's figures (call = index in [`DemoState::calls`]).
    Second {
        call: usize,
        second: CallSecond,
    },
    Verdict {
        call: usize,
        verdict: LiveVerdict,
    },
    AudioMos {
        call: usize,
        mos: f64,
    },
    /// The censor's rule list, as its control channel reported it.
    Rules(Vec<RuleView>),
    /// A control change took effect at `t_s` (marked on the view): `rule-off drop-all-udp`.
    Mark {
        t_s: u32,
        text: String,
    },
    /// The run's clock (seconds since the calls started).
    Clock {
        t_s: f64,
    },
    /// A line for the status bar (e.g. a control error).
    Message(String),
}

/// Everything the view shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DemoState {
    /// The scenario whose policy runs now.
    pub scenario: String,
    /// Scenario files `p` cycles through, and which one runs.
    pub policies: Vec<PathBuf>,
    pub policy_index: usize,
    pub t_s: f64,
    pub calls: Vec<CallView>,
    pub rules: Vec<RuleView>,
    /// Control changes, oldest first: (second, text).
    pub marks: VecDeque<(u32, String)>,
    pub message: Option<String>,
}

impl DemoState {
    pub fn new(scenario: impl Into<String>, policies: Vec<PathBuf>) -> DemoState {
        DemoState { scenario: scenario.into(), policies, ..Default::default() }
    }

    /// Applies one update. Updates naming a call that does not exist are ignored.
    pub fn apply(&mut self, u: Update) {
        match u {
            Update::Calls(labels) => {
                self.calls = labels
                    .into_iter()
                    .map(|label| CallView {
                        label,
                        verdict: LiveVerdict::Connecting,
                        seconds: VecDeque::new(),
                        audio_mos: None,
                    })
                    .collect();
                self.t_s = 0.0;
            }
            Update::Second { call, second } => {
                if let Some(c) = self.calls.get_mut(call) {
                    if c.seconds.len() >= HISTORY_SECONDS {
                        c.seconds.pop_front();
                    }
                    c.seconds.push_back(second);
                }
            }
            Update::Verdict { call, verdict } => {
                if let Some(c) = self.calls.get_mut(call) {
                    c.verdict = verdict;
                }
            }
            Update::AudioMos { call, mos } => {
                if let Some(c) = self.calls.get_mut(call) {
                    c.audio_mos = Some(mos);
                }
            }
            Update::Rules(rules) => self.rules = rules,
            Update::Mark { t_s, text } => {
                if self.marks.len() >= MAX_MARKS {
                    self.marks.pop_front();
                }
                self.marks.push_back((t_s, text));
            }
            Update::Clock { t_s } => self.t_s = t_s,
            Update::Message(m) => self.message = Some(m),
        }
    }

    /// The censor control command for a UI command, if it has one (`r` and `q` are for the
    /// launcher). `p` moves to the next policy in [`DemoState::policies`] and asks to swap to
    /// it; with no policies to cycle it does nothing.
    pub fn control_command(&mut self, c: UiCommand) -> Option<Command> {
        match c {
            UiCommand::ToggleRule(n) => Some(Command::Toggle { rule: RuleRef::Index(n) }),
            UiCommand::NextPolicy => {
                if self.policies.is_empty() {
                    self.message = Some("no other scenario to swap to: pass more than one".into());
                    return None;
                }
                self.policy_index = (self.policy_index + 1) % self.policies.len();
                let p = self.policies[self.policy_index].clone();
                self.scenario =
                    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                Some(Command::Swap { policy: p })
            }
            UiCommand::Restart | UiCommand::Quit => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(t_s: u32, loss: f64) -> CallSecond {
        CallSecond { t_s, loss_pct: loss, delay_ms: Some(2.0), mos: 4.3 }
    }

    #[test]
    fn updates_build_the_state() {
        let mut s = DemoState::new("udp-blackout", vec![]);
        s.apply(Update::Calls(vec!["noise/udp".into(), "webrtc/turn-tls".into()]));
        s.apply(Update::Second { call: 0, second: sec(0, 0.0) });
        s.apply(Update::Second { call: 0, second: sec(1, 100.0) });
        s.apply(Update::Second { call: 7, second: sec(1, 100.0) });
        s.apply(Update::Verdict { call: 0, verdict: LiveVerdict::Cut });
        s.apply(Update::Mark { t_s: 1, text: "rule-on drop-all-udp".into() });
        assert_eq!(s.calls[0].seconds.len(), 2);
        assert_eq!(s.calls[0].last().unwrap().loss_pct, 100.0);
        assert_eq!(s.calls[0].verdict, LiveVerdict::Cut);
        assert_eq!(s.calls[1].verdict, LiveVerdict::Connecting);
        assert_eq!(s.marks.len(), 1);
        // History is bounded.
        for t in 0..(HISTORY_SECONDS as u32 + 10) {
            s.apply(Update::Second { call: 1, second: sec(t, 0.0) });
        }
        assert_eq!(s.calls[1].seconds.len(), HISTORY_SECONDS);
        assert_eq!(s.calls[1].seconds[0].t_s, 10);
        // A restart clears the calls.
        s.apply(Update::Calls(vec!["quic/quic".into()]));
        assert_eq!(s.calls.len(), 1);
        assert!(s.calls[0].seconds.is_empty());
    }

    #[test]
    fn ui_commands_become_control_commands() {
        let mut s = DemoState::new("a", vec!["scenarios/a.toml".into(), "scenarios/b.toml".into()]);
        assert_eq!(
            s.control_command(UiCommand::ToggleRule(3)),
            Some(Command::Toggle { rule: RuleRef::Index(3) })
        );
        assert_eq!(
            s.control_command(UiCommand::NextPolicy),
            Some(Command::Swap { policy: "scenarios/b.toml".into() })
        );
        assert_eq!(s.scenario, "b");
        assert_eq!(
            s.control_command(UiCommand::NextPolicy),
            Some(Command::Swap { policy: "scenarios/a.toml".into() })
        );
        assert_eq!(s.control_command(UiCommand::Quit), None);
        let mut lone = DemoState::new("a", vec![]);
        assert_eq!(lone.control_command(UiCommand::NextPolicy), None);
        assert!(lone.message.unwrap().contains("pass more than one"));
    }
}
