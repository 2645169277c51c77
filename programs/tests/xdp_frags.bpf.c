// SPDX-License-Identifier: GPL-2.0
/*
 * xdp_frags.bpf.c - XDP multi-buffer packets: BPF_PROG_TEST_RUN puts the first
 * 4096 - 256 - 320 = 3520 bytes (plus the metadata length) of a frame in the linear buffer and
 * the rest in fragment pages of up to 4096 bytes, for every XDP program; data_end is the end of
 * the linear part, helpers and dynptrs reach the fragments. tests/xdp_frags.rs runs these on
 * frames of 60 .. 73152 bytes against the kernel; fixtures_vs_kernel.rs on the usual packets.
 *
 * Each program writes s64 results to its own .bss array and returns a verdict.
 * xf_len (SEC("xdp")) and xf_len_frags (SEC("xdp.frags")), len_res:
 *   0/2 bpf_xdp_get_buff_len    1/3 data_end - data                      XDP_PASS
 * xf_load (SEC("xdp.frags")), load_res:
 *   0 load 16 bytes at linear end - 8 (ret)   1, 2 the two u64 read
 *   3 load of the last 8 bytes (ret)          4 the u64 read
 *   5 load of 8 bytes at len - 4 (-EINVAL)    6 load at 0x10000 (-EFAULT past 0xffff when the
 *   packet is longer, else -EINVAL)           7 load at 5000 (ret), 8 the u64 read   XDP_PASS
 * xf_store (SEC("xdp")), store_res: stores 12 bytes across the linear end (0), 6 bytes at the
 *   end (1), 4 bytes at 4100 (2), 8 bytes at len - 4 (3, -EINVAL); XDP_TX.
 * xf_grow (SEC("xdp.frags")), tail_res: adjust_tail(+100) (0), buff len (1), linear len (2),
 *   adjust_tail(+5000) (3, -EINVAL), adjust_tail(0) (4), store 1 byte at the new end - 1
 *   (5); XDP_PASS.
 * xf_shrink (SEC("xdp.frags")), shrink_res: adjust_tail(-5000) (0), buff len (1), linear len
 *   (2), adjust_tail(-100) (3), buff len (4); XDP_PASS.
 * xf_shrink_all (SEC("xdp")), all_res: adjust_tail(-(len - 20)) (0: releases every fragment
 *   and shrinks the linear part), buff len (1), linear len (2), adjust_tail(+10) (3), buff
 *   len (4), adjust_tail(-7) again (5); XDP_PASS.
 * xf_dynptr (SEC("xdp.frags")), dyn_res: bpf_dynptr_from_xdp (0), size (1), read 16 at
 *   linear end - 8 (2) and its first u64 (3), slice of 8 at linear end + 100 with a buffer
 *   (4: its u64 or -1), slice of 8 across the linear end without a buffer (5: 1 if NULL),
 *   with a buffer (6: its u64 or -1), write 8 across the linear end (7), write 4 at size - 4
 *   (8), read at 0x10000 (9: -EFAULT past 0xffff, -E2BIG past the size), write past the
 *   size (10, -E2BIG); XDP_PASS.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_dynptr_from_xdp(struct xdp_md *xdp, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *ptr, __u32 offset, void *buffer__opt,
			      __u32 buffer__szk) __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *ptr) __ksym;

__s64 len_res[4];
__s64 load_res[9];
__s64 store_res[4];
__s64 tail_res[6];
__s64 shrink_res[5];
__s64 all_res[6];
__s64 dyn_res[11];

static __always_inline __u32 linear_len(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

static __always_inline __s64 u64_of(const __u8 *b)
{
	__u64 v;

	__builtin_memcpy(&v, b, 8);
	return (__s64)v;
}

SEC("xdp")
int xf_len(struct xdp_md *ctx)
{
	len_res[0] = bpf_xdp_get_buff_len(ctx);
	len_res[1] = linear_len(ctx);
	return XDP_PASS;
}

SEC("xdp.frags")
int xf_len_frags(struct xdp_md *ctx)
{
	len_res[2] = bpf_xdp_get_buff_len(ctx);
	len_res[3] = linear_len(ctx);
	return XDP_PASS;
}

SEC("xdp.frags")
int xf_load(struct xdp_md *ctx)
{
	__u32 len = bpf_xdp_get_buff_len(ctx);
	__u32 lin = linear_len(ctx);
	__u8 buf[16] = {};

	load_res[0] = bpf_xdp_load_bytes(ctx, lin >= 8 ? lin - 8 : 0, buf, 16);
	load_res[1] = u64_of(buf);
	load_res[2] = u64_of(buf + 8);
	load_res[3] = bpf_xdp_load_bytes(ctx, len - 8, buf, 8);
	load_res[4] = u64_of(buf);
	load_res[5] = bpf_xdp_load_bytes(ctx, len - 4, buf, 8);
	load_res[6] = bpf_xdp_load_bytes(ctx, 0x10000, buf, 8);
	load_res[7] = bpf_xdp_load_bytes(ctx, 5000, buf, 8);
	load_res[8] = u64_of(buf);
	return XDP_PASS;
}

SEC("xdp")
int xf_store(struct xdp_md *ctx)
{
	__u8 pat[12] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab };
	__u32 len = bpf_xdp_get_buff_len(ctx);
	__u32 lin = linear_len(ctx);

	store_res[0] = bpf_xdp_store_bytes(ctx, lin >= 5 ? lin - 5 : 0, pat, 12);
	store_res[1] = bpf_xdp_store_bytes(ctx, len - 6, pat + 6, 6);
	store_res[2] = bpf_xdp_store_bytes(ctx, 4100, pat + 2, 4);
	store_res[3] = bpf_xdp_store_bytes(ctx, len - 4, pat, 8);
	return XDP_TX;
}

SEC("xdp.frags")
int xf_grow(struct xdp_md *ctx)
{
	__u8 mark = 0x5a;
	__u32 len;

	tail_res[0] = bpf_xdp_adjust_tail(ctx, 100);
	len = bpf_xdp_get_buff_len(ctx);
	tail_res[1] = len;
	tail_res[2] = linear_len(ctx);
	tail_res[3] = bpf_xdp_adjust_tail(ctx, 5000);
	tail_res[4] = bpf_xdp_adjust_tail(ctx, 0);
	tail_res[5] = bpf_xdp_store_bytes(ctx, len - 1, &mark, 1);
	return XDP_PASS;
}

SEC("xdp.frags")
int xf_shrink(struct xdp_md *ctx)
{
	shrink_res[0] = bpf_xdp_adjust_tail(ctx, -5000);
	shrink_res[1] = bpf_xdp_get_buff_len(ctx);
	shrink_res[2] = linear_len(ctx);
	shrink_res[3] = bpf_xdp_adjust_tail(ctx, -100);
	shrink_res[4] = bpf_xdp_get_buff_len(ctx);
	return XDP_PASS;
}

SEC("xdp")
int xf_shrink_all(struct xdp_md *ctx)
{
	__u32 len = bpf_xdp_get_buff_len(ctx);

	all_res[0] = bpf_xdp_adjust_tail(ctx, -(int)(len - 20));
	all_res[1] = bpf_xdp_get_buff_len(ctx);
	all_res[2] = linear_len(ctx);
	all_res[3] = bpf_xdp_adjust_tail(ctx, 10);
	all_res[4] = bpf_xdp_get_buff_len(ctx);
	all_res[5] = bpf_xdp_adjust_tail(ctx, -7);
	return XDP_PASS;
}

SEC("xdp.frags")
int xf_dynptr(struct xdp_md *ctx)
{
	__u8 pat[8] = { 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7 };
	__u32 lin = linear_len(ctx);
	struct bpf_dynptr ptr;
	__u8 buf[16] = {};
	__u8 sb[8] = {};
	__u32 size, at;
	__u8 *p;

	dyn_res[0] = bpf_dynptr_from_xdp(ctx, 0, &ptr);
	size = bpf_dynptr_size(&ptr);
	dyn_res[1] = size;
	at = lin >= 8 ? lin - 8 : 0;
	dyn_res[2] = bpf_dynptr_read(buf, 16, &ptr, at, 0);
	dyn_res[3] = u64_of(buf);
	p = bpf_dynptr_slice(&ptr, lin + 100, sb, 8);
	dyn_res[4] = p ? u64_of(p) : -1;
	at = lin >= 4 ? lin - 4 : 0;
	dyn_res[5] = bpf_dynptr_slice(&ptr, at, NULL, 8) == NULL;
	p = bpf_dynptr_slice(&ptr, at, sb, 8);
	dyn_res[6] = p ? u64_of(p) : -1;
	dyn_res[7] = bpf_dynptr_write(&ptr, lin >= 3 ? lin - 3 : 0, pat, 8, 0);
	dyn_res[8] = bpf_dynptr_write(&ptr, size - 4, pat, 4, 0);
	dyn_res[9] = bpf_dynptr_read(buf, 8, &ptr, 0x10000, 0);
	dyn_res[10] = bpf_dynptr_write(&ptr, size - 2, pat, 4, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
