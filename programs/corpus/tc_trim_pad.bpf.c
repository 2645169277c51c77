// SPDX-License-Identifier: GPL-2.0
/* tc_trim_pad: frame length surgery on tc egress: UDP payloads are padded to a multiple of
 * 64 bytes with bpf_skb_change_tail (zero fill), frames longer than a snap length are cut,
 * and bpf_skb_pull_data makes the whole frame linear before reading its last byte. */
#include "corpus.h"

const volatile __u32 snaplen = 96;

SEC("tc/egress")
int tc_pad_udp(struct __sk_buff *skb)
{
	void *data_end, *data;
	struct iphdr *iph;
	__u32 len = skb->len, padded;

	if (bpf_skb_pull_data(skb, len))
		return TC_ACT_SHOT;
	data_end = (void *)(long)skb->data_end;
	data = (void *)(long)skb->data;
	iph = data + ETH_HLEN;
	if ((void *)(iph + 1) > data_end || skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (iph->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	padded = (len + 63) & ~63u;
	if (padded == len)
		return TC_ACT_OK;
	if (bpf_skb_change_tail(skb, padded, 0))
		return TC_ACT_SHOT;
	return skb->len;
}

SEC("tc/egress")
int tc_snap(struct __sk_buff *skb)
{
	__u8 last = 0;

	if (skb->len > snaplen && bpf_skb_change_tail(skb, snaplen, 0))
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, skb->len - 1, &last, 1))
		return TC_ACT_SHOT;
	return last;
}

char _license[] SEC("license") = "GPL";
