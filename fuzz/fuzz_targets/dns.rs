#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = callwall_wire::dns::looks_like_dns(data);
    let _ = callwall_wire::dns::looks_like_dns_tcp(data);
});
