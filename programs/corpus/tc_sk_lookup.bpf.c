// SPDX-License-Identifier: GPL-2.0
/* tc_sk_lookup: socket-aware filtering on tc ingress, as a transparent-proxy datapath (Cilium's
 * L7 proxy redirect) checks that the local proxy listens before steering a service's traffic:
 * frames to the VIP are looked up with bpf_skc_lookup_tcp / bpf_sk_lookup_udp in the current
 * netns on the proxy port of their service (61000 + service port); without a proxy socket
 * they are dropped; found sockets are released with bpf_sk_release. (The proxy ports keep the
 * lookup independent of what else listens on the host.) */
#include "corpus.h"

SEC("tc")
int tc_sock_guard(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	struct ethhdr *eth;
	struct iphdr *iph;
	__be16 *ports;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return TC_ACT_OK;
	ports = nh.pos;
	if ((void *)(ports + 2) > data_end)
		return TC_ACT_SHOT;
	if (iph->daddr != bpf_htonl(VIP4))
		return TC_ACT_OK;
	tuple.ipv4.saddr = iph->saddr;
	tuple.ipv4.daddr = iph->daddr;
	tuple.ipv4.sport = ports[0];
	tuple.ipv4.dport = bpf_htons(61000 + bpf_ntohs(ports[1]) % 1000);
	if (proto == IPPROTO_TCP)
		sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_sk_lookup_udp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		bpf_sk_release(sk);
		return TC_ACT_OK;
	}
	return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
