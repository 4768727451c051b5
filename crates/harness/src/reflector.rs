//! Starting and stopping the Telegram-like reflector (`callwall-reflector`) in the relay host.
//!
//! A call over the `reflector` transport sends a STUN Binding request and then tagged media to
//! UDP 596-599 or 1400 of the relay host (see the `callwall-reflector` crate). The harness
//! starts the reflector there, as the hidden subcommand `callwall __reflector --listen IP`, only
//! when some call of the run uses that transport; it listens on every reflector port and says
//! `ready` on stdout once all are bound. Its counters go to `reflector.log`.

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use callwall_netns::Network;
use callwall_scenario::Scenario;

use crate::relay::RELAY_HOST;
use crate::HarnessError;

/// How long the reflector gets to bind its ports.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running reflector; dropping it kills the process.
pub struct Reflector {
    child: Child,
}

impl Reflector {
    /// Stops the reflector.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Reflector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the reflector in the relay host if some call uses it.
pub fn maybe_start(
    sc: &Scenario,
    needs: callwall_transport::RelayNeeds,
    network: &mut Network,
    exe: &Path,
    out: Option<&Path>,
) -> Result<Option<Reflector>, HarnessError> {
    if !needs.reflector {
        return Ok(None);
    }
    let Some(ip) = sc.topology.ipv4_of(RELAY_HOST).map(IpAddr::V4) else {
        return Err(HarnessError::Setup(format!(
            "a call uses the reflector transport but topology {} has no host named \"relay\"",
            sc.topology_path.display()
        )));
    };
    let mut cmd =
        network.command(RELAY_HOST, exe).map_err(|e| HarnessError::Setup(e.to_string()))?;
    cmd.arg("__reflector").arg("--listen").arg(ip.to_string());
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    match out.map(|d| std::fs::File::create(d.join("reflector.log"))) {
        Some(Ok(f)) => {
            cmd.stderr(Stdio::from(f));
        }
        _ => {
            cmd.stderr(Stdio::null());
        }
    }
    let mut child =
        cmd.spawn().map_err(|e| HarnessError::Setup(format!("cannot start the reflector: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| HarnessError::Setup("the reflector has no stdout".into()))?;
    let reflector = Reflector { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut first = String::new();
        let ok = r.read_line(&mut first).is_ok() && first.starts_with("ready");
        let _ = tx.send(ok);
        // Keep reading so the reflector never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(true) => Ok(Some(reflector)),
        Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(HarnessError::Setup(
            "the reflector exited before it was ready; see reflector.log".into(),
        )),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(HarnessError::Setup(format!(
            "the reflector did not bind its ports within {READY_TIMEOUT:?}; see reflector.log"
        ))),
    }
}
