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
        // The codec: parse -> emit -> parse gives the same value.
        if let Ok(r) = stun::StunRepr::parse(&m) {
            let bytes = r.to_bytes();
            assert_eq!(bytes.len(), r.buffer_len());
            let again = stun::parse_datagram(&bytes).expect("an emitted message parses");
            assert_eq!(stun::StunRepr::parse(&again), Ok(r));
        }
    }
    let _ = stun::parse_datagram(data);
    if let Some(cd) = stun::parse_channel_data(data) {
        assert!((0x4000..=0x4fff).contains(&cd.channel));
        for padded in [false, true] {
            assert_eq!(stun::parse_channel_data(&cd.to_bytes(padded)), Some(cd));
        }
    }
});
