//! UDP bypasses shared by callwall's UDP transports (`reflector`, `noise`, `quic`): the decoy
//! first datagram and the choice of the caller's source port ([`super::Bypass`]).
//!
//! What goes on the wire (the messages are written by `callwall_wire`'s codecs):
//! - [`decoy_datagram`]: `random` is 64 bytes from the call's seeded generator; `dns` is an
//!   RFC 1035 query (recursion desired, one question, type A, class IN) for an ordinary name
//!   ([`dns::Query`]); `stun` is an RFC 8489 Binding request (magic cookie, random transaction
//!   id) with a FINGERPRINT attribute ([`StunRepr`]).
//! - [`bind_source`]: `below-server` binds a port drawn from `[server/2, server - 1]`,
//!   `above-server` one from `[server + 1, 65535]`, both from the call's seeded generator, trying
//!   the next draw when a port is taken.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;

use callwall_wire::dns;
use callwall_wire::stun::StunRepr;
use rand::{Rng, RngCore};

use super::{Decoy, SourcePort};
use crate::TransportError;

/// Bytes of a `random` decoy.
pub const RANDOM_DECOY_LEN: usize = 64;
/// Names a DNS decoy asks for: ordinary, widely resolved names.
const DNS_NAMES: &[&str] = &["www.example.com", "www.wikipedia.org", "yandex.ru", "vk.com"];
/// How many seeded draws [`bind_source`] tries before giving up.
const BIND_TRIES: usize = 64;

/// The decoy datagram of `kind`, with its random parts from `rng`.
pub fn decoy_datagram(kind: Decoy, rng: &mut dyn RngCore) -> Vec<u8> {
    match kind {
        Decoy::Random => {
            let mut b = vec![0u8; RANDOM_DECOY_LEN];
            rng.fill_bytes(&mut b);
            b
        }
        Decoy::Dns => dns_query(rng),
        Decoy::Stun => stun_binding_with_fingerprint(rng),
    }
}

/// A recursive type-A query for one of [`DNS_NAMES`]: the name is the first draw, the id the
/// second.
fn dns_query(rng: &mut dyn RngCore) -> Vec<u8> {
    let name = DNS_NAMES[(rng.next_u32() as usize) % DNS_NAMES.len()];
    let id = rng.next_u32() as u16;
    let name = dns::Name::from_dotted(name).expect("DNS_NAMES are valid names");
    dns::Query::a(id, name).to_bytes()
}

/// A Binding request whose only attribute is FINGERPRINT; the transaction id is 12 drawn bytes.
fn stun_binding_with_fingerprint(rng: &mut dyn RngCore) -> Vec<u8> {
    let mut id = [0u8; 12];
    rng.fill_bytes(&mut id);
    StunRepr { fingerprint: true, ..StunRepr::binding_request(id) }.to_bytes()
}

/// The source ports `choice` allows against a server on `server_port`.
pub fn source_port_range(
    server_port: u16,
    choice: SourcePort,
) -> Result<RangeInclusive<u16>, TransportError> {
    match choice {
        SourcePort::BelowServer if server_port >= 2 => Ok((server_port / 2).max(1)..=server_port - 1),
        SourcePort::AboveServer if server_port < u16::MAX => Ok(server_port + 1..=u16::MAX),
        _ => Err(TransportError::Bypass(format!(
            "bypass.source_port = {}: no such port beside server port {server_port}; pick another server port",
            match choice {
                SourcePort::BelowServer => "below-server",
                SourcePort::AboveServer => "above-server",
            }
        ))),
    }
}

/// Binds the caller's UDP socket on `ip`: an ephemeral port when `choice` is `None`, else a
/// port of [`source_port_range`] drawn from `rng` (the next draw when one is taken). The socket
/// is non-blocking, ready for tokio or quinn.
pub fn bind_source(
    ip: IpAddr,
    server_port: u16,
    choice: Option<SourcePort>,
    rng: &mut dyn RngCore,
) -> Result<UdpSocket, TransportError> {
    let bound = match choice {
        None => UdpSocket::bind(SocketAddr::new(ip, 0))
            .map_err(|e| TransportError::io("binding the caller's udp socket", e))?,
        Some(choice) => {
            let range = source_port_range(server_port, choice)?;
            let mut last = None;
            let mut found = None;
            for _ in 0..BIND_TRIES {
                let port = rng.gen_range(range.clone());
                match UdpSocket::bind(SocketAddr::new(ip, port)) {
                    Ok(s) => {
                        found = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            match (found, last) {
                (Some(s), _) => s,
                (None, Some(e)) => {
                    return Err(TransportError::io("binding the bypass.source_port socket", e))
                }
                (None, None) => unreachable!("BIND_TRIES > 0"),
            }
        }
    };
    bound
        .set_nonblocking(true)
        .map_err(|e| TransportError::io("making the caller's udp socket non-blocking", e))?;
    Ok(bound)
}

/// [`bind_source`] as a tokio socket.
pub fn bind_source_tokio(
    ip: IpAddr,
    server_port: u16,
    choice: Option<SourcePort>,
    rng: &mut dyn RngCore,
) -> Result<tokio::net::UdpSocket, TransportError> {
    let s = bind_source(ip, server_port, choice, rng)?;
    tokio::net::UdpSocket::from_std(s)
        .map_err(|e| TransportError::io("registering the caller's udp socket", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(3)
    }

    #[test]
    fn decoys_have_their_shapes() {
        let r = decoy_datagram(Decoy::Random, &mut rng());
        assert_eq!(r.len(), RANDOM_DECOY_LEN);
        assert_eq!(r, decoy_datagram(Decoy::Random, &mut rng()), "seeded");
        let s = decoy_datagram(Decoy::Stun, &mut rng());
        assert_eq!(s.len(), 28);
        let m = callwall_wire::stun::parse_datagram(&s).expect("a stun message");
        let r = StunRepr::parse(&m).expect("a valid fingerprint");
        assert_eq!(
            r,
            StunRepr { fingerprint: true, ..StunRepr::binding_request(r.transaction_id) }
        );
        let d = decoy_datagram(Decoy::Dns, &mut rng());
        let q = dns::Query::parse(&d).expect("a dns query");
        assert!(DNS_NAMES.contains(&q.name.to_string().as_str()), "{q:?}");
        assert_eq!(q, dns::Query::a(q.id, q.name));
        for name in DNS_NAMES {
            assert!(dns::Name::from_dotted(name).is_ok(), "{name}");
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Today's bytes on the wire, pinned: each decoy kind for a few seeds, and the generator's
    /// next draw after it (so a change in the number or order of draws shows too).
    #[test]
    fn decoy_bytes_are_pinned() {
        let mut got = Vec::new();
        for seed in [0u64, 1, 3, 42] {
            for kind in [Decoy::Random, Decoy::Dns, Decoy::Stun] {
                let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let d = decoy_datagram(kind, &mut r);
                got.push(format!("{seed} {kind:?} {} next={:016x}", hex(&d), r.next_u64()));
            }
        }
        let want: &[&str] = &[
            "0 Random 6c3b9aa767f785b537c0d8ba5fa54677e6a6e281320dfbb27c889b8fa460670f7946023267660de1bdb07e94cb14ae8c3c922e6a9d5338d4ba68d3d27d1c78ef next=cdc4a23a7e88e660",
            "0 Dns f7670100000100000000000003777777076578616d706c6503636f6d0000010001 next=7746a55fbad8c037",
            "0 Stun 000100082112a4426c3b9aa767f785b537c0d8ba80280004b15e0f05 next=81e2a6e67746a55f",
            "1 Random b10da48cea4c09676b8e0efcd806941465060736032bb898420d0863dca72538e5cb1bd553f29f485820e2e9368deab5178aff7ee0df09768e48c5b5423f1427 next=dff1a71b0ab16013",
            "1 Dns 4cea01000001000000000000037777770977696b697065646961036f72670000010001 next=149406d8fc0e8e6b",
            "1 Stun 000100082112a442b10da48cea4c09676b8e0efc802800040605f18a next=36070665149406d8",
            "3 Random 5de9bc1bb4cb7a9f9cf991a32230d014b44274ea5464a352f089a8cccc48691555f4c9c748d9929834a06b4c97e548cf113cda4ffa344e34e40569afdcd41038 next=4987bed19234ffc4",
            "3 Dns cbb401000001000000000000037777770977696b697065646961036f72670000010001 next=14d03022a391f99c",
            "3 Stun 000100082112a4425de9bc1bb4cb7a9f9cf991a380280004f9165a2d next=ea7442b414d03022",
            "42 Random a15b5d39b5bf90ae88917925c63f45f38c53b6c508b7716d52671658f9b29aa0b042b6bcd849e1499e825da45bb463261413875001bfdb4e8428122a0d9bcacd next=c5708f62a0ce0c00",
            "42 Dns bfb501000001000000000000037777770977696b697065646961036f72670000010001 next=f3453fc625799188",
            "42 Stun 000100082112a442a15b5d39b5bf90ae88917925802800043f81aa45 next=c5b6538cf3453fc6",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn source_port_ranges() {
        assert_eq!(source_port_range(443, SourcePort::BelowServer).unwrap(), 221..=442);
        assert_eq!(source_port_range(51820, SourcePort::AboveServer).unwrap(), 51821..=65535);
        assert!(source_port_range(1, SourcePort::BelowServer).is_err());
        assert!(source_port_range(65535, SourcePort::AboveServer).is_err());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let s = bind_source(ip, 40000, Some(SourcePort::BelowServer), &mut rng()).unwrap();
        let p = s.local_addr().unwrap().port();
        assert!((20000..40000).contains(&p), "{p}");
        let s = bind_source(ip, 40000, Some(SourcePort::AboveServer), &mut rng()).unwrap();
        assert!(s.local_addr().unwrap().port() > 40000);
    }
}
