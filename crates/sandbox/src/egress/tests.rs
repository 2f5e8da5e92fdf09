use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use super::*;

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<Ipv4Net> {
    list.iter().map(|s| net(s)).collect()
}

fn prohibits(routes: &[Route]) -> Vec<String> {
    let only = |r: &Route| match r {
        Route::Prohibit(n) => Some(n.to_string()),
        Route::Gateway(_) => None,
    };
    routes.iter().filter_map(only).collect()
}

fn holes(routes: &[Route]) -> Vec<String> {
    let only = |r: &Route| match r {
        Route::Gateway(n) => Some(n.to_string()),
        Route::Prohibit(_) => None,
    };
    routes.iter().filter_map(only).collect()
}

#[test]
fn ranges_parse_and_print_back() {
    assert_eq!(net("10.1.0.0/16").to_string(), "10.1.0.0/16");
    assert_eq!(net("10.1.2.3"), Ipv4Net::host(Ipv4Addr::new(10, 1, 2, 3)));
    assert_eq!(net("0.0.0.0/0").prefix(), 0);
    assert_eq!(net("203.0.113.7/32").addr(), Ipv4Addr::new(203, 0, 113, 7));
}

#[test]
fn bad_ranges_are_refused_and_say_why() {
    for (input, why) in [
        (
            "10.1.2.3/16",
            "write 10.1.0.0/16 for the range, or 10.1.2.3 for the address",
        ),
        ("10.0.0.0/33", "at most 32"),
        ("10.0.0.0/300", "at most 32"),
        ("10.0.0.0/", "prefix length"),
        ("10.0.0.0/+8", "prefix length"),
        ("10.0.0.0/ 8", "prefix length"),
        ("10.0.0/8", "address"),
        ("host.example/8", "address"),
        ("", "address"),
        ("::1/128", "address"),
    ] {
        let err = input.parse::<Ipv4Net>().unwrap_err().to_string();
        assert!(err.contains(why), "{input:?}: {err}");
    }
}

#[test]
fn ranges_contain_themselves_and_what_nests_inside() {
    assert!(net("10.0.0.0/8").contains(&net("10.0.0.0/8")));
    assert!(net("10.0.0.0/8").contains(&net("10.9.1.1")));
    assert!(net("0.0.0.0/0").contains(&net("255.255.255.255")));
    assert!(!net("10.9.0.0/16").contains(&net("10.0.0.0/8")));
    assert!(!net("10.0.0.0/8").contains(&net("11.0.0.0/8")));
    assert!(!net("172.16.0.0/12").contains(&net("172.32.0.0/16")));
}

#[test]
fn the_default_blocks_are_valid_and_spare_the_documentation_ranges() {
    for range in BLOCKED {
        assert_eq!(
            Ipv4Net::new(range.addr(), range.prefix()).ok(),
            Some(*range)
        );
    }
    for doc in [
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "1.1.1.1",
    ] {
        assert!(
            !BLOCKED.iter().any(|b| b.contains(&net(doc))),
            "{doc} must stay reachable"
        );
    }
    for private in [
        "10.1.2.3",
        "169.254.169.254",
        "172.31.0.1",
        "192.168.1.1",
        "100.64.0.1",
    ] {
        assert!(
            BLOCKED.iter().any(|b| b.contains(&net(private))),
            "{private}"
        );
    }
}

#[test]
fn by_default_every_block_and_host_address_is_prohibited() {
    let host = [Ipv4Addr::new(203, 0, 113, 7), Ipv4Addr::new(10, 0, 2, 15)];
    let routes = routes(&blocked(&host), &[]);
    let mut want: Vec<String> = BLOCKED.iter().map(|b| b.to_string()).collect();
    want.extend(["203.0.113.7/32".into(), "10.0.2.15/32".into()]);
    assert_eq!(prohibits(&routes), want);
    assert!(holes(&routes).is_empty());
}

#[test]
fn an_allowed_range_inside_a_block_becomes_a_hole() {
    let routes = routes(BLOCKED, &nets(&["10.9.0.0/16", "169.254.169.254"]));
    assert!(prohibits(&routes).contains(&"10.0.0.0/8".to_string()));
    assert!(prohibits(&routes).contains(&"169.254.0.0/16".to_string()));
    assert_eq!(holes(&routes), ["10.9.0.0/16", "169.254.169.254/32"]);
}

#[test]
fn a_block_inside_an_allowed_range_is_left_open() {
    // Exactly a block, wider than one, and everything.
    let routes_for = |allow: &[&str]| routes(BLOCKED, &nets(allow));
    for (allow, open) in [
        (vec!["10.0.0.0/8"], vec!["10.0.0.0/8"]),
        (vec!["10.0.0.0/7"], vec!["10.0.0.0/8"]),
        (vec!["192.0.0.0/16"], vec!["192.0.0.0/24"]),
    ] {
        let routes = routes_for(&allow);
        for range in open {
            assert!(
                !prohibits(&routes).contains(&range.to_string()),
                "{allow:?}"
            );
        }
        assert!(holes(&routes).is_empty(), "{allow:?}: {routes:?}");
        assert_eq!(prohibits(&routes).len(), BLOCKED.len() - 1, "{allow:?}");
    }
    assert!(routes_for(&["0.0.0.0/0"]).is_empty());
}

#[test]
fn public_ranges_need_no_route() {
    assert_eq!(
        routes(BLOCKED, &nets(&["203.0.113.0/24", "8.8.8.8"])),
        routes(BLOCKED, &[])
    );
}

#[test]
fn host_addresses_follow_the_same_rules() {
    let host = [Ipv4Addr::new(10, 9, 1, 1), Ipv4Addr::new(10, 8, 1, 1)];
    let routes = routes(&blocked(&host), &nets(&["10.9.0.0/16"]));
    // Inside the hole: reachable, as asked. Elsewhere in 10/8: prohibited on its own too.
    assert!(!prohibits(&routes).contains(&"10.9.1.1/32".to_string()));
    assert!(prohibits(&routes).contains(&"10.8.1.1/32".to_string()));
    assert_eq!(holes(&routes), ["10.9.0.0/16"]);
    // A public address of the host is prohibited, unless allowed.
    let public = [Ipv4Addr::new(203, 0, 113, 7)];
    let open = routes_for_host(&public, &["203.0.113.7"]);
    assert!(!prohibits(&open).contains(&"203.0.113.7/32".to_string()));
    assert!(holes(&open).is_empty());
}

fn routes_for_host(host: &[Ipv4Addr], allow: &[&str]) -> Vec<Route> {
    routes(&blocked(host), &nets(allow))
}

#[test]
fn repeats_and_nested_holes_make_one_route() {
    let host = [Ipv4Addr::new(203, 0, 113, 7), Ipv4Addr::new(203, 0, 113, 7)];
    let routes = routes_for_host(&host, &["10.9.0.0/16", "10.9.1.0/24", "10.9.0.0/16"]);
    let hosts = prohibits(&routes);
    assert_eq!(hosts.iter().filter(|r| *r == "203.0.113.7/32").count(), 1);
    assert_eq!(holes(&routes), ["10.9.0.0/16"]);
}

#[test]
fn host_addresses_leave_out_loopback() {
    let addresses = host_addresses().unwrap();
    assert!(addresses.iter().all(|a| !a.is_loopback()), "{addresses:?}");
}

#[test]
fn route_requests_have_the_kernel_layout() {
    let gateway = Ipv4Addr::new(10, 0, 2, 2);
    let prohibit = new_route(&Route::Prohibit(net("10.0.0.0/8")), 7, gateway, 3);
    // nlmsghdr (16) + rtmsg (12) + RTA_DST (8).
    assert_eq!(prohibit.len(), 36);
    assert_eq!(&prohibit[..4], &36u32.to_ne_bytes());
    assert_eq!(&prohibit[4..6], &libc::RTM_NEWROUTE.to_ne_bytes());
    assert_eq!(&prohibit[8..12], &7u32.to_ne_bytes());
    assert_eq!(prohibit[16], libc::AF_INET as u8);
    assert_eq!(prohibit[17], 8, "rtm_dst_len");
    assert_eq!(prohibit[23], libc::RTN_PROHIBIT);
    assert_eq!(&prohibit[32..36], &[10, 0, 0, 0]);
    let hole = new_route(&Route::Gateway(net("10.9.0.0/16")), 8, gateway, 3);
    // ... + RTA_GATEWAY (8) + RTA_OIF (8).
    assert_eq!(hole.len(), 52);
    assert_eq!(hole[23], libc::RTN_UNICAST);
    assert_eq!(&hole[38..40], &libc::RTA_GATEWAY.to_ne_bytes());
    assert_eq!(&hole[40..44], &[10, 0, 2, 2]);
    assert_eq!(&hole[48..52], &3u32.to_ne_bytes());
}

/// An NLMSG_ERROR message answering request `seq` with `error`.
fn ack(seq: u32, error: i32) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend(36u32.to_ne_bytes());
    m.extend((libc::NLMSG_ERROR as u16).to_ne_bytes());
    m.extend(0u16.to_ne_bytes());
    m.extend(seq.to_ne_bytes());
    m.extend(0u32.to_ne_bytes());
    m.extend(error.to_ne_bytes());
    m.extend([0u8; 16]);
    m
}

#[test]
fn acknowledgements_are_matched_to_their_request() {
    assert!(matches!(find_ack(&ack(4, 0), 4), Some(Ok(()))));
    let refused = find_ack(&ack(4, -libc::EEXIST), 4).unwrap().unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EEXIST));
    assert!(find_ack(&ack(3, 0), 4).is_none());
    let both = [ack(3, 0), ack(4, -libc::EPERM)].concat();
    assert!(find_ack(&both, 4).unwrap().is_err());
    assert!(find_ack(&[7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0], 4).is_some());
}

/// Brings up `lo` in the test's own network namespace.
fn lo_up() -> std::io::Result<()> {
    // SAFETY: an ioctl socket and a zeroed ifreq whose name fits.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        let socket = OwnedFd::from_raw_fd(fd);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[..2].copy_from_slice(&[b'l' as libc::c_char, b'o' as libc::c_char]);
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) != 0 {
            return Err(last_error());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) != 0 {
            return Err(last_error());
        }
    }
    Ok(())
}

fn tcp(addr: &str) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = addr.parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(1))
}

/// UDP connect only picks a route: no packet is sent.
fn udp(addr: &str) -> std::io::Result<()> {
    UdpSocket::bind("0.0.0.0:0")?.connect(addr)
}

fn expect_eacces(complaints: &mut Vec<String>, what: &str, got: std::io::Result<impl Sized>) {
    match got {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {}
        Err(e) => complaints.push(format!("{what}: got {e}, want EACCES")),
        Ok(_) => complaints.push(format!("{what}: connected, want EACCES")),
    }
}

/// In a forked child, in a network namespace of its own with nothing but `lo` (nothing can
/// leave the machine, and the host's namespace is untouched): blocked ranges and the host's
/// addresses refuse at once, holes and public addresses route through the gateway. The
/// gateway is 127.0.0.2 on `lo`, standing in for slirp4netns's on `tap0`.
#[test]
fn applied_routes_refuse_blocked_ranges_and_route_holes() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: installing routes in a new network namespace needs root");
        return;
    }
    let complaints = crate::forked::run(Duration::from_secs(20), || {
        let mut complaints = Vec::new();
        // SAFETY: unshare takes plain flags; the forked child is single-threaded.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return vec![format!("unshare(CLONE_NEWNET): {}", last_error())];
        }
        if let Err(e) = lo_up() {
            return vec![format!("bringing up lo: {e}")];
        }
        let gateway = Ipv4Addr::new(127, 0, 0, 2);
        // A host address, public here so that only its own /32 blocks it.
        let host = [Ipv4Addr::new(192, 0, 2, 55)];
        let mut planned = routes(&blocked(&host), &nets(&["10.9.0.0/16"]));
        // What slirp4netns sets up: the default route.
        planned.push(Route::Gateway(net("0.0.0.0/0")));
        if let Err(e) = apply(&planned, gateway, "lo") {
            return vec![format!("apply: {e}")];
        }
        expect_eacces(&mut complaints, "tcp 10.1.2.3:80", tcp("10.1.2.3:80"));
        expect_eacces(&mut complaints, "tcp metadata", tcp("169.254.169.254:80"));
        expect_eacces(&mut complaints, "tcp host address", tcp("192.0.2.55:80"));
        expect_eacces(
            &mut complaints,
            "udp 10.8.1.1 beside the hole",
            udp("10.8.1.1:53"),
        );
        if let Err(e) = udp("10.9.1.1:53") {
            complaints.push(format!("udp 10.9.1.1, in the hole: {e}"));
        }
        if let Err(e) = udp("192.0.2.1:53") {
            complaints.push(format!("udp 192.0.2.1, a public stand-in: {e}"));
        }
        // The kernel's refusal is reported with the route it refused.
        match apply(&planned[..1], gateway, "lo") {
            Err(e) if e.to_string().contains("prohibit 0.0.0.0/8") => {}
            other => complaints.push(format!("a route added twice: {other:?}")),
        }
        let hole = [Route::Gateway(net("10.7.0.0/16"))];
        if apply(&hole, gateway, "cove-no-such-device").is_ok() {
            complaints.push("a hole on a missing device was accepted".into());
        }
        complaints
    });
    assert!(complaints.is_empty(), "{}", complaints.join("\n"));
}
