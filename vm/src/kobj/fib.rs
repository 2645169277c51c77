//! The simulated network configuration `bpf_fib_lookup` consults: devices (with their
//! per-device forwarding switches), routes in routing tables, and neighbour entries; and the
//! lookup itself, following `bpf_ipv4_fib_lookup` / `bpf_ipv6_fib_lookup` in
//! net/core/filter.c step by step (including which `struct bpf_fib_lookup` fields are written
//! before an early return).
//!
//! Route selection: IPv4 looks in the main table (merged with the local table, as the kernel
//! does without custom rules), then the default table (253) if it has routes; IPv6 looks in
//! the local table, then main. Within a table the longest prefix wins, then the lowest
//! metric. With `BPF_FIB_LOOKUP_OUTPUT`, IPv4 routes through another device are skipped and
//! IPv6 routes through the output device are preferred. No policy rules, multipath,
//! lightweight tunnels, VRFs or route exceptions are simulated.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `AF_INET`.
pub const AF_INET: u8 = 2;
/// `AF_INET6`.
pub const AF_INET6: u8 = 10;
/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;
/// The local routing table (local and broadcast addresses).
pub const RT_TABLE_LOCAL: u32 = 255;
/// The default routing table (looked up after main).
pub const RT_TABLE_DEFAULT: u32 = 253;

/// `BPF_FIB_LOOKUP_DIRECT`: look up one table, skipping policy rules.
pub const BPF_FIB_LOOKUP_DIRECT: u32 = 1 << 0;
/// `BPF_FIB_LOOKUP_OUTPUT`: an egress lookup (ifindex is the output device).
pub const BPF_FIB_LOOKUP_OUTPUT: u32 = 1 << 1;
/// `BPF_FIB_LOOKUP_SKIP_NEIGH`: do not resolve the next hop's MAC.
pub const BPF_FIB_LOOKUP_SKIP_NEIGH: u32 = 1 << 2;
/// `BPF_FIB_LOOKUP_TBID`: with DIRECT, the table id is in `tbid`.
pub const BPF_FIB_LOOKUP_TBID: u32 = 1 << 3;
/// `BPF_FIB_LOOKUP_SRC`: also derive the source address.
pub const BPF_FIB_LOOKUP_SRC: u32 = 1 << 4;
/// `BPF_FIB_LOOKUP_MARK`: use `mark` for policy routing.
pub const BPF_FIB_LOOKUP_MARK: u32 = 1 << 5;
/// Every flag the kernel accepts.
pub const BPF_FIB_LOOKUP_ALL: u32 = (1 << 6) - 1;

/// Lookup succeeded.
pub const BPF_FIB_LKUP_RET_SUCCESS: i64 = 0;
/// Destination is blackholed.
pub const BPF_FIB_LKUP_RET_BLACKHOLE: i64 = 1;
/// Destination is unreachable.
pub const BPF_FIB_LKUP_RET_UNREACHABLE: i64 = 2;
/// Destination is prohibited.
pub const BPF_FIB_LKUP_RET_PROHIBIT: i64 = 3;
/// The packet is not forwarded (local, broadcast, no route, ...).
pub const BPF_FIB_LKUP_RET_NOT_FWDED: i64 = 4;
/// Forwarding is disabled on the device.
pub const BPF_FIB_LKUP_RET_FWD_DISABLED: i64 = 5;
/// The route needs an encapsulation.
pub const BPF_FIB_LKUP_RET_UNSUPP_LWT: i64 = 6;
/// No valid neighbour entry for the next hop.
pub const BPF_FIB_LKUP_RET_NO_NEIGH: i64 = 7;
/// The packet exceeds the MTU.
pub const BPF_FIB_LKUP_RET_FRAG_NEEDED: i64 = 8;
/// No source address could be derived.
pub const BPF_FIB_LKUP_RET_NO_SRC_ADDR: i64 = 9;

/// `sizeof(struct bpf_fib_lookup)`.
pub const FIB_PARAMS_SIZE: usize = 64;

const ENODEV: i64 = -19;
/// The largest IPv4 MTU (`IP_MAX_MTU`).
const IP_MAX_MTU: u32 = 0xffff;
/// The largest IPv6 MTU (`IP6_MAX_MTU`).
const IP6_MAX_MTU: u32 = 0xffff + 40;

/// A network device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetDevice {
    /// Interface index.
    pub ifindex: u32,
    /// Name (`lo`, `eth0`).
    pub name: String,
    /// MAC address (`dev->dev_addr`, the `smac` of a lookup through it).
    pub mac: [u8; 6],
    /// MTU.
    pub mtu: u32,
    /// `dev->hard_header_len` (14 for Ethernet and loopback).
    pub hard_header_len: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// `net.ipv4.conf.<dev>.forwarding`.
    pub forwarding: bool,
    /// `net.ipv6.conf.<dev>.forwarding`.
    pub forwarding6: bool,
    /// Addresses configured on the device (source address selection).
    pub addrs: Vec<IpAddr>,
}

impl NetDevice {
    /// An Ethernet device that is up, MTU 1500, forwarding off, no addresses.
    pub fn new(ifindex: u32, name: &str, mac: [u8; 6]) -> NetDevice {
        NetDevice {
            ifindex,
            name: name.into(),
            mac,
            mtu: 1500,
            hard_header_len: 14,
            up: true,
            forwarding: false,
            forwarding6: false,
            addrs: Vec::new(),
        }
    }

    /// The loopback device: ifindex 1, MTU 65536, 127.0.0.1 and ::1.
    pub fn loopback() -> NetDevice {
        NetDevice {
            mtu: 65536,
            addrs: vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
            ..NetDevice::new(1, "lo", [0; 6])
        }
    }

    /// Turns IPv4 and IPv6 forwarding on or off.
    pub fn forwarding(mut self, on: bool) -> NetDevice {
        self.forwarding = on;
        self.forwarding6 = on;
        self
    }

    /// Sets the MTU.
    pub fn mtu(mut self, mtu: u32) -> NetDevice {
        self.mtu = mtu;
        self
    }

    /// Adds an address.
    pub fn addr(mut self, addr: IpAddr) -> NetDevice {
        self.addrs.push(addr);
        self
    }
}

/// What a route does (`RTN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// Forward through a device (`RTN_UNICAST`).
    Unicast,
    /// A local address (`RTN_LOCAL`).
    Local,
    /// A broadcast address (`RTN_BROADCAST`).
    Broadcast,
    /// Drop silently (`RTN_BLACKHOLE`).
    Blackhole,
    /// Unreachable (`RTN_UNREACHABLE`).
    Unreachable,
    /// Administratively prohibited (`RTN_PROHIBIT`).
    Prohibit,
}

/// A route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Routing table id.
    pub table: u32,
    /// Destination prefix (bits past `prefix_len` are ignored).
    pub dst: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Route type.
    pub kind: RouteKind,
    /// Output device (0 for blackhole/unreachable/prohibit routes).
    pub oif: u32,
    /// Next-hop gateway (on-link route without one).
    pub gateway: Option<IpAddr>,
    /// Metric (priority; lower wins).
    pub metric: u32,
    /// Preferred source address.
    pub prefsrc: Option<IpAddr>,
    /// Locked MTU metric (otherwise the device's MTU applies).
    pub mtu: Option<u32>,
}

impl Route {
    /// A unicast route of the main table to `dst/prefix_len` through device `oif`, on-link.
    pub fn unicast(dst: IpAddr, prefix_len: u8, oif: u32) -> Route {
        Route {
            table: RT_TABLE_MAIN,
            dst,
            prefix_len,
            kind: RouteKind::Unicast,
            oif,
            gateway: None,
            metric: 0,
            prefsrc: None,
            mtu: None,
        }
    }

    /// A local route (local table) for `addr` on device `oif`.
    pub fn local(addr: IpAddr, prefix_len: u8, oif: u32) -> Route {
        Route {
            table: RT_TABLE_LOCAL,
            kind: RouteKind::Local,
            ..Route::unicast(addr, prefix_len, oif)
        }
    }

    /// A route of type `kind` without a device (blackhole, unreachable, prohibit).
    pub fn reject(dst: IpAddr, prefix_len: u8, kind: RouteKind) -> Route {
        Route { kind, ..Route::unicast(dst, prefix_len, 0) }
    }

    /// Sets the gateway.
    pub fn via(mut self, gateway: IpAddr) -> Route {
        self.gateway = Some(gateway);
        self
    }

    /// Sets the table.
    pub fn table(mut self, table: u32) -> Route {
        self.table = table;
        self
    }

    /// Sets the metric.
    pub fn metric(mut self, metric: u32) -> Route {
        self.metric = metric;
        self
    }

    /// Sets the preferred source address.
    pub fn prefsrc(mut self, src: IpAddr) -> Route {
        self.prefsrc = Some(src);
        self
    }

    /// Sets a locked MTU.
    pub fn with_mtu(mut self, mtu: u32) -> Route {
        self.mtu = Some(mtu);
        self
    }

    fn matches(&self, addr: IpAddr) -> bool {
        match (self.dst, addr) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                prefix_eq(&p.octets(), &a.octets(), self.prefix_len.min(32))
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                prefix_eq(&p.octets(), &a.octets(), self.prefix_len.min(128))
            }
            _ => false,
        }
    }

    fn is_reject(&self) -> bool {
        matches!(self.kind, RouteKind::Blackhole | RouteKind::Unreachable | RouteKind::Prohibit)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (full, rest) = (usize::from(bits / 8), bits % 8);
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// A neighbour (ARP / NDP) entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Device it was learnt on.
    pub ifindex: u32,
    /// The neighbour's IP address.
    pub addr: IpAddr,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// In a `NUD_VALID` state (reachable, stale, permanent, ...).
    pub valid: bool,
}

/// The simulated network namespace: devices, routes and neighbours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fib {
    /// Devices by ifindex.
    pub devices: Vec<NetDevice>,
    /// Routes of every table.
    pub routes: Vec<Route>,
    /// Neighbour entries.
    pub neighbours: Vec<Neighbour>,
}

impl Default for Fib {
    /// A fresh network namespace: `lo` (forwarding off) with the kernel's local routes for
    /// 127.0.0.0/8, 127.0.0.1, 127.255.255.255 (broadcast) and ::1.
    fn default() -> Fib {
        let v4 = |a: [u8; 4]| IpAddr::V4(Ipv4Addr::from(a));
        let lo4 = v4([127, 0, 0, 1]);
        Fib {
            devices: vec![NetDevice::loopback()],
            routes: vec![
                Route::local(v4([127, 0, 0, 0]), 8, 1).prefsrc(lo4),
                Route::local(lo4, 32, 1).prefsrc(lo4),
                Route {
                    kind: RouteKind::Broadcast,
                    ..Route::local(v4([127, 255, 255, 255]), 32, 1).prefsrc(lo4)
                },
                Route::local(Ipv6Addr::LOCALHOST.into(), 128, 1),
                Route::unicast(Ipv6Addr::LOCALHOST.into(), 128, 1).metric(256),
            ],
            neighbours: Vec::new(),
        }
    }
}

/// A `struct bpf_fib_lookup` (64 bytes), with its fields by the uapi offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FibParams(pub [u8; FIB_PARAMS_SIZE]);

impl FibParams {
    fn u16_at(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.0[off], self.0[off + 1]])
    }

    fn u32_at(&self, off: usize) -> u32 {
        u32::from_le_bytes([self.0[off], self.0[off + 1], self.0[off + 2], self.0[off + 3]])
    }

    fn set(&mut self, off: usize, bytes: &[u8]) {
        self.0[off..off + bytes.len()].copy_from_slice(bytes);
    }

    /// `family`.
    pub fn family(&self) -> u8 {
        self.0[0]
    }

    /// `tot_len` (input; shares its bytes with `mtu_result`).
    pub fn tot_len(&self) -> u16 {
        self.u16_at(6)
    }

    /// Writes `mtu_result`.
    pub fn set_mtu_result(&mut self, mtu: u32) {
        self.set(6, &(mtu as u16).to_le_bytes());
    }

    /// `ifindex`.
    pub fn ifindex(&self) -> u32 {
        self.u32_at(8)
    }

    /// `tbid` (input of DIRECT|TBID lookups; shares its bytes with the VLAN output).
    pub fn tbid(&self) -> u32 {
        self.u32_at(48)
    }

    /// The source address (IPv4 in the first 4 bytes of `ipv6_src`).
    pub fn src(&self, family: u8) -> IpAddr {
        addr_at(&self.0[16..32], family)
    }

    /// The destination address.
    pub fn dst(&self, family: u8) -> IpAddr {
        addr_at(&self.0[32..48], family)
    }

    /// `smac`.
    pub fn smac(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.0[52..58]);
        m
    }

    /// `dmac`.
    pub fn dmac(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.0[58..64]);
        m
    }

    fn set_addr(&mut self, off: usize, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => self.set(off, &a.octets()),
            IpAddr::V6(a) => self.set(off, &a.octets()),
        }
    }
}

fn addr_at(b: &[u8], family: u8) -> IpAddr {
    if family == AF_INET6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// Why the route lookup found nothing usable.
enum Miss {
    /// No route (or the table is missing).
    None,
    /// A reject route.
    Reject(RouteKind),
}

impl Fib {
    /// The device with this ifindex.
    pub fn device(&self, ifindex: u32) -> Option<&NetDevice> {
        self.devices.iter().find(|d| d.ifindex == ifindex)
    }

    /// The device with this ifindex, mutably.
    pub fn device_mut(&mut self, ifindex: u32) -> Option<&mut NetDevice> {
        self.devices.iter_mut().find(|d| d.ifindex == ifindex)
    }

    /// Adds a device, replacing one with the same ifindex.
    pub fn add_device(&mut self, dev: NetDevice) {
        self.devices.retain(|d| d.ifindex != dev.ifindex);
        self.devices.push(dev);
    }

    /// Adds a route.
    pub fn add_route(&mut self, route: Route) {
        self.routes.push(route);
    }

    /// Adds a valid neighbour entry.
    pub fn add_neighbour(&mut self, ifindex: u32, addr: IpAddr, mac: [u8; 6]) {
        self.neighbours.push(Neighbour { ifindex, addr, mac, valid: true });
    }

    fn table_exists(&self, table: u32) -> bool {
        matches!(table, RT_TABLE_MAIN | RT_TABLE_LOCAL)
            || self.routes.iter().any(|r| r.table == table)
    }

    /// Best route for `dst` among the routes of `tables`: longest prefix, then lowest metric.
    /// IPv4 (`strict_oif`) skips routes through another device than `oif` (reject routes are
    /// taken regardless); IPv6 prefers routes through `oif` within the best prefix.
    fn table_lookup(
        &self,
        tables: &[u32],
        dst: IpAddr,
        oif: u32,
        strict_oif: bool,
    ) -> Result<&Route, Miss> {
        let mut cands: Vec<&Route> =
            self.routes.iter().filter(|r| tables.contains(&r.table) && r.matches(dst)).collect();
        cands.sort_by_key(|r| (std::cmp::Reverse(r.prefix_len), r.metric));
        if strict_oif {
            for r in cands {
                if r.is_reject() {
                    return Err(Miss::Reject(r.kind));
                }
                if oif == 0 || r.oif == oif {
                    return Ok(r);
                }
            }
            return Err(Miss::None);
        }
        let Some(best) = cands.first() else { return Err(Miss::None) };
        let same: Vec<&Route> =
            cands.iter().copied().filter(|r| r.prefix_len == best.prefix_len).collect();
        let pick = same.iter().copied().find(|r| oif != 0 && r.oif == oif).unwrap_or(best);
        Ok(pick)
    }

    fn neighbour(&self, ifindex: u32, addr: IpAddr) -> Option<&Neighbour> {
        self.neighbours.iter().rev().find(|n| n.ifindex == ifindex && n.addr == addr)
    }

    /// `bpf_ipv4_fib_lookup` / `bpf_ipv6_fib_lookup` on `p` (family already checked to be
    /// AF_INET or AF_INET6, flags valid): the `BPF_FIB_LKUP_RET_*` code or a negative errno.
    pub fn lookup(&self, p: &mut FibParams, flags: u32, check_mtu: bool) -> i64 {
        let family = p.family();
        let v6 = family == AF_INET6;
        let dst = p.dst(family);
        if v6 && (needs_strict(p.dst(family)) || needs_strict(p.src(family))) {
            return BPF_FIB_LKUP_RET_NOT_FWDED;
        }
        let Some(dev) = self.device(p.ifindex()) else { return ENODEV };
        if !(if v6 { dev.forwarding6 } else { dev.forwarding }) {
            return BPF_FIB_LKUP_RET_FWD_DISABLED;
        }
        let oif = if flags & BPF_FIB_LOOKUP_OUTPUT != 0 { p.ifindex() } else { 0 };
        let found = if flags & BPF_FIB_LOOKUP_DIRECT != 0 {
            let mut tbid = RT_TABLE_MAIN;
            if flags & BPF_FIB_LOOKUP_TBID != 0 {
                tbid = p.tbid();
                p.set(48, &[0; 4]);
            }
            if !self.table_exists(tbid) {
                return BPF_FIB_LKUP_RET_NOT_FWDED;
            }
            let tables: &[u32] = match (v6, tbid) {
                (false, RT_TABLE_MAIN | RT_TABLE_LOCAL) => &[RT_TABLE_MAIN, RT_TABLE_LOCAL],
                _ => &[tbid],
            };
            self.table_lookup(tables, dst, oif, !v6)
        } else if v6 {
            match self.table_lookup(&[RT_TABLE_LOCAL], dst, oif, false) {
                Err(Miss::None) => self.table_lookup(&[RT_TABLE_MAIN], dst, oif, false),
                other => other,
            }
        } else {
            // fib_lookup(): main (merged with local), then default if that table exists.
            let main = self.table_lookup(&[RT_TABLE_MAIN, RT_TABLE_LOCAL], dst, oif, true);
            match main {
                Err(_) if self.routes.iter().any(|r| r.table == RT_TABLE_DEFAULT) => {
                    self.table_lookup(&[RT_TABLE_DEFAULT], dst, oif, true)
                }
                other => other,
            }
        };
        let route = match found {
            Ok(r) => r,
            Err(Miss::None) => return BPF_FIB_LKUP_RET_NOT_FWDED,
            Err(Miss::Reject(RouteKind::Blackhole)) => return BPF_FIB_LKUP_RET_BLACKHOLE,
            Err(Miss::Reject(RouteKind::Unreachable)) => return BPF_FIB_LKUP_RET_UNREACHABLE,
            Err(Miss::Reject(_)) => return BPF_FIB_LKUP_RET_PROHIBIT,
        };
        match route.kind {
            RouteKind::Unicast => {}
            RouteKind::Blackhole if v6 => return BPF_FIB_LKUP_RET_BLACKHOLE,
            RouteKind::Unreachable if v6 => return BPF_FIB_LKUP_RET_UNREACHABLE,
            RouteKind::Prohibit if v6 => return BPF_FIB_LKUP_RET_PROHIBIT,
            _ => return BPF_FIB_LKUP_RET_NOT_FWDED,
        }
        // A route through a device that does not exist is dead.
        let Some(nh_dev) = self.device(route.oif) else { return BPF_FIB_LKUP_RET_NOT_FWDED };
        let mut mtu = 0;
        if check_mtu {
            let cap = if v6 { IP6_MAX_MTU } else { IP_MAX_MTU };
            mtu = route.mtu.unwrap_or(nh_dev.mtu.min(cap));
            if u32::from(p.tot_len()) > mtu {
                p.set_mtu_result(mtu);
                return BPF_FIB_LKUP_RET_FRAG_NEEDED;
            }
        }
        p.set(12, &route.metric.to_le_bytes());
        p.set(8, &nh_dev.ifindex.to_le_bytes());
        if flags & BPF_FIB_LOOKUP_SRC != 0 {
            let src = route.prefsrc.filter(|s| s.is_ipv6() == v6).or_else(|| {
                nh_dev.addrs.iter().copied().find(|a| match a {
                    IpAddr::V4(_) => !v6,
                    IpAddr::V6(a) => v6 && !is_link_local(a),
                })
            });
            match src {
                Some(s) => p.set_addr(16, s),
                None => return BPF_FIB_LKUP_RET_NO_SRC_ADDR,
            }
        }
        let mut nh = dst;
        if let Some(gw) = route.gateway {
            if gw.is_ipv6() && !v6 {
                p.0[0] = AF_INET6;
            }
            p.set_addr(32, gw);
            nh = gw;
        }
        if flags & BPF_FIB_LOOKUP_SKIP_NEIGH == 0 {
            match self.neighbour(nh_dev.ifindex, nh) {
                Some(n) if n.valid => {
                    p.set(58, &n.mac);
                    p.set(52, &nh_dev.mac);
                }
                _ => return BPF_FIB_LKUP_RET_NO_NEIGH,
            }
        }
        // bpf_fib_set_fwd_params(): clear the VLAN output, report the MTU.
        p.set(48, &[0; 4]);
        if mtu != 0 {
            p.set_mtu_result(mtu);
        }
        BPF_FIB_LKUP_RET_SUCCESS
    }
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// `rt6_need_strict()`: multicast, link-local and loopback addresses are never forwarded.
fn needs_strict(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V6(a) => a.is_multicast() || is_link_local(&a) || a.is_loopback(),
        IpAddr::V4(_) => false,
    }
}
