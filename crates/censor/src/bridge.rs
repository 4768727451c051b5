//! The censor's I/O adapter: an L2 bridge between two interfaces through AF_PACKET sockets.
//!
//! Each frame received on the inside interface travels [`Dir::Up`] and, if the engine says
//! so, is sent out of the outside interface (and the reverse for [`Dir::Down`]). Held frames
//! wait in the engine and are sent when due; injected frames go out right away. The loop
//! stops when the stop fd (the censor process's stdin) reaches end of file or errors.
//!
//! The interfaces must have TX checksum offload, TSO and GSO off on both veth ends (the netns
//! crate does that), or the frames re-sent here carry unfinished checksums and are dropped.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::engine::{Dir, Engine, Event, Verdict};
use crate::sys::{self, PacketSocket};

/// Frames read from one socket (one `recvmmsg`) before looking at the other and at the
/// timers.
const BATCH: usize = sys::MAX_BATCH;
/// Receive buffer per frame: a frame longer than this is cut short, counted and dropped.
const SLOT: usize = 65_536;

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
    /// Run time zero (calls start) in UNIX nanoseconds; engine time is relative to it.
    t0_unix_ns: u64,
    start: Instant,
    start_unix_ns: u64,
    pub stats: BridgeStats,
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl Bridge {
    /// Opens both interfaces (must be called inside the censor host's namespace).
    pub fn open(inside_if: &str, outside_if: &str, t0_unix_ns: u64) -> io::Result<Bridge> {
        let inside = PacketSocket::bind(inside_if).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open the censor's inside interface {inside_if:?}: {e}"),
            )
        })?;
        let outside = PacketSocket::bind(outside_if).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open the censor's outside interface {outside_if:?}: {e}"),
            )
        })?;
        Ok(Bridge {
            inside,
            outside,
            t0_unix_ns,
            start: Instant::now(),
            start_unix_ns: unix_ns(),
            stats: BridgeStats::default(),
        })
    }

    /// Engine time: nanoseconds since run time zero, monotonic, 0 before it.
    fn now_ns(&self) -> u64 {
        let mono = self.start.elapsed().as_nanos() as u64 + self.start_unix_ns;
        mono.saturating_sub(self.t0_unix_ns)
    }

    fn unix_now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64 + self.start_unix_ns
    }

    fn socket(&self, dir: Dir) -> &PacketSocket {
        // A frame travelling up leaves through the outside interface.
        match dir {
            Dir::Up => &self.outside,
            Dir::Down => &self.inside,
        }
    }

    fn send(&mut self, dir: Dir, frame: &[u8]) {
        match self.socket(dir).send(frame) {
            Ok(()) => self.stats.sent[dir as usize] += 1,
            Err(e) => {
                self.stats.send_errors += 1;
                tracing::debug!("send {dir:?} failed: {e}");
            }
        }
    }

    /// Engine time and UNIX time of one clock reading.
    fn clock(&self) -> (u64, u64) {
        let unix = self.unix_now();
        (unix.saturating_sub(self.t0_unix_ns), unix)
    }

    /// Sends the frames of `slots` (indexes into `rx`) travelling `dir`, in order, with as
    /// few syscalls as the kernel allows.
    fn send_slots(&mut self, dir: Dir, rx: &[u8], lens: &[usize], slots: &[usize]) {
        if slots.is_empty() {
            return;
        }
        let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
        for (f, &k) in frames.iter_mut().zip(slots) {
            *f = &rx[k * SLOT..k * SLOT + lens[k]];
        }
        let (sent, failed) = self.socket(dir).send_batch(&frames[..slots.len()]);
        self.stats.sent[dir as usize] += sent as u64;
        if failed > 0 {
            self.stats.send_errors += failed as u64;
            tracing::debug!("send {dir:?}: {failed} frame(s) refused");
        }
    }

    /// Runs until `stop_fd` reaches end of file.
    ///
    /// Each wake-up reads up to [`BATCH`] frames per interface with one `recvmmsg`, runs
    /// the engine on each in arrival order, and sends the forwarded ones straight from the
    /// receive buffer with one `sendmmsg`. Frames the engine releases or injects go out
    /// at the point they became due, after the forwarded frames received before them.
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
        let mut rx = vec![0u8; BATCH * SLOT];
        let mut lens = [0usize; BATCH];
        let mut fwd = [0usize; BATCH];
        let fds = [self.inside.as_raw_fd(), self.outside.as_raw_fd(), stop_fd];
        let mut revents = [0i16; 3];
        loop {
            let timeout_ms = match engine.poll_timeout() {
                None => 200,
                Some(t) => {
                    let now = self.now_ns();
                    if t <= now {
                        0
                    } else {
                        // Round up so we never spin on a sub-millisecond wait.
                        ((t - now).div_ceil(1_000_000)).min(200) as i32
                    }
                }
            };
            sys::poll(&fds, timeout_ms, &mut revents)?;
            if revents[2] & (sys::POLLIN | sys::POLLHUP_ERR) != 0 {
                let mut b = [0u8; 64];
                match sys::read_fd(stop_fd, &mut b) {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(_) => on_wake(engine, self.now_ns()),
                }
            }
            for (i, dir) in [(0usize, Dir::Up), (1, Dir::Down)] {
                if revents[i] & sys::POLLIN == 0 {
                    continue;
                }
                let sock = if i == 0 { &self.inside } else { &self.outside };
                let n = sock.recv_batch(&mut rx, SLOT, &mut lens)?;
                let mut nf = 0;
                for k in 0..n {
                    self.stats.received[i] += 1;
                    if lens[k] > SLOT {
                        self.stats.oversize += 1;
                        continue;
                    }
                    let frame = &rx[k * SLOT..k * SLOT + lens[k]];
                    let (now, unix) = self.clock();
                    rec.frame(unix, dir, frame);
                    if engine.handle_frame(now, dir, frame) == Verdict::Forward {
                        fwd[nf] = k;
                        nf += 1;
                    }
                    if engine.poll_timeout().is_some_and(|t| t <= now) {
                        // Keep the order: what was forwarded before goes out first.
                        self.send_slots(dir, &rx, &lens, &fwd[..nf]);
                        nf = 0;
                        self.flush(engine, rec);
                    }
                }
                self.send_slots(dir, &rx, &lens, &fwd[..nf]);
            }
            self.flush(engine, rec);
        }
    }

    fn flush(&mut self, engine: &mut Engine, rec: &mut dyn Recorder) {
        let now = self.now_ns();
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
