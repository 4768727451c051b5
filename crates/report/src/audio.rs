//! The audio figures of `--audio` calls in every format: beside the E-model MOS in the table
//! and Markdown, per direction in HTML, as suite properties and `system-out` keys in JUnit.

use std::fmt::Write as _;

use callwall_results::audio::{AudioDirection, CallAudio};
use callwall_results::{CallResult, Results};

use crate::html::escape;

fn two(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The MOS cell: the E-model MOS, and with `--audio` the audio MOS-LQO (worse direction)
/// after a slash: `4.38/3.86`.
pub fn mos_cell(c: &CallResult) -> String {
    match &c.audio {
        Some(a) => format!("{}/{}", two(c.mos), two(a.mos_lqo())),
        None => two(c.mos),
    }
}

fn has_audio(doc: &Results) -> bool {
    doc.runs.iter().flat_map(|r| &r.calls).any(|c| c.audio.is_some())
}

fn metric_line(doc: &Results) -> Option<String> {
    let a = doc.runs.iter().flat_map(|r| &r.calls).find_map(|c| c.audio.as_ref())?;
    Some(format!(
        "{} by {}; clip: {}; codec: {} at {:.1} kbit/s",
        a.metric,
        a.metric_version,
        a.clip,
        a.codec,
        f64::from(a.bitrate_bps) / 1e3
    ))
}

/// A direction's MOS-LQO, with ` (nothing heard)` when it is the floor for silence.
fn lqo(d: Option<&AudioDirection>) -> String {
    match d {
        Some(d) if d.floor_reason.is_some() => format!("{} (nothing heard)", two(d.mos_lqo)),
        d => two(d.and_then(|d| d.mos_lqo)),
    }
}

fn dir_text(d: &Option<AudioDirection>) -> String {
    match d {
        None => "-".into(),
        Some(d) => {
            let mut s = format!(
                "{} ({} of {} frames played, {} lost, {} late)",
                two(d.mos_lqo),
                d.played,
                d.frames,
                d.lost,
                d.late
            );
            if let Some(w) = &d.floor_reason {
                let _ = write!(s, " [{w}]");
            }
            if let Some(e) = &d.error {
                let _ = write!(s, " [{e}]");
            }
            s
        }
    }
}

/// For the terminal table: what the slash in the MOS column means, and each call's
/// directions. Empty without `--audio`.
pub fn table_section(doc: &Results) -> String {
    let Some(metric) = metric_line(doc) else { return String::new() };
    let mut o = format!(
        "\nMOS column with --audio: E-model MOS / audio MOS-LQO (worse direction): {metric}\n"
    );
    for r in &doc.runs {
        for c in &r.calls {
            if let Some(a) = &c.audio {
                let _ = writeln!(
                    o,
                    "  audio {}/{}: up {}; down {}",
                    r.scenario,
                    c.name,
                    dir_text(&a.up),
                    dir_text(&a.down)
                );
            }
        }
    }
    o
}

/// For Markdown: a table of every call's audio. Empty without `--audio`.
pub fn markdown_section(doc: &Results) -> String {
    if !has_audio(doc) {
        return String::new();
    }
    let mut o = String::from("\n## Audio (`--audio`)\n\n");
    if let Some(m) = metric_line(doc) {
        let _ = writeln!(o, "{m}\n");
    }
    o.push_str("| scenario | call | E-model MOS | audio MOS-LQO up | audio MOS-LQO down | frames played up / down |\n|---|---|--:|--:|--:|--:|\n");
    for r in &doc.runs {
        for c in &r.calls {
            let Some(a) = &c.audio else { continue };
            let played = |d: &Option<AudioDirection>| {
                d.as_ref().map_or("-".into(), |d| format!("{}/{}", d.played, d.frames))
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} / {} |",
                r.scenario,
                c.name,
                two(c.mos),
                lqo(a.up.as_ref()),
                lqo(a.down.as_ref()),
                played(&a.up),
                played(&a.down)
            );
        }
    }
    o
}

fn floor_note(s: String, d: &AudioDirection) -> String {
    match &d.floor_reason {
        Some(w) => format!("{s} ({w})"),
        None => s,
    }
}

/// For HTML: a call's audio table. Nothing without `--audio`.
pub fn html_call(o: &mut String, c: &CallResult) {
    let Some(a) = &c.audio else { return };
    let cell = |d: &Option<AudioDirection>, f: &dyn Fn(&AudioDirection) -> String| {
        d.as_ref().map_or("–".to_string(), |d| escape(&f(d)))
    };
    let _ = writeln!(
        o,
        "<table class=\"figures audio\"><thead><tr><th>audio</th><th>up (caller → callee)</th><th>down (callee → caller)</th></tr></thead><tbody>\
         <tr><th>audio MOS-LQO (mean / lowest window)</th><td>{}</td><td>{}</td></tr>\
         <tr><th>frames played / lost / late</th><td>{}</td><td>{}</td></tr>\
         <tr><th>recording</th><td>{}</td><td>{}</td></tr>\
         </tbody></table>\n<p class=\"meta\">{} by {} · clip {} · {} at {:.1} kbit/s. The E-model MOS above is computed from loss, delay and jitter; the audio MOS-LQO listens to the speech that arrived.</p>",
        cell(&a.up, &|d| floor_note(format!("{} / {}", two(d.mos_lqo), two(d.min_mos_lqo)), d)),
        cell(&a.down, &|d| floor_note(format!("{} / {}", two(d.mos_lqo), two(d.min_mos_lqo)), d)),
        cell(&a.up, &|d| format!("{} / {} / {}", d.played, d.lost, d.late)),
        cell(&a.down, &|d| format!("{} / {} / {}", d.played, d.lost, d.late)),
        cell(&a.up, &|d| d.recording.clone().or(d.error.clone()).unwrap_or_default()),
        cell(&a.down, &|d| d.recording.clone().or(d.error.clone()).unwrap_or_default()),
        escape(&a.metric),
        escape(&a.metric_version),
        escape(&a.clip),
        escape(&a.codec),
        f64::from(a.bitrate_bps) / 1e3
    );
}

/// For JUnit: `audio_mos_lqo_up=… audio_mos_lqo_down=…` for a call's `system-out` line.
pub fn junit_keys(c: &CallResult) -> String {
    match &c.audio {
        Some(a) => format!(
            " audio_mos_lqo_up={} audio_mos_lqo_down={}",
            two(a.up.as_ref().and_then(|d| d.mos_lqo)),
            two(a.down.as_ref().and_then(|d| d.mos_lqo))
        ),
        None => String::new(),
    }
}

/// For JUnit: a suite's `<properties>` with every call's audio figures (the schema allows
/// properties on suites only). Nothing when no call of the run had audio.
pub fn junit_properties(o: &mut String, calls: &[CallResult]) {
    let with: Vec<(&CallResult, &CallAudio)> =
        calls.iter().filter_map(|c| c.audio.as_ref().map(|a| (c, a))).collect();
    let Some((_, first)) = with.first() else { return };
    let _ = writeln!(o, "    <properties>");
    let mut prop = |name: String, value: String| {
        let _ = writeln!(
            o,
            "      <property name=\"{}\" value=\"{}\"/>",
            escape(&name),
            escape(&value)
        );
    };
    prop("audio.metric".into(), format!("{} ({})", first.metric, first.metric_version));
    prop("audio.clip".into(), first.clip.clone());
    prop("audio.codec".into(), first.codec.clone());
    prop("audio.bitrate_bps".into(), first.bitrate_bps.to_string());
    for (c, a) in &with {
        prop(format!("audio.{}.mos_lqo_up", c.name), two(a.up.as_ref().and_then(|d| d.mos_lqo)));
        prop(
            format!("audio.{}.mos_lqo_down", c.name),
            two(a.down.as_ref().and_then(|d| d.mos_lqo)),
        );
        prop(format!("audio.{}.emodel_mos", c.name), two(c.mos));
    }
    let _ = writeln!(o, "    </properties>");
}

/// A call whose audio MOS-LQO (worse direction) moved by at least [`AUDIO_CHANGE`] between two
/// documents (for `diff`; informational: verdicts alone decide a regression).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AudioChange {
    #[serde(flatten)]
    pub key: crate::diff::CallKey,
    pub old_mos_lqo: f64,
    pub new_mos_lqo: f64,
}

/// The smallest audio MOS-LQO change `diff` shows (PESQ repeats to within about 0.1 on the
/// same audio; 0.3 is a change a listener hears).
pub const AUDIO_CHANGE: f64 = 0.3;

fn audio_index(doc: &Results) -> std::collections::BTreeMap<crate::diff::CallKey, f64> {
    let mut m = std::collections::BTreeMap::new();
    for r in &doc.runs {
        for c in &r.calls {
            if let Some(v) = c.audio.as_ref().and_then(|a| a.mos_lqo()) {
                let key =
                    crate::diff::CallKey { scenario: r.scenario.clone(), call: c.name.clone() };
                let e = m.entry(key).or_insert(v);
                *e = f64::min(*e, v);
            }
        }
    }
    m
}

/// Calls scored with `--audio` in both documents whose audio MOS-LQO moved by at least
/// [`AUDIO_CHANGE`].
pub fn changes(old: &Results, new: &Results) -> Vec<AudioChange> {
    let o = audio_index(old);
    audio_index(new)
        .into_iter()
        .filter_map(|(key, n)| {
            let ov = *o.get(&key)?;
            ((n - ov).abs() >= AUDIO_CHANGE).then_some(AudioChange {
                key,
                old_mos_lqo: ov,
                new_mos_lqo: n,
            })
        })
        .collect()
}

/// Lines for `diff`'s text.
pub fn changes_text(changes: &[AudioChange]) -> String {
    changes
        .iter()
        .map(|c| {
            format!("audio   {}: MOS-LQO {:.2} -> {:.2}\n", c.key, c.old_mos_lqo, c.new_mos_lqo)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::tests::{call, doc, run};
    use callwall_results::Verdict;

    fn with_audio(name: &str, up: f64, down: f64) -> CallResult {
        let dir = |m: f64| AudioDirection {
            mos_lqo: Some(m),
            min_mos_lqo: Some(m - 0.1),
            windows: 2,
            seconds: 18.0,
            frames: 900,
            played: 810,
            lost: 90,
            recording: Some(format!("{name}.caller-received.wav")),
            ..Default::default()
        };
        let mut c = call(name, Verdict::Connected);
        c.audio = Some(CallAudio {
            metric: "PESQ wideband (ITU-T P.862.2 MOS-LQO)".into(),
            metric_version: "pesq crate 0.2.0".into(),
            clip: "bundled speech (espeak-ng en-us)".into(),
            codec: "opus".into(),
            bitrate_bps: 26_400,
            up: Some(dir(up)),
            down: Some(dir(down)),
        });
        c
    }

    #[test]
    fn every_format_shows_the_audio_mos_beside_the_e_model() {
        let d = doc(vec![run(
            "net",
            vec![with_audio("speech", 3.9, 1.7), call("plain", Verdict::Connected)],
        )]);
        let t = crate::table::table(&d, false);
        assert!(t.contains("4.38/1.70"), "{t}");
        assert!(t.contains("E-model MOS / audio MOS-LQO") && t.contains("P.862.2"), "{t}");
        let md = crate::markdown::markdown(&d);
        assert!(
            md.contains("| 4.38/1.70 |")
                && md.contains("| net | speech | 4.38 | 3.90 | 1.70 | 810/900 / 810/900 |"),
            "{md}"
        );
        let j = crate::junit::junit(&d);
        assert!(j.contains("<property name=\"audio.speech.mos_lqo_down\" value=\"1.70\"/>"), "{j}");
        assert!(j.contains("audio_mos_lqo_up=3.90"), "{j}");
        let h = crate::html::html(&d);
        assert!(h.contains("audio MOS-LQO") && h.contains("3.90 / 3.80"), "{h}");
        // No audio: nothing changes.
        let plain = doc(vec![run("net", vec![call("plain", Verdict::Connected)])]);
        assert!(!crate::table::table(&plain, false).contains("audio"));
        assert!(!crate::junit::junit(&plain).contains("<properties>"));
    }

    #[test]
    fn a_direction_where_nothing_was_played_shows_the_floor_and_why_never_a_high_score() {
        let mut c = with_audio("silent", 3.9, 1.0);
        let down = c.audio.as_mut().unwrap().down.as_mut().unwrap();
        (down.played, down.lost, down.late, down.min_mos_lqo) = (0, 10, 890, Some(1.0));
        down.floor_reason =
            Some("nothing was played (0 of 900 frames: 10 lost, 890 late, 0 undecodable)".into());
        let d = doc(vec![run("net", vec![c])]);
        let t = crate::table::table(&d, false);
        assert!(t.contains("4.38/1.00"), "{t}");
        assert!(
            t.contains("down 1.00 (0 of 900 frames played, 10 lost, 890 late) [nothing was played"),
            "{t}"
        );
        let md = crate::markdown::markdown(&d);
        assert!(md.contains("| 3.90 | 1.00 (nothing heard) |"), "{md}");
        let h = crate::html::html(&d);
        assert!(h.contains("1.00 / 1.00 (nothing was played (0 of 900 frames"), "{h}");
    }

    #[test]
    fn diff_shows_an_audio_change_that_a_listener_hears() {
        let old = doc(vec![run("net", vec![with_audio("speech", 3.9, 3.8)])]);
        let new = doc(vec![run("net", vec![with_audio("speech", 3.9, 1.7)])]);
        let d = crate::diff::diff(&old, &new);
        assert_eq!(d.audio.len(), 1);
        assert!(!d.regressed);
        assert!(
            d.to_text().contains("audio   net/speech: MOS-LQO 3.80 -> 1.70"),
            "{}",
            d.to_text()
        );
        assert!(crate::diff::diff(&old, &old).audio.is_empty());
    }
}
