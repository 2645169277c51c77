// SPDX-License-Identifier: GPL-2.0
/* xdp_arp_guard: ARP spoofing protection: ARP replies are checked against a static binding
 * table (IPv4 -> MAC); replies for bound addresses with another MAC, and gratuitous replies
 * from unknown senders, are dropped. Requests pass and are counted by sender. */
#include "corpus.h"

struct arp_eth {
	__be16 ar_hrd;
	__be16 ar_pro;
	__u8 ar_hln;
	__u8 ar_pln;
	__be16 ar_op;
	__u8 ar_sha[ETH_ALEN];
	__u8 ar_sip[4];
	__u8 ar_tha[ETH_ALEN];
	__u8 ar_tip[4];
};

struct mac {
	__u8 addr[ETH_ALEN];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct mac);
} arp_bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} arp_requests SEC(".maps");

SEC("xdp")
int xdp_arp_guard_func(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct arp_eth *arp;
	struct mac *bound;
	__u32 sip;
	__u64 one = 1, *cnt;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_ARP))
		return XDP_PASS;
	arp = nh.pos;
	if ((void *)(arp + 1) > data_end)
		return XDP_DROP;
	if (arp->ar_hrd != bpf_htons(1) || arp->ar_pro != bpf_htons(ETH_P_IP))
		return XDP_DROP;
	__builtin_memcpy(&sip, arp->ar_sip, 4);
	if (arp->ar_op == bpf_htons(1)) {
		cnt = bpf_map_lookup_elem(&arp_requests, &sip);
		if (cnt)
			*cnt += 1;
		else
			bpf_map_update_elem(&arp_requests, &sip, &one, BPF_ANY);
		return XDP_PASS;
	}
	bound = bpf_map_lookup_elem(&arp_bindings, &sip);
	if (!bound)
		return XDP_DROP;
	if (__builtin_memcmp(bound->addr, arp->ar_sha, ETH_ALEN))
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
