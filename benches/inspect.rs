//! `callwall inspect` against nDPI's `ndpiReader` on the same capture, in one run.
//!
//! The capture is generated here from the real captures committed under `tests/data/captures`
//! and `crates/wire/testdata` (WebRTC direct and over TURN, QUIC, Noise, DTLS, TLS): every
//! frame of every template is copied many times with its IPv4 addresses rewritten per copy
//! (header checksum recomputed), so each copy is a new set of flows. The file goes to a
//! directory under `target/` that the benchmark deletes afterwards.
//!
//! Measured per reader: wall time, throughput, packets and flows per second, and peak resident
//! memory (`wait4` rusage of the child). Then the bounded-memory check: a larger capture
//! (default 10 GiB) is generated straight into a pipe to `callwall inspect --json -` (standard
//! input, nothing on disk) and its peak RSS is reported against the 64 MiB budget.
//!
//! `cargo bench --bench inspect [-- FILE_MIB [PIPE_MIB]]` (defaults 1024 and 10240). Needs
//! `ndpiReader` (Debian `libndpi-bin`, installed by `make bench`). Two cores shared with
//! other work: compare the ratio, not the absolute rates. With `CALLWALL_INSPECT_BASELINE` set
//! to another build of `callwall`, that build reads the same file too (a before/after ratio).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use callwall_wire::pcap::{self, PcapReader, PcapWriter};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const TEMPLATES: [&str; 10] = [
    "tests/data/captures/webrtc-direct.pcap",
    "tests/data/captures/webrtc-turn-tcp.pcap",
    "tests/data/captures/webrtc-turn-tls.pcap",
    "tests/data/captures/quic-443.pcap",
    "tests/data/captures/quic-split.pcap",
    "tests/data/captures/quic.pcap",
    "tests/data/captures/noise-udp-wg.pcap",
    "crates/wire/testdata/dtls-openssl.pcapng",
    "crates/wire/testdata/tls-openssl.pcap",
    "crates/wire/testdata/quic-aioquic.pcap",
];

/// Ethernet frames of every template, with their time offsets and the template index.
struct Template {
    frames: Vec<(u64, Vec<u8>)>,
    bytes: usize,
}

fn load_templates() -> Result<Template> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut frames = Vec::new();
    for name in TEMPLATES {
        let file = std::fs::read(root.join(name))?;
        let mut t0 = None;
        let mut scratch = Vec::new();
        for rec in PcapReader::new(&file)? {
            let rec = rec?;
            let Some(eth) = pcap::to_ethernet(rec.linktype, rec.data, &mut scratch) else {
                continue;
            };
            // IPv4 without VLAN only: the rewrite below needs fixed offsets.
            if eth.len() < 34 || eth[12..14] != [0x08, 0x00] {
                continue;
            }
            let t = rec.timestamp_ns - *t0.get_or_insert(rec.timestamp_ns);
            frames.push((t, eth.to_vec()));
        }
    }
    let bytes = frames.iter().map(|(_, f)| f.len() + 16).sum();
    Ok(Template { frames, bytes })
}

/// Writes copies of the templates until `limit` bytes; returns (packets, copies).
fn generate(t: &Template, out: impl Write, limit: u64) -> Result<(u64, u64)> {
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, out))?;
    let (mut written, mut packets, mut copy) = (24u64, 0u64, 0u64);
    let mut f = Vec::with_capacity(2048);
    while written < limit {
        let (hi, lo) = ((copy >> 8) as u8, copy as u8);
        for (t, frame) in &t.frames {
            f.clear();
            f.extend_from_slice(frame);
            // Source and destination 10.x.y.z -> 10.hi.lo.z (RFC 791 header checksum again).
            f[27] = hi;
            f[28] = lo;
            f[31] = hi;
            f[32] = lo;
            let ihl = usize::from(f[14] & 0x0f) * 4;
            f[24] = 0;
            f[25] = 0;
            let sum = callwall_wire::packet::build::checksum(0, &f[14..14 + ihl]);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
            w.write_frame(1_700_000_000_000_000_000 + copy * 1_000_000 + t, &f)?;
            written += 16 + f.len() as u64;
            packets += 1;
        }
        copy += 1;
    }
    w.flush()?;
    Ok((packets, copy))
}

struct Run {
    wall_s: f64,
    max_rss_kib: i64,
    ok: bool,
    stdout: String,
}

/// Runs `cmd` to completion; wall time and peak RSS from `wait4`.
fn run(mut cmd: Command, feed: Option<(&Template, u64)>) -> Result<Run> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    if feed.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let stdin = child.stdin.take();
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::copy(&mut stdout, &mut s);
        // Keep only the tail: the summary lines.
        let tail = s.len().saturating_sub(4096);
        String::from_utf8_lossy(&s[tail..]).into_owned()
    });
    if let (Some((t, limit)), Some(pipe)) = (feed, stdin) {
        generate(t, pipe, limit)?;
    }
    let mut status = 0;
    // SAFETY: rusage is plain data for wait4 to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the child's pid is ours to wait for; status and ru are valid pointers.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let wall_s = start.elapsed().as_secs_f64();
    if r < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let stdout = reader.join().map_err(|_| "stdout reader panicked")?;
    Ok(Run {
        wall_s,
        max_rss_kib: ru.ru_maxrss,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout,
    })
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let file_mib = args.first().copied().unwrap_or(1024);
    let pipe_mib = args.get(1).copied().unwrap_or(10240);
    let callwall = env!("CARGO_BIN_EXE_callwall");
    let ndpi = ["/usr/bin/ndpiReader", "/usr/sbin/ndpiReader"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("ndpiReader not found: install Debian libndpi-bin (make bench does)")?;
    let t = load_templates()?;
    let dir = Dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect-bench"));
    std::fs::create_dir_all(&dir.0)?;
    let file = dir.0.join("capture.pcap");
    let (packets, copies) = generate(&t, std::fs::File::create(&file)?, file_mib << 20)?;
    let flows_per_copy = {
        let mut one = Vec::new();
        generate(&t, &mut one, t.bytes as u64 + 24)?;
        let p = dir.0.join("one.pcap");
        std::fs::write(&p, &one)?;
        let out = Command::new(callwall).args(["inspect", "--json"]).arg(&p).output()?;
        String::from_utf8_lossy(&out.stdout).lines().count() as u64
    };
    let flows = flows_per_copy * copies;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "inspect benchmark: {:.0} MiB capture, {packets} packets, {flows} flows ({copies} copies of {} template frames, {flows_per_copy} flows each)",
        size as f64 / (1 << 20) as f64,
        t.frames.len()
    );
    let mut nd = Command::new(ndpi);
    nd.arg("-q").arg("-i").arg(&file);
    let mut cw = Command::new(callwall);
    cw.args(["inspect", "--json"]).arg(&file);
    let mut cw_stdin = Command::new(callwall);
    cw_stdin.args(["inspect", "--json", "-"]);
    let nd_run = run(nd, None)?;
    // Optional: another build of callwall on the same file, for before/after a change
    // (`CALLWALL_INSPECT_BASELINE=/path/to/callwall`).
    let baseline = match std::env::var_os("CALLWALL_INSPECT_BASELINE") {
        Some(b) => {
            let mut c = Command::new(b);
            c.args(["inspect", "--json"]).arg(&file);
            Some(run(c, None)?)
        }
        None => None,
    };
    let cw_run = run(cw, None)?;
    let cw_text = {
        let mut c = Command::new(callwall);
        c.arg("inspect").arg(&file);
        run(c, None)?
    };
    println!(
        "  {:32} {:>8} {:>9} {:>11} {:>10} {:>9} {:>6}",
        "reader", "wall s", "MiB/s", "packets/s", "flows/s", "peak MiB", "exit"
    );
    let row = |name: &str, r: &Run| {
        println!(
            "  {:32} {:>8.2} {:>9.0} {:>11.0} {:>10.0} {:>9.1} {:>6}",
            name,
            r.wall_s,
            size as f64 / (1 << 20) as f64 / r.wall_s,
            packets as f64 / r.wall_s,
            flows as f64 / r.wall_s,
            r.max_rss_kib as f64 / 1024.0,
            if r.ok { "ok" } else { "FAILED" }
        )
    };
    row("ndpiReader -q -i FILE", &nd_run);
    row("callwall inspect --json FILE", &cw_run);
    row("callwall inspect FILE (table)", &cw_text);
    if let Some(b) = &baseline {
        row("baseline inspect --json FILE", b);
        println!(
            "  speed ratio callwall/baseline: {:.2}x, peak RSS {:.1} vs {:.1} MiB",
            b.wall_s / cw_run.wall_s,
            cw_run.max_rss_kib as f64 / 1024.0,
            b.max_rss_kib as f64 / 1024.0
        );
    }
    let last = cw_text.stdout.lines().last().unwrap_or("");
    println!("  callwall's summary: {last}");
    println!(
        "  speed ratio callwall/nDPI: {:.2}x (target >= 1.00: {})",
        nd_run.wall_s / cw_run.wall_s,
        if nd_run.wall_s >= cw_run.wall_s { "met" } else { "MISSED" }
    );
    drop(dir);
    // Bounded memory: a large capture through a pipe into standard input.
    let piped = run(cw_stdin, Some((&t, pipe_mib << 20)))?;
    let pipe_packets = packets as f64 * pipe_mib as f64 / file_mib as f64;
    println!(
        "  stdin: {pipe_mib} MiB generated into a pipe -> callwall inspect --json -: {:.1} s, ~{:.0} packets/s, ~{:.0} flows/s, peak {:.1} MiB (target < 64: {}), exit {}",
        piped.wall_s,
        pipe_packets / piped.wall_s,
        flows as f64 * pipe_mib as f64 / file_mib as f64 / piped.wall_s,
        piped.max_rss_kib as f64 / 1024.0,
        if piped.max_rss_kib < 64 * 1024 { "met" } else { "MISSED" },
        if piped.ok { "ok" } else { "FAILED" }
    );
    Ok(())
}
