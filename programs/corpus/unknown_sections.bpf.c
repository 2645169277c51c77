// SPDX-License-Identifier: GPL-2.0
/* unknown_sections: section names libbpf does not know, as found in older samples and
 * hand-rolled loaders: SEC("xdp_prog"), SEC("prog") (loaded by ip link ... obj ... sec prog),
 * SEC("classifier_tcp") and SEC("socket1"). libbpf leaves their type unset; the user must set
 * it (bpf_program__set_type; bpflab: --prog-type). */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp_prog")
int xdp_drop_udp(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;

	hit(0);
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	return parse_iphdr(&nh, data_end, &iph) == IPPROTO_UDP ? XDP_DROP : XDP_PASS;
}

SEC("prog")
int xdp_pass_all(struct xdp_md *ctx)
{
	hit(1);
	return XDP_PASS;
}

SEC("classifier_tcp")
int cls_tcp_only(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct ethhdr *eth;
	struct iphdr *iph;

	hit(2);
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	return parse_iphdr(&nh, data_end, &iph) == IPPROTO_TCP ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("socket1")
int sock_len(struct __sk_buff *skb)
{
	hit(3);
	return skb->len > 100 ? skb->len : 0;
}

char _license[] SEC("license") = "GPL";
