// SPDX-License-Identifier: GPL-2.0
/*
 * tcx_sections.bpf.c - the newer traffic-control section spellings, all
 * BPF_PROG_TYPE_SCHED_CLS: SEC("tc/ingress"), SEC("tcx/ingress"), SEC("tcx/egress")
 * (expected_attach_type BPF_TCX_INGRESS / BPF_TCX_EGRESS with libbpf >= 1.3).
 * The libbpf 1.1 inside bpftool 7.1 does not know these names, so the kernel check loads
 * this object with `bpftool prog loadall ... type tc`.
 *
 * Exercises TCX_* return codes (TCX_NEXT = -1 is 0xffffffff as a 32-bit test-run retval),
 * reading and writing __sk_buff->mark, __sk_buff->len, and an array map.
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

/* tcx return codes (linux/bpf.h >= 6.6); defined here for older uapi headers. */
#ifndef TCX_NEXT
#define TCX_NEXT	-1
#define TCX_PASS	0
#define TCX_DROP	2
#define TCX_REDIRECT	7
#endif

/* tc_bytes[0] += skb->len (tcx/egress), tc_bytes[1] = skb->mark seen by tc/ingress. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} tc_bytes SEC(".maps");

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

/* SEC("tc/ingress"): record skb->mark in tc_bytes[1], set mark 0x42, return TC_ACT_OK. */
SEC("tc/ingress")
int tc_ingress_mark(struct __sk_buff *skb)
{
	__u32 key = 1;
	__u64 mark = skb->mark;

	bpf_map_update_elem(&tc_bytes, &key, &mark, BPF_ANY);
	skb->mark = 0x42;
	return TC_ACT_OK;
}

/* SEC("tcx/ingress"): UDP to port 53 -> TCX_DROP (2), else TCX_NEXT (-1). */
SEC("tcx/ingress")
int tcx_ingress_dns(struct __sk_buff *skb)
{
	return ipv4_dport(skb, IPPROTO_UDP) == 53 ? TCX_DROP : TCX_NEXT;
}

/* SEC("tcx/egress"): tc_bytes[0] += skb->len, return TCX_PASS (0). */
SEC("tcx/egress")
int tcx_egress_count(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *bytes = bpf_map_lookup_elem(&tc_bytes, &key);

	if (bytes)
		__sync_fetch_and_add(bytes, skb->len);
	return TCX_PASS;
}

char LICENSE[] SEC("license") = "GPL";
