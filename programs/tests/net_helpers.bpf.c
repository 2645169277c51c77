// SPDX-License-Identifier: GPL-2.0
/*
 * net_helpers.bpf.c - networking helpers real XDP and tc programs call, each program
 * writing its helper results into the frame (from byte 14, as little-endian s32 values) or
 * its return value, so that BPF_PROG_TEST_RUN's output frame and retval show them all
 * (kernel/tests/net_helpers_vs_kernel.rs compares them with bpflab byte for byte).
 *
 *   xdp_bytes     bpf_xdp_load_bytes/bpf_xdp_store_bytes swap the MAC addresses; res =
 *                 [load dst, load src, bpf_xdp_get_buff_len, load 4 bytes at len - 2
 *                 (-EINVAL), store 4 bytes at len - 1 (-EINVAL)]; XDP_TX.
 *   xdp_mtu       bpf_check_mtu on the packet's device (loopback): res = [ret, mtu] for
 *                 the packet, for an L3 length of 65536 + 1, for ifindex 0x7ffffff0
 *                 (-ENODEV), with BPF_MTU_CHK_SEGS (-EINVAL in XDP); then the frame length.
 *   tc_mtu        the same in tc, where BPF_MTU_CHK_SEGS alone is allowed and with a length
 *                 difference is -EINVAL, and an unknown flag is -EINVAL; TC_ACT_OK.
 *   tc_ecn        returns bpf_skb_ecn_set_ce(skb) (1 marked or already CE, 0 otherwise);
 *                 the output frame shows the CE mark and the IPv4 checksum update.
 *   tc_neigh      returns bpf_redirect_neigh(1, NULL, 0, 0) (TC_ACT_REDIRECT).
 *   tc_neigh_nh   bpf_redirect_neigh(1, &nh, sizeof(nh), 0) with an IPv4 next hop.
 *   tc_neigh_bad  bpf_redirect_neigh with flags 1 (TC_ACT_SHOT).
 *   tc_peer       returns bpf_redirect_peer(1, 0) (TC_ACT_REDIRECT).
 *   tc_peer_bad   bpf_redirect_peer(1, 1) (TC_ACT_SHOT).
 *   tc_syncookie  looks up the TCP socket of the IPv4 frame's 4-tuple (bpf_skc_lookup_tcp);
 *                 100 for a short frame, 101 when there is none, else returns
 *                 (u16)bpf_tcp_gen_syncookie | bpf_tcp_check_syncookie << 16.
 *   tc_clone      res = bpf_clone_redirect to lo's egress and ingress (0: lo takes the
 *                 clones), to ifindex 0x7ffffff0 and with flag 4 (-EINVAL); TC_ACT_OK.
 *   tc_sockinfo   the socket of the 4-tuple (bpf_skc_lookup_tcp): 100 short frame, 101 none,
 *                 else bpf_sk_fullsock's state | protocol << 24, | 0x100 | state << 16 when
 *                 bpf_get_listener_sock finds a listener; bpf_sk_assign(skb, sk, 0) and
 *                 with flags 1 (s32 at bytes 14 and 18: a test run is not at tc ingress).
 *   tc_tstamp     res (s64) = bpf_skb_set_tstamp(0x1234, MONOTONIC), skb->tstamp,
 *                 skb->tstamp_type, set(0, MONOTONIC) (-EINVAL), set(7, 3) (-EINVAL),
 *                 set(0x99, REALTIME), skb->tstamp, skb->tstamp_type (-EOPNOTSUPP unless IP).
 *   tc_tunnel     bpf_skb_set_tunnel_key/_opt then bpf_skb_get_tunnel_key/_opt (IPv4 key,
 *                 options; errors before the key is set and for bad sizes): res (s32) at 14,
 *                 the key read back at 46, the options at 90.
 *   tc_tunnel6    the same with an IPv6 key (label, -EPROTO for an IPv4 read, a 28-byte read
 *                 of the older layout, a bad size): res at 14, key at 38.
 *   xdp_strncmp   bpf_strncmp of the 9 payload bytes at 54 with "hello" (9 bytes), "help"
 *                 (4) and "z" (1): res (s32: -1, 0 or 1) at 14; XDP_PASS.
 *   xdp_raw_syncookie, xdp_raw_syncookie_mss
 *                 bpf_tcp_raw_gen_syncookie_ipv4 for the frame's SYN (TCP header of 20 /
 *                 24 bytes), then bpf_tcp_raw_check_syncookie_ipv4 on the answering ACK, on
 *                 an ACK one off and on the frame: res (s32) at 14 = [the announced MSS or
 *                 the error, 0, -EACCES, -EACCES].
 *   xdp_raw_syncookie6
 *                 the IPv6 version for a 24-byte TCP header: res = [MSS or error, the check
 *                 on the answering ACK, the check with another source address].
 *   xdp_timer     bpf_timer_init/_start/_set_callback/_cancel on the timer of `timers`[0]:
 *                 res (s32) at 14 = [init, start without a callback (-EINVAL), set_callback,
 *                 start (an hour), cancel (1: armed), cancel (0), start (-EINVAL: the cancel
 *                 dropped the callback), init with clock 2 (-EINVAL)]; the timer stays
 *                 initialized, so later runs' first init is -EBUSY.
 *   tc_tcp_sock   the TCP socket of the 4-tuple (bpf_skc_lookup_tcp) through bpf_tcp_sock: 100
 *                 short frame, 101 no socket, 102 not TCP, else 0 and its struct
 *                 bpf_tcp_sock fields (28 u32, the u64s split) at 14.
 *   xdp_strtol    bpf_strtol/bpf_strtoul of the 24 payload bytes at 54 in bases 0, 16, 8 and
 *                 2 (-EINVAL): res (s64) at 14 = [strtol, value, strtoul, value, strtol base
 *                 16, value, strtoul base 8, value, strtol base 2].
 *   tc_meta       res = [bpf_skb_get_tunnel_key, nonzero bytes left in the key,
 *                 bpf_skb_get_tunnel_opt, nonzero bytes left, bpf_skb_get_xfrm_state,
 *                 nonzero bytes left, bpf_get_route_realm, bpf_get_cgroup_classid,
 *                 bpf_skb_cgroup_classid].
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdp_bytes(struct xdp_md *ctx)
{
	__u8 dst[6], src[6];
	__s32 res[5];
	__u32 tmp = 0;
	__u64 len = bpf_xdp_get_buff_len(ctx);

	res[0] = bpf_xdp_load_bytes(ctx, 0, dst, sizeof(dst));
	res[1] = bpf_xdp_load_bytes(ctx, 6, src, sizeof(src));
	bpf_xdp_store_bytes(ctx, 0, src, sizeof(src));
	bpf_xdp_store_bytes(ctx, 6, dst, sizeof(dst));
	res[2] = len;
	res[3] = bpf_xdp_load_bytes(ctx, (__u32)len - 2, &tmp, sizeof(tmp));
	res[4] = bpf_xdp_store_bytes(ctx, (__u32)len - 1, &tmp, sizeof(tmp));
	bpf_xdp_store_bytes(ctx, 14, res, sizeof(res));
	return XDP_TX;
}

SEC("xdp")
int xdp_mtu(struct xdp_md *ctx)
{
	__s32 res[9];
	__u32 mtu = 0;

	res[0] = bpf_check_mtu(ctx, 0, &mtu, 0, 0);
	res[1] = mtu;
	mtu = 65536;
	res[2] = bpf_check_mtu(ctx, 0, &mtu, 1, 0);
	res[3] = mtu;
	mtu = 0;
	res[4] = bpf_check_mtu(ctx, 0x7ffffff0, &mtu, 0, 0);
	res[5] = mtu;
	mtu = 0;
	res[6] = bpf_check_mtu(ctx, 0, &mtu, 0, BPF_MTU_CHK_SEGS);
	res[7] = mtu;
	res[8] = bpf_xdp_get_buff_len(ctx);
	bpf_xdp_store_bytes(ctx, 14, res, sizeof(res));
	return XDP_PASS;
}

SEC("tc")
int tc_mtu(struct __sk_buff *skb)
{
	__s32 res[12];
	__u32 mtu = 0;

	res[0] = bpf_check_mtu(skb, 0, &mtu, 0, 0);
	res[1] = mtu;
	mtu = 65536;
	res[2] = bpf_check_mtu(skb, 0, &mtu, 1, 0);
	res[3] = mtu;
	mtu = 0;
	res[4] = bpf_check_mtu(skb, 0x7ffffff0, &mtu, 0, 0);
	res[5] = mtu;
	mtu = 0;
	res[6] = bpf_check_mtu(skb, 0, &mtu, 0, BPF_MTU_CHK_SEGS);
	res[7] = mtu;
	mtu = 0;
	res[8] = bpf_check_mtu(skb, 0, &mtu, 4, BPF_MTU_CHK_SEGS);
	res[9] = mtu;
	mtu = 0;
	res[10] = bpf_check_mtu(skb, 0, &mtu, 0, 2);
	res[11] = skb->len;
	bpf_skb_store_bytes(skb, 14, res, sizeof(res), 0);
	return TC_ACT_OK;
}

SEC("tc")
int tc_ecn(struct __sk_buff *skb)
{
	return bpf_skb_ecn_set_ce(skb);
}

SEC("tc")
int tc_neigh(struct __sk_buff *skb)
{
	return bpf_redirect_neigh(1, NULL, 0, 0);
}

SEC("tc")
int tc_neigh_nh(struct __sk_buff *skb)
{
	struct bpf_redir_neigh nh = {
		.nh_family = 2, /* AF_INET */
		.ipv4_nh = 0x0100007f,
	};

	return bpf_redirect_neigh(1, &nh, sizeof(nh), 0);
}

SEC("tc")
int tc_neigh_bad(struct __sk_buff *skb)
{
	return bpf_redirect_neigh(1, NULL, 0, 1);
}

SEC("tc")
int tc_peer(struct __sk_buff *skb)
{
	return bpf_redirect_peer(1, 0);
}

SEC("tc")
int tc_peer_bad(struct __sk_buff *skb)
{
	return bpf_redirect_peer(1, 1);
}

SEC("tc")
int tc_syncookie(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	struct tcphdr *th = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__s32 gen, check;

	if ((void *)(th + 1) > data_end)
		return 100;
	t.ipv4.saddr = iph->saddr;
	t.ipv4.daddr = iph->daddr;
	t.ipv4.sport = th->source;
	t.ipv4.dport = th->dest;
	sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 101;
	gen = bpf_tcp_gen_syncookie(sk, iph, sizeof(*iph), th, sizeof(*th));
	check = bpf_tcp_check_syncookie(sk, iph, sizeof(*iph), th, sizeof(*th));
	bpf_sk_release(sk);
	return ((__u32)gen & 0xffff) | ((__u32)check << 16);
}

SEC("tc")
int tc_clone(struct __sk_buff *skb)
{
	__s32 res[4];

	res[0] = bpf_clone_redirect(skb, 1, 0);
	res[1] = bpf_clone_redirect(skb, 1, BPF_F_INGRESS);
	res[2] = bpf_clone_redirect(skb, 0x7ffffff0, 0);
	res[3] = bpf_clone_redirect(skb, 1, 4);
	bpf_skb_store_bytes(skb, 14, res, sizeof(res), 0);
	return TC_ACT_OK;
}

SEC("tc")
int tc_sockinfo(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	struct tcphdr *th = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk, *full, *listener;
	__s32 assign, assign_flags;
	__u32 r = 0;

	if ((void *)(th + 1) > data_end)
		return 100;
	t.ipv4.saddr = iph->saddr;
	t.ipv4.daddr = iph->daddr;
	t.ipv4.sport = th->source;
	t.ipv4.dport = th->dest;
	sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 101;
	full = bpf_sk_fullsock(sk);
	if (full)
		r = full->state | full->protocol << 24;
	listener = bpf_get_listener_sock(sk);
	if (listener)
		r |= 0x100 | listener->state << 16;
	assign = bpf_sk_assign(skb, sk, 0);
	assign_flags = bpf_sk_assign(skb, sk, 1);
	bpf_sk_release(sk);
	bpf_skb_store_bytes(skb, 14, &assign, sizeof(assign), 0);
	bpf_skb_store_bytes(skb, 18, &assign_flags, sizeof(assign_flags), 0);
	return r;
}

SEC("tc")
int tc_tstamp(struct __sk_buff *skb)
{
	__s64 res[8];

	res[0] = bpf_skb_set_tstamp(skb, 0x1234, 1 /* BPF_SKB_CLOCK_MONOTONIC */);
	res[1] = skb->tstamp;
	res[2] = skb->tstamp_type;
	res[3] = bpf_skb_set_tstamp(skb, 0, 1);
	res[4] = bpf_skb_set_tstamp(skb, 7, 3);
	res[5] = bpf_skb_set_tstamp(skb, 0x99, 0 /* BPF_SKB_CLOCK_REALTIME */);
	res[6] = skb->tstamp;
	res[7] = skb->tstamp_type;
	bpf_skb_store_bytes(skb, 14, res, sizeof(res), 0);
	return TC_ACT_OK;
}

SEC("tc")
int tc_tunnel(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {}, got;
	__u8 opt[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, opt_got[12];
	__s32 res[8];

	res[0] = bpf_skb_get_tunnel_key(skb, &got, sizeof(got), 0);
	res[1] = bpf_skb_set_tunnel_opt(skb, opt, sizeof(opt));
	key.tunnel_id = 0x123456;
	key.remote_ipv4 = 0x0a000001;
	key.local_ipv4 = 0x0a000002;
	key.tunnel_tos = 0x10;
	key.tunnel_ttl = 64;
	res[2] = bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX | BPF_F_SEQ_NUMBER);
	res[3] = bpf_skb_set_tunnel_opt(skb, opt, 6);
	res[4] = bpf_skb_set_tunnel_opt(skb, opt, sizeof(opt));
	res[5] = bpf_skb_get_tunnel_key(skb, &got, sizeof(got), 16 /* BPF_F_TUNINFO_FLAGS */);
	res[6] = bpf_skb_get_tunnel_opt(skb, opt_got, sizeof(opt_got));
	res[7] = bpf_skb_get_tunnel_opt(skb, opt_got, 4);
	bpf_skb_store_bytes(skb, 14, res, sizeof(res), 0);
	bpf_skb_store_bytes(skb, 46, &got, sizeof(got), 0);
	bpf_skb_get_tunnel_opt(skb, opt_got, sizeof(opt_got));
	bpf_skb_store_bytes(skb, 90, opt_got, sizeof(opt_got), 0);
	return TC_ACT_OK;
}

SEC("tc")
int tc_tunnel6(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {}, got;
	__s32 res[6];

	key.tunnel_id = 7;
	key.remote_ipv6[0] = 0x000080fe;
	key.remote_ipv6[3] = 0x01000000;
	key.local_ipv6[0] = 0x000080fe;
	key.local_ipv6[3] = 0x02000000;
	key.tunnel_label = 0xfff12345;
	res[0] = bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0);
	key.tunnel_label = 5;
	res[1] = bpf_skb_set_tunnel_key(skb, &key, sizeof(key), 0 /* a label needs IPv6 */);
	res[2] = bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_TUNINFO_IPV6 | 4 | 16);
	res[3] = bpf_skb_get_tunnel_key(skb, &got, sizeof(got), 0 /* IPv4 asked: -EPROTO */);
	res[4] = bpf_skb_get_tunnel_key(skb, &got, 28, BPF_F_TUNINFO_IPV6 | 16);
	res[5] = bpf_skb_set_tunnel_key(skb, &key, 30, BPF_F_TUNINFO_IPV6);
	bpf_skb_store_bytes(skb, 14, res, sizeof(res), 0);
	bpf_skb_store_bytes(skb, 38, &got, sizeof(got), 0);
	return TC_ACT_OK;
}

SEC("xdp")
int xdp_strncmp(struct xdp_md *ctx)
{
	char buf[9];
	__s32 res[3];

	if (bpf_xdp_load_bytes(ctx, 54, buf, sizeof(buf)))
		return XDP_ABORTED;
	res[0] = bpf_strncmp(buf, sizeof(buf), "hello");
	res[1] = bpf_strncmp(buf, 4, "help");
	res[2] = bpf_strncmp(buf, 1, "z");
	bpf_xdp_store_bytes(ctx, 14, res, sizeof(res));
	return XDP_PASS;
}

/* A SYN's raw cookie, then its check on the ACK that answers it (built on the stack), on an
 * ACK one off, and on the frame itself. TH_LEN: the TCP header length the frame has. */
static __always_inline int raw_syncookie(struct xdp_md *ctx, const __u32 th_len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	struct tcphdr *th = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	struct {
		struct iphdr ip;
		struct tcphdr tcp;
	} ack;
	__s64 cookie;
	__s32 res[4];

	if ((void *)th + th_len > data_end)
		return XDP_ABORTED;
	cookie = bpf_tcp_raw_gen_syncookie_ipv4(iph, th, th_len);
	__builtin_memcpy(&ack.ip, iph, sizeof(ack.ip));
	__builtin_memcpy(&ack.tcp, th, sizeof(ack.tcp));
	res[0] = cookie < 0 ? (__s32)cookie : (__s32)(cookie >> 32);
	ack.tcp.ack_seq = bpf_htonl((__u32)cookie + 1);
	ack.tcp.seq = bpf_htonl(bpf_ntohl(th->seq) + 1);
	ack.tcp.syn = 0;
	ack.tcp.ack = 1;
	res[1] = bpf_tcp_raw_check_syncookie_ipv4(&ack.ip, &ack.tcp);
	ack.tcp.ack_seq = bpf_htonl((__u32)cookie + 2);
	res[2] = bpf_tcp_raw_check_syncookie_ipv4(&ack.ip, &ack.tcp);
	res[3] = bpf_tcp_raw_check_syncookie_ipv4(iph, th);
	bpf_xdp_store_bytes(ctx, 14, res, sizeof(res));
	return XDP_PASS;
}

SEC("xdp")
int xdp_raw_syncookie(struct xdp_md *ctx)
{
	return raw_syncookie(ctx, 20);
}

SEC("xdp")
int xdp_raw_syncookie_mss(struct xdp_md *ctx)
{
	return raw_syncookie(ctx, 24);
}

/* The IPv6 version of raw_syncookie, for a 24-byte TCP header (an MSS option). */
SEC("xdp")
int xdp_raw_syncookie6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6h = data + sizeof(struct ethhdr);
	struct tcphdr *th = data + sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
	struct {
		struct ipv6hdr ip;
		struct tcphdr tcp;
	} ack;
	__s64 cookie;
	__s32 res[3];

	if ((void *)th + 24 > data_end)
		return XDP_ABORTED;
	cookie = bpf_tcp_raw_gen_syncookie_ipv6(ip6h, th, 24);
	__builtin_memcpy(&ack.ip, ip6h, sizeof(ack.ip));
	__builtin_memcpy(&ack.tcp, th, sizeof(ack.tcp));
	res[0] = cookie < 0 ? (__s32)cookie : (__s32)(cookie >> 32);
	ack.tcp.ack_seq = bpf_htonl((__u32)cookie + 1);
	ack.tcp.seq = bpf_htonl(bpf_ntohl(th->seq) + 1);
	ack.tcp.syn = 0;
	ack.tcp.ack = 1;
	res[1] = bpf_tcp_raw_check_syncookie_ipv6(&ack.ip, &ack.tcp);
	ack.ip.saddr.s6_addr[15] ^= 1;
	res[2] = bpf_tcp_raw_check_syncookie_ipv6(&ack.ip, &ack.tcp);
	bpf_xdp_store_bytes(ctx, 14, res, sizeof(res));
	return XDP_PASS;
}

SEC("tc")
int tc_tcp_sock(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	struct tcphdr *th = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	struct bpf_sock_tuple t = {};
	struct bpf_tcp_sock *tp;
	struct bpf_sock *sk;
	__u32 v[28];

	if ((void *)(th + 1) > data_end)
		return 100;
	t.ipv4.saddr = iph->saddr;
	t.ipv4.daddr = iph->daddr;
	t.ipv4.sport = th->source;
	t.ipv4.dport = th->dest;
	sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 101;
	tp = bpf_tcp_sock(sk);
	if (!tp) {
		bpf_sk_release(sk);
		return 102;
	}
	v[0] = tp->snd_cwnd;
	v[1] = tp->srtt_us;
	v[2] = tp->rtt_min;
	v[3] = tp->snd_ssthresh;
	v[4] = tp->rcv_nxt;
	v[5] = tp->snd_nxt;
	v[6] = tp->snd_una;
	v[7] = tp->mss_cache;
	v[8] = tp->ecn_flags;
	v[9] = tp->rate_delivered;
	v[10] = tp->rate_interval_us;
	v[11] = tp->packets_out;
	v[12] = tp->retrans_out;
	v[13] = tp->total_retrans;
	v[14] = tp->segs_in;
	v[15] = tp->data_segs_in;
	v[16] = tp->segs_out;
	v[17] = tp->data_segs_out;
	v[18] = tp->lost_out;
	v[19] = tp->sacked_out;
	v[20] = tp->bytes_received;
	v[21] = tp->bytes_received >> 32;
	v[22] = tp->bytes_acked;
	v[23] = tp->bytes_acked >> 32;
	v[24] = tp->dsack_dups;
	v[25] = tp->delivered;
	v[26] = tp->delivered_ce;
	v[27] = tp->icsk_retransmits;
	bpf_sk_release(sk);
	bpf_skb_store_bytes(skb, 14, v, sizeof(v), 0);
	return 0;
}

SEC("xdp")
int xdp_strtol(struct xdp_md *ctx)
{
	char buf[24];
	__s64 res[9];
	long l = 7;
	unsigned long ul = 7;

	if (bpf_xdp_load_bytes(ctx, 54, buf, sizeof(buf)))
		return XDP_ABORTED;
	res[0] = bpf_strtol(buf, sizeof(buf), 0, &l);
	res[1] = l;
	res[2] = bpf_strtoul(buf, sizeof(buf), 0, &ul);
	res[3] = ul;
	res[4] = bpf_strtol(buf, sizeof(buf), 16, &l);
	res[5] = l;
	res[6] = bpf_strtoul(buf, sizeof(buf), 8, &ul);
	res[7] = ul;
	res[8] = bpf_strtol(buf, sizeof(buf), 2, &l);
	bpf_xdp_store_bytes(ctx, 14, res, sizeof(res));
	return XDP_PASS;
}

struct timer_elem {
	struct bpf_timer t;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct timer_elem);
} timers SEC(".maps");

static int timer_cb(void *map, __u32 *key, struct timer_elem *val)
{
	return 0;
}

SEC("xdp")
int xdp_timer(struct xdp_md *ctx)
{
	const __u64 hour = 3600ULL * 1000000000ULL;
	struct timer_elem *e;
	__u32 key = 0;
	__s32 res[8];

	e = bpf_map_lookup_elem(&timers, &key);
	if (!e)
		return XDP_ABORTED;
	res[0] = bpf_timer_init(&e->t, &timers, 1 /* CLOCK_MONOTONIC */);
	res[1] = bpf_timer_start(&e->t, hour, 0);
	res[2] = bpf_timer_set_callback(&e->t, timer_cb);
	res[3] = bpf_timer_start(&e->t, hour, 0);
	res[4] = bpf_timer_cancel(&e->t);
	res[5] = bpf_timer_cancel(&e->t);
	res[6] = bpf_timer_start(&e->t, hour, 0);
	res[7] = bpf_timer_init(&e->t, &timers, 2 /* CLOCK_PROCESS_CPUTIME_ID */);
	bpf_xdp_store_bytes(ctx, 14, res, sizeof(res));
	return XDP_PASS;
}

static __always_inline __s32 nonzero(const __u8 *buf, int len)
{
	__s32 n = 0;

	for (int i = 0; i < len; i++)
		n += buf[i] != 0;
	return n;
}

SEC("tc")
int tc_meta(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key;
	struct bpf_xfrm_state xs;
	__u8 opt[16];
	__s32 res[9];

	__builtin_memset(&key, 0xff, sizeof(key));
	__builtin_memset(&xs, 0xff, sizeof(xs));
	__builtin_memset(opt, 0xff, sizeof(opt));
	res[0] = bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0);
	res[1] = nonzero((const __u8 *)&key, sizeof(key));
	res[2] = bpf_skb_get_tunnel_opt(skb, opt, sizeof(opt));
	res[3] = nonzero(opt, sizeof(opt));
	res[4] = bpf_skb_get_xfrm_state(skb, 0, &xs, sizeof(xs), 0);
	res[5] = nonzero((const __u8 *)&xs, sizeof(xs));
	res[6] = bpf_get_route_realm(skb);
	res[7] = bpf_get_cgroup_classid(skb);
	res[8] = bpf_skb_cgroup_classid(skb);
	bpf_skb_store_bytes(skb, 14, res, sizeof(res), 0);
	return TC_ACT_OK;
}
