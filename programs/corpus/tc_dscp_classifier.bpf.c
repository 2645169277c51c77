// SPDX-License-Identifier: GPL-2.0
/* tc_dscp_classifier: a direct-action tc classifier (SEC("tc")) mapping DSCP to a traffic
 * class: skb->priority and skb->tc_classid from a DSCP table in an array map, a mark for EF
 * traffic, and a per-class counter; returns TC_ACT_OK, or TC_ACT_SHOT for class 0xff. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} dscp_to_class SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} class_pkts SEC(".maps");

SEC("tc")
int tc_classify(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	__u32 dscp = 0, *class, cls = 0;
	__u64 one = 1, *cnt;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&nh, data_end, &iph) < 0)
			return TC_ACT_SHOT;
		dscp = iph->tos >> 2;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (parse_ip6hdr(&nh, data_end, &ip6h) < 0)
			return TC_ACT_SHOT;
		dscp = ((ip6h->priority << 4) | (ip6h->flow_lbl[0] >> 4)) >> 2;
	} else {
		return TC_ACT_OK;
	}
	class = bpf_map_lookup_elem(&dscp_to_class, &dscp);
	if (class)
		cls = *class;
	if (cls == 0xff)
		return TC_ACT_SHOT;
	skb->priority = cls;
	skb->tc_classid = 0x10000 | cls;
	if (dscp == 46)
		skb->mark = 0xef;
	cnt = bpf_map_lookup_elem(&class_pkts, &cls);
	if (cnt)
		*cnt += 1;
	else
		bpf_map_update_elem(&class_pkts, &cls, &one, BPF_NOEXIST);
	return cls ? TC_ACT_OK : TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
