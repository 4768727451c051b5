//! The censor's policer against the kernel's token bucket (`sch_tbf`), side by side.
//!
//! One TCP bulk transfer (real sockets: a listener in `callee`, a client in `caller`, the
//! default topology) runs for [`SECONDS`] through the censor host, at each rate of [`RATES`],
//! each round-trip time of [`RTTS_MS`] and in both directions (`up`: caller sends, `down`:
//! callee sends), once through each of:
//! - `callwall`: the censor with one rule `{ police = RATE, burst = B, delay = RTT/2 }` on the
//!   flow (policing per flow and direction, then the delay, in both directions);
//! - `kernel`: the censor with `{ delay = RTT/2 }` only, and on the `wan` router
//!   `tc qdisc replace dev IF root tbf rate RATE burst B limit 1514` on both of its
//!   interfaces on the path (towards `callee` and towards the censor), so both directions are
//!   token-bucketed as the censor's policer does.
//!
//! The bucket `B` is the censor's default for the rate
//! ([`callwall_censor::policy::default_burst`]), the same on both sides. The tbf `limit` is
//! one full Ethernet frame (1514 B), the smallest queue that still accepts a full-size
//! packet: tbf then drops every packet that arrives while one is already waiting for tokens,
//! which is the closest a queueing discipline comes to a policer (the one waiting packet is
//! delayed by at most 1514 B at the rate instead of dropped: 190 ms at 64 kbit/s, 1.5 ms at
//! 8 Mbit/s). A limit of `burst + MTU` would let a whole bucket's worth queue, i.e. shape
//! instead of police. tbf counts Ethernet frame bytes (IP + 14), the censor IP bytes: the
//! kernel's rate is in effect 0.9 % lower for full-size segments.
//!
//! Goodput is what the receiving socket read in the [`SECONDS`] after the connection was
//! established, in kbit/s; the ratio is callwall / kernel for the same case. Target: within
//! ±15 % at every rate, RTT and direction (issue 24). TCP is CUBIC, the kernel default; offloads
//! are off on every veth (the topology's rule), so segments are at most one MTU.
//!
//! Everything runs inside `spawn_sandboxed` (this binary re-executes itself: the sandbox's
//! PID 1 builds one network and runs every case on it; the censor is a child in its host).
//! Two cores are shared with whatever else runs: figures move between rounds, so the table
//! reports the median over rounds.
//!
//! `cargo bench -p callwall-harness --bench police [-- ROUNDS [SECONDS]]` (default 1 round,
//! 8 s per transfer: 60 transfers, about 10 minutes).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callwall_censor::policy::{default_burst, raw};
use callwall_harness::roles::{censor_main, CensorConfig};
use callwall_netns::{default_topology, spawn_sandboxed, Network, SandboxOptions};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const ROLE: &str = "CALLWALL_POLICE_BENCH_ROLE";
const ARG: &str = "CALLWALL_POLICE_BENCH_ARG";

/// Policed rates in kbit/s.
const RATES: [u64; 5] = [64, 256, 1000, 4000, 8000];
/// Round-trip times the censor adds (half each way).
const RTTS_MS: [u64; 3] = [0, 50, 100];
const DIRS: [&str; 2] = ["up", "down"];
const IMPLS: [&str; 2] = ["callwall", "kernel"];
/// Seconds of each transfer (the default; the second argument overrides it).
const SECONDS: f64 = 8.0;
const CALLEE: &str = "10.2.0.2";
const PORT: u16 = 5201;
/// The tbf queue: one full Ethernet frame.
const TBF_LIMIT: u64 = 1514;
/// Target: callwall / kernel within this fraction of 1.
const TOLERANCE: f64 = 0.15;

/// One case: (rate index, rtt index, direction index, implementation index).
type Key = (usize, usize, usize, usize);

fn main() -> Result<()> {
    match std::env::var(ROLE).as_deref() {
        Ok("sandbox") => return sandbox(),
        Ok("censor") => {
            let cfg: CensorConfig = serde_json::from_str(&std::env::var(ARG)?)?;
            return Ok(censor_main(cfg)?);
        }
        _ => {}
    }
    let nums: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = nums.first().map_or(1, |r| (*r as usize).max(1));
    let seconds = nums.get(1).copied().unwrap_or(SECONDS).max(1.0);
    callwall_netns::check_environment()?;
    println!(
        "policer benchmark: one TCP bulk transfer of {seconds} s per case; rates {RATES:?} kbit/s, RTT {RTTS_MS:?} ms, up and down; callwall police vs tc tbf (limit {TBF_LIMIT} B), same burst; {rounds} round(s)"
    );
    let mut all: Vec<std::collections::BTreeMap<Key, f64>> = Vec::new();
    for r in 1..=rounds {
        let figs = round(seconds)?;
        if rounds > 1 {
            println!("round {r}:");
            print_table(&figs);
        }
        all.push(figs);
    }
    let mut med = std::collections::BTreeMap::new();
    for k in all[0].keys() {
        let mut v: Vec<f64> = all.iter().filter_map(|f| f.get(k).copied()).collect();
        v.sort_by(f64::total_cmp);
        med.insert(*k, v[v.len() / 2]);
    }
    if rounds > 1 {
        println!("\nmedian over {rounds} rounds:");
    }
    let (met, total) = print_table(&med);
    println!(
        "callwall / kernel within ±{:.0} %: {met} of {total} cases ({})",
        TOLERANCE * 100.0,
        if met == total { "target met" } else { "target MISSED" }
    );
    Ok(())
}

/// Prints the table; returns (cases within tolerance, cases).
fn print_table(f: &std::collections::BTreeMap<Key, f64>) -> (usize, usize) {
    println!(
        "  {:>9} {:>7} {:>4} {:>8} {:>13} {:>13} {:>8} {:>8}",
        "rate", "RTT ms", "dir", "burst B", "callwall kb/s", "kernel kb/s", "ratio", "cw/rate"
    );
    let (mut met, mut total) = (0, 0);
    for (ri, rate) in RATES.iter().enumerate() {
        for (ti, rtt) in RTTS_MS.iter().enumerate() {
            for (di, dir) in DIRS.iter().enumerate() {
                let (Some(cw), Some(k)) = (f.get(&(ri, ti, di, 0)), f.get(&(ri, ti, di, 1))) else {
                    continue;
                };
                let ratio = cw / k.max(1e-9);
                total += 1;
                let ok = (ratio - 1.0).abs() <= TOLERANCE;
                met += usize::from(ok);
                println!(
                    "  {:>9} {:>7} {:>4} {:>8} {:>13.1} {:>13.1} {:>8.2} {:>8.2}{}",
                    format!("{rate}kbit"),
                    rtt,
                    dir,
                    default_burst(rate * 1000 / 8),
                    cw,
                    k,
                    ratio,
                    cw / *rate as f64,
                    if ok { "" } else { "  <- outside ±15 %" }
                );
            }
        }
    }
    (met, total)
}

/// One sandbox: every case on one network. Parses `RESULT ri ti di ii kbps` lines.
fn round(seconds: f64) -> Result<std::collections::BTreeMap<Key, f64>> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(ROLE, "sandbox").env(ARG, seconds.to_string()).stdout(Stdio::piped());
    let mut child = spawn_sandboxed(cmd, SandboxOptions::default())?;
    let out = child.stdout.take().ok_or("no stdout from the sandbox")?;
    let mut figs = std::collections::BTreeMap::new();
    for line in BufReader::new(out).lines() {
        let line = line?;
        let Some(rest) = line.strip_prefix("RESULT ") else {
            println!("  [sandbox] {line}");
            continue;
        };
        let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if f.len() != 5 {
            return Err(format!("bad result line {line:?}").into());
        }
        figs.insert((f[0] as usize, f[1] as usize, f[2] as usize, f[3] as usize), f[4]);
    }
    let st = child.wait()?;
    let want = RATES.len() * RTTS_MS.len() * DIRS.len() * IMPLS.len();
    if !st.success() || figs.len() != want {
        return Err(
            format!("the sandbox failed ({st}) after {} of {want} cases", figs.len()).into()
        );
    }
    Ok(figs)
}

// ---------- inside the sandbox ----------

fn sandbox() -> Result<()> {
    let seconds: f64 = std::env::var(ARG)?.parse()?;
    let topo = default_topology()?;
    let (censor_host, inside, outside) =
        topo.censor().ok_or("the default topology has no censor")?;
    let (censor_host, inside, outside) =
        (censor_host.to_string(), inside.to_string(), outside.to_string());
    // The router's interfaces on the path: towards the callee and towards the censor.
    let wan_ifs = ["callee", censor_host.as_str()];
    let exe = std::env::current_exe()?;
    let net = Network::build(&topo)?;
    for (ri, rate) in RATES.iter().enumerate() {
        let burst = default_burst(rate * 1000 / 8);
        for (ti, rtt) in RTTS_MS.iter().enumerate() {
            for (di, dir) in DIRS.iter().enumerate() {
                for (ii, imp) in IMPLS.iter().enumerate() {
                    let kernel = *imp == "kernel";
                    let cfg = CensorConfig {
                        inside_if: inside.clone(),
                        outside_if: outside.clone(),
                        t0_unix_ns: unix_ns(),
                        seed: 1,
                        policy: policy(*rate, burst, *rtt, kernel)?,
                        hosts: callwall_scenario::host_map(&topo),
                        decisions: None,
                        pcap: None,
                        bridge: Default::default(),
                        watch: Vec::new(),
                    };
                    let mut censor = net
                        .command(&censor_host, &exe)?
                        .env(ROLE, "censor")
                        .env(ARG, serde_json::to_string(&cfg)?)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()?;
                    wait_ready(&mut censor)?;
                    if kernel {
                        for dev in wan_ifs {
                            tc(&net, &format!(
                                "qdisc replace dev {dev} root tbf rate {rate}kbit burst {burst} limit {TBF_LIMIT}"
                            ))?;
                        }
                    }
                    let port = PORT + (ri * 100 + ti * 10 + di * 2 + ii) as u16;
                    let kbps = transfer(&net, port, *dir == "up", seconds)?;
                    if kernel {
                        for dev in wan_ifs {
                            tc(&net, &format!("qdisc del dev {dev} root"))?;
                        }
                    }
                    drop(censor.stdin.take()); // end of file: the censor stops
                    let _ = censor.wait_with_output()?;
                    eprintln!("{rate}kbit rtt {rtt}ms {dir} {imp} burst {burst}: {kbps:.1} kbit/s");
                    println!("RESULT {ri} {ti} {di} {ii} {kbps:.3}");
                    std::io::stdout().flush()?;
                }
            }
        }
    }
    net.teardown()?;
    Ok(())
}

/// Runs `tc ARGS` in the `wan` router.
fn tc(net: &Network, args: &str) -> Result<()> {
    let out = net.command("wan", "tc")?.args(args.split_whitespace()).output()?;
    if !out.status.success() {
        return Err(format!("tc {args}: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(())
}

/// One TCP connection from caller to callee:`port`; the sender (caller if `up`) writes as
/// fast as it can; the receiver counts what it reads for `seconds` from the moment the
/// connection is established. Returns the goodput in kbit/s.
fn transfer(net: &Network, port: u16, up: bool, seconds: f64) -> Result<f64> {
    let at: SocketAddr = format!("{CALLEE}:{port}").parse()?;
    let listener: TcpListener = net.run_in("callee", || TcpListener::bind(at))??;
    let server = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let client: TcpStream =
        net.run_in("caller", || TcpStream::connect_timeout(&at, Duration::from_secs(10)))??;
    let server = server.join().map_err(|_| "accept thread panicked")??;
    let (tx, rx) = if up { (client, server) } else { (server, client) };
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let sender = std::thread::spawn(move || {
        let mut tx = tx;
        let _ = tx.set_write_timeout(Some(Duration::from_millis(100)));
        let buf = vec![0x5au8; 64 * 1024];
        while !stop2.load(Ordering::Relaxed) {
            match tx.write(&buf) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    });
    let mut rx = rx;
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        rx.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match rx.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("receiving: {e}").into()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = rx.shutdown(std::net::Shutdown::Both);
    drop(rx);
    sender.join().map_err(|_| "sender thread panicked")?;
    Ok(bytes as f64 * 8.0 / seconds / 1000.0)
}

fn wait_ready(c: &mut Child) -> Result<()> {
    let out = c.stdout.as_mut().ok_or("no stdout")?;
    // Read byte by byte so nothing after "ready" is consumed here.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match out.read(&mut b)? {
            0 => return Err("the censor exited before it was ready".into()),
            _ if b[0] == b'\n' => {
                if line == b"ready" {
                    return Ok(());
                }
                line.clear();
            }
            _ => line.push(b[0]),
        }
    }
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The censor's policy: police (callwall) and the delay, or the delay alone (kernel).
fn policy(rate_kbit: u64, burst: u64, rtt_ms: u64, kernel: bool) -> Result<raw::Policy> {
    let mut action = serde_json::Map::new();
    if !kernel {
        action.insert("police".into(), format!("{rate_kbit}kbit").into());
        action.insert("burst".into(), format!("{burst}B").into());
    }
    if rtt_ms > 0 {
        // Half the round trip each way, in microseconds so odd RTTs stay exact.
        action.insert("delay".into(), format!("{}us", rtt_ms * 500).into());
    }
    let action = if action.is_empty() {
        serde_json::json!("pass")
    } else {
        serde_json::Value::Object(action)
    };
    let v = serde_json::json!({
        "default": "pass",
        "rules": [
            { "name": "bulk", "match": { "proto": "tcp", "server_port": format!("{PORT}-{}", PORT + 999) },
              "action": action }
        ]
    });
    Ok(serde_json::from_value(v)?)
}
