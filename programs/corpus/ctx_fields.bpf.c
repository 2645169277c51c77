// SPDX-License-Identifier: GPL-2.0
/* ctx_fields: what a program sees in its context beyond the packet, as telemetry programs
 * record it (skb metadata exporters, xdp-monitor): every readable __sk_buff field for tc,
 * socket filter and cgroup_skb programs and every xdp_md field for XDP, each stored in its
 * own slot of an array so a difference names the field. (xdp_md.egress_ifindex is only
 * readable by devmap programs.) */
#include "corpus.h"

enum {
	F_LEN, F_PKT_TYPE, F_MARK, F_QUEUE_MAPPING, F_PROTOCOL, F_VLAN_PRESENT, F_VLAN_TCI,
	F_VLAN_PROTO, F_PRIORITY, F_INGRESS_IFINDEX, F_IFINDEX, F_TC_INDEX, F_HASH, F_TC_CLASSID,
	F_DATA_LEN, F_NAPI_ID, F_FAMILY, F_WIRE_LEN, F_GSO_SEGS, F_GSO_SIZE, F_HWTSTAMP,
	F_CB0, F_DATA_META, F_MAX
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4 * F_MAX);
	__type(key, __u32);
	__type(value, __u64);
} fields SEC(".maps");

static __always_inline void put(__u32 base, __u32 f, __u64 v)
{
	__u32 key = base * F_MAX + f;
	__u64 *slot = bpf_map_lookup_elem(&fields, &key);

	if (slot)
		*slot = v;
}

static __always_inline void skb_fields(struct __sk_buff *skb, __u32 base, int direct)
{
	put(base, F_LEN, skb->len);
	put(base, F_PKT_TYPE, skb->pkt_type);
	put(base, F_MARK, skb->mark);
	put(base, F_QUEUE_MAPPING, skb->queue_mapping);
	put(base, F_PROTOCOL, skb->protocol);
	put(base, F_VLAN_PRESENT, skb->vlan_present);
	put(base, F_VLAN_TCI, skb->vlan_tci);
	put(base, F_VLAN_PROTO, skb->vlan_proto);
	put(base, F_PRIORITY, skb->priority);
	put(base, F_INGRESS_IFINDEX, skb->ingress_ifindex);
	put(base, F_IFINDEX, skb->ifindex);
	put(base, F_HASH, skb->hash);
	put(base, F_CB0, skb->cb[0]);
	if (direct)
		put(base, F_DATA_LEN, (long)skb->data_end - (long)skb->data);
}

SEC("tc")
int tc_fields(struct __sk_buff *skb)
{
	skb_fields(skb, 0, 1);
	put(0, F_TC_INDEX, skb->tc_index);
	put(0, F_TC_CLASSID, skb->tc_classid);
	put(0, F_NAPI_ID, skb->napi_id);
	put(0, F_WIRE_LEN, skb->wire_len);
	put(0, F_GSO_SEGS, skb->gso_segs);
	put(0, F_GSO_SIZE, skb->gso_size);
	put(0, F_HWTSTAMP, skb->hwtstamp);
	put(0, F_DATA_META, (long)skb->data - (long)skb->data_meta);
	return TC_ACT_OK;
}

SEC("socket")
int socket_fields(struct __sk_buff *skb)
{
	skb_fields(skb, 1, 0);
	return skb->len;
}

SEC("cgroup_skb/ingress")
int cgroup_fields(struct __sk_buff *skb)
{
	skb_fields(skb, 2, 1);
	put(2, F_FAMILY, skb->family);
	put(2, F_NAPI_ID, skb->napi_id);
	return 1;
}

SEC("xdp")
int xdp_fields(struct xdp_md *ctx)
{
	put(3, F_LEN, ctx->data_end - ctx->data);
	put(3, F_DATA_META, ctx->data - ctx->data_meta);
	put(3, F_INGRESS_IFINDEX, ctx->ingress_ifindex);
	put(3, F_QUEUE_MAPPING, ctx->rx_queue_index);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
