// SPDX-License-Identifier: GPL-2.0
/* xdp_nat44: stateless 1:1 NAT. Destination VIP -> backend on the way in, backend source ->
 * VIP on the way out, with the IPv4 and L4 checksums fixed by bpf_csum_diff over the changed
 * address (the way Cilium's and polycube's NAT in XDP do it). */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} nat_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} nat_out SEC(".maps");

static __always_inline __u16 fold(__s64 csum)
{
	__u64 c = (__u64)csum;

	c = (c & 0xffffffff) + (c >> 32);
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

static __always_inline void rewrite(__be32 *field, __be32 new, __sum16 *ip_csum, __sum16 *l4_csum)
{
	__be32 old = *field;
	__s64 diff = bpf_csum_diff(&old, 4, &new, 4, ~((__u32)*ip_csum) & 0xffff);

	*ip_csum = ~fold(diff);
	if (l4_csum && *l4_csum) {
		diff = bpf_csum_diff(&old, 4, &new, 4, ~((__u32)*l4_csum) & 0xffff);
		*l4_csum = ~fold(diff);
	}
	*field = new;
}

SEC("xdp")
int xdp_nat(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	__sum16 *l4_csum = NULL;
	__u32 *to;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto < 0)
		return XDP_DROP;
	if (proto == IPPROTO_TCP) {
		struct tcphdr *t = nh.pos;

		if ((void *)(t + 1) > data_end)
			return XDP_DROP;
		l4_csum = &t->check;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *u = nh.pos;

		if ((void *)(u + 1) > data_end)
			return XDP_DROP;
		l4_csum = &u->check;
	}
	to = bpf_map_lookup_elem(&nat_in, &iph->daddr);
	if (to) {
		rewrite(&iph->daddr, *to, &iph->check, l4_csum);
		return XDP_TX;
	}
	to = bpf_map_lookup_elem(&nat_out, &iph->saddr);
	if (to) {
		rewrite(&iph->saddr, *to, &iph->check, l4_csum);
		return XDP_TX;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
