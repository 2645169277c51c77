// SPDX-License-Identifier: GPL-2.0
/* xdp_pkt_counter: the classic xdp1/xdp_stats sample: per-CPU packet and byte counters by
 * IP protocol (per-CPU array) and by ethertype (per-CPU hash). */
#include "corpus.h"

struct datarec {
	__u64 rx_packets;
	__u64 rx_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct datarec);
} rxcnt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u64);
} ethertypes SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct datarec *rec;
	__u32 ipproto = 0;
	__u16 etype;
	__u64 *cnt, one = 1;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto < 0)
		return XDP_DROP;
	etype = bpf_ntohs(proto);
	cnt = bpf_map_lookup_elem(&ethertypes, &etype);
	if (cnt)
		*cnt += 1;
	else
		bpf_map_update_elem(&ethertypes, &etype, &one, BPF_ANY);

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph;

		if (parse_iphdr(&nh, data_end, &iph) >= 0)
			ipproto = iph->protocol;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h;

		if (parse_ip6hdr(&nh, data_end, &ip6h) >= 0)
			ipproto = ip6h->nexthdr;
	}
	rec = bpf_map_lookup_elem(&rxcnt, &ipproto);
	if (!rec)
		return XDP_ABORTED;
	rec->rx_packets++;
	rec->rx_bytes += data_end - data;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
