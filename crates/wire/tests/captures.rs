//! Real handshakes captured on loopback (see `testdata/capture.py`), read back through the
//! pcap reader, `Frame::parse` and a `FlowInspector`.

use callwall_wire::pcap::{self, PcapReader};
use callwall_wire::{Dir, FlowFacts, FlowInspector, Label, Proto, L4};

fn inspect(name: &str) -> FlowFacts {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut fi = FlowInspector::new();
    let mut client_port = None;
    let mut last_ts = 0;
    for rec in PcapReader::new(&file).unwrap() {
        let rec = rec.unwrap();
        assert!(rec.timestamp_ns >= last_ts && rec.timestamp_ns > 1_600_000_000_000_000_000);
        last_ts = rec.timestamp_ns;
        let mut scratch = Vec::new();
        let frame = pcap::parse_frame(&rec, &mut scratch).unwrap();
        let ip = frame.ip.unwrap();
        let (proto, t) = match &ip.l4 {
            L4::Udp(t) => (Proto::Udp, t),
            L4::Tcp(t, _) => (Proto::Tcp, t),
            L4::Other(_) => continue,
        };
        // The client is whoever sent the first packet.
        let client = *client_port.get_or_insert(t.src_port);
        let dir = if t.src_port == client { Dir::ClientToServer } else { Dir::ServerToClient };
        fi.observe(proto, dir, t.payload);
    }
    fi.facts().clone()
}

#[test]
fn openssl_dtls12_handshake() {
    let f = inspect("dtls-openssl.pcapng");
    assert_eq!(
        f.first_packet_labels,
        [Label::Dtls, Label::DtlsClientHello, Label::Sni].into_iter().collect()
    );
    assert!(f.labels.contains(Label::DtlsServerHello), "{}", f.labels);
    assert_eq!(f.sni.as_deref(), Some("dtls.example"));
    let fp = f.dtls_fingerprint.as_deref().unwrap();
    assert!(fp.starts_with("dfefd|"), "{fp}");
    assert!(f.dtls_fingerprint_hash.is_some());
    let server = f.dtls_server.as_ref().unwrap();
    assert_eq!(server.version, 0xfefd);
}

#[test]
fn openssl_tls_client_hello_over_tcp() {
    let f = inspect("tls-openssl.pcap");
    assert_eq!(f.sni.as_deref(), Some("tls.example"));
    assert_eq!(f.alpn, vec!["h2".to_owned(), "http/1.1".to_owned()]);
    assert!(f.labels.contains(Label::TlsClientHello) && f.labels.contains(Label::Tls));
    assert!(matches!(f.fet, Some(callwall_wire::fet::FetOutcome::Exempt(_))));
    assert!(!f.labels.contains(Label::FullyEncrypted));
    assert!(f.tls_fingerprint.as_deref().unwrap().starts_with("t0303|"));
}

#[test]
fn aioquic_client_initial() {
    let f = inspect("quic-aioquic.pcap");
    assert_eq!(f.quic_version, Some(1));
    assert!(f.first_packet_labels.contains(Label::QuicInitial));
    assert_eq!(f.sni.as_deref(), Some("quic.example"));
    assert_eq!(f.alpn, vec!["h3".to_owned()]);
    assert_eq!(f.client_hello_packet, Some(1));
}
