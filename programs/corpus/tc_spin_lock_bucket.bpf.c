// SPDX-License-Identifier: GPL-2.0
/* tc_spin_lock_bucket: a token bucket per source address guarded by bpf_spin_lock in the map
 * value (the classic pattern of BPF rate limiters before per-CPU tricks): each packet takes
 * its length in tokens; a bucket refills by a fixed amount every 4 packets (no clocks, so the
 * result is deterministic). */
#include "corpus.h"

struct bucket {
	struct bpf_spin_lock lock;
	__u32 packets;
	__u64 tokens;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct bucket);
} buckets SEC(".maps");

SEC("tc")
int tc_police(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct bucket fresh = { .tokens = 300 }, *b;
	struct ethhdr *eth;
	struct iphdr *iph;
	int verdict = TC_ACT_OK;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return TC_ACT_SHOT;
	b = bpf_map_lookup_elem(&buckets, &iph->saddr);
	if (!b) {
		bpf_map_update_elem(&buckets, &iph->saddr, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&buckets, &iph->saddr);
		if (!b)
			return TC_ACT_SHOT;
	}
	bpf_spin_lock(&b->lock);
	b->packets++;
	if ((b->packets & 3) == 0)
		b->tokens += 100;
	if (b->tokens >= skb->len)
		b->tokens -= skb->len;
	else
		verdict = TC_ACT_SHOT;
	bpf_spin_unlock(&b->lock);
	return verdict;
}

char _license[] SEC("license") = "GPL";
