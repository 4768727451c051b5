//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use callwall_harness::PlanOptions;
use callwall_scenario::{Catalog, Scenario};

use callwall_offline as offline;

use crate::roles;
use callwall_harness::entry;

/// callwall: when a censor goes after encrypted calls, which voice transports still connect,
/// and how good is the call?
///
/// Each scenario builds a network of Linux namespaces with an inline DPI censor, places real
/// calls over WebRTC, QUIC and Noise transports, and reports per call: connected, degraded,
/// blocked or cut, with quality figures and the censor rule responsible.
///
/// Exit codes: 0 every expectation met, 1 some not met, 2 bad input or environment.
#[derive(Parser, Debug)]
#[command(name = "callwall", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenarios and report each call's verdict (default: every scenario in ./scenarios).
    Run(Box<RunOpts>),
    /// Watch calls being censored, live: switch rules with 1..9, p swaps the policy, r places
    /// the calls again, q quits (one line per call per second when stdout is not a terminal).
    Demo(DemoArgs),
    /// Re-render a saved results file (from `run --json`) as HTML, Markdown or JUnit XML.
    Report(crate::report_cmd::ReportOpts),
    /// Compare two results files call by call; exit 1 when a verdict got worse.
    Diff(crate::report_cmd::DiffOpts),
    /// Join results files (e.g. the shards of `run --shard K/N`) and render every report.
    Merge(crate::merge::MergeOpts),
    /// Validate scenario files without running anything.
    Check {
        /// Scenario files or directories of them (default: every scenario in ./scenarios).
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        dirs: Dirs,
    },
    /// List the scenarios with what they model.
    List {
        #[command(flatten)]
        dirs: Dirs,
    },
    /// List the transports and their strategies.
    Transports,
    /// Classify every flow of a pcap or pcapng capture (labels, SNI, ALPN, fingerprints, STUN).
    Inspect {
        /// The capture file (pcap or pcapng; Ethernet, raw IP, Linux cooked or loopback), or `-`
        /// for standard input. Read as a stream, in bounded memory.
        capture: PathBuf,
        /// One JSON object per flow per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a capture through a scenario's censor policy and report what each rule did.
    Replay {
        /// The scenario whose censor policy (and seed and topology) to use.
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
        /// The capture file (pcap or pcapng).
        capture: PathBuf,
        /// One JSON object per flow per line, then a totals line.
        #[arg(long)]
        json: bool,
        /// Addresses whose packets travel up, as CIDRs (repeatable or comma-separated;
        /// default: the subnets of the censor's inside neighbour on the censored segment).
        #[arg(long, value_name = "CIDR", value_delimiter = ',')]
        inside: Vec<String>,
        /// Directory where topology names resolve.
        #[arg(long, default_value = "netns", value_name = "DIR")]
        topology_dir: PathBuf,
    },
    #[command(name = "__sandbox", hide = true)]
    Sandbox {
        #[arg(long)]
        args: String,
    },
    #[command(name = "__censor", hide = true)]
    Censor {
        #[arg(long)]
        config: String,
    },
    #[command(name = "__signal", hide = true)]
    Signal {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    #[command(name = "__peer", hide = true)]
    Peer,
    #[command(name = "__workload-server", hide = true)]
    WorkloadServer,
    #[command(name = "__workload-client", hide = true)]
    WorkloadClient,
    #[command(name = "__reflector", hide = true)]
    Reflector {
        #[arg(long)]
        listen: std::net::IpAddr,
    },
    /// List the app profiles (apps/*.toml): what each models and does not, with source tags.
    Apps {
        /// Directory of app profiles.
        #[arg(long, default_value = "apps", value_name = "DIR")]
        app_dir: PathBuf,
    },
}

/// `callwall demo`: options.
#[derive(Args, Debug)]
struct DemoArgs {
    /// Scenario files: the first one places the calls (default: scenarios/demo/classroom.toml);
    /// `p` swaps in the censor policy of the next one.
    scenarios: Vec<PathBuf>,
    /// The calls to place instead of the scenario's, as TRANSPORT/STRATEGY (2 to 6, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "CALLS")]
    calls: Vec<String>,
    /// Directory for the run's logs and decision log.
    #[arg(long, value_name = "DIR", default_value = "results/demo")]
    out: PathBuf,
    /// Directory where topology names resolve.
    #[arg(long, default_value = "netns", value_name = "DIR")]
    topology_dir: PathBuf,
    /// Quit after this many seconds (for scripts; default: run until `q`).
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<u64>,
    #[command(flatten)]
    audio: crate::audio_opts::AudioOpts,
}

#[derive(Args, Debug, Clone)]
struct Dirs {
    /// Directory of scenario files.
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    scenario_dir: PathBuf,
    /// Directory where topology names resolve.
    #[arg(long, default_value = "netns", value_name = "DIR")]
    topology_dir: PathBuf,
    /// Directory of app profiles that calls' `app =` name.
    #[arg(long, default_value = "apps", value_name = "DIR")]
    app_dir: PathBuf,
}

#[derive(Args, Debug)]
struct RunOpts {
    /// Scenario files or directories of them (default: every *.toml in the scenario directory).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    dirs: Dirs,
    /// Write the results as JSON (versioned schema, see docs/results-schema.md).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML file (one test case per call).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown table.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Write a self-contained HTML report (verdict matrix, per-call timelines).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Directory for per-run logs, decision logs and captures.
    #[arg(long, value_name = "DIR", default_value = "results")]
    out: PathBuf,
    /// Also write a pcap of every frame the censor saw (per run, in the output directory).
    #[arg(long)]
    pcap: bool,
    /// Override every scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Scenarios run at once (default: twice the number of cores, at most 8).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Only scenarios whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Only calls over this transport (repeatable).
    #[arg(long)]
    transport: Vec<String>,
    /// Run each scenario N times and report whether verdicts agree.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Re-run a scenario whose expectations were missed, up to N more times; calls whose
    /// verdict changed between attempts are marked flaky in every output.
    #[arg(long, default_value_t = 0, value_name = "N")]
    retries: u32,
    /// Run only slice K of N of the run matrix (scenario x repeat); join the shards' JSON
    /// files with `callwall merge`.
    #[arg(long, value_name = "K/N")]
    shard: Option<crate::shard::Shard>,
    /// No colours in the table.
    #[arg(long)]
    no_color: bool,
    /// Send the censor live control commands, one JSON line each, read from FILE as they come
    /// (`-`: standard input): `{"cmd":"disable","rule":1}`, `enable`, `toggle`, `swap` with a
    /// `policy` scenario file, `status`. One run only. The censor's answers and each call's
    /// figures per second are shown as `live ...` lines on stderr. See docs/classroom.md.
    #[arg(long, value_name = "FILE")]
    control: Option<PathBuf>,
    #[command(flatten)]
    audio: crate::audio_opts::AudioOpts,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Sandbox { args } => entry::sandbox(&args),
        Command::Censor { config } => entry::censor(&config),
        Command::Signal { listen } => entry::signal(listen),
        Command::Peer => entry::peer(roles::transports()),
        Command::WorkloadServer => crate::workload::server(),
        Command::WorkloadClient => crate::workload::client(),
        Command::Reflector { listen } => entry::reflector(listen),
        Command::Apps { app_dir } => crate::apps::list(&app_dir),
        Command::Transports => {
            for t in roles::transports() {
                println!("{:8} {}", t.name(), t.strategies().join(", "));
                println!("{:8} auto tries: {}", "", t.auto_order().join(" -> "));
                crate::apps::ice_line(t.ice_summary());
            }
            ExitCode::SUCCESS
        }
        Command::List { dirs } => list(&dirs),
        Command::Check { scenarios, dirs } => check(&scenarios, &dirs),
        Command::Run(opts) => run(*opts),
        Command::Demo(a) => callwall_harness::demo::demo(callwall_harness::demo::DemoOpts {
            scenarios: a.scenarios,
            calls: a.calls,
            out: a.out,
            topology_dir: a.topology_dir,
            seconds: a.seconds,
            transports: roles::transports,
            audio: a.audio.audio,
            record: a.audio.record,
            audio_run: None,
        }),
        Command::Report(opts) => crate::report_cmd::report(opts),
        Command::Diff(opts) => crate::report_cmd::diff(opts),
        Command::Merge(opts) => crate::merge::main(opts),
        Command::Inspect { capture, json } => offline_exit(offline::inspect(&capture, json)),
        Command::Replay { scenario, capture, json, inside, topology_dir } => offline_exit(
            offline::replay(&scenario, &topology_dir, &catalog(), &capture, json, &inside),
        ),
    }
}

/// Offline tools: any error is bad input (exit 2).
fn offline_exit(r: Result<(), offline::OfflineError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn catalog() -> Catalog {
    Catalog { transports: roles::catalog() }
}

fn scenario_files(given: &[PathBuf], dirs: &Dirs) -> Result<Vec<PathBuf>, String> {
    callwall_harness::files::scenario_files(given, &dirs.scenario_dir)
}

fn load_all(files: &[PathBuf], dirs: &Dirs) -> Result<Vec<Scenario>, Vec<String>> {
    callwall_harness::files::load_all(
        files,
        &dirs.topology_dir,
        &dirs.app_dir,
        &catalog(),
        &roles::transports(),
    )
}

fn check(given: &[PathBuf], d: &Dirs) -> ExitCode {
    let cat = catalog();
    callwall_harness::files::check(
        given,
        &d.scenario_dir,
        &d.topology_dir,
        &d.app_dir,
        &cat,
        &roles::transports(),
    )
}

fn list(d: &Dirs) -> ExitCode {
    callwall_harness::files::list(&d.scenario_dir, &d.topology_dir, &catalog())
}

fn run(opts: RunOpts) -> ExitCode {
    match run_checked(opts) {
        Ok(code) => code,
        Err(errs) => {
            for e in errs {
                eprintln!("error: {e}");
            }
            ExitCode::from(2)
        }
    }
}

/// `run`, every input checked before anything starts (bad input changes nothing, exit 2).
fn run_checked(opts: RunOpts) -> Result<ExitCode, Vec<String>> {
    let one = |e: String| vec![e];
    callwall_netns::sandbox::check_environment().map_err(|e| one(e.to_string()))?;
    // The censor reads CALLWALL_CENSOR_BRIDGE inside the sandbox; a bad value stops here.
    callwall_harness::roles::bridge_options_from_env().map_err(|e| one(e.to_string()))?;
    let files = scenario_files(&opts.scenarios, &opts.dirs).map_err(one)?;
    let mut scenarios = load_all(&files, &opts.dirs)?;
    if let Some(f) = &opts.filter {
        scenarios.retain(|s| s.name.contains(f.as_str()));
    }
    if !opts.transport.is_empty() {
        let known = roles::catalog();
        if let Some(t) = opts.transport.iter().find(|t| !known.contains_key(*t)) {
            let names = known.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(one(format!("unknown transport {t:?}; use one of {names}")));
        }
        scenarios.retain(|s| s.calls.iter().any(|c| opts.transport.contains(&c.transport)));
    }
    if scenarios.is_empty() {
        return Err(one("no scenario left to run after --filter/--transport".into()));
    }
    if opts.repeat == 0 || opts.repeat > 100 {
        return Err(one("--repeat takes 1 to 100".into()));
    }
    if opts.retries > 10 {
        return Err(one("--retries takes 0 to 10".into()));
    }
    let mut audio = opts.audio.resolve().map_err(one)?;
    let exe = std::env::current_exe()
        .map_err(|e| one(format!("cannot find the callwall executable: {e}")))?;
    let control = callwall_harness::demo::control_source(
        opts.control.as_deref(),
        scenarios.len(),
        opts.repeat,
    )
    .map_err(one)?;
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| one(format!("cannot create output directory {}: {e}", opts.out.display())))?;
    let out_root = opts.out.canonicalize().unwrap_or_else(|_| opts.out.clone());
    callwall_harness::audio::prepare(&mut audio, &out_root).map_err(one)?;

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
    let named = callwall_harness::suite::plan_runs(
        &scenarios,
        &roles::transports(),
        &base,
        opts.repeat,
        opts.shard.map(|s| (s.index, s.count)),
    );
    let started = Instant::now();
    let runs = callwall_harness::suite::run_plans(
        &named,
        callwall_harness::suite::SuiteOptions {
            exe,
            jobs: opts.jobs,
            repeat: opts.repeat,
            retries: opts.retries,
            out_root: out_root.clone(),
            cancel: cancel.clone(),
            control,
        },
    );
    Ok(callwall_harness::suite::finish(
        runs,
        &callwall_harness::suite::Outputs {
            json: opts.json,
            junit: opts.junit,
            markdown: opts.markdown,
            html: opts.html,
            no_color: opts.no_color,
            repeat: opts.repeat,
            shard: opts.shard.map(|s| (s.index, s.count)),
        },
        started,
        &out_root,
        cancel.load(Ordering::SeqCst),
    ))
}
