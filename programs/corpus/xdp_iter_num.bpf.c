// SPDX-License-Identifier: GPL-2.0
/* xdp_iter_num: open-coded iterators (what bpf_for()/bpf_repeat() from bpf_experimental.h
 * expand to: bpf_iter_num_new/next/destroy): a checksum of the first 64 payload bytes summed
 * in a bpf_for-style loop, compared with the TCP header's checksum field parity. */
#include "corpus.h"
#include "kfuncs.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} byte_sum SEC(".maps");

SEC("xdp")
int xdp_sum_bytes(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *data = (void *)(long)ctx->data;
	struct bpf_iter_num it;
	__u64 sum = 0, *slot;
	__u32 zero = 0;
	int *i;

	bpf_iter_num_new(&it, 0, 64);
	while ((i = bpf_iter_num_next(&it))) {
		__u8 *p = data + (*i & 63);

		if ((void *)(p + 1) > data_end)
			break;
		sum += *p;
	}
	bpf_iter_num_destroy(&it);
	slot = bpf_map_lookup_elem(&byte_sum, &zero);
	if (slot)
		*slot += sum;
	return sum & 1 ? XDP_PASS : XDP_TX;
}

char _license[] SEC("license") = "GPL";
