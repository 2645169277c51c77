// SPDX-License-Identifier: GPL-2.0
/*
 * cgroup.bpf.c - cgroup-attached program kinds.
 *
 * Sections / program types:
 *   SEC("cgroup_skb/ingress") BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS  cg_ingress
 *   SEC("cgroup_skb/egress")  BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS   cg_egress
 *   SEC("cgroup/connect4")    BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT
 *   SEC("cgroup/sock_create") BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE
 * The two cgroup_skb programs can be test-run: like socket filters, they see the skb from
 * the network header on (skb->len = len(data_in) - 14) and return 1 (allow) or 0 (drop).
 * connect4 and sock_create cannot be test-run here; they verify and load.
 *
 * Helpers / features: bpf_skb_load_bytes on a cgroup skb, __sk_buff->len/protocol,
 * writing bpf_sock_addr->user_ip4/user_port, writing bpf_sock->mark/priority, a
 * per-program counter map (cg_stats).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef SOCK_RAW
#define SOCK_RAW 3
#endif

/*
 * cg_stats slots: 0 ingress packets, 1 ingress bytes, 2 egress packets, 3 egress bytes,
 *                 4 connect4 calls, 5 connect4 rewrites, 6 sock_create calls.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 7);
	__type(key, __u32);
	__type(value, __u64);
} cg_stats SEC(".maps");

static __always_inline void add(__u32 slot, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&cg_stats, &slot);

	if (p)
		__sync_fetch_and_add(p, v);
}

/* Drop IPv4/UDP datagrams to port 53, allow everything else. */
SEC("cgroup_skb/ingress")
int cg_ingress(struct __sk_buff *skb)
{
	struct iphdr iph;
	struct udphdr udp;

	add(0, 1);
	add(1, skb->len);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)) || iph.protocol != IPPROTO_UDP)
		return 1;
	if (bpf_skb_load_bytes(skb, iph.ihl * 4, &udp, sizeof(udp)))
		return 1;
	return udp.dest == bpf_htons(53) ? 0 : 1;
}

/* Count and allow everything. */
SEC("cgroup_skb/egress")
int cg_egress(struct __sk_buff *skb)
{
	add(2, 1);
	add(3, skb->len);
	return 1;
}

/*
 * connect() to 10.1.2.3:8080 is rewritten to 127.0.0.1:80; connect() to port 23 is
 * refused (return 0 -> EPERM in the caller); everything else is allowed unchanged.
 */
SEC("cgroup/connect4")
int cg_connect4(struct bpf_sock_addr *ctx)
{
	add(4, 1);
	if (ctx->user_port == bpf_htons(23))
		return 0;
	if (ctx->user_ip4 == bpf_htonl(0x0a010203) && ctx->user_port == bpf_htons(8080)) {
		ctx->user_ip4 = bpf_htonl(0x7f000001);
		ctx->user_port = bpf_htons(80);
		add(5, 1);
	}
	return 1;
}

/* Refuse raw sockets; tag every other new socket with mark 0x1234 and priority 6. */
SEC("cgroup/sock_create")
int cg_sock_create(struct bpf_sock *sk)
{
	add(6, 1);
	if (sk->type == SOCK_RAW)
		return 0;
	sk->mark = 0x1234;
	sk->priority = 6;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
