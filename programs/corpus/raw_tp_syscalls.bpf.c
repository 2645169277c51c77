// SPDX-License-Identifier: GPL-2.0
/* raw_tp_syscalls: a syscount-style tracer on the raw sys_enter tracepoint (libbpf-tools'
 * syscount and Falco's drivers start this way): the syscall id from the raw arguments is
 * counted per id in a hash and per process in an LRU hash; ids of interest (execve) are sent
 * to a ring buffer. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u64);
} syscall_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} per_tgid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} exec_events SEC(".maps");

SEC("raw_tp/sys_enter")
int count_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 id = ctx->args[1];
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *cnt;

	cnt = bpf_map_lookup_elem(&syscall_counts, &id);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&syscall_counts, &id, &one, BPF_NOEXIST);
	cnt = bpf_map_lookup_elem(&per_tgid, &tgid);
	if (cnt)
		*cnt += 1;
	else
		bpf_map_update_elem(&per_tgid, &tgid, &one, BPF_ANY);
	if (id == 59) /* execve */
		bpf_ringbuf_output(&exec_events, &tgid, sizeof(tgid), 0);
	return 0;
}

char _license[] SEC("license") = "GPL";
