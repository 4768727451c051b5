//! Real handshakes captured on loopback (see `testdata/capture.py` and
//! `testdata/capture_chromium.py`), read back through the
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

/// Every UDP flow of a capture (keyed by its sorted port pair), with the raw ClientHello
/// extension order of each, in order of first appearance.
fn udp_flows(name: &str) -> Vec<(FlowFacts, Vec<u16>)> {
    use callwall_wire::dtls::HelloReassembler;
    use callwall_wire::tls::Reassembly;
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    /// Port pair, the first sender's port, the inspector, the hello and its extension order.
    type Tracked = ((u16, u16), u16, FlowInspector, HelloReassembler, Vec<u16>);
    let mut flows: Vec<Tracked> = Vec::new();
    let mut scratch = Vec::new();
    for rec in PcapReader::new(&file).unwrap() {
        let rec = rec.unwrap();
        let frame = pcap::parse_frame(&rec, &mut scratch).unwrap();
        let L4::Udp(t) = frame.ip.unwrap().l4 else { continue };
        let key = (t.src_port.min(t.dst_port), t.src_port.max(t.dst_port));
        let i = match flows.iter().position(|f| f.0 == key) {
            Some(i) => i,
            None => {
                let r = HelloReassembler::new(16 * 1024);
                flows.push((key, t.src_port, FlowInspector::new(), r, Vec::new()));
                flows.len() - 1
            }
        };
        let f = &mut flows[i];
        let dir = if t.src_port == f.1 { Dir::ClientToServer } else { Dir::ServerToClient };
        f.2.observe(Proto::Udp, dir, t.payload);
        if f.4.is_empty()
            && callwall_wire::dtls::handshake_type(t.payload) == Some(1)
            && f.3.push(t.payload) == Reassembly::Complete
        {
            f.4 = f.3.client_hello().unwrap().extensions().map(|e| e.0).collect();
        }
    }
    flows.into_iter().map(|f| (f.2.facts().clone(), f.4)).collect()
}

#[test]
fn chromium_dtls_hello_in_two_fragments_has_one_fingerprint() {
    // Headless Chromium 156, three connections (see testdata/capture_chromium.py): the hello
    // offers X25519MLKEM768 (0x11ec) and DTLS 1.3, comes in two fragments in two datagrams, and
    // its extensions are permuted per connection.
    let flows = udp_flows("chromium-webrtc.pcap");
    assert_eq!(flows.len(), 3);
    let fp = flows[0].0.dtls_fingerprint.clone().expect("a fingerprint despite the fragments");
    assert!(fp.contains("|11ec,") && fp.ends_with("|fefc,fefd"), "{fp}");
    for (f, _) in &flows {
        assert_eq!(f.dtls_fingerprint.as_ref(), Some(&fp));
        assert_eq!(f.dtls_client_hello_fragments, 2);
        assert_eq!(f.dtls_client, Some(Dir::ClientToServer));
        assert!(f.labels.contains(Label::DtlsServerHello));
    }
    let orders: Vec<&Vec<u16>> = flows.iter().map(|f| &f.1).collect();
    assert!(orders.iter().all(|o| !o.is_empty()));
    assert!(orders.windows(2).any(|w| w[0] != w[1]), "chromium permutes its extensions");
    // Distinct from OpenSSL's and webrtc-rs's DTLS stacks.
    let openssl = inspect("dtls-openssl.pcapng").dtls_fingerprint.unwrap();
    let webrtc_rs = udp_flows("../../../tests/data/captures/webrtc-direct.pcap");
    let webrtc_rs = webrtc_rs[0].0.dtls_fingerprint.clone().unwrap();
    assert!(fp != openssl && fp != webrtc_rs && openssl != webrtc_rs);
}

/// Issue 24: one datagram whose structure proves RTCP (`rtp::prove_rtcp`) is labelled `rtcp` at
/// once. The committed captures of real stacks carry no RTCP (each is cut to its first frames or
/// seconds, before a first RTCP interval): no datagram of theirs may be proven RTCP and no flow
/// may gain the label.
#[test]
fn captures_of_real_stacks_gain_no_rtcp() {
    let captures = [
        "chromium-webrtc.pcap",
        "dtls-openssl.pcapng",
        "quic-aioquic.pcap",
        "tls-openssl.pcap",
        "../../../tests/data/captures/noise-udp-wg.pcap",
        "../../../tests/data/captures/quic-443.pcap",
        "../../../tests/data/captures/quic-split.pcap",
        "../../../tests/data/captures/quic.pcap",
        "../../../tests/data/captures/webrtc-direct.pcap",
        "../../../tests/data/captures/webrtc-turn-tcp.pcap",
        "../../../tests/data/captures/webrtc-turn-tls.pcap",
    ];
    let mut datagrams = 0;
    for name in captures {
        let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        let file = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let mut scratch = Vec::new();
        for rec in PcapReader::new(&file).unwrap() {
            let rec = rec.unwrap();
            let Ok(frame) = pcap::parse_frame(&rec, &mut scratch) else { continue };
            let Some(L4::Udp(t)) = frame.ip.map(|ip| ip.l4) else { continue };
            datagrams += 1;
            assert_eq!(callwall_wire::rtp::prove_rtcp(t.payload), None, "{name}");
        }
        for (f, _) in udp_flows(name) {
            assert!(!f.labels.contains(Label::Rtcp), "{name}: {}", f.labels);
        }
    }
    assert!(datagrams > 500, "{datagrams} datagrams read");
}
