// SPDX-License-Identifier: GPL-2.0
/* tc_qinq_push: service-provider tagging on tc: untagged IPv4 gets a customer tag (802.1Q
 * VID 30) and then a provider tag (802.1ad VID 20) with two bpf_skb_vlan_push calls (the
 * second moves the first into the packet); tagged frames are popped down to the payload. The
 * verdict reports the VLAN state the skb ends with. */
#include "corpus.h"

SEC("tc")
int tc_qinq_tag(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 30))
		return TC_ACT_SHOT;
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021AD), 20))
		return TC_ACT_SHOT;
	return (skb->vlan_present << 16) | skb->vlan_tci | (skb->vlan_proto == bpf_htons(ETH_P_8021AD) ? 0x1000000 : 0);
}

SEC("tc")
int tc_qinq_strip(struct __sk_buff *skb)
{
	int popped = 0, i;

#pragma unroll
	for (i = 0; i < 3; i++) {
		void *data_end = (void *)(long)skb->data_end;
		struct ethhdr *eth = (void *)(long)skb->data;

		if ((void *)(eth + 1) > data_end)
			return TC_ACT_SHOT;
		if (!proto_is_vlan(eth->h_proto) && !skb->vlan_present)
			break;
		if (bpf_skb_vlan_pop(skb))
			return TC_ACT_SHOT;
		popped++;
	}
	return popped | (skb->len << 8);
}

char _license[] SEC("license") = "GPL";
