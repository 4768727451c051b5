#![no_main]
use callwall_wire::pcap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = pcap::PcapReader::new(data) {
        for rec in r.take(1000).flatten() {
            let mut scratch = Vec::new();
            let _ = pcap::parse_frame(&rec, &mut scratch);
        }
    }
});
