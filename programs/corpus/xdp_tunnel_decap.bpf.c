// SPDX-License-Identifier: GPL-2.0
/* xdp_tunnel_decap: strips GRE, IPIP and VXLAN outer headers with bpf_xdp_adjust_head so
 * the inner packet continues up the stack (a decap endpoint as in katran's decap and
 * Cloudflare's unimog-like designs). The outer MACs are kept. */
#include "corpus.h"

#define VXLAN_PORT 4789

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} decap_cnt SEC(".maps");

static __always_inline int decap(struct xdp_md *ctx, int outer_len, __be16 inner_proto, __u32 kind)
{
	void *data_end, *data;
	struct ethhdr *eth;
	struct ethhdr orig;
	__u64 *cnt;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(&orig, eth, sizeof(orig));
	if (bpf_xdp_adjust_head(ctx, outer_len))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->h_dest, orig.h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_source, orig.h_source, ETH_ALEN);
	eth->h_proto = inner_proto;
	cnt = bpf_map_lookup_elem(&decap_cnt, &kind);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_PASS;
}

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	int proto, iplen;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS; /* tagged: leave to the VLAN program */
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto < 0)
		return XDP_DROP;
	iplen = iph->ihl * 4;
	if (iplen != 20)
		return XDP_PASS;
	if (proto == IPPROTO_IPIP)
		return decap(ctx, 20, bpf_htons(ETH_P_IP), 0);
	if (proto == IPPROTO_GRE) {
		struct gre_base_hdr *gre = nh.pos;

		if ((void *)(gre + 1) > data_end)
			return XDP_DROP;
		if (gre->flags != 0)
			return XDP_PASS; /* keys, checksums, sequence numbers: not handled */
		return decap(ctx, 20 + sizeof(*gre), gre->protocol, 1);
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *udph;
		struct vxlanhdr *vxh;

		if (parse_udphdr(&nh, data_end, &udph) < 0)
			return XDP_DROP;
		if (udph->dest != bpf_htons(VXLAN_PORT))
			return XDP_PASS;
		vxh = nh.pos;
		if ((void *)(vxh + 1) > data_end)
			return XDP_DROP;
		/* Strip outer IP + UDP + VXLAN + the outer Ethernet: the inner Ethernet header
		 * becomes the frame's. */
		if (bpf_xdp_adjust_head(ctx, 14 + 20 + 8 + 8))
			return XDP_DROP;
		{
			__u32 kind = 2;
			__u64 *cnt = bpf_map_lookup_elem(&decap_cnt, &kind);

			if (cnt)
				__sync_fetch_and_add(cnt, 1);
		}
		return XDP_PASS;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
