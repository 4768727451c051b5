//! Live control changes (rules switched on and off, policies swapped while the run went on)
//! in the HTML report: a list per run and a marker on every call's timeline.

use std::fmt::Write;

use callwall_results::{ControlChange, ControlEvent};

use crate::html::escape;

/// The change in words: `rule 1 drop-all-udp off`, `policy swapped to FILE (3 rules)`.
pub fn describe(change: &ControlChange) -> String {
    match change {
        ControlChange::RuleOn { index, name } => format!("rule {index} {name} on"),
        ControlChange::RuleOff { index, name } => format!("rule {index} {name} off"),
        ControlChange::PolicySwap { source, rules } => {
            format!("policy swapped to {source} ({rules} rules)")
        }
    }
}

/// The run's control changes as a list (nothing when there were none).
pub fn list(o: &mut String, changes: &[ControlEvent]) {
    if changes.is_empty() {
        return;
    }
    o.push_str("<h3>Changed during the run (live control)</h3>\n<ul class=\"control\">\n");
    for c in changes {
        let _ =
            writeln!(o, "<li>at {:.1} s: {}</li>", c.t_ms / 1000.0, escape(&describe(&c.change)));
    }
    o.push_str("</ul>\n");
}

/// A vertical marker per change across a timeline's panels, from `top` to `bottom`; `x` maps
/// seconds to the plot's x coordinate.
pub fn marks(
    o: &mut String,
    changes: &[ControlEvent],
    x: &dyn Fn(f64) -> f64,
    top: f64,
    bottom: f64,
) {
    for c in changes {
        let what = escape(&describe(&c.change));
        let cx = x(c.t_ms / 1000.0);
        let _ = writeln!(
            o,
            "<g class=\"control-marker\"><title>at {:.1} s: {what}</title><line class=\"cline\" x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{top:.1}\" y2=\"{bottom:.1}\"/><text class=\"clab\" x=\"{:.1}\" y=\"{:.1}\">{what}</text></g>",
            c.t_ms / 1000.0,
            cx + 3.0,
            bottom - 4.0,
        );
    }
}

/// Styles of the markers (appended to the page's CSS).
pub const CSS: &str = "svg .cline{stroke:#3f6fb5;stroke-width:2;stroke-dasharray:6 3}svg .clab{font-size:11px;fill:#3f6fb5}ul.control{color:#3f6fb5}\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_and_escapes_changes() {
        let ev = |t_ms, change| ControlEvent { t_ms, change };
        let changes = [
            ev(1500.0, ControlChange::RuleOff { index: 1, name: "drop<udp>".into() }),
            ev(9000.0, ControlChange::PolicySwap { source: "a.toml".into(), rules: 2 }),
        ];
        let mut o = String::new();
        list(&mut o, &changes);
        assert!(o.contains("at 1.5 s: rule 1 drop&lt;udp&gt; off"), "{o}");
        assert!(o.contains("policy swapped to a.toml (2 rules)"), "{o}");
        let mut svg = String::new();
        marks(&mut svg, &changes, &|t| t * 10.0, 0.0, 100.0);
        assert_eq!(svg.matches("class=\"control-marker\"").count(), 2);
        assert!(svg.contains("x1=\"15.0\""), "{svg}");
        let mut none = String::new();
        list(&mut none, &[]);
        assert!(none.is_empty());
    }
}
