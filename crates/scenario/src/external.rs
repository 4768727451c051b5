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
/// `CALLWALL_MEDIA_PORT` when the scenario does not set one.
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
    pub media_port: u16,
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
    let media_port = p.media_port.unwrap_or(DEFAULT_MEDIA_PORT);
    if media_port == 0 {
        return Err(("peer.media_port", "use a port from 1 to 65535".into()));
    }
    let lead = p.lead.map_or(DEFAULT_LEAD, |d| d.as_std());
    if lead > MAX_LEAD {
        return Err(("peer.lead", format!("use at most {MAX_LEAD:?}")));
    }
    Ok(Some(ExternalPeers {
        caller: p.caller.clone(),
        callee: p.callee.clone(),
        media_port,
        lead,
        relay: p.relay,
    }))
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
        assert_eq!(p.media_port, super::DEFAULT_MEDIA_PORT);
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
}
