// SPDX-License-Identifier: GPL-2.0
/* tc_dynptr_parse: the tc counterpart of xdp_dynptr_parse: bpf_dynptr_from_skb and
 * bpf_dynptr_slice over an __sk_buff, IPv4 and IPv6 to the L4 ports, returning a verdict per
 * port and counting ports in a hash. */
#include "corpus.h"
#include "kfuncs.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u16);
	__type(value, __u64);
} dports SEC(".maps");

SEC("tc")
int tc_dynptr_ports(struct __sk_buff *skb)
{
	struct bpf_dynptr ptr;
	__u8 buf[40];
	struct ethhdr *eth;
	__be16 *ports;
	__u32 off;
	__u16 port;
	__u64 one = 1, *cnt;
	__u8 proto;

	if (bpf_dynptr_from_skb(skb, 0, &ptr))
		return TC_ACT_SHOT;
	eth = bpf_dynptr_slice(&ptr, 0, buf, sizeof(*eth));
	if (!eth)
		return TC_ACT_SHOT;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = bpf_dynptr_slice(&ptr, ETH_HLEN, buf, sizeof(*iph));

		if (!iph)
			return TC_ACT_SHOT;
		proto = iph->protocol;
		off = ETH_HLEN + iph->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = bpf_dynptr_slice(&ptr, ETH_HLEN, buf, sizeof(*ip6h));

		if (!ip6h)
			return TC_ACT_SHOT;
		proto = ip6h->nexthdr;
		off = ETH_HLEN + sizeof(*ip6h);
	} else {
		return TC_ACT_OK;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return TC_ACT_OK;
	ports = bpf_dynptr_slice(&ptr, off, buf, 4);
	if (!ports)
		return TC_ACT_SHOT;
	port = bpf_ntohs(ports[1]);
	cnt = bpf_map_lookup_elem(&dports, &port);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&dports, &port, &one, BPF_NOEXIST);
	return port == 22 ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
