// SPDX-License-Identifier: GPL-2.0
/*
 * tc_sections.bpf.c - the classic traffic-control section names:
 *   SEC("tc") and SEC("classifier") -> BPF_PROG_TYPE_SCHED_CLS,
 *   SEC("action")                   -> BPF_PROG_TYPE_SCHED_ACT.
 * (The newer spellings tc/ingress, tcx/ingress and tcx/egress are in tcx_sections.bpf.c.)
 *
 * Exercises direct packet access on __sk_buff (data/data_end), __sk_buff->protocol and
 * TC_ACT_* return codes including a negative one (TC_ACT_UNSPEC = -1, seen as 0xffffffff in
 * the 32-bit test-run retval).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Returns the L4 destination port (host order) of an IPv4 TCP/UDP frame, else -1. */
static __always_inline int ipv4_dport(struct __sk_buff *skb, __u8 want_proto)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct udphdr *l4;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	if (iph->protocol != want_proto || iph->ihl != 5)
		return -1;
	l4 = (void *)(iph + 1);	/* tcp->dest and udp->dest share offset 2 */
	if ((void *)(l4 + 1) > data_end)
		return -1;
	return bpf_ntohs(l4->dest);
}

/* SEC("tc"): drop TCP to port 80 (TC_ACT_SHOT = 2), accept the rest (TC_ACT_OK = 0). */
SEC("tc")
int tc_drop_http(struct __sk_buff *skb)
{
	return ipv4_dport(skb, IPPROTO_TCP) == 80 ? TC_ACT_SHOT : TC_ACT_OK;
}

/* SEC("classifier"): ARP -> TC_ACT_OK (0), everything else TC_ACT_UNSPEC (-1). */
SEC("classifier")
int cls_arp_only(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_ARP) ? TC_ACT_OK : TC_ACT_UNSPEC;
}

/* SEC("action"): BPF_PROG_TYPE_SCHED_ACT, returns TC_ACT_PIPE (3) for IPv6, TC_ACT_OK else. */
SEC("action")
int act_ipv6_pipe(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_IPV6) ? TC_ACT_PIPE : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
