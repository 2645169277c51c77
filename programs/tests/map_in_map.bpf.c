// SPDX-License-Identifier: GPL-2.0
/*
 * map_in_map.bpf.c - BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS.
 *
 * Inner maps inner_a and inner_b (ARRAY, 1 x u32) are placed into the outer maps by the
 * loader from the declarative initialisers (libbpf: __array(values, ...) + .values):
 *   outer_arr[0]  = inner_a   (outer_arr[1] empty)
 *   outer_hash[2] = inner_b   (key 2 = index in .values; no other keys)
 * mim_inner (SEC("xdp"), any frame):
 *   inner_a[0] += 1 through outer_arr[0]; inner_b[0] = 0xb0b through outer_hash[2];
 *   mim_res[0] = outer_arr[1] lookup is NULL (1), mim_res[1] = outer_hash[3] lookup is
 *   NULL (1), mim_res[2] = inner_a[0] after the increment (1), mim_res[3] = inner_b[0]
 *   read back (0xb0b = 2827).
 * Returns XDP_PASS (2) if every lookup behaves as described, XDP_DROP (1) otherwise.
 * After one run: inner_a = [1], inner_b = [2827].
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner_map inner_a SEC(".maps");
struct inner_map inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer_hash SEC(".maps") = {
	.values = { [2] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __s64);
} mim_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&mim_res, &slot, &v, BPF_ANY);
}

SEC("xdp")
int mim_inner(struct xdp_md *ctx)
{
	__u32 k0 = 0, k1 = 1, k2 = 2, k3 = 3, bob = 0xb0b;
	void *inner;
	__u32 *v;
	int ok = 1;

	inner = bpf_map_lookup_elem(&outer_arr, &k0);
	if (!inner)
		return XDP_ABORTED;
	v = bpf_map_lookup_elem(inner, &k0);
	if (!v)
		return XDP_ABORTED;
	*v += 1;
	res(2, *v);

	res(0, bpf_map_lookup_elem(&outer_arr, &k1) == NULL);
	res(1, bpf_map_lookup_elem(&outer_hash, &k3) == NULL);
	if (bpf_map_lookup_elem(&outer_arr, &k1) || bpf_map_lookup_elem(&outer_hash, &k3))
		ok = 0;

	inner = bpf_map_lookup_elem(&outer_hash, &k2);
	if (!inner)
		return XDP_ABORTED;
	if (bpf_map_update_elem(inner, &k0, &bob, BPF_ANY))
		ok = 0;
	v = bpf_map_lookup_elem(inner, &k0);
	res(3, v ? *v : -1);
	return ok ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
