// SPDX-License-Identifier: GPL-2.0
/* xdp_meta_mark: XDP-to-tc metadata handoff (samples/bpf xdp2skb_meta): the XDP program
 * reserves 4 bytes with bpf_xdp_adjust_meta and stores a mark there; a tc program reads the
 * mark back from skb->data_meta. */
#include "corpus.h"

struct meta_info {
	__u32 mark;
};

SEC("xdp")
int xdp_mark_meta(struct xdp_md *ctx)
{
	struct meta_info *meta;
	void *data;
	struct ethhdr *eth;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*meta)))
		return XDP_ABORTED;
	data = (void *)(unsigned long)ctx->data;
	meta = (void *)(unsigned long)ctx->data_meta;
	if ((void *)(meta + 1) > data)
		return XDP_ABORTED;
	eth = data;
	if ((void *)(eth + 1) > (void *)(unsigned long)ctx->data_end)
		return XDP_DROP;
	meta->mark = eth->h_proto == bpf_htons(ETH_P_IP) ? 0x42 : 0x17;
	return XDP_PASS;
}

SEC("tc")
int tc_read_meta(struct __sk_buff *skb)
{
	void *data = (void *)(unsigned long)skb->data;
	struct meta_info *meta = (void *)(unsigned long)skb->data_meta;

	if ((void *)(meta + 1) > data) {
		skb->mark = 1;
		return TC_ACT_OK;
	}
	skb->mark = meta->mark;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
