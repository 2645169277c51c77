// SPDX-License-Identifier: GPL-2.0
/* tc_redirect_ifindex: L2 forwarding on tc (the tc_l2_redirect sample): frames to the VIP are
 * redirected to an egress ifindex from a hash (bpf_redirect, TC_ACT_REDIRECT), ingress
 * redirection with BPF_F_INGRESS for the rest of the VIP's traffic, and bpf_clone_redirect
 * mirroring of ICMP to a monitor port (which may not exist: the error is returned). */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} fwd_ifindex SEC(".maps");

SEC("tc")
int tc_l2_fwd(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 *ifindex;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto < 0)
		return TC_ACT_SHOT;
	if (proto == IPPROTO_ICMP)
		return bpf_clone_redirect(skb, 0x7ffffff0, 0) ? TC_ACT_UNSPEC : TC_ACT_OK;
	ifindex = bpf_map_lookup_elem(&fwd_ifindex, &iph->daddr);
	if (!ifindex)
		return TC_ACT_OK;
	if (proto == IPPROTO_UDP)
		return bpf_redirect(*ifindex, BPF_F_INGRESS);
	return bpf_redirect(*ifindex, 0);
}

char _license[] SEC("license") = "GPL";
