//! The censor engine over arbitrary frame sequences: input is a series of
//! `[dir: u8][len: u8][frame: len bytes]` records run through a policy that exercises every
//! classifier and action. It must never panic and must keep its flow table within the cap.
#![no_main]

use callwall_censor::policy::{raw, Policy};
use callwall_censor::{Dir, Engine};
use libfuzzer_sys::fuzz_target;

const POLICY: &str = r#"
max_flows = 64
[[rules]]
name = "sni"
match = { sni = ["*.blocked.example"] }
action = { drop = true, residual = "30s" }
[[rules]]
name = "stun"
match = { first_label = ["stun"], stun_username = ["*x*"] }
action = { police = "64kbit", burst_loss = { p = "5%", r = "30%" } }
[[rules]]
name = "fet"
match = { proto = "tcp", label = ["fully-encrypted"] }
action = { block_probability = "26%", residual = "120s" }
[[rules]]
name = "rst"
match = { proto = "tcp", server_port = "80" }
action = "reject"
[[rules]]
name = "shape"
match = { proto = "udp" }
action = { freeze_after = "2KiB", delay = "1ms", jitter = "1ms", cut_after = "1s" }
"#;

fuzz_target!(|data: &[u8]| {
    let raw: raw::Policy = toml::from_str(POLICY).expect("policy parses");
    let policy = Policy::compile(&raw, &|_: &str| None).expect("policy compiles");
    let mut engine = Engine::new(policy, 1);
    let mut rest = data;
    let mut now = 0u64;
    while rest.len() >= 2 {
        let dir = if rest[0] & 1 == 0 { Dir::Up } else { Dir::Down };
        let len = usize::from(rest[1]).min(rest.len() - 2);
        let frame = &rest[2..2 + len];
        rest = &rest[2 + len..];
        now += 1_000_000;
        engine.handle_frame(now, dir, frame);
        while engine.poll_transmit(now + 10_000_000).is_some() {}
        while engine.poll_event().is_some() {}
        assert!(engine.flow_count() <= 64);
    }
});
