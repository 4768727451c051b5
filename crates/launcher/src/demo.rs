//! Live control of a run's censor from the command line (`run --control`); the groundwork of
//! `callwall demo` (issue 14), which sends its keys down the same path.

use std::io::BufRead;
use std::path::Path;

/// The control source `run --control` names: `-` is standard input, anything else a file
/// (or a named pipe) read as lines come. Live control steers one run, so it needs exactly
/// one scenario run once.
pub fn control_source(
    path: Option<&Path>,
    runs: usize,
    repeat: u32,
) -> Result<Option<Box<dyn BufRead + Send>>, CommandError> {
    let Some(path) = path else { return Ok(None) };
    if runs != 1 || repeat != 1 {
        return Err(CommandError::ControlNeedsOneRun { runs, repeat });
    }
    if path == Path::new("-") {
        return Ok(Some(Box::new(std::io::BufReader::new(std::io::stdin()))));
    }
    let f = std::fs::File::open(path)
        .map_err(|source| CommandError::ControlFile { path: path.to_path_buf(), source })?;
    Ok(Some(Box::new(std::io::BufReader::new(f))))
}

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::args::Transports;
use crate::error::CommandError;
use crate::launch::{launch_with, LaunchOptions};
use callwall_censor::control::{Command, Response, RuleRef};
use callwall_demo_ui::{CallSecond, DemoState, LiveVerdict, RuleView, UiCommand, Update};
use callwall_harness::audio::AudioRun;
use callwall_harness::process::sanitize;
use callwall_harness::{PlanOptions, RunPlan};
use callwall_scenario::{Catalog, Scenario};
use callwall_transport::live::LiveSecond;

/// `callwall demo`'s arguments.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Scenario files: the first one places the calls (default: scenarios/demo/classroom.toml);
    /// `p` swaps in the censor policy of the next one.
    pub scenarios: Vec<PathBuf>,
    /// The calls to place instead of the scenario's, as TRANSPORT/STRATEGY (2 to 6, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "CALLS")]
    pub calls: Vec<String>,
    /// Directory for the run's logs and decision log.
    #[arg(long, value_name = "DIR", default_value = "results/demo")]
    pub out: PathBuf,
    /// Directory where topology names resolve.
    #[arg(long, default_value = "netns", value_name = "DIR")]
    pub topology_dir: PathBuf,
    /// Quit after this many seconds (for scripts; default: run until `q`).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<u64>,
    #[command(flatten)]
    pub audio: crate::args::AudioArgs,
}

/// The demo's arguments with what the build and the checks add.
struct DemoOpts {
    scenarios: Vec<PathBuf>,
    calls: Vec<String>,
    out: PathBuf,
    topology_dir: PathBuf,
    seconds: Option<u64>,
    /// Every transport of the build (the binary registers them).
    transports: Transports,
    /// `--audio` and `--record`, checked and prepared before anything starts.
    audio_run: Option<AudioRun>,
}

/// Most calls the view shows.
const MAX_CALLS: usize = 6;
/// How long the demo's calls last (the longest a scenario allows); when they end, the demo
/// places them again, so they run until quit.
const CALL_DURATION: &str = "10min";

/// Writes the scenario the demo runs: the first scenario with its calls (or `--calls`) made
/// to last [`CALL_DURATION`]; returns its path.
fn demo_scenario(first: &Path, calls: &[String], out: &Path) -> Result<PathBuf, CommandError> {
    let text = std::fs::read_to_string(first)
        .map_err(|source| CommandError::ReadFile { path: first.to_path_buf(), source })?;
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|source| CommandError::Toml { path: first.to_path_buf(), source })?;
    if !calls.is_empty() {
        let mut list = Vec::new();
        for c in calls {
            let (t, s) = c.split_once('/').ok_or_else(|| CommandError::CallSyntax(c.clone()))?;
            let mut call = toml::Table::new();
            call.insert("transport".into(), t.into());
            call.insert("strategy".into(), s.into());
            list.push(toml::Value::Table(call));
        }
        table.insert("calls".into(), toml::Value::Array(list));
    }
    let Some(toml::Value::Array(list)) = table.get_mut("calls") else {
        return Err(CommandError::NoCalls { path: first.to_path_buf() });
    };
    for c in list.iter_mut() {
        if let toml::Value::Table(c) = c {
            c.insert("duration".into(), CALL_DURATION.into());
            c.insert(
                "expect".into(),
                toml::Value::Array(
                    ["connected", "degraded", "cut", "blocked"].map(toml::Value::from).to_vec(),
                ),
            );
        }
    }
    let name = first.file_stem().and_then(|s| s.to_str()).unwrap_or("demo");
    let path = out.join(format!("{name}.demo.toml"));
    std::fs::create_dir_all(out)
        .map_err(|source| CommandError::OutputDir { dir: out.to_path_buf(), source })?;
    // A TOML table read from a file always writes back.
    let text = toml::to_string(&table).unwrap_or_default();
    std::fs::write(&path, text)
        .map_err(|source| CommandError::WriteFile { path: path.clone(), source })?;
    Ok(path)
}

/// Per call: its id as the peers name it, and its label on screen.
fn call_ids(sc: &Scenario) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut copy = 0u32;
    for c in &sc.calls {
        for k in 0..c.count {
            copy += 1;
            let name = if c.count > 1 { format!("{}#{}", c.name, k + 1) } else { c.name.clone() };
            let label = format!("{}/{}", c.transport, c.strategies.join(","));
            let label = if c.count > 1 { format!("{label} #{}", k + 1) } else { label };
            out.push((format!("{}-{copy}", sanitize(&name)), label));
        }
    }
    out
}

/// Turns live lines into view updates: the two peers' seconds of a call are joined (the worse
/// of the two directions), control answers become the rule list, marks and messages.
struct LiveFeed {
    ids: BTreeMap<String, usize>,
    /// (call, second) -> the first direction's figures, waiting for the other.
    pending: BTreeMap<(usize, u32), CallSecond>,
    /// Per call: its recent seconds' loss, for the live verdict.
    recent: Vec<Vec<f64>>,
    tx: mpsc::Sender<Update>,
}

impl LiveFeed {
    fn line(&mut self, l: &str) {
        if let Some(j) = l.strip_prefix("second ") {
            if let Ok(s) = serde_json::from_str::<LiveSecond>(j) {
                self.second(&s);
            }
        } else if let Some(j) = l.strip_prefix("control ") {
            if let Ok(r) = serde_json::from_str::<Response>(j) {
                self.control(&r);
            }
        }
    }

    fn second(&mut self, s: &LiveSecond) {
        let Some(&call) = self.ids.get(&s.call) else { return };
        let mine = CallSecond { t_s: s.t, loss_pct: s.loss_pct, delay_ms: s.delay_ms, mos: s.mos };
        let joined = match self.pending.remove(&(call, s.t)) {
            Some(o) => CallSecond {
                t_s: s.t,
                loss_pct: o.loss_pct.max(mine.loss_pct),
                delay_ms: match (o.delay_ms, mine.delay_ms) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                mos: o.mos.min(mine.mos),
            },
            None => {
                self.pending.insert((call, s.t), mine);
                // A direction that stopped reporting does not hold the other back for long.
                let stale: Vec<(usize, u32)> = self
                    .pending
                    .keys()
                    .filter(|&&(c, t)| c == call && t + 2 <= s.t)
                    .copied()
                    .collect();
                for k in stale {
                    if let Some(sec) = self.pending.remove(&k) {
                        self.emit(call, sec);
                    }
                }
                return;
            }
        };
        self.emit(call, joined);
    }

    fn emit(&mut self, call: usize, s: CallSecond) {
        let r = &mut self.recent[call];
        r.push(s.loss_pct);
        if r.len() > 3 {
            r.remove(0);
        }
        let verdict = if r.len() >= 2 && r.iter().rev().take(2).all(|&l| l >= 99.0) {
            LiveVerdict::Cut
        } else if s.loss_pct > 3.0 || s.mos < 3.6 {
            LiveVerdict::Degraded
        } else {
            LiveVerdict::Connected
        };
        let _ = self.tx.send(Update::Second { call, second: s });
        let _ = self.tx.send(Update::Verdict { call, verdict });
    }

    fn control(&mut self, r: &Response) {
        if !r.rules.is_empty() {
            let _ = self.tx.send(Update::Rules(r.rules.iter().map(RuleView::from).collect()));
        }
        if let Some(c) = &r.change {
            let text = match c {
                callwall_censor::control::Change::RuleOn { name, .. } => format!("rule-on {name}"),
                callwall_censor::control::Change::RuleOff { name, .. } => {
                    format!("rule-off {name}")
                }
                callwall_censor::control::Change::PolicySwap { source, .. } => {
                    format!("policy-swap {source}")
                }
            };
            let _ = self.tx.send(Update::Mark { t_s: (r.t_ms / 1000.0).max(0.0) as u32, text });
        }
        if let Some(e) = &r.error {
            let _ = self.tx.send(Update::Message(e.clone()));
        }
    }
}

/// One placing of the calls: the sandbox runs on a thread until its calls end or `cancel`.
struct Session {
    cancel: Arc<AtomicBool>,
    control: Arc<Mutex<UnixStream>>,
    thread: std::thread::JoinHandle<()>,
}

impl Session {
    fn send(&self, cmd: &Command) {
        let line = callwall_censor::control::command_line(cmd);
        let mut w = self.control.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(w, "{line}");
    }

    /// Stops the run: the sandbox is killed, and every process and namespace in it with it.
    fn stop(self) {
        self.cancel.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

fn start(
    sc: &Scenario,
    opts: &DemoOpts,
    tx: &mpsc::Sender<Update>,
) -> Result<Session, CommandError> {
    let exe = std::env::current_exe().map_err(CommandError::Executable)?;
    let (ctl_w, ctl_r) = UnixStream::pair().map_err(CommandError::ControlChannel)?;
    let ids = call_ids(sc);
    let _ = tx.send(Update::Calls(ids.iter().map(|(_, l)| l.clone()).collect()));
    let feed = LiveFeed {
        ids: ids.iter().enumerate().map(|(i, (id, _))| (id.clone(), i)).collect(),
        pending: BTreeMap::new(),
        recent: vec![Vec::new(); ids.len()],
        tx: tx.clone(),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let out_dir = opts.out.canonicalize().unwrap_or_else(|_| opts.out.clone()).join(&sc.name);
    let _ = std::fs::remove_dir_all(&out_dir);
    let _ = std::fs::create_dir_all(&out_dir);
    let mut sc_abs = sc.clone();
    sc_abs.path = sc.path.canonicalize().unwrap_or_else(|_| sc.path.clone());
    let po = PlanOptions {
        topology_dir: opts
            .topology_dir
            .canonicalize()
            .unwrap_or_else(|_| opts.topology_dir.clone()),
        out_dir: Some(out_dir),
        audio: opts.audio_run.clone(),
        ..Default::default()
    };
    let lo = LaunchOptions {
        exe,
        run: RunPlan::new(&sc_abs, &(opts.transports)(), &po),
        cancel: cancel.clone(),
        log_filter: std::env::var("RUST_LOG").ok(),
    };
    let done = tx.clone();
    let labels: Vec<String> = ids.iter().map(|(_, l)| l.clone()).collect();
    let feed = Arc::new(Mutex::new(feed));
    let thread = std::thread::spawn(move || loop {
        let Ok(input) = ctl_r.try_clone() else { break };
        let input: Box<dyn BufRead + Send> = Box::new(std::io::BufReader::new(input));
        let f = feed.clone();
        let on_live = Box::new(move |l: &str| f.lock().unwrap_or_else(|p| p.into_inner()).line(l));
        let r = launch_with(&lo, Some(input), Some(on_live));
        if lo.cancel.load(Ordering::SeqCst) {
            break;
        }
        // The calls ended by themselves: place them again, so they run until quit.
        let msg = match r {
            Ok(_) => "the calls ended and were placed again".to_string(),
            Err(e) => format!("the run failed ({e}); placing the calls again"),
        };
        let _ = done.send(Update::Message(msg));
        let _ = done.send(Update::Calls(labels.clone()));
        std::thread::sleep(Duration::from_secs(1));
    });
    let s = Session { cancel, control: Arc::new(Mutex::new(ctl_w)), thread };
    s.send(&Command::Status);
    Ok(s)
}

/// What a key does to the running calls; `false` ends this placing of the calls.
fn on_command(
    state: &mut DemoState,
    session: &Session,
    cmd: UiCommand,
    restart: &mut bool,
) -> bool {
    match cmd {
        UiCommand::ToggleRule(n) => {
            session.send(&Command::Toggle { rule: RuleRef::Index(n) });
            true
        }
        UiCommand::NextPolicy => {
            if state.policies.len() < 2 {
                state.message = Some("give demo several scenario files to swap policies".into());
            } else {
                state.policy_index = (state.policy_index + 1) % state.policies.len();
                let p = state.policies[state.policy_index].clone();
                state.scenario = p.file_stem().and_then(|s| s.to_str()).unwrap_or("?").into();
                session.send(&Command::Swap { policy: p });
            }
            true
        }
        UiCommand::Restart => {
            *restart = true;
            false
        }
        UiCommand::Quit => false,
    }
}

pub fn demo(args: DemoArgs, transports: Transports) -> ExitCode {
    match demo_inner(args, transports) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn demo_inner(args: DemoArgs, transports: Transports) -> Result<ExitCode, CommandError> {
    use std::io::IsTerminal;
    callwall_netns::sandbox::check_environment()?;
    let mut audio_run = args.audio.resolve()?;
    callwall_harness::audio::prepare(&mut audio_run, &args.out)?;
    let DemoArgs { scenarios, calls, out, topology_dir, seconds, audio: _ } = args;
    let opts = DemoOpts { scenarios, calls, out, topology_dir, seconds, transports, audio_run };
    let files = if opts.scenarios.is_empty() {
        vec![PathBuf::from("scenarios/demo/classroom.toml")]
    } else {
        opts.scenarios.clone()
    };
    let catalog = Catalog { transports: callwall_harness::plan::catalog_of(&(opts.transports)()) };
    let mut policies = Vec::new();
    for f in &files {
        Scenario::load(f, &opts.topology_dir, &catalog)?;
        policies.push(f.canonicalize().unwrap_or_else(|_| f.clone()));
    }
    let path = demo_scenario(&files[0], &opts.calls, &opts.out)?;
    let sc = Scenario::load(&path, &opts.topology_dir, &catalog)?;
    let n: usize = sc.calls.iter().map(|c| c.count as usize).sum();
    if !(1..=MAX_CALLS).contains(&n) {
        return Err(CommandError::DemoCallCount {
            path: files[0].clone(),
            calls: n,
            max: MAX_CALLS,
        });
    }
    let mut state = DemoState::new(sc.name.clone(), policies);
    let quit_signal = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, quit_signal.clone());
    }
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    // Plain mode reads keys as lines on stdin (`1`, `p`, `r`, `q`).
    let (key_tx, key_rx) = mpsc::channel::<UiCommand>();
    if !tty {
        std::thread::spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                let cmd = match line.trim() {
                    "q" => UiCommand::Quit,
                    "p" => UiCommand::NextPolicy,
                    "r" => UiCommand::Restart,
                    k => match k.parse::<usize>() {
                        Ok(n @ 1..=9) => UiCommand::ToggleRule(n),
                        _ => continue,
                    },
                };
                if key_tx.send(cmd).is_err() {
                    break;
                }
            }
        });
    }
    loop {
        let (tx, rx) = mpsc::channel();
        let session = start(&sc, &opts, &tx)?;
        // Status once a second keeps the rules' hit counters fresh.
        let ticker_ctl = session.control.clone();
        let ticking = Arc::new(AtomicBool::new(true));
        let tick_flag = ticking.clone();
        std::thread::spawn(move || {
            while tick_flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(1));
                let mut w = ticker_ctl.lock().unwrap_or_else(|p| p.into_inner());
                if writeln!(w, "{}", callwall_censor::control::command_line(&Command::Status))
                    .is_err()
                {
                    break;
                }
            }
        });
        let mut restart = false;
        let deadline = opts.seconds.map(|s| started + Duration::from_secs(s));
        let over =
            || quit_signal.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d);
        let clock = Instant::now();
        if tty {
            // The updates channel also carries the clock, so the view's time moves.
            let ctx = tx.clone();
            let stop_clock = Arc::new(AtomicBool::new(false));
            let stop = stop_clock.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let _ = ctx.send(Update::Clock { t_s: clock.elapsed().as_secs_f64() });
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
            let r = callwall_demo_ui::terminal::run(&mut state, &rx, |st, cmd| {
                !over() && on_command(st, &session, cmd, &mut restart)
            });
            stop_clock.store(true, Ordering::SeqCst);
            r.map_err(CommandError::Terminal)?;
        } else {
            let mut last: Option<u32> = None;
            let mut marks = 0usize;
            loop {
                if over() {
                    break;
                }
                while let Ok(u) = rx.try_recv() {
                    state.apply(u);
                }
                let (lines, newest) = callwall_demo_ui::plain::new_lines(&state, last);
                last = newest;
                let mut out = std::io::stdout().lock();
                for (t, text) in state.marks.iter().skip(marks) {
                    let _ = writeln!(out, "{}", callwall_demo_ui::plain::mark_line(*t, text));
                }
                marks = state.marks.len();
                for l in lines {
                    let _ = writeln!(out, "{l}");
                }
                if let Some(m) = state.message.take() {
                    let _ = writeln!(out, "message {m}");
                }
                let _ = out.flush();
                drop(out);
                match key_rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(cmd) => {
                        if !on_command(&mut state, &session, cmd, &mut restart) {
                            break;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {}
                }
            }
        }
        ticking.store(false, Ordering::SeqCst);
        session.stop();
        if !restart || over() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
