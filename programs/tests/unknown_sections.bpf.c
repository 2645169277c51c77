// SPDX-License-Identifier: GPL-2.0
// Programs in section names libbpf does not know (iproute2-era and home-made names): libbpf
// opens the object and leaves their type unset (BPF_PROG_TYPE_UNSPEC) until user space calls
// bpf_program__set_type; bpflab shows them as type "unknown" and runs them with --prog-type.
// One program keeps a known name, so the object is not all-unknown.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

// XDP under a made-up name: passes IPv4, drops the rest.
SEC("xdp_pass")
int xdp_pass_v4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	return eth->h_proto == __builtin_bswap16(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}

// iproute2's `tc filter ... bpf obj F sec classifier_len`: libbpf only knows "classifier".
SEC("classifier_len")
int cls_by_len(struct __sk_buff *skb)
{
	return skb->len > 100 ? TC_ACT_SHOT : TC_ACT_OK;
}

// An old-style generic name (samples/bpf, bcc): a socket filter keeping 64 bytes.
SEC("prog")
int sock_trim(struct __sk_buff *skb)
{
	return skb->len < 64 ? skb->len : 64;
}

// A known section, for comparison.
SEC("xdp")
int xdp_known(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
