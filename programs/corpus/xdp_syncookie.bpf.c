// SPDX-License-Identifier: GPL-2.0
/* xdp_syncookie: the SYN-proxy pattern of the kernel's xdp_synproxy: SYNs to a protected port
 * get a SYN cookie from bpf_tcp_raw_gen_syncookie_ipv4 (the verdict depends only on whether one
 * was produced: the cookie itself is keyed by a boot-time secret), and ACKs are validated with
 * bpf_tcp_raw_check_syncookie_ipv4 (a cookie that was never issued is refused). */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} cookie_stats SEC(".maps");

static __always_inline void stat(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&cookie_stats, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int xdp_synproxy_lite(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *tcph;
	__s64 cookie;
	long ret;
	int len;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_TCP)
		return XDP_PASS;
	if (iph->ihl != 5)
		return XDP_PASS;
	len = parse_tcphdr(&nh, data_end, &tcph);
	if (len < 0)
		return XDP_DROP;
	if (tcph->dest != bpf_htons(80))
		return XDP_PASS;
	if (tcph->syn && !tcph->ack) {
		if ((void *)tcph + 60 > data_end && len != 20 && len != 40)
			return XDP_DROP;
		cookie = bpf_tcp_raw_gen_syncookie_ipv4(iph, tcph, 20);
		stat(cookie > 0 ? 0 : 1);
		return cookie > 0 ? XDP_TX : XDP_DROP;
	}
	if (tcph->ack && !tcph->syn && !tcph->rst) {
		ret = bpf_tcp_raw_check_syncookie_ipv4(iph, tcph);
		stat(ret == 0 ? 2 : 3);
		return ret == 0 ? XDP_PASS : XDP_DROP;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
