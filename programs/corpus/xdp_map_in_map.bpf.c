// SPDX-License-Identifier: GPL-2.0
/* xdp_map_in_map: per-tenant policy with maps of maps, as multi-tenant firewalls keep one
 * inner map per tenant: an array of maps indexed by VLAN-derived tenant id, and a hash of maps
 * keyed by destination address, both initialised in the object with .values. */
#include "corpus.h"

struct inner_ports {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u32);
};

struct inner_ports tenant0_ports SEC(".maps");
struct inner_ports tenant1_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_ports);
} tenants SEC(".maps") = {
	.values = { [0] = &tenant0_ports, [1] = &tenant1_ports },
};

struct inner_counter {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_counter vip_counter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner_counter);
} per_dst SEC(".maps");

SEC("xdp")
int xdp_tenant_policy(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *l4;
	__u32 tenant, zero = 0, *verdict;
	__u16 port;
	__u64 *cnt;
	void *inner;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	tenant = proto_is_vlan(eth->h_proto) ? 1 : 0;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	inner = bpf_map_lookup_elem(&per_dst, &iph->daddr);
	if (inner) {
		cnt = bpf_map_lookup_elem(inner, &zero);
		if (cnt)
			__sync_fetch_and_add(cnt, 1);
	}
	l4 = nh.pos;
	if ((void *)(l4 + 1) > data_end)
		return XDP_DROP;
	inner = bpf_map_lookup_elem(&tenants, &tenant);
	if (!inner)
		return XDP_ABORTED;
	port = bpf_ntohs(l4->dest);
	verdict = bpf_map_lookup_elem(inner, &port);
	return verdict ? *verdict : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
