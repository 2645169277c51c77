// SPDX-License-Identifier: GPL-2.0
/*
 * maps_basic.bpf.c - the basic map types and the update-flag error codes.
 *
 * Maps: BPF_MAP_TYPE_ARRAY, PERCPU_ARRAY, HASH, PERCPU_HASH, QUEUE, STACK.
 * Helpers: bpf_map_lookup_elem, bpf_map_update_elem (BPF_ANY / BPF_NOEXIST / BPF_EXIST),
 * bpf_map_delete_elem, bpf_map_push_elem, bpf_map_pop_elem, bpf_map_peek_elem.
 *
 * Every program is SEC("xdp") so it can be test-run with any frame (e.g.
 * packets/ipv4_tcp_syn.bin, the packet is not read). Each stores every helper result, in
 * order, in its own result array (s64 slots) and returns XDP_PASS (2) if all results match
 * the expectations written next to the calls, XDP_DROP (1) otherwise. Expected results are
 * for one run on freshly created maps.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define EINVAL	22
#define ENOENT	2
#define EEXIST	17
#define E2BIG	7

#define RESULT_MAP(name, n)				\
	struct {					\
		__uint(type, BPF_MAP_TYPE_ARRAY);	\
		__uint(max_entries, n);			\
		__type(key, __u32);			\
		__type(value, __s64);			\
	} name SEC(".maps")

RESULT_MAP(array_res, 8);
RESULT_MAP(hash_res, 12);
RESULT_MAP(percpu_res, 4);
RESULT_MAP(qs_res, 16);

/* Record results[slot] = got and clear *ok if got != want. */
#define CHECK(map, slot, got, want)					\
	({								\
		__u32 __k = (slot);					\
		__s64 __v = (got);					\
		bpf_map_update_elem(&map, &__k, &__v, BPF_ANY);		\
		if (__v != (want))					\
			ok = 0;						\
	})

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4);
	__type(value, __u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 4);
	__type(value, __u32);
} stack SEC(".maps");

/*
 * Array: all max_entries elements always exist (zeroed), cannot be deleted.
 * Final arr contents: [0] = 0, [1] = 5, [2] = 0x2222, [3] = 0.
 */
SEC("xdp")
int map_array(struct xdp_md *ctx)
{
	__u32 k0 = 0, k1 = 1, k2 = 2, k4 = 4;
	__u64 v = 0x2222, *p;
	int ok = 1;

	p = bpf_map_lookup_elem(&arr, &k1);
	if (p)
		*p += 5;
	CHECK(array_res, 0, p ? (__s64)*p : -1, 5);			/* lookup [1] -> 0, += 5 */
	CHECK(array_res, 1, bpf_map_update_elem(&arr, &k2, &v, BPF_ANY), 0);
	CHECK(array_res, 2, bpf_map_update_elem(&arr, &k4, &v, BPF_ANY), -E2BIG); /* idx >= max */
	CHECK(array_res, 3, bpf_map_update_elem(&arr, &k0, &v, BPF_NOEXIST), -EEXIST);
	CHECK(array_res, 4, bpf_map_update_elem(&arr, &k2, &v, BPF_EXIST), 0);
	CHECK(array_res, 5, bpf_map_delete_elem(&arr, &k0), -EINVAL);
	CHECK(array_res, 6, bpf_map_lookup_elem(&arr, &k4) == NULL, 1);	/* out of range */
	p = bpf_map_lookup_elem(&arr, &k2);
	CHECK(array_res, 7, p ? (__s64)*p : -1, 0x2222);
	return ok ? XDP_PASS : XDP_DROP;
}

/*
 * Hash with max_entries 4 (preallocated). Final hash contents: {1: 101, 3: 3, 4: 4}.
 */
SEC("xdp")
int map_hash(struct xdp_md *ctx)
{
	__u32 k1 = 1, k2 = 2, k3 = 3, k4 = 4, k5 = 5;
	__u64 v100 = 100, v101 = 101, v2 = 2, v3 = 3, v4 = 4, v5 = 5, *p;
	int ok = 1;

	CHECK(hash_res, 0, bpf_map_update_elem(&hash, &k1, &v100, BPF_NOEXIST), 0);
	CHECK(hash_res, 1, bpf_map_update_elem(&hash, &k1, &v100, BPF_NOEXIST), -EEXIST);
	CHECK(hash_res, 2, bpf_map_update_elem(&hash, &k2, &v2, BPF_EXIST), -ENOENT);
	CHECK(hash_res, 3, bpf_map_update_elem(&hash, &k1, &v101, BPF_EXIST), 0);
	CHECK(hash_res, 4, bpf_map_delete_elem(&hash, &k3), -ENOENT);
	CHECK(hash_res, 5, bpf_map_update_elem(&hash, &k2, &v2, BPF_ANY), 0);
	CHECK(hash_res, 6, bpf_map_update_elem(&hash, &k3, &v3, BPF_ANY), 0);
	CHECK(hash_res, 7, bpf_map_update_elem(&hash, &k4, &v4, BPF_ANY), 0);
	CHECK(hash_res, 8, bpf_map_update_elem(&hash, &k5, &v5, BPF_ANY), -E2BIG); /* full */
	CHECK(hash_res, 9, bpf_map_delete_elem(&hash, &k2), 0);
	p = bpf_map_lookup_elem(&hash, &k1);
	CHECK(hash_res, 10, p ? (__s64)*p : -1, 101);
	CHECK(hash_res, 11, bpf_map_lookup_elem(&hash, &k2) == NULL, 1);
	return ok ? XDP_PASS : XDP_DROP;
}

/*
 * Per-CPU maps: lookups and updates see only the running CPU's copy. After one run the
 * CPU that ran the program has pcpu_arr[0] = 7 and pcpu_hash[9] = 40 (update 33, then += 7);
 * every other CPU has pcpu_arr[0] = 0 and pcpu_hash[9] = 0 (an update from a program
 * zero-fills the other CPUs' copies). Sum over CPUs: 7 and 40.
 */
SEC("xdp")
int map_percpu(struct xdp_md *ctx)
{
	__u32 k0 = 0, k9 = 9;
	__u64 v33 = 33, *p;
	int ok = 1;

	p = bpf_map_lookup_elem(&pcpu_arr, &k0);
	if (p)
		*p += 7;
	CHECK(percpu_res, 0, p ? (__s64)*p : -1, 7);
	CHECK(percpu_res, 1, bpf_map_update_elem(&pcpu_hash, &k9, &v33, BPF_NOEXIST), 0);
	p = bpf_map_lookup_elem(&pcpu_hash, &k9);
	if (p)
		*p += 7;
	CHECK(percpu_res, 2, p ? (__s64)*p : -1, 40);
	CHECK(percpu_res, 3, bpf_map_update_elem(&pcpu_hash, &k9, &v33, BPF_NOEXIST), -EEXIST);
	return ok ? XDP_PASS : XDP_DROP;
}

/*
 * Queue (FIFO) and stack (LIFO), max_entries 4, u32 values.
 * Final queue contents (front to back): 40, 50. Final stack contents (top to bottom): 1.
 */
SEC("xdp")
int map_queue_stack(struct xdp_md *ctx)
{
	__u32 v, v10 = 10, v20 = 20, v30 = 30, v40 = 40, v50 = 50, s1 = 1, s2 = 2, s3 = 3;
	int ok = 1;

	CHECK(qs_res, 0, bpf_map_pop_elem(&queue, &v), -ENOENT);		/* empty */
	bpf_map_push_elem(&queue, &v10, BPF_ANY);
	bpf_map_push_elem(&queue, &v20, BPF_ANY);
	bpf_map_push_elem(&queue, &v30, BPF_ANY);
	CHECK(qs_res, 1, bpf_map_push_elem(&queue, &v40, BPF_ANY), 0);
	CHECK(qs_res, 2, bpf_map_push_elem(&queue, &v50, BPF_ANY), -E2BIG);	/* full */
	CHECK(qs_res, 3, bpf_map_push_elem(&queue, &v50, BPF_EXIST), 0);	/* drops 10 */
	v = 0;
	CHECK(qs_res, 4, bpf_map_peek_elem(&queue, &v), 0);
	CHECK(qs_res, 5, v, 20);
	v = 0;
	CHECK(qs_res, 6, bpf_map_pop_elem(&queue, &v), 0);
	CHECK(qs_res, 7, v, 20);
	bpf_map_pop_elem(&queue, &v);
	CHECK(qs_res, 8, v, 30);

	CHECK(qs_res, 9, bpf_map_peek_elem(&stack, &v), -ENOENT);		/* empty */
	bpf_map_push_elem(&stack, &s1, BPF_ANY);
	bpf_map_push_elem(&stack, &s2, BPF_ANY);
	CHECK(qs_res, 10, bpf_map_push_elem(&stack, &s3, BPF_ANY), 0);
	v = 0;
	CHECK(qs_res, 11, bpf_map_peek_elem(&stack, &v), 0);
	CHECK(qs_res, 12, v, 3);
	bpf_map_pop_elem(&stack, &v);
	CHECK(qs_res, 13, v, 3);
	bpf_map_pop_elem(&stack, &v);
	CHECK(qs_res, 14, v, 2);
	CHECK(qs_res, 15, bpf_map_push_elem(&stack, &s1, BPF_NOEXIST), -EINVAL); /* bad flag */
	return ok ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
