//! The callwall censor.
//!
//! - [`policy`]: the rule-chain model a scenario writes (`raw`, serde, unknown keys rejected)
//!   and its validated, compiled form (`compile`): each rule a list of typed
//!   [`policy::Condition`]s and an [`policy::Action`].
//! - [`engine`]: the sans-I/O engine, one module per stage: flow table (`flows`),
//!   classifiers (`classify`), rule chain (`chain`), action effects (`effects`), counters and
//!   decision log (`accounting`), RST/ICMP crafting (`reject`), live control (`control`).
//!   Pure: no clock, no sockets; randomness from the scenario seed.
//! - [`flow`]: flow keys, endpoints and [`Dir`], the direction a frame crosses the censor.
//! - [`control`]: the control channel's protocol (JSON lines: enable, disable or toggle a
//!   rule, swap the policy, status), applied by [`Engine::control`] while a run goes on.
//! - [`control_io`]: the censor process's control input (command lines from a reader, a
//!   wake-up descriptor for the bridge) and control changes as decision-log lines.
//! - [`rng`]: the counter-based draws behind every random decision (pure functions of the
//!   seed, rule, stable flow identity, direction and packet index).
//! - [`bridge`] (Linux): the I/O adapter that runs the engine between two interfaces of the
//!   censor host through AF_PACKET sockets (`recvmmsg`, or a `PACKET_MMAP` TPACKET_V3
//!   receive ring: [`ring`], chosen with [`bridge::BridgeOptions`]), batched `sendmmsg`
//!   sends, a timer queue for held frames and a pcap of what it saw.
//!
//! What it does not do: route (the censor host is a transparent L2 bridge with no addresses),
//! reassemble IP fragments, or modify forwarded frames.

pub mod bridge;
pub mod control;
pub mod control_io;
pub mod engine;
pub mod flow;
pub mod flow_table;
pub mod policy;
pub mod ring;
pub mod rng;
mod sys;

pub use engine::{CensorReport, Dir, Engine, Event, Outcome, RuleCounters, Transmit, Verdict};
pub use policy::Policy;
