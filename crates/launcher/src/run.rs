//! `callwall run`: every input checked before anything starts (bad input changes nothing,
//! exit 2), the run matrix planned once, the sandboxes run ([`crate::suite`]), the reports
//! written through the one output path ([`crate::output`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use callwall_harness::PlanOptions;

use crate::args::{AudioArgs, Dirs, Transports};
use crate::error::CommandError;
use crate::output::OutputArgs;
use crate::shard::Shard;

/// `callwall run`'s arguments.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scenario files or directories of them (default: every *.toml in the scenario directory).
    pub scenarios: Vec<PathBuf>,
    #[command(flatten)]
    pub dirs: Dirs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Directory for per-run logs, decision logs and captures.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Also write a pcap of every frame the censor saw (per run, in the output directory).
    #[arg(long)]
    pub pcap: bool,
    /// Override every scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scenarios run at once (default: twice the number of cores, at most 8).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Only scenarios whose name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Only calls over this transport (repeatable).
    #[arg(long)]
    pub transport: Vec<String>,
    /// Run each scenario N times and report whether verdicts agree.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Re-run a scenario whose expectations were missed, up to N more times; calls whose
    /// verdict changed between attempts are marked flaky in every output.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,
    /// Run only slice K of N of the run matrix (scenario x repeat); join the shards' JSON
    /// files with `callwall merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Send the censor live control commands, one JSON line each, read from FILE as they come
    /// (`-`: standard input): `{"cmd":"disable","rule":1}`, `enable`, `toggle`, `swap` with a
    /// `policy` scenario file, `status`. One run only. The censor's answers and each call's
    /// figures per second are shown as `live ...` lines on stderr. See docs/classroom.md.
    #[arg(long, value_name = "FILE")]
    pub control: Option<PathBuf>,
    #[command(flatten)]
    pub audio: AudioArgs,
}

/// `callwall run`: exit 2 with every error when an input is bad, otherwise as
/// [`crate::output::Judge::Expectations`].
pub fn run(args: RunArgs, transports: Transports) -> ExitCode {
    match run_checked(args, transports) {
        Ok(code) => code,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            ExitCode::from(2)
        }
    }
}

fn run_checked(opts: RunArgs, transports: Transports) -> Result<ExitCode, Vec<CommandError>> {
    let one = |e: CommandError| vec![e];
    let privilege = callwall_netns::sandbox::check_environment().map_err(|e| one(e.into()))?;
    crate::preflight::capabilities(privilege).map_err(one)?;
    // Every report file can be written: found now, not after the whole run.
    crate::preflight::output_paths(
        crate::output::Format::ALL
            .into_iter()
            .filter_map(|f| opts.output.path(f).map(|p| (f.flag(), p))),
        &opts.out,
    )?;
    // The censor reads CALLWALL_CENSOR_BRIDGE inside the sandbox; a bad value stops here.
    callwall_harness::roles::bridge_options_from_env().map_err(|e| one(e.into()))?;
    let files =
        crate::files::scenario_files(&opts.scenarios, &opts.dirs.scenario_dir).map_err(one)?;
    let mut scenarios = crate::files::load_all(&files, &opts.dirs, transports)?;
    if let Some(f) = &opts.filter {
        scenarios.retain(|s| s.name.contains(f.as_str()));
    }
    if !opts.transport.is_empty() {
        let known = crate::files::catalog(transports).transports;
        if let Some(t) = opts.transport.iter().find(|t| !known.contains_key(*t)) {
            let known = known.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(one(CommandError::UnknownTransport { name: t.clone(), known }));
        }
        scenarios.retain(|s| s.calls.iter().any(|c| opts.transport.contains(&c.transport)));
    }
    if scenarios.is_empty() {
        return Err(one(CommandError::NothingToRun));
    }
    if opts.repeat == 0 || opts.repeat > 100 {
        return Err(one(CommandError::Repeat));
    }
    if opts.retries > 10 {
        return Err(one(CommandError::Retries));
    }
    let mut audio = opts.audio.resolve().map_err(|e| one(e.into()))?;
    let exe = std::env::current_exe().map_err(|e| one(CommandError::Executable(e)))?;
    let control =
        crate::demo::control_source(opts.control.as_deref(), scenarios.len(), opts.repeat)
            .map_err(one)?;
    std::fs::create_dir_all(&opts.out)
        .map_err(|source| one(CommandError::OutputDir { dir: opts.out.clone(), source }))?;
    let out_root = opts.out.canonicalize().unwrap_or_else(|_| opts.out.clone());
    callwall_harness::audio::prepare(&mut audio, &out_root).map_err(|e| one(e.into()))?;

    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, cancel.clone());
    }

    // The work list: scenario x repeat, each run planned once here.
    let topology_dir =
        opts.dirs.topology_dir.canonicalize().unwrap_or_else(|_| opts.dirs.topology_dir.clone());
    let base = PlanOptions {
        seed: opts.seed,
        repeat: 0,
        transports: opts.transport.clone(),
        topology_dir,
        out_dir: None,
        pcap: opts.pcap,
        audio,
    };
    let shard = opts.shard.map(|s| (s.index, s.count));
    let fingerprint = fingerprint(&opts, &scenarios, &base);
    let named = crate::suite::plan_runs(&scenarios, &transports(), &base, opts.repeat, shard);
    let started = Instant::now();
    let runs = crate::suite::run_plans(
        &named,
        crate::suite::SuiteOptions {
            exe,
            jobs: opts.jobs,
            repeat: opts.repeat,
            retries: opts.retries,
            out_root: out_root.clone(),
            cancel: cancel.clone(),
            control,
        },
    );
    Ok(crate::suite::finish(
        runs,
        &opts.output,
        crate::suite::Finish {
            repeat: opts.repeat,
            shard,
            started,
            out_root: &out_root,
            interrupted: cancel.load(Ordering::SeqCst),
            fingerprint,
        },
    ))
}

/// What this run measures (see [`callwall_results::Fingerprint`]): the build, the options that
/// change results, each scenario's name and file hash, the shard count.
fn fingerprint(
    opts: &RunArgs,
    scenarios: &[callwall_scenario::Scenario],
    base: &PlanOptions,
) -> callwall_results::Fingerprint {
    use sha2::Digest as _;
    let mut prints: Vec<callwall_results::ScenarioPrint> = scenarios
        .iter()
        .map(|s| {
            // The file was read and validated a moment ago; an unreadable one hashes as empty.
            let bytes = std::fs::read(&s.path).unwrap_or_default();
            let hash = sha2::Sha256::digest(&bytes);
            callwall_results::ScenarioPrint {
                name: s.name.clone(),
                sha256: hash.iter().map(|b| format!("{b:02x}")).collect(),
            }
        })
        .collect();
    prints.sort();
    let mut transports = opts.transport.clone();
    transports.sort();
    transports.dedup();
    callwall_results::Fingerprint {
        commit: crate::COMMIT.to_string(),
        options: callwall_results::RunOptions {
            seed: opts.seed,
            repeat: opts.repeat,
            retries: opts.retries,
            transports,
            filter: opts.filter.clone(),
            audio: base.audio.as_ref().map(|a| {
                a.clip.as_ref().map_or("bundled".to_string(), |c| c.display().to_string())
            }),
            pcap: opts.pcap,
        },
        scenarios: prints,
        shards: opts.shard.map_or(1, |s| s.count),
    }
}
