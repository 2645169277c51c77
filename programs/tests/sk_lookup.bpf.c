// SPDX-License-Identifier: GPL-2.0
/*
 * sk_lookup.bpf.c - SEC("sk_lookup"): BPF_PROG_TYPE_SK_LOOKUP (attach type BPF_SK_LOOKUP),
 * run by the kernel's socket lookup for incoming TCP/UDP; return SK_PASS (1) or SK_DROP (0).
 *
 * Exercises struct bpf_sk_lookup field reads (family, protocol, remote_ip4, remote_port
 * in network order, local_ip4, local_port in host order, ingress_ifindex), a
 * BPF_MAP_TYPE_SOCKMAP lookup returning a socket, bpf_sk_assign and bpf_sk_release.
 *
 * Logic:
 *   TCP to local port 80: look up sk_redir[0]; if the slot is empty -> SK_DROP (0);
 *     otherwise bpf_sk_assign() it, release it and return SK_PASS (1).
 *   anything else -> SK_PASS (1) without assigning.
 * lookup_seen records what the program saw (u32 slots): 0 family, 1 protocol,
 *   2 remote_ip4 (as read, network order), 3 remote_port (as read), 4 local_ip4,
 *   5 local_port, 6 ingress_ifindex, 7 bpf_sk_assign result (0xffffffff if not called).
 * Test-run with ctx_in = struct bpf_sk_lookup (packets/ctx_sk_lookup_*.bin), no data_in,
 * repeat 0; the kernel requires ctx sk == 0 and every byte after local_port (including
 * ingress_ifindex) zero, and reports ingress_ifindex 0 to the program.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sk_redir SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} lookup_seen SEC(".maps");

static __always_inline void seen(__u32 slot, __u32 v)
{
	bpf_map_update_elem(&lookup_seen, &slot, &v, BPF_ANY);
}

SEC("sk_lookup")
int sk_lookup_http(struct bpf_sk_lookup *ctx)
{
	__u32 zero = 0;
	struct bpf_sock *sk;
	long err;

	seen(0, ctx->family);
	seen(1, ctx->protocol);
	seen(2, ctx->remote_ip4);
	seen(3, ctx->remote_port);
	seen(4, ctx->local_ip4);
	seen(5, ctx->local_port);
	seen(6, ctx->ingress_ifindex);
	seen(7, 0xffffffff);

	if (ctx->protocol != IPPROTO_TCP || ctx->local_port != 80)
		return SK_PASS;

	sk = bpf_map_lookup_elem(&sk_redir, &zero);
	if (!sk)
		return SK_DROP;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	seen(7, err);
	return err ? SK_DROP : SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
