//! Runs a list of [`RunPlan`]s, several sandboxes at once: the launcher's loop behind
//! `callwall run` (moved here from the binary, issue 10). Each run gets its own output
//! directory; `--retries` re-runs a run that missed (each attempt in its own directory) and
//! folds the attempts ([`callwall_results::flaky::fold_attempts`]); `--control` steers the first
//! attempt of the one run. A run that could not be launched is recorded with the plan's seed
//! ([`RunPlan::failed`]).

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use callwall_harness::RunPlan;
use callwall_results::{machine, Results, RunResult, SCHEMA_VERSION};

use crate::launch::{launch_with, LaunchOptions};
use crate::output::{Judge, OutputArgs};
use crate::progress::Progress;

/// How to run a list of plans.
pub struct SuiteOptions {
    /// The callwall binary (its `__sandbox` subcommand runs each plan).
    pub exe: PathBuf,
    /// Runs at once (default: twice the number of cores, 2 to 8).
    pub jobs: Option<usize>,
    /// `--repeat`: more than 1 names each run's directory `NAME.K`.
    pub repeat: u32,
    /// `--retries`: attempts after a missed one.
    pub retries: u32,
    /// Where each run's directory is created.
    pub out_root: PathBuf,
    /// Set to stop (Ctrl-C): running sandboxes are killed, no new run starts.
    pub cancel: Arc<AtomicBool>,
    /// Live control lines for the first attempt of the (single) run.
    pub control: Option<Box<dyn BufRead + Send>>,
}

/// Runs `jobs` (scenario name, repeat index, plan), repeat by repeat, and returns their results
/// in job order (runs not started because of `cancel` are missing).
pub fn run_plans(jobs: &[(String, u32, RunPlan)], opts: SuiteOptions) -> Vec<RunResult> {
    let SuiteOptions { exe, jobs: n_jobs_opt, repeat, retries, out_root, cancel, control } = opts;
    let control = Mutex::new(control);
    let cancel = &cancel;
    let total = jobs.len();
    // Runs mostly wait on call timers (a whole run uses about a third of a core), so the
    // default is twice the core count, capped so call timing stays unaffected.
    let n_jobs = n_jobs_opt
        .unwrap_or_else(|| {
            (2 * std::thread::available_parallelism().map_or(2, |n| n.get())).clamp(2, 8)
        })
        .clamp(1, 32);
    let progress = Progress::new(total, std::io::stderr().is_terminal());
    // Repeats run round by round: every scenario's first repeat, then every second one, and so
    // on. Each repeat then runs beside other scenarios, as in a single run; in job order, the
    // ten repeats of a 30-call load test would run four at a time beside each other and measure
    // the machine's overload, not the scenario.
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by_key(|&k| (jobs[k].1, k));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, RunResult)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..n_jobs.min(total) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total || cancel.load(Ordering::SeqCst) {
                    break;
                }
                let k = order[i];
                let (ref name, rep, ref plan) = jobs[k];
                progress.start(name);
                let dir_name =
                    if repeat > 1 { format!("{}.{}", name, rep + 1) } else { name.clone() };
                let out_dir = out_root.join(&dir_name);
                let _ = std::fs::remove_dir_all(&out_dir);
                let _ = std::fs::create_dir_all(&out_dir);
                let lo = LaunchOptions {
                    exe: exe.clone(),
                    run: RunPlan { out_dir: Some(out_dir.clone()), ..plan.clone() },
                    cancel: cancel.clone(),
                    log_filter: std::env::var("RUST_LOG").ok(),
                };
                // Live control (`--control`) steers the first attempt only.
                let mut ctl = control.lock().unwrap_or_else(|p| p.into_inner()).take();
                let mut attempt = |lo: &LaunchOptions| {
                    let ctl = ctl.take();
                    // A steered run shows the censor's answers and the calls' seconds as they
                    // come.
                    let live: Option<crate::launch::OnLive> = ctl.is_some().then(|| {
                        Box::new(|l: &str| eprintln!("live {l}")) as crate::launch::OnLive
                    });
                    match launch_with(lo, ctl, live) {
                        Ok(r) => Some(r),
                        Err(_) if cancel.load(Ordering::SeqCst) => None,
                        Err(e) => Some(lo.run.failed(e.to_run_error())),
                    }
                };
                let Some(mut r) = attempt(&lo) else { break };
                // Each later attempt in its own directory, `<run>.<suffix>`.
                let again_in = |suffix: String| {
                    let dir = out_root.join(format!("{dir_name}.{suffix}"));
                    let _ = std::fs::remove_dir_all(&dir);
                    let _ = std::fs::create_dir_all(&dir);
                    LaunchOptions {
                        exe: lo.exe.clone(),
                        run: RunPlan { out_dir: Some(dir), ..lo.run.clone() },
                        cancel: lo.cancel.clone(),
                        log_filter: lo.log_filter.clone(),
                    }
                };
                let mut earlier = Vec::new();
                // A miss the machine may have caused (a stalled process, kernel drops) is
                // re-placed once, whatever `--retries` says (callwall_results::machine).
                let mut replaced = false;
                if machine::suspect(&r) && !cancel.load(Ordering::SeqCst) {
                    let Some(next) = attempt(&again_in("replaced".into())) else { break };
                    earlier.push(std::mem::replace(&mut r, next));
                    replaced = true;
                }
                // --retries: re-run a run that missed.
                while !r.passed()
                    && earlier.len() < retries as usize + usize::from(replaced)
                    && !cancel.load(Ordering::SeqCst)
                    && r.error.as_ref().is_none_or(|e| e.kind.exit_code() != 2)
                {
                    let n = earlier.len() + 1 - usize::from(replaced);
                    let Some(next) = attempt(&again_in(format!("retry{n}"))) else { break };
                    earlier.push(std::mem::replace(&mut r, next));
                }
                let mut r = callwall_results::flaky::fold_attempts(&earlier, r);
                if replaced {
                    machine::settle(&mut r);
                }
                progress.finish(name, &r);
                results.lock().unwrap_or_else(|p| p.into_inner()).push((k, r));
            });
        }
    });
    progress.done();
    let mut runs = results.into_inner().unwrap_or_else(|p| p.into_inner());
    // Runs stopped or never started because of an interruption are there too, as `interrupted`
    // run errors: every output lists them and none reads as a pass.
    for (k, (_, _, plan)) in jobs.iter().enumerate() {
        if !runs.iter().any(|(i, _)| *i == k) {
            let e = callwall_results::RunError::new(
                callwall_results::RunErrorKind::Interrupted,
                "interrupted (SIGINT or SIGTERM) before this run finished",
            );
            runs.push((k, plan.failed(e)));
        }
    }
    runs.sort_by_key(|(k, _)| *k);
    runs.into_iter().map(|(_, r)| r).collect()
}

/// The run matrix, planned: every scenario × `repeat` as (scenario name, repeat index, plan),
/// each plan built once from `base` (its `repeat` set per run); with `shard` (K, N), only the
/// runs of slice K of N ([`crate::shard::assign`], estimated by the longest call's budget).
pub fn plan_runs(
    scenarios: &[callwall_scenario::Scenario],
    transports: &[Box<dyn callwall_transport::VoiceTransport>],
    base: &callwall_harness::PlanOptions,
    repeat: u32,
    shard: Option<(u32, u32)>,
) -> Vec<(String, u32, RunPlan)> {
    let mut jobs: Vec<(usize, u32, RunPlan)> = (0..scenarios.len())
        .flat_map(|i| (0..repeat).map(move |r| (i, r)))
        .map(|(i, rep)| {
            let po = callwall_harness::PlanOptions { repeat: rep, ..base.clone() };
            (i, rep, RunPlan::new(&scenarios[i], transports, &po))
        })
        .collect();
    if let Some((index, count)) = shard {
        let est: Vec<(&str, u32, std::time::Duration)> = jobs
            .iter()
            .map(|(i, r, plan)| (scenarios[*i].name.as_str(), *r, plan.longest_call()))
            .collect();
        let of = crate::shard::assign(&est, count);
        let n = est.len();
        jobs = jobs.into_iter().zip(of).filter(|(_, k)| *k + 1 == index).map(|(j, _)| j).collect();
        eprintln!("shard {index}/{count}: {} of the matrix's {} run(s)", jobs.len(), n);
    }
    jobs.into_iter().map(|(i, rep, plan)| (scenarios[i].name.clone(), rep, plan)).collect()
}

/// What [`finish`] needs besides the runs.
pub struct Finish<'a> {
    pub repeat: u32,
    pub shard: Option<(u32, u32)>,
    pub started: std::time::Instant,
    pub out_root: &'a Path,
    /// A signal stopped the run before every planned run finished.
    pub interrupted: bool,
    pub fingerprint: callwall_results::Fingerprint,
}

/// The end of `callwall run`: the results document from `runs`, the table (and the agreement
/// over repeats) on stdout, every requested file, the summary line; the exit code as
/// [`Judge::Expectations`] says.
pub fn finish(runs: Vec<RunResult>, output: &OutputArgs, f: Finish<'_>) -> std::process::ExitCode {
    let Finish { repeat, shard, started, out_root, interrupted, fingerprint } = f;
    let doc = Results {
        schema_version: SCHEMA_VERSION,
        callwall_version: crate::VERSION.to_string(),
        runs,
        shard: shard.map(|(index, count)| callwall_results::ShardInfo { index, count }),
        fingerprint: Some(fingerprint),
        interrupted,
    };
    print!("{}", callwall_report::table(&doc, output.color()));
    if repeat > 1 {
        print!("{}", callwall_report::agreement(&doc));
    }
    let written = output.write_files(&doc);
    let judge = Judge::Expectations { interrupted };
    eprintln!(
        "{} run(s) in {:.1}s; output in {}; {}",
        doc.runs.len(),
        started.elapsed().as_secs_f64(),
        out_root.display(),
        crate::output::verdict_line(&doc, written, judge)
    );
    crate::output::exit_code(&doc, written, judge)
}
