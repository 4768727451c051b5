//! Live control of a run's censor from the command line (`run --control`); the groundwork of
//! `callwall demo` (issue 14), which sends its keys down the same path.

use std::io::BufRead;
use std::path::Path;

/// The control source `run --control` names: `-` is standard input, anything else a file
/// (or a named pipe) read as lines come. Live control steers one run, so it needs exactly
/// one scenario run once.
pub fn control_source(
    path: Option<&Path>,
    runs: usize,
    repeat: u32,
) -> Result<Option<Box<dyn BufRead + Send>>, String> {
    let Some(path) = path else { return Ok(None) };
    if runs != 1 || repeat != 1 {
        return Err(format!(
            "--control steers one run, but {runs} scenario(s) x {repeat} repeat(s) were given; \
             name one scenario file and drop --repeat"
        ));
    }
    if path == Path::new("-") {
        return Ok(Some(Box::new(std::io::BufReader::new(std::io::stdin()))));
    }
    let f = std::fs::File::open(path)
        .map_err(|e| format!("cannot open the control file {}: {e}", path.display()))?;
    Ok(Some(Box::new(std::io::BufReader::new(f))))
}
