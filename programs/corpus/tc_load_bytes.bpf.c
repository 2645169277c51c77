// SPDX-License-Identifier: GPL-2.0
/* tc_load_bytes: header access without direct packet access, as older tc programs and
 * tools that must handle non-linear skbs do: bpf_skb_load_bytes, bpf_skb_load_bytes_relative
 * (BPF_HDR_START_NET) and bpf_skb_store_bytes with BPF_F_RECOMPUTE_CSUM to rewrite the TTL
 * followed by bpf_l3_csum_replace for the IPv4 header checksum. */
#include "corpus.h"

SEC("classifier")
int tc_ttl_rewrite(struct __sk_buff *skb)
{
	struct iphdr iph;
	__u8 new_ttl = 32;
	__u16 old, new;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes_relative(skb, 0, &iph, sizeof(iph), BPF_HDR_START_NET))
		return TC_ACT_SHOT;
	if (iph.ttl <= new_ttl)
		return TC_ACT_OK;
	old = bpf_htons(iph.ttl << 8 | iph.protocol);
	new = bpf_htons(new_ttl << 8 | iph.protocol);
	if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &new_ttl, 1,
				BPF_F_RECOMPUTE_CSUM))
		return TC_ACT_SHOT;
	if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new, 2))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("classifier")
int tc_peek_payload(struct __sk_buff *skb)
{
	__u8 buf[16] = {};
	struct iphdr iph;
	__u32 off;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)))
		return TC_ACT_SHOT;
	off = ETH_HLEN + iph.ihl * 4 + (iph.protocol == IPPROTO_TCP ? 20 : 8);
	if (off > 200)
		return TC_ACT_SHOT;
	if (bpf_skb_load_bytes(skb, off, buf, sizeof(buf)))
		return TC_ACT_UNSPEC;
	return buf[0] == 'G' && buf[1] == 'E' && buf[2] == 'T' ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
