//! Ring buffer helpers (`bpf_ringbuf_output`, `_reserve`, `_submit`, `_discard`, `_query`)
//! over [`RingBuf`] maps.

use super::maps::map_arg;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::maps::RingBuf;
use crate::memory::RegionKind;

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[
    Helper { proto: OUTPUT, func: ringbuf_output },
    Helper { proto: RESERVE, func: ringbuf_reserve },
    Helper { proto: SUBMIT, func: ringbuf_submit },
    Helper { proto: DISCARD, func: ringbuf_discard },
    Helper { proto: QUERY, func: ringbuf_query },
];

/// Every program type may call them (`bpf_base_func_proto`).
const fn proto(id: u32, name: &'static str, ret: RetType, args: &'static [ArgType]) -> HelperProto {
    HelperProto { id, name, ret, args, gpl_only: false, prog_types: Allowed::All }
}

const OUTPUT: HelperProto = proto(
    130,
    "bpf_ringbuf_output",
    RetType::Integer,
    &[ArgType::ConstMapPtr, ArgType::PtrToMem, ArgType::ConstSizeOrZero, ArgType::Anything],
);
// The kernel's size argument is ARG_CONST_ALLOC_SIZE_OR_ZERO.
const RESERVE: HelperProto = proto(
    131,
    "bpf_ringbuf_reserve",
    RetType::PtrToAllocMemOrNull,
    &[ArgType::ConstMapPtr, ArgType::ConstSizeOrZero, ArgType::Anything],
);
const SUBMIT: HelperProto =
    proto(132, "bpf_ringbuf_submit", RetType::Void, &[ArgType::PtrToAllocMem, ArgType::Anything]);
const DISCARD: HelperProto =
    proto(133, "bpf_ringbuf_discard", RetType::Void, &[ArgType::PtrToAllocMem, ArgType::Anything]);
const QUERY: HelperProto =
    proto(134, "bpf_ringbuf_query", RetType::Integer, &[ArgType::ConstMapPtr, ArgType::Anything]);

const EINVAL: u64 = -22i64 as u64;
const EAGAIN: u64 = -11i64 as u64;
/// `BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP`.
const WAKEUP_FLAGS: u64 = 3;

/// The ring buffer argument `arg` names.
fn ring<'c>(
    ctx: &'c mut HelperCtx<'_>,
    arg: u8,
    addr: u64,
) -> Result<&'c mut RingBuf, HelperError> {
    let idx = map_arg(ctx, arg, addr)?;
    ctx.world
        .map_mut(idx)
        .and_then(|(m, _)| m.as_any_mut().downcast_mut::<RingBuf>())
        .ok_or(HelperError::BadArg { arg, reason: "not a ringbuf map" })
}

/// `long bpf_ringbuf_output(void *ringbuf, void *data, u64 size, u64 flags)`: 0, `-EINVAL`
/// for unknown flags, `-EAGAIN` when the ring is full.
fn ringbuf_output(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    ring(ctx, 1, a[0])?;
    let data = ctx.arg_bytes(2, a[1], a[2])?;
    let rb = ring(ctx, 1, a[0])?;
    if a[3] & !WAKEUP_FLAGS != 0 {
        return Ok(EINVAL);
    }
    Ok(if rb.output(&data, a[3]) { 0 } else { EAGAIN })
}

/// `void *bpf_ringbuf_reserve(void *ringbuf, u64 size, u64 flags)`: a record of `size` bytes
/// (a [`RegionKind::RingbufRecord`] region), or NULL when the ring is full or flags are set.
fn ringbuf_reserve(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let bad = HelperError::BadArg { arg: 1, reason: "not a ringbuf map" };
    let idx = map_arg(ctx, 1, a[0])?;
    let (map, mem) = ctx.world.map_mut(idx).ok_or(bad.clone())?;
    let rb = map.as_any_mut().downcast_mut::<RingBuf>().ok_or(bad)?;
    if a[2] != 0 {
        return Ok(0);
    }
    Ok(rb.reserve(mem, a[1]).ok().flatten().unwrap_or(0))
}

/// Submits or discards the record at `addr`; faults unless it is a live reserved record (the
/// verifier allows exactly one release of each reservation).
fn commit(
    ctx: &mut HelperCtx<'_>,
    addr: u64,
    flags: u64,
    discard: bool,
) -> Result<u64, HelperError> {
    let bad = HelperError::BadArg {
        arg: 1,
        reason: "not a reserved ring buffer record (released already, or not from bpf_ringbuf_reserve)",
    };
    let Some((region, RegionKind::RingbufRecord, 0)) = ctx.world.mem.resolve(addr) else {
        return Err(bad);
    };
    for idx in 0..ctx.world.map_count() {
        let Some((map, mem)) = ctx.world.map_mut(idx) else { continue };
        if let Some(rb) = map.as_any_mut().downcast_mut::<RingBuf>()
            && rb.commit(mem, region, flags, discard)
        {
            return Ok(0);
        }
    }
    Err(bad)
}

/// `void bpf_ringbuf_submit(void *data, u64 flags)`.
fn ringbuf_submit(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    commit(ctx, a[0], a[1], false)
}

/// `void bpf_ringbuf_discard(void *data, u64 flags)`.
fn ringbuf_discard(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    commit(ctx, a[0], a[1], true)
}

/// `u64 bpf_ringbuf_query(void *ringbuf, u64 flags)`: `BPF_RB_AVAIL_DATA` (0),
/// `BPF_RB_RING_SIZE` (1), `BPF_RB_CONS_POS` (2), `BPF_RB_PROD_POS` (3); 0 otherwise.
fn ringbuf_query(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    let rb = ring(ctx, 1, a[0])?;
    Ok(match a[1] {
        0 => rb.avail_data(),
        1 => rb.ring_size(),
        2 => rb.consumer_pos(),
        3 => rb.producer_pos(),
        _ => 0,
    })
}
