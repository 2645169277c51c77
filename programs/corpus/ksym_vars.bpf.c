// SPDX-License-Identifier: GPL-2.0
/* ksym_vars: typed __ksym variables resolved against the kernel's BTF (libbpf turns each
 * reference into an ld_imm64 of BPF_PSEUDO_BTF_ID): the per-CPU bpf_prog_active read with
 * bpf_this_cpu_ptr, and a weak __ksym that may be missing (its address reads as NULL). The
 * kernel needs the symbols in kallsyms (CONFIG_KALLSYMS_ALL) to load this. */
#include "corpus.h"

extern const int bpf_prog_active __ksym;
extern const int bpflab_no_such_symbol __ksym __weak;

__s32 seen_prog_active;
__u32 missing_is_null;

SEC("xdp")
int xdp_ksym(struct xdp_md *ctx)
{
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	seen_prog_active = *active;
	missing_is_null = &bpflab_no_such_symbol == NULL;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
