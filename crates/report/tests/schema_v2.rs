//! A results file of schema version 2 (tests/data/results-v2.json, written by the callwall of
//! commit a38490b) loads as the current version, typed, and renders the same sentences.

use callwall_report::{parse_results, LoadError};
use callwall_results::workload::{HttpProto, WorkloadCause, WorkloadKind, WorkloadOutcome};
use callwall_results::{Cause, Figures, Verdict, SCHEMA_VERSION};

const V2: &str = include_str!("data/results-v2.json");

#[test]
fn a_version_2_file_loads_typed() {
    let doc = parse_results(V2).expect("a version 2 file loads");
    assert_eq!(doc.schema_version, SCHEMA_VERSION);
    let run = &doc.runs[0];
    let blocked = &run.calls[0];
    assert_eq!(blocked.expected.iter().collect::<Vec<_>>(), [Verdict::Cut, Verdict::Blocked]);
    assert!(blocked.expected.contains(&blocked.verdict) && blocked.met);
    // A sentence of version 2 is kept as it was written, rule and all.
    assert_eq!(
        blocked.reason.cause,
        Cause::Text {
            text: "no media arrived in either direction; tried direct failed (timed out) \
                   (censor rule \"drop-all-udp\")"
                .into()
        }
    );
    assert_eq!(blocked.reason.rule, None);
    assert!(matches!(&blocked.metrics.reason, Cause::Text { text } if !text.contains("rule")));
    assert!(matches!(&blocked.attempts[0].reason.cause, Cause::Text { .. }));

    let by_name = |n: &str| run.workloads.iter().find(|w| w.name == n).unwrap();
    let chat = by_name("wa-text");
    assert_eq!((chat.kind, chat.outcome), (WorkloadKind::Message, WorkloadOutcome::Degraded));
    assert_eq!(
        chat.expected.iter().collect::<Vec<_>>(),
        [WorkloadOutcome::Ok, WorkloadOutcome::Degraded]
    );
    let Some(Figures::Message(m)) = &chat.figures else { panic!("{:?}", chat.figures) };
    assert_eq!((m.count, m.delivered_up, m.delivered_down), (20, 20, 19));
    assert_eq!(m.delivered_pct(), 97.5);
    assert_eq!(m.latency_p95_ms, Some(12.5));
    let Some(Figures::VoiceNote(n)) = &by_name("wa-note").figures else { panic!() };
    assert!(n.uploaded && n.downloaded && n.intact);
    let map = by_name("osm-map");
    assert_eq!(map.proto, Some(HttpProto::Https));
    let Some(Figures::Web(w)) = &map.figures else { panic!() };
    assert!(!w.page_ok && w.complete_ms.is_none() && w.proto == HttpProto::Https);
    assert!(matches!(&map.reason, Some(WorkloadCause::Text { text }) if text.starts_with("dns:")));
    let Some(Figures::Video(v)) = &by_name("yt").figures else { panic!() };
    assert_eq!((v.proto, v.stalls, v.keeps_up), (HttpProto::H3, 2, false));
    let lost = by_name("tg-text");
    let Some(Figures::Message(m)) = &lost.figures else { panic!() };
    assert_eq!(m.delivered_pct(), 0.0);
    // The client that gave no report has no figures; an ok workload has no reason.
    assert_eq!(by_name("crashed").figures, None);
    assert_eq!(by_name("fine").reason, None);
    assert_eq!(by_name("fine").proto, Some(HttpProto::H3));
}

#[test]
fn a_version_2_file_renders_the_same_sentences() {
    let doc = parse_results(V2).unwrap();
    let text = callwall_report::activities::text(&doc);
    for line in [
        "    wa-text (message whatsapp.example): degraded; 98% delivered, p50 3.2 ms, p95 12.5 ms; degraded by the thresholds",
        "  ! wa-note (voice note whatsapp.example): degraded (expected ok); up 5000 ms, down 40 ms, 286 kbit/s; degraded by the thresholds",
        "    osm-map (web osm.example over https): failed; 0/12 objects; dns: tile.openstreetmap.org: name not found (nxdomain)",
        "    yt (video youtube.example over h3): degraded; 850 kbit/s, 2 stalls; degraded by the thresholds",
        "  ! tg-text (message telegram.example): failed (expected ok); 0% delivered; timeout: the workload overran",
        "    crashed (message signal.example): failed; the workload client gave no report (exit status: 1); see workload.crashed.log",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    let md = callwall_report::markdown(&doc);
    // Sets are shown in severity order (version 2 kept the order the scenario wrote).
    assert!(md.contains("| cut or blocked |"), "{md}");
    let html = callwall_report::html(&doc);
    assert!(html.contains("tried direct failed (timed out) (censor rule &quot;drop-all-udp&quot;)"));
    let junit = callwall_report::junit(&doc);
    assert!(junit.contains("outcome=degraded connect_ms=8 delivered_down=19 delivered_pct=97.5 delivered_up=20 latency_p50_ms=3.25 latency_p95_ms=12.5 sent_down=20 sent_up=20"), "{junit}");
}

#[test]
fn the_current_version_round_trips_and_a_broken_old_file_names_the_place() {
    let doc = parse_results(V2).unwrap();
    let again = parse_results(&callwall_report::json(&doc)).expect("version 3 reads back");
    assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&doc).unwrap());
    let broken = V2.replacen("\"expected\": \"blocked|cut\"", "\"expected\": 3", 1);
    let e = parse_results(&broken).unwrap_err();
    assert!(matches!(e, LoadError::Upgrade { version: 2, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("runs[0].calls[0].expected") && msg.contains("re-run"), "{msg}");
}

#[test]
fn a_version_2_distribution_keeps_its_missed_sentences() {
    let mut doc: serde_json::Value = serde_json::from_str(V2).unwrap();
    doc["runs"][0]["distributions"] = serde_json::json!([{
        "call": "lossy", "transport": "webrtc", "strategy": "direct", "repeats": 4,
        "counts": { "degraded": 2, "blocked": 2 },
        "expected": { "degraded": { "lo": 70.0, "hi": 100.0 } },
        "met": false, "missed": ["degraded 50% (expected 70-100%)", "blocked 50% (expected 0%)"],
    }]);
    let doc = parse_results(&doc.to_string()).unwrap();
    let d = &doc.runs[0].distributions[0];
    assert_eq!(
        d.missed,
        [
            callwall_results::stats::Miss::Text { text: "degraded 50% (expected 70-100%)".into() },
            callwall_results::stats::Miss::Text { text: "blocked 50% (expected 0%)".into() },
        ]
    );
    assert!(callwall_report::markdown(&doc)
        .contains("**no:** degraded 50% (expected 70-100%), blocked 50% (expected 0%)"));
}
