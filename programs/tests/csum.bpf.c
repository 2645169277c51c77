// SPDX-License-Identifier: GPL-2.0
/*
 * csum.bpf.c - incremental checksum helpers on a fixed IPv4/TCP frame
 * (packets/ipv4_tcp_syn.bin: 10.0.0.1:40000 -> 10.1.2.3:80 SYN, IP csum 0x1298,
 * TCP csum 0xfe56), SEC("tc") programs.
 *
 * Offsets in the frame: IPv4 checksum 24, IPv4 daddr 30, TCP dport 36, TCP checksum 50.
 *
 * csum_nat       DNAT 10.1.2.3:80 -> 10.9.8.7:8080 with bpf_skb_store_bytes,
 *                bpf_l3_csum_replace(24, old_ip, new_ip, 4),
 *                bpf_l4_csum_replace(50, old_ip, new_ip, BPF_F_PSEUDO_HDR | 4),
 *                bpf_l4_csum_replace(50, old_port, new_port, 2).
 *                Output = packets/expected/csum_nat.bin: both checksums equal a full
 *                recomputation (IP csum 0x0c8c, TCP csum 0xd90a).
 * csum_nat_diff  the same DNAT using bpf_csum_diff(&old, 4, &new, 4, 0) as the delta for
 *                bpf_l3_csum_replace(24, 0, diff, 0) and
 *                bpf_l4_csum_replace(50, 0, diff, BPF_F_PSEUDO_HDR) (port via
 *                l4_csum_replace(.., 2) as above). Output identical to csum_nat.
 * csum_verify    bpf_csum_diff(NULL, 0, iphdr, 20, 0) over the (valid) IPv4 header: the raw
 *                32-bit result is architecture-specific, its 16-bit one's-complement fold
 *                is 0xffff for a header with a correct checksum; also the raw diff of
 *                10.1.2.3 -> 10.9.8.7. csum_res slots: 0 raw header sum, 1 folded (0xffff),
 *                2 raw diff, 3 folded diff (Linux 6.18 x86_64: 65535, 65535, 3078, 3078).
 *                Returns TC_ACT_OK when slot 1 == 0xffff.
 * The two NAT programs return TC_ACT_OK (0) when every helper returned 0, else TC_ACT_SHOT.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IP_CSUM_OFF	(ETH_HLEN + offsetof(struct iphdr, check))	/* 24 */
#define IP_DST_OFF	(ETH_HLEN + offsetof(struct iphdr, daddr))	/* 30 */
#define TCP_DPORT_OFF	(ETH_HLEN + sizeof(struct iphdr) + offsetof(struct tcphdr, dest)) /* 36 */
#define TCP_CSUM_OFF	(ETH_HLEN + sizeof(struct iphdr) + offsetof(struct tcphdr, check)) /* 50 */

#define NEW_IP		bpf_htonl(0x0a090807)	/* 10.9.8.7 */
#define NEW_PORT	bpf_htons(8080)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __s64);
} csum_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&csum_res, &slot, &v, BPF_ANY);
}

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s;
}

static __always_inline long rewrite_port(struct __sk_buff *skb)
{
	__be16 old_port, new_port = NEW_PORT;
	long r;

	r = bpf_skb_load_bytes(skb, TCP_DPORT_OFF, &old_port, sizeof(old_port));
	r |= bpf_skb_store_bytes(skb, TCP_DPORT_OFF, &new_port, sizeof(new_port), 0);
	r |= bpf_l4_csum_replace(skb, TCP_CSUM_OFF, old_port, new_port, sizeof(new_port));
	return r;
}

SEC("tc")
int csum_nat(struct __sk_buff *skb)
{
	__be32 old_ip, new_ip = NEW_IP;
	long r;

	r = bpf_skb_load_bytes(skb, IP_DST_OFF, &old_ip, sizeof(old_ip));
	r |= bpf_skb_store_bytes(skb, IP_DST_OFF, &new_ip, sizeof(new_ip), 0);
	r |= bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ip, new_ip, sizeof(new_ip));
	r |= bpf_l4_csum_replace(skb, TCP_CSUM_OFF, old_ip, new_ip,
				 BPF_F_PSEUDO_HDR | sizeof(new_ip));
	r |= rewrite_port(skb);
	return r ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int csum_nat_diff(struct __sk_buff *skb)
{
	__be32 old_ip, new_ip = NEW_IP;
	__s64 diff;
	long r;

	r = bpf_skb_load_bytes(skb, IP_DST_OFF, &old_ip, sizeof(old_ip));
	diff = bpf_csum_diff(&old_ip, sizeof(old_ip), &new_ip, sizeof(new_ip), 0);
	r |= bpf_skb_store_bytes(skb, IP_DST_OFF, &new_ip, sizeof(new_ip), 0);
	r |= bpf_l3_csum_replace(skb, IP_CSUM_OFF, 0, diff, 0);
	r |= bpf_l4_csum_replace(skb, TCP_CSUM_OFF, 0, diff, BPF_F_PSEUDO_HDR);
	r |= rewrite_port(skb);
	return r ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int csum_verify(struct __sk_buff *skb)
{
	struct iphdr iph;
	__be32 old_ip = bpf_htonl(0x0a010203), new_ip = NEW_IP;
	__s64 sum, diff;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)))
		return TC_ACT_SHOT;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&iph, sizeof(iph), 0);
	diff = bpf_csum_diff(&old_ip, sizeof(old_ip), &new_ip, sizeof(new_ip), 0);
	res(0, sum);
	res(1, fold(sum));
	res(2, diff);
	res(3, fold(diff));
	return fold(sum) == 0xffff ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
