// SPDX-License-Identifier: GPL-2.0
/* tc_csum_helpers: the checksum helpers beyond l3/l4_csum_replace: bpf_csum_diff to compute a
 * full IPv4 header checksum from scratch (verifying the frame's), bpf_csum_update to feed the
 * skb's checksum state, and bpf_csum_level to query/raise CHECKSUM_UNNECESSARY levels. */
#include "corpus.h"

#ifndef BPF_CSUM_LEVEL_QUERY
#define BPF_CSUM_LEVEL_QUERY 0
#define BPF_CSUM_LEVEL_INC 1
#define BPF_CSUM_LEVEL_DEC 2
#define BPF_CSUM_LEVEL_RESET 3
#endif

SEC("tc")
int tc_verify_ip_csum(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct iphdr *iph = data + ETH_HLEN;
	__s64 sum;
	__u32 c;

	if ((void *)(iph + 1) > data_end || skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)iph, sizeof(*iph), 0);
	if (sum < 0)
		return TC_ACT_UNSPEC;
	c = sum;
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	if ((__u16)~c != 0)
		return TC_ACT_SHOT;
	if (bpf_csum_update(skb, 0x1234) < 0)
		return TC_ACT_UNSPEC;
	return TC_ACT_OK;
}

SEC("tc")
int tc_csum_level(struct __sk_buff *skb)
{
	long before, after;

	before = bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY);
	bpf_csum_level(skb, BPF_CSUM_LEVEL_INC);
	after = bpf_csum_level(skb, BPF_CSUM_LEVEL_QUERY);
	bpf_csum_level(skb, BPF_CSUM_LEVEL_RESET);
	return (int)((before & 0xff) << 8 | (after & 0xff));
}

char _license[] SEC("license") = "GPL";
