// SPDX-License-Identifier: GPL-2.0
/* xdp_fw_blocklist: an XDP firewall that drops sources listed in a hash map (exact IPv4),
 * an LPM trie (IPv4 prefixes) and an IPv6 hash, and counts verdicts in a per-CPU array. */
#include "corpus.h"

struct lpm_v4_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10000);
	__type(key, __u32);
	__type(value, __u64);
} blocklist_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} blocklist_prefix SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct in6_addr);
	__type(value, __u64);
} blocklist_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDP_REDIRECT + 1);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

static __always_inline int record(__u32 action)
{
	__u64 *cnt = bpf_map_lookup_elem(&verdicts, &action);

	if (cnt)
		*cnt += 1;
	return action;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto < 0)
		return record(XDP_ABORTED);
	if (proto == bpf_htons(ETH_P_IP)) {
		struct lpm_v4_key key = { .prefixlen = 32 };
		__u64 *hits;

		if (parse_iphdr(&nh, data_end, &iph) < 0)
			return record(XDP_DROP);
		hits = bpf_map_lookup_elem(&blocklist_v4, &iph->saddr);
		if (hits) {
			__sync_fetch_and_add(hits, 1);
			return record(XDP_DROP);
		}
		key.addr = iph->saddr;
		if (bpf_map_lookup_elem(&blocklist_prefix, &key))
			return record(XDP_DROP);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		__u64 *hits;

		if (parse_ip6hdr(&nh, data_end, &ip6h) < 0)
			return record(XDP_DROP);
		hits = bpf_map_lookup_elem(&blocklist_v6, &ip6h->saddr);
		if (hits) {
			__sync_fetch_and_add(hits, 1);
			return record(XDP_DROP);
		}
	}
	return record(XDP_PASS);
}

char _license[] SEC("license") = "GPL";
