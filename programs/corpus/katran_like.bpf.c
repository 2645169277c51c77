// SPDX-License-Identifier: GPL-2.0
/* katran_like: the map shapes of katran's balancer_ingress (a 33,554,944-slot consistent
 * hashing ring, 16,777,214-entry reals and LRU connection table sizes), with its IPIP
 * encapsulation towards the chosen real: bpf_xdp_adjust_head grows the frame by an outer IPv4
 * header whose checksum is computed in the program. */
#include "corpus.h"

#define CH_RINGS_SIZE 33554944
#define MAX_REALS 16777214
#define RING_SIZE 65537

struct vip_definition {
	__u32 vip;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct vip_meta {
	__u32 flags;
	__u32 vip_num;
};

struct real_definition {
	__u32 dst;
	__u32 flags;
};

struct flow_key {
	__u32 src;
	__u32 dst;
	__u16 port16[2];
	__u8 proto;
	__u8 pad[3];
};

struct real_pos_lru {
	__u32 pos;
	__u32 pad;
	__u64 atime;
};

struct lb_stats {
	__u64 v1;
	__u64 v2;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct vip_definition);
	__type(value, struct vip_meta);
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CH_RINGS_SIZE);
	__type(key, __u32);
	__type(value, __u32);
} ch_rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_REALS);
	__type(key, __u32);
	__type(value, struct real_definition);
} reals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1000000);
	__type(key, struct flow_key);
	__type(value, struct real_pos_lru);
} lru_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct lb_stats);
} stats SEC(".maps");

static __always_inline __u32 hash3(__u32 a, __u32 b, __u32 c)
{
	a += 0x9e3779b9; b += 0x9e3779b9; c ^= 0x12345678;
	c ^= b; c -= (b << 14) | (b >> 18);
	a ^= c; a -= (c << 11) | (c >> 21);
	b ^= a; b -= (a << 25) | (a >> 7);
	c ^= b; c -= (b << 16) | (b >> 16);
	return c;
}

static __always_inline int encap_ipip(struct xdp_md *ctx, __u32 saddr, __u32 daddr, __u16 inner_len)
{
	void *data, *data_end;
	struct ethhdr *new_eth, *old_eth;
	struct iphdr *outer;
	__u64 csum = 0;
	__u16 *w;
	int i;

	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	new_eth = data;
	old_eth = data + sizeof(struct iphdr);
	outer = data + sizeof(struct ethhdr);
	if ((void *)(outer + 1) > data_end || (void *)(old_eth + 1) > data_end)
		return -1;
	__builtin_memcpy(new_eth->h_dest, old_eth->h_source, ETH_ALEN);
	__builtin_memcpy(new_eth->h_source, old_eth->h_dest, ETH_ALEN);
	new_eth->h_proto = bpf_htons(ETH_P_IP);
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
	outer->id = 0;
	outer->frag_off = 0;
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = saddr;
	outer->daddr = daddr;
	w = (__u16 *)outer;
#pragma unroll
	for (i = 0; i < (int)sizeof(struct iphdr) / 2; i++)
		csum += w[i];
	outer->check = csum_fold_helper(csum);
	return 0;
}

SEC("xdp")
int balancer_ingress(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct vip_definition vd = {};
	struct flow_key fk = {};
	struct real_pos_lru *cached, fresh = {};
	struct real_definition *real;
	struct vip_meta *vip;
	struct lb_stats *st;
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 key, *pos, stat_key = 0;
	__u16 *ports, inner_len;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	ports = nh.pos;
	if ((void *)(ports + 2) > data_end)
		return XDP_DROP;
	vd.vip = iph->daddr;
	vd.port = ports[1];
	vd.proto = proto;
	vip = bpf_map_lookup_elem(&vip_map, &vd);
	if (!vip)
		return XDP_PASS;
	st = bpf_map_lookup_elem(&stats, &stat_key);
	if (st) {
		st->v1 += 1;
		st->v2 += data_end - (void *)(long)ctx->data;
	}
	fk.src = iph->saddr;
	fk.dst = iph->daddr;
	fk.port16[0] = ports[0];
	fk.port16[1] = ports[1];
	fk.proto = proto;
	cached = bpf_map_lookup_elem(&lru_cache, &fk);
	if (cached) {
		key = cached->pos;
	} else {
		key = vip->vip_num * RING_SIZE + hash3(fk.src, fk.dst, *(__u32 *)fk.port16) % RING_SIZE;
		pos = bpf_map_lookup_elem(&ch_rings, &key);
		if (!pos)
			return XDP_DROP;
		key = *pos;
		fresh.pos = key;
		bpf_map_update_elem(&lru_cache, &fk, &fresh, BPF_ANY);
	}
	real = bpf_map_lookup_elem(&reals, &key);
	if (!real || !real->dst)
		return XDP_DROP;
	inner_len = bpf_ntohs(iph->tot_len);
	if (encap_ipip(ctx, bpf_htonl(0x0a000001), real->dst, inner_len))
		return XDP_DROP;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
