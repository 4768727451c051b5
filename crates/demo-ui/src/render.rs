//! The full-screen view: a header, the calls side by side, the rules, the marks.
//!
//! ```text
//!  callwall demo · udp-blackout · t=12s        1-9 toggle rule · p next policy · r restart · q quit
//! ┌ noise/udp ─ BLOCKED ──────────┐┌ webrtc/turn-tls ─ CONNECTED ──┐
//! │loss   100.0% ████████████████ ││loss     0.0%                  │
//! │delay      -                   ││delay   2.4ms ▁▁▂▁▁▁▁▁▁▁▁▁     │
//! │MOS     1.00 ▇▇▇▇▁▁▁▁▁▁▁▁▁▁▁▁  ││MOS     4.38 ████████████████  │
//! └───────────────────────────────┘└───────────────────────────────┘
//! ┌ censor rules ─────────────────────────────────────────────────────┐
//! │ 1 [on ] drop-all-udp        drop                        hits 1234 │
//! └───────────────────────────────────────────────────────────────────┘
//! ```

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline, SparklineBar};
use ratatui::Frame;

use crate::model::{CallSecond, CallView, DemoState, LiveVerdict};

/// Calls per row of the grid.
const PER_ROW: usize = 3;
/// Width of a sparkline's label and value column.
const LABEL: u16 = 14;

fn verdict_color(v: LiveVerdict) -> Color {
    match v {
        LiveVerdict::Connecting => Color::Gray,
        LiveVerdict::Connected => Color::Green,
        LiveVerdict::Degraded => Color::Yellow,
        LiveVerdict::Cut | LiveVerdict::Blocked | LiveVerdict::Error => Color::Red,
    }
}

/// Draws the whole view.
pub fn draw(f: &mut Frame, s: &DemoState) {
    let rules_h = (s.rules.len().max(1) as u16 + 2).min(11);
    let rows = s.calls.len().div_ceil(PER_ROW).max(1) as u16;
    let [head, calls, rules, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5 * rows),
        Constraint::Length(rules_h),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header(f, head, s);
    call_grid(f, calls, s);
    rule_list(f, rules, s);
    footer(f, foot, s);
}

fn header(f: &mut Frame, area: Rect, s: &DemoState) {
    let line = Line::from(vec![
        Span::styled(" callwall demo ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("· {} · t={:.0}s ", s.scenario, s.t_s)),
        Span::styled(
            " 1-9 toggle rule · p next policy · r restart · q quit",
            Style::new().fg(Color::DarkGray),
        ),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn call_grid(f: &mut Frame, area: Rect, s: &DemoState) {
    if s.calls.is_empty() {
        f.render_widget(Paragraph::new(" starting calls…").block(Block::bordered()), area);
        return;
    }
    let rows: Vec<&[CallView]> = s.calls.chunks(PER_ROW).collect();
    let row_areas =
        Layout::vertical(vec![Constraint::Ratio(1, rows.len() as u32); rows.len()]).split(area);
    for (row, r_area) in rows.iter().zip(row_areas.iter()) {
        let cols = Layout::horizontal(vec![Constraint::Ratio(1, row.len() as u32); row.len()])
            .split(*r_area);
        for (c, c_area) in row.iter().zip(cols.iter()) {
            call_panel(f, *c_area, c);
        }
    }
}

/// One sparkline row: name, current value, bars, scale maximum, colour.
type Figure = (&'static str, String, Vec<Option<u64>>, u64, Color);

fn call_panel(f: &mut Frame, area: Rect, c: &CallView) {
    let color = verdict_color(c.verdict);
    let mut title = vec![
        Span::raw(format!(" {} ", c.label)),
        Span::styled(
            format!(" {} ", c.verdict.name().to_uppercase()),
            Style::new().fg(Color::Black).bg(color).add_modifier(Modifier::BOLD),
        ),
    ];
    if let Some(a) = c.audio_mos {
        title.push(Span::raw(format!(" audio {a:.2} ")));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::new().fg(color))
        .title(Line::from(title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    // Each figure gets a third of the panel: taller panels give taller sparklines.
    let lines = Layout::vertical([Constraint::Ratio(1, 3); 3]).split(inner);
    let last = c.last();
    let spark_w = inner.width.saturating_sub(LABEL) as usize;
    let tail: Vec<&CallSecond> =
        c.seconds.iter().skip(c.seconds.len().saturating_sub(spark_w)).collect();
    let fmt_delay = |d: Option<f64>| d.map_or("-".to_string(), |d| format!("{d:.1}ms"));
    let rows: [Figure; 3] = [
        (
            "loss",
            last.map_or("-".into(), |s| format!("{:.1}%", s.loss_pct)),
            tail.iter().map(|s| Some(s.loss_pct.round().clamp(0.0, 100.0) as u64)).collect(),
            100,
            Color::Red,
        ),
        (
            "delay",
            last.map_or("-".into(), |s| fmt_delay(s.delay_ms)),
            tail.iter().map(|s| s.delay_ms.map(|d| d.max(0.0).round() as u64)).collect(),
            tail.iter().filter_map(|s| s.delay_ms).fold(50.0f64, f64::max).ceil() as u64,
            Color::Yellow,
        ),
        (
            "MOS",
            last.map_or("-".into(), |s| format!("{:.2}", s.mos)),
            tail.iter().map(|s| Some((s.mos * 100.0).round().clamp(0.0, 450.0) as u64)).collect(),
            450,
            Color::Green,
        ),
    ];
    for ((name, value, data, max, col), line) in rows.into_iter().zip(lines.iter()) {
        let [label, spark] =
            Layout::horizontal([Constraint::Length(LABEL), Constraint::Min(0)]).areas(*line);
        let label = Rect { height: label.height.min(1), ..label };
        f.render_widget(Paragraph::new(format!("{name:<6}{value:>7} ")), label);
        let bars: Vec<SparklineBar> = data.into_iter().map(SparklineBar::from).collect();
        f.render_widget(
            Sparkline::default().data(bars).max(max.max(1)).style(Style::new().fg(col)),
            spark,
        );
    }
}

fn rule_list(f: &mut Frame, area: Rect, s: &DemoState) {
    let block = Block::bordered().title(" censor rules (key toggles) ");
    let lines: Vec<Line> = if s.rules.is_empty() {
        vec![Line::raw(" no rules: every packet passes")]
    } else {
        s.rules
            .iter()
            .map(|r| {
                let (state, st) = if r.enabled {
                    ("[on ]", Style::new().fg(Color::Red).add_modifier(Modifier::BOLD))
                } else {
                    ("[off]", Style::new().fg(Color::DarkGray))
                };
                let key = if r.index <= 9 { r.index.to_string() } else { " ".into() };
                Line::from(vec![
                    Span::raw(format!(" {key} ")),
                    Span::styled(state, st),
                    Span::raw(format!(" {:<28} {:<32} hits {}", r.name, r.action, r.hits)),
                ])
            })
            .collect()
    };
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn footer(f: &mut Frame, area: Rect, s: &DemoState) {
    let mut spans = Vec::new();
    if let Some(m) = &s.message {
        spans.push(Span::styled(format!(" {m} "), Style::new().fg(Color::Yellow)));
    }
    let marks: Vec<String> =
        s.marks.iter().rev().take(4).map(|(t, m)| format!("t={t}s {m}")).collect();
    if !marks.is_empty() {
        spans.push(Span::styled(
            format!(" changes: {}", marks.join(" · ")),
            Style::new().fg(Color::Cyan),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RuleView, Update};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(s: &DemoState, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, s)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn state() -> DemoState {
        let mut s = DemoState::new("udp-blackout", vec![]);
        s.apply(Update::Calls(vec!["noise/udp".into(), "webrtc/turn-tls".into()]));
        for t in 0..20u32 {
            let blackout = t >= 10;
            s.apply(Update::Second {
                call: 0,
                second: CallSecond {
                    t_s: t,
                    loss_pct: if blackout { 100.0 } else { 0.0 },
                    delay_ms: (!blackout).then_some(1.0),
                    mos: if blackout { 1.0 } else { 4.38 },
                },
            });
            s.apply(Update::Second {
                call: 1,
                second: CallSecond { t_s: t, loss_pct: 0.0, delay_ms: Some(2.4), mos: 4.38 },
            });
        }
        s.apply(Update::Verdict { call: 0, verdict: LiveVerdict::Cut });
        s.apply(Update::Verdict { call: 1, verdict: LiveVerdict::Connected });
        s.apply(Update::Rules(vec![
            RuleView {
                index: 1,
                name: "drop-all-udp".into(),
                action: "drop".into(),
                enabled: true,
                hits: 1234,
            },
            RuleView {
                index: 2,
                name: "throttle-tls".into(),
                action: "police 64kbit".into(),
                enabled: false,
                hits: 0,
            },
        ]));
        s.apply(Update::Mark { t_s: 10, text: "rule-on drop-all-udp".into() });
        s.apply(Update::Clock { t_s: 20.0 });
        s
    }

    #[test]
    fn shows_verdicts_figures_sparklines_and_rules() {
        let out = screen(&state(), 120, 20);
        eprintln!("{out}");
        assert!(out.contains("udp-blackout · t=20s"), "{out}");
        assert!(out.contains("noise/udp") && out.contains("CUT"), "{out}");
        assert!(out.contains("webrtc/turn-tls") && out.contains("CONNECTED"), "{out}");
        assert!(out.contains("100.0%") && out.contains("4.38") && out.contains("2.4ms"), "{out}");
        assert!(out.contains("1 [on ] drop-all-udp") && out.contains("hits 1234"), "{out}");
        assert!(out.contains("2 [off] throttle-tls"), "{out}");
        assert!(out.contains("t=10s rule-on drop-all-udp"), "{out}");
        // Sparklines: full bars for the blackout's loss and the clean call's MOS.
        let loss_line = out.lines().find(|l| l.contains("100.0%")).unwrap();
        assert!(loss_line.matches('█').count() >= 10, "{loss_line}");
        let mos_line = out.lines().find(|l| l.contains("MOS") && l.contains("1.00")).unwrap();
        assert!(mos_line.contains('█') || mos_line.contains('▇'), "{mos_line}");
    }

    #[test]
    fn a_toggle_shows_in_the_rule_list() {
        let mut s = state();
        let mut rules = s.rules.clone();
        rules[0].enabled = false;
        s.apply(Update::Rules(rules));
        let out = screen(&s, 120, 20);
        assert!(out.contains("1 [off] drop-all-udp"), "{out}");
    }

    #[test]
    fn six_calls_and_tiny_terminals_render() {
        let mut s = state();
        s.apply(Update::Calls((0..6).map(|i| format!("call-{i}")).collect()));
        let out = screen(&s, 150, 30);
        for i in 0..6 {
            assert!(out.contains(&format!("call-{i}")), "{out}");
        }
        // Nothing panics on a terminal too small for the layout.
        let _ = screen(&state(), 10, 4);
        let _ = screen(&DemoState::default(), 1, 1);
    }
}
