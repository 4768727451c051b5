//! Embeds the commit callwall is built from (`CALLWALL_COMMIT`, read by `crate::version`):
//! `git describe --always --tags` of the checkout, or `CALLWALL_COMMIT` from the build's
//! environment (for builds from a source archive), or `unknown` when neither is there (a crate
//! downloaded from a registry). Never fails the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CALLWALL_COMMIT");
    // Rebuild when HEAD moves: HEAD itself (a branch switch) and the ref it names (a commit).
    for p in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", p]) {
            println!("cargo:rerun-if-changed={}", absolute(&path));
        }
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &r]) {
            println!("cargo:rerun-if-changed={}", absolute(&path));
        }
    }
    let commit = std::env::var("CALLWALL_COMMIT")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| git(&["describe", "--always", "--tags", "--abbrev=12"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CALLWALL_COMMIT={commit}");
}

/// `git rev-parse --git-path` answers relative to the manifest directory.
fn absolute(p: &str) -> String {
    let path = std::path::Path::new(p);
    if path.is_absolute() {
        return p.to_string();
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    std::path::Path::new(&dir).join(path).display().to_string()
}
