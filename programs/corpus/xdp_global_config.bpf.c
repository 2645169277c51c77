// SPDX-License-Identifier: GPL-2.0
/* xdp_global_config: configuration and counters in global data, as libbpf skeletons use:
 * const volatile knobs in .rodata (set before load), a mutable policy table in .data, and
 * counters in .bss that user space reads through the skeleton's mmap. */
#include "corpus.h"

const volatile __u16 allowed_ports[4] = { 80, 443, 53, 0 };
const volatile __u8 strict_mode = 1;
const volatile __u32 vip = 0xc0000201;

__u32 drop_below_ttl = 2;
char banner[16] = "corpus-xdp";

__u64 seen_packets;
__u64 seen_bytes;
__u64 dropped;
__u32 last_proto;

SEC("xdp")
int xdp_policy(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *l4;
	int proto, i;

	__sync_fetch_and_add(&seen_packets, 1);
	__sync_fetch_and_add(&seen_bytes, data_end - data);
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto < 0)
		return XDP_DROP;
	last_proto = proto;
	if (iph->ttl < drop_below_ttl) {
		__sync_fetch_and_add(&dropped, 1);
		return XDP_DROP;
	}
	if (iph->daddr != bpf_htonl(vip) || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return XDP_PASS;
	l4 = nh.pos;
	if ((void *)(l4 + 1) > data_end)
		return XDP_DROP;
#pragma unroll
	for (i = 0; i < 4; i++) {
		if (allowed_ports[i] && l4->dest == bpf_htons(allowed_ports[i]))
			return XDP_PASS;
	}
	if (strict_mode) {
		__sync_fetch_and_add(&dropped, 1);
		banner[15] = 'D';
		return XDP_DROP;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
