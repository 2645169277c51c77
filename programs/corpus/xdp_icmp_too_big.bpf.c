// SPDX-License-Identifier: GPL-2.0
/* xdp_icmp_too_big: the kernel sample xdp_adjust_tail_kern.c: IPv4 packets longer than a
 * configured MTU are answered with ICMP "fragmentation needed": the frame is cut to its first
 * 98 bytes with bpf_xdp_adjust_tail, a new outer IPv4 + ICMP header is built in front with
 * bpf_xdp_adjust_head, and the frame is sent back (XDP_TX). */
#include "corpus.h"

#define ICMP_TOOBIG_SIZE 98
#define ICMP_TOOBIG_PAYLOAD_SIZE 92

const volatile __u32 max_pcktsz = 128;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} icmpcnt SEC(".maps");

static __always_inline __u16 csum_add_words(void *start, int words, __u64 sum)
{
	__u16 *w = start;
	int i;

#pragma unroll
	for (i = 0; i < 64; i++) {
		if (i >= words)
			break;
		sum += w[i];
	}
	return csum_fold_helper(sum);
}

static __always_inline int send_icmp4_too_big(struct xdp_md *xdp)
{
	int headroom = (int)sizeof(struct iphdr) + (int)sizeof(struct icmphdr);
	void *data, *data_end;
	struct ethhdr *orig_eth, *eth;
	struct iphdr *orig_iph, *iph;
	struct icmphdr *icmp;
	__u32 key = 0;
	__u64 *cnt;

	if (bpf_xdp_adjust_head(xdp, 0 - headroom))
		return XDP_DROP;
	data = (void *)(long)xdp->data;
	data_end = (void *)(long)xdp->data_end;
	if (data + (ICMP_TOOBIG_SIZE + headroom) > data_end)
		return XDP_DROP;
	orig_eth = data + headroom;
	eth = data;
	orig_iph = data + headroom + sizeof(struct ethhdr);
	iph = data + sizeof(struct ethhdr);
	icmp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	__builtin_memcpy(eth->h_dest, orig_eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, orig_eth->h_dest, ETH_ALEN);
	eth->h_proto = orig_eth->h_proto;

	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->un.frag.__unused = 0;
	icmp->un.frag.mtu = bpf_htons(max_pcktsz - sizeof(struct ethhdr));
	icmp->checksum = 0;
	icmp->checksum = csum_add_words(icmp, ICMP_TOOBIG_PAYLOAD_SIZE / 2, 0);

	iph->ihl = 5;
	iph->version = 4;
	iph->tos = 0;
	iph->tot_len = bpf_htons(ICMP_TOOBIG_SIZE + headroom - sizeof(struct ethhdr));
	iph->id = 0;
	iph->frag_off = 0;
	iph->ttl = 64;
	iph->protocol = IPPROTO_ICMP;
	iph->daddr = orig_iph->saddr;
	iph->saddr = orig_iph->daddr;
	iph->check = 0;
	iph->check = csum_add_words(iph, sizeof(*iph) / 2, 0);

	cnt = bpf_map_lookup_elem(&icmpcnt, &key);
	if (cnt)
		*cnt += 1;
	return XDP_TX;
}

SEC("xdp")
int xdp_icmp_too_big(struct xdp_md *xdp)
{
	void *data_end = (void *)(long)xdp->data_end;
	void *data = (void *)(long)xdp->data;
	int pckt_size = data_end - data;
	int offset;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);

	if ((void *)(iph + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (pckt_size <= max_pcktsz || pckt_size < ICMP_TOOBIG_SIZE)
		return XDP_PASS;
	offset = pckt_size - ICMP_TOOBIG_SIZE;
	if (bpf_xdp_adjust_tail(xdp, 0 - offset))
		return XDP_PASS;
	return send_icmp4_too_big(xdp);
}

char _license[] SEC("license") = "GPL";
