// SPDX-License-Identifier: GPL-2.0
/* xdp_perf_sampler: the older perf-buffer export (xdp_sample_pkts in samples/bpf): the first
 * 64 bytes of every IPv4 packet go to a perf event array with bpf_perf_event_output and
 * BPF_F_CURRENT_CPU (packet bytes appended via the flags' length field). The array's size is
 * left to libbpf (max_entries unset: one slot per possible CPU). */
#include "corpus.h"

#define SAMPLE_SIZE 64ul

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(int));
	__uint(value_size, sizeof(int));
} my_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} last_ret SEC(".maps");

SEC("xdp")
int xdp_sample_prog(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct {
		__u16 cookie;
		__u16 pkt_len;
	} __attribute__((packed)) metadata;
	__u32 zero = 0;
	__s64 *slot;
	long ret;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	metadata.cookie = 0xdead;
	metadata.pkt_len = (__u16)(data_end - data);
	ret = bpf_perf_event_output(ctx, &my_map,
				    ((__u64)(metadata.pkt_len < SAMPLE_SIZE ? metadata.pkt_len : SAMPLE_SIZE) << 32) |
					    BPF_F_CURRENT_CPU,
				    &metadata, sizeof(metadata));
	slot = bpf_map_lookup_elem(&last_ret, &zero);
	if (slot)
		*slot = ret;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
