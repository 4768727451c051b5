//! The [`RunPlan`]: everything a run decides before it starts, built once in the launcher and
//! handed to the sandbox once (as JSON on its command line).
//!
//! The launcher loads and validates the scenario ([`Scenario::load`]), asks the transports
//! what each call needs, and builds the plan: the validated scenario (its topology included),
//! the effective seed, the calls kept (after `--transport`) with each one's budget and relay
//! needs, and the run's deadline. The sandbox runs the plan as it is: it never reads the
//! scenario file again, never re-derives a budget, and records the plan's seed in every result
//! it gives, as the launcher does for a run that never reached the sandbox ([`RunPlan::failed`]).
//!
//! The censor gets the policy in its validated raw form (`Scenario::censor`, checked by
//! [`Scenario::load`]) and builds the engine's rule chain from it against the topology's
//! addresses; the compiled [`callwall_censor::policy::Policy`] does not cross processes (a
//! scenario deserialized from a plan carries an empty one).

use std::path::PathBuf;
use std::time::Duration;

use callwall_scenario::{Call, Scenario};
use callwall_transport::{relay_needs_of, RelayNeeds, VoiceTransport};
use serde::{Deserialize, Serialize};

use crate::result::{Artifacts, CensorResult, RunError, RunResult};

/// Slack on top of the longest call (or workload) for setting a run up and tearing it down.
pub const SETUP_SLACK: Duration = Duration::from_secs(60);

/// Slack past a workload's start + timeout before its client is killed.
pub const CLIENT_GRACE: Duration = Duration::from_secs(6);

/// How much longer than its calls a scenario's run may take because of its workloads: the
/// latest workload end (start + timeout + grace). Zero without workloads.
fn budget(sc: &Scenario) -> Duration {
    sc.workloads
        .iter()
        .map(|w| w.start.as_std() + w.timeout.as_std() + CLIENT_GRACE)
        .max()
        .unwrap_or_default()
}

/// One run of one scenario, decided (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPlan {
    /// The validated scenario.
    pub scenario: Scenario,
    /// The effective seed: `--seed`, else the scenario's. Every result of the run records it.
    pub seed: u64,
    /// Which repetition of the scenario this run is (0-based).
    pub repeat: u32,
    /// The calls to place, in scenario order (the ones `--transport` kept).
    pub calls: Vec<PlannedCall>,
    /// Kill the sandbox after this long: the longest call's budget or the workloads' end,
    /// plus [`SETUP_SLACK`].
    pub deadline: Duration,
    /// Where topology names resolve (external peers find their programs from it).
    pub topology_dir: PathBuf,
    /// The run's own output directory (logs, decision log, captures); `None`: no files.
    pub out_dir: Option<PathBuf>,
    /// Write a pcap of every frame the censor saw.
    pub pcap: bool,
    /// `--audio` / `--record`: real speech in every built-in call (`None`: filler frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<crate::audio::AudioRun>,
}

/// One call of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedCall {
    /// Index in `scenario.calls`.
    pub index: usize,
    /// The longest the call may take ([`Call::budget`]: a connect timeout per strategy it
    /// may try, then the call).
    pub budget: Duration,
    /// What its strategies need on the relay host, as its transport says
    /// ([`VoiceTransport::relay_needs`]); for external peers, TURN when they ask (`relay = true`).
    pub relay: RelayNeeds,
}

/// The launcher's choices that shape a plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--seed`: overrides the scenario's.
    pub seed: Option<u64>,
    pub repeat: u32,
    /// Keep only calls over these transports (empty: all).
    pub transports: Vec<String>,
    pub topology_dir: PathBuf,
    pub out_dir: Option<PathBuf>,
    pub pcap: bool,
    /// `--audio` / `--record` (checked and prepared by the launcher).
    pub audio: Option<crate::audio::AudioRun>,
}

/// transport name -> strategies, the form [`Call::budget`] and scenario validation take.
pub fn catalog_of(
    transports: &[Box<dyn VoiceTransport>],
) -> std::collections::BTreeMap<String, Vec<String>> {
    transports
        .iter()
        .map(|t| (t.name().to_string(), t.strategies().iter().map(|s| s.to_string()).collect()))
        .collect()
}

impl RunPlan {
    /// Plans one run of `scenario` (already validated) with the build's `transports`.
    pub fn new(
        scenario: &Scenario,
        transports: &[Box<dyn VoiceTransport>],
        opts: &PlanOptions,
    ) -> RunPlan {
        let catalog = catalog_of(transports);
        let calls: Vec<PlannedCall> = scenario
            .calls
            .iter()
            .enumerate()
            .filter(|(_, c)| opts.transports.is_empty() || opts.transports.contains(&c.transport))
            .map(|(index, c)| PlannedCall {
                index,
                budget: c.budget(&catalog),
                relay: match (&c.peer, transports.iter().find(|t| t.name() == c.transport)) {
                    (None, Some(t)) => relay_needs_of(t.as_ref(), &c.strategies),
                    // External peers that asked for the relay (`relay = true`) get coturn.
                    (Some(p), _) if p.relay => RelayNeeds::TURN_ALL,
                    _ => RelayNeeds::NONE,
                },
            })
            .collect();
        let longest = calls.iter().map(|c| c.budget).max().unwrap_or_default();
        let mut deadline = longest.max(budget(scenario)) + SETUP_SLACK;
        if opts.audio.is_some() {
            // Peers with audio play out, score and write after their call.
            deadline += crate::audio::AUDIO_GRACE;
        }
        // Results name the files absolutely (as when the sandbox loaded them by full path).
        let seed = opts.seed.unwrap_or(scenario.seed);
        let mut scenario = scenario.clone();
        for p in [&mut scenario.path, &mut scenario.topology_path] {
            if let Ok(abs) = p.canonicalize() {
                *p = abs;
            }
        }
        RunPlan {
            scenario,
            seed,
            repeat: opts.repeat,
            calls,
            deadline,
            topology_dir: opts.topology_dir.clone(),
            out_dir: opts.out_dir.clone(),
            pcap: opts.pcap,
            audio: opts.audio.clone(),
        }
    }

    /// The scenario's call a planned call stands for.
    pub fn call(&self, p: &PlannedCall) -> &Call {
        &self.scenario.calls[p.index]
    }

    /// The longest call's budget (zero without calls): the run's size, e.g. for sharding.
    pub fn longest_call(&self) -> Duration {
        self.calls.iter().map(|c| c.budget).max().unwrap_or_default()
    }

    /// What the run needs on the relay host: the union of its calls' needs.
    pub fn relay(&self) -> RelayNeeds {
        self.calls.iter().fold(RelayNeeds::NONE, |a, c| a.union(c.relay))
    }

    /// The result of this run with nothing run yet: the scenario, the seed and the repeat
    /// filled in, every list empty. Every result of the run starts from it, so they all record
    /// the same seed.
    pub fn header(&self) -> RunResult {
        let sc = &self.scenario;
        RunResult {
            scenario: sc.name.clone(),
            path: sc.path.display().to_string(),
            description: sc.description.clone(),
            source: sc.source.clone(),
            seed: self.seed,
            repeat: self.repeat,
            topology: sc.topology_path.display().to_string(),
            started_unix_ms: 0,
            wall_ms: 0,
            calls: Vec::new(),
            censor: CensorResult::default(),
            error: None,
            artifacts: Artifacts::default(),
            distributions: Vec::new(),
            retries: 0,
            replaced: false,
            workloads: Vec::new(),
            attempts: Vec::new(),
            flaky: false,
        }
    }

    /// A run that failed before giving calls (in the sandbox or in the launcher).
    pub fn failed(&self, error: RunError) -> RunResult {
        RunResult { error: Some(error), ..self.header() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::RunErrorKind;

    fn scenario(seed: u64) -> Scenario {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cat = callwall_scenario::Catalog {
            transports: [
                ("noise".to_string(), vec!["udp".to_string(), "tcp".to_string()]),
                ("webrtc".to_string(), vec!["direct".to_string(), "ice".to_string()]),
            ]
            .into_iter()
            .collect(),
        };
        let text = format!(
            "name = \"plan\"\ntopology = \"censored-call\"\nseed = {seed}\n\
             [[calls]]\ntransport = \"noise\"\nstrategy = \"auto\"\nduration = \"5s\"\n\
             connect_timeout = \"2s\"\nexpect = \"connected\"\n\
             [[calls]]\ntransport = \"webrtc\"\nstrategy = \"direct\"\nduration = \"3s\"\n\
             connect_timeout = \"1s\"\nexpect = \"connected\"\n"
        );
        Scenario::from_str(&text, &root.join("scenarios/plan.toml"), &root.join("netns"), &cat)
            .expect("the test scenario is valid")
    }

    struct Fake(&'static str, &'static [&'static str], RelayNeeds);
    #[async_trait::async_trait]
    impl VoiceTransport for Fake {
        fn name(&self) -> &'static str {
            self.0
        }
        fn strategies(&self) -> &'static [&'static str] {
            self.1
        }
        async fn dial(
            &self,
            _: &callwall_transport::CallContext,
            _: &str,
        ) -> Result<callwall_transport::MediaLink, callwall_transport::TransportError> {
            Err(callwall_transport::TransportError::Other("not placed in this test".into()))
        }
        async fn answer(
            &self,
            _: &callwall_transport::CallContext,
            _: &str,
        ) -> Result<callwall_transport::MediaLink, callwall_transport::TransportError> {
            Err(callwall_transport::TransportError::Other("not placed in this test".into()))
        }
        fn relay_needs(&self, s: &str) -> RelayNeeds {
            if s == "ice" {
                self.2
            } else {
                RelayNeeds::NONE
            }
        }
    }

    fn transports() -> Vec<Box<dyn VoiceTransport>> {
        vec![
            Box::new(Fake("noise", &["udp", "tcp"], RelayNeeds::NONE)),
            Box::new(Fake("webrtc", &["direct", "ice"], RelayNeeds::TURN_ALL)),
        ]
    }

    #[test]
    fn one_seed_on_every_path() {
        let sc = scenario(11);
        for (flag, want) in [(Some(7), 7), (None, 11)] {
            let plan =
                RunPlan::new(&sc, &transports(), &PlanOptions { seed: flag, ..Default::default() });
            assert_eq!(plan.seed, want);
            // Across the process boundary: the sandbox sees the same plan.
            let json = serde_json::to_string(&plan).unwrap();
            let back: RunPlan = serde_json::from_str(&json).unwrap();
            assert_eq!(back.seed, want);
            assert_eq!(back.scenario.topology, sc.topology);
            assert_eq!(back.scenario.calls.len(), sc.calls.len());
            // Success (the sandbox's result starts from the header), failure in the sandbox,
            // error in the launcher: one seed.
            assert_eq!(back.header().seed, want);
            let e = RunError::new(RunErrorKind::Setup, "x");
            assert_eq!(back.failed(e.clone()).seed, want);
            assert_eq!(plan.failed(e).seed, want);
        }
    }

    #[test]
    fn budgets_deadline_and_relay_needs() {
        let sc = scenario(1);
        let plan = RunPlan::new(&sc, &transports(), &PlanOptions::default());
        // noise auto: 2 strategies x 2 s + 5 s; webrtc direct: 1 s + 3 s.
        assert_eq!(plan.calls[0].budget, Duration::from_secs(9));
        assert_eq!(plan.calls[1].budget, Duration::from_secs(4));
        assert_eq!(plan.deadline, Duration::from_secs(9) + SETUP_SLACK);
        assert_eq!(plan.relay(), RelayNeeds::NONE);
        let only = RunPlan::new(
            &sc,
            &transports(),
            &PlanOptions { transports: vec!["webrtc".into()], ..Default::default() },
        );
        assert_eq!(only.calls.len(), 1);
        assert_eq!(only.call(&only.calls[0]).transport, "webrtc");
        assert_eq!(only.longest_call(), Duration::from_secs(4));
    }
}
