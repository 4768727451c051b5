//! The contract as typed data: what callwall tells an external peer, as environment variables.
//!
//! `docs/peers.md` is the contract for peer authors; this module is its one implementation.
//! [`ExternalPeerContext::env`] builds the exact variables a peer process gets, and
//! [`ExternalPeerContext::from_env`] reads them back (a Rust peer, and the round-trip test).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use callwall_transport::{RelayInfo, Role, VoiceModel};

/// The contract's version, in [`ENV_CONTRACT`]. A peer may refuse a version it does not know
/// (exit code [`EXIT_BAD_CONTRACT`]).
pub const CONTRACT_VERSION: u32 = 2;

/// Every variable of the contract starts with this; no other variable with it reaches a peer.
pub const ENV_PREFIX: &str = "CALLWALL_";
pub const ENV_CONTRACT: &str = "CALLWALL_CONTRACT";
pub const ENV_ROLE: &str = "CALLWALL_ROLE";
pub const ENV_CALL_ID: &str = "CALLWALL_CALL_ID";
pub const ENV_LOCAL_IP: &str = "CALLWALL_LOCAL_IP";
pub const ENV_PEER_IP: &str = "CALLWALL_PEER_IP";
pub const ENV_MEDIA_PORT: &str = "CALLWALL_MEDIA_PORT";
pub const ENV_SIGNAL: &str = "CALLWALL_SIGNAL";
pub const ENV_RENDEZVOUS: &str = "CALLWALL_RENDEZVOUS";
pub const ENV_SEED: &str = "CALLWALL_SEED";
pub const ENV_START_UNIX_NS: &str = "CALLWALL_START_UNIX_NS";
pub const ENV_CONNECT_TIMEOUT_MS: &str = "CALLWALL_CONNECT_TIMEOUT_MS";
pub const ENV_DURATION_MS: &str = "CALLWALL_DURATION_MS";
pub const ENV_DRAIN_MS: &str = "CALLWALL_DRAIN_MS";
pub const ENV_FRAME_INTERVAL_MS: &str = "CALLWALL_FRAME_INTERVAL_MS";
pub const ENV_FRAME_BYTES: &str = "CALLWALL_FRAME_BYTES";
pub const ENV_LOG_DIR: &str = "CALLWALL_LOG_DIR";
pub const ENV_REPORT: &str = "CALLWALL_REPORT";
pub const ENV_TURN_URLS: &str = "CALLWALL_TURN_URLS";
pub const ENV_TURN_USERNAME: &str = "CALLWALL_TURN_USERNAME";
pub const ENV_TURN_PASSWORD: &str = "CALLWALL_TURN_PASSWORD";
pub const ENV_TURN_REALM: &str = "CALLWALL_TURN_REALM";
pub const ENV_TURN_CA_FILE: &str = "CALLWALL_TURN_CA_FILE";
pub const ENV_TURN_SERVER_NAME: &str = "CALLWALL_TURN_SERVER_NAME";

/// Every variable the contract defines, in the order `docs/peers.md` lists them.
pub const ALL_VARS: &[&str] = &[
    ENV_CONTRACT,
    ENV_ROLE,
    ENV_CALL_ID,
    ENV_LOCAL_IP,
    ENV_PEER_IP,
    ENV_MEDIA_PORT,
    ENV_SIGNAL,
    ENV_RENDEZVOUS,
    ENV_SEED,
    ENV_START_UNIX_NS,
    ENV_CONNECT_TIMEOUT_MS,
    ENV_DURATION_MS,
    ENV_DRAIN_MS,
    ENV_FRAME_INTERVAL_MS,
    ENV_FRAME_BYTES,
    ENV_LOG_DIR,
    ENV_REPORT,
    ENV_TURN_URLS,
    ENV_TURN_USERNAME,
    ENV_TURN_PASSWORD,
    ENV_TURN_REALM,
    ENV_TURN_CA_FILE,
    ENV_TURN_SERVER_NAME,
];

/// Exit code: the peer ran its call to the end (whether or not media flowed: the report or
/// the network says how the call went).
pub const EXIT_OK: i32 = 0;
/// Exit code: the peer could not make sense of its environment (a missing or bad variable,
/// an unknown contract version). The call's verdict is `error`.
pub const EXIT_BAD_CONTRACT: i32 = 2;
/// Exit code: the peer gave up connecting within its connect timeout. Not an error: the call
/// is judged like any call that did not connect (usually `blocked`).
pub const EXIT_NOT_CONNECTED: i32 = 3;

/// How long a peer listens after its own media end, for frames still in flight (the same as
/// the built-in peers' drain).
pub const DEFAULT_DRAIN: Duration = callwall_transport::peer::DRAIN;

/// A TURN relay as a peer sees it: URLs in RFC 7065 form plus credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayEnv {
    /// `turn:10.3.0.2:3478?transport=udp`, `turn:…?transport=tcp`, `turns:name:443?transport=tcp`.
    pub urls: Vec<String>,
    pub username: String,
    pub password: String,
    pub realm: String,
    /// A PEM file holding the certificate the relay's TLS listener presents (pin it).
    pub ca_file: Option<PathBuf>,
    /// The name in that certificate (use it as the TLS server name for `turns:`).
    pub server_name: String,
}

impl RelayEnv {
    /// The relay the harness started, with its certificate written to `ca_file` by the caller.
    pub fn from_relay(r: &RelayInfo, ca_file: Option<PathBuf>) -> RelayEnv {
        let host = url_host(r.addr);
        RelayEnv {
            urls: vec![
                format!("turn:{host}:{}?transport=udp", r.udp_port),
                format!("turn:{host}:{}?transport=tcp", r.tcp_port),
                format!("turns:{host}:{}?transport=tcp", r.tls_port),
            ],
            username: r.username.clone(),
            password: r.password.clone(),
            realm: r.realm.clone(),
            ca_file,
            server_name: r.tls_server_name.clone(),
        }
    }
}

fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// Everything callwall tells one external peer about its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalPeerContext {
    /// Unique within the run.
    pub call_id: String,
    pub role: Role,
    /// This peer's own address (bind to it).
    pub local_ip: IpAddr,
    /// The other peer's address (the callee's for a caller, the caller's for a callee).
    pub peer_ip: IpAddr,
    /// A port the callee may listen on and the caller may dial when the protocol needs a fixed
    /// one (WireGuard, QUIC); peers that exchange ports through signalling may ignore it.
    pub media_port: u16,
    /// The signal server (TCP, one JSON object per line).
    pub signal: SocketAddr,
    /// Prefix of every signalling key of this call: the two peers meet under it.
    pub rendezvous: String,
    pub relay: Option<RelayEnv>,
    /// The run's seed, for any randomness the peer can make reproducible.
    pub seed: u64,
    /// When the call starts (UNIX ns on the clock every host of the run shares).
    pub start_at_unix_ns: u64,
    /// How long the peer may take to connect before it gives up.
    pub connect_timeout: Duration,
    /// How long to talk once connected.
    pub duration: Duration,
    /// How long to keep listening after the own media end.
    pub drain: Duration,
    pub voice: VoiceModel,
    /// A directory of the peer's own (its logs, its scratch files); it exists when the peer
    /// starts and is kept with the run's results.
    pub log_dir: PathBuf,
    /// Where the peer writes its JSON-lines report (created by the peer; may stay absent).
    pub report_path: PathBuf,
}

impl ExternalPeerContext {
    /// The latest the peer may still run: start + connect timeout + duration + drain, plus
    /// `slack`. The runner kills it past this.
    pub fn deadline_unix_ns(&self, slack: Duration) -> u64 {
        let total = self.connect_timeout + self.duration + self.drain + slack;
        self.start_at_unix_ns.saturating_add(u64::try_from(total.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The environment the peer process gets, variable by variable.
    pub fn env(&self) -> BTreeMap<&'static str, String> {
        let mut m = BTreeMap::new();
        m.insert(ENV_CONTRACT, CONTRACT_VERSION.to_string());
        m.insert(ENV_ROLE, role_str(self.role).to_string());
        m.insert(ENV_CALL_ID, self.call_id.clone());
        m.insert(ENV_LOCAL_IP, self.local_ip.to_string());
        m.insert(ENV_PEER_IP, self.peer_ip.to_string());
        m.insert(ENV_MEDIA_PORT, self.media_port.to_string());
        m.insert(ENV_SIGNAL, self.signal.to_string());
        m.insert(ENV_RENDEZVOUS, self.rendezvous.clone());
        m.insert(ENV_SEED, self.seed.to_string());
        m.insert(ENV_START_UNIX_NS, self.start_at_unix_ns.to_string());
        m.insert(ENV_CONNECT_TIMEOUT_MS, self.connect_timeout.as_millis().to_string());
        m.insert(ENV_DURATION_MS, self.duration.as_millis().to_string());
        m.insert(ENV_DRAIN_MS, self.drain.as_millis().to_string());
        m.insert(ENV_FRAME_INTERVAL_MS, self.voice.interval().as_millis().to_string());
        m.insert(
            ENV_FRAME_BYTES,
            self.voice.frame_bytes.max(callwall_transport::voice::HEADER_BYTES).to_string(),
        );
        m.insert(ENV_LOG_DIR, self.log_dir.display().to_string());
        m.insert(ENV_REPORT, self.report_path.display().to_string());
        if let Some(r) = &self.relay {
            m.insert(ENV_TURN_URLS, r.urls.join(","));
            m.insert(ENV_TURN_USERNAME, r.username.clone());
            m.insert(ENV_TURN_PASSWORD, r.password.clone());
            m.insert(ENV_TURN_REALM, r.realm.clone());
            m.insert(ENV_TURN_SERVER_NAME, r.server_name.clone());
            if let Some(ca) = &r.ca_file {
                m.insert(ENV_TURN_CA_FILE, ca.display().to_string());
            }
        }
        m
    }

    /// Reads a context back from variables (`lookup` is e.g. `|k| std::env::var(k).ok()`).
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ExternalPeerContext, ContractError> {
        let req = |k: &'static str| lookup(k).ok_or(ContractError::Missing(k));
        fn parse<T: std::str::FromStr>(k: &'static str, v: String) -> Result<T, ContractError> {
            v.parse().map_err(|_| ContractError::Invalid { var: k, value: v })
        }
        let version: u32 = parse(ENV_CONTRACT, req(ENV_CONTRACT)?)?;
        if version != CONTRACT_VERSION {
            return Err(ContractError::Version(version));
        }
        let role = match req(ENV_ROLE)?.as_str() {
            "caller" => Role::Caller,
            "callee" => Role::Callee,
            other => return Err(ContractError::Invalid { var: ENV_ROLE, value: other.into() }),
        };
        let ms = |k: &'static str| -> Result<Duration, ContractError> {
            Ok(Duration::from_millis(parse(k, req(k)?)?))
        };
        let relay = match lookup(ENV_TURN_URLS) {
            None => None,
            Some(urls) => Some(RelayEnv {
                urls: urls.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                username: req(ENV_TURN_USERNAME)?,
                password: req(ENV_TURN_PASSWORD)?,
                realm: req(ENV_TURN_REALM)?,
                ca_file: lookup(ENV_TURN_CA_FILE).map(PathBuf::from),
                server_name: req(ENV_TURN_SERVER_NAME)?,
            }),
        };
        Ok(ExternalPeerContext {
            call_id: req(ENV_CALL_ID)?,
            role,
            local_ip: parse(ENV_LOCAL_IP, req(ENV_LOCAL_IP)?)?,
            peer_ip: parse(ENV_PEER_IP, req(ENV_PEER_IP)?)?,
            media_port: parse(ENV_MEDIA_PORT, req(ENV_MEDIA_PORT)?)?,
            signal: parse(ENV_SIGNAL, req(ENV_SIGNAL)?)?,
            rendezvous: req(ENV_RENDEZVOUS)?,
            relay,
            seed: parse(ENV_SEED, req(ENV_SEED)?)?,
            start_at_unix_ns: parse(ENV_START_UNIX_NS, req(ENV_START_UNIX_NS)?)?,
            connect_timeout: ms(ENV_CONNECT_TIMEOUT_MS)?,
            duration: ms(ENV_DURATION_MS)?,
            drain: ms(ENV_DRAIN_MS)?,
            voice: VoiceModel {
                frame_interval: ms(ENV_FRAME_INTERVAL_MS)?,
                frame_bytes: parse(ENV_FRAME_BYTES, req(ENV_FRAME_BYTES)?)?,
            },
            log_dir: PathBuf::from(req(ENV_LOG_DIR)?),
            report_path: PathBuf::from(req(ENV_REPORT)?),
        })
    }
}

/// The contract's spelling of a role.
pub fn role_str(r: Role) -> &'static str {
    match r {
        Role::Caller => "caller",
        Role::Callee => "callee",
    }
}

/// A variable of the contract is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("{0} is not set; callwall sets it for every external peer (see docs/peers.md)")]
    Missing(&'static str),
    #[error("{var}={value:?} does not parse; see docs/peers.md for its format")]
    Invalid { var: &'static str, value: String },
    #[error("contract version {0} is not known; this peer speaks version {CONTRACT_VERSION}")]
    Version(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> ExternalPeerContext {
        ExternalPeerContext {
            call_id: "aiortc-host".into(),
            role: Role::Caller,
            local_ip: "10.1.0.2".parse().unwrap(),
            peer_ip: "fd00:2::2".parse().unwrap(),
            media_port: 40000,
            signal: "[fd00:4::2]:7000".parse().unwrap(),
            rendezvous: "run-1/aiortc-host".into(),
            relay: Some(RelayEnv {
                urls: vec!["turn:10.3.0.2:3478?transport=udp".into()],
                username: "u".into(),
                password: "p".into(),
                realm: "callwall".into(),
                ca_file: Some("/x/relay.pem".into()),
                server_name: "relay.callwall.test".into(),
            }),
            seed: 7,
            start_at_unix_ns: 1_700_000_000_000_000_000,
            connect_timeout: Duration::from_secs(5),
            duration: Duration::from_secs(10),
            drain: Duration::from_secs(1),
            voice: VoiceModel::default(),
            log_dir: "/x/logs".into(),
            report_path: "/x/logs/report.jsonl".into(),
        }
    }

    #[test]
    fn env_round_trips_and_names_every_variable() {
        let c = sample();
        let env = c.env();
        assert_eq!(env[ENV_SIGNAL], "[fd00:4::2]:7000");
        assert_eq!(env[ENV_ROLE], "caller");
        assert_eq!(env[ENV_FRAME_INTERVAL_MS], "20");
        assert_eq!(env[ENV_FRAME_BYTES], "80");
        assert_eq!(env[ENV_DURATION_MS], "10000");
        for k in env.keys() {
            assert!(ALL_VARS.contains(k), "{k} is not listed in ALL_VARS");
        }
        assert_eq!(env.len(), ALL_VARS.len(), "a relay with a CA file sets every variable");
        let back = ExternalPeerContext::from_env(|k| env.get(k).cloned()).unwrap();
        assert_eq!(back, c);
        let mut no_relay = c.clone();
        no_relay.relay = None;
        let env = no_relay.env();
        assert!(!env.contains_key(ENV_TURN_URLS));
        assert_eq!(ExternalPeerContext::from_env(|k| env.get(k).cloned()).unwrap(), no_relay);
    }

    #[test]
    fn from_env_names_the_bad_variable() {
        let env = sample().env();
        let e =
            ExternalPeerContext::from_env(
                |k| {
                    if k == ENV_SEED {
                        None
                    } else {
                        env.get(k).cloned()
                    }
                },
            )
            .unwrap_err();
        assert_eq!(e, ContractError::Missing(ENV_SEED));
        let e = ExternalPeerContext::from_env(|k| {
            if k == ENV_LOCAL_IP {
                Some("10.1.0".into())
            } else {
                env.get(k).cloned()
            }
        })
        .unwrap_err();
        assert!(e.to_string().contains("CALLWALL_LOCAL_IP=\"10.1.0\""), "{e}");
        let e = ExternalPeerContext::from_env(|k| {
            if k == ENV_CONTRACT {
                Some("9".into())
            } else {
                env.get(k).cloned()
            }
        })
        .unwrap_err();
        assert_eq!(e, ContractError::Version(9));
    }

    #[test]
    fn relay_urls_from_relay_info() {
        let r = RelayInfo {
            addr: "fd00:3::2".parse().unwrap(),
            udp_port: 3478,
            tcp_port: 3478,
            tls_port: 443,
            username: "u".into(),
            password: "p".into(),
            realm: "r".into(),
            tls_cert_pem: String::new(),
            tls_server_name: "relay.test".into(),
        };
        let e = RelayEnv::from_relay(&r, None);
        assert_eq!(
            e.urls,
            [
                "turn:[fd00:3::2]:3478?transport=udp",
                "turn:[fd00:3::2]:3478?transport=tcp",
                "turns:[fd00:3::2]:443?transport=tcp"
            ]
        );
    }

    #[test]
    fn deadline_adds_every_phase() {
        let c = sample();
        let d = c.deadline_unix_ns(Duration::from_secs(3));
        assert_eq!(d - c.start_at_unix_ns, 19_000_000_000);
    }
}
