// SPDX-License-Identifier: GPL-2.0
/* xdp_buff_helpers: the XDP buffer helpers that work on multi-buffer frames too
 * (bpf_xdp_get_buff_len, bpf_xdp_load_bytes, bpf_xdp_store_bytes), as xdp-tools' and
 * Cilium's newer code use instead of direct packet access: the IPv4 header is loaded, its TTL
 * decremented with an incremental checksum update, and stored back. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} buff_bytes SEC(".maps");

SEC("xdp")
int xdp_ttl_dec(struct xdp_md *ctx)
{
	struct ethhdr eth;
	struct iphdr iph;
	__u32 zero = 0;
	__u64 *bytes;
	__u16 old;

	bytes = bpf_map_lookup_elem(&buff_bytes, &zero);
	if (bytes)
		*bytes += bpf_xdp_get_buff_len(ctx);
	if (bpf_xdp_load_bytes(ctx, 0, &eth, sizeof(eth)))
		return XDP_ABORTED;
	if (eth.h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (bpf_xdp_load_bytes(ctx, sizeof(eth), &iph, sizeof(iph)))
		return XDP_DROP;
	if (iph.ttl <= 1)
		return XDP_DROP;
	old = *(__u16 *)&iph.ttl;
	iph.ttl--;
	csum_replace2(&iph.check, old, *(__u16 *)&iph.ttl);
	if (bpf_xdp_store_bytes(ctx, sizeof(eth), &iph, sizeof(iph)))
		return XDP_ABORTED;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
