#![no_main]
use callwall_wire::quic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = quic::parse_long_header(data);
    let _ = quic::looks_like_long_header(data);
    let mut scratch = [0u8; quic::SCRATCH_LEN];
    if let Ok(o) = quic::decrypt_initial(data, &mut scratch) {
        let _ = quic::frames(o.payload).count();
    }
    // The frames of a payload as if decrypted, and a tracker fed the input split in two.
    let _ = quic::frames(data).count();
    let mut t = quic::InitialTracker::new(4096);
    let (a, b) = data.split_at(data.len() / 2);
    t.push_datagram(a, &mut scratch);
    t.push_datagram(b, &mut scratch);
    let _ = t.client_hello().map(|c| c.sni());
});
