//! The censor's syscalls: AF_PACKET sockets and poll(2). All `unsafe` of the crate is here
//! and in `ring` (the receive ring's mapping).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::ring::{RingConfig, RxRing};

const ETH_P_ALL: u16 = 0x0003;
const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A raw packet socket bound to one interface, promiscuous, ignoring its own transmissions;
/// optionally with a `TPACKET_V3` receive ring (then frames are read with
/// [`PacketSocket::ring`], not [`PacketSocket::recv_batch`]).
pub struct PacketSocket {
    // Declared before `fd`: the ring is unmapped before the socket closes.
    ring: Option<RxRing>,
    fd: OwnedFd,
}

impl PacketSocket {
    /// The receive ring, when the socket was opened with one.
    pub fn ring(&self) -> Option<&RxRing> {
        self.ring.as_ref()
    }

    /// Opens a packet socket on `ifname`, with a receive ring when `ring` is given.
    pub fn bind_with(ifname: &str, ring: Option<RingConfig>) -> io::Result<PacketSocket> {
        let name = CString::new(ifname).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL byte")
        })?;
        // SAFETY: plain syscalls with valid arguments; the fd is owned right after creation.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            if ifindex == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no interface named {ifname:?} in this namespace"),
                ));
            }
            let raw = cvt(libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ALL.to_be()),
            ))?;
            let fd = OwnedFd::from_raw_fd(raw);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = ETH_P_ALL.to_be();
            sll.sll_ifindex = ifindex;
            cvt(libc::bind(
                raw,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            ))?;
            let mut mreq: libc::packet_mreq = std::mem::zeroed();
            mreq.mr_ifindex = ifindex;
            mreq.mr_type = PACKET_MR_PROMISC;
            setsockopt(raw, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)?;
            setsockopt(raw, SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32)?;
            // Best effort: skip the qdisc on send (faster), bigger buffers.
            let _ = setsockopt(raw, SOL_PACKET, PACKET_QDISC_BYPASS, &1i32);
            let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &(8i32 << 20));
            let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &(8i32 << 20));
            let ring = match ring {
                Some(cfg) => Some(RxRing::setup(raw, cfg)?),
                None => None,
            };
            Ok(PacketSocket { ring, fd })
        }
    }

    /// Sends one frame out of the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is valid for reads of frame.len() bytes.
        let n = unsafe {
            libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT)
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: val points to a live T of the given size.
    cvt(unsafe {
        libc::setsockopt(fd, level, name, (val as *const T).cast(), std::mem::size_of::<T>() as u32)
    })
    .map(drop)
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (-1: forever). Returns the
/// `revents` of each fd.
pub fn poll(fds: &[RawFd], timeout_ms: i32, revents: &mut [i16]) -> io::Result<usize> {
    let mut pfds: [libc::pollfd; 4] = [libc::pollfd { fd: -1, events: 0, revents: 0 }; 4];
    let n = fds.len().min(4);
    for (p, &fd) in pfds.iter_mut().zip(fds) {
        p.fd = fd;
        p.events = libc::POLLIN;
    }
    // SAFETY: pfds has n valid entries.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    for (out, p) in revents.iter_mut().zip(&pfds[..n]) {
        *out = p.revents;
    }
    Ok(r as usize)
}

pub const POLLIN: i16 = libc::POLLIN;
pub const POLLHUP_ERR: i16 = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;

/// Reads from a raw fd (the stop pipe); `Ok(0)` at end of file.
pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl PacketSocket {
    /// Receives up to `lens.len()` frames with one `recvmmsg(2)`, frame `i` into bytes
    /// `i * slot..(i + 1) * slot` of `buf`. `lens[i]` is the frame's real length, which is
    /// more than `slot` when the frame was cut short (`MSG_TRUNC`). Returns how many frames
    /// arrived; 0 when none is waiting.
    pub fn recv_batch(&self, buf: &mut [u8], slot: usize, lens: &mut [usize]) -> io::Result<usize> {
        let n = lens.len().min(buf.len() / slot.max(1)).min(MAX_BATCH);
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: zeroed iovec/mmsghdr are valid (null pointers, zero lengths).
        let mut iov: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        for (i, chunk) in buf.chunks_exact_mut(slot).take(n).enumerate() {
            iov[i] = libc::iovec { iov_base: chunk.as_mut_ptr().cast(), iov_len: slot };
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: each header points to one iovec over a distinct `slot`-byte part of buf,
        // all alive for the call; n <= MAX_BATCH entries are initialised.
        let r = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let got = r as usize;
        for (len, h) in lens.iter_mut().zip(&hdrs[..got]) {
            // With MSG_TRUNC a packet socket reports the frame's full length.
            *len = h.msg_len as usize;
        }
        Ok(got)
    }

    /// Sends frames out of the interface with `sendmmsg(2)`, in order. Returns how many
    /// were sent, how many the kernel refused and how many syscalls it took; a refused
    /// frame is skipped (lost, as one `send` failing was) and the rest are still sent.
    pub fn send_batch(&self, frames: &[&[u8]]) -> (usize, usize, usize) {
        let (mut sent, mut failed, mut calls) = (0, 0, 0);
        let mut rest = frames;
        while !rest.is_empty() {
            let n = rest.len().min(MAX_BATCH);
            // SAFETY: as in recv_batch; the iovecs only read the frames.
            let mut iov: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
            let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
            for (i, f) in rest[..n].iter().enumerate() {
                iov[i] =
                    libc::iovec { iov_base: f.as_ptr() as *mut libc::c_void, iov_len: f.len() };
                hdrs[i].msg_hdr.msg_iov = &mut iov[i];
                hdrs[i].msg_hdr.msg_iovlen = 1;
            }
            calls += 1;
            // SAFETY: n initialised headers, each over a live frame.
            let r = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                // The first frame failed: count it and go on with the next.
                failed += 1;
                rest = &rest[1..];
            } else {
                sent += r as usize;
                rest = &rest[r as usize..];
            }
        }
        (sent, failed, calls)
    }
}

/// Most frames one `recv_batch`/`sendmmsg` call handles.
pub const MAX_BATCH: usize = 64;
