//! Building a [`Topology`] into live namespaces: [`Network::build`].

use std::collections::HashMap;
use std::ffi::OsStr;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, BorrowedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::NetnsError;
use crate::netns::{in_initial_netns, Netns};
use crate::sys;
use crate::sys::netlink::{Batch, VethEnd, IFF_UP};
use crate::topology::{Cidr, Topology};

/// One live interface (veth end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Name (= the neighbour host's name).
    pub name: String,
    /// Neighbour host.
    pub peer_host: String,
    /// Interface index in the host's namespace.
    pub ifindex: u32,
    /// MAC address (deterministic: `02:63:77:<link>:<side>:00`).
    pub mac: [u8; 6],
    /// Addresses configured on it.
    pub addrs: Vec<Cidr>,
}

/// One live host: a network namespace and its interfaces.
#[derive(Debug)]
pub struct Host {
    name: String,
    netns: Netns,
    interfaces: Vec<Interface>,
}

impl Host {
    /// Host name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace (fd, `run`, ...).
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The namespace fd.
    pub fn netns_fd(&self) -> BorrowedFd<'_> {
        self.netns.as_fd()
    }

    /// Its veth interfaces (not `lo`).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// The interface towards `neighbour`.
    pub fn interface(&self, neighbour: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == neighbour)
    }

    /// First IPv4 address.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.interfaces.iter().flat_map(|i| &i.addrs).find_map(|c| match c.addr {
            std::net::IpAddr::V4(a) => Some(a),
            std::net::IpAddr::V6(_) => None,
        })
    }

    /// First IPv6 address.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.interfaces.iter().flat_map(|i| &i.addrs).find_map(|c| match c.addr {
            std::net::IpAddr::V6(a) => Some(a),
            std::net::IpAddr::V4(_) => None,
        })
    }
}

/// A built topology: one namespace per host, veths, addresses, routes and sysctls.
///
/// Dropping it closes every namespace fd and socket; the kernel then destroys the
/// namespaces and their veths once no process is left inside them.
#[derive(Debug)]
pub struct Network {
    topology: Topology,
    hosts: Vec<Host>,
}

/// Offloads turned off on every veth, in this order (TX checksum first: TSO depends on it).
const OFFLOADS_OFF: [(u32, &str); 4] = [
    (sys::ETHTOOL_STXCSUM, "tx-checksumming"),
    (sys::ETHTOOL_STSO, "tcp-segmentation-offload"),
    (sys::ETHTOOL_SGSO, "generic-segmentation-offload"),
    (sys::ETHTOOL_SGRO, "generic-receive-offload"),
];

/// Device group of every veth we create (`"cw"` + 1).
const VETH_GROUP: u32 = 0x6377_0001;

fn mac_for(link: usize, side: u8) -> [u8; 6] {
    [0x02, 0x63, 0x77, (link + 1) as u8, side, 0]
}

fn sysctl(host: &str, path: &str, value: &str) -> Result<(), NetnsError> {
    std::fs::write(format!("/proc/sys/{path}"), value).map_err(|source| NetnsError::Sysctl {
        host: host.to_string(),
        path: path.to_string(),
        value: value.to_string(),
        source,
    })
}

impl Network {
    /// Builds `topology`: one namespace per host with `lo` up, veths with TX checksum,
    /// TSO, GSO and GRO off, addresses, routes and sysctls (forwarding on hosts with
    /// `forward = true` and off elsewhere, `rp_filter` 0, `accept_dad` 0, IPv6 disabled
    /// on the censor's ports).
    ///
    /// Refuses with [`NetnsError::InHostNamespace`] when the calling thread is in the
    /// host's initial network namespace: call it inside [`crate::sandbox::spawn_sandboxed`].
    ///
    /// Uses one short-lived thread per namespace (created in parallel) and batched netlink
    /// requests. Nothing is created in the caller's namespace.
    pub fn build(topology: &Topology) -> Result<Network, NetnsError> {
        if in_initial_netns()? {
            return Err(NetnsError::InHostNamespace);
        }
        let censor_host = topology.censor().map(|c| c.0.to_string());

        // 1. Namespaces, in parallel, each configured from its own creating thread.
        let created: Vec<Result<Netns, NetnsError>> = std::thread::scope(|s| {
            let handles: Vec<_> = topology
                .hosts()
                .iter()
                .map(|h| {
                    let is_censor = censor_host.as_deref() == Some(h.name.as_str());
                    let forward = h.forward;
                    let name = h.name.clone();
                    s.spawn(move || {
                        // This thread was spawned for this namespace only.
                        Netns::create_on_this_thread().and_then(|mut ns| {
                            let mut b = Batch::new();
                            b.set_up(1); // lo is always index 1 in a new namespace
                            ns.netlink.execute(b)?;
                            let fwd = if forward { "1" } else { "0" };
                            sysctl(&name, "net/ipv4/ip_forward", fwd)?;
                            sysctl(&name, "net/ipv6/conf/all/forwarding", fwd)?;
                            sysctl(&name, "net/ipv4/conf/all/rp_filter", "0")?;
                            sysctl(&name, "net/ipv4/conf/default/rp_filter", "0")?;
                            sysctl(&name, "net/ipv6/conf/all/accept_dad", "0")?;
                            sysctl(&name, "net/ipv6/conf/default/accept_dad", "0")?;
                            if is_censor {
                                // Interfaces created later inherit `default`.
                                sysctl(&name, "net/ipv6/conf/default/disable_ipv6", "1")?;
                            }
                            Ok(ns)
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut namespaces = Vec::with_capacity(created.len());
        for r in created {
            namespaces.push(r?);
        }
        let index: HashMap<&str, usize> =
            topology.hosts().iter().enumerate().map(|(i, h)| (h.name.as_str(), i)).collect();

        // 2. All veths in one batch, each end created directly in its namespace, up.
        if !namespaces.is_empty() {
            let mut b = Batch::new();
            for (li, l) in topology.links().iter().enumerate() {
                let (ia, ib) = (index[l.a.as_str()], index[l.b.as_str()]);
                b.create_veth(
                    VethEnd {
                        name: &l.b,
                        netns: namespaces[ia].as_fd(),
                        mac: Some(mac_for(li, 0xa)),
                        group: VETH_GROUP,
                    },
                    VethEnd {
                        name: &l.a,
                        netns: namespaces[ib].as_fd(),
                        mac: Some(mac_for(li, 0xb)),
                        group: VETH_GROUP,
                    },
                    true,
                );
            }
            // Sent on the first host's socket: the request itself touches no namespace but
            // the two given by fd.
            namespaces[0].netlink.execute(b)?;
        }

        // 3. Per namespace: read back indexes/MACs, then addresses and routes in one batch.
        let mut hosts = Vec::with_capacity(namespaces.len());
        for (spec, mut ns) in topology.hosts().iter().zip(namespaces) {
            let links = ns.netlink.links()?;
            let mut interfaces = Vec::new();
            let mut b = Batch::new();
            for ispec in &spec.interfaces {
                let info = links.iter().find(|l| l.name == ispec.name).ok_or_else(|| {
                    NetnsError::MalformedReply {
                        op: format!("dump links of {}", spec.name),
                        reason: crate::ReplyDefect::MissingInterface(ispec.name.clone()),
                    }
                })?;
                if info.flags & IFF_UP == 0 {
                    b.set_up(info.index);
                }
                for a in &ispec.addrs {
                    b.add_address(info.index, a.addr, a.prefix_len);
                }
                interfaces.push(Interface {
                    name: ispec.name.clone(),
                    peer_host: ispec.peer_host.clone(),
                    ifindex: info.index,
                    mac: info.mac,
                    addrs: ispec.addrs.clone(),
                });
            }
            for r in topology.routes().iter().filter(|r| r.host == spec.name) {
                b.add_route(r.to.map(|c| (c.network(), c.prefix_len)), r.via);
            }
            ns.netlink.execute(b)?;
            for i in &interfaces {
                for (cmd, what) in OFFLOADS_OFF {
                    sys::set_offload(ns.inet.as_fd(), &i.name, cmd, false).map_err(|e| {
                        NetnsError::sys(
                            format!("ethtool {what} off on {}:{}", spec.name, i.name),
                            e,
                        )
                    })?;
                }
            }
            hosts.push(Host { name: spec.name.clone(), netns: ns, interfaces });
        }
        Ok(Network { topology: topology.clone(), hosts })
    }

    /// The topology this network was built from.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// All hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// One host by name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    fn host_or_err(&self, name: &str) -> Result<&Host, NetnsError> {
        self.host(name).ok_or_else(|| NetnsError::UnknownHost(name.to_string()))
    }

    /// A `Command` that runs `program` inside `host`'s namespace.
    ///
    /// Between fork and exec the child `setns`es into the namespace and arms
    /// `PR_SET_PDEATHSIG(SIGKILL)`, then checks its parent is still this process. The
    /// parent-death signal fires when the *thread* that spawns dies: spawn from a
    /// long-lived thread (not a pooled one that may retire). The namespace fd is
    /// duplicated into the command, so it stays valid even if the network is dropped first.
    pub fn command(&self, host: &str, program: impl AsRef<OsStr>) -> Result<Command, NetnsError> {
        let h = self.host_or_err(host)?;
        let fd = h.netns.try_clone_fd()?;
        let mut cmd = Command::new(program);
        sys::pre_exec_enter_netns(&mut cmd, fd, sys::getpid());
        Ok(cmd)
    }

    /// Runs `f` on a short-lived thread inside `host`'s namespace.
    pub fn run_in<F, R>(&self, host: &str, f: F) -> Result<R, NetnsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        self.host_or_err(host)?.netns.run(f)
    }

    /// Deletes every veth explicitly, then closes all namespaces, and returns how long it
    /// took. Deletion is one group `RTM_DELLINK` per namespace, busiest namespace first,
    /// skipping namespaces whose veths are already gone with their peers; each is one
    /// kernel batch. Dropping the network without calling this is also clean: the kernel
    /// then deletes the veths asynchronously when it destroys the namespaces.
    pub fn teardown(mut self) -> Result<Duration, NetnsError> {
        let start = Instant::now();
        let mut order: Vec<usize> = (0..self.hosts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.hosts[i].interfaces.len()));
        let mut deleted = vec![false; self.topology.links().len()];
        let mut result = Ok(());
        for i in order {
            let h = &mut self.hosts[i];
            let links: Vec<usize> = self
                .topology
                .hosts()
                .iter()
                .find(|s| s.name == h.name)
                .map(|s| s.interfaces.iter().map(|i| i.link).collect())
                .unwrap_or_default();
            if links.iter().all(|&l| deleted[l]) {
                continue;
            }
            let mut b = Batch::new();
            b.delete_group(VETH_GROUP);
            match h.netns.netlink.execute(b) {
                Ok(()) => links.iter().for_each(|&l| deleted[l] = true),
                Err(e) => {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        self.hosts.clear();
        result.map(|()| start.elapsed())
    }
}

impl Network {
    /// Adds `addr` to `host`'s interface towards `neighbour` (e.g. one address per call, so
    /// concurrent calls never share ports and a censor's counters can be told apart).
    ///
    /// The address must lie in a subnet the interface already has, and in 10.0.0.0/8 or
    /// fd00::/8.
    pub fn add_address(
        &mut self,
        host: &str,
        neighbour: &str,
        addr: Cidr,
    ) -> Result<(), NetnsError> {
        if !addr.in_allowed_range() {
            return Err(NetnsError::Spawn {
                program: format!("add address {}/{}", addr.addr, addr.prefix_len),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "addresses must be in 10.0.0.0/8 or fd00::/8",
                ),
            });
        }
        let h =
            self.hosts.iter_mut().find(|h| h.name == host).ok_or_else(|| NetnsError::Spawn {
                program: format!("add address on {host}"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"),
            })?;
        let iface = h.interfaces.iter_mut().find(|i| i.name == neighbour).ok_or_else(|| {
            NetnsError::Spawn {
                program: format!("add address on {host}/{neighbour}"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such interface"),
            }
        })?;
        if !iface.addrs.iter().any(|c| c.prefix_len == addr.prefix_len && c.contains(addr.addr)) {
            return Err(NetnsError::Spawn {
                program: format!("add address {}/{}", addr.addr, addr.prefix_len),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not in a subnet of the interface",
                ),
            });
        }
        let index = iface.ifindex;
        h.netns.run(move || -> Result<(), NetnsError> {
            let mut sock = sys::netlink::NetlinkSocket::open()?;
            let mut b = Batch::new();
            b.add_address(index, addr.addr, addr.prefix_len);
            sock.execute(b)
        })??;
        iface.addrs.push(addr);
        Ok(())
    }
}

impl Network {
    /// Makes `host` (the censor host) a kernel L2 bridge: a Linux bridge named `br0` with
    /// every interface of the host as a port. For comparing the censor process with kernel
    /// forwarding (benchmarks); a censor process must not also bridge the same interfaces.
    /// The bridge is in the veths' device group, so [`Network::teardown`] removes it too.
    pub fn bridge_host(&mut self, host: &str) -> Result<(), NetnsError> {
        const BRIDGE: &str = "br0";
        let h = self
            .hosts
            .iter_mut()
            .find(|h| h.name == host)
            .ok_or_else(|| NetnsError::UnknownHost(host.to_string()))?;
        let mut b = Batch::new();
        b.create_bridge(BRIDGE, VETH_GROUP);
        h.netns.netlink.execute(b)?;
        let br = h.netns.netlink.link_by_name(BRIDGE)?;
        let mut b = Batch::new();
        for i in &h.interfaces {
            b.set_master(i.ifindex, br.index);
        }
        h.netns.netlink.execute(b)
    }
}
