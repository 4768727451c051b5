//! Hidden subcommands for the activities beside the calls (see
//! `callwall_harness::workloads`): `__workload-server` and `__workload-client`.
//!
//! Both read their one-line JSON config on stdin (certificates and keys never touch a file).
//! The server prints `ready` once every socket is bound and serves until its stdin closes;
//! the client prints one `WorkloadReport` JSON line.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use crate::{run_client, ClientSpec, Server, ServerConfig};

fn fail(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("callwall {what}: {e}");
    ExitCode::from(2)
}

fn read_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line)
}

/// `__workload-server`: reads a ServerConfig line, binds, prints `ready`, serves until stdin
/// closes.
pub fn server() -> ExitCode {
    let cfg: ServerConfig = match read_line().map(|l| serde_json::from_str(&l)) {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return fail("workload-server", format!("bad config: {e}")),
        Err(e) => return fail("workload-server", e),
    };
    let rt =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(r) => r,
            Err(e) => return fail("workload-server", e),
        };
    let r = rt.block_on(async {
        let server = Server::bind(cfg).await?;
        println!("ready");
        let _ = std::io::stdout().flush();
        // Stdin reaching end of file is the stop signal.
        let stop = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while matches!(std::io::stdin().lock().read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
        });
        tokio::select! {
            r = server.run() => r,
            _ = stop => Ok(()),
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail("workload-server", e),
    }
}

/// `__workload-client`: reads a ClientSpec line, runs the workload, prints its report.
pub fn client() -> ExitCode {
    let spec: ClientSpec = match read_line().map(|l| serde_json::from_str(&l)) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return fail("workload-client", format!("bad spec: {e}")),
        Err(e) => return fail("workload-client", e),
    };
    let rt =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(r) => r,
            Err(e) => return fail("workload-client", e),
        };
    let report = rt.block_on(run_client(&spec));
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    match serde_json::to_string(&report) {
        Ok(s) => {
            println!("{s}");
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => fail("workload-client", e),
    }
}
