// SPDX-License-Identifier: GPL-2.0
/*
 * skb_helpers.bpf.c - sk_buff data helpers in SEC("tc") programs (BPF_PROG_TYPE_SCHED_CLS),
 * each with an exact output frame (BPF_PROG_TEST_RUN data_out; see FIXTURES.md and
 * packets/expected/).
 *
 *   skb_swap_macs    bpf_skb_load_bytes + bpf_skb_store_bytes: swap destination and source
 *                    MAC addresses.
 *   skb_pull_bcast   bpf_skb_pull_data(skb, skb->len) then a direct write: destination MAC
 *                    becomes ff:ff:ff:ff:ff:ff.
 *   skb_grow_tail    bpf_skb_change_tail(skb, len + 6, 0): 6 zero bytes appended.
 *   skb_shrink_tail  bpf_skb_change_tail(skb, len - 8, 0): last 8 bytes removed.
 *   skb_room_net     bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0): 8 zero bytes
 *                    inserted after the IPv4 header (headers are not rewritten).
 *   skb_room_mac     bpf_skb_adjust_room(skb, 4, BPF_ADJ_ROOM_MAC, 0): 4 zero bytes inserted
 *                    after the Ethernet header.
 *   skb_to_ipv6      bpf_skb_change_proto(skb, htons(ETH_P_IPV6), 0): 20 zero bytes inserted
 *                    after the Ethernet header (room for a 40-byte IPv6 header); the program
 *                    then writes ethertype 0x86dd. skb_res[0] = skb->protocol afterwards.
 *   skb_vlan         on packets/vlan_ipv4_udp.bin: bpf_skb_vlan_pop (tag leaves the payload),
 *                    then bpf_skb_vlan_push(0x8100, 200): the new tag is kept as skb
 *                    metadata (hw-accel tag), not written into the data.
 *                    skb_res[1] = vlan_present after pop (0), skb_res[2] = vlan_present after
 *                    push (1), skb_res[3] = vlan_tci after push (200),
 *                    skb_res[4] = skb->protocol after pop (0x0800 as read: 8).
 * Each returns TC_ACT_OK (0) when its helper calls returned 0, TC_ACT_SHOT (2) otherwise;
 * skb_res[5..12] hold the raw helper results in the order listed above
 * (5 store, 6 pull, 7 grow, 8 shrink, 9 room_net, 10 room_mac, 11 change_proto, 12 vlan).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 13);
	__type(key, __u32);
	__type(value, __s64);
} skb_res SEC(".maps");

static __always_inline void res(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&skb_res, &slot, &v, BPF_ANY);
}

static __always_inline int verdict(__u32 slot, long r)
{
	res(slot, r);
	return r ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int skb_swap_macs(struct __sk_buff *skb)
{
	__u8 macs[12], swapped[12];
	long r;

	r = bpf_skb_load_bytes(skb, 0, macs, sizeof(macs));
	if (r)
		return verdict(5, r);
	__builtin_memcpy(swapped, macs + 6, 6);
	__builtin_memcpy(swapped + 6, macs, 6);
	return verdict(5, bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0));
}

SEC("tc")
int skb_pull_bcast(struct __sk_buff *skb)
{
	void *data, *data_end;
	long r = bpf_skb_pull_data(skb, skb->len);

	if (r)
		return verdict(6, r);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (data + ETH_ALEN > data_end)
		return verdict(6, -1);
	__builtin_memset(data, 0xff, ETH_ALEN);
	return verdict(6, 0);
}

SEC("tc")
int skb_grow_tail(struct __sk_buff *skb)
{
	return verdict(7, bpf_skb_change_tail(skb, skb->len + 6, 0));
}

SEC("tc")
int skb_shrink_tail(struct __sk_buff *skb)
{
	return verdict(8, bpf_skb_change_tail(skb, skb->len - 8, 0));
}

SEC("tc")
int skb_room_net(struct __sk_buff *skb)
{
	return verdict(9, bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0));
}

SEC("tc")
int skb_room_mac(struct __sk_buff *skb)
{
	return verdict(10, bpf_skb_adjust_room(skb, 4, BPF_ADJ_ROOM_MAC, 0));
}

SEC("tc")
int skb_to_ipv6(struct __sk_buff *skb)
{
	__be16 proto = bpf_htons(ETH_P_IPV6);
	long r = bpf_skb_change_proto(skb, proto, 0);

	res(0, skb->protocol);
	if (r)
		return verdict(11, r);
	return verdict(11, bpf_skb_store_bytes(skb, 12, &proto, sizeof(proto), 0));
}

SEC("tc")
int skb_vlan(struct __sk_buff *skb)
{
	long r = bpf_skb_vlan_pop(skb);

	res(1, skb->vlan_present);
	res(4, skb->protocol);
	if (r)
		return verdict(12, r);
	r = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), 200);
	res(2, skb->vlan_present);
	res(3, skb->vlan_tci);
	return verdict(12, r);
}

char LICENSE[] SEC("license") = "GPL";
