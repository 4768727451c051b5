//! UDP bypasses shared by callwall's UDP transports (`reflector`, `noise`, `quic`): the decoy
//! first datagram and the choice of the caller's source port ([`callwall_transport::bypass`]).
//!
//! It lives here because the reflector is the smallest of the three crates; nothing in it is
//! reflector-specific, and it only depends on `callwall-transport`, `rand` and std, so it can
//! move into `callwall_transport::bypass` unchanged.
//!
//! What goes on the wire:
//! - [`decoy_datagram`]: `random` is 64 bytes from the call's seeded generator; `dns` is an
//!   RFC 1035 query (recursion desired, one question, type A, class IN) for an ordinary name;
//!   `stun` is an RFC 8489 Binding request (magic cookie, random transaction id) with a
//!   FINGERPRINT attribute (section 14.7: CRC-32 of the message XOR 0x5354554e).
//! - [`bind_source`]: `below-server` binds a port drawn from `[server/2, server - 1]`,
//!   `above-server` one from `[server + 1, 65535]`, both from the call's seeded generator, trying
//!   the next draw when a port is taken.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;

use callwall_transport::bypass::{Decoy, SourcePort};
use callwall_transport::TransportError;
use rand::{Rng, RngCore};

/// Bytes of a `random` decoy.
pub const RANDOM_DECOY_LEN: usize = 64;
/// STUN magic cookie (RFC 8489 section 5).
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// FINGERPRINT attribute type and XOR value (RFC 8489 section 14.7).
const ATTR_FINGERPRINT: u16 = 0x8028;
const FINGERPRINT_XOR: u32 = 0x5354_554e;
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

/// RFC 1035 section 4.1: header (id, flags RD, QDCOUNT 1), QNAME, QTYPE A, QCLASS IN.
fn dns_query(rng: &mut dyn RngCore) -> Vec<u8> {
    let name = DNS_NAMES[(rng.next_u32() as usize) % DNS_NAMES.len()];
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&(rng.next_u32() as u16).to_be_bytes());
    m.extend_from_slice(&0x0100u16.to_be_bytes()); // standard query, recursion desired
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

/// RFC 8489 section 5 and 14.7: a Binding request whose only attribute is FINGERPRINT.
fn stun_binding_with_fingerprint(rng: &mut dyn RngCore) -> Vec<u8> {
    let mut m = Vec::with_capacity(28);
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    // The length counts the FINGERPRINT attribute (8 bytes) before the CRC is computed.
    m.extend_from_slice(&8u16.to_be_bytes());
    m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    let mut id = [0u8; 12];
    rng.fill_bytes(&mut id);
    m.extend_from_slice(&id);
    let crc = crc32(&m) ^ FINGERPRINT_XOR;
    m.extend_from_slice(&ATTR_FINGERPRINT.to_be_bytes());
    m.extend_from_slice(&4u16.to_be_bytes());
    m.extend_from_slice(&crc.to_be_bytes());
    m
}

/// CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320), as STUN's FINGERPRINT uses.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
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
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn decoys_have_their_shapes() {
        let r = decoy_datagram(Decoy::Random, &mut rng());
        assert_eq!(r.len(), RANDOM_DECOY_LEN);
        assert_eq!(r, decoy_datagram(Decoy::Random, &mut rng()), "seeded");
        let s = decoy_datagram(Decoy::Stun, &mut rng());
        assert_eq!(s.len(), 28);
        assert!(crate::core::binding_request_id(&s).is_some(), "a well-formed binding request");
        assert_eq!(&s[20..24], &[0x80, 0x28, 0, 4]);
        let crc = u32::from_be_bytes(s[24..28].try_into().unwrap());
        assert_eq!(crc ^ FINGERPRINT_XOR, crc32(&s[..20]));
        let d = decoy_datagram(Decoy::Dns, &mut rng());
        assert_eq!(&d[2..6], &[1, 0, 0, 1]);
        assert_eq!(&d[d.len() - 4..], &[0, 1, 0, 1]);
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
