//! Compiling a raw policy: validation with errors naming the key (`rules[2] "qos".match.server`),
//! host names resolved to prefixes, each `match` key to one typed [`Condition`].

use callwall_units::{Duration, Percent};

use super::raw::{self, NamedAction};
use super::{
    Action, Cidr, Condition, DirMatch, GeParams, Match, NamePattern, Policy, PolicyError,
    ProtoMatch, Resolver, Rule,
};
use crate::flow::Dir;

fn is_valid_rule_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Policy {
    /// Validates a raw policy. `resolve` turns host names into addresses.
    pub fn compile(raw: &raw::Policy, resolve: Resolver<'_>) -> Result<Policy, PolicyError> {
        let top = |path: &str, message: String| PolicyError {
            rule_index: None,
            path: path.into(),
            message,
        };
        let default = raw.default.unwrap_or(NamedAction::Pass);
        if default == NamedAction::Reject {
            return Err(top("default", "the default action can be \"pass\" or \"drop\"".into()));
        }
        let max_flows = raw.max_flows.unwrap_or(65_536);
        if !(16..=4_000_000).contains(&max_flows) {
            return Err(top(
                "max_flows",
                format!("{max_flows} is out of range: use 16 to 4000000"),
            ));
        }
        let inspect_packets = raw.inspect_packets.unwrap_or(16);
        if inspect_packets > 1000 {
            return Err(top(
                "inspect_packets",
                format!("{inspect_packets} is out of range: use 0 to 1000"),
            ));
        }
        let flow_timeout = raw.flow_timeout.unwrap_or(Duration::from_secs(60));
        if flow_timeout == Duration::ZERO {
            return Err(top("flow_timeout", "must be longer than 0s".into()));
        }
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.iter().enumerate() {
            let err = |key: &str, message: String| PolicyError {
                rule_index: Some(i),
                path: format!("rules[{i}] {:?}.{key}", r.name),
                message,
            };
            if !is_valid_rule_name(&r.name) {
                return Err(err("name", "use 1-64 letters, digits, '-', '_' or '.'".into()));
            }
            if raw.rules[..i].iter().any(|o| o.name == r.name) {
                return Err(err(
                    "name",
                    "another rule has this name; rule names must be unique".into(),
                ));
            }
            let (from, until) = match r.active {
                None => (0, u64::MAX),
                Some(w) => {
                    let from = w.from.map_or(0, |d| d.as_nanos());
                    let until = w.until.map_or(u64::MAX, |d| d.as_nanos());
                    if from >= until {
                        return Err(err("active", "`from` must be before `until`".into()));
                    }
                    (from, until)
                }
            };
            let m = compile_match(&r.matches, resolve)
                .map_err(|(k, m)| err(&format!("match.{k}"), m))?;
            if inspect_packets == 0 && m.needs_inspection() {
                return Err(err(
                    "match",
                    "needs the classifiers, but inspect_packets = 0 turns them off: raise it"
                        .into(),
                ));
            }
            let action =
                compile_action(&r.action.0).map_err(|(k, m)| err(&format!("action.{k}"), m))?;
            rules.push(Rule {
                name: r.name.clone(),
                description: r.description.clone(),
                active_from_ns: from,
                active_until_ns: until,
                m,
                action,
            });
        }
        Ok(Policy {
            default: default.into_table_compiled(),
            default_name: if default == NamedAction::Drop {
                "default-drop"
            } else {
                "default-pass"
            },
            malformed: raw.malformed.unwrap_or_default(),
            max_flows,
            inspect_packets,
            flow_timeout_ns: flow_timeout.as_nanos(),
            rules,
        })
    }
}

impl NamedAction {
    fn into_table_compiled(self) -> Action {
        // The named actions have no parameters, so compiling cannot fail.
        compile_action(&self.into_table()).unwrap_or_default()
    }
}

type KeyErr = (String, String);

fn compile_addrs(
    key: &str,
    list: &Option<Vec<String>>,
    resolve: Resolver<'_>,
) -> Result<Option<Vec<Cidr>>, KeyErr> {
    let Some(list) = list else { return Ok(None) };
    if list.is_empty() {
        return Err((key.into(), "empty list; remove the key or name at least one address".into()));
    }
    let mut out = Vec::new();
    for item in list {
        if item.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && !item.contains(':') {
            match resolve(item) {
                Some(cidrs) if !cidrs.is_empty() => out.extend(cidrs),
                _ => {
                    return Err((
                        key.into(),
                        format!(
                            "unknown host {item:?}; name a host of the topology or write a CIDR"
                        ),
                    ))
                }
            }
        } else {
            out.push(item.parse::<Cidr>().map_err(|m| (key.to_string(), m.to_string()))?);
        }
    }
    Ok(Some(out))
}

fn compile_labels(
    key: &str,
    list: &Option<Vec<String>>,
) -> Result<Option<callwall_wire::Labels>, KeyErr> {
    let Some(list) = list else { return Ok(None) };
    if list.is_empty() {
        return Err((key.into(), "empty list; remove the key or name at least one label".into()));
    }
    let mut set = callwall_wire::Labels::EMPTY;
    for name in list {
        let label: callwall_wire::Label = name
            .parse()
            .map_err(|e: callwall_wire::label::UnknownLabel| (key.to_string(), e.to_string()))?;
        set.insert(label);
    }
    Ok(Some(set))
}

fn compile_names(
    key: &str,
    list: &Option<Vec<String>>,
) -> Result<Option<Vec<NamePattern>>, KeyErr> {
    let Some(list) = list else { return Ok(None) };
    if list.is_empty() {
        return Err((key.into(), "empty list; remove the key or name at least one pattern".into()));
    }
    list.iter()
        .map(|s| NamePattern::parse(s).map_err(|m| (key.to_string(), m.to_string())))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Compiles a raw `match` table into its conditions: packet and flow conditions in key order,
/// then those that need the classifiers. `"any"` for `dir` or `proto` compiles to nothing.
fn compile_match(m: &raw::Match, resolve: Resolver<'_>) -> Result<Match, KeyErr> {
    if let (Some(lo), Some(hi)) = (m.min_payload, m.max_payload) {
        if lo > hi {
            return Err(("min_payload".into(), format!("{lo} is above max_payload {hi}")));
        }
    }
    if m.sni_first_packet.is_some() && m.sni.is_none() && m.sni_not.is_none() {
        return Err((
            "sni_first_packet".into(),
            "only applies to sni or sni_not: add one, or remove sni_first_packet".into(),
        ));
    }
    if m.first_packets == Some(0) {
        return Err(("first_packets".into(), "must be at least 1".into()));
    }
    if let (Some(lo), Some(hi)) = (m.min_age, m.max_age) {
        if lo > hi {
            return Err(("min_age".into(), "is above max_age".into()));
        }
    }
    let mut c = Vec::new();
    let mut push = |cond: Option<Condition>| c.extend(cond);
    push(m.dir.and_then(dir_of).map(Condition::Dir));
    push(m.proto.filter(|p| *p != ProtoMatch::Any).map(Condition::Proto));
    push(m.src_port.clone().map(Condition::SrcPort));
    push(m.dst_port.clone().map(Condition::DstPort));
    push(m.server_port.clone().map(Condition::ServerPort));
    push(compile_addrs("src", &m.src, resolve)?.map(Condition::Src));
    push(compile_addrs("dst", &m.dst, resolve)?.map(Condition::Dst));
    push(compile_addrs("server", &m.server, resolve)?.map(Condition::Server));
    push(compile_addrs("server_not", &m.server_not, resolve)?.map(Condition::ServerNot));
    push(m.min_payload.map(Condition::MinPayload));
    push(m.max_payload.map(Condition::MaxPayload));
    push(m.first_packets.map(Condition::FirstPackets));
    push(m.min_age.map(|d| Condition::MinAge(d.as_nanos())));
    push(m.max_age.map(|d| Condition::MaxAge(d.as_nanos())));
    push(m.min_flow_bytes.map(|b| Condition::MinFlowBytes(b.get())));
    push(m.min_client_bytes.map(|b| Condition::MinClientBytes(b.get())));
    push(m.min_server_bytes.map(|b| Condition::MinServerBytes(b.get())));
    push(m.client_port_above_server_port.map(Condition::ClientPortAboveServerPort));
    push(compile_labels("label", &m.label)?.map(Condition::Label));
    push(compile_labels("first_label", &m.first_label)?.map(Condition::FirstLabel));
    push(compile_labels("not_label", &m.not_label)?.map(Condition::NotLabel));
    let first_packet = m.sni_first_packet.unwrap_or(false);
    push(compile_names("sni", &m.sni)?.map(|patterns| Condition::Sni { patterns, first_packet }));
    push(
        compile_names("sni_not", &m.sni_not)?
            .map(|patterns| Condition::SniNot { patterns, first_packet }),
    );
    push(m.alpn.clone().map(Condition::Alpn));
    push(
        m.dtls_fingerprint.as_ref().map(|l| {
            Condition::DtlsFingerprint(l.iter().map(|s| s.to_ascii_lowercase()).collect())
        }),
    );
    push(
        m.tls_fingerprint
            .as_ref()
            .map(|l| Condition::TlsFingerprint(l.iter().map(|s| s.to_ascii_lowercase()).collect())),
    );
    push(compile_names("stun_software", &m.stun_software)?.map(Condition::StunSoftware));
    push(compile_names("stun_username", &m.stun_username)?.map(Condition::StunUsername));
    push(compile_names("stun_realm", &m.stun_realm)?.map(Condition::StunRealm));
    Ok(Match { conditions: c })
}

/// The schema's `"up"`/`"down"`/`"any"` as a direction; `"any"` is none.
fn dir_of(d: DirMatch) -> Option<Dir> {
    match d {
        DirMatch::Up => Some(Dir::Up),
        DirMatch::Down => Some(Dir::Down),
        DirMatch::Any => None,
    }
}

/// How much of the rate the default `burst` holds: 100 ms, a typical round trip from a
/// censored network to a foreign server, so that a TCP flow through the bucket can keep a
/// bandwidth-delay product in flight and get about the policed rate (what the catalog's
/// measured throttles report; docs/scenarios.md, "Policing").
pub const DEFAULT_BURST_NS: u64 = 100_000_000;
/// The smallest default `burst`: four full-size (1500-byte) IP packets, so that at low rates
/// a TCP flow's back-to-back segments (an ACK releasing two or three) fit.
pub const MIN_DEFAULT_BURST: u64 = 4 * 1500;

/// The default depth in bytes of a `police` bucket for `bytes_per_sec`: [`DEFAULT_BURST_NS`]
/// worth of the rate, at least [`MIN_DEFAULT_BURST`].
pub fn default_burst(bytes_per_sec: u64) -> u64 {
    let at_rate = (u128::from(bytes_per_sec) * u128::from(DEFAULT_BURST_NS) / 1_000_000_000) as u64;
    at_rate.max(MIN_DEFAULT_BURST)
}

fn compile_action(a: &raw::ActionTable) -> Result<Action, KeyErr> {
    let e = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
    let blocks = a.drop || a.reject;
    let shapes = a.police.is_some()
        || a.loss.is_some()
        || a.burst_loss.is_some()
        || a.delay.is_some()
        || a.jitter.is_some()
        || a.cut_after.is_some()
        || a.freeze_after.is_some();
    if a.drop && a.reject {
        return e("reject", "choose one of drop and reject");
    }
    if blocks && shapes {
        return e(if a.drop { "drop" } else { "reject" }, "a blocking action drops every packet, so shaping effects with it would never apply; use block_probability to block only some flows");
    }
    if blocks && a.block_probability.is_some() {
        return e(
            "block_probability",
            "already blocking every flow with drop/reject; remove one of them",
        );
    }
    if a.residual.is_some() && !blocks && a.block_probability.is_none() {
        return e(
            "residual",
            "residual blocking follows a block: add drop, reject or block_probability",
        );
    }
    if a.burst.is_some() && a.police.is_none() {
        return e("burst", "burst is the depth of the police token bucket: add police");
    }
    if a.freeze_dir.is_some() && a.freeze_after.is_none() {
        return e("freeze_dir", "freeze_dir needs freeze_after");
    }
    if a.loss.is_some() && a.burst_loss.is_some() {
        return e("loss", "choose one of loss and burst_loss");
    }
    let police = a.police.map(|r| {
        let rate = r.bytes_per_sec().max(1);
        (rate, a.burst.map_or_else(|| default_burst(rate), |b| b.get().max(1)))
    });
    let burst_loss = a.burst_loss.map(|g| GeParams {
        p: g.p.as_fraction(),
        r: g.r.as_fraction(),
        loss_bad: g.loss_bad.map_or(1.0, Percent::as_fraction),
        loss_good: g.loss_good.map_or(0.0, Percent::as_fraction),
    });
    Ok(Action {
        drop: a.drop,
        reject: a.reject,
        police,
        loss: a.loss.map(Percent::as_fraction),
        burst_loss,
        delay_ns: a.delay.map_or(0, Duration::as_nanos),
        jitter_ns: a.jitter.map_or(0, Duration::as_nanos),
        cut_after_ns: a.cut_after.map(Duration::as_nanos),
        freeze_after: a
            .freeze_after
            .map(|b| (b.get(), dir_of(a.freeze_dir.unwrap_or(DirMatch::Down)))),
        block_probability: a.block_probability.map(Percent::as_fraction),
        residual_ns: a.residual.map(Duration::as_nanos),
    })
}
