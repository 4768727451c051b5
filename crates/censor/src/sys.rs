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
const PACKET_STATISTICS: libc::c_int = 6;

/// Receive buffer of a packet socket unless told otherwise: 64 MiB (the kernel doubles it
/// and charges each frame's whole buffer, about 1-4 KiB: tens of thousands of frames, some
/// seconds of 30 calls when the censor is starved of CPU).
pub const DEFAULT_RCVBUF: u32 = 64 << 20;

/// What the kernel counted on a packet socket since the last read (`PACKET_STATISTICS`;
/// reading resets them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounts {
    /// Frames queued for the socket, read or dropped (`tp_packets`).
    pub frames: u64,
    /// Frames dropped because the receive buffer or the ring was full (`tp_drops`).
    pub drops: u64,
    /// Times the ring was full and the queue froze (`tp_freeze_q_cnt`; TPACKET_V3 only).
    pub freezes: u64,
}

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

    /// Opens a packet socket on `ifname`, with a receive ring when `ring` is given and a
    /// receive buffer of `rcvbuf` bytes (`SO_RCVBUFFORCE`, or `SO_RCVBUF` up to the
    /// `rmem_max` limit without the privilege; [`DEFAULT_RCVBUF`] by default).
    pub fn bind_opts(
        ifname: &str,
        ring: Option<RingConfig>,
        rcvbuf: u32,
    ) -> io::Result<PacketSocket> {
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
            let rcvbuf = rcvbuf.min(i32::MAX as u32 / 2) as i32;
            if setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &rcvbuf).is_err() {
                let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf);
            }
            let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &(8i32 << 20));
            let ring = match ring {
                Some(cfg) => Some(RxRing::setup(raw, cfg)?),
                None => None,
            };
            let sock = PacketSocket { ring, fd };
            // Frames counted before the bind (any interface) are not the censor's.
            let _ = sock.take_kernel_counts();
            Ok(sock)
        }
    }

    /// The kernel's counters of this socket since the last call (reading resets them).
    pub fn take_kernel_counts(&self) -> io::Result<KernelCounts> {
        let mut st = [0u32; 3];
        let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
        // SAFETY: st is valid for writes of len bytes; the kernel writes at most len bytes
        // (`struct tpacket_stats_v3` on a TPACKET_V3 socket, `tpacket_stats` otherwise).
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                st.as_mut_ptr().cast(),
                &mut len,
            )
        })?;
        let freezes = if len as usize >= 12 { st[2] } else { 0 };
        Ok(KernelCounts {
            frames: u64::from(st[0]),
            drops: u64::from(st[1]),
            freezes: u64::from(freezes),
        })
    }

    /// The receive buffer the kernel granted, in bytes (`SO_RCVBUF`: twice what was asked).
    pub fn rcvbuf(&self) -> io::Result<u32> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: v is a live c_int of len bytes.
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        })?;
        Ok(v.max(0) as u32)
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

/// Frames dropped from every CPU's input backlog since boot (`/proc/net/softnet_stat`, the
/// second column, summed): machine-wide. `None` when the file cannot be read.
pub fn backlog_drops() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/net/softnet_stat").ok()?;
    let mut total = 0u64;
    for line in s.lines() {
        let col = line.split_whitespace().nth(1)?;
        total += u64::from_str_radix(col, 16).ok()?;
    }
    Some(total)
}

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
