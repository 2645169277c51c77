// SPDX-License-Identifier: GPL-2.0
/*
 * tracing.bpf.c - tracing section kinds and the task / probe-read helpers.
 *
 * Sections / program types:
 *   SEC("kprobe/do_sys_openat2")               BPF_PROG_TYPE_KPROBE      kprobe_openat2
 *   SEC("kretprobe/do_sys_openat2")            BPF_PROG_TYPE_KPROBE      kretprobe_openat2
 *   SEC("tracepoint/syscalls/sys_enter_openat") BPF_PROG_TYPE_TRACEPOINT tp_enter_openat
 *   SEC("raw_tp/sys_enter")                    BPF_PROG_TYPE_RAW_TRACEPOINT raw_sys_enter
 * Only raw_sys_enter can be test-run (ctx_in = u64 args[2] = { struct pt_regs *, syscall id }).
 *
 * Helpers: bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_get_current_comm,
 * bpf_get_current_task, bpf_probe_read (legacy), bpf_probe_read_kernel,
 * bpf_probe_read_kernel_str, bpf_probe_read_user, bpf_probe_read_user_str; BPF_KPROBE /
 * BPF_KRETPROBE argument access through struct pt_regs (PT_REGS_PARM*, PT_REGS_RC).
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define NR_OPENAT 257	/* x86_64 */

struct open_how;

/* What the kprobe/tracepoint programs saw for the last openat call, keyed by tid. */
struct open_event {
	__u64 pid_tgid;
	__u64 uid_gid;
	__s64 ret;		/* kretprobe: return value of do_sys_openat2 */
	__s64 name_len;		/* bpf_probe_read_user_str() result */
	__s32 dfd;
	__u32 flags;
	char comm[16];
	char filename[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct open_event);
} open_events SEC(".maps");

/* raw_sys_enter results, s64 slots (see FIXTURES.md). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __s64);
} trace_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&trace_res, &slot, &v, BPF_ANY);
}

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(kprobe_openat2, int dfd, const char *filename, struct open_how *how)
{
	struct open_event ev = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	ev.pid_tgid = bpf_get_current_pid_tgid();
	ev.uid_gid = bpf_get_current_uid_gid();
	ev.dfd = dfd;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	ev.name_len = bpf_probe_read_user_str(ev.filename, sizeof(ev.filename), filename);
	bpf_map_update_elem(&open_events, &tid, &ev, BPF_ANY);
	return 0;
}

SEC("kretprobe/do_sys_openat2")
int BPF_KRETPROBE(kretprobe_openat2, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_event *ev = bpf_map_lookup_elem(&open_events, &tid);

	if (ev)
		ev->ret = ret;
	return 0;
}

/* Layout of /sys/kernel/tracing/events/syscalls/sys_enter_openat/format. */
struct sys_enter_openat_args {
	__u16 common_type;
	__u8 common_flags;
	__u8 common_preempt_count;
	__s32 common_pid;
	__s32 syscall_nr;	/* offset 8 */
	__u32 pad;
	__u64 dfd;		/* offset 16 */
	__u64 filename;		/* offset 24, const char __user * */
	__u64 flags;		/* offset 32 */
	__u64 mode;		/* offset 40 */
};

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_enter_openat(struct sys_enter_openat_args *ctx)
{
	struct open_event ev = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	ev.pid_tgid = bpf_get_current_pid_tgid();
	ev.uid_gid = bpf_get_current_uid_gid();
	ev.dfd = (__s32)ctx->dfd;
	ev.flags = (__u32)ctx->flags;
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	ev.name_len = bpf_probe_read_user_str(ev.filename, sizeof(ev.filename),
					      (const void *)ctx->filename);
	bpf_map_update_elem(&open_events, &tid, &ev, BPF_ANY);
	return 0;
}

/*
 * raw_tp/sys_enter: args[0] = struct pt_regs *, args[1] = syscall number.
 * Returns a bitmask of checks that hold for any calling task: 0x1ff (511) when args[1] is
 * 257 (openat) and args[0] is NULL, as in packets/ctx_raw_tp_sys_enter.bin:
 *   bit 0  args[1] == 257
 *   bit 1  bpf_get_current_pid_tgid() != 0 and tgid (upper 32 bits) != 0
 *   bit 2  bpf_get_current_comm() returned 0 and comm[0] != '\0'
 *   bit 3  bpf_get_current_task() != 0
 *   bit 4  bpf_probe_read_kernel(&v, 8, args[0]) == -ERANGE (-34): NULL is a user address
 *   bit 5  bpf_probe_read_user(&v, 8, args[0])   == -EFAULT (-14)
 *   bit 6  bpf_probe_read(&v, 8, args[0])        == -EFAULT (-14) (legacy helper: user path)
 *   bit 7  bpf_probe_read_kernel_str(buf, 16, comm) == strlen(comm) + 1 (comm on the stack)
 *   bit 8  bpf_probe_read_user_str(buf, 16, NULL) == -EFAULT (-14)
 * trace_res slots: 0 probe_read_kernel, 1 probe_read_user, 2 probe_read, 3 user_str,
 *                  4 kernel_str, 5 comm length (strlen), 6 syscall id, 7 (uid_gid != ~0)
 */
SEC("raw_tp/sys_enter")
int raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	const void *regs = (const void *)ctx->args[0];
	__u64 id = ctx->args[1];
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	char comm[16] = {}, copy[16] = {};
	__u64 v = 0;
	long r, n = 0;
	int mask = 0, i;

	res(6, id);
	if (id == NR_OPENAT)
		mask |= 1 << 0;
	if (pid_tgid != 0 && (pid_tgid >> 32) != 0)
		mask |= 1 << 1;
	if (bpf_get_current_comm(comm, sizeof(comm)) == 0 && comm[0] != '\0')
		mask |= 1 << 2;
	if (bpf_get_current_task() != 0)
		mask |= 1 << 3;

	r = bpf_probe_read_kernel(&v, sizeof(v), regs);
	res(0, r);
	if (r == -34)
		mask |= 1 << 4;
	r = bpf_probe_read_user(&v, sizeof(v), regs);
	res(1, r);
	if (r == -14)
		mask |= 1 << 5;
	r = bpf_probe_read(&v, sizeof(v), regs);
	res(2, r);
	if (r == -14)
		mask |= 1 << 6;

	for (i = 0; i < 16; i++) {
		if (comm[i] == '\0')
			break;
		n++;
	}
	res(5, n);
	r = bpf_probe_read_kernel_str(copy, sizeof(copy), comm);
	res(4, r);
	if (r == n + 1)
		mask |= 1 << 7;
	r = bpf_probe_read_user_str(copy, sizeof(copy), regs);
	res(3, r);
	if (r == -14)
		mask |= 1 << 8;
	res(7, bpf_get_current_uid_gid() != ~0ULL);
	return mask;
}

char LICENSE[] SEC("license") = "GPL";
