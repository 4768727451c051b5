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
    // A proof of RTCP implies the first header parses, and plain RTCP is never also RTP.
    match rtp::prove_rtcp(data) {
        Some(rtp::RtcpProof::Compound { packets }) => {
            assert!(
                packets > 0 && rtp::parse_rtcp(data).is_some() && rtp::parse_rtp(data).is_none()
            );
        }
        Some(rtp::RtcpProof::Srtcp(_)) => assert!(rtp::parse_rtcp(data).is_some()),
        None => {}
    }
});
