// SPDX-License-Identifier: GPL-2.0
/*
 * callbacks.bpf.c - helpers that call back into BPF code: bpf_loop and
 * bpf_for_each_map_elem. The callback's address is an ld_imm64 carrying an R_BPF_64_64
 * relocation against the .text section symbol with the callback's byte offset in imm; the
 * loader turns it into src_reg = BPF_PSEUDO_FUNC with imm = instruction offset relative to
 * the ld_imm64 (not a call instruction).
 *
 * cb_loop (SEC("xdp"), any frame):
 *   bpf_loop(10, sum_cb, &ctx, 0): sum of i for i in 0..9 = 45, returns 10 (iterations)
 *   bpf_loop(100, stop_cb, &ctx, 0): stop_cb returns 1 at i == 5 -> returns 6, ctx.last = 5
 *   bpf_loop(0, sum_cb, ...)     -> 0 iterations
 *   bpf_loop(1, sum_cb, .., 1)   -> -EINVAL (-22): flags must be 0
 * cb_for_each (SEC("xdp"), any frame):
 *   fills cb_arr = [1, 2, 3, 4] and cb_hash = {10: 100, 20: 200, 30: 300}, then
 *   bpf_for_each_map_elem(cb_arr, arr_cb)          -> 4 elements, sum of values = 10,
 *                                                     sum of keys = 6; values doubled ->
 *                                                     cb_arr = [2, 4, 6, 8]
 *   bpf_for_each_map_elem(cb_arr, arr_stop_cb)     -> arr_stop_cb returns 1 at key 2 ->
 *                                                     returns 3 (elements visited)
 *   bpf_for_each_map_elem(cb_hash, hash_cb)        -> 3, sum of keys 60, sum of values 600
 *                                                     (hash visiting order is unspecified;
 *                                                     only order-free results are checked)
 * Both return XDP_PASS (2) when every result matches, XDP_DROP (1) otherwise, and write the
 * results to cb_res (s64 slots):
 *   0 loop1 ret (10), 1 loop1 sum (45), 2 loop2 ret (6), 3 loop2 last (5),
 *   4 loop(0) ret (0), 5 loop flags=1 ret (-22),
 *   6 arr ret (4), 7 arr value sum (10), 8 arr key sum (6), 9 arr stop ret (3),
 *   10 hash ret (3), 11 hash key sum (60), 12 hash value sum (600)
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map;

struct loop_ctx {
	__u64 sum;
	__u64 last;
};

struct iter_ctx {
	__u64 key_sum;
	__u64 value_sum;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} cb_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} cb_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 13);
	__type(key, __u32);
	__type(value, __s64);
} cb_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&cb_res, &slot, &v, BPF_ANY);
}

static long sum_cb(__u64 index, void *data)
{
	struct loop_ctx *c = data;

	c->sum += index;
	return 0;		/* continue */
}

static long stop_cb(__u64 index, void *data)
{
	struct loop_ctx *c = data;

	c->last = index;
	return index == 5;	/* 1 = stop after this iteration */
}

SEC("xdp")
int cb_loop(struct xdp_md *ctx)
{
	struct loop_ctx c1 = {}, c2 = {}, c3 = {};
	__s64 r[6];

	r[0] = bpf_loop(10, sum_cb, &c1, 0);
	r[1] = c1.sum;
	r[2] = bpf_loop(100, stop_cb, &c2, 0);
	r[3] = c2.last;
	r[4] = bpf_loop(0, sum_cb, &c3, 0);
	r[5] = bpf_loop(1, sum_cb, &c3, 1);
	for (int i = 0; i < 6; i++)
		res(i, r[i]);
	return (r[0] == 10 && r[1] == 45 && r[2] == 6 && r[3] == 5 && r[4] == 0 &&
		r[5] == -22) ? XDP_PASS : XDP_DROP;
}

static long arr_cb(struct bpf_map *map, __u32 *key, __u64 *value, struct iter_ctx *c)
{
	c->key_sum += *key;
	c->value_sum += *value;
	*value *= 2;
	return 0;
}

static long arr_stop_cb(struct bpf_map *map, __u32 *key, __u64 *value, struct iter_ctx *c)
{
	return *key == 2;
}

static long hash_cb(struct bpf_map *map, __u32 *key, __u64 *value, struct iter_ctx *c)
{
	c->key_sum += *key;
	c->value_sum += *value;
	return 0;
}

SEC("xdp")
int cb_for_each(struct xdp_md *ctx)
{
	struct iter_ctx a = {}, s = {}, h = {};
	__s64 r[7];

	for (__u32 i = 0; i < 4; i++) {
		__u32 k = i;
		__u64 v = i + 1;

		bpf_map_update_elem(&cb_arr, &k, &v, BPF_ANY);
	}
	for (__u32 i = 1; i <= 3; i++) {
		__u32 k = i * 10;
		__u64 v = i * 100;

		bpf_map_update_elem(&cb_hash, &k, &v, BPF_ANY);
	}

	r[0] = bpf_for_each_map_elem(&cb_arr, arr_cb, &a, 0);
	r[1] = a.value_sum;
	r[2] = a.key_sum;
	r[3] = bpf_for_each_map_elem(&cb_arr, arr_stop_cb, &s, 0);
	r[4] = bpf_for_each_map_elem(&cb_hash, hash_cb, &h, 0);
	r[5] = h.key_sum;
	r[6] = h.value_sum;
	for (int i = 0; i < 7; i++)
		res(6 + i, r[i]);
	return (r[0] == 4 && r[1] == 10 && r[2] == 6 && r[3] == 3 && r[4] == 3 &&
		r[5] == 60 && r[6] == 600) ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
