// SPDX-License-Identifier: GPL-2.0
/* flow_dissector: a BPF flow dissector (the kernel's selftests bpf_flow.c, in small): fills
 * struct bpf_flow_keys for Ethernet/VLAN + IPv4/IPv6 + TCP/UDP: network and transport offsets,
 * protocols, addresses and ports; fragments stop at the network header. */
#include "corpus.h"

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	__u16 nhoff = keys->nhoff;
	__be16 proto = keys->n_proto;
	__u8 ip_proto;

	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vlh = data + (nhoff & 0xff);

		if ((void *)(vlh + 1) > data_end)
			return BPF_DROP;
		proto = vlh->h_vlan_encapsulated_proto;
		nhoff += sizeof(*vlh);
		keys->n_proto = proto;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = data + (nhoff & 0xff);

		if ((void *)(iph + 1) > data_end || iph->ihl < 5)
			return BPF_DROP;
		keys->addr_proto = ETH_P_IP;
		keys->ipv4_src = iph->saddr;
		keys->ipv4_dst = iph->daddr;
		keys->thoff = nhoff + iph->ihl * 4;
		ip_proto = iph->protocol;
		if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET)) {
			keys->is_frag = 1;
			keys->is_first_frag = !(iph->frag_off & bpf_htons(IP_OFFSET));
			if (!keys->is_first_frag) {
				keys->ip_proto = ip_proto;
				return BPF_OK;
			}
		}
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = data + (nhoff & 0xff);

		if ((void *)(ip6h + 1) > data_end)
			return BPF_DROP;
		keys->addr_proto = ETH_P_IPV6;
		__builtin_memcpy(keys->ipv6_src, &ip6h->saddr, 16);
		__builtin_memcpy(keys->ipv6_dst, &ip6h->daddr, 16);
		keys->thoff = nhoff + sizeof(*ip6h);
		ip_proto = ip6h->nexthdr;
	} else {
		return BPF_DROP;
	}
	keys->nhoff = nhoff;
	keys->ip_proto = ip_proto;
	if (ip_proto == IPPROTO_TCP || ip_proto == IPPROTO_UDP) {
		__be16 *ports = data + (keys->thoff & 0x1ff);

		if ((void *)(ports + 2) > data_end)
			return BPF_DROP;
		keys->sport = ports[0];
		keys->dport = ports[1];
	}
	return BPF_OK;
}

char _license[] SEC("license") = "GPL";
