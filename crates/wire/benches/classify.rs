//! Per-classifier throughput. Run with `cargo bench -p callwall-wire` (not in CI).

use callwall_wire::{dtls, fet, inspect, quic, rtp, stun, tls, wireguard};
use callwall_wire::{Dir, FlowInspector, Proto};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()).collect()
}

/// RFC 5769 section 2.1.
fn stun_request() -> Vec<u8> {
    hex("00010058 2112a442 b7e7a701bc34d686fa87dfae 80220010 5354554e207465737420636c69656e74
         00240004 6e0001ff 80290008 932ff9b151263b36 00060009 6576746a3a68367659202020
         00080014 9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2 80280004 e57a3bcf")
}

fn tls_client_hello(sni: &str) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2b, 1, 0]);
    let mut sn = vec![0];
    sn.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sn.extend_from_slice(sni.as_bytes());
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&((sn.len() + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(sn.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sn);
    ext.extend_from_slice(&[0, 10, 0, 6, 0, 4, 0, 0x1d, 0, 0x17]);
    ext.extend_from_slice(&[0, 14, 0, 5, 0, 2, 0, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    msg
}

fn dtls_client_hello() -> Vec<u8> {
    let ch = tls_client_hello("dtls.example");
    // Re-frame: DTLS body has a cookie after the session id.
    let body = &ch[4..];
    let mut b = body[..35].to_vec();
    b.push(0);
    b.extend_from_slice(&body[35..]);
    b[0..2].copy_from_slice(&[0xfe, 0xfd]);
    let mut hs = vec![1];
    hs.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&[0, 0, 0, 0, 0]);
    hs.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&b);
    let mut rec = vec![22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn rtp_packet() -> Vec<u8> {
    let mut p = vec![0x80, 0x6f, 0x12, 0x34, 0, 0, 3, 0xc0, 0xde, 0xad, 0xbe, 0xef];
    p.extend_from_slice(&[0x5a; 80]);
    p
}

fn random(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let stun_req = stun_request();
    let dtls_ch = dtls_client_hello();
    let rtp_pkt = rtp_packet();
    let quic_pkt = quic::build::client_initial(
        quic::VERSION_1,
        &[8; 8],
        &[],
        0,
        &quic::build::crypto_frame(0, &tls_client_hello("quic.example")),
        1200,
    );
    let mut wg = vec![4, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0];
    wg.extend_from_slice(&random(96));
    let rand = random(1200);
    let mut tls_rec = vec![22, 3, 1];
    let ch = tls_client_hello("tls.example");
    tls_rec.extend_from_slice(&(ch.len() as u16).to_be_bytes());
    tls_rec.extend_from_slice(&ch);

    let mut g = c.benchmark_group("classify");
    let mut one = |name: &str, input: &[u8], f: &dyn Fn(&[u8])| {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| b.iter(|| f(black_box(input))));
    };
    one("stun_parse_fingerprint", &stun_req, &|p| {
        let m = stun::parse_datagram(p).ok();
        black_box(m.and_then(|m| m.fingerprint()));
    });
    one("dtls_client_hello_fingerprint_hash", &dtls_ch, &|p| {
        black_box(dtls::client_hello(p).ok().map(|c| c.fingerprint_hash('d')));
    });
    one("rtp_header", &rtp_pkt, &|p| {
        black_box(rtp::parse_rtp(p));
    });
    // RR with one report block and SDES with a 16-character CNAME, walked whole.
    let rtcp_pkt = hex("81c90007 00000007 3a1b2c4d 00000000 000046e1 00000111 09f36432 00024a79
                        81ca0006 00000007 0110 63772d62 656e6368 2d636e61 6d652121 0000");
    one("rtcp_prove_compound", &rtcp_pkt, &|p| {
        black_box(rtp::prove_rtcp(p));
    });
    one("wireguard_shape", &wg, &|p| {
        black_box(wireguard::parse(p));
    });
    one("fet_random_1200", &rand, &|p| {
        black_box(fet::fet(p));
    });
    one("tls_client_hello_sni", &tls_rec, &|p| {
        black_box(
            tls::ClientHello::parse_handshake(&p[5..]).ok().and_then(|c| c.sni().map(str::len)),
        );
    });
    one("quic_initial_decrypt", &quic_pkt, &|p| {
        let mut scratch = [0u8; quic::SCRATCH_LEN];
        black_box(quic::decrypt_initial(p, &mut scratch).map(|o| o.payload.len()).ok());
    });
    for (name, p) in
        [("datagram_stun", &stun_req), ("datagram_rtp", &rtp_pkt), ("datagram_random", &rand)]
    {
        one(name, p, &|p| {
            black_box(inspect::classify_datagram(p));
        });
    }
    one("flow_quic_initial_to_sni", &quic_pkt, &|p| {
        let mut fi = FlowInspector::new();
        black_box(fi.observe(Proto::Udp, Dir::ClientToServer, p).sni.is_some());
    });
    g.finish();

    // Steady state of an RTP flow past classification.
    let mut fi = FlowInspector::new();
    for _ in 0..40 {
        fi.observe(Proto::Udp, Dir::ClientToServer, &rtp_pkt);
        fi.observe(Proto::Udp, Dir::ServerToClient, &rtp_pkt);
    }
    c.bench_function("flow_rtp_after_limit", |b| {
        b.iter(|| black_box(fi.observe(Proto::Udp, Dir::ClientToServer, black_box(&rtp_pkt)).done))
    });
}

criterion_group!(classify, benches);
criterion_main!(classify);
