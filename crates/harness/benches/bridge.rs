//! Censor bridge throughput and latency, against kernel forwarding.
//!
//! On the default topology (caller - censor - wan - callee), UDP datagrams of 160 and of 1200
//! bytes go from caller to callee through the censor host, which is in turn:
//! - `kernel`: a Linux bridge (`br0`) with both veths as ports (no censor process);
//! - `pass-*`: the callwall censor (AF_PACKET bridge + engine) with a pass-everything policy
//!   and `inspect_packets = 0`: no classification at all, so the cost of DPI shows;
//! - `dpi-*`: the callwall censor with a realistic DPI policy (SNI of decrypted QUIC
//!   Initials, a DTLS fingerprint, STUN, the fully-encrypted test, WireGuard handshakes,
//!   policing on another port); the benchmark flow matches none of the rules, so every
//!   packet is classified and walks the whole chain.
//!
//! Each censor case runs with both receive paths of the bridge, in the same round: `*-mmsg`
//! (up to 64 frames per `recvmmsg` on every wake-up: the path before the ring) and `*-ring`
//! (the TPACKET_V3 ring, 256 KiB blocks, 1 ms block timeout); `dpi-ring4k` is the ring with
//! one-page blocks, handed over after a few frames, which separates the "fewer wake-ups"
//! lever from the ring's in-place reads. The censor also reports, per 1000 frames, its
//! wake-ups, receive batches (recvmmsg calls or ring blocks) and send syscalls, and the time
//! per frame spent in the engine.
//!
//! Per case and frame size: (a) a paced phase (one datagram every 250 us) gives the one-way
//! latency (send time in the payload; all namespaces share CLOCK_MONOTONIC), median and p99;
//! (b) a blast phase (a fixed number of datagrams, as fast as the sender can) gives what the
//! sender can offer and the delivered rate; (c) the no-drop rate (RFC 2544 section 26.1
//! throughput): a binary search over offered rates, each trial a paced train of
//! [`TRIAL_SECONDS`] at that rate, for the highest rate at which less than 0.1 % of the
//! datagrams are lost, with the one-way latency at that rate. The sender sends batches of
//! [`SEND_BATCH`] with `sendmmsg` and paces by sleeping while it is more than 200 us ahead, so
//! trains come in bursts of up to 200 us of packets. The censor's sockets buffer 8 MiB (about
//! 10,000 frames), so a rate above what it sustains could still pass a short trial with a
//! standing queue; a trial therefore also needs a median one-way latency under
//! [`MAX_MEDIAN_LATENCY`] (a deviation from RFC 2544, whose 60 s trials would overflow the
//! queue instead). A rate marked `>=` is the sender's own top rate: the path kept up even there.
//! The censor also reports its CPU time (user + system, `getrusage`) per frame it received:
//! the figure least disturbed by other load on a shared machine.
//!
//! Two cores only: sender, censor and receiver contend for them (and with whatever else runs),
//! so absolute rates move between runs; compare ratios against the kernel bridge measured in
//! the same round.
//!
//! Everything runs inside `spawn_sandboxed` (this binary re-executes itself: the sandbox's
//! PID 1 builds the network; the sender, receiver and censor are children in their hosts'
//! namespaces). Each round builds fresh networks; the table reports the median over rounds.
//!
//! `cargo bench -p callwall-harness --bench bridge [-- ROUNDS]` (default 3 rounds)

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callwall_censor::bridge::{BridgeIo, BridgeOptions, IoCounters};
use callwall_censor::policy::raw;
use callwall_harness::roles::{censor_main, CensorConfig};
use callwall_netns::{default_topology, spawn_sandboxed, Network, SandboxOptions};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const ROLE: &str = "CALLWALL_BRIDGE_BENCH_ROLE";
const ARG: &str = "CALLWALL_BRIDGE_BENCH_ARG";

const SIZES: [usize; 2] = [160, 1200];
const PORT: u16 = 9000;
const CALLEE: &str = "10.2.0.2";
/// First payload bytes: in none of the RFC 7983 ranges, so no classifier claims them.
const KIND_WARMUP: u8 = 0x57;
const KIND_MEASURE: u8 = 0x55;
const KIND_END: u8 = 0x5a;

const PACED_PACKETS: u64 = 4000;
const PACED_INTERVAL: Duration = Duration::from_micros(250);
const BLAST_PACKETS: u64 = 300_000;
/// Length of one no-drop trial.
const TRIAL_SECONDS: f64 = 2.0;
/// Datagrams per `sendmmsg` in the blast and the trials (one syscall per datagram would make
/// the sender, not the path, the bottleneck).
const SEND_BATCH: usize = 32;
/// Binary-search steps after the first trial at the sender's own top rate.
const SEARCH_STEPS: usize = 7;
/// Loss allowed at the no-drop rate: 1 in 1000.
const MAX_LOSS_PER_MILLE: u64 = 1;
/// Median one-way latency allowed at the no-drop rate: more means a standing queue.
const MAX_MEDIAN_LATENCY: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Kernel,
    /// The `recvmmsg` path (before the ring), no classification.
    PassMmsg,
    /// The `recvmmsg` path, full DPI chain.
    DpiMmsg,
    /// The TPACKET_V3 ring (default block size and timeout), no classification.
    PassRing,
    /// The ring, full DPI chain.
    DpiRing,
    /// The ring with one-page blocks: a block is handed over after a few frames, so about as
    /// many wake-ups as the mmsg path; isolates the "fewer wake-ups" lever from the ring's
    /// in-place reads.
    DpiRing4k,
}

impl Case {
    const ALL: [Case; 6] = [
        Case::Kernel,
        Case::PassMmsg,
        Case::DpiMmsg,
        Case::PassRing,
        Case::DpiRing,
        Case::DpiRing4k,
    ];
    const N: usize = Case::ALL.len() * SIZES.len();
    fn name(self) -> &'static str {
        match self {
            Case::Kernel => "kernel",
            Case::PassMmsg => "pass-mmsg",
            Case::DpiMmsg => "dpi-mmsg",
            Case::PassRing => "pass-ring",
            Case::DpiRing => "dpi-ring",
            Case::DpiRing4k => "dpi-ring4k",
        }
    }
    fn dpi(self) -> bool {
        matches!(self, Case::DpiMmsg | Case::DpiRing | Case::DpiRing4k)
    }
    fn bridge(self) -> BridgeOptions {
        let d = BridgeOptions::default();
        match self {
            Case::Kernel | Case::PassMmsg | Case::DpiMmsg => {
                BridgeOptions { io: BridgeIo::Mmsg, ..d }
            }
            Case::PassRing | Case::DpiRing => BridgeOptions { io: BridgeIo::Ring, ..d },
            Case::DpiRing4k => {
                BridgeOptions { io: BridgeIo::Ring, block_size: 4096, block_nr: 2048, ..d }
            }
        }
    }
}

/// One case's figures in one round.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    /// Highest offered rate with loss under 0.1 %, and the one-way latency at that rate.
    nodrop_pps: f64,
    nodrop_median_ns: u64,
    nodrop_p99_ns: u64,
    /// True when the no-drop rate is the sender's own top rate (the path may do more).
    sender_bound: bool,
    pps: f64,
    blast_sent: u64,
    blast_received: u64,
    median_ns: u64,
    p99_ns: u64,
    paced_received: u64,
    /// Censor CPU time per received frame (0 for the kernel bridge).
    cpu_ns_per_frame: u64,
    /// Per 1000 frames the censor received: wake-ups, receive batches (recvmmsg calls or
    /// ring blocks), send syscalls; and engine time per frame in ns.
    wakeups_pm: u64,
    rx_pm: u64,
    tx_pm: u64,
    engine_ns_per_frame: u64,
}

fn main() -> Result<()> {
    match std::env::var(ROLE).as_deref() {
        Ok("sandbox") => return sandbox(),
        Ok("censor") => return censor(),
        Ok("recv") => return receiver(),
        Ok("send") => return sender(),
        _ => {}
    }
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    callwall_netns::check_environment()?;
    println!(
        "censor bridge benchmark: UDP caller -> callee, {SIZES:?}-byte payloads; paced {PACED_PACKETS} x {PACED_INTERVAL:?}, blast {BLAST_PACKETS}, no-drop search {SEARCH_STEPS} steps of {TRIAL_SECONDS} s trials (loss < 0.1 %); {rounds} round(s)"
    );
    let mut all: Vec<[Figures; Case::N]> = Vec::new();
    for r in 1..=rounds {
        let figs = round()?;
        println!("round {r}:");
        print_table(&figs);
        all.push(figs);
    }
    println!("\nmedian over {rounds} round(s) (each figure's median):");
    let med: [Figures; Case::N] = std::array::from_fn(|i| Figures {
        nodrop_pps: median_f(all.iter().map(|f| f[i].nodrop_pps)),
        nodrop_median_ns: median_u(all.iter().map(|f| f[i].nodrop_median_ns)),
        nodrop_p99_ns: median_u(all.iter().map(|f| f[i].nodrop_p99_ns)),
        sender_bound: all.iter().any(|f| f[i].sender_bound),
        pps: median_f(all.iter().map(|f| f[i].pps)),
        blast_sent: median_u(all.iter().map(|f| f[i].blast_sent)),
        blast_received: median_u(all.iter().map(|f| f[i].blast_received)),
        median_ns: median_u(all.iter().map(|f| f[i].median_ns)),
        p99_ns: median_u(all.iter().map(|f| f[i].p99_ns)),
        paced_received: median_u(all.iter().map(|f| f[i].paced_received)),
        cpu_ns_per_frame: median_u(all.iter().map(|f| f[i].cpu_ns_per_frame)),
        wakeups_pm: median_u(all.iter().map(|f| f[i].wakeups_pm)),
        rx_pm: median_u(all.iter().map(|f| f[i].rx_pm)),
        tx_pm: median_u(all.iter().map(|f| f[i].tx_pm)),
        engine_ns_per_frame: median_u(all.iter().map(|f| f[i].engine_ns_per_frame)),
    });
    print_table(&med);
    let spread = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        format!("{:.2}x [{:.2}-{:.2}]", v[v.len() / 2], v[0], v[v.len() - 1])
    };
    for (si, size) in SIZES.iter().enumerate() {
        let k = si * Case::ALL.len();
        let mut line = format!("{size} B, no-drop / kernel, median [min-max] over rounds:");
        for (ci, c) in Case::ALL.iter().enumerate().skip(1) {
            let mut v: Vec<f64> =
                all.iter().map(|f| f[k + ci].nodrop_pps / f[k].nodrop_pps.max(1.0)).collect();
            line += &format!(" {} {}", c.name(), spread(&mut v));
        }
        println!("{line}");
        let ring = Case::ALL.iter().position(|c| *c == Case::DpiRing).unwrap_or(0);
        let rd = median_f(all.iter().map(|f| f[k + ring].nodrop_pps / f[k].nodrop_pps.max(1.0)));
        let mm = Case::ALL.iter().position(|c| *c == Case::DpiMmsg).unwrap_or(0);
        let mut v: Vec<f64> =
            all.iter().map(|f| f[k + ring].nodrop_pps / f[k + mm].nodrop_pps.max(1.0)).collect();
        println!(
            "{size} B: dpi-ring/kernel {rd:.2}x (target >= 0.80: {}); dpi-ring/dpi-mmsg {}",
            verdict(rd >= 0.8),
            spread(&mut v)
        );
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn print_table(f: &[Figures; Case::N]) {
    println!(
        "  {:5} {:10} {:>11} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>14} {:>8} {:>8} {:>8} {:>9}",
        "size",
        "case",
        "no-drop pps",
        "x kernel",
        "at: med us",
        "p99 us",
        "blast pps",
        "blast sent",
        "blast recv",
        "paced med",
        "paced p99",
        "censor cpu/frm",
        "wake/kfr",
        "rx/kfr",
        "tx/kfr",
        "engine ns"
    );
    for (i, x) in f.iter().enumerate() {
        let c = Case::ALL[i % Case::ALL.len()];
        let size = SIZES[i / Case::ALL.len()];
        let kernel = &f[i - i % Case::ALL.len()];
        let cpu = if c == Case::Kernel {
            "-".to_string()
        } else {
            format!("{:.2} us", x.cpu_ns_per_frame as f64 / 1e3)
        };
        let bound = if x.sender_bound { ">=" } else { "" };
        println!(
            "  {:5} {:10} {:>11} {:>8.2} {:>10.1} {:>10.1} {:>10.0} {:>10} {:>10} {:>9.1} {:>9.1} {:>14} {:>8} {:>8} {:>8} {:>9}",
            size,
            c.name(),
            format!("{bound}{:.0}", x.nodrop_pps),
            x.nodrop_pps / kernel.nodrop_pps.max(1.0),
            x.nodrop_median_ns as f64 / 1e3,
            x.nodrop_p99_ns as f64 / 1e3,
            x.pps,
            x.blast_sent,
            x.blast_received,
            x.median_ns as f64 / 1e3,
            x.p99_ns as f64 / 1e3,
            cpu,
            x.wakeups_pm,
            x.rx_pm,
            x.tx_pm,
            x.engine_ns_per_frame
        );
    }
}

fn median_f(it: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = it.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn median_u(it: impl Iterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = it.collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// One sandbox: every case and size, on fresh networks. Parses `RESULT` lines.
fn round() -> Result<[Figures; Case::N]> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(ROLE, "sandbox").stdout(Stdio::piped());
    let mut child = spawn_sandboxed(cmd, SandboxOptions::default())?;
    let out = child.stdout.take().ok_or("no stdout from the sandbox")?;
    let mut figs = [Figures::default(); Case::N];
    let mut seen = 0;
    for line in BufReader::new(out).lines() {
        let line = line?;
        let Some(rest) = line.strip_prefix("RESULT ") else {
            println!("  [sandbox] {line}");
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let size: usize = f.first().and_then(|s| s.parse().ok()).ok_or("bad line")?;
        let si = SIZES.iter().position(|s| *s == size).ok_or("bad size")?;
        let ci = Case::ALL.iter().position(|c| Some(&c.name()) == f.get(1)).ok_or("bad line")?;
        let n = |k: usize| f.get(k).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        figs[si * Case::ALL.len() + ci] = Figures {
            pps: n(2),
            blast_sent: n(3) as u64,
            blast_received: n(4) as u64,
            median_ns: n(5) as u64,
            p99_ns: n(6) as u64,
            paced_received: n(7) as u64,
            cpu_ns_per_frame: n(8) as u64,
            nodrop_pps: n(9),
            nodrop_median_ns: n(10) as u64,
            nodrop_p99_ns: n(11) as u64,
            sender_bound: n(12) > 0.0,
            wakeups_pm: n(13) as u64,
            rx_pm: n(14) as u64,
            tx_pm: n(15) as u64,
            engine_ns_per_frame: n(16) as u64,
        };
        seen += 1;
    }
    let st = child.wait()?;
    if !st.success() || seen != Case::N {
        return Err(format!("the sandbox failed ({st}) after {seen} of {} cases", Case::N).into());
    }
    Ok(figs)
}

// ---------- inside the sandbox ----------

fn sandbox() -> Result<()> {
    let topo = default_topology()?;
    let (censor_host, inside, outside) =
        topo.censor().ok_or("the default topology has no censor")?;
    let (censor_host, inside, outside) =
        (censor_host.to_string(), inside.to_string(), outside.to_string());
    let exe = std::env::current_exe()?;
    for size in SIZES {
        for case in Case::ALL {
            let mut net = Network::build(&topo)?;
            let mut censor: Option<Child> = None;
            match case {
                Case::Kernel => net.bridge_host(&censor_host)?,
                _ => {
                    let cfg = CensorConfig {
                        inside_if: inside.clone(),
                        outside_if: outside.clone(),
                        t0_unix_ns: unix_ns(),
                        seed: 1,
                        policy: policy(case)?,
                        hosts: callwall_scenario::host_map(&topo),
                        decisions: None,
                        pcap: None,
                        bridge: case.bridge(),
                        watch: Vec::new(),
                    };
                    let mut c = net
                        .command(&censor_host, &exe)?
                        .env(ROLE, "censor")
                        .env(ARG, serde_json::to_string(&cfg)?)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()?;
                    wait_ready(&mut c, "censor")?;
                    censor = Some(c);
                }
            }
            let paced = measure(&net, &exe, &format!("paced {size}"))?;
            let blast = measure(&net, &exe, &format!("blast {size}"))?;
            let pps = blast.received as f64 / (blast.rx_span_ns.max(1) as f64 / 1e9);
            let top = blast.sent as f64 / (blast.tx_span_ns.max(1) as f64 / 1e9);
            let nd = no_drop(&net, &exe, size, top)?;
            // The censor's CPU time (user + system) per frame it received, over all phases.
            let mut cpu_ns_per_frame = 0u64;
            let mut per_k = [0u64; 4];
            if let Some(mut c) = censor {
                drop(c.stdin.take()); // end of file: the censor stops and prints its report
                let out = c.wait_with_output()?;
                let text = String::from_utf8_lossy(&out.stdout);
                let report = text.lines().find(|l| l.starts_with('{')).unwrap_or("{}");
                let v: serde_json::Value = serde_json::from_str(report).unwrap_or_default();
                let b = &v["bridge"];
                let received =
                    b["received"][0].as_u64().unwrap_or(0) + b["received"][1].as_u64().unwrap_or(0);
                let cpu_ns = text
                    .lines()
                    .find_map(|l| l.strip_prefix("CPU_NS "))
                    .and_then(|x| x.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                cpu_ns_per_frame = cpu_ns / received.max(1);
                let io: IoCounters = serde_json::from_value(v["io"].clone()).unwrap_or_default();
                let r = received.max(1);
                per_k = [
                    io.wakeups * 1000 / r,
                    io.rx_batches * 1000 / r,
                    io.tx_calls * 1000 / r,
                    io.engine_ns / r,
                ];
                eprintln!(
                    "{size} {}: censor received {} sent {} send errors {} kernel drops {}; cpu {:.2} s",
                    case.name(),
                    b["received"],
                    b["sent"],
                    b["send_errors"],
                    b["kernel_drops"],
                    cpu_ns as f64 / 1e9
                );
            }
            println!(
                "RESULT {size} {} {pps:.0} {} {} {} {} {} {cpu_ns_per_frame} {:.0} {} {} {} {} {} {} {}",
                case.name(),
                blast.sent,
                blast.received,
                paced.median_ns,
                paced.p99_ns,
                paced.received,
                nd.pps,
                nd.median_ns,
                nd.p99_ns,
                u8::from(nd.sender_bound),
                per_k[0],
                per_k[1],
                per_k[2],
                per_k[3]
            );
            std::io::stdout().flush()?;
            net.teardown()?;
        }
    }
    Ok(())
}

struct NoDrop {
    pps: f64,
    median_ns: u64,
    p99_ns: u64,
    sender_bound: bool,
}

/// Binary search for the highest offered rate with loss under 0.1 % (RFC 2544 section 26.1),
/// between 0 and `top`, the rate the sender reached on its own in the blast.
fn no_drop(net: &Network, exe: &std::path::Path, size: usize, top: f64) -> Result<NoDrop> {
    let trial = |rate: f64| -> Result<Option<Measured>> {
        let n = ((rate * TRIAL_SECONDS) as u64).max(500);
        let m = measure(net, exe, &format!("rate {size} {rate:.0} {n}"))?;
        let lost = m.sent.saturating_sub(m.received);
        let ok = m.sent > 0
            && lost * 1000 <= m.sent * MAX_LOSS_PER_MILLE
            && m.median_ns <= MAX_MEDIAN_LATENCY.as_nanos() as u64;
        eprintln!(
            "{size} trial {rate:.0} pps: sent {} received {} median {} us",
            m.sent,
            m.received,
            m.median_ns / 1000
        );
        Ok(ok.then_some(m))
    };
    // The rate a trial really offered (the sender may fall behind its schedule).
    let offered =
        |m: &Measured, nominal: f64| nominal.min(m.sent as f64 * 1e9 / m.tx_span_ns.max(1) as f64);
    if let Some(m) = trial(top)? {
        return Ok(NoDrop {
            pps: offered(&m, top),
            median_ns: m.median_ns,
            p99_ns: m.p99_ns,
            sender_bound: true,
        });
    }
    let (mut lo, mut hi) = (0.0f64, top);
    let mut best = NoDrop { pps: 0.0, median_ns: 0, p99_ns: 0, sender_bound: false };
    for _ in 0..SEARCH_STEPS {
        let mid = (lo + hi) / 2.0;
        match trial(mid)? {
            Some(m) => {
                lo = mid;
                best = NoDrop {
                    pps: offered(&m, mid),
                    median_ns: m.median_ns,
                    p99_ns: m.p99_ns,
                    sender_bound: false,
                };
            }
            None => hi = mid,
        }
    }
    Ok(best)
}

struct Measured {
    median_ns: u64,
    p99_ns: u64,
    received: u64,
    rx_span_ns: u64,
    sent: u64,
    tx_span_ns: u64,
}

/// Runs a receiver in the callee and a sender in the caller for one phase.
fn measure(net: &Network, exe: &std::path::Path, phase: &str) -> Result<Measured> {
    let mut rx = net.command("callee", exe)?.env(ROLE, "recv").stdout(Stdio::piped()).spawn()?;
    wait_ready(&mut rx, "receiver")?;
    let tx = net.command("caller", exe)?.env(ROLE, "send").env(ARG, phase).output()?;
    if !tx.status.success() {
        // On a saturated machine the warm-up can time out: the trial counts as failed
        // (nothing sent) instead of ending the whole round.
        eprintln!(
            "{phase}: sender failed, trial counted as failed: {}",
            String::from_utf8_lossy(&tx.stderr).trim()
        );
        let _ = rx.kill();
        let _ = rx.wait();
        return Ok(Measured {
            median_ns: 0,
            p99_ns: 0,
            received: 0,
            rx_span_ns: 0,
            sent: 0,
            tx_span_ns: 0,
        });
    }
    let tx_out = String::from_utf8_lossy(&tx.stdout);
    let mut t = tx_out.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
    let (sent, tx_span_ns) = (t.next().unwrap_or(0), t.next().unwrap_or(0));
    let out = rx.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().find_map(|l| l.strip_prefix("RECV ")).ok_or("receiver gave no result")?;
    let v: Vec<u64> = line.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    let g = |i: usize| v.get(i).copied().unwrap_or(0);
    Ok(Measured {
        median_ns: g(1),
        p99_ns: g(2),
        received: g(0),
        rx_span_ns: g(3),
        sent,
        tx_span_ns,
    })
}

fn wait_ready(c: &mut Child, what: &str) -> Result<()> {
    let out = c.stdout.as_mut().ok_or("no stdout")?;
    // Read byte by byte so nothing after "ready" is consumed here.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match std::io::Read::read(out, &mut b)? {
            0 => return Err(format!("{what} exited before it was ready").into()),
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

fn policy(case: Case) -> Result<raw::Policy> {
    let v = match case {
        Case::Kernel => serde_json::json!({ "default": "pass" }),
        c if !c.dpi() => serde_json::json!({ "default": "pass", "inspect_packets": 0 }),
        _ => serde_json::json!({
            "default": "pass",
            "rules": [
                { "name": "quic-sni", "match": { "proto": "udp", "label": ["quic-initial"],
                  "sni": ["*.whatsapp.net", "*.telegram.org", "*.signal.org"] }, "action": "drop" },
                { "name": "dtls-fingerprint", "match": { "proto": "udp",
                  "dtls_fingerprint": ["0123456789abcdef"] }, "action": "drop" },
                { "name": "stun-police", "match": { "label": ["stun", "turn-channel-data"] },
                  "action": { "police": "64kbit" } },
                { "name": "fully-encrypted", "match": { "proto": "tcp",
                  "first_label": ["fully-encrypted"] }, "action": "drop" },
                { "name": "wireguard", "match": { "label": ["wireguard-handshake"] },
                  "action": "drop" },
                { "name": "police-5000", "match": { "proto": "udp", "server_port": "5000-5100" },
                  "action": { "police": "128kbit" } }
            ]
        }),
    };
    Ok(serde_json::from_value(v)?)
}

fn censor() -> Result<()> {
    let cfg: CensorConfig = serde_json::from_str(&std::env::var(ARG)?)?;
    censor_main(cfg)?;
    // SAFETY: ru is a valid rusage to write into.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    println!("CPU_NS {}", ns(ru.ru_utime) + ns(ru.ru_stime));
    Ok(())
}

/// Sends `bufs` on the connected socket with `sendmmsg`; returns how many went out.
fn send_batch(sock: &UdpSocket, bufs: &mut [Vec<u8>]) -> u64 {
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() })
        .collect();
    // SAFETY: an all-zero mmsghdr is valid (no name, no control data).
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: msgs points at live iovecs over live buffers for the duration of the call.
    let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as u32, 0) };
    r.max(0) as u64
}

fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn set_buf(sock: &UdpSocket, opt: libc::c_int) {
    let v: libc::c_int = 16 << 20;
    // SAFETY: v is a live c_int; a failure only leaves the default size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
}

/// Most one-way latencies a receiver keeps (the first ones of a phase).
const LATENCY_SAMPLES: usize = 1 << 20;

/// Counts datagrams until the end marker (or 2 s of silence); prints
/// `RECV received median_ns p99_ns span_ns`.
fn receiver() -> Result<()> {
    let sock = UdpSocket::bind(SocketAddr::new(CALLEE.parse()?, PORT))?;
    set_buf(&sock, libc::SO_RCVBUFFORCE);
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    println!("ready");
    std::io::stdout().flush()?;
    let mut buf = [0u8; 2048];
    let mut lat = Vec::with_capacity(LATENCY_SAMPLES);
    let (mut n, mut first, mut last) = (0u64, 0u64, 0u64);
    let mut idle_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let (len, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) if idle_since.elapsed() > Duration::from_secs(2) => break,
            Err(_) => continue,
        };
        idle_since = Instant::now();
        if len < 17 {
            continue;
        }
        match buf[0] {
            KIND_WARMUP => {
                let _ = sock.send_to(&buf[..1], from);
            }
            KIND_END => break,
            KIND_MEASURE => {
                let now = mono_ns();
                let sent = u64::from_be_bytes(buf[9..17].try_into()?);
                if n == 0 {
                    first = now;
                }
                last = now;
                n += 1;
                if lat.len() < LATENCY_SAMPLES {
                    lat.push(now.saturating_sub(sent));
                }
            }
            _ => {}
        }
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!("RECV {n} {} {} {}", pct(0.5), pct(0.99), last.saturating_sub(first));
    Ok(())
}

/// Sends warm-up datagrams, then the phase's datagrams, then end markers; prints the count
/// and how long sending took. Phases: `paced SIZE`, `blast SIZE`, `rate SIZE PPS COUNT`.
fn sender() -> Result<()> {
    let arg = std::env::var(ARG)?;
    let words: Vec<&str> = arg.split_whitespace().collect();
    let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok()).unwrap_or(0);
    let (phase, size) = (words.first().copied().unwrap_or(""), num(1) as usize);
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    set_buf(&sock, libc::SO_SNDBUFFORCE);
    sock.connect(SocketAddr::new(CALLEE.parse()?, PORT))?;
    let mut p = vec![0u8; size.max(17)];
    // Warm-up until the path works both ways (ARP, bridge ports, the censor's flow entry
    // and classification): the receiver echoes warm-up datagrams; 20 echoes are enough.
    p[0] = KIND_WARMUP;
    sock.set_read_timeout(Some(Duration::from_millis(10)))?;
    let (mut echoes, give_up) = (0, Instant::now() + Duration::from_secs(30));
    while echoes < 20 {
        if Instant::now() > give_up {
            return Err("no echo from the receiver within 30 s: the path does not work".into());
        }
        let _ = sock.send(&p);
        let mut b = [0u8; 64];
        if sock.recv(&mut b).is_ok() {
            echoes += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(20));
    p[0] = KIND_MEASURE;
    let mut sent = 0u64;
    let (count, interval) = match phase {
        "paced" => (PACED_PACKETS, Some(PACED_INTERVAL)),
        "rate" => (num(3), Some(Duration::from_nanos(1_000_000_000 / num(2).max(1)))),
        _ => (BLAST_PACKETS, None),
    };
    let start = Instant::now();
    if phase == "paced" {
        for seq in 0..count {
            let due = start + PACED_INTERVAL * seq as u32;
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            p[1..9].copy_from_slice(&seq.to_be_bytes());
            p[9..17].copy_from_slice(&mono_ns().to_be_bytes());
            if sock.send(&p).is_ok() {
                sent += 1;
            }
        }
    } else {
        let mut batch = vec![p.clone(); SEND_BATCH];
        let mut seq = 0u64;
        while seq < count {
            let n = (count - seq).min(SEND_BATCH as u64) as usize;
            if let Some(iv) = interval {
                let due = start + iv * seq as u32;
                // Sleep only when more than 200 us ahead: a sleep costs ~60 us on its own.
                if let Some(d) = due.checked_duration_since(Instant::now()) {
                    if d > Duration::from_micros(200) {
                        std::thread::sleep(d);
                    }
                }
            }
            let now = mono_ns();
            for (k, b) in batch[..n].iter_mut().enumerate() {
                b[1..9].copy_from_slice(&(seq + k as u64).to_be_bytes());
                b[9..17].copy_from_slice(&now.to_be_bytes());
            }
            // A full socket buffer (ENOBUFS/EAGAIN) is a lost send, as on a real host.
            sent += send_batch(&sock, &mut batch[..n]);
            seq += n as u64;
        }
    }
    let span = start.elapsed().as_nanos() as u64;
    std::thread::sleep(Duration::from_millis(200));
    p[0] = KIND_END;
    for _ in 0..20 {
        let _ = sock.send(&p);
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("{sent} {span}");
    Ok(())
}
