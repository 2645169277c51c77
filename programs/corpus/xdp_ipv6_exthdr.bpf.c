// SPDX-License-Identifier: GPL-2.0
/* xdp_ipv6_exthdr: walks the IPv6 extension header chain (hop-by-hop, routing, fragment,
 * destination options, AH) to the upper-layer protocol, as ipv6 filters in public XDP
 * firewalls do; drops routing header type 0 (RFC 5095) and counts upper-layer protocols. */
#include "corpus.h"

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60

struct frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} l4_protos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} ext_stats SEC(".maps");

static __always_inline void bump(void *map, __u32 key)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* Returns the upper-layer protocol, -1 when truncated, -2 for a forbidden header. */
static __always_inline int skip_ip6hdrext(struct hdr_cursor *nh, void *data_end, __u8 next_hdr_type)
{
	int i;

#pragma unroll
	for (i = 0; i < IPV6_EXT_MAX_CHAIN; ++i) {
		struct ipv6_opt_hdr *hdr = nh->pos;

		if ((void *)(hdr + 1) > data_end)
			return -1;
		switch (next_hdr_type) {
		case NEXTHDR_HOP:
		case NEXTHDR_DEST:
			bump(&ext_stats, 0);
			nh->pos = (char *)hdr + (hdr->hdrlen + 1) * 8;
			next_hdr_type = hdr->nexthdr;
			break;
		case NEXTHDR_ROUTING: {
			__u8 *rtype = (__u8 *)hdr + 2;

			if ((void *)(rtype + 1) > data_end)
				return -1;
			if (*rtype == 0)
				return -2;
			bump(&ext_stats, 1);
			nh->pos = (char *)hdr + (hdr->hdrlen + 1) * 8;
			next_hdr_type = hdr->nexthdr;
			break;
		}
		case NEXTHDR_AUTH:
			nh->pos = (char *)hdr + (hdr->hdrlen + 2) * 4;
			next_hdr_type = hdr->nexthdr;
			break;
		case NEXTHDR_FRAGMENT: {
			struct frag_hdr *fh = nh->pos;

			if ((void *)(fh + 1) > data_end)
				return -1;
			bump(&ext_stats, 2);
			nh->pos = fh + 1;
			next_hdr_type = fh->nexthdr;
			break;
		}
		default:
			return next_hdr_type;
		}
	}
	return next_hdr_type;
}

SEC("xdp")
int xdp_ipv6_ext(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	int nexthdr;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	nexthdr = parse_ip6hdr(&nh, data_end, &ip6h);
	if (nexthdr < 0)
		return XDP_DROP;
	nexthdr = skip_ip6hdrext(&nh, data_end, nexthdr);
	if (nexthdr == -2) {
		bump(&ext_stats, 3);
		return XDP_DROP;
	}
	if (nexthdr < 0)
		return XDP_ABORTED;
	bump(&l4_protos, nexthdr & 0xff);
	if (nexthdr == IPPROTO_TCP) {
		struct tcphdr *tcph;

		if (parse_tcphdr(&nh, data_end, &tcph) < 0)
			return XDP_DROP;
		return tcph->dest == bpf_htons(443) ? XDP_TX : XDP_PASS;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
