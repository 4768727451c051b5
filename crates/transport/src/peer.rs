//! One peer of a call: wait for the start time, try strategies in order, run the voice, report.
//!
//! Both peers of a call get a [`PeerSpec`] with the same `call_id`, `start_at`, strategies and
//! duration, and run [`run_peer`] in their own host. They agree on which strategy they are
//! trying through the signal server:
//!
//! ```text
//! caller, attempt i:  put "{call_id}/attempt/{i}" = strategy, then dial with call_id "{call_id}/{i}"
//! callee:             get "{call_id}/attempt/{i}", answer it with call_id "{call_id}/{i}";
//!                     give it up when "{call_id}/attempt/{i+1}" appears or its deadline passes
//! ```
//!
//! `["auto"]` on a transport that offers a race ([`crate::VoiceTransport::auto_race`], noise
//! and quic) runs [`crate::race`] instead: attempts start 250 ms apart and the first to connect
//! wins. Explicit strategy lists always use the sequential protocol above.
//!
//! The callee keeps watching for the next attempt even after its side connected, because the
//! caller's side may not have (a censor dropping only the answer): then the callee drops the
//! link and answers the caller's next attempt.
//!
//! Timing guarantees, with `budget = connect_timeout x strategies`:
//! - each dial is bounded by `connect_timeout`; the whole connect phase by `start_at + budget`;
//! - media runs for `duration` from the peer's connect time, never past
//!   `start_at + budget + duration`, then the peer listens [`DRAIN`] longer for frames in flight;
//! - everything is bounded by a hard deadline [`HARD_SLACK`] after that, so `run_peer` always
//!   returns. It never panics: failures are in the report.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::signal::Client;
use crate::voice::{self, unix_ns_now, Arrival, VoiceModel};
use crate::{CallContext, Role, VoiceTransport};
use callwall_units::seed::Purpose;

/// How long a peer keeps listening after its own media end, for frames still in flight and for
/// a peer that connected a little later.
pub const DRAIN: Duration = Duration::from_secs(1);
/// Margin past the media-and-drain deadline before `run_peer` gives up on everything.
pub const HARD_SLACK: Duration = Duration::from_secs(3);
/// Most attempts a callee will follow (protects against a caller counting forever).
pub const MAX_ATTEMPTS: usize = 64;

/// What a peer process is told to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerSpec {
    /// The transport's name (`noise`, `quic`, `webrtc`).
    pub transport: String,
    /// Strategies to try in order; `["auto"]` means the transport's `auto_order()`, or its
    /// `auto_race()` raced with a stagger when it offers one.
    pub strategies: Vec<String>,
    pub ctx: CallContext,
    /// When the call starts (UNIX ns, the shared system clock).
    pub start_at_unix_ns: u64,
    /// How long to talk once connected; written `"10s"` in files.
    #[serde(with = "voice::duration_str")]
    pub duration: Duration,
    #[serde(default)]
    pub voice: VoiceModel,
    /// Real speech in the voice frames (`--audio`); `None`: filler frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<voice::AudioSpec>,
}

/// The connect phase's budget: one `connect_timeout` per strategy tried (at least one), the
/// factor applied once. The one place this formula lives: the peers bound their connect phase
/// by it ([`PeerSpec::connect_budget`]) and the scenario's call budget (launcher deadlines)
/// adds the call's duration to it.
pub fn connect_budget(connect_timeout: Duration, strategies: usize) -> Duration {
    let n = u32::try_from(strategies.max(1)).unwrap_or(u32::MAX);
    connect_timeout.saturating_mul(n)
}

impl PeerSpec {
    /// [`connect_budget`] of this call's `connect_timeout` for `strategies` strategies.
    pub fn connect_budget(&self, strategies: usize) -> Duration {
        connect_budget(self.ctx.connect_timeout, strategies)
    }
}

/// One strategy tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub strategy: String,
    pub ok: bool,
    pub elapsed_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The attempt failed because signalling could not get through (see
    /// [`crate::signal::SignalError::is_unreachable`]), not because of the media path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signalling: bool,
}

/// What a peer did and heard. The harness feeds a caller's and a callee's report to
/// [`crate::metrics::analyze`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    pub role: Role,
    pub transport: String,
    pub attempts: Vec<Attempt>,
    /// The strategy that connected.
    pub strategy: Option<String>,
    /// The transport's description of the media path.
    pub path: Option<String>,
    /// When the first attempt started (UNIX ns).
    pub dial_start_unix_ns: u64,
    /// When the strategy that carried media connected.
    pub connected_unix_ns: Option<u64>,
    /// First frame sent (UNIX ns; 0 if no media ran).
    pub media_start_unix_ns: u64,
    /// When the sender's clock stopped (UNIX ns; 0 if no media ran).
    pub media_end_unix_ns: u64,
    /// When this peer stopped listening (UNIX ns; 0 if no media ran).
    #[serde(default)]
    pub recv_end_unix_ns: u64,
    /// The voice model this peer sent with.
    #[serde(default)]
    pub voice: VoiceModel,
    pub frames_sent: u64,
    /// Incoming payloads too short to be voice frames.
    #[serde(default)]
    pub frames_malformed: u64,
    /// Every frame received, in order of arrival.
    pub arrivals: Vec<Arrival>,
    /// Set when the peer itself failed (bad spec, signal server unreachable, crash): the call's
    /// verdict is then `error`. Strategies that did not connect are not errors (see `attempts`).
    pub error: Option<String>,
    /// Set when the peer could not set up the call because signalling could not get through
    /// (the signal server unreachable, or a reply lost until the budget ran out): the call's
    /// verdict is then `no-signalling`, not `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signalling_failure: Option<String>,
    /// CPU time the peer process used (user + system), in milliseconds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    /// When this peer process was not scheduled (see [`callwall_results::machine`]): filled
    /// by the process running the peer, empty when it kept no watch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalls: Vec<callwall_results::machine::Stall>,
    /// What the ICE agent of the strategy that carried media did (webrtc `ice`, i.e. `auto`):
    /// candidates gathered, pairs checked, the nominated pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice: Option<crate::ice::IceReport>,
    /// With `--audio`: what this peer heard and its score, in the direction it received
    /// (`down` for the caller, `up` for the callee); filled by the peer process after the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<callwall_results::audio::CallAudio>,
}

impl Default for PeerReport {
    fn default() -> Self {
        PeerReport::new(Role::Caller, "")
    }
}

impl PeerReport {
    /// Records a signalling error of the peer itself: `signalling_failure` when signalling
    /// could not get through, `error` otherwise (a protocol error is a testbed fault).
    pub(crate) fn signal_failed(&mut self, e: crate::signal::SignalError) {
        if e.is_unreachable() {
            self.signalling_failure = Some(format!("signalling: {e}"));
        } else {
            self.error = Some(format!("signalling: {e}"));
        }
    }

    /// An empty report.
    pub fn new(role: Role, transport: &str) -> Self {
        PeerReport {
            role,
            transport: transport.to_string(),
            attempts: Vec::new(),
            strategy: None,
            path: None,
            dial_start_unix_ns: 0,
            connected_unix_ns: None,
            media_start_unix_ns: 0,
            media_end_unix_ns: 0,
            recv_end_unix_ns: 0,
            voice: VoiceModel::default(),
            frames_sent: 0,
            frames_malformed: 0,
            arrivals: Vec::new(),
            error: None,
            signalling_failure: None,
            cpu_ms: None,
            stalls: Vec::new(),
            ice: None,
            audio: None,
        }
    }

    /// The report of a peer that failed before or outside `run_peer` (e.g. its process died).
    pub fn failed(role: Role, transport: &str, error: impl Into<String>) -> Self {
        PeerReport { error: Some(error.into()), ..PeerReport::new(role, transport) }
    }

    fn clear_media(&mut self) {
        self.strategy = None;
        self.path = None;
        self.ice = None;
        self.connected_unix_ns = None;
        self.media_start_unix_ns = 0;
        self.media_end_unix_ns = 0;
        self.recv_end_unix_ns = 0;
        self.frames_sent = 0;
        self.frames_malformed = 0;
        self.arrivals.clear();
    }

    pub(crate) fn take_drive(&mut self, d: voice::DriveReport) {
        self.frames_sent = d.frames_sent;
        self.frames_malformed = d.malformed;
        self.arrivals = d.arrivals;
        self.media_start_unix_ns = d.media_start_unix_ns;
        self.media_end_unix_ns = d.media_end_unix_ns;
        self.recv_end_unix_ns = d.recv_end_unix_ns;
    }
}

pub(crate) fn ms_since(start: tokio::time::Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn system_time(unix_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(unix_ns)
}

/// The strategy list with `auto` expanded.
pub fn resolve_strategies(requested: &[String], t: &dyn VoiceTransport) -> Vec<String> {
    let mut out = Vec::new();
    for s in requested {
        if s == "auto" {
            out.extend(t.auto_order().iter().map(|s| s.to_string()));
        } else {
            out.push(s.clone());
        }
    }
    out
}

/// Runs one peer of a call and reports what happened. See the module doc for the protocol
/// and the timing guarantees.
pub async fn run_peer(spec: &PeerSpec, transports: &[&dyn VoiceTransport]) -> PeerReport {
    run_peer_with(spec, transports, &mut voice::Filler).await
}

/// [`run_peer`], with the voice frames carrying `media`'s payloads and every received frame
/// handed to it (see [`voice::drive_with`]). When the callee drops a connected attempt to
/// follow the caller's next one, `media` is [`voice::VoiceMedia::restart`]ed.
pub async fn run_peer_with(
    spec: &PeerSpec,
    transports: &[&dyn VoiceTransport],
    media: &mut dyn voice::VoiceMedia,
) -> PeerReport {
    let role = spec.ctx.role;
    let mut report = PeerReport::new(role, &spec.transport);
    report.voice = spec.voice;
    let Some(t) = transports.iter().copied().find(|t| t.name() == spec.transport) else {
        let names: Vec<&str> = transports.iter().map(|t| t.name()).collect();
        report.error = Some(format!(
            "unknown transport {:?}; choose one of {}",
            spec.transport,
            names.join(", ")
        ));
        return report;
    };
    // `auto` races when the transport offers a race (see `race`); otherwise it is sequential.
    // An explicit port would be shared by every racing attempt: then sequential.
    let race =
        t.auto_race().filter(|_| spec.strategies == ["auto"] && spec.ctx.options.port.is_none());
    let strategies = match race {
        Some(r) => r.iter().map(|s| s.to_string()).collect(),
        None => resolve_strategies(&spec.strategies, t),
    };
    if strategies.is_empty() {
        report.error = Some("no strategies to try; name at least one or \"auto\"".into());
        return report;
    }
    let budget = spec.connect_budget(strategies.len());
    let connect_deadline_ns = spec.start_at_unix_ns.saturating_add(budget.as_nanos() as u64);
    let media_cap_ns = connect_deadline_ns.saturating_add(spec.duration.as_nanos() as u64);
    let hard_ns = media_cap_ns
        .saturating_add(DRAIN.as_nanos() as u64)
        .saturating_add(HARD_SLACK.as_nanos() as u64);
    let hard = voice::instant_at_unix_ns(hard_ns);

    // Wait for the start.
    tokio::time::sleep_until(voice::instant_at_unix_ns(spec.start_at_unix_ns)).await;
    report.dial_start_unix_ns = unix_ns_now();

    let work = async {
        match (role, race.is_some()) {
            (Role::Caller, true) => {
                crate::race::run_caller(spec, t, &strategies, media_cap_ns, &mut report, media)
                    .await
            }
            (Role::Callee, true) => {
                crate::race::run_callee(
                    spec,
                    t,
                    &strategies,
                    connect_deadline_ns,
                    media_cap_ns,
                    &mut report,
                    media,
                )
                .await
            }
            (Role::Caller, false) => {
                run_caller(
                    spec,
                    t,
                    &strategies,
                    connect_deadline_ns,
                    media_cap_ns,
                    &mut report,
                    media,
                )
                .await
            }
            (Role::Callee, false) => {
                run_callee(spec, t, connect_deadline_ns, media_cap_ns, &mut report, media).await
            }
        }
    };
    let outcome = tokio::time::timeout_at(hard, work).await;
    if outcome.is_err() && report.error.is_none() {
        report.error = Some(format!(
            "peer did not finish by its hard deadline ({:?} after the connect budget and call); \
             a transport ignored its timeouts",
            spec.duration + DRAIN + HARD_SLACK
        ));
    }
    report
}

pub(crate) async fn signal_client(spec: &PeerSpec, report: &mut PeerReport) -> Option<Client> {
    let wait = spec.ctx.connect_timeout.max(Duration::from_secs(1));
    match Client::connect_from(spec.ctx.local_ip, spec.ctx.signal, wait).await {
        Ok(c) => Some(c),
        Err(e) => {
            report.signal_failed(e);
            None
        }
    }
}

/// Waits for `key` on a connection of its own: a `Client` is not cancel-safe (a dropped `get`
/// leaves its answer on the connection), and the watches here lose `select!`s by design.
pub(crate) async fn watch(
    spec: &PeerSpec,
    key: &str,
    wait: Duration,
) -> Result<String, crate::signal::SignalError> {
    let mut c = Client::connect_from(
        spec.ctx.local_ip,
        spec.ctx.signal,
        spec.ctx.connect_timeout.max(Duration::from_secs(1)),
    )
    .await?;
    c.get(key, wait).await
}

pub(crate) fn attempt_ctx(spec: &PeerSpec, i: usize) -> CallContext {
    let mut ctx = spec.ctx.clone();
    ctx.call_id = format!("{}/{i}", spec.ctx.call_id);
    ctx.seed = callwall_units::seed::derive(spec.ctx.seed, Purpose::Attempt, i as u64);
    ctx
}

pub(crate) fn attempt_key(spec: &PeerSpec, i: usize) -> String {
    format!("{}/attempt/{i}", spec.ctx.call_id)
}

/// Media end for a peer that connected at `connected_ns`.
pub(crate) fn media_end(spec: &PeerSpec, connected_ns: u64, media_cap_ns: u64) -> SystemTime {
    system_time(connected_ns.saturating_add(spec.duration.as_nanos() as u64).min(media_cap_ns))
}

async fn run_caller(
    spec: &PeerSpec,
    t: &dyn VoiceTransport,
    strategies: &[String],
    connect_deadline_ns: u64,
    media_cap_ns: u64,
    report: &mut PeerReport,
    media: &mut dyn voice::VoiceMedia,
) {
    let Some(mut sig) = signal_client(spec, report).await else { return };
    let mut link = None;
    for (i, strategy) in strategies.iter().enumerate() {
        if unix_ns_now() >= connect_deadline_ns {
            break;
        }
        let started = tokio::time::Instant::now();
        if let Err(e) = sig.put(&attempt_key(spec, i), strategy).await {
            report.signal_failed(e);
            return;
        }
        let ctx = attempt_ctx(spec, i);
        let result = tokio::time::timeout(spec.ctx.connect_timeout, t.dial(&ctx, strategy)).await;
        let mut signalling = false;
        let (ok, error) = match result {
            Ok(Ok(l)) => {
                link = Some(l);
                (true, None)
            }
            Ok(Err(e)) => {
                signalling = matches!(&e, crate::TransportError::Signal(s) if s.is_unreachable());
                (false, Some(e.to_string()))
            }
            Err(_) => (false, Some(format!("timed out after {:?}", spec.ctx.connect_timeout))),
        };
        tracing::debug!(call = %spec.ctx.call_id, strategy, ok, ?error, "caller attempt {i}");
        report.attempts.push(Attempt {
            strategy: strategy.clone(),
            ok,
            elapsed_ms: ms_since(started),
            error,
            signalling,
        });
        if ok {
            report.strategy = Some(strategy.clone());
            break;
        }
    }
    let Some(link) = link else { return };
    let connected = unix_ns_now();
    report.connected_unix_ns = Some(connected);
    report.path = Some(link.path.clone());
    report.ice = t.ice_report(&link);
    let mut live = live_meter(spec, media);
    let end = media_end(spec, connected, media_cap_ns);
    let d = voice::drive_with(link, &spec.voice, end, DRAIN, &mut live).await;
    report.take_drive(d);
}

enum Step {
    Connected(crate::MediaLink),
    Failed(String),
    Superseded,
}

async fn run_callee(
    spec: &PeerSpec,
    t: &dyn VoiceTransport,
    connect_deadline_ns: u64,
    media_cap_ns: u64,
    report: &mut PeerReport,
    media: &mut dyn voice::VoiceMedia,
) {
    let Some(mut sig) = signal_client(spec, report).await else { return };
    // The caller may need a little longer than the budget to put its last key.
    let follow_until_ns =
        connect_deadline_ns.saturating_add(spec.ctx.connect_timeout.as_nanos() as u64 / 2);
    let mut i = 0usize;
    while i < MAX_ATTEMPTS {
        let wait = Duration::from_nanos(follow_until_ns.saturating_sub(unix_ns_now()));
        if wait.is_zero() {
            break;
        }
        let strategy = match sig.get(&attempt_key(spec, i), wait).await {
            Ok(s) => s,
            Err(crate::signal::SignalError::Timeout { .. }) => break,
            Err(e) => {
                report.signal_failed(e);
                return;
            }
        };
        let started = tokio::time::Instant::now();
        let ctx = attempt_ctx(spec, i);
        // Our own deadline for this attempt: the caller gives up after connect_timeout, plus a
        // margin for the signalling round trip.
        let own_deadline = started + spec.ctx.connect_timeout + Duration::from_millis(500);
        let next_key = attempt_key(spec, i + 1);
        let next_wait = Duration::from_nanos(media_cap_ns.saturating_sub(unix_ns_now()));
        let step = {
            let answer = t.answer(&ctx, &strategy);
            let next = watch(spec, &next_key, next_wait);
            tokio::select! {
                r = answer => match r {
                    Ok(l) => Step::Connected(l),
                    Err(e) => Step::Failed(e.to_string()),
                },
                r = next => match r {
                    Ok(_) => Step::Superseded,
                    Err(e) => Step::Failed(format!("signalling while answering: {e}")),
                },
                _ = tokio::time::sleep_until(own_deadline) => {
                    Step::Failed(format!("timed out after {:?}", spec.ctx.connect_timeout))
                }
            }
        };
        let link = match step {
            Step::Connected(l) => l,
            Step::Failed(e) => {
                report.attempts.push(Attempt {
                    strategy,
                    ok: false,
                    elapsed_ms: ms_since(started),
                    error: Some(e),
                    signalling: false,
                });
                i += 1;
                continue;
            }
            Step::Superseded => {
                report.attempts.push(Attempt {
                    strategy,
                    ok: false,
                    elapsed_ms: ms_since(started),
                    error: Some("abandoned: the caller moved on to its next strategy".into()),
                    signalling: false,
                });
                i += 1;
                continue;
            }
        };
        let connected = unix_ns_now();
        report.attempts.push(Attempt {
            strategy: strategy.clone(),
            ok: true,
            elapsed_ms: ms_since(started),
            error: None,
            signalling: false,
        });
        report.strategy = Some(strategy);
        report.connected_unix_ns = Some(connected);
        report.path = Some(link.path.clone());
        report.ice = t.ice_report(&link);
        let end = media_end(spec, connected, media_cap_ns);
        // Keep watching: if the caller's side did not connect, it moves on and so do we.
        let watch_wait = Duration::from_nanos(media_cap_ns.saturating_sub(unix_ns_now()));
        let superseded = {
            let mut live = live_meter(spec, &mut *media);
            let drive = voice::drive_with(link, &spec.voice, end, DRAIN, &mut live);
            let next = watch(spec, &next_key, watch_wait);
            tokio::pin!(drive);
            tokio::select! {
                d = &mut drive => Err(d),
                r = next => match r {
                    Ok(_) => Ok(()),
                    // Signalling trouble while talking does not end the call.
                    Err(_) => Err(drive.await),
                },
            }
        };
        match superseded {
            Err(d) => {
                report.take_drive(d);
                return;
            }
            Ok(()) => {
                if let Some(a) = report.attempts.last_mut() {
                    a.ok = false;
                    a.error =
                        Some("connected here, but the caller moved on to its next strategy".into());
                }
                report.clear_media();
                media.restart();
                i += 1;
            }
        }
    }
}

/// The live figures of this peer's call: a `live second {json}` line on stdout per second
/// (see [`crate::live`]).
fn live_meter<'a>(
    spec: &PeerSpec,
    inner: &'a mut dyn voice::VoiceMedia,
) -> crate::live::LiveMeter<'a> {
    let role = format!("{:?}", spec.ctx.role).to_lowercase();
    crate::live::LiveMeter::new(
        &spec.ctx.call_id,
        &role,
        spec.start_at_unix_ns,
        spec.voice.interval(),
        inner,
        Box::new(|s| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", crate::live::line(s));
            let _ = out.flush();
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_budget_is_one_timeout_per_strategy() {
        let t = Duration::from_millis(1500);
        assert_eq!(connect_budget(t, 0), t, "no strategy resolved yet still gets one timeout");
        assert_eq!(connect_budget(t, 1), t);
        assert_eq!(connect_budget(t, 4), Duration::from_secs(6));
        assert_eq!(connect_budget(Duration::MAX, 3), Duration::MAX);
    }
    use crate::{MediaLink, StrategyOptions, TransportError};
    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::Mutex;
    use tokio::sync::mpsc;

    /// In-process transport: strategy "b" works; with "a" the callee's side connects at once
    /// but the caller's side fails, as when a censor drops only the answer.
    #[derive(Default)]
    struct Mock {
        rooms: Mutex<HashMap<String, MediaLink>>,
        /// `auto` races "a" and "b".
        race: bool,
    }

    fn pair(path: &str) -> (MediaLink, MediaLink) {
        let (c2e_tx, c2e_rx) = mpsc::channel(1024);
        let (e2c_tx, e2c_rx) = mpsc::channel(1024);
        let caller = MediaLink { tx: c2e_tx, rx: e2c_rx, path: path.into(), guard: Box::new(()) };
        let callee = MediaLink { tx: e2c_tx, rx: c2e_rx, path: path.into(), guard: Box::new(()) };
        (caller, callee)
    }

    #[async_trait::async_trait]
    impl VoiceTransport for Mock {
        fn name(&self) -> &'static str {
            "mock"
        }
        fn strategies(&self) -> &'static [&'static str] {
            &["a", "b"]
        }
        fn auto_race(&self) -> Option<&'static [&'static str]> {
            self.race.then_some(&["a", "b"][..])
        }
        async fn dial(&self, ctx: &CallContext, s: &str) -> Result<MediaLink, TransportError> {
            crate::check_strategy(self, s)?;
            if s == "a" {
                return Err(TransportError::Handshake("answer dropped".into()));
            }
            loop {
                if let Some(l) = self.rooms.lock().unwrap().remove(&ctx.call_id) {
                    return Ok(l);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        async fn answer(&self, ctx: &CallContext, s: &str) -> Result<MediaLink, TransportError> {
            crate::check_strategy(self, s)?;
            let (caller, callee) = pair(s);
            if s == "b" {
                self.rooms.lock().unwrap().insert(ctx.call_id.clone(), caller);
            }
            Ok(callee)
        }
    }

    fn spec(role: Role, signal: SocketAddr, strategies: &[&str]) -> PeerSpec {
        PeerSpec {
            transport: "mock".into(),
            strategies: strategies.iter().map(|s| s.to_string()).collect(),
            ctx: CallContext {
                call_id: "c1".into(),
                role,
                local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                signal,
                relay: None,
                options: StrategyOptions::default(),
                connect_timeout: Duration::from_millis(400),
                seed: 1,
            },
            start_at_unix_ns: unix_ns_now() + 20_000_000,
            duration: Duration::from_millis(600),
            voice: VoiceModel::default(),
            audio: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callee_follows_the_caller_past_a_one_sided_connect() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(crate::signal::serve(l));
        let t = Mock::default();
        let ts: [&dyn VoiceTransport; 1] = [&t];
        let (a, b) = (spec(Role::Caller, addr, &["auto"]), spec(Role::Callee, addr, &["auto"]));
        let (ra, rb) = tokio::join!(run_peer(&a, &ts), run_peer(&b, &ts));
        assert_eq!(ra.attempts.len(), 2, "{:?}", ra.attempts);
        assert!(!ra.attempts[0].ok && ra.attempts[1].ok);
        assert_eq!(rb.attempts.len(), 2, "{:?}", rb.attempts);
        assert!(rb.attempts[0].error.as_deref().unwrap().contains("moved on"));
        assert_eq!(
            (ra.strategy.as_deref(), rb.strategy.as_deref()),
            (Some("b"), Some("b")),
            "{:?}",
            rb.attempts
        );
        let m = crate::metrics::analyze(&ra, &rb, &crate::Thresholds::default());
        assert_eq!(m.verdict, crate::Verdict::Connected, "{}", m.reason);
        assert!(m.up.frames_received >= 25, "{}", m.up.frames_received);
        // Reports survive JSON (the harness reads them from the peer process).
        let back: PeerReport = serde_json::from_str(&serde_json::to_string(&ra).unwrap()).unwrap();
        assert_eq!(back, ra);
        server.abort();
    }

    /// Racing: "a" connects only on the callee's side, "b" starts a stagger later and wins;
    /// the callee drops its "a" link and talks on "b", as the caller said.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_callee_follows_the_callers_winner() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(crate::signal::serve(l));
        let t = Mock { race: true, ..Mock::default() };
        let ts: [&dyn VoiceTransport; 1] = [&t];
        let (a, b) = (spec(Role::Caller, addr, &["auto"]), spec(Role::Callee, addr, &["auto"]));
        let (ra, rb) = tokio::join!(run_peer(&a, &ts), run_peer(&b, &ts));
        assert_eq!((ra.strategy.as_deref(), rb.strategy.as_deref()), (Some("b"), Some("b")));
        assert_eq!(ra.attempts.len(), 2, "{:?}", ra.attempts);
        assert!(!ra.attempts[0].ok && ra.attempts[1].ok, "{:?}", ra.attempts);
        assert!(!rb.attempts[0].ok && rb.attempts[1].ok, "{:?}", rb.attempts);
        assert!(rb.attempts[0].error.as_deref().unwrap().contains("picked another"));
        let m = crate::metrics::analyze(&ra, &rb, &crate::Thresholds::default());
        assert_eq!(m.verdict, crate::Verdict::Connected, "{}", m.reason);
        // An explicit list is still sequential, even on a racing transport.
        let (a, b) = (spec(Role::Caller, addr, &["a", "b"]), spec(Role::Callee, addr, &["a", "b"]));
        let (a, b) = (
            PeerSpec { ctx: CallContext { call_id: "c2".into(), ..a.ctx.clone() }, ..a },
            PeerSpec { ctx: CallContext { call_id: "c2".into(), ..b.ctx.clone() }, ..b },
        );
        let (ra, rb) = tokio::join!(run_peer(&a, &ts), run_peer(&b, &ts));
        assert!(rb.attempts[0].error.as_deref().unwrap().contains("moved on"), "{:?}", rb.attempts);
        assert_eq!(ra.strategy.as_deref(), Some("b"));
        server.abort();
    }

    #[tokio::test]
    async fn unknown_transport_is_an_error_and_dead_signalling_is_said_plainly() {
        let t = Mock::default();
        let ts: [&dyn VoiceTransport; 1] = [&t];
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut s = spec(Role::Caller, addr, &["a"]);
        s.transport = "nope".into();
        let r = run_peer(&s, &ts).await;
        assert!(r.error.as_deref().unwrap().contains("unknown transport"), "{:?}", r.error);
        // Nothing listens on the signal port: the peer says signalling could not get through
        // (not a testbed error), and it does not hang.
        let mut s = spec(Role::Callee, addr, &["a"]);
        s.ctx.connect_timeout = Duration::from_millis(300);
        let r = tokio::time::timeout(Duration::from_secs(5), run_peer(&s, &ts)).await.unwrap();
        assert_eq!(r.error, None);
        let f = r.signalling_failure.as_deref().unwrap_or_default();
        assert!(f.contains("signal server"), "{f:?}");
        let m = crate::metrics::analyze(&r, &r, &crate::metrics::Thresholds::default());
        assert_eq!(m.verdict, crate::Verdict::NoSignalling, "{}", m.reason);
        assert!(matches!(m.reason, callwall_results::Cause::NoSignalling { .. }), "{}", m.reason);
    }

    #[test]
    fn spec_serde() {
        let s = spec(Role::Caller, "127.0.0.1:1".parse().unwrap(), &["auto"]);
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["duration"], "600ms");
        let back: PeerSpec = serde_json::from_value(j).unwrap();
        assert_eq!(back.duration, s.duration);
        assert_eq!(back.strategies, s.strategies);
    }
}
