// SPDX-License-Identifier: GPL-2.0
/*
 * new_maps.bpf.c - map kinds real programs use beyond the classic ones: task local storage
 * and a user ring buffer (arena maps are in arena.bpf.c: this kernel refuses to create
 * them, EPERM).
 *
 * task_store_prog (SEC("syscall")), store_res (s64 slots):
 *   0 value after bpf_task_storage_get(F_CREATE) and ++ (1)
 *   1 a second get returns the same pointer (1)
 *   2 bpf_task_storage_delete (0)          3 delete again (-ENOENT, -2)
 *   4 get without F_CREATE after delete is NULL (1)
 *   5 get(F_CREATE) with an initial value 41 -> 41
 *   6 get with flags 2 (not F_CREATE) is NULL (1)
 *   7 get with a NULL task is NULL (1)
 *   returns 0; the task's storage holds 41 afterwards.
 * user_rb_prog (SEC("syscall")), store_res:
 *   8 bpf_user_ringbuf_drain(user_rb, sum of the first u32 of each record) -> records drained
 *     (0 on an empty ring)
 *   9 the sum                              10 drain with flags 4 (-EINVAL, -22)
 *   returns 0.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct task_struct {
	int __unused;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __s64);
} task_store SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} user_rb SEC(".maps");

__s64 store_res[12];

SEC("syscall")
int task_store_prog(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__s64 init = 41;
	__s64 *v, *w;

	v = bpf_task_storage_get(&task_store, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v)
		return 1;
	*v += 1;
	store_res[0] = *v;
	w = bpf_task_storage_get(&task_store, task, 0, 0);
	store_res[1] = w == v;
	store_res[2] = bpf_task_storage_delete(&task_store, task);
	store_res[3] = bpf_task_storage_delete(&task_store, task);
	store_res[4] = bpf_task_storage_get(&task_store, task, 0, 0) == NULL;
	v = bpf_task_storage_get(&task_store, task, &init, BPF_LOCAL_STORAGE_GET_F_CREATE);
	store_res[5] = v ? *v : -1;
	store_res[6] = bpf_task_storage_get(&task_store, task, 0, 2) == NULL;
	store_res[7] = bpf_task_storage_get(&task_store, NULL, 0, 0) == NULL;
	return 0;
}

static long sum_first_u32(struct bpf_dynptr *d, void *ctx)
{
	__u32 v = 0;

	if (bpf_dynptr_read(&v, sizeof(v), d, 0, 0) == 0)
		*(__s64 *)ctx += v;
	return 0;
}

SEC("syscall")
int user_rb_prog(void *ctx)
{
	__s64 sum = 0;

	store_res[8] = bpf_user_ringbuf_drain(&user_rb, sum_first_u32, &sum, 0);
	store_res[9] = sum;
	store_res[10] = bpf_user_ringbuf_drain(&user_rb, sum_first_u32, &sum, 4);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
