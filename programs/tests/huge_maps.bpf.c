// SPDX-License-Identifier: GPL-2.0
/*
 * huge_maps.bpf.c - katran-sized maps: balancer_ingress's map shapes with a tiny program.
 *
 * Maps (as katran's balancer.bpf.c declares them):
 *   ch_rings       ARRAY        u32 -> u32, MAX_VIPS * RING_SIZE = 512 * 65537 = 33,554,944
 *   server_id_map  ARRAY        u32 -> u32, MAX_QUIC_REALS = 0xfffffe = 16,777,214
 *   stats          PERCPU_ARRAY u32 -> struct lb_stats (16 bytes), 65,536
 *   .bss           packets_seen (direct value access)
 *
 * balancer_ingress (SEC("xdp")): non-IPv4 frames and runts are counted in stats[65535] and
 * passed (XDP_PASS). For IPv4 it hashes the addresses to a vip number (0..511) and a ring
 * position, looks up ch_rings[vip * RING_SIZE + pos] (0 there means never written: it then
 * stores real = (hash & 0xfff) + 1), reads and bumps server_id_map[real] and
 * server_id_map[MAX_QUIC_REALS - 1] (the last index), checks that an index past the end
 * gives NULL and an update past the end -E2BIG (7), counts the packet in stats[vip] (v1 +=
 * 1, v2 += length) and returns XDP_TX (3), or XDP_ABORTED (0) when a check failed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_VIPS	512
#define RING_SIZE	65537
#define CH_RINGS_SIZE	(MAX_VIPS * RING_SIZE)
#define MAX_QUIC_REALS	0x00fffffe
#define STATS_SIZE	65536
#define E2BIG		7

struct lb_stats {
	__u64 v1;
	__u64 v2;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, CH_RINGS_SIZE);
} ch_rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, MAX_QUIC_REALS);
} server_id_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_stats);
	__uint(max_entries, STATS_SIZE);
} stats SEC(".maps");

__u64 packets_seen;

static __always_inline int count(__u32 idx, __u64 len)
{
	struct lb_stats *s = bpf_map_lookup_elem(&stats, &idx);

	if (!s)
		return 0;
	s->v1 += 1;
	s->v2 += len;
	return 1;
}

SEC("xdp")
int balancer_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u64 len = data_end - data;
	__u32 hash, vip, pos, key, real, *slot, *srv;

	packets_seen++;
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		if (!count(STATS_SIZE - 1, len))
			return XDP_ABORTED;
		return XDP_PASS;
	}
	hash = ip->saddr * 2654435761u ^ ip->daddr;
	hash ^= hash >> 15;
	vip = hash % MAX_VIPS;
	pos = (hash >> 9) % RING_SIZE;
	key = vip * RING_SIZE + pos;
	slot = bpf_map_lookup_elem(&ch_rings, &key);
	if (!slot)
		return XDP_ABORTED;
	real = *slot;
	if (!real) {
		real = (hash & 0xfff) + 1;
		if (bpf_map_update_elem(&ch_rings, &key, &real, BPF_ANY))
			return XDP_ABORTED;
	}
	srv = bpf_map_lookup_elem(&server_id_map, &real);
	if (!srv)
		return XDP_ABORTED;
	*srv += 1;
	key = MAX_QUIC_REALS - 1;
	srv = bpf_map_lookup_elem(&server_id_map, &key);
	if (!srv)
		return XDP_ABORTED;
	*srv = real;
	key = MAX_QUIC_REALS;
	if (bpf_map_lookup_elem(&server_id_map, &key))
		return XDP_ABORTED;
	if (bpf_map_update_elem(&server_id_map, &key, &real, BPF_ANY) != -E2BIG)
		return XDP_ABORTED;
	if (!count(vip, len))
		return XDP_ABORTED;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
