//! The censor policy: what a scenario file says (the `raw` serde model, which rejects unknown
//! keys) and the validated, compiled form the engine runs.
//!
//! A policy is an ordered list of rules; for each packet the first rule whose match holds and
//! which is active at that moment decides the action (turmoil-style rule chain). Packets no rule
//! matches get the policy's default action.
//!
//! Modules: `raw` (the schema), `condition` (the typed conditions of a match and their
//! evaluation), `action` (the compiled effects), `compile` (raw to compiled, with errors naming
//! file keys). Addresses are [`callwall_units::Cidr`].

pub mod raw;

mod action;
mod compile;
mod condition;
#[cfg(test)]
mod tests;

pub use action::{Action, GeParams};
pub use callwall_units::Cidr;
pub use compile::{default_burst, DEFAULT_BURST_NS, MIN_DEFAULT_BURST};
pub use condition::{Condition, Match, NamePattern, NamePatternError, Subject};
pub use raw::{BadPort, DirMatch, MalformedPolicy, NamedAction, ProtoMatch, UnknownAction};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    pub rule_index: Option<usize>,
    pub path: String,
    pub message: String,
}

/// A compiled rule chain, ready for the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub default: Action,
    pub default_name: &'static str,
    pub malformed: MalformedPolicy,
    pub max_flows: usize,
    pub inspect_packets: u32,
    pub flow_timeout_ns: u64,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    pub active_from_ns: u64,
    pub active_until_ns: u64,
    pub m: Match,
    pub action: Action,
}

/// Resolves a host name of the topology to the prefixes it covers (its addresses, and the
/// per-call address range the harness uses on it).
pub type Resolver<'a> = &'a dyn Fn(&str) -> Option<Vec<Cidr>>;

/// The empty chain with the schema's defaults: every flow takes the default action (pass).
/// It is what a [`raw::Policy`] with nothing set compiles to.
impl Default for Policy {
    fn default() -> Self {
        Policy::compile(&raw::Policy::default(), &|_| None)
            .unwrap_or_else(|e| unreachable!("the empty policy always compiles: {e}"))
    }
}

impl Policy {
    /// True when some rule needs the classifiers.
    pub fn needs_inspection(&self) -> bool {
        self.rules.iter().any(|r| r.m.needs_inspection())
    }
}
