//! `[[workloads]]` and `[dns]` in scenario files: the activities beside the calls.
//!
//! ```toml
//! [[workloads]]
//! name = "whatsapp-text"        # optional; default "<app>-<kind>"
//! kind = "message"              # message | voice-note | web | video
//! app = "whatsapp"              # the app or label the report's matrix shows
//! server = "msg"                # the topology host that runs the server
//! host_name = "web.whatsapp.net" # the name resolved through the run's DNS and sent as SNI
//! client = "caller"             # optional; default "caller"
//! port = 443                    # optional; default 443
//! start = "1s"                  # optional; offset from the start of the calls
//! timeout = "30s"               # optional; the most the workload may take
//! expect = "ok"                 # ok | degraded | failed | error, or a list of them
//! count = 20                    # message: messages each way
//! size = "200B"                 # message: bytes per message
//! interval = "500ms"            # message: time between messages
//! # voice-note: length = "30s", bitrate = "24kbit"
//! # web: page_size = "30KB", objects = 12, object_size = "20KB", proto = "https" | "h3"
//! # video: bitrate = "1mbit", duration = "10s", chunk = "2s", proto = "https" | "h3"
//!
//! [dns]                         # the run's resolver (topology host `dns` by default)
//! host = "dns"
//! remove = ["web.whatsapp.net"] # names answered with NXDOMAIN
//! forge = { "mmg.whatsapp.net" = "10.66.0.1" } # names answered with another address
//! ```
//!
//! Unset parameters take the kind's defaults (`callwall_workload::Params::default_for`).
//! A key that belongs to another kind, a value out of `callwall_workload::limits`, an unknown
//! kind or an unknown host is an error naming the file, the line and the key.

use std::collections::BTreeMap;
use std::net::IpAddr;

use callwall_netns::topology::Topology;
use callwall_units::Duration;
use callwall_workload::{Kind, Outcome, Params};
use serde::{Deserialize, Serialize};

/// Limits on workloads per scenario and on their timing.
pub const MAX_WORKLOADS: usize = 32;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Defaults, in one place.
pub mod defaults {
    use super::Duration;
    pub const CLIENT: &str = "caller";
    pub const TIMEOUT: Duration = Duration::from_secs(60);
    pub const PORT: u16 = 443;
    pub const DNS_HOST: &str = "dns";
}

/// The raw serde model.
pub mod raw {
    use super::*;

    /// A `[[workloads]]` table as written. [`super::validate`] parses the keys every kind
    /// takes through [`Common`] and the rest through the kind's parameter type in
    /// `callwall_workload::kinds`, so each error names its key.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(transparent)]
    pub struct Workload(pub toml::Table);

    /// The keys every workload kind takes.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Common {
        #[serde(default)]
        pub name: Option<String>,
        pub kind: String,
        pub app: String,
        pub server: String,
        pub host_name: String,
        #[serde(default)]
        pub client: Option<String>,
        #[serde(default)]
        pub port: Option<u16>,
        #[serde(default)]
        pub start: Option<Duration>,
        #[serde(default)]
        pub timeout: Option<Duration>,
        pub expect: OutcomeSpec,
    }

    /// One outcome or a list of acceptable ones.
    #[derive(Debug, Clone)]
    pub struct OutcomeSpec(pub Vec<Outcome>);

    impl<'de> Deserialize<'de> for OutcomeSpec {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum OneOrMany {
                One(String),
                Many(Vec<String>),
            }
            let names = match OneOrMany::deserialize(d)? {
                OneOrMany::One(s) => vec![s],
                OneOrMany::Many(v) => v,
            };
            names
                .iter()
                .map(|n| n.parse::<Outcome>().map_err(serde::de::Error::custom))
                .collect::<Result<_, _>>()
                .map(OutcomeSpec)
        }
    }

    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Dns {
        #[serde(default)]
        pub host: Option<String>,
        #[serde(default)]
        pub remove: Vec<String>,
        #[serde(default)]
        pub forge: BTreeMap<String, IpAddr>,
    }
}

/// One validated workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub name: String,
    pub app: String,
    pub params: Params,
    /// Topology host that runs the client.
    pub client: String,
    /// Topology host that runs the server.
    pub server: String,
    /// Name resolved and presented as SNI.
    pub host_name: String,
    pub port: u16,
    pub start: Duration,
    pub timeout: Duration,
    pub expect: Vec<Outcome>,
}

impl Workload {
    pub fn kind(&self) -> Kind {
        self.params.kind()
    }
}

/// The run's DNS zone as the scenario shapes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    /// Topology host running the resolver.
    pub host: String,
    /// Every name and its addresses, after removals and forgeries.
    pub records: BTreeMap<String, Vec<IpAddr>>,
    pub removed: Vec<String>,
    pub forged: BTreeMap<String, IpAddr>,
}

/// A validation failure: the key (relative to the scenario root) and what to do; the caller
/// adds file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub index: Option<usize>,
    pub key: String,
    pub message: String,
}

fn host_ipv4(topology: &Topology, host: &str) -> Option<IpAddr> {
    topology.ipv4_of(host).map(IpAddr::V4)
}

/// True for a DNS name (letters, digits, '-', dots; an optional leading `*.`).
pub fn valid_host_name(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The keys every kind takes; an error names the key whose value was refused (`None` when a
/// required key is missing: the message names it).
fn parse_common(keys: toml::Table) -> Result<raw::Common, (Option<String>, String)> {
    let parse = |t: &toml::Table| raw::Common::deserialize(toml::Value::Table(t.clone()));
    parse(&keys).map_err(|e| {
        // The culprit is the key whose removal leaves the table acceptable, or only missing
        // that key; a missing key is named by the message.
        if e.message().starts_with("missing field") {
            return (None, e.message().to_string());
        }
        let culprit = keys.keys().find(|k| {
            let mut rest = keys.clone();
            rest.remove(*k);
            match parse(&rest) {
                Ok(_) => true,
                Err(e) => e.to_string().contains(&format!("missing field `{k}`")),
            }
        });
        (culprit.cloned(), e.message().to_string())
    })
}

/// A kind's parameters from its keys, through the kind's own serde type: a key of another kind
/// or of none, or a value of the wrong type, is an error naming the key.
fn kind_params(kind: Kind, keys: &toml::Table) -> Result<Params, (String, String)> {
    let accepted = Params::keys(kind);
    for k in keys.keys() {
        if accepted.contains(k) {
            continue;
        }
        let owners: Vec<&str> = Kind::ALL
            .into_iter()
            .filter(|o| Params::keys(*o).contains(k))
            .map(Kind::as_str)
            .collect();
        let message = if owners.is_empty() {
            let common = callwall_censor::policy::raw::keys_of::<raw::Common>();
            format!(
                "unknown workload key; use one of {}, or for kind {kind}: {}",
                common.join(", "),
                accepted.join(", ")
            )
        } else {
            format!("`{k}` does not apply to kind {kind}; it is for {}", owners.join(", "))
        };
        return Err((k.clone(), message));
    }
    Params::from_keys(kind, toml::Value::Table(keys.clone())).map_err(|e| {
        // Name the key whose value the kind's type refused.
        let culprit = keys.iter().find(|(k, v)| {
            let one: toml::Table = [((*k).clone(), (*v).clone())].into_iter().collect();
            Params::from_keys(kind, toml::Value::Table(one)).is_err()
        });
        (culprit.map_or_else(|| "kind".to_string(), |(k, _)| k.clone()), e.to_string())
    })
}

/// Validates the raw workloads against the topology.
pub fn validate(raw: &[raw::Workload], topology: &Topology) -> Result<Vec<Workload>, Invalid> {
    if raw.len() > MAX_WORKLOADS {
        return Err(Invalid {
            index: None,
            key: "workloads".into(),
            message: format!("{} workloads; at most {MAX_WORKLOADS} per scenario", raw.len()),
        });
    }
    let mut out: Vec<Workload> = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let bad = |k: &str, message: String| Invalid {
            index: Some(i),
            key: format!("workloads[{i}].{k}"),
            message,
        };
        let common_keys = callwall_censor::policy::raw::keys_of::<raw::Common>();
        let (common, kind_keys): (toml::Table, toml::Table) =
            entry.0.clone().into_iter().partition(|(k, _)| common_keys.contains(&k.as_str()));
        let w = &parse_common(common).map_err(|(k, m)| match k {
            Some(k) => bad(&k, m),
            None => Invalid { index: Some(i), key: format!("workloads[{i}]"), message: m },
        })?;
        let kind: Kind = w
            .kind
            .parse()
            .map_err(|m: callwall_workload::UnknownKind| bad("kind", m.to_string()))?;
        let params = kind_params(kind, &kind_keys).map_err(|(k, m)| bad(&k, m))?;
        params.validate().map_err(|e| bad(e.key, e.message))?;
        let client = w.client.clone().unwrap_or_else(|| defaults::CLIENT.into());
        for (k, h) in [("client", &client), ("server", &w.server)] {
            if host_ipv4(topology, h).is_none() {
                let known: Vec<&str> = topology
                    .hosts()
                    .iter()
                    .filter(|x| host_ipv4(topology, &x.name).is_some())
                    .map(|x| x.name.as_str())
                    .collect();
                return Err(bad(
                    k,
                    format!(
                        "host {h:?} is not an IPv4-addressed host of the topology; use one of {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        if client == w.server {
            return Err(bad("server", "the server must be another host than the client".into()));
        }
        if !valid_host_name(&w.host_name) || w.host_name.starts_with("*.") {
            return Err(bad(
                "host_name",
                format!("{:?} is not a DNS name; write it like \"web.whatsapp.net\"", w.host_name),
            ));
        }
        if w.app.is_empty() || !crate::valid_name(&w.app) {
            return Err(bad("app", "use 1-64 letters, digits, '-', '_' or '.'".into()));
        }
        let name = w.name.clone().unwrap_or_else(|| format!("{}-{}", w.app, kind));
        if !crate::valid_name(&name) {
            return Err(bad("name", "use 1-64 letters, digits, '-', '_', '+' or '.'".into()));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(bad(
                "name",
                format!("another workload is named {name:?}; give each workload a distinct name"),
            ));
        }
        let port = w.port.unwrap_or(defaults::PORT);
        if port == 0 {
            return Err(bad("port", "use 1 to 65535".into()));
        }
        let timeout = w.timeout.unwrap_or(defaults::TIMEOUT);
        if timeout < Duration::from_secs(1) || timeout > MAX_TIMEOUT {
            return Err(bad("timeout", "use 1s to 10min".into()));
        }
        let start = w.start.unwrap_or(Duration::ZERO);
        if start > MAX_TIMEOUT {
            return Err(bad("start", "use 0s to 10min".into()));
        }
        if w.expect.0.is_empty() {
            return Err(bad(
                "expect",
                "empty list of expected verdicts; use ok, degraded, failed or error".into(),
            ));
        }
        out.push(Workload {
            name,
            app: w.app.clone(),
            params,
            client,
            server: w.server.clone(),
            host_name: w.host_name.clone(),
            port,
            start,
            timeout,
            expect: w.expect.0.clone(),
        });
    }
    Ok(out)
}

/// The run's zone: every workload's `host_name` points at its server's IPv4 address, then
/// `remove` and `forge` apply. `None` when there are no workloads and no `[dns]` table.
pub fn zone(
    raw: Option<&raw::Dns>,
    workloads: &[Workload],
    topology: &Topology,
) -> Result<Option<Dns>, Invalid> {
    if raw.is_none() && workloads.is_empty() {
        return Ok(None);
    }
    let d = raw.cloned().unwrap_or_default();
    let bad = |k: &str, message: String| Invalid { index: None, key: format!("dns.{k}"), message };
    let host = d.host.clone().unwrap_or_else(|| defaults::DNS_HOST.into());
    if host_ipv4(topology, &host).is_none() {
        return Err(bad(
            "host",
            format!("host {host:?} is not an IPv4-addressed host of the topology; add a resolver host such as `dns`"),
        ));
    }
    let mut records: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
    for w in workloads {
        if let Some(ip) = host_ipv4(topology, &w.server) {
            let e = records.entry(w.host_name.to_ascii_lowercase()).or_default();
            if !e.contains(&ip) {
                e.push(ip);
            }
        }
    }
    for n in &d.remove {
        if !valid_host_name(n) {
            return Err(bad("remove", format!("{n:?} is not a DNS name")));
        }
        let n = n.to_ascii_lowercase();
        match n.strip_prefix("*.") {
            Some(apex) => records.retain(|k, _| !k.ends_with(&format!(".{apex}"))),
            None => {
                records.remove(&n);
            }
        }
    }
    for (n, ip) in &d.forge {
        if !valid_host_name(n) {
            return Err(bad("forge", format!("{n:?} is not a DNS name")));
        }
        let private = match ip {
            IpAddr::V4(v4) => v4.octets()[0] == 10,
            IpAddr::V6(v6) => v6.octets()[0] == 0xfd && v6.octets()[1] == 0x00,
        };
        if !private {
            return Err(bad(
                "forge",
                format!("{ip} for {n:?} is outside the sandbox; forge addresses in 10.0.0.0/8 or fd00::/8"),
            ));
        }
        records.insert(n.to_ascii_lowercase(), vec![*ip]);
    }
    Ok(Some(Dns { host, records, removed: d.remove.clone(), forged: d.forge.clone() }))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::{Catalog, Scenario, ScenarioError};
    use callwall_units::Bytes;
    use callwall_workload::HttpProto;

    fn netns_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../netns")
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        c.transports.insert("noise".into(), vec!["udp".into()]);
        c
    }

    const HEAD: &str = "name = \"w\"\n[[calls]]\ntransport = \"noise\"\nexpect = \"connected\"\n";

    fn load(body: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_str(&format!("{HEAD}{body}"), Path::new("w.toml"), &netns_dir(), &catalog())
    }

    fn fails(body: &str) -> (usize, String, String) {
        let e = load(body).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with("w.toml:"), "{shown}");
        (e.line.unwrap_or(0), e.key.unwrap_or_default(), e.message)
    }

    const FOUR: &str = r#"
[[workloads]]
kind = "message"
app = "whatsapp"
server = "msg"
host_name = "web.whatsapp.net"
count = 5
size = "300B"
interval = "100ms"
expect = "ok"

[[workloads]]
kind = "voice-note"
app = "whatsapp"
server = "media"
host_name = "mmg.whatsapp.net"
length = "20s"
bitrate = "16kbit"
expect = ["ok", "degraded"]

[[workloads]]
kind = "web"
app = "osm"
server = "web"
host_name = "tile.openstreetmap.org"
objects = 6
object_size = "20KB"
proto = "h3"
expect = "failed"

[[workloads]]
name = "yt"
kind = "video"
app = "youtube"
server = "video"
host_name = "rr1---sn-abc.googlevideo.com"
bitrate = "400kbit"
duration = "6s"
chunk = "1s"
start = "2s"
expect = "degraded"

[dns]
remove = ["tile.openstreetmap.org"]
forge = { "web.whatsapp.net" = "10.66.0.1" }
"#;

    #[test]
    fn four_workloads_and_a_zone() {
        let sc = load(FOUR).unwrap();
        let names: Vec<&str> = sc.workloads.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["whatsapp-message", "whatsapp-voice-note", "osm-web", "yt"]);
        let Params::Web(web) = sc.workloads[2].params else { panic!() };
        assert_eq!(
            (web.objects, web.object_size, web.proto),
            (6, Bytes::new(20_000), HttpProto::H3)
        );
        assert_eq!(
            web.page_size,
            callwall_workload::WebParams::default().page_size,
            "defaults fill the rest"
        );
        assert_eq!(sc.workloads[1].expect, [Outcome::Ok, Outcome::Degraded]);
        assert_eq!(
            (sc.workloads[3].client.as_str(), sc.workloads[3].start),
            ("caller", Duration::from_secs(2))
        );
        let dns = sc.dns.unwrap();
        assert_eq!(dns.host, "dns");
        let ip = |s: &str| vec![s.parse::<IpAddr>().unwrap()];
        assert_eq!(dns.records.get("mmg.whatsapp.net"), Some(&ip("10.6.0.2")));
        assert_eq!(dns.records.get("web.whatsapp.net"), Some(&ip("10.66.0.1")), "forged");
        assert_eq!(dns.records.get("tile.openstreetmap.org"), None, "removed");
        assert_eq!(dns.records.get("rr1---sn-abc.googlevideo.com"), Some(&ip("10.8.0.2")));
    }

    #[test]
    fn a_wildcard_removes_every_name_below_it() {
        let sc =
            load(&FOUR.replace(
                r#"remove = ["tile.openstreetmap.org"]"#,
                r#"remove = ["*.whatsapp.net"]"#,
            ))
            .unwrap();
        let dns = sc.dns.unwrap();
        assert!(!dns.records.contains_key("mmg.whatsapp.net"));
        assert!(dns.records.contains_key("web.whatsapp.net"), "forged after removal");
        assert!(dns.records.contains_key("tile.openstreetmap.org"));
    }

    #[test]
    fn scenarios_without_workloads_have_no_zone() {
        let sc = load("").unwrap();
        assert!(sc.workloads.is_empty() && sc.dns.is_none());
    }

    #[test]
    fn bad_workloads_name_line_and_key() {
        let w = |extra: &str| {
            format!("[[workloads]]\nkind = \"message\"\napp = \"wa\"\nserver = \"msg\"\nhost_name = \"web.whatsapp.net\"\nexpect = \"ok\"\n{extra}")
        };
        // HEAD is 4 lines, so the workload table starts on line 5.
        let (line, key, msg) = fails(&w("").replace("\"message\"", "\"telepathy\""));
        assert_eq!((line, key.as_str()), (6, "workloads[0].kind"), "{msg}");
        assert!(msg.contains("message, voice-note, web or video"), "{msg}");

        let (line, key, msg) = fails(&w("count = 100000\n"));
        assert_eq!((line, key.as_str()), (11, "workloads[0].count"), "{msg}");
        assert!(msg.contains("use 1 to 1000"), "{msg}");

        let (line, key, msg) = fails(&w("size = \"10MB\"\n"));
        assert_eq!((line, key.as_str()), (11, "workloads[0].size"), "{msg}");

        let (line, key, msg) = fails(&w("").replace("\"msg\"", "\"mars\""));
        assert_eq!((line, key.as_str()), (8, "workloads[0].server"), "{msg}");
        assert!(msg.contains("mars") && msg.contains("msg"), "{msg}");

        let (line, key, msg) = fails(&w("client = \"nowhere\"\n"));
        assert_eq!((line, key.as_str()), (11, "workloads[0].client"), "{msg}");

        let (line, key, msg) = fails(&w("bitrate = \"1mbit\"\n"));
        assert_eq!((line, key.as_str()), (11, "workloads[0].bitrate"), "{msg}");
        assert!(msg.contains("does not apply to kind message"), "{msg}");

        let (line, key, msg) = fails(&w("cuont = 3\n"));
        assert_eq!((line, key.as_str()), (11, "workloads[0].cuont"), "{msg}");
        assert!(msg.contains("unknown workload key") && msg.contains("count"), "{msg}");

        let (line, key, msg) = fails(&w("count = \"many\"\n"));
        assert_eq!((line, key.as_str()), (11, "workloads[0].count"), "{msg}");

        let (line, key, msg) = fails(&w("port = \"abc\"\n"));
        assert_eq!((line, key.as_str()), (11, "workloads[0].port"), "{msg}");

        let (line, key, msg) = fails(&w("").replace("\"ok\"", "\"fine\""));
        assert_eq!((line, key.as_str()), (10, "workloads[0].expect"), "{msg}");
        assert!(msg.contains("use ok, degraded, failed or error"), "{msg}");

        let (line, key, msg) = fails(&w("").replace("app = \"wa\"\n", ""));
        assert_eq!((line, key.as_str()), (5, "workloads[0]"), "{msg}");
        assert!(msg.contains("missing field `app`"), "{msg}");

        let (line, key, msg) = fails(&w("").replace("web.whatsapp.net", "bad name!"));
        assert_eq!((line, key.as_str()), (9, "workloads[0].host_name"), "{msg}");

        let (_, key, msg) = fails(&format!("{}{}", w(""), w("")));
        assert_eq!(key, "workloads[1].name", "{msg}");

        let (line, key, msg) =
            fails(&format!("{}[dns]\nforge = {{ \"web.whatsapp.net\" = \"8.8.8.8\" }}\n", w("")));
        assert_eq!((line, key.as_str()), (12, "dns.forge"), "{msg}");
        assert!(msg.contains("10.0.0.0/8"), "{msg}");
    }

    #[test]
    fn video_chunks_and_voice_note_ranges_are_checked() {
        let base = "[[workloads]]\nkind = \"video\"\napp = \"yt\"\nserver = \"video\"\nhost_name = \"a.googlevideo.com\"\nexpect = \"ok\"\n";
        let (_, key, _) = fails(&format!("{base}bitrate = \"1kbit\"\n"));
        assert_eq!(key, "workloads[0].bitrate");
        let (_, key, _) = fails(&format!("{base}chunk = \"20s\"\nduration = \"5s\"\n"));
        assert_eq!(key, "workloads[0].chunk");
        let (_, key, _) = fails(&format!("{base}proto = \"gopher\"\n"));
        assert_eq!(key, "workloads[0].proto");
    }
}
