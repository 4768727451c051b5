//! The watch thread that records when this process was not scheduled (see
//! [`callwall_results::machine`] for what the stalls mean and how they are judged).
//!
//! A plain OS thread, not a task on the process's async runtime: a runtime kept busy by its
//! own work is the program's doing, a thread that cannot run on time is the machine's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callwall_results::machine::{keep_longest, Stall, TICK_MS};

/// Records stalls from [`StallWatch::start`] until [`StallWatch::stop`].
pub struct StallWatch {
    stop: Arc<AtomicBool>,
    stalls: Arc<Mutex<Vec<Stall>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl StallWatch {
    /// Starts the watch thread (if the thread cannot be started, nothing is recorded).
    pub fn start() -> StallWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let stalls = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), stalls.clone());
        let thread = std::thread::Builder::new()
            .name("stall-watch".into())
            .spawn(move || {
                let tick = Duration::from_millis(TICK_MS);
                while !s.load(Ordering::Relaxed) {
                    let before = Instant::now();
                    let due = unix_ms() + TICK_MS;
                    std::thread::sleep(tick);
                    let slept = before.elapsed().as_millis() as u64;
                    if let Some(st) = Stall::of_sleep(due, TICK_MS, slept) {
                        let mut v = v.lock().unwrap_or_else(|p| p.into_inner());
                        v.push(st);
                        if v.len() > 2 * callwall_results::machine::MAX_STALLS {
                            keep_longest(&mut v);
                        }
                    }
                }
            })
            .ok();
        StallWatch { stop, stalls, thread }
    }

    /// The stalls recorded so far, in time order; the watch goes on.
    pub fn snapshot(&self) -> Vec<Stall> {
        let mut v = self.stalls.lock().unwrap_or_else(|p| p.into_inner()).clone();
        keep_longest(&mut v);
        v
    }

    /// Stops the thread and returns every stall it recorded, in time order.
    pub fn stop(mut self) -> Vec<Stall> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.snapshot()
    }
}

impl Drop for StallWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process stopped by SIGSTOP for 400 ms is not scheduled for that long: its watch
    /// records a stall of at least 400 - TICK_MS ms (a lower bound the stop guarantees; the
    /// upper side is the machine's and not asserted). The watched process is a forked child so
    /// that the test's own process keeps running.
    #[test]
    fn a_stopped_process_records_the_stop_as_a_stall() {
        let mut fds = [0i32; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // Child: watch for 1.5 s, then write the longest stall to the pipe and exit.
            let w = StallWatch::start();
            std::thread::sleep(Duration::from_millis(1500));
            let longest = w.stop().iter().map(|s| s.ms).max().unwrap_or(0);
            let b = longest.to_le_bytes();
            unsafe {
                libc::write(fds[1], b.as_ptr().cast(), 8);
                libc::_exit(0);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(400));
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let mut b = [0u8; 8];
        let n = unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 8) };
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(n, 8, "the child reported its stalls");
        let longest = u64::from_le_bytes(b);
        assert!(longest >= 400 - TICK_MS, "a 400 ms stop recorded as {longest} ms");
    }
}
