// SPDX-License-Identifier: GPL-2.0
/*
 * redirect.bpf.c - packet redirection: bpf_redirect and bpf_redirect_map over
 * BPF_MAP_TYPE_DEVMAP, DEVMAP_HASH, CPUMAP and XSKMAP.
 *
 * bpf_redirect_map(map, key, flags) returns XDP_REDIRECT (4) when map[key] is populated and
 * otherwise the action in the low bits of flags (the fallback). All maps start empty (their
 * entries can only be written from user space), so in a plain test run every
 * bpf_redirect_map returns its fallback:
 *   redir_devmap       devmap[0],       fallback XDP_PASS    -> 2 (4 if user space sets [0])
 *   redir_devmap_hash  devmap_hash[7],  fallback XDP_DROP    -> 1
 *   redir_cpumap       cpumap[0],       fallback XDP_TX      -> 3
 *   redir_xskmap       xskmap[rx_queue_index = 0], fallback XDP_PASS -> 2
 *   redir_ifindex      bpf_redirect(1, 0) (XDP)             -> XDP_REDIRECT (4)
 *   tc_redir_ingress   bpf_redirect(1, BPF_F_INGRESS) (tc)  -> TC_ACT_REDIRECT (7)
 * BPF_PROG_TEST_RUN (without BPF_F_TEST_XDP_LIVE_FRAMES) only reports the action; no frame
 * is transmitted, and the output frame equals the input.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);	/* ifindex */
} tx_devmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);	/* ifindex */
} tx_devmap_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct bpf_cpumap_val);
} cpu_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);	/* AF_XDP socket fd */
} xsk_map SEC(".maps");

SEC("xdp")
int redir_devmap(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tx_devmap, 0, XDP_PASS);
}

SEC("xdp")
int redir_devmap_hash(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tx_devmap_hash, 7, XDP_DROP);
}

SEC("xdp")
int redir_cpumap(struct xdp_md *ctx)
{
	return bpf_redirect_map(&cpu_map, 0, XDP_TX);
}

SEC("xdp")
int redir_xskmap(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsk_map, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int redir_ifindex(struct xdp_md *ctx)
{
	return bpf_redirect(1, 0);
}

SEC("tc")
int tc_redir_ingress(struct __sk_buff *skb)
{
	return bpf_redirect(1, BPF_F_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
