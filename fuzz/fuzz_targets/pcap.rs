#![no_main]
use callwall_wire::pcap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let memory: Vec<_> = match pcap::PcapReader::new(data) {
        Ok(r) => r
            .take(1000)
            .map(|rec| {
                rec.map(|rec| {
                    let mut scratch = Vec::new();
                    let _ = pcap::parse_frame(&rec, &mut scratch);
                    (rec.timestamp_ns, rec.data.to_vec())
                })
            })
            .collect(),
        Err(e) => vec![Err(e)],
    };
    // The streaming reader reads exactly what the in-memory one reads.
    let mut streamed = Vec::new();
    match pcap::PcapStream::new(data) {
        Ok(mut s) => {
            while let Some(rec) = s.next_record() {
                if streamed.len() == 1000 {
                    break;
                }
                streamed.push(rec.map(|(_, r)| (r.timestamp_ns, r.data.to_vec())));
            }
        }
        Err(e) => streamed.push(Err(e)),
    }
    assert_eq!(memory, streamed);
});
