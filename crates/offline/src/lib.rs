//! Offline tools: `callwall inspect` (classify every flow of a capture) and `callwall replay`
//! (run a capture through a scenario's censor policy).
//!
//! Both read pcap or pcapng of any link type the wire reader supports. A corrupt or truncated
//! capture is read as far as it goes: packets that do not parse are counted with their byte
//! offsets, a broken record ends the reading with a note of where; only a file that yields no
//! packet at all (or is not a capture) is an [`OfflineError`] (the binary exits with 2).
//! Nothing here panics on capture bytes.
//!
//! Output: the report goes to stdout (text or JSON lines); notes about unreadable packets go
//! to stderr. The replay runs the real `callwall_censor::Engine` with the scenario's policy
//! and seed, so its decisions are the ones a live run would make on the same frames.
//!
//! Flows are the censor's: the replay files each frame under the engine's own flow of it
//! (`Engine::last_flow`), and `inspect` cuts the capture into flows with the censor's
//! `flow_table::FlowTable` (same keying, the first sender is the client, the default
//! `flow_timeout` and eviction rule), so one 5-tuple is one flow offline exactly when it is one
//! flow to a live censor.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use callwall_censor::engine::FlowView;
use callwall_censor::flow::{proto_name, Endpoint, FlowKey};
use callwall_censor::flow_table::{self, FlowTable, Side, Tracked};
use callwall_censor::policy::Cidr;
use callwall_censor::{Dir, Engine, Verdict};
use callwall_scenario::{Catalog, Scenario};
use callwall_wire::fet::FetOutcome;
use callwall_wire::packet::{PROTO_TCP, PROTO_UDP};
use callwall_wire::pcap::{self, PcapError, PcapStream};
use callwall_wire::{inspect, FlowFacts, FlowInspector, Labels, L4};
use serde_json::{json, Value};

/// Problems listed one by one at most; the rest are only counted.
const MAX_LISTED_PROBLEMS: usize = 20;
/// Decision-log events printed per flow in the text output.
const MAX_TEXT_EVENTS: usize = 12;

/// Why an offline command could not run.
#[derive(Debug)]
pub enum OfflineError {
    /// The capture file could not be opened or read.
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not a capture, or not one packet of it could be read.
    Unreadable { path: PathBuf, source: PcapError },
    /// The scenario did not load.
    Scenario(String),
    /// An `--inside` value is not an address or CIDR.
    Inside(String),
    /// The topology has no censor, so the inside cannot be derived.
    NoCensor { topology: String },
}

impl fmt::Display for OfflineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfflineError::Read { path, source } => {
                write!(f, "cannot read {}: {source}; check the path", path.display())
            }
            OfflineError::Unreadable { path, source } => write!(
                f,
                "cannot read any packet from {}: {source}; give a pcap or pcapng file",
                path.display()
            ),
            OfflineError::Scenario(e) => write!(f, "{e}"),
            OfflineError::Inside(e) => write!(f, "--inside: {e}"),
            OfflineError::NoCensor { topology } => write!(
                f,
                "topology {topology:?} has no censor, so the inside is unknown; pass --inside CIDR"
            ),
        }
    }
}

impl std::error::Error for OfflineError {}

/// Something wrong with one packet or with the rest of the file.
#[derive(Debug, Clone)]
struct Problem {
    /// 1-based packet number (the record that failed, for reader errors).
    packet: usize,
    /// Byte offset in the file (of the packet data, or where the reader failed).
    offset: Option<usize>,
    what: String,
}

/// How the capture went: packets read, and what could not be read.
#[derive(Debug, Default)]
struct ReadSummary {
    records: usize,
    non_ip: usize,
    /// Records cut at the snapshot length (their payload is partial).
    snapped: usize,
    /// Records whose link or IP header did not parse.
    unparsed: usize,
    /// The reader stopped early (truncated or corrupt record).
    stopped: Option<Problem>,
    problems: Vec<Problem>,
    first_ns: Option<u64>,
    last_ns: u64,
}

impl ReadSummary {
    fn problem(&mut self, p: Problem) {
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(p);
        }
    }

    /// Notes on stderr: what could not be read and where.
    fn warn(&self, path: &Path) {
        if self.unparsed > 0 {
            eprintln!(
                "warning: {}: {} packet(s) did not parse and were skipped",
                path.display(),
                self.unparsed
            );
        }
        for p in &self.problems {
            let at = p.offset.map(|o| format!(" at byte {o}")).unwrap_or_default();
            eprintln!("  packet {}{at}: {}", p.packet, p.what);
        }
        if self.unparsed > self.problems.len() {
            eprintln!("  ... and {} more", self.unparsed - self.problems.len());
        }
        if let Some(p) = &self.stopped {
            let at = p.offset.map(|o| format!(" at byte {o}")).unwrap_or_default();
            eprintln!(
                "warning: {}: stopped reading after {} packet(s): record {}{at}: {}; the rest of the file is ignored",
                path.display(),
                self.records,
                p.packet,
                p.what
            );
        }
        if self.snapped > 0 {
            eprintln!("note: {} packet(s) were cut at the capture's snapshot length", self.snapped);
        }
    }
}

/// One packet of the capture, as the offline tools need it.
struct Packet<'a> {
    t_ns: u64,
    /// Ethernet view (synthetic header for other link types).
    frame: &'a [u8],
    wire_len: u64,
}

/// Opens a capture as a stream: a file, or standard input for `-`.
fn open_capture(path: &Path) -> Result<Box<dyn std::io::Read>, OfflineError> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    std::fs::File::open(path)
        .map(|f| Box::new(f) as Box<dyn std::io::Read>)
        .map_err(|source| OfflineError::Read { path: path.to_path_buf(), source })
}

/// Streams every record of the capture at `path` (bounded memory, see [`PcapStream`]),
/// calling `f` with each packet's Ethernet view; returns what could not be read. Errors only
/// when the capture gives no packet at all.
fn walk(
    path: &Path,
    mut f: impl FnMut(&Packet<'_>, Option<callwall_wire::Frame<'_>>),
) -> Result<ReadSummary, OfflineError> {
    let unreadable = |source| OfflineError::Unreadable { path: path.to_path_buf(), source };
    let mut reader = PcapStream::new(open_capture(path)?).map_err(unreadable)?;
    let mut s = ReadSummary::default();
    let mut scratch = Vec::new();
    while let Some(rec) = reader.next_record() {
        let (offset, rec) = match rec {
            Ok(r) => r,
            Err(e) => {
                if s.records == 0 {
                    return Err(unreadable(e));
                }
                let offset = match e {
                    PcapError::Truncated { offset } | PcapError::Corrupt { offset, .. } => {
                        Some(offset)
                    }
                    PcapError::BadMagic(_) | PcapError::Io(_) => None,
                };
                s.stopped = Some(Problem { packet: s.records + 1, offset, what: e.to_string() });
                break;
            }
        };
        s.records += 1;
        let offset = Some(offset);
        let t = rec.timestamp_ns;
        let first = *s.first_ns.get_or_insert(t);
        s.last_ns = s.last_ns.max(t);
        let t_ns = t.saturating_sub(first);
        if (rec.data.len() as u64) < u64::from(rec.orig_len) {
            s.snapped += 1;
        }
        let Some(eth) = pcap::to_ethernet(rec.linktype, rec.data, &mut scratch) else {
            s.unparsed += 1;
            let what = format!("link type {} not supported or link header cut", rec.linktype);
            s.problem(Problem { packet: s.records, offset, what });
            continue;
        };
        let pkt = Packet {
            t_ns,
            frame: eth,
            wire_len: u64::from(rec.orig_len).max(rec.data.len() as u64),
        };
        match callwall_wire::Frame::parse(eth) {
            Ok(fr) => {
                if fr.ip.is_none() {
                    s.non_ip += 1;
                }
                f(&pkt, Some(fr));
            }
            Err(e) => {
                s.unparsed += 1;
                s.problem(Problem { packet: s.records, offset, what: format!("{e}") });
                f(&pkt, None);
            }
        }
    }
    if s.records == 0 {
        eprintln!("note: {} holds no packets", path.display());
    }
    Ok(s)
}

/// What a packet's verdict was, per rule, within one flow.
#[derive(Debug, Clone, Default)]
struct RuleTally {
    forwarded: u64,
    dropped: u64,
    delayed: u64,
}

/// One flow of the capture.
struct Flow {
    client: Endpoint,
    server: Endpoint,
    proto: u8,
    inspector: FlowInspector,
    packets: u64,
    bytes: u64,
    first_t_ns: u64,
    last_t_ns: u64,
    /// Order of first appearance (inspect), or the engine's flow number (replay).
    serial: u64,
    /// When the flow last saw a packet on the never-decreasing clock the flow table runs on.
    seen_ns: u64,
    /// Replay only: the rule deciding this flow's packets now, and what each rule did.
    rule: Option<String>,
    tallies: Vec<(String, RuleTally)>,
    events: Vec<callwall_censor::Event>,
}

impl Tracked for Flow {
    fn last_ns(&self) -> u64 {
        self.seen_ns
    }
}

impl Flow {
    fn new(proto: u8, client: Endpoint, server: Endpoint, serial: u64, pkt: &Packet<'_>) -> Flow {
        Flow {
            client,
            server,
            proto,
            inspector: FlowInspector::new(),
            packets: 0,
            bytes: 0,
            first_t_ns: pkt.t_ns,
            last_t_ns: pkt.t_ns,
            serial,
            seen_ns: 0,
            rule: None,
            tallies: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Counts one packet travelling `side` within the flow and runs the classifiers on it.
    fn observe(
        &mut self,
        pkt: &Packet<'_>,
        now: u64,
        ip: &callwall_wire::packet::IpPacket<'_>,
        side: Side,
    ) {
        self.packets += 1;
        self.bytes += pkt.wire_len;
        self.last_t_ns = self.last_t_ns.max(pkt.t_ns);
        self.seen_ns = now;
        let payload = match ip.l4 {
            L4::Udp(t) | L4::Tcp(t, _) => t.payload,
            L4::Other(_) => &[][..],
        };
        match ip.proto {
            PROTO_UDP if !ip.later_fragment => {
                self.inspector.observe(inspect::Proto::Udp, side, payload);
            }
            PROTO_TCP if !ip.later_fragment => {
                self.inspector.observe(inspect::Proto::Tcp, side, payload);
            }
            _ => {}
        }
    }
}

/// The flows `inspect` is reading, in the censor's flow table (so a capture is cut into the
/// flows a censor with the default policy would see), and those that left it, not yet written.
#[derive(Default)]
struct InspectTable {
    /// Boxed: a flow (its classifiers' state) is large, and the table's spare slots and its
    /// growth should not copy or reserve that much per slot.
    table: FlowTable<Box<Flow>>,
    /// Kept boxed: unboxing them to write them costs a copy of each and a second, growing
    /// buffer (peak RSS 22.5 instead of 17.9 MiB in the inspect benchmark).
    #[allow(clippy::vec_box)]
    done: Vec<Box<Flow>>,
    created: u64,
    /// The table's clock: capture time, never going back.
    now: u64,
    timeout_ns: u64,
}

impl InspectTable {
    fn new() -> InspectTable {
        let timeout_ns = callwall_censor::Policy::default().flow_timeout_ns;
        InspectTable { timeout_ns, ..InspectTable::default() }
    }

    /// Accounts one IP packet to its flow (creating it; an expired or evicted flow moves to
    /// `done`) and runs the classifiers.
    fn observe(&mut self, pkt: &Packet<'_>, frame: &callwall_wire::Frame<'_>) {
        let Some(ip) = frame.ip else { return };
        let (sport, dport) = match ip.l4 {
            L4::Udp(t) | L4::Tcp(t, _) => (t.src_port, t.dst_port),
            L4::Other(_) => (0, 0),
        };
        let src = Endpoint { ip: ip.src, port: sport };
        let dst = Endpoint { ip: ip.dst, port: dport };
        let key = FlowKey::new(ip.proto, src, dst);
        self.now = self.now.max(pkt.t_ns);
        // One lookup for a packet of a known flow (most packets).
        if let Some(flow) = self.table.get_mut(&key) {
            let side = flow_table::side(flow.client, src);
            flow.observe(pkt, self.now, &ip, side);
            return;
        }
        let done = &mut self.done;
        self.table.make_room(self.now, self.timeout_ns, INSPECT_MAX_FLOWS, |_, f| done.push(f));
        self.created += 1;
        // The first packet of a flow: its sender is the client.
        let mut flow = Box::new(Flow::new(ip.proto, src, dst, self.created, pkt));
        flow.observe(pkt, self.now, &ip, flow_table::Side::ClientToServer);
        self.table.insert(key, flow);
    }

    /// Takes out the flows that left the table, in order of first appearance; with `all`, every
    /// flow.
    #[allow(clippy::vec_box)]
    fn take(&mut self, all: bool) -> Vec<Box<Flow>> {
        let mut out = std::mem::take(&mut self.done);
        if all {
            out.extend(self.table.drain());
        }
        out.sort_unstable_by_key(|f| f.serial);
        out
    }
}

/// The replay's flows: the engine's own (by [`Engine::last_flow`]), in order of creation.
#[derive(Default)]
struct ReplayFlows {
    index: HashMap<u64, usize>,
    flows: Vec<Flow>,
}

impl ReplayFlows {
    /// Accounts the packet the engine just handled to the engine's flow of it; its index, or
    /// None when the engine saw no flow (not IP, or did not parse).
    fn observe(
        &mut self,
        pkt: &Packet<'_>,
        now: u64,
        frame: &callwall_wire::Frame<'_>,
        view: Option<FlowView>,
    ) -> Option<usize> {
        let (ip, view) = (frame.ip?, view?);
        let i = *self.index.entry(view.serial).or_insert_with(|| {
            let f = view.flow;
            self.flows.push(Flow::new(f.proto.0, f.client, f.server, view.serial, pkt));
            self.flows.len() - 1
        });
        self.flows[i].observe(pkt, now, &ip, view.side);
        Some(i)
    }
}

fn label_names(l: Labels) -> Vec<&'static str> {
    l.iter().map(|l| l.name()).collect()
}

fn fet_name(f: FetOutcome) -> String {
    match f {
        FetOutcome::FullyEncrypted => "fully-encrypted".into(),
        FetOutcome::Exempt(e) => format!("exempt:{}", e.name()),
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The classification of a flow as JSON (the `inspect --json` line).
fn flow_json(f: &Flow) -> Value {
    let facts: &FlowFacts = f.inspector.facts();
    let hex = |h: Option<u64>| h.map(|h| format!("{h:016x}"));
    let stun = facts.stun.as_ref().map(|s| {
        json!({
            "method": s.method,
            "class": s.class.name(),
            "classic": s.classic,
            "software": s.software,
            "username": s.username,
            "realm": s.realm,
            "fingerprint_valid": s.fingerprint_valid,
            "message_integrity": s.message_integrity,
            "messages": s.messages,
        })
    });
    json!({
        "proto": proto_name(f.proto),
        "src": f.client.to_string(),
        "dst": f.server.to_string(),
        "labels": label_names(facts.labels),
        "first_packet_labels": label_names(facts.first_packet_labels),
        "sni": facts.sni,
        "client_hello_packet": facts.client_hello_packet,
        "quic_initials_with_crypto": facts.quic_initials_with_crypto,
        "alpn": facts.alpn,
        "quic_version": facts.quic_version,
        "tls_fingerprint": facts.tls_fingerprint,
        "tls_fingerprint_hash": hex(facts.tls_fingerprint_hash),
        "dtls_fingerprint": facts.dtls_fingerprint,
        "dtls_fingerprint_hash": hex(facts.dtls_fingerprint_hash),
        "dtls_client": facts.dtls_client.map(side_name),
        "dtls_client_hello_fragments": facts.dtls_client_hello_fragments,
        "first_packet_sni": facts.first_packet_sni,
        "stun": stun,
        "fet": facts.fet.map(fet_name),
        "packets": f.packets,
        "bytes": f.bytes,
        "first_time": secs(f.first_t_ns),
        "last_time": secs(f.last_t_ns),
    })
}

/// Which side of the flow: the one that sent its first packet, or the other.
fn side_name(d: inspect::Dir) -> &'static str {
    match d {
        inspect::Dir::ClientToServer => "initiator",
        inspect::Dir::ServerToClient => "responder",
    }
}

/// Short per-flow details for the text table.
fn details(facts: &FlowFacts) -> String {
    let mut d = Vec::new();
    if let Some(side) = facts.dtls_client {
        d.push(format!("dtls-client={}", side_name(side)));
    }
    if facts.dtls_client_hello_fragments > 1 {
        d.push(format!("dtls-hello-fragments={}", facts.dtls_client_hello_fragments));
    }
    if let Some(s) = &facts.sni {
        d.push(format!("sni={s}"));
    }
    if let Some(n) = facts.client_hello_packet {
        d.push(format!("hello-done-at-packet={n}"));
    }
    if facts.quic_initials_with_crypto > 1 {
        d.push(format!("hello-split-over-initials={}", facts.quic_initials_with_crypto));
    }
    if !facts.alpn.is_empty() {
        // Circumvention pads hellos with long made-up ALPNs: keep the line readable.
        let shown: Vec<String> = facts.alpn.iter().take(3).map(|a| clip(a, 24)).collect();
        let more = facts.alpn.len().saturating_sub(3);
        let more = if more > 0 { format!(",+{more} more") } else { String::new() };
        d.push(format!("alpn={}{more}", shown.join(",")));
    }
    if let Some(v) = facts.quic_version {
        d.push(format!("quic={v:#x}"));
    }
    if let Some(s) = &facts.stun {
        for (k, v) in [("software", &s.software), ("username", &s.username), ("realm", &s.realm)] {
            if let Some(v) = v {
                d.push(format!("stun-{k}={v:?}"));
            }
        }
    }
    if let Some(h) = facts.dtls_fingerprint_hash {
        d.push(format!("dtls-fp={h:016x}"));
    }
    if let Some(h) = facts.tls_fingerprint_hash {
        d.push(format!("tls-fp={h:016x}"));
    }
    if let Some(f) = facts.fet {
        d.push(format!("fet={}", fet_name(f)));
    }
    d.join(" ")
}

/// At most `n` characters of `s`, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn labels_text(l: Labels) -> String {
    if l.is_empty() {
        "-".into()
    } else {
        label_names(l).join(",")
    }
}

/// Writes the rows of `flows`, numbered from `first + 1`; the header only when `first` is 0.
fn print_flow_table(
    out: &mut impl Write,
    flows: &[Box<Flow>],
    first: usize,
) -> std::io::Result<()> {
    let w_src = flows.iter().map(|f| f.client.to_string().len()).max().unwrap_or(3).max(3);
    let w_dst = flows.iter().map(|f| f.server.to_string().len()).max().unwrap_or(3).max(3);
    if first == 0 {
        writeln!(
            out,
            "{:>3}  {:5}  {:w_src$}  {:w_dst$}  {:>7}  {:>9}  {:>8}  {:>8}  labels (first packet) / details",
            "#", "proto", "src", "dst", "packets", "bytes", "first s", "last s"
        )?;
    }
    for (i, f) in flows.iter().enumerate() {
        let i = first + i;
        let facts = f.inspector.facts();
        writeln!(
            out,
            "{:>3}  {:5}  {:w_src$}  {:w_dst$}  {:>7}  {:>9}  {:>8.3}  {:>8.3}  {} ({})",
            i + 1,
            proto_name(f.proto),
            f.client.to_string(),
            f.server.to_string(),
            f.packets,
            f.bytes,
            secs(f.first_t_ns),
            secs(f.last_t_ns),
            labels_text(facts.labels),
            labels_text(facts.first_packet_labels),
        )?;
        let d = details(facts);
        if !d.is_empty() {
            writeln!(out, "{:>3}  {d}", "")?;
        }
        if let Some(fp) = &facts.dtls_fingerprint {
            writeln!(out, "{:>3}  dtls fingerprint: {fp}", "")?;
        }
        if let Some(fp) = &facts.tls_fingerprint {
            writeln!(out, "{:>3}  tls fingerprint: {fp}", "")?;
        }
    }
    Ok(())
}

/// Flows `inspect` keeps in its flow table; past this, the censor's eviction rule applies
/// (oldest idle first). Flows that leave the table (evicted, or expired after the default
/// `flow_timeout`) are written out in batches and forgotten, so a capture of any size and
/// any number of flows is read in bounded memory.
const INSPECT_MAX_FLOWS: usize = 16_384;

/// `callwall inspect CAPTURE [--json]`: classifies every flow of the capture (`-` reads standard
/// input), streaming it in bounded memory.
pub fn inspect(capture: &Path, json_lines: bool) -> Result<(), OfflineError> {
    let mut table = InspectTable::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // Flows written out so far (their numbers continue in the next batch).
    let mut written_flows = 0usize;
    let mut write_error: Option<std::io::Error> = None;
    let mut write = |out: &mut std::io::BufWriter<_>, flows: &[Box<Flow>], first: usize| {
        let r = if json_lines {
            flows.iter().try_for_each(|f| writeln!(out, "{}", flow_json(f)))
        } else {
            print_flow_table(out, flows, first)
        };
        if let Err(e) = r {
            write_error.get_or_insert(e);
        }
    };
    let summary = walk(capture, |pkt, frame| {
        if let Some(fr) = frame {
            table.observe(pkt, &fr);
            if table.done.len() >= INSPECT_MAX_FLOWS / 2 {
                let old = table.take(false);
                write(&mut out, &old, written_flows);
                written_flows += old.len();
            }
        }
    })?;
    let rest = table.take(true);
    write(&mut out, &rest, written_flows);
    let total_flows = written_flows + rest.len();
    let written = match write_error {
        Some(e) => Err(e),
        None if json_lines => Ok(()),
        None => writeln!(
            out,
            "{} packet(s), {} flow(s), {} non-IP frame(s) over {:.3} s",
            summary.records,
            total_flows,
            summary.non_ip,
            secs(summary.last_ns.saturating_sub(summary.first_ns.unwrap_or(0)))
        ),
    };
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = written.and_then(|()| out.flush());
    summary.warn(capture);
    Ok(())
}

/// Which addresses are inside the censor (their packets travel up).
struct Inside {
    nets: Vec<Cidr>,
    /// Addresses inside `nets` that belong to the outside (the router's end of the segment).
    except: Vec<IpAddr>,
}

impl Inside {
    fn contains(&self, ip: IpAddr) -> bool {
        !self.except.contains(&ip) && self.nets.iter().any(|n| n.contains(ip))
    }

    fn describe(&self) -> String {
        let mut s = self.nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        if !self.except.is_empty() {
            let ex = self.except.iter().map(ToString::to_string).collect::<Vec<_>>();
            s.push_str(&format!(" except {}", ex.join(", ")));
        }
        s
    }

    /// From `--inside` values, or else from the topology: the subnets of the censor's inside
    /// neighbour on the censored segment, minus the outside neighbour's addresses there.
    fn resolve(given: &[String], sc: &Scenario) -> Result<Inside, OfflineError> {
        if !given.is_empty() {
            let nets = given
                .iter()
                .map(|s| s.parse::<Cidr>().map_err(|e| OfflineError::Inside(e.to_string())))
                .collect::<Result<_, _>>()?;
            return Ok(Inside { nets, except: Vec::new() });
        }
        let topo = &sc.topology;
        let Some(spec) = topo.censor_spec() else {
            return Err(OfflineError::NoCensor { topology: topo.name().to_string() });
        };
        let segment = |host: &str| -> Vec<callwall_netns::Cidr> {
            topo.host(host)
                .and_then(|h| h.interface(&spec.host))
                .map(|i| i.addrs.clone())
                .unwrap_or_default()
        };
        let nets = segment(&spec.inside)
            .iter()
            .map(|c| Cidr { addr: c.network(), prefix_len: c.prefix_len })
            .collect::<Vec<_>>();
        if nets.is_empty() {
            return Err(OfflineError::Inside(format!(
                "host {:?} has no address towards the censor; pass --inside CIDR",
                spec.inside
            )));
        }
        let except = segment(&spec.outside).iter().map(|c| c.addr).collect();
        Ok(Inside { nets, except })
    }
}

fn tally_of<'a>(tallies: &'a mut Vec<(String, RuleTally)>, rule: &str) -> &'a mut RuleTally {
    let i = match tallies.iter().position(|(n, _)| n == rule) {
        Some(i) => i,
        None => {
            tallies.push((rule.to_string(), RuleTally::default()));
            tallies.len() - 1
        }
    };
    &mut tallies[i].1
}

/// `callwall replay --scenario FILE CAPTURE [--json] [--inside CIDR...]`: runs the capture
/// through the scenario's censor policy.
pub fn replay(
    scenario: &Path,
    topology_dir: &Path,
    catalog: &Catalog,
    capture: &Path,
    json_lines: bool,
    inside: &[String],
) -> Result<(), OfflineError> {
    let sc = Scenario::load(scenario, topology_dir, catalog)
        .map_err(|e| OfflineError::Scenario(e.to_string()))?;
    let inside = Inside::resolve(inside, &sc)?;
    let mut engine = Engine::new(sc.policy.clone(), sc.seed);
    let mut table = ReplayFlows::default();
    let mut released = 0u64;
    let mut now = 0u64;
    let summary = walk(capture, |pkt, frame| {
        // Engine time never goes back, even if the capture's timestamps do.
        now = now.max(pkt.t_ns);
        let dir = match frame.and_then(|f| f.ip) {
            Some(ip) if inside.contains(ip.src) => Dir::Up,
            Some(ip) if inside.contains(ip.dst) => Dir::Down,
            _ => Dir::Up,
        };
        let verdict = engine.handle_frame(now, dir, pkt.frame);
        let view = engine.last_flow();
        let flow = frame.and_then(|fr| table.observe(pkt, now, &fr, view));
        while let Some(ev) = engine.poll_event() {
            if let Some(f) = flow.map(|i| &mut table.flows[i]) {
                f.rule = Some(ev.rule.clone());
                f.events.push(ev);
            }
        }
        if let Some(f) = flow.map(|i| &mut table.flows[i]) {
            let rule = f.rule.clone().unwrap_or_else(|| "(none)".to_string());
            let t = tally_of(&mut f.tallies, &rule);
            match verdict {
                Verdict::Forward => t.forwarded += 1,
                Verdict::Drop => t.dropped += 1,
                Verdict::Held => t.delayed += 1,
            }
        }
        while engine.poll_transmit(now).is_some() {
            released += 1;
        }
    })?;
    while engine.poll_transmit(u64::MAX).is_some() {
        released += 1;
    }
    let report = engine.report();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = if json_lines {
        replay_json(&mut out, &table, &report, released)
    } else {
        replay_text(&mut out, &sc, &inside, &table, &report, released)
    };
    let _ = written.and_then(|()| out.flush());
    summary.warn(capture);
    if report.stats.events_lost > 0 {
        eprintln!(
            "warning: {} decision event(s) were lost (over {}); per-flow rule attribution is incomplete",
            report.stats.events_lost,
            callwall_censor::engine::MAX_EVENTS
        );
    }
    Ok(())
}

fn replay_json(
    out: &mut impl Write,
    table: &ReplayFlows,
    report: &callwall_censor::CensorReport,
    released: u64,
) -> std::io::Result<()> {
    for f in &table.flows {
        let mut v = flow_json(f);
        let rules: serde_json::Map<String, Value> = f
            .tallies
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    json!({"forwarded": t.forwarded, "dropped": t.dropped, "delayed": t.delayed}),
                )
            })
            .collect();
        if let Value::Object(m) = &mut v {
            m.insert("type".into(), json!("flow"));
            m.insert("rules".into(), Value::Object(rules));
            m.insert("events".into(), json!(f.events));
        }
        writeln!(out, "{v}")?;
    }
    let totals = json!({
        "type": "totals",
        "rules": report.rules,
        "stats": report.stats,
        "released": released,
    });
    writeln!(out, "{totals}")
}

fn replay_text(
    out: &mut impl Write,
    sc: &Scenario,
    inside: &Inside,
    table: &ReplayFlows,
    report: &callwall_censor::CensorReport,
    released: u64,
) -> std::io::Result<()> {
    writeln!(out, "scenario {} (seed {}); inside: {}", sc.name, sc.seed, inside.describe())?;
    for (i, f) in table.flows.iter().enumerate() {
        let facts = f.inspector.facts();
        writeln!(
            out,
            "\n{:>3}  {} {} -> {}  {} packet(s)  labels {}  {}",
            i + 1,
            proto_name(f.proto),
            f.client,
            f.server,
            f.packets,
            labels_text(facts.labels),
            details(facts)
        )?;
        for (rule, t) in &f.tallies {
            writeln!(
                out,
                "     rule {rule:24} forwarded {:>6}  dropped {:>6}  delayed {:>6}",
                t.forwarded, t.dropped, t.delayed
            )?;
        }
        for ev in f.events.iter().take(MAX_TEXT_EVENTS) {
            writeln!(
                out,
                "     {:>10.3} ms  {:24} {:9} [{}]{}",
                ev.t_ms,
                ev.rule,
                ev.outcome,
                ev.labels.join(","),
                ev.sni.as_deref().map(|s| format!(" sni={s}")).unwrap_or_default()
            )?;
        }
        if f.events.len() > MAX_TEXT_EVENTS {
            writeln!(out, "     ... {} more event(s)", f.events.len() - MAX_TEXT_EVENTS)?;
        }
    }
    writeln!(out, "\nper rule:")?;
    writeln!(
        out,
        "  {:24} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9}  action",
        "rule", "packets", "flows", "forwarded", "dropped", "delayed", "injected", "residual"
    )?;
    for r in &report.rules {
        let c = &r.counters;
        writeln!(
            out,
            "  {:24} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9}  {}",
            r.name,
            c.packets,
            c.flows,
            c.forwarded,
            c.dropped,
            c.delayed,
            c.injected,
            c.residual_dropped,
            r.action
        )?;
    }
    let s = &report.stats;
    writeln!(
        out,
        "{} frame(s), {} flow(s), {} non-IP, {} malformed; {} held or injected frame(s) released",
        s.frames, s.flows_created, s.non_ip, s.malformed, released
    )
}
