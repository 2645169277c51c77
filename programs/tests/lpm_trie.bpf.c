// SPDX-License-Identifier: GPL-2.0
/*
 * lpm_trie.bpf.c - BPF_MAP_TYPE_LPM_TRIE longest-prefix match on IPv4.
 *
 * The program inserts its own prefixes (no user-space setup needed):
 *   10.0.0.0/8 -> 8,  10.1.0.0/16 -> 16,  10.1.2.0/24 -> 24,  10.1.2.3/32 -> 32
 * then looks up /32 keys and records the matched value (0 = no match) in lpm_res:
 *   slot 0: 10.1.2.3 -> 32     slot 1: 10.1.2.4 -> 24     slot 2: 10.1.3.1 -> 16
 *   slot 3: 10.2.0.1 -> 8      slot 4: 11.0.0.1 -> 0 (miss)
 *   slot 5: the frame's IPv4 destination (0 for non-IPv4 / no match):
 *           packets/ipv4_tcp_syn.bin (10.1.2.3) -> 32, packets/ipv4_udp.bin (192.168.1.1) -> 0
 *   slot 6: bpf_map_delete_elem(10.1.2.3/32) -> 0, slot 7: 10.1.2.3 again -> 24
 *   slot 8: delete of 10.1.2.3/32 again -> -ENOENT (-2)
 *   slot 9: update with prefixlen 33 -> -EINVAL (-22)
 * Returns XDP_PASS (2) when slots 0-4 and 6-9 match, else XDP_DROP (1).
 * Final trie contents: 10.0.0.0/8=8, 10.1.0.0/16=16, 10.1.2.0/24=24.
 * (If user space pre-populated the same prefixes the results are identical: BPF_ANY.)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct ipv4_lpm_key {
	__u32 prefixlen;
	__u32 addr;		/* network byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipv4_lpm_key);
	__type(value, __u32);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 10);
	__type(key, __u32);
	__type(value, __s64);
} lpm_res SEC(".maps");

#define IP4(a, b, c, d) bpf_htonl(((a) << 24) | ((b) << 16) | ((c) << 8) | (d))

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&lpm_res, &slot, &v, BPF_ANY);
}

static __always_inline void add_route(__u32 addr, __u32 plen)
{
	struct ipv4_lpm_key key = { .prefixlen = plen, .addr = addr };

	bpf_map_update_elem(&routes, &key, &plen, BPF_ANY);
}

static __always_inline __s64 match(__u32 addr)
{
	struct ipv4_lpm_key key = { .prefixlen = 32, .addr = addr };
	__u32 *v = bpf_map_lookup_elem(&routes, &key);

	return v ? *v : 0;
}

SEC("xdp")
int lpm_lookup(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct ipv4_lpm_key key = { .prefixlen = 32, .addr = IP4(10, 1, 2, 3) };
	__u32 v = 0;
	__s64 r[10];
	int ok;

	add_route(IP4(10, 0, 0, 0), 8);
	add_route(IP4(10, 1, 0, 0), 16);
	add_route(IP4(10, 1, 2, 0), 24);
	add_route(IP4(10, 1, 2, 3), 32);

	r[0] = match(IP4(10, 1, 2, 3));
	r[1] = match(IP4(10, 1, 2, 4));
	r[2] = match(IP4(10, 1, 3, 1));
	r[3] = match(IP4(10, 2, 0, 1));
	r[4] = match(IP4(11, 0, 0, 1));
	r[5] = 0;
	if ((void *)(iph + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP))
		r[5] = match(iph->daddr);
	r[6] = bpf_map_delete_elem(&routes, &key);
	r[7] = match(IP4(10, 1, 2, 3));
	r[8] = bpf_map_delete_elem(&routes, &key);
	key.prefixlen = 33;
	r[9] = bpf_map_update_elem(&routes, &key, &v, BPF_ANY);

	for (int i = 0; i < 10; i++)
		res(i, r[i]);
	ok = r[0] == 32 && r[1] == 24 && r[2] == 16 && r[3] == 8 && r[4] == 0 &&
	     r[6] == 0 && r[7] == 24 && r[8] == -2 && r[9] == -22;
	return ok ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
