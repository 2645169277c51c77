//! Socket helpers (net/core/filter.c, net/core/sock_map.c): sockmap and sockhash updates from
//! sockops programs, redirects from sk_skb and sk_msg programs, the sk_msg message helpers,
//! socket lookups and the references they hand out, socket and netns cookies, sockops callback
//! flags and socket options. The prototypes list the program types the kernel's
//! `*_func_proto` switches give each helper; the map arguments must be of the type the verifier
//! requires.

use super::maps::{errno, key_arg, map_arg};
use crate::ctx::sk_msg::SkMsgCtx;
use crate::ctx::skb::SkbCtx;
use crate::ctx::sock_ops::{
    BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB,
    BPF_SOCK_OPS_TCP_LISTEN_CB, OFF_CB_FLAGS, OFF_SND_CWND, OFF_SND_SSTHRESH, SockOpsCtx,
};
use crate::engine::ProgType;
use crate::env::{Redirect, RedirectTarget};
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::maps::SockMap;
use crate::memory::Memory;
use crate::sock::{
    BPF_F_INGRESS, BPF_SOCK_OPS_ALL_CB_FLAGS, INIT_NET_COOKIE, SK_DROP, SK_PASS, SOL_TCP, SockId,
    SockView, acquire, release,
};
use crate::spec::MapType;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: GET_SOCKET_COOKIE, func: get_socket_cookie },
    Helper { proto: SETSOCKOPT, func: setsockopt },
    Helper { proto: SK_REDIRECT_MAP, func: sk_redirect_map },
    Helper { proto: SOCK_MAP_UPDATE, func: sock_map_update },
    Helper { proto: GETSOCKOPT, func: getsockopt },
    Helper { proto: SOCK_OPS_CB_FLAGS_SET, func: sock_ops_cb_flags_set },
    Helper { proto: MSG_REDIRECT_MAP, func: msg_redirect_map },
    Helper { proto: MSG_APPLY_BYTES, func: msg_apply_bytes },
    Helper { proto: MSG_CORK_BYTES, func: msg_cork_bytes },
    Helper { proto: MSG_PULL_DATA, func: msg_pull_data },
    Helper { proto: SOCK_HASH_UPDATE, func: sock_hash_update },
    Helper { proto: MSG_REDIRECT_HASH, func: msg_redirect_hash },
    Helper { proto: SK_REDIRECT_HASH, func: sk_redirect_hash },
    Helper { proto: SK_LOOKUP_TCP, func: sk_lookup_tcp },
    Helper { proto: SK_LOOKUP_UDP, func: sk_lookup_udp },
    Helper { proto: SK_RELEASE, func: sk_release },
    Helper { proto: MSG_PUSH_DATA, func: msg_push_data },
    Helper { proto: MSG_POP_DATA, func: msg_pop_data },
    Helper { proto: SKC_LOOKUP_TCP, func: skc_lookup_tcp },
    Helper { proto: GET_NETNS_COOKIE, func: get_netns_cookie },
];

const fn proto(
    id: u32,
    name: &'static str,
    ret: RetType,
    args: &'static [ArgType],
    prog_types: &'static [ProgType],
) -> HelperProto {
    HelperProto { id, name, ret, args, gpl_only: false, prog_types: Allowed::Only(prog_types) }
}

use ArgType::{Anything, ConstMapPtr, ConstSize, ConstSizeOrZero, PtrToCtx, PtrToMapKey, PtrToMem};

use ProgType::{
    CgroupSkb, CgroupSock, CgroupSockAddr, CgroupSockopt, Lsm, SchedAct, SchedCls, SkLookup, SkMsg,
    SkReuseport, SkSkb, SockOps, SocketFilter, StructOps, Tracing, Xdp,
};

/// Program types whose `func_proto` has `bpf_sk_lookup_tcp/_udp` and `bpf_skc_lookup_tcp`.
const LOOKUP_TYPES: &[ProgType] = &[SchedCls, SchedAct, Xdp, CgroupSkb, SkSkb, CgroupSockAddr];
/// Program types whose `func_proto` has `bpf_sk_release`.
const RELEASE_TYPES: &[ProgType] =
    &[SchedCls, SchedAct, Xdp, CgroupSkb, SkSkb, CgroupSockAddr, SkLookup];
/// Program types whose context is a `struct __sk_buff`, with the skb cookie helpers.
const SKB_TYPES: &[ProgType] = &[SocketFilter, SchedCls, SchedAct, CgroupSkb, SkSkb];
/// `bpf_get_socket_cookie`: the skb, sockops and sock_addr variants, and the socket-pointer
/// one of sk_reuseport, tracing and syscall programs (`syscall_prog_func_proto` falls back to
/// `tracing_prog_func_proto`). Not cgroup_sock's (the socket being created, which bpflab does
/// not simulate).
const COOKIE_TYPES: &[ProgType] = &[
    SocketFilter,
    SchedCls,
    SchedAct,
    CgroupSkb,
    CgroupSock,
    SockOps,
    SkSkb,
    CgroupSockAddr,
    SkReuseport,
    Tracing,
    ProgType::Syscall,
];
/// `bpf_get_netns_cookie`.
const NETNS_COOKIE_TYPES: &[ProgType] = &[
    SocketFilter,
    SchedCls,
    SchedAct,
    CgroupSkb,
    CgroupSock,
    SockOps,
    SkMsg,
    CgroupSockAddr,
    CgroupSockopt,
];
/// `bpf_setsockopt` and `bpf_getsockopt` (bpflab simulates them for sockops programs only).
const SOCKOPT_TYPES: &[ProgType] =
    &[SockOps, CgroupSockAddr, CgroupSockopt, Tracing, StructOps, Lsm];

const CTX: &[ArgType] = &[PtrToCtx];
const CTX_ANY: &[ArgType] = &[PtrToCtx, Anything];
const CTX_3ANY: &[ArgType] = &[PtrToCtx, Anything, Anything, Anything];
const MAP_INDEX: &[ArgType] = &[PtrToCtx, ConstMapPtr, Anything, Anything];
const MAP_KEY: &[ArgType] = &[PtrToCtx, ConstMapPtr, PtrToMapKey, Anything];
const LOOKUP: &[ArgType] = &[PtrToCtx, PtrToMem, ConstSizeOrZero, Anything, Anything];

const GET_SOCKET_COOKIE: HelperProto =
    proto(46, "bpf_get_socket_cookie", RetType::Integer, CTX, COOKIE_TYPES);
const SETSOCKOPT: HelperProto = proto(
    49,
    "bpf_setsockopt",
    RetType::Integer,
    &[PtrToCtx, Anything, Anything, PtrToMem, ConstSize],
    SOCKOPT_TYPES,
);
const SK_REDIRECT_MAP: HelperProto =
    proto(52, "bpf_sk_redirect_map", RetType::Integer, MAP_INDEX, &[SkSkb]);
const SOCK_MAP_UPDATE: HelperProto =
    proto(53, "bpf_sock_map_update", RetType::Integer, MAP_KEY, &[SockOps]);
const GETSOCKOPT: HelperProto = proto(
    57,
    "bpf_getsockopt",
    RetType::Integer,
    &[PtrToCtx, Anything, Anything, ArgType::PtrToUninitMem, ConstSize],
    SOCKOPT_TYPES,
);
const SOCK_OPS_CB_FLAGS_SET: HelperProto =
    proto(59, "bpf_sock_ops_cb_flags_set", RetType::Integer, CTX_ANY, &[SockOps]);
const MSG_REDIRECT_MAP: HelperProto =
    proto(60, "bpf_msg_redirect_map", RetType::Integer, MAP_INDEX, &[SkMsg]);
const MSG_APPLY_BYTES: HelperProto =
    proto(61, "bpf_msg_apply_bytes", RetType::Integer, CTX_ANY, &[SkMsg]);
const MSG_CORK_BYTES: HelperProto =
    proto(62, "bpf_msg_cork_bytes", RetType::Integer, CTX_ANY, &[SkMsg]);
const MSG_PULL_DATA: HelperProto =
    proto(63, "bpf_msg_pull_data", RetType::Integer, CTX_3ANY, &[SkMsg]);
const SOCK_HASH_UPDATE: HelperProto =
    proto(70, "bpf_sock_hash_update", RetType::Integer, MAP_KEY, &[SockOps]);
const MSG_REDIRECT_HASH: HelperProto =
    proto(71, "bpf_msg_redirect_hash", RetType::Integer, MAP_KEY, &[SkMsg]);
const SK_REDIRECT_HASH: HelperProto =
    proto(72, "bpf_sk_redirect_hash", RetType::Integer, MAP_KEY, &[SkSkb]);
const SK_LOOKUP_TCP: HelperProto =
    proto(84, "bpf_sk_lookup_tcp", RetType::PtrToSocketOrNull, LOOKUP, LOOKUP_TYPES);
const SK_LOOKUP_UDP: HelperProto =
    proto(85, "bpf_sk_lookup_udp", RetType::PtrToSocketOrNull, LOOKUP, LOOKUP_TYPES);
const SK_RELEASE: HelperProto =
    proto(86, "bpf_sk_release", RetType::Integer, &[ArgType::PtrToSocket], RELEASE_TYPES);
const MSG_PUSH_DATA: HelperProto =
    proto(90, "bpf_msg_push_data", RetType::Integer, CTX_3ANY, &[SkMsg]);
const MSG_POP_DATA: HelperProto =
    proto(91, "bpf_msg_pop_data", RetType::Integer, CTX_3ANY, &[SkMsg]);
/// Returns `RET_PTR_TO_SOCK_COMMON_OR_NULL` in the kernel (bpflab has one socket pointer type).
const SKC_LOOKUP_TCP: HelperProto =
    proto(99, "bpf_skc_lookup_tcp", RetType::PtrToSocketOrNull, LOOKUP, LOOKUP_TYPES);
/// Takes `ARG_PTR_TO_CTX_OR_NULL` in the kernel: a NULL context means the initial namespace.
const GET_NETNS_COOKIE: HelperProto =
    proto(122, "bpf_get_netns_cookie", RetType::Integer, CTX, NETNS_COOKIE_TYPES);

/// Offset of `sk` in `struct __sk_buff`.
const SKB_SK: usize = 168;
/// Offset of `sk` in `struct bpf_sock_addr`.
const SOCK_ADDR_SK: usize = 64;

const EINVAL: i64 = -22;
const ENOENT: i64 = -2;
const EOPNOTSUPP: i64 = -95;
/// `TCP_BPF_SYN`..`TCP_BPF_SYN_MAC`: the saved SYN, not simulated.
const TCP_BPF_SYN: i32 = 1005;
const TCP_BPF_SYN_MAC: i32 = 1007;

/// Resolves argument `arg` as a map of type `want` (the verifier's
/// `check_map_func_compatibility`).
fn sock_map_arg(
    ctx: &HelperCtx<'_>,
    arg: u8,
    addr: u64,
    want: MapType,
) -> Result<usize, HelperError> {
    let idx = map_arg(ctx, arg, addr)?;
    if ctx.world.map(idx).map(|m| m.spec().map_type) != Some(want) {
        let reason =
            if want == MapType::Sockmap { "map is not a sockmap" } else { "map is not a sockhash" };
        return Err(HelperError::BadArg { arg, reason });
    }
    Ok(idx)
}

fn sock_map<'w>(
    ctx: &'w mut HelperCtx<'_>,
    idx: usize,
) -> Option<(&'w mut SockMap, &'w mut Memory)> {
    let (map, mem) = ctx.world.map_mut(idx)?;
    Some((map.as_any_mut().downcast_mut::<SockMap>()?, mem))
}

fn sock_ops_ref<'w>(ctx: &'w HelperCtx<'_>) -> Result<&'w SockOpsCtx, HelperError> {
    ctx.world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<SockOpsCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "not a sockops context" })
}

fn put_sock_ops(ctx: &mut HelperCtx<'_>, ops: SockOpsCtx) {
    if let Some(c) =
        ctx.world.mem.context_mut().and_then(|c| c.as_any_mut().downcast_mut::<SockOpsCtx>())
    {
        *c = ops;
    }
}

fn msg_ref<'w>(ctx: &'w HelperCtx<'_>) -> Result<&'w SkMsgCtx, HelperError> {
    ctx.world
        .mem
        .context()
        .and_then(|c| c.as_any().downcast_ref::<SkMsgCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "not an sk_msg context" })
}

fn msg_mut<'w>(ctx: &'w mut HelperCtx<'_>) -> Result<&'w mut SkMsgCtx, HelperError> {
    ctx.world
        .mem
        .context_mut()
        .and_then(|c| c.as_any_mut().downcast_mut::<SkMsgCtx>())
        .ok_or(HelperError::BadArg { arg: 1, reason: "not an sk_msg context" })
}

/// The socket a context's pointer field at `off` refers to (`skb->sk`, `ctx->sk`).
fn ctx_sock(ctx: &HelperCtx<'_>, off: usize) -> Option<SockId> {
    let mem = &ctx.world.mem;
    let addr = mem.context()?.load(mem, off, 8).ok()?;
    SockView::at(mem, addr).map(|v| v.id)
}

fn view(ctx: &HelperCtx<'_>, sock: Option<SockId>) -> Option<SockView> {
    sock.and_then(|id| SockView::read(&ctx.world.mem, id))
}

/// `bpf_get_socket_cookie`: the skb, sockops, sock_addr and socket-pointer variants.
fn get_socket_cookie(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let sock = match ctx.prog_type {
        SockOps => sock_ops_ref(ctx)?.sock,
        t if SKB_TYPES.contains(&t) => {
            // The skb context keeps the socket of its test run (BPF_PROG_TEST_RUN's dummy one).
            let skb = ctx.world.mem.context().and_then(|c| c.as_any().downcast_ref::<SkbCtx>());
            if let Some(skb) = skb {
                return Ok(skb.sk.cookie);
            }
            ctx_sock(ctx, SKB_SK)
        }
        CgroupSockAddr => ctx_sock(ctx, SOCK_ADDR_SK),
        // sk_reuseport and tracing programs (and raw mode): the socket pointer argument.
        _ => SockView::at(&ctx.world.mem, a[0]).map(|v| v.id),
    };
    Ok(view(ctx, sock).map_or(0, |v| v.cookie))
}

/// `bpf_get_netns_cookie`: the namespace of the context's socket, or of the initial namespace
/// for a NULL context (cgroup sock and sockopt contexts are not simulated: initial namespace).
fn get_netns_cookie(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let sock = match ctx.prog_type {
        _ if a[0] == 0 => None,
        SockOps => sock_ops_ref(ctx)?.sock,
        SkMsg => msg_ref(ctx)?.sock,
        CgroupSockAddr => ctx_sock(ctx, SOCK_ADDR_SK),
        CgroupSock | CgroupSockopt => None,
        _ => ctx_sock(ctx, SKB_SK),
    };
    Ok(view(ctx, sock).map_or(INIT_NET_COOKIE, |v| v.netns_cookie))
}

/// `bpf_sock_map_update` and `bpf_sock_hash_update`: link the sockops socket under `key`,
/// only in the established and listen callbacks (`sock_map_op_okay`).
fn sock_update(ctx: &mut HelperCtx<'_>, a: [u64; 5], want: MapType) -> Result<u64, HelperError> {
    let (sock, op) = {
        let ops = sock_ops_ref(ctx)?;
        (ops.sock, ops.op())
    };
    let idx = sock_map_arg(ctx, 2, a[1], want)?;
    let key = key_arg(ctx, idx, 3, a[2])?;
    let Some(sock) = sock else {
        return Err(HelperError::BadArg { arg: 1, reason: "the sockops context has no socket" });
    };
    if !matches!(
        op,
        BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB
            | BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB
            | BPF_SOCK_OPS_TCP_LISTEN_CB
    ) {
        return Ok(errno(EOPNOTSUPP));
    }
    let Some((map, _)) = sock_map(ctx, idx) else {
        return Err(HelperError::BadArg { arg: 2, reason: "not a sockmap" });
    };
    Ok(map.insert(&key, sock, a[3]).map_or_else(|e| errno(e.errno()), |()| 0))
}

fn sock_map_update(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    sock_update(ctx, a, MapType::Sockmap)
}

fn sock_hash_update(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    sock_update(ctx, a, MapType::Sockhash)
}

/// The redirect helpers: `SK_PASS` with the target recorded, or `SK_DROP` for bad flags, an
/// empty slot or a socket that cannot take redirects.
fn redirect(
    ctx: &mut HelperCtx<'_>,
    helper: &'static str,
    idx: usize,
    key: Vec<u8>,
    flags: u64,
    msg: bool,
) -> Result<u64, HelperError> {
    if flags & !BPF_F_INGRESS != 0 {
        return Ok(SK_DROP);
    }
    let Some(id) = ctx
        .world
        .map(idx)
        .and_then(|m| m.as_any().downcast_ref::<SockMap>())
        .and_then(|m| m.get(&key))
    else {
        return Ok(SK_DROP);
    };
    let Some(target) = SockView::read(&ctx.world.mem, id) else { return Ok(SK_DROP) };
    if !target.redirect_allowed() || (msg && flags & BPF_F_INGRESS == 0 && !target.is_tcp()) {
        return Ok(SK_DROP);
    }
    // sk_msg keeps all flags in msg->flags; skb_bpf_set_redir keeps only BPF_F_INGRESS.
    if msg {
        msg_mut(ctx)?.redirect = Some((id, flags));
    }
    ctx.world.env.redirect = Some(Redirect {
        helper,
        map: Some(idx),
        key,
        flags: flags & BPF_F_INGRESS,
        target: RedirectTarget::Socket { id, cookie: target.cookie },
    });
    Ok(SK_PASS)
}

fn sk_redirect_map(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = sock_map_arg(ctx, 2, a[1], MapType::Sockmap)?;
    let key = (a[2] as u32).to_le_bytes().to_vec();
    redirect(ctx, SK_REDIRECT_MAP.name, idx, key, a[3], false)
}

fn sk_redirect_hash(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = sock_map_arg(ctx, 2, a[1], MapType::Sockhash)?;
    let key = key_arg(ctx, idx, 3, a[2])?;
    redirect(ctx, SK_REDIRECT_HASH.name, idx, key, a[3], false)
}

fn msg_redirect_map(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = sock_map_arg(ctx, 2, a[1], MapType::Sockmap)?;
    let key = (a[2] as u32).to_le_bytes().to_vec();
    redirect(ctx, MSG_REDIRECT_MAP.name, idx, key, a[3], true)
}

fn msg_redirect_hash(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = sock_map_arg(ctx, 2, a[1], MapType::Sockhash)?;
    let key = key_arg(ctx, idx, 3, a[2])?;
    redirect(ctx, MSG_REDIRECT_HASH.name, idx, key, a[3], true)
}

fn msg_apply_bytes(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    msg_mut(ctx)?.apply_bytes = a[1] as u32;
    ctx.world.env.msg_bytes.apply = a[1] as u32;
    Ok(0)
}

fn msg_cork_bytes(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    msg_mut(ctx)?.cork_bytes = a[1] as u32;
    ctx.world.env.msg_bytes.cork = a[1] as u32;
    Ok(0)
}

/// Runs one of the scatterlist edits on a copy of the context and puts it back.
fn msg_edit(
    ctx: &mut HelperCtx<'_>,
    a: [u64; 5],
    edit: fn(&mut SkMsgCtx, &mut Memory, u32, u32, u64) -> i64,
) -> Result<u64, HelperError> {
    let mut msg = msg_ref(ctx)?.clone();
    let r = edit(&mut msg, &mut ctx.world.mem, a[1] as u32, a[2] as u32, a[3]);
    *msg_mut(ctx)? = msg;
    Ok(errno(r))
}

fn msg_pull_data(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    msg_edit(ctx, a, SkMsgCtx::pull)
}

fn msg_push_data(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    msg_edit(ctx, a, SkMsgCtx::push)
}

fn msg_pop_data(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    msg_edit(ctx, a, SkMsgCtx::pop)
}

/// `bpf_sk_lookup_*` and `bpf_skc_lookup_tcp` (`__bpf_skc_lookup`): a `struct bpf_sock_tuple`
/// of 12 (IPv4) or 36 (IPv6) bytes from the packet's point of view (source = remote), in the
/// caller's namespace (`netns` negative as s32); returns the socket with a reference, or NULL.
fn lookup(ctx: &mut HelperCtx<'_>, a: [u64; 5], tcp: bool) -> Result<u64, HelperError> {
    let len = a[2];
    if len != 12 && len != 36 {
        return Ok(0);
    }
    let t = ctx.arg_bytes(2, a[1], len)?;
    let netns = a[3];
    // A negative (as s32) id means the caller's namespace; a valid id (<= S32_MAX) names
    // another one, and no other namespace is simulated: no socket there either way.
    if a[4] != 0 || (netns as u32 as i32) >= 0 {
        return Ok(0);
    }
    let port = |o: usize| u16::from_be_bytes([t[o], t[o + 1]]);
    let (remote, local) = if len == 12 {
        let ip = |o: usize| std::net::IpAddr::from([t[o], t[o + 1], t[o + 2], t[o + 3]]);
        ((ip(0), port(8)).into(), (ip(4), port(10)).into())
    } else {
        let ip = |o: usize| {
            let b: [u8; 16] = t[o..o + 16].try_into().unwrap_or([0; 16]);
            std::net::IpAddr::from(b)
        };
        ((ip(0), port(32)).into(), (ip(16), port(34)).into())
    };
    let socks = &ctx.world.socks;
    let found = if tcp {
        socks.lookup_tcp(local, remote, INIT_NET_COOKIE)
    } else {
        socks.lookup_udp(local, remote, INIT_NET_COOKIE)
    };
    let Some(id) = found.filter(|&id| SockView::read(&ctx.world.mem, id).is_some()) else {
        return Ok(0);
    };
    acquire(&mut ctx.world.mem, id);
    Ok(id.addr())
}

fn sk_lookup_tcp(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    lookup(ctx, a, true)
}

fn sk_lookup_udp(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    lookup(ctx, a, false)
}

fn skc_lookup_tcp(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    lookup(ctx, a, true)
}

/// `bpf_sk_release`: drops a reference a lookup handed out. The verifier only accepts a
/// referenced socket pointer; bpflab refuses anything else at run time.
fn sk_release(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let Some(v) = SockView::at(&ctx.world.mem, a[0]) else {
        return Err(HelperError::BadArg { arg: 1, reason: "not a socket pointer" });
    };
    if !release(&mut ctx.world.mem, v.id) {
        return Err(HelperError::BadArg {
            arg: 1,
            reason: "the program holds no reference on this socket",
        });
    }
    Ok(0)
}

/// `bpf_sock_ops_cb_flags_set`: sets the callback flags of the socket; returns the flags it
/// could not set.
fn sock_ops_cb_flags_set(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let mut ops = sock_ops_ref(ctx)?.clone();
    let argval = a[1] as i32;
    let val = argval as u32 & BPF_SOCK_OPS_ALL_CB_FLAGS;
    if !ops.is_locked_tcp_sock() {
        return Ok(errno(EOPNOTSUPP));
    }
    let Some(sock) = ops.sock else { return Ok(errno(EINVAL)) };
    let _ = ctx.world.sock_update(sock, |s| s.cb_flags = val);
    ops.set_field(OFF_CB_FLAGS, val);
    put_sock_ops(ctx, ops);
    Ok(i64::from(argval & !(BPF_SOCK_OPS_ALL_CB_FLAGS as i32)) as u64)
}

/// The socket options of a sockops callback, or the return value that ends the call.
fn sockopt_target(ctx: &HelperCtx<'_>) -> Result<Result<(SockOpsCtx, SockId), i64>, HelperError> {
    if ctx.prog_type != SockOps {
        return Err(HelperError::BadArg {
            arg: 1,
            reason: "bpflab simulates socket options for sockops programs only",
        });
    }
    let ops = sock_ops_ref(ctx)?.clone();
    if !ops.is_locked_tcp_sock() {
        return Ok(Err(EOPNOTSUPP));
    }
    match ops.sock {
        Some(sock) if ops.is_fullsock() => Ok(Ok((ops, sock))),
        _ => Ok(Err(EINVAL)),
    }
}

/// `bpf_setsockopt` from a sockops program.
fn setsockopt(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    if a[4] == 0 {
        return Err(HelperError::BadArg { arg: 5, reason: "size must be > 0" });
    }
    let (mut ops, sock) = match sockopt_target(ctx)? {
        Ok(t) => t,
        Err(e) => return Ok(errno(e)),
    };
    let optval = ctx.arg_bytes(4, a[3], a[4])?;
    let r = ctx.world.sock_setsockopt(sock, a[1] as i32, a[2] as i32, &optval);
    if let Some(s) = ctx.world.socks.get(sock) {
        ops.set_field(OFF_CB_FLAGS, s.cb_flags);
        ops.set_field(OFF_SND_CWND, s.tcp.snd_cwnd);
        ops.set_field(OFF_SND_SSTHRESH, s.tcp.snd_ssthresh);
        put_sock_ops(ctx, ops);
    }
    Ok(r.map_or_else(errno, |()| 0))
}

/// `bpf_getsockopt` from a sockops program: on error the buffer is zeroed.
fn getsockopt(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let len = usize::try_from(a[4]).unwrap_or(usize::MAX);
    if len == 0 {
        return Err(HelperError::BadArg { arg: 5, reason: "size must be > 0" });
    }
    let (_, sock) = match sockopt_target(ctx)? {
        Ok(t) => t,
        Err(e) => return Ok(errno(e)),
    };
    ctx.world
        .mem
        .slice_mut(a[3], len)
        .map_err(|error| HelperError::BadMemoryArg { arg: 4, error })?;
    let (level, optname) = (a[1] as i32, a[2] as i32);
    let got = if level == SOL_TCP && (TCP_BPF_SYN..=TCP_BPF_SYN_MAC).contains(&optname) {
        Err(ENOENT) // no saved SYN
    } else {
        ctx.world.socks.get(sock).map_or(Err(EINVAL), |s| s.getsockopt(level, optname, len))
    };
    let out = ctx
        .world
        .mem
        .slice_mut(a[3], len)
        .map_err(|error| HelperError::BadMemoryArg { arg: 4, error })?;
    out.fill(0);
    Ok(match got {
        Ok(bytes) => {
            let n = bytes.len().min(len);
            out[..n].copy_from_slice(&bytes[..n]);
            0
        }
        Err(e) => errno(e),
    })
}
