// SPDX-License-Identifier: GPL-2.0
/*
 * net_lookup.bpf.c - lookups into the networking stack from SEC("tc") programs:
 * bpf_fib_lookup, bpf_sk_lookup_tcp, bpf_sk_lookup_udp, bpf_sk_release,
 * bpf_get_socket_cookie.
 *
 * The results depend on the host's network namespace, so the program only asks questions
 * whose answers are (nearly) the same on any Linux host:
 *   fib_lookup 127.0.0.1 -> 127.0.0.1, ifindex 1 (lo), flags BPF_FIB_LOOKUP_OUTPUT:
 *     the kernel first checks that forwarding is enabled on the device (even for OUTPUT
 *     lookups): with net.ipv4.conf.lo.forwarding = 0 (the default) the result is
 *     BPF_FIB_LKUP_RET_FWD_DISABLED (5); with forwarding on, the route is RTN_LOCAL ->
 *     BPF_FIB_LKUP_RET_NOT_FWDED (4). Both are accepted.
 *   fib_lookup with ifindex 0x7fffffff (no such device) -> -ENODEV (-19)
 *   sk_lookup_tcp / sk_lookup_udp for 127.0.0.1:40000 -> 127.0.0.1:1 in the current netns
 *     (nothing listens on port 1) -> NULL (0); a found socket would be released at once
 *   get_socket_cookie(skb): BPF_PROG_TEST_RUN attaches a dummy socket to the skb, so the
 *     cookie is non-zero (its value is arbitrary)
 * net_res slots: 0 fib lo result (5, or 4 with forwarding on), 1 fib bad ifindex (-19), 2 tcp socket found (0),
 *   3 udp socket found (0), 4 socket cookie != 0 (1).
 * Returns TC_ACT_OK (0) when slots 0-3 hold the values above, TC_ACT_SHOT (2) otherwise.
 * Input: any IPv4 frame, e.g. packets/ipv4_tcp_syn.bin (the frame itself is not used).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __s64);
} net_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&net_res, &slot, &v, BPF_ANY);
}

static __always_inline long fib(struct __sk_buff *skb, __u32 ifindex)
{
	struct bpf_fib_lookup p = {};

	p.family = AF_INET;
	p.l4_protocol = IPPROTO_TCP;
	p.sport = bpf_htons(40000);
	p.dport = bpf_htons(1);
	p.tot_len = 40;
	p.ifindex = ifindex;
	p.ipv4_src = bpf_htonl(0x7f000001);
	p.ipv4_dst = bpf_htonl(0x7f000001);
	return bpf_fib_lookup(skb, &p, sizeof(p), BPF_FIB_LOOKUP_OUTPUT);
}

SEC("tc")
int net_lookups(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__s64 r0, r1, r2, r3;

	r0 = fib(skb, 1);
	r1 = fib(skb, 0x7fffffff);

	t.ipv4.saddr = bpf_htonl(0x7f000001);
	t.ipv4.daddr = bpf_htonl(0x7f000001);
	t.ipv4.sport = bpf_htons(40000);
	t.ipv4.dport = bpf_htons(1);

	sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	r2 = sk != NULL;
	if (sk)
		bpf_sk_release(sk);
	sk = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	r3 = sk != NULL;
	if (sk)
		bpf_sk_release(sk);

	res(0, r0);
	res(1, r1);
	res(2, r2);
	res(3, r3);
	res(4, bpf_get_socket_cookie(skb) != 0);
	return ((r0 == BPF_FIB_LKUP_RET_FWD_DISABLED || r0 == BPF_FIB_LKUP_RET_NOT_FWDED) &&
		r1 == -19 && r2 == 0 && r3 == 0) ?
	       TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
