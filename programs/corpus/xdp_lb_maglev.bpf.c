// SPDX-License-Identifier: GPL-2.0
/* xdp_lb_maglev: an L4 load balancer with a Maglev-style consistent-hashing ring. VIPs live
 * in a hash (vip, port, proto) -> vip number; each VIP owns RING_SIZE slots of the ring array
 * naming a backend; the flow hash picks the slot. The packet's destination is rewritten to the
 * backend (DNAT with an incremental checksum update) and bounced with XDP_TX. */
#include "corpus.h"

#define RING_SIZE 65537
#define MAX_VIPS 16

struct vip_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

struct vip_meta {
	__u32 vip_num;
	__u32 flags;
};

struct backend {
	__u32 addr;
	__u8 mac[6];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, struct vip_key);
	__type(value, struct vip_meta);
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RING_SIZE * MAX_VIPS);
	__type(key, __u32);
	__type(value, __u32);
} ch_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} backend_pkts SEC(".maps");

/* A jhash-like mix of the 4-tuple (deterministic, no random seed). */
static __always_inline __u32 flow_hash(__u32 saddr, __u32 daddr, __u32 ports)
{
	__u32 a = saddr, b = daddr, c = ports ^ 0xdeadbeef;

	a -= c; a ^= (c << 4) | (c >> 28); c += b;
	b -= a; b ^= (a << 6) | (a >> 26); a += c;
	c -= b; c ^= (b << 8) | (b >> 24); b += a;
	a -= c; a ^= (c << 16) | (c >> 16); c += b;
	b -= a; b ^= (a << 19) | (a >> 13); a += c;
	c -= b; c ^= (b << 4) | (b >> 28); b += a;
	return c;
}

SEC("xdp")
int balancer_ingress(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct vip_key vk = {};
	struct vip_meta *vip;
	struct backend *be;
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 ports, slot, *real, old_daddr;
	__u64 *cnt;
	__be16 *l4;
	int proto;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return XDP_DROP;
	l4 = nh.pos;
	if ((void *)(l4 + 4) > data_end)
		return XDP_DROP;
	vk.addr = iph->daddr;
	vk.port = l4[1];
	vk.proto = proto;
	vip = bpf_map_lookup_elem(&vip_map, &vk);
	if (!vip)
		return XDP_PASS;
	ports = ((__u32)l4[0] << 16) | l4[1];
	slot = vip->vip_num * RING_SIZE + flow_hash(iph->saddr, iph->daddr, ports) % RING_SIZE;
	real = bpf_map_lookup_elem(&ch_ring, &slot);
	if (!real)
		return XDP_DROP;
	be = bpf_map_lookup_elem(&backends, real);
	if (!be || !be->addr)
		return XDP_DROP;
	cnt = bpf_map_lookup_elem(&backend_pkts, real);
	if (cnt)
		*cnt += 1;
	old_daddr = iph->daddr;
	iph->daddr = be->addr;
	csum_replace4(&iph->check, old_daddr, be->addr);
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcph = nh.pos;

		if ((void *)(tcph + 1) > data_end)
			return XDP_DROP;
		csum_replace4(&tcph->check, old_daddr, be->addr);
	} else {
		struct udphdr *udph = nh.pos;

		if ((void *)(udph + 1) > data_end)
			return XDP_DROP;
		if (udph->check)
			csum_replace4(&udph->check, old_daddr, be->addr);
	}
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
