//! Results of schema version 2 read as version 3: the JSON is rewritten before it is parsed,
//! so the model has one layout only.
//!
//! | version 2 | version 3 |
//! | --- | --- |
//! | `expected: "degraded\|blocked"` (calls and workloads) | `expected: ["degraded", "blocked"]` |
//! | a call's `reason`, `metrics.reason`, `attempts[].reason`: a sentence | `{"cause": "text", "text": <the sentence>}` |
//! | a workload's `reason`: a sentence or `""` | `{"cause": "text", "text": ...}`, or absent |
//! | a workload's `proto`: `"https"`, `"h3"` or `""` | the same, absent for `""` |
//! | a distribution's `missed`: sentences | `{"miss": "text", "text": <the sentence>}` each |
//! | a workload's `figures`: `{name: number}` (booleans as 0/1) | its kind's figures, `{"kind": ..., ...}`; absent when the map was empty |
//!
//! The sentences are kept word for word, so every renderer shows the same text as before.

use serde_json::{Map, Value};

/// What made a version 2 document unconvertible: where, and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct UpgradeError {
    /// A JSON path, like `runs[0].calls[2].expected`.
    pub at: String,
    pub problem: &'static str,
}

fn err(at: String, problem: &'static str) -> UpgradeError {
    UpgradeError { at, problem }
}

/// Rewrites a version 2 document in place as version 3.
pub fn from_v2(doc: &mut Value) -> Result<(), UpgradeError> {
    let root = doc.as_object_mut().ok_or_else(|| err("the document".into(), "not an object"))?;
    root.insert("schema_version".into(), Value::from(callwall_results::SCHEMA_VERSION));
    let Some(runs) = root.get_mut("runs") else { return Ok(()) };
    let runs = runs.as_array_mut().ok_or_else(|| err("runs".into(), "not a list"))?;
    for (ri, run) in runs.iter_mut().enumerate() {
        let Some(run) = run.as_object_mut() else { continue };
        if let Some(Value::Array(calls)) = run.get_mut("calls") {
            for (ci, call) in calls.iter_mut().enumerate() {
                let at = format!("runs[{ri}].calls[{ci}]");
                let Some(call) = call.as_object_mut() else { continue };
                expected(call, &at)?;
                text_reason(call, false);
                if let Some(Value::Object(m)) = call.get_mut("metrics") {
                    text_reason(m, false);
                }
                if let Some(Value::Array(attempts)) = call.get_mut("attempts") {
                    for a in attempts.iter_mut().filter_map(Value::as_object_mut) {
                        text_reason(a, false);
                    }
                }
            }
        }
        if let Some(Value::Array(dists)) = run.get_mut("distributions") {
            for d in dists.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::Array(missed)) = d.get_mut("missed") {
                    for m in missed.iter_mut() {
                        if let Value::String(t) = m {
                            *m = serde_json::json!({ "miss": "text", "text": t });
                        }
                    }
                }
            }
        }
        if let Some(Value::Array(workloads)) = run.get_mut("workloads") {
            for (wi, w) in workloads.iter_mut().enumerate() {
                let at = format!("runs[{ri}].workloads[{wi}]");
                let Some(w) = w.as_object_mut() else { continue };
                expected(w, &at)?;
                text_reason(w, true);
                if w.get("proto").and_then(Value::as_str) == Some("") {
                    w.remove("proto");
                }
                figures(w, &at)?;
            }
        }
    }
    Ok(())
}

/// `"a|b"` to `["a", "b"]`.
fn expected(o: &mut Map<String, Value>, at: &str) -> Result<(), UpgradeError> {
    match o.get("expected") {
        Some(Value::String(s)) => {
            let list = s.split('|').filter(|x| !x.is_empty()).map(Value::from).collect();
            o.insert("expected".into(), Value::Array(list));
            Ok(())
        }
        Some(Value::Array(_)) | None => Ok(()),
        Some(_) => Err(err(format!("{at}.expected"), "not a string of names joined by |")),
    }
}

/// A sentence to a text cause; an empty one is dropped where the reason is optional.
fn text_reason(o: &mut Map<String, Value>, optional: bool) {
    if let Some(Value::String(s)) = o.get("reason") {
        if optional && s.is_empty() {
            o.remove("reason");
        } else {
            let cause = serde_json::json!({ "cause": "text", "text": s });
            o.insert("reason".into(), cause);
        }
    }
}

/// The fields of a kind's figures, with what a missing one becomes.
enum Field {
    /// An integer (0 when missing).
    Count(&'static str),
    /// A number (0 when missing).
    Number(&'static str),
    /// A number that may be unknown (`null` when missing).
    Maybe(&'static str),
    /// A boolean written as 0/1 (false when missing).
    Flag(&'static str),
}

fn fields(kind: &str) -> Option<&'static [Field]> {
    use Field::*;
    Some(match kind {
        "message" => &[
            Count("sent_up"),
            Count("delivered_up"),
            Count("sent_down"),
            Count("delivered_down"),
            Maybe("latency_p50_ms"),
            Maybe("latency_p95_ms"),
            Maybe("connect_ms"),
        ],
        "voice-note" => &[
            Count("bytes"),
            Flag("uploaded"),
            Flag("downloaded"),
            Flag("intact"),
            Maybe("upload_ms"),
            Maybe("download_ms"),
            Maybe("goodput_kbit"),
        ],
        "web" => &[
            Flag("page_ok"),
            Count("objects"),
            Count("objects_ok"),
            Count("failed_objects"),
            Maybe("complete_ms"),
            Count("bytes"),
        ],
        "video" => &[
            Number("target_kbit"),
            Count("chunks"),
            Count("chunks_ok"),
            Maybe("throughput_kbit"),
            Maybe("startup_ms"),
            Count("stalls"),
            Number("stall_ms"),
            Flag("keeps_up"),
        ],
        _ => return None,
    })
}

/// The `{name: number}` map to the kind's typed figures.
fn figures(w: &mut Map<String, Value>, at: &str) -> Result<(), UpgradeError> {
    let map = match w.remove("figures") {
        None => return Ok(()),
        Some(Value::Object(m)) if m.is_empty() => return Ok(()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(err(format!("{at}.figures"), "not an object of numbers")),
    };
    let kind = w.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let Some(fields) = fields(&kind) else {
        return Err(err(format!("{at}.kind"), "not message, voice-note, web or video"));
    };
    let num = |k: &str| -> Result<Option<f64>, UpgradeError> {
        match map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                v.as_f64().map(Some).ok_or_else(|| err(format!("{at}.figures.{k}"), "not a number"))
            }
        }
    };
    let mut out = Map::new();
    out.insert("kind".into(), Value::from(kind.as_str()));
    for f in fields {
        let (k, v) = match *f {
            Field::Count(k) => (k, Value::from(num(k)?.unwrap_or(0.0).round().max(0.0) as u64)),
            Field::Number(k) => (k, Value::from(num(k)?.unwrap_or(0.0))),
            Field::Maybe(k) => (k, num(k)?.map_or(Value::Null, Value::from)),
            Field::Flag(k) => (k, Value::from(num(k)?.unwrap_or(0.0) != 0.0)),
        };
        out.insert(k.into(), v);
    }
    if kind == "web" || kind == "video" {
        let proto = w.get("proto").cloned().unwrap_or_else(|| Value::from("https"));
        out.insert("proto".into(), proto);
    }
    if kind == "message" {
        // Version 2 kept the delivered share, version 3 the count it is taken of:
        // delivered_pct = 100 * (delivered_up + delivered_down) / (2 * count).
        let delivered = num("delivered_up")?.unwrap_or(0.0) + num("delivered_down")?.unwrap_or(0.0);
        let count = match num("delivered_pct")? {
            Some(pct) if pct > 0.0 => (delivered * 50.0 / pct).round(),
            // Nothing delivered: any count gives 0 %; the larger side sent is the best guess.
            _ => num("sent_up")?.unwrap_or(0.0).max(num("sent_down")?.unwrap_or(0.0)).max(1.0),
        };
        out.insert("count".into(), Value::from(count as u64));
    }
    w.insert("figures".into(), Value::Object(out));
    Ok(())
}
