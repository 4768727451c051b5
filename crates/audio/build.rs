//! Makes the bundled speech clip at build time: espeak-ng (Debian's `espeak-ng`, installed by
//! `make deps`) speaks [`TEXT`] into `$OUT_DIR/speech.wav` (22.05 kHz mono 16-bit PCM), which
//! `src/clip.rs` embeds and resamples to 48 kHz on load. No audio file is committed or fetched:
//! the clip is whatever this machine's espeak-ng makes of the text (the same version gives the
//! same bytes, run after run).

use std::path::PathBuf;
use std::process::Command;

/// What the clip says (about 8.8 s at 150 words per minute): numbers and whole sentences, so a
/// listener hears which words a lossy call lost.
const TEXT: &str = "This is a call through a censor. One, two, three, four, five. \
                    If you can hear every word, the call got through.";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wav = out.join("speech.wav");
    // espeak-ng links libpulse (through pcaudiolib) even when it only writes a file, and libpulse
    // makes `/tmp/pulse-XXXX` on first use, which would outlive the build on the host. Keep its
    // runtime directory (and any temporary file) in OUT_DIR.
    let scratch = out.join("espeak-scratch");
    std::fs::create_dir_all(&scratch).expect("create OUT_DIR/espeak-scratch");
    let status = Command::new("espeak-ng")
        .env("PULSE_RUNTIME_PATH", &scratch)
        .env("TMPDIR", &scratch)
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wav)
        .arg(TEXT)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "espeak-ng failed ({s}) making the bundled speech clip {}; check that \
             `espeak-ng -v en-us -w x.wav hello` works (Debian: espeak-ng, `make deps`)",
            wav.display()
        ),
        Err(e) => panic!(
            "cannot run espeak-ng ({e}), which makes callwall's bundled speech clip at build \
             time; install it: `make deps` (Debian: apt-get install espeak-ng)"
        ),
    }
}
