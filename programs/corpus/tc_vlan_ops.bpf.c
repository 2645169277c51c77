// SPDX-License-Identifier: GPL-2.0
/* tc_vlan_ops: VLAN handling on the tc hook (tcx/ingress, tcx/egress): a trunk port pops the
 * outer tag with bpf_skb_vlan_pop and remembers the VLAN by source in a hash; an access port
 * pushes 802.1Q tag 100 on untagged IPv4 with bpf_skb_vlan_push. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} vlan_of_len SEC(".maps");

SEC("tcx/ingress")
int tc_vlan_untag(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = (void *)(long)skb->data;
	struct vlan_hdr *vh;
	__u32 vid, len;

	if ((void *)(eth + 1) > data_end)
		return TCX_DROP;
	if (!proto_is_vlan(eth->h_proto))
		return TCX_PASS;
	vh = (void *)(eth + 1);
	if ((void *)(vh + 1) > data_end)
		return TCX_DROP;
	vid = bpf_ntohs(vh->h_vlan_TCI) & 0xfff;
	if (bpf_skb_vlan_pop(skb))
		return TCX_DROP;
	len = skb->len;
	bpf_map_update_elem(&vlan_of_len, &len, &vid, BPF_ANY);
	return TCX_PASS;
}

SEC("tcx/egress")
int tc_vlan_tag(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TCX_NEXT;
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 100))
		return TCX_DROP;
	return skb->vlan_present ? (int)skb->vlan_tci : TCX_DROP;
}

char _license[] SEC("license") = "GPL";
