#![no_main]
use callwall_wire::stun;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(&b) = data.first() {
        let _ = stun::demux(b);
    }
    if let Ok(m) = stun::parse(data) {
        let _ = (m.username(), m.realm(), m.software(), m.has_message_integrity());
        let _ = (m.fingerprint(), m.xor_mapped_address(), m.attributes().count());
        assert!(m.raw.len() <= data.len());
    }
    let _ = stun::parse_datagram(data);
    if let Some(cd) = stun::parse_channel_data(data) {
        assert!((0x4000..=0x4fff).contains(&cd.channel));
    }
});
