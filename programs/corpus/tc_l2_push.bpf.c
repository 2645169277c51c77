// SPDX-License-Identifier: GPL-2.0
/* tc_l2_push: headroom and header surgery used by L3 devices and overlay datapaths:
 * bpf_skb_change_head grows the frame by a new outer Ethernet header (MAC-in-MAC style for
 * a monitoring port), and bpf_skb_adjust_room with BPF_ADJ_ROOM_NET inserts 8 bytes of
 * shim after the IPv4 header of UDP frames. */
#include "corpus.h"

SEC("tc")
int tc_push_outer_eth(struct __sk_buff *skb)
{
	struct ethhdr outer = {
		.h_dest = { 0x02, 0, 0, 0, 0, 0xaa },
		.h_source = { 0x02, 0, 0, 0, 0, 0xbb },
		.h_proto = bpf_htons(0x88b5), /* local experimental ethertype */
	};

	if (skb->len > 1400)
		return TC_ACT_OK;
	if (bpf_skb_change_head(skb, sizeof(outer), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, 0, &outer, sizeof(outer), 0))
		return TC_ACT_SHOT;
	return skb->len;
}

SEC("tc")
int tc_udp_shim(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct iphdr *iph = data + ETH_HLEN;

	if ((void *)(iph + 1) > data_end || skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (iph->protocol != IPPROTO_UDP || iph->ihl != 5)
		return TC_ACT_OK;
	if (bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0))
		return TC_ACT_SHOT;
	return skb->len;
}

char _license[] SEC("license") = "GPL";
