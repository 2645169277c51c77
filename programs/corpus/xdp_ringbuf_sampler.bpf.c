// SPDX-License-Identifier: GPL-2.0
/* xdp_ringbuf_sampler: a flow sampler (like xdp-monitor / pwru-style exporters) that pushes
 * a record per TCP SYN to a BPF ring buffer with bpf_ringbuf_reserve/submit, and one per UDP
 * packet with bpf_ringbuf_output; drops are counted when the ring is full. */
#include "corpus.h"

struct sample {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sample_stats SEC(".maps");

static __always_inline void stat(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&sample_stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int xdp_sample(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *l4;
	struct sample *s;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	l4 = nh.pos;
	if ((void *)(l4 + 1) > data_end)
		return XDP_PASS;
	if (proto == IPPROTO_UDP) {
		struct sample rec = {
			.saddr = iph->saddr, .daddr = iph->daddr,
			.sport = l4->source, .dport = l4->dest,
			.proto = proto, .len = data_end - data,
		};

		stat(bpf_ringbuf_output(&samples, &rec, sizeof(rec), 0) ? 1 : 0);
		return XDP_PASS;
	}
	s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s) {
		stat(1);
		return XDP_PASS;
	}
	s->saddr = iph->saddr;
	s->daddr = iph->daddr;
	s->sport = l4->source;
	s->dport = l4->dest;
	s->proto = proto;
	s->pad[0] = s->pad[1] = s->pad[2] = 0;
	s->len = data_end - data;
	bpf_ringbuf_submit(s, 0);
	stat(0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
