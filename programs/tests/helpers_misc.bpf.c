// SPDX-License-Identifier: GPL-2.0
/*
 * helpers_misc.bpf.c - time, randomness, CPU id, tracing output, string formatting and
 * spin locks. All programs are SEC("xdp") and are meant for packets/ipv4_tcp_syn.bin
 * (54 bytes, ethertype 0x0800, IPv4 destination 10.1.2.3).
 *
 * misc_time: ktime_get_ns, ktime_get_boot_ns, ktime_get_coarse_ns. Values are never
 *   compared with constants, only with each other; returns a bitmask (0x1f = 31 expected):
 *     bit 0  t1 = ktime_get_ns() > 0 and t2 = ktime_get_ns() >= t1
 *     bit 1  b1 = ktime_get_boot_ns(), b2 >= b1
 *     bit 2  boot time >= monotonic time (b1 >= t1: boot clock includes suspend)
 *     bit 3  c1 = ktime_get_coarse_ns(), c2 >= c1
 *     bit 4  coarse <= monotonic read after it (c1 <= t3)
 * misc_random_cpu: get_prandom_u32 x 8, get_smp_processor_id. Returns XDP_PASS (2) when the
 *   8 random values are not all equal and cpu < 4096; misc_res[0] = cpu (any), misc_res[1]
 *   = number of distinct-from-first values (random; 7 with overwhelming probability).
 * misc_print: bpf_printk with 3 args (bpf_trace_printk, helper 6) and with 4 args
 *   (bpf_trace_vprintk, helper 177), and bpf_snprintf into a map. Trace output lines:
 *     "bpflab: len=54 proto=0x800 first=2"
 *     "bpflab: vprintk 1 2 3 4"
 *   misc_str[0] = "len=54 proto=800 dst=10.1.2.3" (NUL-terminated, 64-byte slot; rest 0),
 *   misc_res[2] = bpf_snprintf result = 30 (strlen 29 + 1, like snprintf + NUL),
 *   misc_res[3] = bpf_trace_printk result = 34 (strlen of the formatted message),
 *   misc_res[4] = bpf_trace_vprintk result = 23 (strlen of the formatted message).
 *   Returns XDP_PASS (2) when snprintf returned 30, XDP_DROP (1) otherwise.
 * misc_spin_lock: struct bpf_spin_lock in an array value; under the lock: counter += 1,
 *   total += frame length. After one run: locked[0] = { counter 1, total 54 }. XDP_PASS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __s64);
} misc_res SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[64]);
} misc_str SEC(".maps");

struct locked_val {
	struct bpf_spin_lock lock;
	__u32 counter;
	__u64 total;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked_val);
} locked SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&misc_res, &slot, &v, BPF_ANY);
}

SEC("xdp")
int misc_time(struct xdp_md *ctx)
{
	__u64 t1, t2, t3, b1, b2, c1, c2;
	int mask = 0;

	t1 = bpf_ktime_get_ns();
	t2 = bpf_ktime_get_ns();
	b1 = bpf_ktime_get_boot_ns();
	b2 = bpf_ktime_get_boot_ns();
	c1 = bpf_ktime_get_coarse_ns();
	c2 = bpf_ktime_get_coarse_ns();
	t3 = bpf_ktime_get_ns();

	if (t1 > 0 && t2 >= t1)
		mask |= 1 << 0;
	if (b2 >= b1)
		mask |= 1 << 1;
	if (b1 >= t1)
		mask |= 1 << 2;
	if (c2 >= c1)
		mask |= 1 << 3;
	if (c1 <= t3)
		mask |= 1 << 4;
	return mask;
}

SEC("xdp")
int misc_random_cpu(struct xdp_md *ctx)
{
	__u32 first = bpf_get_prandom_u32();
	__u32 cpu = bpf_get_smp_processor_id();
	__s64 distinct = 0;

	for (int i = 0; i < 7; i++)
		if (bpf_get_prandom_u32() != first)
			distinct++;
	res(0, cpu);
	res(1, distinct);
	return (distinct > 0 && cpu < 4096) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int misc_print(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	static const char fmt[] = "len=%u proto=%x dst=%pI4";
	__u64 args[3];
	__u32 zero = 0;
	char buf[64] = {};
	long n, p3, p4;

	if ((void *)(iph + 1) > data_end)
		return XDP_ABORTED;

	p3 = bpf_printk("bpflab: len=%d proto=0x%x first=%d", (int)(data_end - data),
			bpf_ntohs(eth->h_proto), eth->h_dest[0]);
	p4 = bpf_printk("bpflab: vprintk %d %d %d %d", 1, 2, 3, 4);

	args[0] = data_end - data;
	args[1] = bpf_ntohs(eth->h_proto);
	args[2] = (__u64)(long)&iph->daddr;	/* %pI4 takes a pointer to 4 bytes */
	n = bpf_snprintf(buf, sizeof(buf), fmt, args, sizeof(args));
	bpf_map_update_elem(&misc_str, &zero, buf, BPF_ANY);
	res(2, n);
	res(3, p3);
	res(4, p4);
	return n == 30 ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int misc_spin_lock(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct locked_val *v = bpf_map_lookup_elem(&locked, &zero);

	if (!v)
		return XDP_ABORTED;
	bpf_spin_lock(&v->lock);
	v->counter += 1;
	v->total += ctx->data_end - ctx->data;
	bpf_spin_unlock(&v->lock);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
