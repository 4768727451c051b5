//! The audio path end to end: Opus packets of the bundled clip through the voice model, with
//! and without loss, scored with wideband PESQ against what was sent.

use std::time::{Duration, SystemTime};

use callwall_audio::media::DEFAULT_PLAYOUT_DELAY;
use callwall_audio::{bundled_speech, listen, AudioQuality, CallAudio, Listening, MOS_LQO_FLOOR};
use callwall_transport::voice::{drive_with, Arrival, VoiceMedia, VoiceModel};
use callwall_transport::MediaLink;
use rand::{Rng, SeedableRng};

/// Sends every frame of the clip once through `audio`, delivering those `keep` says.
fn deliver(keep: impl Fn(u32) -> bool) -> AudioQuality {
    let mut tx = CallAudio::new(bundled_speech(), 80).unwrap();
    let mut rx = CallAudio::new(bundled_speech(), 80).unwrap();
    let frames = (bundled_speech().samples.len() / 960) as u32;
    let mut buf = Vec::new();
    for seq in 0..frames {
        buf.clear();
        tx.payload(seq, &mut buf);
        if keep(seq) {
            let t = 1_000_000_000 + u64::from(seq) * 20_000_000;
            rx.received(&Arrival { seq, sent_unix_ns: t, recv_unix_ns: t + 3_000_000 }, &buf);
        }
    }
    let r = rx.finish(u64::from(frames), DEFAULT_PLAYOUT_DELAY).unwrap();
    AudioQuality::of(&r).unwrap()
}

#[test]
fn clean_roundtrip_scores_high_and_ten_percent_loss_lowers_it() {
    let clean = deliver(|_| true);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let drops: Vec<bool> = (0..10_000).map(|_| rng.gen_bool(0.10)).collect();
    let lossy = deliver(|seq| !drops[seq as usize]);
    eprintln!("clean {clean:?} lossy {lossy:?}");
    assert_eq!(clean.played_fraction, 1.0);
    assert!(clean.pesq_mos_lqo > 3.5, "clean opus call scores {}", clean.pesq_mos_lqo);
    assert!((0.85..0.95).contains(&lossy.played_fraction), "{}", lossy.played_fraction);
    assert!(
        lossy.pesq_mos_lqo < clean.pesq_mos_lqo - 0.5,
        "10 % loss with PLC scores {} against {} clean",
        lossy.pesq_mos_lqo,
        clean.pesq_mos_lqo
    );
}

#[test]
fn silence_received_scores_lowest() {
    let q = deliver(|seq| seq < 10);
    assert!(q.pesq_mos_lqo < 2.0, "{}", q.pesq_mos_lqo);
    assert!(!q.nothing_heard);
}

#[test]
fn nothing_played_scores_the_bottom_of_the_scale_never_the_top() {
    // No frame arrived: the decoder conceals every slot with silence. PESQ itself would rate
    // that silence 4.64 (the top of the scale); what a listener heard was nothing.
    let q = deliver(|_| false);
    assert_eq!(q.played_fraction, 0.0);
    assert!(q.nothing_heard);
    assert_eq!(f64::from(q.pesq_mos_lqo), MOS_LQO_FLOOR);
    // A silent recording scores the floor even when frames were counted as played (the guard
    // is on the audio, not only on the counts).
    let sent = bundled_speech().samples;
    let silent = vec![0i16; sent.len()];
    assert_eq!(listen(&sent, &silent).unwrap(), Listening::Silent);
    assert_eq!(listen(&sent, &silent).unwrap().mos_lqo(), 1.0);
}

#[test]
fn speech_then_silence_scores_clearly_below_full_speech() {
    let frames = (bundled_speech().samples.len() / 960) as u32;
    let full = deliver(|_| true);
    let half = deliver(|seq| seq < frames / 2);
    assert!(!half.nothing_heard);
    assert!(
        f64::from(half.pesq_mos_lqo) < f64::from(full.pesq_mos_lqo) - 1.0,
        "half the speech then silence scores {} against {} for all of it",
        half.pesq_mos_lqo,
        full.pesq_mos_lqo
    );
}

#[test]
fn noise_instead_of_speech_scores_near_the_bottom() {
    // White noise at about a quarter of full scale in place of the speech: heard, but nothing
    // of what was said.
    let sent = bundled_speech().samples;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let noise: Vec<i16> = (0..sent.len()).map(|_| rng.gen_range(-8000i16..8000)).collect();
    let l = listen(&sent, &noise).unwrap();
    assert!(matches!(l, Listening::Scored(m) if m < 1.5), "{l:?}");
}

#[tokio::test]
async fn drive_with_carries_opus_through_a_lossy_link() {
    // A link whose tx feeds its rx, losing every 10th frame on the way.
    let (tx, mut mid) = tokio::sync::mpsc::channel::<Vec<u8>>(1024);
    let (back, rx) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        let mut n = 0u32;
        while let Some(f) = mid.recv().await {
            n += 1;
            if !n.is_multiple_of(10) {
                let _ = back.send(f).await;
            }
        }
    });
    let link = MediaLink { tx, rx, path: "loop".into(), guard: Box::new(()) };
    let mut audio = CallAudio::new(bundled_speech(), 80).unwrap();
    let end = SystemTime::now() + Duration::from_secs(2);
    let r =
        drive_with(link, &VoiceModel::default(), end, Duration::from_millis(100), &mut audio).await;
    assert!(r.frames_sent >= 95, "{}", r.frames_sent);
    let got = audio.finish(r.frames_sent, DEFAULT_PLAYOUT_DELAY).unwrap();
    assert_eq!(got.stats.lost, r.frames_sent / 10);
    assert_eq!(got.stats.played + got.stats.late, r.frames_sent - r.frames_sent / 10);
    let q = AudioQuality::of(&got).unwrap();
    assert!(q.pesq_mos_lqo > 1.0 && q.pesq_mos_lqo < 4.7, "{}", q.pesq_mos_lqo);
}

/// The E-model (from the network figures) and PESQ (from the audio) agree in direction: as
/// the effective loss rises (half the frames that are not played never arrive, half arrive
/// after the playout deadline), neither score rises and both end far below where they began.
/// The frames dropped at each step include those of the step before (one draw per frame).
#[test]
fn e_model_and_pesq_both_fall_as_effective_loss_rises() {
    use callwall_transport::metrics::emodel;
    let frames = (bundled_speech().samples.len() / 960) as u32;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let draw: Vec<f64> = (0..frames).map(|_| rng.gen::<f64>()).collect();
    let deadline = DEFAULT_PLAYOUT_DELAY.as_nanos() as u64;
    let mut last: Option<(f64, f64)> = None;
    let mut first = None;
    for p in [0.0, 0.05, 0.2, 0.5] {
        let mut tx = CallAudio::new(bundled_speech(), 80).unwrap();
        let mut rx = CallAudio::new(bundled_speech(), 80).unwrap();
        let mut buf = Vec::new();
        for seq in 0..frames {
            buf.clear();
            tx.payload(seq, &mut buf);
            let d = draw[seq as usize];
            let t = 1_000_000_000 + u64::from(seq) * 20_000_000;
            let delay = match d < p {
                true if d < p / 2.0 => continue,  // lost
                true => 3_000_000 + deadline + 1, // late
                false => 3_000_000,
            };
            rx.received(&Arrival { seq, sent_unix_ns: t, recv_unix_ns: t + delay }, &buf);
        }
        let r = rx.finish(u64::from(frames), DEFAULT_PLAYOUT_DELAY).unwrap();
        let effective = 100.0 * (1.0 - r.stats.played as f64 / r.stats.frames as f64);
        let pesq = f64::from(AudioQuality::of(&r).unwrap().pesq_mos_lqo);
        let e = emodel::mos_from_r(emodel::r_factor(&emodel::Input {
            mouth_to_ear_ms: emodel::mouth_to_ear_ms(3.0, 0.0),
            loss_pct: effective,
            burst_ratio: 1.0,
            codec: emodel::Codec::default(),
        }));
        eprintln!("effective loss {effective:.1} %: E-model {e:.2}, PESQ {pesq:.2}");
        if let Some((le, lp)) = last {
            assert!(e <= le, "E-model rose from {le} to {e} at {effective} % loss");
            // PESQ repeats to within about 0.1 on similar audio.
            assert!(pesq <= lp + 0.1, "PESQ rose from {lp} to {pesq} at {effective} % loss");
        }
        first.get_or_insert((e, pesq));
        last = Some((e, pesq));
    }
    let ((e0, p0), (e1, p1)) = (first.unwrap(), last.unwrap());
    assert!(e1 < e0 - 1.5 && p1 < p0 - 1.5, "E-model {e0} -> {e1}, PESQ {p0} -> {p1}");
}
