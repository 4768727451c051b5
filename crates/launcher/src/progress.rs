//! Progress on the terminal; the
//! renderers (table, JSON, JUnit, Markdown, HTML) are in `callwall-report`.
//!
//! Why not `indicatif` for [`Progress`] (issue 10, item 7)? Kept ours: it is one redrawn line
//! on a terminal and plain `[n/total] start|done` lines otherwise (CI logs and `| tee` keep a
//! readable record, where indicatif hides its bars when stderr is not a terminal), it lists the
//! scenarios running in parallel, and it is about 70 lines with no dependency. Adopt indicatif
//! if we want several bars at once (per call, per shard) or rate/ETA estimation.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use callwall_results::RunResult;
use callwall_transport::Verdict;

fn verdict_str(v: Verdict) -> &'static str {
    v.as_str()
}

/// Progress on stderr: a redrawn line on a terminal, plain lines otherwise.
pub struct Progress {
    total: usize,
    tty: bool,
    state: Mutex<(usize, Vec<String>)>,
    start: Instant,
}

impl Progress {
    pub fn new(total: usize, tty: bool) -> Progress {
        Progress { total, tty, state: Mutex::new((0, Vec::new())), start: Instant::now() }
    }

    fn draw(&self, st: &(usize, Vec<String>)) {
        if self.tty {
            let width = 30;
            let filled = (st.0 * width).checked_div(self.total).unwrap_or(width).min(width);
            let bar: String = "#".repeat(filled) + &".".repeat(width - filled);
            let running = st.1.join(", ");
            let mut e = std::io::stderr().lock();
            let _ = write!(
                e,
                "\r\x1b[2K[{bar}] {}/{} {:.0}s  running: {}",
                st.0,
                self.total,
                self.start.elapsed().as_secs_f64(),
                running.chars().take(60).collect::<String>()
            );
            let _ = e.flush();
        }
    }

    pub fn start(&self, name: &str) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.1.push(name.to_string());
        if !self.tty {
            eprintln!("[{}/{}] start  {name}", st.0, self.total);
        }
        self.draw(&st);
    }

    pub fn finish(&self, name: &str, r: &RunResult) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.0 += 1;
        if let Some(i) = st.1.iter().position(|n| n == name) {
            st.1.remove(i);
        }
        let summary = match &r.error {
            Some(e) => format!("error: {}", e.message),
            None => r
                .calls
                .iter()
                .map(|c| format!("{}={}", c.name, verdict_str(c.verdict)))
                .collect::<Vec<_>>()
                .join(" "),
        };
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
        eprintln!(
            "[{}/{}] {} {name} ({:.1}s): {summary}",
            st.0,
            self.total,
            if r.passed() { "ok  " } else { "FAIL" },
            r.wall_ms as f64 / 1000.0
        );
        self.draw(&st);
    }

    pub fn done(&self) {
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
