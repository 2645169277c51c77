// SPDX-License-Identifier: GPL-2.0
/*
 * calls.bpf.c - BPF-to-BPF calls (R_BPF_64_32 call relocations into .text).
 *
 * Exercises:
 *   - static __noinline subprograms in .text shared by programs of three types
 *     (calls_xdp in SEC("xdp"), calls_tc in SEC("tc"), calls_syscall in SEC("syscall")):
 *     the loader appends the called .text functions to each program and patches the
 *     pc-relative call offsets;
 *   - a __noinline function taking 5 arguments (the maximum, r1..r5): mix5();
 *   - a recursion-free call chain three deep: chain1 -> chain2 -> chain3;
 *   - a subprogram receiving packet pointers (first_bytes()).
 * The arguments come from the packet so that clang cannot constant-fold the calls away.
 *
 * Return values (deterministic functions of the input frame):
 *   mix5(a,b,c,d,e)  = a + 2b + 3c + 4d + 5e
 *   chain3(x) = x + 5, chain2(x) = chain3(2x) + 2, chain1(x) = chain2(x + 1) + 1 = 2x + 10
 *   calls_xdp        = mix5(len, pkt[12], pkt[13], pkt[0], pkt[5]) + chain1(len)
 *   calls_tc         = mix5(len, pkt[12], pkt[13], pkt[0], pkt[5])
 *   frames shorter than 14 bytes return 0.
 *   calls_syscall    ctx = struct call_args { u32 a, b } (packets/ctx_syscall_args.bin:
 *                    a = 6, b = 7):
 *                    returns chain1(mix5(a, b, 1, 1, 1)) = chain1(6 + 14 + 12) = 74.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

static __noinline int mix5(int a, int b, int c, int d, int e)
{
	return a + 2 * b + 3 * c + 4 * d + 5 * e;
}

static __noinline int chain3(int x)
{
	return x + 5;
}

static __noinline int chain2(int x)
{
	return chain3(x * 2) + 2;
}

static __noinline int chain1(int x)
{
	return chain2(x + 1) + 1;
}

/* Returns mix5() of bytes of the frame, or -1 if the frame is shorter than 14 bytes. */
static __noinline int first_bytes(void *data, void *data_end, int len)
{
	unsigned char *p = data;

	if (data + 14 > data_end)
		return -1;
	return mix5(len, p[12], p[13], p[0], p[5]);
}

SEC("xdp")
int calls_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int len = data_end - data;
	int m = first_bytes(data, data_end, len);

	if (m < 0)
		return 0;
	return m + chain1(len);
}

SEC("tc")
int calls_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	int m = first_bytes(data, data_end, skb->len);

	return m < 0 ? 0 : m;
}

struct call_args {
	__u32 a;
	__u32 b;
};

/* BPF_PROG_TYPE_SYSCALL: ctx is a plain user buffer (ctx_in), no packet. */
SEC("syscall")
int calls_syscall(struct call_args *args)
{
	return chain1(mix5(args->a, args->b, 1, 1, 1));
}

char LICENSE[] SEC("license") = "GPL";
