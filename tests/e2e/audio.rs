//! Issue 14: real speech in the calls (`--audio`), what each side heard (`--record`), and the
//! audio MOS beside the E-model MOS.
//!
//! One `callwall run` places the same Noise/UDP call twice, in two scenarios that differ only in
//! the censor: one passes everything, the other drops 10 % of all packets at random (seeded).
//! Both must report an audio MOS-LQO in both directions; the lossy one must be lower by at
//! least [`MARGIN`]; the recordings must be 48 kHz mono WAVs as long as the call.
//!
//! Why the margin holds: a clean Opus round trip of the bundled clip at 26.4 kbit/s scores
//! 3.84 when every frame is played (codec only), while 10 % independent loss concealed by PLC
//! loses about one word-part in ten, which P.862.2 scores around 1.3-1.6 whatever frames the
//! draw hits (the unit test in crates/audio gets 1.59 on one draw; here the draw is the
//! censor's, keyed by seed and flow). Measured over four runs here, on a 2-core machine with a
//! load average of 15 to 40 from other builds: clean 3.84, 3.84, 3.42, 3.83; lossy 1.44, 1.33,
//! 1.36, and the gap never fell below 2.0. The clean figure is the one that moves: under heavy
//! CPU load some frames reach the receiver more than the 200 ms playout deadline past the
//! path's base delay (`voice::PLAYOUT_DEADLINE`) and are concealed like lost ones (the 3.42 run's counts were not kept; a clean call
//! run by hand at a load average of 37 had 2 % and 10 % of its frames late). A margin of
//! 1.0 leaves room for that: for the gap to close to 1.0, the clean call would have to lose
//! about 5 % of its frames to lateness, or the lossy one's 10 % (binomial over 900 frames per
//! direction, standard deviation 1 %) would have to fall to a couple of percent.

use std::path::Path;

use serde_json::Value;

use crate::common::{dump, run_scenarios, TempDir};

/// How much lower the lossy call's audio MOS-LQO must be than the clean one's.
const MARGIN: f64 = 1.0;

fn scenario(name: &str, rules: &str) -> String {
    format!(
        r#"
name = "{name}"
description = "a noise/udp call carrying speech (--audio)"
topology = "censored-call"
seed = 7

[censor]
default = "pass"
{rules}

[[calls]]
name = "speech"
transport = "noise"
strategy = "udp"
duration = "18s"
connect_timeout = "8s"
expect = ["connected", "degraded"]
"#
    )
}

/// (sample rate, channels, seconds) of a 16-bit PCM WAV, from its header and data chunk.
fn wav_shape(p: &Path) -> (u32, u16, f64) {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(&b[0..4], b"RIFF", "{} is not a WAV", p.display());
    let channels = u16::from_le_bytes([b[22], b[23]]);
    let rate = u32::from_le_bytes([b[24], b[25], b[26], b[27]]);
    let data = b.windows(4).position(|w| w == b"data").expect("a data chunk");
    let len = u32::from_le_bytes([b[data + 4], b[data + 5], b[data + 6], b[data + 7]]);
    (rate, channels, f64::from(len) / 2.0 / f64::from(channels) / f64::from(rate))
}

fn audio_of<'a>(v: &'a Value, scenario: &str) -> &'a Value {
    let run = v["runs"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["scenario"] == scenario))
        .unwrap_or_else(|| panic!("no run {scenario}"));
    &run["calls"][0]["audio"]
}

#[test]
fn speech_scores_lower_under_loss_and_is_recorded() {
    let tmp = TempDir::new("audio");
    let clean = tmp.path().join("audio-clean.toml");
    let lossy = tmp.path().join("audio-lossy.toml");
    std::fs::write(&clean, scenario("audio-clean", "")).unwrap();
    std::fs::write(
        &lossy,
        scenario(
            "audio-lossy",
            "[[censor.rules]]\nname = \"random-loss-10pct\"\nmatch = { proto = \"udp\" }\naction = { loss = \"10%\" }\n",
        ),
    )
    .unwrap();
    let rec = tmp.path().join("rec");
    let (code, v, out) = run_scenarios(
        &[clean.to_str().unwrap(), lossy.to_str().unwrap()],
        &["--audio", "--record", rec.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{}", dump(&out, &v));

    let mut worst = [0.0f64; 2];
    for (i, sc) in ["audio-clean", "audio-lossy"].iter().enumerate() {
        let a = audio_of(&v, sc);
        assert!(a["metric"].as_str().unwrap_or("").contains("P.862.2"), "{a}");
        assert_eq!(a["bitrate_bps"], 26_400, "{a}");
        let mut both = Vec::new();
        for dir in ["up", "down"] {
            let d = &a[dir];
            let m = d["mos_lqo"].as_f64().unwrap_or_else(|| panic!("{sc} {dir}: no MOS: {a}"));
            assert!((1.0..=4.7).contains(&m), "{sc} {dir}: {m}");
            assert!(d["windows"].as_u64().unwrap_or(0) >= 2, "{sc} {dir}: {d}");
            both.push(m);
        }
        worst[i] = both[0].min(both[1]);
        let lost = a["up"]["lost"].as_u64().unwrap() + a["down"]["lost"].as_u64().unwrap();
        if i == 0 {
            assert_eq!(lost, 0, "the clean call lost frames: {a}");
        } else {
            assert!(lost > 100, "10 % loss lost only {lost} frames: {a}");
        }
        // The recordings: what each side heard and the reference, 48 kHz mono, call-long.
        for f in ["speech.caller-received.wav", "speech.callee-received.wav", "speech.sent.wav"] {
            let p = rec.join(sc).join(f);
            let (rate, ch, secs) = wav_shape(&p);
            assert_eq!((rate, ch), (48_000, 1), "{}", p.display());
            assert!((17.0..=19.5).contains(&secs), "{}: {secs} s", p.display());
        }
    }
    eprintln!("audio MOS-LQO, worse direction: clean {:.2}, 10 % loss {:.2}", worst[0], worst[1]);
    assert!(
        worst[1] < worst[0] - MARGIN,
        "10 % loss scored {:.2}, not {MARGIN} below the clean call's {:.2}",
        worst[1],
        worst[0]
    );
}

#[test]
fn an_unreadable_wav_or_record_dir_stops_the_run_before_it_starts() {
    let tmp = TempDir::new("audio-bad");
    let junk = tmp.path().join("junk.wav");
    std::fs::write(&junk, b"not a wav").unwrap();
    let out = crate::common::callwall()
        .args(["run", "scenarios/baseline.toml", "--out"])
        .arg(tmp.path().join("out"))
        .arg(format!("--audio={}", junk.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("junk.wav") && err.contains("not a readable WAV"), "{err}");
    assert!(!tmp.path().join("out").exists(), "something started: {err}");

    // A record directory under a regular file cannot be created.
    let out = crate::common::callwall()
        .args(["run", "scenarios/baseline.toml", "--audio", "--record"])
        .arg(junk.join("rec"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--record") && err.contains("junk.wav"), "{err}");
    assert!(!tmp.path().join("out").exists(), "something started: {err}");
}
