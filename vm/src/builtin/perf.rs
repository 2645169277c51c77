//! `bpf_perf_event_output`: records into a [`PerfEventArray`], per CPU.

use super::maps::map_arg;
use crate::ctx::XdpCtx;
use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::maps::PerfEventArray;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] =
    &[Helper { proto: PERF_EVENT_OUTPUT, func: perf_event_output }];

const PERF_EVENT_OUTPUT: HelperProto = HelperProto {
    id: 25,
    name: "bpf_perf_event_output",
    ret: RetType::Integer,
    args: &[
        ArgType::PtrToCtx,
        ArgType::ConstMapPtr,
        ArgType::Anything,
        ArgType::PtrToMem,
        ArgType::ConstSizeOrZero,
    ],
    gpl_only: true,
    prog_types: Allowed::Only(PERF_TYPES),
};

use ProgType::{
    CgroupDevice, CgroupSkb, CgroupSock, CgroupSockAddr, CgroupSockopt, CgroupSysctl, Kprobe, Lsm,
    LwtIn, LwtOut, LwtSeg6local, LwtXmit, PerfEvent, RawTracepoint, RawTracepointWritable,
    SchedAct, SchedCls, SkLookup, SkMsg, SkSkb, SockOps, SocketFilter, Syscall, Tracepoint,
    Tracing, Xdp,
};

/// Program types with a `bpf_perf_event_output` variant: the tracing ones
/// (kernel/trace/bpf_trace.c) and the networking and cgroup ones (`bpf_sk_base_func_proto`);
/// not sk_reuseport, flow dissector, netfilter, lirc or struct_ops programs (checked against
/// Linux 6.18).
const PERF_TYPES: &[ProgType] = &[
    SocketFilter,
    Kprobe,
    SchedCls,
    SchedAct,
    Tracepoint,
    Xdp,
    PerfEvent,
    CgroupSkb,
    CgroupSock,
    LwtIn,
    LwtOut,
    LwtXmit,
    SockOps,
    SkSkb,
    CgroupDevice,
    SkMsg,
    RawTracepoint,
    CgroupSockAddr,
    LwtSeg6local,
    CgroupSysctl,
    RawTracepointWritable,
    CgroupSockopt,
    Tracing,
    Lsm,
    SkLookup,
    Syscall,
];

/// `BPF_F_INDEX_MASK`.
const INDEX_MASK: u64 = 0xffff_ffff;
/// `BPF_F_CTXLEN_MASK`: packet bytes to append (skb and XDP programs).
const CTXLEN_MASK: u64 = 0xfffff << 32;

/// True for the program types whose variant of the helper appends packet bytes
/// (`bpf_skb_event_output`, `bpf_xdp_event_output`).
fn packet_program(t: ProgType) -> bool {
    matches!(
        t,
        ProgType::SocketFilter
            | ProgType::SchedCls
            | ProgType::SchedAct
            | ProgType::Xdp
            | ProgType::CgroupSkb
            | ProgType::LwtIn
            | ProgType::LwtOut
            | ProgType::LwtXmit
            | ProgType::LwtSeg6local
            | ProgType::SkSkb
    )
}

/// `long bpf_perf_event_output(void *ctx, struct bpf_map *map, u64 flags, void *data, u64
/// size)`: appends `data` (then, for skb/XDP programs, the first `flags >> 32` packet bytes)
/// as one record to entry `flags & BPF_F_INDEX_MASK` (`BPF_F_CURRENT_CPU`: the current CPU's).
/// Errors: `-EINVAL` unknown flags, `-EFAULT` more packet bytes than the packet has, `-E2BIG`
/// index out of range, `-ENOENT` no event there, `-EOPNOTSUPP` the event is on another CPU,
/// `-ENOSPC` the entry's buffer is full.
fn perf_event_output(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let idx = map_arg(ctx, 2, a[1])?;
    if ctx.world.map(idx).and_then(|m| m.as_any().downcast_ref::<PerfEventArray>()).is_none() {
        return Err(HelperError::BadArg { arg: 2, reason: "not a perf_event_array map" });
    }
    let flags = a[2];
    let mut record = ctx.arg_bytes(4, a[3], a[4])?;
    let mask = if packet_program(ctx.prog_type) { INDEX_MASK | CTXLEN_MASK } else { INDEX_MASK };
    if flags & !mask != 0 {
        return Ok(-22i64 as u64);
    }
    let ctx_len = ((flags & CTXLEN_MASK) >> 32) as usize;
    if ctx_len > 0 {
        let mem = &ctx.world.mem;
        // XDP copies from `data` across the fragments (bpf_xdp_copy), skbs from their start.
        let packet = match mem.context().and_then(|c| c.as_any().downcast_ref::<XdpCtx>()) {
            Some(x) => x.buff_bytes(mem),
            None => mem.context().and_then(|c| c.packet_out(mem)).unwrap_or_default(),
        };
        if ctx_len > packet.len() {
            return Ok(-14i64 as u64);
        }
        record.extend_from_slice(&packet[..ctx_len]);
    }
    let cpu = ctx.world.env.cpu;
    let Some((map, _)) = ctx.world.map_mut(idx) else { return Ok(-22i64 as u64) };
    let Some(pe) = map.as_any_mut().downcast_mut::<PerfEventArray>() else {
        return Ok(-22i64 as u64);
    };
    Ok(match pe.output(flags & INDEX_MASK, cpu, record) {
        Ok(()) => 0,
        Err(e) => e as u64,
    })
}
