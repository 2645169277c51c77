// SPDX-License-Identifier: GPL-2.0
/* xdp_lpm6_bloom: an IPv6 prefix firewall with a bloom-filter pre-check (as Cloudflare-style
 * large blocklists do): /48 prefixes of blocked sources go in a bloom filter and an LPM trie;
 * the trie is consulted when the filter says "maybe", and otherwise for a learning pass that
 * adds the /48 of every trie hit to the filter (bpf_map_push_elem). Hits are counted. */
#include "corpus.h"

struct lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 1024);
	__uint(value_size, 6);
	__uint(map_extra, 3); /* hash functions */
} prefix48_bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm6_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} prefix6_deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} bloom_stats SEC(".maps");

static __always_inline void stat(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&bloom_stats, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int xdp_prefix6_filter(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct lpm6_key key = { .prefixlen = 128 };
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	__u8 p48[6];
	__u64 *hits;
	int maybe;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if (parse_ip6hdr(&nh, data_end, &ip6h) < 0)
		return XDP_DROP;
	__builtin_memcpy(p48, &ip6h->saddr, 6);
	maybe = bpf_map_peek_elem(&prefix48_bloom, p48) == 0;
	stat(maybe ? 1 : 0);
	__builtin_memcpy(key.addr, &ip6h->saddr, 16);
	hits = bpf_map_lookup_elem(&prefix6_deny, &key);
	if (!hits)
		return XDP_PASS;
	if (!maybe && bpf_map_push_elem(&prefix48_bloom, p48, BPF_ANY))
		return XDP_ABORTED;
	stat(2);
	__sync_fetch_and_add(hits, 1);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
