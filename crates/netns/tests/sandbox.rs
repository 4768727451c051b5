//! Real namespaces (needs root or unprivileged user namespaces).
//!
//! Outer tests re-execute this test binary inside `spawn_sandboxed` with `ROLE` naming the
//! inner test function to run; inner functions return at once when `ROLE` is not theirs.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use callwall_netns::{
    default_topology, ethtool, init, sandbox, spawn_sandboxed, Network, SandboxOptions,
};

const ROLE: &str = "CALLWALL_NETNS_TEST_ROLE";

fn role_is(name: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == name)
}

/// A command re-running this test binary's test `name` with `ROLE=name`.
fn reexec(name: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current_exe"));
    c.args([name, "--exact", "--nocapture", "--test-threads=1"]).env(ROLE, name);
    c
}

/// What `ip -o link` / `ip route` / `ip -6 route` would show for the host, read from
/// /proc and a read-only netlink dump in the calling thread's (the host's) namespace.
fn host_net_snapshot() -> String {
    let links: Vec<String> = callwall_netns::current_links()
        .expect("dump host links")
        .into_iter()
        .map(|l| format!("{} {} {:02x?} {:#x}", l.index, l.name, l.mac, l.flags & 1))
        .collect();
    let route = std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default();
    let route6 = std::fs::read_to_string("/proc/thread-self/net/ipv6_route").unwrap_or_default();
    let addrs6 = std::fs::read_to_string("/proc/thread-self/net/if_inet6").unwrap_or_default();
    format!("{}\n{route}\n{route6}\n{addrs6}", links.join("\n"))
}

fn host_veths() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join("veth").exists() || is_veth(&e.path()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn is_veth(p: &Path) -> bool {
    std::fs::read_link(p.join("device/driver")).map(|d| d.ends_with("veth")).unwrap_or(false)
        || std::fs::read_to_string(p.join("uevent")).is_ok_and(|u| u.contains("DEVTYPE=veth"))
}

/// The sandbox needs root or unprivileged user namespaces; without them these tests fail with
/// the environment's own explanation instead of skipping. (Always `false` when it returns.)
fn skip_without_privilege() -> bool {
    if let Err(e) = callwall_netns::check_environment() {
        panic!("these tests need namespaces: {e}");
    }
    false
}

// ---------------------------------------------------------------- build and ping

#[test]
fn build_and_ping_in_sandbox() {
    if skip_without_privilege() {
        return;
    }
    let before = host_net_snapshot();
    let veths_before = host_veths();
    let mut cmd = reexec("inner_build_and_ping");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = spawn_sandboxed(cmd, SandboxOptions::default()).expect("spawn sandbox");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "inner test failed: {}", out.status);
    assert!(stdout.contains("INNER-OK"), "inner test did not run");
    assert_eq!(before, host_net_snapshot(), "host network namespace changed");
    assert_eq!(veths_before, host_veths(), "veth appeared on the host");
}

#[test]
fn inner_build_and_ping() {
    if !role_is("inner_build_and_ping") {
        return;
    }
    assert!(init::is_pid1(), "not PID 1 of a new PID namespace");
    // The sandbox's own namespace is new and empty (only lo).
    let own = callwall_netns::current_links().expect("links");
    assert_eq!(own.len(), 1, "sandbox namespace not empty: {own:?}");

    let topo = default_topology().expect("default topology");
    let t0 = Instant::now();
    let net = Network::build(&topo).expect("build");
    println!("BUILD {:?}", t0.elapsed());

    // Names, indexes, MACs.
    let caller = net.host("caller").expect("caller");
    assert_eq!(caller.interfaces().len(), 1);
    let ci = caller.interface("censor").expect("caller has an interface named censor");
    assert_eq!(ci.mac[..3], [0x02, 0x63, 0x77]);
    let censor = net.host("censor").expect("censor");
    let mut names: Vec<_> = censor.interfaces().iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["caller", "wan"]);
    assert_eq!(topo.censor(), Some(("censor", "caller", "wan")));

    // Offloads off everywhere.
    for h in net.hosts() {
        for i in h.interfaces() {
            for (cmd, what) in [
                (ethtool::ETHTOOL_GTXCSUM, "tx-checksumming"),
                (ethtool::ETHTOOL_GTSO, "tso"),
                (ethtool::ETHTOOL_GGSO, "gso"),
                (ethtool::ETHTOOL_GGRO, "gro"),
            ] {
                let on = h.netns().offload(&i.name, cmd).expect("ethtool get");
                assert!(!on, "{what} still on for {}:{}", h.name(), i.name);
            }
        }
    }

    // Sysctls.
    let read = |host: &str, path: &'static str| {
        net.run_in(host, move || std::fs::read_to_string(path).expect(path).trim().to_string())
            .expect("run_in")
    };
    assert_eq!(read("wan", "/proc/sys/net/ipv4/ip_forward"), "1");
    assert_eq!(read("wan", "/proc/sys/net/ipv6/conf/all/forwarding"), "1");
    assert_eq!(read("caller", "/proc/sys/net/ipv4/ip_forward"), "0");
    assert_eq!(read("censor", "/proc/sys/net/ipv4/ip_forward"), "0");
    assert_eq!(read("censor", "/proc/sys/net/ipv6/conf/caller/disable_ipv6"), "1");
    assert_eq!(read("censor", "/proc/sys/net/ipv6/conf/wan/disable_ipv6"), "1");
    assert_eq!(read("callee", "/proc/sys/net/ipv6/conf/wan/disable_ipv6"), "0");

    // UDP across namespaces through the wan router: signal -> callee, v4 and v6, and back.
    for (from, to) in [
        ("10.4.0.2:0", "10.2.0.2:7000"),
        ("[fd00:4::2]:0", "[fd00:2::2]:7001"),
        ("10.2.0.2:0", "10.2.0.1:7002"),
    ] {
        let to: SocketAddr = to.parse().expect("addr");
        let from: SocketAddr = from.parse().expect("addr");
        let dst_host = if to.ip().to_string().ends_with(".1") { "wan" } else { "callee" };
        let src_host = if from.ip().to_string().starts_with("10.4")
            || from.ip().to_string().starts_with("fd00:4")
        {
            "signal"
        } else {
            "callee"
        };
        let rx = net
            .run_in(dst_host, move || UdpSocket::bind(to))
            .expect("run_in")
            .expect("bind receiver");
        let tx = net
            .run_in(src_host, move || UdpSocket::bind(from))
            .expect("run_in")
            .expect("bind sender");
        rx.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        tx.send_to(b"ping", to).expect("send");
        let mut buf = [0u8; 16];
        let (n, peer) = rx.recv_from(&mut buf).expect("no datagram crossed the namespaces");
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(peer.ip(), tx.local_addr().expect("local").ip(), "source address");
        rx.send_to(b"pong", peer).expect("reply");
        tx.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let (n, _) = tx.recv_from(&mut buf).expect("no reply");
        assert_eq!(&buf[..n], b"pong");
        println!("UDP {from} -> {to} ok");
    }
    // The same socket bound in another namespace must not see it: 10.2.0.2 does not exist
    // in the caller's namespace.
    let bind_in_caller = net.run_in("caller", || UdpSocket::bind("10.2.0.2:0")).expect("run_in");
    assert!(bind_in_caller.is_err(), "caller namespace has the callee's address");

    // command(): the child runs in the host's namespace.
    let callee_ino = net.host("callee").expect("callee").netns().inode();
    let out = net
        .command("callee", "readlink")
        .expect("command")
        .arg("/proc/self/ns/net")
        .output()
        .expect("run readlink");
    let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(got, format!("net:[{callee_ino}]"));

    let td = net.teardown().expect("teardown");
    println!("TEARDOWN {td:?}");
    init::reap_zombies();
    println!("INNER-OK");
}

// ---------------------------------------------------------------- SIGKILL of the parent

fn pid_ns_members(pid_ns: &str) -> Vec<u32> {
    let mut v = Vec::new();
    if let Ok(d) = std::fs::read_dir("/proc") {
        for e in d.filter_map(Result::ok) {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if std::fs::read_link(e.path().join("ns/pid"))
                .is_ok_and(|l| l.to_string_lossy() == pid_ns)
            {
                v.push(pid);
            }
        }
    }
    v
}

/// Every `net:[inode]` any process holds (its namespace, its threads', or an open fd).
fn reachable_net_namespaces() -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    let Ok(d) = std::fs::read_dir("/proc") else {
        return set;
    };
    for e in d.filter_map(Result::ok) {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let mut links = vec![e.path().join("ns/net")];
        if let Ok(tasks) = std::fs::read_dir(e.path().join("task")) {
            links.extend(tasks.filter_map(Result::ok).map(|t| t.path().join("ns/net")));
        }
        if let Ok(fds) = std::fs::read_dir(e.path().join("fd")) {
            links.extend(fds.filter_map(Result::ok).map(|f| f.path()));
        }
        for l in links {
            if let Ok(t) = std::fs::read_link(&l) {
                let t = t.to_string_lossy().into_owned();
                if t.starts_with("net:[") {
                    set.insert(t);
                }
            }
        }
    }
    set
}

/// Kills a plain child on drop, so a failing test leaves no process behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkill_of_parent_tears_down_sandbox() {
    if skip_without_privilege() {
        return;
    }
    let before = host_net_snapshot();
    let veths_before = host_veths();
    // The "parent": a plain child process that itself spawns the sandbox.
    let mut parent = reexec("role_sandbox_parent");
    parent.stdout(Stdio::piped());
    let mut parent = KillOnDrop(parent.spawn().expect("spawn parent"));
    let stdout = parent.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut pid_ns = None;
    let mut net_inodes = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("read");
        println!("{line}");
        // libtest prints "test name ... " without a newline before our first line.
        if let Some((_, rest)) = line.split_once("PIDNS ") {
            pid_ns = Some(rest.to_string());
        }
        if let Some(rest) = line.strip_prefix("NETNS ") {
            net_inodes.push(format!("net:[{rest}]"));
        }
        if line == "READY" {
            break;
        }
    }
    let pid_ns = pid_ns.expect("inner printed its pid namespace");
    let hosts = default_topology().expect("embedded topology").hosts().len();
    assert_eq!(net_inodes.len(), hosts, "one namespace per host");
    let members = pid_ns_members(&pid_ns);
    assert!(members.len() >= 2, "PID 1 and the sleeper run: {members:?}");
    let reachable = reachable_net_namespaces();
    for n in &net_inodes {
        assert!(reachable.contains(n), "{n} should be alive now");
    }

    // SIGKILL the parent of the sandbox.
    parent.0.kill().expect("kill parent");
    parent.0.wait().expect("reap parent");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = pid_ns_members(&pid_ns);
        let alive: Vec<_> = left.iter().filter(|p| sandbox::process_exists(**p)).collect();
        let reachable = reachable_net_namespaces();
        let nets: Vec<_> = net_inodes.iter().filter(|n| reachable.contains(*n)).collect();
        if alive.is_empty() && nets.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sandbox survived its parent: pids {alive:?}, namespaces {nets:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(before, host_net_snapshot(), "host network namespace changed");
    assert_eq!(veths_before, host_veths(), "veth appeared on the host");
}

#[test]
fn role_sandbox_parent() {
    if !role_is("role_sandbox_parent") {
        return;
    }
    // stdout is inherited: the grandparent test reads the inner lines.
    let mut child = spawn_sandboxed(reexec("inner_hold_network"), SandboxOptions::default())
        .expect("spawn sandbox");
    let _ = child.wait();
    // Never reached in the test: this process is SIGKILLed first.
    std::process::exit(3);
}

#[test]
fn inner_hold_network() {
    if !role_is("inner_hold_network") {
        return;
    }
    let topo = default_topology().expect("topology");
    let net = Network::build(&topo).expect("build");
    let pid_ns = std::fs::read_link("/proc/self/ns/pid").expect("pid ns");
    println!("PIDNS {}", pid_ns.to_string_lossy());
    for h in net.hosts() {
        println!("NETNS {}", h.netns().inode());
    }
    // Killed with the whole sandbox.
    let _sleeper = KillOnDrop(
        net.command("callee", "sleep").expect("command").arg("600").spawn().expect("spawn sleep"),
    );
    println!("READY");
    std::thread::sleep(Duration::from_secs(600));
}

// ---------------------------------------------------------------- safety net

#[test]
fn build_refuses_in_host_namespace() {
    if !callwall_netns::in_initial_netns().unwrap_or(false) {
        return; // not on the host (already in some sandbox): nothing to check
    }
    let topo = default_topology().expect("topology");
    let err = Network::build(&topo).expect_err("must refuse");
    assert!(matches!(err, callwall_netns::NetnsError::InHostNamespace), "{err}");
    assert!(err.to_string().contains("spawn_sandboxed"));
}

#[test]
fn sandbox_exit_status_and_kill() {
    if skip_without_privilege() {
        return;
    }
    let mut c = Command::new("sh");
    c.args(["-c", "exit 7"]);
    let mut ch = spawn_sandboxed(c, SandboxOptions::default()).expect("spawn");
    assert_eq!(ch.wait().expect("wait").code(), Some(7));

    let mut c = Command::new("sleep");
    c.arg("600");
    let mut ch = spawn_sandboxed(c, SandboxOptions::default()).expect("spawn");
    assert!(ch.try_wait().expect("try_wait").is_none());
    ch.kill().expect("kill");
    let st = ch.wait().expect("wait");
    assert!(!st.success());

    // Exec failure is reported by spawn.
    let c = Command::new("/nonexistent/program");
    assert!(spawn_sandboxed(c, SandboxOptions::default()).is_err());
}
