//! `struct __sk_buff`: the context of socket filters, tc classifiers and actions, cgroup_skb,
//! lwt and sk_skb programs, and `struct bpf_flow_dissector` (seen through the same layout) for
//! flow dissectors.
//!
//! The skb is built the way `BPF_PROG_TEST_RUN` builds it (net/bpf/test_run.c,
//! `bpf_prog_test_run_skb`): the packet is copied behind `NET_SKB_PAD + NET_IP_ALIGN` bytes of
//! headroom, `eth_type_trans()` on the loopback device sets `protocol` and `pkt_type` and pulls
//! the Ethernet header, and tc programs get it pushed back (they see the frame from the MAC
//! header; every other type sees it from the network header). After the run the non-tc types
//! get 14 zeroed bytes pushed in front of the output packet.
//!
//! Which field accesses are allowed is decided by the program type's [`super::layout`] table
//! (the kernel's `*_is_valid_access()` rules); values follow the kernel's
//! `bpf_convert_ctx_access()` rewriting, narrow loads included: a narrow load reads the field
//! with the width the rewrite uses and only shifts and masks when the access is narrower than
//! that width (so a 2-byte load of the 2-byte `protocol` at offset 18 reads `protocol` itself).
//!
//! `sk` points to the run's own socket, as `bpf_prog_test_run_skb` allocates one per run
//! (`sk_alloc(AF_UNSPEC)` + `sock_init_data(NULL, sk)`, family and addresses from the IP
//! header): a read-only `struct bpf_sock` region the socket helpers recognize
//! ([`crate::sock::test_run_bpf_sock`]), freed after the run together with its sk_storage
//! ([`crate::world::World::uninstall_ctx`]). An sk_skb run given a socket sees that socket.
//! Every run's socket has the same cookie ([`SOCKET_COOKIE`]); the kernel's differ per run.
//!
//! The packet region holds exactly the bytes from `data` to the tail, so LD_ABS/LD_IND offsets
//! are relative to `skb->data` as in the kernel; the bytes in front of `data` (headroom and
//! pulled headers) are kept in [`SkbCtx::head`].

use std::any::Any;

use super::layout::Yields;
use super::{CtxError, Installed, Target, allowed, denied, read_field, write_field};
use crate::engine::{ProgType, RunInput};
use crate::memory::{Access, ContextAccess, MemError, Memory, Perm, RegionId, RegionKind};
use crate::sock::{INIT_NET_COOKIE, SockId, SockView, map_detached, test_run_bpf_sock};

/// Size of `struct __sk_buff`.
pub const SK_BUFF_SIZE: usize = super::layout::SK_BUFF_SIZE as usize;
/// Length of an Ethernet header (`ETH_HLEN`).
pub const ETH_HLEN: usize = 14;
/// Headroom in front of the packet in a test run (`NET_SKB_PAD + NET_IP_ALIGN` on x86-64).
pub const SKB_HEADROOM: usize = 64;
/// Bytes at the end of the buffer for `struct skb_shared_info` (`SKB_DATA_ALIGN`ed).
pub const SKB_SHARED_INFO: usize = 320;
/// Largest packet a test run accepts (`PAGE_SIZE - headroom - tailroom`).
pub const MAX_PACKET: usize = 4096 - SKB_HEADROOM - SKB_SHARED_INFO;
/// Largest skb the resizing helpers build (`BPF_SKB_MAX_LEN` = `SKB_MAX_ALLOC`).
pub const BPF_SKB_MAX_LEN: u32 = (4096 << 2) - SKB_SHARED_INFO as u32;
/// The ifindex of the loopback device, the device of every simulated skb.
pub const LOOPBACK_IFINDEX: u32 = 1;
/// `GSO_LEGACY_MAX_SIZE`: the largest `wire_len` a test run accepts.
pub const GSO_LEGACY_MAX_SIZE: u32 = 65536;
/// `GSO_MAX_SEGS`: the largest `gso_segs` a test run accepts.
pub const GSO_MAX_SEGS: u32 = 65535;
/// Size of `struct bpf_flow_keys`.
pub const FLOW_KEYS_SIZE: usize = 56;
/// Offset of `flags` in `struct bpf_flow_keys`.
pub const FLOW_KEYS_FLAGS: usize = 48;
/// The socket cookie the test run's socket reports (any nonzero value; the kernel's comes from
/// a global counter).
pub const SOCKET_COOKIE: u64 = 0x1000;

/// `ETH_P_IP`.
pub const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// `ETH_P_8021Q`.
pub const ETH_P_8021Q: u16 = 0x8100;
/// `ETH_P_8021AD`.
pub const ETH_P_8021AD: u16 = 0x88a8;
/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// Offsets of the fields of `struct __sk_buff`.
pub mod off {
    /// `len`.
    pub const LEN: usize = 0;
    /// `pkt_type`.
    pub const PKT_TYPE: usize = 4;
    /// `mark`.
    pub const MARK: usize = 8;
    /// `queue_mapping`.
    pub const QUEUE_MAPPING: usize = 12;
    /// `protocol`.
    pub const PROTOCOL: usize = 16;
    /// `vlan_present`.
    pub const VLAN_PRESENT: usize = 20;
    /// `vlan_tci`.
    pub const VLAN_TCI: usize = 24;
    /// `vlan_proto`.
    pub const VLAN_PROTO: usize = 28;
    /// `priority`.
    pub const PRIORITY: usize = 32;
    /// `ingress_ifindex`.
    pub const INGRESS_IFINDEX: usize = 36;
    /// `ifindex`.
    pub const IFINDEX: usize = 40;
    /// `tc_index`.
    pub const TC_INDEX: usize = 44;
    /// `cb[0]` (five u32).
    pub const CB: usize = 48;
    /// End of `cb[4]`.
    pub const CB_END: usize = 68;
    /// `hash`.
    pub const HASH: usize = 68;
    /// `tc_classid`.
    pub const TC_CLASSID: usize = 72;
    /// `data`.
    pub const DATA: usize = 76;
    /// `data_end`.
    pub const DATA_END: usize = 80;
    /// `napi_id`.
    pub const NAPI_ID: usize = 84;
    /// `family`.
    pub const FAMILY: usize = 88;
    /// `remote_ip4`.
    pub const REMOTE_IP4: usize = 92;
    /// `local_ip4`.
    pub const LOCAL_IP4: usize = 96;
    /// `remote_ip6[0]`.
    pub const REMOTE_IP6: usize = 100;
    /// `local_ip6[0]`.
    pub const LOCAL_IP6: usize = 116;
    /// `remote_port`.
    pub const REMOTE_PORT: usize = 132;
    /// `local_port`.
    pub const LOCAL_PORT: usize = 136;
    /// `data_meta`.
    pub const DATA_META: usize = 140;
    /// `flow_keys` (a pointer).
    pub const FLOW_KEYS: usize = 144;
    /// `tstamp` (u64).
    pub const TSTAMP: usize = 152;
    /// `wire_len`.
    pub const WIRE_LEN: usize = 160;
    /// `gso_segs`.
    pub const GSO_SEGS: usize = 164;
    /// `sk` (a pointer).
    pub const SK: usize = 168;
    /// `gso_size`.
    pub const GSO_SIZE: usize = 176;
    /// `tstamp_type` (u8).
    pub const TSTAMP_TYPE: usize = 180;
    /// `hwtstamp` (u64).
    pub const HWTSTAMP: usize = 184;
}

/// Which program type's access rules apply to an `__sk_buff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkbRules {
    /// `sk_filter_is_valid_access`: socket filters.
    SocketFilter,
    /// `tc_cls_act_is_valid_access`: tc classifiers and actions.
    TcClsAct,
    /// `cg_skb_is_valid_access`: cgroup_skb programs.
    CgroupSkb,
    /// `lwt_is_valid_access`: lwt_in, lwt_out, lwt_xmit and lwt_seg6local programs.
    Lwt,
    /// `sk_skb_is_valid_access`: sk_skb stream parsers and verdicts.
    SkSkb,
}

impl SkbRules {
    /// The rules of a program type, if it has an `__sk_buff` context.
    pub fn of(prog_type: ProgType) -> Option<SkbRules> {
        Some(match prog_type {
            ProgType::SocketFilter => SkbRules::SocketFilter,
            ProgType::SchedCls | ProgType::SchedAct => SkbRules::TcClsAct,
            ProgType::CgroupSkb => SkbRules::CgroupSkb,
            ProgType::LwtIn | ProgType::LwtOut | ProgType::LwtXmit | ProgType::LwtSeg6local => {
                SkbRules::Lwt
            }
            ProgType::SkSkb => SkbRules::SkSkb,
            _ => return None,
        })
    }
}

/// The skb's `ip_summed` state, as far as programs can observe it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpSummed {
    /// `CHECKSUM_NONE` (a test run's skb).
    #[default]
    None,
    /// `CHECKSUM_UNNECESSARY`, set through `bpf_csum_level`.
    Unnecessary,
}

/// The socket attached to the skb (`skb->sk`), as the test run's dummy socket fills it: what
/// the `__sk_buff` socket fields and the skb socket helpers read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SkbSock {
    /// `skc_family` (`AF_INET` for IPv4 packets, `AF_INET6` for IPv6, else 0).
    pub family: u16,
    /// `skc_rcv_saddr`: the IPv4 source address, in network byte order.
    pub rcv_saddr: [u8; 4],
    /// `skc_daddr`: the IPv4 destination address, in network byte order.
    pub daddr: [u8; 4],
    /// `skc_v6_rcv_saddr`: the IPv6 source address.
    pub v6_rcv_saddr: [u8; 16],
    /// `skc_v6_daddr`: the IPv6 destination address.
    pub v6_daddr: [u8; 16],
    /// `skc_dport` in network byte order (0 in a test run).
    pub dport: [u8; 2],
    /// `skc_num`: the local port in host byte order (0 in a test run).
    pub num: u16,
    /// What `bpf_get_socket_cookie` returns.
    pub cookie: u64,
    /// What `bpf_get_socket_uid` returns.
    pub uid: u32,
}

/// The tunnel metadata `bpf_skb_set_tunnel_key`/`_opt` attach to an skb: the kernel's
/// per-CPU `struct ip_tunnel_info` its metadata dst points at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TunnelInfo {
    /// The addresses are IPv6 ones (`IP_TUNNEL_INFO_IPV6`).
    pub ipv6: bool,
    /// `key.tun_id`.
    pub id: u64,
    /// `key.tos`.
    pub tos: u8,
    /// `key.ttl`.
    pub ttl: u8,
    /// `key.tun_flags`: a bit per `IP_TUNNEL_*_BIT`.
    pub flags: u32,
    /// `key.u.ipv4.src` or `key.u.ipv6.src` in network order (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    /// `key.u.ipv4.dst` or `key.u.ipv6.dst`, likewise.
    pub dst: [u8; 16],
    /// `key.label`.
    pub label: u32,
    /// The tunnel options (`options_len` bytes).
    pub options: Vec<u8>,
}

/// The `__sk_buff` context of one run: the packet and the skb's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkbCtx {
    /// Access rules (by program type).
    pub rules: SkbRules,
    /// The program type.
    pub prog_type: ProgType,
    /// The packet region: exactly the bytes from `data` to the tail (`len` bytes).
    pub packet: RegionId,
    /// The bytes from the buffer's head to `data` (headroom and pulled headers).
    pub head: Vec<u8>,
    /// MAC header offset from the buffer's head, if set.
    pub mac_header: Option<usize>,
    /// Network header offset from the buffer's head.
    pub network_header: usize,
    /// Transport header offset from the buffer's head, if set.
    pub transport_header: Option<usize>,
    /// The output packet starts at `data` (tc, sk_skb); otherwise 14 zeroed bytes are pushed.
    pub l2: bool,
    /// `pkt_type` (`PACKET_HOST` ... `PACKET_OTHERHOST`).
    pub pkt_type: u8,
    /// `mark`.
    pub mark: u32,
    /// `priority`.
    pub priority: u32,
    /// `queue_mapping`.
    pub queue_mapping: u16,
    /// `protocol`, in host byte order (e.g. 0x0800).
    pub protocol: u16,
    /// The hw-accel VLAN tag's protocol, in host byte order (0 when no tag).
    pub vlan_proto: u16,
    /// The hw-accel VLAN tag's TCI.
    pub vlan_tci: u16,
    /// `tc_index`.
    pub tc_index: u16,
    /// `cb[]` (the `qdisc_skb_cb` data).
    pub cb: [u8; 20],
    /// `hash`.
    pub hash: u32,
    /// The hash was set by software (`sw_hash`).
    pub sw_hash: bool,
    /// The hash covers the L4 ports (`l4_hash`).
    pub l4_hash: bool,
    /// `tc_classid`.
    pub tc_classid: u16,
    /// `wire_len` (the qdisc cb's `pkt_len`).
    pub wire_len: u32,
    /// `ingress_ifindex` (`skb_iif`).
    pub skb_iif: u32,
    /// `ifindex` of the device.
    pub ifindex: u32,
    /// `tstamp`.
    pub tstamp: u64,
    /// `tstamp_type`.
    pub tstamp_type: u8,
    /// `gso_segs`.
    pub gso_segs: u16,
    /// `gso_size` (nonzero makes the skb a GSO skb).
    pub gso_size: u16,
    /// `hwtstamp`.
    pub hwtstamp: u64,
    /// `ip_summed`.
    pub ip_summed: IpSummed,
    /// `csum_level`.
    pub csum_level: u8,
    /// `encapsulation` (set by an encapsulating `bpf_skb_adjust_room`).
    pub encapsulation: bool,
    /// The socket.
    pub sk: SkbSock,
    /// The socket `skb->sk` points to: the test run's own socket (see [`SkbCtx::sk_owned`]),
    /// or for an sk_skb run given one, that socket of the world's table.
    pub sk_id: Option<SockId>,
    /// `sk_id` is the run's own socket (`bpf_prog_test_run_skb`'s dummy), freed with its
    /// local storage after the run.
    pub sk_owned: bool,
    /// The `__sk_buff` given as the run's ctx_in (normalized to 192 bytes), if any.
    pub ctx_in: Option<Vec<u8>>,
    /// Tunnel metadata a program attached (`bpf_skb_set_tunnel_key`), if any.
    pub tunnel: Option<TunnelInfo>,
}

/// `PACKET_OTHERHOST`, the largest `pkt_type` `bpf_skb_change_type` accepts.
pub const PACKET_OTHERHOST: u8 = 3;

fn bad_ctx(msg: impl Into<String>) -> CtxError {
    CtxError::BadCtx(msg.into())
}

/// Validates `ctx_in` like `bpf_ctx_init`: at most `size` bytes, except zero bytes beyond it.
fn normalize_ctx(ctx: &[u8], size: usize, what: &str) -> Result<Vec<u8>, CtxError> {
    if ctx.len() > size && ctx[size..].iter().any(|&b| b != 0) {
        return Err(bad_ctx(format!(
            "{what} is {size} bytes; the {} bytes given have nonzero bytes beyond it (E2BIG)",
            ctx.len()
        )));
    }
    let mut out = vec![0u8; size];
    let n = ctx.len().min(size);
    out[..n].copy_from_slice(&ctx[..n]);
    Ok(out)
}

/// What `eth_type_trans()` on the loopback device derives from a frame: (pkt_type, protocol).
fn eth_type_trans(frame: &[u8]) -> (u8, u16) {
    let dst = &frame[..6];
    let pkt_type = if dst.iter().all(|&b| b == 0) {
        0 // PACKET_HOST: the loopback's address is all zeros
    } else if dst[0] & 1 != 0 {
        2 // PACKET_MULTICAST (the loopback's broadcast address is all zeros too)
    } else {
        3 // PACKET_OTHERHOST
    };
    let h_proto = u16::from_be_bytes([frame[12], frame[13]]);
    let protocol = if h_proto >= 0x0600 {
        h_proto
    } else if frame.get(14..16) == Some(&[0xff, 0xff]) {
        0x0001 // ETH_P_802_3 (raw 802.3)
    } else {
        0x0004 // ETH_P_802_2
    };
    (pkt_type, protocol)
}

impl SkbCtx {
    /// A context over `region` with every metadata field as a fresh skb has it.
    fn fresh(rules: SkbRules, prog_type: ProgType, region: RegionId) -> SkbCtx {
        SkbCtx {
            rules,
            prog_type,
            packet: region,
            head: vec![0; SKB_HEADROOM],
            mac_header: None,
            network_header: SKB_HEADROOM,
            transport_header: None,
            l2: true,
            pkt_type: 0,
            mark: 0,
            priority: 0,
            queue_mapping: 0,
            protocol: 0,
            vlan_proto: 0,
            vlan_tci: 0,
            tc_index: 0,
            cb: [0; 20],
            hash: 0,
            sw_hash: false,
            l4_hash: false,
            tc_classid: 0,
            wire_len: 0,
            skb_iif: 0,
            ifindex: LOOPBACK_IFINDEX,
            tstamp: 0,
            tstamp_type: 0,
            gso_segs: 0,
            gso_size: 0,
            hwtstamp: 0,
            ip_summed: IpSummed::None,
            csum_level: 0,
            encapsulation: false,
            sk: SkbSock { cookie: SOCKET_COOKIE, ..SkbSock::default() },
            sk_id: None,
            sk_owned: false,
            ctx_in: None,
            tunnel: None,
        }
    }

    /// Offset of `data` from the buffer's head.
    pub fn data_off(&self) -> usize {
        self.head.len()
    }

    /// `skb_network_offset()`: network header minus `data` (negative when before it).
    pub fn network_offset(&self) -> i64 {
        self.network_header as i64 - self.data_off() as i64
    }

    /// `skb_mac_header_len()`: network header minus MAC header.
    pub fn mac_header_len(&self) -> i64 {
        self.network_header as i64 - self.mac_header.unwrap_or(self.network_header) as i64
    }

    /// Whether the skb is a GSO skb (`skb_is_gso`).
    pub fn is_gso(&self) -> bool {
        self.gso_size != 0
    }

    /// Whether a hw-accel VLAN tag is present (`skb_vlan_tag_present`).
    pub fn vlan_present(&self) -> bool {
        self.vlan_proto != 0 || self.vlan_tci != 0
    }

    /// `skb_clear_hash()`.
    pub fn clear_hash(&mut self) {
        self.hash = 0;
        self.sw_hash = false;
        self.l4_hash = false;
    }

    /// Moves `data` back by `n` bytes (`__skb_push`), taking them from the headroom; the
    /// headroom is enlarged first if it is too small (`pskb_expand_head`).
    pub fn push(&mut self, pkt: &mut Vec<u8>, n: usize) {
        if n > self.head.len() {
            let extra = (n - self.head.len()).next_multiple_of(SKB_HEADROOM);
            let mut head = vec![0u8; extra];
            head.append(&mut self.head);
            self.head = head;
            self.mac_header = self.mac_header.map(|m| m + extra);
            self.network_header += extra;
            self.transport_header = self.transport_header.map(|t| t + extra);
        }
        let at = self.head.len() - n;
        let mut front = self.head.split_off(at);
        front.append(pkt);
        *pkt = front;
    }

    /// Moves `data` forward by `n` bytes (`__skb_pull`); `n` must not exceed the packet.
    pub fn pull(&mut self, pkt: &mut Vec<u8>, n: usize) {
        let n = n.min(pkt.len());
        let rest = pkt.split_off(n);
        self.head.append(pkt);
        *pkt = rest;
    }

    /// The byte at head-relative offset `at` of the linear buffer (0 past the tail).
    pub fn linear_byte(&self, pkt: &[u8], at: usize) -> u8 {
        match at.checked_sub(self.head.len()) {
            None => self.head[at],
            Some(i) => pkt.get(i).copied().unwrap_or(0),
        }
    }

    /// The `__sk_buff` bytes `convert_skb_to___skb()` leaves in the run's ctx_out.
    pub fn ctx_bytes(&self) -> Vec<u8> {
        let mut out = self.ctx_in.clone().unwrap_or_else(|| vec![0; SK_BUFF_SIZE]);
        write_field(&mut out, off::MARK, 4, u64::from(self.mark));
        write_field(&mut out, off::PRIORITY, 4, u64::from(self.priority));
        write_field(&mut out, off::INGRESS_IFINDEX, 4, u64::from(self.skb_iif));
        write_field(&mut out, off::IFINDEX, 4, u64::from(self.ifindex));
        write_field(&mut out, off::TSTAMP, 8, self.tstamp);
        out[off::CB..off::CB_END].copy_from_slice(&self.cb);
        write_field(&mut out, off::WIRE_LEN, 4, u64::from(self.wire_len));
        write_field(&mut out, off::GSO_SEGS, 4, u64::from(self.gso_segs));
        write_field(&mut out, off::HWTSTAMP, 8, self.hwtstamp);
        out
    }

    /// Applies a ctx_in like `convert___skb_to_skb()`; `len` is `skb->len` at that point.
    fn apply_ctx_in(&mut self, ctx: &[u8], len: usize) -> Result<(), CtxError> {
        let zero = |from: usize, to: usize| ctx[from..to].iter().all(|&b| b == 0);
        let allowed = "only mark, priority, ingress_ifindex, ifindex, cb, tstamp, wire_len, \
                       gso_segs, gso_size and hwtstamp may be set (EINVAL)";
        if !(zero(0, off::MARK)
            && zero(off::MARK + 4, off::PRIORITY)
            && zero(off::IFINDEX + 4, off::CB)
            && zero(off::CB_END, off::TSTAMP)
            && zero(off::GSO_SEGS + 4, off::GSO_SIZE)
            && zero(off::GSO_SIZE + 4, off::HWTSTAMP))
        {
            return Err(bad_ctx(format!("__sk_buff: {allowed}")));
        }
        let field = |o, n| read_field(ctx, o, n);
        self.mark = field(off::MARK, 4) as u32;
        self.priority = field(off::PRIORITY, 4) as u32;
        self.skb_iif = field(off::INGRESS_IFINDEX, 4) as u32;
        self.tstamp = field(off::TSTAMP, 8);
        self.cb.copy_from_slice(&ctx[off::CB..off::CB_END]);
        let wire_len = field(off::WIRE_LEN, 4) as u32;
        if wire_len == 0 {
            self.wire_len = len as u32;
        } else if (wire_len as usize) < len || wire_len > GSO_LEGACY_MAX_SIZE {
            return Err(bad_ctx(format!(
                "wire_len {wire_len} is below the skb length {len} or above {GSO_LEGACY_MAX_SIZE} (EINVAL)"
            )));
        } else {
            self.wire_len = wire_len;
        }
        let gso_segs = field(off::GSO_SEGS, 4) as u32;
        if gso_segs > GSO_MAX_SEGS {
            return Err(bad_ctx(format!("gso_segs {gso_segs} is above {GSO_MAX_SEGS} (EINVAL)")));
        }
        self.gso_segs = gso_segs as u16;
        self.gso_size = field(off::GSO_SIZE, 4) as u16;
        self.hwtstamp = field(off::HWTSTAMP, 8);
        self.ctx_in = Some(ctx.to_vec());
        Ok(())
    }
}

/// Builds the skb of a `BPF_PROG_TEST_RUN` for a program with `__sk_buff` rules and installs it.
pub(crate) fn install(
    prog_type: ProgType,
    input: &RunInput,
    mem: &mut Memory,
) -> Result<Installed, CtxError> {
    let Some(rules) = SkbRules::of(prog_type) else {
        return Err(CtxError::Unsupported(prog_type));
    };
    let frame = &input.data;
    let len = frame.len();
    let sk_skb = rules == SkbRules::SkSkb;
    if !sk_skb && len < ETH_HLEN {
        return Err(CtxError::PacketTooShort { len, min: ETH_HLEN });
    }
    if len > MAX_PACKET {
        return Err(CtxError::PacketTooLong { len, max: MAX_PACKET });
    }
    let ctx_in = match &input.ctx {
        Some(c) => Some(normalize_ctx(c, SK_BUFF_SIZE, "__sk_buff")?),
        None => None,
    };
    if let Some(c) = &ctx_in {
        let ifindex = read_field(c, off::IFINDEX, 4);
        if ifindex > u64::from(LOOPBACK_IFINDEX) {
            return Err(bad_ctx(format!(
                "no device with ifindex {ifindex}: only the loopback (1) is simulated (ENODEV)"
            )));
        }
    }
    // Packet pointers may be written by tc, lwt_xmit and sk_skb programs only.
    let writable = matches!(
        prog_type,
        ProgType::SchedCls | ProgType::SchedAct | ProgType::LwtXmit | ProgType::SkSkb
    );
    let perm = if writable { Perm::ReadWrite } else { Perm::ReadOnly };
    let mut skb;
    let region;
    if sk_skb {
        // No test run exists for sk_skb: the skb is the message, from its first byte.
        region = mem.alloc(RegionKind::Packet, frame.clone(), perm)?;
        skb = SkbCtx::fresh(rules, prog_type, region);
    } else {
        let (pkt_type, protocol) = eth_type_trans(frame);
        let l3 = &frame[ETH_HLEN..];
        let min = match protocol {
            ETH_P_IP => ETH_HLEN + 20,
            ETH_P_IPV6 => ETH_HLEN + 40,
            _ => ETH_HLEN,
        };
        if len < min {
            return Err(CtxError::PacketTooShort { len, min });
        }
        let l2 = rules == SkbRules::TcClsAct;
        let data = if l2 { frame.clone() } else { l3.to_vec() };
        region = mem.alloc(RegionKind::Packet, data, perm)?;
        skb = SkbCtx::fresh(rules, prog_type, region);
        skb.l2 = l2;
        skb.pkt_type = pkt_type;
        skb.protocol = protocol;
        skb.mac_header = Some(SKB_HEADROOM);
        skb.network_header = SKB_HEADROOM + ETH_HLEN;
        if !l2 {
            skb.head.extend_from_slice(&frame[..ETH_HLEN]);
        }
        match protocol {
            ETH_P_IP => {
                skb.sk.family = AF_INET;
                skb.sk.rcv_saddr.copy_from_slice(&l3[12..16]);
                skb.sk.daddr.copy_from_slice(&l3[16..20]);
            }
            ETH_P_IPV6 => {
                skb.sk.family = AF_INET6;
                skb.sk.v6_rcv_saddr.copy_from_slice(&l3[8..24]);
                skb.sk.v6_daddr.copy_from_slice(&l3[24..40]);
            }
            _ => {}
        }
    }
    if let Some(c) = &ctx_in {
        let skb_len = mem.bytes(region).len();
        if let Err(e) = skb.apply_ctx_in(c, skb_len) {
            mem.free(region);
            return Err(e);
        }
    }
    let mut owned = vec![region];
    // skb->sk: an sk_skb run given a socket sees that socket; every other run its own socket,
    // as bpf_prog_test_run_skb allocates one per run and frees it (and its storage) after.
    let given = input.sock.filter(|_| sk_skb).and_then(|id| SockView::read(mem, id));
    match given {
        Some(view) => {
            skb.sk_id = Some(view.id);
            skb.sk.cookie = view.cookie;
        }
        None => {
            let bytes = test_run_bpf_sock(
                skb.sk.family,
                skb.sk.rcv_saddr,
                skb.sk.daddr,
                skb.sk.v6_rcv_saddr,
                skb.sk.v6_daddr,
            );
            match map_detached(mem, bytes, skb.sk.cookie, INIT_NET_COOKIE) {
                Ok(id) => {
                    skb.sk_id = Some(id);
                    skb.sk_owned = true;
                    owned.extend(id.regions());
                }
                Err(e) => {
                    mem.free(region);
                    return Err(e.into());
                }
            }
        }
    }
    let ld_abs =
        matches!(prog_type, ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct)
            .then_some(region);
    // `load_abs` below serves these loads; the region only marks that they are allowed.
    let id = match mem.set_context(Box::new(skb)) {
        Ok(id) => id,
        Err(e) => {
            for r in owned {
                mem.free(r);
            }
            return Err(e.into());
        }
    };
    Ok(Installed { r1: id.base(), ld_abs, owned })
}

/// Whether `off` falls in the `size`-byte field at `start` (the kernel's `bpf_ctx_range`).
fn within(off: usize, start: usize, size: usize) -> bool {
    (start..start + size).contains(&off)
}

impl SkbCtx {
    /// The program's target, whose [`super::layout`] decides field accesses.
    fn target(&self) -> Target {
        Target { prog_type: self.prog_type, attach: None }
    }

    /// A field of the default (narrow-loadable) kind at the 4-aligned `base`: the value
    /// `bpf_convert_ctx_access()` loads and the width it loads it with.
    fn field(&self, mem: &Memory, base: usize) -> (u64, usize) {
        let w = |v: u32| (u64::from(v), 4);
        let h = |v: u16| (u64::from(v), 2);
        match base {
            off::LEN => w(mem.bytes(self.packet).len() as u32),
            off::PKT_TYPE => (u64::from(self.pkt_type), 1),
            off::MARK => w(self.mark),
            off::QUEUE_MAPPING => h(self.queue_mapping),
            off::PROTOCOL => h(self.protocol.swap_bytes()),
            off::VLAN_PRESENT => w(u32::from(self.vlan_present())),
            off::VLAN_TCI => h(self.vlan_tci),
            off::VLAN_PROTO => h(self.vlan_proto.swap_bytes()),
            off::PRIORITY => w(self.priority),
            off::INGRESS_IFINDEX => w(self.skb_iif),
            off::IFINDEX => w(self.ifindex),
            off::TC_INDEX => h(self.tc_index),
            off::HASH => w(self.hash),
            off::TC_CLASSID => h(self.tc_classid),
            off::FAMILY => h(self.sk.family),
            // The rewrite loads the big-endian port and shifts it into the upper half.
            off::REMOTE_PORT => (u64::from(u16::from_le_bytes(self.sk.dport)) << 16, 2),
            off::LOCAL_PORT => h(self.sk.num),
            off::WIRE_LEN => w(self.wire_len),
            off::GSO_SEGS => h(self.gso_segs),
            off::GSO_SIZE => h(self.gso_size),
            // napi_id: below MIN_NAPI_ID in a test run, which reads as 0.
            _ => (0, 4),
        }
    }

    fn read(&self, mem: &Memory, off: usize, size: usize) -> Result<u64, MemError> {
        let base = self.packet.base();
        let le = |bytes: &[u8]| {
            let mut b = [0u8; 8];
            b[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(b)
        };
        Ok(match off {
            o if within(o, off::CB, 20) => le(&self.cb[o - off::CB..o - off::CB + size]),
            off::DATA | off::DATA_META => base,
            off::DATA_END => base + mem.bytes(self.packet).len() as u64,
            off::TSTAMP => self.tstamp,
            off::HWTSTAMP => self.hwtstamp,
            off::TSTAMP_TYPE => u64::from(self.tstamp_type),
            // PTR_TO_SOCK_COMMON_OR_NULL: the socket's `struct bpf_sock`.
            off::SK => self.sk_id.map_or(0, SockId::addr),
            off::REMOTE_IP4 => le(&self.sk.daddr),
            off::LOCAL_IP4 => le(&self.sk.rcv_saddr),
            o if within(o, off::REMOTE_IP6, 16) => {
                le(&self.sk.v6_daddr[o - off::REMOTE_IP6..o - off::REMOTE_IP6 + 4])
            }
            o if within(o, off::LOCAL_IP6, 16) => {
                le(&self.sk.v6_rcv_saddr[o - off::LOCAL_IP6..o - off::LOCAL_IP6 + 4])
            }
            _ => {
                let (value, target) = self.field(mem, off & !3);
                if size < target {
                    let shift = (off & 3) * 8;
                    (value >> shift) & ((1u64 << (size * 8)) - 1)
                } else {
                    value
                }
            }
        })
    }

    fn write(&mut self, off: usize, size: usize, value: u64) {
        match off {
            o if within(o, off::CB, 20) => {
                let at = o - off::CB;
                self.cb[at..at + size].copy_from_slice(&value.to_le_bytes()[..size]);
            }
            off::MARK => self.mark = value as u32,
            off::PRIORITY => self.priority = value as u32,
            // The rewrite skips the store of NO_QUEUE_MAPPING (0xffff) and above.
            off::QUEUE_MAPPING if value < 0xffff => self.queue_mapping = value as u16,
            off::TC_INDEX => self.tc_index = value as u16,
            off::TC_CLASSID => self.tc_classid = value as u16,
            off::TSTAMP => self.tstamp = value,
            _ => {}
        }
    }
}

impl ContextAccess for SkbCtx {
    fn size(&self) -> usize {
        SK_BUFF_SIZE
    }

    fn load(&self, mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        allowed(self.target(), Access::Read, off, len)?;
        self.read(mem, off, len)
    }

    fn store(&mut self, _mem: &Memory, off: usize, len: usize, value: u64) -> Result<(), MemError> {
        allowed(self.target(), Access::Write, off, len)?;
        self.write(off, len, value);
        Ok(())
    }

    fn packet_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        let data = mem.bytes(self.packet);
        if self.l2 {
            return Some(data.to_vec());
        }
        let mut out = vec![0u8; ETH_HLEN];
        out.extend_from_slice(data);
        Some(out)
    }

    fn ctx_out(&self, _mem: &Memory) -> Option<Vec<u8>> {
        self.ctx_in.as_ref().map(|_| self.ctx_bytes())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The flow dissector's target.
const FLOW_DISSECTOR: Target = Target { prog_type: ProgType::FlowDissector, attach: None };

/// The flow dissector's context (`struct bpf_flow_dissector`, seen through `__sk_buff`
/// offsets): `data`, `data_end` and the `flow_keys` pointer, all read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowDissectorCtx {
    /// The packet region (the whole frame, Ethernet header included; read-only).
    pub packet: RegionId,
    /// The `struct bpf_flow_keys` region the program fills in.
    pub keys: RegionId,
    /// The network header offset the dissection starts at (`ETH_HLEN`).
    pub nhoff: u16,
    /// The ctx_in given for the run (a `struct bpf_flow_keys` with only `flags` set).
    pub ctx_in: Option<Vec<u8>>,
}

/// Builds the flow dissector's context as `bpf_prog_test_run_flow_dissector` does and
/// installs it.
pub(crate) fn install_flow_dissector(
    input: &RunInput,
    mem: &mut Memory,
) -> Result<Installed, CtxError> {
    let frame = &input.data;
    let len = frame.len();
    if len < ETH_HLEN {
        return Err(CtxError::PacketTooShort { len, min: ETH_HLEN });
    }
    if len > 4096 {
        return Err(CtxError::PacketTooLong { len, max: 4096 });
    }
    let mut flags = 0u32;
    let ctx_in = match &input.ctx {
        Some(c) => {
            let c = normalize_ctx(c, FLOW_KEYS_SIZE, "struct bpf_flow_keys")?;
            let others_zero = c[..FLOW_KEYS_FLAGS].iter().all(|&b| b == 0)
                && c[FLOW_KEYS_FLAGS + 4..].iter().all(|&b| b == 0);
            if !others_zero {
                return Err(bad_ctx("bpf_flow_keys: only flags may be set (EINVAL)"));
            }
            flags = read_field(&c, FLOW_KEYS_FLAGS, 4) as u32;
            Some(c)
        }
        None => None,
    };
    // bpf_flow_dissect(): keys zeroed, n_proto from the frame, nhoff = thoff = ETH_HLEN.
    let mut keys = vec![0u8; FLOW_KEYS_SIZE];
    write_field(&mut keys, 0, 2, ETH_HLEN as u64);
    write_field(&mut keys, 2, 2, ETH_HLEN as u64);
    keys[10..12].copy_from_slice(&frame[12..14]);
    write_field(&mut keys, FLOW_KEYS_FLAGS, 4, u64::from(flags));
    let packet = mem.alloc(RegionKind::Packet, frame.clone(), Perm::ReadOnly)?;
    let keys = match mem.alloc(RegionKind::Kernel, keys, Perm::ReadWrite) {
        Ok(k) => k,
        Err(e) => {
            mem.free(packet);
            return Err(e.into());
        }
    };
    let ctx = FlowDissectorCtx { packet, keys, nhoff: ETH_HLEN as u16, ctx_in };
    let id = match mem.set_context(Box::new(ctx)) {
        Ok(id) => id,
        Err(e) => {
            mem.free(packet);
            mem.free(keys);
            return Err(e.into());
        }
    };
    Ok(Installed { r1: id.base(), ld_abs: None, owned: vec![packet, keys] })
}

impl ContextAccess for FlowDissectorCtx {
    fn size(&self) -> usize {
        SK_BUFF_SIZE
    }

    fn load(&self, mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        let field = allowed(FLOW_DISSECTOR, Access::Read, off, len)?;
        let base = self.packet.base();
        match field.yields {
            Yields::Packet => Ok(base),
            Yields::PacketEnd => Ok(base + mem.bytes(self.packet).len() as u64),
            Yields::FlowKeys => Ok(self.keys.base()),
            _ => Err(denied(Access::Read, off, len, "not a flow dissector field")),
        }
    }

    fn store(
        &mut self,
        _mem: &Memory,
        off: usize,
        len: usize,
        _value: u64,
    ) -> Result<(), MemError> {
        allowed(FLOW_DISSECTOR, Access::Write, off, len)?;
        Err(denied(Access::Write, off, len, "the flow dissector's context is read-only"))
    }

    fn packet_out(&self, mem: &Memory) -> Option<Vec<u8>> {
        // bpf_flow_dissect() clamps the offsets the program left into [nhoff, hlen].
        let mut keys = mem.bytes(self.keys).to_vec();
        let hlen = mem.bytes(self.packet).len().min(usize::from(u16::MAX)) as u16;
        let nhoff = (read_field(&keys, 0, 2) as u16).max(self.nhoff).min(hlen);
        let thoff = (read_field(&keys, 2, 2) as u16).max(nhoff).min(hlen);
        write_field(&mut keys, 0, 2, u64::from(nhoff));
        write_field(&mut keys, 2, 2, u64::from(thoff));
        Some(keys)
    }

    fn ctx_out(&self, _mem: &Memory) -> Option<Vec<u8>> {
        // The test run copies the user's ctx buffer back unchanged.
        self.ctx_in.clone()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// `SKF_NET_OFF`: LD_ABS offsets from here on are relative to the network header.
pub const SKF_NET_OFF: i32 = -0x100000;
/// `SKF_LL_OFF`: LD_ABS offsets from here on are relative to the MAC header.
pub const SKF_LL_OFF: i32 = -0x200000;

/// The bytes an LD_ABS/LD_IND of `len` bytes at `off` reads (`bpf_skb_load_helper_*`):
/// non-negative offsets from `data`; `SKF_NET_OFF`/`SKF_LL_OFF`-based ones from the network
/// or MAC header, anywhere between the buffer's head and its tail.
pub(crate) fn load_abs(skb: &SkbCtx, mem: &Memory, off: i32, len: usize) -> Option<Vec<u8>> {
    let packet = mem.bytes(skb.packet);
    if off >= 0 {
        let off = off as usize;
        return packet.get(off..off.checked_add(len)?).map(<[u8]>::to_vec);
    }
    let start = if off >= SKF_NET_OFF {
        skb.network_header as i64 + i64::from(off - SKF_NET_OFF)
    } else if off >= SKF_LL_OFF {
        skb.mac_header? as i64 + i64::from(off - SKF_LL_OFF)
    } else {
        return None;
    };
    // The buffer from its head: the bytes before `data`, then the packet.
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(len)?;
    if end > skb.head.len() + packet.len() {
        return None;
    }
    Some(
        (start..end)
            .map(|i| if i < skb.head.len() { skb.head[i] } else { packet[i - skb.head.len()] })
            .collect(),
    )
}
