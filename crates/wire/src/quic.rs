//! QUIC: long and short headers (RFC 8999, RFC 9000 section 17), Initial packet protection
//! (RFC 9001 section 5 for v1, RFC 9369 section 3.3 for v2), the frames an Initial may carry
//! (RFC 9000 section 12.4), and reassembly of the client's CRYPTO stream across Initial packets
//! up to the ClientHello (its SNI and ALPN are then read with [`crate::tls::ClientHello`]).
//!
//! Decryption works in typed stages: [`parse_long_header`] -> [`InitialKeys::client`] ->
//! [`decrypt_initial`] (into a caller-provided scratch buffer, no heap) -> [`frames`] ->
//! [`CryptoReassembler`] -> ClientHello. Only the bounded reassembly buffer lives on the heap.

use crate::reader::Reader;
use crate::tls::{ClientHello, Reassembly};
use aes::cipher::{BlockEncrypt, KeyInit as _};
use aes_gcm::{AeadInPlace, Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use std::fmt;

/// QUIC version 1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369 section 3.1).
pub const VERSION_2: u32 = 0x6b33_43cf;
/// Version Negotiation (RFC 9000 section 17.2.1).
pub const VERSION_NEGOTIATION: u32 = 0;

/// RFC 9001 section 5.2.
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// RFC 9369 section 3.3.1.
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// Largest connection id in QUIC v1 and v2 (RFC 9000 section 17.2).
pub const MAX_CID_LEN: usize = 20;
/// AEAD tag length of AES-128-GCM.
pub const TAG_LEN: usize = 16;
/// A scratch buffer of this size holds any Initial packet of a 1500-byte-MTU path and more.
pub const SCRATCH_LEN: usize = 4096;

/// Why a packet could not be read or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuicError {
    Truncated,
    /// Header form bit is 0.
    NotLongHeader,
    /// The fixed bit is 0 on a non-VN long header (RFC 9000 section 17.2).
    FixedBitClear,
    /// A connection id longer than 20 bytes in v1/v2.
    BadConnectionId,
    /// A version whose Initial protection is not known here.
    UnknownVersion,
    /// Not an Initial packet.
    NotInitial,
    /// The Length field points past the datagram, or leaves no room for the sample.
    BadLength,
    /// The scratch buffer is shorter than the packet.
    ScratchTooSmall,
    /// The AEAD tag did not verify: not a client Initial for this DCID.
    DecryptFailed,
    /// A frame is malformed or not allowed in an Initial packet (RFC 9000 section 12.4).
    BadFrame,
}

impl fmt::Display for QuicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuicError::Truncated => "truncated quic packet",
            QuicError::NotLongHeader => "not a quic long header",
            QuicError::FixedBitClear => "quic fixed bit is zero",
            QuicError::BadConnectionId => "quic connection id longer than 20 bytes",
            QuicError::UnknownVersion => "unknown quic version",
            QuicError::NotInitial => "not a quic initial packet",
            QuicError::BadLength => "quic length field out of range",
            QuicError::ScratchTooSmall => {
                "scratch buffer shorter than the packet; pass a larger one"
            }
            QuicError::DecryptFailed => "quic initial did not decrypt",
            QuicError::BadFrame => "malformed or forbidden frame in a quic initial",
        })
    }
}

impl std::error::Error for QuicError {}

/// Long header packet types (RFC 9000 section 17.2, with the v2 codes of RFC 9369 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LongType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// True for a version this module knows the Initial protection of.
pub const fn is_known_version(v: u32) -> bool {
    v == VERSION_1 || v == VERSION_2
}

/// True for a reserved "greasing" version 0x?a?a?a?a (RFC 9000 section 15).
pub const fn is_reserved_version(v: u32) -> bool {
    v & 0x0f0f_0f0f == 0x0a0a_0a0a
}

/// A parsed long header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongHeader<'a> {
    /// The first byte, still header-protected.
    pub first_byte: u8,
    pub version: u32,
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    /// `None` for Version Negotiation and for versions whose type bits are unknown.
    pub packet_type: Option<LongType>,
    /// Initial only.
    pub token: &'a [u8],
    /// Offset of the packet number (Initial, 0-RTT, Handshake of a known version).
    pub pn_offset: usize,
    /// Bytes of this packet within the datagram (coalesced packets follow it, RFC 9000 section
    /// 12.2). The whole rest of the datagram for Retry, VN and unknown versions.
    pub packet_len: usize,
    /// Version Negotiation only: the supported versions list.
    pub supported_versions: &'a [u8],
}

/// Parses a long header at the start of a datagram (RFC 9000 section 17.2; RFC 8999 section 5.1
/// for the version-independent part).
pub fn parse_long_header(buf: &[u8]) -> Result<LongHeader<'_>, QuicError> {
    let mut r = Reader::new(buf);
    let first_byte = r.u8().ok_or(QuicError::Truncated)?;
    // RFC 8999 section 5.1: header form bit set.
    if first_byte & 0x80 == 0 {
        return Err(QuicError::NotLongHeader);
    }
    let version = r.u32().ok_or(QuicError::Truncated)?;
    let dcid = r.vec8().ok_or(QuicError::Truncated)?;
    let scid = r.vec8().ok_or(QuicError::Truncated)?;
    let mut h = LongHeader {
        first_byte,
        version,
        dcid,
        scid,
        packet_type: None,
        token: &[],
        pn_offset: 0,
        packet_len: buf.len(),
        supported_versions: &[],
    };
    if version == VERSION_NEGOTIATION {
        // RFC 9000 section 17.2.1: a list of 32-bit versions follows.
        h.supported_versions = r.rest();
        if h.supported_versions.is_empty() || h.supported_versions.len() & 3 != 0 {
            return Err(QuicError::BadLength);
        }
        return Ok(h);
    }
    if !is_known_version(version) {
        return Ok(h);
    }
    // RFC 9000 section 17.2: in QUIC version 1, this value MUST NOT exceed 20 bytes.
    if dcid.len() > MAX_CID_LEN || scid.len() > MAX_CID_LEN {
        return Err(QuicError::BadConnectionId);
    }
    // RFC 9000 section 17.2: fixed bit.
    if first_byte & 0x40 == 0 {
        return Err(QuicError::FixedBitClear);
    }
    let bits = (first_byte >> 4) & 3;
    // RFC 9000 section 17.2 table 5; RFC 9369 section 3.2 for v2.
    let ty = match (version == VERSION_2, bits) {
        (false, 0) | (true, 1) => LongType::Initial,
        (false, 1) | (true, 2) => LongType::ZeroRtt,
        (false, 2) | (true, 3) => LongType::Handshake,
        _ => LongType::Retry,
    };
    h.packet_type = Some(ty);
    if ty == LongType::Retry {
        return Ok(h);
    }
    if ty == LongType::Initial {
        // RFC 9000 section 17.2.2: Token Length (i), Token.
        let n = r.varint().ok_or(QuicError::Truncated)?;
        h.token = r
            .take(usize::try_from(n).map_err(|_| QuicError::BadLength)?)
            .ok_or(QuicError::Truncated)?;
    }
    let length = r.varint().ok_or(QuicError::Truncated)?;
    h.pn_offset = r.pos();
    let length = usize::try_from(length).map_err(|_| QuicError::BadLength)?;
    h.packet_len =
        h.pn_offset.checked_add(length).filter(|e| *e <= buf.len()).ok_or(QuicError::BadLength)?;
    Ok(h)
}

/// True when a datagram starts with a QUIC long header of a known or reserved version, or a
/// Version Negotiation packet.
pub fn looks_like_long_header(buf: &[u8]) -> bool {
    match parse_long_header(buf) {
        Ok(h) => {
            h.version == VERSION_NEGOTIATION
                || is_known_version(h.version)
                || is_reserved_version(h.version)
                || h.version >> 8 == 0xff0000 // IETF drafts
        }
        Err(_) => false,
    }
}

/// True when the first byte could be a short header (RFC 9000 section 17.3: form 0, fixed 1).
/// Only meaningful on a flow already known to be QUIC.
pub const fn looks_like_short_header(first_byte: u8) -> bool {
    first_byte & 0xc0 == 0x40
}

/// Packet protection keys for one direction of Initial packets.
#[derive(Clone)]
pub struct InitialKeys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

impl fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitialKeys(..)")
    }
}

/// HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context.
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) -> Option<()> {
    let mut info = [0u8; 2 + 1 + 6 + 32 + 1];
    let n = 6 + label.len();
    if label.len() > 32 {
        return None;
    }
    info[..2].copy_from_slice(&(out.len() as u16).to_be_bytes());
    info[2] = n as u8;
    info[3..9].copy_from_slice(b"tls13 ");
    info[9..9 + label.len()].copy_from_slice(label);
    info[9 + label.len()] = 0;
    prk.expand(&info[..10 + label.len()], out).ok()
}

impl InitialKeys {
    /// The client's Initial keys for `version`, from the DCID of the client's first Initial
    /// (RFC 9001 section 5.2; RFC 9369 section 3.3 for the v2 salt and labels).
    pub fn client(version: u32, dcid: &[u8]) -> Option<InitialKeys> {
        Self::derive(version, dcid, b"client in")
    }

    /// The server's Initial keys (same inputs, label "server in").
    pub fn server(version: u32, dcid: &[u8]) -> Option<InitialKeys> {
        Self::derive(version, dcid, b"server in")
    }

    fn derive(version: u32, dcid: &[u8], side: &[u8]) -> Option<InitialKeys> {
        let (salt, lk, li, lh): (&[u8], &[u8], &[u8], &[u8]) = match version {
            VERSION_1 => (&SALT_V1, b"quic key", b"quic iv", b"quic hp"),
            VERSION_2 => (&SALT_V2, b"quicv2 key", b"quicv2 iv", b"quicv2 hp"),
            _ => return None,
        };
        let initial = Hkdf::<Sha256>::new(Some(salt), dcid);
        let mut secret = [0u8; 32];
        expand_label(&initial, side, &mut secret)?;
        let prk = Hkdf::<Sha256>::from_prk(&secret).ok()?;
        let mut k = InitialKeys { key: [0; 16], iv: [0; 12], hp: [0; 16] };
        expand_label(&prk, lk, &mut k.key)?;
        expand_label(&prk, li, &mut k.iv)?;
        expand_label(&prk, lh, &mut k.hp)?;
        Some(k)
    }

    /// Header protection mask from a 16-byte sample (RFC 9001 section 5.4.3, AES-ECB).
    fn mask(&self, sample: &[u8]) -> [u8; 16] {
        let cipher = aes::Aes128::new((&self.hp).into());
        let mut block = aes::Block::default();
        block.copy_from_slice(&sample[..16]);
        cipher.encrypt_block(&mut block);
        block.into()
    }

    fn nonce(&self, pn: u64) -> [u8; 12] {
        // RFC 9001 section 5.3: the IV XORed with the left-padded packet number.
        let mut n = self.iv;
        for (i, b) in pn.to_be_bytes().iter().enumerate() {
            n[4 + i] ^= b;
        }
        n
    }
}

/// An opened Initial packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedInitial<'s> {
    pub version: u32,
    /// The (truncated) packet number.
    pub packet_number: u64,
    /// Decrypted frames.
    pub payload: &'s [u8],
    /// Bytes of this packet in the datagram.
    pub packet_len: usize,
}

/// Removes header protection and decrypts the Initial packet at the start of `datagram` with
/// `keys`, using `scratch` (at least the packet's length; [`SCRATCH_LEN`] is enough for any
/// 1500-byte path) for the plaintext. RFC 9001 sections 5.3 and 5.4.
pub fn open_initial<'s>(
    datagram: &[u8],
    keys: &InitialKeys,
    scratch: &'s mut [u8],
) -> Result<OpenedInitial<'s>, QuicError> {
    let h = parse_long_header(datagram)?;
    if h.packet_type != Some(LongType::Initial) {
        return Err(QuicError::NotInitial);
    }
    let end = h.packet_len;
    // RFC 9001 section 5.4.2: the sample starts 4 bytes after the packet number offset.
    let sample_at = h.pn_offset + 4;
    if sample_at + 16 > end || end < h.pn_offset + 4 + TAG_LEN {
        return Err(QuicError::BadLength);
    }
    let buf = scratch.get_mut(..end).ok_or(QuicError::ScratchTooSmall)?;
    buf.copy_from_slice(&datagram[..end]);
    let mask = keys.mask(&buf[sample_at..sample_at + 16]);
    // RFC 9001 section 5.4.1: long headers protect the low 4 bits of the first byte.
    buf[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(buf[0] & 0x03) + 1;
    let mut pn = 0u64;
    for i in 0..pn_len {
        buf[h.pn_offset + i] ^= mask[1 + i];
        pn = (pn << 8) | u64::from(buf[h.pn_offset + i]);
    }
    let payload_start = h.pn_offset + pn_len;
    let nonce = keys.nonce(pn);
    let (aad, rest) = buf.split_at_mut(payload_start);
    let (ct, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let cipher = Aes128Gcm::new((&keys.key).into());
    cipher
        .decrypt_in_place_detached(Nonce::from_slice(&nonce), aad, ct, Tag::from_slice(tag))
        .map_err(|_| QuicError::DecryptFailed)?;
    let payload_end = end - TAG_LEN;
    Ok(OpenedInitial {
        version: h.version,
        packet_number: pn,
        payload: &scratch[payload_start..payload_end],
        packet_len: end,
    })
}

/// Decrypts a client Initial with keys derived from its own DCID.
pub fn decrypt_initial<'s>(
    datagram: &[u8],
    scratch: &'s mut [u8],
) -> Result<OpenedInitial<'s>, QuicError> {
    let h = parse_long_header(datagram)?;
    let keys = InitialKeys::client(h.version, h.dcid).ok_or(QuicError::UnknownVersion)?;
    open_initial(datagram, &keys, scratch)
}

/// The frames an Initial packet may carry (RFC 9000 section 12.4 table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One or more PADDING bytes (0x00).
    Padding,
    Ping,
    Ack,
    Crypto {
        offset: u64,
        data: &'a [u8],
    },
    ConnectionClose,
}

/// Iterates the frames of a decrypted Initial payload; yields an error and stops on a malformed
/// or forbidden frame.
pub fn frames(payload: &[u8]) -> Frames<'_> {
    Frames { r: Reader::new(payload), failed: false }
}

#[derive(Debug, Clone)]
pub struct Frames<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> Frames<'a> {
    fn frame(&mut self) -> Option<Frame<'a>> {
        let r = &mut self.r;
        // RFC 9000 section 12.4: frame types are varints; Initial allows only these.
        Some(match r.varint()? {
            // RFC 9000 section 19.1.
            0x00 => {
                while r.rest().first() == Some(&0) {
                    r.skip(1)?;
                }
                Frame::Padding
            }
            // Section 19.2.
            0x01 => Frame::Ping,
            // Section 19.3.
            t @ (0x02 | 0x03) => {
                r.varint()?; // largest acknowledged
                r.varint()?; // ack delay
                let count = r.varint()?;
                r.varint()?; // first ack range
                let mut i = 0;
                while i < count {
                    r.varint()?; // gap
                    r.varint()?; // range length
                    i += 1;
                }
                if t == 0x03 {
                    r.varint()?;
                    r.varint()?;
                    r.varint()?;
                }
                Frame::Ack
            }
            // Section 19.6.
            0x06 => {
                let offset = r.varint()?;
                let len = usize::try_from(r.varint()?).ok()?;
                let data = r.take(len)?;
                // The end of the stream must stay below 2^62.
                if offset.checked_add(len as u64)? >= 1 << 62 {
                    return None;
                }
                Frame::Crypto { offset, data }
            }
            // Section 19.19 (transport CONNECTION_CLOSE only).
            0x1c => {
                r.varint()?;
                r.varint()?;
                let n = usize::try_from(r.varint()?).ok()?;
                r.skip(n)?;
                Frame::ConnectionClose
            }
            _ => return None,
        })
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, QuicError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.is_empty() {
            return None;
        }
        match self.frame() {
            Some(f) => Some(Ok(f)),
            None => {
                self.failed = true;
                Some(Err(QuicError::BadFrame))
            }
        }
    }
}

/// Reassembles a CRYPTO stream from frames at arbitrary offsets, keeping only the first `limit`
/// bytes (offsets at or beyond it are dropped) and at most 16 disjoint ranges.
#[derive(Debug, Clone)]
pub struct CryptoReassembler {
    buf: Vec<u8>,
    ranges: [(u32, u32); 16],
    n: usize,
    limit: usize,
}

impl CryptoReassembler {
    pub fn new(limit: usize) -> Self {
        CryptoReassembler {
            buf: Vec::new(),
            ranges: [(0, 0); 16],
            n: 0,
            limit: limit.min(u32::MAX as usize),
        }
    }

    /// Inserts data at `offset`. Returns false when some of it was dropped (past the limit, or
    /// too many holes).
    pub fn insert(&mut self, offset: u64, data: &[u8]) -> bool {
        let Ok(start) = usize::try_from(offset) else { return false };
        if start >= self.limit {
            return data.is_empty();
        }
        let end = start.saturating_add(data.len()).min(self.limit);
        let whole = end - start == data.len();
        if end == start {
            return whole;
        }
        // Merge [start, end) into the sorted, disjoint, non-adjacent range list.
        let (s, e) = (start as u32, end as u32);
        let mut out = [(0u32, 0u32); 17];
        let mut m = 0;
        let mut cur = (s, e);
        let mut placed = false;
        for &(a, b) in &self.ranges[..self.n] {
            if b < cur.0 {
                out[m] = (a, b);
                m += 1;
            } else if a > cur.1 {
                if !placed {
                    out[m] = cur;
                    m += 1;
                    placed = true;
                }
                out[m] = (a, b);
                m += 1;
            } else {
                cur = (a.min(cur.0), b.max(cur.1));
            }
        }
        if !placed {
            out[m] = cur;
            m += 1;
        }
        if m > self.ranges.len() {
            return false;
        }
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf[start..end].copy_from_slice(&data[..end - start]);
        self.ranges[..m].copy_from_slice(&out[..m]);
        self.n = m;
        whole
    }

    /// The bytes received contiguously from offset 0.
    pub fn contiguous(&self) -> &[u8] {
        match self.ranges[..self.n].first() {
            Some(&(0, e)) => &self.buf[..e as usize],
            _ => &[],
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Where the ClientHello at the start of a reassembled CRYPTO stream stands.
pub fn client_hello_state(stream: &[u8], limit: usize) -> Reassembly {
    let Some(&t) = stream.first() else { return Reassembly::NeedMore };
    if t != crate::tls::handshake::CLIENT_HELLO {
        return Reassembly::NotClientHello;
    }
    let Some(len) = stream.get(1..4) else { return Reassembly::NeedMore };
    let need = 4 + (u32::from_be_bytes([0, len[0], len[1], len[2]]) as usize);
    if need > limit {
        return Reassembly::TooLarge;
    }
    if stream.len() < need {
        return Reassembly::NeedMore;
    }
    match ClientHello::parse_handshake(stream) {
        Ok(_) => Reassembly::Complete,
        Err(_) => Reassembly::NotClientHello,
    }
}

/// Follows the client's Initial packets of one flow until its ClientHello is whole.
#[derive(Debug, Clone)]
pub struct InitialTracker {
    version: u32,
    keys: Option<InitialKeys>,
    crypto: CryptoReassembler,
    state: Reassembly,
    /// Client Initial packets that opened.
    pub packets_opened: u32,
    /// Client Initial packets that carried CRYPTO data.
    pub packets_with_crypto: u32,
}

impl InitialTracker {
    pub fn new(limit: usize) -> Self {
        InitialTracker {
            version: 0,
            keys: None,
            crypto: CryptoReassembler::new(limit),
            state: Reassembly::NeedMore,
            packets_opened: 0,
            packets_with_crypto: 0,
        }
    }

    pub fn state(&self) -> Reassembly {
        self.state
    }

    /// The version of the first client Initial seen.
    pub fn version(&self) -> Option<u32> {
        (self.version != 0).then_some(self.version)
    }

    /// Feeds one client-to-server datagram (coalesced packets are walked; up to 4 per datagram).
    pub fn push_datagram(&mut self, datagram: &[u8], scratch: &mut [u8]) -> Reassembly {
        let mut rest = datagram;
        for _ in 0..4 {
            if self.state != Reassembly::NeedMore || rest.is_empty() {
                break;
            }
            let Ok(h) = parse_long_header(rest) else { break };
            let len = h.packet_len.max(1);
            if h.packet_type == Some(LongType::Initial) {
                self.push_initial(rest, &h, scratch);
            }
            if len >= rest.len() {
                break;
            }
            rest = &rest[len..];
        }
        self.state
    }

    fn push_initial(&mut self, packet: &[u8], h: &LongHeader<'_>, scratch: &mut [u8]) {
        // RFC 9001 section 5.2: keys come from the DCID of the client's first Initial. A
        // Retry changes it, so fall back to this packet's own DCID.
        if self.keys.is_none() || self.version != h.version {
            self.keys = InitialKeys::client(h.version, h.dcid);
            self.version = h.version;
        }
        let Some(keys) = &self.keys else { return };
        let opened = match open_initial(packet, keys, scratch) {
            Ok(o) => o,
            Err(QuicError::DecryptFailed) => {
                let Some(k) = InitialKeys::client(h.version, h.dcid) else { return };
                match open_initial(packet, &k, scratch) {
                    Ok(o) => {
                        self.keys = Some(k);
                        o
                    }
                    Err(_) => return,
                }
            }
            Err(_) => return,
        };
        self.packets_opened += 1;
        let mut any = false;
        for f in frames(opened.payload) {
            match f {
                Ok(Frame::Crypto { offset, data }) => {
                    any = true;
                    if !self.crypto.insert(offset, data) && offset < self.crypto.limit() as u64 {
                        // Holes beyond what we can track: give up rather than guess.
                        self.state = Reassembly::TooLarge;
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if any {
            self.packets_with_crypto += 1;
        }
        self.state = client_hello_state(self.crypto.contiguous(), self.crypto.limit());
    }

    /// The ClientHello, once [`Reassembly::Complete`].
    pub fn client_hello(&self) -> Option<ClientHello<'_>> {
        if self.state != Reassembly::Complete {
            return None;
        }
        ClientHello::parse_handshake(self.crypto.contiguous()).ok()
    }
}

/// Builders for tests, seeds and injected packets (these allocate).
pub mod build {
    use super::*;

    fn varint(v: u64, out: &mut Vec<u8>) {
        if v < 1 << 6 {
            out.push(v as u8);
        } else if v < 1 << 14 {
            out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
        } else if v < 1 << 30 {
            out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
        } else {
            out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
        }
    }

    /// A CRYPTO frame (RFC 9000 section 19.6).
    pub fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06];
        varint(offset, &mut f);
        varint(data.len() as u64, &mut f);
        f.extend_from_slice(data);
        f
    }

    /// A protected client Initial of `version` carrying `frames`, padded with PADDING so the
    /// packet is at least `min_len` bytes. Packet number length 4.
    pub fn client_initial(
        version: u32,
        dcid: &[u8],
        scid: &[u8],
        pn: u32,
        frames: &[u8],
        min_len: usize,
    ) -> Vec<u8> {
        let keys = InitialKeys::client(version, dcid).unwrap_or(InitialKeys {
            key: [0; 16],
            iv: [0; 12],
            hp: [0; 16],
        });
        let type_bits = if version == VERSION_2 { 1 } else { 0 };
        let mut h = vec![0xc0 | (type_bits << 4) | 0x03];
        h.extend_from_slice(&version.to_be_bytes());
        h.push(dcid.len() as u8);
        h.extend_from_slice(dcid);
        h.push(scid.len() as u8);
        h.extend_from_slice(scid);
        h.push(0); // token length
        let mut payload = frames.to_vec();
        // Room for the 2-byte Length, 4-byte pn and tag.
        let fixed = h.len() + 2 + 4 + TAG_LEN;
        if fixed + payload.len() < min_len {
            payload.resize(min_len - fixed, 0);
        }
        // Enough plaintext for the header protection sample.
        if payload.len() < 16 {
            payload.resize(16, 0);
        }
        let length = (4 + payload.len() + TAG_LEN) as u16;
        h.extend_from_slice(&(length | 0x4000).to_be_bytes());
        let pn_offset = h.len();
        h.extend_from_slice(&pn.to_be_bytes());
        let nonce = keys.nonce(u64::from(pn));
        let cipher = Aes128Gcm::new((&keys.key).into());
        let mut body = payload;
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &h, &mut body)
            .unwrap_or_default();
        let mut pkt = h;
        pkt.extend_from_slice(&body);
        pkt.extend_from_slice(&tag);
        let mask = keys.mask(&pkt[pn_offset + 4..pn_offset + 20]);
        pkt[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            pkt[pn_offset + i] ^= mask[1 + i];
        }
        pkt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::tests::{hex, vector};
    use crate::tls::tests::client_hello_msg;
    use proptest::prelude::*;

    #[test]
    fn rfc9001_a1_keys() {
        let k = InitialKeys::client(VERSION_1, &hex("8394c8f03e515708")).unwrap();
        assert_eq!(k.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let k = InitialKeys::server(VERSION_1, &hex("8394c8f03e515708")).unwrap();
        assert_eq!(k.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
    }

    #[test]
    fn rfc9369_a1_keys() {
        let k = InitialKeys::client(VERSION_2, &hex("8394c8f03e515708")).unwrap();
        assert_eq!(k.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(k.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(k.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    fn check_example_com(pkt: &[u8], version: u32) {
        assert_eq!(pkt.len(), 1200);
        let h = parse_long_header(pkt).unwrap();
        assert_eq!((h.version, h.packet_type, h.dcid.len()), (version, Some(LongType::Initial), 8));
        let mut scratch = [0u8; SCRATCH_LEN];
        let o = decrypt_initial(pkt, &mut scratch).unwrap();
        assert_eq!(o.packet_number, 2);
        let mut t = InitialTracker::new(16 * 1024);
        assert_eq!(t.push_datagram(pkt, &mut scratch), Reassembly::Complete);
        let ch = t.client_hello().unwrap();
        assert_eq!(ch.sni(), Some("example.com"));
        assert_eq!(ch.alpn().collect::<Vec<_>>(), vec![&b"alpn"[..]]);
        assert_eq!(t.version(), Some(version));
    }

    #[test]
    fn rfc9001_a2_client_initial_decrypts_to_example_com() {
        check_example_com(&vector("rfc9001-a2-client-initial.hex"), VERSION_1);
    }

    #[test]
    fn rfc9369_a2_client_initial_decrypts_to_example_com() {
        check_example_com(&vector("rfc9369-a2-client-initial.hex"), VERSION_2);
    }

    #[test]
    fn tampered_initial_fails_to_decrypt() {
        let mut pkt = vector("rfc9001-a2-client-initial.hex");
        pkt[500] ^= 1;
        let mut scratch = [0u8; SCRATCH_LEN];
        assert_eq!(decrypt_initial(&pkt, &mut scratch), Err(QuicError::DecryptFailed));
        let mut small = [0u8; 100];
        assert_eq!(
            decrypt_initial(&vector("rfc9001-a2-client-initial.hex"), &mut small),
            Err(QuicError::ScratchTooSmall)
        );
    }

    #[test]
    fn client_hello_split_across_two_initials() {
        for version in [VERSION_1, VERSION_2] {
            let ch = client_hello_msg("split.example", &["h3"], &[]);
            let (a, b) = ch.split_at(ch.len() / 2);
            let dcid = [0x11; 8];
            // Second half first, in the first datagram, to test offsets.
            let p1 = build::client_initial(
                version,
                &dcid,
                &[1, 2],
                0,
                &build::crypto_frame(a.len() as u64, b),
                1200,
            );
            let mut frames2 = vec![0x01]; // PING
            frames2.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x00]); // ACK
            frames2.extend_from_slice(&build::crypto_frame(0, a));
            let p2 = build::client_initial(version, &dcid, &[1, 2], 1, &frames2, 1200);
            let mut scratch = [0u8; SCRATCH_LEN];
            let mut t = InitialTracker::new(16 * 1024);
            assert_eq!(t.push_datagram(&p1, &mut scratch), Reassembly::NeedMore);
            assert_eq!(t.client_hello(), None);
            assert_eq!(t.push_datagram(&p2, &mut scratch), Reassembly::Complete);
            assert_eq!(t.client_hello().unwrap().sni(), Some("split.example"));
            assert_eq!(t.packets_with_crypto, 2);
        }
    }

    #[test]
    fn crypto_reassembler_offsets_and_bounds() {
        let mut c = CryptoReassembler::new(10);
        assert!(c.insert(3, b"def"));
        assert_eq!(c.contiguous(), b"");
        assert!(c.insert(0, b"abc"));
        assert_eq!(c.contiguous(), b"abcdef");
        assert!(!c.insert(8, b"xyz"));
        assert!(c.insert(6, b"gh"));
        assert_eq!(c.contiguous(), b"abcdefghxy");
        assert!(!c.insert(u64::MAX, b"z"));
        let mut c = CryptoReassembler::new(1000);
        for i in 0..16u64 {
            assert!(c.insert(i * 10 + 5, b"x"));
        }
        assert!(!c.insert(500, b"x"), "17th hole is refused");
    }

    #[test]
    fn version_negotiation_and_unknown_versions() {
        let vn = hex("ea00000000089aac5a49ba87a84908f92f4336fa951ba14547471600000001");
        let h = parse_long_header(&vn).unwrap();
        assert_eq!((h.version, h.packet_type), (0, None));
        assert!(looks_like_long_header(&vn));
        let mut unknown = vn.clone();
        unknown[1..5].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        assert!(!looks_like_long_header(&unknown));
        assert!(!looks_like_long_header(b"\x16\xfe\xfd"));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_long_header(&bytes);
            let mut scratch = [0u8; 512];
            let _ = decrypt_initial(&bytes, &mut scratch);
            let _ = frames(&bytes).count();
            let mut t = InitialTracker::new(1024);
            t.push_datagram(&bytes, &mut scratch);
        }

        #[test]
        fn mutated_initial_never_panics(idx in 0usize..1200, val in any::<u8>(), cut in 0usize..1300) {
            let mut p = build::client_initial(VERSION_1, &[7; 8], &[], 0, &build::crypto_frame(0, &client_hello_msg("a.b", &[], &[])), 1200);
            let i = idx % p.len();
            p[i] = val;
            p.truncate(cut);
            let mut scratch = [0u8; SCRATCH_LEN];
            let mut t = InitialTracker::new(16 * 1024);
            t.push_datagram(&p, &mut scratch);
            let _ = t.client_hello().map(|c| c.sni());
        }

        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut c = CryptoReassembler::new(256);
            for f in frames(&bytes).flatten() {
                if let Frame::Crypto { offset, data } = f {
                    c.insert(offset, data);
                }
            }
            let _ = client_hello_state(c.contiguous(), 256);
        }
    }
}
