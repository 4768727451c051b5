//! Reject crafting: for a `reject` decision, a TCP RST both ways (to the sender as if from
//! the receiver, to the receiver as if from the sender) or, for UDP, an ICMP port unreachable
//! back to the sender quoting the packet. Never in answer to a RST.

use callwall_wire::packet::{build, Frame, TcpInfo, PROTO_UDP};

use super::{Engine, Transmit};
use crate::flow::Dir;

impl Engine {
    /// Queues the frames answering a rejected packet; returns how many.
    pub(super) fn inject_reject(
        &mut self,
        dir: Dir,
        f: &Frame<'_>,
        frame: &[u8],
        tcp: Option<TcpInfo>,
        len: usize,
    ) -> u64 {
        let Some(ip) = f.ip else { return 0 };
        let Some(t) = ip.l4.transport() else { return 0 };
        let (a, b) = ((ip.src, t.src_port), (ip.dst, t.dst_port));
        match tcp {
            Some(info) => {
                if info.has(TcpInfo::RST) {
                    return 0;
                }
                let seq_next = info
                    .seq
                    .wrapping_add(len as u32)
                    .wrapping_add(u32::from(info.has(TcpInfo::SYN)));
                // To the sender, as if from the receiver.
                let back = build::tcp(
                    f.dst_mac,
                    f.src_mac,
                    b,
                    a,
                    if info.has(TcpInfo::ACK) { info.ack } else { 0 },
                    seq_next,
                    TcpInfo::RST | TcpInfo::ACK,
                    &[],
                );
                // To the receiver, as if from the sender.
                let fwd = build::tcp(f.src_mac, f.dst_mac, a, b, seq_next, 0, TcpInfo::RST, &[]);
                self.out.push_back(Transmit { dir: dir.reverse(), frame: back });
                self.out.push_back(Transmit { dir, frame: fwd });
                2
            }
            None if ip.proto == PROTO_UDP => {
                let quoted = &frame[f.l3_offset..];
                let icmp = build::port_unreachable(f.dst_mac, f.src_mac, ip.dst, ip.src, quoted);
                self.out.push_back(Transmit { dir: dir.reverse(), frame: icmp });
                1
            }
            None => 0,
        }
    }
}
