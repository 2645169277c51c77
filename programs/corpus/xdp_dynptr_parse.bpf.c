// SPDX-License-Identifier: GPL-2.0
/* xdp_dynptr_parse: header parsing through a dynptr (bpf_dynptr_from_xdp + bpf_dynptr_slice,
 * with a stack buffer for data that may not be linear), the style newer selftests and
 * xdp-synproxy-like programs use; the destination port is rewritten with bpf_dynptr_write
 * (the kernel refuses bpf_dynptr_slice_rdwr on XDP dynptrs). */
#include "corpus.h"
#include "kfuncs.h"

SEC("xdp")
int xdp_dynptr_ports(struct xdp_md *ctx)
{
	struct bpf_dynptr ptr;
	struct ethhdr ebuf, *eth;
	struct iphdr ibuf, *iph;
	struct tcphdr tbuf, *tcph;
	__u32 off;

	if (bpf_dynptr_from_xdp(ctx, 0, &ptr))
		return XDP_ABORTED;
	eth = bpf_dynptr_slice(&ptr, 0, &ebuf, sizeof(ebuf));
	if (!eth)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	iph = bpf_dynptr_slice(&ptr, sizeof(*eth), &ibuf, sizeof(ibuf));
	if (!iph)
		return XDP_DROP;
	if (iph->protocol != IPPROTO_TCP)
		return XDP_PASS;
	off = sizeof(*eth) + iph->ihl * 4;
	tcph = bpf_dynptr_slice(&ptr, off, &tbuf, sizeof(tbuf));
	if (!tcph)
		return XDP_DROP;
	if (tcph->dest == bpf_htons(80)) {
		__be16 to = bpf_htons(8080);

		if (bpf_dynptr_write(&ptr, off + offsetof(struct tcphdr, dest), &to, sizeof(to), 0))
			return XDP_ABORTED;
		return XDP_TX;
	}
	return tcph->dest == bpf_htons(22) ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
