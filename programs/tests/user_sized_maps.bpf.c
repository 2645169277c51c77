// SPDX-License-Identifier: GPL-2.0
// Maps user space sizes before loading (max_entries 0 in the object, as kernel samples and
// many tools leave them and call bpf_map__set_max_entries): bpflab takes --map-size NAME=N.
// The perf event array needs no size: libbpf gives it one entry per possible CPU.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
} len_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

// Counts packets by length; marks array slots 0..3 and drops the packet when slot 3 does not
// exist (the array was sized below 4).
SEC("xdp")
int count_sized(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u64 one = 1, *v;
	__u32 i;

	v = bpf_map_lookup_elem(&len_counts, &len);
	if (v)
		__sync_fetch_and_add(v, 1);
	else if (bpf_map_update_elem(&len_counts, &len, &one, BPF_NOEXIST))
		return XDP_ABORTED;
	for (i = 0; i < 4; i++) {
		__u32 k = i;

		v = bpf_map_lookup_elem(&slots, &k);
		if (!v)
			return XDP_DROP;
		*v += len;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
