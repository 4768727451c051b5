#![no_main]
use callwall_wire::{Dir, FlowInspector, Proto};
use libfuzzer_sys::fuzz_target;

// The input is a flow: each chunk starts with a byte whose bits give the protocol and the
// direction, and whose value gives the chunk length.
fuzz_target!(|data: &[u8]| {
    let mut fi = FlowInspector::new();
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = (usize::from(ctl >> 2) * 24).min(tail.len());
        let (pkt, next) = tail.split_at(len);
        let proto = if ctl & 1 == 0 { Proto::Udp } else { Proto::Tcp };
        let dir = if ctl & 2 == 0 { Dir::ClientToServer } else { Dir::ServerToClient };
        fi.observe(proto, dir, pkt);
        let _ = callwall_wire::classify_datagram(pkt);
        rest = next;
    }
});
