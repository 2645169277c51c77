// SPDX-License-Identifier: GPL-2.0
/* user_sized_maps: maps whose size user space sets before load (bpf_map__set_max_entries),
 * as the kernel samples and tools like xdp-filter do: a hash and an LRU hash with no
 * max_entries, and a ring buffer with none. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
} conn_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u16);
	__type(value, __u64);
} port_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
} events SEC(".maps");

SEC("xdp")
int xdp_count_sources(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *l4;
	__u64 one = 1, *cnt;
	__u16 port;
	__u32 *ev;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_DROP;
	cnt = bpf_map_lookup_elem(&conn_count, &iph->saddr);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&conn_count, &iph->saddr, &one, BPF_ANY);
	l4 = nh.pos;
	if ((void *)(l4 + 1) > data_end)
		return XDP_PASS;
	port = bpf_ntohs(l4->dest);
	cnt = bpf_map_lookup_elem(&port_count, &port);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&port_count, &port, &one, BPF_ANY);
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (ev) {
		*ev = iph->saddr;
		bpf_ringbuf_submit(ev, 0);
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
