// SPDX-License-Identifier: GPL-2.0
/* xdp_pad_min: frames shorter than the 60-byte Ethernet minimum are padded with zeros by
 * growing the tail (bpf_xdp_adjust_tail with a positive delta) before XDP_TX, as reflectors
 * and test generators built on XDP do; frames with an odd length get one more byte. */
#include "corpus.h"

SEC("xdp")
int xdp_pad(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	int len = data_end - data;
	int grow = 0;
	__u8 *last;

	if (len < 60)
		grow = 60 - len;
	else if (len & 1)
		grow = 1;
	if (!grow)
		return XDP_PASS;
	if (bpf_xdp_adjust_tail(ctx, grow))
		return XDP_ABORTED;
	data_end = (void *)(long)ctx->data_end;
	data = (void *)(long)ctx->data;
	last = data + ((len + grow - 1) & 0xfff);
	if ((void *)(last + 1) > data_end)
		return XDP_ABORTED;
	if (*last != 0)
		return XDP_DROP;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
