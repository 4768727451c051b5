//! What a tracked flow costs: random UDP flows (random ports, addresses and payloads, as a
//! scan or a flood brings) against a full flow table, with every heap byte the engine holds
//! counted by this binary's allocator. Deterministic (allocation sizes, not timing): the
//! bound fails if per-flow state grows, as it once did: 1692 bytes per flow here on
//! 2026-11-30 (an 80-byte rule state with room for four allocated for every flow the default
//! pass decided, 44 bytes per identity ordinal, the flow inline in a hash table that keeps up
//! to half its slots empty), 876 since.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicIsize, Ordering};

use callwall_censor::policy::{raw, Policy};
use callwall_censor::{Dir, Engine};
use callwall_wire::packet::build;

/// Bytes the process holds on the heap (requested sizes).
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes per tracked flow at the cap, everything the engine holds for its flows shared
/// out (the flow table with its empty slots, the eviction order, the identity ordinals, each
/// flow's classifier and rule state).
const MAX_BYTES_PER_FLOW: usize = 1024;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn a_random_udp_flow_costs_a_bounded_number_of_bytes() {
    const CAP: usize = 4096;
    let raw: raw::Policy = toml::from_str(&format!("max_flows = {CAP}")).expect("policy");
    let policy = Policy::compile(&raw, &|_: &str| None).expect("compiles");
    let frames: Vec<(Dir, Vec<u8>)> = {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        (0..4 * CAP)
            .flat_map(|_| {
                let a = IpAddr::V4(Ipv4Addr::from(0x0a01_0000 | (rng.next() as u32 & 0xffff)));
                let b = IpAddr::V4(Ipv4Addr::from(0x0a02_0000 | (rng.next() as u32 & 0xffff)));
                let (pa, pb) = (1024 + rng.next() as u16 % 60_000, 1 + rng.next() as u16);
                // Two packets each way: the first byte is anything, so a quarter of them look
                // like RTP or RTCP and some like STUN, DTLS or QUIC.
                (0..4)
                    .map(|i| {
                        let len = 20 + rng.next() as usize % 1000;
                        let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                        let (mac_a, mac_b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
                        if i % 2 == 0 {
                            (Dir::Up, build::udp(mac_a, mac_b, (a, pa), (b, pb), &payload))
                        } else {
                            (Dir::Down, build::udp(mac_b, mac_a, (b, pb), (a, pa), &payload))
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let before = LIVE.load(Ordering::Relaxed);
    let mut e = Engine::new(policy, 1);
    e.set_event_log(false);
    for (i, (dir, f)) in frames.iter().enumerate() {
        e.handle_frame(i as u64 * 1000, *dir, f);
    }
    assert_eq!(e.flow_count(), CAP, "the table is full");
    assert_eq!(e.stats().flows_created as usize, 4 * CAP);
    let held = (LIVE.load(Ordering::Relaxed) - before) as usize;
    let per_flow = held / CAP;
    eprintln!("{held} heap bytes for {CAP} tracked random UDP flows: {per_flow} per flow");
    assert!(
        per_flow <= MAX_BYTES_PER_FLOW,
        "a tracked random UDP flow costs {per_flow} heap bytes, more than {MAX_BYTES_PER_FLOW}"
    );
}
