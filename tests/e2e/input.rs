//! Bad input gets exit code 2 and a message naming file, line and key; nothing is created.

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
