//! Bad input gets exit code 2 and a message naming file, line and key; nothing is created.

use std::process::Command;

use crate::common::*;

fn check(file: &str) -> (i32, String) {
    let out = callwall().args(["check", file]).output().expect("run callwall check");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_shipped_scenarios_are_valid() {
    let out = callwall().arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn check_takes_a_directory() {
    // The shipped directory: every scenario in it, each named on its own line.
    let out = callwall().args(["check", "scenarios"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let listed =
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("ok ")).count();
    let files = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert_eq!(listed, files);
    // A directory of bad scenarios: every file is checked, exit code 2.
    let (code, stderr) = check("tests/data/bad-scenarios");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unknown-key.toml"), "{stderr}");
    assert!(!stderr.contains("Is a directory"), "{stderr}");
    // A directory without scenarios is named.
    let tmp = TempDir::new("empty-dir");
    let (code, stderr) = check(tmp.path().to_str().unwrap());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no scenario files"), "{stderr}");
}

#[test]
fn malformed_scenarios_name_file_line_and_key() {
    let dir = repo().join("tests/data/bad-scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        n += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        // Each file says what its error must mention: `# expect: <text>` and `# line: <n>`.
        let want: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        let line = text.lines().find_map(|l| l.strip_prefix("# line: "));
        let (code, stderr) = check(path.to_str().unwrap());
        assert_eq!(code, 2, "{}: {stderr}", path.display());
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(stderr.contains(name), "{name}: message does not name the file: {stderr}");
        for w in want {
            assert!(stderr.contains(w), "{name}: message lacks {w:?}: {stderr}");
        }
        if let Some(l) = line {
            assert!(
                stderr.contains(&format!("{name}:{l}")),
                "{name}: message lacks line {l}: {stderr}"
            );
        }
    }
    assert!(n >= 8, "expected a corpus of bad scenarios, found {n}");
}

#[test]
fn run_with_a_bad_scenario_changes_nothing() {
    let before = host_network_state();
    let tmp = TempDir::new("bad");
    let out = callwall()
        .args(["run", "tests/data/bad-scenarios/unknown-key.toml", "--out"])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !tmp.path().join("out").exists(),
        "a rejected run must not create its output directory"
    );
    assert_eq!(before, host_network_state());
}

/// Environment and setup problems of the CI job exit 2 before anything starts, saying what to
/// fix: a capability dropped, a report path that cannot be written, two scenarios of one name.
#[test]
fn setup_problems_exit_2_before_anything_starts() {
    let tmp = TempDir::new("preflight");
    let out_dir = tmp.path().join("out");
    // An output file whose directory does not exist: refused at once, nothing created.
    let o = callwall()
        .args(["run", "scenarios/udp-blackout.toml", "--transport", "noise"])
        .arg("--out")
        .arg(&out_dir)
        .args(["--json", "/nonexistent/dir/x.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--json /nonexistent/dir/x.json") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "nothing may start before the output paths are checked");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("udp-blackout"), "no run, no table");

    // Two files with one scenario name: `check` and `run` refuse them, naming both files.
    let dup = tmp.path().join("dup");
    std::fs::create_dir_all(&dup).unwrap();
    for f in ["a.toml", "b.toml"] {
        std::fs::copy(repo().join("scenarios/udp-blackout.toml"), dup.join(f)).unwrap();
    }
    for cmd in ["check", "run"] {
        let mut c = callwall();
        c.arg(cmd).arg(&dup);
        if cmd == "run" {
            c.arg("--out").arg(&out_dir);
        }
        let o = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(
            stderr.contains("scenario name \"udp-blackout\" is used by both")
                && stderr.contains("a.toml")
                && stderr.contains("b.toml"),
            "{cmd}: {stderr}"
        );
    }
    assert!(!out_dir.exists());

    // Without CAP_NET_RAW (dropped from the bounding set, so root's exec does not get it):
    // exit 2 naming it, where the run used to fail its censor and exit 1.
    {
        let o = Command::new("setpriv")
            .args(["--bounding-set", "-net_raw"])
            .arg(env!("CARGO_BIN_EXE_callwall"))
            .args(["run", "scenarios/udp-blackout.toml", "--transport", "noise"])
            .arg("--out")
            .arg(&out_dir)
            .current_dir(repo())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("missing capabilities CAP_NET_RAW"), "{stderr}");
        assert!(!out_dir.exists());
    }
}
