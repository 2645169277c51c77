// SPDX-License-Identifier: GPL-2.0
/* xdp_vlan_strip: VLAN handling as in xdp-tools/xdp-tutorial: one program pops the outer
 * 802.1Q/802.1ad tag (bpf_xdp_adjust_head), one pushes a tag with VLAN id 100 on untagged
 * frames, and one counts frames per VLAN id (QinQ: outer and inner id). */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} vlan_count SEC(".maps");

static __always_inline int vlan_tag_pop(struct xdp_md *ctx, struct ethhdr *eth)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr eth_cpy;
	struct vlan_hdr *vlh;
	__be16 h_proto;
	int vlid;

	if (!proto_is_vlan(eth->h_proto))
		return -1;
	vlh = (void *)(eth + 1);
	if ((void *)(vlh + 1) > data_end)
		return -1;
	vlid = bpf_ntohs(vlh->h_vlan_TCI) & 0x0fff;
	h_proto = vlh->h_vlan_encapsulated_proto;
	__builtin_memcpy(&eth_cpy, eth, sizeof(eth_cpy));
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(*vlh)))
		return -1;
	eth = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth, &eth_cpy, sizeof(*eth));
	eth->h_proto = h_proto;
	return vlid;
}

SEC("xdp")
int xdp_vlan_pop(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (vlan_tag_pop(ctx, eth) < 0)
		return XDP_PASS;
	return XDP_TX;
}

SEC("xdp")
int xdp_vlan_push(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct ethhdr eth_cpy;
	struct vlan_hdr *vlh;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (proto_is_vlan(eth->h_proto))
		return XDP_PASS;
	__builtin_memcpy(&eth_cpy, eth, sizeof(eth_cpy));
	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(*vlh)))
		return XDP_ABORTED;
	eth = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth, &eth_cpy, sizeof(*eth));
	vlh = (void *)(eth + 1);
	if ((void *)(vlh + 1) > data_end)
		return XDP_ABORTED;
	vlh->h_vlan_TCI = bpf_htons(100);
	vlh->h_vlan_encapsulated_proto = eth->h_proto;
	eth->h_proto = bpf_htons(ETH_P_8021Q);
	return XDP_TX;
}

SEC("xdp")
int xdp_vlan_count(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct vlan_hdr *outer, *inner;
	__u32 key = 0;
	__u64 one = 1, *cnt;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (proto_is_vlan(eth->h_proto)) {
		outer = (void *)(eth + 1);
		if ((void *)(outer + 1) > data_end)
			return XDP_DROP;
		key = (bpf_ntohs(outer->h_vlan_TCI) & 0x0fff) << 12;
		if (proto_is_vlan(outer->h_vlan_encapsulated_proto)) {
			inner = outer + 1;
			if ((void *)(inner + 1) > data_end)
				return XDP_DROP;
			key |= bpf_ntohs(inner->h_vlan_TCI) & 0x0fff;
		}
	}
	cnt = bpf_map_lookup_elem(&vlan_count, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&vlan_count, &key, &one, BPF_NOEXIST);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
