// SPDX-License-Identifier: GPL-2.0
/* socket_tcpdump: a socket filter compiled from C the way classic BPF filters work: packet
 * bytes read with LD_ABS/LD_IND (the load_byte/load_half/load_word builtins of the kernel's
 * samples), implementing "ip and tcp and (dst port 80 or dst port 443)" plus "udp port 53";
 * the return value is the snap length to keep (0 drops). */
#include "corpus.h"

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

SEC("socket")
int sock_tcpdump(struct __sk_buff *skb)
{
	__u32 ihl, dport, proto;

	if (load_half(skb, offsetof(struct ethhdr, h_proto)) != ETH_P_IP)
		return 0;
	proto = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
	if (load_half(skb, ETH_HLEN + offsetof(struct iphdr, frag_off)) & IP_OFFSET)
		return 0;
	ihl = (load_byte(skb, ETH_HLEN) & 0x0f) << 2;
	dport = load_half(skb, ETH_HLEN + ihl + 2);
	if (proto == IPPROTO_TCP && (dport == 80 || dport == 443))
		return 0x40000;
	if (proto == IPPROTO_UDP && (dport == 53 || load_half(skb, ETH_HLEN + ihl) == 53))
		return 96;
	if (proto == IPPROTO_ICMP && load_word(skb, ETH_HLEN + 16) == VIP4)
		return 64;
	return 0;
}

char _license[] SEC("license") = "GPL";
