//! Argument groups shared by several commands, derived with clap and flattened where used.

use std::path::PathBuf;

use callwall_harness::audio::AudioRun;
use callwall_transport::VoiceTransport;
use clap::Args;

/// Every transport of the build: the binary registers them (`src/roles.rs`) and hands this
/// function to the commands that plan runs.
pub type Transports = fn() -> Vec<Box<dyn VoiceTransport>>;

/// Where scenarios, topologies and app profiles are found.
#[derive(Args, Debug, Clone)]
pub struct Dirs {
    /// Directory of scenario files.
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    pub scenario_dir: PathBuf,
    /// Directory where topology names resolve.
    #[arg(long, default_value = "netns", value_name = "DIR")]
    pub topology_dir: PathBuf,
    /// Directory of app profiles that calls' `app =` name.
    #[arg(long, default_value = "apps", value_name = "DIR")]
    pub app_dir: PathBuf,
}

/// `--audio[=WAV]` and `--record DIR` (run and demo). The checks, the clip's preparation and
/// the peer's side live in `callwall_harness::audio`.
#[derive(Args, Debug, Clone, Default)]
pub struct AudioArgs {
    /// Send real speech in every built-in call: Opus in 20 ms frames, decoded with packet-loss
    /// concealment at the receiver, and scored with wideband PESQ (ITU-T P.862.2 MOS-LQO)
    /// beside the E-model MOS. `--audio` sends the bundled clip (espeak-ng); `--audio=FILE.wav`
    /// sends a WAV of any rate, mono or stereo (converted to 48 kHz mono).
    #[arg(long, value_name = "WAV", num_args = 0..=1, require_equals = true)]
    pub audio: Option<Option<PathBuf>>,
    /// With --audio: write what each side of every call received as WAV,
    /// DIR/<scenario>/<call>.caller-received.wav and .callee-received.wav, beside the reference
    /// sent, <call>.sent.wav (48 kHz mono).
    #[arg(long, value_name = "DIR", requires = "audio")]
    pub record: Option<PathBuf>,
}

impl AudioArgs {
    /// The run's audio options, checked: `Ok(None)` without `--audio`; `Err` says what to fix.
    pub fn resolve(&self) -> Result<Option<AudioRun>, callwall_harness::audio::AudioError> {
        callwall_harness::audio::resolve(&self.audio, &self.record)
    }
}
