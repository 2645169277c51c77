// SPDX-License-Identifier: GPL-2.0
/* tc_nat64: stateless IPv4 -> IPv6 translation on tc (as Cilium's nat46x64 and Jool-like BPF
 * translators do): bpf_skb_change_proto(ETH_P_IPV6) grows the network header by 20 bytes, the
 * IPv6 header is written with bpf_skb_store_bytes (addresses mapped into 64:ff9b::/96), and the
 * L4 checksum is fixed with bpf_l4_csum_replace over the pseudo-header difference. */
#include "corpus.h"

SEC("tc")
int tc_nat46(struct __sk_buff *skb)
{
	struct iphdr iph;
	struct ipv6hdr ip6 = {};
	__be16 eth_proto = bpf_htons(ETH_P_IPV6);
	__u32 csum_off;
	__s64 diff;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)))
		return TC_ACT_SHOT;
	if (iph.ihl != 5 || (iph.protocol != IPPROTO_TCP && iph.protocol != IPPROTO_UDP))
		return TC_ACT_OK;
	if (iph.frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return TC_ACT_OK;
	ip6.version = 6;
	ip6.payload_len = bpf_htons(bpf_ntohs(iph.tot_len) - 20);
	ip6.nexthdr = iph.protocol;
	ip6.hop_limit = iph.ttl;
	ip6.saddr.in6_u.u6_addr32[0] = bpf_htonl(0x0064ff9b);
	ip6.saddr.in6_u.u6_addr32[3] = iph.saddr;
	ip6.daddr.in6_u.u6_addr32[0] = bpf_htonl(0x0064ff9b);
	ip6.daddr.in6_u.u6_addr32[3] = iph.daddr;
	diff = bpf_csum_diff(&iph.saddr, 8, (__be32 *)&ip6.saddr, 32, 0);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &eth_proto, 2, 0))
		return TC_ACT_SHOT;
	csum_off = ETH_HLEN + sizeof(ip6) +
		   (ip6.nexthdr == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check));
	if (bpf_l4_csum_replace(skb, csum_off, 0, diff, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
