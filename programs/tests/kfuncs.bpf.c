// SPDX-License-Identifier: GPL-2.0
/*
 * kfuncs.bpf.c - kernel functions (kfuncs, `extern ... __ksym` calls) common programs use:
 * dynptrs over XDP and skb packets and over local memory, open-coded numeric iterators
 * (what libbpf's bpf_for()/bpf_repeat() expand to), RCU sections and task lookups.
 *
 * Each program writes its results to an s64 array in .bss (one per program) and returns a
 * verdict; every result is compared with the kernel by tests/fixtures_vs_kernel.rs.
 *
 * xdp_dynptr (SEC("xdp"), every packet), xdp_res:
 *   0 bpf_dynptr_from_xdp(ctx, 0) (0)       1 bpf_dynptr_size (frame length)
 *   2 h_proto via bpf_dynptr_slice (or -1)  3 slice past the end is NULL (1)
 *   4 bpf_dynptr_read(4 bytes at 12) ret    5 the value read
 *   6 bpf_dynptr_write(6 bytes at 6) ret    7 write with flags 1 (-EINVAL)
 *   8 from_xdp with flags 1 (-EINVAL)       9 bpf_dynptr_is_null on it (1)
 *  10 bpf_dynptr_adjust(14, size) ret       11 size afterwards
 *  12 first byte after Ethernet (or -1)     13 bpf_dynptr_from_mem(16 bytes) ret
 *  14 value through bpf_dynptr_data         15 bpf_dynptr_data past the end is NULL (1)
 *  16 from_mem with flags 1 (-EINVAL)       17 bpf_dynptr_clone ret, 18 clone's size
 *  19 bpf_dynptr_is_rdonly (0)              20 adjust(start > end) (-EINVAL)
 *  21 adjust(end > size) (-ERANGE)          22 read past the end (-E2BIG)
 *   writes 02:00:00:00:00:01 as the source MAC and inverts the first byte (read through a
 *   slice, written with bpf_dynptr_write); bpf_dynptr_from_mem works on .bss (Linux 6.18
 *   refuses stack memory) and bpf_dynptr_slice_rdwr is left out (Linux 6.18 refuses it with
 *   "bpf_dynptr_slice_rdwr() is not allowed"; vm/tests/kfuncs.rs covers it). Returns
 *   XDP_PASS for frames of 14 bytes or more, else XDP_DROP.
 * xdp_iter (SEC("xdp")), iter_res:
 *   0 sum of bpf_for(i, 0, 10) (45)         1 bpf_repeat(5) count (5)
 *   2 bpf_iter_num_new(5, 3) (-EINVAL)      3 next after that is NULL (1)
 *   4 bpf_iter_num_new(0, 1 << 24) (-E2BIG) 5 sum of bpf_for(i, -3, 3) (-3)
 *   6 sum of frame bytes 0..min(len, 20) through an iterator
 *   returns XDP_PASS.
 * tc_dynptr (SEC("tc")), tc_res:
 *   0 bpf_dynptr_from_skb(ctx, 0) (0)       1 bpf_dynptr_size (skb->len)
 *   2 h_proto via slice (or -1)             3 bpf_dynptr_is_rdonly (0)
 *   4 IPv4 TTL through a slice (or -1); the TTL is decremented with bpf_dynptr_write
 *   5 bpf_dynptr_write(.., BPF_F_INVALIDATE_HASH) ret (0)
 *   6 from_skb with flags 1 (-EINVAL)
 *   returns TC_ACT_OK (0).
 * sf_dynptr (SEC("socket")), sf_res:
 *   0 from_skb (0)  1 is_rdonly (1: socket filters cannot write packets)
 *   2 a read slice works (1)  3 bpf_dynptr_write ret (-EINVAL)  4 size
 *   returns the frame length.
 * sys_cpumask (SEC("syscall")), cpumask_res: a mask with CPU 0 set: test_cpu(0) 1,
 *   test_cpu(1) 0, first 0, first_zero (1, or nr_cpu_ids with one CPU), weight 1,
 *   test_and_set_cpu(0) 1, set_cpu(100000) ignored (weight 1); setall: full 1, weight
 *   nr_cpu_ids; and -> 1 (non-empty), equal 1; slot 11 = empty (0) + 10 * the weight
 *   through a second reference after the first is released (10); returns 0.
 * xdp_rb_dynptr (SEC("xdp")), rb_res: bpf_ringbuf_reserve_dynptr(16) 0, bpf_dynptr_write 0,
 *   high half through bpf_dynptr_data (0x11223344), size 16, [4] = 1 (submitted; the
 *   verifier forbids using the dynptr afterwards), reserve with flags 1 (-EINVAL), reserve
 *   larger than the ring (-EINVAL), then
 *   bpf_ringbuf_query(AVAIL_DATA): bytes not consumed (24 per run; kernel and bpflab agree
 *   only on the value after the same runs).
 * sys_task (SEC("syscall")), task_res:
 *   0 bpf_task_from_pid(current tid) is not NULL (1)  1 bpf_task_from_pid(-1) is NULL (1)
 *   2 rcu section ran (1); returns 0.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

/* Not in older uapi headers: the 8-byte numeric iterator. */
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

/* Defined (not only declared) so libbpf finds the kfunc prototypes compatible. */
struct task_struct {
	int __unused;
};

extern int bpf_dynptr_from_xdp(struct xdp_md *xdp, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern int bpf_dynptr_from_skb(struct __sk_buff *skb, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *ptr, __u32 offset, void *buffer, __u32 buffer__szk) __ksym;
extern int bpf_dynptr_adjust(const struct bpf_dynptr *ptr, __u32 start, __u32 end) __ksym;
extern _Bool bpf_dynptr_is_null(const struct bpf_dynptr *ptr) __ksym;
extern _Bool bpf_dynptr_is_rdonly(const struct bpf_dynptr *ptr) __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *ptr) __ksym;
extern int bpf_dynptr_clone(const struct bpf_dynptr *ptr, struct bpf_dynptr *clone__uninit) __ksym;
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern struct task_struct *bpf_task_from_pid(__s32 pid) __ksym;

/* Defined for the same reason as task_struct. */
struct bpf_cpumask {
	int __unused;
};
struct cpumask {
	int __unused;
};
extern struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
extern struct bpf_cpumask *bpf_cpumask_acquire(struct bpf_cpumask *cpumask) __ksym;
extern void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;
extern void bpf_cpumask_set_cpu(__u32 cpu, struct bpf_cpumask *cpumask) __ksym;
extern _Bool bpf_cpumask_test_cpu(__u32 cpu, const struct cpumask *cpumask) __ksym;
extern _Bool bpf_cpumask_test_and_set_cpu(__u32 cpu, struct bpf_cpumask *cpumask) __ksym;
extern __u32 bpf_cpumask_first(const struct cpumask *cpumask) __ksym;
extern __u32 bpf_cpumask_first_zero(const struct cpumask *cpumask) __ksym;
extern __u32 bpf_cpumask_weight(const struct cpumask *cpumask) __ksym;
extern void bpf_cpumask_setall(struct bpf_cpumask *cpumask) __ksym;
extern _Bool bpf_cpumask_and(struct bpf_cpumask *dst, const struct cpumask *src1,
			     const struct cpumask *src2) __ksym;
extern _Bool bpf_cpumask_equal(const struct cpumask *src1, const struct cpumask *src2) __ksym;
extern _Bool bpf_cpumask_full(const struct cpumask *cpumask) __ksym;
extern _Bool bpf_cpumask_empty(const struct cpumask *cpumask) __ksym;
#define CM(m) ((const struct cpumask *)(m))
extern void bpf_task_release(struct task_struct *p) __ksym;

#define EINVAL 22
#define E2BIG 7
#define ERANGE 34

__s64 xdp_res[24];
__s64 iter_res[8];
__s64 tc_res[8];
__s64 sf_res[8];
__s64 task_res[4];
__s64 cpumask_res[12];
__s64 rb_res[8];

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");
/* bpf_dynptr_from_mem takes map values (Linux 6.18 refuses stack memory). */
__u8 mem_buf[16];

SEC("xdp")
int xdp_dynptr(struct xdp_md *ctx)
{
	struct bpf_dynptr ptr, bad, local, clone;
	__u8 buf[16] = {};
	__u32 word = 0, val = 0x11223344, *p;
	__u8 mac[6] = { 2, 0, 0, 0, 0, 1 };
	struct ethhdr *eth;
	__u8 *b;
	__u32 size;

	xdp_res[0] = bpf_dynptr_from_xdp(ctx, 0, &ptr);
	size = bpf_dynptr_size(&ptr);
	xdp_res[1] = size;
	eth = bpf_dynptr_slice(&ptr, 0, buf, sizeof(*eth));
	xdp_res[2] = eth ? (__s64)eth->h_proto : -1;
	xdp_res[3] = bpf_dynptr_slice(&ptr, size > 4 ? size - 4 : 0, buf, 8) == NULL;
	xdp_res[4] = bpf_dynptr_read(&word, 4, &ptr, 12, 0);
	xdp_res[5] = word;
	xdp_res[6] = bpf_dynptr_write(&ptr, 6, mac, 6, 0);
	xdp_res[7] = bpf_dynptr_write(&ptr, 6, mac, 6, 1);
	xdp_res[8] = bpf_dynptr_from_xdp(ctx, 1, &bad);
	xdp_res[9] = bpf_dynptr_is_null(&bad);
	xdp_res[19] = bpf_dynptr_is_rdonly(&ptr);
	xdp_res[22] = bpf_dynptr_read(&word, 4, &ptr, size, 0);
	b = bpf_dynptr_slice(&ptr, 0, buf, 1);
	if (b) {
		__u8 first = *b ^ 0xff;

		bpf_dynptr_write(&ptr, 0, &first, 1, 0);
	}
	xdp_res[17] = bpf_dynptr_clone(&ptr, &clone);
	xdp_res[20] = bpf_dynptr_adjust(&clone, 4, 2);
	xdp_res[21] = bpf_dynptr_adjust(&clone, 0, size + 1);
	xdp_res[10] = bpf_dynptr_adjust(&clone, 14, size);
	xdp_res[11] = bpf_dynptr_size(&clone);
	xdp_res[18] = bpf_dynptr_size(&ptr);
	b = bpf_dynptr_slice(&clone, 0, buf, 1);
	xdp_res[12] = b ? (__s64)*b : -1;

	xdp_res[13] = bpf_dynptr_from_mem(mem_buf, sizeof(mem_buf), 0, &local);
	bpf_dynptr_write(&local, 4, &val, 4, 0);
	p = bpf_dynptr_data(&local, 4, 4);
	xdp_res[14] = p ? (__s64)*p : -1;
	xdp_res[15] = bpf_dynptr_data(&local, 14, 4) == NULL;
	xdp_res[16] = bpf_dynptr_from_mem(mem_buf, sizeof(mem_buf), 1, &bad);
	return size >= 14 ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_iter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_iter_num it;
	__s64 sum = 0, n = 0;
	int *v;

	bpf_rcu_read_lock();
	bpf_iter_num_new(&it, 0, 10);
	while ((v = bpf_iter_num_next(&it)))
		sum += *v;
	bpf_iter_num_destroy(&it);
	bpf_rcu_read_unlock();
	iter_res[0] = sum;

	bpf_iter_num_new(&it, 0, 5);
	while (bpf_iter_num_next(&it))
		n++;
	bpf_iter_num_destroy(&it);
	iter_res[1] = n;

	iter_res[2] = bpf_iter_num_new(&it, 5, 3);
	iter_res[3] = bpf_iter_num_next(&it) == NULL;
	bpf_iter_num_destroy(&it);
	iter_res[4] = bpf_iter_num_new(&it, 0, 1 << 24);
	bpf_iter_num_destroy(&it);

	sum = 0;
	bpf_iter_num_new(&it, -3, 3);
	while ((v = bpf_iter_num_next(&it)))
		sum += *v;
	bpf_iter_num_destroy(&it);
	iter_res[5] = sum;

	sum = 0;
	bpf_iter_num_new(&it, 0, 20);
	while ((v = bpf_iter_num_next(&it))) {
		int i = *v;
		__u8 *byte;

		if (i < 0 || i >= 20)
			break;
		byte = data + i;
		if ((void *)(byte + 1) > data_end)
			break;
		sum += *byte;
	}
	bpf_iter_num_destroy(&it);
	iter_res[6] = sum;
	return XDP_PASS;
}

struct iphdr_min {
	__u8 ihl_version;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
};

SEC("tc")
int tc_dynptr(struct __sk_buff *skb)
{
	struct bpf_dynptr ptr, bad;
	__u8 buf[20] = {};
	struct ethhdr *eth;
	struct iphdr_min *ip;
	__u8 zero = 0;

	tc_res[0] = bpf_dynptr_from_skb(skb, 0, &ptr);
	tc_res[1] = bpf_dynptr_size(&ptr);
	eth = bpf_dynptr_slice(&ptr, 0, buf, sizeof(*eth));
	tc_res[2] = eth ? (__s64)eth->h_proto : -1;
	tc_res[3] = bpf_dynptr_is_rdonly(&ptr);
	tc_res[4] = -1;
	if (eth && eth->h_proto == __builtin_bswap16(ETH_P_IP)) {
		ip = bpf_dynptr_slice(&ptr, sizeof(*eth), buf, sizeof(*ip));
		if (ip) {
			__u8 ttl = ip->ttl - 1;

			tc_res[4] = ip->ttl;
			bpf_dynptr_write(&ptr, sizeof(*eth) + 8, &ttl, 1, 0);
		}
	}
	/* Clear the last byte of the source MAC. */
	tc_res[5] = bpf_dynptr_write(&ptr, 11, &zero, 1, BPF_F_INVALIDATE_HASH);
	tc_res[6] = bpf_dynptr_from_skb(skb, 1, &bad);
	return 0;
}

SEC("socket")
int sf_dynptr(struct __sk_buff *skb)
{
	struct bpf_dynptr ptr;
	__u8 one = 1, buf[1];

	sf_res[0] = bpf_dynptr_from_skb(skb, 0, &ptr);
	sf_res[1] = bpf_dynptr_is_rdonly(&ptr);
	sf_res[2] = bpf_dynptr_slice(&ptr, 0, buf, 1) != NULL;
	sf_res[3] = bpf_dynptr_write(&ptr, 0, &one, 1, 0);
	sf_res[4] = bpf_dynptr_size(&ptr);
	return skb->len;
}

SEC("syscall")
int sys_task(void *ctx)
{
	struct task_struct *t;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	t = bpf_task_from_pid(tid);
	task_res[0] = t != NULL;
	if (t)
		bpf_task_release(t);
	t = bpf_task_from_pid(-1);
	task_res[1] = t == NULL;
	if (t)
		bpf_task_release(t);
	bpf_rcu_read_lock();
	task_res[2] = 1;
	bpf_rcu_read_unlock();
	return 0;
}

SEC("xdp")
int xdp_rb_dynptr(struct xdp_md *ctx)
{
	struct bpf_dynptr d, bad;
	__u64 val = 0x1122334455667788ULL, *p;

	rb_res[0] = bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d);
	rb_res[1] = bpf_dynptr_write(&d, 0, &val, sizeof(val), 0);
	p = bpf_dynptr_data(&d, 0, sizeof(*p));
	rb_res[2] = p ? (__s64)(*p >> 32) : -1;
	rb_res[3] = bpf_dynptr_size(&d);
	bpf_ringbuf_submit_dynptr(&d, 0);
	rb_res[4] = 1;
	rb_res[5] = bpf_ringbuf_reserve_dynptr(&rb, 16, 1, &bad);
	bpf_ringbuf_discard_dynptr(&bad, 0);
	rb_res[6] = bpf_ringbuf_reserve_dynptr(&rb, 8192, 0, &bad);
	bpf_ringbuf_discard_dynptr(&bad, 0);
	rb_res[7] = bpf_ringbuf_query(&rb, 0);
	return XDP_PASS;
}

SEC("syscall")
int sys_cpumask(void *ctx)
{
	struct bpf_cpumask *m1, *m2, *m3;

	m1 = bpf_cpumask_create();
	if (!m1)
		return 1;
	m2 = bpf_cpumask_create();
	if (!m2) {
		bpf_cpumask_release(m1);
		return 1;
	}
	bpf_cpumask_set_cpu(0, m1);
	cpumask_res[0] = bpf_cpumask_test_cpu(0, CM(m1));
	cpumask_res[1] = bpf_cpumask_test_cpu(1, CM(m1));
	cpumask_res[2] = bpf_cpumask_first(CM(m1));
	cpumask_res[3] = bpf_cpumask_first_zero(CM(m1));
	cpumask_res[4] = bpf_cpumask_weight(CM(m1));
	cpumask_res[5] = bpf_cpumask_test_and_set_cpu(0, m1);
	bpf_cpumask_set_cpu(100000, m1);
	cpumask_res[6] = bpf_cpumask_weight(CM(m1));
	bpf_cpumask_setall(m2);
	cpumask_res[7] = bpf_cpumask_full(CM(m2));
	cpumask_res[8] = bpf_cpumask_weight(CM(m2));
	cpumask_res[9] = bpf_cpumask_and(m2, CM(m1), CM(m2));
	cpumask_res[10] = bpf_cpumask_equal(CM(m1), CM(m2));
	cpumask_res[11] = bpf_cpumask_empty(CM(m1));
	m3 = bpf_cpumask_acquire(m2);
	bpf_cpumask_release(m2);
	/* m3's reference keeps the mask alive after m2's is gone. */
	cpumask_res[11] += bpf_cpumask_weight(CM(m3)) * 10;
	bpf_cpumask_release(m3);
	bpf_cpumask_release(m1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
