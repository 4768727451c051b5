//! A minimal rtnetlink client over a `NETLINK_ROUTE` socket, written by hand.
//!
//! Requests are encoded into a [`Batch`] (several messages in one datagram, each with
//! `NLM_F_ACK`), sent with one `send(2)`, and their ACKs are collected; the first error is
//! returned with its errno and the kernel's extended-ack text. The socket is bound to the
//! network namespace of the thread that created it, for its whole life.
//!
//! Why not `netlink-packet-route` (issue 10, item 7)? Kept ours: the batching above is the
//! point (a topology of dozens of veths, addresses and routes is a handful of datagrams, and
//! the first failing request is named with the kernel's extended-ack text), and the messages we
//! build are few and fixed (veth pair, bridge, master, up, address, route, delete link or
//! group): a few hundred lines of encoding with no dependencies. `netlink-packet-route` would
//! give typed messages we would still serialise into our own batch buffer and ack loop, brings
//! `netlink-packet-core` and friends with it, and has changed its message API in most minor
//! releases. Revisit if we need to parse dumps richer than the link and address lists here.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{NetnsError, ReplyDefect};

// <linux/netlink.h>
const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

// <linux/rtnetlink.h>
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const RTA_DST: u16 = 1;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;

// <linux/if_link.h>, <linux/veth.h>, <linux/if_addr.h>
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_GROUP: u16 = 27;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
/// `IFA_F_NODAD`: no duplicate address detection for this IPv6 address.
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_PERMANENT: u32 = 0x80;

/// `IFF_UP` from `<net/if.h>`.
pub const IFF_UP: u32 = libc::IFF_UP as u32;

/// One link as reported by `RTM_GETLINK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index in its namespace.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address (all zero for `lo`).
    pub mac: [u8; 6],
    /// `ifi_flags` (`IFF_UP`, ...).
    pub flags: u32,
}

/// One end of a veth pair to create.
#[derive(Debug, Clone, Copy)]
pub struct VethEnd<'a> {
    /// Interface name (at most 15 bytes).
    pub name: &'a str,
    /// Namespace to create it in.
    pub netns: BorrowedFd<'a>,
    /// Fixed MAC address, or `None` for a random one.
    pub mac: Option<[u8; 6]>,
    /// Device group (`IFLA_GROUP`), so all can be deleted with one request per namespace.
    pub group: u32,
}

/// Several rtnetlink requests, sent in one datagram and acknowledged one by one.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    /// (offset of the message header, description of the request)
    msgs: Vec<(usize, String)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of requests.
    #[allow(dead_code)]
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Whether there is no request.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    fn begin(&mut self, ty: u16, flags: u16, op: String) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // len, patched in finish
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, patched when sent
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: kernel fills in
        self.msgs.push((start, op));
        start
    }

    fn finish(&mut self, start: usize) {
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v);
    }

    fn nest_begin(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        at
    }

    fn nest_end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `struct ifinfomsg`.
    fn ifinfomsg(&mut self, index: i32, flags: u32, change: u32) {
        self.buf.push(libc::AF_UNSPEC as u8);
        self.buf.push(0);
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    /// `RTM_NEWLINK` of a veth pair, each end created directly in its namespace
    /// (`IFLA_NET_NS_FD` on the link and inside `VETH_INFO_PEER`); end `a` is set up when
    /// `up` (the peer cannot be: set it up with [`Batch::set_up`]).
    pub fn create_veth(&mut self, a: VethEnd<'_>, b: VethEnd<'_>, up: bool) {
        let (flags, change) = if up { (IFF_UP, IFF_UP) } else { (0, 0) };
        let m = self.begin(
            RTM_NEWLINK,
            NLM_F_CREATE | NLM_F_EXCL,
            format!("create veth {}<->{}", a.name, b.name),
        );
        self.ifinfomsg(0, flags, change);
        self.attr_str(IFLA_IFNAME, a.name);
        if let Some(mac) = a.mac {
            self.attr(IFLA_ADDRESS, &mac);
        }
        self.attr(IFLA_GROUP, &a.group.to_ne_bytes());
        self.attr(IFLA_NET_NS_FD, &a.netns.as_raw_fd().to_ne_bytes());
        let info = self.nest_begin(IFLA_LINKINFO);
        self.attr_str(IFLA_INFO_KIND, "veth");
        let data = self.nest_begin(IFLA_INFO_DATA);
        let peer = self.nest_begin(VETH_INFO_PEER);
        // No IFF_UP on the peer: it is configured before the pair is joined, and
        // veth_open() then fails with ENOTCONN. Set it up afterwards with `set_up`.
        self.ifinfomsg(0, 0, 0);
        self.attr_str(IFLA_IFNAME, b.name);
        if let Some(mac) = b.mac {
            self.attr(IFLA_ADDRESS, &mac);
        }
        self.attr(IFLA_GROUP, &b.group.to_ne_bytes());
        self.attr(IFLA_NET_NS_FD, &b.netns.as_raw_fd().to_ne_bytes());
        self.nest_end(peer);
        self.nest_end(data);
        self.nest_end(info);
        self.finish(m);
    }

    /// `RTM_NEWLINK` setting `IFF_UP` on an existing link.
    pub fn set_up(&mut self, index: u32) {
        let m = self.begin(RTM_NEWLINK, 0, format!("set link {index} up"));
        self.ifinfomsg(index as i32, IFF_UP, IFF_UP);
        self.finish(m);
    }

    /// `RTM_DELLINK` (deleting one end of a veth deletes both).
    pub fn delete_link(&mut self, index: u32) {
        let m = self.begin(RTM_DELLINK, 0, format!("delete link {index}"));
        self.ifinfomsg(index as i32, 0, 0);
        self.finish(m);
    }

    /// `RTM_DELLINK` of every link of device group `group` in the socket's namespace, in
    /// one kernel batch (one RCU grace period instead of one per link). Veth peers in other
    /// namespaces go with them.
    pub fn delete_group(&mut self, group: u32) {
        let m = self.begin(RTM_DELLINK, 0, format!("delete link group {group:#x}"));
        self.ifinfomsg(0, 0, 0);
        self.attr(IFLA_GROUP, &group.to_ne_bytes());
        self.finish(m);
    }

    /// `RTM_NEWADDR`; IPv6 addresses get `IFA_F_NODAD` so they are usable at once.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) {
        let m = self.begin(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_EXCL,
            format!("add address {addr}/{prefix_len} to link {index}"),
        );
        let (family, flags) = match addr {
            IpAddr::V4(_) => (libc::AF_INET as u8, IFA_F_PERMANENT),
            IpAddr::V6(_) => (libc::AF_INET6 as u8, IFA_F_PERMANENT | IFA_F_NODAD),
        };
        // struct ifaddrmsg
        self.buf.push(family);
        self.buf.push(prefix_len);
        self.buf.push(flags as u8);
        self.buf.push(RT_SCOPE_UNIVERSE);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        let bytes = ip_bytes(&addr);
        self.attr(IFA_LOCAL, &bytes);
        self.attr(IFA_ADDRESS, &bytes);
        self.attr(IFA_FLAGS, &flags.to_ne_bytes());
        self.finish(m);
    }

    /// `RTM_NEWROUTE` to `dst` (`None`: default route) via `gateway`, main table.
    pub fn add_route(&mut self, dst: Option<(IpAddr, u8)>, gateway: IpAddr) {
        let what = match dst {
            Some((a, l)) => format!("{a}/{l}"),
            None => "default".to_string(),
        };
        let m = self.begin(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_EXCL,
            format!("add route {what} via {gateway}"),
        );
        let family = match gateway {
            IpAddr::V4(_) => libc::AF_INET as u8,
            IpAddr::V6(_) => libc::AF_INET6 as u8,
        };
        // struct rtmsg
        self.buf.push(family);
        self.buf.push(dst.map(|d| d.1).unwrap_or(0));
        self.buf.push(0); // src_len
        self.buf.push(0); // tos
        self.buf.push(RT_TABLE_MAIN);
        self.buf.push(RTPROT_STATIC);
        self.buf.push(RT_SCOPE_UNIVERSE);
        self.buf.push(RTN_UNICAST);
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.attr(RTA_TABLE, &u32::from(RT_TABLE_MAIN).to_ne_bytes());
        if let Some((a, _)) = dst {
            self.attr(RTA_DST, &ip_bytes(&a));
        }
        self.attr(RTA_GATEWAY, &ip_bytes(&gateway));
        self.finish(m);
    }
}

impl Batch {
    /// `RTM_NEWLINK` of a Linux bridge named `name` (kind `bridge`; the kernel's defaults:
    /// STP off, MAC learning on), created up in the socket's namespace, in device `group`.
    pub fn create_bridge(&mut self, name: &str, group: u32) {
        let m = self.begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, format!("create bridge {name}"));
        self.ifinfomsg(0, IFF_UP, IFF_UP);
        self.attr_str(IFLA_IFNAME, name);
        self.attr(IFLA_GROUP, &group.to_ne_bytes());
        let info = self.nest_begin(IFLA_LINKINFO);
        self.attr_str(IFLA_INFO_KIND, "bridge");
        self.nest_end(info);
        self.finish(m);
    }

    /// `RTM_NEWLINK` with `IFLA_MASTER`: makes link `index` a port of link `master` (by
    /// index, in the socket's namespace), and sets it up.
    pub fn set_master(&mut self, index: u32, master: u32) {
        let m = self.begin(RTM_NEWLINK, 0, format!("set master of link {index} to {master}"));
        self.ifinfomsg(index as i32, IFF_UP, IFF_UP);
        self.attr(IFLA_MASTER, &master.to_ne_bytes());
        self.finish(m);
    }
}

fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// A `NETLINK_ROUTE` socket, bound to the namespace it was created in.
#[derive(Debug)]
pub struct NetlinkSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

fn last_err(op: &str) -> NetnsError {
    NetnsError::sys(op, io::Error::last_os_error())
}

fn set_opt(fd: RawFd, opt: libc::c_int) -> Result<(), NetnsError> {
    let one: libc::c_int = 1;
    // SAFETY: valid fd, pointer to a live c_int of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            SOL_NETLINK,
            opt,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(last_err("setsockopt(SOL_NETLINK)"));
    }
    Ok(())
}

impl NetlinkSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetnsError> {
        // SAFETY: plain syscall; the result is checked.
        let raw = unsafe {
            libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
        };
        if raw < 0 {
            return Err(last_err("socket(AF_NETLINK, NETLINK_ROUTE)"));
        }
        // SAFETY: `raw` is a fresh fd that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_opt(raw, NETLINK_CAP_ACK)?;
        // Extended ACKs are best effort (old kernels lack them).
        let _ = set_opt(raw, NETLINK_EXT_ACK);
        Ok(Self { fd, seq: 0, buf: vec![0u8; 64 * 1024] })
    }

    fn send(&self, buf: &[u8], op: &str) -> Result<(), NetnsError> {
        loop {
            // SAFETY: valid fd and buffer.
            let n = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                if n as usize != buf.len() {
                    return Err(NetnsError::MalformedReply {
                        op: op.to_string(),
                        reason: ReplyDefect::ShortSend,
                    });
                }
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(NetnsError::Netlink { op: op.to_string(), source: e, detail: None });
            }
        }
    }

    /// Receives one datagram into `self.buf`, returns its length.
    fn recv(&mut self, op: &str) -> Result<usize, NetnsError> {
        loop {
            // SAFETY: valid fd, buffer of the given length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n >= 0 {
                let n = n as usize;
                if n > self.buf.len() {
                    return Err(NetnsError::MalformedReply {
                        op: op.to_string(),
                        reason: ReplyDefect::Truncated(n),
                    });
                }
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(NetnsError::Netlink { op: op.to_string(), source: e, detail: None });
            }
        }
    }

    /// Sends every request of `batch` in one datagram and waits for all ACKs.
    /// Returns the first error (requests after a failed one are still run by the kernel).
    pub fn execute(&mut self, mut batch: Batch) -> Result<(), NetnsError> {
        if batch.is_empty() {
            return Ok(());
        }
        let first = self.seq.wrapping_add(1);
        for (start, _) in &batch.msgs {
            self.seq = self.seq.wrapping_add(1);
            batch.buf[start + 8..start + 12].copy_from_slice(&self.seq.to_ne_bytes());
        }
        let what = batch.msgs[0].1.clone();
        self.send(&batch.buf, &what)?;
        let mut pending = batch.msgs.len();
        let mut first_err: Option<NetnsError> = None;
        while pending > 0 {
            let n = self.recv(&what)?;
            for msg in Messages::new(&self.buf[..n]) {
                let msg =
                    msg.map_err(|reason| NetnsError::MalformedReply { op: what.clone(), reason })?;
                let idx = msg.seq.wrapping_sub(first) as usize;
                if idx >= batch.msgs.len() {
                    continue; // not ours (stale)
                }
                if msg.ty != NLMSG_ERROR {
                    continue;
                }
                pending -= 1;
                if let Some(e) = parse_error(&msg, &batch.msgs[idx].1)? {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs a request that answers with data (a dump or a get) and returns the payloads
    /// of the messages of type `reply_ty`.
    fn query(
        &mut self,
        ty: u16,
        flags: u16,
        payload: &[u8],
        reply_ty: u16,
        op: &str,
    ) -> Result<Vec<Vec<u8>>, NetnsError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut buf = Vec::with_capacity(NLMSG_HDRLEN + payload.len());
        buf.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(payload);
        self.send(&buf, op)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        loop {
            let n = self.recv(op)?;
            let mut done = false;
            for msg in Messages::new(&self.buf[..n]) {
                let msg = msg
                    .map_err(|reason| NetnsError::MalformedReply { op: op.to_string(), reason })?;
                if msg.seq != seq {
                    continue;
                }
                match msg.ty {
                    NLMSG_ERROR => {
                        if let Some(e) = parse_error(&msg, op)? {
                            return Err(e);
                        }
                        done = true;
                    }
                    NLMSG_DONE => done = true,
                    NLMSG_NOOP => {}
                    t if t == reply_ty => {
                        out.push(msg.payload.to_vec());
                        if !dump && msg.flags & NLM_F_MULTI == 0 {
                            done = true;
                        }
                    }
                    _ => {}
                }
            }
            if done {
                return Ok(out);
            }
        }
    }

    /// `RTM_GETLINK` dump: every link in this socket's namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, NetnsError> {
        let mut req = Batch::new();
        req.ifinfomsg(0, 0, 0);
        let payloads = self.query(RTM_GETLINK, NLM_F_DUMP, &req.buf, RTM_NEWLINK, "dump links")?;
        payloads
            .iter()
            .map(|p| parse_link(p).map_err(|reason| malformed("dump links", reason)))
            .collect()
    }

    /// `RTM_GETLINK` by name: index and MAC of one link.
    pub fn link_by_name(&mut self, name: &str) -> Result<LinkInfo, NetnsError> {
        let mut req = Batch::new();
        req.ifinfomsg(0, 0, 0);
        req.attr_str(IFLA_IFNAME, name);
        let op = format!("get link {name}");
        let payloads = self.query(RTM_GETLINK, 0, &req.buf, RTM_NEWLINK, &op)?;
        let p = payloads.first().ok_or_else(|| malformed(&op, ReplyDefect::NoReply))?;
        parse_link(p).map_err(|reason| malformed(&op, reason))
    }
}

impl AsRawFd for NetlinkSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn malformed(op: &str, reason: ReplyDefect) -> NetnsError {
    NetnsError::MalformedReply { op: op.to_string(), reason }
}

struct Msg<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

struct Messages<'a> {
    buf: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Msg<'a>, ReplyDefect>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let b = self.buf;
        let len = u32_at(b, 0)? as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            self.buf = &[];
            return Some(Err(ReplyDefect::BadLength(len)));
        }
        let msg = Msg {
            ty: u16_at(b, 4)?,
            flags: u16_at(b, 6)?,
            seq: u32_at(b, 8)?,
            payload: &b[NLMSG_HDRLEN..len],
        };
        let next = (len + 3) & !3;
        self.buf = b.get(next..).unwrap_or(&[]);
        Some(Ok(msg))
    }
}

/// Iterates `(type, payload)` over netlink attributes.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = u16_at(b, 0)? as usize;
        let ty = u16_at(b, 2)? & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
        Some((ty, data))
    })
}

/// `NLMSG_ERROR`: `Ok(None)` for an ACK, `Ok(Some(err))` for an error.
fn parse_error(msg: &Msg<'_>, op: &str) -> Result<Option<NetnsError>, NetnsError> {
    let code = u32_at(msg.payload, 0).ok_or_else(|| malformed(op, ReplyDefect::ShortError))? as i32;
    if code == 0 {
        return Ok(None);
    }
    let mut detail = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 {
        // With NETLINK_CAP_ACK only the original header follows the error code.
        if let Some(tlvs) = msg.payload.get(4 + NLMSG_HDRLEN..) {
            for (ty, data) in attrs(tlvs) {
                if ty == NLMSGERR_ATTR_MSG {
                    let s = data.split(|&c| c == 0).next().unwrap_or(&[]);
                    detail = Some(String::from_utf8_lossy(s).into_owned());
                }
            }
        }
    }
    Ok(Some(NetnsError::Netlink {
        op: op.to_string(),
        source: io::Error::from_raw_os_error(-code),
        detail,
    }))
}

fn parse_link(p: &[u8]) -> Result<LinkInfo, ReplyDefect> {
    if p.len() < 16 {
        return Err(ReplyDefect::ShortIfinfomsg);
    }
    let index = u32_at(p, 4).ok_or(ReplyDefect::ShortIfinfomsg)?;
    let flags = u32_at(p, 8).ok_or(ReplyDefect::ShortIfinfomsg)?;
    let mut name = String::new();
    let mut mac = [0u8; 6];
    for (ty, data) in attrs(&p[16..]) {
        match ty {
            IFLA_IFNAME => {
                let s = data.split(|&c| c == 0).next().unwrap_or(&[]);
                name = String::from_utf8_lossy(s).into_owned();
            }
            IFLA_ADDRESS if data.len() == 6 => mac.copy_from_slice(data),
            _ => {}
        }
    }
    Ok(LinkInfo { index, name, mac, flags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_message_layout() {
        let mut b = Batch::new();
        b.add_route(None, "10.1.0.1".parse().unwrap());
        assert_eq!(b.len(), 1);
        let len = u32::from_ne_bytes(b.buf[0..4].try_into().unwrap()) as usize;
        assert_eq!(len, b.buf.len());
        // header 16 + rtmsg 12 + RTA_TABLE 8 + RTA_GATEWAY 8
        assert_eq!(len, 16 + 12 + 8 + 8);
    }

    #[test]
    fn attrs_parse_stops_on_garbage() {
        let v: Vec<_> = attrs(&[0xff, 0xff, 1, 0, 1]).collect();
        assert!(v.is_empty());
    }
}
