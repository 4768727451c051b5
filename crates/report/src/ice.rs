//! The per-call ICE block of the HTML report: the candidate pair the caller's ICE agent chose
//! and, per candidate source, whether it produced a candidate and whether a pair using it
//! succeeded. Empty for calls without an ICE summary.

use std::fmt::Write as _;

use callwall_results::ice::CallIce;
use callwall_results::CallResult;

use crate::html::escape;

/// Appends the ICE block of `c` to `o` (nothing when the call ran no ICE agent).
pub fn ice_block(o: &mut String, c: &CallResult) {
    let Some(ice) = &c.ice else { return };
    o.push_str("<div class=\"ice\"><p class=\"meta\"><strong>ICE:</strong> ");
    o.push_str(&chosen(ice));
    let _ = write!(
        o,
        " · gathering {} ms · connected at {} ms</p>\n<table class=\"figures\"><thead><tr>\
         <th>candidate source</th><th>outcome</th><th>note</th></tr></thead><tbody>",
        crate::opt_ms(ice.gathering_ms),
        crate::opt_ms(ice.connected_ms)
    );
    for s in &ice.sources {
        let _ = write!(
            o,
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            escape(&s.via),
            s.outcome(),
            escape(s.error.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</tbody></table></div>\n");
}

/// One line for the chosen pair, e.g. `chosen relay (turn-tcp) 10.0.0.9:5000 ↔ host
/// 10.0.1.2:4000 over udp`.
pub fn chosen(ice: &CallIce) -> String {
    match &ice.selected {
        Some(s) => format!(
            "chosen {} ({}) {} ↔ {} {} over {}",
            escape(&s.local_kind),
            escape(&s.local_via),
            escape(&s.local),
            escape(s.remote_kind.as_deref().unwrap_or("?")),
            escape(s.remote.as_deref().unwrap_or("?")),
            escape(&s.protocol)
        ),
        None => "no pair chosen".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callwall_results::ice::{IceChoice, IceSource};
    use callwall_results::Verdict;

    #[test]
    fn shows_the_chosen_pair_and_each_source_escaped() {
        let mut c = crate::html::tests::call("webrtc-auto", Verdict::Connected);
        let mut o = String::new();
        ice_block(&mut o, &c);
        assert!(o.is_empty());
        c.ice = Some(CallIce {
            selected: Some(IceChoice {
                local_kind: "relay".into(),
                local_via: "turn-tcp".into(),
                local: "10.0.0.9:5000".into(),
                remote_kind: Some("host".into()),
                remote: Some("10.0.1.2:4000".into()),
                protocol: "udp".into(),
            }),
            sources: vec![
                IceSource { via: "turn-tcp".into(), gathered: true, succeeded: true, error: None },
                IceSource {
                    via: "turn-udp".into(),
                    error: Some("<timeout>".into()),
                    ..Default::default()
                },
            ],
            gathering_ms: Some(1000.0),
            connected_ms: Some(1290.0),
        });
        ice_block(&mut o, &c);
        assert!(o.contains("chosen relay (turn-tcp) 10.0.0.9:5000"), "{o}");
        assert!(o.contains("<th>turn-udp</th><td>failed</td><td>&lt;timeout&gt;</td>"), "{o}");
        assert!(o.contains("connected at 1290 ms"), "{o}");
        let page = crate::html::html(&crate::html::tests::doc(vec![crate::html::tests::run(
            "s",
            vec![c],
        )]));
        assert!(page.contains("<div class=\"ice\">"));
    }
}
