// SPDX-License-Identifier: GPL-2.0
/*
 * globals.bpf.c - global variables: .data, .rodata, .bss, a custom .data.custom section and
 * string literals in .rodata.str1.1. The loader turns each section into a one-element array
 * map ("<obj>.data", "<obj>.rodata", "<obj>.bss", ".data.custom", ".rodata.str1.1" - names
 * truncated by libbpf to 15 chars) and patches the ld_imm64 that reference them into
 * BPF_PSEUDO_MAP_VALUE + offset. Relocations are R_BPF_64_64 either against the variable's
 * own symbol (globals: offset = symbol value, imm = 0) or against the section symbol
 * (static data_static and the string literal: offset = the ld_imm64's imm). Several
 * variables per section so that accesses happen at nonzero offsets. .rodata maps are
 * frozen (read-only for the program).
 *
 * Layout (offsets as emitted by clang-19 -O2; verified against llvm-objdump -t):
 *   .data:        data_a (u32) = 0x11111111, data_b (u32) = 0x22222222,
 *                 data_c (u64) = 0x3333333333333333, static data_static (u64) = 0x4444444444444444
 *   .rodata:      ro_a (u32) = 0xa1, ro_b (u32) = 0xb2, ro_c (u64) = 0xc3c3c3c3c3c3c3c3
 *   .bss:         bss_a (u32), bss_b (u64), bss_c (u32), all 0 at load
 *   .data.custom: custom_a (u32) = 0x5a5a, custom_b (u32) = 0x6b6b
 *   .rodata.str1.1: "bpflab-literal!" (16 bytes with NUL), used as a map value pointer
 *
 * globals_rw (SEC("xdp"), any frame): returns XDP_PASS (2) when every initial value reads
 * back as listed (XDP_DROP (1) otherwise), and then writes:
 *   data_b += 1 (-> 0x22222223), data_c ^= 0xff (-> 0x33333333333333cc),
 *   data_static += 2 (-> 0x4444444444444446),
 *   bss_b = frame length, bss_c = 0xc0ffee, custom_b = ro_b + custom_a (-> 0x5b0c),
 *   strs[0] = "bpflab-literal!" (copied by bpf_map_update_elem from .rodata.str1.1)
 * Globals persist across runs of one loaded object: a second run returns XDP_DROP because
 * data_b/data_c/data_static/custom_b no longer hold their initial values.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u32 data_a = 0x11111111;
__u32 data_b = 0x22222222;
__u64 data_c = 0x3333333333333333ULL;
static __u64 data_static = 0x4444444444444444ULL;

const volatile __u32 ro_a = 0xa1;
const volatile __u32 ro_b = 0xb2;
const volatile __u64 ro_c = 0xc3c3c3c3c3c3c3c3ULL;

__u32 bss_a;
__u64 bss_b;
__u32 bss_c;

__u32 custom_a SEC(".data.custom") = 0x5a5a;
__u32 custom_b SEC(".data.custom") = 0x6b6b;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[16]);
} strs SEC(".maps");

SEC("xdp")
int globals_rw(struct xdp_md *ctx)
{
	__u32 zero = 0;
	int ok;

	ok = data_a == 0x11111111 && data_b == 0x22222222 && data_c == 0x3333333333333333ULL &&
	     data_static == 0x4444444444444444ULL &&
	     ro_a == 0xa1 && ro_b == 0xb2 && ro_c == 0xc3c3c3c3c3c3c3c3ULL &&
	     bss_a == 0 && bss_b == 0 && bss_c == 0 &&
	     custom_a == 0x5a5a && custom_b == 0x6b6b;

	data_b += 1;
	data_c ^= 0xff;
	data_static += 2;
	bss_b = ctx->data_end - ctx->data;
	bss_c = 0xc0ffee;
	custom_b = ro_b + custom_a;
	bpf_map_update_elem(&strs, &zero, "bpflab-literal!", BPF_ANY);
	return ok ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
