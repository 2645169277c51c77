// SPDX-License-Identifier: GPL-2.0
/* xdp_map_iterate: bpf_for_each_map_elem over a hash of per-port quotas (the pattern rate
 * limiters use to age or sum entries in the datapath): the callback sums remaining quota and
 * decrements the entry of the packet's destination port; the packet is dropped once its
 * port's quota is spent. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} quotas SEC(".maps");

struct walk_ctx {
	__u32 port;
	__u32 found;
	__u64 total;
	__u64 left;
};

static long visit(void *map, __u32 *key, __u64 *quota, struct walk_ctx *c)
{
	c->total += *quota;
	if (*key == c->port) {
		c->found = 1;
		if (*quota)
			*quota -= 1;
		c->left = *quota;
	}
	return 0;
}

SEC("xdp")
int xdp_quota(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct walk_ctx c = {};
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *l4;
	long n;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	l4 = nh.pos;
	if ((void *)(l4 + 1) > data_end)
		return XDP_DROP;
	c.port = bpf_ntohs(l4->dest);
	n = bpf_for_each_map_elem(&quotas, visit, &c, 0);
	if (n < 0)
		return XDP_ABORTED;
	if (!c.found)
		return XDP_PASS;
	return c.left ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
