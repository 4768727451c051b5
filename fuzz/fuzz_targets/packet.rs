#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = callwall_wire::Frame::parse(data) {
        if let Some(t) = f.ip.as_ref().and_then(|ip| ip.l4.transport()) {
            let _ = callwall_wire::classify_datagram(t.payload);
        }
    }
});
