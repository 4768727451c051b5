//! `callwall-reflector <ip> [port ...]`: runs the Telegram-like reflector on `ip`, on the given
//! UDP ports (default 596-599 and 1400), until killed. Prints `ready <addr> ...` on stdout once
//! every port is bound, and its counters on stderr every 5 s. Exit 2 on bad arguments or when a
//! port cannot be bound. The harness starts it inside the relay host's namespace.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

fn usage(msg: &str) -> ExitCode {
    eprintln!("callwall-reflector: {msg}\nusage: callwall-reflector <ip> [port ...]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(ip) = args.first() else { return usage("name the address to listen on") };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return usage(&format!("{ip:?} is not an IP address"));
    };
    let mut ports = Vec::new();
    for p in &args[1..] {
        match p.parse::<u16>() {
            Ok(p) => ports.push(p),
            _ => return usage(&format!("{p:?} is not a port (0-65535; 0 picks any)")),
        }
    }
    if ports.is_empty() {
        ports = callwall_reflector::PORTS.to_vec();
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callwall-reflector: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async move {
        let server = match callwall_reflector::Server::start(ip, &ports).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("callwall-reflector: cannot bind {ip} ports {ports:?}: {e}");
                return ExitCode::from(2);
            }
        };
        let addrs: Vec<String> = server.addrs.iter().map(|a| a.to_string()).collect();
        println!("ready {}", addrs.join(" "));
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            eprintln!("{:?}", server.counters());
        }
    })
}
