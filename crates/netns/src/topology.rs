//! The topology file model: `netns/*.toml` parsed into a raw struct (unknown keys are
//! errors), then validated into a [`Topology`].
//!
//! Rules checked: host names match `[a-z][a-z0-9-]{0,11}` and are unique; each link joins
//! two existing distinct hosts, at most one link per pair; addresses are in 10.0.0.0/8 or
//! fd00::/8 and unique; different L2 segments have no overlapping subnets (the two links
//! of the censor host form one segment, since the censor bridges them); each route's host
//! exists, its destination is `default` or a CIDR inside the allowed ranges, and its
//! gateway is in a subnet of one of the host's interfaces and is an address of some host
//! on that segment; the censor host has exactly two links, no addresses, no forwarding,
//! no routes, and `inside`/`outside` are its two distinct neighbours.
//!
//! Interface names: in each host, the veth towards a neighbour is named after it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::NetnsError;

/// An interface address with its prefix length, e.g. `10.1.0.2/24` (the workspace's one
/// address-range type, from `callwall-units`).
pub use callwall_units::Cidr;

// ---------- raw schema ----------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopology {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    hosts: Vec<RawHost>,
    #[serde(default)]
    links: Vec<RawLink>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    censor: Option<RawCensor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    #[serde(default)]
    forward: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    a: RawEnd,
    b: RawEnd,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnd {
    host: Spanned<String>,
    #[serde(default)]
    addrs: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    host: Spanned<String>,
    to: Spanned<String>,
    via: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCensor {
    host: Spanned<String>,
    inside: Spanned<String>,
    outside: Spanned<String>,
}

// ---------- validated model ----------

/// One interface of a host: a veth end named after the neighbour host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceSpec {
    /// Interface name (= neighbour host name).
    pub name: String,
    /// The host at the other end.
    pub peer_host: String,
    /// Addresses on it.
    pub addrs: Vec<Cidr>,
    /// Index of the link in [`Topology::links`].
    pub link: usize,
}

/// One host (one network namespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    /// Name, `[a-z][a-z0-9-]{0,11}`.
    pub name: String,
    /// Whether it forwards IPv4/IPv6 (a router).
    pub forward: bool,
    /// Its interfaces, in link order.
    pub interfaces: Vec<InterfaceSpec>,
}

impl HostSpec {
    /// First IPv4 address over its interfaces.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.interfaces.iter().flat_map(|i| &i.addrs).find_map(|c| match c.addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
    }

    /// First IPv6 address over its interfaces.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.interfaces.iter().flat_map(|i| &i.addrs).find_map(|c| match c.addr {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
    }

    /// The interface towards `neighbour`.
    pub fn interface(&self, neighbour: &str) -> Option<&InterfaceSpec> {
        self.interfaces.iter().find(|i| i.name == neighbour)
    }
}

/// A link (veth pair) between two hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    /// Host of end a.
    pub a: String,
    /// Addresses of end a.
    pub a_addrs: Vec<Cidr>,
    /// Host of end b.
    pub b: String,
    /// Addresses of end b.
    pub b_addrs: Vec<Cidr>,
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// Host the route is installed in.
    pub host: String,
    /// Destination, `None` for the default route (of the gateway's family).
    pub to: Option<Cidr>,
    /// Gateway.
    pub via: IpAddr,
}

/// The censor's position: a host with two interfaces bridged by the censor process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CensorSpec {
    /// Censor host.
    pub host: String,
    /// Neighbour on the censored side; also the censor's interface name towards it.
    /// Frames arriving from it are client-to-server ("up").
    pub inside: String,
    /// Neighbour on the other side; also the interface name towards it.
    pub outside: String,
}

/// A validated topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    name: String,
    description: String,
    hosts: Vec<HostSpec>,
    links: Vec<LinkSpec>,
    routes: Vec<RouteSpec>,
    censor: Option<CensorSpec>,
}

struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn err(
        &self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        msg: impl Into<String>,
    ) -> NetnsError {
        NetnsError::Topology {
            origin: self.origin.to_string(),
            line: span.map(|s| self.line_of(s)),
            key: key.into(),
            message: msg.into(),
        }
    }

    fn at<T>(&self, s: &Spanned<T>, key: impl Into<String>, msg: impl Into<String>) -> NetnsError {
        self.err(Some(s.span()), key, msg)
    }

    /// Turns a toml/serde error into ours: line from its span, key from the text there.
    fn toml_error(&self, e: &toml::de::Error) -> NetnsError {
        let span = e.span();
        let key = span.clone().map(|s| self.key_at(s)).unwrap_or_else(|| "(document)".to_string());
        let msg = e.message().trim().to_string();
        let msg = if msg.starts_with("unknown field") {
            format!("{msg}; remove or rename the key")
        } else {
            msg
        };
        self.err(span, key, msg)
    }

    /// Best-effort name of the key at a span: the key on that line, or the table header.
    fn key_at(&self, span: Range<usize>) -> String {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..].find('\n').map_or(self.text.len(), |i| start + i);
        let line = self.text[line_start..line_end].trim();
        // The spanned text itself when it is a bare key.
        let spanned = self.text.get(span.clone()).unwrap_or("").trim();
        if !spanned.is_empty()
            && spanned
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return spanned.to_string();
        }
        if let Some((k, _)) = line.split_once('=') {
            return k.trim().to_string();
        }
        if line.starts_with('[') {
            return line.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        line.chars().take(40).collect()
    }
}

fn valid_host_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 12
        && b[0].is_ascii_lowercase()
        && b[1..].iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl Topology {
    /// Reads and validates a topology file. Errors name the file, line and key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, NetnsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| NetnsError::ReadTopology { path: path.to_path_buf(), source })?;
        Self::from_str(&text, &path.display().to_string())
    }

    /// Parses and validates topology text; `origin` names it in errors (a path or a label).
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str, origin: &str) -> Result<Self, NetnsError> {
        let cx = Ctx { origin, text };
        let raw: RawTopology = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
        Self::validate(raw, &cx)
    }

    fn validate(raw: RawTopology, cx: &Ctx<'_>) -> Result<Self, NetnsError> {
        if raw.name.get_ref().trim().is_empty() {
            return Err(cx.at(&raw.name, "name", "the topology needs a non-empty name"));
        }
        // hosts
        let mut hosts: Vec<HostSpec> = Vec::new();
        for (i, h) in raw.hosts.iter().enumerate() {
            let key = format!("hosts[{i}].name");
            let n = h.name.get_ref();
            if !valid_host_name(n) {
                return Err(cx.at(
                    &h.name,
                    key,
                    format!("host name {n:?} is invalid; use 1 to 12 of a-z, 0-9 and '-', starting with a letter"),
                ));
            }
            if hosts.iter().any(|x| &x.name == n) {
                return Err(cx.at(
                    &h.name,
                    key,
                    format!("duplicate host {n:?}; host names must be unique"),
                ));
            }
            hosts.push(HostSpec { name: n.clone(), forward: h.forward, interfaces: Vec::new() });
        }
        if hosts.is_empty() {
            return Err(cx.err(None, "hosts", "no hosts; add at least two [[hosts]] tables"));
        }
        let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        let host_idx = |s: &Spanned<String>, key: &str| -> Result<usize, NetnsError> {
            names.iter().position(|n| n == s.get_ref()).ok_or_else(|| {
                cx.at(
                    s,
                    key,
                    format!("unknown host {:?}; declare it in [[hosts]] first", s.get_ref()),
                )
            })
        };
        // links
        let mut links = Vec::new();
        let mut all_addrs: Vec<(IpAddr, String)> = Vec::new();
        for (li, l) in raw.links.iter().enumerate() {
            let ia = host_idx(&l.a.host, &format!("links[{li}].a.host"))?;
            let ib = host_idx(&l.b.host, &format!("links[{li}].b.host"))?;
            if ia == ib {
                return Err(cx.at(
                    &l.b.host,
                    format!("links[{li}].b.host"),
                    "a link must join two different hosts",
                ));
            }
            if links.iter().any(|x: &LinkSpec| {
                (x.a == hosts[ia].name && x.b == hosts[ib].name)
                    || (x.a == hosts[ib].name && x.b == hosts[ia].name)
            }) {
                return Err(cx.at(
                    &l.b.host,
                    format!("links[{li}]"),
                    format!("second link between {:?} and {:?}; at most one link per pair of hosts (interfaces are named after the neighbour)", hosts[ia].name, hosts[ib].name),
                ));
            }
            let mut parse_end = |end: &RawEnd, side: &str| -> Result<Vec<Cidr>, NetnsError> {
                let mut v = Vec::new();
                for (ai, a) in end.addrs.iter().enumerate() {
                    let key = format!("links[{li}].{side}.addrs[{ai}]");
                    let c: Cidr = Cidr::parse_with_prefix(a.get_ref())
                        .map_err(|m| cx.at(a, &key, m.to_string()))?;
                    if !c.in_allowed_range() {
                        return Err(cx.at(
                            a,
                            &key,
                            format!("{c} is outside the sandbox ranges; use addresses in 10.0.0.0/8 or fd00::/8"),
                        ));
                    }
                    if let Some((_, other)) = all_addrs.iter().find(|(x, _)| *x == c.addr) {
                        return Err(cx.at(
                            a,
                            &key,
                            format!("address {} is already used at {other}", c.addr),
                        ));
                    }
                    all_addrs.push((c.addr, key));
                    v.push(c);
                }
                Ok(v)
            };
            let a_addrs = parse_end(&l.a, "a")?;
            let b_addrs = parse_end(&l.b, "b")?;
            hosts[ia].interfaces.push(InterfaceSpec {
                name: names[ib].clone(),
                peer_host: names[ib].clone(),
                addrs: a_addrs.clone(),
                link: li,
            });
            hosts[ib].interfaces.push(InterfaceSpec {
                name: names[ia].clone(),
                peer_host: names[ia].clone(),
                addrs: b_addrs.clone(),
                link: li,
            });
            links.push(LinkSpec {
                a: hosts[ia].name.clone(),
                a_addrs,
                b: hosts[ib].name.clone(),
                b_addrs,
            });
        }
        // censor
        let censor = match &raw.censor {
            None => None,
            Some(c) => {
                let ci = host_idx(&c.host, "censor.host")?;
                let h = &hosts[ci];
                if h.interfaces.len() != 2 {
                    return Err(cx.at(
                        &c.host,
                        "censor.host",
                        format!("censor host {:?} has {} links; it needs exactly two (inside and outside)", h.name, h.interfaces.len()),
                    ));
                }
                if h.forward {
                    return Err(cx.at(
                        &c.host,
                        "censor.host",
                        "the censor host must not forward; remove `forward = true` from it",
                    ));
                }
                if h.interfaces.iter().any(|i| !i.addrs.is_empty()) {
                    return Err(cx.at(
                        &c.host,
                        "censor.host",
                        "the censor host's interfaces are a transparent bridge; give them no addrs",
                    ));
                }
                for (s, key) in [(&c.inside, "censor.inside"), (&c.outside, "censor.outside")] {
                    if h.interface(s.get_ref()).is_none() {
                        return Err(cx.at(
                            s,
                            key,
                            format!(
                                "{:?} is not a neighbour of censor host {:?}",
                                s.get_ref(),
                                h.name
                            ),
                        ));
                    }
                }
                if c.inside.get_ref() == c.outside.get_ref() {
                    return Err(cx.at(
                        &c.outside,
                        "censor.outside",
                        "inside and outside must be different neighbours",
                    ));
                }
                Some(CensorSpec {
                    host: h.name.clone(),
                    inside: c.inside.get_ref().clone(),
                    outside: c.outside.get_ref().clone(),
                })
            }
        };
        // segments: links through the censor are one L2 segment
        let segment_of = |li: usize| -> usize {
            match &censor {
                Some(c) if links[li].a == c.host || links[li].b == c.host => usize::MAX,
                _ => li,
            }
        };
        let mut subnets: Vec<(Cidr, usize)> = Vec::new();
        for (li, l) in raw.links.iter().enumerate() {
            let seg = segment_of(li);
            for (side, end) in [("a", &l.a), ("b", &l.b)] {
                for (ai, a) in end.addrs.iter().enumerate() {
                    let c: Cidr = Cidr::parse_with_prefix(a.get_ref())
                        .map_err(|m| cx.at(a, "addrs", m.to_string()))?;
                    if let Some((o, _)) = subnets.iter().find(|(o, s)| *s != seg && o.overlaps(&c))
                    {
                        return Err(cx.at(
                            a,
                            format!("links[{li}].{side}.addrs[{ai}]"),
                            format!("subnet {} overlaps {}/{} on another link; give each link its own subnet", c, o.network(), o.prefix_len),
                        ));
                    }
                    subnets.push((c, seg));
                }
            }
        }
        // routes
        let mut routes = Vec::new();
        for (ri, r) in raw.routes.iter().enumerate() {
            let hi = host_idx(&r.host, &format!("routes[{ri}].host"))?;
            if censor.as_ref().is_some_and(|c| c.host == hosts[hi].name) {
                return Err(cx.at(
                    &r.host,
                    format!("routes[{ri}].host"),
                    "the censor host has no addresses and takes no routes",
                ));
            }
            let via: IpAddr = r.via.get_ref().parse().map_err(|_| {
                cx.at(
                    &r.via,
                    format!("routes[{ri}].via"),
                    format!("{:?} is not an IP address", r.via.get_ref()),
                )
            })?;
            let to = if r.to.get_ref() == "default" {
                None
            } else {
                let c: Cidr = Cidr::parse_with_prefix(r.to.get_ref()).map_err(|m| {
                    cx.at(&r.to, format!("routes[{ri}].to"), format!("{m}; or write \"default\""))
                })?;
                if !c.in_allowed_range() {
                    return Err(cx.at(
                        &r.to,
                        format!("routes[{ri}].to"),
                        format!("{c} is outside the sandbox ranges; routes may only lead to 10.0.0.0/8 or fd00::/8, or be \"default\""),
                    ));
                }
                if c.addr.is_ipv4() != via.is_ipv4() {
                    return Err(cx.at(
                        &r.via,
                        format!("routes[{ri}].via"),
                        "gateway and destination are of different IP families",
                    ));
                }
                Some(c)
            };
            let h = &hosts[hi];
            let on_link = h
                .interfaces
                .iter()
                .find(|i| i.addrs.iter().any(|c| c.contains(via) && c.addr != via));
            let Some(iface) = on_link else {
                return Err(cx.at(
                    &r.via,
                    format!("routes[{ri}].via"),
                    format!("gateway {via} is not in a subnet of any interface of host {:?}; use a neighbour's address", h.name),
                ));
            };
            let seg = segment_of(iface.link);
            let exists = links.iter().enumerate().any(|(li, l)| {
                segment_of(li) == seg && l.a_addrs.iter().chain(&l.b_addrs).any(|c| c.addr == via)
            });
            if !exists {
                return Err(cx.at(
                    &r.via,
                    format!("routes[{ri}].via"),
                    format!(
                        "no host on that link has address {via}; use the address of a neighbour"
                    ),
                ));
            }
            routes.push(RouteSpec { host: h.name.clone(), to, via });
        }
        Ok(Topology {
            name: raw.name.into_inner(),
            description: raw.description,
            hosts,
            links,
            routes,
            censor,
        })
    }

    /// The topology's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Free-text description.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// All hosts, in file order.
    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// One host by name.
    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// All links, in file order.
    pub fn links(&self) -> &[LinkSpec] {
        &self.links
    }

    /// All routes, in file order.
    pub fn routes(&self) -> &[RouteSpec] {
        &self.routes
    }

    /// The censor spec, if any.
    pub fn censor_spec(&self) -> Option<&CensorSpec> {
        self.censor.as_ref()
    }

    /// `(censor host, inside interface name, outside interface name)`.
    pub fn censor(&self) -> Option<(&str, &str, &str)> {
        self.censor.as_ref().map(|c| (c.host.as_str(), c.inside.as_str(), c.outside.as_str()))
    }

    /// First IPv4 address of a host.
    pub fn ipv4_of(&self, host: &str) -> Option<Ipv4Addr> {
        self.host(host)?.ipv4()
    }

    /// First IPv6 address of a host.
    pub fn ipv6_of(&self, host: &str) -> Option<Ipv6Addr> {
        self.host(host)?.ipv6()
    }
}

/// The default topology, `netns/censored-call.toml`, embedded.
pub const DEFAULT_TOPOLOGY: &str = include_str!("../../../netns/censored-call.toml");

/// The default topology, parsed (a unit test checks that it is valid).
pub fn default_topology() -> Result<Topology, NetnsError> {
    Topology::from_str(DEFAULT_TOPOLOGY, "netns/censored-call.toml")
}
