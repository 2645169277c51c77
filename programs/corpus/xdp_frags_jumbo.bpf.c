// SPDX-License-Identifier: GPL-2.0
/* xdp_frags_jumbo: a multi-buffer aware XDP program (SEC("xdp.frags"), loaded with
 * BPF_F_XDP_HAS_FRAGS) as jumbo-frame deployments need: the total length comes from
 * bpf_xdp_get_buff_len, a byte deep in the frame is read with bpf_xdp_load_bytes, and frames
 * over 4000 bytes are trimmed with bpf_xdp_adjust_tail. */
#include "corpus.h"

SEC("xdp.frags")
int xdp_jumbo(struct xdp_md *ctx)
{
	__u64 len = bpf_xdp_get_buff_len(ctx);
	__u8 b = 0;

	if (len > 8000 && bpf_xdp_load_bytes(ctx, 8000, &b, 1))
		return XDP_ABORTED;
	if (len > 4000 && bpf_xdp_adjust_tail(ctx, -(int)(len - 4000)))
		return XDP_ABORTED;
	if (b == 0x4a)
		return XDP_TX;
	return len > 1500 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
