//! Starting and stopping the Telegram-like reflector (`callwall-reflector`) in the relay host.
//!
//! A call over the `reflector` transport sends a STUN Binding request and then tagged media to
//! UDP 596-599 or 1400 of the relay host (see the `callwall-reflector` crate). The harness
//! starts the reflector there, as the hidden subcommand `callwall __reflector --listen IP`, only
//! when some call of the run uses that transport; it listens on every reflector port and says
//! `ready` on stdout once all are bound. Its counters go to `reflector.log`.

use std::net::IpAddr;
use std::path::Path;
use std::time::Instant;

use callwall_netns::Network;
use callwall_scenario::Scenario;

use crate::process::Service;
use crate::relay::RELAY_HOST;
use crate::HarnessError;

/// A running reflector.
pub struct Reflector {
    service: Service,
}

impl Reflector {
    /// Stops the reflector (it keeps no state worth a report: its counters are in its log).
    pub fn stop(self) {
        let _ = self.service.finish(Instant::now());
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
    let log = out.map(|d| d.join("reflector.log"));
    let service = Service::spawn("the reflector", cmd, log.as_deref(), true)?;
    service.wait_ready()?;
    Ok(Some(Reflector { service }))
}
