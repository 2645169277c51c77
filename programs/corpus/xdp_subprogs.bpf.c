// SPDX-License-Identifier: GPL-2.0
/* xdp_subprogs: bpf-to-bpf calls as modern projects write them: static __noinline helpers
 * (verified with their caller) and global functions (verified on their own, with the
 * context passed through), one of them recursive-free but three calls deep. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} port_bytes SEC(".maps");

static __noinline int l4_dport(void *l4, void *data_end)
{
	struct udphdr *u = l4;

	if ((void *)(u + 1) > data_end)
		return -1;
	return bpf_ntohs(u->dest);
}

static __noinline int account(__u32 port, __u64 bytes)
{
	__u64 *v = bpf_map_lookup_elem(&port_bytes, &port);

	if (v) {
		__sync_fetch_and_add(v, bytes);
		return 0;
	}
	return bpf_map_update_elem(&port_bytes, &port, &bytes, BPF_NOEXIST);
}

__noinline int classify_port(int port)
{
	if (port == 53)
		return 1;
	if (port == 80 || port == 443)
		return 2;
	return 0;
}

__noinline int verdict_for(struct xdp_md *ctx, int proto, int port)
{
	if (!ctx)
		return XDP_ABORTED;
	if (proto == IPPROTO_UDP && classify_port(port) == 1)
		return XDP_PASS;
	if (proto == IPPROTO_TCP && classify_port(port) == 2)
		return XDP_PASS;
	return port < 1024 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_calls(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	int proto, port;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&nh, data_end, &iph);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	port = l4_dport(nh.pos, data_end);
	if (port < 0)
		return XDP_DROP;
	account(port, data_end - data);
	return verdict_for(ctx, proto, port);
}

char _license[] SEC("license") = "GPL";
