// SPDX-License-Identifier: GPL-2.0
/* xdp_redirect_devmap: xdp_redirect_map-style forwarding. The egress port comes from a hash
 * keyed by destination address; bpf_redirect_map falls back to the flags' action when the
 * devmap slot is empty (XDP_PASS), and a cpumap variant spreads by protocol. A second-stage
 * program for devmap entries (SEC("xdp/devmap"), expected attach type BPF_XDP_DEVMAP) rewrites
 * the source MAC on egress; the kernel refuses to test-run such programs. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} tx_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} cpu_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} egress_for SEC(".maps");

SEC("xdp")
int xdp_redirect_map_prog(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 *port;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_DROP;
	port = bpf_map_lookup_elem(&egress_for, &iph->daddr);
	if (!port)
		return XDP_PASS;
	swap_src_dst_mac(eth);
	return bpf_redirect_map(&tx_port, *port, XDP_PASS);
}

SEC("xdp")
int xdp_cpumap_spread(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto < 0)
		return XDP_DROP;
	return bpf_redirect_map(&cpu_map, proto & 3, XDP_DROP);
}

SEC("xdp/devmap")
int xdp_devmap_egress(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	static const __u8 egress_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0xee };

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_source, egress_mac, ETH_ALEN);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
