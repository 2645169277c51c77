//! skb helpers: packet access, resizing and re-encapsulation, checksums, VLAN tags, hashes and
//! redirection, with the kernel's prototypes, errno returns and per-program-type availability
//! (net/core/filter.c: `tc_cls_act_func_proto`, `sk_filter_func_proto`, `cg_skb_func_proto`,
//! `lwt_*_func_proto`, `sk_skb_func_proto`, `flow_dissector_func_proto`, `xdp_func_proto`).
//!
//! The skb is the one a test run builds (see [`crate::ctx::skb`]): linear, never cloned, with
//! `ip_summed` = `CHECKSUM_NONE` (or `CHECKSUM_UNNECESSARY` through `bpf_csum_level`), so the
//! paths of the kernel code that only run for `CHECKSUM_COMPLETE`/`CHECKSUM_PARTIAL` skbs
//! never apply.

use super::csum;
use crate::ctx::skb::{
    BPF_SKB_MAX_LEN, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, IpSummed,
    PACKET_OTHERHOST, SkbCtx,
};
use crate::engine::ProgType;
use crate::env::{Redirect, RedirectTarget};
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: SKB_STORE_BYTES, func: skb_store_bytes },
    Helper { proto: L3_CSUM_REPLACE, func: l3_csum_replace },
    Helper { proto: L4_CSUM_REPLACE, func: l4_csum_replace },
    Helper { proto: SKB_VLAN_PUSH, func: skb_vlan_push },
    Helper { proto: SKB_VLAN_POP, func: skb_vlan_pop },
    Helper { proto: REDIRECT, func: redirect },
    Helper { proto: SKB_LOAD_BYTES, func: skb_load_bytes },
    Helper { proto: CSUM_DIFF, func: csum_diff },
    Helper { proto: SKB_CHANGE_PROTO, func: skb_change_proto },
    Helper { proto: SKB_CHANGE_TYPE, func: skb_change_type },
    Helper { proto: GET_HASH_RECALC, func: get_hash_recalc },
    Helper { proto: SKB_CHANGE_TAIL, func: skb_change_tail },
    Helper { proto: SKB_PULL_DATA, func: skb_pull_data },
    Helper { proto: CSUM_UPDATE, func: csum_update },
    Helper { proto: SET_HASH_INVALID, func: set_hash_invalid },
    Helper { proto: SKB_CHANGE_HEAD, func: skb_change_head },
    Helper { proto: GET_SOCKET_UID, func: get_socket_uid },
    Helper { proto: SET_HASH, func: set_hash },
    Helper { proto: SKB_ADJUST_ROOM, func: skb_adjust_room },
    Helper { proto: SKB_LOAD_BYTES_RELATIVE, func: skb_load_bytes_relative },
    Helper { proto: CSUM_LEVEL, func: csum_level },
];

use ArgType::{Anything, ConstSize, ConstSizeOrZero, PtrToCtx, PtrToMem, PtrToMemOrNull};

const fn proto(
    id: u32,
    name: &'static str,
    args: &'static [ArgType],
    prog_types: &'static [ProgType],
) -> HelperProto {
    HelperProto {
        id,
        name,
        ret: RetType::Integer,
        args,
        gpl_only: false,
        prog_types: Allowed::Only(prog_types),
    }
}

use ProgType::{
    CgroupSkb, FlowDissector, LwtIn, LwtOut, LwtSeg6local, LwtXmit, SchedAct, SchedCls, SkSkb,
    SocketFilter, Xdp,
};

const TC: &[ProgType] = &[SchedCls, SchedAct];
const TC_LWT_XMIT: &[ProgType] = &[SchedCls, SchedAct, LwtXmit];
const TC_LWT_XMIT_SK_SKB: &[ProgType] = &[SchedCls, SchedAct, LwtXmit, SkSkb];
const TC_LWT: &[ProgType] = &[SchedCls, SchedAct, LwtIn, LwtOut, LwtXmit, LwtSeg6local];
const SOCKET_INFO: &[ProgType] = &[SocketFilter, CgroupSkb, SchedCls, SchedAct, SkSkb];

const CTX: &[ArgType] = &[PtrToCtx];
const CTX_ANY: &[ArgType] = &[PtrToCtx, Anything];
const CTX_ANY2: &[ArgType] = &[PtrToCtx, Anything, Anything];
const CTX_ANY4: &[ArgType] = &[PtrToCtx, Anything, Anything, Anything, Anything];

const SKB_STORE_BYTES: HelperProto = proto(
    9,
    "bpf_skb_store_bytes",
    &[PtrToCtx, Anything, PtrToMem, ConstSize, Anything],
    TC_LWT_XMIT_SK_SKB,
);
const L3_CSUM_REPLACE: HelperProto = proto(10, "bpf_l3_csum_replace", CTX_ANY4, TC_LWT_XMIT);
const L4_CSUM_REPLACE: HelperProto = proto(11, "bpf_l4_csum_replace", CTX_ANY4, TC_LWT_XMIT);
const SKB_VLAN_PUSH: HelperProto = proto(18, "bpf_skb_vlan_push", CTX_ANY2, TC);
const SKB_VLAN_POP: HelperProto = proto(19, "bpf_skb_vlan_pop", CTX, TC);
const REDIRECT: HelperProto =
    proto(23, "bpf_redirect", &[Anything, Anything], &[SchedCls, SchedAct, LwtXmit, Xdp]);
const SKB_LOAD_BYTES: HelperProto = proto(
    26,
    "bpf_skb_load_bytes",
    &[PtrToCtx, Anything, ArgType::PtrToUninitMem, ConstSize],
    &[
        SocketFilter,
        SchedCls,
        SchedAct,
        CgroupSkb,
        SkSkb,
        FlowDissector,
        LwtIn,
        LwtOut,
        LwtXmit,
        LwtSeg6local,
    ],
);
const CSUM_DIFF: HelperProto = proto(
    28,
    "bpf_csum_diff",
    &[PtrToMemOrNull, ConstSizeOrZero, PtrToMemOrNull, ConstSizeOrZero, Anything],
    &[SchedCls, SchedAct, Xdp, LwtIn, LwtOut, LwtXmit, LwtSeg6local],
);
const SKB_CHANGE_PROTO: HelperProto = proto(31, "bpf_skb_change_proto", CTX_ANY2, TC);
const SKB_CHANGE_TYPE: HelperProto = proto(32, "bpf_skb_change_type", CTX_ANY, TC);
const GET_HASH_RECALC: HelperProto = proto(34, "bpf_get_hash_recalc", CTX, TC_LWT);
const SKB_CHANGE_TAIL: HelperProto = proto(38, "bpf_skb_change_tail", CTX_ANY2, TC_LWT_XMIT_SK_SKB);
const SKB_PULL_DATA: HelperProto = proto(
    39,
    "bpf_skb_pull_data",
    CTX_ANY,
    &[SchedCls, SchedAct, SkSkb, LwtIn, LwtOut, LwtXmit, LwtSeg6local],
);
const CSUM_UPDATE: HelperProto = proto(40, "bpf_csum_update", CTX_ANY, TC_LWT_XMIT);
const SET_HASH_INVALID: HelperProto = proto(41, "bpf_set_hash_invalid", CTX, TC_LWT_XMIT);
const SKB_CHANGE_HEAD: HelperProto = proto(43, "bpf_skb_change_head", CTX_ANY2, TC_LWT_XMIT_SK_SKB);
const GET_SOCKET_UID: HelperProto = proto(47, "bpf_get_socket_uid", CTX, SOCKET_INFO);
const SET_HASH: HelperProto = proto(48, "bpf_set_hash", CTX_ANY, TC);
const SKB_ADJUST_ROOM: HelperProto = proto(
    50,
    "bpf_skb_adjust_room",
    &[PtrToCtx, Anything, Anything, Anything],
    &[SchedCls, SchedAct, SkSkb],
);
const SKB_LOAD_BYTES_RELATIVE: HelperProto = proto(
    68,
    "bpf_skb_load_bytes_relative",
    &[PtrToCtx, Anything, ArgType::PtrToUninitMem, ConstSize, Anything],
    &[SocketFilter, CgroupSkb, SchedCls, SchedAct],
);
const CSUM_LEVEL: HelperProto = proto(135, "bpf_csum_level", CTX_ANY, TC_LWT_XMIT);

const EFAULT: u64 = -14i64 as u64;
const EINVAL: u64 = -22i64 as u64;
const ENOMEM: u64 = -12i64 as u64;
const EACCES: u64 = -13i64 as u64;
const EALREADY: u64 = -114i64 as u64;
/// The kernel-internal `ENOTSUPP` (524), which helpers do return to programs.
const ENOTSUPP: u64 = -524i64 as u64;

/// The running program's skb.
fn skb_ref<'c>(ctx: &'c HelperCtx<'_>) -> Result<&'c SkbCtx, HelperError> {
    ctx.world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<SkbCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "not an __sk_buff context" })
}

/// Runs `f` on the skb and its packet bytes, then writes both back.
fn modify<R>(
    ctx: &mut HelperCtx<'_>,
    f: impl FnOnce(&mut SkbCtx, &mut Vec<u8>) -> R,
) -> Result<R, HelperError> {
    let mut skb = skb_ref(ctx)?.clone();
    let mut pkt = std::mem::take(ctx.world.mem.bytes_mut(skb.packet));
    let r = f(&mut skb, &mut pkt);
    *ctx.world.mem.bytes_mut(skb.packet) = pkt;
    if let Some(c) =
        ctx.world.mem.context_mut().and_then(|c| c.as_any_mut().downcast_mut::<SkbCtx>())
    {
        *c = skb;
    }
    Ok(r)
}

/// An `ARG_CONST_SIZE` argument: the verifier refuses 0.
fn const_size(arg: u8, value: u64) -> Result<usize, HelperError> {
    match usize::try_from(value) {
        Ok(0) => Err(HelperError::BadArg { arg, reason: "size must be greater than 0" }),
        Ok(n) => Ok(n),
        Err(_) => Err(HelperError::BadArg { arg, reason: "size too large" }),
    }
}

/// Checks that `len` bytes at `addr` can be written (an `ARG_PTR_TO_UNINIT_MEM` argument).
fn check_out(ctx: &mut HelperCtx<'_>, arg: u8, addr: u64, len: usize) -> Result<(), HelperError> {
    ctx.world
        .mem
        .slice_mut(addr, len)
        .map(|_| ())
        .map_err(|error| HelperError::BadMemoryArg { arg, error })
}

/// Writes `bytes` to the output argument at `addr`, or zeros and `-EFAULT` when `None`.
fn fill_out(
    ctx: &mut HelperCtx<'_>,
    arg: u8,
    addr: u64,
    len: usize,
    bytes: Option<Vec<u8>>,
) -> Result<u64, HelperError> {
    let out = ctx
        .world
        .mem
        .slice_mut(addr, len)
        .map_err(|error| HelperError::BadMemoryArg { arg, error })?;
    match bytes {
        Some(b) => {
            out.copy_from_slice(&b);
            Ok(0)
        }
        None => {
            out.fill(0);
            Ok(EFAULT)
        }
    }
}

fn skb_load_bytes(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = const_size(4, a[3])?;
    check_out(ctx, 3, a[2], len)?;
    let offset = a[1] as u32;
    let bytes = if ctx.prog_type == FlowDissector {
        // bpf_flow_dissector_load_bytes() needs ctx->skb, which a test run does not set.
        None
    } else {
        let skb = skb_ref(ctx)?;
        let pkt = ctx.world.mem.bytes(skb.packet);
        let start = offset as usize;
        if offset > i32::MAX as u32 {
            None
        } else {
            start.checked_add(len).and_then(|end| pkt.get(start..end)).map(<[u8]>::to_vec)
        }
    };
    fill_out(ctx, 3, a[2], len, bytes)
}

fn skb_load_bytes_relative(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = const_size(4, a[3])?;
    check_out(ctx, 3, a[2], len)?;
    let offset = a[1] as u32;
    let skb = skb_ref(ctx)?;
    let pkt = ctx.world.mem.bytes(skb.packet);
    let start = match a[4] as u32 {
        0 => skb.mac_header,           // BPF_HDR_START_MAC
        1 => Some(skb.network_header), // BPF_HDR_START_NET
        _ => None,
    };
    let end = skb.data_off() + pkt.len();
    let bytes = start.filter(|_| offset <= 0xffff).and_then(|start| {
        let from = start + offset as usize;
        (from + len <= end).then(|| (from..from + len).map(|i| skb.linear_byte(pkt, i)).collect())
    });
    fill_out(ctx, 3, a[2], len, bytes)
}

fn skb_store_bytes(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = const_size(4, a[3])?;
    let from = ctx.arg_bytes(3, a[2], len as u64)?;
    let flags = a[4];
    // BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH
    if flags & !3 != 0 {
        return Ok(EINVAL);
    }
    let offset = a[1] as u32;
    if offset > i32::MAX as u32 {
        return Ok(EFAULT);
    }
    modify(ctx, |skb, pkt| {
        let start = offset as usize;
        if start + len > pkt.len() {
            return EFAULT;
        }
        pkt[start..start + len].copy_from_slice(&from);
        // BPF_F_RECOMPUTE_CSUM only updates skb->csum of CHECKSUM_COMPLETE skbs.
        if flags & 2 != 0 {
            skb.clear_hash();
        }
        0
    })
}

/// The checksum field at `offset` for the csum_replace helpers, or the errno.
fn csum_field(pkt: &[u8], offset: u32) -> Result<u16, u64> {
    if offset > 0xffff || offset & 1 != 0 {
        return Err(EFAULT);
    }
    let at = offset as usize;
    match pkt.get(at..at + 2) {
        Some(b) => Ok(u16::from_le_bytes([b[0], b[1]])),
        None => Err(EFAULT),
    }
}

fn l3_csum_replace(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (offset, from, to, flags) = (a[1] as u32, a[2], a[3], a[4]);
    if flags & !0xf != 0 {
        return Ok(EINVAL);
    }
    modify(ctx, |_, pkt| {
        let sum = match csum_field(pkt, offset) {
            Ok(s) => s,
            Err(e) => return e,
        };
        let new = match flags & 0xf {
            0 if from != 0 => return EINVAL,
            0 => csum::csum_replace_by_diff(sum, to as u32),
            2 => csum::csum_replace2(sum, from as u16, to as u16),
            4 => csum::csum_replace4(sum, from as u32, to as u32),
            _ => return EINVAL,
        };
        let at = offset as usize;
        pkt[at..at + 2].copy_from_slice(&new.to_le_bytes());
        0
    })
}

fn l4_csum_replace(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (offset, from, to, flags) = (a[1] as u32, a[2], a[3], a[4]);
    // BPF_F_HDR_FIELD_MASK | BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE |
    // BPF_F_IPV6: the pseudo-header and IPv6 flags only matter for CHECKSUM_COMPLETE and
    // CHECKSUM_PARTIAL skbs.
    if flags & !0xff != 0 {
        return Ok(EINVAL);
    }
    let mangled_0 = flags & 0x20 != 0;
    let enforce = flags & 0x40 != 0;
    modify(ctx, |_, pkt| {
        let sum = match csum_field(pkt, offset) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if mangled_0 && !enforce && sum == 0 {
            return 0;
        }
        let mut new = match flags & 0xf {
            0 if from != 0 => return EINVAL,
            0 => csum::csum_replace_by_diff(sum, to as u32),
            // inet_proto_csum_replace2() widens the 16-bit values to 32 bits.
            2 => csum::csum_replace4(sum, u32::from(from as u16), u32::from(to as u16)),
            4 => csum::csum_replace4(sum, from as u32, to as u32),
            _ => return EINVAL,
        };
        if mangled_0 && new == 0 {
            new = 0xffff; // CSUM_MANGLED_0
        }
        let at = offset as usize;
        pkt[at..at + 2].copy_from_slice(&new.to_le_bytes());
        0
    })
}

fn csum_diff(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (from_size, to_size, seed) = (a[1] as u32, a[3] as u32, a[4] as u32);
    let from = if from_size > 0 { ctx.arg_bytes(1, a[0], u64::from(from_size))? } else { vec![] };
    let to = if to_size > 0 { ctx.arg_bytes(3, a[2], u64::from(to_size))? } else { vec![] };
    let ret = if from_size > 0 && to_size > 0 {
        csum::csum_sub(csum::csum_partial(&to, seed), csum::csum_partial(&from, 0))
    } else if to_size > 0 {
        csum::csum_partial(&to, seed)
    } else if from_size > 0 {
        !csum::csum_partial(&from, !seed)
    } else {
        seed
    };
    Ok(u64::from(csum::csum_from32to16(ret)))
}

fn csum_update(ctx: &mut HelperCtx<'_>, _a: [u64; 5]) -> Result<u64, HelperError> {
    skb_ref(ctx)?;
    // Only CHECKSUM_COMPLETE skbs carry a csum to update; a test run's never does.
    Ok(ENOTSUPP)
}

fn csum_level(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    modify(ctx, |skb, _| {
        let unnecessary = skb.ip_summed == IpSummed::Unnecessary;
        match a[1] {
            // BPF_CSUM_LEVEL_QUERY
            0 => return if unnecessary { u64::from(skb.csum_level) } else { EACCES },
            // BPF_CSUM_LEVEL_INC
            1 if unnecessary => skb.csum_level = (skb.csum_level + 1).min(3),
            1 => {
                skb.ip_summed = IpSummed::Unnecessary;
                skb.csum_level = 0;
            }
            // BPF_CSUM_LEVEL_DEC
            2 if unnecessary && skb.csum_level == 0 => skb.ip_summed = IpSummed::None,
            2 if unnecessary => skb.csum_level -= 1,
            2 => {}
            // BPF_CSUM_LEVEL_RESET
            3 => reset_csum_unnecessary(skb),
            _ => return EINVAL,
        }
        0
    })
}

/// `__skb_reset_checksum_unnecessary()`.
fn reset_csum_unnecessary(skb: &mut SkbCtx) {
    if skb.ip_summed == IpSummed::Unnecessary {
        skb.ip_summed = IpSummed::None;
        skb.csum_level = 0;
    }
}

fn skb_pull_data(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let skb = skb_ref(ctx)?;
    let len = ctx.world.mem.bytes(skb.packet).len() as u64;
    // skb_ensure_writable(skb, len ?: skb_headlen(skb)): the skb is linear, so pulling fails
    // only past its end.
    let want = match a[1] as u32 {
        0 => len,
        n => u64::from(n),
    };
    Ok(if want > len { ENOMEM } else { 0 })
}

/// `__bpf_skb_min_len()`: the packet may not be cut before its network or transport header.
fn min_len(skb: &SkbCtx) -> u64 {
    let mut min = 0;
    let noff = skb.network_offset();
    if noff > 0 {
        min = noff as u64;
    }
    if let Some(t) = skb.transport_header {
        let toff = t as i64 - skb.data_off() as i64;
        if toff > 0 {
            min = toff as u64;
        }
    }
    min
}

fn skb_change_tail(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (new_len, flags) = (a[1] as u32, a[2]);
    modify(ctx, |skb, pkt| {
        if flags != 0 || new_len > BPF_SKB_MAX_LEN || u64::from(new_len) < min_len(skb) {
            return EINVAL;
        }
        if skb.encapsulation {
            return ENOTSUPP;
        }
        // Growing zeroes the new bytes (bpf_skb_grow_rcsum).
        pkt.resize(new_len as usize, 0);
        if skb.is_gso() {
            skb.gso_size = 0;
            skb.gso_segs = 0;
        }
        0
    })
}

fn skb_change_head(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (head_room, flags) = (a[1] as u32, a[2]);
    modify(ctx, |skb, pkt| {
        let len = pkt.len() as u32;
        let new_len = len.wrapping_add(head_room);
        if flags != 0
            || (head_room as i32) < 0
            || (!skb.is_gso() && new_len > BPF_SKB_MAX_LEN)
            || new_len < len
        {
            return EINVAL;
        }
        let n = head_room as usize;
        skb.push(pkt, n);
        pkt[..n].fill(0);
        skb.mac_header = Some(skb.data_off());
        0
    })
}

/// `bpf_skb_generic_push()` + header moves of `bpf_skb_net_hdr_push()`: inserts `len` zero
/// bytes after the first `off` bytes of the packet.
fn net_hdr_push(skb: &mut SkbCtx, pkt: &mut Vec<u8>, off: usize, len: usize) {
    let trans_same = skb.transport_header == Some(skb.network_header);
    let old_len = pkt.len();
    skb.push(pkt, len);
    let keep = off.min(old_len);
    pkt.copy_within(len..len + keep, 0);
    pkt[keep..keep + len].fill(0);
    skb.mac_header = skb.mac_header.map(|m| m.saturating_sub(len));
    skb.network_header = skb.network_header.saturating_sub(len);
    if trans_same {
        skb.transport_header = Some(skb.network_header);
    }
}

/// `bpf_skb_generic_pop()` + header moves of `bpf_skb_net_hdr_pop()`: removes the `len` bytes
/// after the first `off` bytes of the packet; `Err(errno)` when they are not all there.
fn net_hdr_pop(skb: &mut SkbCtx, pkt: &mut Vec<u8>, off: usize, len: usize) -> Result<(), u64> {
    if off + len > pkt.len() {
        return Err(ENOMEM);
    }
    let trans_same = skb.transport_header == Some(skb.network_header);
    let front = pkt[..off].to_vec();
    skb.pull(pkt, len);
    pkt[..off].copy_from_slice(&front);
    skb.mac_header = skb.mac_header.map(|m| m + len);
    skb.network_header += len;
    if trans_same {
        skb.transport_header = Some(skb.network_header);
    }
    Ok(())
}

/// `bpf_skb_net_base_len()`: the base header length of the skb's L3 protocol.
fn net_base_len(protocol: u16) -> Option<u32> {
    match protocol {
        ETH_P_IP => Some(20),
        ETH_P_IPV6 => Some(40),
        _ => None,
    }
}

const ADJ_ROOM_FIXED_GSO: u64 = 1 << 0;
const ADJ_ROOM_ENCAP_L3_IPV4: u64 = 1 << 1;
const ADJ_ROOM_ENCAP_L3_IPV6: u64 = 1 << 2;
const ADJ_ROOM_ENCAP_L4_GRE: u64 = 1 << 3;
const ADJ_ROOM_ENCAP_L4_UDP: u64 = 1 << 4;
const ADJ_ROOM_NO_CSUM_RESET: u64 = 1 << 5;
const ADJ_ROOM_ENCAP_L2_ETH: u64 = 1 << 6;
const ADJ_ROOM_DECAP_L3_IPV4: u64 = 1 << 7;
const ADJ_ROOM_DECAP_L3_IPV6: u64 = 1 << 8;
const ADJ_ROOM_ENCAP_L3_MASK: u64 = ADJ_ROOM_ENCAP_L3_IPV4 | ADJ_ROOM_ENCAP_L3_IPV6;
const ADJ_ROOM_DECAP_L3_MASK: u64 = ADJ_ROOM_DECAP_L3_IPV4 | ADJ_ROOM_DECAP_L3_IPV6;
const ADJ_ROOM_MASK: u64 = ADJ_ROOM_FIXED_GSO
    | ADJ_ROOM_ENCAP_L3_MASK
    | ADJ_ROOM_ENCAP_L4_GRE
    | ADJ_ROOM_ENCAP_L4_UDP
    | ADJ_ROOM_ENCAP_L2_ETH
    | (0xff << 56)
    | ADJ_ROOM_DECAP_L3_MASK;

fn skb_adjust_room(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (len_diff, mode, flags) = (a[1] as i32, a[2] as u32, a[3]);
    let diff = len_diff.unsigned_abs();
    let shrink = len_diff < 0;
    if ctx.prog_type == SkSkb {
        // sk_skb_adjust_room(): plain room at the front of the message.
        if flags != 0 || mode != 0 {
            return Ok(EINVAL);
        }
        if diff > 0xfff {
            return Ok(EFAULT);
        }
        return modify(ctx, |skb, pkt| {
            let n = diff as usize;
            if shrink {
                if n > pkt.len() {
                    return ENOMEM;
                }
                skb.pull(pkt, n);
            } else {
                skb.push(pkt, n);
                pkt[..n].fill(0);
            }
            0
        });
    }
    if flags & !(ADJ_ROOM_MASK | ADJ_ROOM_NO_CSUM_RESET) != 0 {
        return Ok(EINVAL);
    }
    if diff > 0xfff {
        return Ok(EFAULT);
    }
    modify(ctx, |skb, pkt| {
        let Some(base_len) = net_base_len(skb.protocol) else {
            return ENOTSUPP;
        };
        let mut off = skb.mac_header_len().max(0) as u32;
        match mode {
            0 => off += base_len, // BPF_ADJ_ROOM_NET
            1 => {}               // BPF_ADJ_ROOM_MAC
            _ => return ENOTSUPP,
        }
        let mut len_min = base_len;
        if flags & ADJ_ROOM_DECAP_L3_MASK != 0 {
            if !shrink {
                return EINVAL;
            }
            len_min = match flags & ADJ_ROOM_DECAP_L3_MASK {
                ADJ_ROOM_DECAP_L3_IPV4 => 20,
                ADJ_ROOM_DECAP_L3_IPV6 => 40,
                _ => return EINVAL,
            };
        }
        let len = pkt.len() as u32;
        let len_cur = (i64::from(len) - skb.network_offset()) as u32;
        if (shrink && (diff >= len_cur || len_cur - diff < len_min))
            || (!shrink && len + diff > BPF_SKB_MAX_LEN && !skb.is_gso())
        {
            return ENOTSUPP;
        }
        let ret = if shrink {
            net_shrink(skb, pkt, off as usize, diff as usize, flags)
        } else {
            net_grow(skb, pkt, off as usize, diff as usize, flags)
        };
        if ret == 0 && flags & ADJ_ROOM_NO_CSUM_RESET == 0 {
            reset_csum_unnecessary(skb);
        }
        ret
    })
}

/// `bpf_skb_net_grow()`.
fn net_grow(skb: &mut SkbCtx, pkt: &mut Vec<u8>, off: usize, len_diff: usize, flags: u64) -> u64 {
    let inner_mac_len = (flags >> 56) as usize;
    let encap = flags & ADJ_ROOM_ENCAP_L3_MASK != 0;
    // A test run's GSO skbs have no gso_type, so they are neither TCP nor UDP_L4 GSO.
    if skb.is_gso() {
        return ENOTSUPP;
    }
    let mut mac_len = 0;
    if encap {
        if flags & ADJ_ROOM_ENCAP_L3_IPV4 != 0 && flags & ADJ_ROOM_ENCAP_L3_IPV6 != 0 {
            return EINVAL;
        }
        if flags & ADJ_ROOM_ENCAP_L4_GRE != 0 && flags & ADJ_ROOM_ENCAP_L4_UDP != 0 {
            return EINVAL;
        }
        if flags & ADJ_ROOM_ENCAP_L2_ETH != 0 && inner_mac_len < ETH_HLEN {
            return EINVAL;
        }
        if skb.encapsulation {
            return EALREADY;
        }
        mac_len = skb.mac_header_len().max(0) as usize;
        if inner_mac_len > len_diff {
            return EINVAL;
        }
    }
    net_hdr_push(skb, pkt, off, len_diff);
    if encap {
        skb.encapsulation = true;
        skb.network_header = skb.data_off() + mac_len;
        if flags & (ADJ_ROOM_ENCAP_L4_GRE | ADJ_ROOM_ENCAP_L4_UDP) != 0 {
            let nh_len = if flags & ADJ_ROOM_ENCAP_L3_IPV6 != 0 { 40 } else { 20 };
            skb.transport_header = Some(skb.data_off() + mac_len + nh_len);
        }
        if skb.protocol == ETH_P_IP && flags & ADJ_ROOM_ENCAP_L3_IPV6 != 0 {
            skb.protocol = ETH_P_IPV6;
        } else if skb.protocol == ETH_P_IPV6 && flags & ADJ_ROOM_ENCAP_L3_IPV4 != 0 {
            skb.protocol = ETH_P_IP;
        }
    }
    0
}

/// `bpf_skb_net_shrink()`.
fn net_shrink(skb: &mut SkbCtx, pkt: &mut Vec<u8>, off: usize, len_diff: usize, flags: u64) -> u64 {
    if flags & !(ADJ_ROOM_FIXED_GSO | ADJ_ROOM_DECAP_L3_MASK | ADJ_ROOM_NO_CSUM_RESET) != 0 {
        return EINVAL;
    }
    if skb.is_gso() {
        return ENOTSUPP;
    }
    if let Err(e) = net_hdr_pop(skb, pkt, off, len_diff) {
        return e;
    }
    if skb.protocol == ETH_P_IP && flags & ADJ_ROOM_DECAP_L3_IPV6 != 0 {
        skb.protocol = ETH_P_IPV6;
    } else if skb.protocol == ETH_P_IPV6 && flags & ADJ_ROOM_DECAP_L3_IPV4 != 0 {
        skb.protocol = ETH_P_IP;
    }
    0
}

fn skb_change_proto(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (to, flags) = ((a[1] as u16).swap_bytes(), a[2]);
    if flags != 0 {
        return Ok(EINVAL);
    }
    modify(ctx, |skb, pkt| {
        // The IPv6 header is 20 bytes longer than the IPv4 one; the room is made (or taken)
        // right after the MAC header.
        let off = skb.mac_header_len().max(0) as usize;
        match (skb.protocol, to) {
            (ETH_P_IP, ETH_P_IPV6) => {
                net_hdr_push(skb, pkt, off, 20);
                skb.protocol = ETH_P_IPV6;
            }
            (ETH_P_IPV6, ETH_P_IP) => {
                if let Err(e) = net_hdr_pop(skb, pkt, off, 20) {
                    return e;
                }
                skb.protocol = ETH_P_IP;
            }
            _ => return ENOTSUPP,
        }
        skb.clear_hash();
        0
    })
}

fn skb_change_type(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let pkt_type = a[1] as u32;
    modify(ctx, |skb, _| {
        if skb.pkt_type > PACKET_OTHERHOST || pkt_type > u32::from(PACKET_OTHERHOST) {
            return EINVAL;
        }
        skb.pkt_type = pkt_type as u8;
        0
    })
}

fn is_vlan(protocol: u16) -> bool {
    protocol == ETH_P_8021Q || protocol == ETH_P_8021AD
}

fn skb_vlan_push(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut vlan_proto = (a[1] as u16).swap_bytes();
    if !is_vlan(vlan_proto) {
        vlan_proto = ETH_P_8021Q;
    }
    let vlan_tci = a[2] as u16;
    modify(ctx, |skb, pkt| {
        if skb.vlan_present() {
            // skb_vlan_flush(): the present hw-accel tag goes into the packet first.
            if skb.mac_header != Some(skb.data_off()) {
                return EINVAL;
            }
            skb.push(pkt, 4);
            if pkt.len() < 18 {
                pkt.resize(18, 0);
            }
            pkt.copy_within(4..16, 0);
            // Both header offsets move back with the tag (the network header then points
            // at the inserted tag, as the kernel leaves it).
            skb.mac_header = skb.mac_header.map(|m| m - 4);
            skb.network_header = skb.network_header.saturating_sub(4);
            pkt[12..14].copy_from_slice(&skb.vlan_proto.to_be_bytes());
            pkt[14..16].copy_from_slice(&skb.vlan_tci.to_be_bytes());
            skb.protocol = skb.vlan_proto;
        }
        skb.vlan_proto = vlan_proto;
        skb.vlan_tci = vlan_tci;
        0
    })
}

/// `__skb_vlan_pop()`: removes the in-band tag after the MAC addresses; returns its TCI.
fn vlan_pop_inband(skb: &mut SkbCtx, pkt: &mut Vec<u8>) -> Result<u16, u64> {
    if skb.mac_header != Some(skb.data_off()) {
        return Err(EINVAL);
    }
    if pkt.len() < ETH_HLEN + 4 {
        return Err(ENOMEM);
    }
    let tci = u16::from_be_bytes([pkt[14], pkt[15]]);
    pkt.copy_within(0..12, 4);
    let inner = u16::from_be_bytes([pkt[16], pkt[17]]);
    skb.protocol = if inner >= 0x0600 {
        inner
    } else if pkt.get(18..20) == Some(&[0xff, 0xff]) {
        0x0001
    } else {
        0x0004
    };
    skb.pull(pkt, 4);
    skb.mac_header = skb.mac_header.map(|m| m + 4);
    if skb.network_offset() < ETH_HLEN as i64 {
        skb.network_header = skb.data_off() + ETH_HLEN;
    }
    Ok(tci)
}

fn skb_vlan_pop(ctx: &mut HelperCtx<'_>, _a: [u64; 5]) -> Result<u64, HelperError> {
    modify(ctx, |skb, pkt| {
        if skb.vlan_present() {
            skb.vlan_proto = 0;
            skb.vlan_tci = 0;
        } else {
            if !is_vlan(skb.protocol) {
                return 0;
            }
            if let Err(e) = vlan_pop_inband(skb, pkt) {
                return e;
            }
        }
        // The next in-band tag, if any, becomes the hw-accel tag.
        if !is_vlan(skb.protocol) {
            return 0;
        }
        let vlan_proto = skb.protocol;
        match vlan_pop_inband(skb, pkt) {
            Ok(tci) => {
                skb.vlan_proto = vlan_proto;
                skb.vlan_tci = tci;
                0
            }
            Err(e) => e,
        }
    })
}

fn redirect(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let (ifindex, flags) = (a[0] as u32, a[1]);
    let xdp = ctx.prog_type == Xdp;
    // XDP takes no flags (else XDP_ABORTED); skb redirects take BPF_F_INGRESS only (else
    // TC_ACT_SHOT).
    if (xdp && flags != 0) || (!xdp && flags & !1 != 0) {
        return Ok(if xdp { 0 } else { 2 });
    }
    ctx.world.env.redirect = Some(Redirect {
        helper: "bpf_redirect",
        map: None,
        key: Vec::new(),
        flags,
        target: RedirectTarget::Ifindex(ifindex),
    });
    Ok(if xdp { 4 } else { 7 }) // XDP_REDIRECT, TC_ACT_REDIRECT
}

/// The flow hash `__skb_get_hash()` would compute, and whether it covers L4 ports. The
/// kernel keys its hash with a random per-boot seed, so only its properties (nonzero, the
/// same for the same flow) can be reproduced, not its value.
fn flow_hash(skb: &SkbCtx, pkt: &[u8]) -> (u32, bool) {
    let nh = usize::try_from(skb.network_offset()).unwrap_or(0);
    let l3 = pkt.get(nh..).unwrap_or(&[]);
    let mut key = skb.protocol.to_be_bytes().to_vec();
    let (proto, thoff) = match skb.protocol {
        ETH_P_IP if l3.len() >= 20 => {
            key.extend_from_slice(&l3[12..20]);
            let fragment = u16::from_be_bytes([l3[6], l3[7]]) & 0x3fff != 0;
            (if fragment { 0 } else { l3[9] }, usize::from(l3[0] & 0xf) * 4)
        }
        ETH_P_IPV6 if l3.len() >= 40 => {
            key.extend_from_slice(&l3[8..40]);
            (l3[6], 40)
        }
        _ => (0, 0),
    };
    key.push(proto);
    let mut l4 = false;
    if matches!(proto, 6 | 17 | 132 | 136)
        && let Some(ports) = l3.get(thoff..thoff + 4)
    {
        key.extend_from_slice(ports);
        l4 = true;
    }
    let hash =
        key.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    (if hash == 0 { 1 } else { hash }, l4)
}

fn get_hash_recalc(ctx: &mut HelperCtx<'_>, _a: [u64; 5]) -> Result<u64, HelperError> {
    modify(ctx, |skb, pkt| {
        if !skb.l4_hash && !skb.sw_hash {
            let (hash, l4) = flow_hash(skb, pkt);
            skb.hash = hash;
            skb.sw_hash = true;
            skb.l4_hash = l4;
        }
        u64::from(skb.hash)
    })
}

fn set_hash_invalid(ctx: &mut HelperCtx<'_>, _a: [u64; 5]) -> Result<u64, HelperError> {
    modify(ctx, |skb, _| {
        skb.clear_hash();
        0
    })
}

fn set_hash(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    modify(ctx, |skb, _| {
        skb.hash = a[1] as u32;
        skb.sw_hash = true;
        skb.l4_hash = true;
        0
    })
}

fn get_socket_uid(ctx: &mut HelperCtx<'_>, _a: [u64; 5]) -> Result<u64, HelperError> {
    Ok(u64::from(skb_ref(ctx)?.sk.uid))
}
