#![no_main]
use callwall_wire::dns;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let looks = dns::looks_like_dns(data);
    let _ = dns::looks_like_dns_tcp(data);
    // The codec: parse -> emit -> parse gives the same value.
    if let Some(q) = dns::Query::parse(data) {
        assert!(looks);
        let bytes = q.to_bytes();
        assert_eq!(bytes.len(), q.buffer_len());
        assert!(dns::looks_like_dns(&bytes));
        assert_eq!(dns::Query::parse(&bytes), Some(q));
    }
});
