// SPDX-License-Identifier: GPL-2.0
/* sk_lookup_dispatch: a socket dispatcher on the sk_lookup hook in the style of Cloudflare's
 * tubular: (protocol, local port) bindings name a slot in a SOCKMAP holding the serving
 * socket, which bpf_sk_assign selects; blocklisted remotes are refused with SK_DROP; lookups
 * per port are counted. */
#include "corpus.h"

struct binding {
	__u32 protocol;
	__u32 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} dispatch_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct binding);
	__type(value, __u32);
} bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} lookups SEC(".maps");

SEC("sk_lookup")
int dispatcher(struct bpf_sk_lookup *ctx)
{
	struct binding key = { .protocol = ctx->protocol, .port = ctx->local_port };
	__u32 port = ctx->local_port;
	struct bpf_sock *sk;
	__u64 one = 1, *cnt;
	__u32 *slot;
	long err;

	cnt = bpf_map_lookup_elem(&lookups, &port);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else
		bpf_map_update_elem(&lookups, &port, &one, BPF_NOEXIST);
	if (ctx->family == 2 && ctx->remote_ip4 == bpf_htonl(BLOCKED4))
		return SK_DROP;
	slot = bpf_map_lookup_elem(&bindings, &key);
	if (!slot)
		return SK_PASS;
	sk = bpf_map_lookup_elem(&dispatch_socks, slot);
	if (!sk)
		return SK_PASS;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return err ? SK_DROP : SK_PASS;
}

char _license[] SEC("license") = "GPL";
