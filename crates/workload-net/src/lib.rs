//! Real clients and servers for callwall's workloads (messages, voice notes, web, video) and
//! the run's DNS resolver.
//!
//! Every kind is a real protocol over a real stack: messages are WebSocket text frames over
//! TLS over TCP (tokio-tungstenite + rustls); voice notes are an HTTPS upload and download
//! (hyper + rustls); web pages and video chunks are HTTPS/1.1 over TCP or HTTP/3 over QUIC
//! (h3 + h3-quinn + quinn); names resolve through a DNS server in the sandbox
//! (hickory-proto messages over UDP and TCP 53). Certificates come from a CA made per run
//! ([`tls::RunCa`]) and carry the real names an app uses, so SNI and DNS rules written against
//! real services match.
//!
//! # The contract with the harness
//!
//! Like a call's peers (`callwall_transport::peer`), each side runs as its own process in its
//! host's namespace:
//!
//! - **Servers**: the harness starts one process per server host with a [`ServerConfig`]
//!   (JSON) and calls [`Server::bind`] then [`Server::run`]. `Server::bind` returns once every
//!   socket is bound, so the harness can report readiness; `run` serves until the process is
//!   killed. One config kind serves each role: [`ServerRole::Message`] (WebSocket over TLS on
//!   TCP `port`), [`ServerRole::Http`] (HTTPS on TCP `port` and HTTP/3 on UDP `port`; the
//!   media, web and video hosts are all of this role, with their own names and certificates)
//!   and [`ServerRole::Dns`] (UDP and TCP `port`, answering from a [`dns::Zone`]).
//! - **Clients**: the harness runs [`run_client`] with a [`ClientSpec`] in the client's host
//!   and reads the [`callwall_workload::WorkloadReport`] it returns (printed as one JSON line
//!   on stdout by the subcommand). `run_client` waits for `start_at_unix_ns`, resolves
//!   `server_name` through `resolver` (or uses `server_addr` when no resolver is given),
//!   runs the workload, and judges it with [`callwall_workload::judge`].
//!
//! HTTP paths a server answers (all bodies bounded by `callwall_workload::limits::MAX_BODY`):
//! `GET <any path>?bytes=N` returns N bytes (page, tiles, video chunks); `POST /upload/<id>`
//! stores a body, `GET /media/<id>` returns it. The message server speaks the JSON frames
//! documented in [`message`].
//!
//! Guarantees: [`run_client`] never panics and always returns, within `timeout` plus a few
//! seconds after the start time: network errors, timeouts and refused names are figures and
//! an `error` string in the report, never a crash. Latencies come from timestamps on the
//! shared system clock (all sandbox hosts share it), to the microsecond. What it does not do:
//! decide which censor rule caused a failure (the harness joins the censor's log), or mimic a
//! particular app's TLS fingerprint (clients use rustls's own ClientHello).
#![forbid(unsafe_code)]

pub mod dns;
pub mod http;
pub mod role;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use callwall_workload::{judge, Figures, Kind, Params, Serves, WorkloadReport};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, UdpSocket};

pub use tls::{Identity, RunCa};

/// The port every server uses unless its config says otherwise: HTTPS, WSS and HTTP/3 on 443.
pub const DEFAULT_PORT: u16 = 443;
/// The DNS port.
pub const DNS_PORT: u16 = 53;
/// Slack past a client's `timeout` before [`run_client`] stops waiting on anything.
pub const HARD_SLACK: Duration = Duration::from_secs(2);

/// Why a workload step failed. Messages are lowercase and say what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    #[error("dns: {0}")]
    Dns(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("http: {0}")]
    Http(String),
    #[error("websocket: {0}")]
    WebSocket(String),
    #[error("quic: {0}")]
    Quic(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("io: {0}")]
    Io(String),
    #[error("bad config: {0}")]
    Config(String),
}

/// What a server process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerRole {
    /// WebSocket chat over TLS (a messaging host).
    Message,
    /// HTTPS over TCP and HTTP/3 over QUIC (a media, web/tile or video host).
    Http,
    /// The run's DNS resolver.
    Dns,
}

impl ServerRole {
    /// The role of the server a workload's client talks to.
    pub fn serving(params: &Params) -> ServerRole {
        match params.serves() {
            Serves::Message => ServerRole::Message,
            Serves::Http => ServerRole::Http,
        }
    }
}

/// What a server process is told to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub role: ServerRole,
    /// Address to listen on (the host's address, or `0.0.0.0`).
    pub listen: IpAddr,
    /// Port; [`DEFAULT_PORT`] or [`DNS_PORT`] when absent; 0 picks a free one (tests).
    #[serde(default)]
    pub port: Option<u16>,
    /// The certificate for TLS roles (message, http).
    #[serde(default)]
    pub identity: Option<Identity>,
    /// The zone for the DNS role.
    #[serde(default)]
    pub zone: Option<dns::Zone>,
}

/// What a client process is told to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSpec {
    /// The workload's name in the scenario.
    pub name: String,
    /// App or label (`whatsapp`, `osm`, `youtube`).
    pub app: String,
    pub params: Params,
    /// The name the client resolves and presents as SNI (`web.whatsapp.net`).
    pub server_name: String,
    /// Server port; [`DEFAULT_PORT`] when absent.
    #[serde(default)]
    pub port: Option<u16>,
    /// The DNS resolver to ask for `server_name`.
    #[serde(default)]
    pub resolver: Option<SocketAddr>,
    /// The server's address when no resolver is given.
    #[serde(default)]
    pub server_addr: Option<IpAddr>,
    /// The run CA's certificate (PEM), the only trust anchor.
    pub ca_pem: String,
    /// When to start (UNIX ns, the shared system clock); 0 starts at once.
    #[serde(default)]
    pub start_at_unix_ns: u64,
    /// The most the whole workload may take once started; written `"30s"`.
    pub timeout: callwall_units::Duration,
    /// The most one request may take; when absent a request may take whatever is left of
    /// `timeout` (the workload's timeout is the budget: a slow transfer that completes is
    /// slow, not failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<callwall_units::Duration>,
}

/// Everything a workload needs once its server's address is known.
pub struct Target {
    pub addr: SocketAddr,
    pub server_name: String,
    pub ca_pem: String,
    /// The whole workload must end by then.
    pub deadline: tokio::time::Instant,
    pub request_timeout: Duration,
}

impl Target {
    /// The time left before the deadline, capped at the request timeout.
    pub fn request_budget(&self) -> Duration {
        self.deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(self.request_timeout)
    }
}

/// What a workload measured, and the first error it met (the figures stay partial then).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub figures: Figures,
    pub error: Option<WorkloadError>,
}

/// One kind of activity: a real client that measures it against a real server.
#[async_trait]
pub trait Workload: Send + Sync {
    fn kind(&self) -> Kind;
    /// Runs the activity against `target`, ending by its deadline. Never panics.
    async fn run(&self, target: &Target) -> Measured;
}

/// Declares each kind's client module (`src/<module>.rs`, defining `Client(<Params>)`) and
/// the dispatch from [`Params`] to it, from the one list of kinds
/// ([`callwall_workload::for_each_kind!`]).
macro_rules! clients {
    ($($variant:ident $module:ident $params:ident,)*) => {
        $(pub mod $module;)*

        /// The workload implementation for `params`.
        pub fn workload_for(params: &Params) -> Box<dyn Workload> {
            match *params {
                $(Params::$variant(p) => Box::new($module::Client(p)),)*
            }
        }
    };
}

callwall_workload::for_each_kind!(clients);

/// All-zero figures of a kind: what a workload that never reached its server measured.
pub fn empty_figures(params: &Params) -> Figures {
    params.empty_figures()
}

/// Runs one client workload: wait for the start, resolve, run, judge. Always returns.
pub async fn run_client(spec: &ClientSpec) -> WorkloadReport {
    let now_ns = unix_ns_now();
    if spec.start_at_unix_ns > now_ns {
        tokio::time::sleep(Duration::from_nanos(spec.start_at_unix_ns - now_ns)).await;
    }
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.timeout.as_std();
    let mut report = WorkloadReport {
        name: spec.name.clone(),
        kind: spec.params.kind(),
        app: spec.app.clone(),
        server_name: spec.server_name.clone(),
        resolved: Vec::new(),
        outcome: callwall_workload::Outcome::Failed,
        figures: empty_figures(&spec.params),
        elapsed_ms: 0.0,
        error: None,
    };
    let finish = |mut r: WorkloadReport, err: Option<WorkloadError>| {
        r.outcome = judge(&spec.params, &r.figures);
        r.error = err.map(|e| e.to_string());
        r.elapsed_ms = ms(started.elapsed());
        r
    };
    if let Err(e) = spec.params.validate() {
        return finish(report, Some(WorkloadError::Config(e.to_string())));
    }
    let ip = match (spec.resolver, spec.server_addr) {
        (Some(resolver), _) => {
            match tokio::time::timeout_at(deadline, dns::resolve(resolver, &spec.server_name)).await
            {
                Ok(Ok(addrs)) => {
                    report.resolved = addrs.clone();
                    addrs[0]
                }
                Ok(Err(e)) => return finish(report, Some(e)),
                Err(_) => {
                    return finish(
                        report,
                        Some(WorkloadError::Timeout("resolving the name".into())),
                    )
                }
            }
        }
        (None, Some(addr)) => addr,
        (None, None) => {
            return finish(
                report,
                Some(WorkloadError::Config("give a resolver or a server_addr".into())),
            )
        }
    };
    let target = Target {
        addr: SocketAddr::new(ip, spec.port.unwrap_or(DEFAULT_PORT)),
        server_name: spec.server_name.clone(),
        ca_pem: spec.ca_pem.clone(),
        deadline,
        request_timeout: spec.request_timeout.map_or(Duration::MAX, |d| d.as_std()),
    };
    let workload = workload_for(&spec.params);
    match tokio::time::timeout_at(deadline + HARD_SLACK, workload.run(&target)).await {
        Ok(m) => {
            report.figures = m.figures;
            finish(report, m.error)
        }
        Err(_) => finish(report, Some(WorkloadError::Timeout("the workload overran".into()))),
    }
}

/// A server with its sockets bound.
pub struct Server {
    config: ServerConfig,
    tcp: TcpListener,
    udp: Option<UdpSocket>,
}

impl Server {
    /// Binds every socket the role needs (TCP, plus UDP for http and dns on the same port).
    pub async fn bind(config: ServerConfig) -> Result<Server, WorkloadError> {
        let default = if config.role == ServerRole::Dns { DNS_PORT } else { DEFAULT_PORT };
        let port = config.port.unwrap_or(default);
        let io =
            |e: std::io::Error| WorkloadError::Io(format!("binding {}:{port}: {e}", config.listen));
        let tcp = TcpListener::bind(SocketAddr::new(config.listen, port)).await.map_err(io)?;
        let port = tcp.local_addr().map_err(io)?.port();
        let udp = match config.role {
            ServerRole::Message => None,
            ServerRole::Dns => {
                Some(UdpSocket::bind(SocketAddr::new(config.listen, port)).await.map_err(io)?)
            }
            // quinn binds its own socket in `run`; check the port is free now.
            ServerRole::Http => {
                Some(UdpSocket::bind(SocketAddr::new(config.listen, port)).await.map_err(io)?)
            }
        };
        if config.role != ServerRole::Dns && config.identity.is_none() {
            return Err(WorkloadError::Config(
                "a message or http server needs an identity (certificate and key)".into(),
            ));
        }
        Ok(Server { config, tcp, udp })
    }

    /// The bound TCP (and UDP) address.
    pub fn local_addr(&self) -> Result<SocketAddr, WorkloadError> {
        self.tcp.local_addr().map_err(|e| WorkloadError::Io(e.to_string()))
    }

    /// Serves until the task is dropped or a socket fails.
    pub async fn run(self) -> Result<(), WorkloadError> {
        let Server { config, tcp, udp } = self;
        match config.role {
            ServerRole::Dns => {
                let udp = udp.ok_or_else(|| WorkloadError::Config("no udp socket".into()))?;
                dns::serve(udp, tcp, config.zone.unwrap_or_default()).await
            }
            ServerRole::Message => {
                let id = config.identity.as_ref().ok_or_else(|| {
                    WorkloadError::Config("a message server needs an identity".into())
                })?;
                message::serve(tcp, id).await
            }
            ServerRole::Http => {
                let id = config.identity.as_ref().ok_or_else(|| {
                    WorkloadError::Config("an http server needs an identity".into())
                })?;
                let udp = udp.ok_or_else(|| WorkloadError::Config("no udp socket".into()))?;
                http::serve(tcp, udp.into_std().map_err(|e| WorkloadError::Io(e.to_string()))?, id)
                    .await
            }
        }
    }
}

/// Binds and serves `config` (for a server subcommand).
pub async fn serve(config: ServerConfig) -> Result<(), WorkloadError> {
    Server::bind(config).await?.run().await
}

/// Now on the shared system clock, UNIX ns.
pub fn unix_ns_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
