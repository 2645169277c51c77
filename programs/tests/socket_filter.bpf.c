// SPDX-License-Identifier: GPL-2.0
/*
 * socket_filter.bpf.c - SEC("socket") programs (BPF_PROG_TYPE_SOCKET_FILTER).
 *
 * The return value is the number of bytes of the packet to keep (0 = drop). In
 * BPF_PROG_TEST_RUN (and on a real socket) a socket filter's skb->data points at the network
 * header: the 14-byte Ethernet header of data_in is pulled before the program runs, so
 * skb->len = len(data_in) - 14 and offset 0 is the first byte of the IPv4 header
 * (the test run's data_out comes back with those 14 bytes zeroed).
 *
 * Exercises bpf_skb_load_bytes (including an out-of-range read returning -EFAULT), the legacy
 * LD_ABS packet loads (llvm.bpf.load.byte/half/word builtins), __sk_buff->len/protocol.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Classic LD_ABS loads (BPF_LD | BPF_ABS | BPF_B/H/W): network-byte-order loads from skb. */
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

/* sock_res[0] = return of an out-of-range bpf_skb_load_bytes (expected -EFAULT = -14). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} sock_res SEC(".maps");

/* Keep whole IPv4/UDP datagrams to port 53, drop everything else. */
SEC("socket")
int sock_dns_only(struct __sk_buff *skb)
{
	struct iphdr iph;
	struct udphdr udp;
	__u32 key = 0;
	__s64 err;
	__u8 tail[4];

	err = bpf_skb_load_bytes(skb, skb->len, tail, sizeof(tail));
	bpf_map_update_elem(&sock_res, &key, &err, BPF_ANY);

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)))
		return 0;
	if (iph.protocol != IPPROTO_UDP || iph.ihl != 5)
		return 0;
	if (bpf_skb_load_bytes(skb, sizeof(iph), &udp, sizeof(udp)))
		return 0;
	return udp.dest == bpf_htons(53) ? skb->len : 0;
}

/*
 * LD_ABS: keep the first 20 bytes (just the IPv4 header) of TCP segments; for UDP keep
 * (IPv4 total length read with a half-word LD_ABS); for other protocols return the IPv4
 * destination address's last byte (a word LD_ABS at offset 16) or 0 for non-IPv4.
 */
SEC("socket")
int sock_ldabs(struct __sk_buff *skb)
{
	__u32 proto;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	proto = load_byte(skb, offsetof(struct iphdr, protocol));
	if (proto == IPPROTO_TCP)
		return 20;
	if (proto == IPPROTO_UDP)
		return load_half(skb, offsetof(struct iphdr, tot_len));
	return load_word(skb, offsetof(struct iphdr, daddr)) & 0xff;
}

char LICENSE[] SEC("license") = "GPL";
