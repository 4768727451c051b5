//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
/// Exit codes: 0 every expectation met (a pass on a retry is 0, marked flaky), 1 some not met
/// or the run was interrupted, 2 bad input or environment (found before anything starts).
#[derive(Parser, Debug)]
#[command(name = "callwall", version = callwall_launcher::VERSION, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenarios and report each call's verdict (default: every scenario in ./scenarios).
    Run(Box<callwall_launcher::RunArgs>),
    /// Watch calls being censored, live: switch rules with 1..9, p swaps the policy, r places
    /// the calls again, q quits (one line per call per second when stdout is not a terminal).
    Demo(callwall_launcher::DemoArgs),
    /// Re-render a saved results file (from `run --json`) as HTML, Markdown or JUnit XML.
    Report(callwall_launcher::ReportArgs),
    /// Compare two results files call by call; exit 1 when a verdict got worse.
    Diff(callwall_launcher::DiffArgs),
    /// Join results files (e.g. the shards of `run --shard K/N`) and render every report.
    Merge(callwall_launcher::MergeArgs),
    /// Validate scenario files without running anything.
    Check {
        /// Scenario files or directories of them (default: every scenario in ./scenarios).
        scenarios: Vec<PathBuf>,
        #[command(flatten)]
        dirs: callwall_launcher::Dirs,
    },
    /// List the scenarios with what they model.
    List {
        #[command(flatten)]
        dirs: callwall_launcher::Dirs,
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
        Command::Apps { app_dir } => callwall_launcher::listing::apps(&app_dir),
        Command::Transports => callwall_launcher::listing::transports(roles::transports),
        Command::List { dirs } => callwall_launcher::files::list(&dirs, roles::transports),
        Command::Check { scenarios, dirs } => {
            callwall_launcher::files::check(&scenarios, &dirs, roles::transports)
        }
        Command::Run(args) => callwall_launcher::run::run(*args, roles::transports),
        Command::Demo(args) => callwall_launcher::demo::demo(args, roles::transports),
        Command::Report(args) => callwall_launcher::report::report(args),
        Command::Diff(args) => callwall_launcher::report::diff(args),
        Command::Merge(args) => callwall_launcher::merge::merge_files(args),
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

fn catalog() -> callwall_scenario::Catalog {
    callwall_launcher::files::catalog(roles::transports)
}
