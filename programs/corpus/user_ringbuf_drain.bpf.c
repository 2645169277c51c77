// SPDX-License-Identifier: GPL-2.0
/* user_ringbuf_drain: user space to BPF messaging with a user ring buffer
 * (BPF_MAP_TYPE_USER_RINGBUF): a syscall program drains the pending commands with
 * bpf_user_ringbuf_drain and a callback that applies each to a config array; it returns how
 * many it consumed (0 when user space queued nothing). */
#include "corpus.h"

struct command {
	__u32 slot;
	__u32 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} commands SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

static long apply_command(struct bpf_dynptr *dynptr, void *ctx)
{
	struct command cmd;

	if (bpf_dynptr_read(&cmd, sizeof(cmd), dynptr, 0, 0))
		return 1;
	bpf_map_update_elem(&config, &cmd.slot, &cmd.value, BPF_ANY);
	return 0;
}

SEC("syscall")
int drain_commands(void *ctx)
{
	return bpf_user_ringbuf_drain(&commands, apply_command, NULL, 0);
}

char _license[] SEC("license") = "GPL";
