#![no_main]
use callwall_wire::dtls;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dtls::records(data).count();
    let _ = (dtls::is_dtls_datagram(data), dtls::handshake_type(data));
    if let Ok(ch) = dtls::client_hello(data) {
        let fp = ch.fingerprint('d');
        assert_eq!(ch.fingerprint_hash('d'), callwall_wire::tls::Fnv1a::hash(fp.as_bytes()));
        let _ = (ch.sni(), ch.alpn().count(), ch.srtp_profiles().count());
    }
    if let Ok(sh) = dtls::server_hello(data) {
        let _ = sh.extensions().count();
    }
});
