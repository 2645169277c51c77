// SPDX-License-Identifier: GPL-2.0
/*
 * legacy_maps.bpf.c - legacy map definitions: `struct bpf_map_def SEC("maps")`.
 *
 * The pre-BTF way to declare maps: a 20-byte struct bpf_map_def
 * { type, key_size, value_size, max_entries, map_flags } per map, all in one "maps" ELF
 * section; the loader reads each symbol's offset in that section. No BTF describes the
 * key/value types. libbpf >= 1.0 (and so bpftool 7.x) refuses such objects ("legacy map
 * definitions in 'maps' section are not supported"); bpflab should still load them.
 * Compile with -DBPFLAB_BTF_MAPS to get the identical program with BTF-defined maps, which
 * is what kernel_check.py loads to verify the expectations below.
 *
 * legacy_count (SEC("xdp"), any frame):
 *   legacy_stats[0] += 1, legacy_stats[1] += frame length;
 *   legacy_seen[ethertype (host order)] = frame length (BPF_ANY);
 *   returns XDP_PASS (2).
 * After one run on packets/ipv4_tcp_syn.bin: legacy_stats = [1, 54], legacy_seen = {0x0800: 54}.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef BPFLAB_BTF_MAPS
/* Removed from libbpf's bpf_helpers.h in 1.0; this is the historical layout. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_stats = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 2,
};

struct bpf_map_def SEC("maps") legacy_seen = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 16,
};
#else
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} legacy_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} legacy_seen SEC(".maps");
#endif

SEC("xdp")
int legacy_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u64 len = data_end - data, *v;
	__u32 key = 0, proto;

	v = bpf_map_lookup_elem(&legacy_stats, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	key = 1;
	v = bpf_map_lookup_elem(&legacy_stats, &key);
	if (v)
		__sync_fetch_and_add(v, len);

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = bpf_ntohs(eth->h_proto);
	bpf_map_update_elem(&legacy_seen, &proto, &len, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
