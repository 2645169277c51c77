// SPDX-License-Identifier: GPL-2.0
// kconfig and ksym externs: libbpf lays the __kconfig ones out in a read-only `.kconfig` map
// filled from the kernel configuration (and its own LINUX_* values); weak externs nobody
// provides read as zero, weak __ksym variables and kfuncs the kernel lacks as absent. The
// CONFIG_* externs are weak so the object loads without a kernel configuration too.
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define bpf_ksym_exists(sym) (!!(sym))

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig __weak;
extern int CONFIG_HZ __kconfig __weak;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig __weak;
extern enum libbpf_tristate CONFIG_BPFLAB_MODULE __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[8] __kconfig __weak;
extern bool CONFIG_BPFLAB_ABSENT __kconfig __weak;
extern unsigned long long CONFIG_NR_CPUS __kconfig __weak;

extern const int bpflab_absent_var __ksym __weak;
extern int bpflab_absent_kfunc(void) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static void put(__u32 key, __u64 value)
{
	bpf_map_update_elem(&seen, &key, &value, BPF_ANY);
}

// Writes what it reads: version, HZ, BPF_SYSCALL, BPF_JIT, BPFLAB_MODULE, the hostname's
// first 8 bytes, NR_CPUS, and a bit mask of the absent and virtual ones.
SEC("xdp")
int read_kconfig(struct xdp_md *ctx)
{
	__u64 name = 0;

	put(0, LINUX_KERNEL_VERSION);
	put(1, CONFIG_HZ);
	put(2, CONFIG_BPF_SYSCALL);
	put(3, CONFIG_BPF_JIT);
	put(4, CONFIG_BPFLAB_MODULE);
	__builtin_memcpy(&name, CONFIG_DEFAULT_HOSTNAME, sizeof(name));
	put(5, name);
	put(6, CONFIG_NR_CPUS);
	put(7, CONFIG_BPFLAB_ABSENT | LINUX_HAS_BPF_COOKIE << 1 |
		       bpf_ksym_exists(&bpflab_absent_var) << 2 |
		       bpf_ksym_exists(bpflab_absent_kfunc) << 3);
	if (bpf_ksym_exists(bpflab_absent_kfunc))
		return bpflab_absent_kfunc();
	return CONFIG_HZ == 250 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
