// SPDX-License-Identifier: GPL-2.0
/* tc_iproute2_sections: the section names of iproute2-era and current tc programs in one
 * object: SEC("classifier") and SEC("action") (tc filter ... bpf da obj ... sec classifier),
 * SEC("tc/ingress"), SEC("tc/egress"), SEC("tcx/ingress") and SEC("tcx/egress"), each a small
 * filter over the same counters. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} section_hits SEC(".maps");

static __always_inline void hit(__u32 slot, __u32 len)
{
	__u64 *v = bpf_map_lookup_elem(&section_hits, &slot);

	if (v)
		__sync_fetch_and_add(v, len);
}

static __always_inline int l4_proto(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct ethhdr *eth;
	struct iphdr *iph;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return -1;
	return parse_iphdr(&nh, data_end, &iph);
}

SEC("classifier")
int cls_main(struct __sk_buff *skb)
{
	hit(0, skb->len);
	return l4_proto(skb) == IPPROTO_ICMP ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("action")
int act_main(struct __sk_buff *skb)
{
	hit(1, skb->len);
	return skb->protocol == bpf_htons(ETH_P_ARP) ? TC_ACT_PIPE : TC_ACT_OK;
}

SEC("tc/ingress")
int tc_ingress_filter(struct __sk_buff *skb)
{
	hit(2, skb->len);
	return l4_proto(skb) == IPPROTO_UDP ? TC_ACT_OK : TC_ACT_UNSPEC;
}

SEC("tc/egress")
int tc_egress_filter(struct __sk_buff *skb)
{
	hit(3, skb->len);
	return skb->len > 1000 ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tcx/ingress")
int tcx_ingress_filter(struct __sk_buff *skb)
{
	hit(4, skb->len);
	return l4_proto(skb) == IPPROTO_TCP ? TCX_PASS : TCX_NEXT;
}

SEC("tcx/egress")
int tcx_egress_filter(struct __sk_buff *skb)
{
	hit(5, skb->len);
	return skb->protocol == bpf_htons(ETH_P_IPV6) ? TCX_DROP : TCX_NEXT;
}

char _license[] SEC("license") = "GPL";
