// SPDX-License-Identifier: GPL-2.0
/* xdp_icmp_echo: the xdp-tutorial packet03 ICMP echo responder for IPv4 and IPv6: swaps the
 * MAC and IP addresses, turns the echo request into a reply and fixes the ICMP checksum
 * incrementally (RFC 1624), then bounces the frame with XDP_TX. */
#include "corpus.h"

struct icmp6_echo {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 seq;
};

SEC("xdp")
int xdp_icmp_echo_func(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph;
		struct icmphdr *icmph;
		__be32 tmp;
		__u16 old;

		if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_ICMP)
			return XDP_PASS;
		icmph = nh.pos;
		if ((void *)(icmph + 1) > data_end)
			return XDP_DROP;
		if (icmph->type != ICMP_ECHO)
			return XDP_PASS;
		tmp = iph->saddr;
		iph->saddr = iph->daddr;
		iph->daddr = tmp;
		old = *(__u16 *)icmph;
		icmph->type = ICMP_ECHOREPLY;
		csum_replace2(&icmph->checksum, old, *(__u16 *)icmph);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h;
		struct icmp6_echo *icmp6;
		struct in6_addr tmp;
		__u16 old;

		if (parse_ip6hdr(&nh, data_end, &ip6h) != IPPROTO_ICMPV6)
			return XDP_PASS;
		icmp6 = nh.pos;
		if ((void *)(icmp6 + 1) > data_end)
			return XDP_DROP;
		if (icmp6->type != 128)
			return XDP_PASS;
		tmp = ip6h->saddr;
		ip6h->saddr = ip6h->daddr;
		ip6h->daddr = tmp;
		old = *(__u16 *)icmp6;
		icmp6->type = 129;
		csum_replace2(&icmp6->checksum, old, *(__u16 *)icmp6);
	} else {
		return XDP_PASS;
	}
	swap_src_dst_mac(eth);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
