//! The reflector's sans-I/O core: datagrams and the time in, datagrams to send out.
//!
//! Protocol (what is modelled):
//! 1. A client's first datagram on a flow is a STUN Binding request (RFC 8489 §6.3: type
//!    0x0001, magic cookie 0x2112A442). The reflector answers a Binding success response with
//!    XOR-MAPPED-ADDRESS (RFC 8489 §14.2), as Telegram reflectors do before media
//!    (censorship-catalog.md, "Russia after August 2025": STUN Binding to relays [R]).
//! 2. Every other datagram starts with a 16-byte call tag (as tgcalls' reflector packets carry
//!    a peer tag [U]: the real protocol is proprietary). The first two addresses that send a
//!    tag are its two peers; each later datagram from one is sent, unchanged, to the other.
//!    A datagram from a third address for a full tag is dropped and counted.
//!
//! Not modelled: authentication of tags, encryption, the reflector's own keepalives and
//! statistics packets, peer-to-peer upgrade. Tags idle for [`IDLE`] are forgotten.
//!
//! STUN is read and written with `callwall_wire::stun` ([`StunRepr`] for the answer).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callwall_wire::stun::{self, method, StunClass, StunRepr};

/// Length of the call tag that starts every relayed datagram.
pub const TAG_LEN: usize = 16;
/// Tags with no traffic this long are forgotten.
pub const IDLE: Duration = Duration::from_secs(60);
/// Most tags held at once; new tags beyond it are refused (counted).
pub const MAX_TAGS: usize = 4096;

/// A call tag.
pub type Tag = [u8; TAG_LEN];

/// What the reflector did, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub stun_answered: u64,
    pub relayed: u64,
    /// Tagged datagrams with no second peer yet.
    pub waiting: u64,
    /// A third address for a full tag, or a new tag beyond [`MAX_TAGS`].
    pub refused: u64,
    /// Shorter than a tag and not STUN.
    pub malformed: u64,
}

struct Pair {
    peers: [Option<SocketAddr>; 2],
    last: Instant,
}

/// The reflector's state for one listening port.
#[derive(Default)]
pub struct Reflector {
    tags: HashMap<Tag, Pair>,
    out: Vec<(SocketAddr, Vec<u8>)>,
    pub counters: Counters,
}

/// A STUN Binding request's transaction id, if `b` is exactly one (RFC 8489 §5, §6.3): the
/// datagrams the reflector answers.
pub fn binding_request_id(b: &[u8]) -> Option<[u8; 12]> {
    let m = stun::parse_datagram(b).ok()?;
    let binding = m.has_cookie && m.class == StunClass::Request && m.method == method::BINDING;
    binding.then(|| m.transaction_id.try_into().ok()).flatten()
}

/// The mapped address in a Binding success response to `id` (RFC 8489 §14.2), if `b` is one.
pub fn mapped_address(b: &[u8], id: [u8; 12]) -> Option<SocketAddr> {
    let m = stun::parse(b).ok()?;
    let answers = m.class == StunClass::SuccessResponse
        && m.method == method::BINDING
        && m.transaction_id == id;
    m.xor_mapped_address().filter(|_| answers)
}

impl Reflector {
    pub fn new() -> Self {
        Reflector::default()
    }

    /// Handles one datagram from `from` at `now`.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.expire(now);
        if let Some(id) = binding_request_id(datagram) {
            self.counters.stun_answered += 1;
            self.out.push((from, StunRepr::binding_success(id, from).to_bytes()));
            return;
        }
        let Some(tag) = datagram.get(..TAG_LEN).and_then(|t| <Tag>::try_from(t).ok()) else {
            self.counters.malformed += 1;
            return;
        };
        if !self.tags.contains_key(&tag) && self.tags.len() >= MAX_TAGS {
            self.counters.refused += 1;
            return;
        }
        let pair = self.tags.entry(tag).or_insert(Pair { peers: [None, None], last: now });
        pair.last = now;
        let me = match pair.peers {
            [Some(a), _] if a == from => 0,
            [_, Some(b)] if b == from => 1,
            [None, _] => {
                pair.peers[0] = Some(from);
                0
            }
            [_, None] => {
                pair.peers[1] = Some(from);
                1
            }
            _ => {
                self.counters.refused += 1;
                return;
            }
        };
        match pair.peers[1 - me] {
            Some(other) => {
                self.counters.relayed += 1;
                self.out.push((other, datagram.to_vec()));
            }
            None => self.counters.waiting += 1,
        }
    }

    /// The next datagram to send: `(to, bytes)`.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        if self.out.is_empty() {
            None
        } else {
            Some(self.out.remove(0))
        }
    }

    /// Tags currently held.
    pub fn tags(&self) -> usize {
        self.tags.len()
    }

    fn expire(&mut self, now: Instant) {
        self.tags.retain(|_, p| now.saturating_duration_since(p.last) < IDLE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn binding_request(id: [u8; 12]) -> Vec<u8> {
        StunRepr::binding_request(id).to_bytes()
    }

    #[test]
    fn stun_binding_is_answered_with_the_mapped_address() {
        let mut r = Reflector::new();
        let id = [7u8; 12];
        for from in [a("10.1.0.2:40000"), a("[fd00:1::2]:40001")] {
            r.handle(Instant::now(), from, &binding_request(id));
            let (to, resp) = r.poll_transmit().unwrap();
            assert_eq!(to, from);
            assert_eq!(mapped_address(&resp, id), Some(from));
            assert_eq!(mapped_address(&resp, [8; 12]), None);
        }
        assert_eq!(r.counters.stun_answered, 2);
        // A request with a wrong cookie or length is not STUN.
        let mut bad = binding_request(id);
        bad[4] ^= 1;
        assert_eq!(binding_request_id(&bad), None);
        assert_eq!(binding_request_id(&binding_request(id)[..19]), None);
    }

    /// Today's bytes on the wire, pinned: the reflector's answers to a Binding request from an
    /// IPv4 and an IPv6 address, and the request a client sends.
    #[test]
    fn response_bytes_are_pinned() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let id = *b"callwall-id1";
        let mut r = Reflector::new();
        let mut got = vec![hex(&binding_request(id))];
        for from in [a("10.1.0.2:40000"), a("[fd00:1::2]:40001")] {
            r.handle(Instant::now(), from, &binding_request(id));
            got.push(hex(&r.poll_transmit().unwrap().1));
        }
        let want: &[&str] = &[
            "000100002112a44263616c6c77616c6c2d696431",
            "0101000c2112a44263616c6c77616c6c2d696431002000080001bd522b13a440",
            "010100182112a44263616c6c77616c6c2d696431002000140002bd53dc12a44363616c6c77616c6c2d696433",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn tagged_datagrams_are_relayed_between_two_peers() {
        let mut r = Reflector::new();
        let now = Instant::now();
        let tag = [1u8; TAG_LEN];
        let msg = |b: u8| [&tag[..], &[b]].concat();
        let (p1, p2, p3) = (a("10.1.0.2:1"), a("10.2.0.2:2"), a("10.9.0.9:3"));
        r.handle(now, p1, &msg(1));
        assert!(r.poll_transmit().is_none());
        r.handle(now, p2, &msg(2));
        assert_eq!(r.poll_transmit(), Some((p1, msg(2))));
        r.handle(now, p1, &msg(3));
        assert_eq!(r.poll_transmit(), Some((p2, msg(3))));
        r.handle(now, p3, &msg(4));
        assert!(r.poll_transmit().is_none());
        r.handle(now, p3, b"short");
        let c = r.counters;
        assert_eq!((c.relayed, c.waiting, c.refused, c.malformed), (2, 1, 1, 1));
        // Idle tags are forgotten.
        r.handle(now + IDLE, p3, &[[2u8; TAG_LEN].as_slice(), b"x"].concat());
        assert_eq!(r.tags(), 1);
    }

    #[test]
    fn never_panics_on_any_short_input() {
        let mut r = Reflector::new();
        for len in 0..64 {
            for fill in [0u8, 0xff, 0x21] {
                let mut b = vec![fill; len];
                if len >= 8 {
                    b[4..8].copy_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
                }
                r.handle(Instant::now(), a("10.0.0.1:1"), &b);
                let _ = mapped_address(&b, [0; 12]);
            }
        }
    }
}
