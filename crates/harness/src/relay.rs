//! Starting and stopping the TURN relay (coturn) in the relay host.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use callwall_netns::Network;
use callwall_relay::RelayPlan;
use callwall_scenario::Scenario;

use crate::HarnessError;

/// The relay host's name in topologies.
pub const RELAY_HOST: &str = "relay";

/// A running coturn.
pub struct Relay {
    pub info: callwall_transport::RelayInfo,
    child: Child,
    scratch: PathBuf,
}

impl Relay {
    /// Stops coturn and removes its scratch files (certificate and key).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Starts coturn if the topology has a relay host and the run needs it (`needs`, from the
/// [`crate::plan::RunPlan`]: the transports' own answers, see
/// `callwall_transport::VoiceTransport::relay_needs`).
pub fn maybe_start(
    sc: &Scenario,
    needs: callwall_transport::RelayNeeds,
    network: &mut Network,
    out: Option<&Path>,
) -> Result<Option<Relay>, HarnessError> {
    if !needs.coturn() {
        return Ok(None);
    }
    let Some(ip) = sc.topology.ipv4_of(RELAY_HOST).map(std::net::IpAddr::V4) else {
        return Err(HarnessError::Setup(format!(
            "a call uses a TURN strategy but topology {} has no host named \"relay\"",
            sc.topology_path.display()
        )));
    };
    callwall_relay::find_turnserver().map_err(|e| HarnessError::Environment(e.to_string()))?;
    // SCRATCH_DIR is this sandbox's private tmpfs (see its docs); check before writing.
    crate::scratch_is_private()?;
    let scratch = std::path::Path::new(crate::SCRATCH_DIR)
        .join(format!("relay-{:016x}", rand::random::<u64>()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch)
        .map_err(|e| HarnessError::io("creating the relay's scratch directory", e))?;
    let plan: RelayPlan =
        callwall_relay::plan(ip, &scratch).map_err(|e| HarnessError::Setup(e.to_string()))?;
    let mut cmd = network
        .command(RELAY_HOST, &plan.program)
        .map_err(|e| HarnessError::Setup(e.to_string()))?;
    cmd.args(&plan.args).stdin(Stdio::null());
    match out.map(|d| std::fs::File::create(d.join("relay.log"))) {
        Some(Ok(f)) => {
            let f2 = f.try_clone().map_err(|e| HarnessError::io("opening the relay log", e))?;
            cmd.stdout(Stdio::from(f)).stderr(Stdio::from(f2));
        }
        _ => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let child =
        cmd.spawn().map_err(|e| HarnessError::Setup(format!("cannot start coturn: {e}")))?;
    let relay = Relay { info: plan.info.clone(), child, scratch };
    // Wait until its TCP and TLS listeners accept, probing from inside the relay host.
    let targets =
        [SocketAddr::new(ip, plan.info.tcp_port), SocketAddr::new(ip, plan.info.tls_port)];
    let ready = network
        .run_in(RELAY_HOST, move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            targets.iter().all(|t| loop {
                if TcpStream::connect_timeout(t, Duration::from_millis(200)).is_ok() {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(50));
            })
        })
        .map_err(|e| HarnessError::Setup(e.to_string()))?;
    if !ready {
        return Err(HarnessError::Setup(
            "coturn did not open its TCP and TLS listeners within 10s; see relay.log".into(),
        ));
    }
    Ok(Some(relay))
}
