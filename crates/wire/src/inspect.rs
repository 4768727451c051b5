//! The censor's entry point: per-datagram labels ([`classify_datagram`]) and a bounded
//! per-flow inspector ([`FlowInspector`]) that follows the first packets of a flow in both
//! directions and collects [`FlowFacts`]: labels, SNI and ALPN (TLS, QUIC, DTLS), the QUIC
//! version, a DTLS ClientHello fingerprint, STUN facts, and the GFW fully-encrypted test.
//!
//! Guarantees: no I/O, no clock, no panic on any input. Per packet, the only heap use is the
//! bounded ClientHello reassembly buffer (TLS over TCP or QUIC Initials, [`InspectorConfig::
//! reassembly_limit`]) and the strings of [`FlowFacts`], each allocated once per flow when
//! found. After [`InspectorConfig::max_packets_per_dir`] payload-carrying packets in each
//! direction the inspector stops working and `observe` is a counter increment.
//!
//! What it does not do: TCP segments are taken in arrival order (no sequence numbers, so no
//! repair of reordering or retransmission); IP fragments are not reassembled; encrypted
//! traffic past the handshake is not decrypted.

use crate::fet::{self, FetOutcome};
use crate::label::{Label, Labels};
use crate::quic::{self, InitialTracker, LongType};
use crate::stun::{self, Demux, StunClass};
use crate::tls::{ClientHello, ClientHelloReassembler, Reassembly};
use crate::{dns, dtls, rtp, tls, wireguard};

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Udp,
    Tcp,
}

/// Direction of a packet relative to the flow's initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

/// Limits of a [`FlowInspector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InspectorConfig {
    /// Payload-carrying packets inspected per direction (default 16).
    pub max_packets_per_dir: u32,
    /// Bytes of ClientHello reassembled at most (default 16 KiB).
    pub reassembly_limit: usize,
}

impl Default for InspectorConfig {
    fn default() -> Self {
        InspectorConfig { max_packets_per_dir: 16, reassembly_limit: 16 * 1024 }
    }
}

/// What the first STUN messages of a flow said (RFC 8489).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunFacts {
    /// Method of the first STUN message (see [`stun::method`]).
    pub method: u16,
    /// Class of the first STUN message.
    pub class: StunClass,
    /// True when the first message had no magic cookie (RFC 3489).
    pub classic: bool,
    /// SOFTWARE, USERNAME, REALM: the first value seen on the flow, lossily UTF-8.
    pub software: Option<String>,
    pub username: Option<String>,
    pub realm: Option<String>,
    /// Whether the first FINGERPRINT seen verified; None when no message had one.
    pub fingerprint_valid: Option<bool>,
    /// True when some message carried MESSAGE-INTEGRITY(-SHA256).
    pub message_integrity: bool,
    /// STUN messages seen while inspecting.
    pub messages: u32,
}

/// What a DTLS ServerHello said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsServerFacts {
    pub version: u16,
    pub cipher_suite: u16,
    /// Extension types, in the server's order (pion's once included supported_groups).
    pub extensions: Vec<u16>,
}

/// Everything the inspector learned about a flow so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowFacts {
    /// Union of the labels of every inspected packet (and of reassembled messages).
    pub labels: Labels,
    /// Labels of the first payload-carrying packet of the flow, in either direction (with
    /// what that packet alone completed: SNI of a one-packet QUIC ClientHello, the FET result
    /// of a first TCP client packet).
    pub first_packet_labels: Labels,
    /// Direction of that first packet.
    pub first_packet_dir: Option<Dir>,
    /// Labels of the first payload-carrying server-to-client packet.
    pub first_server_packet_labels: Labels,
    /// Labels of the packet just observed; empty once past the inspection limit (call
    /// [`classify_datagram`] directly for per-packet labels beyond it).
    pub packet_labels: Labels,
    /// Payload-carrying packets observed, per direction (counted also past the limit).
    pub packets_c2s: u32,
    pub packets_s2c: u32,
    /// Server name of the ClientHello (TLS, QUIC or DTLS).
    pub sni: Option<String>,
    /// Which client-to-server packet (1-based) completed the ClientHello that gave `sni`/`alpn`.
    /// More than 1 means the hello was split over packets (as circumvention does).
    pub client_hello_packet: Option<u32>,
    /// ALPN protocols offered by the client, in order.
    pub alpn: Vec<String>,
    /// Version of the first QUIC long header seen.
    pub quic_version: Option<u32>,
    /// QUIC client Initials whose CRYPTO frames built the ClientHello.
    pub quic_initials_with_crypto: u32,
    /// Fingerprint of a TLS-over-TCP (`t...`) or QUIC (`q...`) ClientHello, see
    /// [`ClientHello::fingerprint`].
    pub tls_fingerprint: Option<String>,
    pub tls_fingerprint_hash: Option<u64>,
    /// Server name read from the first client-to-server packet alone, as a censor that does
    /// not reassemble reads it (the 2021 TSPU): the ClientHello whole in the first TLS record
    /// of the first TCP segment, or whole in the first QUIC Initial datagram. None when the
    /// hello was split (across records, segments or datagrams), which is the bypass.
    pub first_packet_sni: Option<String>,
    /// Fingerprint of the DTLS ClientHello (`d...`), see [`ClientHello::fingerprint`], from
    /// whichever side sent it and reassembled from its handshake fragments.
    pub dtls_fingerprint: Option<String>,
    pub dtls_fingerprint_hash: Option<u64>,
    /// Which side sent the DTLS ClientHello, relative to the flow's first packet (in WebRTC
    /// either peer may be the DTLS client, whoever sent the first ICE check).
    pub dtls_client: Option<Dir>,
    /// Handshake fragments the DTLS ClientHello came in (1 when whole in one record).
    pub dtls_client_hello_fragments: u32,
    /// The DTLS ServerHello, if one was seen whole (boxed: most flows carry none).
    pub dtls_server: Option<Box<DtlsServerFacts>>,
    /// STUN facts, if the flow carried STUN (boxed: most flows carry none).
    pub stun: Option<Box<StunFacts>>,
    /// GFW fully-encrypted test on the first client-to-server TCP data packet.
    pub fet: Option<FetOutcome>,
    /// Largest WireGuard transport counter seen (its high bytes stay zero for a long time).
    pub wireguard_max_counter: Option<u64>,
    /// True once the inspector stopped looking (both directions reached the limit).
    pub done: bool,
}

/// Labels of one UDP payload, with no flow state. Cheap: one branch on the first byte (RFC
/// 7983), then the one parser it points to; DNS is tried only when nothing else matched or
/// only an RTP header parsed (a DNS id in the RTP range).
///
/// `rtp` and `rtcp` here only say that the header parses: a quarter of all random payloads
/// start in the RTP range. [`FlowInspector`] keeps them only with evidence across packets
/// ([`rtp::RtpEvidence`]), or `rtcp` where the datagram's structure proves it
/// ([`rtp::prove_rtcp`]).
pub fn classify_datagram(payload: &[u8]) -> Labels {
    let Some(&first) = payload.first() else { return Labels::EMPTY };
    let mut l = Labels::EMPTY;
    match stun::demux(first) {
        Demux::Stun => {
            if let Ok(m) = stun::parse_datagram(payload) {
                l.insert(Label::Stun);
                if !m.has_cookie {
                    l.insert(Label::StunClassic);
                }
            }
        }
        Demux::Dtls => {
            if dtls::is_dtls_datagram(payload) {
                l.insert(Label::Dtls);
                match dtls::handshake_type(payload) {
                    Some(tls::handshake::CLIENT_HELLO) => l.insert(Label::DtlsClientHello),
                    Some(tls::handshake::SERVER_HELLO) => l.insert(Label::DtlsServerHello),
                    _ => {}
                }
            }
        }
        Demux::ChannelData => {
            if stun::parse_channel_data(payload).is_some() {
                l.insert(Label::TurnChannelData);
            }
        }
        Demux::Rtp => {
            if rtp::is_rtcp_type(payload.get(1).copied().unwrap_or(0)) {
                if rtp::parse_rtcp(payload).is_some() {
                    l.insert(Label::Rtcp);
                }
            } else if rtp::parse_rtp(payload).is_some() {
                l.insert(Label::Rtp);
            }
        }
        Demux::QuicLong => l = l.union(quic_labels(payload)),
        Demux::Zrtp | Demux::Other => {}
    }
    if l.is_empty() && (1..=4).contains(&first) {
        if let Some(m) = wireguard::parse(payload) {
            l.insert(Label::Wireguard);
            if m.is_handshake() {
                l.insert(Label::WireguardHandshake);
            }
        }
    }
    // A DNS message's id is random (RFC 5452 section 9.2), so a quarter of real queries start
    // in the RTP range and parse as an RTP header too: that parse is no evidence (see above),
    // so DNS is tried there as well, and both labels stand until the flow decides.
    let header_only = l.is_empty() || l == Labels::EMPTY.with(Label::Rtp);
    if header_only && dns::looks_like_dns(payload) {
        l.insert(Label::Dns);
    }
    l
}

fn quic_labels(payload: &[u8]) -> Labels {
    let mut l = Labels::EMPTY;
    if !quic::looks_like_long_header(payload) {
        return l;
    }
    l.insert(Label::Quic);
    if let Ok(h) = quic::parse_long_header(payload) {
        if h.version == quic::VERSION_NEGOTIATION {
            l.insert(Label::QuicVersionNegotiation);
        }
        if h.version == quic::VERSION_2 {
            l.insert(Label::QuicV2);
        }
        if h.packet_type == Some(LongType::Initial) {
            l.insert(Label::QuicInitial);
        }
    }
    l
}

/// Labels of one TCP payload, with no flow state.
pub fn classify_segment(payload: &[u8]) -> Labels {
    let mut l = Labels::EMPTY;
    if tls::looks_like_tls(payload) {
        l.insert(Label::Tls);
        if payload.get(5) == Some(&tls::handshake::CLIENT_HELLO)
            && payload[0] == tls::CONTENT_HANDSHAKE
        {
            // The whole hello may not be here: the inspector adds TlsClientHello once it is.
            if tls::ClientHello::parse_handshake(&payload[5..]).is_ok() {
                l.insert(Label::TlsClientHello);
            }
        }
    } else if looks_like_http(payload) {
        l.insert(Label::Http);
    } else if looks_like_stun_stream(payload) {
        l.insert(Label::Stun);
    } else if dns::looks_like_dns_tcp(payload) {
        l.insert(Label::Dns);
    }
    l
}

/// A whole STUN message with the magic cookie at the start of a TCP payload. RFC 8489 section
/// 6.2.2 (and RFC 8656 section 3.1 for TURN over TCP and TLS): over a stream, messages follow
/// each other framed by their own length, so a segment may hold several.
fn stun_at_start(payload: &[u8]) -> Option<stun::StunMessage<'_>> {
    stun::parse(payload).ok().filter(|m| m.has_cookie)
}

/// A STUN header with the magic cookie at the start of a TCP payload, whole message or not
/// (a message may continue in the next segment). RFC 8489 section 5: two zero bits, a length
/// that is a multiple of 4, the cookie 0x2112A442. Without the cookie, 20 bytes of TCP data
/// say too little to call them STUN.
fn looks_like_stun_stream(payload: &[u8]) -> bool {
    match payload.get(..8) {
        Some(h) => {
            h[0] & 0xc0 == 0
                && u16::from_be_bytes([h[2], h[3]]) % 4 == 0
                && u32::from_be_bytes([h[4], h[5], h[6], h[7]]) == stun::MAGIC_COOKIE
                && payload.len() >= 20
        }
        None => false,
    }
}

/// An HTTP/1.x request line start (RFC 9112 section 3) or a status line (section 4).
pub fn looks_like_http(payload: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"OPTIONS ",
        b"CONNECT ",
        b"PATCH ",
        b"TRACE ",
    ];
    METHODS.iter().any(|m| payload.starts_with(m)) || payload.starts_with(b"HTTP/1.")
}

/// The SNI of a ClientHello whole in the first TLS record of a segment (RFC 8446 section 5.1:
/// a record header of 5 bytes, the length in bytes 3-4), as a censor reading one packet sees it.
fn first_record_sni(payload: &[u8]) -> Option<String> {
    let len = usize::from(u16::from_be_bytes([*payload.get(3)?, *payload.get(4)?]));
    let rec = payload.get(5..5 + len)?;
    let ch = ClientHello::parse_handshake(rec).ok()?;
    ch.sni().map(str::to_owned)
}

/// Follows one flow (both directions) for its first packets. Create one per flow; feed it every
/// packet's transport payload with [`FlowInspector::observe`].
#[derive(Debug, Clone, Default)]
pub struct FlowInspector {
    cfg: InspectorConfig,
    facts: FlowFacts,
    quic: Option<Box<InitialTracker>>,
    tls: Option<Box<ClientHelloReassembler>>,
    /// True once the ClientHello has been read or given up on.
    hello_settled: bool,
    dtls: Option<Box<dtls::HelloReassembler>>,
    /// True once the DTLS ClientHello has been read or given up on.
    dtls_settled: bool,
    rtp: rtp::RtpEvidence,
}

impl FlowInspector {
    pub fn new() -> Self {
        Self::with_config(InspectorConfig::default())
    }

    pub fn with_config(cfg: InspectorConfig) -> Self {
        FlowInspector {
            cfg,
            facts: FlowFacts::default(),
            quic: None,
            tls: None,
            hello_settled: false,
            dtls: None,
            dtls_settled: false,
            rtp: rtp::RtpEvidence::new(),
        }
    }

    pub fn facts(&self) -> &FlowFacts {
        &self.facts
    }

    /// Inspects the payload of one packet of the flow. Empty payloads (TCP SYN, pure ACKs)
    /// are ignored.
    pub fn observe(&mut self, proto: Proto, dir: Dir, payload: &[u8]) -> &FlowFacts {
        self.facts.packet_labels = Labels::EMPTY;
        if payload.is_empty() {
            return &self.facts;
        }
        let n = match dir {
            Dir::ClientToServer => {
                self.facts.packets_c2s = self.facts.packets_c2s.saturating_add(1);
                self.facts.packets_c2s
            }
            Dir::ServerToClient => {
                self.facts.packets_s2c = self.facts.packets_s2c.saturating_add(1);
                self.facts.packets_s2c
            }
        };
        if self.facts.done || n > self.cfg.max_packets_per_dir {
            let max = self.cfg.max_packets_per_dir;
            if !self.facts.done && self.facts.packets_c2s >= max && self.facts.packets_s2c >= max {
                self.finish();
            }
            return &self.facts;
        }
        let first_of_flow = self.facts.first_packet_dir.is_none();
        let first_of_server = dir == Dir::ServerToClient && self.facts.packets_s2c == 1;
        let mut l = match proto {
            Proto::Udp => self.observe_udp(dir, n, payload),
            Proto::Tcp => self.observe_tcp(dir, n, payload),
        };
        if l.contains(Label::QuicV2) || l.contains(Label::QuicInitial) {
            l.insert(Label::Quic);
        }
        self.facts.labels |= l;
        self.facts.packet_labels = l;
        if first_of_flow {
            self.facts.first_packet_labels = l;
            self.facts.first_packet_dir = Some(dir);
        }
        if first_of_server {
            self.facts.first_server_packet_labels = l;
        }
        let max = self.cfg.max_packets_per_dir;
        if self.facts.packets_c2s >= max && self.facts.packets_s2c >= max {
            self.finish();
        }
        &self.facts
    }

    fn finish(&mut self) {
        self.facts.done = true;
        self.quic = None;
        self.tls = None;
        self.dtls = None;
    }

    fn observe_udp(&mut self, dir: Dir, n: u32, payload: &[u8]) -> Labels {
        let mut l = classify_datagram(payload);
        if l.contains(Label::Stun) {
            self.stun_facts(payload);
        }
        if l.contains(Label::Quic) && self.facts.quic_version.is_none() {
            if let Ok(h) = quic::parse_long_header(payload) {
                if h.version != quic::VERSION_NEGOTIATION {
                    self.facts.quic_version = Some(h.version);
                }
            }
        }
        if self.facts.labels.contains(Label::Quic) {
            if l.is_empty() && quic::looks_like_short_header(payload[0]) {
                l.insert(Label::Quic);
            }
            // RFC 9287 section 3: a peer that received grease_quic_bit may clear the QUIC
            // (fixed) bit. A long header then starts 0x80-0xbf, the RFC 7983 RTP range, and a
            // short header 0x00-0x3f. On a flow already known to be QUIC, a long header of
            // the flow's version, or a short-header form byte nothing else claimed, is QUIC.
            let greased_long = payload[0] & 0xc0 == 0x80
                && payload.get(1..5).is_some_and(|v| {
                    let v = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                    quic::is_known_version(v) && Some(v) == self.facts.quic_version
                });
            if greased_long {
                l = Labels::from(Label::Quic);
            } else if l.is_empty() && payload[0] & 0x80 == 0 {
                l.insert(Label::Quic);
            }
        }
        if l.contains(Label::Rtp) || l.contains(Label::Rtcp) {
            l = self.rtp_evidence(l, payload);
        }
        if dir == Dir::ClientToServer && l.contains(Label::QuicInitial) && !self.hello_settled {
            l |= self.quic_initial(n, payload);
        }
        if l.contains(Label::Dtls) && !self.dtls_settled {
            l |= self.dtls_hello(l, dir, n, payload);
        }
        if self.facts.dtls_client != Some(dir)
            && l.contains(Label::DtlsServerHello)
            && self.facts.dtls_server.is_none()
        {
            if let Ok(sh) = dtls::server_hello(payload) {
                self.facts.dtls_server = Some(Box::new(DtlsServerFacts {
                    version: sh.legacy_version,
                    cipher_suite: sh.cipher_suite,
                    extensions: sh.extensions().map(|e| e.0).collect(),
                }));
            }
        }
        if l.contains(Label::Wireguard) {
            if let Some(wireguard::Message::Transport { counter, .. }) = wireguard::parse(payload) {
                let m = self.facts.wireguard_max_counter.map_or(counter, |c| c.max(counter));
                self.facts.wireguard_max_counter = Some(m);
            }
        }
        l
    }

    /// Keeps `rtp`/`rtcp` in `l` only when the flow shows evidence across packets, or, for
    /// `rtcp`, when the datagram's own structure proves it ([`rtp::prove_rtcp`]: a compound
    /// packet walked whole, RFC 3550 sections 6.1 and 6.4; or SRTCP's clear header and
    /// trailer, RFC 3711 section 3.4).
    fn rtp_evidence(&mut self, mut l: Labels, payload: &[u8]) -> Labels {
        if l.contains(Label::Rtp) {
            let ok = rtp::parse_rtp(payload).is_some_and(|h| self.rtp.observe_rtp(&h));
            if !ok {
                l.remove(Label::Rtp);
            }
        }
        if l.contains(Label::Rtcp) {
            let seen = rtp::parse_rtcp(payload).is_some_and(|h| self.rtp.observe_rtcp(&h));
            if !seen && rtp::prove_rtcp(payload).is_none() {
                l.remove(Label::Rtcp);
            }
        }
        l
    }

    /// Reads the DTLS ClientHello from whichever side sends it: whole in the first record (no
    /// copy), or reassembled from its handshake fragments ([`dtls::HelloReassembler`]).
    fn dtls_hello(&mut self, l: Labels, dir: Dir, n: u32, payload: &[u8]) -> Labels {
        match self.facts.dtls_client {
            Some(d) if d != dir => return Labels::EMPTY,
            None if !l.contains(Label::DtlsClientHello) => return Labels::EMPTY,
            _ => {}
        }
        self.facts.dtls_client = Some(dir);
        if self.dtls.is_none() {
            match dtls::client_hello(payload) {
                Ok(ch) => {
                    self.facts.dtls_client_hello_fragments = 1;
                    return self.take_dtls_hello(&ch, n);
                }
                Err(dtls::DtlsError::Fragmented) => {}
                Err(_) => {
                    self.dtls_settled = true;
                    return Labels::EMPTY;
                }
            }
        }
        let limit = self.cfg.reassembly_limit;
        let r = self.dtls.get_or_insert_with(|| Box::new(dtls::HelloReassembler::new(limit)));
        let mut out = Labels::EMPTY;
        match r.push(payload) {
            Reassembly::NeedMore => {}
            Reassembly::Complete => {
                if let Some(r) = self.dtls.take() {
                    self.facts.dtls_client_hello_fragments = r.fragments;
                    if let Some(ch) = r.client_hello() {
                        out = self.take_dtls_hello(&ch, n);
                    }
                }
                self.dtls_settled = true;
            }
            Reassembly::NotClientHello | Reassembly::TooLarge => {
                self.dtls = None;
                self.dtls_settled = true;
            }
        }
        out
    }

    fn take_dtls_hello(&mut self, ch: &ClientHello<'_>, n: u32) -> Labels {
        self.dtls_settled = true;
        self.facts.dtls_fingerprint = Some(ch.fingerprint('d'));
        self.facts.dtls_fingerprint_hash = Some(ch.fingerprint_hash('d'));
        let mut l = Labels::from(Label::DtlsClientHello);
        if self.facts.sni.is_none() {
            l |= self.take_hello(ch, n);
        }
        l
    }

    fn quic_initial(&mut self, n: u32, payload: &[u8]) -> Labels {
        let limit = self.cfg.reassembly_limit;
        let tracker = self.quic.get_or_insert_with(|| Box::new(InitialTracker::new(limit)));
        let mut scratch = [0u8; quic::SCRATCH_LEN];
        let state = tracker.push_datagram(payload, &mut scratch);
        let mut l = Labels::EMPTY;
        match state {
            Reassembly::NeedMore => {}
            Reassembly::Complete => {
                if let Some(t) = self.quic.take() {
                    self.facts.quic_initials_with_crypto = t.packets_with_crypto;
                    if let Some(ch) = t.client_hello() {
                        self.facts.tls_fingerprint = Some(ch.fingerprint('q'));
                        self.facts.tls_fingerprint_hash = Some(ch.fingerprint_hash('q'));
                        l |= self.take_hello(&ch, n);
                        if n == 1 {
                            self.facts.first_packet_sni = self.facts.sni.clone();
                        }
                    }
                }
                self.hello_settled = true;
            }
            Reassembly::NotClientHello | Reassembly::TooLarge => {
                self.quic = None;
                self.hello_settled = true;
            }
        }
        l
    }

    /// Copies SNI and ALPN out of a ClientHello (once per flow).
    fn take_hello(&mut self, ch: &ClientHello<'_>, n: u32) -> Labels {
        let mut l = Labels::EMPTY;
        if let Some(sni) = ch.sni() {
            self.facts.sni = Some(sni.to_owned());
            l.insert(Label::Sni);
        }
        self.facts.alpn = ch.alpn().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        self.facts.client_hello_packet = Some(n);
        l
    }

    fn stun_facts(&mut self, payload: &[u8]) {
        let Ok(m) = stun::parse_datagram(payload) else { return };
        self.stun_message_facts(&m);
    }

    fn stun_message_facts(&mut self, m: &stun::StunMessage<'_>) {
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let f = self.facts.stun.get_or_insert_with(|| {
            Box::new(StunFacts {
                method: m.method,
                class: m.class,
                classic: !m.has_cookie,
                software: None,
                username: None,
                realm: None,
                fingerprint_valid: None,
                message_integrity: false,
                messages: 0,
            })
        });
        f.messages = f.messages.saturating_add(1);
        if f.software.is_none() {
            f.software = text(m.software());
        }
        if f.username.is_none() {
            f.username = text(m.username());
        }
        if f.realm.is_none() {
            f.realm = text(m.realm());
        }
        if f.fingerprint_valid.is_none() {
            f.fingerprint_valid = m.fingerprint().map(|fp| fp.is_valid());
        }
        f.message_integrity |= m.has_message_integrity();
    }

    fn observe_tcp(&mut self, dir: Dir, n: u32, payload: &[u8]) -> Labels {
        let mut l = classify_segment(payload);
        if l.contains(Label::Stun) {
            if let Some(m) = stun_at_start(payload) {
                self.stun_message_facts(&m);
            }
        } else if l.is_empty()
            && self.facts.labels.contains(Label::Stun)
            && stun::demux(payload[0]) == Demux::ChannelData
        {
            // RFC 8656 section 12.5: over TCP, ChannelData messages follow STUN messages on
            // the same stream, each padded to 4 bytes; the header must be whole.
            let channel = u16::from_be_bytes([payload[0], payload.get(1).copied().unwrap_or(0)]);
            let len = payload.get(2..4).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            if (0x4000..=0x4fff).contains(&channel) && len.is_some() {
                l.insert(Label::TurnChannelData);
            }
        }
        if dir == Dir::ServerToClient {
            return l;
        }
        if n == 1 {
            // Wu et al. 2023: only the first data packet from the client is tested.
            if let Some(out) = fet::fet(payload) {
                self.facts.fet = Some(out);
                if out.is_fully_encrypted() {
                    l.insert(Label::FullyEncrypted);
                }
            }
            if l.contains(Label::Tls) && payload[0] == tls::CONTENT_HANDSHAKE {
                self.facts.first_packet_sni = first_record_sni(payload);
                self.tls = Some(Box::new(ClientHelloReassembler::new(self.cfg.reassembly_limit)));
            } else {
                self.hello_settled = true;
            }
        }
        if self.hello_settled {
            return l;
        }
        let Some(r) = self.tls.as_mut() else { return l };
        match r.push(payload) {
            Reassembly::NeedMore => {}
            Reassembly::Complete => {
                if let Some(r) = self.tls.take() {
                    if let Some(ch) = r.client_hello() {
                        self.facts.tls_fingerprint = Some(ch.fingerprint('t'));
                        self.facts.tls_fingerprint_hash = Some(ch.fingerprint_hash('t'));
                        l |= self.take_hello(&ch, n);
                        l.insert(Label::TlsClientHello);
                    }
                }
                self.hello_settled = true;
            }
            Reassembly::NotClientHello | Reassembly::TooLarge => {
                self.tls = None;
                self.hello_settled = true;
            }
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::build;
    use crate::stun::tests::{rfc5769_request, vector};
    use crate::tls::tests::{client_hello_msg, record};
    use proptest::prelude::*;

    #[test]
    fn classify_each_kind() {
        assert!(classify_datagram(&rfc5769_request()).contains(Label::Stun));
        assert!(classify_datagram(&crate::dtls::tests::pion_like())
            .contains_all(Labels::from(Label::Dtls).with(Label::DtlsClientHello)));
        let q = classify_datagram(&vector("rfc9369-a2-client-initial.hex"));
        assert_eq!(q, [Label::Quic, Label::QuicInitial, Label::QuicV2].into_iter().collect());
        let mut rtp = vec![0x80, 0x6f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        rtp.extend_from_slice(&[0x55; 40]);
        assert_eq!(classify_datagram(&rtp), Label::Rtp.into());
        let mut wg = vec![1, 0, 0, 0];
        wg.resize(148, 3);
        assert_eq!(
            classify_datagram(&wg),
            [Label::Wireguard, Label::WireguardHandshake].into_iter().collect()
        );
        assert_eq!(classify_datagram(&[0x40, 0x00, 0, 2, 9, 9]), Label::TurnChannelData.into());
        assert_eq!(classify_datagram(&[]), Labels::EMPTY);
        assert_eq!(classify_segment(b"GET / HTTP/1.1\r\n"), Label::Http.into());
    }

    #[test]
    fn quic_flow_rfc9001_gives_sni_on_first_packet() {
        let mut fi = FlowInspector::new();
        let f =
            fi.observe(Proto::Udp, Dir::ClientToServer, &vector("rfc9001-a2-client-initial.hex"));
        assert_eq!(f.sni.as_deref(), Some("example.com"));
        assert_eq!(f.alpn, vec!["alpn".to_owned()]);
        assert_eq!(f.quic_version, Some(quic::VERSION_1));
        assert!(f
            .first_packet_labels
            .contains_all([Label::Quic, Label::QuicInitial, Label::Sni].into_iter().collect()));
        assert_eq!(f.client_hello_packet, Some(1));
        assert!(f.tls_fingerprint.as_deref().unwrap().starts_with("q0303|"));
    }

    #[test]
    fn quic_flow_with_split_hello() {
        let ch = client_hello_msg("split.example", &["h3"], &[]);
        let (a, b) = ch.split_at(100);
        let dcid = [9u8; 8];
        let p1 =
            build::client_initial(quic::VERSION_1, &dcid, &[], 0, &build::crypto_frame(0, a), 1200);
        let p2 = build::client_initial(
            quic::VERSION_1,
            &dcid,
            &[],
            1,
            &build::crypto_frame(100, b),
            1200,
        );
        let mut fi = FlowInspector::new();
        let f = fi.observe(Proto::Udp, Dir::ClientToServer, &p1);
        assert_eq!(f.sni, None);
        assert!(!f.first_packet_labels.contains(Label::Sni));
        let f = fi.observe(Proto::Udp, Dir::ClientToServer, &p2);
        assert!(f.packet_labels.contains(Label::Sni));
        assert_eq!(f.sni.as_deref(), Some("split.example"));
        assert_eq!(f.client_hello_packet, Some(2));
        assert_eq!(f.quic_initials_with_crypto, 2);
    }

    #[test]
    fn webrtc_like_flow() {
        let mut fi = FlowInspector::new();
        fi.observe(Proto::Udp, Dir::ClientToServer, &rfc5769_request());
        fi.observe(Proto::Udp, Dir::ClientToServer, &crate::dtls::tests::pion_like());
        let rtp_at = |seq: u16| {
            let mut rtp = vec![0x80, 0x6f];
            rtp.extend_from_slice(&seq.to_be_bytes());
            rtp.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
            rtp.extend_from_slice(&[0, 0, 0, 2]);
            rtp.extend_from_slice(&[0x55; 40]);
            rtp
        };
        for seq in 0..100 {
            let f = fi.observe(Proto::Udp, Dir::ClientToServer, &rtp_at(seq));
            // RTP only with evidence: the third in-order packet of the stream.
            if seq == 1 {
                assert!(!f.labels.contains(Label::Rtp));
            }
        }
        let rtp = rtp_at(0);
        let f = fi.facts();
        assert_eq!(f.first_packet_labels, Label::Stun.into());
        assert!(f.labels.contains_all(
            [Label::Stun, Label::Dtls, Label::DtlsClientHello, Label::Rtp].into_iter().collect()
        ));
        let s = f.stun.as_ref().unwrap();
        assert_eq!(
            (s.method, s.class, s.classic),
            (stun::method::BINDING, StunClass::Request, false)
        );
        assert_eq!(s.software.as_deref(), Some("STUN test client"));
        assert_eq!(s.username.as_deref(), Some("evtj:h6vY"));
        assert_eq!(s.fingerprint_valid, Some(true));
        assert!(f.dtls_fingerprint.as_deref().unwrap().starts_with("dfefd|c02b"));
        assert_eq!(f.dtls_client, Some(Dir::ClientToServer));
        assert_eq!(f.packets_c2s, 102);
        assert!(!f.done, "server side not exhausted");
        for _ in 0..16 {
            fi.observe(Proto::Udp, Dir::ServerToClient, &rtp);
        }
        assert!(fi.facts().done);
    }

    #[test]
    fn tcp_tls_split_over_segments() {
        let rec = record(22, &client_hello_msg("tcp.example", &["h2", "http/1.1"], &[]));
        let (a, b) = rec.split_at(30);
        let mut fi = FlowInspector::new();
        fi.observe(Proto::Tcp, Dir::ClientToServer, &[]);
        let f = fi.observe(Proto::Tcp, Dir::ClientToServer, a);
        assert!(matches!(f.fet, Some(FetOutcome::Exempt(_))));
        assert!(
            f.first_packet_labels.contains(Label::Tls) && !f.labels.contains(Label::TlsClientHello)
        );
        let f = fi.observe(Proto::Tcp, Dir::ClientToServer, b);
        assert_eq!(f.sni.as_deref(), Some("tcp.example"));
        assert_eq!(f.alpn, vec!["h2".to_owned(), "http/1.1".to_owned()]);
        assert!(f.labels.contains(Label::TlsClientHello));
        assert_eq!(f.client_hello_packet, Some(2));
    }

    #[test]
    fn tcp_fully_encrypted_first_packet() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let p: Vec<u8> = (0..200)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let mut fi = FlowInspector::new();
        let f = fi.observe(Proto::Tcp, Dir::ClientToServer, &p);
        assert_eq!(f.fet, Some(FetOutcome::FullyEncrypted));
        assert!(f.first_packet_labels.contains(Label::FullyEncrypted));
        // Only the first data packet is tested.
        let f = fi.observe(Proto::Tcp, Dir::ClientToServer, b"GET / HTTP/1.1\r\n");
        assert_eq!(f.fet, Some(FetOutcome::FullyEncrypted));
    }

    /// Flow facts of the first UDP/TCP flow of a capture in `tests/data/captures/` at the
    /// repository root (real captures of callwall's own transports).
    fn capture_facts(name: &str) -> FlowFacts {
        let path = format!("{}/../../tests/data/captures/{name}", env!("CARGO_MANIFEST_DIR"));
        let file = std::fs::read(&path).unwrap();
        let mut fi = FlowInspector::new();
        let mut client = None;
        let mut scratch = Vec::new();
        for rec in crate::pcap::PcapReader::new(&file).unwrap() {
            let rec = rec.unwrap();
            let Ok(f) = crate::pcap::parse_frame(&rec, &mut scratch) else { continue };
            let Some(ip) = f.ip else { continue };
            let (proto, t) = match ip.l4 {
                crate::L4::Udp(t) => (Proto::Udp, t),
                crate::L4::Tcp(t, _) => (Proto::Tcp, t),
                crate::L4::Other(_) => continue,
            };
            let src = (ip.src, t.src_port);
            let dir = if *client.get_or_insert(src) == src {
                Dir::ClientToServer
            } else {
                Dir::ServerToClient
            };
            fi.observe(proto, dir, t.payload);
        }
        fi.facts().clone()
    }

    #[test]
    fn greased_quic_bit_is_not_rtp() {
        // quinn greases the QUIC bit (RFC 9287): the server's first packet starts 0x80, in
        // the RFC 7983 RTP range. Regression: the flow was labelled `rtp`.
        let f = capture_facts("quic-443.pcap");
        assert!(f
            .labels
            .contains_all([Label::Quic, Label::QuicInitial, Label::Sni].into_iter().collect()));
        assert!(!f.labels.contains(Label::Rtp) && !f.labels.contains(Label::Rtcp), "{}", f.labels);
        assert_eq!(f.sni.as_deref(), Some("www.example.com"));
    }

    #[test]
    fn stun_over_tcp_from_turn_tcp() {
        // webrtc-rs allocating on coturn over TCP: STUN messages framed on the stream, then
        // ChannelData. Regression: the flow had no label at all.
        let f = capture_facts("webrtc-turn-tcp.pcap");
        assert_eq!(f.first_packet_labels, Label::Stun.into());
        assert!(f.labels.contains_all([Label::Stun, Label::TurnChannelData].into_iter().collect()));
        let s = f.stun.unwrap();
        assert_eq!(s.method, stun::method::ALLOCATE);
        assert_eq!(s.realm.as_deref(), Some("callwall.test"));
        assert!(!f.labels.contains(Label::FullyEncrypted));
    }

    #[test]
    fn stun_over_tcp_needs_the_cookie() {
        let mut m = rfc5769_request();
        assert_eq!(classify_segment(&m), Label::Stun.into());
        // A header cut off from its attributes still counts (the rest is in the next segment).
        assert_eq!(classify_segment(&m[..24]), Label::Stun.into());
        m[4] ^= 1;
        assert_eq!(classify_segment(&m), Labels::EMPTY);
        assert_eq!(classify_segment(&[0, 1, 0, 0]), Labels::EMPTY);
    }

    #[test]
    fn inspection_stops_after_the_limit() {
        let mut fi = FlowInspector::with_config(InspectorConfig {
            max_packets_per_dir: 2,
            ..Default::default()
        });
        fi.observe(Proto::Udp, Dir::ClientToServer, &[0x55; 30]);
        fi.observe(Proto::Udp, Dir::ClientToServer, &[0x55; 30]);
        let f = fi.observe(Proto::Udp, Dir::ClientToServer, &rfc5769_request());
        assert!(!f.labels.contains(Label::Stun), "third packet not inspected");
        assert_eq!(f.first_packet_labels, Labels::EMPTY);
    }

    #[test]
    fn dtls_hello_in_fragments_from_the_responder() {
        use crate::dtls::tests::{fragment, hello_body, pion_like, record_of};
        let whole = pion_like();
        let want = crate::dtls::client_hello(&whole).unwrap().fingerprint('d');
        let body = hello_body(&whole);
        let n = body.len();
        let a = record_of(&[fragment(0, &body, 0..50)]);
        let b = record_of(&[fragment(0, &body, 50..n)]);
        let mut fi = FlowInspector::new();
        // The flow's first packet is the other side's ICE check: the responder is the DTLS client.
        fi.observe(Proto::Udp, Dir::ClientToServer, &rfc5769_request());
        let f = fi.observe(Proto::Udp, Dir::ServerToClient, &a);
        assert_eq!(f.dtls_fingerprint, None);
        // A fragment from the other side does not mix in.
        fi.observe(Proto::Udp, Dir::ClientToServer, &b);
        let f = fi.observe(Proto::Udp, Dir::ServerToClient, &b);
        assert_eq!(f.dtls_fingerprint.as_deref(), Some(want.as_str()));
        assert_eq!(f.dtls_client, Some(Dir::ServerToClient));
        assert_eq!(f.dtls_client_hello_fragments, 2);
        assert!(f.packet_labels.contains(Label::DtlsClientHello));
    }

    #[test]
    fn first_packet_sni_only_when_the_hello_is_whole_in_the_first_record() {
        let hello = client_hello_msg("split.example", &["h2"], &[]);
        // Whole in one record.
        let mut fi = FlowInspector::new();
        let f = fi.observe(Proto::Tcp, Dir::ClientToServer, &record(22, &hello));
        assert_eq!(f.first_packet_sni.as_deref(), Some("split.example"));
        // Two records in one segment (TLS record splitting): reassembly reads it, one packet not.
        let (x, y) = hello.split_at(20);
        let mut seg = record(22, x);
        seg.extend_from_slice(&record(22, y));
        let mut fi = FlowInspector::new();
        let f = fi.observe(Proto::Tcp, Dir::ClientToServer, &seg);
        assert_eq!(f.sni.as_deref(), Some("split.example"));
        assert_eq!(f.first_packet_sni, None);
        // QUIC: a hello whole in the first Initial, and one split over two.
        let f = FlowInspector::new()
            .observe(Proto::Udp, Dir::ClientToServer, &vector("rfc9001-a2-client-initial.hex"))
            .clone();
        assert_eq!(f.first_packet_sni.as_deref(), Some("example.com"));
        let ch = client_hello_msg("split.example", &["h3"], &[]);
        let (a, b) = ch.split_at(100);
        let dcid = [9u8; 8];
        let p1 =
            build::client_initial(quic::VERSION_1, &dcid, &[], 0, &build::crypto_frame(0, a), 1200);
        let p2 = build::client_initial(
            quic::VERSION_1,
            &dcid,
            &[],
            1,
            &build::crypto_frame(100, b),
            1200,
        );
        let mut fi = FlowInspector::new();
        fi.observe(Proto::Udp, Dir::ClientToServer, &p1);
        let f = fi.observe(Proto::Udp, Dir::ClientToServer, &p2);
        assert_eq!(
            (f.sni.as_deref(), f.first_packet_sni.as_deref()),
            (Some("split.example"), None)
        );
    }

    /// Random UDP flows (the worst case: every payload's first byte in the RTP range 128-191,
    /// as a quarter of all encrypted payloads are) must almost never be labelled RTP or RTCP.
    /// The requirement is below 1 in 10^4 flows; 10^5 flows of 32 packets are checked.
    #[test]
    fn random_udp_is_not_rtp() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let flows = 100_000;
        let mut false_labels = 0;
        let mut buf = [0u8; 200];
        for _ in 0..flows {
            let mut fi = FlowInspector::new();
            for i in 0..32 {
                let len = 20 + (next() % 180) as usize;
                for c in buf[..len].chunks_mut(8) {
                    let r = next().to_le_bytes();
                    c.copy_from_slice(&r[..c.len()]);
                }
                buf[0] = 0x80 | (buf[0] & 0x3f);
                let dir = if i % 2 == 0 { Dir::ClientToServer } else { Dir::ServerToClient };
                fi.observe(Proto::Udp, dir, &buf[..len]);
            }
            if fi.facts().labels.contains(Label::Rtp) || fi.facts().labels.contains(Label::Rtcp) {
                false_labels += 1;
            }
        }
        assert!(false_labels * 10_000 < flows, "{false_labels} of {flows} random flows were rtp");
    }

    /// The first UDP payload of a capture that is a DTLS ClientHello.
    fn capture_dtls_hello(path: &str) -> Vec<u8> {
        let file = std::fs::read(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let mut scratch = Vec::new();
        for rec in crate::pcap::PcapReader::new(&file).unwrap() {
            let rec = rec.unwrap();
            let Ok(f) = crate::pcap::parse_frame(&rec, &mut scratch) else { continue };
            if let Some(crate::packet::IpPacket { l4: crate::L4::Udp(t), .. }) = f.ip {
                if crate::dtls::handshake_type(t.payload) == Some(1) {
                    return t.payload.to_vec();
                }
            }
        }
        panic!("no dtls clienthello in {path}");
    }

    /// `body` (a DTLS ClientHello body) with its extensions in reverse order.
    fn reverse_extensions(body: &[u8]) -> Vec<u8> {
        let mut at = 2 + 32;
        at += 1 + usize::from(body[at]); // session id
        at += 1 + usize::from(body[at]); // cookie
        at += 2 + usize::from(u16::from_be_bytes([body[at], body[at + 1]])); // suites
        at += 1 + usize::from(body[at]); // compression
        let mut exts = Vec::new();
        let mut e = at + 2;
        while e < body.len() {
            let len = usize::from(u16::from_be_bytes([body[e + 2], body[e + 3]]));
            exts.push(&body[e..e + 4 + len]);
            e += 4 + len;
        }
        let mut out = body[..at + 2].to_vec();
        for x in exts.iter().rev() {
            out.extend_from_slice(x);
        }
        out
    }

    #[test]
    fn real_dtls_hellos_keep_their_fingerprint_when_shuffled_and_fragmented() {
        use crate::dtls::tests::{fragment, hello_body, record_of};
        let webrtc_rs = capture_dtls_hello("../../tests/data/captures/webrtc-direct.pcap");
        let openssl = capture_dtls_hello("testdata/dtls-openssl.pcapng");
        let fp = |dg: &[u8]| {
            let mut fi = FlowInspector::new();
            fi.observe(Proto::Udp, Dir::ClientToServer, dg);
            fi.facts().dtls_fingerprint.clone().unwrap()
        };
        let (a, b) = (fp(&webrtc_rs), fp(&openssl));
        assert_ne!(a, b, "webrtc-rs and openssl must differ");
        for (dg, want) in [(&webrtc_rs, &a), (&openssl, &b)] {
            let body = reverse_extensions(&hello_body(dg));
            assert_ne!(body, hello_body(dg));
            let n = body.len();
            let mut fi = FlowInspector::new();
            fi.observe(
                Proto::Udp,
                Dir::ServerToClient,
                &record_of(&[fragment(0, &body, n / 2..n)]),
            );
            let f = fi.observe(
                Proto::Udp,
                Dir::ServerToClient,
                &record_of(&[fragment(0, &body, 0..n / 2)]),
            );
            assert_eq!(f.dtls_fingerprint.as_ref(), Some(want));
            assert_eq!(f.dtls_client_hello_fragments, 2);
        }
    }

    #[test]
    fn real_webrtc_media_is_rtp() {
        let f = capture_facts("webrtc-direct.pcap");
        assert!(f.labels.contains(Label::Rtp), "{}", f.labels);
    }

    /// A DNS query whose random id starts in the RTP range (0x80-0xbf: a quarter of real
    /// resolvers' queries) is still DNS; the RTP header parse it also passes is dropped by the
    /// flow for want of evidence.
    #[test]
    fn a_dns_query_with_an_id_in_the_rtp_range_is_dns() {
        for id in [0x8123u16, 0xbfff, 0x1234] {
            let q = crate::dns::Query::a(id, crate::dns::Name::from_dotted("example.org").unwrap())
                .to_bytes();
            assert!(classify_datagram(&q).contains(Label::Dns), "id {id:#06x}");
            let mut fi = FlowInspector::new();
            let f = fi.observe(Proto::Udp, Dir::ClientToServer, &q);
            assert!(f.labels.contains(Label::Dns), "id {id:#06x}: {}", f.labels);
            assert!(!f.labels.contains(Label::Rtp), "id {id:#06x}: {}", f.labels);
        }
        // Real RTP is not taken for DNS: its header words are no DNS question.
        let f = capture_facts("webrtc-direct.pcap");
        assert!(!f.labels.contains(Label::Dns), "{}", f.labels);
    }

    /// Issue 24: a flow that is one RTCP datagram is `rtcp` when the datagram's structure
    /// proves it, with no RTP before it and no second packet of the sender.
    #[test]
    fn one_proven_rtcp_datagram_is_rtcp() {
        // An SR with no report blocks and an SDES CNAME "cw" (RFC 3550 sections 6.4.1, 6.5).
        let sr_sdes = [
            0x80, 200, 0, 6, 0, 0, 0, 7, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0xc0, 0, 0, 0, 1, 0,
            0, 0, 0xa0, 0x81, 202, 0, 3, 0, 0, 0, 7, 1, 2, b'c', b'w', 0, 0, 0, 0,
        ];
        // The same SR's clear 8 bytes protected as SRTCP (AES_CM_128_HMAC_SHA1_80): 20
        // encrypted bytes of the SR and 16 of the SDES, then E flag and index 1, then a 10-byte
        // tag.
        let mut srtcp = sr_sdes[..8].to_vec();
        srtcp.extend_from_slice(&[0x5c; 36]);
        srtcp.extend_from_slice(&[0x80, 0, 0, 1]);
        srtcp.extend_from_slice(&[0xa7; 10]);
        for (what, dg) in [("rtcp", &sr_sdes[..]), ("srtcp", &srtcp)] {
            let mut fi = FlowInspector::new();
            let f = fi.observe(Proto::Udp, Dir::ClientToServer, dg);
            assert_eq!(f.packet_labels, Label::Rtcp.into(), "{what}");
        }
        // A first header that parses, with junk after its packet: no proof, and the first
        // packet of its sender, so no label (the cross-packet rule is unchanged).
        let mut junk = sr_sdes[..28].to_vec();
        junk.extend_from_slice(&[0x11; 9]);
        let mut fi = FlowInspector::new();
        assert!(fi.observe(Proto::Udp, Dir::ClientToServer, &junk).labels.is_empty());
        assert!(fi.observe(Proto::Udp, Dir::ClientToServer, &junk).labels.contains(Label::Rtcp));
    }

    proptest! {
        #[test]
        fn never_panics(pkts in proptest::collection::vec((any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..20)) {
            let mut fi = FlowInspector::new();
            for (tcp, c2s, p) in &pkts {
                let proto = if *tcp { Proto::Tcp } else { Proto::Udp };
                let dir = if *c2s { Dir::ClientToServer } else { Dir::ServerToClient };
                fi.observe(proto, dir, p);
                let _ = classify_datagram(p);
                let _ = classify_segment(p);
            }
        }
    }
}
