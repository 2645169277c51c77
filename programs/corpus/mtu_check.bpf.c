// SPDX-License-Identifier: GPL-2.0
/* mtu_check: bpf_check_mtu on both hooks (as in the kernel's test_check_mtu and Cilium's
 * NodePort MTU handling): XDP checks the frame against the device MTU after a planned 100-byte
 * encapsulation, tc checks with a length delta and reports the MTU it got. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} mtu_seen SEC(".maps");

SEC("xdp")
int xdp_mtu_check(struct xdp_md *ctx)
{
	__u32 mtu_len = 0, key = 0;
	int ret;

	ret = bpf_check_mtu(ctx, 0, &mtu_len, 100, 0);
	bpf_map_update_elem(&mtu_seen, &key, &mtu_len, BPF_ANY);
	if (ret < 0)
		return XDP_ABORTED;
	return ret == BPF_MTU_CHK_RET_SUCCESS ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int tc_mtu_check(struct __sk_buff *skb)
{
	__u32 mtu_len = 0, key = 1;
	int ret;

	ret = bpf_check_mtu(skb, skb->ifindex, &mtu_len, 1400, 0);
	bpf_map_update_elem(&mtu_seen, &key, &mtu_len, BPF_ANY);
	if (ret < 0)
		return TC_ACT_UNSPEC;
	return ret == BPF_MTU_CHK_RET_SUCCESS ? TC_ACT_OK : TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
