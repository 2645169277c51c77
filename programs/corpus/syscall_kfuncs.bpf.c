// SPDX-License-Identifier: GPL-2.0
/* syscall_kfuncs: generic kfuncs from a syscall program, as scheduler and tracing tools use
 * them: the calling thread looked up with bpf_task_from_pid (CO-RE read of its pid/tgid
 * through a trusted pointer, then bpf_task_release), and a CPU mask built with
 * bpf_cpumask_create / set_cpu / test_cpu / weight / first and released. The result packs
 * what was seen. (Other pids are left out: bpflab simulates only the current task, and which
 * other pids the kernel resolves depends on the machine.) */
#include "corpus.h"
#include "kfuncs.h"

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct bpf_cpumask;
struct cpumask;

extern struct task_struct *bpf_task_from_pid(__s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
extern void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;
extern void bpf_cpumask_set_cpu(__u32 cpu, struct bpf_cpumask *cpumask) __ksym;
extern _Bool bpf_cpumask_test_cpu(__u32 cpu, const struct cpumask *cpumask) __ksym;
extern __u32 bpf_cpumask_weight(const struct cpumask *cpumask) __ksym;
extern __u32 bpf_cpumask_first(const struct cpumask *cpumask) __ksym;

SEC("syscall")
int task_and_mask(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id, tgid = id >> 32;
	struct task_struct *t;
	struct bpf_cpumask *mask;
	int ret = 0;

	t = bpf_task_from_pid(pid);
	if (!t)
		return -1;
	if (t->tgid == tgid)
		ret |= 1;
	if (t->pid == pid)
		ret |= 2;
	bpf_task_release(t);

	mask = bpf_cpumask_create();
	if (!mask)
		return -2;
	bpf_cpumask_set_cpu(1, mask);
	if (bpf_cpumask_test_cpu(1, (const struct cpumask *)mask))
		ret |= 4;
	if (!bpf_cpumask_test_cpu(0, (const struct cpumask *)mask))
		ret |= 8;
	ret |= bpf_cpumask_weight((const struct cpumask *)mask) << 8;
	ret |= bpf_cpumask_first((const struct cpumask *)mask) << 16;
	bpf_cpumask_release(mask);
	return ret;
}

char _license[] SEC("license") = "GPL";
