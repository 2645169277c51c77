// SPDX-License-Identifier: GPL-2.0
/* syscall_strings: string helpers a BPF "loader" or config program uses (BPF_PROG_TYPE_SYSCALL,
 * run with bpf_prog_test_run from user space): bpf_snprintf formats a label from the context's
 * arguments into .bss, bpf_strncmp compares it with a .rodata prefix, and the program returns
 * the formatted length plus 1000 when the prefix matched. */
#include "corpus.h"

struct args {
	__u64 id;
	__u64 value;
};

const char prefix[8] = "svc-7-";
char label[64];
__s64 cmp_result;

SEC("syscall")
int format_label(struct args *ctx)
{
	__u64 data[3];
	long len;

	data[0] = (__u64)(long)"svc";
	data[1] = ctx->id;
	data[2] = ctx->value;
	len = bpf_snprintf(label, sizeof(label), "%s-%llu-%llx", data, sizeof(data));
	if (len < 0)
		return len;
	cmp_result = bpf_strncmp(label, 6, prefix);
	return len + (cmp_result == 0 ? 1000 : 0);
}

char _license[] SEC("license") = "GPL";
