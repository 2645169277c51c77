// SPDX-License-Identifier: GPL-2.0
/* xdp_vlan_translate: VLAN id translation in place (the service-provider "VLAN mapping"
 * of XDP CPE/BNG datapaths): the outer VLAN id is rewritten from a hash (customer -> provider
 * id) keeping the PCP/DEI bits; QinQ frames get their inner id rewritten from a second table;
 * frames on unknown VLANs are dropped, untagged ones pass. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u16);
} outer_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u16);
	__type(value, __u16);
} inner_map SEC(".maps");

static __always_inline int translate(struct vlan_hdr *vh, void *map)
{
	__u16 tci = bpf_ntohs(vh->h_vlan_TCI);
	__u16 vid = tci & 0x0fff, *to;

	to = bpf_map_lookup_elem(map, &vid);
	if (!to)
		return -1;
	vh->h_vlan_TCI = bpf_htons((tci & 0xf000) | (*to & 0x0fff));
	return 0;
}

SEC("xdp")
int xdp_vlan_xlate(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct vlan_hdr *outer, *inner;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (!proto_is_vlan(eth->h_proto))
		return XDP_PASS;
	outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_DROP;
	if (translate(outer, &outer_map))
		return XDP_DROP;
	if (proto_is_vlan(outer->h_vlan_encapsulated_proto)) {
		inner = outer + 1;
		if ((void *)(inner + 1) > data_end)
			return XDP_DROP;
		if (translate(inner, &inner_map))
			return XDP_DROP;
	}
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
