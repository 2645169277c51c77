// SPDX-License-Identifier: GPL-2.0
/* lwt_policy: light-weight tunnel programs (ip route ... encap bpf in/out/xmit), as in the
 * kernel's test_lwt_bpf: lwt_in drops packets to a blackholed destination, lwt_out counts by
 * protocol, and lwt_xmit pushes an IPIP header with bpf_skb_change_head for one destination.
 * LWT programs see the packet from the network header on. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} lwt_proto_pkts SEC(".maps");

SEC("lwt_in")
int lwt_blackhole(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = (void *)(long)skb->data;

	if ((void *)(iph + 1) > data_end)
		return BPF_OK;
	return iph->daddr == bpf_htonl(0x08080808) ? BPF_DROP : BPF_OK;
}

SEC("lwt_out")
int lwt_count(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = (void *)(long)skb->data;
	__u32 proto = 0;
	__u64 *cnt;

	if ((void *)(iph + 1) <= data_end && iph->version == 4)
		proto = iph->protocol;
	cnt = bpf_map_lookup_elem(&lwt_proto_pkts, &proto);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return BPF_OK;
}

SEC("lwt_xmit")
int lwt_ipip(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = (void *)(long)skb->data;
	struct iphdr outer;
	__u64 csum = 0;
	__u16 *w;
	int i;

	if ((void *)(iph + 1) > data_end || iph->version != 4)
		return BPF_OK;
	if (iph->daddr != bpf_htonl(VIP4))
		return BPF_OK;
	outer = *iph;
	outer.ihl = 5;
	outer.protocol = IPPROTO_IPIP;
	outer.tot_len = bpf_htons(skb->len + sizeof(outer));
	outer.saddr = bpf_htonl(0xc0000232);
	outer.daddr = bpf_htonl(BACKEND4);
	outer.check = 0;
	w = (__u16 *)&outer;
#pragma unroll
	for (i = 0; i < (int)sizeof(outer) / 2; i++)
		csum += w[i];
	outer.check = csum_fold_helper(csum);
	if (bpf_skb_change_head(skb, sizeof(outer), 0))
		return BPF_DROP;
	if (bpf_skb_store_bytes(skb, 0, &outer, sizeof(outer), 0))
		return BPF_DROP;
	return BPF_LWT_REROUTE;
}

char _license[] SEC("license") = "GPL";
