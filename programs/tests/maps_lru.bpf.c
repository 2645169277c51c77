// SPDX-License-Identifier: GPL-2.0
/*
 * maps_lru.bpf.c - BPF_MAP_TYPE_LRU_HASH and BPF_MAP_TYPE_LRU_PERCPU_HASH filled beyond
 * max_entries.
 *
 * An LRU map never fails an insert for lack of room: it evicts. Which entries the kernel
 * evicts depends on its per-CPU free lists and on how many entries one shrink frees, so the
 * self-checks below only rely on properties every correct LRU has:
 *   - every update returns 0 (even past max_entries);
 *   - the most recently inserted key is present and has its value;
 *   - at most max_entries keys are present afterwards.
 * Kernel quirk worth knowing: an LRU update takes a free node (evicting if needed) BEFORE it
 * checks BPF_NOEXIST/BPF_EXIST, so even a failing update can evict an entry, and the victim
 * can be the very key being updated (then BPF_NOEXIST "succeeds"). The exact survivor
 * bitmask and the NOEXIST outcome are stored in lru_res for documentation (FIXTURES.md
 * records what Linux 6.18 did); a test should not require them.
 *
 * Both programs are SEC("xdp"), test-run with any frame; they return XDP_PASS (2) when the
 * checks hold, XDP_DROP (1) otherwise.
 * lru_res slots: 0 OR of the 8 update results (0), 1 survivor bitmask of lru (bit k-1 for
 *   key k), 2 survivor count of lru, 3 result of BPF_NOEXIST on key 8 (value 801),
 *   4 OR of the 4 percpu updates, 5 survivor bitmask of lru_pcpu, 6 survivor count of
 *   lru_pcpu, 7 lru_pcpu[4] value (this CPU), 8 lru survivor count after the NOEXIST,
 *   9 lru[8] value after the NOEXIST (-1 if gone).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LRU_MAX		4
#define LRU_PCPU_MAX	2

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LRU_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, LRU_PCPU_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lru_pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 10);
	__type(key, __u32);
	__type(value, __s64);
} lru_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&lru_res, &slot, &v, BPF_ANY);
}

/*
 * Insert keys 1..8 (value = key * 100) into an LRU hash of 4 entries, then try
 * BPF_NOEXIST on key 8 with value 801.
 */
SEC("xdp")
int lru_fill(struct xdp_md *ctx)
{
	__s64 errs = 0, mask = 0, count = 0, after = 0;
	__u64 v801 = 801, *p;
	__u32 k;
	int ok = 1;

	for (int i = 1; i <= 8; i++) {
		__u64 val = i * 100;

		k = i;
		errs |= bpf_map_update_elem(&lru, &k, &val, BPF_ANY);
	}
	for (int i = 1; i <= 8; i++) {
		k = i;
		if (bpf_map_lookup_elem(&lru, &k)) {
			mask |= 1 << (i - 1);
			count++;
		}
	}
	k = 8;
	p = bpf_map_lookup_elem(&lru, &k);
	if (errs || !p || *p != 800 || count > LRU_MAX || count < 1)
		ok = 0;
	res(0, errs);
	res(1, mask);
	res(2, count);
	res(3, bpf_map_update_elem(&lru, &k, &v801, BPF_NOEXIST));
	for (int i = 1; i <= 8; i++) {
		k = i;
		if (bpf_map_lookup_elem(&lru, &k))
			after++;
	}
	res(8, after);
	k = 8;
	p = bpf_map_lookup_elem(&lru, &k);
	res(9, p ? (__s64)*p : -1);
	return ok ? XDP_PASS : XDP_DROP;
}

/* Insert keys 1..4 (value = key) into an LRU per-CPU hash of 2 entries. */
SEC("xdp")
int lru_percpu_fill(struct xdp_md *ctx)
{
	__s64 errs = 0, mask = 0, count = 0;
	__u64 *p;
	__u32 k;
	int ok = 1;

	for (int i = 1; i <= 4; i++) {
		__u64 val = i;

		k = i;
		errs |= bpf_map_update_elem(&lru_pcpu, &k, &val, BPF_ANY);
	}
	for (int i = 1; i <= 4; i++) {
		k = i;
		if (bpf_map_lookup_elem(&lru_pcpu, &k)) {
			mask |= 1 << (k - 1);
			count++;
		}
	}
	k = 4;
	p = bpf_map_lookup_elem(&lru_pcpu, &k);
	res(4, errs);
	res(5, mask);
	res(6, count);
	res(7, p ? (__s64)*p : -1);
	if (errs || !p || *p != 4 || count > LRU_PCPU_MAX || count < 1)
		ok = 0;
	return ok ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
