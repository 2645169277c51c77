// SPDX-License-Identifier: GPL-2.0
/* xdp_tailcall_dispatch: a protocol dispatcher in the style of Cilium and Suricata's XDP
 * filter: the entry program parses the ethertype/L4 protocol and tail-calls a per-protocol
 * program out of a program array (initialised in the object with .values); a missing slot
 * falls through to the default verdict. */
#include "corpus.h"

enum { PROG_TCP = 0, PROG_UDP = 1, PROG_ICMP = 2, PROG_V6 = 3, PROG_MAX = 8 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROG_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tail_hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&tail_hits, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int handle_tcp(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *tcph;

	hit(PROG_TCP);
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_ABORTED;
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_TCP)
		return XDP_ABORTED;
	if (parse_tcphdr(&nh, data_end, &tcph) < 0)
		return XDP_DROP;
	return tcph->dest == bpf_htons(22) ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int handle_udp(struct xdp_md *ctx)
{
	hit(PROG_UDP);
	return XDP_PASS;
}

SEC("xdp")
int handle_ipv6(struct xdp_md *ctx)
{
	hit(PROG_V6);
	return XDP_TX;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, PROG_MAX);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jmp_table SEC(".maps") = {
	.values = {
		[PROG_TCP] = (void *)&handle_tcp,
		[PROG_UDP] = (void *)&handle_udp,
		[PROG_V6] = (void *)&handle_ipv6,
	},
};

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	int proto;

	proto = parse_ethhdr(&nh, data_end, &eth);
	if (proto == bpf_htons(ETH_P_IPV6)) {
		bpf_tail_call(ctx, &jmp_table, PROG_V6);
		return XDP_ABORTED;
	}
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	switch (parse_iphdr(&nh, data_end, &iph)) {
	case IPPROTO_TCP:
		bpf_tail_call(ctx, &jmp_table, PROG_TCP);
		break;
	case IPPROTO_UDP:
		bpf_tail_call(ctx, &jmp_table, PROG_UDP);
		break;
	case IPPROTO_ICMP:
		bpf_tail_call(ctx, &jmp_table, PROG_ICMP); /* empty slot: falls through */
		hit(7);
		return XDP_PASS;
	default:
		return XDP_PASS;
	}
	return XDP_ABORTED;
}

char _license[] SEC("license") = "GPL";
