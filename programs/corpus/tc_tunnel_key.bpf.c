// SPDX-License-Identifier: GPL-2.0
/* tc_tunnel_key: collect-metadata tunnelling as Cilium's overlay and the kernel's
 * test_tunnel_kern do: egress sets the tunnel key (remote IPv4, VNI, TTL) with
 * bpf_skb_set_tunnel_key before redirecting to a vxlan device; ingress reads it back with
 * bpf_skb_get_tunnel_key (no tunnel metadata on a plain test-run skb: the error is returned). */
#include "corpus.h"

SEC("tc")
int tc_set_tunnel(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	long ret;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	key.remote_ipv4 = BACKEND4;
	key.tunnel_id = 42;
	key.tunnel_ttl = 64;
	ret = bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX);
	return ret ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int tc_get_tunnel(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	long ret;

	ret = bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0);
	if (ret < 0)
		return (int)ret;
	return key.tunnel_id == 42 ? TC_ACT_OK : TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
