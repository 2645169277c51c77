// SPDX-License-Identifier: GPL-2.0
/*
 * sockmap.bpf.c - socket-redirection programs and the socket map types.
 *
 * Sections / program types (none can be test-run by the kernel; they load and verify):
 *   SEC("sockops")               BPF_PROG_TYPE_SOCK_OPS  sockops_track
 *   SEC("sk_skb/stream_parser")  BPF_PROG_TYPE_SK_SKB    skb_parser
 *   SEC("sk_skb/stream_verdict") BPF_PROG_TYPE_SK_SKB    skb_verdict
 *   SEC("sk_msg")                BPF_PROG_TYPE_SK_MSG    msg_verdict
 * Maps: BPF_MAP_TYPE_SOCKMAP (sock_map), BPF_MAP_TYPE_SOCKHASH (sock_hash), an array of
 * helper results (sk_res, s64 per slot).
 * Helpers: bpf_sock_map_update, bpf_sock_hash_update, bpf_sk_redirect_map,
 * bpf_sk_redirect_hash, bpf_msg_redirect_map, bpf_msg_redirect_hash, bpf_msg_apply_bytes,
 * bpf_msg_cork_bytes, bpf_msg_pull_data, bpf_msg_push_data, bpf_msg_pop_data.
 *
 * Socket keys are built from the raw context fields without byte-order conversion:
 *   sockops: { local_ip4, remote_ip4, local_port, remote_port }
 *   sk_skb/sk_msg (the peer's view, so a redirect finds the entry sockops stored):
 *            { remote_ip4, local_ip4, remote_port, local_port }
 * sk_res slots: 0 sock_map_update, 1 sock_hash_update, 2 sk_skb verdict,
 *               3 msg_apply_bytes, 4 msg_cork_bytes, 5 msg_pull_data, 6 msg_push_data,
 *               7 msg_pop_data, 8 msg verdict, 9 msg->size after push+pop.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef AF_INET
#define AF_INET 2
#endif

struct sock_key {
	__u32 sip;
	__u32 dip;
	__u32 sport;
	__u32 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} sock_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 16);
	__type(key, struct sock_key);
	__type(value, __u64);
} sock_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 10);
	__type(key, __u32);
	__type(value, __s64);
} sk_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&sk_res, &slot, &v, BPF_ANY);
}

/*
 * On ACTIVE_ESTABLISHED_CB (op 4) store the socket in sock_map[0], on PASSIVE_ESTABLISHED_CB
 * (op 5) in sock_map[1]; both also insert it into sock_hash (BPF_NOEXIST). Always returns 1.
 */
SEC("sockops")
int sockops_track(struct bpf_sock_ops *skops)
{
	struct sock_key key = {};
	__u32 idx;

	if (skops->family != AF_INET)
		return 1;

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		idx = skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ? 0 : 1;
		key.sip = skops->local_ip4;
		key.dip = skops->remote_ip4;
		key.sport = skops->local_port;
		key.dport = skops->remote_port;
		res(0, bpf_sock_map_update(skops, &sock_map, &idx, BPF_ANY));
		res(1, bpf_sock_hash_update(skops, &sock_hash, &key, BPF_NOEXIST));
		break;
	default:
		break;
	}
	return 1;
}

/* Stream parser: every skb is one complete message. */
SEC("sk_skb/stream_parser")
int skb_parser(struct __sk_buff *skb)
{
	return skb->len;
}

/*
 * Stream verdict on the first payload byte:
 *   'M' -> bpf_sk_redirect_map(sock_map, 1, 0)          (egress of sock_map[1])
 *   'H' -> bpf_sk_redirect_hash(sock_hash, peer key, BPF_F_INGRESS)
 *   empty -> SK_DROP (0), anything else -> SK_PASS (1)
 * The helpers return SK_PASS if the target entry exists, SK_DROP otherwise.
 */
SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct sock_key key = {
		.sip = skb->remote_ip4,
		.dip = skb->local_ip4,
		.sport = skb->remote_port,
		.dport = skb->local_port,
	};
	__u8 *p = data;
	long verdict;

	if ((void *)(p + 1) > data_end)
		verdict = SK_DROP;
	else if (p[0] == 'M')
		verdict = bpf_sk_redirect_map(skb, &sock_map, 1, 0);
	else if (p[0] == 'H')
		verdict = bpf_sk_redirect_hash(skb, &sock_hash, &key, BPF_F_INGRESS);
	else
		verdict = SK_PASS;
	res(2, verdict);
	return verdict;
}

/*
 * sk_msg verdict: apply the verdict to the next 16 bytes, no corking, pull the first 8
 * bytes into the linear window, insert 4 bytes at offset 0 and remove them again (so the
 * message is unchanged: size after push+pop = size before). Then, on the first byte:
 *   'M' -> bpf_msg_redirect_map(sock_map, 0, BPF_F_INGRESS)
 *   'H' -> bpf_msg_redirect_hash(sock_hash, peer key, 0)
 *   empty -> SK_DROP, anything else -> SK_PASS.
 */
SEC("sk_msg")
int msg_verdict(struct sk_msg_md *msg)
{
	struct sock_key key = {
		.sip = msg->remote_ip4,
		.dip = msg->local_ip4,
		.sport = msg->remote_port,
		.dport = msg->local_port,
	};
	void *data, *data_end;
	__u8 first;
	long verdict;

	res(3, bpf_msg_apply_bytes(msg, 16));
	res(4, bpf_msg_cork_bytes(msg, 0));
	res(5, bpf_msg_pull_data(msg, 0, 8, 0));

	data = (void *)(long)msg->data;
	data_end = (void *)(long)msg->data_end;
	if (data + 1 > data_end) {
		res(8, SK_DROP);
		return SK_DROP;
	}
	first = *(__u8 *)data;

	res(6, bpf_msg_push_data(msg, 0, 4, 0));
	res(7, bpf_msg_pop_data(msg, 0, 4, 0));
	res(9, msg->size);

	if (first == 'M')
		verdict = bpf_msg_redirect_map(msg, &sock_map, 0, BPF_F_INGRESS);
	else if (first == 'H')
		verdict = bpf_msg_redirect_hash(msg, &sock_hash, &key, 0);
	else
		verdict = SK_PASS;
	res(8, verdict);
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
