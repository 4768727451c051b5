//! Real servers and real clients on loopback: the DNS server, the chat server, the HTTP
//! server (HTTPS and HTTP/3), and a TCP relay in the path that can police or freeze the
//! server's bytes, so each workload is shown to pass and to fail.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use callwall_units::{Bytes, Duration as UDuration, Rate};
use callwall_workload::{
    Figures, HttpProto, MessageParams, Outcome, Params, VideoParams, VoiceNoteParams, WebParams,
    WorkloadReport,
};
use callwall_workload_net::dns::Zone;
use callwall_workload_net::{run_client, ClientSpec, RunCa, Server, ServerConfig, ServerRole};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

struct Net {
    ca: RunCa,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Net {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Net {
    fn new() -> Net {
        Net { ca: RunCa::generate().unwrap(), tasks: Vec::new() }
    }

    async fn start(&mut self, role: ServerRole, names: &[&str], zone: Option<Zone>) -> SocketAddr {
        let identity = (role != ServerRole::Dns).then(|| {
            self.ca.issue(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        });
        let server = Server::bind(ServerConfig { role, listen: LO, port: Some(0), identity, zone })
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        self.tasks.push(tokio::spawn(async move {
            let _ = server.run().await;
        }));
        addr
    }

    fn spec(
        &self,
        params: Params,
        name: &str,
        server: SocketAddr,
        resolver: Option<SocketAddr>,
    ) -> ClientSpec {
        ClientSpec {
            name: "w".into(),
            app: "test".into(),
            params,
            server_name: name.into(),
            port: Some(server.port()),
            resolver,
            server_addr: Some(server.ip()),
            ca_pem: self.ca.cert_pem(),
            start_at_unix_ns: 0,
            timeout: UDuration::from_secs(30),
            request_timeout: Some(UDuration::from_secs(5)),
        }
    }
}

fn zone(entries: &[(&str, &str)]) -> Zone {
    let mut z = Zone::default();
    for (n, a) in entries {
        z.records.insert(n.to_string(), vec![a.parse().unwrap()]);
    }
    z
}

fn chat() -> Params {
    Params::Message(MessageParams {
        count: 10,
        size: Bytes::new(300),
        interval: UDuration::from_millis(20),
    })
}

fn web(proto: HttpProto) -> Params {
    Params::Web(WebParams {
        page_size: Bytes::new(30_000),
        objects: 8,
        object_size: Bytes::new(20_000),
        proto,
    })
}

fn video(proto: HttpProto, bitrate: u64) -> Params {
    Params::Video(VideoParams {
        bitrate: Rate::from_bits_per_sec(bitrate),
        duration: UDuration::from_secs(2),
        chunk: UDuration::from_millis(500),
        proto,
    })
}

fn check(r: &WorkloadReport, want: Outcome) {
    assert_eq!(r.outcome, want, "{}", serde_json::to_string_pretty(r).unwrap());
}

#[tokio::test]
async fn messages_flow_both_ways_through_the_run_resolver() {
    let mut net = Net::new();
    let srv = net.start(ServerRole::Message, &["web.whatsapp.net"], None).await;
    let dns =
        net.start(ServerRole::Dns, &[], Some(zone(&[("web.whatsapp.net", "127.0.0.1")]))).await;
    let mut spec = net.spec(chat(), "web.whatsapp.net", srv, Some(dns));
    spec.server_addr = None;
    let r = run_client(&spec).await;
    check(&r, Outcome::Ok);
    assert_eq!(r.resolved, vec![LO]);
    let Figures::Message(f) = &r.figures else { panic!("{r:?}") };
    assert_eq!((f.sent_up, f.delivered_up, f.delivered_down), (10, 10, 10));
    let p95 = f.latency_p95_ms.unwrap();
    assert!(p95 >= 0.0 && f.latency_p50_ms.unwrap() <= p95, "{f:?}");
}

#[tokio::test]
async fn a_name_removed_from_the_zone_fails_at_dns() {
    let mut net = Net::new();
    let srv = net.start(ServerRole::Message, &["web.whatsapp.net"], None).await;
    let dns = net.start(ServerRole::Dns, &[], Some(zone(&[("max.ru", "127.0.0.1")]))).await;
    let r = run_client(&net.spec(chat(), "web.whatsapp.net", srv, Some(dns))).await;
    check(&r, Outcome::Failed);
    assert!(r.error.as_deref().unwrap_or("").contains("nxdomain"), "{r:?}");
    assert!(r.resolved.is_empty());
}

#[tokio::test]
async fn a_forged_answer_sends_the_client_nowhere() {
    let mut net = Net::new();
    let srv = net.start(ServerRole::Http, &["mmg.whatsapp.net"], None).await;
    // 127.0.0.2 is loopback too, but nothing listens there on the server's port.
    let dns =
        net.start(ServerRole::Dns, &[], Some(zone(&[("mmg.whatsapp.net", "127.0.0.2")]))).await;
    let r = run_client(&net.spec(
        Params::VoiceNote(VoiceNoteParams::default()),
        "mmg.whatsapp.net",
        srv,
        Some(dns),
    ))
    .await;
    check(&r, Outcome::Failed);
    assert_eq!(r.resolved, vec!["127.0.0.2".parse::<IpAddr>().unwrap()]);
    assert!(r.error.as_deref().unwrap_or("").starts_with("connect"), "{r:?}");
}

#[tokio::test]
async fn clients_check_the_certificate_name() {
    let mut net = Net::new();
    let srv = net.start(ServerRole::Http, &["tile.openstreetmap.org"], None).await;
    let r = run_client(&net.spec(web(HttpProto::Https), "gosuslugi.ru", srv, None)).await;
    check(&r, Outcome::Failed);
    assert!(r.error.as_deref().unwrap_or("").starts_with("tls"), "{r:?}");
    let r = run_client(&net.spec(web(HttpProto::H3), "gosuslugi.ru", srv, None)).await;
    check(&r, Outcome::Failed);
}

#[tokio::test]
async fn voice_notes_go_up_and_come_back_intact() {
    let mut net = Net::new();
    let srv = net.start(ServerRole::Http, &["mmg.whatsapp.net"], None).await;
    let r = run_client(&net.spec(
        Params::VoiceNote(VoiceNoteParams::default()),
        "mmg.whatsapp.net",
        srv,
        None,
    ))
    .await;
    check(&r, Outcome::Ok);
    let Figures::VoiceNote(f) = &r.figures else { panic!() };
    assert!(f.uploaded && f.downloaded && f.intact && f.bytes == 90_000, "{f:?}");
    assert!(f.goodput_kbit.unwrap() > 0.0);
}

// Multi-threaded: the connection task and the client race, as in the harness's runtime (an
// HTTP/1.1 request sent before the previous exchange finished used to fail as "canceled").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_tiles_load_over_https_and_http3() {
    let mut net = Net::new();
    let srv = net
        .start(ServerRole::Http, &["tile.openstreetmap.org", "*.tile.openstreetmap.org"], None)
        .await;
    for proto in [HttpProto::Https, HttpProto::H3] {
        let r = run_client(&net.spec(web(proto), "a.tile.openstreetmap.org", srv, None)).await;
        check(&r, Outcome::Ok);
        let Figures::Web(f) = &r.figures else { panic!() };
        assert_eq!(
            (f.proto, f.objects_ok, f.failed_objects, f.bytes),
            (proto, 8, 0, 30_000 + 8 * 20_000)
        );
        assert!(f.complete_ms.is_some());
    }
}

#[tokio::test]
async fn video_keeps_up_over_https_and_http3() {
    let mut net = Net::new();
    let srv = net.start(ServerRole::Http, &["*.googlevideo.com"], None).await;
    for proto in [HttpProto::Https, HttpProto::H3] {
        let r = run_client(&net.spec(
            video(proto, 1_000_000),
            "rr1---sn-ab.googlevideo.com",
            srv,
            None,
        ))
        .await;
        check(&r, Outcome::Ok);
        let Figures::Video(f) = &r.figures else { panic!() };
        assert_eq!((f.chunks, f.chunks_ok, f.stalls), (4, 4, 0));
        assert!(f.keeps_up && f.throughput_kbit.unwrap() > 1000.0, "{f:?}");
    }
}

/// A TCP relay standing in for a censor on the path: forwards client bytes as they come,
/// and server bytes at `rate` bytes/s, or not at all after `freeze_after` bytes (the Russian
/// "16 KB" freeze: no RST, the data just stops).
async fn relay(
    to: SocketAddr,
    rate: Option<u64>,
    freeze_after: Option<u64>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind((LO, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((c, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let Ok(s) = TcpStream::connect(to).await else { return };
                let (mut cr, mut cw) = c.into_split();
                let (mut sr, mut sw) = s.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut buf = vec![0u8; 1024];
                let mut total = 0u64;
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    total += n as u64;
                    if freeze_after.is_some_and(|f| total > f) {
                        // Hold the connection open and say nothing.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    if let Some(r) = rate {
                        tokio::time::sleep(Duration::from_secs_f64(n as f64 / r as f64)).await;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_throttled_path_makes_video_stall() {
    let mut net = Net::new();
    let srv = net.start(ServerRole::Http, &["*.googlevideo.com"], None).await;
    // 400 kbit/s video through a path policed to ~128 kbit/s (16 kB/s), as YouTube over TLS in 2024.
    let (path, _t) = relay(srv, Some(16_000), None).await;
    let mut spec =
        net.spec(video(HttpProto::Https, 400_000), "rr1---sn-ab.googlevideo.com", path, None);
    spec.timeout = UDuration::from_secs(20);
    spec.request_timeout = Some(UDuration::from_secs(10));
    let r = run_client(&spec).await;
    check(&r, Outcome::Degraded);
    let Figures::Video(f) = &r.figures else { panic!() };
    assert!(!f.keeps_up && f.stalls >= 1, "{f:?}");
    assert!(f.throughput_kbit.unwrap() < 400.0, "{f:?}");
}

#[tokio::test]
async fn a_freeze_after_16kb_fails_the_map_and_the_voice_note() {
    let mut net = Net::new();
    let srv =
        net.start(ServerRole::Http, &["tile.openstreetmap.org", "mmg.whatsapp.net"], None).await;
    let (path, _t) = relay(srv, None, Some(16_000)).await;
    let mut spec = net.spec(web(HttpProto::Https), "tile.openstreetmap.org", path, None);
    spec.timeout = UDuration::from_secs(6);
    spec.request_timeout = Some(UDuration::from_secs(2));
    let r = run_client(&spec).await;
    check(&r, Outcome::Failed);
    assert!(r.error.as_deref().unwrap_or("").starts_with("timeout"), "{r:?}");
    let mut spec =
        net.spec(Params::VoiceNote(VoiceNoteParams::default()), "mmg.whatsapp.net", path, None);
    spec.timeout = UDuration::from_secs(6);
    spec.request_timeout = Some(UDuration::from_secs(2));
    check(&run_client(&spec).await, Outcome::Failed);
}

#[tokio::test]
async fn a_dead_chat_server_fails_without_panicking() {
    let net = Net::new();
    // Bind and drop: nothing listens on this port now.
    let port = TcpListener::bind((LO, 0)).await.unwrap().local_addr().unwrap().port();
    let r = run_client(&net.spec(chat(), "web.whatsapp.net", (LO, port).into(), None)).await;
    check(&r, Outcome::Failed);
    let spec = net.spec(chat(), "web.whatsapp.net", (LO, port).into(), Some((LO, port).into()));
    let mut spec = spec;
    spec.timeout = UDuration::from_secs(6);
    let r = run_client(&spec).await;
    check(&r, Outcome::Failed);
    assert!(r.error.as_deref().unwrap_or("").starts_with("dns"), "{r:?}");
}
