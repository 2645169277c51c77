// SPDX-License-Identifier: GPL-2.0
/* katran_v6_encap: katran's IPv6 path: traffic to an IPv6 VIP is encapsulated IPv6-in-IPv6
 * (next header 41) towards a real chosen by a flow hash over a ring, with room made by
 * bpf_xdp_adjust_head(-40); the outer source is derived from the inner source as katran does
 * (so the real can answer directly), the hop limit is 64. */
#include "corpus.h"

#define V6_RING 257

struct vip6_key {
	__u8 addr[16];
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct real6 {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct vip6_key);
	__type(value, __u32);
} vip6_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, V6_RING);
	__type(key, __u32);
	__type(value, __u32);
} ring6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct real6);
} reals6 SEC(".maps");

SEC("xdp")
int balancer_ingress_v6(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct vip6_key vk = {};
	struct ipv6hdr *ip6h, *outer, inner_copy;
	struct ethhdr *eth, *new_eth, eth_copy;
	struct real6 *real;
	__u32 *idx, slot, h;
	__be16 *ports;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	proto = parse_ip6hdr(&nh, data_end, &ip6h);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	ports = nh.pos;
	if ((void *)(ports + 2) > data_end)
		return XDP_DROP;
	__builtin_memcpy(vk.addr, &ip6h->daddr, 16);
	vk.port = ports[1];
	vk.proto = proto;
	idx = bpf_map_lookup_elem(&vip6_map, &vk);
	if (!idx)
		return XDP_PASS;
	h = ip6h->saddr.in6_u.u6_addr32[3] ^ ((__u32)ports[0] << 16 | ports[1]);
	h ^= h >> 16;
	h *= 0x45d9f3b;
	h ^= h >> 16;
	slot = h % V6_RING;
	idx = bpf_map_lookup_elem(&ring6, &slot);
	if (!idx)
		return XDP_DROP;
	real = bpf_map_lookup_elem(&reals6, idx);
	if (!real)
		return XDP_DROP;
	__builtin_memcpy(&eth_copy, eth, sizeof(eth_copy));
	__builtin_memcpy(&inner_copy, ip6h, sizeof(inner_copy));
	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct ipv6hdr)))
		return XDP_DROP;
	data_end = (void *)(long)ctx->data_end;
	new_eth = (void *)(long)ctx->data;
	outer = (void *)(new_eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(new_eth->h_dest, eth_copy.h_source, ETH_ALEN);
	__builtin_memcpy(new_eth->h_source, eth_copy.h_dest, ETH_ALEN);
	new_eth->h_proto = bpf_htons(ETH_P_IPV6);
	outer->version = 6;
	outer->priority = 0;
	outer->flow_lbl[0] = 0;
	outer->flow_lbl[1] = 0;
	outer->flow_lbl[2] = 0;
	outer->payload_len = bpf_htons(bpf_ntohs(inner_copy.payload_len) + sizeof(struct ipv6hdr));
	outer->nexthdr = IPPROTO_IPV6;
	outer->hop_limit = 64;
	__builtin_memcpy(&outer->saddr, &inner_copy.saddr, 12);
	outer->saddr.in6_u.u6_addr32[3] = bpf_htonl(0xfeedbeef);
	__builtin_memcpy(&outer->daddr, real->addr, 16);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
