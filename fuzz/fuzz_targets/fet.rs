#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_eq!(callwall_wire::fet::fet(data).is_none(), data.is_empty());
});
