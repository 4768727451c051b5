//! Reading pcap and pcapng captures, and writing pcap.
//!
//! [`PcapReader`] reads a whole capture held in memory and yields [`Record`]s borrowing from it:
//! classic pcap (both byte orders, micro- and nanosecond magic) and pcapng (Section Header,
//! Interface Description, Enhanced and Simple Packet Blocks, the obsolete Packet Block; both
//! byte orders; `if_tsresol`). Corrupt or truncated input gives a [`PcapError`], never a panic.
//! [`to_ethernet`] gives every supported link type an Ethernet view so [`crate::Frame::parse`]
//! works on it. [`PcapStream`] reads the same formats from any [`std::io::Read`] (files of any
//! size, pipes) in bounded memory. [`PcapWriter`] writes Ethernet frames with nanosecond timestamps.
//!
//! Why not `pcap-parser` (issue 10, item 7: a well-kept library where we wrote our own)? Kept
//! ours, deliberately: it already streams in bounded memory with no allocation per packet
//! (records borrow the reader's buffer), it turns every link type we meet (SLL, SLL2, raw IP,
//! BSD loopback) into an Ethernet view for [`crate::Frame::parse`], it writes pcap too (the
//! bridge's capture), its errors are typed with the byte offset, and it is fuzzed
//! (`fuzz/fuzz_targets/pcap.rs`). Adopting `pcap-parser` would replace only the block parsing
//! (about a third of this file): the link-type views, the writer and the error offsets would
//! stay ours, for a nom-based dependency chain. Revisit if we need pcapng options we skip
//! today (comments, custom blocks, decryption secrets).

use crate::packet::{Frame, ParseError, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use std::fmt;
use std::io::{self, Write};

/// Link types (tcpdump.org LINKTYPE_ values).
pub mod linktype {
    /// BSD loopback: a 4-byte host-order address family.
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// Raw IP, version from the first nibble.
    pub const RAW: u32 = 101;
    /// Linux "cooked" capture v1 (16-byte header).
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    /// Linux "cooked" capture v2 (20-byte header).
    pub const LINUX_SLL2: u32 = 276;
}

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const NG_SHB: u32 = 0x0A0D_0D0A;
const NG_BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const NG_IDB: u32 = 1;
const NG_PB: u32 = 2;
const NG_SPB: u32 = 3;
const NG_EPB: u32 = 6;
/// Larger than any real snapshot length; a record over it is taken as corruption.
const MAX_RECORD: usize = 64 << 20;
/// Interfaces kept per pcapng section.
const MAX_INTERFACES: usize = 64;

/// Why a capture could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcapError {
    /// The input ends inside a header, block or record that starts at `offset`.
    Truncated { offset: usize },
    /// The file starts with neither a pcap magic nor a pcapng Section Header Block.
    BadMagic(u32),
    /// A length or field at `offset` is impossible.
    Corrupt { offset: usize, reason: &'static str },
    /// Reading the stream failed ([`PcapStream`] only).
    Io(io::ErrorKind),
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::Truncated { offset } => {
                write!(f, "capture truncated in the block at byte {offset}")
            }
            PcapError::BadMagic(m) => write!(f, "not a pcap or pcapng file (magic {m:#010x})"),
            PcapError::Corrupt { offset, reason } => {
                write!(f, "corrupt capture at byte {offset}: {reason}")
            }
            PcapError::Io(kind) => write!(f, "cannot read the capture: {kind}"),
        }
    }
}

impl std::error::Error for PcapError {}

/// One captured packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    pub linktype: u32,
    /// The captured bytes (possibly cut at the snapshot length).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
}

#[derive(Debug, Clone, Copy)]
struct Iface {
    linktype: u32,
    /// `if_tsresol`: high bit 0 means 10^-v seconds, 1 means 2^-v.
    tsresol: u8,
}

#[derive(Debug, Clone)]
enum Kind {
    Pcap { le: bool, nanos: bool, linktype: u32 },
    Ng { le: bool, ifaces: Vec<Iface> },
}

/// Reads records from a capture in memory.
#[derive(Debug, Clone)]
pub struct PcapReader<'a> {
    buf: &'a [u8],
    pos: usize,
    kind: Kind,
    failed: bool,
}

fn rd32(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
}

fn rd16(b: &[u8], at: usize, le: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
}

impl<'a> PcapReader<'a> {
    /// Reads the file header (pcap) or first Section Header Block (pcapng).
    pub fn new(buf: &'a [u8]) -> Result<Self, PcapError> {
        let (kind, pos) = header(buf)?;
        Ok(PcapReader { buf, pos, kind, failed: false })
    }
}

/// The file header (pcap) or nothing yet (pcapng: the Section Header Block's own byte order
/// is found from its byte-order magic, read as the first block); where records start.
fn header(buf: &[u8]) -> Result<(Kind, usize), PcapError> {
    let magic = rd32(buf, 0, true).ok_or(PcapError::Truncated { offset: 0 })?;
    let kind = match magic {
        PCAP_MAGIC_US | PCAP_MAGIC_NS => pcap_header(buf, true, magic == PCAP_MAGIC_NS)?,
        m if m.swap_bytes() == PCAP_MAGIC_US || m.swap_bytes() == PCAP_MAGIC_NS => {
            pcap_header(buf, false, m.swap_bytes() == PCAP_MAGIC_NS)?
        }
        NG_SHB => return Ok((Kind::Ng { le: true, ifaces: Vec::new() }, 0)),
        m => return Err(PcapError::BadMagic(m)),
    };
    Ok((kind, 24))
}

fn pcap_header(buf: &[u8], le: bool, nanos: bool) -> Result<Kind, PcapError> {
    let linktype = rd32(buf, 20, le).ok_or(PcapError::Truncated { offset: 0 })?;
    // The upper bits of the link type field carry FCS information.
    Ok(Kind::Pcap { le, nanos, linktype: linktype & 0xffff })
}

/// The next record of `buf` from `*pos`, which it moves past the record (and past the
/// blocks before it that carry no packet). None at the end of `buf`.
fn next_record<'b>(
    buf: &'b [u8],
    pos: &mut usize,
    kind: &mut Kind,
) -> Option<Result<Record<'b>, PcapError>> {
    match *kind {
        Kind::Pcap { le, nanos, linktype } => next_pcap(buf, pos, le, nanos, linktype),
        Kind::Ng { .. } => next_ng(buf, pos, kind),
    }
}

fn next_pcap<'b>(
    buf: &'b [u8],
    pos: &mut usize,
    le: bool,
    nanos: bool,
    linktype: u32,
) -> Option<Result<Record<'b>, PcapError>> {
    let at = *pos;
    if at == buf.len() {
        return None;
    }
    let trunc = Err(PcapError::Truncated { offset: at });
    let (Some(sec), Some(frac), Some(incl), Some(orig)) =
        (rd32(buf, at, le), rd32(buf, at + 4, le), rd32(buf, at + 8, le), rd32(buf, at + 12, le))
    else {
        return Some(trunc);
    };
    let incl = incl as usize;
    if incl > MAX_RECORD {
        return Some(Err(PcapError::Corrupt { offset: at, reason: "record length over 64 MiB" }));
    }
    let Some(data) = buf.get(at + 16..at + 16 + incl) else { return Some(trunc) };
    *pos = at + 16 + incl;
    let ns = if nanos { u64::from(frac) } else { u64::from(frac) * 1000 };
    let timestamp_ns = u64::from(sec) * 1_000_000_000 + ns;
    Some(Ok(Record { timestamp_ns, linktype, data, orig_len: orig }))
}

fn next_ng<'b>(
    buf: &'b [u8],
    pos: &mut usize,
    kind: &mut Kind,
) -> Option<Result<Record<'b>, PcapError>> {
    loop {
        let at = *pos;
        if at == buf.len() {
            return None;
        }
        let trunc = Err(PcapError::Truncated { offset: at });
        let Kind::Ng { le, ifaces } = &mut *kind else { return None };
        let Some(typ) = rd32(buf, at, *le) else { return Some(trunc) };
        if typ == NG_SHB {
            // Byte-order magic at offset 8 (pcapng section 4.1).
            let Some(bom) = rd32(buf, at + 8, true) else { return Some(trunc) };
            *le = match bom {
                NG_BYTE_ORDER_MAGIC => true,
                m if m.swap_bytes() == NG_BYTE_ORDER_MAGIC => false,
                _ => {
                    return Some(Err(PcapError::Corrupt {
                        offset: at,
                        reason: "bad byte-order magic",
                    }))
                }
            };
            ifaces.clear();
        }
        let le = *le;
        let Some(total) = rd32(buf, at + 4, le) else { return Some(trunc) };
        let total = total as usize;
        // Section 3.1: Block Total Length is a multiple of 4 and at least 12.
        if total < 12 || total & 3 != 0 || total > MAX_RECORD {
            return Some(Err(PcapError::Corrupt { offset: at, reason: "bad block length" }));
        }
        let Some(block) = buf.get(at..at + total) else { return Some(trunc) };
        if rd32(block, total - 4, le) != Some(total as u32) {
            return Some(Err(PcapError::Corrupt { offset: at, reason: "block lengths differ" }));
        }
        *pos = at + total;
        let body = &block[8..total - 4];
        let Kind::Ng { ifaces, .. } = &mut *kind else { return None };
        let corrupt = |reason| Some(Err(PcapError::Corrupt { offset: at, reason }));
        match typ {
            NG_IDB => {
                let Some(lt) = rd16(body, 0, le) else {
                    return corrupt("short interface block");
                };
                let mut tsresol = 6;
                // Options from offset 8: code, length, value padded to 4 (section 3.5).
                let mut o = 8;
                while let (Some(code), Some(len)) = (rd16(body, o, le), rd16(body, o + 2, le)) {
                    let len = usize::from(len);
                    if code == 0 {
                        break;
                    }
                    if code == 9 && len == 1 {
                        if let Some(v) = body.get(o + 4) {
                            tsresol = *v;
                        }
                    }
                    o += 4 + len.next_multiple_of(4);
                }
                if ifaces.len() < MAX_INTERFACES {
                    ifaces.push(Iface { linktype: u32::from(lt), tsresol });
                }
            }
            NG_EPB | NG_PB => {
                let (iface, ts_hi, ts_lo, cap, orig) = if typ == NG_EPB {
                    (
                        rd32(body, 0, le),
                        rd32(body, 4, le),
                        rd32(body, 8, le),
                        rd32(body, 12, le),
                        rd32(body, 16, le),
                    )
                } else {
                    (
                        rd16(body, 0, le).map(u32::from),
                        rd32(body, 4, le),
                        rd32(body, 8, le),
                        rd32(body, 12, le),
                        rd32(body, 16, le),
                    )
                };
                let (Some(iface), Some(hi), Some(lo), Some(cap), Some(orig)) =
                    (iface, ts_hi, ts_lo, cap, orig)
                else {
                    return corrupt("short packet block");
                };
                let Some(data) = body.get(20..20 + cap as usize) else {
                    return corrupt("captured length past the block");
                };
                let Some(ifc) = ifaces.get(iface as usize) else {
                    return corrupt("packet for an undeclared interface");
                };
                let units = (u64::from(hi) << 32) | u64::from(lo);
                return Some(Ok(Record {
                    timestamp_ns: to_ns(units, ifc.tsresol),
                    linktype: ifc.linktype,
                    data,
                    orig_len: orig,
                }));
            }
            NG_SPB => {
                let Some(orig) = rd32(body, 0, le) else {
                    return corrupt("short simple packet block");
                };
                let Some(ifc) = ifaces.first() else {
                    return corrupt("packet for an undeclared interface");
                };
                // Section 4.4: captured length is the smaller of the original and the block room.
                let cap = (orig as usize).min(body.len() - 4);
                return Some(Ok(Record {
                    timestamp_ns: 0,
                    linktype: ifc.linktype,
                    data: &body[4..4 + cap],
                    orig_len: orig,
                }));
            }
            _ => {}
        }
    }
}

/// Converts pcapng timestamp units to nanoseconds.
fn to_ns(units: u64, tsresol: u8) -> u64 {
    let v = u32::from(tsresol & 0x7f);
    let ns = if tsresol & 0x80 != 0 {
        (u128::from(units) * 1_000_000_000) >> v.min(127)
    } else if v <= 9 {
        u128::from(units) * 10u128.pow(9 - v)
    } else {
        u128::from(units) / 10u128.pow((v - 9).min(38))
    };
    u64::try_from(ns).unwrap_or(u64::MAX)
}

impl<'a> Iterator for PcapReader<'a> {
    type Item = Result<Record<'a>, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = next_record(self.buf, &mut self.pos, &mut self.kind);
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

/// Bytes a [`PcapStream`] reads at a time.
const STREAM_CHUNK: usize = 1 << 20;

/// Reads records from a capture as a stream (a file of any size, a pipe, standard input) in
/// bounded memory: one buffer of [`STREAM_CHUNK`] bytes, grown only to hold one record larger
/// than that (at most 64 MiB, the corruption limit). Same formats, same errors as
/// [`PcapReader`], with offsets counted from the start of the stream; an I/O error is
/// [`PcapError::Io`]. Not an [`Iterator`]: each [`Record`] borrows the stream's buffer until
/// the next call.
#[derive(Debug)]
pub struct PcapStream<R> {
    src: R,
    buf: Vec<u8>,
    /// `buf[start..end]` holds unread bytes; `buf[0]` is at stream offset `base`.
    start: usize,
    end: usize,
    base: usize,
    kind: Kind,
    eof: bool,
    failed: bool,
}

impl<R: io::Read> PcapStream<R> {
    /// Reads the file header (pcap) or waits for the first block (pcapng).
    pub fn new(src: R) -> Result<Self, PcapError> {
        let mut s = PcapStream {
            src,
            buf: vec![0; STREAM_CHUNK],
            start: 0,
            end: 0,
            base: 0,
            kind: Kind::Ng { le: true, ifaces: Vec::new() },
            eof: false,
            failed: false,
        };
        while s.end < 24 && !s.eof {
            s.fill()?;
        }
        let (kind, pos) = header(&s.buf[..s.end])?;
        s.kind = kind;
        s.start = pos;
        Ok(s)
    }

    /// Reads more bytes after `end`, first moving the unread bytes to the front (or growing
    /// the buffer when a record fills it whole).
    fn fill(&mut self) -> Result<(), PcapError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() > MAX_RECORD + 64 {
                return Err(PcapError::Corrupt { offset: self.base, reason: "record over 64 MiB" });
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PcapError::Io(e.kind())),
            }
        }
    }

    /// The next record and the stream offset of its packet data; None at the end of the
    /// stream (or after an error).
    pub fn next_record(&mut self) -> Option<Result<(usize, Record<'_>), PcapError>> {
        if self.failed {
            return None;
        }
        // Parse first into plain values, so the buffer can be refilled between attempts.
        let found = loop {
            let mut pos = self.start;
            let r = next_record(&self.buf[..self.end], &mut pos, &mut self.kind);
            let shift = |e: PcapError| match e {
                PcapError::Truncated { offset } => {
                    PcapError::Truncated { offset: offset + self.base }
                }
                PcapError::Corrupt { offset, reason } => {
                    PcapError::Corrupt { offset: offset + self.base, reason }
                }
                e => e,
            };
            match r {
                None | Some(Err(PcapError::Truncated { .. })) if !self.eof => {
                    // Blocks before `pos` were whole and carried no packet (pcapng interface
                    // blocks): they are taken, not read again.
                    self.start = pos;
                    if let Err(e) = self.fill() {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
                None => return None,
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(shift(e)));
                }
                Some(Ok(rec)) => {
                    let off = rec.data.as_ptr() as usize - self.buf.as_ptr() as usize;
                    let vals = (rec.timestamp_ns, rec.linktype, off, rec.data.len(), rec.orig_len);
                    self.start = pos;
                    break vals;
                }
            }
        };
        let (timestamp_ns, linktype, off, len, orig_len) = found;
        let rec = Record { timestamp_ns, linktype, data: &self.buf[off..off + len], orig_len };
        Some(Ok((self.base + off, rec)))
    }
}

/// Gives an Ethernet II view of a record of any supported link type: Ethernet records are
/// returned as they are; raw IP, SLL, SLL2 and BSD loopback records get a synthetic 14-byte
/// Ethernet header (zero MACs, the right EtherType) written into `scratch`. None for other link
/// types or a truncated link header.
pub fn to_ethernet<'a>(
    linktype: u32,
    data: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Option<&'a [u8]> {
    let (ethertype, ip) = match linktype {
        linktype::ETHERNET => return Some(data),
        linktype::RAW => match data.first()? >> 4 {
            4 => (ETHERTYPE_IPV4, data),
            6 => (ETHERTYPE_IPV6, data),
            _ => return None,
        },
        linktype::IPV4 => (ETHERTYPE_IPV4, data),
        linktype::IPV6 => (ETHERTYPE_IPV6, data),
        // SLL: protocol type at bytes 14-15, header 16 bytes.
        linktype::LINUX_SLL => {
            (u16::from_be_bytes([*data.get(14)?, *data.get(15)?]), data.get(16..)?)
        }
        // SLL2: protocol type at bytes 0-1, header 20 bytes.
        linktype::LINUX_SLL2 => {
            (u16::from_be_bytes([*data.first()?, *data.get(1)?]), data.get(20..)?)
        }
        linktype::NULL => {
            let af = data.get(..4)?;
            let fam = u32::from_le_bytes([af[0], af[1], af[2], af[3]])
                .min(u32::from_be_bytes([af[0], af[1], af[2], af[3]]));
            let et = match fam {
                2 => ETHERTYPE_IPV4,
                24 | 28 | 30 => ETHERTYPE_IPV6,
                _ => return None,
            };
            (et, &data[4..])
        }
        _ => return None,
    };
    scratch.clear();
    scratch.extend_from_slice(&[0; 12]);
    scratch.extend_from_slice(&ethertype.to_be_bytes());
    scratch.extend_from_slice(ip);
    Some(scratch)
}

/// Parses a record of any supported link type as a [`Frame`] (see [`to_ethernet`]).
pub fn parse_frame<'a>(
    rec: &Record<'a>,
    scratch: &'a mut Vec<u8>,
) -> Result<Frame<'a>, ParseError> {
    let eth = to_ethernet(rec.linktype, rec.data, scratch).ok_or(ParseError::Truncated)?;
    Frame::parse(eth)
}

/// Writes a classic pcap file of Ethernet frames with nanosecond timestamps, little-endian.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. Frames longer than 262144 bytes are cut.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_snaplen(out, 262_144)
    }

    pub fn with_snaplen(mut out: W, snaplen: u32) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC_NS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&linktype::ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, snaplen })
    }

    /// Appends one Ethernet frame seen at `timestamp_ns` (nanoseconds since the epoch, or since
    /// any origin the reader agrees on).
    pub fn write_frame(&mut self, timestamp_ns: u64, frame: &[u8]) -> io::Result<()> {
        let incl = frame.len().min(self.snaplen as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((timestamp_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((timestamp_ns % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len().min(u32::MAX as usize) as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..incl])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packet::build;
    use proptest::prelude::*;

    fn frame() -> Vec<u8> {
        build::udp(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            ("10.0.0.1".parse().unwrap(), 5000),
            ("10.0.0.2".parse().unwrap(), 3478),
            b"hello",
        )
    }

    #[test]
    fn writer_round_trips() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(1_700_000_000_123_456_789, &frame()).unwrap();
        w.write_frame(1_700_000_001_000_000_000, &frame()[..20]).unwrap();
        let file = w.into_inner();
        let recs: Vec<_> = PcapReader::new(&file).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].timestamp_ns, 1_700_000_000_123_456_789);
        assert_eq!((recs[0].linktype, recs[0].data), (linktype::ETHERNET, &frame()[..]));
        let mut scratch = Vec::new();
        let f = parse_frame(&recs[0], &mut scratch).unwrap();
        assert_eq!(f.ip.unwrap().l4.transport().unwrap().payload, b"hello");
        // Truncation is an error, not a panic.
        for n in 0..file.len() {
            if let Ok(r) = PcapReader::new(&file[..n]) {
                let _ = r.collect::<Vec<_>>();
            }
        }
        let last = PcapReader::new(&file[..file.len() - 1]).unwrap().last().unwrap();
        assert!(matches!(last, Err(PcapError::Truncated { .. })));
    }

    /// A big-endian microsecond pcap of raw IP.
    #[test]
    fn big_endian_microseconds_raw_ip() {
        let ip = &frame()[14..];
        let mut f = Vec::new();
        f.extend_from_slice(&PCAP_MAGIC_US.to_be_bytes());
        f.extend_from_slice(&[0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        f.extend_from_slice(&linktype::RAW.to_be_bytes());
        f.extend_from_slice(&10u32.to_be_bytes());
        f.extend_from_slice(&20u32.to_be_bytes());
        f.extend_from_slice(&(ip.len() as u32).to_be_bytes());
        f.extend_from_slice(&(ip.len() as u32).to_be_bytes());
        f.extend_from_slice(ip);
        let r = PcapReader::new(&f).unwrap().next().unwrap().unwrap();
        assert_eq!((r.timestamp_ns, r.linktype), (10_000_020_000, linktype::RAW));
        let mut s = Vec::new();
        let fr = parse_frame(&r, &mut s).unwrap();
        assert_eq!(fr.ip.unwrap().l4.transport().unwrap().dst_port, 3478);
    }

    fn ng_block(le: bool, typ: u32, body: &[u8]) -> Vec<u8> {
        let w = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut body = body.to_vec();
        while body.len() & 3 != 0 {
            body.push(0);
        }
        let total = (12 + body.len()) as u32;
        let mut b = w(typ).to_vec();
        b.extend_from_slice(&w(total));
        b.extend_from_slice(&body);
        b.extend_from_slice(&w(total));
        b
    }

    pub(crate) fn pcapng(
        le: bool,
        linktype: u16,
        tsresol: Option<u8>,
        packets: &[(u64, &[u8])],
    ) -> Vec<u8> {
        let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut shb = w32(NG_BYTE_ORDER_MAGIC).to_vec();
        shb.extend_from_slice(&w16(1));
        shb.extend_from_slice(&w16(0));
        shb.extend_from_slice(&[0xff; 8]);
        let mut out = ng_block(le, NG_SHB, &shb);
        let mut idb = w16(linktype).to_vec();
        idb.extend_from_slice(&[0, 0]);
        idb.extend_from_slice(&w32(65535));
        if let Some(r) = tsresol {
            idb.extend_from_slice(&w16(9));
            idb.extend_from_slice(&w16(1));
            idb.extend_from_slice(&[r, 0, 0, 0]);
            idb.extend_from_slice(&[0, 0, 0, 0]);
        }
        out.extend_from_slice(&ng_block(le, NG_IDB, &idb));
        // A block type we skip (Name Resolution Block).
        out.extend_from_slice(&ng_block(le, 4, &[0, 0, 0, 0]));
        for (ts, data) in packets {
            let mut epb = w32(0).to_vec();
            epb.extend_from_slice(&w32((ts >> 32) as u32));
            epb.extend_from_slice(&w32(*ts as u32));
            epb.extend_from_slice(&w32(data.len() as u32));
            epb.extend_from_slice(&w32(data.len() as u32));
            epb.extend_from_slice(data);
            out.extend_from_slice(&ng_block(le, NG_EPB, &epb));
        }
        let mut spb = w32(5).to_vec();
        spb.extend_from_slice(b"short");
        out.extend_from_slice(&ng_block(le, NG_SPB, &spb));
        out
    }

    #[test]
    fn pcapng_both_byte_orders_and_resolutions() {
        let fr = frame();
        for le in [true, false] {
            let f = pcapng(le, 1, None, &[(1_500_000, &fr)]);
            let recs: Vec<_> = PcapReader::new(&f).unwrap().collect::<Result<_, _>>().unwrap();
            assert_eq!(recs.len(), 2);
            assert_eq!((recs[0].timestamp_ns, recs[0].data), (1_500_000_000, &fr[..]));
            assert_eq!((recs[1].data, recs[1].orig_len), (&b"short"[..], 5));
            let f = pcapng(le, 1, Some(9), &[(1_500_000, &fr)]);
            assert_eq!(
                PcapReader::new(&f).unwrap().next().unwrap().unwrap().timestamp_ns,
                1_500_000
            );
            let f = pcapng(le, 1, Some(0x80 | 10), &[(2048, &fr)]);
            assert_eq!(
                PcapReader::new(&f).unwrap().next().unwrap().unwrap().timestamp_ns,
                2_000_000_000
            );
        }
    }

    #[test]
    fn sll_records_get_an_ethernet_view() {
        let ip = &frame()[14..];
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ip);
        let f = pcapng(true, linktype::LINUX_SLL as u16, None, &[(0, &sll)]);
        let r = PcapReader::new(&f).unwrap().next().unwrap().unwrap();
        let mut s = Vec::new();
        assert_eq!(
            parse_frame(&r, &mut s).unwrap().ip.unwrap().l4.transport().unwrap().payload,
            b"hello"
        );
        let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        sll2.extend_from_slice(ip);
        let mut s = Vec::new();
        let eth = to_ethernet(linktype::LINUX_SLL2, &sll2, &mut s).unwrap();
        assert!(Frame::parse(eth).unwrap().ip.is_some());
        let mut s = Vec::new();
        assert!(to_ethernet(linktype::IPV4, ip, &mut s).is_some());
        let mut s = Vec::new();
        assert!(to_ethernet(147, ip, &mut s).is_none());
    }

    /// A reader that gives at most `n` bytes per read, as a pipe may.
    struct Trickle<'a>(&'a [u8], usize);

    impl io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Timestamp, link type and bytes of each record, or the error that ended the reading.
    type Records = Vec<Result<(u64, u32, Vec<u8>), PcapError>>;

    fn stream_all(bytes: &[u8], step: usize) -> Records {
        let mut out = Vec::new();
        let mut st = match PcapStream::new(Trickle(bytes, step)) {
            Ok(s) => s,
            Err(e) => return vec![Err(e)],
        };
        while let Some(r) = st.next_record() {
            out.push(r.map(|(_, r)| (r.timestamp_ns, r.linktype, r.data.to_vec())));
        }
        out
    }

    fn memory_all(bytes: &[u8]) -> Records {
        match PcapReader::new(bytes) {
            Ok(r) => r.map(|r| r.map(|r| (r.timestamp_ns, r.linktype, r.data.to_vec()))).collect(),
            Err(e) => vec![Err(e)],
        }
    }

    #[test]
    fn stream_reads_what_memory_reads() {
        let fr = frame();
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for i in 0..50 {
            w.write_frame(i * 1000, &fr).unwrap();
        }
        // One record larger than the stream's first buffer.
        let big = vec![0x42u8; STREAM_CHUNK + 1000];
        w.write_frame(99, &big).unwrap();
        let pcap = w.into_inner();
        let ng = pcapng(false, 2, Some(9), &[(7, &fr), (8, &fr), (9, &fr)]);
        for bytes in [&pcap[..], &ng[..]] {
            let want = memory_all(bytes);
            assert!(want.iter().all(|r| r.is_ok()) && want.len() >= 3);
            for step in [1, 7, 4096, usize::MAX] {
                assert_eq!(stream_all(bytes, step), want, "step {step}");
            }
            // Truncated: the same records, then the same error at the same offset.
            let cut = &bytes[..bytes.len() - 3];
            assert_eq!(stream_all(cut, 5), memory_all(cut));
        }
    }

    #[test]
    fn corrupt_inputs_are_typed_errors() {
        assert_eq!(
            PcapReader::new(b"nope").unwrap_err(),
            PcapError::BadMagic(u32::from_le_bytes(*b"nope"))
        );
        assert_eq!(PcapReader::new(b"").unwrap_err(), PcapError::Truncated { offset: 0 });
        let mut f = pcapng(true, 1, None, &[(0, &frame())]);
        let n = f.len();
        f[n - 1] ^= 1; // trailing length of the SPB no longer matches
        let last = PcapReader::new(&f).unwrap().last().unwrap();
        assert!(matches!(last, Err(PcapError::Corrupt { .. })), "{last:?}");
        assert!(!PcapError::Corrupt { offset: 1, reason: "x" }.to_string().is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for magic in [PCAP_MAGIC_NS.to_le_bytes(), NG_SHB.to_le_bytes(), PCAP_MAGIC_US.to_be_bytes()] {
                let mut f = magic.to_vec();
                f.extend_from_slice(&bytes);
                assert_eq!(stream_all(&f, 3), memory_all(&f));
                f.truncate(4);
                f.extend_from_slice(&bytes);
                if let Ok(r) = PcapReader::new(&f) {
                    for rec in r.take(50).flatten() {
                        let mut s = Vec::new();
                        let _ = parse_frame(&rec, &mut s);
                    }
                }
            }
        }

        #[test]
        fn mutated_pcapng_never_panics(idx in 0usize..300, val in any::<u8>(), cut in 0usize..300) {
            let fr = frame();
            let mut f = pcapng(idx % 2 == 0, 1, Some(9), &[(7, &fr), (8, &fr)]);
            let i = idx % f.len();
            f[i] = val;
            f.truncate(cut.max(1));
            if let Ok(r) = PcapReader::new(&f) {
                let _ = r.take(50).count();
            }
        }
    }
}
