//! `auto` as a race (RFC 8305 "happy eyeballs" style) for transports that offer one
//! ([`crate::VoiceTransport::auto_race`]): the caller starts attempt *i* at `i x` [`STAGGER`]
//! without waiting for attempt *i-1* to time out; the first attempt that connects carries the
//! media and the others are dropped (their sockets close).
//!
//! Over the signal server:
//!
//! ```text
//! caller: put "{call_id}/attempt/{i}" = strategy for every i at once, then dial attempt i
//!         (call_id "{call_id}/{i}") at start + i x STAGGER; when one connects, put
//!         "{call_id}/won" = i and drop the others
//! callee: answer every attempt at once as its key appears; when "{call_id}/won" = i appears,
//!         keep attempt i's link (waiting for it if needed) and drop the others
//! ```
//!
//! The callee never starts media on a link the caller did not pick, so a one-sided connect
//! (a censor dropping only answers) cannot leave the two peers on different strategies. The
//! racing strategies must listen on distinct callee ports (the transport's `auto_race` list
//! says which). Each attempt is bounded by `connect_timeout` from its own start; the race by
//! the peer's connect deadline. Explicit strategy lists keep the sequential protocol of
//! [`crate::peer`].

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use crate::peer::{
    attempt_ctx, attempt_key, media_end, ms_since, signal_client, watch, Attempt, PeerReport,
    PeerSpec, DRAIN,
};
use crate::voice::{self, unix_ns_now};
use crate::{MediaLink, VoiceTransport};

/// Delay between the starts of two racing attempts (RFC 8305 §5 recommends 250 ms).
pub const STAGGER: Duration = Duration::from_millis(250);

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A caller's dial: the link, or the error and whether signalling did not get through.
type Dial<'a> = BoxFut<'a, Result<MediaLink, (String, bool)>>;

/// Waits for the next of `futs` to finish; finished ones become `None`. `None` when all are.
async fn next_done<T>(futs: &mut [Option<BoxFut<'_, T>>]) -> Option<(usize, T)> {
    if futs.iter().all(Option::is_none) {
        return None;
    }
    std::future::poll_fn(|cx| {
        for (i, slot) in futs.iter_mut().enumerate() {
            if let Some(f) = slot {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    *slot = None;
                    return Poll::Ready(Some((i, v)));
                }
            }
        }
        Poll::Pending
    })
    .await
}

fn won_key(spec: &PeerSpec) -> String {
    format!("{}/won", spec.ctx.call_id)
}

pub(crate) async fn run_caller(
    spec: &PeerSpec,
    t: &dyn VoiceTransport,
    strategies: &[String],
    media_cap_ns: u64,
    report: &mut PeerReport,
    media: &mut dyn voice::VoiceMedia,
) {
    let Some(mut sig) = signal_client(spec, report).await else { return };
    for (i, s) in strategies.iter().enumerate() {
        if let Err(e) = sig.put(&attempt_key(spec, i), s).await {
            report.signal_failed(e);
            return;
        }
    }
    let start = tokio::time::Instant::now();
    let timeout = spec.ctx.connect_timeout;
    let ctxs: Vec<_> = (0..strategies.len()).map(|i| attempt_ctx(spec, i)).collect();
    let mut futs: Vec<Option<Dial<'_>>> = ctxs
        .iter()
        .zip(strategies)
        .enumerate()
        .map(|(i, (ctx, s))| {
            // An error carries whether it was signalling that did not get through.
            let f: Dial<'_> = Box::pin(async move {
                tokio::time::sleep_until(start + STAGGER * i as u32).await;
                match tokio::time::timeout(timeout, t.dial(ctx, s)).await {
                    Ok(Ok(l)) => Ok(l),
                    Ok(Err(e)) => {
                        let signalling = matches!(
                            &e,
                            crate::TransportError::Signal(s) if s.is_unreachable()
                        );
                        Err((e.to_string(), signalling))
                    }
                    Err(_) => Err((format!("timed out after {timeout:?}"), false)),
                }
            });
            Some(f)
        })
        .collect();
    let mut done: Vec<Option<Attempt>> = vec![None; strategies.len()];
    let mut winner = None;
    while let Some((i, r)) = next_done(&mut futs).await {
        let elapsed_ms = ms_since(start) - (STAGGER * i as u32).as_secs_f64() * 1e3;
        let strategy = strategies[i].clone();
        match r {
            Ok(link) => {
                done[i] = Some(Attempt {
                    strategy,
                    ok: true,
                    elapsed_ms,
                    error: None,
                    signalling: false,
                });
                winner = Some((i, link));
                break;
            }
            Err((e, signalling)) => {
                done[i] =
                    Some(Attempt { strategy, ok: false, elapsed_ms, error: Some(e), signalling })
            }
        }
    }
    drop(futs);
    let won_name = winner.as_ref().map(|(i, _)| strategies[*i].clone());
    for (i, a) in done.into_iter().enumerate() {
        report.attempts.push(a.unwrap_or_else(|| Attempt {
            strategy: strategies[i].clone(),
            ok: false,
            elapsed_ms: (ms_since(start) - (STAGGER * i as u32).as_secs_f64() * 1e3).max(0.0),
            error: Some(match &won_name {
                Some(w) => format!("abandoned: {w} connected first"),
                None => "abandoned".into(),
            }),
            signalling: false,
        }));
    }
    let Some((i, link)) = winner else { return };
    if let Err(e) = sig.put(&won_key(spec), &i.to_string()).await {
        report.signal_failed(e);
        return;
    }
    report.strategy = won_name;
    let connected = unix_ns_now();
    report.connected_unix_ns = Some(connected);
    report.path = Some(link.path.clone());
    report.ice = t.ice_report(&link);
    let end = media_end(spec, connected, media_cap_ns);
    let d = voice::drive_with(link, &spec.voice, end, DRAIN, media).await;
    report.take_drive(d);
}

enum Event {
    Answered(Result<MediaLink, RaceError>),
    Won(Result<usize, RaceError>),
}

/// Why a callee's attempt, or its wait for the caller's pick, failed; its text goes to the
/// attempt's `error` in the report.
#[derive(Debug, thiserror::Error)]
enum RaceError {
    #[error("signalling: {0}")]
    Signalling(crate::signal::SignalError),
    #[error("{0}")]
    Transport(crate::TransportError),
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("bad won key: {0}")]
    BadWonKey(std::num::ParseIntError),
    #[error("the caller picked attempt {picked} of {of}")]
    PickOutOfRange { picked: usize, of: usize },
}

pub(crate) async fn run_callee(
    spec: &PeerSpec,
    t: &dyn VoiceTransport,
    strategies: &[String],
    connect_deadline_ns: u64,
    media_cap_ns: u64,
    report: &mut PeerReport,
    media: &mut dyn voice::VoiceMedia,
) {
    if signal_client(spec, report).await.is_none() {
        return;
    }
    let start = tokio::time::Instant::now();
    let follow_until_ns =
        connect_deadline_ns.saturating_add(spec.ctx.connect_timeout.as_nanos() as u64 / 2);
    let wait = Duration::from_nanos(follow_until_ns.saturating_sub(unix_ns_now()));
    let own_timeout = spec.ctx.connect_timeout + STAGGER * strategies.len() as u32;
    let ctxs: Vec<_> = (0..strategies.len()).map(|i| attempt_ctx(spec, i)).collect();
    let n = strategies.len();
    let mut futs: Vec<Option<BoxFut<'_, Event>>> = ctxs
        .iter()
        .enumerate()
        .map(|(i, ctx)| {
            let f: BoxFut<'_, Event> = Box::pin(async move {
                let r = async {
                    let s = watch(spec, &attempt_key(spec, i), wait)
                        .await
                        .map_err(RaceError::Signalling)?;
                    match tokio::time::timeout(own_timeout, t.answer(ctx, &s)).await {
                        Ok(Ok(l)) => Ok(l),
                        Ok(Err(e)) => Err(RaceError::Transport(e)),
                        Err(_) => Err(RaceError::TimedOut(own_timeout)),
                    }
                };
                Event::Answered(r.await)
            });
            Some(f)
        })
        .collect();
    futs.push(Some(Box::pin(async move {
        let r = watch(spec, &won_key(spec), wait).await.map_err(RaceError::Signalling);
        Event::Won(r.and_then(|v| v.parse::<usize>().map_err(RaceError::BadWonKey)))
    })));
    let mut results: Vec<Option<Result<MediaLink, RaceError>>> = (0..n).map(|_| None).collect();
    let mut elapsed: Vec<f64> = vec![0.0; n];
    let mut won: Option<usize> = None;
    let mut won_error = None;
    loop {
        if let Some(w) = won {
            if w >= n {
                won_error = Some(RaceError::PickOutOfRange { picked: w, of: n });
                break;
            }
            if results[w].is_some() {
                break;
            }
        }
        let Some((i, ev)) = next_done(&mut futs).await else { break };
        match ev {
            Event::Answered(r) => {
                elapsed[i] = ms_since(start);
                results[i] = Some(r);
            }
            Event::Won(Ok(w)) => won = Some(w),
            Event::Won(Err(e)) => {
                won_error = Some(e);
                break;
            }
        }
    }
    drop(futs);
    let mut link = None;
    for (i, r) in results.into_iter().enumerate() {
        let strategy = strategies[i].clone();
        let a = match (r, won) {
            (Some(Ok(l)), Some(w)) if w == i => {
                link = Some(l);
                Attempt {
                    strategy,
                    ok: true,
                    elapsed_ms: elapsed[i],
                    error: None,
                    signalling: false,
                }
            }
            (Some(Ok(_)), _) => Attempt {
                strategy,
                ok: false,
                elapsed_ms: elapsed[i],
                error: Some("connected here, but the caller picked another attempt".into()),
                signalling: false,
            },
            (Some(Err(e)), _) => Attempt {
                strategy,
                ok: false,
                elapsed_ms: elapsed[i],
                error: Some(e.to_string()),
                signalling: false,
            },
            (None, _) => Attempt {
                strategy,
                ok: false,
                elapsed_ms: ms_since(start),
                error: Some(
                    won_error
                        .as_ref()
                        .map_or_else(|| "abandoned: another attempt won".into(), |e| e.to_string()),
                ),
                signalling: false,
            },
        };
        report.attempts.push(a);
    }
    let Some(link) = link else { return };
    report.strategy = won.map(|w| strategies[w].clone());
    let connected = unix_ns_now();
    report.connected_unix_ns = Some(connected);
    report.path = Some(link.path.clone());
    report.ice = t.ice_report(&link);
    let end = media_end(spec, connected, media_cap_ns);
    let d = voice::drive_with(link, &spec.voice, end, DRAIN, media).await;
    report.take_drive(d);
}
