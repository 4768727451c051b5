//! The machine's stalls are never a verdict (issue 23): a call whose peers were not scheduled
//! during it is re-placed once, and when the machine stalls it again it is `inconclusive`
//! (exit code 3), never a transport regression.
//!
//! The stall is real and made from outside: the test stops every peer process of the run with
//! SIGSTOP for 1.5 s in the middle of its media (what a machine too busy to schedule it does),
//! then lets it go on. Unstopped, the same call is `connected` (foundation tests).

use std::time::{Duration, Instant};

use crate::common::*;

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
fn a_call_the_machine_stalls_twice_is_re_placed_then_inconclusive() {
    let tmp = TempDir::new("machine-stall");
    let scenario = tmp.path().join("stalled.toml");
    let topology = repo().join("netns/censored-call.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"stalled\"\ntopology = \"{}\"\nseed = 1\n\n[[calls]]\ntransport = \"noise\"\n\
             strategy = \"udp\"\nexpect = \"connected\"\n\n[defaults]\nduration = \"5s\"\n\
             connect_timeout = \"3s\"\n",
            topology.display()
        ),
    )
    .unwrap();
    let json = tmp.path().join("results.json");
    let junit = tmp.path().join("junit.xml");
    let mut child = callwall()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run callwall");
    let root = child.id() as i32;
    // Every peer process, 2 s after it is first seen (its call has connected and media runs:
    // noise/udp connects in milliseconds here), is stopped for 1.5 s, once.
    let mut seen: std::collections::HashMap<i32, (Instant, bool)> = Default::default();
    let mut stopped = 0;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        for pid in descendants(root) {
            if cmdline(pid).contains("__peer") {
                seen.entry(pid).or_insert((Instant::now(), false));
            }
        }
        let due: Vec<i32> = seen
            .iter()
            .filter(|(_, (t, done))| !done && t.elapsed() >= Duration::from_secs(2))
            .map(|(p, _)| *p)
            .collect();
        if !due.is_empty() {
            for p in &due {
                unsafe { libc::kill(*p, libc::SIGSTOP) };
            }
            std::thread::sleep(Duration::from_millis(1500));
            for p in &due {
                unsafe { libc::kill(*p, libc::SIGCONT) };
                seen.get_mut(p).unwrap().1 = true;
                stopped += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().expect("output");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("results written"))
            .expect("valid JSON");
    let ctx = dump(&out, &v);
    assert_eq!(stopped, 4, "two peers in each of two placings were stopped\n{ctx}");
    let run = &v["runs"][0];
    assert_eq!(run["replaced"], true, "the run was re-placed once\n{ctx}");
    let c = &run["calls"][0];
    assert_eq!(c["met"], false, "{ctx}");
    assert_eq!(c["inconclusive"], true, "{ctx}");
    assert!(
        c["machine"]["stall_ms"].as_u64().unwrap_or(0) >= 1400,
        "the stall is the 1.5 s stop\n{ctx}"
    );
    assert_eq!(c["attempts"].as_array().map(Vec::len), Some(1), "the first placing is kept\n{ctx}");
    assert_eq!(c["attempts"][0]["met"], false, "{ctx}");
    assert_eq!(status.code(), Some(3), "inconclusive only: exit 3\n{ctx}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(inconclusive)"), "the table marks it\n{ctx}");
    // JUnit: the call is `skipped` with the reason, and the file is valid for CI readers.
    let xml = std::fs::read_to_string(&junit).expect("JUnit written");
    assert!(xml.contains("<skipped message=\"inconclusive: got "), "{xml}");
    let lint = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(repo().join("tests/data/junit.xsd"))
        .arg(&junit)
        .output()
        .expect("xmllint (libxml2-utils, make deps)");
    assert!(lint.status.success(), "JUnit does not validate\n{xml}");
}
