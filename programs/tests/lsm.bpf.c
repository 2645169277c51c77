// SPDX-License-Identifier: GPL-2.0
/*
 * lsm.bpf.c - SEC("lsm/file_open"): BPF_PROG_TYPE_LSM, attach type BPF_LSM_MAC, attach
 * point the security_file_open hook (bpf_lsm_file_open in vmlinux BTF).
 *
 * int file_open(struct file *file): returns 0 to allow, -EPERM (-1) to deny. This program
 * counts every call in lsm_calls[0] and denies only when the read-only global deny_all is
 * set by the loader (it is 0 in the object, so the expected return is 0 and
 * lsm_calls[0] = 1 after one call). Also reads a BPF_PROG typed argument (the file pointer,
 * counted as non-NULL in lsm_calls[1]).
 * This kernel refuses to load LSM programs (BPF_PROG_LOAD: EPERM); no test run exists for
 * BPF_PROG_TYPE_LSM.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define EPERM 1

struct file;

const volatile __u32 deny_all = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lsm_calls SEC(".maps");

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *calls = bpf_map_lookup_elem(&lsm_calls, &k0);
	__u64 *nonnull = bpf_map_lookup_elem(&lsm_calls, &k1);

	if (calls)
		__sync_fetch_and_add(calls, 1);
	if (nonnull && file)
		__sync_fetch_and_add(nonnull, 1);
	return deny_all ? -EPERM : 0;
}

char LICENSE[] SEC("license") = "GPL";
