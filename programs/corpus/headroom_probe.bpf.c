// SPDX-License-Identifier: GPL-2.0
/* headroom_probe: how much room an encapsulating program really has, as tunnel datapaths
 * check before pushing headers: XDP tries bpf_xdp_adjust_head with decreasing negative deltas
 * and bpf_xdp_adjust_tail with decreasing growths, tc tries bpf_skb_change_head and
 * bpf_skb_change_tail the same way; each returns which attempts succeeded as a bit mask. */
#include "corpus.h"

SEC("xdp")
int xdp_room(struct xdp_md *ctx)
{
	static const int heads[5] = { -512, -256, -224, -192, -64 };
	static const int tails[5] = { 4096, 1024, 512, 256, 32 };
	__u32 mask = 0;
	int i;

#pragma unroll
	for (i = 0; i < 5; i++) {
		if (!bpf_xdp_adjust_head(ctx, heads[i])) {
			mask |= 1 << i;
			bpf_xdp_adjust_head(ctx, -heads[i]);
			break;
		}
	}
#pragma unroll
	for (i = 0; i < 5; i++) {
		if (!bpf_xdp_adjust_tail(ctx, tails[i])) {
			mask |= 1 << (8 + i);
			bpf_xdp_adjust_tail(ctx, -tails[i]);
			break;
		}
	}
	if (!bpf_xdp_adjust_meta(ctx, -32)) {
		mask |= 1 << 16;
		bpf_xdp_adjust_meta(ctx, 32);
	}
	return mask ? XDP_PASS : XDP_ABORTED;
}

SEC("tc")
int tc_room(struct __sk_buff *skb)
{
	static const __u32 heads[4] = { 8192, 1024, 128, 16 };
	__u32 mask = 0, len = skb->len;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		if (!bpf_skb_change_head(skb, heads[i], 0)) {
			mask |= 1 << i;
			break;
		}
	}
	if (!bpf_skb_change_tail(skb, len + 2000, 0))
		mask |= 1 << 8;
	if (!bpf_skb_change_tail(skb, 0x10000, 0))
		mask |= 1 << 9;
	return mask | (skb->len > 0xffff ? 0 : skb->len) << 12;
}

char _license[] SEC("license") = "GPL";
