//! The programs a run starts inside host namespaces: the censor and the signal server.
//! (The peers live in the binary, which knows every transport.)
//!
//! Each prints `ready` on stdout once it is serving, runs until its stdin reaches end of file
//! (the harness closes it to stop them), and then prints its report as one JSON line.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use callwall_censor::bridge::{Bridge, BridgeOptions, BridgeStats, IoCounters, JsonlRecorder};
use callwall_censor::policy::{raw, Policy};
use callwall_censor::{CensorReport, Engine};
use serde::{Deserialize, Serialize};

use crate::HarnessError;

/// What the censor process needs (passed as JSON on its command line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CensorConfig {
    pub inside_if: String,
    pub outside_if: String,
    pub t0_unix_ns: u64,
    pub seed: u64,
    pub policy: raw::Policy,
    /// Host names of the topology and their addresses, for rules that name hosts.
    pub hosts: BTreeMap<String, Vec<callwall_censor::policy::Cidr>>,
    /// Where to write the decision log (JSON lines).
    pub decisions: Option<PathBuf>,
    /// Where to write a pcap of every frame the censor received.
    pub pcap: Option<PathBuf>,
    /// How the bridge reads frames (`recvmmsg` by default, or the TPACKET_V3 ring).
    #[serde(default)]
    pub bridge: BridgeOptions,
    /// Inside addresses whose packets are binned per call (external calls' callers).
    #[serde(default)]
    pub watch: Vec<std::net::IpAddr>,
}

/// The variable that sets the censor bridge's options for a run (measurements, e.g.
/// `CALLWALL_CENSOR_BRIDGE='{"io":"ring"}'` or `'{"rcvbuf":8388608}'`): a JSON
/// [`BridgeOptions`], unset keys at their defaults.
pub const BRIDGE_ENV: &str = "CALLWALL_CENSOR_BRIDGE";

/// The bridge options from [`BRIDGE_ENV`], or the defaults when it is unset.
pub fn bridge_options_from_env() -> Result<BridgeOptions, HarnessError> {
    match std::env::var(BRIDGE_ENV) {
        Err(_) => Ok(BridgeOptions::default()),
        Ok(v) => serde_json::from_str(&v).map_err(|e| {
            HarnessError::Setup(format!(
                "{BRIDGE_ENV}: {e}; give a JSON object with keys io, rcvbuf, block_size, \
                 block_nr, block_timeout_ms, or unset it"
            ))
        }),
    }
}

/// The censor's final output line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CensorOutput {
    pub report: CensorReport,
    pub bridge: BridgeStats,
    /// Where the bridge's wake-ups, syscalls and engine time went.
    #[serde(default)]
    pub io: IoCounters,
    /// Per-call bins of the watched addresses (`CensorConfig::watch`).
    #[serde(default)]
    pub call_bins: Vec<callwall_censor::engine::PairBins>,
    /// When the censor process was not scheduled (see [`callwall_results::machine`]).
    #[serde(default)]
    pub stalls: Vec<callwall_results::machine::Stall>,
}

impl CensorConfig {
    /// The compiled policy: the raw policy the launcher validated, compiled with the topology's
    /// host map by the same function ([`callwall_scenario::compile_policy`]), so it equals the
    /// scenario's `policy` (tested in `roles::tests`).
    pub fn compiled_policy(&self) -> Result<Policy, HarnessError> {
        callwall_scenario::compile_policy(&self.policy, &self.hosts)
            .map_err(|e| HarnessError::Setup(format!("censor policy: {e}")))
    }
}

/// Runs the censor bridge until stdin closes. Must run inside the censor host's namespace.
pub fn censor_main(cfg: CensorConfig) -> Result<(), HarnessError> {
    let watch = crate::stall::StallWatch::start();
    let policy = cfg.compiled_policy()?;
    let mut engine = Engine::new(policy, cfg.seed);
    engine.watch_calls(cfg.watch.iter().copied());
    let mut bridge = Bridge::open_with(&cfg.inside_if, &cfg.outside_if, cfg.t0_unix_ns, cfg.bridge)
        .map_err(|e| HarnessError::Setup(e.to_string()))?;
    let events: Box<dyn Write> = match &cfg.decisions {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p)
                .map_err(|e| HarnessError::io("creating the decision log", e))?,
        )),
        None => Box::new(std::io::sink()),
    };
    let mut rec = JsonlRecorder::new(events);
    if let Some(p) = &cfg.pcap {
        let file = std::fs::File::create(p)
            .map_err(|e| HarnessError::io("creating the censor pcap", e))?;
        let mut w = callwall_wire::pcap::PcapWriter::new(BufWriter::new(file))
            .map_err(|e| HarnessError::io("writing the pcap header", e))?;
        rec = rec.with_frames(Box::new(move |t, _dir, frame| {
            let _ = w.write_frame(t, frame);
        }));
    }
    // Control commands come on stdin; its end is the stop signal (see `crate::control`).
    let control =
        callwall_censor::control_io::ControlInput::spawn(std::io::BufReader::new(std::io::stdin()))
            .map_err(|e| HarnessError::io("starting the censor's control input", e))?;
    println!("ready");
    std::io::stdout().flush().ok();
    let mut on_wake = |engine: &mut Engine, now: u64| {
        crate::control::apply(engine, now, control.drain(), &cfg.hosts)
    };
    bridge
        .run_controlled(&mut engine, control.wake_fd(), &mut rec, &mut on_wake)
        .map_err(|e| HarnessError::io("running the censor bridge", e))?;
    let mut events = rec.into_inner();
    events.flush().ok();
    drop(events);
    let out = CensorOutput {
        report: engine.report(),
        bridge: bridge.stats.clone(),
        io: bridge.io.clone(),
        call_bins: engine.call_bins(),
        stalls: watch.stop(),
    };
    let line = serde_json::to_string(&out).map_err(|e| HarnessError::Setup(e.to_string()))?;
    println!("{line}");
    Ok(())
}

/// Runs the signal server on `listen` until stdin closes.
pub fn signal_main(listen: SocketAddr) -> Result<(), HarnessError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HarnessError::io("starting a runtime", e))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| HarnessError::io("binding the signal server", e))?;
        println!("ready");
        std::io::stdout().flush().ok();
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        let stop = async {
            use tokio::io::AsyncReadExt;
            while let Ok(n) = stdin.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        tokio::select! {
            r = callwall_transport::signal::serve(listener) => r.map_err(|e| HarnessError::io("serving signalling", e)),
            _ = stop => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The censor process compiles the raw policy it is handed (after the JSON hop of
    /// `__censor --config`) into exactly the policy the launcher compiled when it validated the
    /// scenario: one function, the same raw policy, the same host map.
    #[test]
    fn the_censor_compiles_the_policy_the_launcher_validated() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cat = callwall_scenario::Catalog {
            transports: [("noise".to_string(), vec!["udp".to_string()])].into_iter().collect(),
        };
        let text = "name = \"compiled-once\"\ntopology = \"censored-call\"\nseed = 9\n\
             [censor]\ndefault = \"pass\"\nflow_timeout = \"30s\"\n\
             [[censor.rules]]\nname = \"to-callee\"\n\
             match = { server = [\"callee\"], proto = \"udp\", server_port = \"1000-2000\", label = [\"stun\"] }\n\
             action = { loss = \"5%\", delay = \"20ms\", jitter = \"3ms\" }\n\
             [[censor.rules]]\nname = \"bursty\"\n\
             action = { burst_loss = { p = \"3%\", r = \"30%\" } }\n\
             [[calls]]\ntransport = \"noise\"\nstrategy = \"udp\"\nexpect = \"connected\"\n";
        let sc = callwall_scenario::Scenario::from_str(
            text,
            &root.join("scenarios/compiled-once.toml"),
            &root.join("netns"),
            &cat,
        )
        .expect("the test scenario is valid");
        assert_eq!(sc.policy.rules.len(), 2);
        let cfg = CensorConfig {
            inside_if: "in".into(),
            outside_if: "out".into(),
            t0_unix_ns: 0,
            seed: sc.seed,
            policy: sc.censor.clone(),
            hosts: callwall_scenario::host_map(&sc.topology),
            decisions: None,
            pcap: None,
            bridge: Default::default(),
            watch: Vec::new(),
        };
        let json = serde_json::to_string(&cfg).expect("the config serializes");
        let inside: CensorConfig = serde_json::from_str(&json).expect("the config reads back");
        assert_eq!(inside.compiled_policy().expect("the policy compiles"), sc.policy);
    }
}
