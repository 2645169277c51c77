// SPDX-License-Identifier: GPL-2.0
/* xdp_tcp_opts_loop: scans TCP options with bpf_loop (as the MSS clamping and SYN proxy
 * programs of recent projects do) and records MSS and window scale of SYNs per source. */
#include "corpus.h"

struct opt_ctx {
	void *data_end;
	__u8 *opts;
	__u32 len;
	__u32 off;
	__u16 mss;
	__u8 wscale;
	__u8 sack_ok;
};

struct syn_info {
	__u16 mss;
	__u8 wscale;
	__u8 sack_ok;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct syn_info);
} syn_opts SEC(".maps");

static long scan_one(__u32 index, struct opt_ctx *c)
{
	__u8 *p;
	__u8 kind, len;

	if (c->off >= c->len)
		return 1;
	p = c->opts + (c->off & 0x3f);
	if ((void *)(p + 1) > c->data_end)
		return 1;
	kind = p[0];
	if (kind == 0)
		return 1;
	if (kind == 1) {
		c->off++;
		return 0;
	}
	if ((void *)(p + 2) > c->data_end)
		return 1;
	len = p[1];
	if (len < 2)
		return 1;
	if (kind == 2 && len == 4 && (void *)(p + 4) <= c->data_end)
		c->mss = (p[2] << 8) | p[3];
	else if (kind == 3 && len == 3 && (void *)(p + 3) <= c->data_end)
		c->wscale = p[2];
	else if (kind == 4)
		c->sack_ok = 1;
	c->off += len;
	return 0;
}

SEC("xdp")
int xdp_syn_options(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = (void *)(long)ctx->data };
	struct opt_ctx c = {};
	struct syn_info info;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *tcph;
	int tcplen;

	if (parse_ethhdr(&nh, data_end, &eth) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&nh, data_end, &iph) != IPPROTO_TCP)
		return XDP_PASS;
	tcplen = parse_tcphdr(&nh, data_end, &tcph);
	if (tcplen < 0)
		return XDP_DROP;
	if (!tcph->syn)
		return XDP_PASS;
	c.data_end = data_end;
	c.opts = (__u8 *)(tcph + 1);
	c.len = tcplen - sizeof(*tcph);
	bpf_loop(40, scan_one, &c, 0);
	info.mss = c.mss;
	info.wscale = c.wscale;
	info.sack_ok = c.sack_ok;
	bpf_map_update_elem(&syn_opts, &iph->saddr, &info, BPF_ANY);
	return c.mss && c.mss < 536 ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
