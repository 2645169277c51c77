// SPDX-License-Identifier: GPL-2.0
/*
 * arena.bpf.c - a BPF_MAP_TYPE_ARENA map declared the way libbpf's newer headers write it,
 * with __ulong(map_extra, ...) (an enum member, not a __uint pointer), and a program calling
 * the arena kfuncs.
 *
 * bpflab loads the object (including the addr_space_cast clang emits for the conversion of
 * an arena pointer), creates the arena (4 pages, BPF_F_MMAPABLE) and lists it in `inspect`;
 * it does not map arena pages, so arena_alloc (SEC("kprobe"), not test-runnable in the
 * kernel) faults at its bpf_arena_alloc_pages call with
 * "kfunc bpf_arena_alloc_pages: unsupported: arena address space".
 * Linux 6.18 here refuses to create arena maps (BPF_MAP_CREATE: EPERM).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __cat(a, b) a##b
#define _cat(a, b) __cat(a, b)
/* libbpf's __ulong (newer bpf_helpers.h): an enum whose one value is the attribute. */
#define __ulong(name, val) enum { _cat(__unique_value, __COUNTER__) = val } name

#ifndef BPF_MAP_TYPE_ARENA
#define BPF_MAP_TYPE_ARENA 33
#endif
#ifndef BPF_F_MMAPABLE
#define BPF_F_MMAPABLE (1U << 10)
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__ulong(map_extra, 1ull << 44);
} arena SEC(".maps");

/* Arena pointers live in address space 1. */
#define __arena __attribute__((address_space(1)))

extern void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt,
					   int node_id, __u64 flags) __ksym;
extern void bpf_arena_free_pages(void *map, void __arena *ptr, __u32 page_cnt) __ksym;

SEC("kprobe/do_nanosleep")
int arena_alloc(void *ctx)
{
	int __arena *page = bpf_arena_alloc_pages(&arena, NULL, 1, -1, 0);
	int *kern;

	if (!page)
		return 1;
	/* clang emits addr_space_cast(page, 0, 1) for this conversion. */
	kern = (int *)page;
	*kern = 5;
	bpf_arena_free_pages(&arena, page, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
