//! What `callwall run` checks about the machine and its outputs before anything starts, so a
//! problem of the CI job is exit 2 at once, never a verdict after the whole run:
//!
//! - [`capabilities`]: the capabilities a run needs (`CAP_SYS_ADMIN` for namespaces and
//!   mounts, `CAP_NET_ADMIN` for links and addresses, `CAP_NET_RAW` for the censor's AF_PACKET
//!   sockets). As root they must be effective; as an ordinary user (callwall maps itself to
//!   root in a user namespace) they must be in the bounding set, which caps what the user
//!   namespace can grant. [`missing_capabilities`] is the pure part (reads
//!   `/proc/self/status` text).
//! - [`output_paths`]: every report file (`--json`, `--junit`, `--markdown`, `--html`) can be
//!   written: its directory exists (or is `--out` or under it, which `run` creates) and takes a
//!   new file, and the path is not a directory. Checked with a probe file that is removed at
//!   once; nothing is left behind.

use std::path::{Path, PathBuf};

use callwall_netns::Privilege;

use crate::error::CommandError;

/// A capability a run needs: its number (linux/capability.h) and name.
pub const NEEDED: [(u32, &str); 3] =
    [(21, "CAP_SYS_ADMIN"), (12, "CAP_NET_ADMIN"), (13, "CAP_NET_RAW")];

/// The names of the [`NEEDED`] capabilities missing from `/proc/self/status` text: from
/// `CapEff` as root (`Privilege::Root`), from `CapBnd` otherwise. A status without the line
/// (not Linux's format) misses nothing: the run's own errors then say what failed.
pub fn missing_capabilities(status: &str, privilege: Privilege) -> Vec<&'static str> {
    let key = match privilege {
        Privilege::Root => "CapEff:",
        Privilege::UserNamespaces => "CapBnd:",
    };
    let Some(mask) = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        return Vec::new();
    };
    NEEDED.iter().filter(|(bit, _)| mask & (1u64 << bit) == 0).map(|(_, name)| *name).collect()
}

/// Exit-2 error when this process lacks a capability a run needs (see the module doc).
pub fn capabilities(privilege: Privilege) -> Result<(), CommandError> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return Ok(()) };
    let missing = missing_capabilities(&status, privilege);
    if missing.is_empty() {
        return Ok(());
    }
    Err(CommandError::Capabilities {
        missing: missing.join(", "),
        hint: match privilege {
            Privilege::Root => "run as root with them (docker: --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW, or --privileged)",
            Privilege::UserNamespaces => "they are dropped from the bounding set, so no user namespace can grant them: run without dropping them (or as root with them)",
        },
    })
}

/// Checks every report file of a run can be written (see the module doc); `out` is the run's
/// `--out` directory (created by the run, so paths under it are fine). Every problem found.
pub fn output_paths<'a>(
    files: impl IntoIterator<Item = (&'static str, &'a Path)>,
    out: &Path,
) -> Result<(), Vec<CommandError>> {
    let mut errs = Vec::new();
    for (flag, path) in files {
        if let Err(why) = writable(path, out) {
            errs.push(CommandError::OutputPath { flag, path: path.to_path_buf(), why });
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn writable(path: &Path, out: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("it is a directory; name a file".into());
    }
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    if !dir.is_dir() {
        // `--out` and what is under it are created by the run.
        if dir.starts_with(out) {
            return Ok(());
        }
        return Err(format!(
            "its directory {} does not exist; create it first or write under --out {}",
            dir.display(),
            out.display()
        ));
    }
    let probe = dir.join(format!(".callwall-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => return Err(format!("cannot create a file in {}: {e}", dir.display())),
    }
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot write the existing file: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcallwall\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffdfff\n";

    #[test]
    fn capabilities_come_from_the_effective_set_as_root_and_the_bounding_set_otherwise() {
        assert!(missing_capabilities(STATUS, Privilege::Root).is_empty());
        // Bit 13 (CAP_NET_RAW) is cleared in CapBnd.
        assert_eq!(missing_capabilities(STATUS, Privilege::UserNamespaces), ["CAP_NET_RAW"]);
        let none = "CapEff:\t0000000000000000\n";
        assert_eq!(
            missing_capabilities(none, Privilege::Root),
            ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_NET_RAW"]
        );
        assert!(missing_capabilities("Name: x\n", Privilege::Root).is_empty());
    }

    #[test]
    fn output_paths_are_checked_and_nothing_is_left_behind() {
        let dir = std::env::temp_dir().join(format!("callwall-preflight-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("results");
        let ok = dir.join("r.json");
        let under_out = out.join("sub/j.xml");
        assert!(output_paths([("--json", ok.as_path()), ("--junit", &under_out)], &out).is_ok());
        let missing = dir.join("nope/r.json");
        let errs = output_paths([("--json", missing.as_path()), ("--html", dir.as_path())], &out)
            .unwrap_err();
        assert_eq!(errs.len(), 2);
        let text = errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n");
        assert!(text.contains("--json") && text.contains("does not exist"), "{text}");
        assert!(text.contains("--html") && text.contains("is a directory"), "{text}");
        // Nothing created: no probe, no file, no directory.
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(left.is_empty(), "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
