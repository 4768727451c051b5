//! The run's TURN relay: coturn, the real TURN server, planned for a relay host.
//!
//! callwall does not implement TURN itself: the relay strategies of `transport-webrtc` must
//! talk to the server real apps talk to, so the censor sees real TURN over UDP, TCP and TLS.
//! This crate finds coturn's `turnserver` binary, mints fresh per-run credentials and a
//! self-signed certificate, and builds the command line that runs it. It does **not** spawn
//! the process: the harness does that inside the relay host's network namespace (see
//! [`RelayPlan`]). [`wait_ready`] then waits until the relay accepts TCP.
//!
//! Guarantees:
//! - credentials come from the operating system's RNG, never from the scenario seed, and the
//!   private key and certificate are written into the caller's scratch directory with mode
//!   0600; nothing is read from or written to `/etc`, `/var` or the system's coturn database;
//! - the planned server listens only on the relay address (UDP and TCP 3478, TLS 443), has no
//!   CLI, no web admin, no DTLS listener and no TCP relays, and relays only to peers in
//!   10.0.0.0/8 or fd00::/8 (and loopback, only when the relay itself is on loopback, as in
//!   tests).
//!
//! It does not keep coturn alive or restart it, and it does not parse coturn's log.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use callwall_transport::RelayInfo;
use rand::rngs::OsRng;
use rand::RngCore;

/// The TURN port for UDP and TCP (RFC 8656 §18: the default "turn" port).
pub const TURN_PORT: u16 = 3478;
/// The port of the TLS listener: 443, where TLS is least suspicious to a censor.
pub const TURN_TLS_PORT: u16 = 443;
/// The realm of the long-term credentials (RFC 8489 §9.2).
pub const REALM: &str = "callwall.test";
/// The name in the relay's certificate, and the SNI clients present by default.
pub const TLS_SERVER_NAME: &str = "turn.callwall.test";
/// The UDP ports coturn may allocate relayed transport addresses from (inclusive).
pub const RELAY_PORTS: (u16, u16) = (49152, 49407);

/// Why the relay could not be planned or did not come up.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("coturn is not installed: run `apt-get install -y coturn` (or `make deps`)")]
    NotInstalled,
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot make the relay's tls certificate: {0}")]
    Certificate(String),
    #[error("the relay at {addr} did not accept tcp within {timeout:?}; check the turnserver log")]
    NotReady { addr: std::net::SocketAddr, timeout: Duration },
}

/// How to run coturn for one run: the program, its arguments, and what clients need to know.
///
/// The harness spawns `program` with `args` inside the relay host's namespace (no shell, no
/// extra environment needed); coturn stays in the foreground and logs to stdout. The scratch
/// directory must outlive the process.
#[derive(Debug, Clone)]
pub struct RelayPlan {
    /// What clients get: address, ports, credentials, pinned certificate.
    pub info: RelayInfo,
    /// The `turnserver` binary.
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl RelayPlan {
    /// A command for the plan: `program` with `args`, stdin closed. The caller sets the
    /// namespace, stdout/stderr and the parent-death signal, then spawns it.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args).stdin(std::process::Stdio::null());
        c
    }
}

/// Finds coturn's `turnserver` on `PATH` (or in `/usr/bin`, `/usr/sbin`, `/usr/local/bin`).
pub fn find_turnserver() -> Result<PathBuf, RelayError> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    for extra in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        dirs.push(PathBuf::from(extra));
    }
    dirs.into_iter()
        .map(|d| d.join("turnserver"))
        .find(|p| is_executable(p))
        .ok_or(RelayError::NotInstalled)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Plans a coturn relay on `relay_ip`, writing its key material into `scratch`.
///
/// Fresh credentials and a fresh self-signed certificate (for [`TLS_SERVER_NAME`] and the
/// relay address) are made on every call; `cert.pem` and `key.pem` are written with mode
/// 0600. Ports are fixed ([`TURN_PORT`], [`TURN_TLS_PORT`]), so two relays on one address
/// cannot run at once.
pub fn plan(relay_ip: IpAddr, scratch: &Path) -> Result<RelayPlan, RelayError> {
    let program = find_turnserver()?;
    let username = format!("cw-{}", random_hex(8));
    let password = random_hex(24);

    let names = vec![TLS_SERVER_NAME.to_string(), relay_ip.to_string()];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| RelayError::Certificate(e.to_string()))?;
    let cert_pem = certified.cert.pem();
    let key_pem = certified.key_pair.serialize_pem();
    let cert_path = scratch.join("turn-cert.pem");
    let key_path = scratch.join("turn-key.pem");
    write_private(&cert_path, cert_pem.as_bytes())?;
    write_private(&key_path, key_pem.as_bytes())?;

    let info = RelayInfo {
        addr: relay_ip,
        udp_port: TURN_PORT,
        tcp_port: TURN_PORT,
        tls_port: TURN_TLS_PORT,
        username,
        password,
        realm: REALM.to_string(),
        tls_cert_pem: cert_pem,
        tls_server_name: TLS_SERVER_NAME.to_string(),
    };
    let args = coturn_args(&info, &cert_path, &key_path, scratch);
    Ok(RelayPlan { info, program, args })
}

/// The coturn 4.6 command line. Every flag says why it is there.
fn coturn_args(info: &RelayInfo, cert: &Path, key: &Path, scratch: &Path) -> Vec<String> {
    let ip = info.addr.to_string();
    let mut a: Vec<String> = Vec::new();
    let mut push = |flags: &[&str]| a.extend(flags.iter().map(|s| s.to_string()));
    // No configuration file: `-n` stops coturn from reading /etc/turnserver.conf, so the run
    // depends only on these arguments.
    push(&["-n"]);
    // Log to stdout (the harness captures it), one file name as given, no rollover. Without
    // `--log-file stdout` coturn also writes into /var/log or /var/tmp.
    push(&["--log-file", "stdout", "--simple-log"]);
    // The pid file goes into scratch; the default is /var/run/turnserver.pid.
    push(&["--pidfile", &path_arg(&scratch.join("turnserver.pid"))]);
    // coturn built with SQLite always opens a user database (default /var/lib/turn/turndb).
    // Point it at an empty file in scratch so the system's database is never touched; the only
    // user is the in-memory one from `--user`.
    push(&["--userdb", &path_arg(&scratch.join("turndb.sqlite"))]);
    // No telnet CLI (it listens on 127.0.0.1:5766 by default) and no web admin (off by
    // default; stated for the reader).
    push(&["--no-cli"]);
    // Listen and relay only on the relay host's address, never on every interface.
    push(&["--listening-ip", &ip, "--relay-ip", &ip]);
    // TURN over UDP and TCP on 3478 (RFC 8656 §18), TURN over TLS on 443.
    push(&["--listening-port", &info.udp_port.to_string()]);
    push(&["--tls-listening-port", &info.tls_port.to_string()]);
    push(&["--cert", &path_arg(cert), "--pkey", &path_arg(key)]);
    // No DTLS listener: callwall's clients use TURN over UDP, TCP and TLS only, and the TLS
    // port would otherwise also take DTLS on UDP 443.
    push(&["--no-dtls"]);
    // Only modern TLS on 443, as a production relay would offer.
    push(&["--no-tlsv1", "--no-tlsv1_1"]);
    // One address means no RFC 5780 NAT discovery (no CHANGE-REQUEST, no alternate ports);
    // say so rather than let coturn warn about it.
    push(&["--no-rfc5780"]);
    // Long-term credentials (RFC 8489 §9.2) with a realm; the user lives in memory.
    push(&["--lt-cred-mech", "--realm", &info.realm]);
    push(&["--user", &format!("{}:{}", info.username, info.password)]);
    // FINGERPRINT on every message (RFC 8489 §14.7), as WebRTC clients send it.
    push(&["--fingerprint"]);
    // Do not name the server version in a SOFTWARE attribute (coturn's production advice).
    push(&["--no-software-attribute"]);
    // Relays are UDP only (RFC 8656); no RFC 6062 TCP relays.
    push(&["--no-tcp-relay"]);
    // A small relay port range, so captures and rules can name it (RELAY_PORTS).
    push(&["--min-port", &RELAY_PORTS.0.to_string(), "--max-port", &RELAY_PORTS.1.to_string()]);
    // Peers: never multicast/broadcast; explicitly allow the sandbox's private ranges, which
    // coturn may deny under its default peer policy.
    push(&["--no-multicast-peers"]);
    push(&["--allowed-peer-ip=10.0.0.0-10.255.255.255"]);
    push(&["--allowed-peer-ip=fd00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]);
    // Loopback peers are denied by coturn 4.6 unless allowed; allow them only when the relay
    // itself is on loopback (tests), never in a sandboxed run.
    if info.addr.is_loopback() {
        push(&["--allow-loopback-peers"]);
        push(&["--allowed-peer-ip=127.0.0.0-127.255.255.255"]);
    }
    a
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), RelayError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| RelayError::Write { path: path.to_path_buf(), source };
    // Remove a stale file first so mode 0600 applies to a fresh inode.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(contents).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Waits until the relay's TCP port (`info.tcp_port`) accepts a connection, or `timeout`.
///
/// Run it from a namespace that can reach the relay. A TCP accept means coturn has bound its
/// listeners (it binds UDP, TCP and TLS together at start-up).
pub async fn wait_ready(info: &RelayInfo, timeout: Duration) -> Result<(), RelayError> {
    let addr = std::net::SocketAddr::new(info.addr, info.tcp_port);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(RelayError::NotReady { addr, timeout });
        }
        match tokio::time::timeout(left, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_stream)) => return Ok(()),
            Ok(Err(e)) => {
                tracing::trace!("relay {addr} not ready yet: {e}");
                let pause = Duration::from_millis(50).min(left);
                tokio::time::sleep(pause).await;
            }
            Err(_) => return Err(RelayError::NotReady { addr, timeout }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_name_every_required_flag() {
        // Paths only end up in the arguments: nothing is written.
        let dir = Path::new("/scratch");
        let info = RelayInfo {
            addr: "10.3.0.2".parse().expect("ip"),
            udp_port: 3478,
            tcp_port: 3478,
            tls_port: 443,
            username: "u".into(),
            password: "p".into(),
            realm: REALM.into(),
            tls_cert_pem: String::new(),
            tls_server_name: TLS_SERVER_NAME.into(),
        };
        let a = coturn_args(&info, &dir.join("c"), &dir.join("k"), dir);
        let joined = a.join(" ");
        for want in [
            "-n",
            "--no-cli",
            "--no-dtls",
            "--listening-ip 10.3.0.2",
            "--relay-ip 10.3.0.2",
            "--tls-listening-port 443",
            "--lt-cred-mech",
            "--user u:p",
            "--fingerprint",
            "--no-multicast-peers",
            "--allowed-peer-ip=10.0.0.0-10.255.255.255",
        ] {
            assert!(joined.contains(want), "missing {want:?} in {joined}");
        }
        assert!(!joined.contains("loopback"), "loopback peers allowed off loopback: {joined}");
        assert!(!joined.contains("/etc/"), "{joined}");
    }
}
