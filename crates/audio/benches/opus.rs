//! Opus encode + decode cost of one call-second: what one side of a call does each second
//! (encode its own 50 frames of 20 ms, decode the other side's 50), as a share of one core.
//!
//! `cargo bench -p callwall-audio --bench opus` prints criterion's time per call-second and,
//! after it the thread's CPU time per call-second as a percentage of one core (wall time in
//! brackets), for the complexity callwall uses and, as the reference measured in the same run,
//! libopus' default complexity 10.

use std::time::{Duration, Instant};

use callwall_audio::codec::COMPLEXITY;
use callwall_audio::{bundled_speech, OpusDecoder, OpusEncoder, FRAME_SAMPLES};
use criterion::{criterion_group, criterion_main, Criterion};

/// Encodes and decodes `pcm` (one second) frame by frame.
fn codec_second(complexity: i32) -> impl FnMut(&[i16]) {
    let mut enc = OpusEncoder::with_complexity(OpusEncoder::bitrate_for(66), complexity).unwrap();
    let mut dec = OpusDecoder::new().unwrap();
    move |pcm: &[i16]| {
        for f in pcm.chunks(FRAME_SAMPLES) {
            let p = enc.encode(f).unwrap();
            std::hint::black_box(dec.decode(Some(&p)));
        }
    }
}

/// CPU time this thread has used: unlike wall time it does not count time spent waiting for a
/// core, so the figure holds on a machine busy with other work.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// (CPU time, wall time) per call-second, each as a percentage of one second of one core.
fn share_of_core(mut run: impl FnMut(&[i16]), pcm: &[i16]) -> (f64, f64) {
    let n = 30;
    let (cpu, wall) = (thread_cpu_time(), Instant::now());
    for _ in 0..n {
        run(pcm);
    }
    let pct = |d: Duration| (d / n).as_secs_f64() * 100.0;
    (pct(thread_cpu_time() - cpu), pct(wall.elapsed()))
}

fn call_second(c: &mut Criterion) {
    let clip = bundled_speech();
    let second = clip.samples[..50 * FRAME_SAMPLES].to_vec();
    let mut ours = codec_second(COMPLEXITY);
    c.bench_function(
        &format!("opus encode+decode one call-second, complexity {COMPLEXITY}"),
        |b| b.iter(|| ours(&second)),
    );
    let mut reference = codec_second(10);
    c.bench_function("opus encode+decode one call-second, complexity 10", |b| {
        b.iter(|| reference(&second))
    });
    let (a_cpu, a_wall) = share_of_core(codec_second(COMPLEXITY), &second);
    let (b_cpu, b_wall) = share_of_core(codec_second(10), &second);
    println!(
        "opus encode+decode per call-second, CPU time as % of a core (wall time in brackets): \
         complexity {COMPLEXITY}: {a_cpu:.2} % ({a_wall:.2} %); complexity 10 (reference): \
         {b_cpu:.2} % ({b_wall:.2} %); ratio {:.2}",
        a_cpu / b_cpu
    );
    // The parts: what callwall does per call (the clip is encoded once per peer, up front;
    // each peer decodes the other side's frames once, after the call).
    let packets =
        OpusEncoder::new(OpusEncoder::bitrate_for(66)).unwrap().encode_clip(&second).unwrap();
    let mut enc = OpusEncoder::new(OpusEncoder::bitrate_for(66)).unwrap();
    let (e_cpu, _) = share_of_core(
        |pcm: &[i16]| {
            for f in pcm.chunks(FRAME_SAMPLES) {
                std::hint::black_box(enc.encode(f).unwrap());
            }
        },
        &second,
    );
    let mut dec = OpusDecoder::new().unwrap();
    let (d_cpu, _) = share_of_core(
        |_: &[i16]| {
            for p in &packets {
                std::hint::black_box(dec.decode(Some(p)));
            }
        },
        &second,
    );
    let clip_s = clip.seconds();
    let call_s = 60.0;
    println!(
        "complexity {COMPLEXITY}: encode alone {e_cpu:.2} %, decode alone {d_cpu:.2} % of a core per \
         call-second; a whole {call_s:.0} s call as callwall runs it (both peers: the {clip_s:.1} s \
         clip encoded once each, the other side decoded): {:.2} % of a core over the call",
        2.0 * d_cpu + 2.0 * e_cpu * clip_s / call_s
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = call_second
}
criterion_main!(benches);
