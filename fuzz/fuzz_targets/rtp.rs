#![no_main]
use callwall_wire::rtp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(h) = rtp::parse_rtp(data) {
        assert!(h.header_len <= data.len());
    }
    if let Some(h) = rtp::parse_rtcp(data) {
        assert!(h.packet_len <= data.len());
    }
});
