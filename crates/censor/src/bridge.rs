//! The censor's I/O adapter: an L2 bridge between two interfaces through AF_PACKET sockets.
//!
//! Each frame received on the inside interface travels [`Dir::Up`] and, if the engine says
//! so, is sent out of the outside interface (and the reverse for [`Dir::Down`]). Held frames
//! wait in the engine and are sent when due; injected frames go out right away. The loop
//! stops when the stop fd (the censor process's stdin) reaches end of file or errors.
//!
//! The interfaces must have TX checksum offload, TSO and GSO off on both veth ends (the netns
//! crate does that), or the frames re-sent here carry unfinished checksums and are dropped.
//!
//! Two receive paths ([`BridgeIo`]), same engine, same sends, same verdicts: `recvmmsg` of
//! up to 64 frames per wake-up into a private buffer, or a TPACKET_V3 ring
//! ([`crate::ring`]) read in place, one wake-up per block. Forwarded frames leave with one
//! `sendmmsg` per batch straight from where they were received. [`IoCounters`] says where
//! the wake-ups, syscalls and engine time went.
//!
//! Frames the kernel drops before the censor reads them (receive buffer or ring full) are
//! not lost silently: the loop reads each socket's `PACKET_STATISTICS` every half second and
//! when it stops, into [`BridgeStats::kernel_drops`] (with the frames queued and, for the
//! ring, its freezes), and the machine-wide input-backlog drops over the run into
//! [`BridgeStats::backlog_drops`]. The receive buffer is [`BridgeOptions::rcvbuf`].

use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::engine::{Dir, Engine, Event, Verdict};
use crate::ring::RingConfig;
use crate::sys::{self, PacketSocket};

/// Frames read from one socket (one `recvmmsg`) before looking at the other and at the
/// timers; also the most frames one `sendmmsg` sends.
const BATCH: usize = sys::MAX_BATCH;
/// Receive buffer per frame: a frame longer than this is cut short, counted and dropped.
const SLOT: usize = 65_536;
/// How often the loop reads the kernel's per-socket counters (they are 32-bit and reset on
/// each read, so reading often also keeps them from wrapping).
const KERNEL_STATS_EVERY_NS: u64 = 500_000_000;

/// How the bridge reads frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BridgeIo {
    /// A `PACKET_MMAP` `TPACKET_V3` receive ring per interface: one wake-up per block (full,
    /// or after [`BridgeOptions::block_timeout_ms`]), frames read in place and forwarded
    /// straight out of the ring with `sendmmsg`. Not yet the default: the whole end-to-end
    /// suite has not been run with it (see BENCHMARKS.md).
    Ring,
    /// Up to 64 frames per `recvmmsg` into a private buffer on every wake-up (the previous
    /// path; the default).
    #[default]
    Mmsg,
}

/// The bridge's I/O options (the defaults suit every scenario; benchmarks and tests choose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BridgeOptions {
    pub io: BridgeIo,
    /// Ring only: how long a block that is not full waits before it is handed over, in ms
    /// (1 to 100): the most a frame waits in the ring when traffic is light.
    pub block_timeout_ms: u32,
    /// Ring only: bytes per block (a multiple of 4096) and blocks per ring.
    pub block_size: u32,
    pub block_nr: u32,
    /// Receive buffer per packet socket in bytes (`SO_RCVBUFFORCE`; the kernel doubles it):
    /// what absorbs a burst, or a moment the censor gets no CPU, before the kernel drops
    /// frames ([`BridgeStats::kernel_drops`]). The `recvmmsg` path's queue; the ring's is
    /// its blocks.
    pub rcvbuf: u32,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        let r = RingConfig::default();
        BridgeOptions {
            io: BridgeIo::default(),
            block_timeout_ms: r.block_timeout_ms,
            block_size: r.block_size,
            block_nr: r.block_nr,
            rcvbuf: sys::DEFAULT_RCVBUF,
        }
    }
}

impl BridgeOptions {
    fn ring(&self) -> Option<RingConfig> {
        (self.io == BridgeIo::Ring).then_some(RingConfig {
            block_size: self.block_size,
            block_nr: self.block_nr,
            block_timeout_ms: self.block_timeout_ms.clamp(1, 100),
        })
    }
}

/// Where the time and the syscalls of the bridge went (for benchmarks; not part of results).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoCounters {
    /// Returns from `poll`.
    pub wakeups: u64,
    /// `recvmmsg` calls (mmsg path) or ring blocks read (ring path).
    pub rx_batches: u64,
    /// `sendmmsg`/`send` calls.
    pub tx_calls: u64,
    /// Nanoseconds spent in the engine (`handle_frame`), summed per frame.
    pub engine_ns: u64,
}

/// Where the bridge writes what it saw and did.
pub trait Recorder {
    /// A frame the censor received (before its decision).
    fn frame(&mut self, t_unix_ns: u64, dir: Dir, frame: &[u8]);
    /// A decision-log event.
    fn event(&mut self, ev: &Event);
    /// A live control change (see [`crate::control_io`]).
    fn control(&mut self, _ev: &callwall_results::ControlEvent) {}
}

/// A recorder that keeps nothing.
pub struct NoRecorder;
impl Recorder for NoRecorder {
    fn frame(&mut self, _: u64, _: Dir, _: &[u8]) {}
    fn event(&mut self, _: &Event) {}
}

/// I/O counters of the bridge itself (defined with the results model).
pub use callwall_results::censor::BridgeStats;

pub struct Bridge {
    inside: PacketSocket,
    outside: PacketSocket,
    clock: Clock,
    pub stats: BridgeStats,
    pub io: IoCounters,
    /// `/proc/net/softnet_stat`'s drops when the bridge opened.
    backlog_at_open: Option<u64>,
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Engine time (nanoseconds since run time zero) and UNIX time, from one monotonic clock.
#[derive(Clone, Copy)]
struct Clock {
    /// Run time zero (calls start) in UNIX nanoseconds; engine time is relative to it.
    t0_unix_ns: u64,
    start: Instant,
    start_unix_ns: u64,
}

impl Clock {
    fn unix_now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64 + self.start_unix_ns
    }
    /// Engine time: nanoseconds since run time zero, monotonic, 0 before it.
    fn now_ns(&self) -> u64 {
        self.unix_now().saturating_sub(self.t0_unix_ns)
    }
    /// Engine time and UNIX time of one clock reading.
    fn both(&self) -> (u64, u64) {
        let unix = self.unix_now();
        (unix.saturating_sub(self.t0_unix_ns), unix)
    }
}

/// What the per-frame work needs, borrowed apart from the socket being read.
struct Io<'a> {
    clock: Clock,
    inside: &'a PacketSocket,
    outside: &'a PacketSocket,
    stats: &'a mut BridgeStats,
    io: &'a mut IoCounters,
}

impl Io<'_> {
    fn socket(&self, dir: Dir) -> &PacketSocket {
        // A frame travelling up leaves through the outside interface.
        match dir {
            Dir::Up => self.outside,
            Dir::Down => self.inside,
        }
    }

    /// Sends `frames` travelling `dir`, in order, with as few syscalls as the kernel allows.
    fn send_frames(&mut self, dir: Dir, frames: &[&[u8]]) {
        if frames.is_empty() {
            return;
        }
        let (sent, failed, calls) = self.socket(dir).send_batch(frames);
        self.io.tx_calls += calls as u64;
        self.stats.sent[dir as usize] += sent as u64;
        if failed > 0 {
            self.stats.send_errors += failed as u64;
            tracing::debug!("send {dir:?}: {failed} frame(s) refused");
        }
    }

    fn send(&mut self, dir: Dir, frame: &[u8]) {
        self.io.tx_calls += 1;
        match self.socket(dir).send(frame) {
            Ok(()) => self.stats.sent[dir as usize] += 1,
            Err(e) => {
                self.stats.send_errors += 1;
                tracing::debug!("send {dir:?} failed: {e}");
            }
        }
    }

    /// Runs the engine on `frames` (captured bytes, length on the wire) received travelling
    /// `dir`, in order, and sends the forwarded ones with one `sendmmsg` per [`BATCH`].
    /// Frames the engine releases or injects go out at the point they became due, after
    /// the forwarded frames received before them.
    fn handle<'f>(
        &mut self,
        engine: &mut Engine,
        rec: &mut dyn Recorder,
        dir: Dir,
        frames: impl Iterator<Item = (&'f [u8], usize)>,
    ) {
        let mut fwd: [&[u8]; BATCH] = [&[]; BATCH];
        let mut nf = 0;
        for (frame, wire_len) in frames {
            self.stats.received[dir as usize] += 1;
            if wire_len > frame.len() {
                self.stats.oversize += 1;
                continue;
            }
            let (now, unix) = self.clock.both();
            rec.frame(unix, dir, frame);
            let verdict = engine.handle_frame(now, dir, frame);
            self.io.engine_ns += self.clock.unix_now().saturating_sub(unix);
            if verdict == Verdict::Forward {
                fwd[nf] = frame;
                nf += 1;
            }
            if nf == BATCH {
                self.send_frames(dir, &fwd[..nf]);
                nf = 0;
            }
            if engine.poll_timeout().is_some_and(|t| t <= now) {
                // Keep the order: what was forwarded before goes out first.
                self.send_frames(dir, &fwd[..nf]);
                nf = 0;
                self.flush(engine, rec);
            }
        }
        self.send_frames(dir, &fwd[..nf]);
    }

    fn flush(&mut self, engine: &mut Engine, rec: &mut dyn Recorder) {
        let now = self.clock.now_ns();
        while let Some(t) = engine.poll_transmit(now) {
            self.send(t.dir, &t.frame);
        }
        while let Some(ev) = engine.poll_event() {
            rec.event(&ev);
        }
        while let Some(ev) = engine.poll_control_event() {
            rec.control(&ev);
        }
    }
}

impl Bridge {
    /// Opens both interfaces (must be called inside the censor host's namespace) with the
    /// default options.
    pub fn open(inside_if: &str, outside_if: &str, t0_unix_ns: u64) -> io::Result<Bridge> {
        Self::open_with(inside_if, outside_if, t0_unix_ns, BridgeOptions::default())
    }

    /// Opens both interfaces with `opts` (the ring, or the `recvmmsg` path).
    pub fn open_with(
        inside_if: &str,
        outside_if: &str,
        t0_unix_ns: u64,
        opts: BridgeOptions,
    ) -> io::Result<Bridge> {
        let open = |name: &str, side: &str| {
            PacketSocket::bind_opts(name, opts.ring(), opts.rcvbuf).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot open the censor's {side} interface {name:?}: {e}"),
                )
            })
        };
        let inside = open(inside_if, "inside")?;
        let outside = open(outside_if, "outside")?;
        Ok(Bridge {
            inside,
            outside,
            clock: Clock { t0_unix_ns, start: Instant::now(), start_unix_ns: unix_ns() },
            stats: BridgeStats::default(),
            io: IoCounters::default(),
            backlog_at_open: sys::backlog_drops(),
        })
    }

    /// Adds what the kernel counted on both packet sockets since the last call (frames
    /// queued, frames dropped before the censor read them, ring freezes) to
    /// [`Bridge::stats`], and the machine-wide backlog drops since the bridge opened. The
    /// loop calls it every half second and when it stops.
    pub fn collect_kernel_stats(&mut self) {
        collect_kernel(&self.inside, &self.outside, &mut self.stats);
        if let (Some(a), Some(b)) = (self.backlog_at_open, sys::backlog_drops()) {
            self.stats.backlog_drops = b.saturating_sub(a);
        }
    }

    /// The receive buffer the kernel granted each socket, in bytes.
    pub fn rcvbuf(&self) -> io::Result<u32> {
        self.inside.rcvbuf()
    }

    /// Which path this bridge reads with.
    pub fn io_mode(&self) -> BridgeIo {
        if self.inside.ring().is_some() {
            BridgeIo::Ring
        } else {
            BridgeIo::Mmsg
        }
    }

    /// Runs until `stop_fd` reaches end of file.
    ///
    /// Each wake-up reads what each interface has (ring: every block handed over; mmsg: up
    /// to [`BATCH`] frames with one `recvmmsg`), runs the engine on each frame in arrival
    /// order, and sends the forwarded ones straight from where they were received with one
    /// `sendmmsg` per batch. Frames the engine releases or injects go out at the point they
    /// became due, after the forwarded frames received before them.
    pub fn run(
        &mut self,
        engine: &mut Engine,
        stop_fd: RawFd,
        rec: &mut dyn Recorder,
    ) -> io::Result<()> {
        self.run_controlled(engine, stop_fd, rec, &mut |_, _| {})
    }

    /// [`Bridge::run`], calling `on_wake(engine, now_ns)` each time `stop_fd` has data (a
    /// control command waits: see [`crate::control_io`]).
    pub fn run_controlled(
        &mut self,
        engine: &mut Engine,
        stop_fd: RawFd,
        rec: &mut dyn Recorder,
        on_wake: &mut dyn FnMut(&mut Engine, u64),
    ) -> io::Result<()> {
        let r = self.run_loop(engine, stop_fd, rec, on_wake);
        self.collect_kernel_stats();
        r
    }

    fn run_loop(
        &mut self,
        engine: &mut Engine,
        stop_fd: RawFd,
        rec: &mut dyn Recorder,
        on_wake: &mut dyn FnMut(&mut Engine, u64),
    ) -> io::Result<()> {
        let ring = self.inside.ring().is_some();
        let mut rx = if ring { Vec::new() } else { vec![0u8; BATCH * SLOT] };
        let mut lens = [0usize; BATCH];
        let fds = [self.inside.as_raw_fd(), self.outside.as_raw_fd(), stop_fd];
        let mut revents = [0i16; 3];
        let Bridge { inside, outside, clock, stats, io, .. } = self;
        let mut x = Io { clock: *clock, inside, outside, stats, io };
        let mut next_stats = x.clock.unix_now() + KERNEL_STATS_EVERY_NS;
        loop {
            let timeout_ms = match engine.poll_timeout() {
                None => 200,
                Some(t) => {
                    let now = x.clock.now_ns();
                    if t <= now {
                        0
                    } else {
                        // Round up so we never spin on a sub-millisecond wait.
                        ((t - now).div_ceil(1_000_000)).min(200) as i32
                    }
                }
            };
            sys::poll(&fds, timeout_ms, &mut revents)?;
            x.io.wakeups += 1;
            let t = x.clock.unix_now();
            if t >= next_stats {
                next_stats = t + KERNEL_STATS_EVERY_NS;
                collect_kernel(x.inside, x.outside, x.stats);
            }
            if revents[2] & (sys::POLLIN | sys::POLLHUP_ERR) != 0 {
                let mut b = [0u8; 64];
                match sys::read_fd(stop_fd, &mut b) {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(_) => on_wake(engine, x.clock.now_ns()),
                }
            }
            for (i, dir) in [(0usize, Dir::Up), (1, Dir::Down)] {
                let sock: &PacketSocket = if i == 0 { inside } else { outside };
                if let Some(r) = sock.ring() {
                    // Every block handed over so far, oldest first (poll's POLLIN only says
                    // the next one is ready).
                    while let Some(block) = r.next_block() {
                        x.io.rx_batches += 1;
                        x.handle(engine, rec, dir, block.frames());
                    }
                    continue;
                }
                if revents[i] & sys::POLLIN == 0 {
                    continue;
                }
                let n = sock.recv_batch(&mut rx, SLOT, &mut lens)?;
                x.io.rx_batches += 1;
                let frames = lens[..n]
                    .iter()
                    .enumerate()
                    .map(|(k, &len)| (&rx[k * SLOT..k * SLOT + len.min(SLOT)], len));
                x.handle(engine, rec, dir, frames);
            }
            x.flush(engine, rec);
        }
    }
}

/// Adds both sockets' kernel counters (since their last read) to `stats`.
fn collect_kernel(inside: &PacketSocket, outside: &PacketSocket, stats: &mut BridgeStats) {
    for (i, sock) in [inside, outside].into_iter().enumerate() {
        match sock.take_kernel_counts() {
            Ok(k) => {
                stats.kernel_frames[i] += k.frames;
                stats.kernel_drops[i] += k.drops;
                stats.ring_freezes += k.freezes;
            }
            Err(e) => tracing::debug!("reading the packet socket's statistics: {e}"),
        }
    }
}

/// Receives every frame the censor saw: (UNIX time in ns, direction, frame).
pub type FrameSink = Box<dyn FnMut(u64, Dir, &[u8]) + Send>;

/// A recorder writing the decision log as JSON lines (and optionally frames to a pcap).
pub struct JsonlRecorder<W: Write> {
    events: W,
    frames: Option<FrameSink>,
    pub write_errors: u64,
}

impl<W: Write> JsonlRecorder<W> {
    pub fn new(events: W) -> Self {
        JsonlRecorder { events, frames: None, write_errors: 0 }
    }
    /// Also hands every frame to `f` (e.g. a pcap writer).
    pub fn with_frames(mut self, f: FrameSink) -> Self {
        self.frames = Some(f);
        self
    }
    pub fn into_inner(self) -> W {
        self.events
    }
}

impl<W: Write> Recorder for JsonlRecorder<W> {
    fn frame(&mut self, t: u64, dir: Dir, frame: &[u8]) {
        if let Some(f) = self.frames.as_mut() {
            f(t, dir, frame);
        }
    }
    fn event(&mut self, ev: &Event) {
        let ok = serde_json::to_writer(&mut self.events, ev).is_ok()
            && self.events.write_all(b"\n").is_ok();
        if !ok {
            self.write_errors += 1;
        }
    }
    fn control(&mut self, ev: &callwall_results::ControlEvent) {
        let line = crate::control_io::log_line(ev);
        let ok = self.events.write_all(line.as_bytes()).is_ok()
            && self.events.write_all(b"\n").is_ok()
            && self.events.flush().is_ok();
        if !ok {
            self.write_errors += 1;
        }
    }
}
