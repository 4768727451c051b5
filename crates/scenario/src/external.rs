//! External peers on a call (issue 13): `peer = {caller = [...], callee = [...]}` in place of
//! `transport`/`strategy`. The two commands run inside the caller's and callee's namespaces
//! under the contract of `docs/peers.md`.
//!
//! Commands resolve from the repository root (the directory holding the topology directory,
//! `netns/`): a program with a `/` that is not absolute (`.venv/bin/python3`) is taken from
//! there, and the commands run with it as their working directory, so relative arguments
//! (`peers/aiortc/peer.py`) work the same. A program without a `/` is looked up in `PATH`.

use serde::{Deserialize, Serialize};

/// The transport name results give a call placed by external peers.
pub const TRANSPORT: &str = "external";
/// Its one "strategy" (the peers choose their own path).
pub const STRATEGY: &str = "external";
/// The first `CALLWALL_MEDIA_PORT` given to copies of calls that do not set `media_port`
/// (each such copy gets the next port no other copy of the run uses).
pub const DEFAULT_MEDIA_PORT: u16 = 40000;
/// Time from spawning the peers to the call's start when the scenario does not set `lead`:
/// the reference peers start in under a second (Python with aiortc/aioquic), a browser needs
/// more (set `lead = "8s"` for Chromium).
pub const DEFAULT_LEAD: std::time::Duration = std::time::Duration::from_secs(3);
/// The longest `lead` accepted.
pub const MAX_LEAD: std::time::Duration = std::time::Duration::from_secs(30);

pub(crate) mod raw {
    use serde::Deserialize;

    #[derive(Debug, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Peer {
        pub caller: Vec<String>,
        pub callee: Vec<String>,
        #[serde(default)]
        pub media_port: Option<u16>,
        #[serde(default)]
        pub lead: Option<callwall_units::Duration>,
        #[serde(default)]
        pub relay: bool,
    }
}

/// A validated pair of peer commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalPeers {
    /// Program and arguments of the caller's side.
    pub caller: Vec<String>,
    pub callee: Vec<String>,
    /// `media_port` as written: every copy of the call gets exactly this port. `None`: each
    /// copy gets a port of its own ([`assign_media_ports`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_port: Option<u16>,
    /// `CALLWALL_MEDIA_PORT` of each copy of the call, in placement order (filled in when the
    /// scenario is checked, by [`assign_media_ports`]).
    #[serde(default)]
    pub media_ports: Vec<u16>,
    /// Time from spawning the two commands to the call's start (`CALLWALL_START_UNIX_NS`).
    pub lead: std::time::Duration,
    /// `relay = true`: the run starts its TURN relay (the topology must have a `relay` host)
    /// and hands the peers `CALLWALL_TURN_*`. Peers of every external call get those
    /// variables whenever the run has a relay.
    #[serde(default)]
    pub relay: bool,
}

/// Checks a call's `peer` table against the rest of the call: `Err((key, message))` with the
/// key relative to the call (`peer.caller`, `transport`).
pub(crate) fn validate(
    peer: Option<&raw::Peer>,
    transport: &str,
    has_strategy: bool,
) -> Result<Option<ExternalPeers>, (&'static str, String)> {
    let Some(p) = peer else {
        if transport.is_empty() {
            return Err((
                "transport",
                "missing transport: set transport = \"...\" (and strategy), or \
                 peer = { caller = [...], callee = [...] } for external peers"
                    .into(),
            ));
        }
        return Ok(None);
    };
    if !transport.is_empty() || has_strategy {
        return Err((
            "peer",
            "a call with peer = {...} runs external programs: remove transport and strategy \
             (or remove peer to use a built-in transport)"
                .into(),
        ));
    }
    for (k, cmd) in [("peer.caller", &p.caller), ("peer.callee", &p.callee)] {
        match cmd.first() {
            None => {
                return Err((
                    k,
                    "empty command: give the program and its arguments as a list".into(),
                ))
            }
            Some(prog) if prog.trim().is_empty() => {
                return Err((k, "the program name is empty".into()))
            }
            Some(_) => {}
        }
        if cmd.iter().any(|a| a.contains('\0')) {
            return Err((k, "an argument contains a NUL byte".into()));
        }
    }
    if p.media_port == Some(0) {
        return Err(("peer.media_port", "use a port from 1 to 65535".into()));
    }
    let lead = p.lead.map_or(DEFAULT_LEAD, |d| d.as_std());
    if lead > MAX_LEAD {
        return Err(("peer.lead", format!("use at most {MAX_LEAD:?}")));
    }
    Ok(Some(ExternalPeers {
        caller: p.caller.clone(),
        callee: p.callee.clone(),
        media_port: p.media_port,
        media_ports: Vec::new(),
        lead,
        relay: p.relay,
    }))
}

/// One external call as the port check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortClaim<'a> {
    pub name: &'a str,
    /// The caller's and the callee's host.
    pub hosts: [&'a str; 2],
    /// `media_port` as written.
    pub written: Option<u16>,
    /// Copies placed at once (`count` × `repeat`).
    pub copies: u32,
}

/// The `CALLWALL_MEDIA_PORT` of every copy of every external call of a scenario (they all run
/// at once), or `Err((index of the call at fault, message))` when two copies would share a
/// port on a host: a written port is handed to every copy exactly as written, so a written
/// port on a call of several copies, or the same written port on two calls with a host in
/// common, collides (peers that bind every address, like wireguard-go, would fail to bind).
/// Copies of calls without `media_port` get ports from [`DEFAULT_MEDIA_PORT`] up, skipping
/// every written port and every port already given. Pure.
pub fn assign_media_ports(claims: &[PortClaim<'_>]) -> Result<Vec<Vec<u16>>, (usize, String)> {
    for (i, c) in claims.iter().enumerate() {
        let Some(port) = c.written else { continue };
        if c.copies > 1 {
            return Err((
                i,
                format!(
                    "port {port} is handed to every copy as written, and the {} copies of call \
                     {:?} run at once on the same hosts: remove media_port (each copy then gets \
                     a port of its own) or place one copy",
                    c.copies, c.name
                ),
            ));
        }
        if let Some(o) = claims[..i]
            .iter()
            .find(|o| o.written == Some(port) && o.hosts.iter().any(|h| c.hosts.contains(h)))
        {
            let host = o.hosts.iter().find(|h| c.hosts.contains(h)).copied().unwrap_or("?");
            return Err((
                i,
                format!(
                    "call {:?} also uses media_port {port} on host {host:?} at the same time; \
                     give each call its own port",
                    o.name
                ),
            ));
        }
    }
    let written: std::collections::BTreeSet<u16> =
        claims.iter().filter_map(|c| c.written).collect();
    let mut given = std::collections::BTreeSet::new();
    let mut next = DEFAULT_MEDIA_PORT;
    let mut out = Vec::with_capacity(claims.len());
    for (i, c) in claims.iter().enumerate() {
        if let Some(p) = c.written {
            out.push(vec![p; c.copies as usize]);
            continue;
        }
        let mut ports = Vec::with_capacity(c.copies as usize);
        for _ in 0..c.copies {
            while written.contains(&next) || given.contains(&next) {
                next = next.checked_add(1).ok_or_else(|| {
                    (i, format!("no free media port left above {DEFAULT_MEDIA_PORT}"))
                })?;
            }
            given.insert(next);
            ports.push(next);
        }
        out.push(ports);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::{Catalog, Scenario};

    fn netns_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../netns")
    }

    fn load(text: &str) -> Result<Scenario, crate::ScenarioError> {
        let mut c = Catalog::default();
        c.transports.insert("noise".into(), vec!["udp".into()]);
        Scenario::from_str(text, Path::new("x.toml"), &netns_dir(), &c)
    }

    #[test]
    fn a_peer_table_makes_an_external_call() {
        let sc = load(
            "name = \"x\"\n[[calls]]\nname = \"ext\"\nexpect = \"connected\"\n[calls.peer]\n\
             caller = [\"python3\", \"p.py\", \"--offer\"]\ncallee = [\"python3\", \"p.py\"]\n",
        )
        .unwrap();
        let c = &sc.calls[0];
        assert_eq!(
            (c.transport.as_str(), c.strategies.clone()),
            ("external", vec!["external".into()])
        );
        let p = c.peer.as_ref().unwrap();
        assert_eq!(p.caller, ["python3", "p.py", "--offer"]);
        assert_eq!(p.media_port, None);
        assert_eq!(p.media_ports, [super::DEFAULT_MEDIA_PORT]);
        assert!(!p.relay);
        let sc = load(
            "name = \"x\"\n[[calls]]\nname = \"ext\"\nexpect = \"connected\"\n[calls.peer]\n\
             caller = [\"a\"]\ncallee = [\"b\"]\nrelay = true\n",
        )
        .unwrap();
        assert!(sc.calls[0].peer.as_ref().unwrap().relay);
    }

    #[test]
    fn peer_with_transport_or_without_either_names_line_and_key() {
        let e = load(
            "name = \"x\"\n[[calls]]\ntransport = \"noise\"\nexpect = \"connected\"\n\
             peer = { caller = [\"a\"], callee = [\"b\"] }\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("calls[0].peer")), "{e}");
        let e = load("name = \"x\"\n[[calls]]\nexpect = \"connected\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("calls[0].transport")), "{e}");
        let e = load(
            "name = \"x\"\n[[calls]]\nexpect = \"connected\"\npeer = { caller = [], callee = [\"b\"] }\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("calls[0].peer.caller"), "{e}");
        let e = load(
            "name = \"x\"\n[[calls]]\nexpect = \"connected\"\npeer = { caller = [\"a\"], callee = [\"b\"], port = 1 }\n",
        )
        .unwrap_err();
        assert!(e.message.contains("port"), "{e}");
    }

    #[test]
    fn media_ports_are_as_written_and_unwritten_ones_are_distinct() {
        let call = |name: &str, port: &str, extra: &str| {
            format!(
                "[[calls]]\nname = \"{name}\"\nexpect = \"connected\"\n{extra}[calls.peer]\n\
                 caller = [\"a\"]\ncallee = [\"b\"]\n{port}"
            )
        };
        let sc = load(&format!(
            "name = \"x\"\n{}{}{}",
            call("a", "", "count = 2\n"),
            call("b", "media_port = 40001\n", ""),
            call("c", "media_port = 3478\n", "")
        ))
        .unwrap();
        let ports: Vec<Vec<u16>> =
            sc.calls.iter().map(|c| c.peer.as_ref().unwrap().media_ports.clone()).collect();
        // Written ports exactly; unwritten copies skip them.
        assert_eq!(ports, [vec![40000, 40002], vec![40001], vec![3478]]);
        assert_eq!(sc.calls[2].peer.as_ref().unwrap().media_port, Some(3478));
    }

    #[test]
    fn colliding_media_ports_name_line_and_key() {
        let text = "name = \"x\"\n\
            [[calls]]\nname = \"a\"\nexpect = \"connected\"\n[calls.peer]\ncaller = [\"a\"]\n\
            callee = [\"b\"]\nmedia_port = 3478\n\
            [[calls]]\nname = \"b\"\nexpect = \"connected\"\n[calls.peer]\ncaller = [\"a\"]\n\
            callee = [\"b\"]\nmedia_port = 3478\n";
        let e = load(text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("calls[1].peer.media_port"), "{e}");
        assert_eq!(e.line, Some(15), "{e}");
        assert!(e.message.contains("\"a\"") && e.message.contains("3478"), "{e}");
        let text = "name = \"x\"\n[[calls]]\nname = \"a\"\nexpect = \"connected\"\ncount = 2\n\
            [calls.peer]\ncaller = [\"a\"]\ncallee = [\"b\"]\nmedia_port = 3478\n";
        let e = load(text).unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("calls[0].peer.media_port"), Some(9)), "{e}");
        assert!(e.message.contains("2 copies"), "{e}");
    }

    #[test]
    fn the_port_check_is_pure_and_looks_at_hosts() {
        use super::{assign_media_ports, PortClaim};
        let c = |name, hosts, written| PortClaim { name, hosts, written, copies: 1 };
        // Same port, no host in common: no collision.
        let p = assign_media_ports(&[
            c("a", ["h1", "h2"], Some(5000)),
            c("b", ["h3", "h4"], Some(5000)),
        ])
        .unwrap();
        assert_eq!(p, [vec![5000], vec![5000]]);
        // A host in common (one's caller is the other's callee): collision on the later.
        let e = assign_media_ports(&[
            c("a", ["h1", "h2"], Some(5000)),
            c("b", ["h2", "h4"], Some(5000)),
        ])
        .unwrap_err();
        assert_eq!(e.0, 1);
        assert!(e.1.contains("h2"), "{}", e.1);
    }
}
