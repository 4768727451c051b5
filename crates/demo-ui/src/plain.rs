//! One line per call per second, for when stdout is not a terminal (a log, CI, a pipe).
//!
//! ```text
//! t=12s webrtc/turn-tls connected loss 0.0% delay 2.4ms mos 4.38
//! t=12s noise/udp blocked loss 100.0% delay - mos 1.00 audio 1.02
//! ```
//! Control changes print as `t=7s control rule-off drop-all-udp`.

use crate::model::{CallView, DemoState};

/// The line for a call's latest second, or `None` before its first second.
pub fn call_line(c: &CallView) -> Option<String> {
    let s = c.last()?;
    let delay = s.delay_ms.map_or("-".to_string(), |d| format!("{d:.1}ms"));
    let mut line = format!(
        "t={}s {} {} loss {:.1}% delay {} mos {:.2}",
        s.t_s, c.label, c.verdict, s.loss_pct, delay, s.mos
    );
    if let Some(a) = c.audio_mos {
        line.push_str(&format!(" audio {a:.2}"));
    }
    Some(line)
}

/// Lines for every call that has a second newer than `after` (pass the last second printed,
/// `None` at first); returns the lines and the newest second among them.
pub fn new_lines(state: &DemoState, after: Option<u32>) -> (Vec<String>, Option<u32>) {
    let mut newest = after;
    let mut out = Vec::new();
    for c in &state.calls {
        if let Some(s) = c.last() {
            if after.is_none_or(|a| s.t_s > a) {
                out.extend(call_line(c));
                newest = Some(newest.map_or(s.t_s, |n| n.max(s.t_s)));
            }
        }
    }
    (out, newest)
}

/// The line for a control change.
pub fn mark_line(t_s: u32, text: &str) -> String {
    format!("t={t_s}s control {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallSecond, LiveVerdict, Update};

    #[test]
    fn one_line_per_call_per_second() {
        let mut s = DemoState::new("x", vec![]);
        s.apply(Update::Calls(vec!["webrtc/turn-tls".into(), "noise/udp".into()]));
        assert_eq!(new_lines(&s, None), (vec![], None));
        s.apply(Update::Second {
            call: 0,
            second: CallSecond { t_s: 12, loss_pct: 0.0, delay_ms: Some(2.44), mos: 4.381 },
        });
        s.apply(Update::Verdict { call: 0, verdict: LiveVerdict::Connected });
        s.apply(Update::Second {
            call: 1,
            second: CallSecond { t_s: 12, loss_pct: 100.0, delay_ms: None, mos: 1.0 },
        });
        s.apply(Update::Verdict { call: 1, verdict: LiveVerdict::Blocked });
        s.apply(Update::AudioMos { call: 1, mos: 1.02 });
        let (lines, newest) = new_lines(&s, Some(11));
        assert_eq!(
            lines,
            vec![
                "t=12s webrtc/turn-tls connected loss 0.0% delay 2.4ms mos 4.38",
                "t=12s noise/udp blocked loss 100.0% delay - mos 1.00 audio 1.02",
            ]
        );
        assert_eq!(newest, Some(12));
        assert_eq!(new_lines(&s, Some(12)).0.len(), 0);
        assert_eq!(mark_line(7, "rule-off drop-all-udp"), "t=7s control rule-off drop-all-udp");
    }
}
