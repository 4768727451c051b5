//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn callwall() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_callwall"));
    c.current_dir(repo());
    c
}

/// A fresh temporary directory under the target dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = repo().join("target").join("e2e-tmp");
        let p = base.join(format!("{tag}-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Runs `callwall run` on scenario files and returns (exit code, JSON results, output).
pub fn run_scenarios(files: &[&str], extra: &[&str]) -> (i32, Value, Output) {
    let tmp = TempDir::new("run");
    let json = tmp.path().join("results.json");
    let out = callwall()
        .arg("run")
        .args(files)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .expect("run callwall");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "no JSON written; status {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    (out.status.code().unwrap_or(-1), v, out)
}

pub fn dump(out: &Output, v: &Value) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}\njson:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        serde_json::to_string_pretty(v).unwrap_or_default()
    )
}

/// The host's interfaces and routes as the kernel lists them, to compare before and after.
pub fn host_network_state() -> String {
    let mut s = String::new();
    for f in ["/proc/net/dev", "/proc/net/route", "/proc/net/ipv6_route", "/proc/net/if_inet6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        // /proc/net/dev carries counters that change; keep the interface names only.
        if f.ends_with("dev") {
            let mut names: Vec<&str> =
                text.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
            names.sort();
            s.push_str(&names.join(","));
        } else {
            s.push_str(&text);
        }
        s.push('\n');
    }
    s
}

/// Every process whose ancestry includes `root` (not `root` itself).
pub fn descendants(root: i32) -> Vec<i32> {
    let mut parent = std::collections::HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                // The command name is in parentheses and may contain spaces.
                if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                    let ppid = rest
                        .split_whitespace()
                        .nth(1)
                        .and_then(|x| x.parse::<i32>().ok())
                        .unwrap_or(0);
                    parent.insert(pid, ppid);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (&pid, _) in parent.iter() {
        let mut p = pid;
        for _ in 0..64 {
            match parent.get(&p) {
                Some(&pp) if pp == root => {
                    out.push(pid);
                    break;
                }
                Some(&pp) if pp > 1 => p = pp,
                _ => break,
            }
        }
    }
    out
}

/// The network namespace inode of a process.
pub fn netns_of(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().map(|p| p.display().to_string())
}

/// Clock ticks since boot now (USER_HZ = 100), comparable with a process's start time.
pub fn uptime_ticks() -> u64 {
    let up = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    let secs: f64 = up.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (secs * 100.0) as u64
}

fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Namespaces of `namespaces` still held by a process that existed before `since_ticks`.
/// (A freed namespace's inode number is soon reused by new namespaces, e.g. of a test
/// running in parallel; processes started after the kill cannot hold the old one.)
pub fn namespaces_still_held(
    namespaces: &std::collections::HashSet<String>,
    since_ticks: u64,
) -> Vec<String> {
    let mut held = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Some(n) = netns_of(pid) else { continue };
            if namespaces.contains(&n)
                && start_ticks(pid).is_some_and(|t| t + 1 < since_ticks)
                && !held.contains(&n)
            {
                held.push(n);
            }
        }
    }
    held
}
