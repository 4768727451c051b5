//! Scenario files: what a run does.
//!
//! A scenario (a TOML file in `scenarios/`) names a topology (a TOML file in `netns/`), a
//! censor policy (an ordered rule chain), the calls to place (transport x strategies) and the
//! verdict each call is expected to get. [`Scenario::load`] parses the file into a raw model
//! that rejects unknown keys, then validates it against the topology and the transports'
//! strategies into a [`Scenario`].
//!
//! Dated censor versions (`as_of`) and the bypass matrix's call fields (`cite`, `prediction`,
//! `reference`, `column`) are validated in [`bypass`], which also refuses, before a run starts,
//! a bypass the call's strategy does not honour ([`bypass::check_bypasses`]).
//!
//! Guarantees: loading is pure apart from reading the scenario and topology files; every error
//! names the file, the line (when the TOML parser or a span gives one) and the key, and says
//! what to do. Nothing is created on the system by loading.
#![forbid(unsafe_code)]

pub mod bypass;
pub mod external;
pub mod stats;
pub mod workload;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use callwall_censor::policy::{raw as policy_raw, Policy};
use callwall_netns::topology::Topology;
use callwall_transport::{StrategyOptions, Verdict};
use callwall_units::Duration;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Limits that keep a scenario from asking for absurd runs.
pub const MAX_CALLS: usize = 64;
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// The raw serde model of a scenario file.
pub mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Scenario {
        #[serde(default)]
        pub name: Option<Spanned<String>>,
        #[serde(default)]
        pub description: Option<String>,
        /// Where the modelled behaviour is documented, and how sure that is.
        #[serde(default)]
        pub source: Option<String>,
        /// The date the modelled censor behaviour is stated for (`"2025-09-28"`), for dated
        /// censor versions (see [`crate::bypass`]).
        #[serde(default)]
        pub as_of: Option<Spanned<String>>,
        /// A topology name in `netns/` (without `.toml`) or a path relative to the scenario.
        #[serde(default)]
        pub topology: Option<Spanned<String>>,
        #[serde(default)]
        pub seed: Option<u64>,
        #[serde(default)]
        pub tags: Vec<String>,
        #[serde(default)]
        pub censor: Option<policy_raw::Policy>,
        #[serde(default)]
        pub defaults: Option<CallDefaults>,
        #[serde(default)]
        pub calls: Vec<Spanned<Call>>,
        /// Activities beside the calls (see [`crate::workload`]).
        #[serde(default)]
        pub workloads: Vec<Spanned<crate::workload::raw::Workload>>,
        /// The run's DNS zone (see [`crate::workload`]).
        #[serde(default)]
        pub dns: Option<crate::workload::raw::Dns>,
    }

    #[derive(Debug, Default, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CallDefaults {
        #[serde(default)]
        pub duration: Option<Duration>,
        #[serde(default)]
        pub connect_timeout: Option<Duration>,
    }

    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Call {
        #[serde(default)]
        pub name: Option<String>,
        /// Empty when the call names external peers instead (`peer`).
        #[serde(default)]
        pub transport: String,
        /// One strategy, `"auto"`, or a list tried in order.
        #[serde(default)]
        pub strategy: Option<StrategySpec>,
        #[serde(default)]
        pub duration: Option<Duration>,
        #[serde(default)]
        pub connect_timeout: Option<Duration>,
        /// The expected verdict, or a list of acceptable verdicts.
        pub expect: ExpectSpec,
        #[serde(default)]
        pub options: Option<StrategyOptions>,
        /// How many copies of this call to place at once (default 1).
        #[serde(default)]
        pub count: Option<u32>,
        #[serde(default)]
        pub caller: Option<String>,
        #[serde(default)]
        pub callee: Option<String>,
        /// The app profile this call stands for (`apps/<name>.toml`), beside the transport.
        #[serde(default)]
        pub app: Option<String>,
        /// Place the call this many times (at once, each from its own address) and judge the
        /// distribution of verdicts against shares (`expect = { degraded = "70-100%" }`).
        #[serde(default)]
        pub repeat: Option<u32>,
        /// External peer commands instead of a built-in transport (see [`crate::external`]).
        #[serde(default)]
        pub peer: Option<crate::external::raw::Peer>,
        /// Bypass matrix (see [`crate::bypass`]): where the expected outcome is published.
        #[serde(default)]
        pub cite: Option<String>,
        /// Bypass matrix: why callwall expects this outcome when nothing is published.
        #[serde(default)]
        pub prediction: Option<String>,
        /// Bypass matrix: the call (same scenario, same transport, no bypass) this call's cost
        /// is measured against.
        #[serde(default)]
        pub reference: Option<String>,
        /// Bypass matrix: the column, when the one derived from the options is wrong (e.g.
        /// `none` for a call whose `sni` is what the censor matches, not a bypass).
        #[serde(default)]
        pub column: Option<String>,
    }

    /// One strategy name or a list of them.
    #[derive(Debug, Clone)]
    pub enum StrategySpec {
        One(String),
        List(Vec<String>),
    }

    impl<'de> Deserialize<'de> for StrategySpec {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match OneOrMany::<String>::deserialize(d)? {
                OneOrMany(mut v, true) => Ok(StrategySpec::One(v.remove(0))),
                OneOrMany(v, false) => Ok(StrategySpec::List(v)),
            }
        }
    }

    /// One expected verdict, a list of acceptable ones, or expected shares of verdicts over a
    /// call's repeats (`{ degraded = "70-100%", blocked = "0-30%" }`).
    #[derive(Debug, Clone)]
    pub enum ExpectSpec {
        One(Verdict),
        List(Vec<Verdict>),
        Shares(crate::stats::Shares),
    }

    impl<'de> Deserialize<'de> for ExpectSpec {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let OneOrMany(names, one) = match crate::stats::ExpectForm::deserialize(d)? {
                crate::stats::ExpectForm::Names(n) => n,
                crate::stats::ExpectForm::Shares(s) => return Ok(ExpectSpec::Shares(s)),
            };
            let mut out = Vec::new();
            for n in names {
                out.push(parse_verdict(&n).map_err(serde::de::Error::custom)?);
            }
            Ok(if one { ExpectSpec::One(out[0]) } else { ExpectSpec::List(out) })
        }
    }

    /// A verdict name that is none of the six.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("unknown verdict {0:?}: use connected, degraded, cut, blocked, no-signalling or error, or a list of them")]
    pub struct UnknownVerdict(pub String);

    pub(crate) fn parse_verdict(s: &str) -> Result<Verdict, UnknownVerdict> {
        match s {
            "connected" => Ok(Verdict::Connected),
            "degraded" => Ok(Verdict::Degraded),
            "cut" => Ok(Verdict::Cut),
            "blocked" => Ok(Verdict::Blocked),
            "no-signalling" => Ok(Verdict::NoSignalling),
            "error" => Ok(Verdict::Error),
            _ => Err(UnknownVerdict(s.to_string())),
        }
    }

    /// A string or a list of strings; the flag says which was written.
    pub(crate) struct OneOrMany<T>(pub(crate) Vec<T>, pub(crate) bool);

    impl<'de> Deserialize<'de> for OneOrMany<String> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = OneOrMany<String>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string or a list of strings")
                }
                fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                    Ok(OneOrMany(vec![s.to_string()], true))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Self::Value, A::Error> {
                    let mut v = Vec::new();
                    while let Some(x) = seq.next_element::<String>()? {
                        v.push(x);
                    }
                    Ok(OneOrMany(v, false))
                }
            }
            d.deserialize_any(V)
        }
    }
}

/// The transports and strategies a build of callwall offers, for validation.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// transport name -> its strategies.
    pub transports: BTreeMap<String, Vec<String>>,
}

/// A validated scenario. It crosses into a run's sandbox as JSON (in the harness's `RunPlan`)
/// with its topology; the compiled `policy` does not cross (see the field).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub source: Option<String>,
    /// The date the modelled censor behaviour is stated for (validated `YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    pub path: PathBuf,
    pub topology_path: PathBuf,
    pub topology: Topology,
    pub seed: u64,
    pub tags: Vec<String>,
    /// The policy as written (kept for reports and for the censor process).
    pub censor: policy_raw::Policy,
    /// The compiled rule chain. Not serialized: a scenario deserialized in another process
    /// has the empty chain here, and whoever needs the engine's chain compiles `censor` (the
    /// validated raw form) against the topology's addresses, as the censor process does.
    #[serde(skip)]
    pub policy: Policy,
    pub calls: Vec<Call>,
    /// Activities beside the calls; empty when the scenario has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<workload::Workload>,
    /// The run's DNS zone; `None` when there are no workloads and no `[dns]` table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<workload::Dns>,
}

/// One call of a scenario (a `count` > 1 is expanded by the harness).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub name: String,
    pub transport: String,
    /// Tried in order; `["auto"]` means the transport's own fallback order.
    pub strategies: Vec<String>,
    pub duration: Duration,
    pub connect_timeout: Duration,
    pub expect: Vec<Verdict>,
    pub options: StrategyOptions,
    pub count: u32,
    pub caller: String,
    pub callee: String,
    /// The app profile the call stands for, checked with [`Scenario::check_apps`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Set when external programs place the call (`transport` is then
    /// [`external::TRANSPORT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<external::ExternalPeers>,
    /// The call's line in the scenario file, for later errors.
    #[serde(default)]
    pub line: usize,
    /// How many times the call is placed (at once, each from its own address) to judge the
    /// distribution of its verdicts; 1 for an ordinary call.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub repeat: u32,
    /// The expected share of each verdict over the repeats (verdicts not listed: 0 %); `None`
    /// for an ordinary call, judged by `expect` alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<callwall_results::stats::Shares>,
    /// Set when the call is a cell of the bypass matrix (see [`crate::bypass`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<bypass::MatrixCall>,
    /// The line of the call's `options` key (its own line when it has none), for bypass errors.
    #[serde(skip)]
    pub options_line: usize,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl Call {
    /// How many peers pairs the harness places for this call: its copies times its repeats.
    pub fn placements(&self) -> u32 {
        self.count * self.repeat
    }

    /// `noise/udp`, `webrtc/auto`, `quic/quic,quic-443`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.transport, self.strategies.join(","))
    }

    /// How many strategies the call may try: its own list, or for `auto` every strategy the
    /// transport offers (`catalog`: transport name -> its strategies).
    pub fn strategy_count(&self, catalog: &BTreeMap<String, Vec<String>>) -> usize {
        if self.strategies == ["auto"] {
            catalog.get(&self.transport).map_or(1, |s| s.len().max(1))
        } else {
            self.strategies.len()
        }
    }

    /// The longest the call can take: one connect timeout per strategy it may try, then the
    /// call itself. The one place this formula lives: the harness gives it to the peers, the
    /// launcher adds setup slack to it for the run's deadline.
    pub fn budget(&self, catalog: &BTreeMap<String, Vec<String>>) -> std::time::Duration {
        callwall_transport::peer::connect_budget(
            self.connect_timeout.as_std(),
            self.strategy_count(catalog),
        )
        .saturating_add(self.duration.as_std())
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// Default values, documented in one place.
pub mod defaults {
    use super::Duration;
    pub const TOPOLOGY: &str = "censored-call";
    pub const SEED: u64 = 1;
    pub const DURATION: Duration = Duration::from_secs(10);
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const CALLER: &str = "caller";
    pub const CALLEE: &str = "callee";
}

impl Scenario {
    /// Loads and validates a scenario file. `topology_dir` is where topology names resolve
    /// (the repository's `netns/`).
    pub fn load(
        path: &Path,
        topology_dir: &Path,
        catalog: &Catalog,
    ) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the scenario file: {e}; check the path"),
        })?;
        Scenario::from_str(&text, path, topology_dir, catalog)
    }

    /// Validates scenario text; `path` is used for messages and relative topology paths.
    pub fn from_str(
        text: &str,
        path: &Path,
        topology_dir: &Path,
        catalog: &Catalog,
    ) -> Result<Scenario, ScenarioError> {
        let err = |line: Option<usize>, key: Option<&str>, message: String| ScenarioError {
            file: path.to_path_buf(),
            line,
            key: key.map(str::to_string),
            message,
        };
        let raw: raw::Scenario = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let key = e.span().and_then(|s| key_at(text, s.start));
            err(line, key.as_deref(), e.message().trim().to_string())
        })?;

        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("scenario").to_string();
        let name = match &raw.name {
            Some(n) => {
                if !valid_name(n.get_ref()) {
                    return Err(err(Some(line_of(text, n.span().start)), Some("name"), "use 1-64 letters, digits, '-', '_' or '.', not starting with '.' (it names output files)".into()));
                }
                n.get_ref().clone()
            }
            None if valid_name(&stem) => stem,
            None => return Err(err(None, Some("name"), format!("the file name {stem:?} cannot name outputs: add name = \"...\" (letters, digits, '-', '_', '.')"))),
        };

        // Topology.
        let (topo_ref, topo_line) = match &raw.topology {
            Some(t) => (t.get_ref().clone(), Some(line_of(text, t.span().start))),
            None => (defaults::TOPOLOGY.to_string(), None),
        };
        let topology_path = resolve_topology(&topo_ref, path, topology_dir)
            .map_err(|m| err(topo_line, Some("topology"), m.to_string()))?;
        let topology = Topology::from_file(&topology_path)
            .map_err(|e| err(topo_line, Some("topology"), format!("{e}")))?;
        let hosts = host_map(&topology);

        // Censor policy.
        // (Not a `Spanned`: toml cannot span a table created implicitly by `[[censor.rules]]`.)
        let censor_raw = raw.censor.clone().unwrap_or_default();
        let censor_line = text
            .lines()
            .position(|l| {
                l.trim_start().starts_with("[censor") || l.trim_start().starts_with("censor")
            })
            .map_or(0, |i| i + 1);
        let policy = compile_policy(&censor_raw, &hosts).map_err(|e| {
            let line = e
                .rule_index
                .and_then(|i| find_nth_table(text, "censor.rules", i))
                .or(Some(censor_line).filter(|&l| l > 0));
            err(line, Some(&format!("censor.{}", e.path)), e.message)
        })?;
        if topology.censor().is_none() && !censor_raw.rules.is_empty() {
            return Err(err(Some(censor_line), Some("censor"), "the topology has no censor host; use a topology with a [censor] section or remove the rules".into()));
        }

        // Calls.
        let d = raw.defaults.clone().unwrap_or_default();
        let duration_default = d.duration.unwrap_or(defaults::DURATION);
        let timeout_default = d.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT);
        if raw.calls.is_empty() {
            return Err(err(
                None,
                Some("calls"),
                "no calls: add at least one [[calls]] table with transport, strategy and expect"
                    .into(),
            ));
        }
        let mut calls = Vec::new();
        let mut total = 0usize;
        for (i, sc) in raw.calls.iter().enumerate() {
            let line = Some(line_of(text, sc.span().start));
            let c = sc.get_ref();
            let key = |k: &str| format!("calls[{i}].{k}");
            let peer = external::validate(c.peer.as_ref(), &c.transport, c.strategy.is_some())
                .map_err(|(k, m)| err(line, Some(&key(k)), m))?;
            let external_offered = vec![external::STRATEGY.to_string()];
            let transport =
                if peer.is_some() { external::TRANSPORT.to_string() } else { c.transport.clone() };
            let offered = match peer {
                Some(_) => Some(&external_offered),
                None => catalog.transports.get(&c.transport),
            };
            let Some(strategies_offered) = offered else {
                let known: Vec<&str> = catalog.transports.keys().map(String::as_str).collect();
                return Err(err(
                    line,
                    Some(&key("transport")),
                    format!("unknown transport {:?}; use one of {}", c.transport, known.join(", ")),
                ));
            };
            let strategies = match &c.strategy {
                None => vec![strategies_offered.first().cloned().unwrap_or_default()],
                Some(raw::StrategySpec::One(s)) => vec![s.clone()],
                Some(raw::StrategySpec::List(l)) => l.clone(),
            };
            if strategies.is_empty() {
                return Err(err(line, Some(&key("strategy")), "empty strategy list".into()));
            }
            for s in &strategies {
                if s == "auto" && strategies.len() == 1 {
                    continue;
                }
                if !strategies_offered.contains(s) {
                    return Err(err(
                        line,
                        Some(&key("strategy")),
                        format!(
                            "transport {:?} has no strategy {s:?}; use one of {}, or \"auto\"",
                            c.transport,
                            strategies_offered.join(", ")
                        ),
                    ));
                }
            }
            let (repeat, shares) = stats::validate(c.repeat, &c.expect, c.count)
                .map_err(|(k, m)| err(Some(key_line_in(text, sc.span(), k)), Some(&key(k)), m))?;
            let expect = match &c.expect {
                raw::ExpectSpec::One(v) => vec![*v],
                raw::ExpectSpec::List(l) if !l.is_empty() => l.clone(),
                raw::ExpectSpec::Shares(s) => stats::possible(s),
                raw::ExpectSpec::List(_) => {
                    return Err(err(
                        line,
                        Some(&key("expect")),
                        "empty list of expected verdicts".into(),
                    ))
                }
            };
            let duration = c.duration.unwrap_or(duration_default);
            if duration < Duration::from_secs(1) || duration > MAX_DURATION {
                return Err(err(line, Some(&key("duration")), "use 1s to 10min".into()));
            }
            let connect_timeout = c.connect_timeout.unwrap_or(timeout_default);
            if connect_timeout < Duration::from_millis(500)
                || connect_timeout > Duration::from_secs(120)
            {
                return Err(err(line, Some(&key("connect_timeout")), "use 500ms to 2min".into()));
            }
            let count = c.count.unwrap_or(1);
            if count == 0 || count > MAX_CALLS as u32 {
                return Err(err(line, Some(&key("count")), format!("use 1 to {MAX_CALLS}")));
            }
            total += (count * repeat) as usize;
            let caller = c.caller.clone().unwrap_or_else(|| defaults::CALLER.into());
            let callee = c.callee.clone().unwrap_or_else(|| defaults::CALLEE.into());
            for (k, h) in [("caller", &caller), ("callee", &callee)] {
                if host_addrs(&topology, h).is_none_or(|a| a.is_empty()) {
                    return Err(err(
                        line,
                        Some(&key(k)),
                        format!(
                            "host {h:?} is not an addressed host of topology {}",
                            topology_path.display()
                        ),
                    ));
                }
            }
            let name =
                c.name.clone().unwrap_or_else(|| format!("{}-{}", transport, strategies.join("+")));
            if !valid_name(&name) {
                return Err(err(
                    line,
                    Some(&key("name")),
                    "use 1-64 letters, digits, '-', '_', '+' or '.'".into(),
                ));
            }
            if calls.iter().any(|o: &Call| o.name == name) {
                return Err(err(
                    line,
                    Some(&key("name")),
                    format!("another call is named {name:?}; give each call a distinct name"),
                ));
            }
            calls.push(Call {
                name,
                transport,
                strategies,
                duration,
                connect_timeout,
                expect,
                options: c.options.clone().unwrap_or_default(),
                count,
                caller,
                callee,
                app: c.app.clone(),
                peer,
                line: line_of(text, sc.span().start),
                repeat,
                shares,
                matrix: None,
                options_line: key_line_in(text, sc.span(), "options"),
            });
        }
        if total > MAX_CALLS {
            return Err(err(
                None,
                Some("calls"),
                format!("{total} calls in all; at most {MAX_CALLS} per scenario"),
            ));
        }
        // Dated censor version and the bypass matrix.
        let as_of = match &raw.as_of {
            Some(d) => Some(bypass::validate_date(d.get_ref()).map_err(|m| {
                err(Some(line_of(text, d.span().start)), Some("as_of"), m.to_string())
            })?),
            None => None,
        };
        bypass::validate_calls(&raw.calls, &mut calls).map_err(|(i, k, m)| {
            let line = raw.calls.get(i).map(|sc| key_line_in(text, sc.span(), k));
            err(line, Some(&format!("calls[{i}].{k}")), m)
        })?;
        // External calls' media ports: as written, and no two copies sharing one on a host.
        let ext: Vec<usize> = (0..calls.len()).filter(|&i| calls[i].peer.is_some()).collect();
        let claims: Vec<external::PortClaim<'_>> = ext
            .iter()
            .map(|&i| {
                let c = &calls[i];
                external::PortClaim {
                    name: &c.name,
                    hosts: [&c.caller, &c.callee],
                    written: c.peer.as_ref().and_then(|p| p.media_port),
                    copies: c.placements(),
                }
            })
            .collect();
        let ports = external::assign_media_ports(&claims).map_err(|(k, m)| {
            let line = calls[ext[k]].line;
            let raw_index = raw.calls.iter().position(|sc| line_of(text, sc.span().start) == line);
            // `media_port` may sit in the call's `[calls.peer]` subtable, past its span.
            let key_line = text
                .lines()
                .enumerate()
                .skip(line)
                .take_while(|(_, l)| !l.trim_start().starts_with("[[calls"))
                .find(|(_, l)| {
                    l.split_once('=').is_some_and(|(k, _)| k.trim() == "media_port")
                        || l.contains("media_port =")
                })
                .map_or(line, |(n, _)| n + 1);
            let key = format!("calls[{}].peer.media_port", raw_index.unwrap_or(ext[k]));
            err(Some(key_line), Some(&key), m)
        })?;
        for (&i, p) in ext.iter().zip(ports) {
            if let Some(peer) = calls[i].peer.as_mut() {
                peer.media_ports = p;
            }
        }
        // Workloads and the DNS zone.
        let raw_workloads: Vec<workload::raw::Workload> =
            raw.workloads.iter().map(|w| w.get_ref().clone()).collect();
        let workload_err = |e: workload::Invalid| {
            let last = e.key.rsplit('.').next().unwrap_or(&e.key).to_string();
            let line = match e.index.and_then(|i| raw.workloads.get(i)) {
                Some(w) => Some(key_line_in(text, w.span(), &last)),
                None if e.key.starts_with("dns.") => dns_key_line(text, &last),
                None => find_nth_table(text, "workloads", 0),
            };
            err(line, Some(&e.key), e.message)
        };
        let workloads = workload::validate(&raw_workloads, &topology).map_err(workload_err)?;
        let dns = workload::zone(raw.dns.as_ref(), &workloads, &topology).map_err(workload_err)?;
        Ok(Scenario {
            name,
            description: raw.description.unwrap_or_default(),
            source: raw.source,
            as_of,
            path: path.to_path_buf(),
            topology_path,
            topology,
            seed: raw.seed.unwrap_or(defaults::SEED),
            tags: raw.tags,
            censor: censor_raw,
            policy,
            calls,
            workloads,
            dns,
        })
    }
}

/// Every address of a topology host, `None` for an unknown host.
pub fn host_addrs(topology: &Topology, host: &str) -> Option<Vec<IpAddr>> {
    topology
        .host(host)
        .map(|h| h.interfaces.iter().flat_map(|i| i.addrs.iter().map(|c| c.addr)).collect())
}

/// Per-call addresses: call copy `n` of a run uses host number `CALL_ADDR_BASE + n` of its
/// caller's and callee's first IPv4 subnet (10.1.0.128, 10.1.0.129, ... on a /24), so calls
/// never share ports and the censor can tell them apart. The range is the aligned
/// `/CALL_ADDR_PREFIX` block at that base: 64 addresses, one per possible call.
pub const CALL_ADDR_BASE: u32 = 128;
pub const CALL_ADDR_PREFIX: u8 = 26;

/// What a host name in a censor rule stands for: each of the host's addresses, plus the
/// per-call address range on its first IPv4 subnet (when the subnet is large enough).
pub fn host_map(
    topology: &Topology,
) -> std::collections::BTreeMap<String, Vec<callwall_censor::policy::Cidr>> {
    use callwall_censor::policy::Cidr;
    topology
        .hosts()
        .iter()
        .map(|h| {
            let mut cidrs: Vec<Cidr> = host_addrs(topology, &h.name)
                .unwrap_or_default()
                .into_iter()
                .map(|a| Cidr { addr: a, prefix_len: if a.is_ipv4() { 32 } else { 128 } })
                .collect();
            let first_v4 = h.interfaces.iter().flat_map(|i| &i.addrs).find(|c| c.addr.is_ipv4());
            if let Some(c) = first_v4.filter(|c| c.prefix_len <= 24) {
                if let IpAddr::V4(net) = c.network() {
                    let base = std::net::Ipv4Addr::from(u32::from(net) + CALL_ADDR_BASE);
                    cidrs.push(Cidr { addr: IpAddr::V4(base), prefix_len: CALL_ADDR_PREFIX });
                }
            }
            (h.name.clone(), cidrs)
        })
        .collect()
}

/// The one place a scenario's raw `[censor]` policy becomes the compiled chain: host names in
/// rules resolve through `hosts` ([`host_map`] of the scenario's topology). [`Scenario::load`]
/// compiles with it to validate (the launcher), and the censor process compiles the same raw
/// policy with the same map with it again (see docs/architecture.md, "The policy, compiled
/// twice by one function"); compiling is pure, so both get equal policies.
pub fn compile_policy(
    raw: &policy_raw::Policy,
    hosts: &std::collections::BTreeMap<String, Vec<callwall_censor::policy::Cidr>>,
) -> Result<Policy, callwall_censor::policy::PolicyError> {
    Policy::compile(raw, &|host: &str| hosts.get(host).cloned())
}

/// Names that become file names: no separators, no leading dot, no shell metacharacters.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
}

/// Why a scenario's `topology` names no topology file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyRefError {
    /// A bare name that cannot be a file name.
    #[error("invalid topology name {name:?}: name a file in {} or give a path ending in .toml", dir.display())]
    InvalidName { name: String, dir: PathBuf },
    /// The file it names does not exist.
    #[error("topology file {} not found; name one of the files in {}", path.display(), dir.display())]
    NotFound { path: PathBuf, dir: PathBuf },
}

fn resolve_topology(r: &str, scenario: &Path, dir: &Path) -> Result<PathBuf, TopologyRefError> {
    let candidate = if r.ends_with(".toml") || r.contains('/') {
        scenario.parent().unwrap_or(Path::new(".")).join(r)
    } else {
        if !valid_name(r) {
            return Err(TopologyRefError::InvalidName {
                name: r.to_string(),
                dir: dir.to_path_buf(),
            });
        }
        dir.join(format!("{r}.toml"))
    };
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(TopologyRefError::NotFound { path: candidate, dir: dir.to_path_buf() })
    }
}

/// The key a TOML error points at: the `key` of a `key = value` line, or the table header.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    let key = match line.split_once('=') {
        Some((k, _)) if !k.trim_start().starts_with('[') => k.trim(),
        _ => line.trim_matches(|c| c == '[' || c == ']').trim(),
    };
    (!key.is_empty() && key.len() < 80).then(|| key.trim_matches('"').to_string())
}

/// The line of `key = ...` inside the table spanning `span`, or the table's first line.
fn key_line_in(text: &str, span: std::ops::Range<usize>, key: &str) -> usize {
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    let mut offset = start;
    for l in text[start..end].split_inclusive('\n') {
        if let Some((k, _)) = l.split_once('=') {
            if k.trim() == key {
                return line_of(text, offset);
            }
        }
        offset += l.len();
    }
    line_of(text, start)
}

/// The line of `key = ...` in the `[dns]` table, or of the table's header.
fn dns_key_line(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.trim() == "[dns]")?;
    let found = lines[header + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with('['))
        .position(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key));
    Some(found.map_or(header + 1, |i| header + 2 + i))
}

/// The line of the `n`th `[[table]]` header (0-based) in `text`.
fn find_nth_table(text: &str, table: &str, n: usize) -> Option<usize> {
    let header = format!("[[{table}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&header))
        .nth(n)
        .map(|(i, _)| i + 1)
}

impl Scenario {
    /// Checks every call's `app` against the app profiles known (`apps/*.toml` names): an
    /// unknown one is an error naming the file, the call's line and `calls[i].app`.
    pub fn check_apps(&self, known: &[&str]) -> Result<(), ScenarioError> {
        for (i, c) in self.calls.iter().enumerate() {
            let Some(app) = &c.app else { continue };
            if !known.contains(&app.as_str()) {
                return Err(ScenarioError {
                    file: self.path.clone(),
                    line: (c.line > 0).then_some(c.line),
                    key: Some(format!("calls[{i}].app")),
                    message: format!("unknown app {app:?}; use one of {}", known.join(", ")),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netns_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../netns")
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        c.transports.insert("noise".into(), vec!["udp".into(), "tcp-443".into()]);
        c
    }

    #[test]
    fn host_names_cover_the_per_call_addresses_and_rules_need_no_censor_table() {
        let text = r#"
name = "probe"
[[censor.rules]]
name = "drop-callee"
match = { server = ["callee"] }
action = "drop"
[[calls]]
transport = "noise"
expect = "blocked"
"#;
        let sc =
            Scenario::from_str(text, Path::new("probe.toml"), &netns_dir(), &catalog()).unwrap();
        let server = sc.policy.rules[0]
            .m
            .find(|c| match c {
                callwall_censor::policy::Condition::Server(l) => Some(l.clone()),
                _ => None,
            })
            .unwrap();
        for addr in ["10.2.0.2", "10.2.0.128", "10.2.0.191", "fd00:2::2"] {
            let ip: IpAddr = addr.parse().unwrap();
            assert!(server.iter().any(|c| c.contains(ip)), "{addr} not covered by {server:?}");
        }
        let ip: IpAddr = "10.2.0.1".parse().unwrap();
        assert!(!server.iter().any(|c| c.contains(ip)), "the router is not the callee");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let text = "name = \"x\"\n[[calls]]\ntransport = \"noise\"\nstrategy = \"teleport\"\nexpect = \"connected\"\n";
        let e =
            Scenario::from_str(text, Path::new("x.toml"), &netns_dir(), &catalog()).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("calls[0].strategy")), "{e}");
        let e = Scenario::from_str(
            "name = \"x\"\nbogus = 1\n",
            Path::new("x.toml"),
            &netns_dir(),
            &catalog(),
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("bogus")), "{e}");
    }

    #[test]
    fn an_unknown_app_names_file_line_and_key() {
        let text = "name = \"x\"\n[[calls]]\ntransport = \"noise\"\nexpect = \"connected\"\n\n[[calls]]\nname = \"app\"\ntransport = \"noise\"\napp = \"whatsup-like\"\nexpect = \"connected\"\n";
        let sc = Scenario::from_str(text, Path::new("x.toml"), &netns_dir(), &catalog()).unwrap();
        assert_eq!(sc.calls[1].app.as_deref(), Some("whatsup-like"));
        sc.check_apps(&["whatsup-like"]).unwrap();
        let e = sc.check_apps(&["whatsapp-like", "telegram-like"]).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("calls[1].app")), "{e}");
        assert!(e.message.contains("use one of whatsapp-like, telegram-like"), "{e}");
    }
}
