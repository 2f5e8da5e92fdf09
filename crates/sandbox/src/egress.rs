//! Where a workspace's outbound connections may go: by default to public addresses and its
//! DNS forwarder only; not to the private ranges (the LAN, a cloud's metadata service at
//! 169.254.169.254) nor to any address of the host. [`Egress::allow`] opens ranges again.
//!
//! Enforced with routes in the sandbox's own network namespace, installed by its PID 1 (root
//! there) once slirp4netns has configured `tap0`, before the program starts: each blocked
//! range gets a `prohibit` route, so connect() fails at once with EACCES; an allowed range
//! inside a blocked one gets a route through the gateway, which wins by being more specific.
//! The program has no capabilities and cannot make a user namespace to get some (see
//! [`crate::seccomp`]), so it cannot change the routes.
//!
//! Blocked: [`BLOCKED`], plus each IPv4 address of the host as a /32, gathered in the host's
//! network namespace before the sandbox's is made. Not blocked: the documentation ranges
//! (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), which are not routed on the internet
//! anyway and which tests use as stand-ins for public addresses.
//!
//! slirp4netns's own subnet (10.0.2.0/24) has a route of its own, more specific than the
//! 10.0.0.0/8 block, so its DNS forwarder at 10.0.2.3 stays reachable; its gateway 10.0.2.2
//! leads to the host's loopback, which slirp4netns refuses (`--disable-host-loopback`).
//! IPv4 only: slirp4netns runs without IPv6, so there is no IPv6 route out at all.

use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::str::FromStr;

use crate::SandboxError;

/// An IPv4 range, `addr/prefix`, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

const fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

impl Ipv4Net {
    /// `addr/prefix`. Refuses a prefix over 32 and an address with host bits set (for
    /// `10.1.2.3/16`, the caller meant either `10.1.0.0/16` or `10.1.2.3/32`; it says which).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, SandboxError> {
        if prefix > 32 {
            return Err(SandboxError::Spec(format!(
                "{addr}/{prefix}: the prefix length is at most 32"
            )));
        }
        let net = Ipv4Addr::from(u32::from(addr) & mask(prefix));
        if net != addr {
            return Err(SandboxError::Spec(format!(
                "{addr}/{prefix} has host bits set: write {net}/{prefix} for the range, or {addr} for the address"
            )));
        }
        Ok(Self { addr, prefix })
    }

    /// One address (`/32`).
    pub const fn host(addr: Ipv4Addr) -> Self {
        Self { addr, prefix: 32 }
    }

    /// For the constant table: valid by inspection (and by a test).
    const fn from_octets(octets: [u8; 4], prefix: u8) -> Self {
        Self {
            addr: Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]),
            prefix,
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether every address of `other` is in this range (a range contains itself).
    pub fn contains(&self, other: &Ipv4Net) -> bool {
        other.prefix >= self.prefix
            && u32::from(other.addr) & mask(self.prefix) == u32::from(self.addr)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `10.1.0.0/16`, or a plain address for its `/32`.
impl FromStr for Ipv4Net {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| SandboxError::Spec(format!("{s:?} is not an IPv4 range: {why}"));
        let (addr, prefix) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("expected an address like 10.1.0.0"))?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("expected a prefix length like /16"));
        }
        let prefix = prefix
            .parse::<u8>()
            .map_err(|_| bad("the prefix length is at most 32"))?;
        Ipv4Net::new(addr, prefix)
    }
}

/// Unreachable by default: "this network", the private and shared (carrier-grade NAT)
/// ranges, loopback, link-local (cloud metadata services), IETF protocol assignments,
/// benchmarking, multicast and the reserved range.
pub const BLOCKED: &[Ipv4Net] = &[
    Ipv4Net::from_octets([0, 0, 0, 0], 8),
    Ipv4Net::from_octets([10, 0, 0, 0], 8),
    Ipv4Net::from_octets([100, 64, 0, 0], 10),
    Ipv4Net::from_octets([127, 0, 0, 0], 8),
    Ipv4Net::from_octets([169, 254, 0, 0], 16),
    Ipv4Net::from_octets([172, 16, 0, 0], 12),
    Ipv4Net::from_octets([192, 0, 0, 0], 24),
    Ipv4Net::from_octets([192, 168, 0, 0], 16),
    Ipv4Net::from_octets([198, 18, 0, 0], 15),
    Ipv4Net::from_octets([224, 0, 0, 0], 4),
    Ipv4Net::from_octets([240, 0, 0, 0], 4),
];

/// A sandbox's egress policy, on top of the default blocks (only with outbound network).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    /// Ranges reachable although blocked by default (a private service the workspace needs,
    /// or the host itself).
    pub allow: Vec<Ipv4Net>,
}

/// One route of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Connections to the range fail with EACCES.
    Prohibit(Ipv4Net),
    /// The range goes through the gateway: an allowed hole in a prohibited range.
    Gateway(Ipv4Net),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Prohibit(net) => write!(f, "prohibit {net}"),
            Route::Gateway(net) => write!(f, "{net} via the gateway"),
        }
    }
}

/// What is blocked on this host: [`BLOCKED`] and each of `host_addresses`.
pub fn blocked(host_addresses: &[Ipv4Addr]) -> Vec<Ipv4Net> {
    let hosts = host_addresses.iter().map(|a| Ipv4Net::host(*a));
    BLOCKED.iter().copied().chain(hosts).collect()
}

/// The routes that enforce `blocked` less `allowed`. A blocked range inside an allowed one is
/// left open; an allowed range strictly inside a prohibited one gets a route through the
/// gateway (unless a wider allowed range already has one). Repeats are dropped.
pub fn routes(blocked: &[Ipv4Net], allowed: &[Ipv4Net]) -> Vec<Route> {
    let mut prohibited: Vec<Ipv4Net> = Vec::new();
    for net in blocked {
        if !allowed.iter().any(|a| a.contains(net)) && !prohibited.contains(net) {
            prohibited.push(*net);
        }
    }
    let mut holes: Vec<Ipv4Net> = Vec::new();
    for net in allowed {
        // Ranges nest or are disjoint: a prohibited range that contains this one does so
        // strictly (an equal one was left open above).
        let inside_prohibited = prohibited.iter().any(|p| p.contains(net));
        let inside_wider_hole = allowed.iter().any(|a| a != net && a.contains(net));
        if inside_prohibited && !inside_wider_hole && !holes.contains(net) {
            holes.push(*net);
        }
    }
    let prohibit = prohibited.into_iter().map(Route::Prohibit);
    prohibit
        .chain(holes.into_iter().map(Route::Gateway))
        .collect()
}

/// Every IPv4 address of this network namespace's interfaces, but loopback ones (127/8 is
/// blocked whole). Run on the host, before the sandbox's namespace is made.
pub fn host_addresses() -> Result<Vec<Ipv4Addr>, SandboxError> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: list is a valid out-pointer; the list is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(crate::io_err("getifaddrs")(std::io::Error::last_os_error()));
    }
    let mut addresses = Vec::new();
    let mut node = list;
    while !node.is_null() {
        // SAFETY: a node of the list getifaddrs returned, which is freed only below; an
        // address of family AF_INET is a sockaddr_in.
        unsafe {
            let addr = (*node).ifa_addr;
            if !addr.is_null() && libc::c_int::from((*addr).sa_family) == libc::AF_INET {
                let sin = &*(addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
            node = (*node).ifa_next;
        }
    }
    // SAFETY: the list getifaddrs returned, no longer used.
    unsafe { libc::freeifaddrs(list) };
    Ok(addresses)
}

/// The routes for `egress` on this host. Gathers the host's addresses, so call it in the
/// host's network namespace.
pub fn plan(egress: &Egress) -> Result<Vec<Route>, SandboxError> {
    Ok(routes(&blocked(&host_addresses()?), &egress.allow))
}

/// How long the kernel may take to answer one route (it answers at once; this only bounds).
const ACK_TIMEOUT_SECS: libc::time_t = 5;

/// Installs `routes` in this network namespace (needs CAP_NET_ADMIN there), the holes
/// through `gateway` on `device`. Stops at the first route the kernel refuses, and names it.
pub fn apply(routes: &[Route], gateway: Ipv4Addr, device: &str) -> Result<(), SandboxError> {
    let fail = |context: String| move |source| SandboxError::Io { context, source };
    let device_index = if routes.iter().any(|r| matches!(r, Route::Gateway(_))) {
        let name = std::ffi::CString::new(device)
            .map_err(|_| SandboxError::Spec(format!("bad device name {device:?}")))?;
        // SAFETY: name is a valid C string.
        match unsafe { libc::if_nametoindex(name.as_ptr()) } {
            0 => return Err(fail(format!("no device {device}"))(last_error())),
            index => index,
        }
    } else {
        0
    };
    let socket = netlink_socket().map_err(fail("rtnetlink socket".into()))?;
    for (seq, route) in (1u32..).zip(routes) {
        let message = new_route(route, seq, gateway, device_index);
        request(&socket, &message, seq).map_err(fail(format!(
            "installing the egress route {route} ({gateway} on {device})"
        )))?;
    }
    Ok(())
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn netlink_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(last_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: ACK_TIMEOUT_SECS,
        tv_usec: 0,
    };
    // SAFETY: timeout is a valid timeval of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_error());
    }
    Ok(socket)
}

/// Size of struct nlmsghdr; struct rtmsg follows it.
const NLMSG_HEADER: usize = 16;

/// An RTM_NEWROUTE request for `route` (struct nlmsghdr, struct rtmsg, then attributes;
/// all in host byte order but the addresses).
fn new_route(route: &Route, seq: u32, gateway: Ipv4Addr, device_index: u32) -> Vec<u8> {
    let (net, kind) = match route {
        Route::Prohibit(net) => (net, libc::RTN_PROHIBIT),
        Route::Gateway(net) => (net, libc::RTN_UNICAST),
    };
    let flags = libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
    let mut m = Vec::with_capacity(64);
    m.extend(0u32.to_ne_bytes()); // nlmsg_len, filled in below
    m.extend(libc::RTM_NEWROUTE.to_ne_bytes());
    m.extend((flags as u16).to_ne_bytes());
    m.extend(seq.to_ne_bytes());
    m.extend(0u32.to_ne_bytes()); // nlmsg_pid: the kernel
    m.extend([
        libc::AF_INET as u8,
        net.prefix,
        0, // rtm_src_len
        0, // rtm_tos
        libc::RT_TABLE_MAIN,
        libc::RTPROT_STATIC,
        libc::RT_SCOPE_UNIVERSE,
        kind,
    ]);
    m.extend(0u32.to_ne_bytes()); // rtm_flags
    push_attr(&mut m, libc::RTA_DST, &net.addr.octets());
    if let Route::Gateway(_) = route {
        push_attr(&mut m, libc::RTA_GATEWAY, &gateway.octets());
        push_attr(&mut m, libc::RTA_OIF, &device_index.to_ne_bytes());
    }
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// Appends a struct rtattr and its payload, padded to 4 bytes.
fn push_attr(m: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    m.extend(((4 + payload.len()) as u16).to_ne_bytes());
    m.extend(kind.to_ne_bytes());
    m.extend(payload);
    m.resize(m.len().next_multiple_of(4), 0);
}

/// Sends one request and waits for its acknowledgement: Ok, or the kernel's error.
fn request(socket: &OwnedFd, message: &[u8], seq: u32) -> std::io::Result<()> {
    // SAFETY: a zeroed sockaddr_nl is valid; family AF_NETLINK and pid 0 address the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: message and kernel are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(last_error());
    }
    let mut buf = vec![0u8; 8192];
    loop {
        // SAFETY: buf is valid for its length. SO_RCVTIMEO bounds the wait.
        let got = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if got < 0 {
            let err = last_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if let Some(result) = find_ack(&buf[..got as usize], seq) {
            return result;
        }
    }
}

/// The acknowledgement of request `seq` among the messages in `datagram`, if there.
fn find_ack(mut datagram: &[u8], seq: u32) -> Option<std::io::Result<()>> {
    let u32_at = |b: &[u8], at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
    while datagram.len() >= NLMSG_HEADER {
        let len = u32_at(datagram, 0) as usize;
        if len < NLMSG_HEADER || len > datagram.len() {
            return Some(Err(std::io::Error::other("malformed rtnetlink answer")));
        }
        let kind = u16::from_ne_bytes([datagram[4], datagram[5]]);
        // struct nlmsgerr: the error (0 for an acknowledgement), then the request's header.
        if kind == libc::NLMSG_ERROR as u16 && u32_at(datagram, 8) == seq && len >= 20 {
            let error = u32_at(datagram, NLMSG_HEADER) as i32;
            return Some(if error == 0 {
                Ok(())
            } else {
                Err(std::io::Error::from_raw_os_error(-error))
            });
        }
        datagram = &datagram[len.next_multiple_of(4).min(datagram.len())..];
    }
    None
}

#[cfg(test)]
mod tests;
