// SPDX-License-Identifier: GPL-2.0
/* arena_alloc: a BPF arena (BPF_MAP_TYPE_ARENA, memory shared with user space by mmap) as the
 * sched_ext and arena selftests use it: a syscall program allocates a page with the
 * bpf_arena_alloc_pages kfunc, builds a small linked list in it through __arena pointers
 * (address-space casts) and returns the sum of its elements. */
#include "corpus.h"

#define __arena __attribute__((address_space(1)))
#define BPF_MAP_TYPE_ARENA_ 33
#define NUMA_NO_NODE (-1)

struct {
	__uint(type, BPF_MAP_TYPE_ARENA_);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4); /* pages */
} arena SEC(".maps");

extern void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt,
					   int node_id, __u64 flags) __ksym __weak;
extern void bpf_arena_free_pages(void *map, void __arena *ptr, __u32 page_cnt) __ksym __weak;

struct node {
	struct node __arena *next;
	__u64 value;
};

SEC("syscall")
int arena_list_sum(void *ctx)
{
	struct node __arena *nodes, *n;
	__u64 sum = 0;
	int i;

	nodes = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
	if (!nodes)
		return -1;
	for (i = 0; i < 8; i++) {
		nodes[i].value = i * 3;
		nodes[i].next = i < 7 ? &nodes[i + 1] : NULL;
	}
	for (n = nodes, i = 0; n && i < 8; n = n->next, i++)
		sum += n->value;
	bpf_arena_free_pages(&arena, (void __arena *)nodes, 1);
	return sum;
}

char _license[] SEC("license") = "GPL";
