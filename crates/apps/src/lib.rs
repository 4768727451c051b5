//! App profiles: how a messenger's calls and messages connect, as data.
//!
//! A profile (`apps/<name>.toml`) says which host its calls go to (a topology host name), on
//! which ports, what the first packet of a call flow is, which existing transport and strategy
//! each step of its fallback chain maps to and after how long it gives up on a step, whether it
//! races its steps, where its messages (signalling) go, and its options (Telegram's force-TCP,
//! Signal's always-relay). Every such field carries a source tag as in
//! `censorship-catalog.md` ([M] measured, [R] repeated reports, [N] news, [U] unconfirmed or
//! inferred) and a citation, so a report can say how sure each modelled detail is.
//!
//! [`AppProfile::from_str`] parses a raw model that rejects unknown keys, then validates it
//! (names, ports, timeouts, tags) into an [`AppProfile`]; [`AppProfile::check`] validates the
//! fallback chain against the transports a build offers and the hosts a topology has. Every
//! error names the file, the line and the key.
//!
//! What a profile does **not** model: the apps' own protocols (Telegram's reflector protocol
//! and WhatsApp's relay protocol are proprietary; a profile maps them onto callwall's
//! transports), their encryption and codecs, their addresses beyond one host per role, and
//! anything the catalog does not document: such fields are tagged [U].
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use callwall_units::Duration;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Steps a fallback chain may have.
pub const MAX_STEPS: usize = 8;

/// How sure a field is, as in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tag {
    /// Measured in a published study.
    M,
    /// Repeated community reports.
    R,
    /// News or official statements only.
    N,
    /// Unconfirmed or inferred.
    U,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tag::M => "M",
            Tag::R => "R",
            Tag::N => "N",
            Tag::U => "U",
        };
        write!(f, "[{s}]")
    }
}

/// A value with its source tag and citation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Tag,
    /// Where it is documented, e.g. `censorship-catalog.md, "How the apps' calls connect"`.
    pub cite: String,
}

/// What the first packet of a call flow is, as the censor's classifiers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirstPacket {
    /// A STUN Binding request (RFC 8489).
    StunBinding,
    /// A TURN Allocate request (RFC 8656).
    TurnAllocate,
    /// A DTLS ClientHello.
    DtlsClientHello,
    /// A QUIC Initial.
    QuicInitial,
    /// A TLS ClientHello on a TCP stream.
    TlsClientHello,
    /// A Noise handshake message (no plaintext structure).
    Noise,
}

/// The raw serde model of a profile file.
pub mod listing;

pub mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Profile {
        pub name: Spanned<String>,
        pub summary: String,
        /// What the profile models, in a sentence or two (shown by `callwall apps`).
        pub models: String,
        /// What it does not model.
        pub not_modelled: String,
        pub call: Spanned<Call>,
        pub messages: Spanned<Messages>,
        #[serde(default)]
        pub options: Option<Spanned<Options>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Call {
        /// The topology host the app's calls go to (relay, reflector, callee).
        pub host: Sourced<String>,
        /// Host names the app resolves for calls, if any (for SNI rules).
        #[serde(default)]
        pub names: Option<Sourced<Vec<String>>>,
        pub ports: Sourced<Vec<u16>>,
        pub first_packet: Sourced<FirstPacket>,
        /// Steps started with a stagger (RFC 8305) instead of one after another.
        #[serde(default)]
        pub race: Option<Sourced<bool>>,
        pub fallback: Vec<Spanned<Step>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Step {
        pub transport: String,
        pub strategy: String,
        /// How long the app gives this step before the next.
        pub timeout: Duration,
        #[serde(default)]
        pub port: Option<u16>,
        /// An option this step stands for (`force-tcp`, `always-relay`), when it is one.
        #[serde(default)]
        pub when: Option<String>,
        pub source: Tag,
        pub cite: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Messages {
        pub host: Sourced<String>,
        pub ports: Sourced<Vec<u16>>,
        #[serde(default)]
        pub fallback_ports: Option<Sourced<Vec<u16>>>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    pub struct Options {
        #[serde(default)]
        pub force_tcp: Option<Sourced<bool>>,
        #[serde(default)]
        pub always_relay: Option<Sourced<bool>>,
    }
}

/// A validated profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppProfile {
    pub name: String,
    pub summary: String,
    pub models: String,
    pub not_modelled: String,
    pub path: PathBuf,
    pub call: CallProfile,
    pub messages: MessagesProfile,
    pub options: Options,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallProfile {
    pub host: Sourced<String>,
    pub names: Option<Sourced<Vec<String>>>,
    pub ports: Sourced<Vec<u16>>,
    pub first_packet: Sourced<FirstPacket>,
    pub race: Option<Sourced<bool>>,
    pub fallback: Vec<Step>,
}

/// One step of a call's fallback chain, mapped onto an existing transport and strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub transport: String,
    pub strategy: String,
    pub timeout: Duration,
    pub port: Option<u16>,
    pub when: Option<AppOption>,
    pub source: Tag,
    pub cite: String,
    /// The step's line in the profile file, for later errors.
    #[serde(skip)]
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagesProfile {
    pub host: Sourced<String>,
    pub ports: Sourced<Vec<u16>>,
    pub fallback_ports: Option<Sourced<Vec<u16>>>,
}

/// The options a profile knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppOption {
    ForceTcp,
    AlwaysRelay,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Options {
    pub force_tcp: Option<Sourced<bool>>,
    pub always_relay: Option<Sourced<bool>>,
}

impl AppProfile {
    /// The fallback chain with the options set as `force_tcp` and `always_relay` say: a step
    /// marked `when = "force-tcp"` replaces the others when force-TCP is on and is left out when
    /// it is off; likewise `always-relay`.
    pub fn steps(&self, force_tcp: bool, always_relay: bool) -> Vec<&Step> {
        let on = |o: AppOption| match o {
            AppOption::ForceTcp => force_tcp,
            AppOption::AlwaysRelay => always_relay,
        };
        let forced: Vec<&Step> =
            self.call.fallback.iter().filter(|s| s.when.is_some_and(on)).collect();
        if !forced.is_empty() {
            return forced;
        }
        self.call.fallback.iter().filter(|s| s.when.is_none()).collect()
    }

    /// The options as the profile sets them by default.
    pub fn default_options(&self) -> (bool, bool) {
        let v = |o: &Option<Sourced<bool>>| o.as_ref().is_some_and(|s| s.value);
        (v(&self.options.force_tcp), v(&self.options.always_relay))
    }
}

/// Why a profile could not be loaded or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AppError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for AppError {
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

/// The dotted key of the innermost table header or `key =` line at or before `offset`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let line = text[..offset.min(text.len())].rsplit('\n').next().unwrap_or("");
    let rest = &text[offset.min(text.len())..];
    let whole = format!("{line}{}", rest.split('\n').next().unwrap_or(""));
    let k = whole.split('=').next()?.trim().trim_matches(|c| c == '[' || c == ']').trim();
    (!k.is_empty() && k.len() < 64).then(|| k.to_string())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl AppProfile {
    /// Loads and validates `path`.
    pub fn load(path: &Path) -> Result<AppProfile, AppError> {
        let text = std::fs::read_to_string(path).map_err(|e| AppError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the app profile: {e}; check the path"),
        })?;
        AppProfile::from_str(&text, path)
    }

    /// Validates profile text; `path` is used in messages.
    pub fn from_str(text: &str, path: &Path) -> Result<AppProfile, AppError> {
        let err = |line: Option<usize>, key: &str, message: String| AppError {
            file: path.to_path_buf(),
            line,
            key: Some(key.to_string()),
            message,
        };
        let raw: raw::Profile = toml::from_str(text).map_err(|e| AppError {
            file: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)),
            key: e.span().and_then(|s| key_at(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let name = raw.name.get_ref().clone();
        if !valid_name(&name) {
            return Err(err(
                Some(line_of(text, raw.name.span().start)),
                "name",
                "use 1-64 lowercase letters, digits or '-'".into(),
            ));
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if !stem.is_empty() && stem != name {
            return Err(err(
                Some(line_of(text, raw.name.span().start)),
                "name",
                format!(
                    "the profile is named {name:?} but its file is {stem:?}.toml; make them agree"
                ),
            ));
        }
        let call_line = Some(line_of(text, raw.call.span().start));
        let msg_line = Some(line_of(text, raw.messages.span().start));
        let call = raw.call.into_inner();
        let ports_ok = |p: &[u16]| !p.is_empty() && p.len() <= 16 && p.iter().all(|&p| p != 0);
        let check_cite = |c: &str, line, key: &str| {
            if c.trim().is_empty() {
                Err(err(line, key, "empty citation: name the catalog section or study".into()))
            } else {
                Ok(())
            }
        };
        if !ports_ok(&call.ports.value) {
            return Err(err(call_line, "call.ports.value", "use 1 to 16 ports, none 0".into()));
        }
        if call.host.value.trim().is_empty() {
            return Err(err(call_line, "call.host.value", "name a topology host".into()));
        }
        for (k, c) in [
            ("call.host.cite", &call.host.cite),
            ("call.ports.cite", &call.ports.cite),
            ("call.first_packet.cite", &call.first_packet.cite),
        ] {
            check_cite(c, call_line, k)?;
        }
        if call.fallback.is_empty() || call.fallback.len() > MAX_STEPS {
            return Err(err(
                call_line,
                "call.fallback",
                format!("use 1 to {MAX_STEPS} [[call.fallback]] steps"),
            ));
        }
        let mut fallback = Vec::new();
        for (i, s) in call.fallback.into_iter().enumerate() {
            let line = line_of(text, s.span().start);
            let s = s.into_inner();
            let key = |k: &str| format!("call.fallback[{i}].{k}");
            if s.timeout < Duration::from_millis(100) || s.timeout > Duration::from_secs(120) {
                return Err(err(Some(line), &key("timeout"), "use 100ms to 2min".into()));
            }
            if s.port == Some(0) {
                return Err(err(Some(line), &key("port"), "use a port from 1 to 65535".into()));
            }
            check_cite(&s.cite, Some(line), &key("cite"))?;
            let when = match s.when.as_deref() {
                None => None,
                Some("force-tcp") => Some(AppOption::ForceTcp),
                Some("always-relay") => Some(AppOption::AlwaysRelay),
                Some(o) => {
                    return Err(err(
                        Some(line),
                        &key("when"),
                        format!("unknown option {o:?}; use force-tcp or always-relay"),
                    ))
                }
            };
            fallback.push(Step {
                transport: s.transport,
                strategy: s.strategy,
                timeout: s.timeout,
                port: s.port,
                when,
                source: s.source,
                cite: s.cite,
                line,
            });
        }
        if fallback.iter().all(|s| s.when.is_some()) {
            return Err(err(
                call_line,
                "call.fallback",
                "every step is tied to an option; add at least one step without `when`".into(),
            ));
        }
        let messages = raw.messages.into_inner();
        if !ports_ok(&messages.ports.value)
            || messages.fallback_ports.as_ref().is_some_and(|p| !ports_ok(&p.value))
        {
            return Err(err(msg_line, "messages.ports", "use 1 to 16 ports, none 0".into()));
        }
        let options = raw.options.map(|o| o.into_inner()).unwrap_or_default();
        Ok(AppProfile {
            name,
            summary: raw.summary,
            models: raw.models,
            not_modelled: raw.not_modelled,
            path: path.to_path_buf(),
            call: CallProfile {
                host: call.host,
                names: call.names,
                ports: call.ports,
                first_packet: call.first_packet,
                race: call.race,
                fallback,
            },
            messages: MessagesProfile {
                host: messages.host,
                ports: messages.ports,
                fallback_ports: messages.fallback_ports,
            },
            options: Options { force_tcp: options.force_tcp, always_relay: options.always_relay },
        })
    }

    /// Checks the fallback chain against the transports a build offers (`transport ->
    /// strategies`) and the profile's hosts against a topology (`has_host`).
    pub fn check(
        &self,
        transports: &BTreeMap<String, Vec<String>>,
        has_host: impl Fn(&str) -> bool,
    ) -> Result<(), AppError> {
        let err = |line: Option<usize>, key: String, message: String| AppError {
            file: self.path.clone(),
            line,
            key: Some(key),
            message,
        };
        for (i, s) in self.call.fallback.iter().enumerate() {
            let Some(offered) = transports.get(&s.transport) else {
                let known: Vec<&str> = transports.keys().map(String::as_str).collect();
                return Err(err(
                    Some(s.line),
                    format!("call.fallback[{i}].transport"),
                    format!("unknown transport {:?}; use one of {}", s.transport, known.join(", ")),
                ));
            };
            if !offered.contains(&s.strategy) {
                return Err(err(
                    Some(s.line),
                    format!("call.fallback[{i}].strategy"),
                    format!(
                        "transport {:?} has no strategy {:?}; use one of {}",
                        s.transport,
                        s.strategy,
                        offered.join(", ")
                    ),
                ));
            }
        }
        for (key, host) in
            [("call.host", &self.call.host.value), ("messages.host", &self.messages.host.value)]
        {
            if !has_host(host) {
                return Err(err(
                    None,
                    key.to_string(),
                    format!(
                        "the topology has no host {host:?}; add it to the topology or use a \
                         topology that has it"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Loads every `*.toml` in `dir`, sorted by name; the first bad one is the error.
pub fn load_dir(dir: &Path) -> Result<Vec<AppProfile>, AppError> {
    let entries = std::fs::read_dir(dir).map_err(|e| AppError {
        file: dir.to_path_buf(),
        line: None,
        key: None,
        message: format!(
            "cannot read the app profile directory: {e}; run from the checkout (it has apps/) \
             or name the profiles with --app-dir DIR"
        ),
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| AppProfile::load(p)).collect()
}

/// An app name that no profile has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown app {name:?}; use one of {}", known.join(", "))]
pub struct UnknownApp {
    /// The name asked for.
    pub name: String,
    /// The names the profiles have.
    pub known: Vec<String>,
}

/// Finds `name` among `profiles`, or says which exist.
pub fn find<'a>(profiles: &'a [AppProfile], name: &str) -> Result<&'a AppProfile, UnknownApp> {
    profiles.iter().find(|p| p.name == name).ok_or_else(|| UnknownApp {
        name: name.to_string(),
        known: profiles.iter().map(|p| p.name.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_apps() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps")
    }

    fn catalog() -> BTreeMap<String, Vec<String>> {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        BTreeMap::from([
            ("webrtc".into(), v(&["direct", "turn-udp", "turn-tcp", "turn-tls", "ice-tcp", "ice"])),
            ("noise".into(), v(&["udp", "udp-wg", "udp-obfs", "tcp-443"])),
            ("reflector".into(), v(&["udp"])),
            ("quic".into(), v(&["quic", "quic-443"])),
        ])
    }

    #[test]
    fn the_shipped_profiles_load_and_check() {
        let all = load_dir(&repo_apps()).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["max-like", "signal-like", "telegram-like", "whatsapp-like"]);
        let hosts = ["caller", "callee", "relay", "signal"];
        for p in &all {
            p.check(&catalog(), |h| hosts.contains(&h)).unwrap_or_else(|e| panic!("{e}"));
        }
        let tg = find(&all, "telegram-like").unwrap();
        assert_eq!(tg.call.ports.value, [596, 597, 598, 599, 1400]);
        assert_eq!(tg.call.first_packet.value, FirstPacket::StunBinding);
        // Force-TCP replaces the UDP chain.
        let forced = tg.steps(true, false);
        assert!(!forced.is_empty() && forced.iter().all(|s| s.when == Some(AppOption::ForceTcp)));
        assert!(tg.steps(false, false).iter().all(|s| s.when.is_none()));
        let signal = find(&all, "signal-like").unwrap();
        assert_eq!(signal.default_options(), (false, true));
        assert_eq!(
            find(&all, "nope").unwrap_err(),
            UnknownApp {
                name: "nope".into(),
                known: names.iter().map(|n| n.to_string()).collect()
            }
        );
    }

    fn load(text: &str) -> Result<AppProfile, AppError> {
        AppProfile::from_str(text, Path::new("apps/x-like.toml"))
    }

    const GOOD: &str = r#"name = "x-like"
summary = "s"
models = "m"
not_modelled = "n"

[call]
host = { value = "relay", source = "R", cite = "catalog" }
ports = { value = [3478], source = "R", cite = "catalog" }
first_packet = { value = "stun-binding", source = "R", cite = "catalog" }

[[call.fallback]]
transport = "webrtc"
strategy = "turn-udp"
timeout = "4s"
source = "U"
cite = "inferred"

[messages]
host = { value = "signal", source = "R", cite = "catalog" }
ports = { value = [5222], source = "R", cite = "catalog" }
"#;

    #[test]
    fn bad_input_names_file_line_and_key() {
        assert!(load(GOOD).is_ok());
        let e = load(&GOOD.replace("not_modelled", "colour = 1\nnot_modelled")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("colour")), "{e}");
        assert!(e.to_string().starts_with("apps/x-like.toml:4: key `colour`"), "{e}");
        let e = load(&GOOD.replace("\"stun-binding\"", "\"carrier-pigeon\"")).unwrap_err();
        assert_eq!(e.line, Some(9), "{e}");
        let e = load(&GOOD.replace("timeout = \"4s\"", "timeout = \"4 parsecs\"")).unwrap_err();
        assert_eq!(e.line, Some(14), "{e}");
        let e = load(&GOOD.replace("timeout = \"4s\"", "timeout = \"10ms\"")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(11), Some("call.fallback[0].timeout")));
        let e = load(&GOOD.replace("[3478]", "[0]")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("call.ports.value"), "{e}");
        let e = load(&GOOD.replace("source = \"U\"", "source = \"maybe\"")).unwrap_err();
        assert_eq!(e.line, Some(15), "{e}");
        let e = load(&GOOD.replace("cite = \"inferred\"", "cite = \" \"")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("call.fallback[0].cite"), "{e}");
        let e = AppProfile::from_str(GOOD, Path::new("apps/y-like.toml")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("name"), "{e}");
        let e = load(&GOOD.replace("source = \"U\"\n", "source = \"U\"\nwhen = \"turbo\"\n"))
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("call.fallback[0].when"), "{e}");
    }

    #[test]
    fn check_names_unknown_transports_strategies_and_hosts() {
        let p = load(GOOD).unwrap();
        let hosts = |h: &str| h == "relay" || h == "signal";
        p.check(&catalog(), hosts).unwrap();
        let e = p.check(&catalog(), |h| h == "signal").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("call.host"), "{e}");
        assert!(e.message.contains("no host \"relay\""), "{e}");
        let p = load(&GOOD.replace("\"turn-udp\"", "\"turn-sctp\"")).unwrap();
        let e = p.check(&catalog(), hosts).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(11), Some("call.fallback[0].strategy")));
        let p = load(&GOOD.replace("\"webrtc\"", "\"carrier\"")).unwrap();
        let e = p.check(&catalog(), hosts).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("call.fallback[0].transport"), "{e}");
    }
}
