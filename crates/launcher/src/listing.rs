//! `callwall transports` and `callwall apps`: what this build offers.

use std::path::Path;
use std::process::ExitCode;

use crate::args::Transports;

/// `callwall transports`: each transport's strategies, what `auto` tries and its ICE summary.
pub fn transports(transports: Transports) -> ExitCode {
    for t in transports() {
        println!("{:8} {}", t.name(), t.strategies().join(", "));
        println!("{:8} auto tries: {}", "", t.auto_order().join(" -> "));
        callwall_apps::listing::ice_line(t.ice_summary());
    }
    ExitCode::SUCCESS
}

/// `callwall apps`: the app profiles of `app_dir`.
pub fn apps(app_dir: &Path) -> ExitCode {
    callwall_apps::listing::list(app_dir)
}
