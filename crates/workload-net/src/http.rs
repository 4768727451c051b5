//! The HTTP server of the media, web and video hosts (HTTPS/1.1 over TCP with hyper, HTTP/3
//! over QUIC with h3 + quinn, both on the same port), and one client for both.
//!
//! Routes (see [`route`], a pure function of method, path and body):
//! - `GET <path>?bytes=N` returns N bytes: pages, map tiles, video chunks. The path is free,
//!   so clients use the paths real services use (`/13/4850/2786.png`, `/videoplayback`).
//! - `POST /upload/<id>` stores the body (a voice note); `GET /media/<id>` returns it.
//!
//! Bodies are bounded by [`MAX_BODY`]; the store keeps the last [`STORE_ENTRIES`] uploads.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use callwall_workload::limits::MAX_BODY;
use callwall_workload::HttpProto;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::tls::{client_config, server_config, Identity, ALPN_H3, ALPN_HTTP11};
use crate::{Target, WorkloadError};

/// Uploads a server keeps (oldest dropped first).
pub const STORE_ENTRIES: usize = 64;
/// Largest piece of a body handed to h3 at once.
const H3_PIECE: usize = 64 * 1024;

/// Uploaded voice notes by id.
#[derive(Debug, Default)]
pub struct Store(Mutex<VecDeque<(String, Bytes)>>);

impl Store {
    fn put(&self, id: &str, body: Bytes) {
        if let Ok(mut s) = self.0.lock() {
            s.retain(|(k, _)| k != id);
            if s.len() >= STORE_ENTRIES {
                s.pop_front();
            }
            s.push_back((id.to_string(), body));
        }
    }
    fn get(&self, id: &str) -> Option<Bytes> {
        self.0.lock().ok()?.iter().find(|(k, _)| k == id).map(|(_, b)| b.clone())
    }
}

/// The `bytes=N` query parameter.
fn bytes_param(query: Option<&str>) -> Option<u64> {
    query?.split('&').find_map(|kv| kv.strip_prefix("bytes=")).and_then(|v| v.parse().ok())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The response to a request. Pure apart from the upload store.
pub fn route(
    store: &Store,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: Bytes,
) -> (StatusCode, Bytes) {
    if method == Method::POST {
        return match path.strip_prefix("/upload/") {
            Some(id) if valid_id(id) => {
                store.put(id, body);
                (StatusCode::CREATED, Bytes::new())
            }
            _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"post to /upload/<id>\n")),
        };
    }
    if method != Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
    }
    if let Some(id) = path.strip_prefix("/media/") {
        return match store.get(id) {
            Some(b) => (StatusCode::OK, b),
            None => (StatusCode::NOT_FOUND, Bytes::from_static(b"no such media\n")),
        };
    }
    match bytes_param(query) {
        Some(n) if n <= MAX_BODY => (StatusCode::OK, Bytes::from(vec![0x5a; n as usize])),
        Some(_) => (StatusCode::PAYLOAD_TOO_LARGE, Bytes::new()),
        None => (StatusCode::NOT_FOUND, Bytes::from_static(b"ask for ?bytes=N\n")),
    }
}

pub(crate) async fn serve(
    tcp: TcpListener,
    udp: std::net::UdpSocket,
    identity: &Identity,
) -> Result<(), WorkloadError> {
    let store: Arc<Store> = Arc::default();
    let acceptor = TlsAcceptor::from(Arc::new(server_config(identity, ALPN_HTTP11, false)?));
    let qcfg =
        quinn::crypto::rustls::QuicServerConfig::try_from(server_config(identity, ALPN_H3, true)?)
            .map_err(|e| WorkloadError::Tls(e.to_string()))?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(quinn::ServerConfig::with_crypto(Arc::new(qcfg))),
        udp,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| WorkloadError::Quic(format!("server endpoint: {e}")))?;
    let h3_store = store.clone();
    let h3_task = tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            let store = h3_store.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                serve_h3(conn, store).await;
            });
        }
    });
    loop {
        let Ok((sock, _)) = tcp.accept().await else { continue };
        let _ = sock.set_nodelay(true);
        let acceptor = acceptor.clone();
        let store = store.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(sock).await else { return };
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let store = store.clone();
                async move { Ok::<_, Infallible>(serve_https(req, &store).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
        if h3_task.is_finished() {
            return Err(WorkloadError::Quic("the http/3 endpoint stopped".into()));
        }
    }
}

async fn serve_https(req: Request<Incoming>, store: &Store) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY as usize).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return r;
        }
    };
    let (status, out) = route(store, &parts.method, parts.uri.path(), parts.uri.query(), body);
    let mut r = Response::new(Full::new(out));
    *r.status_mut() = status;
    r
}

async fn serve_h3(conn: quinn::Connection, store: Arc<Store>) {
    let Ok(mut h3c) =
        h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(conn)).await
    else {
        return;
    };
    while let Ok(Some(resolver)) = h3c.accept().await {
        let store = store.clone();
        tokio::spawn(async move {
            let Ok((req, mut stream)) = resolver.resolve_request().await else { return };
            let mut body = Vec::new();
            while let Ok(Some(mut chunk)) = stream.recv_data().await {
                if body.len() + chunk.remaining() > MAX_BODY as usize {
                    return;
                }
                while chunk.has_remaining() {
                    let c = chunk.chunk();
                    body.extend_from_slice(c);
                    let n = c.len();
                    chunk.advance(n);
                }
            }
            let (status, out) =
                route(&store, req.method(), req.uri().path(), req.uri().query(), body.into());
            let Ok(resp) = Response::builder().status(status).body(()) else { return };
            if stream.send_response(resp).await.is_err() {
                return;
            }
            let mut rest = out;
            while !rest.is_empty() {
                let piece = rest.split_to(rest.len().min(H3_PIECE));
                if stream.send_data(piece).await.is_err() {
                    return;
                }
            }
            let _ = stream.finish().await;
        });
    }
}

/// A connection to an HTTP server over TLS/TCP or QUIC, reused for every request.
pub enum HttpClient {
    Https(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H3 { send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>, endpoint: quinn::Endpoint },
}

/// What a request got back.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub bytes: u64,
    /// The body, when asked to keep it.
    pub body: Option<Bytes>,
}

impl HttpClient {
    /// Connects to `target` over `proto` (TCP + TLS, or QUIC), offering ALPN `http/1.1` or `h3`.
    pub async fn connect(proto: HttpProto, t: &Target) -> Result<HttpClient, WorkloadError> {
        let budget = t.request_budget();
        let what = format!("{} connection to {} not up after {budget:?}", proto.as_str(), t.addr);
        tokio::time::timeout(budget, Self::connect_inner(proto, t))
            .await
            .map_err(|_| WorkloadError::Timeout(what))?
    }

    async fn connect_inner(proto: HttpProto, t: &Target) -> Result<HttpClient, WorkloadError> {
        let name = rustls::pki_types::ServerName::try_from(t.server_name.clone())
            .map_err(|e| WorkloadError::Config(format!("server name {:?}: {e}", t.server_name)))?;
        match proto {
            HttpProto::Https => {
                let sock = TcpStream::connect(t.addr)
                    .await
                    .map_err(|e| WorkloadError::Connect(format!("{}: {e}", t.addr)))?;
                let _ = sock.set_nodelay(true);
                let cfg = client_config(&t.ca_pem, ALPN_HTTP11, false)?;
                let tls = TlsConnector::from(Arc::new(cfg))
                    .connect(name, sock)
                    .await
                    .map_err(|e| WorkloadError::Tls(e.to_string()))?;
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| WorkloadError::Http(e.to_string()))?;
                tokio::spawn(conn);
                Ok(HttpClient::Https(send))
            }
            HttpProto::H3 => {
                let bind: SocketAddr =
                    if t.addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                let mut endpoint = quinn::Endpoint::client(bind)
                    .map_err(|e| WorkloadError::Io(format!("quic socket: {e}")))?;
                let qcfg = quinn::crypto::rustls::QuicClientConfig::try_from(client_config(
                    &t.ca_pem, ALPN_H3, true,
                )?)
                .map_err(|e| WorkloadError::Tls(e.to_string()))?;
                endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(qcfg)));
                let conn = endpoint
                    .connect(t.addr, &t.server_name)
                    .map_err(|e| WorkloadError::Quic(e.to_string()))?
                    .await
                    .map_err(|e| WorkloadError::Quic(e.to_string()))?;
                let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn))
                    .await
                    .map_err(|e| WorkloadError::Http(format!("h3 setup: {e}")))?;
                tokio::spawn(async move {
                    let _ = futures_util::future::poll_fn(|cx| driver.poll_close(cx)).await;
                });
                Ok(HttpClient::H3 { send, endpoint })
            }
        }
    }

    /// GETs `path` from `server_name`, counting (and, with `keep`, keeping) the body.
    pub async fn get(
        &mut self,
        server_name: &str,
        path: &str,
        keep: bool,
    ) -> Result<Fetched, WorkloadError> {
        self.request(Method::GET, server_name, path, Bytes::new(), keep).await
    }

    /// POSTs `body` to `path`.
    pub async fn post(
        &mut self,
        server_name: &str,
        path: &str,
        body: Bytes,
    ) -> Result<(), WorkloadError> {
        self.request(Method::POST, server_name, path, body, false).await.map(|_| ())
    }

    async fn request(
        &mut self,
        method: Method,
        server_name: &str,
        path: &str,
        body: Bytes,
        keep: bool,
    ) -> Result<Fetched, WorkloadError> {
        let http_err = |e: &dyn std::fmt::Display| WorkloadError::Http(e.to_string());
        let uri = format!("https://{server_name}{path}");
        let mut kept = keep.then(Vec::new);
        let mut n = 0u64;
        match self {
            HttpClient::Https(send) => {
                let req = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(http::header::HOST, server_name)
                    .body(Full::new(body))
                    .map_err(|e| http_err(&e))?;
                // HTTP/1.1 carries one request at a time: wait until the previous exchange is
                // fully done on the connection task, or send_request fails as "canceled".
                send.ready().await.map_err(|e| http_err(&e))?;
                let resp = send.send_request(req).await.map_err(|e| http_err(&e))?;
                if !resp.status().is_success() {
                    return Err(WorkloadError::Http(format!("{uri}: status {}", resp.status())));
                }
                let mut b = resp.into_body();
                while let Some(frame) = b.frame().await {
                    let frame = frame.map_err(|e| http_err(&e))?;
                    if let Some(d) = frame.data_ref() {
                        n += d.len() as u64;
                        if let Some(k) = kept.as_mut() {
                            k.extend_from_slice(d);
                        }
                    }
                }
            }
            HttpClient::H3 { send, .. } => {
                let req = Request::builder()
                    .method(method)
                    .uri(&uri)
                    .body(())
                    .map_err(|e| http_err(&e))?;
                let mut stream = send.send_request(req).await.map_err(|e| http_err(&e))?;
                let mut rest = body;
                while !rest.is_empty() {
                    let piece = rest.split_to(rest.len().min(H3_PIECE));
                    stream.send_data(piece).await.map_err(|e| http_err(&e))?;
                }
                stream.finish().await.map_err(|e| http_err(&e))?;
                let resp = stream.recv_response().await.map_err(|e| http_err(&e))?;
                if !resp.status().is_success() {
                    return Err(WorkloadError::Http(format!("{uri}: status {}", resp.status())));
                }
                while let Some(mut chunk) = stream.recv_data().await.map_err(|e| http_err(&e))? {
                    while chunk.has_remaining() {
                        let c = chunk.chunk();
                        n += c.len() as u64;
                        if let Some(k) = kept.as_mut() {
                            k.extend_from_slice(c);
                        }
                        let len = c.len();
                        chunk.advance(len);
                    }
                }
            }
        }
        Ok(Fetched { bytes: n, body: kept.map(Bytes::from) })
    }

    /// Closes the connection politely (QUIC: CONNECTION_CLOSE, so the server frees it).
    pub fn close(self) {
        if let HttpClient::H3 { endpoint, .. } = self {
            endpoint.close(0u32.into(), b"done");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let s = Store::default();
        let (st, b) =
            route(&s, &Method::GET, "/13/4850/2786.png", Some("bytes=20000"), Bytes::new());
        assert_eq!((st, b.len()), (StatusCode::OK, 20_000));
        let (st, _) = route(&s, &Method::GET, "/x", Some("bytes=99999999999"), Bytes::new());
        assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
        let (st, _) = route(&s, &Method::GET, "/x", None, Bytes::new());
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = route(&s, &Method::POST, "/upload/abc-1", None, Bytes::from_static(b"opus"));
        assert_eq!(st, StatusCode::CREATED);
        let (st, b) = route(&s, &Method::GET, "/media/abc-1", None, Bytes::new());
        assert_eq!((st, &b[..]), (StatusCode::OK, &b"opus"[..]));
        let (st, _) = route(&s, &Method::POST, "/upload/../etc", None, Bytes::new());
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = route(&s, &Method::DELETE, "/media/abc-1", None, Bytes::new());
        assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn the_store_is_bounded() {
        let s = Store::default();
        for i in 0..STORE_ENTRIES + 5 {
            s.put(&format!("n{i}"), Bytes::from_static(b"x"));
        }
        assert!(s.get("n0").is_none());
        assert!(s.get(&format!("n{}", STORE_ENTRIES + 4)).is_some());
    }
}
