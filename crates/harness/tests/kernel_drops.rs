//! The censor bridge counts the frames the kernel dropped at its packet sockets before it
//! read them (`PACKET_STATISTICS`), and its default receive buffer holds a burst a small
//! one drops (needs root or unprivileged user namespaces).
//!
//! In a host of the default topology (a namespace of its own, `lo` up), two bridges are
//! opened on `lo` and nobody reads them; a burst of UDP datagrams to a local socket
//! crosses `lo`, so every frame is queued for each bridge socket or dropped:
//! - with a 4 KiB receive buffer the kernel drops most of the burst, and the bridge's
//!   [`BridgeStats`] says how many, per socket, with the frames it queued;
//! - with the default buffer it drops none of it.
//!
//! The outer test re-executes this binary inside `spawn_sandboxed` (`ROLE=sandbox`).

use std::net::UdpSocket;

use callwall_censor::bridge::{Bridge, BridgeOptions, BridgeStats};
use callwall_netns::{default_topology, Network};

mod common;

const ROLE: &str = "CALLWALL_KDROP_TEST_ROLE";
/// Datagrams in the burst.
const BURST: usize = 3000;

#[test]
fn kernel_drops_at_an_overflowing_packet_socket_are_counted() {
    if std::env::var(ROLE).is_ok() {
        return; // the child: `inner` runs instead
    }
    common::run_inner_in_sandbox(ROLE, "KDROP-TEST-OK");
}

/// A burst through `lo` past a bridge with `rcvbuf` bytes of receive buffer that nobody
/// reads; its counters afterwards.
fn burst_past(rcvbuf: u32) -> BridgeStats {
    let opts = BridgeOptions { rcvbuf, ..Default::default() };
    let mut bridge = Bridge::open_with("lo", "lo", 0, opts).expect("open the bridge on lo");
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind the receiver");
    let to = rx.local_addr().expect("receiver address");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    tx.set_nonblocking(true).expect("nonblocking");
    let mut sent = 0;
    let mut buf = [0u8; 2048];
    for i in 0..BURST {
        if tx.send_to(&[i as u8; 200], to).is_ok() {
            sent += 1;
        }
        // Keep the receiver's own buffer from filling: its drops are not the bridge's.
        rx.set_nonblocking(true).expect("nonblocking");
        while rx.recv_from(&mut buf).is_ok() {}
    }
    assert!(sent > BURST / 2, "only {sent} of {BURST} datagrams could be sent");
    bridge.collect_kernel_stats();
    println!("rcvbuf {rcvbuf}: sent {sent}, bridge counters {:?}", bridge.stats);
    bridge.stats.clone()
}

#[test]
fn inner() {
    if std::env::var(ROLE).as_deref() != Ok("sandbox") {
        return;
    }
    let net = Network::build(&default_topology().expect("topology")).expect("build the topology");
    let (small, large) = net
        .run_in("caller", || (burst_past(4096), burst_past(BridgeOptions::default().rcvbuf)))
        .expect("run in the caller's namespace");
    for (i, side) in ["inside", "outside"].iter().enumerate() {
        assert!(
            small.kernel_frames[i] >= (BURST / 2) as u64,
            "{side}: the kernel queued too few frames: {small:?}"
        );
        assert!(
            small.kernel_drops[i] > 0 && small.kernel_drops[i] <= small.kernel_frames[i],
            "{side}: a 4 KiB buffer nobody reads must drop frames: {small:?}"
        );
        assert!(large.kernel_frames[i] >= (BURST / 2) as u64, "{side}: {large:?}");
        assert_eq!(large.kernel_drops[i], 0, "{side}: the default buffer must hold it: {large:?}");
    }
    let dropped = small.kernel_dropped();
    assert!(small.overload().is_some_and(|o| o.dropped == dropped && o.seen >= dropped));
    assert_eq!(large.overload(), None);
    // Nothing was read, so nothing counts as received by the censor.
    assert_eq!(small.received, [0, 0]);
    net.teardown().expect("teardown");
    println!("KDROP-TEST-OK");
}
