// SPDX-License-Identifier: GPL-2.0
/* tc_ipip_encap: tunnel encapsulation on egress as in the kernel's test_tc_tunnel: IPv4 TCP
 * to the VIP gets an outer IPv4 (IPIP) header, room made with bpf_skb_adjust_room
 * (BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO) and the header written with
 * bpf_skb_store_bytes; a second program decapsulates IPIP by shrinking the room again. */
#include "corpus.h"

#ifndef BPF_F_ADJ_ROOM_ENCAP_L3_IPV4
#define BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 (1ULL << 1)
#endif

SEC("tc")
int tc_encap_ipip(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct iphdr *iph = data + ETH_HLEN;
	struct iphdr outer;
	__u64 csum = 0;
	__u16 *w;
	int i;

	if ((void *)(iph + 1) > data_end || skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (iph->protocol != IPPROTO_TCP || iph->daddr != bpf_htonl(VIP4) || iph->ihl != 5)
		return TC_ACT_OK;
	outer = *iph;
	outer.protocol = IPPROTO_IPIP;
	outer.tot_len = bpf_htons(bpf_ntohs(iph->tot_len) + sizeof(outer));
	outer.saddr = bpf_htonl(0xc0000232); /* 192.0.2.50 */
	outer.daddr = bpf_htonl(BACKEND4);
	outer.check = 0;
	w = (__u16 *)&outer;
#pragma unroll
	for (i = 0; i < (int)sizeof(outer) / 2; i++)
		csum += w[i];
	outer.check = csum_fold_helper(csum);
	if (bpf_skb_adjust_room(skb, sizeof(outer), BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &outer, sizeof(outer), 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int tc_decap_ipip(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct iphdr *iph = data + ETH_HLEN;

	if ((void *)(iph + 1) > data_end || skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (iph->protocol != IPPROTO_IPIP || iph->ihl != 5)
		return TC_ACT_OK;
	if (bpf_skb_adjust_room(skb, -(int)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
