// SPDX-License-Identifier: GPL-2.0
/* tc_ecn_neigh: AQM and forwarding helpers of modern tc datapaths: bpf_skb_ecn_set_ce marks
 * ECN-capable traffic congestion-experienced (as a BPF CoDel/ L4S marker would), and
 * bpf_redirect_neigh / bpf_redirect_peer forward to an ifindex the way Cilium's host routing
 * and veth fast path do. */
#include "corpus.h"

SEC("tc")
int tc_ecn_mark(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP) && skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	return bpf_skb_ecn_set_ce(skb) ? TC_ACT_PIPE : TC_ACT_OK;
}

SEC("tc")
int tc_fwd_neigh(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return bpf_redirect_neigh(1, NULL, 0, 0);
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		return bpf_redirect_peer(1, 0);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
