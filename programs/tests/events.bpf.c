// SPDX-License-Identifier: GPL-2.0
/*
 * events.bpf.c - event output to user space: BPF_MAP_TYPE_PERF_EVENT_ARRAY with
 * bpf_perf_event_output, and BPF_MAP_TYPE_RINGBUF with bpf_ringbuf_reserve / _submit /
 * _discard / _output / _query.
 *
 * events_perf (SEC("xdp")): sends struct pkt_event { len, proto } with BPF_F_CURRENT_CPU.
 *   With no perf event opened on the current CPU's slot (the case in a bare test run) the
 *   helper returns -ENOENT (-2); ev_res[0] = that result. Returns XDP_PASS (2) if the
 *   result is 0 or -ENOENT, XDP_ABORTED otherwise. (Loaders size max_entries 0 to the
 *   number of possible CPUs.) With a reader attached, one 8-byte sample
 *   { len = frame length, proto = ethertype in host order } arrives per run.
 *
 * events_ringbuf (SEC("xdp")), on a fresh 4096-byte ring (each record = 8-byte header +
 * size rounded up to 8):
 *   ev_res[1]  query(AVAIL_DATA) before anything          -> 0
 *   ev_res[2]  reserve(16) != NULL, filled, submit(0)      -> 1
 *   ev_res[3]  reserve(16) != NULL, discard(0)             -> 1
 *   ev_res[4]  output(&ev, 8, 0)                            -> 0
 *   ev_res[5]  reserve(8192) (larger than the ring) == NULL -> 1
 *   ev_res[6]  query(AVAIL_DATA)  -> 64 (24 + 24 + 16; discarded records still count)
 *   ev_res[7]  query(RING_SIZE)   -> 4096
 *   ev_res[8]  query(CONS_POS)    -> 0
 *   ev_res[9]  query(PROD_POS)    -> 64
 *   Returns XDP_PASS when all of these hold, XDP_DROP otherwise.
 *   A consumer then reads 2 records: { len, proto } from the submitted reservation
 *   (16 bytes: len, proto, 0xfeedf00d, 0) and { len, proto } (8 bytes) from output;
 *   the discarded record is skipped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct pkt_event {
	__u32 len;
	__u32 proto;
};

struct rb_record {
	__u32 len;
	__u32 proto;
	__u32 magic;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 10);
	__type(key, __u32);
	__type(value, __s64);
} ev_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&ev_res, &slot, &v, BPF_ANY);
}

static __always_inline int fill(struct xdp_md *ctx, struct pkt_event *ev)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	ev->len = data_end - data;
	ev->proto = bpf_ntohs(eth->h_proto);
	return 0;
}

SEC("xdp")
int events_perf(struct xdp_md *ctx)
{
	struct pkt_event ev = {};
	long r;

	if (fill(ctx, &ev))
		return XDP_ABORTED;
	r = bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &ev, sizeof(ev));
	res(0, r);
	return (r == 0 || r == -2) ? XDP_PASS : XDP_ABORTED;
}

SEC("xdp")
int events_ringbuf(struct xdp_md *ctx)
{
	struct pkt_event ev = {};
	struct rb_record *rec;
	__s64 r[10] = {};
	int ok;

	if (fill(ctx, &ev))
		return XDP_ABORTED;

	r[1] = bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA);

	rec = bpf_ringbuf_reserve(&rb, sizeof(*rec), 0);
	r[2] = rec != NULL;
	if (rec) {
		rec->len = ev.len;
		rec->proto = ev.proto;
		rec->magic = 0xfeedf00d;
		rec->pad = 0;
		bpf_ringbuf_submit(rec, 0);
	}

	rec = bpf_ringbuf_reserve(&rb, sizeof(*rec), 0);
	r[3] = rec != NULL;
	if (rec)
		bpf_ringbuf_discard(rec, 0);

	r[4] = bpf_ringbuf_output(&rb, &ev, sizeof(ev), 0);

	rec = bpf_ringbuf_reserve(&rb, 8192, 0);
	r[5] = rec == NULL;
	if (rec)
		bpf_ringbuf_discard(rec, 0);

	r[6] = bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA);
	r[7] = bpf_ringbuf_query(&rb, BPF_RB_RING_SIZE);
	r[8] = bpf_ringbuf_query(&rb, BPF_RB_CONS_POS);
	r[9] = bpf_ringbuf_query(&rb, BPF_RB_PROD_POS);

	for (int i = 1; i < 10; i++)
		res(i, r[i]);
	ok = r[1] == 0 && r[2] == 1 && r[3] == 1 && r[4] == 0 && r[5] == 1 &&
	     r[6] == 64 && r[7] == 4096 && r[8] == 0 && r[9] == 64;
	return ok ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
