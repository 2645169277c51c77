// SPDX-License-Identifier: GPL-2.0
/* xdp_timer_gc: BPF timers as connection trackers use them for garbage collection: the first
 * packet of a source creates an entry whose embedded bpf_timer is initialised, given a
 * callback and armed for 10 s (it cannot fire during a test run); later packets re-arm it. */
#include "corpus.h"

#define CLOCK_MONOTONIC 1

struct conn {
	struct bpf_timer timer;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct conn);
} conns SEC(".maps");

static int expire(void *map, __u32 *key, struct conn *c)
{
	bpf_map_delete_elem(map, key);
	return 0;
}

SEC("xdp")
int xdp_conn_gc(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct conn fresh = {}, *c;
	struct ethhdr *eth;
	struct iphdr *iph;
	long err;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_DROP;
	c = bpf_map_lookup_elem(&conns, &iph->saddr);
	if (!c) {
		bpf_map_update_elem(&conns, &iph->saddr, &fresh, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&conns, &iph->saddr);
		if (!c)
			return XDP_ABORTED;
		err = bpf_timer_init(&c->timer, &conns, CLOCK_MONOTONIC);
		if (err)
			return XDP_ABORTED;
		err = bpf_timer_set_callback(&c->timer, expire);
		if (err)
			return XDP_ABORTED;
	}
	c->packets++;
	err = bpf_timer_start(&c->timer, 10ull * 1000 * 1000 * 1000, 0);
	return err ? XDP_ABORTED : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
