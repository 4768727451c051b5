//! Classification: the first `inspect_packets` packets of each direction of a TCP or UDP flow
//! go to the flow's classifiers ([`callwall_wire::inspect::FlowInspector`]: labels, SNI,
//! ALPN, DTLS fingerprint, STUN attributes). The engine skips this stage when
//! `inspect_packets = 0`.

use callwall_wire::inspect::{self, FlowInspector};
use callwall_wire::packet::{PROTO_TCP, PROTO_UDP};

use super::flows::Flow;

/// Shows one packet (its transport payload, travelling in direction `rel` of the flow, already
/// counted in `flow.packets`) to the flow's classifiers, if it is among the first
/// `inspect_packets` of its direction.
#[inline]
pub(super) fn observe(flow: &mut Flow, rel: usize, inspect_packets: u32, payload: &[u8]) {
    let proto = flow.proto;
    if flow.packets[rel] > u64::from(inspect_packets) || (proto != PROTO_UDP && proto != PROTO_TCP)
    {
        return;
    }
    let insp = flow.inspector.get_or_insert_with(|| {
        Box::new(FlowInspector::with_config(inspect::InspectorConfig {
            max_packets_per_dir: inspect_packets,
            ..Default::default()
        }))
    });
    let p = if proto == PROTO_UDP { inspect::Proto::Udp } else { inspect::Proto::Tcp };
    let d = if rel == 0 { inspect::Dir::ClientToServer } else { inspect::Dir::ServerToClient };
    insp.observe(p, d, payload);
}
