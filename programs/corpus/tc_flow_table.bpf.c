// SPDX-License-Identifier: GPL-2.0
/* tc_flow_table: a conntrack-lite flow table on tc ingress: a 5-tuple key (IPv4 and IPv6)
 * into a LRU hash of packet/byte counters and TCP flag history, with the flow hash written to
 * skb->hash via bpf_set_hash for RPS-like steering downstream. */
#include "corpus.h"

struct flow5 {
	__u32 src[4];
	__u32 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

struct flow_stats {
	__u64 packets;
	__u64 bytes;
	__u32 tcp_flags;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow5);
	__type(value, struct flow_stats);
} flows SEC(".maps");

SEC("tc/ingress")
int tc_flow_account(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct flow5 key = {};
	struct flow_stats *st, fresh = {};
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct tcphdr *tcph;
	__u8 flags = 0;
	int proto, l3;

	l3 = parse_ethhdr(&nh, data_end, &eth);
	if (l3 == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(&nh, data_end, &iph);
		if (proto < 0)
			return TC_ACT_OK;
		key.src[0] = iph->saddr;
		key.dst[0] = iph->daddr;
		key.family = 4;
	} else if (l3 == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&nh, data_end, &ip6h);
		if (proto < 0)
			return TC_ACT_OK;
		__builtin_memcpy(key.src, &ip6h->saddr, 16);
		__builtin_memcpy(key.dst, &ip6h->daddr, 16);
		key.family = 6;
	} else {
		return TC_ACT_OK;
	}
	key.proto = proto;
	if (proto == IPPROTO_TCP) {
		if (parse_tcphdr(&nh, data_end, &tcph) < 0)
			return TC_ACT_OK;
		key.sport = tcph->source;
		key.dport = tcph->dest;
		flags = ((__u8 *)tcph)[13];
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *udph;

		if (parse_udphdr(&nh, data_end, &udph) < 0)
			return TC_ACT_OK;
		key.sport = udph->source;
		key.dport = udph->dest;
	}
	st = bpf_map_lookup_elem(&flows, &key);
	if (!st) {
		bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&flows, &key);
		if (!st)
			return TC_ACT_OK;
	}
	__sync_fetch_and_add(&st->packets, 1);
	__sync_fetch_and_add(&st->bytes, skb->len);
	st->tcp_flags |= flags;
	bpf_set_hash(skb, key.src[0] ^ key.dst[0] ^ ((__u32)key.sport << 16 | key.dport));
	return skb->hash ? TC_ACT_OK : TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
