// SPDX-License-Identifier: GPL-2.0
/*
 * skb_sk.bpf.c - the socket BPF_PROG_TEST_RUN attaches to every skb (skb->sk): each run
 * allocates a fresh socket (sk_alloc(AF_UNSPEC) + sock_init_data(NULL, sk)) and sets its family
 * and addresses from the IPv4/IPv6 header. tests/skb_sk.rs runs these on IPv4 TCP, IPv6 UDP
 * and ARP frames, twice each, against the kernel; fixtures_vs_kernel.rs on the usual packets.
 *
 * sk_cg (SEC("cgroup_skb/ingress")) fills cg_res, sk_tc (SEC("tc")) tc_res, both with
 * sk_fields() below, then the helpers; sk_sf (SEC("socket")) fills sf_res[0..12] only (socket
 * filters have no bpf_sk_fullsock and no storage). Every slot is an s64:
 *   0  skb->sk is NULL (1) or not (2)
 *   1  family                2 src_ip4            3 dst_ip4
 *   4  src_ip6[0]            5 src_ip6[3]         6 dst_ip6[0]          7 dst_ip6[3]
 *   8  src_port              9 dst_port           10 state              11 rx_queue_mapping
 *   12 bound_dev_if
 *   13 bpf_sk_fullsock(sk) is NULL (1), the same pointer (2), another one (3)
 *   14 type                  15 protocol          16 mark               17 priority
 *   18 bpf_tcp_sock(sk) is NULL (1) or not (2)
 *   19 bpf_get_listener_sock(sk) is NULL (1) or not (2)
 *   20 the sk_storage value after get(F_CREATE) and ++ (1 on every run: a fresh socket)
 *   21 a second get without F_CREATE returns the same pointer (1)
 *   22 bpf_sk_storage_delete (0)                  23 delete again (-ENOENT, -2)
 *   24 get without F_CREATE after the delete is NULL (1)
 *   25 get(F_CREATE) again -> the value starts at 0 (value read, 0)
 *   26 bpf_get_socket_cookie(skb) is nonzero (1)  27 and the same twice in one run (1)
 *   28 bpf_get_socket_uid(skb) (0: root in the initial user namespace)
 *   29 the run number (runs counts every run of the program)
 * cg returns 1 (allow), tc 0 (TC_ACT_OK), sf the packet length.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NRES 30

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __s64);
} sk_store SEC(".maps");

__s64 cg_res[NRES];
__s64 tc_res[NRES];
__s64 sf_res[NRES];
__s64 runs[3];

static __always_inline int sk_fields(struct __sk_buff *skb, __s64 *res)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk) {
		res[0] = 1;
		return 0;
	}
	res[0] = 2;
	res[1] = sk->family;
	res[2] = sk->src_ip4;
	res[3] = sk->dst_ip4;
	res[4] = sk->src_ip6[0];
	res[5] = sk->src_ip6[3];
	res[6] = sk->dst_ip6[0];
	res[7] = sk->dst_ip6[3];
	res[8] = sk->src_port;
	res[9] = sk->dst_port;
	res[10] = sk->state;
	res[11] = sk->rx_queue_mapping;
	res[12] = sk->bound_dev_if;
	return 1;
}

static __always_inline void sk_helpers(struct __sk_buff *skb, __s64 *res)
{
	struct bpf_sock *sk = skb->sk, *fs;
	__s64 *v, *w;
	__u64 c1, c2;

	if (!sk)
		return;
	fs = bpf_sk_fullsock(sk);
	if (!fs) {
		res[13] = 1;
		return;
	}
	res[13] = fs == sk ? 2 : 3;
	res[14] = fs->type;
	res[15] = fs->protocol;
	res[16] = fs->mark;
	res[17] = fs->priority;
	res[18] = bpf_tcp_sock(fs) ? 2 : 1;
	res[19] = bpf_get_listener_sock(fs) ? 2 : 1;
	v = bpf_sk_storage_get(&sk_store, fs, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (v) {
		*v += 1;
		res[20] = *v;
		w = bpf_sk_storage_get(&sk_store, fs, 0, 0);
		res[21] = w == v;
	}
	res[22] = bpf_sk_storage_delete(&sk_store, fs);
	res[23] = bpf_sk_storage_delete(&sk_store, fs);
	res[24] = bpf_sk_storage_get(&sk_store, fs, 0, 0) == 0;
	v = bpf_sk_storage_get(&sk_store, fs, 0, BPF_SK_STORAGE_GET_F_CREATE);
	res[25] = v ? *v : -1;
	if (v)
		*v = 7;
	c1 = bpf_get_socket_cookie(skb);
	c2 = bpf_get_socket_cookie(skb);
	res[26] = c1 != 0;
	res[27] = c1 == c2;
	res[28] = bpf_get_socket_uid(skb);
}

SEC("cgroup_skb/ingress")
int sk_cg(struct __sk_buff *skb)
{
	runs[0]++;
	cg_res[29] = runs[0];
	if (sk_fields(skb, cg_res))
		sk_helpers(skb, cg_res);
	return 1;
}

SEC("tc")
int sk_tc(struct __sk_buff *skb)
{
	runs[1]++;
	tc_res[29] = runs[1];
	if (sk_fields(skb, tc_res))
		sk_helpers(skb, tc_res);
	return 0;
}

SEC("socket")
int sk_sf(struct __sk_buff *skb)
{
	runs[2]++;
	sf_res[29] = runs[2];
	sk_fields(skb, sf_res);
	return skb->len;
}

char _license[] SEC("license") = "GPL";
