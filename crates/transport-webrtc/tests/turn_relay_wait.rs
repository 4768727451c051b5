//! Packets through a TURN relay do not wait for the webrtc-rs driver's next timer.
//!
//! Two webrtc-rs peer connections call each other through an in-test TURN server: the caller is
//! relay-only (`RTCIceTransportPolicy::Relay`), the callee has a host candidate. Everything runs
//! on one virtual clock (the `runtime-mock` feature's `MockRuntime`: timers fire only when the
//! test advances it, and its in-memory network delivers a datagram inside the send) and on a
//! single-threaded executor owned by this test, so "let every task run until none can" is exact
//! and the test is deterministic: nothing here depends on the machine's speed.
//!
//! The clock is stepped 1 ms at a time until the first DTLS record crosses the relay, then
//! frozen. The rest of the handshake crosses the relay five more times (cookie, second
//! ClientHello, server flight, client flight, server Finished), each flight an answer to the
//! previous one: none needs a timer. With the patched driver (`vendor/webrtc`, see the webrtc
//! section of `vendor/README.md`) both peers reach `connected` with the clock frozen. Before the
//! patch every relayed packet waited for the driver's next pass, which only a timer (the ICE
//! agent's tick, every 200 ms here) or another datagram brings: with the clock frozen the
//! handshake stalls (unpatched it took 1.2 s of virtual time more, six ticks; without either
//! half of the patch alone, 600 ms).
//!
//! `RUST_LOG=step=trace,webrtc=debug,rtc=debug` shows the virtual steps and what the stacks did.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::stun::attributes::{ATTR_NONCE, ATTR_REALM};
use rtc::stun::error_code::CODE_UNAUTHORIZED;
use rtc::stun::message::{
    Getter, Message, MessageType, Setter, TransactionId, CLASS_ERROR_RESPONSE, CLASS_INDICATION,
    CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_DATA, METHOD_REFRESH, METHOD_SEND,
};
use rtc::stun::textattrs::{Nonce, Realm};
use rtc::turn::proto::chandata::ChannelData;
use rtc::turn::proto::channum::ChannelNumber;
use rtc::turn::proto::data::Data;
use rtc::turn::proto::lifetime::Lifetime;
use rtc::turn::proto::peeraddr::PeerAddress;
use rtc::turn::proto::relayaddr::RelayedAddress;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceConnectionState, RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionState, SettingEngineBuilder,
};
use webrtc::runtime::mock::{MockRuntime, MockUDPNetwork, VirtualClock};
use webrtc::runtime::{AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, Runtime};

// ---------------------------------------------------------------------------------------------
// A single-threaded executor on a virtual clock
// ---------------------------------------------------------------------------------------------

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Tasks that were woken and wait to be polled.
type RunQueue = Arc<Mutex<VecDeque<Arc<Task>>>>;

struct Task {
    future: Mutex<Option<BoxFuture>>,
    queue: RunQueue,
    /// In the run queue already: a second wake before the poll adds nothing.
    queued: AtomicBool,
    aborted: AtomicBool,
    finished: AtomicBool,
}

impl Task {
    fn schedule(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.queue.lock().expect("run queue").push_back(Arc::clone(self));
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.schedule();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.schedule();
    }
}

struct StepJoinHandle(Arc<Task>);

impl webrtc::runtime::JoinHandle for StepJoinHandle {
    fn detach(&self) {}

    fn abort(&self) {
        self.0.aborted.store(true, Ordering::SeqCst);
        self.0.schedule();
    }

    fn is_finished(&self) -> bool {
        self.0.finished.load(Ordering::SeqCst)
    }
}

/// A [`Runtime`] whose tasks run only inside [`StepRuntime::run_until_stalled`], on the test's
/// thread, and whose timers, clock and sockets are a [`MockRuntime`]'s.
///
/// `MockRuntime::spawn` gives each task an OS thread, so "every task has done what it can" is
/// not observable there without waiting on the wall clock. Here it is: the run queue is empty.
/// Wakers are the only way into the queue: a datagram delivered on the mock network wakes its
/// receiver inside the sender's `poll_send`, and `VirtualClock::advance` wakes due timers.
struct StepRuntime {
    mock: MockRuntime,
    queue: RunQueue,
    /// The loopback sockets whose ports the mock network took over, held so that the OS does
    /// not hand the same port out twice (nothing is ever sent on them).
    reserved: Mutex<Vec<std::net::UdpSocket>>,
}

impl fmt::Debug for StepRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepRuntime").finish_non_exhaustive()
    }
}

/// Polls in one `run_until_stalled` beyond which a task is taken to be spinning.
const MAX_POLLS: usize = 1_000_000;

impl StepRuntime {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            mock: MockRuntime::with_network(Arc::new(MockUDPNetwork::new())),
            queue: Arc::default(),
            reserved: Mutex::default(),
        })
    }

    fn clock(&self) -> Arc<VirtualClock> {
        self.mock.clock()
    }

    /// Virtual time since the start of the test.
    fn elapsed(&self) -> Duration {
        self.mock.clock().elapsed()
    }

    /// Polls woken tasks until none is left to poll. The clock does not move.
    fn run_until_stalled(&self) {
        for _ in 0..MAX_POLLS {
            let Some(task) = self.queue.lock().expect("run queue").pop_front() else {
                return;
            };
            task.queued.store(false, Ordering::SeqCst);
            let mut slot = task.future.lock().expect("task future");
            let Some(future) = slot.as_mut() else {
                continue;
            };
            if task.aborted.load(Ordering::SeqCst) {
                *slot = None;
                task.finished.store(true, Ordering::SeqCst);
                continue;
            }
            let waker = Waker::from(Arc::clone(&task));
            if future.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                *slot = None;
                task.finished.store(true, Ordering::SeqCst);
            }
        }
        panic!("tasks kept waking each other for {MAX_POLLS} polls with the clock frozen");
    }

    /// Advances the virtual clock by `step`, then lets every task run.
    fn step(&self, step: Duration) {
        self.clock().advance(step);
        tracing::trace!(target: "step", "t = {:?}", self.elapsed());
        self.run_until_stalled();
    }

    /// Runs `future` as a task until the tasks stall and returns its output; panics if it needs
    /// the clock to move (every call this test makes completes without a timer).
    fn run<T: Send + 'static>(
        self: &Arc<Self>,
        what: &str,
        future: impl Future<Output = T> + Send + 'static,
    ) -> T {
        let out = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&out);
        let _task = self.spawn(Box::pin(async move {
            let value = future.await;
            *slot.lock().expect("output slot") = Some(value);
        }));
        self.run_until_stalled();
        let value = out.lock().expect("output slot").take();
        value.unwrap_or_else(|| panic!("{what} did not complete with the clock frozen"))
    }

    /// Steps the clock 1 ms at a time until `done` holds; panics after `limit` of virtual time.
    fn step_until(&self, what: &str, limit: Duration, done: impl Fn() -> bool) {
        let start = self.elapsed();
        while !done() {
            assert!(
                self.elapsed() - start < limit,
                "{what} did not happen within {limit:?} of virtual time"
            );
            self.step(Duration::from_millis(1));
        }
    }
}

impl Runtime for StepRuntime {
    fn spawn(&self, future: BoxFuture) -> Box<dyn webrtc::runtime::JoinHandle> {
        let task = Arc::new(Task {
            future: Mutex::new(Some(future)),
            queue: Arc::clone(&self.queue),
            queued: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        });
        task.schedule();
        Box::new(StepJoinHandle(task))
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let addr = socket.local_addr()?;
        self.reserved.lock().expect("reserved sockets").push(socket);
        Ok(self.mock.network().bind(addr)? as Arc<dyn AsyncUdpSocket>)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.mock.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.mock.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.mock.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.mock.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.mock.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.mock.interval(period)
    }

    fn block_on(&self, _future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        unimplemented!("the test drives its tasks with run_until_stalled, never block_on");
    }

    fn name(&self) -> &'static str {
        "step"
    }
}

// ---------------------------------------------------------------------------------------------
// A TURN server (RFC 8656, UDP) on the mock network
// ---------------------------------------------------------------------------------------------

/// What the TURN server relayed.
#[derive(Default)]
struct Relayed {
    /// Datagrams from the client to a peer (Send indication or ChannelData).
    to_peer: AtomicUsize,
    /// Datagrams from a peer to the client (Data indication or ChannelData).
    to_client: AtomicUsize,
    /// When (virtual time) the first DTLS record crossed the relay, either way.
    first_dtls: Mutex<Option<Duration>>,
}

impl Relayed {
    fn relay(&self, clock: &VirtualClock, count: &AtomicUsize, payload: &[u8]) {
        count.fetch_add(1, Ordering::SeqCst);
        // RFC 7983: a first byte in 20..=63 is DTLS.
        if payload.first().is_some_and(|b| (20..=63).contains(b)) {
            self.first_dtls.lock().expect("relayed").get_or_insert(clock.elapsed());
        }
    }

    fn first_dtls(&self) -> Option<Duration> {
        *self.first_dtls.lock().expect("relayed")
    }
}

#[derive(Default)]
struct Allocation {
    /// The client's address, once its Allocate succeeded.
    client: Option<SocketAddr>,
    permissions: HashSet<IpAddr>,
    channels: HashMap<u16, SocketAddr>,
}

/// Binds an address on the mock network through the runtime (a loopback port from the OS).
fn bind(rt: &StepRuntime) -> Arc<dyn AsyncUdpSocket> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback port");
    rt.wrap_udp_socket(socket).expect("bound on the mock network")
}

fn build(setters: &[Box<dyn Setter + '_>]) -> Vec<u8> {
    let mut m = Message::new();
    m.build(setters).expect("a well-formed stun message");
    m.raw
}

/// Starts a TURN server: one allocation, long-term credentials challenged with 401 (not
/// checked), permissions and channels enforced as RFC 8656 requires. Returns its address.
fn start_turn_server(rt: &Arc<StepRuntime>, relayed: Arc<Relayed>) -> SocketAddr {
    let server = bind(rt);
    let relay = bind(rt);
    let server_addr = server.local_addr().expect("server address");
    let relay_addr = relay.local_addr().expect("relay address");
    let allocation = Arc::new(Mutex::new(Allocation::default()));
    let clock = rt.clock();

    // The client side: STUN requests, Send indications, ChannelData.
    let (srv, rel, alloc, counts, clk) = (
        Arc::clone(&server),
        Arc::clone(&relay),
        Arc::clone(&allocation),
        Arc::clone(&relayed),
        Arc::clone(&clock),
    );
    let _client_side = rt.spawn(Box::pin(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = srv.recv_from(&mut buf).await {
            let datagram = &buf[..n];
            if ChannelData::is_channel_data(datagram) {
                let mut ch = ChannelData { raw: datagram.to_vec(), ..Default::default() };
                let peer = ch.decode().ok().and_then(|()| {
                    alloc.lock().expect("allocation").channels.get(&ch.number.0).copied()
                });
                if let Some(peer) = peer {
                    counts.relay(&clk, &counts.to_peer, &ch.data);
                    let _ = rel.send_to(&ch.data, peer).await;
                }
                continue;
            }
            let mut msg = Message::new();
            msg.raw = datagram.to_vec();
            if msg.decode().is_err() {
                continue;
            }
            let mut peer = PeerAddress::default();
            let peer_addr = peer.get_from(&msg).ok().map(|()| SocketAddr::new(peer.ip, peer.port));
            let tid = Box::new(msg.transaction_id);
            let success = |method| Box::new(MessageType::new(method, CLASS_SUCCESS_RESPONSE));
            let response = match (msg.typ.method, msg.typ.class) {
                (METHOD_SEND, CLASS_INDICATION) => {
                    let mut data = Data::default();
                    let permitted = peer_addr.filter(|p| {
                        alloc.lock().expect("allocation").permissions.contains(&p.ip())
                    });
                    if let (Some(peer), Ok(())) = (permitted, data.get_from(&msg)) {
                        counts.relay(&clk, &counts.to_peer, &data.0);
                        let _ = rel.send_to(&data.0, peer).await;
                    }
                    continue;
                }
                (_, class) if class != CLASS_REQUEST => continue,
                (METHOD_ALLOCATE, _) if msg.get(ATTR_NONCE).is_err() => build(&[
                    tid,
                    Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE)),
                    Box::new(CODE_UNAUTHORIZED),
                    Box::new(Realm::new(ATTR_REALM, "callwall".to_owned())),
                    Box::new(Nonce::new(ATTR_NONCE, "nonce".to_owned())),
                ]),
                (METHOD_ALLOCATE, _) => {
                    alloc.lock().expect("allocation").client = Some(from);
                    build(&[
                        tid,
                        success(METHOD_ALLOCATE),
                        Box::new(RelayedAddress { ip: relay_addr.ip(), port: relay_addr.port() }),
                        Box::new(Lifetime(Duration::from_secs(600))),
                    ])
                }
                (METHOD_REFRESH, _) => build(&[
                    tid,
                    success(METHOD_REFRESH),
                    Box::new(Lifetime(Duration::from_secs(600))),
                ]),
                (METHOD_CREATE_PERMISSION, _) => {
                    if let Some(peer) = peer_addr {
                        alloc.lock().expect("allocation").permissions.insert(peer.ip());
                    }
                    build(&[tid, success(METHOD_CREATE_PERMISSION)])
                }
                (METHOD_CHANNEL_BIND, _) => {
                    let mut number = ChannelNumber::default();
                    if let (Some(peer), Ok(())) = (peer_addr, number.get_from(&msg)) {
                        let mut a = alloc.lock().expect("allocation");
                        a.permissions.insert(peer.ip());
                        a.channels.insert(number.0, peer);
                    }
                    build(&[tid, success(METHOD_CHANNEL_BIND)])
                }
                _ => continue,
            };
            let _ = srv.send_to(&response, from).await;
        }
    }));

    // The peer side: data to the relayed address goes to the client, over its channel if bound.
    let _peer_side = rt.spawn(Box::pin(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = relay.recv_from(&mut buf).await {
            let (client, channel) = {
                let a = allocation.lock().expect("allocation");
                if !a.permissions.contains(&from.ip()) {
                    continue; // no permission: dropped, as RFC 8656 §9 requires
                }
                let channel = a.channels.iter().find(|(_, p)| **p == from).map(|(n, _)| *n);
                (a.client, channel)
            };
            let Some(client) = client else { continue };
            let out = match channel {
                Some(number) => {
                    let mut ch = ChannelData {
                        data: buf[..n].to_vec(),
                        number: ChannelNumber(number),
                        ..Default::default()
                    };
                    ch.encode();
                    ch.raw
                }
                None => build(&[
                    Box::new(TransactionId::new()),
                    Box::new(MessageType::new(METHOD_DATA, CLASS_INDICATION)),
                    Box::new(PeerAddress { ip: from.ip(), port: from.port() }),
                    Box::new(Data(buf[..n].to_vec())),
                ]),
            };
            relayed.relay(&clock, &relayed.to_client, &buf[..n]);
            let _ = server.send_to(&out, client).await;
        }
    }));

    server_addr
}

// ---------------------------------------------------------------------------------------------
// The two peers
// ---------------------------------------------------------------------------------------------

/// When (virtual time) a peer reached the states the test waits for.
#[derive(Default)]
struct Seen {
    gathered: Option<Duration>,
    ice_connected: Option<Duration>,
    connected: Option<Duration>,
    states: Vec<RTCPeerConnectionState>,
}

struct Recorder {
    clock: Arc<VirtualClock>,
    seen: Mutex<Seen>,
}

impl Recorder {
    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().expect("recorder"))
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Recorder {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.seen.lock().expect("recorder").gathered.get_or_insert(self.clock.elapsed());
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        if state == RTCIceConnectionState::Connected {
            self.seen.lock().expect("recorder").ice_connected.get_or_insert(self.clock.elapsed());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let mut seen = self.seen.lock().expect("recorder");
        seen.states.push(state);
        if state == RTCPeerConnectionState::Connected {
            seen.connected.get_or_insert(self.clock.elapsed());
        }
    }
}

struct Peer {
    pc: Arc<dyn PeerConnection>,
    rec: Arc<Recorder>,
}

/// A peer as `callwall-transport-webrtc` builds one (mDNS off, loopback host candidates, no
/// wait before nominating a pair), on the step runtime.
fn peer(rt: &Arc<StepRuntime>, turn: Option<SocketAddr>) -> Peer {
    let rec = Arc::new(Recorder { clock: rt.clock(), seen: Mutex::default() });
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_include_loopback_candidate(true)
        .with_host_acceptance_min_wait(Some(Duration::ZERO))
        .with_srflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_prflx_acceptance_min_wait(Some(Duration::ZERO))
        .with_relay_acceptance_min_wait(Some(Duration::ZERO))
        .build();
    let config = match turn {
        Some(turn) => RTCConfigurationBuilder::new()
            .with_ice_servers(vec![RTCIceServer {
                urls: vec![format!("turn:{turn}?transport=udp")],
                username: "callwall".to_owned(),
                credential: "callwall".to_owned(),
            }])
            .with_ice_transport_policy(RTCIceTransportPolicy::Relay),
        None => RTCConfigurationBuilder::new(),
    }
    .build();
    let builder = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings)
        .with_runtime(Arc::clone(rt) as Arc<dyn Runtime>)
        .with_handler(Arc::clone(&rec) as Arc<dyn PeerConnectionEventHandler>)
        .with_udp_addrs(vec!["127.0.0.1:0"]);
    let pc = rt.run("building a peer connection", async move {
        builder.build().await.expect("a peer connection on the step runtime")
    });
    Peer { pc: Arc::new(pc), rec }
}

/// Applies a local description (offer or answer), lets gathering finish, returns the
/// description with its candidates (no trickle, as `callwall-transport-webrtc` signals).
fn describe(
    rt: &Arc<StepRuntime>,
    p: &Peer,
    offer: bool,
) -> webrtc::peer_connection::RTCSessionDescription {
    let pc = Arc::clone(&p.pc);
    rt.run("applying the local description", async move {
        let desc = if offer {
            pc.create_offer(None).await.expect("an offer")
        } else {
            pc.create_answer(None).await.expect("an answer")
        };
        pc.set_local_description(desc).await.expect("the local description applies");
    });
    rt.step_until("ice gathering", Duration::from_secs(5), || p.rec.seen(|s| s.gathered.is_some()));
    let pc = Arc::clone(&p.pc);
    rt.run("reading the local description", async move {
        pc.local_description().await.expect("a local description")
    })
}

#[test]
fn a_dtls_handshake_through_a_turn_relay_needs_no_timer() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let rt = StepRuntime::new();
    let relayed = Arc::new(Relayed::default());
    let turn = start_turn_server(&rt, Arc::clone(&relayed));
    let caller = peer(&rt, Some(turn));
    let callee = peer(&rt, None);

    let pc = Arc::clone(&caller.pc);
    rt.run("creating a data channel", async move {
        pc.create_data_channel("probe", None).await.expect("a data channel");
    });
    let offer = describe(&rt, &caller, true);
    assert!(
        offer.sdp.contains("typ relay"),
        "the caller offers its relayed candidate:\n{}",
        offer.sdp
    );
    let pc = Arc::clone(&callee.pc);
    rt.run("applying the offer", async move {
        pc.set_remote_description(offer).await.expect("the offer applies");
    });
    let answer = describe(&rt, &callee, false);
    let pc = Arc::clone(&caller.pc);
    rt.run("applying the answer", async move {
        pc.set_remote_description(answer).await.expect("the answer applies");
    });

    // ICE checks are paced by the agents' timers, and so is the DTLS client's first flight: the
    // `rtc` core queues it when ICE selects a pair but sends it on its next timeout, on any path
    // (see vendor/README.md). Step the clock 1 ms at a time until the first DTLS record crosses
    // the relay.
    rt.step_until("a dtls record through the relay", Duration::from_secs(10), || {
        relayed.first_dtls().is_some()
    });
    let first_dtls = relayed.first_dtls().expect("a dtls record crossed the relay");

    // From here on the clock stands still. Every further flight answers one from the other
    // side, through the relay: nothing may be left waiting for a timer.
    rt.run_until_stalled();
    let both =
        |f: fn(&Seen) -> Option<Duration>| Some(caller.rec.seen(f)?.max(callee.rec.seen(f)?));
    let connected_frozen = both(|s| s.connected).is_some();

    // Only to say how long it would have taken: let time run again.
    if !connected_frozen {
        rt.step_until("connected on both peers", Duration::from_secs(10), || {
            both(|s| s.connected).is_some()
        });
    }
    let connected_at = both(|s| s.connected).expect("both connected");
    let (to_peer, to_client) =
        (relayed.to_peer.load(Ordering::SeqCst), relayed.to_client.load(Ordering::SeqCst));
    assert!(
        to_peer > 0 && to_client > 0,
        "the call did not go through the relay (to peer {to_peer}, to client {to_client})"
    );
    assert!(
        connected_frozen,
        "the DTLS handshake over the TURN relay stalled with the virtual clock frozen after its \
         first record crossed the relay (at {first_dtls:?}); it finished {:?} later, once timers \
         ran the drivers again: relayed packets wait for the driver's next pass (see the webrtc \
         section of vendor/README.md). ICE connected at {:?}; caller states {:?}, callee \
         states {:?}",
        connected_at - first_dtls,
        both(|s| s.ice_connected),
        caller.rec.seen(|s| s.states.clone()),
        callee.rec.seen(|s| s.states.clone()),
    );
}
