//! The peer's JSON-lines report: a pure parser and the conversion into a [`PeerReport`].
//!
//! One JSON object per line (blank lines are skipped). The lines a peer may write:
//!
//! ```text
//! {"event":"hello","impl":"aiortc 1.16.0"}                      optional, names the implementation
//! {"event":"connected","t_ns":1700000000123456789,"path":"…"}   media path up (path optional)
//! {"seq":17,"sent_ns":…,"recv_ns":…}                              one received voice frame
//! {"event":"sent","frames":500,"start_ns":…,"end_ns":…}           the sender stopped: totals
//! {"event":"done","t_ns":…}                                       the receiver stopped listening
//! {"event":"error","message":"…"}                                 the peer itself failed
//! {"event":"failed","stage":"signalling","reason":"…"}            a stage of the call failed
//! ```
//!
//! A frame line may also say `"event":"frame"`. Times are UNIX nanoseconds on the shared
//! clock. Unknown events and unknown fields are errors (a typo must not pass as silence):
//! [`parse_report`] names the line and the field. It is pure: no I/O, no clock, never panics.

use std::collections::BTreeSet;

use callwall_transport::{Arrival, PeerReport, Role, VoiceModel};
use serde_json::{Map, Value};

/// Most frame lines one report may hold (a 24-hour call at 20 ms frames is 4.3 million).
pub const MAX_FRAMES: usize = 5_000_000;

/// What a peer said about its call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalReport {
    /// `hello.impl`.
    pub implementation: Option<String>,
    /// `connected.t_ns` (the first, if several).
    pub connected_unix_ns: Option<u64>,
    /// `connected.path`.
    pub path: Option<String>,
    /// The `sent` line, when the peer gave one.
    pub sent: Option<SentTotals>,
    /// `done.t_ns`.
    pub done_unix_ns: Option<u64>,
    /// Every received frame, in the order of the lines.
    pub arrivals: Vec<Arrival>,
    /// `error.message` lines, joined.
    pub error: Option<String>,
    /// The first `failed` line: which stage of the call failed, and why.
    pub failed: Option<(Stage, String)>,
    /// Non-blank lines read.
    pub lines: u64,
}

/// A stage of a call a peer may say failed (`failed.stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Meeting the other peer through the signal server.
    Signalling,
    /// Setting up or keeping the media path.
    Media,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Signalling => "signalling",
            Stage::Media => "media",
        }
    }
}

/// The `sent` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentTotals {
    pub frames: u64,
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
}

impl ExternalReport {
    /// Whether the peer reported frames: it wrote a `sent` line, so its arrivals (possibly
    /// none) are a measurement. A peer that did not is judged from the network.
    pub fn reports_frames(&self) -> bool {
        self.sent.is_some()
    }

    /// The report in the built-in peers' form, for [`callwall_transport::metrics::analyze`].
    ///
    /// `dial_start_unix_ns` is the call's start time (the contract's start), `drain` how long
    /// the peer was told to listen after its media end (used when it wrote no `done` line).
    pub fn to_peer_report(
        &self,
        role: Role,
        transport: &str,
        dial_start_unix_ns: u64,
        voice: VoiceModel,
        drain: std::time::Duration,
    ) -> PeerReport {
        let mut r = PeerReport::new(role, transport);
        r.voice = voice;
        r.dial_start_unix_ns = dial_start_unix_ns;
        r.connected_unix_ns = self.connected_unix_ns;
        r.path = self.path.clone();
        r.strategy = self.implementation.clone();
        r.arrivals = self.arrivals.clone();
        r.error = self.error.clone();
        if let Some(s) = self.sent {
            r.frames_sent = s.frames;
            r.media_start_unix_ns = s.start_unix_ns;
            r.media_end_unix_ns = s.end_unix_ns;
            let last_recv = self.arrivals.iter().map(|a| a.recv_unix_ns).max().unwrap_or(0);
            let drained = s.end_unix_ns.saturating_add(drain.as_nanos() as u64);
            r.recv_end_unix_ns = self.done_unix_ns.unwrap_or(drained).max(last_recv);
        }
        r
    }
}

/// A report line that does not follow the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("report line {line}{}: {message}", field.as_ref().map(|f| format!(", field {f:?}")).unwrap_or_default())]
pub struct ReportError {
    /// 1-based line number.
    pub line: usize,
    /// Non-blank lines read before the malformed one.
    pub lines_read: u64,
    /// The field at fault, when one is.
    pub field: Option<String>,
    pub message: String,
}

fn err(line: usize, field: Option<&str>, message: impl Into<String>) -> ReportError {
    ReportError { line, lines_read: 0, field: field.map(str::to_string), message: message.into() }
}

const EVENTS: &str = "hello, connected, frame, sent, done, error, failed";

/// Parses a whole report. See the module doc for the format.
pub fn parse_report(text: &str) -> Result<ExternalReport, ReportError> {
    let mut read = 0u64;
    parse_lines(text, &mut read).map_err(|mut e| {
        e.lines_read = read;
        e
    })
}

fn parse_lines(text: &str, read: &mut u64) -> Result<ExternalReport, ReportError> {
    let mut out = ExternalReport::default();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        *read = out.lines;
        out.lines += 1;
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| err(line, None, format!("not a JSON object: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(err(line, None, "not a JSON object"));
        };
        let event = match obj.get("event") {
            None => "frame",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(err(line, Some("event"), "must be a string")),
        };
        let f = Fields { obj: &obj, line };
        match event {
            "frame" => {
                f.only(&["event", "seq", "sent_ns", "recv_ns"])?;
                if out.arrivals.len() >= MAX_FRAMES {
                    return Err(err(line, None, format!("more than {MAX_FRAMES} frame lines")));
                }
                let seq = f.u64("seq")?;
                let seq = u32::try_from(seq)
                    .map_err(|_| err(line, Some("seq"), "must fit in 32 bits"))?;
                out.arrivals.push(Arrival {
                    seq,
                    sent_unix_ns: f.u64("sent_ns")?,
                    recv_unix_ns: f.u64("recv_ns")?,
                });
            }
            "hello" => {
                f.only(&["event", "impl"])?;
                out.implementation = f.opt_str("impl")?;
            }
            "connected" => {
                f.only(&["event", "t_ns", "path"])?;
                let t = f.u64("t_ns")?;
                let path = f.opt_str("path")?;
                if out.connected_unix_ns.is_none() {
                    out.connected_unix_ns = Some(t);
                    out.path = path;
                }
            }
            "sent" => {
                f.only(&["event", "frames", "start_ns", "end_ns"])?;
                let s = SentTotals {
                    frames: f.u64("frames")?,
                    start_unix_ns: f.u64("start_ns")?,
                    end_unix_ns: f.u64("end_ns")?,
                };
                if s.end_unix_ns < s.start_unix_ns {
                    return Err(err(line, Some("end_ns"), "is before start_ns"));
                }
                if out.sent.is_some() {
                    return Err(err(line, None, "a second \"sent\" line; write it once"));
                }
                out.sent = Some(s);
            }
            "done" => {
                f.only(&["event", "t_ns"])?;
                out.done_unix_ns = Some(f.u64("t_ns")?);
            }
            "error" => {
                f.only(&["event", "message"])?;
                let m = f
                    .opt_str("message")?
                    .ok_or_else(|| err(line, Some("message"), "is missing; say what went wrong"))?;
                errors.push(m);
            }
            "failed" => {
                f.only(&["event", "stage", "reason"])?;
                let stage = match f.opt_str("stage")?.as_deref() {
                    Some("signalling") => Stage::Signalling,
                    Some("media") => Stage::Media,
                    Some(other) => {
                        return Err(err(
                            line,
                            Some("stage"),
                            format!("unknown stage {other:?}; use signalling or media"),
                        ))
                    }
                    None => return Err(err(line, Some("stage"), "is missing")),
                };
                let reason = f
                    .opt_str("reason")?
                    .ok_or_else(|| err(line, Some("reason"), "is missing; say what failed"))?;
                if out.failed.is_none() {
                    out.failed = Some((stage, reason));
                }
            }
            other => {
                return Err(err(
                    line,
                    Some("event"),
                    format!("unknown event {other:?}; use one of {EVENTS}"),
                ))
            }
        }
    }
    if !errors.is_empty() {
        out.error = Some(errors.join("; "));
    }
    Ok(out)
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    line: usize,
}

impl Fields<'_> {
    fn only(&self, allowed: &[&str]) -> Result<(), ReportError> {
        let unknown: BTreeSet<&str> =
            self.obj.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
        match unknown.into_iter().next() {
            None => Ok(()),
            Some(k) => Err(err(
                self.line,
                Some(k),
                format!("unknown field; this line may have {}", allowed.join(", ")),
            )),
        }
    }

    fn u64(&self, k: &str) -> Result<u64, ReportError> {
        match self.obj.get(k) {
            None => Err(err(self.line, Some(k), "is missing")),
            Some(v) => v.as_u64().ok_or_else(|| {
                err(self.line, Some(k), format!("must be an unsigned integer, not {v}"))
            }),
        }
    }

    fn opt_str(&self, k: &str) -> Result<Option<String>, ReportError> {
        match self.obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(err(self.line, Some(k), format!("must be a string, not {v}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_transport::{metrics, Thresholds, Verdict};
    use std::time::Duration;

    const T0: u64 = 1_700_000_000_000_000_000;
    const MS: u64 = 1_000_000;

    /// A report of `n` frames sent and received every 20 ms after connecting at T0 + 100 ms.
    fn good(n: u64, skip: impl Fn(u64) -> bool) -> String {
        let start = T0 + 100 * MS;
        let mut s = format!(
            "{{\"event\":\"hello\",\"impl\":\"test 1\"}}\n{{\"event\":\"connected\",\"t_ns\":{start},\"path\":\"udp\"}}\n"
        );
        for seq in 0..n {
            if skip(seq) {
                continue;
            }
            let sent = start + seq * 20 * MS;
            s += &format!("{{\"seq\":{seq},\"sent_ns\":{sent},\"recv_ns\":{}}}\n", sent + 5 * MS);
        }
        let end = start + n * 20 * MS;
        s += &format!(
            "{{\"event\":\"sent\",\"frames\":{n},\"start_ns\":{start},\"end_ns\":{end}}}\n"
        );
        s += &format!("{{\"event\":\"done\",\"t_ns\":{}}}\n", end + 1000 * MS);
        s
    }

    #[test]
    fn a_full_report_feeds_the_call_analysis() {
        let r = parse_report(&good(250, |_| false)).unwrap();
        assert!(r.reports_frames());
        assert_eq!(r.arrivals.len(), 250);
        assert_eq!(r.lines, 254);
        assert_eq!(r.implementation.as_deref(), Some("test 1"));
        let v = VoiceModel::default();
        let d = Duration::from_secs(1);
        let a = r.to_peer_report(Role::Caller, "ext", T0, v, d);
        let b = r.to_peer_report(Role::Callee, "ext", T0, v, d);
        assert_eq!(a.recv_end_unix_ns, T0 + 100 * MS + 5000 * MS + 1000 * MS);
        let m = metrics::analyze(&a, &b, &Thresholds::default());
        assert_eq!(m.verdict, Verdict::Connected, "{}", m.reason);
        assert_eq!(m.setup_ms, Some(100.0));
        assert!((m.one_way_delay_ms - 5.0).abs() < 0.01, "{}", m.one_way_delay_ms);
        // A tenth of the frames missing is loss the analysis sees.
        let lossy = parse_report(&good(250, |s| s % 10 == 3)).unwrap();
        let c = lossy.to_peer_report(Role::Callee, "ext", T0, v, d);
        let m = metrics::analyze(&a, &c, &Thresholds::default());
        assert_eq!(m.verdict, Verdict::Degraded, "{}", m.reason);
        assert!((m.up.loss_pct - 10.0).abs() < 0.5, "{}", m.up.loss_pct);
    }

    #[test]
    fn nothing_reported_is_not_frames() {
        let r = parse_report("\n\n").unwrap();
        assert!(!r.reports_frames());
        let r = parse_report(&format!("{{\"event\":\"connected\",\"t_ns\":{T0}}}")).unwrap();
        assert!(!r.reports_frames());
        assert_eq!(r.connected_unix_ns, Some(T0));
    }

    #[test]
    fn error_lines_become_the_peer_error() {
        let r = parse_report(
            "{\"event\":\"error\",\"message\":\"ice failed\"}\n{\"event\":\"error\",\"message\":\"bye\"}",
        )
        .unwrap();
        assert_eq!(r.error.as_deref(), Some("ice failed; bye"));
        let p = r.to_peer_report(Role::Caller, "x", T0, VoiceModel::default(), Duration::ZERO);
        assert_eq!(p.error.as_deref(), Some("ice failed; bye"));
    }

    /// (input, line, field, words in the message)
    const BAD: &[(&str, usize, Option<&str>, &str)] = &[
        ("{\"seq\":1,\"sent_ns\":2}", 1, Some("recv_ns"), "is missing"),
        ("\n{\"seq\":-1,\"sent_ns\":2,\"recv_ns\":3}", 2, Some("seq"), "unsigned integer"),
        ("{\"seq\":4294967296,\"sent_ns\":2,\"recv_ns\":3}", 1, Some("seq"), "32 bits"),
        ("{\"seq\":1,\"sent_ns\":\"2\",\"recv_ns\":3}", 1, Some("sent_ns"), "unsigned integer"),
        ("{\"seq\":1,\"sent_ms\":2,\"recv_ns\":3}", 1, Some("sent_ms"), "unknown field"),
        ("{\"event\":\"conected\",\"t_ns\":1}", 1, Some("event"), "unknown event"),
        ("{\"event\":7}", 1, Some("event"), "string"),
        ("{\"event\":\"connected\"}", 1, Some("t_ns"), "is missing"),
        ("[1,2]", 1, None, "not a JSON object"),
        ("{\"seq\":1,", 1, None, "not a JSON object"),
        (
            "{\"event\":\"sent\",\"frames\":1,\"start_ns\":5,\"end_ns\":4}",
            1,
            Some("end_ns"),
            "before",
        ),
        ("{\"event\":\"error\"}", 1, Some("message"), "missing"),
        ("{\"event\":\"hello\",\"impl\":3}", 1, Some("impl"), "string"),
    ];

    #[test]
    fn malformed_lines_name_line_and_field() {
        for &(input, line, field, words) in BAD {
            let e = parse_report(input).expect_err(input);
            assert_eq!(e.line, line, "{input}: {e}");
            assert_eq!(e.field.as_deref(), field, "{input}: {e}");
            assert!(e.message.contains(words), "{input}: {e}");
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("report line {line}")), "{shown}");
        }
        let two = "{\"event\":\"sent\",\"frames\":1,\"start_ns\":1,\"end_ns\":2}\n";
        let e = parse_report(&two.repeat(2)).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.lines_read, 1);
    }

    #[test]
    fn a_parse_error_counts_the_lines_read_before_it() {
        let mut text = good(200, |_| false);
        text += "\n{\"seq\":1,\"sent_ns\":2}\n";
        let e = parse_report(&text).unwrap_err();
        assert_eq!(e.lines_read, 204, "{e}");
        assert_eq!(e.line, 206, "{e}");
    }

    #[test]
    fn a_failed_line_names_the_stage_and_the_reason() {
        let r = parse_report(
            "{\"event\":\"failed\",\"stage\":\"signalling\",\"reason\":\"connect timed out\"}\n\
             {\"event\":\"failed\",\"stage\":\"media\",\"reason\":\"later\"}",
        )
        .unwrap();
        assert_eq!(r.failed, Some((Stage::Signalling, "connect timed out".into())));
        assert!(r.error.is_none() && !r.reports_frames());
        for (bad, field) in [
            ("{\"event\":\"failed\",\"stage\":\"ice\",\"reason\":\"x\"}", "stage"),
            ("{\"event\":\"failed\",\"reason\":\"x\"}", "stage"),
            ("{\"event\":\"failed\",\"stage\":\"media\"}", "reason"),
        ] {
            let e = parse_report(bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{bad}: {e}");
        }
    }

    #[test]
    fn never_panics_on_junk() {
        for junk in ["\u{0}", "{}", "null", "{\"event\":null}", "\"x\"", "{\"seq\":1e30}", "}{"] {
            let _ = parse_report(junk);
        }
    }
}
