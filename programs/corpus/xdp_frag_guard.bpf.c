// SPDX-License-Identifier: GPL-2.0
/* xdp_frag_guard: drops non-first IPv4 fragments (no L4 header to filter on), lets first
 * fragments through only to allowed ports, and counts fragments per source in a hash. */
#include "corpus.h"

struct frag_key {
	__u32 saddr;
	__u16 id;
	__u16 first;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct frag_key);
	__type(value, __u32);
} frags SEC(".maps");

SEC("xdp")
int xdp_frag_filter(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct frag_key key = {};
	struct ethhdr *eth;
	struct iphdr *iph;
	struct udphdr *udph;
	__u32 one = 1, *cnt;
	__u16 frag;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) < 0)
		return XDP_DROP;
	frag = bpf_ntohs(iph->frag_off);
	if (!(frag & (IP_MF | IP_OFFSET)))
		return XDP_PASS;
	key.saddr = iph->saddr;
	key.id = iph->id;
	key.first = (frag & IP_OFFSET) == 0;
	cnt = bpf_map_lookup_elem(&frags, &key);
	if (cnt)
		*cnt += 1;
	else
		bpf_map_update_elem(&frags, &key, &one, BPF_ANY);
	if (!key.first)
		return XDP_DROP;
	if (iph->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (parse_udphdr(&nh, data_end, &udph) < 0)
		return XDP_DROP;
	return udph->dest == bpf_htons(53) ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
