//! Opus encode + decode cost of one call-second (50 frames of 20 ms each way is what one side
//! of a call does: encode its own 50, decode the other's 50), as a share of one core.
//!
//! `cargo bench -p callwall-audio --bench opus` prints criterion's time per call-second; the
//! share of a core is that time divided by 1 s (printed below as a ratio).

use std::time::{Duration, Instant};

use callwall_audio::{bundled_speech, OpusDecoder, OpusEncoder, FRAME_SAMPLES};
use criterion::{criterion_group, criterion_main, Criterion};

fn call_second(c: &mut Criterion) {
    let clip = bundled_speech();
    let second = &clip.samples[..50 * FRAME_SAMPLES];
    let mut enc = OpusEncoder::new(OpusEncoder::bitrate_for(66)).unwrap();
    let mut dec = OpusDecoder::new().unwrap();
    let mut run = || {
        for f in second.chunks(FRAME_SAMPLES) {
            let p = enc.encode(f).unwrap();
            std::hint::black_box(dec.decode(Some(&p)));
        }
    };
    c.bench_function("opus encode+decode, one call-second", |b| b.iter(&mut run));
    // The figure the issue asks for: share of one core for real-time encode + decode.
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        run();
    }
    let per_second = t.elapsed() / n;
    println!(
        "opus encode+decode: {:.3} ms per call-second = {:.2} % of a core",
        per_second.as_secs_f64() * 1e3,
        per_second.as_secs_f64() / Duration::from_secs(1).as_secs_f64() * 100.0
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = call_second
}
criterion_main!(benches);
