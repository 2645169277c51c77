//! Crafted frames for the corpus: every protocol shape the corpus programs parse, with valid
//! checksums, built by hand (Ethernet, 802.1Q/802.1ad, ARP, IPv4 with options and fragments,
//! IPv6 with extension headers, TCP/UDP/ICMP/ICMPv6, GRE/IPIP/VXLAN tunnels), plus truncated
//! and oversized frames.

/// The MAC address frames are sent to.
const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The MAC address frames come from.
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// An ordinary client (in no blocklist).
pub(crate) const CLIENT4: [u8; 4] = [198, 18, 0, 10];
/// The service address the load balancers and NAT programs care about.
pub(crate) const VIP4: [u8; 4] = [192, 0, 2, 1];
/// The address every IPv4 blocklist holds.
pub(crate) const BLOCKED4: [u8; 4] = [198, 51, 100, 7];
/// An address inside the blocklisted prefix 203.0.113.0/24.
pub(crate) const BLOCKNET4: [u8; 4] = [203, 0, 113, 9];
/// The IPv6 client.
pub(crate) const CLIENT6: [u8; 16] =
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
/// The IPv6 service address.
pub(crate) const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
/// The address the IPv6 blocklist holds.
pub(crate) const BLOCKED6: [u8; 16] =
    [0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
const GRE: u8 = 47;
const IPIP: u8 = 4;

/// TCP flag bits.
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        acc += u32::from(word);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    fold(sum16(data, 0))
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An Ethernet frame with VLAN tags (`(tpid, vid)`, outermost first).
fn eth_tagged(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header fields a frame varies.
#[derive(Clone, Copy)]
struct V4<'a> {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    options: &'a [u8],
    /// Flags and fragment offset (host order, as in the header's 16 bits).
    frag: u16,
    ttl: u8,
    tos: u8,
}

impl V4<'_> {
    fn new(src: [u8; 4], dst: [u8; 4], proto: u8) -> V4<'static> {
        V4 { src, dst, proto, options: &[], frag: 0x4000, ttl: 64, tos: 0 }
    }
}

fn ipv4(h: V4<'_>, payload: &[u8]) -> Vec<u8> {
    assert!(h.options.len().is_multiple_of(4), "IPv4 options are padded to 32 bits");
    let ihl = 5 + h.options.len() / 4;
    let total = ihl * 4 + payload.len();
    let mut p = vec![
        0x40 | ihl as u8,
        h.tos,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        (h.frag >> 8) as u8,
        h.frag as u8,
        h.ttl,
        h.proto,
        0,
        0,
    ];
    p.extend_from_slice(&h.src);
    p.extend_from_slice(&h.dst);
    p.extend_from_slice(h.options);
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next);
    p.push(64);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

/// An L4 segment with its checksum filled in over the IPv4 or IPv6 pseudo-header.
fn l4_checksum(seg: &mut [u8], at: usize, src: &[u8], dst: &[u8], proto: u8) {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(src);
    pseudo.extend_from_slice(dst);
    if src.len() == 4 {
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    } else {
        pseudo.extend_from_slice(&(seg.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, proto]);
    }
    let mut c = fold(sum16(seg, sum16(&pseudo, 0)));
    if c == 0 && proto == UDP {
        c = 0xffff;
    }
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn tcp(src: &[u8], dst: &[u8], ports: (u16, u16), flags: u8, opts: &[u8], data: &[u8]) -> Vec<u8> {
    assert!(opts.len().is_multiple_of(4), "TCP options are padded to 32 bits");
    let doff = 5 + opts.len() / 4;
    let mut s = Vec::new();
    s.extend_from_slice(&ports.0.to_be_bytes());
    s.extend_from_slice(&ports.1.to_be_bytes());
    s.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    s.extend_from_slice(&(if flags & ACK != 0 { 0x0a0b_0c0du32 } else { 0 }).to_be_bytes());
    s.push((doff as u8) << 4);
    s.push(flags);
    s.extend_from_slice(&64240u16.to_be_bytes());
    s.extend_from_slice(&[0, 0, 0, 0]);
    s.extend_from_slice(opts);
    s.extend_from_slice(data);
    l4_checksum(&mut s, 16, src, dst, TCP);
    s
}

fn udp(src: &[u8], dst: &[u8], ports: (u16, u16), data: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&ports.0.to_be_bytes());
    s.extend_from_slice(&ports.1.to_be_bytes());
    s.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(data);
    l4_checksum(&mut s, 6, src, dst, UDP);
    s
}

fn icmp_echo(id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut s = vec![8, 0, 0, 0];
    s.extend_from_slice(&id.to_be_bytes());
    s.extend_from_slice(&seq.to_be_bytes());
    s.extend_from_slice(data);
    let c = checksum(&s);
    s[2..4].copy_from_slice(&c.to_be_bytes());
    s
}

fn icmp6(src: &[u8], dst: &[u8], ty: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![ty, 0, 0, 0];
    s.extend_from_slice(body);
    l4_checksum(&mut s, 2, src, dst, ICMPV6);
    s
}

fn v4_tcp(src: [u8; 4], dst: [u8; 4], dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
    let seg = tcp(&src, &dst, (40000, dport), flags, &[], data);
    eth(0x0800, &ipv4(V4::new(src, dst, TCP), &seg))
}

fn v4_udp(src: [u8; 4], dst: [u8; 4], ports: (u16, u16), data: &[u8]) -> Vec<u8> {
    let seg = udp(&src, &dst, ports, data);
    eth(0x0800, &ipv4(V4::new(src, dst, UDP), &seg))
}

/// The IPv4 packet (no Ethernet header) of a TCP segment, for tunnels.
fn inner_v4_tcp(src: [u8; 4], dst: [u8; 4], dport: u16) -> Vec<u8> {
    let seg = tcp(&src, &dst, (41000, dport), SYN, &[], &[]);
    ipv4(V4::new(src, dst, TCP), &seg)
}

fn dns_query() -> Vec<u8> {
    let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["example", "com"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn arp(op: u16, sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0, 1, 8, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&SRC_MAC);
    p.extend_from_slice(&sender);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target);
    eth(0x0806, &p)
}

/// IPv6 extension header: next header, then `body` padded to a multiple of 8 bytes in all.
fn ext6(next: u8, body: &[u8]) -> Vec<u8> {
    let total = (2 + body.len()).div_ceil(8) * 8;
    let mut h = vec![next, (total / 8 - 1) as u8];
    h.extend_from_slice(body);
    h.resize(total, 0);
    h
}

/// Every frame of the corpus, by name.
pub(crate) fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut f: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let payload = b"GET / HTTP/1.1\r\nHost: corpus\r\n\r\n";
    f.push(("v4_tcp_syn_vip80", v4_tcp(CLIENT4, VIP4, 80, SYN, &[])));
    f.push(("v4_tcp_data_vip80", v4_tcp(CLIENT4, VIP4, 80, ACK | PSH, payload)));
    f.push(("v4_tcp_syn_vip443", v4_tcp(CLIENT4, VIP4, 443, SYN, &[])));
    f.push(("v4_tcp_syn_other", v4_tcp(CLIENT4, [10, 1, 1, 1], 22, SYN, &[])));
    f.push(("v4_tcp_syn_blocked", v4_tcp(BLOCKED4, VIP4, 80, SYN, &[])));
    f.push(("v4_tcp_syn_blocknet", v4_tcp(BLOCKNET4, VIP4, 80, SYN, &[])));
    f.push(("v4_tcp_from_backend", {
        let seg = tcp(&[10, 0, 0, 2], &CLIENT4, (80, 40000), ACK, &[], b"hello");
        eth(0x0800, &ipv4(V4::new([10, 0, 0, 2], CLIENT4, TCP), &seg))
    }));
    // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
    let opts = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
    f.push(("v4_tcp_syn_options", {
        let seg = tcp(&CLIENT4, &VIP4, (40001, 80), SYN, &opts, &[]);
        eth(0x0800, &ipv4(V4::new(CLIENT4, VIP4, TCP), &seg))
    }));
    f.push(("v4_tcp_fin_ack", v4_tcp(CLIENT4, VIP4, 80, FIN | ACK, &[])));
    f.push(("v4_tcp_rst", v4_tcp(CLIENT4, VIP4, 443, RST, &[])));
    f.push(("v4_tcp_1400", v4_tcp(CLIENT4, VIP4, 80, ACK | PSH, &[0x33; 1400 - 54])));
    f.push(("v4_udp_600", v4_udp(CLIENT4, VIP4, (40007, 9000), &[0x77; 600 - 42])));
    f.push(("v4_udp_dns", v4_udp(CLIENT4, [8, 8, 8, 8], (53000, 53), &dns_query())));
    f.push(("v4_udp_vip", v4_udp(CLIENT4, VIP4, (53001, 53), &dns_query())));
    f.push(("v4_udp_ntp_reflect", v4_udp([192, 0, 2, 99], CLIENT4, (123, 40000), &[0x24; 48])));
    f.push(("v4_icmp_echo_vip", {
        eth(0x0800, &ipv4(V4::new(CLIENT4, VIP4, ICMP), &icmp_echo(7, 1, b"pingpingpingping")))
    }));
    f.push(("v4_icmp_echo_blocked", {
        eth(0x0800, &ipv4(V4::new(BLOCKED4, VIP4, ICMP), &icmp_echo(8, 2, b"abcdefgh")))
    }));
    // Record Route (7) with room for 2 addresses, padded with NOP + EOL.
    let rr = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    f.push(("v4_opt_record_route", {
        let seg = tcp(&CLIENT4, &VIP4, (40002, 80), SYN, &[], &[]);
        eth(0x0800, &ipv4(V4 { options: &rr, ..V4::new(CLIENT4, VIP4, TCP) }, &seg))
    }));
    // Loose Source Route (131) through 192.0.2.200, then EOL padding.
    let lsrr = [131, 7, 4, 192, 0, 2, 200, 0];
    f.push(("v4_opt_lsrr", {
        let seg = udp(&CLIENT4, &VIP4, (40003, 53), b"srcroute");
        eth(0x0800, &ipv4(V4 { options: &lsrr, ..V4::new(CLIENT4, VIP4, UDP) }, &seg))
    }));
    f.push(("v4_frag_first", {
        let seg = udp(&CLIENT4, &VIP4, (40004, 53), &[0x55; 64]);
        eth(0x0800, &ipv4(V4 { frag: 0x2000, ..V4::new(CLIENT4, VIP4, UDP) }, &seg[..48]))
    }));
    f.push(("v4_frag_later", {
        eth(0x0800, &ipv4(V4 { frag: 6, ..V4::new(CLIENT4, VIP4, UDP) }, &[0x55; 24]))
    }));
    f.push(("v4_dscp_ef_udp", {
        let seg = udp(&CLIENT4, &VIP4, (5004, 5004), &[0x80; 32]);
        eth(0x0800, &ipv4(V4 { tos: 0xb8, ..V4::new(CLIENT4, VIP4, UDP) }, &seg))
    }));
    f.push(("v4_ecn_ect0_tcp", {
        let seg = tcp(&CLIENT4, &VIP4, (40006, 443), ACK, &[], b"ecn");
        eth(0x0800, &ipv4(V4 { tos: 0x02, ..V4::new(CLIENT4, VIP4, TCP) }, &seg))
    }));
    f.push(("v4_ttl1_tcp", {
        let seg = tcp(&CLIENT4, &VIP4, (40005, 80), SYN, &[], &[]);
        eth(0x0800, &ipv4(V4 { ttl: 1, ..V4::new(CLIENT4, VIP4, TCP) }, &seg))
    }));
    f.push(("v4_gre_tcp", {
        let mut gre = vec![0, 0, 0x08, 0x00];
        gre.extend_from_slice(&inner_v4_tcp(CLIENT4, VIP4, 80));
        eth(0x0800, &ipv4(V4::new([192, 0, 2, 50], [192, 0, 2, 51], GRE), &gre))
    }));
    f.push(("v4_gre_keyed", {
        // GRE with the key bit set (flags 0x2000) and key 42: decapsulators that only handle
        // the plain header must leave it alone.
        let mut gre = vec![0x20, 0, 0x08, 0x00, 0, 0, 0, 42];
        gre.extend_from_slice(&inner_v4_tcp(CLIENT4, VIP4, 80));
        eth(0x0800, &ipv4(V4::new([192, 0, 2, 50], [192, 0, 2, 51], GRE), &gre))
    }));
    f.push(("v4_ipip_tcp", {
        let inner = inner_v4_tcp(CLIENT4, VIP4, 443);
        eth(0x0800, &ipv4(V4::new([192, 0, 2, 50], [192, 0, 2, 51], IPIP), &inner))
    }));
    f.push(("v4_vxlan_tcp", {
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
        vx.extend_from_slice(&eth(0x0800, &inner_v4_tcp(CLIENT4, VIP4, 80)));
        v4_udp([192, 0, 2, 50], [192, 0, 2, 51], (51000, 4789), &vx)
    }));
    f.push(("v6_tcp_syn_vip80", {
        let seg = tcp(&CLIENT6, &VIP6, (40010, 80), SYN, &[], &[]);
        eth(0x86dd, &ipv6(CLIENT6, VIP6, TCP, &seg))
    }));
    f.push(("v6_udp_dns", {
        let seg = udp(&CLIENT6, &VIP6, (53010, 53), &dns_query());
        eth(0x86dd, &ipv6(CLIENT6, VIP6, UDP, &seg))
    }));
    f.push(("v6_icmp6_echo", {
        let body = [0, 9, 0, 1, b'p', b'i', b'n', b'g'];
        eth(0x86dd, &ipv6(CLIENT6, VIP6, ICMPV6, &icmp6(&CLIENT6, &VIP6, 128, &body)))
    }));
    f.push(("v6_icmp6_ns", {
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&VIP6);
        let mut dst = [0u8; 16];
        dst[..2].copy_from_slice(&[0xff, 0x02]);
        dst[11..].copy_from_slice(&[1, 0xff, 0, 0, 1]);
        eth(0x86dd, &ipv6(CLIENT6, dst, ICMPV6, &icmp6(&CLIENT6, &dst, 135, &body)))
    }));
    f.push(("v6_tcp_blocked", {
        let seg = tcp(&BLOCKED6, &VIP6, (40011, 80), SYN, &[], &[]);
        eth(0x86dd, &ipv6(BLOCKED6, VIP6, TCP, &seg))
    }));
    f.push(("v6_ext_hbh_dst_tcp", {
        let seg = tcp(&CLIENT6, &VIP6, (40012, 443), SYN, &[], &[]);
        let mut p = ext6(60, &[1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&ext6(TCP, &[1, 4, 0, 0, 0, 0]));
        p.extend_from_slice(&seg);
        eth(0x86dd, &ipv6(CLIENT6, VIP6, 0, &p))
    }));
    f.push(("v6_ext_routing_udp", {
        let seg = udp(&CLIENT6, &VIP6, (40013, 53), b"routed");
        let mut body = vec![0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&VIP6);
        let mut p = ext6(UDP, &body);
        p[2] = 0; // routing type 0
        p.extend_from_slice(&seg);
        eth(0x86dd, &ipv6(CLIENT6, VIP6, 43, &p))
    }));
    f.push(("v6_ext_frag_udp", {
        let seg = udp(&CLIENT6, &VIP6, (40014, 53), &[0x66; 40]);
        let mut p = vec![UDP, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(&seg[..32]);
        eth(0x86dd, &ipv6(CLIENT6, VIP6, 44, &p))
    }));
    f.push(("arp_request", arp(1, CLIENT4, VIP4)));
    f.push(("arp_reply_blocked", arp(2, BLOCKED4, CLIENT4)));
    f.push(("arp_reply_client", arp(2, CLIENT4, VIP4)));
    f.push(("vlan_v4_tcp_vip80", {
        let seg = tcp(&CLIENT4, &VIP4, (40020, 80), SYN, &[], &[]);
        eth_tagged(&[(0x8100, 10)], 0x0800, &ipv4(V4::new(CLIENT4, VIP4, TCP), &seg))
    }));
    f.push(("qinq_v4_udp", {
        let seg = udp(&CLIENT4, &VIP4, (40021, 53), &dns_query());
        eth_tagged(&[(0x88a8, 20), (0x8100, 30)], 0x0800, &ipv4(V4::new(CLIENT4, VIP4, UDP), &seg))
    }));
    f.push(("vlan_v6_tcp", {
        let seg = tcp(&CLIENT6, &VIP6, (40022, 80), SYN, &[], &[]);
        eth_tagged(&[(0x8100, 0x2064)], 0x86dd, &ipv6(CLIENT6, VIP6, TCP, &seg))
    }));
    f.push(("lldp", {
        let mut p = vec![0x02, 0x07, 0x04, 0x02, 0, 0, 0, 0, 0x01];
        p.resize(46, 0);
        eth(0x88cc, &p)
    }));
    let full = v4_tcp(CLIENT4, VIP4, 80, SYN, &[]);
    f.push(("trunc_eth", full[..10].to_vec()));
    f.push(("trunc_ipv4", full[..14 + 12].to_vec()));
    f.push(("trunc_tcp", full[..14 + 20 + 10].to_vec()));
    let full6 = f.iter().find(|(n, _)| *n == "v6_tcp_syn_vip80").map(|(_, b)| b.clone());
    f.push(("trunc_ipv6", full6.unwrap_or_default()[..14 + 20].to_vec()));
    let fullu = v4_udp(CLIENT4, VIP4, (1, 53), &[]);
    f.push(("trunc_udp", fullu[..14 + 20 + 4].to_vec()));
    f.push(("jumbo_v4_tcp", v4_tcp(CLIENT4, VIP4, 80, ACK, &vec![0x4a; 9000 - 54])));
    f
}

/// A `struct bpf_sk_lookup` (72 bytes) as the kernel's sk_lookup test run takes it: the remote
/// port in network order, the local port in host order, `sk` and everything after
/// `local_port` zero.
fn sk_lookup_ctx(proto: u8, remote: ([u8; 4], u16), local: ([u8; 4], u16)) -> Vec<u8> {
    let mut c = vec![0u8; 8];
    c.extend_from_slice(&2u32.to_le_bytes());
    c.extend_from_slice(&u32::from(proto).to_le_bytes());
    c.extend_from_slice(&remote.0);
    c.extend_from_slice(&[0; 16]);
    c.extend_from_slice(&remote.1.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c.extend_from_slice(&local.0);
    c.extend_from_slice(&[0; 16]);
    c.extend_from_slice(&u32::from(local.1).to_le_bytes());
    c.resize(72, 0);
    c
}

/// sk_lookup contexts: IPv4 TCP and UDP connections to the VIP's services, and one from a
/// blocklisted remote.
pub(crate) fn sk_lookups() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("sk_tcp_vip80", sk_lookup_ctx(TCP, (CLIENT4, 40000), (VIP4, 80))),
        ("sk_tcp_vip443", sk_lookup_ctx(TCP, (CLIENT4, 40001), (VIP4, 443))),
        ("sk_udp_vip53", sk_lookup_ctx(UDP, (CLIENT4, 5353), (VIP4, 53))),
        ("sk_tcp_blocked22", sk_lookup_ctx(TCP, (BLOCKED4, 40002), (VIP4, 22))),
    ]
}

/// Whether the IPv4 header at `ip` (an offset into `frame`) and the TCP/UDP/ICMP message after
/// it carry valid checksums (UDP's optional zero checksum counts as valid; other protocols are
/// not checked past the IPv4 header).
pub(crate) fn ipv4_checksums_ok(frame: &[u8], ip: usize) -> bool {
    let Some(&vihl) = frame.get(ip) else { return false };
    let ihl = usize::from(vihl & 0x0f) * 4;
    let Some(header) = frame.get(ip..ip + ihl) else { return false };
    if checksum(header) != 0 {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([frame[ip + 2], frame[ip + 3]]));
    let Some(seg) = frame.get(ip + ihl..ip + total) else { return false };
    let proto = frame[ip + 9];
    if proto == ICMP {
        return checksum(seg) == 0;
    }
    if proto != TCP && proto != UDP || (proto == UDP && seg.get(6..8) == Some(&[0, 0])) {
        return true;
    }
    let mut pseudo = frame[ip + 12..ip + 20].to_vec();
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    fold(sum16(seg, sum16(&pseudo, 0))) == 0
}

/// Every frame name once, so tests can check the list did not lose any.
pub(crate) fn names() -> Vec<&'static str> {
    all().into_iter().map(|(n, _)| n).collect()
}

#[cfg(test)]
mod checks {
    use super::*;

    #[test]
    fn frames_have_valid_ipv4_checksums_and_lengths() {
        let frames = all();
        let syn = &frames.iter().find(|(n, _)| *n == "v4_tcp_syn_vip80").unwrap().1;
        assert_eq!(syn.len(), 54);
        assert_eq!(checksum(&syn[14..34]), 0, "IPv4 header checksum verifies");
        let jumbo = &frames.iter().find(|(n, _)| *n == "jumbo_v4_tcp").unwrap().1;
        assert_eq!(jumbo.len(), 9000);
        let lsrr = &frames.iter().find(|(n, _)| *n == "v4_opt_lsrr").unwrap().1;
        assert_eq!(lsrr[14] & 0x0f, 7, "IHL counts the 8 option bytes");
        for (name, ctx) in sk_lookups() {
            assert_eq!(ctx.len(), 72, "{name}: struct bpf_sk_lookup is 72 bytes");
            assert_eq!(&ctx[40..44], &VIP4, "{name}: local_ip4 at offset 40");
        }
        assert_eq!(names().len(), frames.len());
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), frames.len(), "frame names are unique");
        for (name, f) in &frames {
            if name.starts_with("v4_") && !name.starts_with("v4_frag") && f.len() < 9000 {
                assert!(ipv4_checksums_ok(f, 14), "{name}: checksums verify");
            }
        }
        let mut broken = syn.clone();
        broken[14 + 20 + 16] ^= 1;
        assert!(!ipv4_checksums_ok(&broken, 14), "a flipped TCP checksum bit is caught");
    }
}
