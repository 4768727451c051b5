//! The run's DNS resolver: an authoritative server for a zone the scenario controls, and the
//! stub client every workload uses to resolve its server's name.
//!
//! A name absent from the zone gets NXDOMAIN (a name removed from the national DNS, as with
//! WhatsApp's domain in February 2026); a name mapped to another address is a forged answer.
//! `*.example.com` entries answer every name below `example.com`. The answer logic,
//! [`answer`], is a pure function of the zone and the query bytes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use crate::WorkloadError;

/// TTL of every answer: short, so a timeline that edits the zone takes effect quickly.
pub const TTL: u32 = 5;
/// How long the client waits for one answer over UDP, and how many times it asks.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
pub const QUERY_TRIES: u32 = 2;

/// Names and their addresses. Keys are lowercase names without the trailing dot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub records: BTreeMap<String, Vec<IpAddr>>,
}

impl Zone {
    /// The addresses for `name`: an exact entry first, then the nearest `*.` wildcard.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(a) = self.records.get(&name) {
            return Some(a);
        }
        let mut rest = name.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(a) = self.records.get(&format!("*.{parent}")) {
                return Some(a);
            }
            rest = parent;
        }
        None
    }
}

/// The response to a query message, or `None` when `query` is not a parseable query (then
/// the server stays silent, as resolvers do with garbage). Pure.
pub fn answer(zone: &Zone, query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    if q.message_type() != MessageType::Query {
        return None;
    }
    let mut r = Message::new();
    r.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_op_code(q.op_code())
        .set_authoritative(true)
        .set_recursion_desired(q.recursion_desired())
        .set_recursion_available(true);
    // RFC 1035 section 4.1.2: one question in practice; anything else is a format error.
    let [question] = q.queries() else {
        r.set_response_code(ResponseCode::FormErr);
        return r.to_vec().ok();
    };
    r.add_query(question.clone());
    if q.op_code() != OpCode::Query {
        r.set_response_code(ResponseCode::NotImp);
        return r.to_vec().ok();
    }
    match zone.lookup(&question.name().to_ascii()) {
        None => {
            r.set_response_code(ResponseCode::NXDomain);
        }
        Some(addrs) => {
            for a in addrs {
                let rdata = match (a, question.query_type()) {
                    (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                    (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                r.add_answer(Record::from_rdata(question.name().clone(), TTL, rdata));
            }
        }
    }
    r.to_vec().ok()
}

/// A running DNS server on UDP and TCP.
pub(crate) async fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    zone: Zone,
) -> Result<(), WorkloadError> {
    let zone = Arc::new(zone);
    let z = zone.clone();
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else { continue };
            let z = z.clone();
            tokio::spawn(async move {
                // RFC 1035 section 4.2.2: each message prefixed by a two-byte length.
                loop {
                    let Ok(len) = s.read_u16().await else { return };
                    let mut buf = vec![0u8; usize::from(len)];
                    if s.read_exact(&mut buf).await.is_err() {
                        return;
                    }
                    let Some(resp) = answer(&z, &buf) else { return };
                    let Ok(len) = u16::try_from(resp.len()) else { return };
                    if s.write_u16(len).await.is_err() || s.write_all(&resp).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut buf = vec![0u8; 4096];
    let res = loop {
        let (n, from) = match udp.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => break Err(WorkloadError::Io(format!("dns server: {e}"))),
        };
        if let Some(resp) = answer(&zone, &buf[..n]) {
            let _ = udp.send_to(&resp, from).await;
        }
    };
    tcp_task.abort();
    res
}

/// Resolves `name` to its IPv4 addresses through `resolver` (UDP, [`QUERY_TRIES`] tries of
/// [`QUERY_TIMEOUT`]). NXDOMAIN and empty answers are errors naming the name.
pub async fn resolve(resolver: SocketAddr, name: &str) -> Result<Vec<IpAddr>, WorkloadError> {
    let dns = |m: String| WorkloadError::Dns(m);
    let qname = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
        .map_err(|e| dns(format!("{name:?} is not a valid name: {e}")))?;
    let id: u16 = rand::random();
    let mut q = Message::new();
    q.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query);
    q.set_recursion_desired(true);
    q.add_query(Query::query(qname, RecordType::A));
    let bytes = q.to_vec().map_err(|e| dns(format!("encoding the query: {e}")))?;
    let bind: SocketAddr =
        if resolver.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock =
        UdpSocket::bind(bind).await.map_err(|e| WorkloadError::Io(format!("dns socket: {e}")))?;
    sock.connect(resolver).await.map_err(|e| dns(format!("resolver {resolver}: {e}")))?;
    let mut buf = vec![0u8; 4096];
    for _ in 0..QUERY_TRIES {
        if sock.send(&bytes).await.is_err() {
            continue;
        }
        let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
        loop {
            let Ok(Ok(n)) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await else {
                break;
            };
            // Responses with another id are someone else's (or forged blindly): skip them.
            let Ok(r) = Message::from_vec(&buf[..n]) else { continue };
            if r.id() != id || r.message_type() != MessageType::Response {
                continue;
            }
            return match r.response_code() {
                ResponseCode::NoError => {
                    let addrs: Vec<IpAddr> = r
                        .answers()
                        .iter()
                        .filter_map(|rec| match rec.data() {
                            RData::A(a) => Some(IpAddr::V4(a.0)),
                            _ => None,
                        })
                        .collect();
                    if addrs.is_empty() {
                        Err(dns(format!("no address for {name}")))
                    } else {
                        Ok(addrs)
                    }
                }
                ResponseCode::NXDomain => Err(dns(format!("{name}: name not found (nxdomain)"))),
                code => Err(dns(format!("{name}: resolver answered {code}"))),
            };
        }
    }
    Err(dns(format!("no answer from resolver {resolver} for {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        let mut z = Zone::default();
        z.records.insert("web.whatsapp.net".into(), vec!["10.5.0.2".parse().unwrap()]);
        z.records.insert("*.googlevideo.com".into(), vec!["10.8.0.2".parse().unwrap()]);
        z
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut q = Message::new();
        q.set_id(7).set_message_type(MessageType::Query).set_op_code(OpCode::Query);
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        q.to_vec().unwrap()
    }

    #[test]
    fn answers_names_wildcards_and_nxdomain() {
        let z = zone();
        let r = Message::from_vec(&answer(&z, &query("WEB.whatsapp.net.", RecordType::A)).unwrap())
            .unwrap();
        assert_eq!((r.id(), r.response_code(), r.answers().len()), (7, ResponseCode::NoError, 1));
        let r = Message::from_vec(
            &answer(&z, &query("rr1---sn-abc.googlevideo.com.", RecordType::A)).unwrap(),
        )
        .unwrap();
        assert_eq!(r.answers().len(), 1);
        assert!(
            matches!(r.answers()[0].data(), RData::A(a) if a.0 == std::net::Ipv4Addr::new(10, 8, 0, 2))
        );
        let r = Message::from_vec(&answer(&z, &query("googlevideo.com.", RecordType::A)).unwrap())
            .unwrap();
        assert_eq!(r.response_code(), ResponseCode::NXDomain, "a wildcard does not cover its apex");
        let r =
            Message::from_vec(&answer(&z, &query("web.whatsapp.net.", RecordType::AAAA)).unwrap())
                .unwrap();
        assert_eq!((r.response_code(), r.answers().len()), (ResponseCode::NoError, 0));
    }

    #[test]
    fn garbage_gets_no_answer_and_never_panics() {
        let z = zone();
        assert!(answer(&z, &[]).is_none());
        assert!(answer(&z, &[0xff; 3]).is_none());
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ n).collect();
            let _ = answer(&z, &junk);
        }
        // A response is not a query.
        let mut resp = Message::from_vec(&query("web.whatsapp.net.", RecordType::A)).unwrap();
        resp.set_message_type(MessageType::Response);
        assert!(answer(&z, &resp.to_vec().unwrap()).is_none());
    }
}
