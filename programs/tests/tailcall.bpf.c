// SPDX-License-Identifier: GPL-2.0
/*
 * tailcall.bpf.c - BPF_MAP_TYPE_PROG_ARRAY and bpf_tail_call.
 *
 * jmp_table is initialised declaratively (libbpf fills the slots after loading the programs):
 *   jmp_table[0] = tail_stage1, jmp_table[1] = tail_stage2, slots 2 and 3 empty.
 * Chain for tail_entry:  tail_entry -> [0] tail_stage1 -> [1] tail_stage2 -> [2] (empty)
 * A tail call to an empty slot or an index >= max_entries does not jump: execution
 * continues after the bpf_tail_call() (which returns an error) - the "fall-through".
 *
 * Every stage ORs its bit into tail_trace[0] (tail_entry resets it to 0 first):
 *   bit 0 tail_entry, bit 1 tail_stage1, bit 2 tail_stage2, bit 3 tail_stage2 fell through.
 * Results (any frame, e.g. packets/ipv4_tcp_syn.bin):
 *   tail_entry      -> returns XDP_TX (3) from tail_stage2's fall-through; tail_trace[0] = 0xf
 *   tail_fallthrough-> tail calls index 3 (empty) and index 10 (out of range), both fall
 *                      through -> returns XDP_DROP (1); tail_trace[1] = 2 (fall-throughs)
 *   tail_stage1/2 can also be run directly: stage1 -> stage2 -> XDP_TX; trace bits add up.
 * Also exercises: passing ctx through, the same map used from four programs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} tail_trace SEC(".maps");

static __always_inline void mark(__u32 slot, __u32 bit)
{
	__u32 *v = bpf_map_lookup_elem(&tail_trace, &slot);

	if (v)
		*v |= bit;
}

SEC("xdp")
int tail_stage2(struct xdp_md *ctx);
SEC("xdp")
int tail_stage1(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (struct xdp_md *));
} jmp_table SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_stage1,
		[1] = (void *)&tail_stage2,
	},
};

SEC("xdp")
int tail_stage2(struct xdp_md *ctx)
{
	mark(0, 1 << 2);
	bpf_tail_call(ctx, &jmp_table, 2);	/* slot 2 is empty */
	mark(0, 1 << 3);
	return XDP_TX;
}

SEC("xdp")
int tail_stage1(struct xdp_md *ctx)
{
	mark(0, 1 << 1);
	bpf_tail_call(ctx, &jmp_table, 1);
	return XDP_ABORTED;	/* not reached while jmp_table[1] is set */
}

SEC("xdp")
int tail_entry(struct xdp_md *ctx)
{
	__u32 zero = 0, *v = bpf_map_lookup_elem(&tail_trace, &zero);

	if (v)
		*v = 1 << 0;
	bpf_tail_call(ctx, &jmp_table, 0);
	return XDP_ABORTED;	/* not reached while jmp_table[0] is set */
}

SEC("xdp")
int tail_fallthrough(struct xdp_md *ctx)
{
	__u32 one = 1, *v = bpf_map_lookup_elem(&tail_trace, &one);

	if (v)
		*v = 0;
	bpf_tail_call(ctx, &jmp_table, 3);	/* empty slot */
	if (v)
		*v += 1;
	bpf_tail_call(ctx, &jmp_table, 10);	/* index >= max_entries */
	if (v)
		*v += 1;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
