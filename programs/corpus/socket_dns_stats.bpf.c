// SPDX-License-Identifier: GPL-2.0
/* socket_dns_stats: a passive DNS monitor on a packet socket: UDP/53 queries (IPv4 and IPv6)
 * are parsed with bpf_skb_load_bytes and counted by QTYPE in a hash; the filter keeps the
 * whole frame for DNS (-1 snap length) and nothing else. */
#include "corpus.h"

struct dnshdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u64);
} qtypes SEC(".maps");

SEC("socket")
int dns_monitor(struct __sk_buff *skb)
{
	struct dnshdr dns;
	struct udphdr udp;
	__u8 name[32];
	__u16 qtype;
	__u64 one = 1, *cnt;
	__u32 off, i;
	__u8 proto, ihl_byte;
	__be16 etype;

	if (bpf_skb_load_bytes(skb, 12, &etype, 2))
		return 0;
	if (etype == bpf_htons(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 9, &proto, 1) ||
		    bpf_skb_load_bytes(skb, ETH_HLEN, &ihl_byte, 1))
			return 0;
		off = ETH_HLEN + (ihl_byte & 0xf) * 4;
	} else if (etype == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 6, &proto, 1))
			return 0;
		off = ETH_HLEN + 40;
	} else {
		return 0;
	}
	if (proto != IPPROTO_UDP)
		return 0;
	if (bpf_skb_load_bytes(skb, off, &udp, sizeof(udp)))
		return 0;
	if (udp.dest != bpf_htons(53))
		return 0;
	off += sizeof(udp);
	if (bpf_skb_load_bytes(skb, off, &dns, sizeof(dns)))
		return 0;
	off += sizeof(dns);
	if (bpf_skb_load_bytes(skb, off, name, sizeof(name)))
		return 0;
	for (i = 0; i < sizeof(name); i++) {
		if (name[i] == 0)
			break;
	}
	if (i >= sizeof(name) - 2)
		return 0;
	off += i + 1;
	if (bpf_skb_load_bytes(skb, off, &qtype, 2))
		return 0;
	qtype = bpf_ntohs(qtype);
	cnt = bpf_map_lookup_elem(&qtypes, &qtype);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&qtypes, &qtype, &one, BPF_NOEXIST);
	return -1;
}

char _license[] SEC("license") = "GPL";
