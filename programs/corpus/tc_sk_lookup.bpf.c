// SPDX-License-Identifier: GPL-2.0
/* tc_sk_lookup: socket-aware filtering on tc ingress (as in Cilium's host firewall and the
 * kernel's test_sk_lookup_kern): TCP and UDP destinations are looked up with
 * bpf_skc_lookup_tcp / bpf_sk_lookup_udp in the current netns; frames to the VIP with no local
 * socket are dropped; found sockets are released with bpf_sk_release. */
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
	tuple.ipv4.saddr = iph->saddr;
	tuple.ipv4.daddr = iph->daddr;
	tuple.ipv4.sport = ports[0];
	tuple.ipv4.dport = ports[1];
	if (proto == IPPROTO_TCP)
		sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_sk_lookup_udp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		bpf_sk_release(sk);
		return TC_ACT_OK;
	}
	return iph->daddr == bpf_htonl(VIP4) ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
