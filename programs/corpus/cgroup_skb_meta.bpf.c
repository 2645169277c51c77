// SPDX-License-Identifier: GPL-2.0
/* cgroup_skb_meta: per-cgroup telemetry and marking (Meta's cgroup-based ECN marking and
 * per-service accounting): the socket owner's uid from bpf_get_socket_uid, ECN CE marking with
 * bpf_skb_ecn_set_ce for ECT traffic, and the socket's family/state through skb->sk. */
#include "corpus.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} bytes_by_uid SEC(".maps");

SEC("cgroup_skb/egress")
int cgroup_mark_ce(struct __sk_buff *skb)
{
	__u32 uid = bpf_get_socket_uid(skb);
	struct bpf_sock *sk = skb->sk;
	__u64 *b, len = skb->len;
	int ret = 1;

	b = bpf_map_lookup_elem(&bytes_by_uid, &uid);
	if (b)
		__sync_fetch_and_add(b, len);
	else
		bpf_map_update_elem(&bytes_by_uid, &uid, &len, BPF_NOEXIST);
	if (bpf_skb_ecn_set_ce(skb))
		ret |= 2;
	if (sk)
		ret |= (sk->family << 8) | (sk->state << 16);
	return ret & 1 ? 1 : 0;
}

char _license[] SEC("license") = "GPL";
