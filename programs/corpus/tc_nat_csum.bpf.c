// SPDX-License-Identifier: GPL-2.0
/* tc_nat_csum: DNAT in tc the way Cilium's lb does it: the destination address and port are
 * rewritten with bpf_skb_store_bytes, and the checksums fixed with bpf_l3_csum_replace and
 * bpf_l4_csum_replace (BPF_F_PSEUDO_HDR for the address in the L4 pseudo-header,
 * BPF_F_MARK_MANGLED_0 for UDP's optional checksum). */
#include "corpus.h"

#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define TCP_DPORT_OFF (ETH_HLEN + sizeof(struct iphdr) + offsetof(struct tcphdr, dest))
#define TCP_CSUM_OFF (ETH_HLEN + sizeof(struct iphdr) + offsetof(struct tcphdr, check))
#define UDP_DPORT_OFF (ETH_HLEN + sizeof(struct iphdr) + offsetof(struct udphdr, dest))
#define UDP_CSUM_OFF (ETH_HLEN + sizeof(struct iphdr) + offsetof(struct udphdr, check))

struct svc_key {
	__u32 addr;
	__u16 port;
	__u16 proto;
};

struct svc_target {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct svc_key);
	__type(value, struct svc_target);
} services SEC(".maps");

SEC("tc/ingress")
int tc_dnat(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + ETH_HLEN;
	struct svc_key key = {};
	struct svc_target *t;
	__be16 *ports;
	__u32 old_addr;
	__u16 old_port;
	int csum_off, port_off, flags;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (iph->ihl != 5 || (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP))
		return TC_ACT_OK;
	ports = (void *)(iph + 1);
	if ((void *)(ports + 2) > data_end)
		return TC_ACT_OK;
	key.addr = iph->daddr;
	key.port = ports[1];
	key.proto = iph->protocol;
	t = bpf_map_lookup_elem(&services, &key);
	if (!t)
		return TC_ACT_OK;
	old_addr = iph->daddr;
	old_port = ports[1];
	if (key.proto == IPPROTO_TCP) {
		csum_off = TCP_CSUM_OFF;
		port_off = TCP_DPORT_OFF;
		flags = 0;
	} else {
		csum_off = UDP_CSUM_OFF;
		port_off = UDP_DPORT_OFF;
		flags = BPF_F_MARK_MANGLED_0;
	}
	if (bpf_l4_csum_replace(skb, csum_off, old_addr, t->addr, flags | BPF_F_PSEUDO_HDR | 4))
		return TC_ACT_SHOT;
	if (bpf_l4_csum_replace(skb, csum_off, old_port, t->port, flags | 2))
		return TC_ACT_SHOT;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, t->addr, 4))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, IP_DST_OFF, &t->addr, 4, 0))
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, port_off, &t->port, 2, 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
