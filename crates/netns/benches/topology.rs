//! Up+down cycles of the default topology: callwall (`Network::build` + drop) versus the
//! same topology built by an iproute2 shell script (`ip netns add`, `ip -n X link add ...
//! type veth peer name ... netns Y`, addresses, routes, sysctls via `ip netns exec`, then
//! `ip netns del`). The script does not turn offloads off (no ethtool here), so it does
//! less work than callwall.
//!
//! Both run inside `spawn_sandboxed` with a private mount namespace and a tmpfs on `/run`,
//! so the script's `/run/netns` entries never appear on the host.
//!
//! `cargo bench -p callwall-netns --bench topology [-- CYCLES]`

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use callwall_netns::{default_topology, spawn_sandboxed, Network, SandboxOptions, Topology};

const ROLE: &str = "CALLWALL_NETNS_BENCH_ROLE";
const CYCLES: &str = "CALLWALL_NETNS_BENCH_CYCLES";

fn main() -> Result<()> {
    let topo = default_topology()?;
    let cycles: usize = match std::env::var(CYCLES) {
        Ok(c) => c.parse().context("cycles")?,
        Err(_) => std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20),
    };
    match std::env::var(ROLE).as_deref() {
        Ok("callwall") => return inner_callwall(&topo, cycles),
        Ok("iproute2") => return inner_iproute2(&topo, cycles),
        _ => {}
    }
    callwall_netns::check_environment()?;
    println!(
        "topology {:?}: {} hosts, {} links; {cycles} up+down cycles each",
        topo.name(),
        topo.hosts().len(),
        topo.links().len()
    );
    let cw = run_sandboxed("callwall", cycles)?;
    let ip = run_sandboxed("iproute2", cycles)?;
    report("callwall", &cw);
    report("iproute2", &ip);
    let (m_cw, m_ip) = (median(cw.iter().map(|c| c.0 + c.1)), median(ip.iter().map(|c| c.0 + c.1)));
    let ratio = m_ip.as_secs_f64() / m_cw.as_secs_f64();
    println!("callwall is {ratio:.1}x faster (median up+down {m_cw:?} vs {m_ip:?})");
    let (u_cw, u_ip) = (median(cw.iter().map(|c| c.0)), median(ip.iter().map(|c| c.0)));
    println!("up only: callwall is {:.1}x faster", u_ip.as_secs_f64() / u_cw.as_secs_f64());
    Ok(())
}

fn median(it: impl Iterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = it.collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn report(name: &str, cycles: &[(Duration, Duration)]) {
    println!(
        "{name:>9}: median up {:>10.2?}  down {:>10.2?}  up+down {:>10.2?}  (min up+down {:.2?}, max {:.2?})",
        median(cycles.iter().map(|c| c.0)),
        median(cycles.iter().map(|c| c.1)),
        median(cycles.iter().map(|c| c.0 + c.1)),
        cycles.iter().map(|c| c.0 + c.1).min().unwrap_or_default(),
        cycles.iter().map(|c| c.0 + c.1).max().unwrap_or_default(),
    );
}

/// Runs this binary as PID 1 of a sandbox in `role`; parses `CYCLE up_ns down_ns` lines.
fn run_sandboxed(role: &str, cycles: usize) -> Result<Vec<(Duration, Duration)>> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(ROLE, role).env(CYCLES, cycles.to_string()).stdout(Stdio::piped());
    let mut child = spawn_sandboxed(cmd, SandboxOptions::private_mounts_with_tmpfs(["/run"]))?;
    let out = child.stdout.take().context("stdout")?;
    let mut v = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("CYCLE ") {
            let mut f = rest.split_whitespace().map(|x| x.parse::<u64>());
            match (f.next(), f.next()) {
                (Some(Ok(u)), Some(Ok(d))) => {
                    v.push((Duration::from_nanos(u), Duration::from_nanos(d)))
                }
                _ => bail!("bad line {line:?}"),
            }
        } else {
            println!("  [{role}] {line}");
        }
    }
    let st = child.wait()?;
    if !st.success() || v.len() != cycles {
        bail!("{role} run failed: {st}, {} of {cycles} cycles", v.len());
    }
    Ok(v)
}

fn inner_callwall(topo: &Topology, cycles: usize) -> Result<()> {
    for _ in 0..cycles {
        let t0 = Instant::now();
        let net = Network::build(topo)?;
        let up = t0.elapsed();
        let t1 = Instant::now();
        drop(net); // closes the fds; the kernel destroys namespaces and veths async
        let down = t1.elapsed();
        println!("CYCLE {} {}", up.as_nanos(), down.as_nanos());
    }
    // Separately: explicit, synchronous veth deletion with `teardown()`.
    let mut teardown = Vec::new();
    for _ in 0..5 {
        teardown.push(Network::build(topo)?.teardown()?);
    }
    println!(
        "explicit teardown() (synchronous veth deletion) median {:.2?}",
        median(teardown.into_iter())
    );
    Ok(())
}

/// The iproute2 script for `topo`: `up` and `down` functions.
fn script(topo: &Topology) -> String {
    let ns = |h: &str| format!("cw-{h}");
    let censor = topo.censor().map(|c| c.0.to_string());
    let mut up = String::new();
    for h in topo.hosts() {
        let n = ns(&h.name);
        let fwd = if h.forward { 1 } else { 0 };
        let _ = writeln!(up, "ip netns add {n}");
        let _ = writeln!(up, "ip -n {n} link set lo up");
        let mut sysctls = format!(
            "echo {fwd} > /proc/sys/net/ipv4/ip_forward; echo {fwd} > /proc/sys/net/ipv6/conf/all/forwarding; \
             echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter; echo 0 > /proc/sys/net/ipv4/conf/default/rp_filter; \
             echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad"
        );
        if censor.as_deref() == Some(h.name.as_str()) {
            sysctls.push_str("; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6");
        }
        let _ = writeln!(up, "ip netns exec {n} sh -c '{sysctls}'");
    }
    for l in topo.links() {
        let _ = writeln!(
            up,
            "ip -n {} link add {} type veth peer name {} netns {}",
            ns(&l.a),
            l.b,
            l.a,
            ns(&l.b)
        );
        let _ = writeln!(up, "ip -n {} link set {} up", ns(&l.a), l.b);
        let _ = writeln!(up, "ip -n {} link set {} up", ns(&l.b), l.a);
    }
    for h in topo.hosts() {
        for i in &h.interfaces {
            for a in &i.addrs {
                let nodad = if a.addr.is_ipv6() { " nodad" } else { "" };
                let _ = writeln!(up, "ip -n {} addr add {a} dev {}{nodad}", ns(&h.name), i.name);
            }
        }
    }
    for r in topo.routes() {
        let to =
            r.to.map(|c| format!("{}/{}", c.network(), c.prefix_len))
                .unwrap_or_else(|| "default".into());
        let fam = if r.via.is_ipv6() { "-6" } else { "-4" };
        let _ = writeln!(up, "ip {fam} -n {} route add {to} via {}", ns(&r.host), r.via);
    }
    let mut down = String::new();
    for h in topo.hosts() {
        let _ = writeln!(down, "ip netns del {}", ns(&h.name));
    }
    format!("set -e\nup() {{\n{up}}}\ndown() {{\n{down}}}\n\"$1\"\n")
}

fn inner_iproute2(topo: &Topology, cycles: usize) -> Result<()> {
    let path = "/run/callwall-bench.sh";
    std::fs::write(path, script(topo))?;
    let run = |what: &str| -> Result<Duration> {
        let t = Instant::now();
        let st = Command::new("sh").args([path, what]).status()?;
        if !st.success() {
            bail!("iproute2 script {what} failed: {st}");
        }
        Ok(t.elapsed())
    };
    for _ in 0..cycles {
        let up = run("up")?;
        let down = run("down")?;
        println!("CYCLE {} {}", up.as_nanos(), down.as_nanos());
    }
    Ok(())
}
