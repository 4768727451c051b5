//! The parse paths allocate nothing: a counting global allocator checks it.

use callwall_wire::{classify_datagram, dtls, fet, quic, rtp, stun, tls, wireguard};
use callwall_wire::{Dir, FlowInspector, Proto};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (ALLOCS.with(Cell::get) - before, r)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

#[test]
fn parse_paths_do_not_allocate() {
    let stun_req =
        hex("00010058 2112a442 b7e7a701bc34d686fa87dfae 80220010 5354554e207465737420636c69656e74
         00240004 6e0001ff 80290008 932ff9b151263b36 00060009 6576746a3a68367659202020
         00080014 9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2 80280004 e57a3bcf");
    let path = format!("{}/testdata/rfc9001-a2-client-initial.hex", env!("CARGO_MANIFEST_DIR"));
    let quic_pkt = hex(&std::fs::read_to_string(path).unwrap());
    let mut rtp_pkt = vec![0x80, 0x6f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
    rtp_pkt.extend_from_slice(&[0x5a; 60]);
    let mut wg = vec![1, 0, 0, 0];
    wg.resize(148, 9);
    // RR with no blocks and SDES CNAME "cw": a compound walked whole.
    let rtcp_pkt = hex("80c90001 00000007 81ca0003 00000007 01026377 00000000");
    let mut fi = FlowInspector::new();

    let (n, ok) = allocations(|| {
        let mut ok = stun::parse_datagram(&stun_req).ok().and_then(|m| m.fingerprint()).is_some();
        ok &= !classify_datagram(&stun_req).is_empty();
        ok &= !classify_datagram(&quic_pkt).is_empty();
        ok &= !classify_datagram(&rtp_pkt).is_empty();
        ok &= wireguard::parse(&wg).is_some();
        ok &= rtp::parse_rtp(&rtp_pkt).is_some();
        ok &= rtp::prove_rtcp(&rtcp_pkt).is_some() && rtp::prove_rtcp(&quic_pkt).is_none();
        ok &= fet::fet(&quic_pkt).is_some();
        let mut scratch = [0u8; quic::SCRATCH_LEN];
        let opened = quic::decrypt_initial(&quic_pkt, &mut scratch);
        ok &= opened.is_ok();
        if let Ok(o) = opened {
            for f in quic::frames(o.payload).flatten() {
                if let quic::Frame::Crypto { data, .. } = f {
                    let ch = tls::ClientHello::parse_handshake(data);
                    ok &= ch
                        .map(|c| c.sni() == Some("example.com") && c.fingerprint_hash('q') != 0)
                        == Ok(true);
                }
            }
        }
        ok &= dtls::client_hello(&quic_pkt).is_err();
        // RTP through the flow inspector: no strings to keep, so no allocation.
        for _ in 0..20 {
            fi.observe(Proto::Udp, Dir::ClientToServer, &rtp_pkt);
        }
        ok
    });
    assert!(ok);
    // The counter itself works.
    assert_eq!(allocations(|| std::hint::black_box(vec![1u8; 3])).0, 1);
    assert_eq!(n, 0, "parse paths allocated {n} times");
}
