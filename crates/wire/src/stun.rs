//! STUN (RFC 8489), classic STUN (RFC 3489), TURN ChannelData (RFC 8656) and the RFC 7983
//! first-byte demultiplexing of a UDP payload that carries several of them.
//!
//! [`parse`] checks the header and walks every attribute once; accessors then read typed
//! attributes from the checked message. Unknown methods and attribute types are data, not errors.
//!
//! The codec (smoltcp's `Repr` style): [`StunRepr`] is the small typed value of a message as
//! callwall writes it (class, method, transaction id, USERNAME, XOR-MAPPED-ADDRESS,
//! FINGERPRINT); [`StunRepr::parse`] reads it from a checked message and [`StunRepr::emit`]
//! writes it. [`ChannelData::emit`] writes a TURN ChannelData message. Parsing then emitting
//! gives back the same value (round-trip tests and the `stun` fuzz target hold them together).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The magic cookie (RFC 8489 section 5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// XORed into the CRC-32 of a FINGERPRINT attribute (RFC 8489 section 14.7).
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// Size of the fixed STUN header.
pub const HEADER_LEN: usize = 20;

/// Attribute types (RFC 8489 section 18.3, RFC 8656 section 18, RFC 8445 section 16.1).
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const SOFTWARE: u16 = 0x8022;
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

/// Methods (RFC 8489 section 18.2, RFC 8656 section 17).
pub mod method {
    pub const BINDING: u16 = 0x001;
    pub const ALLOCATE: u16 = 0x003;
    pub const REFRESH: u16 = 0x004;
    pub const SEND: u16 = 0x006;
    pub const DATA: u16 = 0x007;
    pub const CREATE_PERMISSION: u16 = 0x008;
    pub const CHANNEL_BIND: u16 = 0x009;
}

/// What the first byte of a UDP payload says it is (RFC 7983 section 7, extended by RFC 9443
/// section 3 for QUIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Demux {
    /// 0..=3.
    Stun,
    /// 16..=19.
    Zrtp,
    /// 20..=63.
    Dtls,
    /// 64..=79. (QUIC short headers also start here, RFC 9443.)
    ChannelData,
    /// 128..=191: RTP or RTCP (tell them apart with [`crate::rtp`]).
    Rtp,
    /// 192..=255: a QUIC long header (RFC 9443 section 3).
    QuicLong,
    /// Anything else (4..=15, 80..=127): RFC 7983 says drop; RFC 9443 puts QUIC short headers at
    /// 80..=127.
    Other,
}

/// Demultiplexes on the first byte of a payload (RFC 7983 section 7).
pub const fn demux(first_byte: u8) -> Demux {
    match first_byte {
        0..=3 => Demux::Stun,
        16..=19 => Demux::Zrtp,
        20..=63 => Demux::Dtls,
        64..=79 => Demux::ChannelData,
        128..=191 => Demux::Rtp,
        192..=255 => Demux::QuicLong,
        _ => Demux::Other,
    }
}

/// The class bits of a message type (RFC 8489 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StunClass {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

impl StunClass {
    pub const fn name(self) -> &'static str {
        match self {
            StunClass::Request => "request",
            StunClass::Indication => "indication",
            StunClass::SuccessResponse => "success-response",
            StunClass::ErrorResponse => "error-response",
        }
    }
}

impl fmt::Display for StunClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a payload is not a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunError {
    /// Shorter than the 20-byte header, or than the length the header claims.
    Truncated,
    /// The two most significant bits are not zero (RFC 8489 section 5).
    NotStun,
    /// The length field is not a multiple of 4 (RFC 8489 section 5).
    BadLength,
    /// No magic cookie, and not a classic RFC 3489 message type either.
    WrongCookie,
    /// An attribute runs past the end of the message (RFC 8489 section 14).
    BadAttribute,
    /// More bytes follow the message than padding allows (datagram check only).
    TrailingBytes,
    /// FINGERPRINT does not match the message, or is not the last attribute ([`StunRepr`] only).
    BadFingerprint,
}

impl fmt::Display for StunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StunError::Truncated => "truncated stun message",
            StunError::NotStun => "first two bits are not zero",
            StunError::BadLength => "stun length is not a multiple of 4",
            StunError::WrongCookie => "wrong magic cookie",
            StunError::BadAttribute => "stun attribute runs past the message",
            StunError::TrailingBytes => "bytes after the stun message",
            StunError::BadFingerprint => "stun fingerprint does not match the message",
        })
    }
}

impl std::error::Error for StunError {}

/// One attribute: type, value (without padding), and its offset in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    pub typ: u16,
    pub value: &'a [u8],
    /// Offset of the attribute's type field from the start of the message.
    pub offset: usize,
}

/// A checked STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunMessage<'a> {
    /// The whole message (header + attributes), without any bytes after it.
    pub raw: &'a [u8],
    /// The raw 14-bit message type.
    pub message_type: u16,
    pub class: StunClass,
    /// The 12-bit method (see [`method`]).
    pub method: u16,
    /// Length of the attributes (header bytes 2-3).
    pub length: u16,
    /// False for a classic RFC 3489 message (no magic cookie).
    pub has_cookie: bool,
    /// RFC 8489: the 12 bytes after the cookie. Classic: all 16 bytes from offset 4.
    pub transaction_id: &'a [u8],
}

/// Parses a STUN message at the start of `buf` (bytes after it are allowed: see
/// [`parse_datagram`] for the strict form).
pub fn parse(buf: &[u8]) -> Result<StunMessage<'_>, StunError> {
    let h = buf.get(..HEADER_LEN).ok_or(StunError::Truncated)?;
    // RFC 8489 section 5: the most significant two bits of every STUN message are zeroes.
    if h[0] & 0xc0 != 0 {
        return Err(StunError::NotStun);
    }
    let message_type = u16::from_be_bytes([h[0], h[1]]);
    let length = u16::from_be_bytes([h[2], h[3]]);
    // RFC 8489 section 5: the length is a multiple of 4 since attributes are padded.
    if length % 4 != 0 {
        return Err(StunError::BadLength);
    }
    let total = HEADER_LEN + usize::from(length);
    let raw = buf.get(..total).ok_or(StunError::Truncated)?;
    let cookie = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    // RFC 8489 section 5: the magic cookie field MUST contain 0x2112A442. RFC 8489 section 12
    // (backwards compatibility with RFC 3489): without it, a message is classic STUN, whose
    // message types were Binding (0x0001/0x0101/0x0111) and Shared Secret (0x0002/0x0102/0x0112).
    let has_cookie = cookie == MAGIC_COOKIE;
    if !has_cookie && !matches!(message_type, 0x0001 | 0x0101 | 0x0111 | 0x0002 | 0x0102 | 0x0112) {
        return Err(StunError::WrongCookie);
    }
    let (class, method) = split_message_type(message_type);
    let msg = StunMessage {
        raw,
        message_type,
        class,
        method,
        length,
        has_cookie,
        transaction_id: if has_cookie { &raw[8..20] } else { &raw[4..20] },
    };
    // RFC 8489 section 14: walk the attributes; each is type, length, value padded to 4.
    let mut pos = HEADER_LEN;
    while pos < total {
        let (_, next) = attribute_at(raw, pos).ok_or(StunError::BadAttribute)?;
        pos = next;
    }
    Ok(msg)
}

/// The class and method of a message type (RFC 8489 section 5: C1 is bit 8 and C0 bit 4 of the
/// type; the method is the other 12 bits).
const fn split_message_type(message_type: u16) -> (StunClass, u16) {
    let class = match ((message_type >> 7) & 2) | ((message_type >> 4) & 1) {
        0 => StunClass::Request,
        1 => StunClass::Indication,
        2 => StunClass::SuccessResponse,
        _ => StunClass::ErrorResponse,
    };
    let method =
        (message_type & 0x000f) | ((message_type >> 1) & 0x0070) | ((message_type >> 2) & 0x0f80);
    (class, method)
}

/// The message type of a class and a 12-bit method: the inverse of [`split_message_type`].
const fn join_message_type(class: StunClass, method: u16) -> u16 {
    let c = match class {
        StunClass::Request => 0x0000,
        StunClass::Indication => 0x0010,
        StunClass::SuccessResponse => 0x0100,
        StunClass::ErrorResponse => 0x0110,
    };
    (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | c
}

/// Parses a UDP payload that must be exactly one STUN message (RFC 8489 section 6.2.1: over UDP a
/// datagram carries one message).
pub fn parse_datagram(buf: &[u8]) -> Result<StunMessage<'_>, StunError> {
    let m = parse(buf)?;
    if m.raw.len() != buf.len() {
        return Err(StunError::TrailingBytes);
    }
    Ok(m)
}

/// Reads the attribute whose type field is at `pos`; returns it and the offset of the next one.
fn attribute_at(raw: &[u8], pos: usize) -> Option<(Attribute<'_>, usize)> {
    let typ = u16::from_be_bytes([*raw.get(pos)?, *raw.get(pos + 1)?]);
    let len = usize::from(u16::from_be_bytes([*raw.get(pos + 2)?, *raw.get(pos + 3)?]));
    let value = raw.get(pos + 4..pos + 4 + len)?;
    let next = pos + 4 + len.next_multiple_of(4);
    if next > raw.len() {
        return None;
    }
    Some((Attribute { typ, value, offset: pos }, next))
}

/// Iterator over the attributes of a checked message.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let (a, next) = attribute_at(self.raw, self.pos)?;
        self.pos = next;
        Some(a)
    }
}

/// The outcome of checking a FINGERPRINT attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// The value in the attribute.
    pub value: u32,
    /// The value computed over the message.
    pub computed: u32,
    /// True when FINGERPRINT is the last attribute, as RFC 8489 section 14.7 requires.
    pub last: bool,
}

impl Fingerprint {
    pub fn is_valid(&self) -> bool {
        self.value == self.computed
    }
}

impl<'a> StunMessage<'a> {
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes { raw: self.raw, pos: HEADER_LEN }
    }

    /// The first attribute of a type.
    pub fn attribute(&self, typ: u16) -> Option<Attribute<'a>> {
        self.attributes().find(|a| a.typ == typ)
    }

    /// USERNAME (RFC 8489 section 14.3).
    pub fn username(&self) -> Option<&'a [u8]> {
        self.attribute(attr::USERNAME).map(|a| a.value)
    }

    /// REALM (RFC 8489 section 14.9).
    pub fn realm(&self) -> Option<&'a [u8]> {
        self.attribute(attr::REALM).map(|a| a.value)
    }

    /// SOFTWARE (RFC 8489 section 14.14).
    pub fn software(&self) -> Option<&'a [u8]> {
        self.attribute(attr::SOFTWARE).map(|a| a.value)
    }

    /// True when MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 is present (RFC 8489 sections
    /// 14.5, 14.6). The HMAC is not checked: the censor has no key.
    pub fn has_message_integrity(&self) -> bool {
        self.attributes()
            .any(|a| a.typ == attr::MESSAGE_INTEGRITY || a.typ == attr::MESSAGE_INTEGRITY_SHA256)
    }

    /// XOR-MAPPED-ADDRESS (RFC 8489 section 14.2).
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.xor_address(attr::XOR_MAPPED_ADDRESS)
    }

    /// Any XOR-encoded address attribute (XOR-MAPPED, XOR-PEER, XOR-RELAYED), decoded per RFC
    /// 8489 section 14.2. None for classic messages, which have no cookie to XOR with.
    pub fn xor_address(&self, typ: u16) -> Option<SocketAddr> {
        if !self.has_cookie {
            return None;
        }
        let v = self.attribute(typ)?.value;
        let key = xor_key(self.transaction_id.try_into().ok()?);
        let port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
        let ip = match *v.get(1)? {
            FAMILY_IPV4 => {
                let a: [u8; 4] = v.get(4..8)?.try_into().ok()?;
                IpAddr::V4(Ipv4Addr::from(xor_with(a, &key)))
            }
            FAMILY_IPV6 => {
                let a: [u8; 16] = v.get(4..20)?.try_into().ok()?;
                IpAddr::V6(Ipv6Addr::from(xor_with(a, &key)))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }

    /// Checks FINGERPRINT (RFC 8489 section 14.7): CRC-32 of the message up to the attribute,
    /// with the header length covering the attribute, XOR 0x5354554e. None when absent.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        let mut it = self.attributes();
        let a = it.find(|a| a.typ == attr::FINGERPRINT)?;
        let last = it.next().is_none();
        let value = u32::from_be_bytes(a.value.try_into().ok()?);
        // The length field must count up to the end of FINGERPRINT; patch it if attributes follow.
        let len_upto = (a.offset + 8 - HEADER_LEN) as u16;
        let mut crc = Crc32::new();
        crc.update(&self.raw[..2]);
        crc.update(&len_upto.to_be_bytes());
        crc.update(&self.raw[4..a.offset]);
        Some(Fingerprint { value, computed: crc.finish() ^ FINGERPRINT_XOR, last })
    }
}

/// CRC-32 (ISO-HDLC, as used by Ethernet, zlib and STUN's FINGERPRINT).
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

impl Crc32 {
    pub const fn new() -> Self {
        Crc32(0xffff_ffff)
    }

    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for b in data {
            c = CRC_TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    pub const fn finish(self) -> u32 {
        !self.0
    }

    pub fn checksum(data: &[u8]) -> u32 {
        let mut c = Crc32::new();
        c.update(data);
        c.finish()
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Crc32::new()
    }
}

/// Address families of the XOR address attributes (RFC 8489 section 14.1).
const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// What an XOR address attribute's address is XORed with (RFC 8489 section 14.2): the magic
/// cookie, then (IPv6 only) the transaction id.
fn xor_key(transaction_id: [u8; 12]) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(&transaction_id);
    key
}

fn xor_with<const N: usize>(mut a: [u8; N], key: &[u8; 16]) -> [u8; N] {
    for (b, k) in a.iter_mut().zip(key) {
        *b ^= k;
    }
    a
}

/// A STUN message as callwall writes it (RFC 8489 sections 5 and 14): the typed value beside the
/// checked [`StunMessage`] view.
///
/// [`StunRepr::emit`] writes the header with the magic cookie, then USERNAME,
/// XOR-MAPPED-ADDRESS and FINGERPRINT in that order, each when set, values padded with zeros to
/// a multiple of 4 (RFC 8489 section 14). [`StunRepr::parse`] reads the first attribute of each
/// of those types and passes over the others, so `parse(emit(r)) == r` for every `r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunRepr<'a> {
    pub class: StunClass,
    /// The 12-bit method (see [`method`]); higher bits are not written.
    pub method: u16,
    pub transaction_id: [u8; 12],
    /// USERNAME (RFC 8489 section 14.3).
    pub username: Option<&'a [u8]>,
    /// XOR-MAPPED-ADDRESS (RFC 8489 section 14.2).
    pub xor_mapped_address: Option<SocketAddr>,
    /// FINGERPRINT (RFC 8489 section 14.7), always the last attribute.
    pub fingerprint: bool,
}

impl<'a> StunRepr<'a> {
    /// A Binding request with no attributes (RFC 8489 section 6.3).
    pub const fn binding_request(transaction_id: [u8; 12]) -> Self {
        StunRepr {
            class: StunClass::Request,
            method: method::BINDING,
            transaction_id,
            username: None,
            xor_mapped_address: None,
            fingerprint: false,
        }
    }

    /// A Binding success response naming `mapped` in XOR-MAPPED-ADDRESS (RFC 8489 section
    /// 6.3.1.1).
    pub const fn binding_success(transaction_id: [u8; 12], mapped: SocketAddr) -> Self {
        StunRepr {
            class: StunClass::SuccessResponse,
            xor_mapped_address: Some(mapped),
            ..StunRepr::binding_request(transaction_id)
        }
    }

    /// Reads the typed value of a checked message. A classic RFC 3489 message has no cookie and
    /// a 16-byte transaction id: [`StunError::WrongCookie`]. An XOR-MAPPED-ADDRESS that does not
    /// decode is [`StunError::BadAttribute`]; a FINGERPRINT that does not match or is not last,
    /// [`StunError::BadFingerprint`].
    pub fn parse(m: &StunMessage<'a>) -> Result<Self, StunError> {
        let transaction_id = <[u8; 12]>::try_from(m.transaction_id)
            .ok()
            .filter(|_| m.has_cookie)
            .ok_or(StunError::WrongCookie)?;
        let xor_mapped_address = match m.attribute(attr::XOR_MAPPED_ADDRESS) {
            None => None,
            Some(_) => Some(m.xor_mapped_address().ok_or(StunError::BadAttribute)?),
        };
        let fingerprint = match m.fingerprint() {
            None => false,
            Some(f) if f.is_valid() && f.last => true,
            Some(_) => return Err(StunError::BadFingerprint),
        };
        Ok(StunRepr {
            class: m.class,
            method: m.method,
            transaction_id,
            username: m.username(),
            xor_mapped_address,
            fingerprint,
        })
    }

    /// Bytes of the attributes (header excluded), padding included.
    fn attributes_len(&self) -> usize {
        let username = self.username.map_or(0, |u| 4 + u.len().next_multiple_of(4));
        let address = match self.xor_mapped_address {
            None => 0,
            Some(SocketAddr::V4(_)) => 4 + 8,
            Some(SocketAddr::V6(_)) => 4 + 20,
        };
        username + address + if self.fingerprint { 8 } else { 0 }
    }

    /// Bytes [`StunRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.attributes_len()
    }

    /// Appends the message to `out`.
    ///
    /// # Panics
    /// When the attributes do not fit the 16-bit length field (a USERNAME near 64 KiB).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let length = u16::try_from(self.attributes_len()).expect("stun attributes over 64 KiB");
        out.reserve(self.buffer_len());
        out.extend_from_slice(&join_message_type(self.class, self.method).to_be_bytes());
        // RFC 8489 section 14.7: the length already counts FINGERPRINT when its CRC is computed.
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        out.extend_from_slice(&self.transaction_id);
        if let Some(u) = self.username {
            emit_attribute(out, attr::USERNAME, u);
        }
        if let Some(a) = self.xor_mapped_address {
            let key = xor_key(self.transaction_id);
            let port = a.port() ^ (MAGIC_COOKIE >> 16) as u16;
            let mut v = [0u8; 20];
            v[2..4].copy_from_slice(&port.to_be_bytes());
            let len = match a.ip() {
                IpAddr::V4(ip) => {
                    v[1] = FAMILY_IPV4;
                    v[4..8].copy_from_slice(&xor_with(ip.octets(), &key));
                    8
                }
                IpAddr::V6(ip) => {
                    v[1] = FAMILY_IPV6;
                    v[4..20].copy_from_slice(&xor_with(ip.octets(), &key));
                    20
                }
            };
            emit_attribute(out, attr::XOR_MAPPED_ADDRESS, &v[..len]);
        }
        if self.fingerprint {
            let crc = Crc32::checksum(&out[start..]) ^ FINGERPRINT_XOR;
            emit_attribute(out, attr::FINGERPRINT, &crc.to_be_bytes());
        }
    }

    /// The message as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

/// One attribute: type, length, value, zero padding to a multiple of 4 (RFC 8489 section 14).
/// The caller keeps `value` under 64 KiB (the message's own length is checked first).
fn emit_attribute(out: &mut Vec<u8>, typ: u16, value: &[u8]) {
    out.extend_from_slice(&typ.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (value.len().next_multiple_of(4) - value.len()), 0);
}

/// A TURN ChannelData message (RFC 8656 section 12.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    pub channel: u16,
    pub data: &'a [u8],
}

/// Parses a ChannelData message at the start of `buf`. Bytes after the data are allowed only up
/// to the 4-byte padding RFC 8656 section 12.5 permits, so that one UDP datagram is one message.
pub fn parse_channel_data(buf: &[u8]) -> Option<ChannelData<'_>> {
    let channel = u16::from_be_bytes([*buf.first()?, *buf.get(1)?]);
    // RFC 8656 section 12: channel numbers 0x4000 through 0x4FFF.
    if !(0x4000..=0x4FFF).contains(&channel) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]));
    let data = buf.get(4..4 + len)?;
    // RFC 8656 section 12.5: over UDP the padding is not required but may be present.
    if buf.len() - 4 - len > 3 {
        return None;
    }
    Some(ChannelData { channel, data })
}

/// Bytes of a ChannelData header: channel number and length (RFC 8656 section 12.4).
pub const CHANNEL_DATA_HEADER_LEN: usize = 4;

impl ChannelData<'_> {
    /// Bytes [`ChannelData::emit`] writes: header, data and, over a stream, the padding.
    pub fn buffer_len(&self, padded: bool) -> usize {
        let len = CHANNEL_DATA_HEADER_LEN + self.data.len();
        if padded {
            len.next_multiple_of(4)
        } else {
            len
        }
    }

    /// Appends the message to `out`: channel number, length, data, and when `padded` zeros up to
    /// a multiple of 4, as a TCP or TLS stream requires (RFC 8656 section 12.5; over UDP the
    /// padding is optional and callwall leaves it out). The length field never counts the
    /// padding.
    ///
    /// # Panics
    /// When `data` is over 65535 bytes (the length field cannot say it).
    pub fn emit(&self, out: &mut Vec<u8>, padded: bool) {
        let len = u16::try_from(self.data.len()).expect("channeldata over 64 KiB");
        let end = out.len() + self.buffer_len(padded);
        out.extend_from_slice(&self.channel.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(self.data);
        out.resize(end, 0);
    }

    /// The message as a new buffer (see [`ChannelData::emit`]).
    pub fn to_bytes(&self, padded: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len(padded));
        self.emit(&mut out, padded);
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A hex test vector from `testdata/`.
    pub(crate) fn vector(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        hex(&std::fs::read_to_string(path).unwrap())
    }

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
    }

    /// RFC 5769 section 2.1: sample request.
    pub(crate) fn rfc5769_request() -> Vec<u8> {
        hex("00010058 2112a442 b7e7a701bc34d686fa87dfae
             80220010 5354554e207465737420636c69656e74
             00240004 6e0001ff
             80290008 932ff9b151263b36
             00060009 6576746a3a68367659202020
             00080014 9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2
             80280004 e57a3bcf")
    }

    /// RFC 5769 section 2.2: sample IPv4 response.
    fn rfc5769_ipv4_response() -> Vec<u8> {
        hex("0101003c 2112a442 b7e7a701bc34d686fa87dfae
             8022000b 7465737420766563746f7220
             00200008 0001a147e112a643
             00080014 2b91f599fd9e90c38c7489f92af9ba53f06be7d7
             80280004 c07d4c96")
    }

    /// RFC 5769 section 2.3: sample IPv6 response.
    fn rfc5769_ipv6_response() -> Vec<u8> {
        hex("01010048 2112a442 b7e7a701bc34d686fa87dfae
             8022000b 7465737420766563746f7220
             00200014 0002a1470113a9faa5d3f179bc25f4b5bed2b9d9
             00080014 a382954e4be67bf11784c97c8292c275bfe3ed41
             80280004 c8fb0b4c")
    }

    #[test]
    fn rfc5769_request_parses_and_fingerprint_verifies() {
        let b = rfc5769_request();
        let m = parse_datagram(&b).unwrap();
        assert_eq!((m.class, m.method, m.length), (StunClass::Request, method::BINDING, 0x58));
        assert!(m.has_cookie);
        assert_eq!(m.transaction_id, &hex("b7e7a701bc34d686fa87dfae")[..]);
        assert_eq!(m.software(), Some(&b"STUN test client"[..]));
        assert_eq!(m.username(), Some(&b"evtj:h6vY"[..]));
        assert!(m.has_message_integrity());
        let fp = m.fingerprint().unwrap();
        assert!(fp.is_valid() && fp.last, "{fp:x?}");
        assert_eq!(m.attributes().count(), 6);
        assert_eq!(demux(b[0]), Demux::Stun);
    }

    #[test]
    fn rfc5769_responses_decode_xor_mapped_address() {
        let b = rfc5769_ipv4_response();
        let m = parse_datagram(&b).unwrap();
        assert_eq!(m.class, StunClass::SuccessResponse);
        assert_eq!(m.xor_mapped_address(), Some("192.0.2.1:32853".parse().unwrap()));
        assert!(m.fingerprint().unwrap().is_valid());
        let b = rfc5769_ipv6_response();
        let m = parse_datagram(&b).unwrap();
        assert_eq!(
            m.xor_mapped_address(),
            Some("[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap())
        );
        assert!(m.fingerprint().unwrap().is_valid());
    }

    #[test]
    fn corrupted_fingerprint_fails() {
        let mut b = rfc5769_request();
        b[30] ^= 1; // inside SOFTWARE
        let m = parse_datagram(&b).unwrap();
        assert!(!m.fingerprint().unwrap().is_valid());
    }

    #[test]
    fn near_misses() {
        let good = rfc5769_request();
        // Wrong cookie on a non-classic type.
        let mut b = good.clone();
        b[0..2].copy_from_slice(&0x0003u16.to_be_bytes());
        b[4] = 0x21;
        b[5] = 0x13;
        assert_eq!(parse(&b), Err(StunError::WrongCookie));
        // Length not a multiple of 4.
        let mut b = good.clone();
        b[3] = 0x57;
        assert_eq!(parse(&b), Err(StunError::BadLength));
        // Length past the buffer.
        let mut b = good.clone();
        b[3] = 0x5c;
        assert_eq!(parse(&b), Err(StunError::Truncated));
        // Top bits set.
        let mut b = good.clone();
        b[0] = 0x40;
        assert_eq!(parse(&b), Err(StunError::NotStun));
        // Attribute length overruns.
        let mut b = good.clone();
        b[23] = 0xff;
        assert_eq!(parse(&b), Err(StunError::BadAttribute));
        // Trailing bytes in a datagram.
        let mut b = good;
        b.push(0);
        assert!(parse(&b).is_ok());
        assert_eq!(parse_datagram(&b), Err(StunError::TrailingBytes));
    }

    #[test]
    fn classic_rfc3489_binding_request_is_flagged() {
        let mut b = vec![0x00, 0x01, 0x00, 0x08];
        b.extend_from_slice(&[0x5a; 16]);
        b.extend_from_slice(&[0x00, 0x03, 0x00, 0x04, 0, 0, 0, 0]); // CHANGE-REQUEST
        let m = parse_datagram(&b).unwrap();
        assert!(!m.has_cookie);
        assert_eq!(m.transaction_id.len(), 16);
        assert_eq!(m.xor_mapped_address(), None);
    }

    #[test]
    fn method_and_class_bits() {
        // Allocate error response 0x0113; ChannelBind success 0x0109; Data indication 0x0017.
        for (t, c, meth) in [
            (0x0113u16, StunClass::ErrorResponse, method::ALLOCATE),
            (0x0109, StunClass::SuccessResponse, method::CHANNEL_BIND),
            (0x0017, StunClass::Indication, method::DATA),
            (0x3fff, StunClass::ErrorResponse, 0xfff),
        ] {
            let mut b = t.to_be_bytes().to_vec();
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
            b.extend_from_slice(&[1; 12]);
            let m = parse(&b).unwrap();
            assert_eq!((m.class, m.method), (c, meth), "{t:#x}");
        }
    }

    #[test]
    fn channel_data() {
        let b = [0x40, 0x01, 0x00, 0x03, 1, 2, 3, 0];
        assert_eq!(parse_channel_data(&b), Some(ChannelData { channel: 0x4001, data: &[1, 2, 3] }));
        assert_eq!(parse_channel_data(&[0x50, 0x00, 0, 0]), None);
        assert_eq!(parse_channel_data(&[0x40, 0x00, 0, 8, 1]), None);
        assert_eq!(parse_channel_data(&[0x40, 0x00, 0, 0, 1, 2, 3, 4]), None);
        assert_eq!(demux(0x40), Demux::ChannelData);
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(Crc32::checksum(b"123456789"), 0xCBF4_3926);
    }

    /// The attribute at `offset` in RFC 5769's responses, as the encoder writes it.
    #[test]
    fn emitted_xor_mapped_address_matches_rfc5769() {
        for (vector, attr_len) in [(rfc5769_ipv4_response(), 12), (rfc5769_ipv6_response(), 24)] {
            let m = parse_datagram(&vector).unwrap();
            let r = StunRepr::parse(&m).unwrap();
            let tid: [u8; 12] = m.transaction_id.try_into().unwrap();
            let mapped = m.xor_mapped_address().unwrap();
            assert_eq!(
                r,
                StunRepr { fingerprint: true, ..StunRepr::binding_success(tid, mapped) },
                "SOFTWARE and MESSAGE-INTEGRITY are passed over"
            );
            let out = StunRepr::binding_success(tid, mapped).to_bytes();
            let at = m.attribute(attr::XOR_MAPPED_ADDRESS).unwrap().offset;
            assert_eq!(&out[HEADER_LEN..], &vector[at..at + attr_len]);
            assert_eq!(&out[..2], &[0x01, 0x01], "binding success response");
            assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])), attr_len);
        }
    }

    #[test]
    fn emitted_binding_request_with_fingerprint_and_username() {
        let tid = *b"0123456789ab";
        let r = StunRepr { fingerprint: true, ..StunRepr::binding_request(tid) };
        let b = r.to_bytes();
        assert_eq!(b.len(), r.buffer_len());
        assert_eq!(&b[..20], &hex("00010008 2112a442 303132333435363738396162")[..]);
        assert_eq!(&b[20..24], &[0x80, 0x28, 0, 4]);
        let crc = u32::from_be_bytes(b[24..28].try_into().unwrap());
        assert_eq!(crc ^ FINGERPRINT_XOR, Crc32::checksum(&b[..20]));
        let m = parse_datagram(&b).unwrap();
        assert!(m.fingerprint().unwrap().is_valid());
        assert_eq!(StunRepr::parse(&m), Ok(r));
        // USERNAME is padded with zeros; the length field counts the padding.
        let r = StunRepr { username: Some(b"wa-user"), ..StunRepr::binding_request(tid) };
        let b = r.to_bytes();
        assert_eq!(&b[2..4], &[0, 12]);
        assert_eq!(&b[20..], b"\x00\x06\x00\x07wa-user\x00");
        assert_eq!(StunRepr::parse(&parse_datagram(&b).unwrap()), Ok(r));
    }

    #[test]
    fn repr_refuses_what_it_cannot_say() {
        // A classic message has a 16-byte transaction id.
        let mut b = vec![0x00, 0x01, 0x00, 0x00];
        b.extend_from_slice(&[0x5a; 16]);
        assert_eq!(StunRepr::parse(&parse(&b).unwrap()), Err(StunError::WrongCookie));
        // A corrupted fingerprint.
        let mut b = rfc5769_request();
        b[30] ^= 1;
        assert_eq!(StunRepr::parse(&parse(&b).unwrap()), Err(StunError::BadFingerprint));
        // An XOR-MAPPED-ADDRESS of an unknown family.
        let mut b = rfc5769_ipv4_response();
        b[41] = 3;
        assert_eq!(StunRepr::parse(&parse(&b).unwrap()), Err(StunError::BadAttribute));
    }

    #[test]
    fn channel_data_emits_with_and_without_padding() {
        let cd = ChannelData { channel: 0x4001, data: &[1, 2, 3] };
        assert_eq!(cd.to_bytes(false), vec![0x40, 0x01, 0x00, 0x03, 1, 2, 3]);
        assert_eq!(cd.to_bytes(true), vec![0x40, 0x01, 0x00, 0x03, 1, 2, 3, 0]);
        for padded in [false, true] {
            assert_eq!(parse_channel_data(&cd.to_bytes(padded)), Some(cd));
        }
    }

    fn any_class() -> impl Strategy<Value = StunClass> {
        prop_oneof![
            Just(StunClass::Request),
            Just(StunClass::Indication),
            Just(StunClass::SuccessResponse),
            Just(StunClass::ErrorResponse),
        ]
    }

    fn any_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(a.into(), p)),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(a.into(), p)),
        ]
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = parse(&bytes) {
                let _ = (m.username(), m.fingerprint(), m.xor_mapped_address(), m.attributes().count());
            }
            let _ = parse_channel_data(&bytes);
        }

        #[test]
        fn repr_round_trips(
            class in any_class(),
            method in 0u16..0x1000,
            tid in any::<[u8; 12]>(),
            username in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            xor_mapped_address in proptest::option::of(any_addr()),
            fingerprint in any::<bool>(),
        ) {
            let r = StunRepr {
                class,
                method,
                transaction_id: tid,
                username: username.as_deref(),
                xor_mapped_address,
                fingerprint,
            };
            let b = r.to_bytes();
            prop_assert_eq!(b.len(), r.buffer_len());
            let m = parse_datagram(&b).unwrap();
            prop_assert_eq!((m.class, m.method), (class, method));
            prop_assert_eq!(StunRepr::parse(&m), Ok(r));
        }

        #[test]
        fn channel_data_round_trips(
            channel in 0x4000u16..=0x4fff,
            data in proptest::collection::vec(any::<u8>(), 0..100),
            padded in any::<bool>(),
        ) {
            let cd = ChannelData { channel, data: &data };
            let b = cd.to_bytes(padded);
            prop_assert_eq!(b.len(), cd.buffer_len(padded));
            prop_assert_eq!(parse_channel_data(&b), Some(cd));
        }

        #[test]
        fn mutated_never_panics(idx in 0usize..120, val in any::<u8>(), cut in 0usize..120) {
            let mut b = rfc5769_request();
            let i = idx % b.len();
            b[i] = val;
            b.truncate(cut);
            if let Ok(m) = parse(&b) {
                let _ = (m.software(), m.realm(), m.fingerprint(), m.xor_mapped_address());
            }
        }
    }
}
