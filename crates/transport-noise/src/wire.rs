//! Packet framings: how a handshake or data message is laid out on the wire for each strategy.
//!
//! Pure functions over bytes: [`Framing::decode`] never panics and returns `None` for anything
//! that is not a well-formed packet of its framing (the Noise layer then authenticates it).

use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Bytes of the handshake payload the initiator sends in IK message 1 (a TAI64N timestamp,
/// like WireGuard's).
pub const INIT_PAYLOAD_LEN: usize = 12;
/// Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// IK message 1 with a 12-byte payload: e (32) + encrypted s (32 + 16) + payload (12 + 16).
pub const IK_MSG1_LEN: usize = 32 + 48 + INIT_PAYLOAD_LEN + TAG_LEN;
/// IK message 2 with an empty payload: e (32) + empty payload (16).
pub const IK_MSG2_LEN: usize = 32 + TAG_LEN;
/// WireGuard handshake initiation (whitepaper §5.4.2): 148 bytes.
pub const WG_INIT_LEN: usize = 148;
/// WireGuard handshake response (whitepaper §5.4.3): 92 bytes.
pub const WG_RESPONSE_LEN: usize = 92;
/// WireGuard transport data header: type, receiver, counter (whitepaper §5.4.6).
pub const WG_DATA_HEADER_LEN: usize = 16;

const KIND_INIT: u8 = 1;
const KIND_RESPONSE: u8 = 2;
const KIND_DATA: u8 = 4;

/// One protocol message, independent of its framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Noise IK message 1 from the initiator.
    Init { sender: u32, msg: Vec<u8> },
    /// Noise IK message 2 from the responder.
    Response { sender: u32, receiver: u32, msg: Vec<u8> },
    /// A transport message: `ct` is the ChaCha20-Poly1305 ciphertext under nonce `counter`.
    Data { receiver: u32, counter: u64, ct: Vec<u8> },
}

/// The key both sides derive for `udp-obfs` from the callee's static public key.
#[derive(Clone, PartialEq, Eq)]
pub struct ObfsKey([u8; 32]);

impl std::fmt::Debug for ObfsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObfsKey(..)")
    }
}

/// Stream number that separates the key derivation from the per-packet masks.
const OBFS_KDF_STREAM: u64 = u64::from_be_bytes(*b"cw-obfs1");

impl ObfsKey {
    /// `ChaCha20(key = callee public key, stream = "cw-obfs1")`, first 32 bytes: a PRF of the
    /// public key, so the mask key differs from the key a DPI might see elsewhere.
    pub fn from_public_key(pubkey: &[u8]) -> ObfsKey {
        let mut seed = [0u8; 32];
        for (d, s) in seed.iter_mut().zip(pubkey) {
            *d = *s;
        }
        let mut rng = ChaCha20Rng::from_seed(seed);
        rng.set_stream(OBFS_KDF_STREAM);
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        ObfsKey(k)
    }

    /// XORs `buf` with the keystream `ChaCha20(key, stream = prefix)`.
    fn mask(&self, prefix: [u8; 8], buf: &mut [u8]) {
        let mut rng = ChaCha20Rng::from_seed(self.0);
        rng.set_stream(u64::from_be_bytes(prefix));
        let mut ks = vec![0u8; buf.len()];
        rng.fill_bytes(&mut ks);
        for (b, k) in buf.iter_mut().zip(ks) {
            *b ^= k;
        }
    }
}

/// The most padding `udp-obfs` adds to a handshake packet and to a data packet.
pub const OBFS_MAX_PAD_HANDSHAKE: usize = 96;
pub const OBFS_MAX_PAD_DATA: usize = 48;
/// `udp-obfs` overhead before the message: prefix (8) + kind (1) + pad length (2).
pub const OBFS_HEADER_LEN: usize = 11;

/// The variable parts of the WireGuard framing (AmneziaWG's H1-H4 and S1/S2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WgShape {
    /// The 4-byte little-endian message type of initiation, response, cookie reply and data
    /// (WireGuard: 1, 2, 3, 4, i.e. a type byte and three zero bytes).
    pub headers: [u32; 4],
    /// Random bytes before the initiation and before the response (WireGuard: none).
    pub padding: [u16; 2],
}

impl Default for WgShape {
    fn default() -> Self {
        WgShape { headers: [1, 2, 3, 4], padding: [0, 0] }
    }
}

/// How packets look on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// `udp` and `tcp-443` (inside the TCP length prefix): a kind byte (1 init, 2 response,
    /// 4 data), big-endian indices and counter, then the Noise message.
    Plain,
    /// `udp-wg`: WireGuard's message layouts and sizes, or AmneziaWG-style variations of them.
    WireGuard(WgShape),
    /// `udp-obfs`: random prefix, masked header and message, random padding.
    Obfs(ObfsKey),
}

fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_be(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
fn u64_le(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn encode_plain(p: &Packet) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    match p {
        Packet::Init { sender, msg } => {
            v.push(KIND_INIT);
            v.extend_from_slice(&sender.to_be_bytes());
            v.extend_from_slice(msg);
        }
        Packet::Response { sender, receiver, msg } => {
            v.push(KIND_RESPONSE);
            v.extend_from_slice(&sender.to_be_bytes());
            v.extend_from_slice(&receiver.to_be_bytes());
            v.extend_from_slice(msg);
        }
        Packet::Data { receiver, counter, ct } => {
            v.push(KIND_DATA);
            v.extend_from_slice(&receiver.to_be_bytes());
            v.extend_from_slice(&counter.to_be_bytes());
            v.extend_from_slice(ct);
        }
    }
    v
}

fn decode_plain(b: &[u8]) -> Option<Packet> {
    match *b.first()? {
        KIND_INIT => {
            let msg = b.get(5..).filter(|m| !m.is_empty())?;
            Some(Packet::Init { sender: u32_be(b, 1)?, msg: msg.to_vec() })
        }
        KIND_RESPONSE => {
            let msg = b.get(9..).filter(|m| !m.is_empty())?;
            Some(Packet::Response {
                sender: u32_be(b, 1)?,
                receiver: u32_be(b, 5)?,
                msg: msg.to_vec(),
            })
        }
        KIND_DATA => {
            let ct = b.get(13..).filter(|c| c.len() >= TAG_LEN)?;
            Some(Packet::Data { receiver: u32_be(b, 1)?, counter: u64_be(b, 5)?, ct: ct.to_vec() })
        }
        _ => None,
    }
}

fn encode_wg(shape: &WgShape, p: &Packet, rng: &mut dyn RngCore) -> Vec<u8> {
    // mac1 would be a keyed BLAKE2s over the message under the responder's public key
    // (whitepaper §5.4.4); without that key it is indistinguishable from random bytes, which
    // is what we send. mac2 is all zeros, as in WireGuard when no cookie is held.
    let mut macs = [0u8; 32];
    rng.fill_bytes(&mut macs[..16]);
    let [h_init, h_resp, _h_cookie, h_data] = shape.headers;
    // AmneziaWG's S1/S2: random bytes before the message, so its size is no longer fixed.
    let pad = |v: &mut Vec<u8>, n: u16, rng: &mut dyn RngCore| {
        let start = v.len();
        v.resize(start + usize::from(n), 0);
        rng.fill_bytes(&mut v[start..]);
    };
    let mut v = Vec::with_capacity(WG_INIT_LEN + usize::from(shape.padding[0]));
    match p {
        Packet::Init { sender, msg } => {
            pad(&mut v, shape.padding[0], rng);
            v.extend_from_slice(&h_init.to_le_bytes());
            v.extend_from_slice(&sender.to_le_bytes());
            v.extend_from_slice(msg);
            v.extend_from_slice(&macs);
        }
        Packet::Response { sender, receiver, msg } => {
            pad(&mut v, shape.padding[1], rng);
            v.extend_from_slice(&h_resp.to_le_bytes());
            v.extend_from_slice(&sender.to_le_bytes());
            v.extend_from_slice(&receiver.to_le_bytes());
            v.extend_from_slice(msg);
            v.extend_from_slice(&macs);
        }
        Packet::Data { receiver, counter, ct } => {
            v.extend_from_slice(&h_data.to_le_bytes());
            v.extend_from_slice(&receiver.to_le_bytes());
            v.extend_from_slice(&counter.to_le_bytes());
            v.extend_from_slice(ct);
        }
    }
    v
}

fn decode_wg(shape: &WgShape, b: &[u8]) -> Option<Packet> {
    // WireGuard whitepaper §5.4: a little-endian 4-byte type (a type byte and three reserved
    // zero bytes), little-endian indices and counter; initiation exactly 148 bytes, response
    // exactly 92. With a shape, the types are H1-H4 and the handshakes carry S1/S2 leading
    // bytes, recognised (as AmneziaWG does) by their total size first.
    let [h_init, h_resp, _h_cookie, h_data] = shape.headers;
    let (s1, s2) = (usize::from(shape.padding[0]), usize::from(shape.padding[1]));
    if b.len() == s1 + WG_INIT_LEN && u32_le(b, s1)? == h_init {
        let m = &b[s1..];
        return Some(Packet::Init {
            sender: u32_le(m, 4)?,
            msg: m.get(8..8 + IK_MSG1_LEN)?.to_vec(),
        });
    }
    if b.len() == s2 + WG_RESPONSE_LEN && u32_le(b, s2)? == h_resp {
        let m = &b[s2..];
        return Some(Packet::Response {
            sender: u32_le(m, 4)?,
            receiver: u32_le(m, 8)?,
            msg: m.get(12..12 + IK_MSG2_LEN)?.to_vec(),
        });
    }
    if b.len() >= WG_DATA_HEADER_LEN + TAG_LEN && u32_le(b, 0)? == h_data {
        return Some(Packet::Data {
            receiver: u32_le(b, 4)?,
            counter: u64_le(b, 8)?,
            ct: b.get(16..)?.to_vec(),
        });
    }
    None
}

fn encode_obfs(key: &ObfsKey, p: &Packet, rng: &mut dyn RngCore) -> Vec<u8> {
    let max_pad = match p {
        Packet::Data { .. } => OBFS_MAX_PAD_DATA,
        _ => OBFS_MAX_PAD_HANDSHAKE,
    };
    let pad = (rng.next_u32() as usize) % (max_pad + 1);
    let plain = encode_plain(p);
    let mut prefix = [0u8; 8];
    rng.fill_bytes(&mut prefix);
    // Masked: kind (1) | pad length (2, BE) | the rest of the plain encoding.
    let mut body = Vec::with_capacity(plain.len() + 2);
    body.push(plain[0]);
    body.extend_from_slice(&(pad as u16).to_be_bytes());
    body.extend_from_slice(&plain[1..]);
    key.mask(prefix, &mut body);
    let mut v = Vec::with_capacity(8 + body.len() + pad);
    v.extend_from_slice(&prefix);
    v.extend_from_slice(&body);
    let start = v.len();
    v.resize(start + pad, 0);
    rng.fill_bytes(&mut v[start..]);
    v
}

fn decode_obfs(key: &ObfsKey, b: &[u8]) -> Option<Packet> {
    if b.len() < OBFS_HEADER_LEN {
        return None;
    }
    let prefix: [u8; 8] = b.get(..8)?.try_into().ok()?;
    let mut rest = b.get(8..)?.to_vec();
    key.mask(prefix, &mut rest);
    let pad = usize::from(u16::from_be_bytes(rest.get(1..3)?.try_into().ok()?));
    let body_len = rest.len().checked_sub(pad)?;
    if body_len < 3 {
        return None;
    }
    let mut plain = Vec::with_capacity(body_len - 2);
    plain.push(rest[0]);
    plain.extend_from_slice(rest.get(3..body_len)?);
    decode_plain(&plain)
}

impl Framing {
    /// Lays out `p`. `rng` supplies the random bits of the framing (WireGuard's mac1, the
    /// obfuscation prefix and padding).
    pub fn encode(&self, p: &Packet, rng: &mut dyn RngCore) -> Vec<u8> {
        match self {
            Framing::Plain => encode_plain(p),
            Framing::WireGuard(shape) => encode_wg(shape, p, rng),
            Framing::Obfs(key) => encode_obfs(key, p, rng),
        }
    }

    /// Parses a packet of this framing; `None` if it is not one.
    pub fn decode(&self, b: &[u8]) -> Option<Packet> {
        match self {
            Framing::Plain => decode_plain(b),
            Framing::WireGuard(shape) => decode_wg(shape, b),
            Framing::Obfs(key) => decode_obfs(key, b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(7)
    }

    fn samples() -> Vec<Packet> {
        vec![
            Packet::Init { sender: 0x01020304, msg: vec![0xaa; IK_MSG1_LEN] },
            Packet::Response { sender: 5, receiver: 0x01020304, msg: vec![0xbb; IK_MSG2_LEN] },
            Packet::Data { receiver: 5, counter: 0x0102030405060708, ct: vec![0xcc; 96] },
        ]
    }

    #[test]
    fn roundtrip_every_framing() {
        let key = ObfsKey::from_public_key(&[9u8; 32]);
        for f in [Framing::Plain, Framing::WireGuard(WgShape::default()), Framing::Obfs(key)] {
            for p in samples() {
                let bytes = f.encode(&p, &mut rng());
                assert_eq!(f.decode(&bytes), Some(p.clone()), "{f:?}");
            }
        }
    }

    #[test]
    fn wireguard_shapes() {
        let s = samples();
        let f = Framing::WireGuard(WgShape::default());
        let init = f.encode(&s[0], &mut rng());
        assert_eq!(init.len(), WG_INIT_LEN);
        assert_eq!(&init[..8], &[1, 0, 0, 0, 4, 3, 2, 1]);
        assert_eq!(&init[132..148], &[0u8; 16], "mac2 is zero without a cookie");
        let resp = f.encode(&s[1], &mut rng());
        assert_eq!(resp.len(), WG_RESPONSE_LEN);
        assert_eq!(&resp[..4], &[2, 0, 0, 0]);
        let data = f.encode(&s[2], &mut rng());
        assert_eq!(&data[..16], &[4, 0, 0, 0, 5, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
        // Wrong sizes are not WireGuard.
        assert_eq!(f.decode(&init[..147]), None);
        assert_eq!(f.decode(&resp[..91]), None);
        let mut bad = init.clone();
        bad[1] = 1;
        assert_eq!(f.decode(&bad), None);
    }

    #[test]
    fn amnezia_shape_changes_types_and_sizes() {
        let shape = WgShape { headers: [0x11223344, 5, 6, 0x7f000001], padding: [17, 3] };
        let f = Framing::WireGuard(shape);
        for p in samples() {
            let bytes = f.encode(&p, &mut rng());
            assert_eq!(f.decode(&bytes), Some(p.clone()));
            // The plain WireGuard framing no longer reads it.
            assert_eq!(Framing::WireGuard(WgShape::default()).decode(&bytes), None);
        }
        let s = samples();
        let init = f.encode(&s[0], &mut rng());
        assert_eq!(init.len(), WG_INIT_LEN + 17);
        assert_eq!(&init[17..21], &0x11223344u32.to_le_bytes());
        assert_eq!(f.encode(&s[1], &mut rng()).len(), WG_RESPONSE_LEN + 3);
        assert_eq!(&f.encode(&s[2], &mut rng())[..4], &[1, 0, 0, 0x7f]);
    }

    #[test]
    fn plain_sizes_match_the_crate_doc() {
        let s = samples();
        assert_eq!(Framing::Plain.encode(&s[0], &mut rng()).len(), 113);
        assert_eq!(Framing::Plain.encode(&s[1], &mut rng()).len(), 57);
        assert_eq!(Framing::Plain.encode(&s[2], &mut rng())[..5], [4, 0, 0, 0, 5]);
    }

    #[test]
    fn obfs_has_no_fixed_bytes() {
        let key = ObfsKey::from_public_key(&[3u8; 32]);
        let f = Framing::Obfs(key);
        let mut r = rng();
        let pkts: Vec<Vec<u8>> = (0..64).map(|_| f.encode(&samples()[0], &mut r)).collect();
        // No byte position in the first 16 holds one value across all packets, and sizes vary.
        for i in 0..16 {
            assert!(pkts.iter().any(|p| p[i] != pkts[0][i]), "byte {i} is constant");
        }
        assert!(pkts.iter().any(|p| p.len() != pkts[0].len()));
        // Another key cannot read it.
        let other = Framing::Obfs(ObfsKey::from_public_key(&[4u8; 32]));
        assert!(pkts.iter().filter(|p| other.decode(p).is_some()).count() < 4);
    }

    #[test]
    fn garbage_never_panics() {
        let key = ObfsKey::from_public_key(&[1u8; 32]);
        let mut r = rng();
        for f in [Framing::Plain, Framing::WireGuard(WgShape::default()), Framing::Obfs(key)] {
            for len in 0..200 {
                let mut b = vec![0u8; len];
                r.fill_bytes(&mut b);
                let _ = f.decode(&b);
                if let Some(x) = b.first_mut() {
                    *x = 4;
                }
                let _ = f.decode(&b);
            }
        }
    }
}
