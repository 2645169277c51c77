// SPDX-License-Identifier: GPL-2.0
/* tc_tailcall_chain: a Cilium-style pipeline of tail calls on tc: the entry program tail-calls
 * stage 1 (parse), which tail-calls stage 2 (policy); each stage stores its progress in the
 * skb's control block (skb->cb), and a chain that reaches an empty slot falls back. */
#include "corpus.h"

enum { STAGE_PARSE = 0, STAGE_POLICY = 1, STAGE_MISSING = 2 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stage_runs SEC(".maps");

static __always_inline void ran(__u32 stage)
{
	__u64 *v = bpf_map_lookup_elem(&stage_runs, &stage);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tc")
int stage_policy(struct __sk_buff *skb)
{
	ran(STAGE_POLICY);
	if (skb->cb[0] == IPPROTO_TCP && skb->cb[1] == 22)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

SEC("tc")
int stage_parse(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} tc_stages SEC(".maps") = {
	.values = {
		[STAGE_PARSE] = (void *)&stage_parse,
		[STAGE_POLICY] = (void *)&stage_policy,
	},
};

SEC("tc")
int stage_parse(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	__be16 *ports;
	int proto;

	ran(STAGE_PARSE);
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto < 0)
		return TC_ACT_SHOT;
	skb->cb[0] = proto;
	ports = nh.pos;
	if ((void *)(ports + 2) <= data_end)
		skb->cb[1] = bpf_ntohs(ports[1]);
	bpf_tail_call(skb, &tc_stages, STAGE_POLICY);
	return TC_ACT_SHOT;
}

SEC("tc")
int tc_entry(struct __sk_buff *skb)
{
	skb->cb[0] = 0;
	skb->cb[1] = 0;
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		bpf_tail_call(skb, &tc_stages, STAGE_MISSING);
		ran(3);
		return TC_ACT_OK;
	}
	bpf_tail_call(skb, &tc_stages, STAGE_PARSE);
	return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
