//! Outgoing TCP connections from the call's own address.
//!
//! Each call has its own address (`ctx.local_ip`), often a secondary address of the
//! interface. An unbound `connect` lets the kernel pick the source address, which is the
//! interface's primary one, so:
//! - webrtc-rs 0.21 dials active ICE-TCP candidates with `Runtime::connect_tcp`
//!   (`RTCTcpTransport::connect`), unbound; the stream's local address then matches no local
//!   candidate (the active candidate is on `ctx.local_ip`) and ICE discards every message on
//!   it ("Discarded message, not a valid local candidate"). [`BoundRuntime`] is the tokio
//!   runtime with `connect_tcp` bound to the call's address;
//! - the TURN-over-TCP/TLS adapter's stream would be attributed to the wrong address by the
//!   censor; it uses [`connect_from`] too.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// Connects to `remote` from `bind_ip` (ephemeral port). When the address families differ
/// (no route from `bind_ip` could exist), connects unbound.
pub(crate) async fn connect_from(bind_ip: IpAddr, remote: SocketAddr) -> io::Result<TcpStream> {
    let socket = match (bind_ip, remote) {
        (IpAddr::V4(_), SocketAddr::V4(_)) => TcpSocket::new_v4()?,
        (IpAddr::V6(_), SocketAddr::V6(_)) => TcpSocket::new_v6()?,
        _ => return TcpStream::connect(remote).await,
    };
    socket.bind(SocketAddr::new(bind_ip, 0))?;
    socket.connect(remote).await
}

/// The tokio runtime of webrtc-rs, except that outgoing TCP connections (active ICE-TCP)
/// leave from `bind_ip`.
pub(crate) struct BoundRuntime {
    inner: TokioRuntime,
    bind_ip: IpAddr,
}

impl BoundRuntime {
    pub(crate) fn shared(bind_ip: IpAddr) -> Arc<dyn Runtime> {
        Arc::new(BoundRuntime { inner: TokioRuntime, bind_ip })
    }
}

impl fmt::Debug for BoundRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundRuntime").field("bind_ip", &self.bind_ip).finish()
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime for BoundRuntime {
    fn spawn(&self, future: BoxFuture<'static, ()>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: BoxFuture<'static, ()>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> BoxFuture<'a, io::Result<Arc<dyn AsyncTcpStream>>> {
        Box::pin(async move {
            let stream = connect_from(self.bind_ip, remote_addr).await?;
            stream.set_nodelay(true)?;
            let local_addr = stream.local_addr()?;
            let peer_addr = stream.peer_addr()?;
            tracing::debug!("ice-tcp connection {local_addr} -> {peer_addr}");
            let (read_half, write_half) = stream.into_split();
            Ok(Arc::new(BoundTcpStream { read_half, write_half, local_addr, peer_addr })
                as Arc<dyn AsyncTcpStream>)
        })
    }

    delegate_runtime_basics!();

    fn name(&self) -> &'static str {
        "tokio (bound tcp connect)"
    }
}

/// A TCP stream for webrtc-rs, like the tokio runtime's own.
#[derive(Debug)]
struct BoundTcpStream {
    read_half: OwnedReadHalf,
    write_half: OwnedWriteHalf,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
}

impl AsyncTcpStream for BoundTcpStream {
    fn read<'a, 'b>(&'a self, buf: &'b mut [u8]) -> BoxFuture<'b, io::Result<usize>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            loop {
                self.read_half.readable().await?;
                match self.read_half.try_read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn write_all<'a, 'b>(&'a self, buf: &'b [u8]) -> BoxFuture<'b, io::Result<()>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            let mut rest = buf;
            while !rest.is_empty() {
                self.write_half.writable().await?;
                match self.write_half.try_write(rest) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "failed to write any bytes",
                        ))
                    }
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 127.0.0.2 is not the kernel's source for 127.0.0.3 (that is 127.0.0.1), so this fails
    /// if the bind is lost.
    #[tokio::test]
    async fn connections_leave_from_the_bound_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.3:0").await.expect("listen");
        let remote = listener.local_addr().expect("addr");
        let bind: IpAddr = "127.0.0.2".parse().expect("ip");
        let rt = BoundRuntime::shared(bind);
        let (stream, accepted) = tokio::join!(rt.connect_tcp(remote), listener.accept());
        let stream = stream.expect("connect");
        let (_, from) = accepted.expect("accept");
        assert_eq!(stream.local_addr().expect("local").ip(), bind);
        assert_eq!(from.ip(), bind);
        assert_eq!(stream.peer_addr().expect("peer"), remote);
        let unbound = TcpStream::connect(remote).await.expect("unbound connect");
        assert_ne!(unbound.local_addr().expect("local").ip(), bind, "the test proves nothing");
    }
}
