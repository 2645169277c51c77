// SPDX-License-Identifier: GPL-2.0
/* socket_ldabs_netoff: a socket filter using LD_ABS relative to the network and link-layer
 * headers (SKF_NET_OFF / SKF_LL_OFF negative offsets, as classic filters from libpcap and
 * the kernel's own BPF tests do): IPv4 TCP SYNs to port 80/443 are kept. */
#include "corpus.h"

#define SKF_NET_OFF (-0x100000)
#define SKF_LL_OFF (-0x200000)

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

SEC("socket")
int sock_syn_netoff(struct __sk_buff *skb)
{
	__u32 ihl, flags, dport;

	if (load_half(skb, SKF_LL_OFF + 12) != ETH_P_IP)
		return 0;
	if (load_byte(skb, SKF_NET_OFF + 9) != IPPROTO_TCP)
		return 0;
	ihl = (load_byte(skb, SKF_NET_OFF) & 0xf) << 2;
	dport = load_half(skb, SKF_NET_OFF + ihl + 2);
	flags = load_byte(skb, SKF_NET_OFF + ihl + 13);
	if ((flags & 0x12) != 0x02)
		return 0;
	return dport == 80 || dport == 443 ? 0xffff : 0;
}

char _license[] SEC("license") = "GPL";
