#!/usr/bin/env python3
"""Generate the input packets and test-run contexts used by the bpflab C fixtures.

Deterministic: every byte is fixed here, checksums are computed. Run from anywhere:

    python3 programs/tests/packets/make_packets.py          # (re)writes *.bin next to this file
    python3 programs/tests/packets/make_packets.py --check  # fails if a committed file differs

Frames start at the Ethernet header (what BPF_PROG_TEST_RUN takes as data_in for xdp, tc,
socket and cgroup_skb programs). Files named ctx_*.bin are ctx_in blobs, not packets.
expected/<program>__<input>.bin are the exact output frames the fixtures must produce.
"""
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

MAC_DST = bytes.fromhex("020000000002")
MAC_SRC = bytes.fromhex("020000000001")
IP_SRC = bytes([10, 0, 0, 1])
IP_DST = bytes([10, 1, 2, 3])
IP6_SRC = bytes.fromhex("20010db8000000000000000000000001")
IP6_DST = bytes.fromhex("20010db8000000000000000000000002")


def csum16(data: bytes) -> int:
    """RFC 1071 internet checksum (returns the value to store, host int)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(proto: int, dst: bytes = MAC_DST, src: bytes = MAC_SRC) -> bytes:
    return dst + src + struct.pack("!H", proto)


def ipv4(proto: int, payload: bytes, src=IP_SRC, dst=IP_DST, ident=0x1234, ttl=64) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000,
                      ttl, proto, 0, src, dst)
    c = csum16(hdr)
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def l4_v4(proto: int, seg_wo_csum: bytes, csum_off: int, src=IP_SRC, dst=IP_DST) -> bytes:
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(seg_wo_csum))
    c = csum16(pseudo + seg_wo_csum)
    if proto == 17 and c == 0:
        c = 0xFFFF
    return seg_wo_csum[:csum_off] + struct.pack("!H", c) + seg_wo_csum[csum_off + 2:]


def l4_v6(proto: int, seg_wo_csum: bytes, csum_off: int, src=IP6_SRC, dst=IP6_DST) -> bytes:
    pseudo = src + dst + struct.pack("!IxxxB", len(seg_wo_csum), proto)
    c = csum16(pseudo + seg_wo_csum)
    return seg_wo_csum[:csum_off] + struct.pack("!H", c) + seg_wo_csum[csum_off + 2:]


def tcp(sport: int, dport: int, flags: int = 0x02, seq: int = 0x01020304) -> bytes:
    # data offset 5 (20 bytes, no options), window 64240, urgent 0, checksum filled later
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 64240, 0, 0)


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


UDP_PAYLOAD = b"bpflab!\n"


def tcp_syn_v4() -> bytes:
    seg = l4_v4(6, tcp(40000, 80), 16)
    return eth(0x0800) + ipv4(6, seg)


def udp_v4(dst=bytes([192, 168, 1, 1])) -> bytes:
    seg = l4_v4(17, udp(5353, 53, UDP_PAYLOAD), 6, dst=dst)
    return ipv4(17, seg, dst=dst)


def tcp_syn_v6() -> bytes:
    seg = l4_v6(6, tcp(40000, 443), 16)
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(seg), 6, 64, IP6_SRC, IP6_DST)
    return eth(0x86DD) + ip6 + seg


def arp_request() -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_SRC, IP_SRC,
                       b"\0" * 6, bytes([10, 0, 0, 2]))
    return eth(0x0806, dst=b"\xff" * 6) + body


def vlan_udp_v4() -> bytes:
    # 802.1Q tag: PCP 0, DEI 0, VID 100; inner ethertype IPv4
    return (MAC_DST + MAC_SRC + struct.pack("!HHH", 0x8100, 100, 0x0800) + udp_v4())


def sk_lookup_ctx(family: int, protocol: int, remote_ip4: bytes, remote_port: int,
                  local_ip4: bytes, local_port: int, ifindex: int = 0) -> bytes:
    """struct bpf_sk_lookup (72 bytes). remote_port is network order in the low 16 bits
    of its 32-bit slot, local_port is host order (as in the uapi). The kernel test run
    requires sk == 0 and everything after local_port (ingress_ifindex, padding) zero."""
    return (struct.pack("<Q", 0)                      # sk / cookie (must be 0 on input)
            + struct.pack("<II", family, protocol)
            + remote_ip4                              # remote_ip4 (network order)
            + b"\0" * 16                              # remote_ip6
            + struct.pack("!H", remote_port) + b"\0\0"  # remote_port (__be16) + pad
            + local_ip4                               # local_ip4
            + b"\0" * 16                              # local_ip6
            + struct.pack("<I", local_port)           # local_port (host order)
            + struct.pack("<I", ifindex)              # ingress_ifindex
            + b"\0" * 4)                              # tail padding to 72


FILES = {
    # Ethernet / IPv4 / TCP SYN 10.0.0.1:40000 -> 10.1.2.3:80, 54 bytes
    "ipv4_tcp_syn.bin": tcp_syn_v4(),
    # Ethernet / IPv4 / UDP 10.0.0.1:5353 -> 192.168.1.1:53, payload "bpflab!\n", 50 bytes
    "ipv4_udp.bin": eth(0x0800) + udp_v4(),
    # Ethernet / IPv6 / TCP SYN [2001:db8::1]:40000 -> [2001:db8::2]:443, 74 bytes
    "ipv6_tcp_syn.bin": tcp_syn_v6(),
    # Ethernet broadcast / ARP who-has 10.0.0.2 tell 10.0.0.1, 42 bytes
    "arp_request.bin": arp_request(),
    # Ethernet / 802.1Q VID 100 / IPv4 / UDP (same IPv4 datagram as ipv4_udp), 54 bytes
    "vlan_ipv4_udp.bin": vlan_udp_v4(),
    # Ethernet header only, ethertype IPv4, no IP header: 14 bytes (truncated frame)
    "eth_only_ipv4.bin": eth(0x0800),
    # 10-byte runt: shorter than an Ethernet header (kernel test run refuses it: EINVAL)
    "runt_10.bin": MAC_DST + MAC_SRC[:4],
    # raw_tp/sys_enter ctx: u64 args[2] = { regs = 0, id = 257 (__NR_openat on x86_64) }
    "ctx_raw_tp_sys_enter.bin": struct.pack("<QQ", 0, 257),
    # sk_lookup ctx: TCP 10.0.0.1:40000 -> 10.1.2.3:80 (AF_INET=2, IPPROTO_TCP=6)
    "ctx_sk_lookup_tcp80.bin": sk_lookup_ctx(2, 6, IP_SRC, 40000, IP_DST, 80),
    # sk_lookup ctx: UDP 10.0.0.1:5353 -> 10.1.2.3:53 (IPPROTO_UDP=17)
    "ctx_sk_lookup_udp53.bin": sk_lookup_ctx(2, 17, IP_SRC, 5353, IP_DST, 53),
    # syscall-program ctx: struct { u32 a; u32 b; } = { 6, 7 }
    "ctx_syscall_args.bin": struct.pack("<II", 6, 7),
}


def swap_macs(f: bytes) -> bytes:
    return f[6:12] + f[0:6] + f[12:]


def insert(f: bytes, off: int, blob: bytes) -> bytes:
    return f[:off] + blob + f[off:]


def dnat_tcp_syn() -> bytes:
    """ipv4_tcp_syn.bin after DNAT to 10.9.8.7:8080, both checksums fully recomputed."""
    dst = bytes([10, 9, 8, 7])
    seg = l4_v4(6, tcp(40000, 8080), 16, dst=dst)
    return eth(0x0800) + ipv4(6, seg, dst=dst)


UDP = FILES["ipv4_udp.bin"]
SYN = FILES["ipv4_tcp_syn.bin"]

# Expected output frames (data_out of BPF_PROG_TEST_RUN), computed here independently of
# the kernel: packets/expected/<program>__<input>.bin. kernel_check.py compares the
# kernel's data_out with these files.
EXPECTED = {
    # xdp.bpf.c
    "xdp_classify__ipv4_udp.bin": swap_macs(UDP),                     # XDP_TX, MACs swapped
    "xdp_vlan_push__ipv4_udp.bin": FILES["vlan_ipv4_udp.bin"],        # tag VID 100 inserted
    "xdp_trim__ipv4_udp.bin": UDP[:-8] + b"\0" * 4,                   # -8 then +4 zero bytes
    "xdp_meta__ipv4_udp.bin": struct.pack("<Q", 0x1122334455667788) + UDP,  # meta first
    # skb_helpers.bpf.c
    "skb_swap_macs__ipv4_udp.bin": swap_macs(UDP),
    "skb_pull_bcast__ipv4_udp.bin": b"\xff" * 6 + UDP[6:],
    "skb_grow_tail__ipv4_udp.bin": UDP + b"\0" * 6,
    "skb_shrink_tail__ipv4_udp.bin": UDP[:-8],
    "skb_room_net__ipv4_udp.bin": insert(UDP, 14 + 20, b"\0" * 8),
    "skb_room_mac__ipv4_udp.bin": insert(UDP, 14, b"\0" * 4),
    "skb_to_ipv6__ipv4_udp.bin": insert(UDP[:12] + b"\x86\xdd" + UDP[14:], 14, b"\0" * 20),
    "skb_vlan__vlan_ipv4_udp.bin": UDP,                               # tag popped from data
    # csum.bpf.c
    "csum_nat__ipv4_tcp_syn.bin": dnat_tcp_syn(),
    "csum_nat_diff__ipv4_tcp_syn.bin": dnat_tcp_syn(),
    # socket_filter / cgroup_skb test runs: the program sees the frame from the IPv4 header;
    # data_out comes back with the 14 Ethernet-header bytes zeroed.
    "sock_dns_only__ipv4_udp.bin": b"\0" * 14 + UDP[14:],
    "cg_ingress__ipv4_udp.bin": b"\0" * 14 + UDP[14:],
}


def main() -> int:
    check = "--check" in sys.argv[1:]
    bad = 0
    (HERE / "expected").mkdir(exist_ok=True)
    all_files = dict(FILES)
    all_files.update({"expected/" + k: v for k, v in EXPECTED.items()})
    for name, data in all_files.items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_bytes() != data:
                print("differs:", name)
                bad += 1
        else:
            path.write_bytes(data)
            print("%-44s %3d bytes" % (name, len(data)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
