// SPDX-License-Identifier: GPL-2.0
/* kconfig_externs: libbpf externs: __kconfig values (LINUX_KERNEL_VERSION, CONFIG_HZ, a bool
 * and a tristate, weak so a missing option reads as 0) that gate behaviour the way BCC's
 * libbpf-tools do. The values are published in .bss for user space. (Typed __ksym variables
 * are in ksym_vars.bpf.c.) */
#include "corpus.h"

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig __weak;
extern _Bool CONFIG_BPF_JIT __kconfig __weak;
extern enum libbpf_tristate CONFIG_NF_CONNTRACK __kconfig __weak;
extern _Bool CONFIG_BPFLAB_NO_SUCH_OPTION __kconfig __weak;

__u32 seen_version;
__s32 seen_hz;
__u32 seen_flags;

SEC("xdp")
int xdp_kconfig(struct xdp_md *ctx)
{
	seen_version = LINUX_KERNEL_VERSION;
	seen_hz = CONFIG_HZ;
	seen_flags = (CONFIG_BPF_JIT ? 1 : 0) | ((__u32)CONFIG_NF_CONNTRACK << 1) |
		     (CONFIG_BPFLAB_NO_SUCH_OPTION ? 8 : 0);
	if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(5, 10, 0) && CONFIG_HZ >= 100)
		return XDP_PASS;
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
