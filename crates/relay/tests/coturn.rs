//! Runs the planned coturn on loopback and checks that it answers on UDP, TCP and TLS ports.
//! Fails (never skips) when coturn is missing.

use std::process::{Child, Stdio};
use std::time::Duration;

use callwall_relay::{plan, wait_ready};
use callwall_wire::stun::{self, StunClass, StunRepr};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The transaction id of the test's STUN Binding request.
const TID: [u8; 12] = *b"callwall-tst";

#[tokio::test]
async fn coturn_starts_from_plan_and_answers_stun() {
    let ip = "127.0.0.2".parse().expect("ip");
    let dir = Scratch::new("it");
    let p = plan(ip, &dir.0).unwrap_or_else(|e| panic!("{e}"));
    let child = p.command().stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let _kill = Kill(child);
    wait_ready(&p.info, Duration::from_secs(10)).await.expect("relay ready");

    // UDP 3478: a Binding request gets a success response with our transaction id.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let request = StunRepr::binding_request(TID).to_bytes();
    sock.send_to(&request, (p.info.addr, p.info.udp_port)).await.expect("send");
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf))
        .await
        .expect("stun response in time")
        .expect("recv");
    let m = stun::parse_datagram(&buf[..n]).expect("a stun message");
    assert_eq!((m.class, m.method), (StunClass::SuccessResponse, stun::method::BINDING));
    assert_eq!(m.transaction_id, &TID[..]);

    // TLS 443 accepts TCP.
    tokio::net::TcpStream::connect((p.info.addr, p.info.tls_port)).await.expect("tls port open");
}

/// A scratch directory under Cargo's per-target temporary directory (never the host's /tmp),
/// removed on drop, also when the test fails.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("callwall-relay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn plan_makes_fresh_private_material() {
    let dir = Scratch::new("plan");
    let Ok(one) = plan("127.0.0.1".parse().expect("ip"), &dir.0) else {
        panic!("coturn is not installed: run `apt-get install -y coturn` (or `make deps`)");
    };
    let two = plan("127.0.0.1".parse().expect("ip"), &dir.0).expect("second plan");
    assert_ne!(one.info.password, two.info.password);
    assert_ne!(one.info.tls_cert_pem, two.info.tls_cert_pem);
    assert!(one.info.tls_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    use std::os::unix::fs::PermissionsExt;
    for f in ["turn-cert.pem", "turn-key.pem"] {
        let mode = std::fs::metadata(dir.0.join(f)).expect("written").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    assert!(two.args.iter().any(|a| a == "--allow-loopback-peers"));
}
