// SPDX-License-Identifier: GPL-2.0
/* tc_port_pool: SNAT source-port allocation from a free list kept in a BPF queue (FIFO), with
 * released ports pushed on a stack (LIFO) for reuse first, as BPF NAT implementations keep
 * port pools. The first packet fills the pool (ports 30000-30002; user space usually does,
 * see README); TCP SYNs take a port (stack first, then queue) and rewrite the source port; FIN
 * or RST release it. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 64);
	__uint(value_size, sizeof(__u16));
} free_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 64);
	__uint(value_size, sizeof(__u16));
} released_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} pool_stats SEC(".maps");

__u32 pool_ready;

static __always_inline void fill_pool(void)
{
	__u16 p;
	int i;

	if (pool_ready)
		return;
	pool_ready = 1;
#pragma unroll
	for (i = 0; i < 3; i++) {
		p = 30000 + i;
		bpf_map_push_elem(&free_ports, &p, BPF_ANY);
	}
}

SEC("tc")
int tc_snat_port(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)skb->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *tcph;
	__u32 key;
	__u32 *stat;
	__u16 port;
	__be16 nport;

	fill_pool();
	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_TCP)
		return TC_ACT_OK;
	if (parse_tcphdr(&nh, data_end, &tcph) < 0)
		return TC_ACT_SHOT;
	if (tcph->fin || tcph->rst) {
		port = bpf_ntohs(tcph->source);
		key = bpf_map_push_elem(&released_ports, &port, 0) ? 3 : 2;
	} else if (tcph->syn && !tcph->ack) {
		if (bpf_map_pop_elem(&released_ports, &port) && bpf_map_pop_elem(&free_ports, &port))
			return TC_ACT_SHOT;
		nport = bpf_htons(port);
		csum_replace2(&tcph->check, tcph->source, nport);
		tcph->source = nport;
		key = 0;
	} else {
		key = 1;
	}
	stat = bpf_map_lookup_elem(&pool_stats, &key);
	if (stat)
		__sync_fetch_and_add(stat, 1);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
