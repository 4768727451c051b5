//! The censor's flow view: how packets are grouped into flows, which side of a flow a packet
//! comes from, and when a flow is forgotten. The engine keeps its flows in a [`FlowTable`],
//! and so does `callwall inspect` (crates/offline), so a capture read offline is cut into the
//! same flows a live censor would see.
//!
//! The contract:
//! - **Keying**: a flow is a direction-independent 5-tuple ([`FlowKey::new`]); both directions
//!   find the same entry.
//! - **Direction**: the endpoint that sent the flow's first packet is its client; [`side`] says
//!   whether a later packet goes client to server or back (index 0/1 of per-flow arrays).
//! - **Expiry and eviction** ([`FlowTable::make_room`], called before a flow is inserted):
//!   the flows at the front of the insertion order that have been idle for `timeout_ns` or more
//!   are expired (at most two per insertion, so the cost per packet stays constant); when the
//!   table holds `max_flows` flows, the oldest flow is evicted, unless it was active within the
//!   last second (then it goes to the back once: a second chance, up to 8 per insertion). A
//!   flow that is idle past the timeout but not yet expired is found again by its key.
//!
//! The table knows nothing of what a flow carries: `V` is the caller's per-flow state, which
//! says when it last saw a packet ([`Tracked::last_ns`]). Pure: no I/O, no clock.

use std::collections::{HashMap, VecDeque};
use std::ops::Index;

pub use callwall_wire::inspect::Dir as Side;

use crate::flow::{Endpoint, FlowKey};

/// Per-flow state kept in a [`FlowTable`].
pub trait Tracked {
    /// When the flow last saw a packet (the caller's clock, nanoseconds, never going back).
    fn last_ns(&self) -> u64;
}

impl<T: Tracked> Tracked for Box<T> {
    fn last_ns(&self) -> u64 {
        (**self).last_ns()
    }
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// Idle for the timeout or longer.
    Expired,
    /// Pushed out because the table was full.
    Evicted,
}

/// Which way a packet from `src` travels in a flow whose client (first sender) is `client`.
#[inline]
pub fn side(client: Endpoint, src: Endpoint) -> Side {
    if src == client {
        Side::ClientToServer
    } else {
        Side::ServerToClient
    }
}

/// Flows by key, with the insertion order that expiry and eviction walk. See the module docs.
pub struct FlowTable<V> {
    flows: HashMap<FlowKey, V>,
    order: VecDeque<FlowKey>,
}

impl<V> Default for FlowTable<V> {
    fn default() -> Self {
        FlowTable { flows: HashMap::new(), order: VecDeque::new() }
    }
}

impl<V: Tracked> FlowTable<V> {
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    pub fn contains_key(&self, key: &FlowKey) -> bool {
        self.flows.contains_key(key)
    }

    pub fn get(&self, key: &FlowKey) -> Option<&V> {
        self.flows.get(key)
    }

    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut V> {
        self.flows.get_mut(key)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.flows.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.flows.values_mut()
    }

    /// Inserts a new flow (the key must not be in the table; call [`FlowTable::make_room`]
    /// first).
    pub fn insert(&mut self, key: FlowKey, flow: V) {
        self.flows.insert(key, flow);
        self.order.push_back(key);
    }

    /// Takes every flow out, in no particular order.
    pub fn drain(&mut self) -> impl Iterator<Item = V> + '_ {
        self.order.clear();
        self.flows.drain().map(|(_, v)| v)
    }

    /// Expires idle flows at the front of the insertion order and, when the table holds
    /// `max_flows` flows, evicts until there is room for one more; `removed` gets each flow
    /// taken out and why. See the module docs for the rule.
    pub fn make_room(
        &mut self,
        now: u64,
        timeout_ns: u64,
        max_flows: usize,
        mut removed: impl FnMut(Removed, V),
    ) {
        for _ in 0..2 {
            let Some(k) = self.order.front().copied() else { break };
            match self.flows.get(&k) {
                None => {
                    self.order.pop_front();
                }
                Some(f) if now.saturating_sub(f.last_ns()) >= timeout_ns => {
                    self.order.pop_front();
                    if let Some(f) = self.flows.remove(&k) {
                        removed(Removed::Expired, f);
                    }
                }
                Some(_) => break,
            }
        }
        let mut tries = 0;
        while self.flows.len() >= max_flows {
            let Some(k) = self.order.pop_front() else { break };
            let Some(f) = self.flows.get(&k) else { continue };
            tries += 1;
            if tries <= 8 && now.saturating_sub(f.last_ns()) < 1_000_000_000 {
                self.order.push_back(k);
                continue;
            }
            if let Some(f) = self.flows.remove(&k) {
                removed(Removed::Evicted, f);
            }
        }
        // Keep the order queue from growing without bound through second chances.
        if self.order.len() > 2 * max_flows + 16 {
            let flows = &self.flows;
            self.order.retain(|k| flows.contains_key(k));
        }
    }
}

impl<V> Index<&FlowKey> for FlowTable<V> {
    type Output = V;

    fn index(&self, key: &FlowKey) -> &V {
        &self.flows[key]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F(u64);
    impl Tracked for F {
        fn last_ns(&self) -> u64 {
            self.0
        }
    }

    fn ep(port: u16) -> Endpoint {
        Endpoint { ip: "10.1.0.2".parse().unwrap(), port }
    }

    #[test]
    fn first_sender_is_the_client() {
        assert_eq!(side(ep(1), ep(1)), Side::ClientToServer);
        assert_eq!(side(ep(1), ep(2)), Side::ServerToClient);
    }

    #[test]
    fn idle_flows_expire_from_the_front() {
        let mut t = FlowTable::default();
        let (a, b) = (FlowKey::new(17, ep(1), ep(2)), FlowKey::new(17, ep(3), ep(4)));
        t.insert(a, F(0));
        t.insert(b, F(5));
        let mut gone = Vec::new();
        t.make_room(9, 10, 100, |why, f: F| gone.push((why, f.0)));
        assert!(gone.is_empty());
        t.make_room(10, 10, 100, |why, f| gone.push((why, f.0)));
        assert_eq!(gone, [(Removed::Expired, 0)]);
        assert!(t.contains_key(&b) && !t.contains_key(&a));
    }

    #[test]
    fn a_full_table_evicts_the_oldest_idle_flow() {
        let mut t = FlowTable::default();
        let sec = 1_000_000_000;
        let keys: Vec<_> = (0..3).map(|i| FlowKey::new(6, ep(i), ep(100))).collect();
        t.insert(keys[0], F(10 * sec)); // active just now: a second chance
        t.insert(keys[1], F(0));
        t.insert(keys[2], F(10 * sec));
        let mut gone = Vec::new();
        t.make_room(10 * sec, 3600 * sec, 3, |why, f: F| gone.push((why, f.0)));
        assert_eq!(gone, [(Removed::Evicted, 0)]);
        assert_eq!(t.len(), 2);
        assert!(!t.contains_key(&keys[1]));
    }
}
