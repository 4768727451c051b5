//! Video: chunked streaming at a target bitrate from a video host (`/videoplayback`, as
//! `*.googlevideo.com` serves YouTube), HTTPS/1.1 over TCP or HTTP/3 over QUIC. Chunks are
//! fetched back to back on one connection; a player model ([`playback`]) turns their arrival
//! times into startup time, stalls and whether the stream keeps up.

use async_trait::async_trait;
use callwall_workload::{Figures, Kind, VideoFigures, VideoParams};

use crate::http::HttpClient;
use crate::{ms, Measured, Target, Workload, WorkloadError};

/// The video client.
pub struct Client(pub VideoParams);

/// What the player saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Playback {
    pub startup_ms: f64,
    pub stalls: u32,
    pub stall_ms: f64,
}

/// The player model, pure: `arrivals_ms[i]` is when chunk `i` had fully arrived (from the
/// start); every chunk holds `chunk_ms` of playback. Playback starts when chunk 0 is in;
/// chunk `i` is needed when the chunks before it have played; arriving later is a stall
/// that lasts until it arrives. `None` when no chunk arrived.
pub fn playback(arrivals_ms: &[f64], chunk_ms: f64) -> Option<Playback> {
    let (&first, rest) = arrivals_ms.split_first()?;
    let mut clock = first;
    let (mut stalls, mut stall_ms) = (0, 0.0);
    for &a in rest {
        let needed = clock + chunk_ms;
        if a > needed {
            stalls += 1;
            stall_ms += a - needed;
            clock = a;
        } else {
            clock = needed;
        }
    }
    Some(Playback { startup_ms: first, stalls, stall_ms })
}

/// Fills the player's figures from the chunks' arrival times; `window_ms` is how long the
/// viewer waited in all. A video that never started is one stall as long as the window.
pub fn player_figures(f: &mut VideoFigures, arrivals_ms: &[f64], chunk_ms: f64, window_ms: f64) {
    f.chunks_ok = arrivals_ms.len() as u32;
    match playback(arrivals_ms, chunk_ms) {
        Some(pb) => {
            f.startup_ms = Some(pb.startup_ms);
            f.stalls = pb.stalls;
            f.stall_ms = pb.stall_ms;
        }
        None => {
            f.startup_ms = None;
            f.stalls = 1;
            f.stall_ms = window_ms;
        }
    }
    f.keeps_up = f.chunks_ok == f.chunks && f.stalls == 0;
}

#[async_trait]
impl Workload for Client {
    fn kind(&self) -> Kind {
        Kind::Video
    }

    async fn run(&self, t: &Target) -> Measured {
        let p = self.0;
        let mut f = VideoFigures {
            proto: p.proto,
            target_kbit: p.bitrate.bits_per_sec() as f64 / 1000.0,
            chunks: p.chunks(),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let mut arrivals = Vec::new();
        let mut bytes = 0u64;
        let mut error = None;
        match HttpClient::connect(p.proto, t).await {
            Err(e) => error = Some(e),
            Ok(mut c) => {
                let receiving = std::time::Instant::now();
                for i in 0..p.chunks() {
                    let path = format!("/videoplayback?itag=18&sq={i}&bytes={}", p.chunk_bytes());
                    let budget = t.request_budget();
                    let res =
                        tokio::time::timeout(budget, c.get(&t.server_name, &path, false)).await;
                    match res {
                        Ok(Ok(got)) => {
                            bytes += got.bytes;
                            arrivals.push(ms(started.elapsed()));
                        }
                        Ok(Err(e)) => {
                            error = Some(e);
                            break;
                        }
                        Err(_) => {
                            error = Some(WorkloadError::Timeout(format!(
                                "chunk {i} not in after {budget:?}"
                            )));
                            break;
                        }
                    }
                }
                let secs = receiving.elapsed().as_secs_f64();
                if bytes > 0 {
                    f.bytes_arrived = Some(bytes);
                }
                if bytes > 0 && secs > 0.0 {
                    f.throughput_kbit = Some(bytes as f64 * 8.0 / secs / 1000.0);
                }
                c.close();
            }
        }
        player_figures(&mut f, &arrivals, p.chunk.as_secs_f64() * 1000.0, ms(started.elapsed()));
        Measured { figures: Figures::Video(f), error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_video_that_never_started_stalled_the_whole_window() {
        let mut f = VideoFigures { chunks: 5, ..Default::default() };
        player_figures(&mut f, &[], 2000.0, 30_000.0);
        assert_eq!((f.chunks_ok, f.stalls, f.stall_ms, f.startup_ms), (0, 1, 30_000.0, None));
        assert!(!f.keeps_up);
        let mut f = VideoFigures { chunks: 2, ..Default::default() };
        player_figures(&mut f, &[100.0, 150.0], 2000.0, 300.0);
        assert_eq!((f.stalls, f.stall_ms, f.keeps_up), (0, 0.0, true));
    }

    #[test]
    fn the_player_counts_stalls() {
        assert_eq!(playback(&[], 1000.0), None);
        // Fast network: every chunk in long before it is needed.
        let p = playback(&[100.0, 150.0, 200.0, 250.0], 1000.0).unwrap();
        assert_eq!((p.startup_ms, p.stalls, p.stall_ms), (100.0, 0, 0.0));
        // Throttled to a quarter of the bitrate: each chunk takes 4 s to arrive.
        let p = playback(&[4000.0, 8000.0, 12000.0], 1000.0).unwrap();
        assert_eq!((p.stalls, p.stall_ms), (2, 6000.0));
        // One late chunk, then the buffer is empty but the rest arrive in time.
        let p = playback(&[100.0, 1600.0, 2000.0], 1000.0).unwrap();
        assert_eq!((p.stalls, p.stall_ms), (1, 500.0));
    }
}
