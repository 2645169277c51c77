// SPDX-License-Identifier: GPL-2.0
/* xdp_ddos_syn: a SYN-flood dropper. Counts SYNs per source in an LRU hash and drops a
 * source once it passes a threshold set from user space (.rodata); other TCP flags pass.
 * UDP amplification sources (port 19, 123, 1900) are dropped outright. */
#include "corpus.h"

const volatile __u64 syn_threshold = 2;
const volatile __u32 drop_udp_amplifiers = 1;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} syn_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} ddos_stats SEC(".maps");

static __always_inline void stat(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&ddos_stats, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int xdp_ddos(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *tcph;
	struct udphdr *udph;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto == IPPROTO_TCP) {
		__u64 one = 1, *cnt;

		if (parse_tcphdr(&nh, data_end, &tcph) < 0)
			return XDP_DROP;
		if (!tcph->syn || tcph->ack)
			return XDP_PASS;
		cnt = bpf_map_lookup_elem(&syn_count, &iph->saddr);
		if (!cnt) {
			bpf_map_update_elem(&syn_count, &iph->saddr, &one, BPF_NOEXIST);
			stat(0);
			return XDP_PASS;
		}
		*cnt += 1;
		if (*cnt > syn_threshold) {
			stat(1);
			return XDP_DROP;
		}
		stat(0);
		return XDP_PASS;
	}
	if (proto == IPPROTO_UDP && drop_udp_amplifiers) {
		__u16 sport;

		if (parse_udphdr(&nh, data_end, &udph) < 0)
			return XDP_DROP;
		sport = bpf_ntohs(udph->source);
		if (sport == 19 || sport == 123 || sport == 1900) {
			stat(2);
			return XDP_DROP;
		}
	}
	stat(3);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
