// SPDX-License-Identifier: GPL-2.0
/* tc_vxlan_encap: overlay encapsulation on tc egress the way Cilium's and the kernel's
 * test_tc_tunnel do it without a tunnel device: bpf_skb_adjust_room makes room for outer
 * IPv4 + UDP + VXLAN + inner Ethernet with the ENCAP_L3_IPV4 | ENCAP_L4_UDP | ENCAP_L2_ETH
 * flags (inner MAC length in the flags' L2 length field), and the outer headers are written
 * with bpf_skb_store_bytes (UDP checksum 0, outer IPv4 checksum computed). IPv6 frames are
 * encapsulated IPv6-in-IPv6 with BPF_F_ADJ_ROOM_ENCAP_L3_IPV6. */
#include "corpus.h"

#ifndef BPF_F_ADJ_ROOM_ENCAP_L3_IPV6
#define BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 (1ULL << 2)
#define BPF_F_ADJ_ROOM_ENCAP_L4_GRE (1ULL << 3)
#define BPF_F_ADJ_ROOM_ENCAP_L4_UDP (1ULL << 4)
#define BPF_F_ADJ_ROOM_ENCAP_L2_ETH (1ULL << 6)
#endif
#define ENCAP_L2(len) ((__u64)((len) & 0xff) << 56)

struct vxlan_outer {
	struct iphdr ip;
	struct udphdr udp;
	struct vxlanhdr vx;
	struct ethhdr inner_eth;
} __attribute__((packed));

SEC("tc")
int tc_vxlan_push(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + ETH_HLEN;
	struct vxlan_outer o = {};
	struct iphdr ip = {};
	__u64 csum = 0;
	__u16 *w;
	int i;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (iph->daddr != bpf_htonl(VIP4))
		return TC_ACT_OK;
	ip.version = 4;
	ip.ihl = 5;
	ip.ttl = 64;
	ip.protocol = IPPROTO_UDP;
	ip.tot_len = bpf_htons(skb->len - ETH_HLEN + sizeof(o));
	ip.saddr = bpf_htonl(0xc0000232);
	ip.daddr = bpf_htonl(BACKEND4);
	w = (__u16 *)&ip;
#pragma unroll
	for (i = 0; i < (int)sizeof(ip) / 2; i++)
		csum += w[i];
	ip.check = csum_fold_helper(csum);
	__builtin_memcpy(&o.ip, &ip, sizeof(ip));
	o.udp.source = bpf_htons(49152 + (bpf_ntohl(iph->saddr) & 0x3fff));
	o.udp.dest = bpf_htons(4789);
	o.udp.len = bpf_htons(skb->len - ETH_HLEN + sizeof(o) - sizeof(o.ip));
	o.vx.vx_flags = bpf_htonl(0x08000000);
	o.vx.vx_vni = bpf_htonl(42 << 8);
	__builtin_memcpy(&o.inner_eth, eth, sizeof(o.inner_eth));
	if (bpf_skb_adjust_room(skb, sizeof(o), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
				BPF_F_ADJ_ROOM_ENCAP_L2_ETH | ENCAP_L2(ETH_HLEN)))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &o, sizeof(o), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int tc_ip6ip6_push(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct ipv6hdr *ip6h = data + ETH_HLEN;
	struct ipv6hdr outer;

	if ((void *)(ip6h + 1) > data_end || skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	outer = *ip6h;
	outer.nexthdr = IPPROTO_IPV6;
	outer.payload_len = bpf_htons(bpf_ntohs(ip6h->payload_len) + sizeof(outer));
	outer.daddr.in6_u.u6_addr32[3] = bpf_htonl(0xbeef);
	if (bpf_skb_adjust_room(skb, sizeof(outer), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &outer, sizeof(outer), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
