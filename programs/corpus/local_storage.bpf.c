// SPDX-License-Identifier: GPL-2.0
/* local_storage: object-local storage maps: socket storage from a cgroup_skb program (per-
 * socket byte counters, created on first use with BPF_SK_STORAGE_GET_F_CREATE) and task
 * storage from a syscall program (per-task call counter), as tools like Tetragon and
 * systemd's socket-bind filters keep state. */
#include "corpus.h"

struct sk_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_stats);
} sk_stats_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} task_calls SEC(".maps");

SEC("cgroup_skb/egress")
int sk_account(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct sk_stats *st;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	st = bpf_sk_storage_get(&sk_stats_map, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 1;
	st->packets++;
	st->bytes += skb->len;
	return st->packets < 1000 ? 1 : 0;
}

SEC("syscall")
int task_count(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 *calls;

	calls = bpf_task_storage_get(&task_calls, task, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!calls)
		return -1;
	*calls += 1;
	return *calls;
}

char _license[] SEC("license") = "GPL";
