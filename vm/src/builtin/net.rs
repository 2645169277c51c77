//! Networking helpers real XDP and tc programs call beyond packet editing: XDP byte access
//! (`bpf_xdp_load_bytes`/`_store_bytes`), MTU checks against the simulated devices
//! (`bpf_check_mtu`), neighbour and peer redirects, ECN marking, SYN cookies on simulated
//! listeners, and the route realm and net_cls class id of a test run's skb (net/core/filter.c).

use crate::ctx::XdpCtx;
use crate::ctx::skb::{ETH_P_IP, ETH_P_IPV6, SkbCtx, TunnelInfo};
use crate::engine::ProgType;
use crate::env::{Redirect, RedirectTarget};
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::kobj::fib::NetDevice;
use crate::sock::{SockView, TcpState};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: CLONE_REDIRECT, func: clone_redirect },
    Helper { proto: GET_CGROUP_CLASSID, func: get_cgroup_classid },
    Helper { proto: SKB_GET_TUNNEL_KEY, func: skb_get_tunnel_key },
    Helper { proto: SKB_SET_TUNNEL_KEY, func: skb_set_tunnel_key },
    Helper { proto: GET_ROUTE_REALM, func: get_route_realm },
    Helper { proto: SKB_GET_TUNNEL_OPT, func: skb_get_tunnel_opt },
    Helper { proto: SKB_SET_TUNNEL_OPT, func: skb_set_tunnel_opt },
    Helper { proto: SKB_GET_XFRM_STATE, func: skb_get_xfrm_state },
    Helper { proto: SKB_ECN_SET_CE, func: skb_ecn_set_ce },
    Helper { proto: TCP_CHECK_SYNCOOKIE, func: tcp_check_syncookie },
    Helper { proto: TCP_GEN_SYNCOOKIE, func: tcp_gen_syncookie },
    Helper { proto: SK_FULLSOCK, func: sk_fullsock },
    Helper { proto: GET_LISTENER_SOCK, func: get_listener_sock },
    Helper { proto: TCP_SOCK, func: tcp_sock },
    Helper { proto: SKB_SET_TSTAMP, func: skb_set_tstamp },
    Helper { proto: SKB_CGROUP_CLASSID, func: skb_cgroup_classid },
    Helper { proto: JIFFIES64, func: jiffies64 },
    Helper { proto: REDIRECT_NEIGH, func: redirect_neigh },
    Helper { proto: REDIRECT_PEER, func: redirect_peer },
    Helper { proto: CHECK_MTU, func: check_mtu },
    Helper { proto: XDP_LOAD_BYTES, func: xdp_load_bytes },
    Helper { proto: XDP_STORE_BYTES, func: xdp_store_bytes },
];

use ArgType::{Anything, ConstSize, ConstSizeOrZero, PtrToCtx, PtrToMem, PtrToMemOrNull};
use ProgType::{CgroupSkb, LwtIn, LwtOut, LwtSeg6local, LwtXmit, SchedAct, SchedCls, Xdp};

const fn proto(
    id: u32,
    name: &'static str,
    args: &'static [ArgType],
    gpl_only: bool,
    prog_types: Allowed,
) -> HelperProto {
    HelperProto { id, name, ret: RetType::Integer, args, gpl_only, prog_types }
}

/// `tc_cls_act_func_proto` only.
const TC: Allowed = Allowed::Only(&[SchedCls, SchedAct]);
/// `tc_cls_act_func_proto` and `xdp_func_proto`.
const TC_XDP: Allowed = Allowed::Only(&[SchedCls, SchedAct, Xdp]);
/// `tc_cls_act_func_proto` and `lwt_out_func_proto` (which lwt_in, lwt_xmit and seg6local
/// fall back to).
const TC_LWT: Allowed = Allowed::Only(&[SchedCls, SchedAct, LwtIn, LwtOut, LwtXmit, LwtSeg6local]);
/// The syncookie helpers' arguments: socket, IP header and its length, TCP header and its
/// length.
const SYNCOOKIE_ARGS: &[ArgType] =
    &[ArgType::PtrToSocket, PtrToMem, ConstSize, PtrToMem, ConstSize];

const CLONE_REDIRECT: HelperProto =
    proto(13, "bpf_clone_redirect", &[PtrToCtx, Anything, Anything], false, TC_LWT_XMIT);
/// The skb variant (tc and lwt programs) in Linux 6.12, plus the current-task variant
/// (`bpf_get_cgroup_classid_curr_proto`, no argument) of cgroup and sk_msg programs; Linux
/// 6.18 offers it to every program type (probed), so bpflab does too.
const GET_CGROUP_CLASSID: HelperProto =
    proto(17, "bpf_get_cgroup_classid", &[PtrToCtx], false, Allowed::All);
/// `tc_cls_act_func_proto` and `lwt_xmit_func_proto`.
const TC_LWT_XMIT: Allowed = Allowed::Only(&[SchedCls, SchedAct, LwtXmit]);
const SKB_GET_TUNNEL_KEY: HelperProto = proto(
    20,
    "bpf_skb_get_tunnel_key",
    &[PtrToCtx, ArgType::PtrToUninitMem, ConstSize, Anything],
    false,
    TC_LWT_XMIT,
);
const SKB_SET_TUNNEL_KEY: HelperProto = proto(
    21,
    "bpf_skb_set_tunnel_key",
    &[PtrToCtx, PtrToMem, ConstSize, Anything],
    false,
    TC_LWT_XMIT,
);
const SKB_SET_TUNNEL_OPT: HelperProto =
    proto(30, "bpf_skb_set_tunnel_opt", &[PtrToCtx, PtrToMem, ConstSize], false, TC_LWT_XMIT);
const SKB_GET_TUNNEL_OPT: HelperProto = proto(
    29,
    "bpf_skb_get_tunnel_opt",
    &[PtrToCtx, ArgType::PtrToUninitMem, ConstSize],
    false,
    TC_LWT_XMIT,
);
const SKB_GET_XFRM_STATE: HelperProto = proto(
    66,
    "bpf_skb_get_xfrm_state",
    &[PtrToCtx, Anything, ArgType::PtrToUninitMem, ConstSize, Anything],
    false,
    TC,
);
const GET_ROUTE_REALM: HelperProto = proto(24, "bpf_get_route_realm", &[PtrToCtx], false, TC_LWT);
const SKB_ECN_SET_CE: HelperProto = proto(
    97,
    "bpf_skb_ecn_set_ce",
    &[PtrToCtx],
    false,
    Allowed::Only(&[SchedCls, SchedAct, CgroupSkb]),
);
const TCP_CHECK_SYNCOOKIE: HelperProto =
    proto(100, "bpf_tcp_check_syncookie", SYNCOOKIE_ARGS, true, TC_XDP);
const TCP_GEN_SYNCOOKIE: HelperProto =
    proto(110, "bpf_tcp_gen_syncookie", SYNCOOKIE_ARGS, true, TC_XDP);
/// `tc_cls_act_func_proto` and `cg_skb_func_proto`.
const TC_CG_SKB: Allowed = Allowed::Only(&[SchedCls, SchedAct, CgroupSkb]);
const SK_FULLSOCK: HelperProto = HelperProto {
    ret: RetType::PtrToSocketOrNull,
    ..proto(95, "bpf_sk_fullsock", &[ArgType::PtrToSocket], false, TC_CG_SKB)
};
const GET_LISTENER_SOCK: HelperProto = HelperProto {
    ret: RetType::PtrToSocketOrNull,
    ..proto(98, "bpf_get_listener_sock", &[ArgType::PtrToSocket], false, TC_CG_SKB)
};
/// `tc_cls_act_func_proto`, `cg_skb_func_proto` and `sock_ops_func_proto`.
const TCP_SOCK: HelperProto = HelperProto {
    ret: RetType::PtrToSocketOrNull,
    ..proto(
        96,
        "bpf_tcp_sock",
        &[ArgType::PtrToSocket],
        false,
        Allowed::Only(&[SchedCls, SchedAct, CgroupSkb, ProgType::SockOps]),
    )
};
const SKB_CGROUP_CLASSID: HelperProto =
    proto(151, "bpf_skb_cgroup_classid", &[PtrToCtx], false, TC);
const SKB_SET_TSTAMP: HelperProto =
    proto(192, "bpf_skb_set_tstamp", &[PtrToCtx, Anything, Anything], false, TC);
/// In `bpf_base_func_proto` (for programs loaded with CAP_BPF, as bpflab's are) and the
/// tracing types' switches.
const JIFFIES64: HelperProto = proto(118, "bpf_jiffies64", &[], false, Allowed::All);
const REDIRECT_NEIGH: HelperProto = proto(
    152,
    "bpf_redirect_neigh",
    &[Anything, PtrToMemOrNull, ConstSizeOrZero, Anything],
    false,
    TC,
);
const REDIRECT_PEER: HelperProto =
    proto(155, "bpf_redirect_peer", &[Anything, Anything], false, TC);
const CHECK_MTU: HelperProto = proto(
    163,
    "bpf_check_mtu",
    &[PtrToCtx, Anything, ArgType::PtrToLong, Anything, Anything],
    true,
    TC_XDP,
);
const XDP_LOAD_BYTES: HelperProto = proto(
    189,
    "bpf_xdp_load_bytes",
    &[PtrToCtx, Anything, ArgType::PtrToUninitMem, ConstSize],
    false,
    Allowed::Only(&[Xdp]),
);
const XDP_STORE_BYTES: HelperProto = proto(
    190,
    "bpf_xdp_store_bytes",
    &[PtrToCtx, Anything, PtrToMem, ConstSize],
    false,
    Allowed::Only(&[Xdp]),
);

const EINVAL: u64 = -22i64 as u64;
const ENOENT: u64 = -2i64 as u64;
const ENODEV: u64 = -19i64 as u64;
const EPROTONOSUPPORT: u64 = -93i64 as u64;
/// `TC_ACT_SHOT`.
const TC_ACT_SHOT: u64 = 2;
/// `TC_ACT_REDIRECT`.
const TC_ACT_REDIRECT: u64 = 7;
/// `BPF_MTU_CHK_SEGS`.
const MTU_CHK_SEGS: u64 = 1;
/// `BPF_MTU_CHK_RET_FRAG_NEEDED`.
const MTU_CHK_RET_FRAG_NEEDED: u64 = 1;
/// `BPF_MTU_CHK_RET_SEGS_TOOBIG`.
const MTU_CHK_RET_SEGS_TOOBIG: u64 = 2;
/// The ifindex of the loopback device a test run's packets come from.
const LOOPBACK: u32 = 1;
/// `sizeof(struct bpf_redir_neigh)`.
const REDIR_NEIGH_SIZE: u32 = 20;

/// The running program's skb.
fn skb_ref<'c>(ctx: &'c HelperCtx<'_>) -> Result<&'c SkbCtx, HelperError> {
    ctx.world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<SkbCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "not an __sk_buff context" })
}

/// The running program's XDP context.
fn xdp_ref<'c>(ctx: &'c HelperCtx<'_>) -> Result<&'c XdpCtx, HelperError> {
    ctx.world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<XdpCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "not an XDP context" })
}

/// `bpf_get_cgroup_classid(skb)` and its current-task variant: the calling task's net_cls
/// class id (`task_get_classid`; a test run is not in softirq). bpflab's tasks are in the
/// root net_cls cgroup: 0.
fn get_cgroup_classid(_: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(0)
}

/// `bpf_skb_cgroup_classid(skb)`: the net_cls class id of the skb's socket's cgroup (0 for no
/// full socket). A test run's skb has the socket the test run made, in the calling task's
/// cgroup: bpflab's tasks are in the root net_cls cgroup, 0.
fn skb_cgroup_classid(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    skb_ref(ctx)?;
    Ok(0)
}

/// `bpf_get_route_realm(skb)`: the realm of the skb's route (`dst->tclassid`); a test run's
/// skb has no route attached, so 0.
fn get_route_realm(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    skb_ref(ctx)?;
    Ok(0)
}

/// Zeroes the `ARG_PTR_TO_UNINIT_MEM` output `arg` (`len` bytes at `addr`) and returns
/// `errno`: the `err_clear` path of the skb metadata getters.
fn clear_out(
    ctx: &mut HelperCtx<'_>,
    arg: u8,
    addr: u64,
    len: u64,
    errno: u64,
) -> Result<u64, HelperError> {
    skb_ref(ctx)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n > 0)
        .ok_or(HelperError::BadArg { arg: arg + 1, reason: "size must be greater than 0" })?;
    ctx.world
        .mem
        .slice_mut(addr, len)
        .map_err(|error| HelperError::BadMemoryArg { arg, error })?
        .fill(0);
    Ok(errno)
}

/// `sizeof(struct bpf_tunnel_key)`.
const TUNNEL_KEY_SIZE: usize = 44;
/// `BPF_F_TUNINFO_IPV6`.
const F_TUNINFO_IPV6: u64 = 1;
/// `BPF_F_ZERO_CSUM_TX`.
const F_ZERO_CSUM_TX: u64 = 1 << 1;
/// `BPF_F_DONT_FRAGMENT`.
const F_DONT_FRAGMENT: u64 = 1 << 2;
/// `BPF_F_SEQ_NUMBER`.
const F_SEQ_NUMBER: u64 = 1 << 3;
/// `BPF_F_NO_TUNNEL_KEY` (set) and `BPF_F_TUNINFO_FLAGS` (get).
const F_NO_TUNNEL_KEY: u64 = 1 << 4;
/// `IP_TUNNEL_*_BIT` flags of `key.tun_flags`.
const TUN_CSUM: u32 = 1 << 0;
const TUN_KEY: u32 = 1 << 2;
const TUN_SEQ: u32 = 1 << 3;
const TUN_DONT_FRAGMENT: u32 = 1 << 8;
const TUN_NOCACHE: u32 = 1 << 13;
/// GENEVE, VXLAN, ERSPAN, GTP and PFCP options present (`ip_tunnel_set_options_present`).
const TUN_OPTIONS_PRESENT: u32 = (1 << 11) | (1 << 12) | (1 << 14) | (1 << 15) | (1 << 17);
/// `IP_TUNNEL_OPTS_MAX`.
const TUNNEL_OPTS_MAX: usize = 255;
/// `EPROTO`, `ENOMEM`.
const EPROTO: u64 = -71i64 as u64;
const ENOMEM: u64 = -12i64 as u64;

/// The sizes of older `struct bpf_tunnel_key` layouts both helpers accept: up to
/// `local_ipv6`, `tunnel_label`, `tunnel_ext`, and `remote_ipv6[1]` (IPv4 only).
fn compat_key_size(size: usize) -> bool {
    matches!(size, 28 | 24 | 22 | 8)
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The skb's tunnel metadata, for the getters.
fn tunnel_of(ctx: &HelperCtx<'_>) -> Result<Option<TunnelInfo>, HelperError> {
    Ok(skb_ref(ctx)?.tunnel.clone())
}

/// Sets the skb's tunnel metadata.
fn set_tunnel(ctx: &mut HelperCtx<'_>, info: TunnelInfo) {
    if let Some(skb) =
        ctx.world.mem.context_mut().and_then(|c| c.as_any_mut().downcast_mut::<SkbCtx>())
    {
        skb.tunnel = Some(info);
    }
}

/// `bpf_skb_set_tunnel_key(skb, key, size, flags)`: attaches transmit tunnel metadata (the
/// kernel's per-CPU metadata dst) built from a `struct bpf_tunnel_key` of 44 bytes or an
/// older layout's size; `-EINVAL` for other sizes, unknown flags, a label without
/// `BPF_F_TUNINFO_IPV6` or a nonzero `tunnel_ext`. A collect_md tunnel device would send
/// the packet with it; bpflab keeps it for `bpf_skb_get_tunnel_key`/`_opt` of the same run.
fn skb_set_tunnel_key(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (size, flags) = (a[2] as u32 as usize, a[3]);
    if size == 0 {
        return Err(HelperError::BadArg { arg: 3, reason: "size must be greater than 0" });
    }
    let from = ctx.arg_bytes(2, a[1], size as u64)?;
    skb_ref(ctx)?;
    if flags & !(F_TUNINFO_IPV6 | F_ZERO_CSUM_TX | F_DONT_FRAGMENT | F_SEQ_NUMBER | F_NO_TUNNEL_KEY)
        != 0
    {
        return Ok(EINVAL);
    }
    if size != TUNNEL_KEY_SIZE && !compat_key_size(size) {
        return Ok(EINVAL);
    }
    let mut key = [0u8; TUNNEL_KEY_SIZE];
    key[..size].copy_from_slice(&from);
    let ipv6 = flags & F_TUNINFO_IPV6 != 0;
    let label = le32(&key, 24);
    let ext = u16::from_le_bytes([key[22], key[23]]);
    if (!ipv6 && label != 0) || ext != 0 {
        return Ok(EINVAL);
    }
    let bit = |on: bool, b: u32| if on { b } else { 0 };
    let mut info = TunnelInfo {
        ipv6,
        id: u64::from(le32(&key, 0)),
        tos: key[20],
        ttl: key[21],
        flags: TUN_NOCACHE
            | bit(flags & F_DONT_FRAGMENT != 0, TUN_DONT_FRAGMENT)
            | bit(flags & F_ZERO_CSUM_TX == 0, TUN_CSUM)
            | bit(flags & F_SEQ_NUMBER != 0, TUN_SEQ)
            | bit(flags & F_NO_TUNNEL_KEY == 0, TUN_KEY),
        ..TunnelInfo::default()
    };
    if ipv6 {
        // remote_ipv6 becomes the destination, local_ipv6 the source, byte for byte.
        info.dst.copy_from_slice(&key[4..20]);
        info.src.copy_from_slice(&key[28..44]);
        info.label = label & 0x000f_ffff;
    } else {
        info.dst[..4].copy_from_slice(&le32(&key, 4).to_be_bytes());
        info.src[..4].copy_from_slice(&le32(&key, 28).to_be_bytes());
    }
    set_tunnel(ctx, info);
    Ok(0)
}

/// `bpf_skb_set_tunnel_opt(skb, opt, size)`: the options of the metadata
/// `bpf_skb_set_tunnel_key` attached in this run (`-EINVAL` without it or for a size that is
/// not a multiple of 4, `-ENOMEM` above 255 bytes).
fn skb_set_tunnel_opt(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let size = a[2] as u32 as usize;
    if size == 0 {
        return Err(HelperError::BadArg { arg: 3, reason: "size must be greater than 0" });
    }
    let from = ctx.arg_bytes(2, a[1], size as u64)?;
    let Some(mut info) = tunnel_of(ctx)? else {
        return Ok(EINVAL);
    };
    if !size.is_multiple_of(4) {
        return Ok(EINVAL);
    }
    if size > TUNNEL_OPTS_MAX {
        return Ok(ENOMEM);
    }
    info.options = from;
    info.flags |= TUN_OPTIONS_PRESENT;
    set_tunnel(ctx, info);
    Ok(0)
}

/// Writes `bytes` (zero-padded to `len`) to the output argument `arg` at `addr`.
fn write_out(
    ctx: &mut HelperCtx<'_>,
    arg: u8,
    addr: u64,
    len: usize,
    bytes: &[u8],
) -> Result<(), HelperError> {
    let out = ctx
        .world
        .mem
        .slice_mut(addr, len)
        .map_err(|error| HelperError::BadMemoryArg { arg, error })?;
    out.fill(0);
    let n = bytes.len().min(len);
    out[..n].copy_from_slice(&bytes[..n]);
    Ok(())
}

/// `bpf_skb_get_tunnel_key(skb, key, size, flags)`: the tunnel metadata of the skb as a
/// `struct bpf_tunnel_key` (remote = the metadata's source, local = its destination, as the
/// kernel reads them). A test run's skb has none until `bpf_skb_set_tunnel_key`: then and for
/// unknown flags the key is zeroed and the result is `-EINVAL`; `-EPROTO` when
/// `BPF_F_TUNINFO_IPV6` does not match the metadata's family.
fn skb_get_tunnel_key(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (addr, size, flags) = (a[1], a[2] as u32 as usize, a[3]);
    if size == 0 {
        return Err(HelperError::BadArg { arg: 3, reason: "size must be greater than 0" });
    }
    let info = match tunnel_of(ctx)? {
        Some(info) if flags & !(F_TUNINFO_IPV6 | F_NO_TUNNEL_KEY) == 0 => info,
        _ => return clear_out(ctx, 2, addr, size as u64, EINVAL),
    };
    if info.ipv6 != (flags & F_TUNINFO_IPV6 != 0) {
        return clear_out(ctx, 2, addr, size as u64, EPROTO);
    }
    if size != TUNNEL_KEY_SIZE && (!compat_key_size(size) || (size == 8 && info.ipv6)) {
        return clear_out(ctx, 2, addr, size as u64, EINVAL);
    }
    let mut to = [0u8; TUNNEL_KEY_SIZE];
    to[..4].copy_from_slice(&(info.id as u32).to_le_bytes());
    to[20] = info.tos;
    to[21] = info.ttl;
    if flags & F_NO_TUNNEL_KEY != 0 {
        // BPF_F_TUNINFO_FLAGS: ip_tunnel_flags_to_be16(), the low 16 flag bits.
        to[22..24].copy_from_slice(&(info.flags as u16).to_be_bytes());
    }
    if info.ipv6 {
        to[4..20].copy_from_slice(&info.src);
        to[28..44].copy_from_slice(&info.dst);
        to[24..28].copy_from_slice(&info.label.to_le_bytes());
    } else {
        let be = |b: &[u8; 16]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        to[4..8].copy_from_slice(&be(&info.src).to_le_bytes());
        to[28..32].copy_from_slice(&be(&info.dst).to_le_bytes());
    }
    write_out(ctx, 2, addr, size, &to[..size])?;
    Ok(0)
}

/// `bpf_skb_get_tunnel_opt(skb, opt, size)`: the options `bpf_skb_set_tunnel_opt` set,
/// zero-padded to `size`; returns their length. Without options the buffer is zeroed and
/// the result is `-ENOENT`; `-ENOMEM` (zeroed) when they do not fit.
fn skb_get_tunnel_opt(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (addr, size) = (a[1], a[2] as u32 as usize);
    if size == 0 {
        return Err(HelperError::BadArg { arg: 3, reason: "size must be greater than 0" });
    }
    let options = match tunnel_of(ctx)? {
        Some(info) if info.flags & TUN_OPTIONS_PRESENT != 0 => info.options,
        _ => return clear_out(ctx, 2, addr, size as u64, ENOENT),
    };
    if size < options.len() {
        return clear_out(ctx, 2, addr, size as u64, ENOMEM);
    }
    write_out(ctx, 2, addr, size, &options)?;
    Ok(options.len() as u64)
}

/// `bpf_skb_get_xfrm_state(skb, index, state, size, flags)`: a test run's skb has no IPsec
/// security path, so the state is zeroed and the result is `-EINVAL`.
fn skb_get_xfrm_state(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    clear_out(ctx, 3, a[2], a[3], EINVAL)
}

/// `bpf_skb_ecn_set_ce(skb)`: marks an ECN-capable IPv4 or IPv6 packet Congestion
/// Experienced (`INET_ECN_set_ce`): 1 when the packet is (now) CE, 0 when it is not
/// ECN-capable, not IP, or its header is cut short. IPv4 gets its header checksum updated
/// incrementally (`IP_ECN_set_ce`).
fn skb_ecn_set_ce(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    let skb = skb_ref(ctx)?;
    let (packet, data_off, nh) = (skb.packet, skb.data_off(), skb.network_header);
    let protocol = protocol_past_vlans(skb.protocol, ctx.world.mem.bytes(packet));
    let hdr_len = match protocol {
        ETH_P_IP => 20,
        ETH_P_IPV6 => 40,
        _ => return Ok(0),
    };
    let pkt = ctx.world.mem.bytes_mut(packet);
    // skb_headlen() and the network header's room up to the tail.
    if pkt.len() < hdr_len {
        return Ok(0);
    }
    let Some(at) = nh.checked_sub(data_off).filter(|at| at + hdr_len <= pkt.len()) else {
        return Ok(0);
    };
    let h = &mut pkt[at..at + hdr_len];
    if protocol == ETH_P_IP {
        // ecn + 1: Not-ECT 01, ECT(1) 10, ECT(0) 11, CE 00.
        let ecn = (u32::from(h[1]) + 1) & 3;
        if ecn & 2 == 0 {
            return Ok(u64::from(ecn == 0));
        }
        // check += htons(0xfffb + ecn), one's complement (csum16_add).
        let check = u16::from_be_bytes([h[10], h[11]]);
        let add = 0xfffb_u32 + ecn;
        let sum = u32::from(check) + (add & 0xffff);
        let sum = (sum & 0xffff) + (sum >> 16);
        h[10..12].copy_from_slice(&(sum as u16).to_be_bytes());
        h[1] |= 3;
        return Ok(1);
    }
    // IPv6: the traffic class straddles bytes 0 and 1; its ECN bits are bits 4-5 of byte 1.
    if (h[1] >> 4) & 3 == 0 {
        return Ok(0);
    }
    h[1] |= 3 << 4;
    Ok(1)
}

/// `skb_protocol(skb, true)`: the protocol after the in-band VLAN tags (`__vlan_get_protocol`
/// reads them from byte 14 of the data, at most `VLAN_MAX_DEPTH` = 8), 0 when they are cut
/// short or too deep. The header the ECN helper then edits is the skb's network header
/// wherever it is: with an in-band tag the kernel edits the tag's bytes, and so does bpflab.
fn protocol_past_vlans(protocol: u16, pkt: &[u8]) -> u16 {
    let is_vlan = |p: u16| p == 0x8100 || p == 0x88a8;
    if !is_vlan(protocol) {
        return protocol;
    }
    let (mut proto, mut at, mut depth) = (protocol, 14usize, 8u32);
    while is_vlan(proto) {
        let Some(tag) = pkt.get(at..at + 4) else {
            return 0;
        };
        depth -= 1;
        if depth == 0 {
            return 0;
        }
        proto = u16::from_be_bytes([tag[2], tag[3]]);
        at += 4;
    }
    proto
}

/// The checks the syncookie helpers share before looking at the packet: the listener (a TCP
/// socket in `TCP_LISTEN`) and the TCP header's length; `Err(errno)` when they fail.
fn syncookie_listener(
    ctx: &HelperCtx<'_>,
    a: &[u64; 5],
) -> Result<Result<SockView, u64>, HelperError> {
    let Some(sk) = SockView::at(&ctx.world.mem, a[0]) else {
        return Err(HelperError::BadArg { arg: 1, reason: "not a socket pointer" });
    };
    if a[4] < 20 {
        return Ok(Err(EINVAL));
    }
    Ok(Ok(sk))
}

fn is_listener(sk: &SockView) -> bool {
    sk.is_tcp() && sk.state() == TcpState::Listen as u32
}

/// `bpf_tcp_gen_syncookie(sk, iph, iph_len, th, th_len)`. The simulated network namespace
/// has `net.ipv4.tcp_syncookies = 1` (the kernel's default) and its listeners' SYN queues
/// are never full, so the kernel would not issue a cookie (`tcp_get_syncookie_mss` gives 0):
/// every valid call returns `-ENOENT`, after the kernel's argument checks in its order.
fn tcp_gen_syncookie(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let sk = match syncookie_listener(ctx, &a)? {
        Ok(sk) => sk,
        Err(e) => return Ok(e),
    };
    let (iph_len, th_len) = (a[2], a[4]);
    let iph = ctx.arg_bytes(2, a[1], iph_len)?;
    let th = ctx.arg_bytes(4, a[3], th_len)?;
    if th_len != u64::from(th[12] >> 4) * 4 {
        return Ok(EINVAL);
    }
    if !is_listener(&sk) {
        return Ok(EINVAL);
    }
    let flags = th[13];
    let (fin, syn, rst, ack) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0, flags & 0x10 != 0);
    if !syn || ack || fin || rst {
        return Ok(EINVAL);
    }
    if iph_len < 20 {
        return Ok(EINVAL);
    }
    match iph[0] >> 4 {
        4 => {}
        6 if iph_len < 40 || sk.family() != AF_INET6 => return Ok(EINVAL),
        6 => {}
        _ => return Ok(EPROTONOSUPPORT),
    }
    Ok(ENOENT)
}

/// `AF_INET6`.
const AF_INET6: u16 = 10;

/// `bpf_tcp_check_syncookie(sk, iph, iph_len, th, th_len)`: with no cookie ever issued
/// (see [`tcp_gen_syncookie`]) the listener has no recent SYN queue overflow, so a valid
/// ACK gets `-ENOENT`, after the kernel's argument checks in its order.
fn tcp_check_syncookie(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let sk = match syncookie_listener(ctx, &a)? {
        Ok(sk) => sk,
        Err(e) => return Ok(e),
    };
    let th = ctx.arg_bytes(4, a[3], a[4])?;
    ctx.arg_bytes(2, a[1], a[2])?;
    if !is_listener(&sk) {
        return Ok(EINVAL);
    }
    let flags = th[13];
    let (syn, rst, ack) = (flags & 2 != 0, flags & 4 != 0, flags & 0x10 != 0);
    if !ack || rst || syn {
        return Ok(ENOENT);
    }
    if a[2] < 20 {
        return Ok(EINVAL);
    }
    // tcp_synq_no_recent_overflow(): no cookie was sent, so none can be valid.
    Ok(ENOENT)
}

/// The socket argument of `bpf_sk_fullsock`/`bpf_get_listener_sock` (`ARG_PTR_TO_SOCK_COMMON`,
/// never NULL for the verifier).
fn sock_arg(ctx: &HelperCtx<'_>, addr: u64) -> Result<SockView, HelperError> {
    SockView::at(&ctx.world.mem, addr)
        .ok_or(HelperError::BadArg { arg: 1, reason: "not a socket pointer" })
}

/// `bpf_sk_fullsock(sk)`: the socket itself when it is a full socket, else NULL. Every
/// simulated socket is a full one (there are no request or timewait mini-sockets).
fn sk_fullsock(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    sock_arg(ctx, a[0])?;
    Ok(a[0])
}

/// `bpf_get_listener_sock(sk)`: the socket when it is a TCP listener (the kernel hashes
/// listeners with `SOCK_RCU_FREE`), else NULL; no reference is taken.
fn get_listener_sock(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let sk = sock_arg(ctx, a[0])?;
    Ok(if is_listener(&sk) { a[0] } else { 0 })
}

/// `sizeof(struct bpf_tcp_sock)`.
const BPF_TCP_SOCK_SIZE: usize = 112;

/// The `struct bpf_tcp_sock` of simulated socket `s`. A listener the simulation gave no
/// counters has those `tcp_init_sock` leaves: an initial window of 10 segments, no minimum
/// RTT yet (`~0`), no slow-start threshold (`TCP_INFINITE_SSTHRESH`) and the default MSS 536.
fn bpf_tcp_sock_bytes(s: &crate::sock::Sock) -> [u8; BPF_TCP_SOCK_SIZE] {
    let mut t = s.tcp;
    if s.state == TcpState::Listen && t == crate::sock::TcpInfo::default() {
        t.snd_cwnd = 10;
        t.rtt_min = u32::MAX;
        t.snd_ssthresh = 0x7fff_ffff;
        t.mss_cache = 536;
    }
    let words = [
        t.snd_cwnd,
        t.srtt_us,
        t.rtt_min,
        t.snd_ssthresh,
        t.rcv_nxt,
        t.snd_nxt,
        t.snd_una,
        t.mss_cache,
        t.ecn_flags,
        t.rate_delivered,
        t.rate_interval_us,
        t.packets_out,
        t.retrans_out,
        t.total_retrans,
        t.segs_in,
        t.data_segs_in,
        t.segs_out,
        t.data_segs_out,
        t.lost_out,
        t.sacked_out,
    ];
    let mut out = [0u8; BPF_TCP_SOCK_SIZE];
    for (i, w) in words.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out[80..88].copy_from_slice(&t.bytes_received.to_le_bytes());
    out[88..96].copy_from_slice(&t.bytes_acked.to_le_bytes());
    // dsack_dups, delivered, delivered_ce, icsk_retransmits: not simulated, 0.
    out
}

/// `bpf_tcp_sock(sk)`: a `struct bpf_tcp_sock` view of a TCP socket (NULL for another one):
/// a read-only region of the socket's counters, made at the first call for the socket and
/// rewritten at every call.
fn tcp_sock(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let sk = sock_arg(ctx, a[0])?;
    if !sk.is_tcp() {
        return Ok(0);
    }
    let Some(s) = ctx.world.socks.get(sk.id) else {
        return Ok(0);
    };
    let bytes = bpf_tcp_sock_bytes(s);
    let key = sk.id.addr();
    let region = match ctx.world.env.tcp_sock_views.get(&key) {
        Some(&r) => {
            ctx.world.mem.contents_mut(r).copy_from_slice(&bytes);
            r
        }
        None => {
            let r = ctx
                .world
                .mem
                .map(crate::memory::RegionKind::Kernel, bytes.to_vec(), false)
                .map_err(|error| HelperError::BadMemoryArg { arg: 1, error })?;
            ctx.world.env.tcp_sock_views.insert(key, r);
            r
        }
    };
    Ok(region.base())
}

/// `EOPNOTSUPP`.
const EOPNOTSUPP: u64 = -95i64 as u64;

/// `bpf_skb_set_tstamp(skb, tstamp, tstamp_type)`: sets the skb's delivery time and its
/// clock (`BPF_SKB_CLOCK_REALTIME` 0, `_MONOTONIC` 1, `_TAI` 2; the last two need a nonzero
/// time); `-EOPNOTSUPP` unless the skb is IPv4 or IPv6, `-EINVAL` for another clock.
fn skb_set_tstamp(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (tstamp, clock) = (a[1], a[2] as u32);
    let protocol = skb_ref(ctx)?.protocol;
    if protocol != ETH_P_IP && protocol != ETH_P_IPV6 {
        return Ok(EOPNOTSUPP);
    }
    if clock > 2 || (clock != 0 && tstamp == 0) {
        return Ok(EINVAL);
    }
    if let Some(skb) =
        ctx.world.mem.context_mut().and_then(|c| c.as_any_mut().downcast_mut::<SkbCtx>())
    {
        skb.tstamp = tstamp;
        skb.tstamp_type = clock as u8;
    }
    Ok(0)
}

/// `INITIAL_JIFFIES` for HZ = 250 (`(unsigned int)(-300 * HZ)`).
const INITIAL_JIFFIES: u64 = (-300i32 * 250) as u32 as u64;
/// Nanoseconds per jiffy at HZ = 250 (the Debian kernels' `CONFIG_HZ`).
const NS_PER_JIFFY: u64 = 4_000_000;

/// `bpf_jiffies64()`: the simulated clock (nanoseconds since boot) in jiffies of HZ = 250,
/// counted from `INITIAL_JIFFIES` as the kernel's `jiffies_64` is.
fn jiffies64(ctx: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(INITIAL_JIFFIES.wrapping_add(ctx.world.env.read_clock() / NS_PER_JIFFY))
}

/// `EBADMSG`.
const EBADMSG: u64 = -74i64 as u64;
/// `ERANGE`.
const ERANGE: u64 = -34i64 as u64;
/// `ENETDOWN`.
const ENETDOWN: u64 = -100i64 as u64;
/// `NET_RX_DROP`.
const NET_RX_DROP: u64 = 1;

/// `bpf_clone_redirect(skb, ifindex, flags)`: sends a clone of the skb to device `ifindex`'s
/// ingress (`BPF_F_INGRESS`) or egress and returns what that path returns; the program's own
/// skb is unchanged. bpflab does not simulate what the device does with the clone: a device
/// that is up takes it (0); a down one drops it (`NET_RX_DROP` at ingress, `-ENETDOWN` at
/// egress). Errors as in the kernel: unknown flags or device `-EINVAL`, a GSO skb without a
/// GSO type (a test run's) `-EBADMSG`, no link-layer header `-ERANGE`.
fn clone_redirect(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (ifindex, flags) = (a[1] as u32, a[2]);
    let skb = skb_ref(ctx)?;
    let (gso, mac, nh, len) =
        (skb.is_gso(), skb.mac_header, skb.network_header, ctx.world.mem.bytes(skb.packet).len());
    // BPF_F_INGRESS only (BPF_F_REDIRECT_INTERNAL is never a program's flag).
    if flags & !1 != 0 {
        return Ok(EINVAL);
    }
    if gso {
        return Ok(EBADMSG);
    }
    let Some(dev) = ctx.world.kernel.fib.device(ifindex) else {
        return Ok(EINVAL);
    };
    // The simulated devices all carry a MAC header (dev_is_mac_header_xmit).
    if mac.is_none_or(|m| m >= nh) || len == 0 {
        return Ok(ERANGE);
    }
    Ok(match (dev.up, flags & 1 != 0) {
        (true, _) => 0,
        (false, true) => NET_RX_DROP,
        (false, false) => ENETDOWN,
    })
}

/// Records a redirect to device `ifindex` made by `helper` with `flags`.
fn set_redirect(ctx: &mut HelperCtx<'_>, helper: &'static str, ifindex: u32, flags: u64) {
    ctx.world.env.redirect = Some(Redirect {
        helper,
        map: None,
        key: Vec::new(),
        flags,
        target: RedirectTarget::Ifindex(ifindex),
    });
}

/// `bpf_redirect_neigh(ifindex, params, plen, flags)`: `TC_ACT_REDIRECT` with the redirect
/// recorded (its neighbour resolution happens after the program, outside a test run), or
/// `TC_ACT_SHOT` for flags or a `params` shorter than `struct bpf_redir_neigh`.
fn redirect_neigh(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (ifindex, plen, flags) = (a[0] as u32, a[2] as u32, a[3]);
    if plen != 0 {
        ctx.arg_bytes(2, a[1], u64::from(plen))?;
    }
    if (plen != 0 && plen < REDIR_NEIGH_SIZE) || flags != 0 {
        return Ok(TC_ACT_SHOT);
    }
    set_redirect(ctx, "bpf_redirect_neigh", ifindex, flags);
    Ok(TC_ACT_REDIRECT)
}

/// `bpf_redirect_peer(ifindex, flags)`: `TC_ACT_REDIRECT` with the redirect recorded, or
/// `TC_ACT_SHOT` for any flag.
fn redirect_peer(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (ifindex, flags) = (a[0] as u32, a[1]);
    if flags != 0 {
        return Ok(TC_ACT_SHOT);
    }
    set_redirect(ctx, "bpf_redirect_peer", ifindex, flags);
    Ok(TC_ACT_REDIRECT)
}

/// `__dev_via_ifindex()`: the packet's device for ifindex 0, else the device with that index.
fn device(ctx: &HelperCtx<'_>, own: u32, ifindex: u32) -> Option<NetDevice> {
    let want = if ifindex == 0 { own } else { ifindex };
    ctx.world.kernel.fib.device(want).cloned()
}

/// `bpf_check_mtu(ctx, ifindex, *mtu_len, len_diff, flags)` (`bpf_skb_check_mtu` and
/// `bpf_xdp_check_mtu`): whether the packet, or an L3 length of `*mtu_len` when nonzero,
/// grown by `len_diff`, fits the device's MTU plus its link-layer header; writes the MTU to
/// `*mtu_len`. The packet's own device is the loopback one (the XDP context's ingress device
/// when set).
fn check_mtu(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (ifindex, len_diff, flags) = (a[1] as u32, a[3] as i32, a[4]);
    let mtu_in = ctx.arg_bytes(3, a[2], 4)?;
    let mtu_in = u32::from_le_bytes([mtu_in[0], mtu_in[1], mtu_in[2], mtu_in[3]]);
    let xdp = ctx.prog_type == Xdp;
    let (own, pkt_len, gso) = if xdp {
        let x = xdp_ref(ctx)?;
        let own = if x.ingress_ifindex == 0 { LOOPBACK } else { x.ingress_ifindex };
        (own, (x.data_end(&ctx.world.mem) - x.data) as i64, false)
    } else {
        let skb = skb_ref(ctx)?;
        (LOOPBACK, ctx.world.mem.bytes(skb.packet).len() as i64, skb.is_gso())
    };
    if xdp && flags != 0 {
        return Ok(EINVAL);
    }
    if flags & !MTU_CHK_SEGS != 0 || (flags & MTU_CHK_SEGS != 0 && (len_diff != 0 || mtu_in != 0)) {
        return Ok(EINVAL);
    }
    let Some(dev) = device(ctx, own, ifindex) else {
        return Ok(ENODEV);
    };
    let mtu = dev.mtu as i32;
    let hard_header = dev.hard_header_len as i32;
    let dev_len = i64::from(mtu) + i64::from(hard_header);
    let len = if mtu_in != 0 { i64::from(mtu_in as i32) + i64::from(hard_header) } else { pkt_len };
    // int arithmetic as in the kernel.
    let len = i64::from((len as i32).wrapping_add(len_diff));
    let mut ret = if len <= dev_len { 0 } else { MTU_CHK_RET_FRAG_NEEDED };
    if ret != 0 && gso {
        // A GSO skb may be re-segmented; with BPF_MTU_CHK_SEGS the segments are checked, and
        // a test run's GSO skb has no transport header set.
        ret = 0;
        if flags & MTU_CHK_SEGS != 0 {
            let skb = skb_ref(ctx)?;
            let Some(th) = skb.transport_header else {
                return Ok(EINVAL);
            };
            // skb_gso_validate_network_len(): a test run's GSO skb has no gso_type, so its
            // segments are gso_size bytes past the transport header.
            let seg = i64::from(skb.gso_size) + th as i64 - skb.network_header as i64;
            if seg > i64::from(mtu) {
                ret = MTU_CHK_RET_SEGS_TOOBIG;
            }
        }
    }
    let out = ctx
        .world
        .mem
        .slice_mut(a[2], 4)
        .map_err(|error| HelperError::BadMemoryArg { arg: 3, error })?;
    out.copy_from_slice(&(mtu as u32).to_le_bytes());
    Ok(ret)
}

/// `bpf_xdp_pointer()`'s checks on `len` bytes at `offset` of `data`: `Err(errno)` for an
/// offset or length above 0xffff (`-EFAULT`) or past the end of the buffer, fragments
/// included (`-EINVAL`).
fn xdp_range(ctx: &HelperCtx<'_>, offset: u32, len: u32) -> Result<Result<(), u64>, HelperError> {
    let x = xdp_ref(ctx)?;
    Ok(x.pointer(&ctx.world.mem, offset, len).map(|_| ()).map_err(|e| i64::from(e) as u64))
}

/// `bpf_xdp_load_bytes(ctx, offset, buf, len)`: copies `len` packet bytes from `offset` (of
/// `data`, across the linear part and the fragments) to `buf`; `-EFAULT` for an offset or
/// length above 0xffff, `-EINVAL` past the end (the buffer is then left as it was).
fn xdp_load_bytes(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = a[3] as u32;
    if len == 0 {
        return Err(HelperError::BadArg { arg: 4, reason: "size must be greater than 0" });
    }
    ctx.world
        .mem
        .slice_mut(a[2], len as usize)
        .map_err(|error| HelperError::BadMemoryArg { arg: 3, error })?;
    if let Err(e) = xdp_range(ctx, a[1] as u32, len)? {
        return Ok(e);
    }
    let bytes = xdp_ref(ctx)?.copy_out(&ctx.world.mem, a[1] as u32 as usize, len as usize);
    ctx.world
        .mem
        .slice_mut(a[2], len as usize)
        .map_err(|error| HelperError::BadMemoryArg { arg: 3, error })?
        .copy_from_slice(&bytes);
    Ok(0)
}

/// `bpf_xdp_store_bytes(ctx, offset, buf, len)`: copies `len` bytes of `buf` into the packet
/// at `offset` (across the linear part and the fragments), with [`xdp_load_bytes`]'s errors.
fn xdp_store_bytes(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = a[3] as u32;
    if len == 0 {
        return Err(HelperError::BadArg { arg: 4, reason: "size must be greater than 0" });
    }
    let from = ctx.arg_bytes(3, a[2], u64::from(len))?;
    if let Err(e) = xdp_range(ctx, a[1] as u32, len)? {
        return Ok(e);
    }
    let x = xdp_ref(ctx)?.clone();
    x.copy_in(&mut ctx.world.mem, a[1] as u32 as usize, &from);
    Ok(0)
}
