//! A cheap DNS message check (RFC 1035 section 4.1): header, one question whose name is a
//! well-formed sequence of labels. Used to label UDP and TCP flows; it does not decode records.
//!
//! The codec for what callwall writes: [`Query`], a standard query with one question, with
//! [`Query::parse`] beside [`Query::emit`], and [`Name`], a domain name in its wire form.
//! Parsing then emitting gives back the same value (round-trip tests and the `dns` fuzz target).
//! Answers are not built here: the run's DNS server uses hickory-proto.

use std::fmt;

use crate::reader::Reader;

/// Record types (RFC 1035 section 3.2.2, RFC 3596 section 2.1).
pub mod qtype {
    pub const A: u16 = 1;
    pub const AAAA: u16 = 28;
}

/// The Internet class (RFC 1035 section 3.2.4).
pub const CLASS_IN: u16 = 1;
/// Bytes of the header (RFC 1035 section 4.1.1).
pub const HEADER_LEN: usize = 12;
/// The RD bit of the header's flags (RFC 1035 section 4.1.1).
const FLAG_RD: u16 = 0x0100;
/// Most bytes of a name's labels with their length bytes, root excluded (RFC 1035 section
/// 3.1 allows 255 with it; [`looks_like_dns`] has always accepted one more).
const NAME_MAX: usize = 255;

/// Reads a name's labels (RFC 1035 section 4.1.2: labels of at most 63 bytes, at most
/// [`NAME_MAX`] in all) up to and including the root label; returns them without the root.
/// Compression pointers are not followed (a question's name has none).
fn read_name<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    let rest = r.rest();
    let mut total = 0usize;
    loop {
        let len = r.u8()?;
        if len == 0 {
            return rest.get(..total);
        }
        if len > 63 {
            return None;
        }
        r.skip(usize::from(len))?;
        total += usize::from(len) + 1;
        if total > NAME_MAX {
            return None;
        }
    }
}

/// True when `msg` (a UDP payload, or a TCP message without its 2-byte length) looks like a
/// DNS query or response with exactly one question.
pub fn looks_like_dns(msg: &[u8]) -> bool {
    let mut r = Reader::new(msg);
    let (Some(_id), Some(flags), Some(qd), Some(an), Some(ns), Some(ar)) =
        (r.u16(), r.u16(), r.u16(), r.u16(), r.u16(), r.u16())
    else {
        return false;
    };
    let response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    // RFC 1035 section 4.1.1: opcode 0-2 (and 4 NOTIFY, 5 UPDATE); Z must be zero
    // (RFC 6840 took two of its bits for AD and CD, so only bit 6 of byte 3 is checked).
    if !matches!(opcode, 0 | 1 | 2 | 4 | 5) || flags & 0x0040 != 0 || qd != 1 {
        return false;
    }
    if !response && (an != 0 || ns != 0 || ar > 1) {
        return false;
    }
    // RFC 1035 section 4.1.2: QNAME as labels of at most 63 bytes, at most 255 in all.
    if read_name(&mut r).is_none() {
        return false;
    }
    // QTYPE and QCLASS; QCLASS IN(1), CH(3), HS(4), ANY(255), or the mDNS unicast bit.
    let (Some(_qtype), Some(qclass)) = (r.u16(), r.u16()) else { return false };
    if !matches!(qclass & 0x7fff, 1 | 3 | 4 | 255) {
        return false;
    }
    // A plain query ends here (or carries one EDNS OPT record).
    response || ar == 1 || r.is_empty()
}

/// DNS over TCP (RFC 1035 section 4.2.2): a 2-byte length, then the message.
pub fn looks_like_dns_tcp(segment: &[u8]) -> bool {
    match segment {
        [hi, lo, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            len >= 12 && len >= rest.len() && looks_like_dns(&rest[..rest.len().min(len)])
        }
        _ => false,
    }
}

/// A domain name in its wire form (RFC 1035 section 3.1): each label its length then its bytes,
/// without the root label. Held inline (no allocation); compared byte for byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    len: u8,
    wire: [u8; NAME_MAX],
}

/// Why a dotted name is not a domain name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Two dots in a row, or a leading dot.
    EmptyLabel,
    /// A label over 63 bytes (RFC 1035 section 2.3.4).
    LongLabel,
    /// Over 255 bytes in wire form (RFC 1035 section 2.3.4).
    LongName,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::EmptyLabel => "empty label in dns name: remove the extra dot",
            NameError::LongLabel => "dns label over 63 bytes: shorten it",
            NameError::LongName => "dns name over 255 bytes: shorten it",
        })
    }
}

impl std::error::Error for NameError {}

impl Name {
    /// The root name (no labels).
    pub const ROOT: Name = Name { len: 0, wire: [0; NAME_MAX] };

    /// A name from its dotted form, `www.example.com` (a trailing dot is allowed; `""` and `"."`
    /// are the root). Label bytes are taken as they are: no case folding, no IDNA.
    pub fn from_dotted(dotted: &str) -> Result<Name, NameError> {
        let dotted = dotted.strip_suffix('.').unwrap_or(dotted);
        let mut name = Name::ROOT;
        if dotted.is_empty() {
            return Ok(name);
        }
        let mut at = 0usize;
        for label in dotted.split('.') {
            let len = match label.len() {
                0 => return Err(NameError::EmptyLabel),
                1..=63 => label.len(),
                _ => return Err(NameError::LongLabel),
            };
            let end = at + 1 + len;
            let slot = name.wire.get_mut(at..end).ok_or(NameError::LongName)?;
            slot[0] = len as u8;
            slot[1..].copy_from_slice(label.as_bytes());
            at = end;
        }
        name.len = at as u8;
        Ok(name)
    }

    /// The labels, first to last.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut r = Reader::new(self.wire_labels());
        std::iter::from_fn(move || r.vec8())
    }

    /// The wire form without the root label.
    fn wire_labels(&self) -> &[u8] {
        &self.wire[..usize::from(self.len)]
    }

    /// Reads a question's name (see [`read_name`]).
    fn read(r: &mut Reader<'_>) -> Option<Name> {
        let labels = read_name(r)?;
        let mut name = Name::ROOT;
        name.wire.get_mut(..labels.len())?.copy_from_slice(labels);
        name.len = u8::try_from(labels.len()).ok()?;
        Some(name)
    }

    /// Bytes [`Name::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        usize::from(self.len) + 1
    }

    /// Appends the wire form with its root label.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.wire_labels());
        out.push(0);
    }
}

/// The dotted form; a byte that is not printable ASCII, or a dot inside a label, is written as
/// `\ddd` (RFC 4343 section 2.1).
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            return f.write_str(".");
        }
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// A standard query with one question (RFC 1035 section 4.1), as a stub resolver sends it: the
/// typed value beside [`looks_like_dns`].
///
/// [`Query::emit`] writes the header (QR 0, OPCODE 0, RD as given, QDCOUNT 1, the other counts
/// 0) and the question. [`Query::parse`] reads a message [`looks_like_dns`] accepts that is a
/// standard query; flags other than RD and any EDNS record are passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Query {
    pub id: u16,
    /// RD: recursion desired.
    pub recursion_desired: bool,
    pub name: Name,
    /// QTYPE (see [`qtype`]).
    pub qtype: u16,
    /// QCLASS ([`CLASS_IN`]).
    pub qclass: u16,
}

impl Query {
    /// A recursive query for `name`'s IPv4 addresses (type A, class IN).
    pub const fn a(id: u16, name: Name) -> Query {
        Query { id, recursion_desired: true, name, qtype: qtype::A, qclass: CLASS_IN }
    }

    /// The query in `msg`, if it is one.
    pub fn parse(msg: &[u8]) -> Option<Query> {
        if !looks_like_dns(msg) {
            return None;
        }
        let mut r = Reader::new(msg);
        let id = r.u16()?;
        let flags = r.u16()?;
        // RFC 1035 section 4.1.1: QR 0 is a query; OPCODE 0 a standard query.
        if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 {
            return None;
        }
        r.skip(HEADER_LEN - 4)?;
        let name = Name::read(&mut r)?;
        let (qtype, qclass) = (r.u16()?, r.u16()?);
        Some(Query { id, recursion_desired: flags & FLAG_RD != 0, name, qtype, qclass })
    }

    /// Bytes [`Query::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.name.buffer_len() + 4
    }

    /// Appends the query to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.reserve(self.buffer_len());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&(if self.recursion_desired { FLAG_RD } else { 0 }).to_be_bytes());
        // QDCOUNT 1; ANCOUNT, NSCOUNT, ARCOUNT 0.
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        self.name.emit(out);
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
    }

    /// The query as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn query() -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        q
    }

    fn name(s: &str) -> Name {
        Name::from_dotted(s).unwrap()
    }

    #[test]
    fn query_codec_matches_the_bytes() {
        let q = Query::a(0xabcd, name("example.com"));
        assert_eq!(q.to_bytes(), query());
        assert_eq!(q.buffer_len(), query().len());
        assert_eq!(Query::parse(&query()), Some(q));
        assert_eq!(name("example.com."), q.name, "a trailing dot changes nothing");
        assert_eq!(q.name.to_string(), "example.com");
        assert_eq!(q.name.labels().collect::<Vec<_>>(), vec![&b"example"[..], b"com"]);
        let aaaa = Query { recursion_desired: false, qtype: qtype::AAAA, ..q };
        assert_eq!(Query::parse(&aaaa.to_bytes()), Some(aaaa));
        assert_eq!(&aaaa.to_bytes()[2..4], &[0, 0]);
        // A response, or another opcode, is not a query.
        let mut r = query();
        r[2] |= 0x80;
        assert!(looks_like_dns(&r) && Query::parse(&r).is_none());
        let mut r = query();
        r[2] |= 0x10; // OPCODE 2 (STATUS)
        assert!(looks_like_dns(&r) && Query::parse(&r).is_none());
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(Name::from_dotted(""), Ok(Name::ROOT));
        assert_eq!(Name::from_dotted("."), Ok(Name::ROOT));
        assert_eq!(Name::ROOT.to_string(), ".");
        assert_eq!(Name::from_dotted("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(Name::from_dotted(&"x".repeat(64)), Err(NameError::LongLabel));
        let long = vec!["x".repeat(63); 4].join(".");
        assert_eq!(Name::from_dotted(&long), Err(NameError::LongName));
        let fits = [vec!["x".repeat(63); 3], vec!["y".repeat(62)]].concat().join(".");
        let n = name(&fits);
        assert_eq!(n.buffer_len(), 256);
        assert!(looks_like_dns(&Query::a(1, n).to_bytes()), "as long as the classifier takes");
        let mut wire = Query::a(1, n).to_bytes();
        wire.truncate(wire.len() - 4);
        assert_eq!(Query::parse(&wire), None);
    }

    #[test]
    fn queries() {
        assert!(looks_like_dns(&query()));
        let mut t = (query().len() as u16).to_be_bytes().to_vec();
        t.extend_from_slice(&query());
        assert!(looks_like_dns_tcp(&t));
        let mut q = query();
        q.push(0);
        assert!(!looks_like_dns(&q), "trailing byte in a plain query");
        let mut q = query();
        q[5] = 2;
        assert!(!looks_like_dns(&q));
        assert!(!looks_like_dns(b"GET / HTTP/1.1\r\n\r\n"));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = looks_like_dns(&bytes);
            let _ = looks_like_dns_tcp(&bytes);
            if let Some(q) = Query::parse(&bytes) {
                prop_assert_eq!(Query::parse(&q.to_bytes()), Some(q));
            }
        }

        #[test]
        fn query_round_trips(
            id in any::<u16>(),
            recursion_desired in any::<bool>(),
            labels in proptest::collection::vec("[a-z0-9-]{1,20}", 0..8),
            qtype in any::<u16>(),
            qclass in prop_oneof![Just(1u16), Just(3), Just(4), Just(255), Just(0x8001)],
        ) {
            let name = name(&labels.join("."));
            let q = Query { id, recursion_desired, name, qtype, qclass };
            let b = q.to_bytes();
            prop_assert_eq!(b.len(), q.buffer_len());
            prop_assert!(looks_like_dns(&b));
            prop_assert_eq!(Query::parse(&b), Some(q));
            prop_assert_eq!(q.name.to_string(), if labels.is_empty() { ".".into() } else { labels.join(".") });
        }
    }
}
