//! TLS handshake messages shared by TLS over TCP, DTLS and QUIC: ClientHello and ServerHello
//! fields (RFC 8446 section 4.1), SNI (RFC 6066 section 3), ALPN (RFC 7301 section 3.1), a
//! JA3/JA4-style fingerprint, and reassembly of a ClientHello split over several TCP segments.

use crate::reader::{u16s, Reader};
use std::fmt;

/// Extension types (IANA TLS ExtensionType registry).
pub mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const USE_SRTP: u16 = 14;
    pub const ALPN: u16 = 16;
    pub const PADDING: u16 = 21;
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    pub const KEY_SHARE: u16 = 51;
    pub const QUIC_TRANSPORT_PARAMETERS: u16 = 57;
    pub const RENEGOTIATION_INFO: u16 = 0xff01;
}

/// Handshake message types (RFC 8446 section 4, RFC 6347 section 4.3.2).
pub mod handshake {
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const HELLO_VERIFY_REQUEST: u8 = 3;
}

/// Record content type of a handshake (RFC 8446 section 5.1).
pub const CONTENT_HANDSHAKE: u8 = 22;

/// True for a GREASE value (RFC 8701 section 2): 0x0A0A, 0x1A1A, ... 0xFAFA.
pub const fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// Why bytes are not the expected handshake message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// A field runs past the end.
    Truncated,
    /// Not the expected handshake type or record type.
    WrongType,
    /// A length is inconsistent (odd cipher list, session id over 32 bytes, ...).
    Malformed,
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HelloError::Truncated => "truncated hello",
            HelloError::WrongType => "not a client hello",
            HelloError::Malformed => "malformed hello",
        })
    }
}

impl std::error::Error for HelloError {}

/// The fields of a ClientHello body (after the 4-byte handshake header, or the 12-byte one of
/// DTLS). RFC 8446 section 4.1.2; DTLS adds a cookie after the session id (RFC 6347 section
/// 4.2.1, RFC 9147 section 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHello<'a> {
    pub legacy_version: u16,
    pub random: &'a [u8],
    pub session_id: &'a [u8],
    /// DTLS only.
    pub cookie: Option<&'a [u8]>,
    /// Raw cipher suite list (pairs of bytes).
    pub cipher_suites: &'a [u8],
    pub compression_methods: &'a [u8],
    /// Raw extensions block (empty when absent).
    pub extensions: &'a [u8],
}

impl<'a> ClientHello<'a> {
    /// Parses a ClientHello body; `dtls` selects the DTLS layout with a cookie.
    pub fn parse(body: &'a [u8], dtls: bool) -> Result<Self, HelloError> {
        let mut r = Reader::new(body);
        let legacy_version = r.u16().ok_or(HelloError::Truncated)?;
        let random = r.take(32).ok_or(HelloError::Truncated)?;
        let session_id = r.vec8().ok_or(HelloError::Truncated)?;
        // RFC 8446 section 4.1.2: legacy_session_id<0..32>.
        if session_id.len() > 32 {
            return Err(HelloError::Malformed);
        }
        let cookie = if dtls { Some(r.vec8().ok_or(HelloError::Truncated)?) } else { None };
        let cipher_suites = r.vec16().ok_or(HelloError::Truncated)?;
        // cipher_suites<2..2^16-2>: pairs.
        if cipher_suites.len() % 2 != 0 {
            return Err(HelloError::Malformed);
        }
        let compression_methods = r.vec8().ok_or(HelloError::Truncated)?;
        let extensions =
            if r.is_empty() { &[][..] } else { r.vec16().ok_or(HelloError::Truncated)? };
        // Every extension must fit in the block (RFC 8446 section 4.2).
        let mut e = Reader::new(extensions);
        while !e.is_empty() {
            e.u16().ok_or(HelloError::Malformed)?;
            e.vec16().ok_or(HelloError::Malformed)?;
        }
        Ok(ClientHello {
            legacy_version,
            random,
            session_id,
            cookie,
            cipher_suites,
            compression_methods,
            extensions,
        })
    }

    /// Parses a TLS handshake message (type 1, 24-bit length) at the start of `msg`.
    pub fn parse_handshake(msg: &'a [u8]) -> Result<Self, HelloError> {
        let mut r = Reader::new(msg);
        if r.u8().ok_or(HelloError::Truncated)? != handshake::CLIENT_HELLO {
            return Err(HelloError::WrongType);
        }
        let body = r.vec24().ok_or(HelloError::Truncated)?;
        Self::parse(body, false)
    }

    pub fn cipher_suites(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.cipher_suites)
    }

    pub fn extensions(&self) -> Extensions<'a> {
        Extensions(Reader::new(self.extensions))
    }

    pub fn extension(&self, typ: u16) -> Option<&'a [u8]> {
        self.extensions().find(|(t, _)| *t == typ).map(|(_, v)| v)
    }

    /// The first host_name in server_name (RFC 6066 section 3), if it is UTF-8.
    pub fn sni(&self) -> Option<&'a str> {
        let v = self.extension(ext::SERVER_NAME)?;
        let mut r = Reader::new(v);
        let mut list = Reader::new(r.vec16()?);
        while !list.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type == 0 {
                return std::str::from_utf8(name).ok();
            }
        }
        None
    }

    /// ALPN protocol names (RFC 7301 section 3.1), in the client's order.
    pub fn alpn(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let list = self.extension(ext::ALPN).and_then(|v| Reader::new(v).vec16()).unwrap_or(&[]);
        let mut r = Reader::new(list);
        std::iter::from_fn(move || r.vec8().filter(|n| !n.is_empty()))
    }

    /// supported_groups (RFC 8446 section 4.2.7).
    pub fn supported_groups(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.ext_vec16(ext::SUPPORTED_GROUPS))
    }

    /// signature_algorithms (RFC 8446 section 4.2.3).
    pub fn signature_algorithms(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.ext_vec16(ext::SIGNATURE_ALGORITHMS))
    }

    /// use_srtp protection profiles (RFC 5764 section 4.1.1).
    pub fn srtp_profiles(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(self.ext_vec16(ext::USE_SRTP))
    }

    /// ec_point_formats (RFC 8422 section 5.1.2).
    pub fn ec_point_formats(&self) -> &'a [u8] {
        self.extension(ext::EC_POINT_FORMATS).and_then(|v| Reader::new(v).vec8()).unwrap_or(&[])
    }

    /// supported_versions (RFC 8446 section 4.2.1): the ClientHello form with a one-byte length.
    pub fn supported_versions(&self) -> impl Iterator<Item = u16> + 'a {
        u16s(
            self.extension(ext::SUPPORTED_VERSIONS)
                .and_then(|v| Reader::new(v).vec8())
                .unwrap_or(&[]),
        )
    }

    fn ext_vec16(&self, typ: u16) -> &'a [u8] {
        self.extension(typ).and_then(|v| Reader::new(v).vec16()).unwrap_or(&[])
    }

    /// Writes the fingerprint described in [`ClientHello::fingerprint`] without allocating.
    pub fn write_fingerprint<W: fmt::Write>(&self, kind: char, w: &mut W) -> fmt::Result {
        fn list<W: fmt::Write>(w: &mut W, it: impl Iterator<Item = u16>) -> fmt::Result {
            let mut any = false;
            for v in it.filter(|v| !is_grease(*v)) {
                if any {
                    w.write_char(',')?;
                }
                write!(w, "{v:04x}")?;
                any = true;
            }
            if !any {
                w.write_char('-')?;
            }
            Ok(())
        }
        write!(w, "{kind}{:04x}|", self.legacy_version)?;
        list(w, self.cipher_suites())?;
        w.write_char('|')?;
        // Sorted, as JA4 does, so that a client that permutes its extensions (Chrome) keeps one
        // fingerprint. At most 64 extensions are kept; GREASE and padding are dropped.
        let mut exts = [0u16; 64];
        let mut n = 0;
        for (t, _) in self.extensions() {
            if !is_grease(t) && t != ext::PADDING && n < exts.len() {
                exts[n] = t;
                n += 1;
            }
        }
        exts[..n].sort_unstable();
        list(w, exts[..n].iter().copied())?;
        w.write_char('|')?;
        list(w, self.supported_groups())?;
        w.write_char('|')?;
        list(w, self.signature_algorithms())?;
        w.write_char('|')?;
        list(w, self.ec_point_formats().iter().map(|b| u16::from(*b)))?;
        w.write_char('|')?;
        list(w, self.srtp_profiles())?;
        w.write_char('|')?;
        list(w, self.supported_versions())
    }

    /// A stable fingerprint of this hello, in the spirit of JA3/JA4. Fields, separated by `|`,
    /// each list as 4-digit lowercase hex values joined by `,` (`-` when empty), GREASE values
    /// (RFC 8701) removed from every list:
    ///
    /// 1. `kind` (`d` DTLS, `t` TLS over TCP, `q` QUIC) followed by legacy_version (`dfefd`);
    /// 2. cipher suites, in the client's order;
    /// 3. extension types, sorted ascending, without padding (21) since its presence depends on
    ///    the hello's size;
    /// 4. supported_groups, in order;
    /// 5. signature_algorithms, in order;
    /// 6. ec_point_formats, in order;
    /// 7. use_srtp protection profiles, in order;
    /// 8. supported_versions, in order.
    ///
    /// The random, session id, cookie, SNI, key shares and ALPN names are left out: they change
    /// between connections of one implementation.
    pub fn fingerprint(&self, kind: char) -> String {
        let mut s = String::with_capacity(256);
        let _ = self.write_fingerprint(kind, &mut s);
        s
    }

    /// 64-bit FNV-1a of [`ClientHello::fingerprint`], computed without allocating.
    pub fn fingerprint_hash(&self, kind: char) -> u64 {
        let mut h = Fnv1a::new();
        let _ = self.write_fingerprint(kind, &mut h);
        h.0
    }
}

/// FNV-1a, 64-bit, as a `fmt::Write` sink.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(pub u64);

impl Fnv1a {
    pub const fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn hash(bytes: &[u8]) -> u64 {
        let mut h = Fnv1a::new();
        h.update(bytes);
        h.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a::new()
    }
}

impl fmt::Write for Fnv1a {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.update(s.as_bytes());
        Ok(())
    }
}

/// Iterator over `(type, value)` of an extensions block. Stops at the first malformed entry.
#[derive(Debug, Clone)]
pub struct Extensions<'a>(Reader<'a>);

impl<'a> Iterator for Extensions<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let t = self.0.u16()?;
        let v = self.0.vec16()?;
        Some((t, v))
    }
}

/// The fields of a ServerHello body (RFC 8446 section 4.1.3; DTLS has the same layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello<'a> {
    pub legacy_version: u16,
    pub random: &'a [u8],
    pub session_id: &'a [u8],
    pub cipher_suite: u16,
    pub compression_method: u8,
    pub extensions: &'a [u8],
}

impl<'a> ServerHello<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, HelloError> {
        let mut r = Reader::new(body);
        let legacy_version = r.u16().ok_or(HelloError::Truncated)?;
        let random = r.take(32).ok_or(HelloError::Truncated)?;
        let session_id = r.vec8().ok_or(HelloError::Truncated)?;
        if session_id.len() > 32 {
            return Err(HelloError::Malformed);
        }
        let cipher_suite = r.u16().ok_or(HelloError::Truncated)?;
        let compression_method = r.u8().ok_or(HelloError::Truncated)?;
        let extensions =
            if r.is_empty() { &[][..] } else { r.vec16().ok_or(HelloError::Truncated)? };
        Ok(ServerHello {
            legacy_version,
            random,
            session_id,
            cipher_suite,
            compression_method,
            extensions,
        })
    }

    pub fn extensions(&self) -> Extensions<'a> {
        Extensions(Reader::new(self.extensions))
    }
}

/// A TLS record header (RFC 8446 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    pub length: u16,
}

/// Reads a TLS record header; accepts content types 20-24 and versions 0x0300-0x0304
/// (RFC 8446 section 5.1: legacy_record_version; SSL 3.0 to TLS 1.3).
pub fn record_header(buf: &[u8]) -> Option<RecordHeader> {
    let mut r = Reader::new(buf);
    let content_type = r.u8()?;
    let version = r.u16()?;
    let length = r.u16()?;
    // RFC 8446 section 5.1: length MUST NOT exceed 2^14 (+256 for ciphertext in TLS 1.2).
    if !(20..=24).contains(&content_type)
        || !(0x0300..=0x0304).contains(&version)
        || length > 16384 + 2048
    {
        return None;
    }
    Some(RecordHeader { content_type, version, length })
}

/// True when a TCP payload starts like a TLS record.
pub fn looks_like_tls(payload: &[u8]) -> bool {
    record_header(payload).is_some()
}

/// Where a [`ClientHelloReassembler`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reassembly {
    /// Not yet a whole ClientHello.
    NeedMore,
    /// A whole ClientHello is buffered: read it with [`ClientHelloReassembler::client_hello`].
    Complete,
    /// The stream is not TLS, or its first handshake message is not a ClientHello.
    NotClientHello,
    /// The ClientHello would exceed the buffer limit.
    TooLarge,
}

/// Reassembles the ClientHello at the start of a TCP stream, across segments and TLS records.
///
/// Segments are taken in the order given (no TCP sequence numbers: retransmitted or reordered
/// segments are not repaired, as in-path censors mostly do not either). Memory is bounded by
/// `limit` bytes of handshake data plus one partial record.
#[derive(Debug, Clone)]
pub struct ClientHelloReassembler {
    /// Bytes of the stream not yet cut into records.
    pending: Vec<u8>,
    /// Handshake bytes taken out of records.
    handshake: Vec<u8>,
    limit: usize,
    state: Reassembly,
}

impl ClientHelloReassembler {
    pub fn new(limit: usize) -> Self {
        ClientHelloReassembler {
            pending: Vec::new(),
            handshake: Vec::new(),
            limit,
            state: Reassembly::NeedMore,
        }
    }

    pub fn state(&self) -> Reassembly {
        self.state
    }

    /// Adds the next client-to-server segment payload.
    pub fn push(&mut self, segment: &[u8]) -> Reassembly {
        if self.state != Reassembly::NeedMore || segment.is_empty() {
            return self.state;
        }
        let room = (self.limit + 5).saturating_sub(self.pending.len());
        if segment.len() > room {
            self.pending.extend_from_slice(&segment[..room]);
        } else {
            self.pending.extend_from_slice(segment);
        }
        let mut used = 0;
        loop {
            let rest = &self.pending[used..];
            if rest.len() < 5 {
                break;
            }
            let Some(h) = record_header(rest) else {
                self.state = Reassembly::NotClientHello;
                break;
            };
            if h.content_type != CONTENT_HANDSHAKE {
                self.state = Reassembly::NotClientHello;
                break;
            }
            let end = 5 + usize::from(h.length);
            let Some(body) = rest.get(5..end) else {
                if rest.len() >= self.limit + 5 {
                    self.state = Reassembly::TooLarge;
                }
                break;
            };
            if self.handshake.len() + body.len() > self.limit {
                self.state = Reassembly::TooLarge;
                break;
            }
            self.handshake.extend_from_slice(body);
            used += end;
        }
        self.pending.drain(..used);
        if self.state == Reassembly::NeedMore {
            if let Some(&t) = self.handshake.first() {
                if t != handshake::CLIENT_HELLO {
                    self.state = Reassembly::NotClientHello;
                } else if self.handshake.len() >= 4 {
                    let need = 4
                        + (u32::from_be_bytes([
                            0,
                            self.handshake[1],
                            self.handshake[2],
                            self.handshake[3],
                        ]) as usize);
                    if need > self.limit {
                        self.state = Reassembly::TooLarge;
                    } else if self.handshake.len() >= need {
                        self.state = match ClientHello::parse_handshake(&self.handshake) {
                            Ok(_) => Reassembly::Complete,
                            Err(_) => Reassembly::NotClientHello,
                        };
                    }
                }
            }
        }
        if self.state != Reassembly::NeedMore {
            self.pending = Vec::new();
        }
        self.state
    }

    /// The reassembled ClientHello, once [`Reassembly::Complete`].
    pub fn client_hello(&self) -> Option<ClientHello<'_>> {
        if self.state != Reassembly::Complete {
            return None;
        }
        ClientHello::parse_handshake(&self.handshake).ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a TLS ClientHello handshake message (type + 24-bit length + body).
    pub(crate) fn client_hello_msg(
        sni: &str,
        alpn: &[&str],
        extra_ext: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        let suites = [0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b];
        body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
        for s in suites {
            body.extend_from_slice(&u16::to_be_bytes(s));
        }
        body.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        let mut add = |t: u16, v: &[u8]| {
            exts.extend_from_slice(&t.to_be_bytes());
            exts.extend_from_slice(&(v.len() as u16).to_be_bytes());
            exts.extend_from_slice(v);
        };
        add(0x1a1a, &[]);
        let mut sn = vec![0];
        sn.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        sn.extend_from_slice(sni.as_bytes());
        let mut snl = (sn.len() as u16).to_be_bytes().to_vec();
        snl.extend_from_slice(&sn);
        add(ext::SERVER_NAME, &snl);
        add(ext::SUPPORTED_GROUPS, &[0, 6, 0x3a, 0x3a, 0, 0x1d, 0, 0x17]);
        add(ext::SIGNATURE_ALGORITHMS, &[0, 4, 4, 3, 8, 4]);
        add(ext::SUPPORTED_VERSIONS, &[4, 3, 4, 3, 3]);
        if !alpn.is_empty() {
            let mut l = Vec::new();
            for a in alpn {
                l.push(a.len() as u8);
                l.extend_from_slice(a.as_bytes());
            }
            let mut v = (l.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(&l);
            add(ext::ALPN, &v);
        }
        for (t, v) in extra_ext {
            add(*t, v);
        }
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    pub(crate) fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![content_type, 3, 1];
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn client_hello_fields() {
        let msg = client_hello_msg("example.com", &["h2", "http/1.1"], &[]);
        let ch = ClientHello::parse_handshake(&msg).unwrap();
        assert_eq!(ch.sni(), Some("example.com"));
        let alpn: Vec<_> = ch.alpn().collect();
        assert_eq!(alpn, vec![&b"h2"[..], b"http/1.1"]);
        assert_eq!(ch.supported_groups().collect::<Vec<_>>(), vec![0x3a3a, 0x1d, 0x17]);
        assert_eq!(ch.supported_versions().collect::<Vec<_>>(), vec![0x0304, 0x0303]);
        let fp = ch.fingerprint('t');
        assert_eq!(
            fp,
            "t0303|1301,1302,1303,c02b|0000,000a,000d,0010,002b|001d,0017|0403,0804|-|-|0304,0303"
        );
        assert_eq!(ch.fingerprint_hash('t'), Fnv1a::hash(fp.as_bytes()));
    }

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301));
    }

    #[test]
    fn fingerprint_ignores_extension_order() {
        let a = client_hello_msg("a.example", &[], &[(23, vec![]), (0xff01, vec![0])]);
        let b = client_hello_msg("b.example", &["h2"], &[(0xff01, vec![0]), (23, vec![])]);
        let fa = ClientHello::parse_handshake(&a).unwrap().fingerprint('t');
        let fb = ClientHello::parse_handshake(&b).unwrap().fingerprint('t');
        // b has ALPN, so one more extension type; without it they would be equal.
        assert_ne!(fa, fb);
        let c = client_hello_msg("c.example", &[], &[(0xff01, vec![0]), (23, vec![])]);
        assert_eq!(fa, ClientHello::parse_handshake(&c).unwrap().fingerprint('t'));
    }

    #[test]
    fn reassembles_across_two_segments() {
        let msg = client_hello_msg("split.example", &["h2"], &[]);
        let rec = record(22, &msg);
        let (a, b) = rec.split_at(40);
        let mut r = ClientHelloReassembler::new(16 * 1024);
        assert_eq!(r.push(a), Reassembly::NeedMore);
        assert_eq!(r.client_hello(), None);
        assert_eq!(r.push(b), Reassembly::Complete);
        assert_eq!(r.client_hello().unwrap().sni(), Some("split.example"));
    }

    #[test]
    fn reassembles_across_two_records() {
        let msg = client_hello_msg("records.example", &[], &[]);
        let (m1, m2) = msg.split_at(10);
        let mut stream = record(22, m1);
        stream.extend_from_slice(&record(22, m2));
        let mut r = ClientHelloReassembler::new(16 * 1024);
        // One byte at a time.
        let mut last = Reassembly::NeedMore;
        for b in &stream {
            last = r.push(std::slice::from_ref(b));
        }
        assert_eq!(last, Reassembly::Complete);
        assert_eq!(r.client_hello().unwrap().sni(), Some("records.example"));
    }

    #[test]
    fn reassembly_rejects_and_bounds() {
        let mut r = ClientHelloReassembler::new(16 * 1024);
        assert_eq!(r.push(b"GET / HTTP/1.1\r\n"), Reassembly::NotClientHello);
        let mut r = ClientHelloReassembler::new(100);
        let msg = client_hello_msg("x.example", &[], &[(0xfe00, vec![0; 300])]);
        assert_eq!(r.push(&record(22, &msg)), Reassembly::TooLarge);
        let mut r = ClientHelloReassembler::new(1000);
        assert_eq!(r.push(&record(22, &[2, 0, 0, 1, 0])), Reassembly::NotClientHello);
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), dtls in any::<bool>()) {
            if let Ok(ch) = ClientHello::parse(&bytes, dtls) {
                let _ = (ch.sni(), ch.alpn().count(), ch.fingerprint('t'), ch.fingerprint_hash('d'));
            }
            let _ = ServerHello::parse(&bytes);
            let mut r = ClientHelloReassembler::new(256);
            let (a, b) = bytes.split_at(bytes.len() / 2);
            r.push(a);
            r.push(b);
            let _ = r.client_hello();
        }

        #[test]
        fn mutated_never_panics(idx in 0usize..200, val in any::<u8>(), cut in 0usize..200) {
            let mut m = client_hello_msg("m.example", &["h2"], &[]);
            let i = idx % m.len();
            m[i] = val;
            m.truncate(cut);
            if let Ok(ch) = ClientHello::parse_handshake(&m) {
                let _ = (ch.sni(), ch.alpn().count(), ch.fingerprint('t'));
            }
        }
    }
}
