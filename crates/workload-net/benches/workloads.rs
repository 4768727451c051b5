//! The workloads' own cost on loopback: each of the four kinds against its real server, with
//! the wall time over its nominal time (the time the activity needs by construction, e.g.
//! count x interval for messages) and the CPU time it cost this process (client and server
//! together), as ratios measured in the same run. `cargo bench -p callwall-workload-net`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use callwall_units::{Bytes, Duration as UDuration, Rate};
use callwall_workload::{
    HttpProto, MessageParams, Params, VideoParams, VoiceNoteParams, WebParams,
};
use callwall_workload_net::{run_client, ClientSpec, RunCa, Server, ServerConfig, ServerRole};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// CPU time (user + system) of this process so far, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime); field 3 (state) is the first after the command name.
    let field = |i: usize| f.get(i - 3).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(14) + field(15);
    Duration::from_millis(ticks * 10)
}

async fn start(ca: &RunCa, role: ServerRole, name: &str) -> SocketAddr {
    let identity = Some(ca.issue(&[name.to_string()]).expect("certificate"));
    let s = Server::bind(ServerConfig { role, listen: LO, port: Some(0), identity, zone: None })
        .await
        .expect("bind");
    let a = s.local_addr().expect("addr");
    tokio::spawn(s.run());
    a
}

#[tokio::main]
async fn main() {
    let ca = RunCa::generate().expect("ca");
    let msg = start(&ca, ServerRole::Message, "web.whatsapp.net").await;
    let http = start(&ca, ServerRole::Http, "bench.example.org").await;
    let cases: Vec<(&str, Params, SocketAddr, &str, Duration)> = vec![
        (
            "message 20 x 200B / 50ms",
            Params::Message(MessageParams {
                count: 20,
                size: Bytes::new(200),
                interval: UDuration::from_millis(50),
            }),
            msg,
            "web.whatsapp.net",
            Duration::from_millis(950),
        ),
        (
            "voice-note 30s @ 24kbit",
            Params::VoiceNote(VoiceNoteParams::default()),
            http,
            "bench.example.org",
            Duration::ZERO,
        ),
        (
            "web 30KB + 12 x 20KB https",
            Params::Web(WebParams::default()),
            http,
            "bench.example.org",
            Duration::ZERO,
        ),
        (
            "web 30KB + 12 x 20KB h3",
            Params::Web(WebParams { proto: HttpProto::H3, ..Default::default() }),
            http,
            "bench.example.org",
            Duration::ZERO,
        ),
        (
            "video 4s @ 1mbit h3",
            Params::Video(VideoParams {
                bitrate: Rate::from_bits_per_sec(1_000_000),
                duration: UDuration::from_secs(4),
                chunk: UDuration::from_secs(1),
                proto: HttpProto::H3,
            }),
            http,
            "bench.example.org",
            Duration::ZERO,
        ),
    ];
    println!(
        "{:<28} {:>8} {:>10} {:>8} {:>9}  outcome",
        "workload", "wall ms", "nominal ms", "cpu ms", "cpu/wall"
    );
    for (label, params, addr, name, nominal) in cases {
        let spec = ClientSpec {
            name: "bench".into(),
            app: "bench".into(),
            params,
            server_name: name.into(),
            port: Some(addr.port()),
            resolver: None,
            server_addr: Some(addr.ip()),
            ca_pem: ca.cert_pem(),
            start_at_unix_ns: 0,
            timeout: UDuration::from_secs(30),
            request_timeout: None,
        };
        // Short workloads are repeated so the 10 ms CPU clock resolves them; figures per run.
        let reps: u32 = if nominal.is_zero() { 50 } else { 2 };
        let (c0, t0) = (cpu_time(), Instant::now());
        let mut r = run_client(&spec).await;
        for _ in 1..reps {
            r = run_client(&spec).await;
        }
        let (cpu, wall) = ((cpu_time() - c0) / reps, t0.elapsed() / reps);
        println!(
            "{label:<28} {:>8.1} {:>10.1} {:>8.1} {:>9.3}  {}",
            wall.as_secs_f64() * 1e3,
            nominal.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3,
            cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            r.outcome
        );
        if let Some(e) = &r.error {
            println!("  error: {e}");
        }
    }
}
