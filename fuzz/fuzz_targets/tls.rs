#![no_main]
use callwall_wire::tls;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ch) = tls::ClientHello::parse_handshake(data) {
        let _ = (ch.sni(), ch.alpn().count(), ch.supported_groups().count(), ch.fingerprint('t'));
    }
    let _ = tls::ServerHello::parse(data);
    let mut r = tls::ClientHelloReassembler::new(2048);
    for chunk in data.chunks(7) {
        r.push(chunk);
    }
    let _ = r.client_hello().map(|c| c.sni());
});
