// SPDX-License-Identifier: GPL-2.0
/* cgroup_skb_fw: per-cgroup firewall and accounting (systemd's IPAddressDeny= / restrict-ifaces
 * style): egress to blocked destinations (an LPM trie) is denied (return 0), ingress bytes are
 * accounted per protocol. cgroup_skb programs see the packet from the network header on. */
#include "corpus.h"

struct ip4_lpm {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 128);
	__type(key, struct ip4_lpm);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} deny_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} ingress_bytes SEC(".maps");

SEC("cgroup_skb/egress")
int cgroup_egress_deny(struct __sk_buff *skb)
{
	struct ip4_lpm key = { .prefixlen = 32 };
	struct iphdr iph;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)))
		return 1;
	key.addr = iph.daddr;
	return bpf_map_lookup_elem(&deny_dst, &key) ? 0 : 1;
}

SEC("cgroup_skb/ingress")
int cgroup_ingress_account(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct iphdr *iph = data;
	__u32 proto = 0;
	__u64 *bytes;

	if (skb->protocol == bpf_htons(ETH_P_IP) && (void *)(iph + 1) <= data_end)
		proto = iph->protocol;
	bytes = bpf_map_lookup_elem(&ingress_bytes, &proto);
	if (bytes)
		__sync_fetch_and_add(bytes, skb->len);
	return 1;
}

char _license[] SEC("license") = "GPL";
