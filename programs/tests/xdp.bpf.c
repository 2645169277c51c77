// SPDX-License-Identifier: GPL-2.0
/*
 * xdp.bpf.c - XDP section kinds and the XDP packet-shaping helpers.
 *
 * Exercises:
 *   - two programs in one SEC("xdp") section (xdp_classify, xdp_ethertype) and SEC("xdp.frags")
 *     (xdp_frags_len, loaded with BPF_F_XDP_HAS_FRAGS);
 *   - direct packet access with bounds checks (data/data_end), XDP actions as return values,
 *     writes to the packet (MAC swap before XDP_TX);
 *   - bpf_xdp_adjust_head (xdp_vlan_push: insert an 802.1Q tag in front of the ethertype),
 *     bpf_xdp_adjust_tail (xdp_trim: shrink by 8 then grow by 4 zero bytes),
 *     bpf_xdp_adjust_meta (xdp_meta: 8 bytes of metadata in front of the frame),
 *     bpf_xdp_get_buff_len (xdp_frags_len);
 *   - an array map (xdp_stats) counting returned actions, an array map (xdp_last) with results.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Per-action packet counters: key = XDP action (0..4), value = packets. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} xdp_stats SEC(".maps");

/* Results written by the other programs: see FIXTURES.md for the slot layout. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} xdp_last SEC(".maps");

static __always_inline int count(__u32 action)
{
	__u64 *v = bpf_map_lookup_elem(&xdp_stats, &action);

	if (v)
		__sync_fetch_and_add(v, 1);
	return action;
}

static __always_inline void set_last(__u32 slot, __u64 value)
{
	bpf_map_update_elem(&xdp_last, &slot, &value, BPF_ANY);
}

/*
 * Classify a frame:
 *   shorter than an Ethernet header        -> XDP_ABORTED (0)
 *   IPv4 ethertype, truncated IPv4 header  -> XDP_DROP    (1)
 *   IPv4/TCP to port 80                    -> XDP_PASS    (2)
 *   IPv4/UDP                               -> XDP_TX      (3), MAC addresses swapped
 *   anything else                          -> XDP_PASS    (2)
 */
SEC("xdp")
int xdp_classify(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;

	if ((void *)(eth + 1) > data_end)
		return count(XDP_ABORTED);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return count(XDP_PASS);

	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return count(XDP_DROP);

	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)iph + iph->ihl * 4;

		if ((void *)(tcp + 1) > data_end)
			return count(XDP_DROP);
		return count(tcp->dest == bpf_htons(80) ? XDP_PASS : XDP_DROP);
	}
	if (iph->protocol == IPPROTO_UDP) {
		unsigned char tmp[ETH_ALEN];

		__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
		__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
		return count(XDP_TX);
	}
	return count(XDP_PASS);
}

/*
 * Second program in the same "xdp" section: record the outer ethertype (host order) in
 * xdp_last[0]; drop 802.1Q-tagged frames, pass everything else.
 */
SEC("xdp")
int xdp_ethertype(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	proto = bpf_ntohs(eth->h_proto);
	set_last(0, proto);
	return proto == ETH_P_8021Q ? XDP_DROP : XDP_PASS;
}

/* Frags-aware program: xdp_last[1] = bpf_xdp_get_buff_len(), xdp_last[2] = linear length. */
SEC("xdp.frags")
int xdp_frags_len(struct xdp_md *ctx)
{
	__u64 total = bpf_xdp_get_buff_len(ctx);
	__u64 linear = ctx->data_end - ctx->data;

	set_last(1, total);
	set_last(2, linear);
	return total >= linear ? XDP_PASS : XDP_ABORTED;
}

/*
 * bpf_xdp_adjust_head(-4): make room for a VLAN tag, move the two MAC addresses to the new
 * start and write TPID 0x8100, TCI 0x0064 (VID 100). For packets/ipv4_udp.bin the output
 * frame is byte-for-byte packets/vlan_ipv4_udp.bin. Returns XDP_PASS, or XDP_ABORTED if the
 * helper fails or the frame is shorter than an Ethernet header.
 */
SEC("xdp")
int xdp_vlan_push(struct xdp_md *ctx)
{
	void *data, *data_end;
	unsigned char macs[2 * ETH_ALEN];
	__be16 *tag;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(macs, data, sizeof(macs));

	if (bpf_xdp_adjust_head(ctx, -4))
		return XDP_ABORTED;

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN + 4 > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, macs, sizeof(macs));
	tag = data + 2 * ETH_ALEN;
	tag[0] = bpf_htons(ETH_P_8021Q);
	tag[1] = bpf_htons(100);
	return XDP_PASS;
}

/*
 * bpf_xdp_adjust_tail(-8) then bpf_xdp_adjust_tail(+4): the frame loses its last 8 bytes and
 * gains 4 zero bytes (the kernel clears grown tail room). xdp_last[3] = final length.
 * Returns XDP_PASS, XDP_DROP if the frame is too short (< 22 bytes), XDP_ABORTED on error.
 */
SEC("xdp")
int xdp_trim(struct xdp_md *ctx)
{
	if (ctx->data_end - ctx->data < 22)
		return XDP_DROP;
	if (bpf_xdp_adjust_tail(ctx, -8))
		return XDP_ABORTED;
	if (bpf_xdp_adjust_tail(ctx, 4))
		return XDP_ABORTED;
	set_last(3, ctx->data_end - ctx->data);
	return XDP_PASS;
}

/*
 * bpf_xdp_adjust_meta(-8): reserve 8 bytes of metadata and store 0x1122334455667788 in it
 * (host byte order). Returns XDP_PASS when data - data_meta == 8 afterwards.
 */
SEC("xdp")
int xdp_meta(struct xdp_md *ctx)
{
	void *data, *meta;
	__u64 *m;

	if (bpf_xdp_adjust_meta(ctx, -8))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	meta = (void *)(long)ctx->data_meta;
	m = meta;
	if ((void *)(m + 1) > data)
		return XDP_ABORTED;
	*m = 0x1122334455667788ULL;
	return data - meta == 8 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
