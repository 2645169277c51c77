// SPDX-License-Identifier: GPL-2.0
/*
 * fentry.bpf.c - BTF-based function tracing: SEC("fentry/do_sys_openat2") and
 * SEC("fexit/do_sys_openat2") (BPF_PROG_TYPE_TRACING, attach types BPF_TRACE_FENTRY /
 * BPF_TRACE_FEXIT, attach_btf_id resolved by the loader from vmlinux BTF).
 *
 * Helpers: bpf_get_func_arg_cnt, bpf_get_func_arg, bpf_get_func_ret, and the BPF_PROG()
 * typed-argument macro (args read straight from the u64 ctx array).
 *
 * do_sys_openat2(int dfd, const char __user *filename, struct open_how *how) has 3
 * arguments, so for any call:
 *   fentry: arg_cnt = 3, get_func_arg(ctx, 0) == dfd (returns 0),
 *           get_func_arg(ctx, 3) returns -EINVAL (-22)
 *   fexit:  arg_cnt = 3, get_func_ret(ctx, &ret) returns 0 and ret == the BPF_PROG ret arg
 * Both programs return 0 and store their observations in func_res (s64 slots):
 *   0 fentry arg_cnt, 1 fentry get_func_arg(0) result, 2 arg0 value == dfd (1/0),
 *   3 fentry get_func_arg(3) result, 4 fexit arg_cnt, 5 fexit get_func_ret result,
 *   6 ret value == BPF_PROG ret (1/0), 7 the return value itself.
 * This kernel refuses to load fentry/fexit programs (BPF_PROG_LOAD: EPERM).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct open_how;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __s64);
} func_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&func_res, &slot, &v, BPF_ANY);
}

SEC("fentry/do_sys_openat2")
int BPF_PROG(fentry_openat2, int dfd, const char *filename, struct open_how *how)
{
	__u64 arg0 = 0, arg3 = 0;

	res(0, bpf_get_func_arg_cnt(ctx));
	res(1, bpf_get_func_arg(ctx, 0, &arg0));
	res(2, (int)arg0 == dfd);
	res(3, bpf_get_func_arg(ctx, 3, &arg3));
	return 0;
}

SEC("fexit/do_sys_openat2")
int BPF_PROG(fexit_openat2, int dfd, const char *filename, struct open_how *how, long ret)
{
	__u64 r = 0;

	res(4, bpf_get_func_arg_cnt(ctx));
	res(5, bpf_get_func_ret(ctx, &r));
	res(6, (long)r == ret);
	res(7, ret);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
